"""The order aggregate: lines with unit buckets, holds, edits, cancellation, fulfilment orders.

Aggregates are immutable. Every command validates completely, then returns the new order
(its version one higher) and the events it recorded; a refused command raises a subclass of
:class:`~omscore.errors.OmsError` and the caller still holds the unchanged order.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import attrs

from omscore._values import evolved
from omscore.errors import (
    CurrencyMismatch,
    InvalidDraft,
    InvalidQuantity,
    InvalidTransition,
    NotCancellable,
    OrderOnHold,
    UnknownFulfillment,
    UnknownHold,
    UnknownLine,
)
from omscore.events import (
    AddressChanged,
    CancelledUnits,
    DeliveryChanged,
    DomainEvent,
    FulfilledUnits,
    FulfillmentCreated,
    FulfillmentMoved,
    FulfillmentProgressed,
    FulfillmentRejected,
    FulfillmentSentToStore,
    FulfillmentShipped,
    FulfillmentShortPicked,
    FulfillmentSplit,
    FulfillmentWithdrawn,
    HoldReleased,
    LineAdded,
    LineQuantityChanged,
    LineRemoved,
    OrderHeld,
    OrderPlaced,
    PaymentRecorded,
    PickupExpired,
    PlacedLine,
    ShipCompleteChanged,
    UnitsCancelled,
)
from omscore.geo import Address
from omscore.ids import (
    ChannelId,
    FulfillmentId,
    LineId,
    LineQuantities,
    LocationId,
    OrderId,
    ReturnId,
    Sku,
)
from omscore.money import Money
from omscore.orders.delivery import Delivery, DeliveryMethod
from omscore.orders.draft import (
    DraftLimits,
    LineDraft,
    OrderDraft,
    line_problems,
    money_problems,
    validate_draft,
)


class OrderStatus(enum.StrEnum):
    """The order's status, derived from its unit buckets and holds; never stored."""

    OPEN = "open"
    ON_HOLD = "on_hold"
    PARTIALLY_ALLOCATED = "partially_allocated"
    ALLOCATED = "allocated"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class HoldKind(enum.StrEnum):
    """The hold kinds omscore itself places; a host may use any other string."""

    PAYMENT = "payment"
    FRAUD = "fraud"
    MANUAL = "manual"
    SOURCING = "sourcing"


class PaymentKind(enum.StrEnum):
    """What a payment entry records."""

    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    REFUNDED = "refunded"
    VOIDED = "voided"
    DECLINED = "declined"
    CREDITED = "credited"
    APPLIED = "applied"
    #: Captured money moved to a replacement order as its credit (an exchange); negative
    #: when the replacement gives that credit back and it is refunded on this payment.
    TRANSFERRED = "transferred"
    #: Credit from an exchange given back: refunded on the payment of the order the
    #: credit came from, not on this order's own.
    CREDIT_REFUNDED = "credit_refunded"


@attrs.frozen(slots=True)
class PaymentEntry:
    """One movement of the order's payment, with the gateway's reference and the
    idempotency key it was sent with.

    ``draws_on`` is the reference of the authorisation a capture, void or refund drew on,
    when that is not the order's first authorisation (``None``: the first); an order
    authorised again for an edit has more than one."""

    kind: PaymentKind
    amount: Money
    reference: str | None
    key: str
    at: datetime
    draws_on: str | None = None


@attrs.frozen(slots=True)
class AuthorizationBalance:
    """One authorisation of an order and what has been drawn on it, from the order's
    payment ledger: ``open`` can still be captured, ``refundable`` given back."""

    reference: str | None
    authorized: Money
    captured: Money
    refunded: Money
    voided: Money

    @property
    def open(self) -> Money:
        """Authorised, neither captured nor voided."""
        return self.authorized - self.captured - self.voided

    @property
    def refundable(self) -> Money:
        """Captured and not refunded."""
        return self.captured - self.refunded


#: Where each kind of movement drawn on an authorisation counts in its balance.
_DRAWN = {PaymentKind.CAPTURED: 1, PaymentKind.REFUNDED: 2, PaymentKind.VOIDED: 3}


@attrs.frozen(slots=True)
class Hold:
    """A reason the order must not move; one per kind."""

    kind: str
    reason: str
    since: datetime


@attrs.frozen(slots=True)
class OrderLine:
    """One SKU of an order, its price, and where each of its units stands.

    Every unit is in exactly one bucket: ``open``, ``allocated``, ``shipped``, ``delivered``
    or ``cancelled``; they always sum to ``quantity``. ``returned`` counts inside ``delivered``.
    """

    id: LineId
    sku: Sku
    quantity: int
    unit_price: Money
    discount: Money
    tax: Money
    allocated: int = 0
    shipped: int = 0
    delivered: int = 0
    cancelled: int = 0
    returned: int = 0
    refunded: int = 0

    @property
    def open(self) -> int:
        """Units not yet given to any location."""
        return self.quantity - self.allocated - self.shipped - self.delivered - self.cancelled

    @property
    def total(self) -> Money:
        """Unit price x quantity, less the discount, plus tax."""
        return self.unit_price * self.quantity - self.discount + self.tax

    def unit_shares(self) -> list[Money]:
        """Each unit's share of the line total (price less discount plus tax), split with
        ``Money.allocate``: the shares always sum exactly to the total."""
        return self.total.allocate([1] * self.quantity)

    def value_of_units(self, first: int, count: int) -> Money:
        """The shares of units ``first`` to ``first + count - 1`` (in capture or refund
        order), so that taking every unit in any number of steps gives exactly the total.
        The same sum as slicing :meth:`unit_shares`, in constant time."""
        return self.total.even_shares(self.quantity, first, count)

    @property
    def cancellable(self) -> int:
        """Units that can still be cancelled: open ones and allocated ones not yet shipped."""
        return self.open + self.allocated

    @property
    def untouched(self) -> bool:
        """True while no unit has been allocated, shipped or delivered (the line is editable)."""
        return self.allocated == self.shipped == self.delivered == 0


class FulfillmentStatus(enum.StrEnum):
    """Where one location's work for one order stands."""

    OPEN = "open"
    ACCEPTED = "accepted"
    PICKED = "picked"
    PACKED = "packed"
    IN_TRANSIT = "in_transit"
    READY_FOR_PICKUP = "ready_for_pickup"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COLLECTED = "collected"
    EXPIRED = "expired"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"


_BEFORE_SHIPPING = frozenset(
    {
        FulfillmentStatus.OPEN,
        FulfillmentStatus.ACCEPTED,
        FulfillmentStatus.PICKED,
        FulfillmentStatus.PACKED,
    }
)

