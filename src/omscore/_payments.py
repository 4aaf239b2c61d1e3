"""Payment steps of the use cases: authorise, capture, void, refund, credit.

Each step calls the payment port (or, without one, records the movement as settled
outside omscore) and returns the order with the entry in its payment ledger and the event
that says so. Keys are derived from the command (``capture:<fulfilment id>``), so a retried
command never moves money twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from omscore.errors import OmsError, PaymentDeclined, PaymentError, PaymentLimitExceeded
from omscore.events import DomainEvent
from omscore.money import Money
from omscore.orders import HoldKind, Order, PaymentEntry, PaymentKind
from omscore.ports import PaymentPort, PaymentResult

Changed = tuple[Order, list[DomainEvent]]


class Payments:
    """The payment side of the OMS; ``port=None`` records payments settled elsewhere."""

    def __init__(self, port: PaymentPort | None) -> None:
        self.port = port

    def _record(
        self, order: Order, kind: PaymentKind, result: PaymentResult | Money, key: str, at: datetime
    ) -> Changed:
        if isinstance(result, Money):
            entry = PaymentEntry(kind, result, None, key, at)
        else:
            entry = PaymentEntry(kind, result.amount, result.reference, key, at)
        return order.record_payment(entry)

    def authorize(self, order: Order, amount: Money, at: datetime) -> Changed:
        """Authorise ``amount``; a decline or a fault puts a payment hold on the order."""
        key = f"authorize:{order.id}"
        if self.port is None:
            return self._record(order, PaymentKind.AUTHORIZED, amount, key, at)
        try:
            port = self.port
            result = _paid("authorize", amount, lambda: port.authorize(order.id, amount, key))
        except PaymentDeclined as declined:
            order, events = self._record(order, PaymentKind.DECLINED, amount, key, at)
            held, more = order.hold(HoldKind.PAYMENT, f"authorisation declined: {declined}", at)
            return held, events + more
        except PaymentError as fault:
            return order.hold(HoldKind.PAYMENT, f"authorisation failed: {fault}", at)
        order, events = self._record(order, PaymentKind.AUTHORIZED, result, key, at)
        if result.amount == amount or any(h.kind == HoldKind.PAYMENT for h in order.holds):
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

    def require_covered(self, order: Order, before: Order) -> None:
        """Refuse an edit that raises what the order can be charged beyond what the
        gateway authorised: it would capture no more, and the order could never ship in
        full. Orders paid outside omscore, or not yet authorised (a decline, authorised
        again for the new total), are not limited."""
        if self.port is None or order.payment_reference is None:
            return
        due = order.chargeable
        if due <= before.chargeable or due <= order.covered:
            return
        raise PaymentLimitExceeded(
            f"order {order.id} would cost {due}, more than the {order.covered} its "
            f"payment covers (authorised {order.authorized}); the gateway captures no more "
            "than it authorised: sell the rest as an order of its own"
        )

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
        port = self.port
        paid = _paid("capture", amount, lambda: port.capture(reference, amount, key))
        return self._record(order, PaymentKind.CAPTURED, paid, key, at)

    def settle(self, order: Order, at: datetime) -> Changed:
        """Void what is left of the authorisation once nothing more will be captured."""
        if not order.fully_settled or order.uncaptured.amount <= 0:
            return order, []
        key = f"void:{order.id}"
        if self.port is None or order.payment_reference is None:
            return self._record(order, PaymentKind.VOIDED, order.uncaptured, key, at)
        port, reference = self.port, order.payment_reference
        voided = _paid("void", order.uncaptured, lambda: port.void(reference, key))
        return self._record(order, PaymentKind.VOIDED, voided, key, at)

    def refund(self, order: Order, amount: Money, key: str, at: datetime) -> Changed:
        """Refund ``amount`` on the order's payment."""
        if amount.is_zero():
            return order, []
        if self.port is None or order.payment_reference is None:
            return self._record(order, PaymentKind.REFUNDED, amount, key, at)
        port, reference = self.port, order.payment_reference
        refunded = _paid("refund", amount, lambda: port.refund(reference, amount, key))
        return self._record(order, PaymentKind.REFUNDED, refunded, key, at)

    def credit(self, order: Order, amount: Money, key: str, at: datetime) -> Changed:
        """Count ``amount`` as paid by credit (an exchanged return)."""
        if amount.is_zero():
            return order, []
        return self._record(order, PaymentKind.CREDITED, amount, key, at)


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
