"""The service core: the unit-of-work runner and the stock and hold mechanics that the
use cases share. ``OMS`` (in :mod:`omscore.service`) combines it with one mixin per pillar."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import TypeVar, cast

import attrs

from omscore._checks import require_flag, require_names, require_text
from omscore._payments import Payments
from omscore._stock import StockSession
from omscore._values import evolved
from omscore.adapters.system import SystemClock, UuidIds
from omscore.errors import (
    CarrierError,
    ConcurrencyConflict,
    DuplicateIdempotencyKey,
    InvalidArgument,
    InvalidDraft,
    InvalidPlan,
    InvalidQuantity,
    InvalidQuery,
    OmsError,
    PaymentLimitExceeded,
    UnknownFulfillment,
    UnknownOrder,
    UnknownReservation,
    UnknownReturn,
)
from omscore.events import (
    DeliveryChanged,
    DomainEvent,
    FulfilledUnits,
    LineAdded,
    LineQuantityChanged,
    LineRemoved,
    SourcingDecided,
    StockFeedApplied,
    UnitsCancelled,
)
from omscore.geo import Address, GeoPoint, distance_km
from omscore.ids import ChannelId, FulfillmentId, LineId, LocationId, OrderId, ReturnId, Sku
from omscore.inventory import (
    Capability,
    ExpectedArrival,
    InventoryItem,
    ItemChange,
    Location,
    LocationKind,
    LocationLoad,
)
from omscore.inventory.item import require_units
from omscore.money import Money
from omscore.orders import (
    DeliveryMethod,
    DraftLimits,
    FulfillmentOrder,
    FulfillmentStatus,
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
    Label,
    PaymentPort,
    Store,
    UnitOfWork,
)
from omscore.returns import (
    Return,
    ReturnPolicy,
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

#: No fulfilment orders taken back (the capacity of a usual sourcing run).
_NONE_FREED: Mapping[LocationId, int] = MappingProxyType({})

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
class QueuedFulfillment:
    """A fulfilment order in a work queue: its order, and how long it has waited in its
    status when the queue was read."""

    order_id: OrderId
    fulfillment: FulfillmentOrder
    waiting: timedelta

    @property
    def since(self) -> datetime:
        """When it entered its status."""
        return self.fulfillment.since


@attrs.frozen(slots=True)
class IncomingSupply:
    """Supply still expected, as read at one moment: the SKU, the arrival (a purchase order,
    or a transfer with an ETA), how late it was then (zero while its ETA is ahead) and the
    units of the SKU's backorders waiting for stock, which are what a late arrival keeps
    customers waiting for."""

    sku: Sku
    arrival: ExpectedArrival
    late: timedelta
    backordered: int


@attrs.frozen(slots=True)
class QueuedBackorder:
    """Units of an order line waiting for stock, as read at one moment: since when, how
    long that was, and the date the supply expected gives them (``expected``, as
    ``backorder_dates`` does; None when what is expected does not cover them)."""

    order_id: OrderId
    line_id: LineId
    sku: Sku
    quantity: int
    since: datetime
    waiting: timedelta
    expected: datetime | None


@attrs.frozen(slots=True)
class QueuedOrder:
    """An order in an order queue, and how long it had waited since it was placed when the
    queue was read."""

    order: Order
    waiting: timedelta

    @property
    def since(self) -> datetime:
        """When the order was placed."""
        return self.order.placed_at


@attrs.frozen(slots=True)
class StockPosition:
    """One position of a stock feed: a SKU's on hand (or its change) at a location."""

    location_id: str
    sku: str
    quantity: int


