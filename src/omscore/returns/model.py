"""Returns (RMAs): eligibility, the return lifecycle, inspection and the refund maths.

A return is its own aggregate with a version. Its lifecycle is an explicit table
(:data:`RETURN_TRANSITIONS`); a command out of turn raises
:class:`~omscore.errors.InvalidTransition` and changes nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import attrs

from omscore._values import evolved
from omscore.errors import InvalidReturn, InvalidTransition
from omscore.events import (
    DomainEvent,
    FulfilledUnits,
    InspectedUnits,
    ReturnReceived,
    ReturnRequested,
    ReturnStatusChanged,
)
from omscore.ids import LineId, LineQuantities, LocationId, OrderId, ReturnId, Sku
from omscore.money import Money
from omscore.orders import FulfillmentStatus, Order

RefundShipping = Literal["never", "if_all_returned", "always"]
ReturnMethod = Literal["ship", "in_store"]


class Disposition(enum.StrEnum):
    """What happens to a returned unit after inspection. Only RESTOCK is sellable again."""

    RESTOCK = "restock"
    REFURBISH = "refurbish"
    DAMAGED = "damaged"
    RETURN_TO_VENDOR = "return_to_vendor"


#: Units per disposition of one returned line, keyed by :class:`Disposition` or its value.
DispositionCounts = Mapping[Disposition, int] | Mapping[str, int]

#: A receipt's dispositions per line, keyed by line id or plain string.
LineDispositions = Mapping[LineId, DispositionCounts] | Mapping[str, DispositionCounts]


def _percent(value: int | Decimal) -> Decimal:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | Decimal)
        or not Decimal(value).is_finite()
        or not 0 <= value <= 100
    ):
        raise InvalidReturn([f"restocking_fee_percent must be between 0 and 100, got {value!r}"])
    return Decimal(value)


def _check_window(_: object, __: attrs.Attribute[timedelta], value: object) -> None:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise InvalidReturn([f"the return window must be a timedelta of 0 or more, got {value!r}"])


def _skus(values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidReturn([f"non_returnable_skus must be a collection of SKUs, got {values!r}"])
    skus = list(values)
    wrong = [s for s in skus if not isinstance(s, str) or not s.strip()]
    if wrong:
        raise InvalidReturn([f"non_returnable_skus must be non-empty strings, got {wrong!r}"])
    return frozenset(skus)


def _shipping_rule(value: str) -> RefundShipping:
    if value not in ("never", "if_all_returned", "always"):
        raise InvalidReturn(
            [f"refund_shipping must be never, if_all_returned or always, got {value!r}"]
        )
    return value  # type: ignore[return-value]


@attrs.frozen(slots=True)
class ReturnPolicy:
    """Which units may come back and what a refund gives back.

    ``window`` runs from delivery (or collection); ``restocking_fee_percent`` is kept from
    the merchandise refunded; the shipping fee is refunded ``never``, ``always`` (with the
    first refund) or ``if_all_returned`` (once every unit of the order came back).
    """

    window: timedelta = attrs.field(default=timedelta(days=30), validator=_check_window)
    non_returnable_skus: frozenset[str] = attrs.field(default=frozenset(), converter=_skus)
    restocking_fee_percent: Decimal = attrs.field(default=Decimal(0), converter=_percent)
    refund_shipping: RefundShipping = attrs.field(default="never", converter=_shipping_rule)


class ReturnStatus(enum.StrEnum):
    """Where a return stands."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    PARTIALLY_RECEIVED = "partially_received"
    RECEIVED = "received"
    REFUNDED = "refunded"
    EXCHANGED = "exchanged"
    CLOSED = "closed"


_RECEIVED = frozenset({ReturnStatus.PARTIALLY_RECEIVED, ReturnStatus.RECEIVED})

#: The return lifecycle: command -> statuses it may start from.
RETURN_TRANSITIONS: dict[str, frozenset[ReturnStatus]] = {
    "approve": frozenset({ReturnStatus.REQUESTED}),
    "reject": frozenset({ReturnStatus.REQUESTED}),
    "receive": frozenset({ReturnStatus.APPROVED, ReturnStatus.PARTIALLY_RECEIVED}),
    "refund": _RECEIVED,
    "exchange": frozenset({ReturnStatus.RECEIVED}),
    "close": frozenset(
        {
            ReturnStatus.REJECTED,
            ReturnStatus.REFUNDED,
            ReturnStatus.EXCHANGED,
            ReturnStatus.PARTIALLY_RECEIVED,
        }
    ),
}