#: The fulfilment order lifecycle: command -> (statuses it may start from, status it ends in).
FULFILLMENT_TRANSITIONS: dict[str, tuple[frozenset[FulfillmentStatus], FulfillmentStatus]] = {
    "accept": (frozenset({FulfillmentStatus.OPEN}), FulfillmentStatus.ACCEPTED),
    "pick": (
        frozenset({FulfillmentStatus.OPEN, FulfillmentStatus.ACCEPTED}),
        FulfillmentStatus.PICKED,
    ),
    "pack": (_BEFORE_SHIPPING - {FulfillmentStatus.PACKED}, FulfillmentStatus.PACKED),
    "ship": (_BEFORE_SHIPPING, FulfillmentStatus.SHIPPED),
    "deliver": (frozenset({FulfillmentStatus.SHIPPED}), FulfillmentStatus.DELIVERED),
    "send_to_store": (_BEFORE_SHIPPING, FulfillmentStatus.IN_TRANSIT),
    "ready_for_pickup": (
        _BEFORE_SHIPPING | {FulfillmentStatus.IN_TRANSIT},
        FulfillmentStatus.READY_FOR_PICKUP,
    ),
    "collect": (frozenset({FulfillmentStatus.READY_FOR_PICKUP}), FulfillmentStatus.COLLECTED),
    "expire": (frozenset({FulfillmentStatus.READY_FOR_PICKUP}), FulfillmentStatus.EXPIRED),
    "reject": (
        _BEFORE_SHIPPING | {FulfillmentStatus.READY_FOR_PICKUP},
        FulfillmentStatus.REJECTED,
    ),
    "withdraw": (frozenset({FulfillmentStatus.OPEN}), FulfillmentStatus.WITHDRAWN),
}

#: Commands a hold stops (warehouse work, shipping and handing over).
_HELD_BACK = frozenset(
    {"accept", "pick", "pack", "ship", "send_to_store", "ready_for_pickup", "collect"}
)

_PICKUP_ONLY = frozenset({"ready_for_pickup", "collect", "expire"})

#: Where a location may still find that units are missing (before it packed them).
#: Fulfilment orders whose units can still be divided: not yet on their way, or waiting at
#: the store for a customer who may take only part of them.
_SPLITTABLE = _BEFORE_SHIPPING | {FulfillmentStatus.READY_FOR_PICKUP}

_SHORT_PICKABLE = frozenset(
    {FulfillmentStatus.OPEN, FulfillmentStatus.ACCEPTED, FulfillmentStatus.PICKED}
)

#: How each command moves a fulfilment order's units between the line's buckets.
_BUCKET_MOVES: dict[str, tuple[str, str | None]] = {
    "ship": ("allocated", "shipped"),
    "deliver": ("shipped", "delivered"),
    "collect": ("allocated", "delivered"),
    "expire": ("allocated", "cancelled"),
    "reject": ("allocated", None),
    "withdraw": ("allocated", None),
}

#: Fulfilment orders that may move to another location: their units are still on the shelf.
MOVABLE_FULFILLMENT = frozenset({FulfillmentStatus.OPEN, FulfillmentStatus.ACCEPTED})

#: Orders the OMS or a person still has to move: not wholly allocated yet, or held (the
#: statuses of the order queues).
WAITING_ORDER = frozenset({OrderStatus.OPEN, OrderStatus.PARTIALLY_ALLOCATED, OrderStatus.ON_HOLD})

ACTIVE_FULFILLMENT = frozenset(
    {
        FulfillmentStatus.OPEN,
        FulfillmentStatus.ACCEPTED,
        FulfillmentStatus.PICKED,
        FulfillmentStatus.PACKED,
        FulfillmentStatus.IN_TRANSIT,
        FulfillmentStatus.READY_FOR_PICKUP,
    }
)


@attrs.frozen(slots=True)
class FulfillmentLine:
    """Units of one order line that a fulfilment order must deliver."""

    line_id: LineId
    sku: Sku
    quantity: int


@attrs.frozen(slots=True)
class FulfillmentOrder:
    """The work one location must do for one order.

    Ship-to-store: a pickup fulfilled by another location goes to the pickup store
    (``handover_location``), sent on its way (in transit: its units are at no location and
    can no longer be cancelled) or simply readied there. Once ready at the store its units
    are the store's, where the customer collects them or, uncollected, they go back on the
    shelf.

    ``counted_on`` is the day (the location's own) on which its location's daily capacity
    counted it, and None when none did (the location had no cap when it took the order, or
    this is the part split off one already counted). Taking it back that same day gives
    the count back; so nothing that was never counted is ever given back. Cancelling it
    whole while it is still open (its location never accepted it) clears it: that day's
    count is given back, as for one taken back.
    """

    id: FulfillmentId
    location_id: LocationId
    method: DeliveryMethod
    lines: tuple[FulfillmentLine, ...]
    status: FulfillmentStatus
    created_at: datetime
    tracking: str | None = None
    carrier: str | None = None
    note: str = ""
    changed_at: datetime | None = None
    handover_location: LocationId | None = None
    counted_on: date | None = None

    @property
    def stock_location(self) -> LocationId:
        """Where its units are (or, in transit, are going): the pickup store once sent or
        handed over there, else its location."""
        return self.handover_location or self.location_id

    @property
    def in_transit(self) -> bool:
        """True while a ship-to-store parcel is on its way to the store."""
        return self.status is FulfillmentStatus.IN_TRANSIT

    @property
    def since(self) -> datetime:
        """When it entered its current status (created, or its last change)."""
        return self.changed_at or self.created_at

    @property
    def units(self) -> int:
        """Units in this fulfilment order."""
        return sum(line.quantity for line in self.lines)

    @property
    def is_active(self) -> bool:
        """True while its units are allocated (not shipped, collected, rejected or cancelled;
        a parcel in transit to its pickup store is active)."""
        return self.status in ACTIVE_FULFILLMENT

    def quantity_of(self, line_id: LineId) -> int:
        """Units of ``line_id`` in this fulfilment order."""
        return sum(line.quantity for line in self.lines if line.line_id == line_id)


def _line_from_draft(line_id: LineId, draft: LineDraft) -> OrderLine:
    zero = Money.zero(draft.unit_price.currency)
    return OrderLine(
        id=line_id,
        sku=Sku(draft.sku),
        quantity=draft.quantity,
        unit_price=draft.unit_price,
        discount=draft.discount if draft.discount is not None else zero,
        tax=draft.tax if draft.tax is not None else zero,
    )


