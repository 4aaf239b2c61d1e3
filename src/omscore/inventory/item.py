"""The inventory item: one SKU's stock across every location, its holds and its ledger rows.

The item is the consistency boundary for stock: every change to a SKU's levels, checkout
reservations, order holds, backorders, transfers and incoming supply goes through one item
and bumps its version, so two writers can never both take the last unit. Like the order,
it is immutable: each command returns an :class:`ItemChange` with the new item, the ledger
rows it wrote and the events it recorded.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from typing import TypeVar

import attrs

from omscore._values import evolved
from omscore.errors import (
    DuplicateReservation,
    DuplicateSupply,
    InsufficientStock,
    InvalidQuantity,
    StockInUse,
    UnknownReservation,
    UnknownSupply,
    UnknownTransfer,
)
from omscore.events import (
    BackorderServed,
    DomainEvent,
    OrderStockHeld,
    OrderStockReleased,
    ReservationExtended,
    ReservationReleased,
    SafetyStockSet,
    StockAdjusted,
    StockCounted,
    StockReceived,
    StockReserved,
    SupplyAdded,
    SupplyCancelled,
    SupplyUpdated,
    TransferDue,
    TransferReceived,
    TransferShipped,
)
from omscore.ids import ChannelId, LineId, LocationId, OrderId, Sku
from omscore.inventory.channel import ChannelPool
from omscore.inventory.stock import Discrepancy, MovementKind, StockLevel, StockMovement

ZERO_LEVEL = StockLevel()


@attrs.frozen(slots=True)
class StockHold:
    """Units reserved at one location: for a checkout (``line_id`` is None, ``key`` is the
    reservation key, with an expiry) or for a placed order's line (``key`` is the order id).
    ``pickup`` marks a checkout's hold for a cart to be collected at that location: it
    stays there when the location leaves the channel's pool or closes for a while."""

    key: str
    line_id: LineId | None
    channel: ChannelId | None
    location_id: LocationId
    quantity: int
    since: datetime
    expires_at: datetime | None = None
    pickup: bool = False

    @property
    def is_checkout(self) -> bool:
        """True for a checkout reservation, False for an order's hold."""
        return self.line_id is None

    def describe(self) -> str:
        """Who holds the units, for error messages."""
        if self.line_id is None:
            return f"reservation {self.key!r} ({self.quantity})"
        return f"order {self.key} line {self.line_id} ({self.quantity})"


@attrs.frozen(slots=True)
class Backorder:
    """Open units of a line that no location could hold yet; served oldest first."""

    order_id: OrderId
    line_id: LineId
    channel: ChannelId
    quantity: int
    since: datetime
    pickup_location: LocationId | None = None
    excluded: frozenset[LocationId] = frozenset()


@attrs.frozen(slots=True)
class Supply:
    """Incoming supply: a purchase order (``reference``) due at a location by ``eta``."""

    reference: str
    location_id: LocationId
    quantity: int
    eta: datetime


@attrs.frozen(slots=True)
class Transfer:
    """Units in transit between two locations; available at neither until received. With an
    ``eta``, they are incoming supply at the destination: they give promise dates."""

    id: str
    from_location: LocationId
    to_location: LocationId
    quantity: int
    shipped_at: datetime
    reference: str = ""
    eta: datetime | None = None


@attrs.frozen(slots=True)
class ExpectedArrival:
    """Units due at a location by ``eta``: incoming supply under its purchase order
    ``reference``, or a transfer in transit (``transfer_id``; its reference is the one its
    ledger rows carry, ``"transfer T-1"``)."""

    location_id: LocationId
    reference: str
    quantity: int
    eta: datetime
    transfer_id: str | None = None


def _arrival_of_transfer(transfer: Transfer, eta: datetime) -> ExpectedArrival:
    reference = f"transfer {transfer.id}"
    return ExpectedArrival(transfer.to_location, reference, transfer.quantity, eta, transfer.id)


@attrs.frozen(slots=True)
class Placement:
    """Units of a reservation held at one location."""

    location_id: LocationId
    quantity: int


@attrs.frozen(slots=True)
class Reservation:
    """A checkout reservation of one SKU, as the service reports it; ``pickup_location``
    is the store a click & collect cart is held at (``None`` for a cart to be shipped)."""

    key: str
    sku: Sku
    channel: ChannelId | None
    quantity: int
    expires_at: datetime
    placements: tuple[Placement, ...]
    pickup_location: LocationId | None = None


def _note_served(
    dates: dict[tuple[OrderId, LineId], datetime | None], item: InventoryItem, at: datetime
) -> None:
    """Date ``at`` every backorder in ``dates`` that ``item`` no longer has, and no date yet."""
    waiting = {(b.order_id, b.line_id) for b in item.backorders}
    for key, when in dates.items():
        if when is None and key not in waiting:
            dates[key] = at


@attrs.frozen(slots=True)
class ItemChange:
    """What one command did to an item: the new item, its ledger rows and its events."""

    item: InventoryItem
    movements: tuple[StockMovement, ...] = ()
    events: tuple[DomainEvent, ...] = ()

    def join(self, nxt: ItemChange) -> ItemChange:
        """This change followed by ``nxt``, a command run on this change's item."""
        return ItemChange(nxt.item, self.movements + nxt.movements, self.events + nxt.events)