#: Returns in these statuses still claim their units (no second return for them).
OPEN_RETURN = frozenset(
    {
        ReturnStatus.REQUESTED,
        ReturnStatus.APPROVED,
        ReturnStatus.PARTIALLY_RECEIVED,
        ReturnStatus.RECEIVED,
    }
)


@attrs.frozen(slots=True)
class ReturnLine:
    """Units of one order line in a return: asked for, arrived (with their dispositions),
    refunded."""

    line_id: LineId
    sku: Sku
    requested: int
    received: int = 0
    refunded: int = 0
    dispositions: Mapping[Disposition, int] = attrs.field(factory=dict)

    @property
    def awaiting_refund(self) -> int:
        """Units that arrived and were not refunded yet."""
        return self.received - self.refunded


@attrs.frozen(slots=True)
class Return:
    """A return merchandise authorisation (RMA) of one order."""

    id: ReturnId
    order_id: OrderId
    lines: tuple[ReturnLine, ...]
    status: ReturnStatus
    reason: str
    method: ReturnMethod
    requested_at: datetime
    version: int = 1
    tracking: str | None = None
    note: str = ""
    refunded: Money | None = None
    exchange_order_id: OrderId | None = None

    @property
    def claims(self) -> bool:
        """True while the return still claims its units."""
        return self.status in OPEN_RETURN

    def line(self, line_id: str) -> ReturnLine:
        """The return's line for an order line."""
        for line in self.lines:
            if line.line_id == line_id:
                return line
        raise InvalidReturn([f"return {self.id} has no line {line_id!r}"])

    def require(self, command: str) -> None:
        """Raise :class:`InvalidTransition` unless ``command`` may run in this status."""
        if self.status not in RETURN_TRANSITIONS[command]:
            raise InvalidTransition(f"cannot {command} return {self.id}: it is {self.status.value}")

    def _next(self, **changes: Any) -> Return:
        return evolved(self, version=self.version + 1, **changes)

    def _status_event(self, r: Return, at: datetime, note: str = "") -> DomainEvent:
        return ReturnStatusChanged(
            return_id=self.id,
            order_id=self.order_id,
            version=r.version,
            at=at,
            status=r.status.value,
            note=note,
        )

    def approve(
        self, at: datetime, tracking: str | None = None
    ) -> tuple[Return, list[DomainEvent]]:
        """Accept the return; ``tracking`` is the return label's, for ship returns."""
        self.require("approve")
        r = self._next(status=ReturnStatus.APPROVED, tracking=tracking)
        return r, [self._status_event(r, at, tracking or "")]

    def reject(self, reason: str, at: datetime) -> tuple[Return, list[DomainEvent]]:
        """Refuse the return; its units are free to be returned again."""
        self.require("reject")
        r = self._next(status=ReturnStatus.REJECTED, note=reason)
        return r, [self._status_event(r, at, reason)]

    def receive(
        self,
        location_id: LocationId,
        dispositions: LineDispositions,
        at: datetime,
    ) -> tuple[Return, list[DomainEvent]]:
        """Record what arrived, with a disposition for each unit (partial receipts allowed).
        Every problem is reported at once."""
        self.require("receive")
        counted = self._inspect(dispositions)
        lines = []
        for line in self.lines:
            got = counted.get(line.line_id, {})
            merged = dict(line.dispositions)
            for disposition, n in got.items():
                merged[disposition] = merged.get(disposition, 0) + n
            lines.append(
                evolved(line, received=line.received + sum(got.values()), dispositions=merged)
            )
        complete = all(line.received == line.requested for line in lines)
        status = ReturnStatus.RECEIVED if complete else ReturnStatus.PARTIALLY_RECEIVED
        r = self._next(lines=tuple(lines), status=status)
        inspected = tuple(
            InspectedUnits(line_id, d.value, n)
            for line_id, by in counted.items()
            for d, n in sorted(by.items())
        )
        return r, [
            ReturnReceived(
                return_id=self.id,
                order_id=self.order_id,
                version=r.version,
                at=at,
                location_id=location_id,
                inspected=inspected,
            )
        ]

    def _inspect(self, dispositions: LineDispositions) -> dict[LineId, dict[Disposition, int]]:
        problems: list[str] = []
        counted: dict[LineId, dict[Disposition, int]] = {}
        by_line = {x.line_id: x for x in self.lines}
        for line_id, by in dispositions.items():
            line = by_line.get(LineId(line_id))
            if line is None:
                problems.append(f"line {line_id!r} is not part of return {self.id}")
                continue
            units: dict[Disposition, int] = {}
            for key, n in by.items():
                if key not in Disposition.__members__.values():
                    problems.append(f"line {line_id}: {key!r} is not a disposition")
                elif isinstance(n, bool) or not isinstance(n, int) or n < 1:
                    problems.append(f"line {line_id}: {key} count must be an int >= 1, got {n!r}")
                else:
                    units[Disposition(key)] = n
            arriving = sum(units.values())
            if arriving > line.requested - line.received:
                problems.append(
                    f"line {line_id}: {arriving} unit(s) inspected, but only "
                    f"{line.requested - line.received} of {line.requested} are still expected"
                )
            if units:
                counted[line.line_id] = units
        if not counted and not problems:
            problems.append("a receipt needs at least one unit with its disposition")
        if problems:
            raise InvalidReturn(problems)
        return counted

    def mark_refunded(self, units: Mapping[LineId, int], amount: Money, at: datetime) -> Return:
        """The return after refunding ``units`` for ``amount``."""
        self.require("refund")
        lines = tuple(
            evolved(line, refunded=line.refunded + units.get(line.line_id, 0))
            for line in self.lines
        )
        total = amount if self.refunded is None else self.refunded + amount
        status = ReturnStatus.REFUNDED if self.status is ReturnStatus.RECEIVED else self.status
        return self._next(lines=lines, refunded=total, status=status)

    def mark_exchanged(self, order_id: OrderId, at: datetime) -> tuple[Return, list[DomainEvent]]:
        """The return settled by a replacement order."""
        self.require("exchange")
        lines = tuple(evolved(line, refunded=line.received) for line in self.lines)
        r = self._next(lines=lines, status=ReturnStatus.EXCHANGED, exchange_order_id=order_id)
        return r, [self._status_event(r, at, f"replacement order {order_id}")]

    def close(self, at: datetime) -> tuple[Return, list[DomainEvent]]:
        """Close a settled (or abandoned partially received) return."""
        self.require("close")
        r = self._next(status=ReturnStatus.CLOSED)
        return r, [self._status_event(r, at)]


