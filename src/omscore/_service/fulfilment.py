"""Allocation and fulfilment use cases: source, ship, deliver, pickups, rejections."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from omscore._checks import optional_text, require_mapping, require_note
from omscore._service.core import (
    Planned,
    QueuedFulfillment,
    ServiceCore,
    _before,
    _capacity_left,
    _check_wait,
    _chosen_statuses,
    _counting_day,
    _freed_today,
    _load_order,
    _next_fulfillment_id,
    _order_of_fulfillment,
)
from omscore._stock import StockSession
from omscore.errors import (
    InsufficientStock,
    InvalidQuantity,
    NothingToAllocate,
    UnsuitableLocation,
)
from omscore.events import DomainEvent, FulfilledUnits
from omscore.ids import FulfillmentId, LineId, LineQuantities, LocationId, OrderId, Sku
from omscore.inventory import Location
from omscore.orders import (
    ACTIVE_FULFILLMENT,
    FulfillmentLine,
    FulfillmentOrder,
    FulfillmentStatus,
    HoldKind,
    Order,
    OrderStatus,
)
from omscore.ports import UnitOfWork, checked_limit
from omscore.sourcing import AllocationPlan, NetworkSnapshot, RequestLine
from omscore.sourcing.plan import NO_STOCK


class FulfilmentUseCases(ServiceCore):
    """Allocation and fulfilment use cases: source, ship, deliver, pickups, rejections."""

    def allocate(self, order_id: str, idempotency_key: str | None = None) -> AllocationPlan:
        """Source the order's open units: run the policy on a snapshot of the order's SKUs
        (its own holds count as available to it), create one fulfilment order per location,
        allocate the stock there, and hold (or backorder) whatever stays open."""

        def work(uow: UnitOfWork, now: datetime) -> AllocationPlan:
            order = _load_order(uow, order_id)
            order.require_not_held("allocate")
            if order.status is OrderStatus.CANCELLED or order.open_units == 0:
                raise NothingToAllocate(f"order {order.id} has no open units to allocate")
            stock = StockSession(uow, now)
            order, plan = self._source(stock, order)
            uow.orders.put(order)
            stock.flush()
            return plan

        return self._run("allocate", {"order_id": order_id}, idempotency_key, work)

    def reallocate(
        self, order_id: str, reason: str = "", idempotency_key: str | None = None
    ) -> AllocationPlan:
        """Source the order again: take back its fulfilment orders no location has started
        (open, not yet accepted) and run the policy on their units and the open ones
        together, as :meth:`allocate` would. For when stock turned up nearer, or one parcel
        can now carry what two would. Taken-back fulfilment orders become ``withdrawn``
        (``FulfillmentWithdrawn``; their location is not counted as rejecting them, and
        today's capacity they used is given back); the plan's new ones follow. When the
        policy plans the same units at the same locations as before, nothing changes and no
        event is written. Accepted or later fulfilment orders stay where they are."""
        require_note(reason, "reason")

        def work(uow: UnitOfWork, now: datetime) -> AllocationPlan:
            order = _load_order(uow, order_id)
            order.require_not_held("re-source")
            unstarted = [f for f in order.fulfillments if f.status is FulfillmentStatus.OPEN]
            if not (unstarted or order.open_units) or order.status is OrderStatus.CANCELLED:
                raise NothingToAllocate(
                    f"order {order.id} has no open units and no fulfilment order that no "
                    "location has started: there is nothing to source again"
                )
            stock = StockSession(uow, now)
            withdrawn: list[DomainEvent] = []
            for f in unstarted:
                order, events = order.advance(f.id, "withdraw", now, reason=reason)
                withdrawn += events
                self._follow_fulfillment(stock, f, "withdraw")
            freed = _freed_today(stock, unstarted)
            plan, planned = self._plan(stock, order, freed)
            if _same_work(unstarted, planned):
                return plan  # nothing staged: the command changes nothing
            uow.record(withdrawn)
            self._release_loads(stock, freed)
            order = self._apply_plan(stock, order, plan, planned)
            uow.orders.put(order)
            stock.flush()
            return plan

        arguments = {"order_id": order_id, "reason": reason}
        return self._run("reallocate", arguments, idempotency_key, work)

    def move_fulfillment(
        self,
        fulfillment_id: str,
        location_id: str,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> Order:
        """Move a fulfilment order no one has picked yet (open or accepted), whole, to
        ``location_id``: the decision of a person who knows better than the policy (a store
        short of staff today, a warehouse with a faster carrier). Its stock is deallocated
        where it was and allocated at the new location, where it starts again as open
        (``FulfillmentMoved``); its id stays. The new location must keep every rule the
        policy keeps (in the channel's pool, active, able to ship or hand out pickups,
        within the same-day radius, capacity left today, never one that rejected the
        order) and have every unit available: else :class:`UnsuitableLocation` or
        :class:`InsufficientStock`, and nothing changes."""
        require_note(reason, "reason")

        def work(uow: UnitOfWork, now: datetime) -> Order:
            order = _order_of_fulfillment(uow, fulfillment_id)
            f = order.fulfillment(FulfillmentId(fulfillment_id))
            stock = StockSession(uow, now)
            target = stock.location(location_id)
            counted_on = _counting_day(target, now)
            order, moved = order.move_fulfillment(f.id, target.id, reason, now, counted_on)
            self._check_move(stock, order, f, target)
            uow.record([moved])
            for line in f.lines:
                item = stock.item(line.sku)
                item = stock.keep(
                    item.deallocate(f.location_id, line.quantity, f"move {f.id}", now)
                )
                stock.keep(item.allocate(target.id, line.quantity, f.id, now))
            self._release_loads(stock, _freed_today(stock, [f]))
            self._count_load(stock, target.id)
            uow.orders.put(order)
            stock.flush()
            return order

        arguments = {"fulfillment_id": fulfillment_id, "location_id": location_id}
        return self._run("move_fulfillment", {**arguments, "reason": reason}, idempotency_key, work)

    def accept_fulfillment(self, fulfillment_id: str, idempotency_key: str | None = None) -> Order:
        """The location accepts its fulfilment order."""
        return self._fulfillment_command("accept", fulfillment_id, idempotency_key)

    def pick(self, fulfillment_id: str, idempotency_key: str | None = None) -> Order:
        """The units are picked from the shelf."""
        return self._fulfillment_command("pick", fulfillment_id, idempotency_key)

    def pack(self, fulfillment_id: str, idempotency_key: str | None = None) -> Order:
        """The units are packed."""
        return self._fulfillment_command("pack", fulfillment_id, idempotency_key)

    def ship(
        self,
        fulfillment_id: str,
        tracking: str | None = None,
        carrier: str | None = None,
        idempotency_key: str | None = None,
        *,
        units: LineQuantities | None = None,
    ) -> Order:
        """The parcel leaves: on hand and allocated go down at the location (a shipment in the
        ledger). Without ``tracking``, a label is bought through the carrier port.

        With ``units`` (``{line_id: units}``, fewer than the fulfilment order has), only
        those leave: they become a new fulfilment order at the same location, shipped
        (``FulfillmentSplit``, then ``FulfillmentShipped`` for it), and the rest stays to be
        shipped later."""
        return self._fulfillment_command(
            "ship",
            fulfillment_id,
            idempotency_key,
            tracking=tracking,
            carrier=carrier,
            units=units,
        )

    def send_to_store(
        self,
        fulfillment_id: str,
        tracking: str | None = None,
        carrier: str | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        """A ship-to-store parcel leaves its location for the pickup store: its units leave
        the location's on hand and allocated (a transfer out in the ledger) and are in
        transit, where they can no longer be cancelled, until the store readies the parcel
        (a transfer in there). Without ``tracking``, a label is bought through the carrier
        port."""
        return self._fulfillment_command(
            "send_to_store", fulfillment_id, idempotency_key, tracking=tracking, carrier=carrier
        )

    def deliver(self, fulfillment_id: str, idempotency_key: str | None = None) -> Order:
        """The carrier delivered the parcel."""
        return self._fulfillment_command("deliver", fulfillment_id, idempotency_key)

    def ready_for_pickup(
        self,
        fulfillment_id: str,
        idempotency_key: str | None = None,
        *,
        units: LineQuantities | None = None,
    ) -> Order:
        """A click & collect order is ready at the store; its expiry clock starts. A
        ship-to-store parcel, sent or not, is handed over to the store's stock.

        With ``units`` (``{line_id: units}``, fewer than it has), only those are ready: they
        become a new fulfilment order, ready for pickup with its own clock
        (``FulfillmentSplit`` first), and the rest stays where it is in the work, to be
        readied later. A parcel already on its way to the store arrives whole."""
        return self._fulfillment_command(
            "ready_for_pickup", fulfillment_id, idempotency_key, units=units
        )

    def collect(
        self,
        fulfillment_id: str,
        idempotency_key: str | None = None,
        *,
        units: LineQuantities | None = None,
    ) -> Order:
        """The customer collected the order: the units leave the store, delivered, and
        their value is captured.

        With ``units`` (``{line_id: units}``, fewer than the pickup has), the customer takes
        only those: they become a new fulfilment order at the store, collected
        (``FulfillmentSplit``, then ``FulfillmentProgressed`` to collected for it). The rest
        stays ready for pickup under the same id, with the same expiry; to end it at once
        (the customer refused it), ``cancel(order_id, fulfillment_id=fulfillment_id)``."""
        return self._fulfillment_command("collect", fulfillment_id, idempotency_key, units=units)

    def reject_fulfillment(
        self, fulfillment_id: str, reason: str = "", idempotency_key: str | None = None
    ) -> Order:
        """The location cannot fulfil: its stock is released, the units are open again and
        re-sourced at once, never at a location that rejected this order. After
        ``max_rejections`` the order gets a sourcing hold instead."""
        return self._fulfillment_command("reject", fulfillment_id, idempotency_key, reason=reason)

    def short_pick(
        self,
        fulfillment_id: str,
        missing: LineQuantities,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> Order:
        """The location cannot find some units (``{line_id: units}``) of a fulfilment order
        it has not packed yet. Those units are written off its stock (deallocated, then an
        adjustment of on hand: the shelf did not have them) and open again, and re-sourced
        at once, never at this location; the rest stays with the fulfilment order. If no
        unit is left, the fulfilment order is rejected, as with ``reject_fulfillment``."""
        require_note(reason, "reason")

        def work(uow: UnitOfWork, now: datetime) -> Order:
            order = _order_of_fulfillment(uow, fulfillment_id)
            stock = StockSession(uow, now)
            order, event = order.short_pick(fulfillment_id, missing, reason, now)
            uow.record([event])
            reference = f"short pick {fulfillment_id}"
            for units in event.units:
                item = stock.item(units.sku)
                stock.keep(item.deallocate(event.location_id, units.quantity, reference, now))
                item = stock.item(units.sku)
                stock.keep(item.adjust(event.location_id, -units.quantity, reference, now))
            order = self._after_rejection(stock, order)
            order = self._settle(uow, order, now)
            uow.orders.put(order)
            stock.flush()
            return order

        require_mapping(missing, "missing units ({line_id: units})", InvalidQuantity)
        arguments = {"fulfillment_id": fulfillment_id, "missing": dict(missing), "reason": reason}
        return self._run("short_pick", arguments, idempotency_key, work)

    def expire_pickups(self) -> int:
        """Cancel pickups not collected within ``pickup_expiry`` of being ready; returns how
        many fulfilment orders expired. Their stock goes back on the shelf."""

        def work(uow: UnitOfWork, now: datetime) -> int:
            stock = StockSession(uow, now)
            expired = 0
            ready = frozenset({FulfillmentStatus.READY_FOR_PICKUP})
            due = uow.orders.fulfillment_queue(
                ready, waiting_since=_before(now, self.pickup_expiry)
            )
            for order_id in dict.fromkeys(order_id for order_id, _ in due):
                order = _load_order(uow, order_id)
                overdue = [
                    f
                    for f in order.fulfillments
                    if f.status is FulfillmentStatus.READY_FOR_PICKUP
                    and (f.changed_at or f.created_at) + self.pickup_expiry <= now
                ]
                if not overdue:
                    continue
                for f in overdue:
                    order, events = order.advance(f.id, "expire", now)
                    uow.record(events)
                    self._follow_fulfillment(stock, f, "expire")
                expired += len(overdue)
                order = self._settle(uow, order, now)
                uow.orders.put(order)
            stock.flush()
            return expired

        return self._run("expire_pickups", {}, None, work)

    def get_order_by_fulfillment(self, fulfillment_id: str) -> Order:
        """The order a fulfilment order belongs to (what a location's packing slip needs);
        :class:`~omscore.errors.UnknownFulfillment` if there is none."""
        return self._read(lambda uow: _order_of_fulfillment(uow, fulfillment_id))

    def fulfillment_queue(
        self,
        location_id: str,
        *,
        statuses: Iterable[FulfillmentStatus | str] | None = None,
        limit: int | None = None,
    ) -> list[QueuedFulfillment]:
        """The work waiting at a location, longest waiting first: its fulfilment orders
        that are still active (open, accepted, picked, packed, ready for pickup), or those
        in ``statuses``. A ship-to-store parcel is in its warehouse's queue until it is
        handed over at the pickup store, and in the store's from then on."""
        wanted = _chosen_statuses(FulfillmentStatus, statuses, ACTIVE_FULFILLMENT)
        checked_limit(limit)

        def read(uow: UnitOfWork) -> list[QueuedFulfillment]:
            now = self._now()
            location = StockSession(uow, now).location(location_id)
            found = uow.orders.fulfillment_queue(wanted, location_id=location.id, limit=limit)
            return _queued(uow, found, now)

        return self._read(read)

    def stalled_fulfillments(
        self,
        older_than: timedelta,
        *,
        location_id: str | None = None,
        statuses: Iterable[FulfillmentStatus | str] | None = None,
        limit: int | None = None,
    ) -> list[QueuedFulfillment]:
        """Fulfilment orders whose status has not changed for ``older_than`` or longer,
        longest waiting first: by default the work a location still owes (open, accepted,
        picked, packed), at every location or at ``location_id``. With
        ``statuses={"shipped"}`` it finds parcels that were never delivered."""
        _check_wait(older_than, required=True)
        wanted = _chosen_statuses(FulfillmentStatus, statuses, _OWED)
        checked_limit(limit)

        def read(uow: UnitOfWork) -> list[QueuedFulfillment]:
            now = self._now()
            where = None
            if location_id is not None:
                where = StockSession(uow, now).location(location_id).id
            found = uow.orders.fulfillment_queue(
                wanted, location_id=where, waiting_since=_before(now, older_than), limit=limit
            )
            return _queued(uow, found, now)

        return self._read(read)

    def _fulfillment_command(
        self,
        command: str,
        fulfillment_id: str,
        idempotency_key: str | None,
        *,
        tracking: str | None = None,
        carrier: str | None = None,
        reason: str = "",
        units: LineQuantities | None = None,
    ) -> Order:
        optional_text(tracking, "tracking")  # "" would skip the label and track nothing
        optional_text(carrier, "carrier")
        require_note(reason, "reason")
        if units is not None:
            require_mapping(units, "units ({line_id: units})", InvalidQuantity)

        def work(uow: UnitOfWork, now: datetime) -> Order:
            order = _order_of_fulfillment(uow, fulfillment_id)
            worked = FulfillmentId(fulfillment_id)
            if units is not None:  # only these units: they become a fulfilment order now
                order.require_step(fulfillment_id, command)  # named as asked, not as split
                worked = _next_fulfillment_id(order)
                order, split = order.split_fulfillment(fulfillment_id, units, worked, now)
                uow.record([split])
            f = order.fulfillment(worked)
            stock = StockSession(uow, now)
            label_tracking, label_carrier = tracking, carrier
            labelled = command in ("ship", "send_to_store")
            if labelled and tracking is None and self.carrier is not None:
                label = self._buy_label(
                    f.id,
                    stock.location(f.location_id),
                    order.delivery.address if command == "ship" else None,  # a store's leg
                    f.units,
                    key=f"label:{f.id}",
                )
                label_tracking, label_carrier = label.tracking, label.carrier
            due = order.capture_value(f.id) if command in ("ship", "collect") else None
            order, events = order.advance(
                worked,
                command,
                now,
                tracking=label_tracking,
                carrier=label_carrier,
                reason=reason,
            )
            uow.record(events)
            self._follow_fulfillment(stock, f, command, order.fulfillment(worked))
            if due is not None:
                order, captured = self._payments.capture(order, due, f"capture:{f.id}", now)
                uow.record(captured)
            if command == "reject":
                order = self._after_rejection(stock, order)
            order = self._settle(uow, order, now)
            uow.orders.put(order)
            stock.flush()
            return order

        arguments = {
            "fulfillment_id": fulfillment_id,
            "tracking": tracking,
            "carrier": carrier,
            "reason": reason,
            "units": dict(units) if units is not None else None,
        }
        return self._run(command, arguments, idempotency_key, work)

    def _follow_fulfillment(
        self,
        stock: StockSession,
        f: FulfillmentOrder,
        command: str,
        after: FulfillmentOrder | None = None,
    ) -> None:
        """Move the stock a fulfilment command moves, from where ``f`` (as it was) has its
        units; ``after`` is ``f`` moved on. Accepting, picking, packing, readying at the
        same location and delivering move none, so they do not even read the items."""
        where, now = f.stock_location, stock.now
        if command in ("ship", "collect"):
            for line in f.lines:
                stock.keep(stock.item(line.sku).ship(where, line.quantity, f.id, now))
        elif command in ("reject", "expire", "withdraw"):
            reference = f"{command} {f.id}"
            for line in f.lines:
                item = stock.item(line.sku)
                stock.keep(item.deallocate(where, line.quantity, reference, now))
        elif command == "send_to_store":  # on its way: at no location until it arrives
            for line in f.lines:
                item = stock.item(line.sku)
                stock.keep(item.send_allocated(where, line.quantity, f"to store {f.id}", now))
        elif f.in_transit:  # arrived and ready at the store
            for line in f.lines:
                item = stock.item(line.sku)
                stock.keep(item.receive_allocated(where, line.quantity, f"handover {f.id}", now))
        elif after is not None and after.stock_location != where:  # handed over at a store
            reference = f"handover {f.id}"
            for line in f.lines:
                item = stock.item(line.sku)
                moved = item.hand_over(where, after.stock_location, line.quantity, reference, now)
                stock.keep(moved)

    def _check_move(
        self, stock: StockSession, order: Order, f: FulfillmentOrder, target: Location
    ) -> None:
        """Raise unless ``target`` keeps the policy's rules for ``f`` and has its units: the
        policy plans ``f``'s units on a snapshot of ``target`` alone, with what is available
        there (what it holds for the order's other open units does not count)."""
        refused = f"cannot move fulfilment order {f.id} of order {order.id} to {target.id}"
        if not target.active:  # inactive locations are in no pool: say the first reason
            raise UnsuitableLocation(f"{refused}: it is inactive")
        network = stock.pool_network(order.channel, order.delivery.pickup_location)
        if target.id not in network.id_set:
            raise UnsuitableLocation(f"{refused}: it is not in channel {order.channel}'s pool")
        if target.id in order.rejected_locations:
            raise UnsuitableLocation(f"{refused}: it rejected units of this order before")
        need: dict[Sku, int] = {}
        for fl in f.lines:
            need[fl.sku] = need.get(fl.sku, 0) + fl.quantity
        available = {}
        for sku in need:
            level = stock.item(sku).levels.get(target.id)
            if level is not None and level.available:
                available[(target.id, sku)] = level.available
        lines = [RequestLine(line_id, sku, n) for line_id, (sku, n) in _per_line(f).items()]
        request = self._request(stock, order, lines, whole=False)
        snapshot = NetworkSnapshot((target,), available, _capacity_left(stock, available))
        plan = self.sourcing.plan(request, snapshot)
        if plan.units_at(target.id) == f.units:
            return
        why = next((t.excluded for t in plan.trace if t.location_id == target.id), None)
        if why is not None and why != NO_STOCK:
            raise UnsuitableLocation(f"{refused}: {why}")
        has = sum(min(available.get((target.id, sku), 0), n) for sku, n in need.items())
        if has < f.units:
            raise InsufficientStock(f"{refused}: it has {has} of the {f.units} units available")
        raise UnsuitableLocation(f"{refused}: policy {plan.policy} would not send them from it")

    def _after_rejection(self, stock: StockSession, order: Order) -> Order:
        if order.rejections >= self.max_rejections and not order.has_hold(HoldKind.SOURCING):
            order, events = order.hold(
                HoldKind.SOURCING,
                f"{order.rejections} fulfilment orders rejected; re-source by hand",
                stock.now,
            )
            stock.uow.record(events)
        if order.is_held:
            self._sync_holds(stock, order)
            return order
        order, _ = self._source(stock, order)
        return order


#: The work a location still owes on a fulfilment order.
_OWED = frozenset(
    {
        FulfillmentStatus.OPEN,
        FulfillmentStatus.ACCEPTED,
        FulfillmentStatus.PICKED,
        FulfillmentStatus.PACKED,
    }
)


def _per_line(f: FulfillmentOrder) -> dict[LineId, tuple[Sku, int]]:
    """The SKU and units of each order line in ``f``."""
    units: dict[LineId, tuple[Sku, int]] = {}
    for fl in f.lines:
        units[fl.line_id] = (fl.sku, units.get(fl.line_id, (fl.sku, 0))[1] + fl.quantity)
    return units


def _same_work(before: Iterable[FulfillmentOrder], planned: Planned) -> bool:
    """True when ``planned`` puts the same units at the same locations as ``before``."""

    def work(
        location_id: LocationId, units: Iterable[FulfilledUnits | FulfillmentLine]
    ) -> tuple[str, tuple[tuple[str, int], ...]]:
        return (location_id, tuple(sorted((u.line_id, u.quantity) for u in units)))

    return sorted(work(f.location_id, f.lines) for f in before) == sorted(
        work(location_id, units) for _, location_id, units in planned
    )


def _queued(
    uow: UnitOfWork, found: list[tuple[OrderId, FulfillmentId]], now: datetime
) -> list[QueuedFulfillment]:
    orders: dict[OrderId, Order] = {}
    queued = []
    for order_id, fulfillment_id in found:
        order = orders.get(order_id) or orders.setdefault(order_id, _load_order(uow, order_id))
        f = order.fulfillment(fulfillment_id)
        queued.append(QueuedFulfillment(order_id, f, now - f.since))
    return queued
