"""Stock work inside one unit of work: load items once, chain their changes, flush once.

Every use case that touches stock opens a :class:`StockSession` on its unit of work. The
session caches locations, channel pools and inventory items; at :meth:`flush` it serves
waiting backorders from whatever became available, emits low-stock signals for channels
that ask for them, and stages items, ledger rows and events on the unit of work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from omscore.errors import UnknownLocation
from omscore.events import DomainEvent, LowStock, OutOfStock
from omscore.ids import ChannelId, LocationId, Sku
from omscore.inventory import (
    Channel,
    ChannelPool,
    InventoryItem,
    ItemChange,
    Location,
    StockMovement,
    default_channel,
)
from omscore.ports import UnitOfWork

R = TypeVar("R", Location, Channel)


class PoolNetwork:
    """The locations a channel's orders may be sourced from, by id, with what the
    snapshot of every allocation asks of them worked out once."""

    __slots__ = ("capped", "id_set", "ids", "locations")

    def __init__(self, locations: tuple[Location, ...]) -> None:
        self.locations = locations
        self.ids = tuple(loc.id for loc in locations)
        self.id_set = frozenset(self.ids)
        self.capped = any(loc.daily_capacity is not None for loc in locations)

    def stocked(self, levels: Mapping[LocationId, object]) -> Iterable[LocationId]:
        """The locations with a level of a SKU, in id order. A SKU stocked in a few of
        many stores walks its levels, not the network."""
        if len(levels) < len(self.ids):
            return sorted(x for x in levels if x in self.id_set)
        return self.ids


class StockSession:
    """Cached stock state of one unit of work."""

    def __init__(self, uow: UnitOfWork, now: datetime) -> None:
        self.uow = uow
        self.now = now
        self._locations: dict[LocationId, Location] | None = None
        self._location_list: list[Location] | None = None
        self._channels: dict[ChannelId, Channel] | None = None
        self._pools: dict[ChannelId | None, ChannelPool] = {}
        self._original: dict[Sku, InventoryItem] = {}
        self._current: dict[Sku, InventoryItem] = {}
        self._movements: list[StockMovement] = []
        self._events: list[DomainEvent] = []

    # --- network ------------------------------------------------------------------------

    @property
    def locations(self) -> dict[LocationId, Location]:
        """Every location by id."""
        if self._locations is None:
            self._locations = _by_id(self._network)
        return self._locations

    @property
    def _network(self) -> list[Location]:
        if self._location_list is None:
            self._location_list = self.uow.locations.all()
        return self._location_list

    def location(self, location_id: str) -> Location:
        """The location, or :class:`UnknownLocation`."""
        found = (
            self.locations.get(LocationId(location_id)) if isinstance(location_id, str) else None
        )
        if found is None:
            raise UnknownLocation(f"no location {location_id!r}")
        return found

    def channel(self, channel: ChannelId) -> Channel:
        """A channel's configuration (the default one if never configured)."""
        if self._channels is None:
            self._channels = _by_id(self.uow.channels.all())
        return self._channels.get(channel) or default_channel(channel)

    def pool(self, channel: ChannelId | None) -> ChannelPool:
        """The channel's pool; ``None``: every active location, no buffer."""
        pool = self._pools.get(channel)
        if pool is None:
            config = default_channel(ChannelId("")) if channel is None else self.channel(channel)
            pool = self._pools[channel] = _pool_of(config, self._network, channel is None)
        return pool

    def pool_network(
        self, channel: ChannelId | None, also: LocationId | None = None
    ) -> PoolNetwork:
        """The known locations of the channel's pool and ``also`` (when given), by id."""
        pool, locations = self.pool(channel), self.locations
        key = (id(pool), id(locations), also)
        hit = _NETWORKS.get(key)
        if hit is not None and hit[0] is pool and hit[1] is locations:
            return hit[2]
        ids = {*pool.locations, also} if also is not None else set(pool.locations)
        network = tuple(locations[x] for x in sorted(ids) if x in locations)
        found = PoolNetwork(network)
        with _POOLS_LOCK:
            if len(_NETWORKS) > 256:
                _NETWORKS.clear()
            _NETWORKS[key] = (pool, locations, found)
        return found

    def is_active(self, location_id: LocationId) -> bool:
        """True for a known, active location."""
        loc = self.locations.get(location_id)
        return loc is not None and loc.active

    # --- items --------------------------------------------------------------------------

    def item(self, sku: str) -> InventoryItem:
        """The SKU's current item in this session (an empty one if it never had stock)."""
        key = Sku(sku)
        if key not in self._current:
            stored = self.uow.inventory.get(key) or InventoryItem(key)
            self._original[key] = stored
            self._current[key] = stored
        return self._current[key]

    def apply(self, sku: str, step: Callable[[InventoryItem], ItemChange]) -> InventoryItem:
        """Run one item command on the SKU's current item and keep its result for the flush."""
        return self.keep(step(self.item(sku)))

    def keep(self, change: ItemChange) -> InventoryItem:
        """Keep a change computed from the SKU's current item (see :meth:`item`)."""
        self._current[change.item.sku] = change.item
        self._movements.extend(change.movements)
        self._events.extend(change.events)
        return change.item

    def flush(self) -> None:
        """Serve backorders, signal low stock, and stage everything on the unit of work."""
        current, original = self._current, self._original
        for sku in sorted(current):
            if current[sku].backorders:
                self.apply(
                    sku, lambda item: item.serve_backorders(self.pool, self.is_active, self.now)
                )
        changed = [sku for sku, item in current.items() if item is not original[sku]]
        watched = self._watched_channels() if changed else []
        for sku in sorted(changed) if watched else ():
            self._signal_low_stock(original[sku], current[sku], watched)
        for sku in changed:
            self.uow.inventory.put(current[sku])
        self.uow.inventory.append_movements(self._movements)
        self.uow.record(self._events)
        self._movements, self._events = [], []
        self._original = dict(current)

    def _watched_channels(self) -> list[Channel]:
        if self._channels is None:
            self._channels = _by_id(self.uow.channels.all())
        return [c for c in self._channels.values() if c.low_stock_threshold is not None]

    def _signal_low_stock(
        self, before: InventoryItem, after: InventoryItem, channels: list[Channel]
    ) -> None:
        for channel in channels:
            threshold = channel.low_stock_threshold
            assert threshold is not None
            pool = self.pool(channel.id)
            if _promises_more_than(after, pool, threshold):
                continue  # neither signal can fire: the usual case, found in a location or two
            was, now = before.atp(pool), after.atp(pool)
            if now <= threshold < was:
                self._events.append(
                    LowStock(
                        version=after.version,
                        at=self.now,
                        sku=after.sku,
                        channel=channel.id,
                        atp=now,
                        threshold=threshold,
                    )
                )
            if now == 0 < was:
                self._events.append(
                    OutOfStock(
                        version=after.version, at=self.now, sku=after.sku, channel=channel.id
                    )
                )