@attrs.frozen(slots=True)
class Order:
    """What a customer bought in one checkout: lines, delivery, holds, fulfilment orders.

    Immutable: each command returns ``(new_order, events)``. ``status`` is derived.
    ``ship_complete`` orders are sourced whole from one location or wait.
    """

    id: OrderId
    channel: ChannelId
    currency: str
    delivery: Delivery
    lines: tuple[OrderLine, ...]
    placed_at: datetime
    shipping_fee: Money
    version: int = 1
    customer_ref: str | None = None
    reservation_key: str | None = None
    holds: tuple[Hold, ...] = ()
    fulfillments: tuple[FulfillmentOrder, ...] = ()
    rejected_locations: frozenset[LocationId] = frozenset()
    payments: tuple[PaymentEntry, ...] = ()
    return_ids: tuple[ReturnId, ...] = ()
    exchange_of: ReturnId | None = None
    ship_complete: bool = False

    # --- placing ------------------------------------------------------------------------

    @classmethod
    def place(
        cls,
        order_id: OrderId,
        draft: OrderDraft,
        line_ids: Iterable[LineId],
        at: datetime,
        limits: DraftLimits | None = None,
    ) -> tuple[Order, list[DomainEvent]]:
        """Validate ``draft`` (every problem at once) and create the order."""
        validate_draft(draft, limits or DraftLimits())
        return cls.from_checked_draft(order_id, draft, line_ids, at)

    @classmethod
    def from_checked_draft(
        cls, order_id: OrderId, draft: OrderDraft, line_ids: Iterable[LineId], at: datetime
    ) -> tuple[Order, list[DomainEvent]]:
        """Create the order from a draft that already passed
        :func:`~omscore.orders.draft.draft_problems` (as :meth:`place` does, unchecked)."""
        lines = tuple([_line_from_draft(i, d) for i, d in zip(line_ids, draft.lines, strict=True)])
        order = cls(
            id=order_id,
            channel=ChannelId(draft.channel),
            currency=draft.currency,
            delivery=draft.delivery,
            lines=lines,
            placed_at=at,
            shipping_fee=(
                draft.shipping_fee if draft.shipping_fee is not None else Money.zero(draft.currency)
            ),
            customer_ref=draft.customer_ref,
            reservation_key=draft.reservation_key,
            ship_complete=draft.ship_complete,
        )
        placed = OrderPlaced(
            order_id=order_id,
            version=order.version,
            at=at,
            channel=order.channel,
            total=order.total,
            lines=tuple([PlacedLine(line.id, line.sku, line.quantity) for line in lines]),
            customer_ref=draft.customer_ref,
            ship_complete=draft.ship_complete,
        )
        return order, [placed]

    # --- reading ------------------------------------------------------------------------

    @property
    def status(self) -> OrderStatus:
        """Derived from the unit buckets and the holds."""
        active = delivered = shipped = allocated = 0
        for line in self.lines:
            active += line.quantity - line.cancelled
            delivered += line.delivered
            shipped += line.shipped
            allocated += line.allocated
        if active == 0:
            return OrderStatus.CANCELLED
        if delivered == active:
            return OrderStatus.DELIVERED
        if self.holds:
            return OrderStatus.ON_HOLD
        gone = delivered + shipped
        if gone == active:
            return OrderStatus.SHIPPED
        if gone > 0:
            return OrderStatus.PARTIALLY_SHIPPED
        if allocated == active:
            return OrderStatus.ALLOCATED
        if allocated > 0:
            return OrderStatus.PARTIALLY_ALLOCATED
        return OrderStatus.OPEN

    @property
    def total(self) -> Money:
        """Sum of the line totals plus the shipping fee."""
        # Summed on the amounts (the same result as adding Money, without a Money per step),
        # after the check that adding Money would make.
        fee = self.shipping_fee
        amount, currency = fee.amount, fee.currency
        for line in self.lines:
            price, discount, tax = line.unit_price, line.discount, line.tax
            if not price.currency == discount.currency == tax.currency == currency:
                raise CurrencyMismatch(
                    f"line {line.id} of order {self.id} is not all in {currency}: "
                    f"{price}, discount {discount}, tax {tax}"
                )
            amount += price.amount * line.quantity - discount.amount + tax.amount
        return Money(amount, currency)

    def _paid(self, kind: PaymentKind) -> Money:
        return sum((p.amount for p in self.payments if p.kind is kind), Money.zero(self.currency))

    @property
    def authorized(self) -> Money:
        """Money authorised on the customer's payment method."""
        return self._paid(PaymentKind.AUTHORIZED)

    @property
    def captured(self) -> Money:
        """Money captured (charged), including credit from an exchanged return."""
        return self._paid(PaymentKind.CAPTURED) + self._paid(PaymentKind.CREDITED)

    @property
    def refunded(self) -> Money:
        """Money refunded, including credit from an exchange given back (on the payment
        of the order it came from)."""
        return self._paid(PaymentKind.REFUNDED) + self._paid(PaymentKind.CREDIT_REFUNDED)

    @property
    def transferred(self) -> Money:
        """Captured money now credit on replacement orders (exchanges), not given back."""
        return self._paid(PaymentKind.TRANSFERRED)

    @property
    def refundable(self) -> Money:
        """What can still be given back on this order: captured on its card and credit
        from an exchange that paid a shipment, less what was refunded and what moved to a
        replacement order as credit. Credit no shipment used yet is not paid for anything,
        so it is not refundable, as an authorisation is not."""
        paid = self._paid(PaymentKind.CAPTURED) + self._paid(PaymentKind.APPLIED)
        return paid - self.refunded - self.transferred

    @property
    def refundable_on_card(self) -> Money:
        """What the order's own authorisations can still refund (captured on them, not
        refunded); credit from an exchange is refunded on its original order's instead."""
        return sum((b.refundable for b in self.authorizations), Money.zero(self.currency))

    @property
    def voided(self) -> Money:
        """Authorised money released without capture."""
        return self._paid(PaymentKind.VOIDED)

    @property
    def credit_left(self) -> Money:
        """Credit (from an exchanged return) not yet used: neither applied to a shipment
        nor given back once no shipment would use it."""
        return self._paid(PaymentKind.CREDITED) - self._paid(PaymentKind.APPLIED)

    @property
    def payment_reference(self) -> str | None:
        """The gateway's reference of the order's first authorisation, if any."""
        for p in self.payments:
            if p.kind is PaymentKind.AUTHORIZED:
                return p.reference
        return None

    @property
    def authorizations(self) -> tuple[AuthorizationBalance, ...]:
        """Each authorisation, oldest first, with what was captured, refunded and voided
        on it (captures of exchange credit are not drawn on any)."""
        zero = Money.zero(self.currency)
        drawn: dict[str | None, list[Money]] = {}
        first: str | None = None
        for p in self.payments:
            if p.kind is PaymentKind.AUTHORIZED:
                if not drawn:
                    first = p.reference
                drawn.setdefault(p.reference, [zero, zero, zero, zero])[0] += p.amount
            elif p.kind in _DRAWN and drawn:
                reference = first if p.draws_on is None else p.draws_on
                drawn.setdefault(reference, [zero, zero, zero, zero])[_DRAWN[p.kind]] += p.amount
        return tuple(AuthorizationBalance(r, *amounts) for r, amounts in drawn.items())

    @property
    def chargeable(self) -> Money:
        """The most the order's captures can add up to: its total less the value of the
        cancelled units (each line's captures take its units in order, the cancelled ones
        last), and without the shipping fee once every unit is cancelled (it comes with the
        first capture)."""
        value = Money.zero(self.currency)
        for line in self.lines:
            value += line.value_of_units(0, line.quantity - line.cancelled)
        if any(line.quantity > line.cancelled for line in self.lines):
            value += self.shipping_fee
        return value

    @property
    def covered(self) -> Money:
        """What the order's payment can be charged in all: authorised (less what was
        voided) and credited from an exchanged return."""
        return self.authorized - self.voided + self._paid(PaymentKind.CREDITED)

    @property
    def uncaptured(self) -> Money:
        """Authorised money neither captured nor voided."""
        return self._paid(PaymentKind.AUTHORIZED) - self._paid(PaymentKind.CAPTURED) - self.voided

    def capture_value(self, fulfillment_id: str) -> Money:
        """What shipping (or handing over) a fulfilment order captures: its units' shares,
        plus the shipping fee with the first capture."""
        f = self._fulfillment_or_raise(fulfillment_id)
        value, line_of = Money.zero(self.currency), self.line_finder()
        for fl in f.lines:
            line = line_of(fl.line_id)
            value += line.value_of_units(line.shipped + line.delivered, fl.quantity)
        if not any(p.kind is PaymentKind.CAPTURED for p in self.payments):
            value += self.shipping_fee
        return value

    @property
    def fully_settled(self) -> bool:
        """True when no unit is left to capture (all shipped, delivered or cancelled)."""
        return all(line.open == line.allocated == 0 for line in self.lines)

    def record_payment(self, entry: PaymentEntry) -> tuple[Order, list[DomainEvent]]:
        """Add an entry to the payment ledger."""
        order = self._next(payments=(*self.payments, entry))
        event = PaymentRecorded(
            order_id=self.id,
            version=order.version,
            at=entry.at,
            kind=str(entry.kind),  # a StrEnum's str is its value (without a property call)
            amount=entry.amount,
            reference=entry.reference,
            key=entry.key,
        )
        return order, [event]

    def add_return(self, return_id: ReturnId) -> Order:
        """The order with ``return_id`` among its returns."""
        return self._next(return_ids=(*self.return_ids, return_id))

    def mark_returned(self, units: Mapping[LineId, int]) -> Order:
        """Count units received back; :class:`~omscore.errors.InvalidQuantity` if a line
        would count more returned units than were delivered."""
        return self._count_back(units, "returned", "delivered")

    def mark_refunded(self, units: Mapping[LineId, int]) -> Order:
        """Count units whose money went back (refunded or credited to an exchange);
        :class:`~omscore.errors.InvalidQuantity` if a line would count more than returned."""
        return self._count_back(units, "refunded", "returned")

    def _count_back(self, units: Mapping[LineId, int], counter: str, within: str) -> Order:
        """Add ``units`` to each line's ``counter``, which never passes its ``within``."""
        unknown = set(units) - {line.id for line in self.lines}
        if unknown:
            raise UnknownLine(f"order {self.id} has no line {sorted(unknown)[0]!r}")
        lines = []
        for line in self.lines:
            n = units.get(line.id)
            if n is None:
                lines.append(line)
                continue
            now, limit = getattr(line, counter), getattr(line, within)
            if not 0 <= n <= limit - now:
                raise InvalidQuantity(
                    f"line {line.id}: cannot count {n} more unit(s) as {counter}: "
                    f"{now} already are, of {limit} {within}"
                )
            lines.append(evolved(line, **{counter: now + n}))
        return self._next(lines=tuple(lines))

    @property
    def is_held(self) -> bool:
        """True while at least one hold stands."""
        return bool(self.holds)

    def has_hold(self, kind: str) -> bool:
        """True while a hold of ``kind`` stands (``HoldKind.PAYMENT``, say, or a host's own
        kind)."""
        return any(h.kind == kind for h in self.holds)

    @property
    def open_units(self) -> int:
        """Units of all lines not yet given to a location."""
        return sum(line.open for line in self.lines)

    def line(self, line_id: str) -> OrderLine:
        """The line with ``line_id``; :class:`UnknownLine` if the order has none."""
        for line in self.lines:
            if line.id == line_id:
                return line
        raise UnknownLine(f"order {self.id} has no line {line_id!r}")

    def line_finder(self) -> Callable[[str], OrderLine]:
        """A function that does what :meth:`line` does, for looking up many line ids: on an
        order of many lines it indexes them once instead of scanning them for each id."""
        if len(self.lines) < 8:
            return self.line
        by_id: dict[str, OrderLine] = {line.id: line for line in self.lines}

        def find(line_id: str) -> OrderLine:
            line = by_id.get(line_id)
            return line if line is not None else self.line(line_id)

        return find

    def fulfillment(self, fulfillment_id: str) -> FulfillmentOrder:
        """The fulfilment order with ``fulfillment_id``."""
        return self._fulfillment_or_raise(fulfillment_id)

    # --- holds --------------------------------------------------------------------------

    def hold(self, kind: str, reason: str, at: datetime) -> tuple[Order, list[DomainEvent]]:
        """Put a hold of ``kind`` on the order. One hold per kind; several kinds may stand."""
        self._require_in_progress("hold")
        if not isinstance(kind, str) or not kind:
            raise InvalidTransition(f"a hold needs a non-empty kind, got {kind!r}")
        if self.has_hold(kind):
            raise InvalidTransition(f"order {self.id} already has a {kind!r} hold")
        order = self._next(holds=(*self.holds, Hold(kind, reason, at)))
        return order, [
            OrderHeld(order_id=self.id, version=order.version, at=at, kind=kind, reason=reason)
        ]

    def release(self, kind: str, at: datetime) -> tuple[Order, list[DomainEvent]]:
        """Release the hold of ``kind``; :class:`UnknownHold` if there is none."""
        if not self.has_hold(kind):
            held = ", ".join(h.kind for h in self.holds) or "none"
            raise UnknownHold(f"order {self.id} has no {kind!r} hold (holds: {held})")
        order = self._next(holds=tuple(h for h in self.holds if h.kind != kind))
        return order, [HoldReleased(order_id=self.id, version=order.version, at=at, kind=kind)]

    def require_not_held(self, action: str) -> None:
        """Raise :class:`OrderOnHold` if any hold stands."""
        if self.holds:
            kinds = ", ".join(h.kind for h in self.holds)
            raise OrderOnHold(f"cannot {action} order {self.id}: it is on hold ({kinds})")

    # --- edits before allocation --------------------------------------------------------

    def change_quantity(
        self, line_id: str, quantity: int, at: datetime, limits: DraftLimits | None = None
    ) -> tuple[Order, list[DomainEvent]]:
        """Set a line's ordered quantity; only while none of its units is allocated. The
        quantity it has already changes nothing (``(self, [])``)."""
        self._require_in_progress("edit")
        line = self._editable_line(line_id)
        max_units = (limits or DraftLimits()).max_units_per_line
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise InvalidQuantity(f"quantity must be an int, got {quantity!r}")
        lowest = max(1, line.cancelled)
        if not lowest <= quantity <= max_units:
            raise InvalidQuantity(
                f"line {line.id} quantity must be between {lowest} and {max_units}, got {quantity}"
            )
        if quantity == line.quantity:
            return self, []  # nothing to change: no event, no new version
        new_line = evolved(line, quantity=quantity)
        order = self._next(lines=self._with_line(new_line))
        event = LineQuantityChanged(
            order_id=self.id,
            version=order.version,
            at=at,
            line_id=line.id,
            sku=line.sku,
            old_quantity=line.quantity,
            new_quantity=quantity,
        )
        return order, [event]

    def add_line(
        self, line_id: LineId, draft: LineDraft, at: datetime, limits: DraftLimits | None = None
    ) -> tuple[Order, list[DomainEvent]]:
        """Add a line before allocation."""
        self._require_in_progress("edit")
        limits = limits or DraftLimits()
        problems = line_problems("new line", draft, self.currency, limits)
        if len(self.lines) + 1 > limits.max_lines:
            problems.append(f"an order may have at most {limits.max_lines} lines")
        if problems:
            raise InvalidDraft(problems)
        line = _line_from_draft(line_id, draft)
        order = self._next(lines=(*self.lines, line))
        return order, [
            LineAdded(
                order_id=self.id,
                version=order.version,
                at=at,
                line_id=line_id,
                sku=line.sku,
                quantity=line.quantity,
            )
        ]

    def remove_line(self, line_id: str, at: datetime) -> tuple[Order, list[DomainEvent]]:
        """Remove a line none of whose units was allocated; the last line cannot go (cancel)."""
        self._require_in_progress("edit")
        line = self._editable_line(line_id)
        if len(self.lines) == 1:
            raise InvalidTransition(
                f"cannot remove line {line.id}: it is the last line of order {self.id}; cancel it"
            )
        order = self._next(lines=tuple(x for x in self.lines if x.id != line.id))
        return order, [
            LineRemoved(
                order_id=self.id,
                version=order.version,
                at=at,
                line_id=line.id,
                sku=line.sku,
                open_units=line.open,
            )
        ]

    def change_address(self, address: Address, at: datetime) -> tuple[Order, list[DomainEvent]]:
        """Change the delivery address before any unit is allocated; the address it has
        already changes nothing (``(self, [])``)."""
        self._require_in_progress("edit")
        if self.delivery.method is DeliveryMethod.PICKUP:
            raise InvalidTransition(f"order {self.id} is a pickup order: it has no address")
        if not isinstance(address, Address):
            raise InvalidDraft([f"address must be an Address, got {address!r}"])
        if address.problems():
            raise InvalidDraft(address.problems())
        if not all(line.untouched for line in self.lines):
            raise InvalidTransition(
                f"cannot change the address of order {self.id}: units are already allocated"
            )
        if address == self.delivery.address:
            return self, []
        order = self._next(delivery=evolved(self.delivery, address=address))
        return order, [
            AddressChanged(order_id=self.id, version=order.version, at=at, address=address)
        ]

    def change_delivery(
        self, delivery: Delivery, at: datetime, shipping_fee: Money | None = None
    ) -> tuple[Order, list[DomainEvent]]:
        """Change how the order reaches the customer (shipped, collected at another store,
        same-day) before any unit is allocated, and with ``shipping_fee`` what it costs
        (``None`` keeps the fee). Prices stay as they are. The delivery and fee it has
        already change nothing (``(self, [])``): its stock stays held where it is."""
        self._require_in_progress("edit")
        if not isinstance(delivery, Delivery):
            raise InvalidDraft([f"delivery must be a Delivery, got {delivery!r}"])
        problems = delivery.problems()
        if shipping_fee is not None:
            problems += money_problems("shipping fee", shipping_fee, self.currency)
        if problems:
            raise InvalidDraft(problems)
        if not all(line.untouched for line in self.lines):
            raise InvalidTransition(
                f"cannot change the delivery of order {self.id}: units are already allocated"
            )
        fee = self.shipping_fee if shipping_fee is None else shipping_fee
        if (delivery, fee) == (self.delivery, self.shipping_fee):
            return self, []  # its stock stays held where it is
        order = self._next(delivery=delivery, shipping_fee=fee)
        changed = DeliveryChanged(
            order_id=self.id,
            version=order.version,
            at=at,
            method=delivery.method.value,
            pickup_location=delivery.pickup_location,
            address=delivery.address,
            shipping_fee=shipping_fee,
        )
        return order, [changed]

    def change_ship_complete(
        self, ship_complete: bool, at: datetime
    ) -> tuple[Order, list[DomainEvent]]:
        """Source the open units whole from one location from now on, or let them be split
        (the customer will take what is there). Needs open units: it applies to the next
        allocation. The setting it has already changes nothing (``(self, [])``)."""
        self._require_in_progress("edit")
        if not isinstance(ship_complete, bool):
            raise InvalidDraft([f"ship_complete must be True or False, got {ship_complete!r}"])
        if not self.open_units:
            raise InvalidTransition(
                f"order {self.id} has no open units: ship complete applies to what is still "
                "to be sourced"
            )
        if ship_complete == self.ship_complete:
            return self, []
        order = self._next(ship_complete=ship_complete)
        changed = ShipCompleteChanged(
            order_id=self.id, version=order.version, at=at, ship_complete=ship_complete
        )
        return order, [changed]

    # --- cancellation -------------------------------------------------------------------

    def cancel(
        self,
        lines: LineQuantities | None,
        reason: str,
        at: datetime,
        *,
        fulfillment_id: str | None = None,
    ) -> tuple[Order, list[DomainEvent]]:
        """Cancel units: ``None`` cancels everything cancellable; else ``{line_id: units}``.

        Open units go first, then allocated units not yet shipped, newest fulfilment order
        first. With ``fulfillment_id``, only that fulfilment order's units are cancelled
        (``None`` as lines: all of them). Cancelling more than is cancellable raises
        :class:`NotCancellable`.
        """
        wanted = self._cancel_request(lines, fulfillment_id)
        shrinking = _Shrinking(self.fulfillments, only=fulfillment_id)
        new_lines = list(self.lines)
        cancelled: list[CancelledUnits] = []
        for index, line in enumerate(self.lines):
            units = wanted.get(line.id, 0)
            if units == 0:
                continue
            from_open = 0 if fulfillment_id is not None else min(units, line.open)
            if from_open:
                cancelled.append(CancelledUnits(line.id, line.sku, open=from_open))
            cancelled += shrinking.take(line, units - from_open)
            new_lines[index] = evolved(
                line,
                cancelled=line.cancelled + units,
                allocated=line.allocated - (units - from_open),
            )
        order = self._next(lines=tuple(new_lines), fulfillments=shrinking.result())
        event = UnitsCancelled(
            order_id=self.id,
            version=order.version,
            at=at,
            reason=reason,
            units=tuple(cancelled),
            fully_cancelled=order.status is OrderStatus.CANCELLED,
        )
        return order, [event]

    def _cancel_request(
        self, lines: LineQuantities | None, fulfillment_id: str | None = None
    ) -> dict[LineId, int]:
        """Units to cancel per line, each checked against what may be cancelled: on the
        order (never units in transit to a store), or in one fulfilment order."""
        subject, limits, why = (
            self._cancellable_units()
            if fulfillment_id is None
            else self._cancellable_in(fulfillment_id)
        )
        if lines is None:
            wanted = {line_id: units for line_id, units in limits.items() if units}
            if not wanted:
                raise NotCancellable(f"{subject} has no open or unshipped units to cancel")
            return wanted
        if not lines:
            raise NotCancellable(f"cancel of {subject} names no line")
        wanted, line_of = {}, self.line_finder()
        for line_id, units in lines.items():
            line = line_of(line_id)
            if isinstance(units, bool) or not isinstance(units, int) or units < 1:
                raise InvalidQuantity(
                    f"units to cancel on line {line_id} must be a positive int, got {units!r}"
                )
            if units > limits.get(line.id, 0):
                raise NotCancellable(
                    f"cannot cancel {units} unit(s) of line {line_id} "
                    f"{'on' if fulfillment_id is None else 'from'} {subject}: {why(line.id)}"
                )
            wanted[line.id] = units
        return wanted

    def _cancellable_units(self) -> tuple[str, dict[LineId, int], Callable[[LineId], str]]:
        """What a cancel of the order may take, per line, and why no more."""
        in_transit = self._units_in_transit()
        limits = {line.id: line.cancellable - in_transit.get(line.id, 0) for line in self.lines}

        def why(line_id: LineId) -> str:
            moving = in_transit.get(line_id, 0)
            return f"only {limits[line_id]} are open or allocated and unshipped" + (
                f" ({moving} are in transit to the pickup store)" if moving else ""
            )

        return f"order {self.id}", limits, why

    def _cancellable_in(
        self, fulfillment_id: str
    ) -> tuple[str, dict[LineId, int], Callable[[LineId], str]]:
        """What a cancel of one fulfilment order may take: all its units, unless it is done
        or on its way to the store."""
        f = self._fulfillment_or_raise(fulfillment_id)
        if not f.is_active or f.in_transit:
            state = "in transit to the pickup store" if f.in_transit else f.status.value
            raise NotCancellable(
                f"cannot cancel units of fulfilment order {f.id} on order {self.id}: it is {state}"
            )
        held: dict[LineId, int] = {}
        for fl in f.lines:
            held[fl.line_id] = held.get(fl.line_id, 0) + fl.quantity
        return (
            f"fulfilment order {f.id}",
            held,
            lambda line_id: f"it has {held.get(line_id, 0)} of that line",
        )

    def _units_in_transit(self) -> dict[LineId, int]:
        """Units per line in ship-to-store parcels on their way to the store."""
        units: dict[LineId, int] = {}
        for f in self.fulfillments:
            if f.in_transit:
                for fl in f.lines:
                    units[fl.line_id] = units.get(fl.line_id, 0) + fl.quantity
        return units

    # --- allocation and fulfilment -----------------------------------------------------

    def allocate(
        self,
        fulfillments: Sequence[tuple[FulfillmentId, LocationId, Sequence[FulfilledUnits]]],
        at: datetime,
        counted: Mapping[LocationId, date] | None = None,
    ) -> tuple[Order, list[DomainEvent]]:
        """Give open units to locations: one new fulfilment order per entry. ``counted``
        gives the day on which each capped location's capacity counts its new order (its
        ``counted_on``)."""
        self._require_in_progress("allocate")
        self.require_not_held("allocate")
        wanted: dict[LineId, int] = {}
        for _, _, units in fulfillments:
            for u in units:
                wanted[u.line_id] = wanted.get(u.line_id, 0) + u.quantity
        line_of = self.line_finder()
        for line_id, count in wanted.items():
            line = line_of(line_id)
            if count < 1 or count > line.open:
                raise InvalidQuantity(
                    f"cannot allocate {count} unit(s) of line {line_id}: {line.open} open"
                )
        created = []
        events: list[DomainEvent] = []
        version = self.version + 1
        for fulfillment_id, location_id, units in fulfillments:
            method = self.delivery.method  # a ship-to-store parcel is a pickup too
            lines = tuple([FulfillmentLine(u.line_id, u.sku, u.quantity) for u in units])
            created.append(
                FulfillmentOrder(
                    fulfillment_id,
                    location_id,
                    method,
                    lines,
                    FulfillmentStatus.OPEN,
                    at,
                    changed_at=at,
                    counted_on=counted.get(location_id) if counted else None,
                )
            )
            events.append(
                FulfillmentCreated(
                    order_id=self.id,
                    version=version,
                    at=at,
                    fulfillment_id=fulfillment_id,
                    location_id=location_id,
                    method=str(method),
                    units=tuple(units),
                )
            )
        new_lines = tuple(
            [
                evolved(line, allocated=line.allocated + wanted[line.id])
                if line.id in wanted
                else line
                for line in self.lines
            ]
        )
        order = self._next(lines=new_lines, fulfillments=(*self.fulfillments, *created))
        return order, events

    def advance(
        self,
        fulfillment_id: str,
        command: str,
        at: datetime,
        *,
        tracking: str | None = None,
        carrier: str | None = None,
        reason: str = "",
    ) -> tuple[Order, list[DomainEvent]]:
        """Move a fulfilment order on by ``command`` (see ``FULFILLMENT_TRANSITIONS``): its
        status, the line buckets of its units, and the events that say so."""
        f = self.require_step(fulfillment_id, command)
        moved = evolved(
            f,
            status=FULFILLMENT_TRANSITIONS[command][1],
            changed_at=at,
            tracking=tracking or f.tracking,
            carrier=carrier or f.carrier,
            note=reason or f.note,
            handover_location=self._handover(f, command),
        )
        fulfillments = tuple(moved if x.id == f.id else x for x in self.fulfillments)
        lines = _move_buckets(self.lines, f, command)
        rejected = self.rejected_locations
        if command == "reject":  # whoever has the units rejects: the store, once handed over
            rejected = rejected | {f.stock_location}
        order = self._next(fulfillments=fulfillments, lines=lines, rejected_locations=rejected)
        return order, [_fulfillment_event(order, f, command, at, tracking, carrier, reason)]

    def require_step(self, fulfillment_id: str, command: str) -> FulfillmentOrder:
        """The fulfilment order, if ``command`` may move it on now; else the
        :class:`InvalidTransition` (or :class:`OrderOnHold`) that says why not."""
        f = self._fulfillment_or_raise(fulfillment_id)
        starts = FULFILLMENT_TRANSITIONS[command][0]
        if f.status not in starts:
            raise InvalidTransition(
                f"cannot {command.replace('_', ' ')} fulfilment order {f.id}: it is "
                f"{f.status.value}"
            )
        if command in _HELD_BACK:
            self.require_not_held(command.replace("_", " "))
        pickup_only = command in ("ready_for_pickup", "collect", "expire")
        if (
            pickup_only != (f.method is DeliveryMethod.PICKUP)
            and command != "deliver"
            and (pickup_only or command == "ship")
        ):
            raise InvalidTransition(
                f"cannot {command.replace('_', ' ')} fulfilment order {f.id}: "
                f"it is a {f.method.value} fulfilment"
            )
        if command == "send_to_store" and self._store_of_parcel(f) is None:
            raise InvalidTransition(
                f"cannot send fulfilment order {f.id} to a store: it is a {f.method.value} "
                f"fulfilment at {f.location_id}, not a pickup shipped to another store"
            )
        return f

    def _handover(self, f: FulfillmentOrder, command: str) -> LocationId | None:
        """The pickup store, when ``command`` sends a ship-to-store parcel there or makes it
        ready there."""
        if command in ("send_to_store", "ready_for_pickup"):
            return self._store_of_parcel(f) or f.handover_location
        return f.handover_location

    def _store_of_parcel(self, f: FulfillmentOrder) -> LocationId | None:
        """The pickup store ``f`` goes to, if it is a ship-to-store parcel."""
        store = self.delivery.pickup_location
        if f.method is DeliveryMethod.PICKUP and store is not None and store != f.location_id:
            return store
        return None

    def _fulfillment_or_raise(self, fulfillment_id: str) -> FulfillmentOrder:
        for f in self.fulfillments:
            if f.id == fulfillment_id:
                return f
        raise UnknownFulfillment(f"order {self.id} has no fulfilment order {fulfillment_id!r}")

    @property
    def rejections(self) -> int:
        """How many fulfilment orders of this order were rejected."""
        return sum(1 for f in self.fulfillments if f.status is FulfillmentStatus.REJECTED)

    def split_fulfillment(
        self,
        fulfillment_id: str,
        units: LineQuantities,
        new_id: FulfillmentId,
        at: datetime,
    ) -> tuple[Order, FulfillmentSplit]:
        """Move ``units`` (``{line_id: units}``, fewer than it has) of a fulfilment order not
        yet shipped (or ready for pickup) into a new one, ``new_id``, at the same location
        and in the same status: a parcel that leaves now while the rest follows, or the
        part of a pickup the customer takes now. The rest keeps its id and its ``since``
        (a pickup's expiry clock runs on)."""
        f = self._fulfillment_or_raise(fulfillment_id)
        if f.status not in _SPLITTABLE:
            raise InvalidTransition(f"cannot split fulfilment order {f.id}: it is {f.status.value}")
        wanted = _units_of_lines(f, units, "split off")
        if sum(wanted.values()) == f.units:
            raise InvalidQuantity(
                f"a split of fulfilment order {f.id} must leave it at least one unit "
                "(to ship every unit, name none)"
            )
        moved, kept = _divide(f.lines, wanted)
        part = evolved(
            f, id=new_id, lines=tuple(moved), created_at=at, changed_at=at, counted_on=None
        )
        rest = evolved(f, lines=tuple(kept))
        order = self._next(
            fulfillments=(*(rest if x.id == f.id else x for x in self.fulfillments), part)
        )
        event = FulfillmentSplit(
            order_id=self.id,
            version=order.version,
            at=at,
            fulfillment_id=f.id,
            new_fulfillment_id=new_id,
            location_id=f.location_id,
            units=_as_units(moved),
        )
        return order, event

    def short_pick(
        self, fulfillment_id: str, missing: LineQuantities, reason: str, at: datetime
    ) -> tuple[Order, FulfillmentShortPicked]:
        """The location cannot find ``missing`` units (``{line_id: units}``) of a fulfilment
        order it has not packed: they leave it and are open again, and the location is not
        asked for this order again. A fulfilment order left without units is rejected."""
        f = self._fulfillment_or_raise(fulfillment_id)
        if f.status not in _SHORT_PICKABLE:
            raise InvalidTransition(
                f"cannot short-pick fulfilment order {f.id}: it is {f.status.value}"
            )
        gone, remaining = _divide(f.lines, _units_of_lines(f, missing, "short-pick"))
        taken: dict[LineId, int] = {}
        for fl in gone:
            taken[fl.line_id] = taken.get(fl.line_id, 0) + fl.quantity
        emptied = not remaining
        moved = evolved(
            f,
            lines=f.lines if emptied else tuple(remaining),
            status=FulfillmentStatus.REJECTED if emptied else f.status,
            changed_at=at if emptied else f.changed_at,
            note=reason or f.note,
        )
        order = self._next(
            fulfillments=tuple(moved if x.id == f.id else x for x in self.fulfillments),
            lines=tuple(
                evolved(line, allocated=line.allocated - taken[line.id])
                if line.id in taken
                else line
                for line in self.lines
            ),
            rejected_locations=self.rejected_locations | {f.stock_location},
        )
        event = FulfillmentShortPicked(
            order_id=self.id,
            version=order.version,
            at=at,
            fulfillment_id=f.id,
            location_id=f.stock_location,
            reason=reason,
            units=_as_units(gone),
            emptied=emptied,
        )
        return order, event

    def move_fulfillment(
        self,
        fulfillment_id: str,
        location_id: LocationId,
        reason: str,
        at: datetime,
        counted_on: date | None = None,
    ) -> tuple[Order, FulfillmentMoved]:
        """Give a fulfilment order no one has picked yet, whole, to another location, where
        it starts again as open (``counted_on``: the day the new location's capacity counts
        it, if it has a cap). Raises :class:`InvalidTransition` once it is picked, or when
        it is already there."""
        f = self._fulfillment_or_raise(fulfillment_id)
        if f.status not in MOVABLE_FULFILLMENT:
            raise InvalidTransition(
                f"cannot move fulfilment order {f.id}: it is {f.status.value}; only an open "
                "or accepted one, whose units are still on the shelf, can move"
            )
        if location_id == f.location_id:
            raise InvalidTransition(f"fulfilment order {f.id} is already at {location_id}")
        moved = evolved(
            f,
            location_id=location_id,
            status=FulfillmentStatus.OPEN,
            changed_at=at,
            note=reason or f.note,
            counted_on=counted_on,
        )
        order = self._next(
            fulfillments=tuple(moved if x.id == f.id else x for x in self.fulfillments)
        )
        event = FulfillmentMoved(
            order_id=self.id,
            version=order.version,
            at=at,
            fulfillment_id=f.id,
            location_id=location_id,
            from_location_id=f.location_id,
            reason=reason,
            units=_as_units(f.lines),
        )
        return order, event

    # --- helpers ------------------------------------------------------------------------

    def _next(self, **changes: Any) -> Order:
        return evolved(self, version=self.version + 1, **changes)

    def _with_line(self, new_line: OrderLine) -> tuple[OrderLine, ...]:
        return tuple(new_line if line.id == new_line.id else line for line in self.lines)

    def _editable_line(self, line_id: str) -> OrderLine:
        line = self.line(line_id)
        if not line.untouched:
            raise InvalidTransition(
                f"line {line.id} of order {self.id} can no longer be edited: "
                f"{line.allocated + line.shipped + line.delivered} unit(s) already allocated"
            )
        return line

    def _require_in_progress(self, action: str) -> None:
        status = self.status
        if status in (OrderStatus.CANCELLED, OrderStatus.DELIVERED):
            raise InvalidTransition(f"cannot {action} order {self.id}: it is {status.value}")