class ServiceCore:
    """What every use case stands on: settings, ports, the runner, shared stock steps."""

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
        record_sourcing: bool = False,
    ) -> None:
        _check_collaborators(
            {
                "store": store,
                "sourcing": sourcing,
                "carrier": carrier,
                "payments": payments,
                "clock": clock,
                "ids": ids,
                "return_policy": return_policy,
                "limits": limits,
            }
        )
        require_units(max_attempts, "max_attempts")
        require_units(max_rejections, "max_rejections")
        require_flag(record_sourcing, "record_sourcing")
        if not isinstance(pickup_expiry, timedelta) or pickup_expiry <= timedelta(0):
            raise InvalidArgument(
                f"pickup_expiry must be a positive timedelta, got {pickup_expiry!r}"
            )
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
        self.record_sourcing = record_sourcing

    def _run(
        self,
        command: str,
        arguments: Mapping[str, object],
        idempotency_key: str | None,
        work: Callable[[UnitOfWork, datetime], R],
    ) -> R:
        if idempotency_key is not None:
            require_text(idempotency_key, "idempotency_key")
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
            now = self._now()
            result = work(uow, now)
            if idempotency_key is not None:
                uow.idempotency.put(IdempotencyRecord(idempotency_key, fingerprint, result, now))
            uow.commit()
            return result

    def _new_id(self, prefix: str) -> str:
        """A new id from the id generator, which must give a non-empty string."""
        new = self.ids.new_id(prefix)
        if not isinstance(new, str) or not new.strip():
            raise InvalidArgument(f"the id generator must return a non-empty string, got {new!r}")
        return new

    def _buy_label(
        self,
        reference: str,
        origin: Location,
        destination: Address | None,
        units: int,
        *,
        key: str,
    ) -> Label:
        """A label from the carrier port, checked: a :class:`Label` with a tracking number
        and the carrier's name, else CarrierError. What the port raises but an OmsError (its
        HTTP client's timeout, say) is a CarrierError too, raised from it."""
        assert self.carrier is not None
        try:
            label = self.carrier.create_label(reference, origin, destination, units, key=key)
        except OmsError:
            raise
        except Exception as error:
            raise CarrierError(
                f"the carrier port's create_label raised {type(error).__name__}: {error}"
            ) from error
        if not (
            isinstance(label, Label)
            and isinstance(label.tracking, str)
            and label.tracking.strip()
            and isinstance(label.carrier, str)
            and label.carrier.strip()
        ):
            raise CarrierError(
                "the carrier port's create_label returned no Label with a tracking number "
                f"and a carrier: {label!r}"
            )
        return label

    def _now(self) -> datetime:
        """The clock's time, which must be a timezone-aware datetime: a naive one cannot be
        compared with the aware times the OMS stores, and two stores would read it apart."""
        now = self.clock.now()
        if now.__class__ is datetime and now.tzinfo is UTC:  # the usual clock, checked fast
            return now
        if not isinstance(now, datetime) or now.utcoffset() is None:
            raise InvalidArgument(f"the clock must return a timezone-aware datetime, got {now!r}")
        return now

    def _read(self, work: Callable[[UnitOfWork], R]) -> R:
        with self.store.unit_of_work(write=False) as uow:
            return work(uow)

    def _create_order(
        self,
        stock: StockSession,
        draft: OrderDraft,
        exchange_of: ReturnId | None = None,
        *,
        hold: bool = True,
    ) -> Order:
        """Validate the draft, create the order and (with ``hold``) hold its stock; the
        order is not yet stored."""
        self._check_draft(draft, stock)
        order_id = OrderId(self._new_id("O"))
        line_ids = [LineId(f"{order_id}-{i}") for i in range(1, len(draft.lines) + 1)]
        order, events = Order.from_checked_draft(order_id, draft, line_ids, stock.now)
        if exchange_of is not None:
            order = evolved(order, exchange_of=exchange_of)
        stock.uow.record(events)
        if hold:
            self._hold_new_order(stock, order)
        return order

    def _check_draft(self, draft: OrderDraft, stock: StockSession) -> None:
        problems = draft_problems(draft, self.limits)
        problems += _pickup_problems(getattr(draft, "delivery", None), stock)
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
        line_of = order.line_finder()
        for sku, sku_needs in sorted(needs.items()):
            remaining = dict(sku_needs)
            if key is not None and stock.item(sku).checkout_holds(key):
                remaining = self._take_over(stock, order, key, sku, sku_needs)
            for line_id, units in remaining.items():
                if units:
                    self._hold_line(stock, order, line_of(line_id), units)

    def _take_over(
        self,
        stock: StockSession,
        order: Order,
        key: str,
        sku: Sku,
        needs: list[tuple[LineId, int]],
    ) -> dict[LineId, int]:
        pickup = order.delivery.pickup_location
        usable = {pickup} if pickup is not None else set(stock.pool(order.channel).locations)
        change, remaining = stock.item(sku).take_over(key, order.id, needs, stock.now, usable)
        stock.keep(change)
        return remaining

    def _hold_line(self, stock: StockSession, order: Order, line: OrderLine, units: int) -> None:
        pool = stock.pool(order.channel)
        pickup = order.delivery.pickup_location
        if pickup is not None and pickup in order.rejected_locations:
            pickup = None
        item = stock.item(line.sku)
        stock.keep(
            item.hold_for_line(
                order.id,
                line.id,
                units,
                pool,
                stock.now,
                pickup,
                since=order.placed_at,
                excluded=order.rejected_locations,
            )
        )

    def _sync_holds(self, stock: StockSession, order: Order) -> None:
        """Make each line's held plus backordered units equal its open units."""
        for line in order.lines:
            item = stock.item(line.sku)
            if not (line.open or item.holds or item.backorders):
                continue
            waiting = item.held_for(order.id, line.id) + item.backordered_for(order.id, line.id)
            if waiting < line.open:
                self._hold_line(stock, order, line, line.open - waiting)
            elif waiting > line.open:
                self._release_line(stock, order.id, line.sku, line.id, waiting - line.open)

    def _refund(
        self, uow: UnitOfWork, order: Order, amount: Money, key: str, now: datetime
    ) -> Order:
        """Refund ``amount`` (at most ``order.refundable``): on the order's own
        authorisations first, the rest (credit from an exchange) on the payment of the
        order the credit came from, which counts it as given back. Events are recorded,
        that order is put; the refunded ``order`` is returned for the caller to put."""
        on_card = min(amount, order.refundable_on_card)
        credit = amount - on_card
        source = _credit_source(uow, order) if credit.amount > 0 else None  # before any call
        order, events = self._payments.refund(order, on_card, key, now)
        uow.record(events)
        if source is None:
            return order
        return self._refund_credit(uow, order, source, credit, key, now)

    def _refund_credit(
        self, uow: UnitOfWork, order: Order, source: Order, credit: Money, key: str, now: datetime
    ) -> Order:
        """Give ``credit`` of replacement ``order`` back on the payment of ``source``, the
        order it came from, which counts it as come back."""
        source = self._refund(uow, source, credit, f"{key}:credit", now)
        source, back = self._payments.note(
            source, PaymentKind.TRANSFERRED, -credit, f"{key}:credit", now
        )
        uow.record(back)
        uow.orders.put(source)
        order, given = self._payments.note(
            order, PaymentKind.CREDIT_REFUNDED, credit, f"{key}:credit", now
        )
        uow.record(given)
        return order

    def _settle(self, uow: UnitOfWork, order: Order, now: datetime) -> Order:
        """Once nothing more will be captured: void what is left of the order's
        authorisations, and give back credit from an exchange that no shipment used (a
        replacement whose units were cancelled) on the payment it came from."""
        order, settled = self._payments.settle(order, now)
        uow.record(settled)
        if not order.fully_settled:
            return order
        unused = order.credit_left
        if unused.amount <= 0:
            return order
        key = f"credit-back:{order.id}"
        order, used = self._payments.note(order, PaymentKind.APPLIED, unused, key, now)
        uow.record(used)
        return self._refund_credit(uow, order, _credit_source(uow, order), unused, key, now)

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
            elif isinstance(event, DeliveryChanged):
                self._hold_again(stock, order)

    def _hold_again(self, stock: StockSession, order: Order) -> None:
        """Release what the order holds and waits for, and hold its open units again as its
        delivery now asks (a pickup at its store, else the channel's pool); backorders keep
        their place in the queue."""
        for sku in dict.fromkeys(line.sku for line in order.lines):
            stock.keep(stock.item(sku).release_order(order.id, stock.now)[0])
        self._sync_holds(stock, order)

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

    # --- helpers ------------------------------------------------------------------------------

    def _source(self, stock: StockSession, order: Order) -> tuple[Order, AllocationPlan]:
        """Run the policy on the order's open units; create one fulfilment order per
        location, allocate there, and hold (or backorder) what stays open."""
        plan, fulfillments = self._plan(stock, order)
        return self._apply_plan(stock, order, plan, fulfillments), plan

    def _plan(
        self, stock: StockSession, order: Order, freed: Mapping[LocationId, int] = _NONE_FREED
    ) -> tuple[AllocationPlan, Planned]:
        """The policy's plan for the order's open units, and the fulfilment orders it makes
        (``freed``: fulfilment orders per location this command takes back today, which its
        capacity counts as not taken)."""
        lines = [RequestLine(line.id, line.sku, line.open) for line in order.lines if line.open]
        request = self._request(stock, order, lines, whole=order.ship_complete)
        plan = self.sourcing.plan(request, self._snapshot(stock, order, request, freed))
        if order.ship_complete and plan.assignments:
            _require_whole(order, plan)
        return plan, _fulfillments_of(order, plan)

    def _apply_plan(
        self, stock: StockSession, order: Order, plan: AllocationPlan, fulfillments: Planned
    ) -> Order:
        """Create the planned fulfilment orders, allocate there, and hold (or backorder)
        what stays open."""
        now, uow = stock.now, stock.uow
        skus = sorted({line.sku for line in order.lines if line.open})
        if self.record_sourcing:
            uow.record([_decided(order, plan, now)])
        allocations: dict[Sku, list[tuple[LocationId, int, str]]] = {}
        counted: dict[LocationId, date] = {}
        for fulfillment_id, location_id, units in fulfillments:
            for u in units:
                allocations.setdefault(u.sku, []).append((location_id, u.quantity, fulfillment_id))
            day = self._count_load(stock, location_id)
            if day is not None:
                counted[location_id] = day
        if fulfillments:
            order, events = order.allocate(fulfillments, now, counted)
            uow.record(events)
        for sku in skus:
            item = stock.item(sku)
            stock.keep(item.allocate_order(order.id, allocations.get(sku, ()), now))
        self._sync_holds(stock, order)
        return order

    def _request(
        self, stock: StockSession, order: Order, lines: list[RequestLine], *, whole: bool
    ) -> SourcingRequest:
        """A request for ``lines`` of the order (``whole``: from one location or none)."""
        delivery = order.delivery
        return SourcingRequest(
            lines=lines,
            delivery=delivery.method,
            destination=_customer_point(stock, order),
            channel=order.channel,
            exclude=order.rejected_locations,
            pickup_location=delivery.pickup_location,
            ship_complete=whole,
            exclude_reason=REJECTED,
        )

    def _snapshot(
        self,
        stock: StockSession,
        order: Order,
        request: SourcingRequest,
        freed: Mapping[LocationId, int] = _NONE_FREED,
    ) -> NetworkSnapshot:
        network = stock.pool_network(order.channel, order.delivery.pickup_location)
        available: dict[tuple[LocationId, Sku], int] = {}
        for sku in {line.sku for line in request.lines}:
            item = stock.item(sku)
            levels, own = item.levels, item.order_holds_by_location(order.id)
            for location_id in network.stocked(levels):
                level = levels.get(location_id)
                if level is None:
                    continue
                # The order's own holds count as available to it: allocating releases them.
                units = level.available_after_release(own.get(location_id, 0))
                if units:
                    available[(location_id, sku)] = units
        capacity = _capacity_left(stock, available, freed) if network.capped else {}
        return NetworkSnapshot(network.locations, available, capacity)

    def _count_load(self, stock: StockSession, location_id: LocationId) -> date | None:
        """Count one fulfilment order more against the location's capacity today; the day
        counted on, or None for a location without a cap."""
        location = stock.locations[location_id]
        today = _counting_day(location, stock.now)
        if today is not None:
            load = stock.uow.loads.get(location_id) or LocationLoad(location_id, today)
            stock.uow.loads.put(load.take(today, 1))
        return today

    def _release_loads(self, stock: StockSession, freed: Mapping[LocationId, int]) -> None:
        """Give back today's capacity of fulfilment orders taken back from their locations."""
        for location_id, count in freed.items():
            today = stock.locations[location_id].day_at(stock.now)
            load = stock.uow.loads.get(location_id)
            if load is not None and load.used_on(today):
                stock.uow.loads.put(load.take(today, -min(count, load.used_on(today))))