def _promises_more_than(item: InventoryItem, pool: ChannelPool, threshold: int) -> bool:
    """True when the pool promises more than ``threshold`` of the item (found, with stock
    about, after a location or two)."""
    return pool.promisable_up_to(item.levels, threshold + 1) > threshold


# Pools are rebuilt only when the network changes: stores hand out the same sorted list of
# locations (and the same channel objects) until one changes, so the identities of the list
# and of the channel's configuration (both held here, so neither id is reused) name a pool.
_POOLS: dict[tuple[int, int, bool], tuple[list[Location], Channel, ChannelPool]] = {}
_POOLS_LOCK = threading.Lock()


def _pool_of(config: Channel, network: list[Location], unbuffered: bool) -> ChannelPool:
    key = (id(network), id(config), unbuffered)
    hit = _POOLS.get(key)  # a dict read is atomic; the lock guards the writes
    if hit is not None and hit[0] is network and hit[1] is config:
        return hit[2]
    pool = config.pool(network)
    if unbuffered:
        pool = ChannelPool(None, pool.locations)
    with _POOLS_LOCK:
        if len(_POOLS) > 256:
            _POOLS.clear()
        _POOLS[key] = (network, config, pool)
    return pool


_NETWORKS: dict[
    tuple[int, int, LocationId | None],
    tuple[ChannelPool, dict[LocationId, Location], PoolNetwork],
] = {}

_INDEXES: dict[int, tuple[list[Any], dict[Any, Any]]] = {}


def _by_id(rows: list[R]) -> dict[Any, R]:
    """The rows by id: the same dict while a store hands out the same list (shared between
    sessions, so it is never mutated)."""
    hit = _INDEXES.get(id(rows))
    if hit is not None and hit[0] is rows:
        return hit[1]
    index = {row.id: row for row in rows}
    with _POOLS_LOCK:
        if len(_INDEXES) > 256:
            _INDEXES.clear()
        _INDEXES[id(rows)] = (rows, index)
    return index
