"""The application layer: :class:`OMS`, one method per use case, one unit of work each.

Every command loads the aggregates it needs, asks the domain to decide, and commits the new
aggregates, ledger rows and domain events together. Every command takes an optional
``idempotency_key``: repeating it returns the first result and changes nothing; reusing it
for another command raises :class:`~omscore.errors.DuplicateIdempotencyKey`. A lost race
(:class:`~omscore.errors.ConcurrencyConflict`) is retried a bounded number of times.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar, cast

import attrs

from omscore._payments import Payments
from omscore._stock import StockSession
from omscore.adapters.system import SystemClock, UuidIds
from omscore.errors import (
    ConcurrencyConflict,
    DuplicateIdempotencyKey,
    DuplicateLocation,
    InvalidChannelConfig,
    InvalidDraft,
    InvalidLocation,
    InvalidQuantity,
    InvalidReturn,
    InvalidTransition,
    NothingToAllocate,
    UnknownFulfillment,
    UnknownLocation,
    UnknownOrder,
    UnknownReservation,
    UnknownReturn,
    UnknownTransfer,
)
from omscore.events import (
    ChannelConfigured,
    DomainEvent,
    FulfilledUnits,
    LineAdded,
    LineQuantityChanged,
    LineRemoved,
    LocationAdded,
    LocationUpdated,
    ReturnRefunded,
    StockFeedApplied,
    UnitsCancelled,
)
from omscore.geo import Address, GeoPoint, distance_km
from omscore.ids import ChannelId, FulfillmentId, LineId, LocationId, OrderId, ReturnId, Sku
from omscore.inventory import (
    Capability,
    Channel,
    Discrepancy,
    InventoryItem,
    ItemChange,
    Location,
    LocationKind,
    LocationLoad,
    MovementKind,
    Reservation,
    StockLevel,
    StockMovement,
    Supply,
    Transfer,
)
from omscore.inventory.item import require_units
from omscore.money import Money
from omscore.orders import (
    DeliveryMethod,
    DraftLimits,
    FulfillmentOrder,
    FulfillmentStatus,
    HoldKind,
    LineDraft,
    Order,
    OrderDraft,
    OrderLine,
    OrderStatus,
    PaymentKind,
)
from omscore.orders.draft import draft_problems
from omscore.ports import (
    CarrierPort,
    Clock,
    IdempotencyRecord,
    IdGenerator,
    PaymentPort,
    Store,
    UnitOfWork,
)
from omscore.returns import (
    Disposition,
    Return,
    ReturnPolicy,
    ReturnStatus,
    quote_refund,
    request_return,
)
from omscore.serialization import make_converter
from omscore.sourcing import (
    AllocationPlan,
    CostModel,
    LowestCostPolicy,
    NetworkSnapshot,
    RequestLine,
    SourcingPolicy,
    SourcingRequest,
)

R = TypeVar("R")

_fingerprint_converter = make_converter()


@attrs.frozen(slots=True)
class LocationAvailability:
    """What one location can offer for a SKU (or a basket), and how far it is."""

    location_id: LocationId
    available: int
    distance_km: float | None
    kind: LocationKind
    capabilities: frozenset[Capability]


@attrs.frozen(slots=True)
class StockPosition:
    """One position of a stock feed: a SKU's on hand (or its change) at a location."""

    location_id: str
    sku: str
    quantity: int