S = TypeVar("S", FulfillmentStatus, OrderStatus)

_STATUS_NAMES = {FulfillmentStatus: "fulfilment status", OrderStatus: "order status"}


def _chosen_statuses(
    kind: type[S], given: Iterable[S | str] | None, default: frozenset[S]
) -> frozenset[S]:
    """The statuses a query asked for (one, or several, by member or value), or
    ``default``; :class:`InvalidQuery` names any that ``kind`` does not know."""
    if given is None:
        return default
    given = [given] if isinstance(given, str) else require_names(given, "statuses", InvalidQuery)
    known = {s.value for s in kind}
    unknown = sorted(str(s) for s in given if s not in known)
    if unknown:
        noun = _STATUS_NAMES[kind]
        raise InvalidQuery(f"unknown {noun}(es) {unknown}; known: {sorted(known)}")
    return frozenset(kind(s) for s in given)


def _check_wait(older_than: timedelta | None, *, required: bool = False) -> None:
    if older_than is None and not required:
        return
    if not isinstance(older_than, timedelta):
        raise InvalidQuery(f"older_than must be a timedelta, got {older_than!r}")
    if older_than < timedelta(0):
        raise InvalidQuery(f"older_than must not be negative, got {older_than}")


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
    if not isinstance(order_id, str):
        raise UnknownOrder(f"no order {order_id!r} (an order id is a string)")
    order = uow.orders.get(OrderId(order_id))
    if order is None:
        raise UnknownOrder(f"no order {order_id!r}")
    return order


