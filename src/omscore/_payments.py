"""Payment steps of the use cases: authorise, capture, void, refund, credit.

Each step calls the payment port (or, without one, records the movement as settled
outside omscore) and returns the order with the entry in its payment ledger and the event
that says so. Keys are derived from the command (``capture:<fulfilment id>``), so a retried
command never moves money twice. An authorisation tried again after a recorded decline is
another key, so that a gateway that keeps a key's first answer asks the card anew.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from datetime import datetime

from omscore.errors import OmsError, PaymentDeclined, PaymentError, PaymentLimitExceeded
from omscore.events import DomainEvent
from omscore.money import Money
from omscore.orders import AuthorizationBalance, HoldKind, Order, PaymentEntry, PaymentKind
from omscore.ports import PaymentPort, PaymentResult

Changed = tuple[Order, list[DomainEvent]]


class Payments:
    """The payment side of the OMS; ``port=None`` records payments settled elsewhere."""

    def __init__(self, port: PaymentPort | None) -> None:
        self.port = port

    def _record(
        self,
        order: Order,
        kind: PaymentKind,
        result: PaymentResult | Money,
        key: str,
        at: datetime,
        draws_on: str | None = None,
    ) -> Changed:
        if isinstance(result, Money):
            entry = PaymentEntry(kind, result, None, key, at)
        else:
            entry = PaymentEntry(kind, result.amount, result.reference, key, at, draws_on)
        return order.record_payment(entry)

    def authorize(self, order: Order, amount: Money, at: datetime) -> Changed:
        """Authorise ``amount``; a decline or a fault puts a payment hold on the order."""
        key = f"authorize:{order.id}"
        if self.port is None:  # settled outside omscore: no gateway to keep a decline
            return self._record(order, PaymentKind.AUTHORIZED, amount, key, at)
        key = _after_declines(key, order)
        try:
            port = self.port
            result = _paid("authorize", amount, lambda: port.authorize(order.id, amount, key))
        except PaymentDeclined as declined:
            order, events = self._record(order, PaymentKind.DECLINED, amount, key, at)
            held, more = _payment_hold(order, f"authorisation declined: {declined}", at)
            return held, events + more
        except PaymentError as fault:
            return _payment_hold(order, f"authorisation failed: {fault}", at)
        order, events = self._record(order, PaymentKind.AUTHORIZED, result, key, at)
        if result.amount == amount or order.has_hold(HoldKind.PAYMENT):
            return order, events  # the usual case: authorised as asked
        short = self.shortfall(order)
        if short is None:
            return order, events
        held, more = order.hold(HoldKind.PAYMENT, short, at)
        return held, events + more

    def shortfall(self, order: Order) -> str | None:
        """Why the gateway's authorisation cannot pay for the order (a prepaid card that
        authorised part of it), or ``None`` when it can or omscore does not ask it."""
        if self.port is None or order.payment_reference is None:
            return None
        if order.chargeable <= order.covered:
            return None
        return (
            f"authorised {order.covered} of {order.chargeable}: cancel units until the "
            "payment covers the rest, or cancel the order"
        )

    def cover(
        self, order: Order, before: Order, at: datetime, command_key: str | None = None
    ) -> Changed:
        """Authorise what an edit adds to what the order can be charged, when its payment
        does not cover it: a second authorisation on the customer's payment method, drawn
        on once the first is used up. A decline refuses the edit (:class:`PaymentDeclined`),
        and so does an authorisation of less than was asked, which is voided at once
        (:class:`PaymentLimitExceeded`): a command refused changes nothing. Orders paid
        outside omscore, or not yet authorised (a decline, authorised again for the new
        total), are left alone, and so is an edit that adds nothing to what is due.
        ``command_key``, the edit's idempotency key, goes into the gateway's key: the
        same command repeated asks under the same key, another command anew."""
        if self.port is None or order.payment_reference is None:
            return order, []
        due = order.chargeable
        need = due - max(order.covered, before.chargeable)
        if need.amount <= 0:
            return order, []
        port, key = self.port, _next_authorization_key(order, need, command_key)
        try:
            result = _paid("authorize", need, lambda: port.authorize(order.id, need, key))
        except PaymentDeclined as declined:
            raise PaymentDeclined(
                f"order {order.id} would cost {due}, {need} more than its payment covers, "
                f"and authorising that was declined: {declined}"
            ) from declined
        if result.amount < need:
            _paid("void", result.amount, lambda: port.void(result.reference, f"void:{key}"))
            raise PaymentLimitExceeded(
                f"order {order.id} would cost {due}, {need} more than its payment covers, "
                f"and the payment method authorised only {result.amount} of it (voided)"
            )
        return self._record(order, PaymentKind.AUTHORIZED, result, key, at)

    def top_up(self, order: Order, at: datetime) -> Changed:
        """Authorise what an order authorised in part still lacks (the customer topped up
        a prepaid card, say) as another authorisation. Its payment hold goes once the
        payment covers what is due; otherwise it stays, saying why: a decline (recorded) or
        what is still short after a part authorisation (recorded too: it covers some)."""
        assert self.port is not None
        port, need = self.port, order.chargeable - order.covered
        key = _next_authorization_key(order, need)
        try:
            result = _paid("authorize", need, lambda: port.authorize(order.id, need, key))
        except PaymentDeclined as declined:
            order, events = self._record(order, PaymentKind.DECLINED, need, key, at)
            reason: str | None = f"authorising the {need} still due was declined: {declined}"
        else:
            order, events = self._record(order, PaymentKind.AUTHORIZED, result, key, at)
            reason = self.shortfall(order)
        if reason is not None:
            order, held = _payment_hold(order, reason, at)
        elif order.has_hold(HoldKind.PAYMENT):
            order, held = order.release(HoldKind.PAYMENT, at)
        else:
            held = []
        return order, events + held

    def capture(self, order: Order, amount: Money, key: str, at: datetime) -> Changed:
        """Capture ``amount``: credit left from an exchange pays first, the authorisation
        the rest."""
        events: list[DomainEvent] = []
        credit = min(amount, order.credit_left)
        if credit.amount > 0:
            order, events = self._record(order, PaymentKind.APPLIED, credit, f"{key}:credit", at)
            amount -= credit
        if amount.is_zero():
            return order, events
        order, more = self._charge(order, amount, key, at)
        return order, events + more

    def _charge(self, order: Order, amount: Money, key: str, at: datetime) -> Changed:
        reference = order.payment_reference
        if self.port is None or (reference is None and order.authorized.amount > 0):
            # Authorised outside omscore (before a port was configured): captured there too.
            return self._record(order, PaymentKind.CAPTURED, amount, key, at)
        if reference is None:
            raise PaymentError(f"order {order.id} has no authorisation to capture {amount} from")
        if len(order.authorizations) == 1:  # the usual case: the gateway keeps the limit
            return self._move(order, PaymentKind.CAPTURED, reference, amount, key, at)
        return self._draw(order, PaymentKind.CAPTURED, amount, key, at, lambda b: b.open)

    def _draw(
        self,
        order: Order,
        kind: PaymentKind,
        amount: Money,
        key: str,
        at: datetime,
        room: Callable[[AuthorizationBalance], Money],
    ) -> Changed:
        """Capture, refund or void ``amount`` over the order's authorisations, oldest
        first, each for what it has ``room`` for. More than they have in all is refused before the
        gateway is called."""
        room_in_all = sum((room(b) for b in order.authorizations), Money.zero(amount.currency))
        if amount > room_in_all:
            raise PaymentLimitExceeded(
                f"cannot {_OPERATION[kind]} {amount} on order {order.id}: its "
                f"authorisations have room for {room_in_all}"
            )
        events: list[DomainEvent] = []
        for balance in order.authorizations:
            part = min(amount, room(balance))
            if part.amount > 0 and balance.reference is not None:
                order, more = self._move(order, kind, balance.reference, part, key, at)
                events += more
                amount -= part
        return order, events

    def _move(
        self, order: Order, kind: PaymentKind, reference: str, amount: Money, key: str, at: datetime
    ) -> Changed:
        """One call to the gateway on one authorisation; its key is the command's, with the
        authorisation's reference added on each but the order's first."""
        assert self.port is not None
        own = reference != order.payment_reference
        key = f"{key}@{reference}" if own else key
        call: Callable[[], PaymentResult]
        if kind is PaymentKind.CAPTURED:
            call = functools.partial(self.port.capture, reference, amount, key)
        elif kind is PaymentKind.REFUNDED:
            call = functools.partial(self.port.refund, reference, amount, key)
        else:
            call = functools.partial(self.port.void, reference, key)
        paid = _paid(_OPERATION[kind], amount, call)
        return self._record(order, kind, paid, key, at, reference if own else None)

    def settle(self, order: Order, at: datetime) -> Changed:
        """Void what is left of the authorisations once nothing more will be captured."""
        if not order.fully_settled or order.uncaptured.amount <= 0:
            return order, []
        key = f"void:{order.id}"
        if self.port is None or order.payment_reference is None:
            return self._record(order, PaymentKind.VOIDED, order.uncaptured, key, at)
        return self._draw(order, PaymentKind.VOIDED, order.uncaptured, key, at, lambda b: b.open)

    def refund(self, order: Order, amount: Money, key: str, at: datetime) -> Changed:
        """Refund ``amount`` on the order's payment (over its authorisations, oldest
        first, each for what was captured on it and not refunded)."""
        if amount.is_zero():
            return order, []
        if self.port is None or order.payment_reference is None:
            return self._record(order, PaymentKind.REFUNDED, amount, key, at)
        if len(order.authorizations) == 1:  # the gateway keeps the limit
            return self._move(order, PaymentKind.REFUNDED, order.payment_reference, amount, key, at)
        return self._draw(order, PaymentKind.REFUNDED, amount, key, at, lambda b: b.refundable)

    def credit(self, order: Order, amount: Money, key: str, at: datetime) -> Changed:
        """Count ``amount`` as paid by credit (an exchanged return)."""
        return self.note(order, PaymentKind.CREDITED, amount, key, at)

    def note(
        self, order: Order, kind: PaymentKind, amount: Money, key: str, at: datetime
    ) -> Changed:
        """Record a ledger entry that moves no money at the gateway (credit credited,
        applied, transferred or refunded elsewhere); nothing for a zero amount."""
        if amount.is_zero():
            return order, []
        return self._record(order, kind, amount, key, at)


def _payment_hold(order: Order, reason: str, at: datetime) -> Changed:
    """Hold ``order`` for payment with ``reason``: a payment hold it has already (a retry
    declined again) gives way to the new one, which says why now."""
    events: list[DomainEvent] = []
    if order.has_hold(HoldKind.PAYMENT):
        order, events = order.release(HoldKind.PAYMENT, at)
    order, held = order.hold(HoldKind.PAYMENT, reason, at)
    return order, [*events, *held]


def _next_authorization_key(order: Order, amount: Money, command_key: str | None = None) -> str:
    """The key of the order's next authorisation, for ``amount`` more: a repeat of the
    same command sends it again, and another amount is another call. Given the command's
    own idempotency key, a digest of it is added: a refused edit records no decline on
    the order, so only the caller's new key tells the customer's next try from a repeat."""
    key = f"authorize:{order.id}:{len(order.authorizations) + 1}:{amount.amount}"
    if command_key is not None:
        key += f":cmd-{hashlib.sha256(command_key.encode()).hexdigest()[:16]}"
    return _after_declines(key, order)


def _after_declines(key: str, order: Order) -> str:
    """``key``, with ``:retry-<n>`` added once ``n`` declines are recorded on the order. A
    decline moved no money, so the next try may ask under a key of its own, and must: a
    gateway that keeps a key's first answer, declines too, would answer it with the old
    decline. A command repeated before its decline was recorded sends the same key."""
    declines = sum(1 for p in order.payments if p.kind is PaymentKind.DECLINED)
    return f"{key}:retry-{declines}" if declines else key


#: The payment port's operation behind each movement it makes.
_OPERATION = {
    PaymentKind.CAPTURED: "capture",
    PaymentKind.REFUNDED: "refund",
    PaymentKind.VOIDED: "void",
}


def _paid(operation: str, asked: Money, call: Callable[[], object]) -> PaymentResult:
    """What the payment port's ``operation`` returned, if it can be recorded: a
    :class:`PaymentResult` with a reference, in the order's currency, moving no more than
    was asked (a gateway may authorise less; more is a fault of the adapter). Else
    :class:`PaymentError`, and the command records nothing. The port's own errors other
    than an ``OmsError`` (a timeout of its HTTP client, say) are a ``PaymentError`` too,
    raised from them."""
    try:
        result = call()
    except OmsError:
        raise
    except Exception as error:
        raise PaymentError(
            f"the payment port's {operation} raised {type(error).__name__}: {error}"
        ) from error
    problem = None
    if not isinstance(result, PaymentResult):
        problem = "is not a PaymentResult"
    elif not isinstance(result.reference, str) or not result.reference.strip():
        problem = f"has no reference ({result.reference!r})"
    elif not isinstance(result.amount, Money) or result.amount.currency != asked.currency:
        problem = f"moved {result.amount!r}, not an amount in {asked.currency}"
    elif not Money.zero(asked.currency) <= result.amount <= asked:
        problem = f"moved {result.amount}, where {asked} was asked"
    if problem is not None:
        raise PaymentError(f"the payment port's {operation} {problem}: {result!r}")
    assert isinstance(result, PaymentResult)
    return result