def delivered_at(order: Order, line_id: LineId) -> datetime | None:
    """When the line's last units were delivered or collected (None if none were)."""
    return _delivery_times(order).get(line_id)


def _delivery_times(order: Order) -> dict[LineId, datetime]:
    """When each line's last units were delivered or collected, for the lines that were."""
    times: dict[LineId, datetime] = {}
    for f in order.fulfillments:
        if f.status in (FulfillmentStatus.DELIVERED, FulfillmentStatus.COLLECTED):
            at = f.changed_at or f.created_at
            for fl in f.lines:
                if fl.quantity and (fl.line_id not in times or times[fl.line_id] < at):
                    times[fl.line_id] = at
    return times


def _claimed(returns: list[Return]) -> dict[LineId, int]:
    """Units of each line that open returns still wait for."""
    claimed: dict[LineId, int] = {}
    for r in returns:
        if r.claims:
            for claim in r.lines:
                waiting = claim.requested - claim.received
                claimed[claim.line_id] = claimed.get(claim.line_id, 0) + waiting
    return claimed


def returnable_units(
    order: Order, returns: list[Return], policy: ReturnPolicy, at: datetime
) -> dict[LineId, int]:
    """The units of each line the customer may ask back at ``at`` (what
    :func:`request_return` accepts): delivered or collected, not returned, not waiting in
    one of ``returns`` (the order's returns), of a returnable SKU, inside the window. Lines
    with none are left out."""
    claimed, delivery_times = _claimed(returns), _delivery_times(order)
    returnable: dict[LineId, int] = {}
    for line in order.lines:
        delivered = delivery_times.get(line.id)
        if line.sku in policy.non_returnable_skus or delivered is None:
            continue
        if at > delivered + policy.window:
            continue
        units = line.delivered - line.returned - claimed.get(line.id, 0)
        if units > 0:
            returnable[line.id] = units
    return returnable