def _order_of_fulfillment(uow: UnitOfWork, fulfillment_id: str) -> Order:
    if not isinstance(fulfillment_id, str):
        raise UnknownFulfillment(
            f"no fulfilment order {fulfillment_id!r} (a fulfilment order id is a string)"
        )
    order_id = uow.orders.by_fulfillment(FulfillmentId(fulfillment_id))
    if order_id is None:
        raise UnknownFulfillment(f"no fulfilment order {fulfillment_id!r}")
    return _load_order(uow, order_id)


def _capacity_left(
    stock: StockSession,
    available: Mapping[tuple[LocationId, Sku], int],
    freed: Mapping[LocationId, int] = _NONE_FREED,
) -> dict[LocationId, int]:
    """Fulfilment orders each location with available units can still take today (a
    location without units cannot be chosen, so its counter is not read; ``freed`` are
    taken back by the command, so they count as not taken)."""
    locations = stock.locations
    capacity = {}
    for location_id in dict.fromkeys(location_id for location_id, _ in available):
        location = locations[location_id]
        if location.daily_capacity is not None:
            load = stock.uow.loads.get(location_id)
            used = load.used_on(location.day_at(stock.now)) if load is not None else 0
            capacity[location_id] = location.daily_capacity - used + freed.get(location_id, 0)
    return capacity