def _units_of_lines(f: FulfillmentOrder, units: LineQuantities, verb: str) -> dict[LineId, int]:
    """``units`` checked against what ``f`` has of each line (at least one line, each count
    from 1 to what it has)."""
    if not units:
        raise InvalidQuantity(f"cannot {verb} units of fulfilment order {f.id}: it names no line")
    checked: dict[LineId, int] = {}
    for line_id, n in units.items():
        has = f.quantity_of(LineId(line_id))
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= has:
            raise InvalidQuantity(
                f"cannot {verb} {n!r} unit(s) of line {line_id} from fulfilment order "
                f"{f.id}: it has {has} of that line"
            )
        checked[LineId(line_id)] = n
    return checked


def _divide(
    lines: Sequence[FulfillmentLine], units: Mapping[LineId, int]
) -> tuple[list[FulfillmentLine], list[FulfillmentLine]]:
    """``lines`` cut in two: ``units`` per line id (taken from the first lines holding
    each), and what is left."""
    wanted = dict(units)
    taken, left = [], []
    for fl in lines:
        take = min(fl.quantity, wanted.get(fl.line_id, 0))
        if take:
            wanted[fl.line_id] -= take
            taken.append(evolved(fl, quantity=take))
        if fl.quantity > take:
            left.append(evolved(fl, quantity=fl.quantity - take))
    return taken, left