class OMS:
    """The order management system: the public entry point.

    ``store`` is a storage adapter (``MemoryStore``, ``SqliteStore`` ...). ``clock`` and
    ``ids`` default to the system clock and random ids; pass ``ManualClock`` and
    ``SequentialIds`` for tests and simulations.
    """

    def __init__(
        self,
        store: Store,
        *,
        sourcing: SourcingPolicy | None = None,
        carrier: CarrierPort | None = None,
        payments: PaymentPort | None = None,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        return_policy: ReturnPolicy | None = None,
        limits: DraftLimits | None = None,
        max_attempts: int = 8,
        pickup_expiry: timedelta = timedelta(days=7),
        max_rejections: int = 3,
    ) -> None:
        self.store = store
        self.sourcing: SourcingPolicy = sourcing or LowestCostPolicy(CostModel())
        self.carrier: CarrierPort | None = carrier
        self.payments: PaymentPort | None = payments
        self._payments = Payments(payments)
        self.return_policy: ReturnPolicy = return_policy or ReturnPolicy()
        self.clock: Clock = clock or SystemClock()
        self.ids: IdGenerator = ids or UuidIds()
        self.limits = limits or DraftLimits()
        self.max_attempts = max_attempts
        self.pickup_expiry = pickup_expiry
        self.max_rejections = max_rejections

    # --- the unit-of-work runner ---------------------------------------------------------

    def _run(
        self,
        command: str,
        arguments: Mapping[str, object],
        idempotency_key: str | None,
        work: Callable[[UnitOfWork, datetime], R],
    ) -> R:
        fingerprint = _fingerprint(command, arguments) if idempotency_key is not None else ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._attempt(idempotency_key, fingerprint, work)
            except ConcurrencyConflict:
                if attempt == self.max_attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self,
        idempotency_key: str | None,
        fingerprint: str,
        work: Callable[[UnitOfWork, datetime], R],
    ) -> R:
        """One try of a command: a lost race or a busy store raises ConcurrencyConflict."""
        with self.store.unit_of_work() as uow:
            if idempotency_key is not None:
                record = uow.idempotency.get(idempotency_key)
                if record is not None:
                    return cast(R, _replayed(record, idempotency_key, fingerprint))
            now = self.clock.now()
            result = work(uow, now)
            if idempotency_key is not None:
                uow.idempotency.put(IdempotencyRecord(idempotency_key, fingerprint, result, now))
            uow.commit()
            return result

    def _read(self, work: Callable[[UnitOfWork], R]) -> R:
        with self.store.unit_of_work(write=False) as uow:
            return work(uow)

    # --- orders ---------------------------------------------------------------------------

    def place_order(self, draft: OrderDraft, idempotency_key: str | None = None) -> Order:
        """Validate and place an order; its open units take stock (or wait as backorders)."""

        def work(uow: UnitOfWork, now: datetime) -> Order:
            stock = StockSession(uow, now)
            order = self._create_order(stock, draft)
            order, events = self._payments.authorize(order, order.total, now)
            uow.record(events)
            uow.orders.put(order)
            stock.flush()
            return order

        return self._run("place_order", {"draft": draft}, idempotency_key, work)

    def _create_order(
        self, stock: StockSession, draft: OrderDraft, exchange_of: ReturnId | None = None
    ) -> Order:
        """Validate the draft, create the order and hold its stock (not yet stored)."""
        self._check_draft(draft, stock)
        order_id = OrderId(self.ids.new_id("O"))
        line_ids = [LineId(f"{order_id}-{i}") for i in range(1, len(draft.lines) + 1)]
        order, events = Order.place(order_id, draft, line_ids, stock.now, self.limits)
        if exchange_of is not None:
            order = attrs.evolve(order, exchange_of=exchange_of)
        stock.uow.record(events)
        self._hold_new_order(stock, order)
        return order

    def authorize_payment(self, order_id: str, idempotency_key: str | None = None) -> Order:
        """Try the authorisation again (after a decline); on success the payment hold goes."""

        def work(uow: UnitOfWork, now: datetime) -> Order:
            order = _load_order(uow, order_id)
            if order.payment_reference is not None or any(
                p.kind is PaymentKind.AUTHORIZED for p in order.payments
            ):
                raise InvalidTransition(f"order {order.id} is already authorised")
            due = order.total - order.captured
            order, events = self._payments.authorize(order, due, now)
            uow.record(events)
            if any(p.kind is PaymentKind.AUTHORIZED for p in order.payments) and any(
                h.kind == HoldKind.PAYMENT for h in order.holds
            ):
                order, released = order.release(HoldKind.PAYMENT, now)
                uow.record(released)
            uow.orders.put(order)
            return order

        return self._run("authorize_payment", {"order_id": order_id}, idempotency_key, work)

    def get_order(self, order_id: str) -> Order:
        """The order with ``order_id``; :class:`UnknownOrder` if there is none."""
        return self._read(lambda uow: _load_order(uow, order_id))

    def hold(
        self, order_id: str, kind: str, reason: str = "", idempotency_key: str | None = None
    ) -> Order:
        """Put a hold of ``kind`` (payment, fraud, manual, or a host string) on the order."""
        return self._order_command(
            "hold",
            order_id,
            {"kind": kind, "reason": reason},
            idempotency_key,
            lambda order, now: order.hold(kind, reason, now),
        )

    def release(self, order_id: str, kind: str, idempotency_key: str | None = None) -> Order:
        """Release the order's hold of ``kind``."""
        return self._order_command(
            "release",
            order_id,
            {"kind": kind},
            idempotency_key,
            lambda order, now: order.release(kind, now),
        )

    def change_quantity(
        self, order_id: str, line_id: str, quantity: int, idempotency_key: str | None = None
    ) -> Order:
        """Edit a line's quantity before any of its units is allocated."""
        return self._order_command(
            "change_quantity",
            order_id,
            {"line_id": line_id, "quantity": quantity},
            idempotency_key,
            lambda order, now: order.change_quantity(line_id, quantity, now, self.limits),
        )

    def add_line(self, order_id: str, line: LineDraft, idempotency_key: str | None = None) -> Order:
        """Add a line to an order that is not yet allocated."""

        def decide(order: Order, now: datetime) -> tuple[Order, list[DomainEvent]]:
            return order.add_line(_next_line_id(order), line, now, self.limits)

        return self._order_command("add_line", order_id, {"line": line}, idempotency_key, decide)

    def remove_line(self, order_id: str, line_id: str, idempotency_key: str | None = None) -> Order:
        """Remove a line none of whose units is allocated."""
        return self._order_command(
            "remove_line",
            order_id,
            {"line_id": line_id},
            idempotency_key,
            lambda order, now: order.remove_line(line_id, now),
        )

    def change_address(
        self, order_id: str, address: Address, idempotency_key: str | None = None
    ) -> Order:
        """Change the delivery address before allocation."""
        return self._order_command(
            "change_address",
            order_id,
            {"address": address},
            idempotency_key,
            lambda order, now: order.change_address(address, now),
        )

    def cancel(
        self,
        order_id: str,
        lines: Mapping[str, int] | None = None,
        reason: str = "",
        idempotency_key: str | None = None,
    ) -> Order:
        """Cancel units: ``None`` cancels everything not yet shipped, else ``{line_id: units}``.

        Open units release what they hold; allocated units release their stock at the
        location and shrink (or cancel) their fulfilment order.
        """
        return self._order_command(
            "cancel",
            order_id,
            {"lines": dict(lines) if lines else None, "reason": reason},
            idempotency_key,
            lambda order, now: order.cancel(lines, reason, now),
        )

    def _order_command(
        self,
        command: str,
        order_id: str,
        arguments: Mapping[str, object],
        idempotency_key: str | None,
        decide: Callable[[Order, datetime], tuple[Order, list[DomainEvent]]],
    ) -> Order:
        def work(uow: UnitOfWork, now: datetime) -> Order:
            order, events = decide(_load_order(uow, order_id), now)
            uow.record(events)
            stock = StockSession(uow, now)
            self._follow_stock(stock, order, events)
            order, settled = self._payments.settle(order, now)
            uow.record(settled)
            uow.orders.put(order)
            stock.flush()
            return order

        return self._run(command, {"order_id": order_id, **arguments}, idempotency_key, work)

    def _check_draft(self, draft: OrderDraft, stock: StockSession) -> None:
        problems = draft_problems(draft, self.limits)
        delivery = getattr(draft, "delivery", None)
        pickup = getattr(delivery, "pickup_location", None)
        if getattr(delivery, "method", None) is DeliveryMethod.PICKUP and pickup:
            location = stock.locations.get(LocationId(pickup))
            if location is None:
                problems.append(f"pickup location {pickup!r} is unknown")
            elif not location.active or not location.can(Capability.PICKUP):
                problems.append(f"pickup location {pickup!r} does not take pickups now")
        if problems:
            raise InvalidDraft(problems)

    def _hold_new_order(self, stock: StockSession, order: Order) -> None:
        needs: dict[Sku, list[tuple[LineId, int]]] = {}
        for line in order.lines:
            needs.setdefault(line.sku, []).append((line.id, line.quantity))
        key = order.reservation_key
        if key is not None:
            for sku in stock.uow.inventory.reserved_under(key):
                if sku not in needs:
                    stock.apply(
                        sku, lambda item: item.release_reservation(key, stock.now, "not ordered")
                    )
        for sku, sku_needs in sorted(needs.items()):
            remaining = dict(sku_needs)
            if key is not None and stock.item(sku).checkout_holds(key):
                remaining = self._take_over(stock, order, key, sku, sku_needs)
            for line_id, units in remaining.items():
                if units:
                    self._hold_line(stock, order, order.line(line_id), units)

    def _take_over(
        self,
        stock: StockSession,
        order: Order,
        key: str,
        sku: Sku,
        needs: list[tuple[LineId, int]],
    ) -> dict[LineId, int]:
        change, remaining = stock.item(sku).take_over(key, order.id, needs, stock.now)
        stock.keep(change)
        return remaining

    def _hold_line(self, stock: StockSession, order: Order, line: OrderLine, units: int) -> None:
        pool = stock.pool(order.channel)
        pickup = order.delivery.pickup_location
        if pickup is not None and pickup in order.rejected_locations:
            pickup = None
        stock.apply(
            line.sku,
            lambda item: item.hold_for_line(
                order.id,
                line.id,
                units,
                pool,
                stock.now,
                pickup,
                since=order.placed_at,
                excluded=order.rejected_locations,
            ),
        )

    def _sync_holds(self, stock: StockSession, order: Order) -> None:
        """Make each line's held plus backordered units equal its open units."""
        for line in order.lines:
            item = stock.item(line.sku)
            waiting = item.held_for(order.id, line.id) + item.backordered_for(order.id, line.id)
            if waiting < line.open:
                self._hold_line(stock, order, line, line.open - waiting)
            elif waiting > line.open:
                self._release_line(stock, order.id, line.sku, line.id, waiting - line.open)

    def _follow_stock(
        self, stock: StockSession, order: Order, events: Iterable[DomainEvent]
    ) -> None:
        """Keep the order's stock holds in step with an order change."""
        for event in events:
            if isinstance(event, LineQuantityChanged):
                delta = event.new_quantity - event.old_quantity
                if delta > 0:
                    self._hold_line(stock, order, order.line(event.line_id), delta)
                elif delta < 0:
                    self._release_line(stock, order.id, event.sku, event.line_id, -delta)
            elif isinstance(event, LineAdded):
                self._hold_line(stock, order, order.line(event.line_id), event.quantity)
            elif isinstance(event, LineRemoved) and event.open_units:
                self._release_line(stock, order.id, event.sku, event.line_id, event.open_units)
            elif isinstance(event, UnitsCancelled):
                self._release_cancelled(stock, order.id, event)

    def _release_line(
        self, stock: StockSession, order_id: OrderId, sku: Sku, line_id: LineId, units: int
    ) -> None:
        stock.apply(sku, lambda item: item.release_line(order_id, line_id, units, stock.now))

    def _release_cancelled(
        self, stock: StockSession, order_id: OrderId, event: UnitsCancelled
    ) -> None:
        for units in event.units:
            if units.open:
                self._release_line(stock, order_id, units.sku, units.line_id, units.open)
            if units.allocated and units.location_id is not None:
                reference = f"cancel {units.fulfillment_id}"
                item = stock.item(units.sku)
                stock.keep(
                    item.deallocate(units.location_id, units.allocated, reference, stock.now)
                )

    def events(self) -> list[DomainEvent]:
        """Every recorded domain event, in commit order (read from the outbox)."""
        return [record.event for record in self.store.outbox()]

    # --- allocation and fulfilment ---------------------------------------------------------

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

    def _source(self, stock: StockSession, order: Order) -> tuple[Order, AllocationPlan]:
        now, uow = stock.now, stock.uow
        open_lines = [line for line in order.lines if line.open]
        for sku in sorted({line.sku for line in open_lines}):
            change, _ = stock.item(sku).release_order(order.id, now)
            stock.keep(change)
        request = self._request(stock, order, open_lines)
        plan = self.sourcing.plan(request, self._snapshot(stock, order, request))
        fulfillments = _fulfillments_of(order, plan)
        if fulfillments:
            order, events = order.allocate(fulfillments, now)
            uow.record(events)
        for fulfillment_id, location_id, units in fulfillments:
            for u in units:
                item = stock.item(u.sku)
                stock.keep(item.allocate(location_id, u.quantity, fulfillment_id, now))
            self._count_load(stock, location_id)
        self._sync_holds(stock, order)
        return order, plan

    def _request(
        self, stock: StockSession, order: Order, lines: list[OrderLine]
    ) -> SourcingRequest:
        delivery = order.delivery
        destination = delivery.address.geo if delivery.address is not None else None
        if delivery.pickup_location is not None:
            pickup = stock.locations.get(delivery.pickup_location)
            destination = pickup.geo if pickup is not None else None
        return SourcingRequest(
            lines=[RequestLine(line.id, line.sku, line.open) for line in lines],
            delivery=delivery.method,
            destination=destination,
            channel=order.channel,
            exclude=order.rejected_locations,
            pickup_location=delivery.pickup_location,
        )

    def _snapshot(
        self, stock: StockSession, order: Order, request: SourcingRequest
    ) -> NetworkSnapshot:
        ids = set(stock.pool(order.channel).locations)
        if order.delivery.pickup_location is not None:
            ids.add(order.delivery.pickup_location)
        locations = [stock.locations[x] for x in sorted(ids) if x in stock.locations]
        available: dict[tuple[LocationId, Sku], int] = {}
        for sku in {line.sku for line in request.lines}:
            levels = stock.item(sku).levels
            for location in locations:
                level = levels.get(location.id)
                if level is not None and level.available:
                    available[(location.id, sku)] = level.available
        today = stock.now.date()
        capacity = {}
        for location in locations:
            if location.daily_capacity is not None:
                load = stock.uow.loads.get(location.id)
                used = load.used_on(today) if load is not None else 0
                capacity[location.id] = location.daily_capacity - used
        return NetworkSnapshot(locations, available, capacity)

    def _count_load(self, stock: StockSession, location_id: LocationId) -> None:
        if stock.locations[location_id].daily_capacity is None:
            return
        load = stock.uow.loads.get(location_id) or LocationLoad(location_id, stock.now.date())
        stock.uow.loads.put(load.take(stock.now.date(), 1))

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
    ) -> Order:
        """The parcel leaves: on hand and allocated go down at the location (a shipment in the
        ledger). Without ``tracking``, a label is bought through the carrier port."""
        return self._fulfillment_command(
            "ship", fulfillment_id, idempotency_key, tracking=tracking, carrier=carrier
        )

    def deliver(self, fulfillment_id: str, idempotency_key: str | None = None) -> Order:
        """The carrier delivered the parcel."""
        return self._fulfillment_command("deliver", fulfillment_id, idempotency_key)

    def ready_for_pickup(self, fulfillment_id: str, idempotency_key: str | None = None) -> Order:
        """A click & collect order is ready at the store; its expiry clock starts."""
        return self._fulfillment_command("ready_for_pickup", fulfillment_id, idempotency_key)

    def collect(self, fulfillment_id: str, idempotency_key: str | None = None) -> Order:
        """The customer collected the order: the units leave the store, delivered."""
        return self._fulfillment_command("collect", fulfillment_id, idempotency_key)

    def reject_fulfillment(
        self, fulfillment_id: str, reason: str = "", idempotency_key: str | None = None
    ) -> Order:
        """The location cannot fulfil: its stock is released, the units are open again and
        re-sourced at once, never at a location that rejected this order. After
        ``max_rejections`` the order gets a sourcing hold instead."""
        return self._fulfillment_command("reject", fulfillment_id, idempotency_key, reason=reason)

    def expire_pickups(self) -> int:
        """Cancel pickups not collected within ``pickup_expiry`` of being ready; returns how
        many fulfilment orders expired. Their stock goes back on the shelf."""

        def work(uow: UnitOfWork, now: datetime) -> int:
            stock = StockSession(uow, now)
            expired = 0
            for order_id in uow.orders.awaiting_pickup():
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
                order, settled = self._payments.settle(order, now)
                uow.record(settled)
                uow.orders.put(order)
            stock.flush()
            return expired

        return self._run("expire_pickups", {}, None, work)

    def _fulfillment_command(
        self,
        command: str,
        fulfillment_id: str,
        idempotency_key: str | None,
        *,
        tracking: str | None = None,
        carrier: str | None = None,
        reason: str = "",
    ) -> Order:
        def work(uow: UnitOfWork, now: datetime) -> Order:
            order = _order_of_fulfillment(uow, fulfillment_id)
            f = order.fulfillment(fulfillment_id)
            stock = StockSession(uow, now)
            label_tracking, label_carrier = tracking, carrier
            if command == "ship" and tracking is None and self.carrier is not None:
                label = self.carrier.create_label(
                    f.id,
                    stock.location(f.location_id),
                    order.delivery.address,
                    f.units,
                    key=f"label:{f.id}",
                )
                label_tracking, label_carrier = label.tracking, label.carrier
            due = order.capture_value(f.id) if command in ("ship", "collect") else None
            order, events = order.advance(
                fulfillment_id,
                command,
                now,
                tracking=label_tracking,
                carrier=label_carrier,
                reason=reason,
            )
            uow.record(events)
            self._follow_fulfillment(stock, f, command)
            if due is not None:
                order, captured = self._payments.capture(order, due, f"capture:{f.id}", now)
                uow.record(captured)
            if command == "reject":
                order = self._after_rejection(stock, order)
            order, settled = self._payments.settle(order, now)
            uow.record(settled)
            uow.orders.put(order)
            stock.flush()
            return order

        arguments = {
            "fulfillment_id": fulfillment_id,
            "tracking": tracking,
            "carrier": carrier,
            "reason": reason,
        }
        return self._run(command, arguments, idempotency_key, work)

    def _follow_fulfillment(self, stock: StockSession, f: FulfillmentOrder, command: str) -> None:
        """Move the stock a fulfilment command moves."""
        for line in f.lines:
            item = stock.item(line.sku)
            if command in ("ship", "collect"):
                stock.keep(item.ship(f.location_id, line.quantity, f.id, stock.now))
            elif command in ("reject", "expire"):
                reference = f"{command} {f.id}"
                stock.keep(item.deallocate(f.location_id, line.quantity, reference, stock.now))

    def _after_rejection(self, stock: StockSession, order: Order) -> Order:
        if order.rejections >= self.max_rejections and not any(
            h.kind == HoldKind.SOURCING for h in order.holds
        ):
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

    # --- returns --------------------------------------------------------------------------

    def request_return(
        self,
        order_id: str,
        lines: Mapping[str, int],
        reason: str = "",
        method: str = "ship",
        idempotency_key: str | None = None,
    ) -> Return:
        """Ask to send delivered units back (an RMA). Eligible: delivered or collected units
        not returned or in an open return, inside the policy's window, of returnable SKUs.
        Every problem is reported at once; nothing is created otherwise."""

        def work(uow: UnitOfWork, now: datetime) -> Return:
            order = _load_order(uow, order_id)
            existing = [_load_return(uow, rid) for rid in order.return_ids]
            rma, events = request_return(
                ReturnId(self.ids.new_id("R")),
                order,
                lines,
                existing,
                self.return_policy,
                reason,
                method,
                now,
            )
            uow.returns.put(rma)
            uow.orders.put(order.add_return(rma.id))
            uow.record(events)
            return rma

        arguments = {"order_id": order_id, "lines": dict(lines), "reason": reason, "method": method}
        return self._run("request_return", arguments, idempotency_key, work)

    def get_return(self, return_id: str) -> Return:
        """The return with ``return_id``."""
        return self._read(lambda uow: _load_return(uow, return_id))

    def approve_return(self, return_id: str, idempotency_key: str | None = None) -> Return:
        """Accept the return; a ``ship`` return gets a label through the carrier port."""

        def work(uow: UnitOfWork, now: datetime) -> Return:
            rma = _load_return(uow, return_id)
            rma.require("approve")
            tracking = None
            if rma.method == "ship" and self.carrier is not None:
                order = _load_order(uow, rma.order_id)
                depot = _returns_location(StockSession(uow, now), order)
                if depot is not None:
                    units = sum(line.requested for line in rma.lines)
                    label = self.carrier.create_label(
                        f"return-{rma.id}",
                        depot,
                        order.delivery.address,
                        units,
                        key=f"label:{rma.id}",
                    )
                    tracking = label.tracking
            rma, events = rma.approve(now, tracking)
            uow.returns.put(rma)
            uow.record(events)
            return rma

        return self._run("approve_return", {"return_id": return_id}, idempotency_key, work)

    def reject_return(
        self, return_id: str, reason: str = "", idempotency_key: str | None = None
    ) -> Return:
        """Refuse the return; its units may be asked back again."""
        return self._return_command(
            "reject_return",
            return_id,
            {"reason": reason},
            idempotency_key,
            lambda r, now: r.reject(reason, now),
        )

    def close_return(self, return_id: str, idempotency_key: str | None = None) -> Return:
        """Close a refunded, exchanged, rejected or abandoned return."""
        return self._return_command(
            "close_return", return_id, {}, idempotency_key, lambda r, now: r.close(now)
        )

    def _return_command(
        self,
        command: str,
        return_id: str,
        arguments: Mapping[str, object],
        idempotency_key: str | None,
        decide: Callable[[Return, datetime], tuple[Return, list[DomainEvent]]],
    ) -> Return:
        def work(uow: UnitOfWork, now: datetime) -> Return:
            rma, events = decide(_load_return(uow, return_id), now)
            uow.returns.put(rma)
            uow.record(events)
            return rma

        return self._run(command, {"return_id": return_id, **arguments}, idempotency_key, work)

    def receive_return(
        self,
        return_id: str,
        location_id: str,
        dispositions: Mapping[str, Mapping[Disposition | str, int]],
        idempotency_key: str | None = None,
    ) -> Return:
        """Units arrive at a location with RETURNS capability and are inspected: a
        disposition per unit. RESTOCK units go back on hand there (a restock in the ledger);
        the others are recorded on the return."""

        def work(uow: UnitOfWork, now: datetime) -> Return:
            stock = StockSession(uow, now)
            location = stock.location(location_id)
            if not location.can(Capability.RETURNS):
                raise InvalidReturn([f"location {location.id} does not take returns"])
            rma = _load_return(uow, return_id)
            before = {line.line_id: line.received for line in rma.lines}
            rma, events = rma.receive(location.id, dispositions, now)
            uow.record(events)
            for line_id, by in dispositions.items():
                restock = sum(n for key, n in by.items() if key == Disposition.RESTOCK)
                if restock:
                    item = stock.item(rma.line(line_id).sku)
                    stock.keep(item.restock(location.id, restock, f"return {rma.id}", now))
            received = {
                line.line_id: line.received - before[line.line_id]
                for line in rma.lines
                if line.received > before[line.line_id]
            }
            uow.orders.put(_load_order(uow, rma.order_id).mark_returned(received))
            uow.returns.put(rma)
            stock.flush()
            return rma

        arguments = {
            "return_id": return_id,
            "location_id": location_id,
            "dispositions": {k: dict(v) for k, v in dispositions.items()},
        }
        return self._run("receive_return", arguments, idempotency_key, work)

    def refund_return(self, return_id: str, idempotency_key: str | None = None) -> Money:
        """Refund the received units not refunded yet, through the payment port: each
        unit's share of its line total, less the restocking fee, plus shipping per the
        policy; never more than was captured less earlier refunds. Repeating it refunds
        nothing more."""

        def work(uow: UnitOfWork, now: datetime) -> Money:
            rma = _load_return(uow, return_id)
            order = _load_order(uow, rma.order_id)
            units = {
                line.line_id: line.awaiting_refund for line in rma.lines if line.awaiting_refund
            }
            if not units and rma.status not in (ReturnStatus.REQUESTED, ReturnStatus.APPROVED):
                return Money.zero(order.currency)
            rma.require("refund")
            quote = quote_refund(order, units, self.return_policy)
            amount = min(quote.amount, order.captured - order.refunded)
            order, events = self._payments.refund(
                order, amount, f"refund:{rma.id}:{rma.version}", now
            )
            uow.record(events)
            rma = rma.mark_refunded(units, amount, now)
            uow.record(
                [
                    ReturnRefunded(
                        return_id=rma.id,
                        order_id=order.id,
                        version=rma.version,
                        at=now,
                        amount=amount,
                        merchandise=quote.merchandise,
                        restocking_fee=quote.restocking_fee,
                        shipping=quote.shipping,
                    )
                ]
            )
            uow.orders.put(order.mark_refunded(units))
            uow.returns.put(rma)
            return amount

        return self._run("refund_return", {"return_id": return_id}, idempotency_key, work)

    def exchange(
        self, return_id: str, lines: Sequence[LineDraft], idempotency_key: str | None = None
    ) -> Order:
        """Settle a received return with a replacement order (same channel and delivery).
        The returned units' value is credit on the new order; a higher price is authorised
        for the difference, a lower one refunded on the original order."""

        def work(uow: UnitOfWork, now: datetime) -> Order:
            rma = _load_return(uow, return_id)
            rma.require("exchange")
            original = _load_order(uow, rma.order_id)
            units = {
                line.line_id: line.awaiting_refund for line in rma.lines if line.awaiting_refund
            }
            credit = min(
                quote_refund(original, units, self.return_policy, fee=False).merchandise,
                original.captured - original.refunded,
            )
            stock = StockSession(uow, now)
            draft = OrderDraft(
                channel=original.channel,
                currency=original.currency,
                lines=list(lines),
                delivery=original.delivery,
                customer_ref=original.customer_ref,
            )
            new = self._create_order(stock, draft, exchange_of=rma.id)
            applied = min(credit, new.total)
            new, credited = self._payments.credit(new, applied, f"credit:{rma.id}", now)
            uow.record(credited)
            if new.total > applied:
                new, authorized = self._payments.authorize(new, new.total - applied, now)
                uow.record(authorized)
            original = original.mark_refunded(units)
            original, refunded = self._payments.refund(
                original, credit - applied, f"refund:{rma.id}:exchange", now
            )
            uow.record(refunded)
            rma, events = rma.mark_exchanged(new.id, now)
            uow.record(events)
            uow.orders.put(original)
            uow.orders.put(new)
            uow.returns.put(rma)
            stock.flush()
            return new

        arguments = {"return_id": return_id, "lines": list(lines)}
        return self._run("exchange", arguments, idempotency_key, work)

    # --- locations and channels -----------------------------------------------------------

    def add_location(self, location: Location, idempotency_key: str | None = None) -> Location:
        """Add a stock point to the network."""
        if not isinstance(location, Location):
            raise InvalidLocation(f"expected a Location, got {type(location).__name__}")

        def work(uow: UnitOfWork, now: datetime) -> Location:
            if uow.locations.get(location.id) is not None:
                raise DuplicateLocation(f"location {location.id!r} already exists")
            stored = attrs.evolve(location, version=1)
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
        idempotency_key: str | None = None,
    ) -> Location:
        """Change a location's settings: deactivate it, its capabilities, priority, capacity."""
        changes: dict[str, Any] = {}
        if active is not None:
            changes["active"] = bool(active)
        if capabilities is not None:
            changes["capabilities"] = frozenset(capabilities)
        if priority is not None:
            changes["priority"] = priority
        if daily_capacity != "unchanged":
            changes["daily_capacity"] = daily_capacity

        def work(uow: UnitOfWork, now: datetime) -> Location:
            current = uow.locations.get(LocationId(location_id))
            if current is None:
                raise UnknownLocation(f"no location {location_id!r}")
            updated = attrs.evolve(current, version=current.version + 1, **changes)
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
            return updated

        return self._run(
            "update_location", {"location_id": location_id, **changes}, idempotency_key, work
        )

    def locations(self) -> list[Location]:
        """Every location, sorted by id."""
        return self._read(lambda uow: uow.locations.all())

    def configure_channel(
        self,
        channel: str,
        *,
        location_ids: Iterable[str] | None = None,
        kinds: Iterable[LocationKind | str] | None = None,
        buffer: int = 0,
        buffer_percent: int | Decimal = 0,
        low_stock_threshold: int | None = None,
        idempotency_key: str | None = None,
    ) -> Channel:
        """Say which locations feed ``channel`` (by id and/or kind) and what it holds back.

        A channel never configured sells from every active location with no buffer.
        """
        ids = frozenset(LocationId(x) for x in location_ids) if location_ids is not None else None
        kind_set = frozenset(LocationKind(k) for k in kinds) if kinds is not None else None
        _check_channel_numbers(buffer, buffer_percent, low_stock_threshold)

        def work(uow: UnitOfWork, now: datetime) -> Channel:
            if ids is not None:
                unknown = sorted(x for x in ids if uow.locations.get(x) is None)
                if unknown:
                    raise InvalidChannelConfig(
                        f"channel {channel!r} names unknown locations {unknown}"
                    )
            current = uow.channels.get(ChannelId(channel))
            config = Channel(
                id=ChannelId(channel),
                location_ids=ids,
                kinds=kind_set,
                buffer=buffer,
                buffer_percent=Decimal(buffer_percent),
                low_stock_threshold=low_stock_threshold,
                version=(current.version if current else 0) + 1,
            )
            uow.channels.put(config)
            uow.record([ChannelConfigured(version=config.version, at=now, channel=config.id)])
            return config

        arguments = {
            "channel": channel,
            "location_ids": ids,
            "kinds": kind_set,
            "buffer": buffer,
            "buffer_percent": Decimal(buffer_percent),
            "low_stock_threshold": low_stock_threshold,
        }
        return self._run("configure_channel", arguments, idempotency_key, work)

    # --- stock commands -------------------------------------------------------------------

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
        feed = [p if isinstance(p, StockPosition) else StockPosition(*p) for p in positions]
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

    # --- reservations ---------------------------------------------------------------------

    def reserve(
        self,
        sku: str,
        quantity: int,
        *,
        channel: str | None = None,
        ttl: timedelta,
        key: str,
        idempotency_key: str | None = None,
    ) -> Reservation:
        """Hold ``quantity`` of a SKU for checkout ``key`` until ``ttl`` from now; refused
        beyond the channel's ATP. An order placed with ``reservation_key=key`` takes it over."""
        _require_sku(sku)
        if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
            raise InvalidQuantity(f"reservation ttl must be a positive timedelta, got {ttl!r}")

        def work(uow: UnitOfWork, now: datetime) -> Reservation:
            stock = StockSession(uow, now)
            pool = stock.pool(ChannelId(channel) if channel is not None else None)
            item = stock.apply(sku, lambda i: i.reserve(key, quantity, pool, now + ttl, now))
            stock.flush()
            return item.reservation(key)

        arguments = {
            "sku": sku,
            "quantity": quantity,
            "channel": channel,
            "ttl": str(ttl),
            "key": key,
        }
        return self._run("reserve", arguments, idempotency_key, work)

    def extend_reservation(
        self, key: str, ttl: timedelta, idempotency_key: str | None = None
    ) -> list[Reservation]:
        """Let every SKU reserved under ``key`` live ``ttl`` from now."""

        def work(uow: UnitOfWork, now: datetime) -> list[Reservation]:
            stock = StockSession(uow, now)
            extended = [
                stock.apply(sku, lambda i: i.extend(key, now + ttl, now)).reservation(key)
                for sku in _reserved_skus(uow, key)
            ]
            stock.flush()
            return extended

        return self._run("extend_reservation", {"key": key, "ttl": str(ttl)}, idempotency_key, work)

    def release_reservation(self, key: str, idempotency_key: str | None = None) -> int:
        """End the checkout reservation ``key`` on every SKU; returns the units released."""

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

    # --- transfers and supply -------------------------------------------------------------

    def transfer(
        self,
        sku: str,
        from_location: str,
        to_location: str,
        quantity: int,
        reference: str = "",
        idempotency_key: str | None = None,
    ) -> Transfer:
        """Send units between locations; in transit they are available at neither."""
        _require_sku(sku)

        def work(uow: UnitOfWork, now: datetime) -> Transfer:
            stock = StockSession(uow, now)
            source, target = stock.location(from_location), stock.location(to_location)
            if source.id == target.id:
                raise InvalidLocation(f"a transfer needs two locations, got {source.id} twice")
            transfer = Transfer(
                self.ids.new_id("T"), source.id, target.id, quantity, now, reference
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
        return self._run("transfer", arguments, idempotency_key, work)

    def receive_transfer(
        self, sku: str, transfer_id: str, idempotency_key: str | None = None
    ) -> StockLevel:
        """A transfer arrives: its units join on hand at the destination."""

        def work(uow: UnitOfWork, now: datetime) -> StockLevel:
            stock = StockSession(uow, now)
            transfer = next((t for t in stock.item(sku).transfers if t.id == transfer_id), None)
            if transfer is None:
                raise UnknownTransfer(f"no transfer {transfer_id!r} of {sku} is in transit")
            item = stock.apply(sku, lambda i: i.receive_transfer(transfer_id, now))
            stock.flush()
            return item.level(transfer.to_location)

        return self._run(
            "receive_transfer", {"sku": sku, "transfer_id": transfer_id}, idempotency_key, work
        )

    def add_supply(
        self,
        sku: str,
        location_id: str,
        quantity: int,
        eta: datetime,
        reference: str,
        idempotency_key: str | None = None,
    ) -> Supply:
        """Expect incoming supply (a purchase order); ``receive`` with the same reference
        settles it."""
        _require_sku(sku)
        if not isinstance(eta, datetime) or eta.tzinfo is None:
            raise InvalidQuantity(f"supply eta must be a timezone-aware datetime, got {eta!r}")

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

    def promise_date(self, sku: str, quantity: int, channel: str | None = None) -> datetime | None:
        """When ``quantity`` units can be promised on a channel: now if ATP covers them, the
        earliest ETA of supply that does, or None."""
        require_units(quantity, "quantity to promise")
        now = self.clock.now()

        def read(uow: UnitOfWork) -> datetime | None:
            stock = StockSession(uow, now)
            pool = stock.pool(ChannelId(channel) if channel is not None else None)
            return stock.item(sku).promise_date(quantity, pool, now)

        return self._read(read)

    # --- stock queries --------------------------------------------------------------------

    def available(self, sku: str, channel: str | None = None) -> int:
        """Available to promise on a channel (``None``: every active location, no buffer)."""

        def read(uow: UnitOfWork) -> int:
            stock = StockSession(uow, self.clock.now())
            pool = stock.pool(ChannelId(channel) if channel is not None else None)
            item = uow.inventory.get(Sku(sku))
            return item.atp(pool) if item is not None else 0

        return self._read(read)

    def available_many(self, skus: Iterable[str], channel: str | None = None) -> dict[str, int]:
        """ATP of several SKUs on one channel, read in one go."""

        def read(uow: UnitOfWork) -> dict[str, int]:
            stock = StockSession(uow, self.clock.now())
            pool = stock.pool(ChannelId(channel) if channel is not None else None)
            result: dict[str, int] = {}
            for sku in skus:
                item = uow.inventory.get(Sku(sku))
                result[sku] = item.atp(pool) if item is not None else 0
            return result

        return self._read(read)

    def stock_matrix(
        self, skus: Iterable[str], location_ids: Iterable[str] | None = None
    ) -> dict[str, dict[str, int]]:
        """Available units per SKU per location (every location when none are named)."""
        wanted = list(skus)

        def read(uow: UnitOfWork) -> dict[str, dict[str, int]]:
            locations = (
                [LocationId(x) for x in location_ids]
                if location_ids is not None
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
            location = StockSession(uow, self.clock.now()).location(location_id)
            return _item(uow, sku).level(location.id)

        return self._read(read)

    def availability(
        self,
        skus: str | Mapping[str, int],
        *,
        near: GeoPoint | None = None,
        radius_km: float | None = None,
        capability: Capability | None = None,
    ) -> list[LocationAvailability]:
        """Store locator: active locations that can serve a SKU (``skus="SKU-1"``, any
        available unit) or a whole basket (``{"SKU-1": 2, "SKU-2": 1}``), within
        ``radius_km`` of ``near``, nearest first (then by id). ``available`` is the number of
        whole baskets the location can serve."""
        basket = {skus: 1} if isinstance(skus, str) else dict(skus)
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


# --- helpers ------------------------------------------------------------------------------


def _fingerprint(command: str, arguments: Mapping[str, object]) -> str:
    body = _fingerprint_converter.unstructure({"command": command, **arguments})
    text = repr(_canonical(body))
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(value: object) -> object:
    if isinstance(value, dict):
        return sorted((str(k), _canonical(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _replayed(record: IdempotencyRecord, key: str, fingerprint: str) -> object:
    if record.fingerprint != fingerprint:
        raise DuplicateIdempotencyKey(
            f"idempotency key {key!r} was already used for a different command or arguments"
        )
    return record.result


def _load_order(uow: UnitOfWork, order_id: str) -> Order:
    order = uow.orders.get(OrderId(order_id))
    if order is None:
        raise UnknownOrder(f"no order {order_id!r}")
    return order


def _order_of_fulfillment(uow: UnitOfWork, fulfillment_id: str) -> Order:
    order_id = uow.orders.by_fulfillment(FulfillmentId(fulfillment_id))
    if order_id is None:
        raise UnknownFulfillment(f"no fulfilment order {fulfillment_id!r}")
    return _load_order(uow, order_id)


def _fulfillments_of(
    order: Order, plan: AllocationPlan
) -> list[tuple[FulfillmentId, LocationId, list[FulfilledUnits]]]:
    """One fulfilment order per location of the plan, numbered after the order's existing ones."""
    grouped: dict[LocationId, list[FulfilledUnits]] = {}
    for a in plan.assignments:
        grouped.setdefault(a.location_id, []).append(FulfilledUnits(a.line_id, a.sku, a.quantity))
    first = len(order.fulfillments) + 1
    return [
        (FulfillmentId(f"{order.id}-F{n}"), location_id, grouped[location_id])
        for n, location_id in enumerate(plan.shipments, start=first)
    ]


def _load_return(uow: UnitOfWork, return_id: str) -> Return:
    rma = uow.returns.get(ReturnId(return_id))
    if rma is None:
        raise UnknownReturn(f"no return {return_id!r}")
    return rma


def _returns_location(stock: StockSession, order: Order) -> Location | None:
    """The active location taking returns nearest the customer (then by id)."""
    address = order.delivery.address
    point = address.geo if address is not None else None
    depots = [loc for loc in stock.locations.values() if loc.active and loc.can(Capability.RETURNS)]
    return min(depots, key=lambda loc: (_distance(point, loc.geo) or 0.0, loc.id), default=None)


def _item(uow: UnitOfWork, sku: str) -> InventoryItem:
    return uow.inventory.get(Sku(sku)) or InventoryItem(Sku(sku))


def _reserved_skus(uow: UnitOfWork, key: str) -> list[Sku]:
    skus = uow.inventory.reserved_under(key)
    if not skus:
        raise UnknownReservation(f"no live reservation {key!r}")
    return skus


def _next_line_id(order: Order) -> LineId:
    suffixes = [
        int(line.id.rsplit("-", 1)[-1])
        for line in order.lines
        if line.id.rsplit("-", 1)[-1].isdigit()
    ]
    return LineId(f"{order.id}-{max(suffixes, default=0) + 1}")


def _require_sku(sku: object) -> None:
    if not isinstance(sku, str) or not sku.strip():
        raise InvalidQuantity(f"sku must be a non-empty string, got {sku!r}")


def _check_channel_numbers(
    buffer: int, buffer_percent: int | Decimal, low_stock_threshold: int | None
) -> None:
    if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 0:
        raise InvalidChannelConfig(f"channel buffer must be an int >= 0, got {buffer!r}")
    if (
        isinstance(buffer_percent, bool)
        or not isinstance(buffer_percent, int | Decimal)
        or not (0 <= buffer_percent <= 100)
    ):
        raise InvalidChannelConfig(
            f"buffer_percent must be between 0 and 100, got {buffer_percent!r}"
        )
    if low_stock_threshold is not None and (
        isinstance(low_stock_threshold, bool)
        or not isinstance(low_stock_threshold, int)
        or low_stock_threshold < 0
    ):
        raise InvalidChannelConfig(
            f"low_stock_threshold must be None or an int >= 0, got {low_stock_threshold!r}"
        )


def _distance(a: GeoPoint | None, b: GeoPoint | None) -> float | None:
    if a is None:
        return 0.0
    if b is None:
        return None
    return distance_km(a, b)


def _serve_all_backorders(stock: StockSession) -> None:
    """Load every SKU that waits for stock, so the flush serves it (after a reactivation)."""
    for sku in stock.uow.inventory.skus():
        stock.item(sku)
    stock.flush()


def _apply_feed(
    item: InventoryItem, rows: list[StockPosition], mode: str, reference: str, now: datetime
) -> ItemChange:
    change = ItemChange(item)
    for row in rows:
        loc = LocationId(row.location_id)
        item = change.item
        if mode == "absolute":
            change = change.join(item.count(loc, row.quantity, now, reference))
        elif row.quantity > 0:
            change = change.join(item.receive(loc, row.quantity, reference, now))
        elif row.quantity < 0:
            change = change.join(item.adjust(loc, row.quantity, reference, now))
    summary = StockFeedApplied(
        version=change.item.version, at=now, sku=item.sku, positions=len(rows), mode=mode
    )
    return ItemChange(change.item, change.movements, (summary,))