def _counting_day(location: Location, now: datetime) -> date | None:
    """The day a fulfilment order the location takes ``now`` counts against its capacity
    on: its own today, or None when it has no cap."""
    return location.day_at(now) if location.daily_capacity is not None else None


def _freed_today(
    stock: StockSession, fulfillments: Iterable[FulfillmentOrder]
) -> dict[LocationId, int]:
    """How many of ``fulfillments`` their location's capacity counted today: the capacity
    that taking them back gives back (an order it never counted gives back nothing)."""
    freed: dict[LocationId, int] = {}
    for f in fulfillments:
        location = stock.locations.get(f.location_id)
        if location is None or f.counted_on is None:
            continue
        if f.counted_on == location.day_at(stock.now):
            freed[f.location_id] = freed.get(f.location_id, 0) + 1
    return freed


def _uncounted(before: Order, after: Order) -> list[FulfillmentOrder]:
    """The fulfilment orders (as they were ``before``) whose capacity count a change to the
    order cleared: cancelled whole before their location accepted them."""
    if before.fulfillments is after.fulfillments:
        return []
    cleared = {
        f.id
        for f in after.fulfillments
        if f.status is FulfillmentStatus.CANCELLED and f.counted_on is None
    }
    return [f for f in before.fulfillments if f.counted_on is not None and f.id in cleared]