def require_units(quantity: object, what: str, minimum: int = 1) -> int:
    """``quantity`` as an int >= ``minimum``, or :class:`InvalidQuantity` naming ``what``."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < minimum:
        raise InvalidQuantity(f"{what} must be an int >= {minimum}, got {quantity!r}")
    return quantity


class _HoldIndex:
    """What a SKU's holds are keyed by, kept from one item version to the next.

    A SKU in a flash sale holds stock for thousands of orders; every command on it looks
    for one order's (or one checkout's) holds. ``keys[i]`` is the key of ``holds[i]``, so
    that search runs in C (``list.count`` and ``list.index``) instead of a Python loop over
    the holds; ``checkouts[i]`` says whether it is a checkout hold and ``expiries[i]`` is
    its expiry, so the reservation keys and the next expiry (which the stores index after
    every command) come out of C as well; ``count`` counts the checkout holds, so items
    without any skip both. ``counts`` holds per key, so a key without holds (a new cart,
    a new order) costs no search at all. A command's working copy updates them as it adds
    and removes holds, and the new version starts with them. One index is kept per SKU (the
    latest version's), so older versions' holds are never kept alive by it.
    """

    __slots__ = (
        "added",
        "checkouts",
        "count",
        "counts",
        "earliest",
        "earliest_known",
        "expiries",
        "holds",
        "keys",
        "parent",
    )

    def __init__(
        self,
        holds: tuple[StockHold, ...],
        keys: list[str],
        checkouts: list[bool],
        expiries: list[datetime | None],
        count: int,
        counts: _KeyCounts,
        parent: tuple[StockHold, ...] | None = None,
        added: tuple[tuple[str, datetime | None], ...] = (),
    ) -> None:
        self.holds = holds
        self.keys = keys
        self.checkouts = checkouts
        self.expiries = expiries
        self.count = count
        self.counts = counts
        #: The next expiry once computed (or carried over from ``parent``'s index).
        self.earliest: datetime | None = None
        self.earliest_known = False
        #: The holds of the version this one was made from, when the command that made it
        #: removed and changed no checkout hold; ``added`` are the checkout holds it added
        #: (key and expiry). Stores then update their cart indexes by that alone.
        self.parent = parent
        self.added = added

    @classmethod
    def of(cls, sku: Sku, holds: tuple[StockHold, ...]) -> _HoldIndex:
        """The index of ``holds`` (a version of ``sku``'s): kept from the command that made
        them, else built (and kept, for a busy SKU)."""
        hit = _HOLD_INDEXES.get(sku)
        if hit is not None and hit.holds is holds:
            return hit
        index = cls(holds, *_columns(holds))
        if len(holds) >= _INDEXED_FROM:
            index.keep(sku)
        return index

    def keep(self, sku: Sku) -> None:
        """Keep this index as ``sku``'s, for the next command on these holds."""
        _keep_index(_HOLD_INDEXES, sku, self)

    def positions(self, key: str) -> list[int]:
        """Positions of the holds under ``key``, in order."""
        return _positions(self.keys, key, self.counts.get(key))

    def reservation_keys(self) -> frozenset[str]:
        """Keys of the checkout holds."""
        return frozenset(itertools.compress(self.keys, self.checkouts)) if self.count else _NONE

    def next_expiry(self) -> datetime | None:
        """The earliest expiry of a hold (only checkout holds expire)."""
        if not self.earliest_known:  # the value first: another thread may read it next
            self.earliest = min(filter(None, self.expiries), default=None) if self.count else None
            self.earliest_known = True
        return self.earliest

    def carry_earliest(self, before: _HoldIndex | None) -> None:
        """Take the next expiry from ``before``, the index of ``parent``, when it is known:
        this version only added the checkout holds ``added`` to those of ``parent``."""
        if before is None or before.holds is not self.parent or not before.earliest_known:
            return
        expiries = [e for _, e in self.added if e is not None]
        if before.earliest is not None:
            expiries.append(before.earliest)
        self.earliest, self.earliest_known = min(expiries, default=None), True


class _KeyCounts:
    """Holds per key: a base shared by the versions of an item (never changed once made)
    and the counts that changed since (0: none left). A command copies only the changes, so
    its cost does not grow with the keys of a busy SKU; past ``_FOLD_AFTER`` changes a
    command folds them into a new base."""

    __slots__ = ("base", "changes")

    def __init__(self, base: dict[str, int], changes: dict[str, int] | None = None) -> None:
        self.base = base
        self.changes = changes if changes is not None else {}

    def get(self, key: str) -> int:
        """Holds under ``key``."""
        changed = self.changes.get(key)
        return self.base.get(key, 0) if changed is None else changed

    def add(self, key: str, delta: int) -> None:
        """Count ``delta`` more holds under ``key`` (a working copy's)."""
        self.changes[key] = self.get(key) + delta

    def working_copy(self) -> _KeyCounts:
        """A copy for one command to change."""
        if len(self.changes) <= _FOLD_AFTER:
            return _KeyCounts(self.base, self.changes.copy())
        base = self.base.copy()
        base.update(self.changes)
        for key in [k for k, n in self.changes.items() if not n]:
            del base[key]
        return _KeyCounts(base)

    def as_dict(self) -> dict[str, int]:
        """Every key with holds, and how many."""
        merged = {**self.base, **self.changes}
        return {key: n for key, n in merged.items() if n}


_FOLD_AFTER = 64
#: The counts of a working copy that keeps no index (a SKU with few holds); never changed.
_UNINDEXED = _KeyCounts({})
_Columns = tuple[list[str], list[bool], list[datetime | None], int, _KeyCounts]


def _columns(holds: Iterable[StockHold]) -> _Columns:
    """The index's columns of ``holds``: keys, checkout or not, expiries, checkout count,
    and holds per key."""
    keys, checkouts, expiries = [], [], []
    counts: dict[str, int] = {}
    for h in holds:
        keys.append(h.key)
        checkouts.append(h.line_id is None)
        expiries.append(h.expires_at)
        counts[h.key] = counts.get(h.key, 0) + 1
    return keys, checkouts, expiries, sum(checkouts), _KeyCounts(counts)


_NONE: frozenset[str] = frozenset()


class _BackorderIndex:
    """The order ids of a SKU's backorders, in their order, kept from one item version to
    the next as :class:`_HoldIndex` keeps holds' keys: a launch with thousands of
    pre-orders finds one order's backorders with ``list.index`` in C."""

    __slots__ = ("backorders", "keys")

    def __init__(self, backorders: tuple[Backorder, ...], keys: list[str]) -> None:
        self.backorders = backorders
        self.keys = keys

    @classmethod
    def of(cls, sku: Sku, backorders: tuple[Backorder, ...]) -> _BackorderIndex:
        """The index of ``backorders`` (a version of ``sku``'s): kept, else built."""
        hit = _BACKORDER_INDEXES.get(sku)
        if hit is not None and hit.backorders is backorders:
            return hit
        index = cls(backorders, [b.order_id for b in backorders])
        if len(backorders) >= _INDEXED_FROM:
            _keep_index(_BACKORDER_INDEXES, sku, index)
        return index


IndexOf = TypeVar("IndexOf", _HoldIndex, _BackorderIndex)


def _keep_index(kept: dict[Sku, IndexOf], sku: Sku, index: IndexOf) -> None:
    """Keep ``index`` as ``sku``'s latest (a bounded number of SKUs at a time)."""
    with _INDEXES_LOCK:
        if len(kept) >= 4_096 and sku not in kept:
            kept.clear()
        kept[sku] = index


def _positions(keys: list[str], key: str, count: int | None = None) -> list[int]:
    """Positions of ``key`` in ``keys``, in order; ``count`` says how many there are, when
    that is known."""
    count = keys.count(key) if count is None else count
    if not count:
        return []
    end = len(keys)
    tail = end - count
    if keys[tail] == key and keys[tail:].count(key) == count:
        # What a command placed last sits at the end, and is what it looks up next.
        return list(range(tail, end))
    positions, start = [], 0
    for _ in range(count):
        start = keys.index(key, start)
        positions.append(start)
        start += 1
    return positions


def _units_by_location(holds: Iterable[StockHold]) -> list[tuple[LocationId, int]]:
    """Units of ``holds`` per location, by location id."""
    units: dict[LocationId, int] = {}
    for h in holds:
        units[h.location_id] = units.get(h.location_id, 0) + h.quantity
    return sorted(units.items())


_INDEXED_FROM = 32  # fewer holds are cheaper to index again than to keep
_HOLD_INDEXES: dict[Sku, _HoldIndex] = {}
_BACKORDER_INDEXES: dict[Sku, _BackorderIndex] = {}
_INDEXES_LOCK = threading.Lock()


@attrs.frozen(slots=True)
class InventoryItem:
    """One SKU across every location: levels, holds, backorders, supply and transfers."""

    sku: Sku
    levels: Mapping[LocationId, StockLevel] = attrs.field(factory=dict)
    holds: tuple[StockHold, ...] = ()
    backorders: tuple[Backorder, ...] = ()
    supply: tuple[Supply, ...] = ()
    transfers: tuple[Transfer, ...] = ()
    version: int = 0

    # --- reading ------------------------------------------------------------------------

    def level(self, location_id: str) -> StockLevel:
        """The level at a location (all zero where the SKU never was)."""
        return self.levels.get(LocationId(location_id), ZERO_LEVEL)

    def available_in(self, locations: Iterable[LocationId]) -> int:
        """Sum of available over ``locations``."""
        levels = self.levels
        return sum(levels[x].available for x in locations if x in levels)

    def atp(self, pool: ChannelPool) -> int:
        """Available to promise for a channel pool: its available, less its buffer."""
        return pool.promisable(self.available_in(pool.locations))

    def checkout_holds(self, key: str) -> tuple[StockHold, ...]:
        """The holds of checkout reservation ``key``."""
        return tuple(h for h in self._holds_under(key) if h.line_id is None)

    def _holds_under(self, key: str) -> list[StockHold]:
        holds = self.holds
        if len(holds) < _INDEXED_FROM:
            return [h for h in holds if h.key == key]
        return [holds[i] for i in _HoldIndex.of(self.sku, holds).positions(key)]

    def reservation(self, key: str) -> Reservation:
        """The checkout reservation ``key`` of this SKU."""
        held = self.checkout_holds(key)
        if not held:
            raise UnknownReservation(f"no reservation {key!r} holds {self.sku}")
        return Reservation(
            key=key,
            sku=self.sku,
            channel=held[0].channel,
            quantity=sum(h.quantity for h in held),
            expires_at=min(h.expires_at for h in held if h.expires_at is not None),
            placements=tuple(Placement(h.location_id, h.quantity) for h in held),
            pickup_location=held[0].location_id if held[0].pickup else None,
        )

    def held_for(self, order_id: str, line_id: LineId) -> int:
        """Units held for an order's line."""
        return sum(h.quantity for h in self._holds_under(order_id) if h.line_id == line_id)

    def backordered_for(self, order_id: str, line_id: LineId) -> int:
        """Units of an order's line waiting for stock."""
        backorders = self.backorders
        if len(backorders) < _INDEXED_FROM:
            return sum(
                b.quantity for b in backorders if b.order_id == order_id and b.line_id == line_id
            )
        positions = _positions(_BackorderIndex.of(self.sku, backorders).keys, order_id)
        return sum(backorders[i].quantity for i in positions if backorders[i].line_id == line_id)

    @property
    def in_transit(self) -> int:
        """Units in transfers not yet received."""
        return sum(t.quantity for t in self.transfers)

    @property
    def next_expiry(self) -> datetime | None:
        """The earliest expiry among checkout reservations (for expiry scans)."""
        holds = self.holds
        if len(holds) >= _INDEXED_FROM:
            return _HoldIndex.of(self.sku, holds).next_expiry()
        expiries = [h.expires_at for h in holds if h.expires_at is not None]
        return min(expiries) if expiries else None

    @property
    def reservation_keys(self) -> frozenset[str]:
        """Keys of the checkout reservations on this SKU."""
        holds = self.holds
        if len(holds) >= _INDEXED_FROM:
            return _HoldIndex.of(self.sku, holds).reservation_keys()
        return frozenset(h.key for h in holds if h.line_id is None)

    def checkout_holds_added_since(
        self, holds: tuple[StockHold, ...] | None
    ) -> tuple[tuple[str, datetime | None], ...] | None:
        """The checkout holds (key, expiry) this version has beyond those of ``holds``, an
        earlier version's, when adding them is all that changed its checkout holds: ``()``
        when they are the same. None when that is not known (look at the holds)."""
        if holds is self.holds:
            return ()
        index = _HOLD_INDEXES.get(self.sku)
        if holds is None or index is None or index.holds is not self.holds:
            return None
        return index.added if index.parent is holds else None

    @property
    def has_checkout_holds(self) -> bool:
        """True while a checkout reservation holds units of this SKU."""
        holds = self.holds
        if len(holds) < _INDEXED_FROM:
            return any(h.line_id is None for h in holds)
        return _HoldIndex.of(self.sku, holds).count > 0

    def discrepancies(self) -> list[Discrepancy]:
        """Levels whose ``reserved`` disagrees with the holds at that location."""
        held: dict[LocationId, int] = {}
        for h in self.holds:
            held[h.location_id] = held.get(h.location_id, 0) + h.quantity
        return [
            Discrepancy(loc, self.sku, "reserved", level.reserved, held.get(loc, 0))
            for loc, level in sorted(self.levels.items())
            if level.reserved != held.get(loc, 0)
        ]

    def backorder_dates(
        self,
        pool_for: Callable[[ChannelId], ChannelPool],
        is_active: Callable[[LocationId], bool],
        now: datetime,
        *,
        order_id: OrderId | None = None,
    ) -> dict[tuple[OrderId, LineId], datetime | None]:
        """When each waiting backorder (by order and line) will be held in full if the
        expected supply arrives on its ETA and nothing else takes it first: the ETA of the
        supply that completes it (``now`` for one that is overdue), or None when the supply
        expected does not. The supply is received on copies of the item, in ETA order,
        and served by the rules that serve it when it really comes; nothing is changed.
        With ``order_id``, only that order's backorders are dated, and the receipts stop
        once they are."""
        dates: dict[tuple[OrderId, LineId], datetime | None] = {
            (b.order_id, b.line_id): None
            for b in self.backorders
            if order_id is None or b.order_id == order_id
        }
        item = self.serve_backorders(pool_for, is_active, now).item
        _note_served(dates, item, now)
        for arrival in self.expected_arrivals():
            if None not in dates.values():
                break
            at = max(arrival.eta, now)
            item = item.arrive(arrival, at).item
            item = item.serve_backorders(pool_for, is_active, at).item
            _note_served(dates, item, at)
        return dates

    def expected_arrivals(self) -> list[ExpectedArrival]:
        """Incoming supply and the transfers in transit with an ETA, in the order they are
        due (ties by reference)."""
        arrivals = [
            ExpectedArrival(s.location_id, s.reference, s.quantity, s.eta) for s in self.supply
        ]
        arrivals += [_arrival_of_transfer(t, t.eta) for t in self.transfers if t.eta is not None]
        return sorted(arrivals, key=lambda a: (a.eta, a.reference))

    def arrive(self, arrival: ExpectedArrival, at: datetime) -> ItemChange:
        """The expected arrival comes in full: a receipt under the supply's reference, or
        the transfer received."""
        if arrival.transfer_id is not None:
            return self.receive_transfer(arrival.transfer_id, at)
        return self.receive(arrival.location_id, arrival.quantity, arrival.reference, at)

    def promise_date(self, quantity: int, pool: ChannelPool, now: datetime) -> datetime | None:
        """When ``quantity`` units can be promised on ``pool``: now if ATP covers them, else the
        earliest ETA of incoming supply (or a transfer with an ETA) to the pool that covers
        them after the backorders already waiting; None when nothing due covers them."""
        atp = self.atp(pool)
        if quantity <= atp:
            return now
        needed = quantity - atp + sum(b.quantity for b in self.backorders)
        members = set(pool.locations)
        for arrival in self.expected_arrivals():
            if arrival.location_id in members:
                needed -= arrival.quantity
                if needed <= 0:
                    return max(arrival.eta, now)
        return None

    # --- on hand ------------------------------------------------------------------------

    def receive(
        self, location_id: LocationId, quantity: int, reference: str, at: datetime
    ) -> ItemChange:
        """Units arrive; settles incoming supply with the same reference at that location."""
        require_units(quantity, "received quantity")
        w = _Work(self, at)
        w.move(location_id, MovementKind.RECEIPT, quantity, 0, reference)
        w.settle_supply(reference, location_id, quantity)
        w.event(StockReceived, location_id=location_id, quantity=quantity, reference=reference)
        return w.done()

    def restock(
        self, location_id: LocationId, quantity: int, reference: str, at: datetime
    ) -> ItemChange:
        """Returned units go back to sellable stock."""
        require_units(quantity, "restocked quantity")
        w = _Work(self, at)
        w.move(location_id, MovementKind.RESTOCK, quantity, 0, reference)
        return w.done()

    def adjust(
        self,
        location_id: LocationId,
        delta: int,
        reason: str,
        at: datetime,
        kind: MovementKind = MovementKind.ADJUSTMENT,
    ) -> ItemChange:
        """Correct on hand by ``delta``; refused where it would fall below what is held."""
        if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
            raise InvalidQuantity(f"adjustment delta must be a non-zero int, got {delta!r}")
        self._require_room(location_id, self.level(location_id).on_hand + delta)
        w = _Work(self, at)
        w.move(location_id, kind, delta, 0, reason)
        w.event(StockAdjusted, location_id=location_id, delta=delta, reason=reason, kind=kind.value)
        return w.done()

    def count(
        self, location_id: LocationId, on_hand: int, at: datetime, reference: str = ""
    ) -> ItemChange:
        """A cycle count: post the difference between ``on_hand`` and the level."""
        require_units(on_hand, "counted on hand", minimum=0)
        self._require_room(location_id, on_hand)
        delta = on_hand - self.level(location_id).on_hand
        w = _Work(self, at)
        if delta:
            w.move(location_id, MovementKind.COUNT, delta, 0, reference or "cycle count")
        w.event(StockCounted, location_id=location_id, counted=on_hand, delta=delta)
        return w.done()

    def set_safety_stock(self, location_id: LocationId, units: int, at: datetime) -> ItemChange:
        """Units the location keeps back from every channel."""
        require_units(units, "safety stock", minimum=0)
        w = _Work(self, at)
        w.set_level(location_id, evolved(w.level(location_id), safety_stock=units))
        w.event(SafetyStockSet, location_id=location_id, safety_stock=units)
        return w.done()

    def _require_room(self, location_id: LocationId, new_on_hand: int) -> None:
        level = self.level(location_id)
        if new_on_hand < 0:
            raise StockInUse(
                f"on hand of {self.sku} at {location_id} cannot go below zero "
                f"(it is {level.on_hand}, the change would make it {new_on_hand})"
            )
        if new_on_hand < level.committed:
            holders = tuple(h.describe() for h in self.holds if h.location_id == location_id)
            allocated = (
                (f"{level.allocated} allocated to fulfilment orders",) if level.allocated else ()
            )
            who = ", ".join(allocated + holders)
            raise StockInUse(
                f"on hand of {self.sku} at {location_id} cannot go to {new_on_hand}: "
                f"{level.committed} unit(s) are held by {who}",
                holders=allocated + holders,
            )

    # --- checkout reservations ----------------------------------------------------------

    def reserve(
        self,
        key: str,
        quantity: int,
        pool: ChannelPool,
        expires_at: datetime,
        at: datetime,
        pickup_location: LocationId | None = None,
    ) -> ItemChange:
        """Hold ``quantity`` for checkout ``key`` on the pool's locations, in preference
        order, or at ``pickup_location`` alone (a cart to be collected there)."""
        require_units(quantity, "reserved quantity")
        if self.checkout_holds(key):
            raise DuplicateReservation(
                f"reservation {key!r} already holds {self.sku}; extend or release it"
            )
        locations: tuple[LocationId, ...] = pool.locations
        if pickup_location is not None:
            locations = (pickup_location,)
            available = self.level(pickup_location).available
            if available < quantity:
                raise InsufficientStock(
                    f"cannot reserve {quantity} of {self.sku} at {pickup_location}: only "
                    f"{available} available there"
                )
        elif pool.promisable_up_to(self.levels, quantity) < quantity:
            raise InsufficientStock(
                f"cannot reserve {quantity} of {self.sku} for channel {pool.channel}: "
                f"only {self.atp(pool)} available to promise"
            )
        w = _Work(self, at)
        w.place(
            quantity, locations, key, None, pool.channel, expires_at, pickup_location is not None
        )
        w.event(
            StockReserved,
            key=key,
            channel=pool.channel,
            quantity=quantity,
            expires_at=expires_at,
            pickup_location=pickup_location,
        )
        return w.done()

    def extend(self, key: str, expires_at: datetime, at: datetime) -> ItemChange:
        """Move the expiry of checkout reservation ``key``."""
        if not self.checkout_holds(key):
            raise UnknownReservation(f"no reservation {key!r} holds {self.sku}")
        w = _Work(self, at)
        w.set_expiry(key, expires_at)
        w.event(ReservationExtended, key=key, expires_at=expires_at)
        return w.done()

    def release_reservation(self, key: str, at: datetime, cause: str = "released") -> ItemChange:
        """End checkout reservation ``key``; its units return to the pool."""
        held = self.checkout_holds(key)
        if not held:
            raise UnknownReservation(f"no reservation {key!r} holds {self.sku}")
        w = _Work(self, at)
        w.drop_holds(key, checkout=True)
        w.event(ReservationReleased, key=key, quantity=sum(h.quantity for h in held), cause=cause)
        return w.done()

    def expire(self, now: datetime) -> tuple[ItemChange, int]:
        """End every checkout reservation whose time is up; returns how many ended."""
        expired = {h.key for h in self.holds if h.expires_at is not None and h.expires_at <= now}
        if not expired:
            return ItemChange(self), 0
        w = _Work(self, now)
        released = w.drop_checkouts(expired)
        for key in sorted(expired):
            w.event(ReservationReleased, key=key, quantity=released[key], cause="expired")
        return w.done(), len(expired)

    # --- order holds and backorders -----------------------------------------------------

    def take_over(
        self,
        key: str,
        order_id: OrderId,
        needs: Iterable[tuple[LineId, int]],
        at: datetime,
        usable: Collection[LocationId] | None = None,
    ) -> tuple[ItemChange, dict[LineId, int]]:
        """Turn checkout reservation ``key`` into holds of the order's lines, at the same
        locations: those of ``usable`` alone when given (the order's pool, or a pickup
        order's store), as the order holds stock nowhere else.

        Returns what each line still needs. Units the lines do not take go back to the pool.
        """
        held = [h for h in self.checkout_holds(key) if usable is None or h.location_id in usable]
        w = _Work(self, at)
        w.drop_holds(key, checkout=True)
        remaining: dict[LineId, int] = {}
        for line_id, wanted in needs:
            need = wanted
            while need and held:
                h = held[0]
                take = min(need, h.quantity)
                w.add_hold(StockHold(order_id, line_id, h.channel, h.location_id, take, at))
                need -= take
                held[0] = evolved(h, quantity=h.quantity - take)
                if held[0].quantity == 0:
                    held.pop(0)
            remaining[line_id] = need
        total = sum(h.quantity for h in self.checkout_holds(key))
        w.event(ReservationReleased, key=key, quantity=total, cause=f"taken over by {order_id}")
        return w.done(), remaining

    def hold_for_line(
        self,
        order_id: OrderId,
        line_id: LineId,
        quantity: int,
        pool: ChannelPool,
        at: datetime,
        pickup_location: LocationId | None = None,
        since: datetime | None = None,
        excluded: frozenset[LocationId] = frozenset(),
    ) -> ItemChange:
        """Hold up to ``quantity`` for a line (ATP on the pool less ``excluded``, or at the
        pickup location); the rest is backordered (queued from ``since``, default now, and
        never served at an excluded location) and served as stock arrives."""
        require_units(quantity, "units to hold")
        w = _Work(self, at)
        channel = pool.channel or ChannelId("")
        held = w.hold_line(
            order_id, line_id, channel, quantity, pool.without(excluded), pickup_location
        )
        if held < quantity:
            w.add_backorder(
                Backorder(
                    order_id,
                    line_id,
                    channel,
                    quantity - held,
                    since or at,
                    pickup_location,
                    excluded,
                )
            )
        w.event(
            OrderStockHeld,
            order_id=order_id,
            line_id=line_id,
            held=held,
            backordered=quantity - held,
        )
        return w.done()

    def release_line(
        self, order_id: OrderId, line_id: LineId, quantity: int, at: datetime
    ) -> ItemChange:
        """Release ``quantity`` of a line's open units: backordered ones first, then held ones
        (newest hold first)."""
        w = _Work(self, at)
        left = w.shrink_backorder(order_id, line_id, quantity)
        for index in reversed(w.positions(order_id)):
            h = w.holds[index]
            if left == 0:
                break
            if h.line_id != line_id:
                continue
            take = min(left, h.quantity)
            left -= take
            w.remove_hold_units(index, take)
        w.event(OrderStockReleased, order_id=order_id, line_id=line_id, quantity=quantity - left)
        return w.done()

    def release_order(
        self, order_id: OrderId, at: datetime
    ) -> tuple[ItemChange, dict[LineId, int]]:
        """Release every hold and backorder of an order on this SKU; returns units per line."""
        w = _Work(self, at)
        released = w.release_order(order_id)
        return w.done(), released

    def serve_backorders(
        self,
        pool_for: Callable[[ChannelId], ChannelPool],
        is_active: Callable[[LocationId], bool],
        at: datetime,
    ) -> ItemChange:
        """Give available stock to waiting backorders, oldest first."""
        if not self.backorders or not any(level.available for level in self.levels.values()):
            return ItemChange(self)
        w = _Work(self, at)
        served: dict[tuple[OrderId, LineId], int] = {}
        for b in sorted(self.backorders, key=lambda b: (b.since, b.order_id, b.line_id)):
            pool = pool_for(b.channel).without(b.excluded)
            if b.pickup_location is not None and not is_active(b.pickup_location):
                continue
            first_new = len(w.holds)  # placing holds only appends them
            held = w.hold_line(
                b.order_id, b.line_id, b.channel, b.quantity, pool, b.pickup_location
            )
            if held == 0:
                continue
            served[(b.order_id, b.line_id)] = served.get((b.order_id, b.line_id), 0) + held
            for location_id, units in _units_by_location(w.holds[first_new:]):
                w.event(
                    BackorderServed,
                    order_id=b.order_id,
                    line_id=b.line_id,
                    location_id=location_id,
                    quantity=units,
                )
        w.shrink_backorders(served)
        return w.done() if w.events else ItemChange(self)

    # --- allocation and shipment --------------------------------------------------------

    def order_holds_by_location(self, order_id: OrderId) -> dict[LocationId, int]:
        """Units held for the order's lines on this SKU, per location."""
        held: dict[LocationId, int] = {}
        for h in self._holds_under(order_id):
            if h.line_id is not None:
                held[h.location_id] = held.get(h.location_id, 0) + h.quantity
        return held

    def allocate_order(
        self,
        order_id: OrderId,
        allocations: Iterable[tuple[LocationId, int, str]],
        at: datetime,
    ) -> ItemChange:
        """Hand an order's units to fulfilment in one change: release every hold and
        backorder of the order on this SKU (as :meth:`release_order`), then hard-allocate each
        ``(location, quantity, reference)``. A location with fewer units available (its
        released holds counted) raises :class:`~omscore.errors.InsufficientStock`."""
        w = _Work(self, at)
        w.release_order(order_id)
        for location_id, quantity, reference in allocations:
            w.allocate(location_id, quantity, reference)
        return w.done()

    def allocate(
        self, location_id: LocationId, quantity: int, reference: str, at: datetime
    ) -> ItemChange:
        """Hard-allocate ``quantity`` at a location to a fulfilment order."""
        w = _Work(self, at)
        w.allocate(location_id, quantity, reference)
        return w.done()

    def deallocate(
        self, location_id: LocationId, quantity: int, reference: str, at: datetime
    ) -> ItemChange:
        """Give allocated units back (a rejection or a cancellation)."""
        require_units(quantity, "deallocated quantity")
        w = _Work(self, at)
        w.move(location_id, MovementKind.DEALLOCATION, 0, -quantity, reference)
        return w.done()

    def ship(
        self, location_id: LocationId, quantity: int, reference: str, at: datetime
    ) -> ItemChange:
        """Allocated units leave the building: on hand and allocated both go down."""
        require_units(quantity, "shipped quantity")
        w = _Work(self, at)
        w.move(location_id, MovementKind.SHIPMENT, -quantity, -quantity, reference)
        return w.done()

    def hand_over(
        self,
        from_location: LocationId,
        to_location: LocationId,
        quantity: int,
        reference: str,
        at: datetime,
    ) -> ItemChange:
        """Allocated units reach another location for the same fulfilment order (a
        ship-to-store parcel at its pickup store): they leave one location's on hand and
        allocated and join the other's."""
        w = _Work(self, at)
        self._send_allocated(w, from_location, quantity, reference, "hand over")
        w.move(to_location, MovementKind.TRANSFER_IN, quantity, quantity, reference)
        return w.done()

    def send_allocated(
        self, from_location: LocationId, quantity: int, reference: str, at: datetime
    ) -> ItemChange:
        """Allocated units leave a location for the same fulfilment order elsewhere (a
        ship-to-store parcel sent to its store): they leave its on hand and allocated, and
        are at no location until :meth:`receive_allocated`."""
        w = _Work(self, at)
        self._send_allocated(w, from_location, quantity, reference, "send")
        return w.done()

    def receive_allocated(
        self, to_location: LocationId, quantity: int, reference: str, at: datetime
    ) -> ItemChange:
        """Allocated units sent by :meth:`send_allocated` arrive: they join the location's on
        hand and allocated."""
        require_units(quantity, "received quantity")
        w = _Work(self, at)
        w.move(to_location, MovementKind.TRANSFER_IN, quantity, quantity, reference)
        return w.done()

    def _send_allocated(
        self, w: _Work, from_location: LocationId, quantity: int, reference: str, verb: str
    ) -> None:
        require_units(quantity, f"quantity to {verb}")
        allocated = self.level(from_location).allocated
        if quantity > allocated:
            raise InsufficientStock(
                f"cannot {verb} {quantity} of {self.sku} from {from_location}: "
                f"{allocated} allocated there"
            )
        w.move(from_location, MovementKind.TRANSFER_OUT, -quantity, -quantity, reference)

    # --- supply and transfers -----------------------------------------------------------

    def expected_supply(self, location_id: LocationId, reference: str) -> Supply:
        """The supply still expected at a location under ``reference``;
        :class:`UnknownSupply` if there is none."""
        supply = self._find_supply(location_id, reference)
        if supply is None:
            raise UnknownSupply(
                f"no supply {reference!r} of {self.sku} is expected at {location_id}"
            )
        return supply

    def _find_supply(self, location_id: LocationId, reference: str) -> Supply | None:
        for supply in self.supply:
            if supply.reference == reference and supply.location_id == location_id:
                return supply
        return None

    def add_supply(self, supply: Supply, at: datetime) -> ItemChange:
        """Expect incoming supply; a reference already expected at that location is
        :class:`DuplicateSupply` (a feed that sends a PO line twice must not count it twice)."""
        require_units(supply.quantity, "supply quantity")
        if self._find_supply(supply.location_id, supply.reference) is not None:
            raise DuplicateSupply(
                f"supply {supply.reference!r} of {self.sku} is already expected at "
                f"{supply.location_id}; change it with update_supply"
            )
        w = _Work(self, at)
        w.supply = (*w.supply, supply)
        w.event(
            SupplyAdded,
            reference=supply.reference,
            location_id=supply.location_id,
            quantity=supply.quantity,
            eta=supply.eta,
        )
        return w.done()

    def update_supply(
        self,
        location_id: LocationId,
        reference: str,
        at: datetime,
        *,
        quantity: int | None = None,
        eta: datetime | None = None,
    ) -> ItemChange:
        """Change what expected supply still brings (``quantity``) or when (``eta``)."""
        current = self.expected_supply(location_id, reference)
        if quantity is not None:
            require_units(quantity, "supply quantity")
        updated = evolved(
            current,
            quantity=current.quantity if quantity is None else quantity,
            eta=current.eta if eta is None else eta,
        )
        w = _Work(self, at)
        w.supply = tuple(updated if s is current else s for s in w.supply)
        w.event(
            SupplyUpdated,
            reference=reference,
            location_id=location_id,
            quantity=updated.quantity,
            eta=updated.eta,
        )
        return w.done()

    def cancel_supply(self, location_id: LocationId, reference: str, at: datetime) -> ItemChange:
        """Expected supply will not come (a cancelled purchase order): it promises no date."""
        current = self.expected_supply(location_id, reference)
        w = _Work(self, at)
        w.supply = tuple(s for s in w.supply if s is not current)
        w.event(
            SupplyCancelled,
            reference=reference,
            location_id=location_id,
            quantity=current.quantity,
        )
        return w.done()

    def transfer_out(self, transfer: Transfer, at: datetime) -> ItemChange:
        """Send units to another location; they are in transit until received."""
        require_units(transfer.quantity, "transfer quantity")
        available = self.level(transfer.from_location).available
        if transfer.quantity > available:
            raise InsufficientStock(
                f"cannot transfer {transfer.quantity} of {self.sku} from "
                f"{transfer.from_location}: {available} available"
            )
        w = _Work(self, at)
        w.move(
            transfer.from_location,
            MovementKind.TRANSFER_OUT,
            -transfer.quantity,
            0,
            f"transfer {transfer.id}",
        )
        w.transfers = (*w.transfers, transfer)
        w.event(
            TransferShipped,
            transfer_id=transfer.id,
            from_location=transfer.from_location,
            to_location=transfer.to_location,
            quantity=transfer.quantity,
            eta=transfer.eta,
        )
        return w.done()

    def transfer_in_transit(self, transfer_id: str) -> Transfer:
        """The transfer on its way under ``transfer_id``; :class:`UnknownTransfer` if none."""
        transfer = next((t for t in self.transfers if t.id == transfer_id), None)
        if transfer is None:
            raise UnknownTransfer(f"no transfer {transfer_id!r} of {self.sku} is in transit")
        return transfer

    def reschedule_transfer(
        self, transfer_id: str, eta: datetime | None, at: datetime
    ) -> ItemChange:
        """A transfer on its way is now due by ``eta`` (None: it gives no date any more)."""
        current = self.transfer_in_transit(transfer_id)
        updated = evolved(current, eta=eta)
        w = _Work(self, at)
        w.transfers = tuple(updated if t is current else t for t in w.transfers)
        w.event(
            TransferDue,
            transfer_id=transfer_id,
            to_location=current.to_location,
            quantity=current.quantity,
            eta=eta,
        )
        return w.done()

    def receive_transfer(self, transfer_id: str, at: datetime) -> ItemChange:
        """A transfer arrives at its destination."""
        transfer = self.transfer_in_transit(transfer_id)
        w = _Work(self, at)
        w.move(
            transfer.to_location,
            MovementKind.TRANSFER_IN,
            transfer.quantity,
            0,
            f"transfer {transfer.id}",
        )
        w.transfers = tuple(t for t in w.transfers if t.id != transfer_id)
        w.event(
            TransferReceived,
            transfer_id=transfer_id,
            to_location=transfer.to_location,
            quantity=transfer.quantity,
        )
        return w.done()


class _Work:
    """A mutable working copy of an item for the length of one command."""

    def __init__(self, item: InventoryItem, at: datetime) -> None:
        self.item = item
        self.at = at
        self.levels = dict(item.levels)
        self.holds = list(item.holds)
        # On a busy SKU, the index's columns (keys, checkout or not, expiries) and the count
        # of checkout holds are kept in step with the holds; a few holds are simply scanned.
        self.keys: list[str] | None = None
        self.checkouts: list[bool] = []
        self.expiries: list[datetime | None] = []
        self.checkout_count = 0
        self.counts = _UNINDEXED  # replaced before any count changes
        self.index_before: _HoldIndex | None = None
        self.checkouts_added: list[tuple[str, datetime | None]] = []
        self.checkouts_changed = False  # a checkout hold removed, shrunk or extended
        if len(item.holds) >= _INDEXED_FROM:
            index = self.index_before = _HoldIndex.of(item.sku, item.holds)
            self.keys, self.checkouts = list(index.keys), list(index.checkouts)
            self.expiries, self.checkout_count = list(index.expiries), index.count
            self.counts = index.counts.working_copy()
        self.backorders = list(item.backorders)
        self.backorder_keys: list[str] | None = None  # order ids, on a SKU with many
        if len(item.backorders) >= _INDEXED_FROM:
            self.backorder_keys = list(_BackorderIndex.of(item.sku, item.backorders).keys)
        self.supply = item.supply  # rarely changed: replaced whole when they are
        self.transfers = item.transfers
        self.movements: list[StockMovement] = []
        self.events: list[DomainEvent] = []

    def level(self, location_id: LocationId) -> StockLevel:
        return self.levels.get(location_id, ZERO_LEVEL)

    def set_level(self, location_id: LocationId, level: StockLevel) -> None:
        self.levels[location_id] = level

    def move(
        self,
        location_id: LocationId,
        kind: MovementKind,
        on_hand: int,
        allocated: int,
        reference: str,
    ) -> None:
        level = self.level(location_id)
        self.levels[location_id] = StockLevel(
            level.on_hand + on_hand, level.allocated + allocated, level.reserved, level.safety_stock
        )
        self.movements.append(
            StockMovement(self.item.sku, location_id, kind, on_hand, allocated, reference, self.at)
        )

    def allocate(self, location_id: LocationId, quantity: int, reference: str) -> None:
        """Hard-allocate at a location, or raise InsufficientStock (nothing is kept then)."""
        require_units(quantity, "allocated quantity")
        available = self.level(location_id).available
        if quantity > available:
            raise InsufficientStock(
                f"cannot allocate {quantity} of {self.item.sku} at {location_id}: "
                f"{available} available"
            )
        self.move(location_id, MovementKind.ALLOCATION, 0, quantity, reference)

    def _reserve_at(self, location_id: LocationId, delta: int) -> None:
        level = self.level(location_id)
        self.levels[location_id] = StockLevel(
            level.on_hand, level.allocated, level.reserved + delta, level.safety_stock
        )

    def add_hold(self, hold: StockHold) -> None:
        self.holds.append(hold)
        if hold.line_id is None:
            self.checkouts_added.append((hold.key, hold.expires_at))
        if self.keys is not None:
            checkout = hold.line_id is None
            self.keys.append(hold.key)
            self.checkouts.append(checkout)
            self.expiries.append(hold.expires_at)
            self.checkout_count += checkout
            self.counts.add(hold.key, 1)
        elif len(self.holds) >= _INDEXED_FROM:  # one command placing many holds
            self._index_again(self.holds)
        self._reserve_at(hold.location_id, hold.quantity)

    def remove_hold_units(self, index: int, units: int) -> None:
        hold = self.holds[index]
        self.checkouts_changed |= hold.line_id is None
        self._reserve_at(hold.location_id, -units)
        if units == hold.quantity:
            del self.holds[index]
            if self.keys is not None:
                del self.keys[index], self.checkouts[index], self.expiries[index]
                self.checkout_count -= hold.line_id is None
                self.counts.add(hold.key, -1)
        else:
            self.holds[index] = evolved(hold, quantity=hold.quantity - units)

    def set_expiry(self, key: str, expires_at: datetime) -> None:
        """Move the expiry of checkout reservation ``key``'s holds."""
        for index in self.positions(key):
            hold = self.holds[index]
            if hold.line_id is None:
                self.checkouts_changed = True
                self.holds[index] = evolved(hold, expires_at=expires_at)
                if self.keys is not None:
                    self.expiries[index] = expires_at

    def drop_checkouts(self, keys: set[str]) -> dict[str, int]:
        """Remove the checkout holds of ``keys`` in one pass; returns units per key."""
        released: dict[str, int] = {}
        kept = []
        for hold in self.holds:
            if hold.line_id is None and hold.key in keys:
                self.checkouts_changed = True
                released[hold.key] = released.get(hold.key, 0) + hold.quantity
                self._reserve_at(hold.location_id, -hold.quantity)
            else:
                kept.append(hold)
        self.holds = kept
        if self.keys is not None:
            self._index_again(kept)
        return released

    def _index_again(self, holds: list[StockHold]) -> None:
        self.keys, self.checkouts, self.expiries, self.checkout_count, self.counts = _columns(holds)

    def release_order(self, order_id: OrderId) -> dict[LineId, int]:
        """Drop every hold and backorder of the order; returns units released per line."""
        released: dict[LineId, int] = {}
        for h in self.drop_holds(order_id, checkout=False):
            if h.line_id is not None:  # always: an order's holds name their line
                released[h.line_id] = released.get(h.line_id, 0) + h.quantity
        for index in reversed(self._backorder_positions(order_id)):
            b = self.backorders[index]
            released[b.line_id] = released.get(b.line_id, 0) + b.quantity
            self._drop_backorder(index)
        for line_id, units in sorted(released.items()):
            self.event(OrderStockReleased, order_id=order_id, line_id=line_id, quantity=units)
        return released

    def positions(self, key: str) -> list[int]:
        """Positions of the holds under ``key`` in the working copy, in order."""
        if self.keys is None:
            return [i for i, h in enumerate(self.holds) if h.key == key]
        return _positions(self.keys, key, self.counts.get(key))

    def drop_holds(self, key: str, *, checkout: bool) -> list[StockHold]:
        """Remove the holds under ``key`` (a checkout's, or an order's lines'); returns them
        in their order."""
        dropped = []
        for index in reversed(self.positions(key)):
            hold = self.holds[index]
            if (hold.line_id is None) is checkout:
                self.remove_hold_units(index, hold.quantity)
                dropped.append(hold)
        dropped.reverse()
        return dropped

    def place(
        self,
        quantity: int,
        locations: Iterable[LocationId],
        key: str,
        line_id: LineId | None,
        channel: ChannelId | None,
        expires_at: datetime | None,
        pickup: bool = False,
    ) -> int:
        """Hold up to ``quantity`` on ``locations`` in order; returns units held."""
        left = quantity
        for location_id in locations:
            if left == 0:
                break
            take = min(left, self.level(location_id).available)
            if take:
                self.add_hold(
                    StockHold(key, line_id, channel, location_id, take, self.at, expires_at, pickup)
                )
                left -= take
        return quantity - left

    def hold_line(
        self,
        order_id: OrderId,
        line_id: LineId,
        channel: ChannelId,
        quantity: int,
        pool: ChannelPool,
        pickup_location: LocationId | None,
    ) -> int:
        locations: tuple[LocationId, ...]
        if pickup_location is not None:
            limit, locations = self.level(pickup_location).available, (pickup_location,)
        else:
            limit, locations = pool.promisable_up_to(self.levels, quantity), pool.locations
        return self.place(min(quantity, limit), locations, order_id, line_id, channel, None)

    def _backorder_positions(self, order_id: OrderId) -> list[int]:
        """Positions of the order's backorders in the working copy, in order."""
        if self.backorder_keys is None:
            return [i for i, b in enumerate(self.backorders) if b.order_id == order_id]
        return _positions(self.backorder_keys, order_id)

    def _backorder_of(self, order_id: OrderId, line_id: LineId) -> int | None:
        """The position of a line's backorder (a line has at most one), or None."""
        for index in self._backorder_positions(order_id):
            if self.backorders[index].line_id == line_id:
                return index
        return None

    def _drop_backorder(self, index: int) -> None:
        del self.backorders[index]
        if self.backorder_keys is not None:
            del self.backorder_keys[index]

    def add_backorder(self, backorder: Backorder) -> None:
        index = self._backorder_of(backorder.order_id, backorder.line_id)
        if index is not None:
            b = self.backorders[index]
            self.backorders[index] = evolved(b, quantity=b.quantity + backorder.quantity)
            return
        self.backorders.append(backorder)
        if self.backorder_keys is not None:
            self.backorder_keys.append(backorder.order_id)
        elif len(self.backorders) >= _INDEXED_FROM:
            self.backorder_keys = [b.order_id for b in self.backorders]

    def shrink_backorder(self, order_id: OrderId, line_id: LineId, units: int) -> int:
        """Take up to ``units`` off a line's backorder; returns what is left to take."""
        index = self._backorder_of(order_id, line_id)
        if index is None:
            return units
        b = self.backorders[index]
        take = min(units, b.quantity)
        if take == b.quantity:
            self._drop_backorder(index)
        else:
            self.backorders[index] = evolved(b, quantity=b.quantity - take)
        return units - take

    def shrink_backorders(self, served: Mapping[tuple[OrderId, LineId], int]) -> None:
        """Take the units served off each line's backorder, in one pass."""
        if not served:
            return
        left, kept = dict(served), []
        for b in self.backorders:
            key = (b.order_id, b.line_id)
            take = min(left.get(key, 0), b.quantity)
            if take:
                left[key] -= take
            if take < b.quantity:
                kept.append(evolved(b, quantity=b.quantity - take) if take else b)
        self.backorders = kept
        if self.backorder_keys is not None:
            self.backorder_keys = [b.order_id for b in kept]

    def settle_supply(self, reference: str, location_id: LocationId, quantity: int) -> None:
        for index, s in enumerate(self.supply):
            if s.reference == reference and s.location_id == location_id:
                left = s.quantity - quantity
                rest = (evolved(s, quantity=left),) if left > 0 else ()
                self.supply = (*self.supply[:index], *rest, *self.supply[index + 1 :])
                return

    def event(self, event_type: type[DomainEvent], **fields: object) -> None:
        self.events.append(
            event_type(version=self.item.version + 1, at=self.at, sku=self.item.sku, **fields)  # type: ignore[call-arg]
        )

    def done(self) -> ItemChange:
        holds, backorders = tuple(self.holds), tuple(self.backorders)
        if self.keys is not None and len(holds) >= _INDEXED_FROM:
            columns = (self.keys, self.checkouts, self.expiries, self.checkout_count, self.counts)
            parent = None if self.checkouts_changed else self.item.holds
            hold_index = _HoldIndex(holds, *columns, parent, tuple(self.checkouts_added))
            hold_index.carry_earliest(self.index_before)
            hold_index.keep(self.item.sku)
        if self.backorder_keys is not None and len(backorders) >= _INDEXED_FROM:
            index = _BackorderIndex(backorders, self.backorder_keys)
            _keep_index(_BACKORDER_INDEXES, self.item.sku, index)
        item = InventoryItem(
            sku=self.item.sku,
            levels=self.levels,
            holds=holds,
            backorders=backorders,
            supply=self.supply,
            transfers=self.transfers,
            version=self.item.version + 1,
        )
        return ItemChange(item, tuple(self.movements), tuple(self.events))
