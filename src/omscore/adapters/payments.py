"""A fake payment gateway for demos and tests that keeps the rules a real one keeps."""

from __future__ import annotations

import threading
from collections.abc import Callable

import attrs

from omscore.errors import (
    InvalidQuantity,
    PaymentDeclined,
    PaymentError,
    PaymentLimitExceeded,
)
from omscore.money import Money
from omscore.ports import PaymentResult


@attrs.define
class Authorization:
    """One authorisation and what happened to it."""

    reference: str
    order_id: str
    amount: Money
    captured: Money
    refunded: Money
    voided: Money

    @property
    def open(self) -> Money:
        """What can still be captured."""
        return self.amount - self.captured - self.voided


@attrs.frozen(slots=True)
class GatewayCall:
    """A call the gateway received (repeats included), for assertions in tests."""

    operation: str
    key: str
    amount: Money | None
    outcome: str


class FakePaymentGateway:
    """In memory, deterministic references (``pay-1`` ...), idempotent by key.

    It enforces what a real gateway does: no capture beyond the open authorisation, no
    refund beyond what was captured less refunds, nothing captured after a void. Tell it to
    decline authorisations for an order (``decline_orders``), to decline or fail the next
    call (``decline_next()``, ``fail_next()``), or to authorise no more than an amount, as
    a prepaid card does (``authorize_at_most()``).

    For long runs (the simulation): ``record_calls=False`` keeps no log of calls, and
    ``remember_keys=n`` remembers only the ``n`` latest idempotency keys, as real gateways
    forget keys after a while (a repeat of a forgotten key moves money again).

    It keeps only what succeeded under a key. ``keep_declines=True`` keeps declines too, as
    gateways do that store a key's first answer whatever it was (Stripe does:
    https://docs.stripe.com/idempotency): a repeat of a declined key is declined again
    without asking the card, so a retry after a decline needs a key of its own.
    """

    def __init__(
        self,
        *,
        decline_orders: set[str] | None = None,
        record_calls: bool = True,
        remember_keys: int | None = None,
        keep_declines: bool = False,
    ) -> None:
        if remember_keys is not None and remember_keys < 1:
            raise InvalidQuantity(f"remember_keys must be at least 1, got {remember_keys}")
        self.decline_orders: set[str] = set(decline_orders or ())
        self.authorizations: dict[str, Authorization] = {}
        self.calls: list[GatewayCall] = []
        self.record_calls = record_calls
        self.remember_keys = remember_keys
        self.keep_declines = keep_declines
        self._results: dict[str, tuple[str, PaymentResult | PaymentDeclined]] = {}
        self._declines = 0
        self._failures = 0
        self._limits: list[Money] = []
        self._lock = threading.Lock()

    def decline_next(self, count: int = 1) -> None:
        """Decline the next ``count`` calls that move money."""
        self._declines += count

    def fail_next(self, count: int = 1) -> None:
        """Fail (a technical error) the next ``count`` calls."""
        self._failures += count

    def authorize_at_most(self, limit: Money, count: int = 1) -> None:
        """Authorise no more than ``limit`` on each of the next ``count`` authorisations
        (a prepaid card with that much on it)."""
        self._limits += [limit] * count

    def clear_pending(self) -> None:
        """Forget the declines, failures and limits asked for and not used yet."""
        self._declines = self._failures = 0
        self._limits = []

    def authorize(self, order_id: str, amount: Money, key: str) -> PaymentResult:
        """Reserve ``amount`` for ``order_id``."""
        with self._lock:
            return self._once("authorize", key, amount, lambda: self._authorize(order_id, amount))

    def capture(self, reference: str, amount: Money, key: str) -> PaymentResult:
        """Charge part of an authorisation."""
        with self._lock:
            return self._once("capture", key, amount, lambda: self._capture(reference, amount))

    def refund(self, reference: str, amount: Money, key: str) -> PaymentResult:
        """Give back part of what was captured."""
        with self._lock:
            return self._once("refund", key, amount, lambda: self._refund(reference, amount))

    def void(self, reference: str, key: str) -> PaymentResult:
        """Release what is left of an authorisation."""
        with self._lock:
            return self._once("void", key, None, lambda: self._void(reference))

    def _once(
        self, operation: str, key: str, amount: Money | None, act: Callable[[], PaymentResult]
    ) -> PaymentResult:
        if key in self._results:
            first_operation, first = self._results[key]
            if first_operation != operation:
                raise PaymentError(f"key {key!r} was used for {first_operation}, not {operation}")
            self._log(operation, key, amount, "repeat")
            if isinstance(first, PaymentDeclined):
                raise PaymentDeclined(f"{first} (the answer kept under the key)")
            return first
        if self._failures:
            self._failures -= 1
            self._log(operation, key, amount, "failed")
            raise PaymentError(f"gateway unavailable during {operation} ({key})")
        try:
            if self._declines and operation != "void":
                self._declines -= 1
                raise PaymentDeclined(f"{operation} of {amount} declined ({key})")
            result = act()
        except PaymentDeclined as declined:
            self._log(operation, key, amount, "declined")
            if self.keep_declines:
                self._remember(key, operation, declined)
            raise
        except PaymentError:
            self._log(operation, key, amount, "refused")
            raise
        self._remember(key, operation, result)
        self._log(operation, key, amount, "ok")
        return result

    def _log(self, operation: str, key: str, amount: Money | None, outcome: str) -> None:
        if self.record_calls:
            self.calls.append(GatewayCall(operation, key, amount, outcome))

    def _remember(self, key: str, operation: str, result: PaymentResult | PaymentDeclined) -> None:
        results = self._results
        results[key] = (operation, result)
        if self.remember_keys is not None and len(results) > self.remember_keys:
            del results[next(iter(results))]  # the oldest key: dicts keep insertion order

    def _authorize(self, order_id: str, amount: Money) -> PaymentResult:
        if order_id in self.decline_orders:
            raise PaymentDeclined(f"authorisation of {amount} for order {order_id} declined")
        if self._limits:
            amount = min(amount, self._limits.pop(0))
        reference = f"pay-{len(self.authorizations) + 1}"
        zero = Money.zero(amount.currency)
        self.authorizations[reference] = Authorization(
            reference, order_id, amount, zero, zero, zero
        )
        return PaymentResult(reference, amount)

    def _get(self, reference: str) -> Authorization:
        if reference not in self.authorizations:
            raise PaymentError(f"no authorisation {reference!r}")
        return self.authorizations[reference]

    def _capture(self, reference: str, amount: Money) -> PaymentResult:
        auth = self._get(reference)
        if amount > auth.open:
            raise PaymentLimitExceeded(
                f"cannot capture {amount} on {reference}: {auth.open} left of {auth.amount}"
            )
        auth.captured += amount
        return PaymentResult(reference, amount)

    def _refund(self, reference: str, amount: Money) -> PaymentResult:
        auth = self._get(reference)
        refundable = auth.captured - auth.refunded
        if amount > refundable:
            raise PaymentLimitExceeded(
                f"cannot refund {amount} on {reference}: {refundable} captured and not refunded"
            )
        auth.refunded += amount
        return PaymentResult(reference, amount)

    def _void(self, reference: str) -> PaymentResult:
        auth = self._get(reference)
        left = auth.open
        auth.voided += left
        return PaymentResult(reference, left)