#: Fulfilment orders a plan makes: (id, location, units) each.
Planned = list[tuple[FulfillmentId, LocationId, list[FulfilledUnits]]]


def _fulfillments_of(order: Order, plan: AllocationPlan) -> Planned:
    """One fulfilment order per location of the plan, numbered after the order's existing ones."""
    grouped: dict[LocationId, list[FulfilledUnits]] = {}  # locations in order of first use
    for a in plan.assignments:
        grouped.setdefault(a.location_id, []).append(FulfilledUnits(a.line_id, a.sku, a.quantity))
    first = len(order.fulfillments) + 1
    return [
        (_fulfillment_id(order, n), location_id, units)
        for n, (location_id, units) in enumerate(grouped.items(), start=first)
    ]


#: What a sourcing trace says of a location the OMS left out because it rejected the order.
REJECTED = "rejected this order"


def _decided(order: Order, plan: AllocationPlan, now: datetime) -> SourcingDecided:
    """The event that keeps why ``plan`` split the order as it did."""
    return SourcingDecided(
        order_id=order.id,
        version=order.version,
        at=now,
        policy=plan.policy,
        trace=plan.trace,
        explanation=plan.explain(),
        cost=plan.cost,
    )


def _require_whole(order: Order, plan: AllocationPlan) -> None:
    """A ship-complete order's plan sends every open unit from one location."""
    if len(plan.shipments) > 1 or plan.units_unallocated:
        raise InvalidPlan(
            f"order {order.id} ships complete, but policy {plan.policy} planned "
            f"{plan.units_allocated} units from {list(plan.shipments)} and left "
            f"{plan.units_unallocated} behind"
        )


def _next_fulfillment_id(order: Order) -> FulfillmentId:
    """The id the order's next fulfilment order gets."""
    return _fulfillment_id(order, len(order.fulfillments) + 1)


def _fulfillment_id(order: Order, n: int) -> FulfillmentId:
    return FulfillmentId(f"{order.id}-F{n}")


def _load_return(uow: UnitOfWork, return_id: str) -> Return:
    if not isinstance(return_id, str):
        raise UnknownReturn(f"no return {return_id!r} (a return id is a string)")
    rma = uow.returns.get(ReturnId(return_id))
    if rma is None:
        raise UnknownReturn(f"no return {return_id!r}")
    return rma


def _customer_point(stock: StockSession, order: Order) -> GeoPoint | None:
    """Where the customer is: the pickup store of a click & collect order, else the
    delivery address (None when neither has a point)."""
    delivery = order.delivery
    if delivery.pickup_location is not None:
        pickup = stock.locations.get(delivery.pickup_location)
        return pickup.geo if pickup is not None else None
    return delivery.address.geo if delivery.address is not None else None