def _move_buckets(
    lines: tuple[OrderLine, ...], f: FulfillmentOrder, command: str
) -> tuple[OrderLine, ...]:
    move = _BUCKET_MOVES.get(command)
    if move is None:
        return lines
    source, target = move
    per_line: dict[LineId, int] = {}
    for fl in f.lines:
        per_line[fl.line_id] = per_line.get(fl.line_id, 0) + fl.quantity
    moved = []
    for line in lines:
        units = per_line.get(line.id, 0)
        if not units:
            moved.append(line)
            continue
        changes = {source: getattr(line, source) - units}
        if target is not None:
            changes[target] = getattr(line, target) + units
        moved.append(evolved(line, **changes))
    return tuple(moved)


def _fulfillment_event(
    order: Order,
    f: FulfillmentOrder,
    command: str,
    at: datetime,
    tracking: str | None,
    carrier: str | None,
    reason: str,
) -> DomainEvent:
    units = _as_units(f.lines)
    common: dict[str, Any] = {
        "order_id": order.id,
        "version": order.version,
        "at": at,
        "fulfillment_id": f.id,
        "location_id": f.location_id,
    }
    if command == "ship":
        return FulfillmentShipped(tracking=tracking, carrier=carrier, units=units, **common)
    if command == "send_to_store":
        store = order.delivery.pickup_location
        assert store is not None  # advance checked that it is a ship-to-store parcel
        return FulfillmentSentToStore(
            store_id=store, tracking=tracking, carrier=carrier, units=units, **common
        )
    if command == "reject":
        return FulfillmentRejected(reason=reason, units=units, **common)
    if command == "expire":
        return PickupExpired(units=units, **common)
    if command == "withdraw":
        return FulfillmentWithdrawn(reason=reason, units=units, **common)
    return FulfillmentProgressed(status=FULFILLMENT_TRANSITIONS[command][1].value, **common)