def request_return(
    return_id: ReturnId,
    order: Order,
    units: LineQuantities,
    open_returns: list[Return],
    policy: ReturnPolicy,
    reason: str,
    method: str,
    at: datetime,
) -> tuple[Return, list[DomainEvent]]:
    """Check eligibility (every problem at once) and create the return."""
    problems: list[str] = []
    if method not in ("ship", "in_store"):
        problems.append(f"return method must be ship or in_store, got {method!r}")
    if not units:
        problems.append("a return needs at least one line")
    claimed = _claimed(open_returns)
    lines: list[ReturnLine] = []
    order_lines = {x.id: x for x in order.lines}
    delivery_times = _delivery_times(order)
    for line_id, quantity in units.items():
        line = order_lines.get(LineId(line_id))
        if line is None:
            problems.append(f"order {order.id} has no line {line_id!r}")
            continue
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            problems.append(f"line {line_id}: quantity must be an int >= 1, got {quantity!r}")
            continue
        returnable = line.delivered - line.returned - claimed.get(line.id, 0)
        if quantity > returnable:
            problems.append(
                f"line {line_id}: {quantity} unit(s) asked back, {returnable} returnable "
                f"({line.delivered} delivered, {line.returned} returned, "
                f"{claimed.get(line.id, 0)} in open returns)"
            )
        if line.sku in policy.non_returnable_skus:
            problems.append(f"line {line_id}: {line.sku} cannot be returned")
        delivered = delivery_times.get(line.id)
        if delivered is not None and at > delivered + policy.window:
            problems.append(
                f"line {line_id}: the {policy.window.days}-day return window closed on "
                f"{(delivered + policy.window).date().isoformat()}"
            )
        lines.append(ReturnLine(line.id, line.sku, quantity))
    if problems:
        raise InvalidReturn(problems)
    created = Return(return_id, order.id, tuple(lines), ReturnStatus.REQUESTED, reason, method, at)  # type: ignore[arg-type]
    event = ReturnRequested(
        return_id=return_id,
        order_id=order.id,
        version=1,
        at=at,
        reason=reason,
        method=method,
        units=tuple(FulfilledUnits(x.line_id, x.sku, x.requested) for x in lines),
    )
    return created, [event]


@attrs.frozen(slots=True)
class RefundQuote:
    """What refunding units gives back, and how it adds up."""

    merchandise: Money
    restocking_fee: Money
    shipping: Money
    units: Mapping[LineId, int]

    @property
    def amount(self) -> Money:
        """Merchandise less the restocking fee plus shipping."""
        return self.merchandise - self.restocking_fee + self.shipping


def quote_refund(order: Order, units: Mapping[LineId, int], policy: ReturnPolicy) -> RefundQuote:
    """The refund for ``units`` per line: each unit's share of its line total, taken in
    order after the units refunded before (so every unit of a line, in any number of
    refunds, gives back exactly the line total), less the restocking fee, plus shipping
    per the policy. Not capped: the caller caps at captured less refunded."""
    zero = Money.zero(order.currency)
    merchandise, line_of = zero, order.line_finder()
    for line_id, n in units.items():
        line = line_of(line_id)
        merchandise += line.value_of_units(line.refunded, n)
    restocking = zero
    if policy.restocking_fee_percent:
        restocking = (merchandise * policy.restocking_fee_percent * Decimal("0.01")).quantize()
    shipping = zero
    first_refund = not any(p.kind.value == "refunded" for p in order.payments)
    if policy.refund_shipping == "always" and first_refund:
        shipping = order.shipping_fee
    elif policy.refund_shipping == "if_all_returned":
        after = {line.id: line.refunded + units.get(line.id, 0) for line in order.lines}
        everything = all(after[line.id] >= line.quantity - line.cancelled for line in order.lines)
        if everything:
            shipping = order.shipping_fee
    return RefundQuote(merchandise, restocking, shipping, dict(units))