def _pickup_problems(delivery: object, stock: StockSession) -> list[str]:
    """Why the store a pickup ``delivery`` names cannot take it now (empty if it can, or
    for any other delivery)."""
    pickup = getattr(delivery, "pickup_location", None)
    if getattr(delivery, "method", None) is not DeliveryMethod.PICKUP or not isinstance(
        pickup, str
    ):
        return []
    location = stock.locations.get(LocationId(pickup))
    if location is None:
        return [f"pickup location {pickup!r} is unknown"]
    if not location.active or not location.can(Capability.PICKUP):
        return [f"pickup location {pickup!r} does not take pickups now"]
    return []


def _returns_location(stock: StockSession, order: Order) -> Location | None:
    """The active location taking returns nearest the customer (then by id); one with no
    point of its own comes after every one with a point."""
    point = _customer_point(stock, order)

    def rank(location: Location) -> tuple[float, str]:
        distance = _distance(point, location.geo)
        return (math.inf if distance is None else distance, location.id)

    depots = [loc for loc in stock.locations.values() if loc.active and loc.can(Capability.RETURNS)]
    return min(depots, key=rank, default=None)


def _item(uow: UnitOfWork, sku: str) -> InventoryItem:
    _require_sku(sku)
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
    require_text(sku, "sku", InvalidQuantity)


#: What each collaborator of the OMS must be able to do, by the method it must have.
_PORT_METHODS = {
    "store": "unit_of_work",
    "sourcing": "plan",
    "carrier": "create_label",
    "payments": "authorize",
    "clock": "now",
    "ids": "new_id",
}
_SETTING_TYPES = {"return_policy": ReturnPolicy, "limits": DraftLimits}


def _check_collaborators(given: Mapping[str, object]) -> None:
    """Refuse a collaborator that cannot be what its argument says when the OMS is made,
    rather than at its first command (``None`` takes the default)."""
    for name, value in given.items():
        if value is None:
            continue
        if name in _SETTING_TYPES and not isinstance(value, _SETTING_TYPES[name]):
            kind = _SETTING_TYPES[name].__name__
            raise InvalidArgument(f"{name} must be a {kind}, got {value!r}")
        method = _PORT_METHODS.get(name)
        if method is not None and not callable(getattr(value, method, None)):
            raise InvalidArgument(f"{name} must have the method {method}(), got {value!r}")


def _before(now: datetime, age: timedelta) -> datetime:
    """``now - age``; the earliest time there is when ``age`` reaches back further (a
    hundred million hours ago nothing had happened yet)."""
    try:
        return now - age
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def _channel_id(channel: object) -> ChannelId | None:
    """A channel named by a caller (``None``: every active location, no buffer)."""
    return None if channel is None else ChannelId(require_text(channel, "channel"))


def _require_ttl(ttl: object) -> timedelta:
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        raise InvalidQuantity(f"reservation ttl must be a positive timedelta, got {ttl!r}")
    return ttl


def _expiry(now: datetime, ttl: timedelta) -> datetime:
    """When a reservation made ``now`` for ``ttl`` expires; InvalidQuantity when that is
    past the end of the calendar."""
    try:
        return now + ttl
    except OverflowError:
        raise InvalidQuantity(f"reservation ttl {ttl} reaches past the year 9999") from None


def _distance(a: GeoPoint | None, b: GeoPoint | None) -> float | None:
    if a is None:
        return 0.0
    if b is None:
        return None
    return distance_km(a, b)


def _serve_all_backorders(stock: StockSession) -> None:
    """Load every SKU that waits for stock, so the flush serves it (after a reactivation)."""
    for sku in stock.uow.inventory.backordered():
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


def _credit_source(uow: UnitOfWork, order: Order) -> Order:
    """The order whose payment the credit of replacement ``order`` came from."""
    if order.exchange_of is None:
        raise PaymentLimitExceeded(
            f"cannot refund more on order {order.id}: it has no credit from an exchange"
        )
    return _load_order(uow, _load_return(uow, order.exchange_of).order_id)