def _as_units(lines: Iterable[FulfillmentLine]) -> tuple[FulfilledUnits, ...]:
    """Fulfilment lines as an event's units."""
    return tuple(FulfilledUnits(x.line_id, x.sku, x.quantity) for x in lines)


class _Shrinking:
    """Active fulfilment orders while a cancel takes units out of them, newest first.

    Units left are counted per fulfilment order and line as the cancel goes; each changed
    fulfilment order is rebuilt once, at the end, so cancelling many lines stays linear.
    With ``only``, the cancel takes units out of that fulfilment order alone.
    """

    def __init__(self, fulfillments: tuple[FulfillmentOrder, ...], only: str | None = None) -> None:
        self.fulfillments = fulfillments
        self.left: dict[int, dict[LineId, int]] = {}  # units per line, by position
        self.total: dict[int, int] = {}
        self.holders: dict[LineId, list[int]] = {}  # positions holding a line, oldest first
        self.emptied_by: dict[int, tuple[LineId, int]] = {}  # the take that emptied one
        for index, f in enumerate(fulfillments):
            if not f.is_active or f.in_transit or (only is not None and f.id != only):
                continue
            units: dict[LineId, int] = {}
            for fl in f.lines:
                units[fl.line_id] = units.get(fl.line_id, 0) + fl.quantity
                self.holders.setdefault(fl.line_id, []).append(index)
            self.left[index], self.total[index] = units, sum(units.values())

    def take(self, line: OrderLine, units: int) -> list[CancelledUnits]:
        """Take ``units`` of ``line`` out of the newest fulfilment orders holding it."""
        taken: list[CancelledUnits] = []
        for index in reversed(self.holders.get(line.id, [])):
            if units == 0:
                break
            left = self.left[index]
            take = min(units, left[line.id]) if self.total[index] else 0
            if take == 0:
                continue
            units -= take
            left[line.id] -= take
            self.total[index] -= take
            if self.total[index] == 0:
                self.emptied_by[index] = (line.id, take)
            f = self.fulfillments[index]
            taken.append(
                CancelledUnits(
                    line.id,
                    line.sku,
                    allocated=take,
                    fulfillment_id=f.id,
                    location_id=f.stock_location,
                )
            )
        return taken

    def result(self) -> tuple[FulfillmentOrder, ...]:
        """The fulfilment orders after the cancel: an emptied one is cancelled (keeping the
        units its last line had before the cancel took them), the others keep what is left."""
        result = list(self.fulfillments)
        for index, f in enumerate(self.fulfillments):
            left = self.left.get(index)
            if left is None or self.total[index] == f.units:
                continue
            emptied = self.emptied_by.get(index)
            if emptied is not None:
                line_id, take = emptied
                last = tuple(evolved(fl, quantity=take) for fl in f.lines if fl.line_id == line_id)
                # Work its location never started no longer counts against its capacity.
                counted_on = None if f.status is FulfillmentStatus.OPEN else f.counted_on
                result[index] = evolved(
                    f, lines=last, status=FulfillmentStatus.CANCELLED, counted_on=counted_on
                )
            else:
                kept = tuple(
                    fl
                    if left[fl.line_id] == fl.quantity
                    else evolved(fl, quantity=left[fl.line_id])
                    for fl in f.lines
                    if left[fl.line_id] > 0
                )
                result[index] = evolved(f, lines=kept)
        return tuple(result)
