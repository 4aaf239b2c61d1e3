"""Inventory use cases: locations, channels, stock, reservations, transfers, supply, queries."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from omscore._checks import (
    members,
    optional_text,
    require_flag,
    require_mapping,
    require_names,
    require_note,
    require_text,
)
from omscore._service.core import (
    IncomingSupply,
    LocationAvailability,
    QueuedBackorder,
    ServiceCore,
    StockPosition,
    _apply_feed,
    _channel_id,
    _check_wait,
    _distance,
    _expiry,
    _item,
    _load_order,
    _pickup_problems,
    _require_sku,
    _require_ttl,
    _reserved_skus,
    _serve_all_backorders,
)
from omscore._stock import StockSession
from omscore._values import evolved
from omscore.errors import (
    DuplicateLocation,
    InvalidArgument,
    InvalidChannelConfig,
    InvalidLocation,
    InvalidQuantity,
    InvalidQuery,
    UnknownLocation,
)
from omscore.events import (
    ChannelConfigured,
    LocationAdded,
    LocationUpdated,
)
from omscore.geo import GeoPoint
from omscore.ids import ChannelId, LineId, LocationId, OrderId, Sku, SkuQuantities
from omscore.inventory import (
    Capability,
    Channel,
    Discrepancy,
    InventoryItem,
    ItemChange,
    Location,
    LocationKind,
    MovementKind,
    Reservation,
    StockLevel,
    StockMovement,
    Supply,
    Transfer,
)
from omscore.inventory.item import require_units
from omscore.inventory.location import capabilities_of
from omscore.orders import Delivery
from omscore.ports import UnitOfWork, checked_cutoff, checked_limit


class InventoryUseCases(ServiceCore):
    """Inventory use cases: locations, channels, stock, reservations, transfers, supply, queries."""

    def add_location(self, location: Location, idempotency_key: str | None = None) -> Location:
        """Add a stock point to the network."""
        if not isinstance(location, Location):
            raise InvalidLocation(f"expected a Location, got {type(location).__name__}")

        def work(uow: UnitOfWork, now: datetime) -> Location:
            if uow.locations.get(location.id) is not None:
                raise DuplicateLocation(f"location {location.id!r} already exists")
            stored = evolved(location, version=1)
            uow.locations.put(stored)
            uow.record(
                [LocationAdded(version=1, at=now, location_id=stored.id, kind=stored.kind.value)]
            )
            return stored

        return self._run("add_location", {"location": location}, idempotency_key, work)

    def update_location(
        self,
        location_id: str,
        *,
        active: bool | None = None,
        capabilities: Iterable[Capability] | None = None,
        priority: int | None = None,
        daily_capacity: int | Literal["unchanged"] | None = "unchanged",
        time_zone: str | Literal["unchanged"] | None = "unchanged",
        idempotency_key: str | None = None,
    ) -> Location:
        """Change a location's settings: deactivate it, its capabilities, priority, daily
        capacity or time zone. ``daily_capacity=None`` lifts the cap and ``time_zone=None``
        counts its days in the clock's zone again; an argument left out keeps its setting.

        Deactivating a location moves the stock it holds for orders and carts to the rest of
        their channels' pools (what no other location has is backordered, or leaves the
        cart), so those units stay promised; a pickup's hold stays at its store.
        Reactivating it serves what waits for stock. New capabilities do the same for each
        channel that ``requires`` one: losing it leaves the channel's pool, gaining it
        joins."""
        changes: dict[str, Any] = {}
        if active is not None:
            require_flag(active, "active")
            changes["active"] = active
        if capabilities is not None:
            changes["capabilities"] = capabilities_of(capabilities)
        if priority is not None:
            changes["priority"] = priority
        if daily_capacity != "unchanged":
            changes["daily_capacity"] = daily_capacity
        if time_zone != "unchanged":
            changes["time_zone"] = time_zone

        def work(uow: UnitOfWork, now: datetime) -> Location:
            current = (
                uow.locations.get(LocationId(location_id)) if isinstance(location_id, str) else None
            )
            if current is None:
                raise UnknownLocation(f"no location {location_id!r}")
            updated = evolved(current, version=current.version + 1, **changes)
            stays_active = current.active and updated.active
            demanding = [c for c in uow.channels.all() if c.requires] if stays_active else []
            before = _pools_of(StockSession(uow, now), demanding)
            uow.locations.put(updated)
            uow.record(
                [
                    LocationUpdated(
                        version=updated.version,
                        at=now,
                        location_id=updated.id,
                        active=updated.active,
                    )
                ]
            )
            if updated.active and not current.active:
                _serve_all_backorders(StockSession(uow, now))
            if current.active and not updated.active:
                self._move_holds_off(StockSession(uow, now), updated.id)
            if demanding:
                self._follow_pools(StockSession(uow, now), updated.id, before)
            return updated

        return self._run(
            "update_location", {"location_id": location_id, **changes}, idempotency_key, work
        )

    def _follow_pools(
        self, stock: StockSession, location_id: LocationId, before: dict[ChannelId, set[str]]
    ) -> None:
        """After a location's capabilities changed: the channels whose pools it left hold
        their units elsewhere; if it joined one, it serves what waits for stock."""
        joined = False
        for channel, pooled in before.items():
            now_in = location_id in stock.pool(channel).locations
            if location_id in pooled and not now_in:
                self._move_holds_off(stock, location_id, channel=channel)
            joined = joined or (now_in and location_id not in pooled)
        if joined:
            _serve_all_backorders(stock)

    def _move_holds_off(
        self, stock: StockSession, location_id: LocationId, channel: ChannelId | None = None
    ) -> None:
        """Hold the units held at a location (for ``channel``'s orders and carts, or for
        every one's) elsewhere in their pools: it was deactivated, or left the channel's."""
        for sku in stock.uow.inventory.reserved_at(location_id):
            there = [
                h
                for h in stock.item(sku).holds
                if h.location_id == location_id and (channel is None or h.channel == channel)
            ]
            # Placed orders before carts, oldest first: they were promised first.
            orders = sorted({(h.since, h.key) for h in there if not h.is_checkout})
            for order_id in dict.fromkeys(OrderId(key) for _, key in orders):
                order = _load_order(stock.uow, order_id)
                if order.delivery.pickup_location == location_id:
                    continue  # the customer collects there: the hold waits for the store
                stock.keep(stock.item(sku).release_order(order_id, stock.now)[0])
                self._sync_holds(stock, order)
            for key in sorted({h.key for h in there if h.is_checkout and not h.pickup}):
                self._move_cart(stock, sku, key)  # a pickup cart waits for its store
        stock.flush()

    def _move_cart(self, stock: StockSession, sku: Sku, key: str) -> None:
        """Reserve a cart's units of ``sku`` again in its pool, as many as it promises."""
        held = stock.item(sku).checkout_holds(key)
        quantity = sum(h.quantity for h in held)
        expires_at = min(h.expires_at for h in held if h.expires_at is not None)
        now, pool = stock.now, stock.pool(held[0].channel)
        item = stock.apply(
            sku, lambda i: i.release_reservation(key, now, cause="location deactivated")
        )
        again = min(quantity, pool.promisable_up_to(item.levels, quantity))
        if again:
            stock.apply(sku, lambda i: i.reserve(key, again, pool, expires_at, now))

    def locations(self) -> list[Location]:
        """Every location, sorted by id."""
        return self._read(lambda uow: list(uow.locations.all()))

    def configure_channel(
        self,
        channel: str,
        *,
        location_ids: Iterable[str] | None = None,
        kinds: Iterable[LocationKind | str] | None = None,
        buffer: int = 0,
        buffer_percent: int | Decimal = 0,
        low_stock_threshold: int | None = None,
        requires: Iterable[Capability | str] = (),
        idempotency_key: str | None = None,
    ) -> Channel:
        """Say which locations feed ``channel`` (by id and/or kind, and only those with the
        capabilities it ``requires``) and what it holds back.

        A channel never configured sells from every active location with no buffer. The
        channel's orders and carts holding units at a location that no longer feeds it hold
        them in its new pool instead (what the pool cannot hold is backordered, or leaves
        the cart), so the channel never promises more than its pool has; a pickup's hold,
        and a click & collect cart's, stays at its store. A location that joins the pool
        serves what waits for stock.
        """
        require_text(channel, "channel", InvalidChannelConfig)
        ids = None
        if location_ids is not None:
            names = require_names(location_ids, "location_ids", InvalidChannelConfig)
            ids = frozenset(LocationId(x) for x in names)
        kind_set = (
            members(kinds, LocationKind, "location kinds", InvalidChannelConfig)
            if kinds is not None
            else None
        )
        needed = members(requires, Capability, "required capabilities", InvalidChannelConfig)
        proposed = Channel(
            id=ChannelId(channel),
            location_ids=ids,
            kinds=kind_set,
            buffer=buffer,
            buffer_percent=buffer_percent,
            low_stock_threshold=low_stock_threshold,
            requires=needed,
        )

        def work(uow: UnitOfWork, now: datetime) -> Channel:
            if ids is not None:
                unknown = sorted(x for x in ids if uow.locations.get(x) is None)
                if unknown:
                    raise InvalidChannelConfig(
                        f"channel {channel!r} names unknown locations {unknown}"
                    )
            current = uow.channels.get(proposed.id)
            config = evolved(proposed, version=(current.version if current else 0) + 1)
            before = set(StockSession(uow, now).pool(config.id).locations)
            uow.channels.put(config)
            uow.record([ChannelConfigured(version=config.version, at=now, channel=config.id)])
            stock = StockSession(uow, now)
            after = set(stock.pool(config.id).locations)
            for location_id in sorted(before - after):
                self._move_holds_off(stock, location_id, channel=config.id)
            if after - before:
                _serve_all_backorders(stock)
            stock.flush()
            return config

        arguments = {
            "channel": channel,
            "location_ids": ids,
            "kinds": kind_set,
            "buffer": buffer,
            "buffer_percent": proposed.buffer_percent,
            "low_stock_threshold": low_stock_threshold,
            "requires": needed,
        }
        return self._run("configure_channel", arguments, idempotency_key, work)

    def _stock_command(
        self,
        command: str,
        arguments: Mapping[str, object],
        idempotency_key: str | None,
        location_id: str,
        sku: str,
        step: Callable[[InventoryItem, datetime], ItemChange],
    ) -> StockLevel:
        _require_sku(sku)

        def work(uow: UnitOfWork, now: datetime) -> StockLevel:
            stock = StockSession(uow, now)
            location = stock.location(location_id)
            stock.apply(sku, lambda item: step(item, now))
            stock.flush()
            return stock.item(sku).level(location.id)

        return self._run(
            command, {"location_id": location_id, "sku": sku, **arguments}, idempotency_key, work
        )

    def receive(
        self,
        location_id: str,
        sku: str,
        quantity: int,
        reference: str = "",
        idempotency_key: str | None = None,
    ) -> StockLevel:
        """Units arrive at a location (a receipt in the ledger); backorders are served first."""
        require_note(reference, "reference")
        require_units(quantity, "received quantity")
        loc = LocationId(location_id)
        return self._stock_command(
            "receive",
            {"quantity": quantity, "reference": reference},
            idempotency_key,
            location_id,
            sku,
            lambda item, now: item.receive(loc, quantity, reference, now),
        )

    def adjust(
        self,
        location_id: str,
        sku: str,
        delta: int,
        reason: str = "",
        *,
        damage: bool = False,
        idempotency_key: str | None = None,
    ) -> StockLevel:
        """Correct on hand by ``delta`` (``damage=True`` records it as damage)."""
        require_flag(damage, "damage")
        require_note(reason, "reason")
        loc = LocationId(location_id)
        kind = MovementKind.DAMAGE if damage else MovementKind.ADJUSTMENT
        return self._stock_command(
            "adjust",
            {"delta": delta, "reason": reason, "damage": damage},
            idempotency_key,
            location_id,
            sku,
            lambda item, now: item.adjust(loc, delta, reason, now, kind),
        )

    def count(
        self, location_id: str, sku: str, on_hand: int, idempotency_key: str | None = None
    ) -> StockLevel:
        """A cycle count: set on hand to what was counted, posting the difference."""
        loc = LocationId(location_id)
        return self._stock_command(
            "count",
            {"on_hand": on_hand},
            idempotency_key,
            location_id,
            sku,
            lambda item, now: item.count(loc, on_hand, now),
        )

    def set_safety_stock(
        self, location_id: str, sku: str, units: int = 0, idempotency_key: str | None = None
    ) -> StockLevel:
        """Units the location keeps back from every channel."""
        loc = LocationId(location_id)
        return self._stock_command(
            "set_safety_stock",
            {"units": units},
            idempotency_key,
            location_id,
            sku,
            lambda item, now: item.set_safety_stock(loc, units, now),
        )

    def receive_many(
        self,
        positions: Iterable[StockPosition | tuple[str, str, int]],
        *,
        mode: Literal["delta", "absolute"] = "delta",
        reference: str = "stock feed",
        idempotency_key: str | None = None,
    ) -> int:
        """Apply a stock feed in one transaction: each position either adds units
        (``mode="delta"``, a receipt or a negative adjustment) or sets on hand
        (``mode="absolute"``, a count). All or nothing; returns the positions applied."""
        require_note(reference, "reference")
        feed = _feed_positions(positions)
        if mode not in ("delta", "absolute"):
            raise InvalidQuantity(f"feed mode must be 'delta' or 'absolute', got {mode!r}")
        by_sku: dict[str, list[StockPosition]] = {}
        for position in feed:
            _require_sku(position.sku)
            by_sku.setdefault(position.sku, []).append(position)

        def work(uow: UnitOfWork, now: datetime) -> int:
            stock = StockSession(uow, now)
            for sku, rows in sorted(by_sku.items()):
                for row in rows:
                    stock.location(row.location_id)
                stock.keep(_apply_feed(stock.item(sku), rows, mode, reference, now))
            stock.flush()
            return len(feed)

        key_args = {"positions": feed, "mode": mode, "reference": reference}
        return self._run("receive_many", key_args, idempotency_key, work)

    def reserve(
        self,
        sku: str,
        quantity: int,
        *,
        channel: str | None = None,
        ttl: timedelta,
        key: str,
        idempotency_key: str | None = None,
        pickup_location: str | None = None,
    ) -> Reservation:
        """Hold ``quantity`` of a SKU for checkout ``key`` until ``ttl`` from now; refused
        beyond the channel's ATP. With ``pickup_location`` (a cart to be collected there),
        the units are held at that store alone, refused beyond what it has available, and
        stay there when it leaves the channel's pool or closes for a while. An
        order placed with ``reservation_key=key`` takes it over (a pickup order only what
        is held at its store)."""
        _require_sku(sku)
        _require_ttl(ttl)
        require_text(key, "reservation key")
        optional_text(pickup_location, "pickup_location")
        pool_channel = _channel_id(channel)

        def work(uow: UnitOfWork, now: datetime) -> Reservation:
            stock = StockSession(uow, now)
            pool = stock.pool(pool_channel)
            expires_at = _expiry(now, ttl)
            store = None if pickup_location is None else _pickup_store(stock, pickup_location)
            item = stock.apply(
                sku, lambda i: i.reserve(key, quantity, pool, expires_at, now, store)
            )
            stock.flush()
            return item.reservation(key)

        arguments = {
            "sku": sku,
            "quantity": quantity,
            "channel": channel,
            "ttl": str(ttl),
            "key": key,
        }
        if pickup_location is not None:  # a key recorded before carts had a store matches
            arguments["pickup_location"] = pickup_location
        return self._run("reserve", arguments, idempotency_key, work)

    def extend_reservation(
        self, key: str, ttl: timedelta, idempotency_key: str | None = None
    ) -> list[Reservation]:
        """Let every SKU reserved under ``key`` live ``ttl`` from now."""
        require_text(key, "reservation key")
        _require_ttl(ttl)

        def work(uow: UnitOfWork, now: datetime) -> list[Reservation]:
            stock, expires_at = StockSession(uow, now), _expiry(now, ttl)
            extended = [
                stock.apply(sku, lambda i: i.extend(key, expires_at, now)).reservation(key)
                for sku in _reserved_skus(uow, key)
            ]
            stock.flush()
            return extended

        return self._run("extend_reservation", {"key": key, "ttl": str(ttl)}, idempotency_key, work)

    def release_reservation(self, key: str, idempotency_key: str | None = None) -> int:
        """End the checkout reservation ``key`` on every SKU; returns the units released."""
        require_text(key, "reservation key")

        def work(uow: UnitOfWork, now: datetime) -> int:
            stock = StockSession(uow, now)
            units = 0
            for sku in _reserved_skus(uow, key):
                units += stock.item(sku).reservation(key).quantity
                stock.apply(sku, lambda i: i.release_reservation(key, now))
            stock.flush()
            return units

        return self._run("release_reservation", {"key": key}, idempotency_key, work)

    def reservations(self, key: str) -> list[Reservation]:
        """The live reservations under ``key``, one per SKU."""
        require_text(key, "reservation key")
        return self._read(
            lambda uow: [_item(uow, s).reservation(key) for s in uow.inventory.reserved_under(key)]
        )

    def expire_reservations(self) -> int:
        """End every checkout reservation whose time is up; returns how many ended."""

        def work(uow: UnitOfWork, now: datetime) -> int:
            stock = StockSession(uow, now)
            expired = 0
            for sku in uow.inventory.expiring(now):
                change, n = stock.item(sku).expire(now)
                stock.keep(change)
                expired += n
            stock.flush()
            return expired

        return self._run("expire_reservations", {}, None, work)

    def transfer(
        self,
        sku: str,
        from_location: str,
        to_location: str,
        quantity: int,
        reference: str = "",
        idempotency_key: str | None = None,
        *,
        eta: datetime | None = None,
    ) -> Transfer:
        """Send units between locations; in transit they are available at neither. With an
        ``eta`` they are incoming supply at the destination: promise dates and backorder
        dates count on them from that time."""
        require_note(reference, "reference")
        _require_sku(sku)
        if eta is not None:
            _require_eta(eta, "transfer eta")

        def work(uow: UnitOfWork, now: datetime) -> Transfer:
            stock = StockSession(uow, now)
            source, target = stock.location(from_location), stock.location(to_location)
            if source.id == target.id:
                raise InvalidLocation(f"a transfer needs two locations, got {source.id} twice")
            transfer = Transfer(
                self._new_id("T"), source.id, target.id, quantity, now, reference, eta
            )
            stock.apply(sku, lambda item: item.transfer_out(transfer, now))
            stock.flush()
            return transfer

        arguments = {
            "sku": sku,
            "from": from_location,
            "to": to_location,
            "quantity": quantity,
            "reference": reference,
        }
        if eta is not None:  # a key recorded before transfers had an ETA still matches
            arguments["eta"] = eta
        return self._run("transfer", arguments, idempotency_key, work)

    def receive_transfer(
        self, sku: str, transfer_id: str, idempotency_key: str | None = None
    ) -> StockLevel:
        """A transfer arrives: its units join on hand at the destination."""
        _require_sku(sku)

        def work(uow: UnitOfWork, now: datetime) -> StockLevel:
            stock = StockSession(uow, now)
            transfer = stock.item(sku).transfer_in_transit(transfer_id)
            item = stock.apply(sku, lambda i: i.receive_transfer(transfer_id, now))
            stock.flush()
            return item.level(transfer.to_location)

        return self._run(
            "receive_transfer", {"sku": sku, "transfer_id": transfer_id}, idempotency_key, work
        )

    def reschedule_transfer(
        self,
        sku: str,
        transfer_id: str,
        eta: datetime | None,
        idempotency_key: str | None = None,
    ) -> Transfer:
        """A transfer on its way is now due by ``eta`` (the truck is late, or early); None
        takes its date away. Promise and backorder dates follow at once."""
        _require_sku(sku)
        if eta is not None:
            _require_eta(eta, "transfer eta")

        def work(uow: UnitOfWork, now: datetime) -> Transfer:
            stock = StockSession(uow, now)
            item = stock.apply(sku, lambda i: i.reschedule_transfer(transfer_id, eta, now))
            stock.flush()
            return item.transfer_in_transit(transfer_id)

        arguments = {"sku": sku, "transfer_id": transfer_id, "eta": eta}
        return self._run("reschedule_transfer", arguments, idempotency_key, work)

    def add_supply(
        self,
        sku: str,
        location_id: str,
        quantity: int,
        eta: datetime,
        reference: str,
        idempotency_key: str | None = None,
    ) -> Supply:
        """Expect incoming supply (a purchase order line) of ``sku`` at a location by ``eta``;
        ``receive`` with the same reference there settles it. The reference names the
        supply: one already expected for that SKU at that location is
        :class:`~omscore.errors.DuplicateSupply`."""
        require_text(reference, "supply reference")
        _require_sku(sku)
        _require_eta(eta)

        def work(uow: UnitOfWork, now: datetime) -> Supply:
            stock = StockSession(uow, now)
            supply = Supply(reference, stock.location(location_id).id, quantity, eta)
            stock.apply(sku, lambda item: item.add_supply(supply, now))
            stock.flush()
            return supply

        arguments = {
            "sku": sku,
            "location_id": location_id,
            "quantity": quantity,
            "eta": eta,
            "reference": reference,
        }
        return self._run("add_supply", arguments, idempotency_key, work)

    def update_supply(
        self,
        sku: str,
        location_id: str,
        reference: str,
        *,
        quantity: int | None = None,
        eta: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Supply:
        """Change expected supply: the units it still brings (a PO line changed) or its
        ``eta`` (the vendor's new date). Promise dates follow at once. Unknown supply is
        :class:`~omscore.errors.UnknownSupply`."""
        require_text(reference, "supply reference")
        _require_sku(sku)
        if quantity is None and eta is None:
            raise InvalidArgument("update_supply needs a new quantity, a new eta or both")
        if quantity is not None:
            require_units(quantity, "supply quantity")
        if eta is not None:
            _require_eta(eta)

        def work(uow: UnitOfWork, now: datetime) -> Supply:
            stock = StockSession(uow, now)
            location = stock.location(location_id).id
            item = stock.apply(
                sku,
                lambda i: i.update_supply(location, reference, now, quantity=quantity, eta=eta),
            )
            stock.flush()
            return item.expected_supply(location, reference)

        arguments = {
            "sku": sku,
            "location_id": location_id,
            "reference": reference,
            "quantity": quantity,
            "eta": eta,
        }
        return self._run("update_supply", arguments, idempotency_key, work)

    def cancel_supply(
        self, sku: str, location_id: str, reference: str, idempotency_key: str | None = None
    ) -> Supply:
        """Expected supply will not come (the purchase order is cancelled): it no longer
        gives a promise date. Returns the supply as it was expected."""
        require_text(reference, "supply reference")
        _require_sku(sku)

        def work(uow: UnitOfWork, now: datetime) -> Supply:
            stock = StockSession(uow, now)
            location = stock.location(location_id).id
            cancelled = stock.item(sku).expected_supply(location, reference)
            stock.apply(sku, lambda i: i.cancel_supply(location, reference, now))
            stock.flush()
            return cancelled

        arguments = {"sku": sku, "location_id": location_id, "reference": reference}
        return self._run("cancel_supply", arguments, idempotency_key, work)

    def promise_date(self, sku: str, quantity: int, channel: str | None = None) -> datetime | None:
        """When ``quantity`` units can be promised on a channel: now if ATP covers them, the
        earliest ETA of supply that does, or None."""
        require_units(quantity, "quantity to promise")
        _require_sku(sku)
        pool_channel = _channel_id(channel)
        now = self._now()

        def read(uow: UnitOfWork) -> datetime | None:
            stock = StockSession(uow, now)
            pool = stock.pool(pool_channel)
            return stock.item(sku).promise_date(quantity, pool, now)

        return self._read(read)

    def backorder_dates(self, order_id: str) -> dict[LineId, datetime | None]:
        """When each backordered line of an order will be held in full: the ETA of the
        incoming supply that completes it, or None when the supply expected does not cover
        it. Lines with nothing backordered are left out.

        Receipts serve backorders oldest first, before any newer order, so this holds
        while the supply comes as expected; unannounced stock or a cancelled order ahead
        makes it sooner, a late or cancelled purchase order later."""
        now = self._now()

        def read(uow: UnitOfWork) -> dict[LineId, datetime | None]:
            order = _load_order(uow, order_id)
            stock = StockSession(uow, now)
            dates: dict[tuple[OrderId, LineId], datetime | None] = {}
            for sku in dict.fromkeys(line.sku for line in order.lines):
                item = stock.item(sku)
                if any(b.order_id == order.id for b in item.backorders):
                    when = item.backorder_dates(stock.pool, stock.is_active, now, order_id=order.id)
                    dates.update(when)
            return {
                line.id: dates[(order.id, line.id)]
                for line in order.lines
                if (order.id, line.id) in dates
            }

        return self._read(read)

    def incoming_supply(
        self,
        *,
        due_by: datetime | None = None,
        location_id: str | None = None,
        limit: int | None = None,
    ) -> list[IncomingSupply]:
        """Supply still expected (purchase orders, and transfers with an ETA), earliest ETA
        first, so the latest lead: every SKU's, or what is due at or before ``due_by`` (the
        clock's now lists what is overdue), at every location or at ``location_id``, at
        most ``limit`` of them."""
        if due_by is not None:
            checked_cutoff(due_by, "due_by")
        checked_limit(limit)
        now = self._now()

        def read(uow: UnitOfWork) -> list[IncomingSupply]:
            where = None
            if location_id is not None:
                where = StockSession(uow, now).location(location_id).id
            found = []
            for sku in uow.inventory.supply_due(due_by):
                item = _item(uow, sku)
                waiting = sum(b.quantity for b in item.backorders)
                found += [
                    IncomingSupply(sku, a, max(now - a.eta, timedelta(0)), waiting)
                    for a in item.expected_arrivals()
                    if (due_by is None or a.eta <= due_by)
                    and (where is None or a.location_id == where)
                ]
            found.sort(
                key=lambda i: (i.arrival.eta, i.sku, i.arrival.location_id, i.arrival.reference)
            )
            return found[:limit]

        return self._read(read)

    def backorder_queue(
        self,
        *,
        sku: str | None = None,
        older_than: timedelta | None = None,
        limit: int | None = None,
    ) -> list[QueuedBackorder]:
        """Units waiting for stock, longest waiting first (ties by order and line), each
        with the date the supply expected gives it: every SKU's or one ``sku``'s, those
        waiting at least ``older_than``, at most ``limit``. What a shop reads to tell its
        customers, or to cancel what has waited too long. Bad arguments raise
        :class:`~omscore.errors.InvalidQuery`."""
        if sku is not None:
            require_text(sku, "sku", InvalidQuery)
        _check_wait(older_than)
        checked_limit(limit)
        now = self._now()

        def read(uow: UnitOfWork) -> list[QueuedBackorder]:
            stock = StockSession(uow, now)
            skus = uow.inventory.backordered() if sku is None else [Sku(sku)]
            found: list[QueuedBackorder] = []
            for each in skus:
                found += _waiting(stock, stock.item(each), now, older_than)
            found.sort(key=lambda q: (q.since, q.order_id, q.line_id))
            return found[:limit]

        return self._read(read)

    def available(self, sku: str, channel: str | None = None) -> int:
        """Available to promise on a channel (``None``: every active location, no buffer)."""
        _require_sku(sku)
        pool_channel = _channel_id(channel)

        def read(uow: UnitOfWork) -> int:
            stock = StockSession(uow, self._now())
            pool = stock.pool(pool_channel)
            item = uow.inventory.get(Sku(sku))
            return item.atp(pool) if item is not None else 0

        return self._read(read)

    def channel_pool(self, channel: str) -> tuple[LocationId, ...]:
        """The locations whose stock ``channel`` sells now, in the order it holds from
        (priority, then id): its configured ids and kinds, active, with the capabilities it
        requires (every active location for a channel never configured)."""
        require_text(channel, "channel", InvalidChannelConfig)
        return self._read(
            lambda uow: StockSession(uow, self._now()).pool(ChannelId(channel)).locations
        )

    def available_many(self, skus: Iterable[str], channel: str | None = None) -> dict[str, int]:
        """ATP of several SKUs on one channel, read in one go."""
        wanted = require_names(skus, "skus", InvalidQuantity)
        pool_channel = _channel_id(channel)

        def read(uow: UnitOfWork) -> dict[str, int]:
            stock = StockSession(uow, self._now())
            pool = stock.pool(pool_channel)
            result: dict[str, int] = {}
            for sku in wanted:
                item = uow.inventory.get(Sku(sku))
                result[sku] = item.atp(pool) if item is not None else 0
            return result

        return self._read(read)

    def stock_matrix(
        self, skus: Iterable[str], location_ids: Iterable[str] | None = None
    ) -> dict[str, dict[str, int]]:
        """Available units per SKU per location (every location when none are named)."""
        wanted = require_names(skus, "skus", InvalidQuantity)
        named = require_names(location_ids, "location_ids") if location_ids is not None else None

        def read(uow: UnitOfWork) -> dict[str, dict[str, int]]:
            locations = (
                [LocationId(x) for x in named]
                if named is not None
                else [loc.id for loc in uow.locations.all()]
            )
            matrix: dict[str, dict[str, int]] = {}
            for sku in wanted:
                levels = _item(uow, sku).levels
                matrix[sku] = {
                    loc: levels[loc].available if loc in levels else 0 for loc in locations
                }
            return matrix

        return self._read(read)

    def stock(self, location_id: str, sku: str) -> StockLevel:
        """The stock level of a SKU at a known location (zero if it never had any)."""

        def read(uow: UnitOfWork) -> StockLevel:
            location = StockSession(uow, self._now()).location(location_id)
            return _item(uow, sku).level(location.id)

        return self._read(read)

    def availability(
        self,
        skus: str | SkuQuantities,
        *,
        near: GeoPoint | None = None,
        radius_km: float | None = None,
        capability: Capability | None = None,
    ) -> list[LocationAvailability]:
        """Store locator: active locations that can serve a SKU (``skus="SKU-1"``, any
        available unit) or a whole basket (``{"SKU-1": 2, "SKU-2": 1}``), within
        ``radius_km`` of ``near``, nearest first (then by id). ``available`` is the number of
        whole baskets the location can serve."""
        basket = (
            {skus: 1}
            if isinstance(skus, str)
            else dict(require_mapping(skus, "skus (a SKU, or SKUs with units)", InvalidQuantity))
        )
        if not basket:
            raise InvalidQuantity("a basket needs at least one SKU")
        _check_locator(near, radius_km, capability)
        for sku, units in basket.items():
            _require_sku(sku)
            require_units(units, f"basket quantity of {sku}")

        def read(uow: UnitOfWork) -> list[LocationAvailability]:
            items = {sku: _item(uow, sku) for sku in basket}
            found = []
            for location in uow.locations.all():
                if not location.active or (capability and not location.can(capability)):
                    continue
                distance = _distance(near, location.geo)
                if radius_km is not None and (distance is None or distance > radius_km):
                    continue
                baskets = min(items[s].level(location.id).available // n for s, n in basket.items())
                if baskets > 0:
                    found.append(
                        LocationAvailability(
                            location.id, baskets, distance, location.kind, location.capabilities
                        )
                    )
            return sorted(
                found,
                key=lambda a: (
                    a.distance_km if a.distance_km is not None else float("inf"),
                    a.location_id,
                ),
            )

        return self._read(read)

    def inventory(self, sku: str) -> InventoryItem:
        """The whole inventory item of a SKU: levels, holds, backorders, supply, transfers."""
        return self._read(lambda uow: _item(uow, sku))

    def ledger(self, sku: str | None = None, location_id: str | None = None) -> list[StockMovement]:
        """Ledger rows in commit order, optionally for one SKU and/or location."""
        optional_text(sku, "sku", InvalidQuery)
        optional_text(location_id, "location_id", InvalidQuery)
        return self._read(
            lambda uow: uow.inventory.movements(
                Sku(sku) if sku is not None else None,
                LocationId(location_id) if location_id is not None else None,
            )
        )

    def reconcile(self) -> list[Discrepancy]:
        """Stock levels that disagree with their ledger or their holds; empty when sound."""

        def read(uow: UnitOfWork) -> list[Discrepancy]:
            expected = uow.inventory.ledger_totals()
            found: list[Discrepancy] = []
            for sku in uow.inventory.skus():
                item = _item(uow, sku)
                for loc in sorted(set(item.levels) | {k[0] for k in expected if k[1] == sku}):
                    level = item.level(loc)
                    on_hand, allocated = expected.get((loc, sku), (0, 0))
                    if level.on_hand != on_hand:
                        found.append(Discrepancy(loc, sku, "on_hand", level.on_hand, on_hand))
                    if level.allocated != allocated:
                        found.append(Discrepancy(loc, sku, "allocated", level.allocated, allocated))
                found += item.discrepancies()
            return found

        return self._read(read)


def _waiting(
    stock: StockSession, item: InventoryItem, now: datetime, older_than: timedelta | None
) -> list[QueuedBackorder]:
    """The item's backorders waiting at least ``older_than``, dated by its expected supply."""
    waiting = [b for b in item.backorders if older_than is None or now - b.since >= older_than]
    if not waiting:
        return []
    dates = item.backorder_dates(stock.pool, stock.is_active, now)
    return [
        QueuedBackorder(
            b.order_id,
            b.line_id,
            item.sku,
            b.quantity,
            b.since,
            now - b.since,
            dates.get((b.order_id, b.line_id)),
        )
        for b in waiting
    ]


def _pickup_store(stock: StockSession, pickup_location: str) -> LocationId:
    """The store a cart is reserved at, if it takes pickups now."""
    problems = _pickup_problems(Delivery.pickup(pickup_location), stock)
    if problems:
        raise InvalidLocation("; ".join(problems))
    return LocationId(pickup_location)


def _require_eta(eta: object, name: str = "supply eta") -> None:
    if not isinstance(eta, datetime) or eta.tzinfo is None:
        raise InvalidQuantity(f"{name} must be a timezone-aware datetime, got {eta!r}")


def _feed_positions(positions: object) -> list[StockPosition]:
    """A stock feed's positions: each a :class:`StockPosition` or a ``(location_id, sku,
    quantity)`` tuple; anything else is an :class:`InvalidQuantity` that names it."""
    if isinstance(positions, str | bytes | Mapping) or not isinstance(positions, Iterable):
        raise InvalidQuantity(f"a stock feed must be a collection of positions, got {positions!r}")
    feed = []
    for given in positions:
        position = StockPosition(*given) if isinstance(given, tuple) and len(given) == 3 else given
        if not isinstance(position, StockPosition):
            raise InvalidQuantity(
                "each feed position must be a StockPosition or a (location_id, sku, quantity) "
                f"tuple, got {given!r}"
            )
        feed.append(position)
    return feed


def _check_locator(near: object, radius_km: object, capability: object) -> None:
    """The store locator's filters: a point, a finite radius of 0 km or more, a capability."""
    if near is not None and not isinstance(near, GeoPoint):
        raise InvalidQuery(f"near must be a GeoPoint, got {near!r}")
    if radius_km is not None and (
        isinstance(radius_km, bool)
        or not isinstance(radius_km, int | float | Decimal)
        or not math.isfinite(radius_km)
        or radius_km < 0
    ):
        raise InvalidQuery(f"radius_km must be a finite number of 0 or more, got {radius_km!r}")
    known = {c.value for c in Capability}
    if capability is not None and (not isinstance(capability, str) or capability not in known):
        raise InvalidQuery(f"capability must be one of {sorted(known)}, got {capability!r}")


def _pools_of(stock: StockSession, channels: Iterable[Channel]) -> dict[ChannelId, set[str]]:
    """The locations in each channel's pool, as the unit of work sees them now."""
    return {c.id: set(stock.pool(c.id).locations) for c in channels}
