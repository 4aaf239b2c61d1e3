"""Payments: authorise at placing, capture at shipping, void the rest, through the port."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from omscore import OMS, Delivery, LineDraft, Money, OmsError, OrderDraft, OrderStatus
from omscore._payments import Payments
from omscore.adapters.memory import MemoryStore
from omscore.adapters.payments import FakePaymentGateway
from omscore.errors import (
    InvalidQuantity,
    InvalidTransition,
    PaymentDeclined,
    PaymentError,
    PaymentLimitExceeded,
)
from omscore.events import PaymentRecorded
from omscore.orders import Order, PaymentEntry, PaymentKind
from omscore.ports import PaymentResult
from omscore.testing import ManualClock, SequentialIds
from omscore.testing.contract import assert_gateway_holds_the_ledger
from omscore.testing.invariants import check_books

from .conftest import BERLIN, eur, warehouse


def paid_draft(*lines: tuple[str, int, str], shipping: str = "4.95") -> OrderDraft:
    """A draft with ``(sku, quantity, unit price)`` lines and a shipping fee."""
    return OrderDraft(
        channel="web",
        currency="EUR",
        lines=[LineDraft(sku, q, eur(price)) for sku, q, price in lines],
        delivery=Delivery.ship(BERLIN),
        shipping_fee=eur(shipping),
    )


@pytest.fixture
def gateway() -> FakePaymentGateway:
    """A fresh fake gateway."""
    return FakePaymentGateway()


@pytest.fixture
def shop(make_oms: Callable[..., OMS], gateway: FakePaymentGateway) -> OMS:
    """An OMS with a payment gateway and one warehouse with stock of A and B."""
    oms = make_oms(payments=gateway)
    oms.add_location(warehouse("WH-1"))
    oms.add_location(warehouse("WH-2", priority=2))
    oms.receive("WH-1", "A", 10)
    oms.receive("WH-2", "B", 10)
    return oms


def test_placing_authorises_the_order_total(shop: OMS, gateway: FakePaymentGateway) -> None:
    """One authorisation of lines plus shipping, with a key derived from the order."""
    order = shop.place_order(paid_draft(("A", 2, "10.00")))
    assert order.authorized == eur("24.95")
    assert order.payment_reference == "pay-1"
    assert [(c.operation, c.key) for c in gateway.calls] == [("authorize", f"authorize:{order.id}")]


def test_a_declined_card_holds_the_order_and_keeps_it(make_oms: Callable[..., OMS]) -> None:
    """The order is placed, on a payment hold; a retry declined keeps it, and a later
    authorisation releases it. Each try after a decline goes under a key of its own, so a
    gateway that keeps declines under their key asks the card anew."""
    gateway = FakePaymentGateway(keep_declines=True)
    oms = make_oms(payments=gateway)
    oms.add_location(warehouse("WH-1"))
    gateway.decline_next()
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    assert order.status is OrderStatus.ON_HOLD
    assert [h.kind for h in order.holds] == ["payment"]
    assert order.authorized == Money.zero("EUR")
    assert [p.kind for p in order.payments] == [PaymentKind.DECLINED]
    gateway.decline_next()
    again = oms.authorize_payment(order.id)  # declined again: the hold stays
    assert (again.status, [h.kind for h in again.holds]) == (OrderStatus.ON_HOLD, ["payment"])
    assert [p.kind for p in again.payments] == [PaymentKind.DECLINED] * 2
    order = oms.authorize_payment(order.id)
    assert order.holds == ()
    assert order.authorized == eur("14.95")
    first = f"authorize:{order.id}"
    assert [(p.kind, p.key) for p in order.payments] == [
        (PaymentKind.DECLINED, first),
        (PaymentKind.DECLINED, f"{first}:retry-1"),
        (PaymentKind.AUTHORIZED, f"{first}:retry-2"),
    ]


def test_a_fault_is_retried_under_the_same_key(make_oms: Callable[..., OMS]) -> None:
    """A fault may hide an authorisation the gateway made, so the retry asks under the
    same key and gets that one; only a recorded decline moves the key on."""
    gateway = FakePaymentGateway(keep_declines=True)
    oms = make_oms(payments=gateway)
    gateway.fail_next()
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    paid = oms.authorize_payment(order.id)
    assert paid.holds == ()
    key = f"authorize:{order.id}"
    assert [(c.key, c.outcome) for c in gateway.calls] == [(key, "failed"), (key, "ok")]


def test_a_gateway_fault_holds_the_order_too(make_oms: Callable[..., OMS]) -> None:
    """A technical failure is a payment hold with the reason, not a lost order."""
    gateway = FakePaymentGateway()
    oms = make_oms(payments=gateway)
    gateway.fail_next()
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    assert "authorisation failed" in order.holds[0].reason
    gateway.decline_next()
    order = oms.authorize_payment(order.id)  # the retry is declined: the hold says so now
    assert [h.reason.split(":")[0] for h in order.holds] == ["authorisation declined"]
    gateway.fail_next()
    order = oms.authorize_payment(order.id)
    assert [h.reason.split(":")[0] for h in order.holds] == ["authorisation failed"]
    assert oms.authorize_payment(order.id).holds == ()


def test_shipping_captures_its_units_and_the_fee_with_the_first_parcel(
    shop: OMS, gateway: FakePaymentGateway
) -> None:
    """Two parcels: each captures its units' shares; shipping goes with the first."""
    order = shop.place_order(paid_draft(("A", 1, "10.00"), ("B", 2, "3.33")))
    shop.allocate(order.id)
    first, second = shop.get_order(order.id).fulfillments
    order = shop.ship(first.id, tracking="T1")
    assert order.captured == eur("14.95")
    order = shop.ship(second.id, tracking="T2")
    assert order.captured == eur("21.61")
    assert order.captured == order.authorized
    assert [p.kind for p in order.payments] == [
        PaymentKind.AUTHORIZED,
        PaymentKind.CAPTURED,
        PaymentKind.CAPTURED,
    ], "no credit to apply, nothing left to void"
    captures = [c for c in gateway.calls if c.operation == "capture"]
    assert [c.key for c in captures] == [f"capture:{first.id}", f"capture:{second.id}"]


def test_cancelling_what_is_left_voids_the_rest(shop: OMS, gateway: FakePaymentGateway) -> None:
    """Ship one parcel, cancel the other: the uncaptured remainder is voided."""
    order = shop.place_order(paid_draft(("A", 1, "10.00"), ("B", 2, "3.00")))
    shop.allocate(order.id)
    first = shop.get_order(order.id).fulfillments[0]
    shop.ship(first.id, tracking="T1")
    order = shop.cancel(order.id, {order.lines[1].id: 2}, reason="out of patience")
    assert order.captured == eur("14.95")
    assert order.voided == eur("6.00")
    assert order.uncaptured == Money.zero("EUR")
    assert gateway.authorizations["pay-1"].voided == eur("6.00")
    check_books(shop)


def test_a_retried_ship_captures_once(shop: OMS, gateway: FakePaymentGateway) -> None:
    """The same idempotency key: one capture at the gateway, one ledger entry."""
    order = shop.place_order(paid_draft(("A", 1, "10.00")))
    shop.allocate(order.id)
    f = shop.get_order(order.id).fulfillments[0]
    shop.ship(f.id, tracking="T1", idempotency_key="ship-1")
    shop.ship(f.id, tracking="T1", idempotency_key="ship-1")
    assert [c.outcome for c in gateway.calls if c.operation == "capture"] == ["ok"]
    captured = [e for e in shop.events() if isinstance(e, PaymentRecorded) and e.kind == "captured"]
    assert len(captured) == 1


def test_without_a_port_payments_are_recorded_as_settled_elsewhere(
    make_oms: Callable[..., OMS],
) -> None:
    """No gateway: the ledger still says what was authorised, captured and refunded."""
    oms = make_oms()
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 5)
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    oms.allocate(order.id)
    order = oms.ship(oms.get_order(order.id).fulfillments[0].id, tracking="T")
    assert order.authorized == order.captured == eur("14.95")
    assert order.payment_reference is None
    assert [p.kind for p in order.payments] == [PaymentKind.AUTHORIZED, PaymentKind.CAPTURED]


def test_an_order_authorised_before_a_gateway_was_configured_settles_outside_it(
    clock: ManualClock,
) -> None:
    """A shop adds a gateway: orders placed before it (authorised elsewhere, with no gateway
    reference) still ship, settle and refund, recorded as settled elsewhere, and the gateway
    is never asked to move money it never authorised: a unit cancelled is voided there."""
    store = MemoryStore()
    before = OMS(store, clock=clock, ids=SequentialIds())
    before.add_location(warehouse("WH-1"))
    before.add_location(warehouse("WH-2", priority=2))
    before.receive("WH-1", "A", 5)
    before.receive("WH-2", "B", 5)
    order = before.place_order(paid_draft(("A", 1, "10.00"), ("B", 2, "5.00")))
    before.allocate(order.id)
    first, second = before.get_order(order.id).fulfillments
    before.ship(first.id, tracking="T-1")
    gateway = FakePaymentGateway()
    after = OMS(store, clock=clock, ids=SequentialIds(), payments=gateway)
    after.cancel(order.id, {order.lines[1].id: 1})
    shipped = after.ship(second.id, tracking="T-2")
    assert (shipped.authorized, shipped.captured, shipped.voided) == (
        eur("24.95"),
        eur("19.95"),
        eur("5.00"),
    )
    assert all(p.reference is None for p in shipped.payments)
    after.deliver(first.id)
    rma = after.request_return(order.id, {shipped.lines[0].id: 1})
    after.approve_return(rma.id)
    after.receive_return(rma.id, "WH-1", {shipped.lines[0].id: {"restock": 1}})
    after.refund_return(rma.id)
    refunded = after.get_order(order.id)
    assert refunded.refunded == eur("10.00")
    assert gateway.calls == []
    check_books(after)


def test_without_any_authorisation_shipping_is_refused_and_changes_nothing(
    make_oms: Callable[..., OMS],
) -> None:
    """A declined order released from its payment hold by hand has nothing to capture
    from: shipping it is refused with PaymentError, and the order stays as it was."""
    gateway = FakePaymentGateway()
    oms = make_oms(payments=gateway)
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 5)
    gateway.decline_next()
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    oms.release(order.id, "payment")
    oms.allocate(order.id)
    parcel = oms.get_order(order.id).fulfillments[0]
    kept = (oms.get_order(order.id), len(oms.events()))
    with pytest.raises(PaymentError, match=r"has no authorisation to capture 14\.95 EUR from"):
        oms.ship(parcel.id, tracking="T-1")
    assert (oms.get_order(order.id), len(oms.events())) == kept


@pytest.mark.parametrize("with_gateway", [True, False])
def test_an_authorised_order_is_not_authorised_twice(
    make_oms: Callable[..., OMS], with_gateway: bool
) -> None:
    """``authorize_payment`` is for an order whose authorisation failed; on an authorised
    one it is refused before the gateway is asked (it would hold the money twice)."""
    gateway = FakePaymentGateway()
    oms = make_oms(payments=gateway if with_gateway else None)
    oms.add_location(warehouse("WH-1"))
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    calls, events = len(gateway.calls), len(oms.events())
    with pytest.raises(InvalidTransition, match=f"order {order.id} is already authorised"):
        oms.authorize_payment(order.id)
    assert (len(gateway.calls), len(oms.events())) == (calls, events)
    assert oms.get_order(order.id).authorized == eur("14.95")


class MisreportingGateway(FakePaymentGateway):
    """A gateway adapter with a bug: after doing the real call, ``operation`` reports
    ``wrong(result)`` instead of what happened."""

    def __init__(self, operation: str, wrong: Callable[[PaymentResult], object]) -> None:
        super().__init__()
        self.operation, self.wrong = operation, wrong

    def authorize(self, order_id: str, amount: Money, key: str) -> PaymentResult:
        """Authorise, then misreport if told to."""
        return self._report("authorize", super().authorize(order_id, amount, key))

    def capture(self, reference: str, amount: Money, key: str) -> PaymentResult:
        """Capture, then misreport if told to."""
        return self._report("capture", super().capture(reference, amount, key))

    def _report(self, operation: str, result: PaymentResult) -> PaymentResult:
        if operation != self.operation:
            return result
        return self.wrong(result)  # type: ignore[return-value]


MISREPORTS: list[tuple[str, Callable[[PaymentResult], object]]] = [
    ("is not a PaymentResult", lambda r: None),
    ("has no reference ('')", lambda r: attrs.evolve(r, reference="")),
    ("has no reference (5)", lambda r: PaymentResult(5, r.amount)),  # type: ignore[arg-type]
    (
        "moved Money('14.95', 'USD'), not an amount in EUR",
        lambda r: PaymentResult(r.reference, Money(r.amount.amount, "USD")),
    ),
    ("moved 29.90 EUR, where 14.95 EUR was asked", lambda r: attrs.evolve(r, amount=r.amount * 2)),
    ("moved -14.95 EUR, where 14.95 EUR was asked", lambda r: attrs.evolve(r, amount=-r.amount)),
]


@pytest.mark.parametrize(("problem", "wrong"), MISREPORTS)
def test_an_authorisation_the_gateway_misreports_holds_the_order(
    make_oms: Callable[..., OMS], problem: str, wrong: Callable[[PaymentResult], object]
) -> None:
    """A result that cannot be recorded is a fault of the gateway adapter: the order is
    kept on a payment hold that says what was wrong, with nothing authorised recorded."""
    oms = make_oms(payments=MisreportingGateway("authorize", wrong))
    oms.add_location(warehouse("WH-1"))
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    assert [h.kind for h in order.holds] == ["payment"]
    assert f"the payment port's authorize {problem}" in order.holds[0].reason
    assert order.payments == ()


@pytest.mark.parametrize(("problem", "wrong"), MISREPORTS[:4])
def test_a_capture_the_gateway_misreports_refuses_the_shipment(
    make_oms: Callable[..., OMS], problem: str, wrong: Callable[[PaymentResult], object]
) -> None:
    """Shipping records nothing it cannot trust: PaymentError names the problem, and the
    order and its events stay as they were."""
    oms = make_oms(payments=MisreportingGateway("capture", wrong))
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 5)
    order = oms.place_order(paid_draft(("A", 1, "10.00")), allocate=True)
    parcel = order.fulfillments[0]
    kept = (oms.get_order(order.id), len(oms.events()))
    with pytest.raises(PaymentError, match=re.escape(f"the payment port's capture {problem}")):
        oms.ship(parcel.id, tracking="T-1")
    assert (oms.get_order(order.id), len(oms.events())) == kept


class CrashingGateway(FakePaymentGateway):
    """A gateway adapter whose HTTP client fails: ``operation`` raises ``error`` before
    any money moves (the adapter does not translate it into a PaymentError)."""

    def __init__(self, operation: str, error: Exception) -> None:
        super().__init__()
        self.operation, self.error = operation, error

    def authorize(self, order_id: str, amount: Money, key: str) -> PaymentResult:
        """Authorise, unless this is the operation that crashes."""
        self._crash("authorize")
        return super().authorize(order_id, amount, key)

    def capture(self, reference: str, amount: Money, key: str) -> PaymentResult:
        """Capture, unless this is the operation that crashes."""
        self._crash("capture")
        return super().capture(reference, amount, key)

    def refund(self, reference: str, amount: Money, key: str) -> PaymentResult:
        """Refund, unless this is the operation that crashes."""
        self._crash("refund")
        return super().refund(reference, amount, key)

    def void(self, reference: str, key: str) -> PaymentResult:
        """Void, unless this is the operation that crashes."""
        self._crash("void")
        return super().void(reference, key)

    def _crash(self, operation: str) -> None:
        if operation == self.operation:
            raise self.error


def test_an_authorisation_the_gateway_crashes_on_holds_the_order(
    make_oms: Callable[..., OMS],
) -> None:
    """A timeout of the adapter's own is a fault like any PaymentError: the order is kept,
    on a payment hold naming the error, and can be authorised again later."""
    gateway = CrashingGateway("authorize", TimeoutError("gateway timed out"))
    oms = make_oms(payments=gateway)
    oms.add_location(warehouse("WH-1"))
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    assert [h.kind for h in order.holds] == ["payment"]
    assert "the payment port's authorize raised TimeoutError: gateway timed out" in (
        order.holds[0].reason
    )
    assert order.payments == ()
    gateway.operation = "none"
    assert oms.authorize_payment(order.id).authorized == eur("14.95")


@pytest.mark.parametrize(
    ("operation", "command"),
    [
        ("capture", lambda oms, order: oms.ship(order.fulfillments[0].id, tracking="T-1")),
        ("void", lambda oms, order: oms.cancel(order.id)),
        ("refund", lambda oms, order: oms.refund_order(order.id, eur("1.00"), reason="late")),
    ],
)
def test_a_gateway_that_crashes_refuses_the_command_with_a_payment_error(
    make_oms: Callable[..., OMS], operation: str, command: Callable[[OMS, Order], object]
) -> None:
    """Capture, void and refund: a PaymentError raised from the adapter's own error, and
    the order and its events as they were."""
    broken = ConnectionError("connection reset")
    oms = make_oms(payments=CrashingGateway(operation, broken))
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 5)
    order = oms.place_order(paid_draft(("A", 1, "10.00")), allocate=True)
    if operation == "refund":
        oms.ship(order.fulfillments[0].id, tracking="T-1")
        order = oms.get_order(order.id)
    kept = (oms.get_order(order.id), len(oms.events()))
    message = f"the payment port's {operation} raised ConnectionError: connection reset"
    with pytest.raises(PaymentError, match=re.escape(message)) as refused:
        command(oms, order)
    assert refused.value.__cause__ is broken
    assert (oms.get_order(order.id), len(oms.events())) == kept


@pytest.mark.parametrize("amount", ["10.00", "0.00"])
def test_a_partial_authorisation_is_recorded_as_what_it_is(
    amount: str, make_oms: Callable[..., OMS]
) -> None:
    """A gateway may authorise less than asked (a prepaid card), even nothing (a card
    with nothing left on it): that is recorded, and the hold says how short it is."""
    partial = MisreportingGateway("authorize", lambda r: attrs.evolve(r, amount=eur(amount)))
    oms = make_oms(payments=partial)
    oms.add_location(warehouse("WH-1"))
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    assert [(p.kind, p.amount) for p in order.payments] == [(PaymentKind.AUTHORIZED, eur(amount))]
    assert [(h.kind, h.reason) for h in order.holds] == [
        (
            "payment",
            f"authorised {amount} EUR of 14.95 EUR: cancel units until the payment covers the "
            "rest, or cancel the order",
        )
    ]


class TestTheFakeGatewayKeepsARealGatewaysRules:
    """FakePaymentGateway refuses what a real gateway refuses."""

    def test_no_capture_beyond_the_authorisation(self, gateway: FakePaymentGateway) -> None:
        """Capturing more than is open is refused; nothing moves."""
        auth = gateway.authorize("O-1", eur("10.00"), "a")
        gateway.capture(auth.reference, eur("6.00"), "c1")
        with pytest.raises(PaymentLimitExceeded, match=r"4\.00 EUR left"):
            gateway.capture(auth.reference, eur("4.01"), "c2")
        assert gateway.authorizations[auth.reference].captured == eur("6.00")

    def test_no_refund_beyond_what_was_captured(self, gateway: FakePaymentGateway) -> None:
        """Refunds stop at captured less refunded."""
        auth = gateway.authorize("O-1", eur("10.00"), "a")
        gateway.capture(auth.reference, eur("10.00"), "c")
        gateway.refund(auth.reference, eur("7.00"), "r1")
        with pytest.raises(PaymentLimitExceeded):
            gateway.refund(auth.reference, eur("3.01"), "r2")

    def test_nothing_is_captured_after_a_void(self, gateway: FakePaymentGateway) -> None:
        """A void releases the rest for good."""
        auth = gateway.authorize("O-1", eur("10.00"), "a")
        assert gateway.void(auth.reference, "v").amount == eur("10.00")
        with pytest.raises(PaymentLimitExceeded):
            gateway.capture(auth.reference, eur("0.01"), "c")

    def test_a_repeated_key_moves_no_money(self, gateway: FakePaymentGateway) -> None:
        """Same key, same result; the key cannot be reused for another operation."""
        auth = gateway.authorize("O-1", eur("10.00"), "a")
        gateway.capture(auth.reference, eur("5.00"), "c")
        gateway.capture(auth.reference, eur("5.00"), "c")
        assert gateway.authorizations[auth.reference].captured == eur("5.00")
        with pytest.raises(PaymentError, match="was used for capture"):
            gateway.refund(auth.reference, eur("1.00"), "c")

    def test_for_long_runs_it_forgets_old_keys_and_keeps_no_call_log(self) -> None:
        """With remember_keys=2 the third key pushes out the first, whose repeat then moves
        money again (as at a real gateway once a key expired); record_calls=False logs
        nothing. The authorisation's limits hold all the same."""
        gateway = FakePaymentGateway(record_calls=False, remember_keys=2)
        auth = gateway.authorize("O-1", eur("10.00"), "a")
        gateway.capture(auth.reference, eur("4.00"), "c1")
        gateway.capture(auth.reference, eur("4.00"), "c1")  # remembered: nothing moves
        assert gateway.authorizations[auth.reference].captured == eur("4.00")
        gateway.capture(auth.reference, eur("1.00"), "c2")  # "a" is forgotten now
        gateway.capture(auth.reference, eur("4.00"), "c1")  # still remembered
        assert gateway.authorizations[auth.reference].captured == eur("5.00")
        gateway.capture(auth.reference, eur("1.00"), "c3")  # "c1" is forgotten now
        gateway.capture(auth.reference, eur("4.00"), "c1")  # so this one moves money
        assert gateway.authorizations[auth.reference].captured == eur("10.00")
        with pytest.raises(PaymentLimitExceeded):
            gateway.capture(auth.reference, eur("0.01"), "c4")
        assert gateway.calls == []
        with pytest.raises(InvalidQuantity, match="remember_keys must be at least 1, got 0"):
            FakePaymentGateway(remember_keys=0)

    def test_remembering_one_key_remembers_the_latest(self) -> None:
        """remember_keys=1 is allowed: a repeat of the latest key moves nothing."""
        gateway = FakePaymentGateway(remember_keys=1)
        auth = gateway.authorize("O-1", eur("10.00"), "a")
        gateway.capture(auth.reference, eur("4.00"), "c1")
        gateway.capture(auth.reference, eur("4.00"), "c1")
        assert gateway.authorizations[auth.reference].captured == eur("4.00")

    def test_declines_and_faults_not_used_can_be_cleared(self, gateway: FakePaymentGateway) -> None:
        """clear_pending forgets what decline_next, fail_next and authorize_at_most asked for."""
        gateway.decline_next(2)
        gateway.fail_next()
        gateway.authorize_at_most(eur("0.50"))
        gateway.clear_pending()
        assert gateway.authorize("O-1", eur("1.00"), "z").amount == eur("1.00")

    def test_a_limited_authorisation_authorises_part(self, gateway: FakePaymentGateway) -> None:
        """authorize_at_most: the next authorisation gives no more than the limit; the one
        after it, what was asked."""
        gateway.authorize_at_most(eur("0.50"))
        assert gateway.authorize("O-1", eur("1.00"), "a").amount == eur("0.50")
        assert gateway.authorize("O-2", eur("1.00"), "b").amount == eur("1.00")

    def test_a_decline_is_kept_under_its_key_when_asked(self) -> None:
        """keep_declines: a repeat of a declined key is declined again without asking,
        whether the decline was asked for or the order's; another key is asked. By
        default a declined key is asked again."""
        keeping = FakePaymentGateway(keep_declines=True, decline_orders={"O-9"})
        keeping.decline_next()
        for _ in range(2):
            with pytest.raises(PaymentDeclined):
                keeping.authorize("O-1", eur("1.00"), "a")
            with pytest.raises(PaymentDeclined):
                keeping.authorize("O-9", eur("1.00"), "b")
        keeping.decline_orders.clear()
        with pytest.raises(PaymentDeclined, match="kept under the key"):
            keeping.authorize("O-9", eur("1.00"), "b")
        assert keeping.authorize("O-1", eur("1.00"), "c").reference == "pay-1"
        assert [c.outcome for c in keeping.calls] == ["declined"] * 2 + ["repeat"] * 3 + ["ok"]
        forgetting = FakePaymentGateway()
        forgetting.decline_next()
        with pytest.raises(PaymentDeclined):
            forgetting.authorize("O-1", eur("1.00"), "a")
        assert forgetting.authorize("O-1", eur("1.00"), "a").reference == "pay-1"

    def test_declines_and_faults_on_request(self, gateway: FakePaymentGateway) -> None:
        """decline_next and fail_next, and declined orders."""
        gateway.decline_orders.add("O-9")
        with pytest.raises(PaymentDeclined):
            gateway.authorize("O-9", eur("1.00"), "x")
        gateway.fail_next()
        with pytest.raises(PaymentError):
            gateway.authorize("O-1", eur("1.00"), "y")
        assert gateway.authorize("O-1", Money(Decimal(1), "EUR"), "y").reference == "pay-1"


# --- edits and the authorisation ------------------------------------------------------------


def everything_of(oms: OMS, order_id: str, gateway: FakePaymentGateway) -> tuple[object, ...]:
    """What a refused edit must leave as it was: the order, the outbox, the gateway."""
    return (oms.get_order(order_id), oms.events(), len(gateway.calls))


def edits_of(shop: OMS, order: Order) -> dict[str, Callable[[], Order]]:
    """Two edits that raise a one-unit order of A at 10.00 (14.95 with the fee) to 24.95."""
    return {
        "add a line": lambda: shop.add_line(order.id, LineDraft("B", 1, eur("10.00"))),
        "more of a line": lambda: shop.change_quantity(order.id, order.lines[0].id, 2),
    }


def authorisations_at(gateway: FakePaymentGateway) -> list[tuple[str, Money, Money, Money]]:
    """Each authorisation the gateway holds: reference, amount, captured, voided."""
    return [(a.reference, a.amount, a.captured, a.voided) for a in gateway.authorizations.values()]


@pytest.mark.parametrize("edit", ["add a line", "more of a line"])
def test_an_edit_beyond_the_authorisation_is_authorised_for_the_difference(
    shop: OMS, gateway: FakePaymentGateway, edit: str
) -> None:
    """14.95 EUR authorised; the edit raises the order to 24.95: the gateway authorises
    the 10.00 more on the same payment method, in the edit's command, and the order's
    ledger records a second authorisation."""
    order = shop.place_order(paid_draft(("A", 1, "10.00")))
    edited = edits_of(shop, order)[edit]()
    assert edited.payments[-1] == PaymentEntry(
        PaymentKind.AUTHORIZED,
        eur("10.00"),
        "pay-2",
        f"authorize:{order.id}:2:10.00",
        order.payments[0].at,
    )
    assert (edited.authorized, edited.covered, edited.chargeable) == (eur("24.95"),) * 3
    assert [(b.reference, b.authorized) for b in edited.authorizations] == [
        ("pay-1", eur("14.95")),
        ("pay-2", eur("10.00")),
    ]
    assert [type(e).__name__ for e in shop.events()[-3:-1]] == [
        "LineAdded" if edit == "add a line" else "LineQuantityChanged",
        "PaymentRecorded",
    ]
    assert [c.operation for c in gateway.calls] == ["authorize", "authorize"]


def test_captures_voids_and_refunds_draw_on_each_authorisation_in_turn(
    shop: OMS, gateway: FakePaymentGateway
) -> None:
    """Authorisations of 24.95 and 10.00 (a line added), then a unit cancelled: the two
    parcels (14.95 and 10.00) are captured on the first, the second authorisation, no
    longer needed, is voided under a key of its own, and a refund is drawn on the first,
    where the money was captured. The gateway holds what the order's ledger says."""
    order = shop.place_order(paid_draft(("A", 2, "10.00")))
    order = shop.add_line(order.id, LineDraft("B", 1, eur("10.00")))
    assert [b.authorized for b in order.authorizations] == [eur("24.95"), eur("10.00")]
    order = shop.cancel(order.id, {order.lines[0].id: 1})
    shop.allocate(order.id)
    order = shop.get_order(order.id)
    first, second = sorted(order.fulfillments, key=lambda f: f.location_id)
    shipped = shop.ship(first.id, tracking="T-1")
    assert [(p.key, p.amount, p.draws_on) for p in shipped.payments[2:]] == [
        (f"capture:{first.id}", eur("14.95"), None),
    ]
    done = shop.ship(second.id, tracking="T-2")
    assert [(p.kind, p.key, p.amount, p.draws_on) for p in done.payments[3:]] == [
        (PaymentKind.CAPTURED, f"capture:{second.id}", eur("10.00"), None),
        (PaymentKind.VOIDED, f"void:{order.id}@pay-2", eur("10.00"), "pay-2"),
    ]
    refunded = shop.refund_order(order.id, eur("20.00"), "a damaged unit the customer keeps")
    assert [(p.key, p.amount, p.draws_on) for p in refunded.payments[5:]] == [
        (f"refund:{order.id}:v{done.version}", eur("20.00"), None),
    ]
    assert authorisations_at(gateway) == [
        ("pay-1", eur("24.95"), eur("24.95"), eur("0")),
        ("pay-2", eur("10.00"), eur("0"), eur("10.00")),
    ]
    assert_gateway_holds_the_ledger(gateway, refunded)
    check_books(shop)


def test_a_capture_larger_than_the_first_authorisation_is_split(
    shop: OMS, gateway: FakePaymentGateway
) -> None:
    """One parcel of 24.95 on authorisations of 14.95 and 10.00: two captures, the second
    keyed with its authorisation's reference; a refund beyond the first's capture takes
    the rest from the second, and a second refund only from the second; nothing is left to
    void."""
    order = shop.place_order(paid_draft(("A", 1, "10.00")))
    order = shop.change_quantity(order.id, order.lines[0].id, 2)
    shop.allocate(order.id)
    (parcel,) = shop.get_order(order.id).fulfillments
    shipped = shop.ship(parcel.id, tracking="T-1")
    assert [(p.kind, p.key, p.amount, p.draws_on) for p in shipped.payments[2:]] == [
        (PaymentKind.CAPTURED, f"capture:{parcel.id}", eur("14.95"), None),
        (PaymentKind.CAPTURED, f"capture:{parcel.id}@pay-2", eur("10.00"), "pay-2"),
    ]
    refunded = shop.refund_order(order.id, eur("20.00"), "price match")
    key = f"refund:{order.id}:v{shipped.version}"
    assert [(p.key, p.amount, p.draws_on) for p in refunded.payments[4:]] == [
        (key, eur("14.95"), None),
        (f"{key}@pay-2", eur("5.05"), "pay-2"),
    ]
    assert refunded.refunded == eur("20.00")
    assert_gateway_holds_the_ledger(gateway, refunded)
    with pytest.raises(PaymentLimitExceeded, match=r"4\.95 EUR"):
        shop.refund_order(order.id, eur("5.00"), "too much")
    rest = shop.refund_order(order.id, eur("4.95"), "the rest")
    assert [(p.amount, p.draws_on) for p in rest.payments[6:]] == [(eur("4.95"), "pay-2")]
    assert rest.refunded == rest.captured == eur("24.95")
    assert_gateway_holds_the_ledger(gateway, rest)


@pytest.mark.parametrize("edit", ["add a line", "more of a line"])
def test_an_edit_whose_authorisation_is_declined_is_refused_and_changes_nothing(
    shop: OMS, gateway: FakePaymentGateway, edit: str
) -> None:
    """The card declines the 10.00 more: the edit is refused, naming the amounts, and
    the order, its events and the gateway's authorisations stay as they were."""
    order = shop.place_order(paid_draft(("A", 1, "10.00")))
    before = (shop.get_order(order.id), shop.events(), authorisations_at(gateway))
    gateway.decline_next()
    with pytest.raises(
        PaymentDeclined, match=r"24\.95 EUR, 10\.00 EUR more than its payment covers"
    ):
        edits_of(shop, order)[edit]()
    assert (shop.get_order(order.id), shop.events(), authorisations_at(gateway)) == before


def test_an_edit_authorised_in_part_is_refused_and_the_part_voided(
    make_oms: Callable[..., OMS],
) -> None:
    """A prepaid card with 25.00 on it authorises the first 14.95, then only 10.05 of
    the 20.00 an added line needs: that authorisation is voided at once and the edit is
    refused; the order stays as it was."""
    card = PrepaidCard(eur("25.00"))
    oms = make_oms(payments=card)
    oms.add_location(warehouse("WH-1"))
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    card.limit = eur("10.05")
    before = (oms.get_order(order.id), oms.events())
    with pytest.raises(PaymentLimitExceeded, match=r"authorised only 10\.05 EUR of it \(voided\)"):
        oms.add_line(order.id, LineDraft("B", 1, eur("20.00")))
    assert (oms.get_order(order.id), oms.events()) == before
    assert authorisations_at(card)[1] == ("pay-2", eur("10.05"), eur("0"), eur("10.05"))


def test_an_edit_whose_authorisation_fails_is_refused_and_retried_with_the_same_key(
    make_oms: Callable[..., OMS],
) -> None:
    """The gateway authorises, but its answer is lost on the way back (the adapter
    raises): the edit is refused and nothing is recorded. Repeating the edit sends the
    same key, so the gateway answers with the authorisation it made, not a second one."""
    gateway = LostAnswer()
    oms = make_oms(payments=gateway)
    oms.add_location(warehouse("WH-1"))
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    before = (oms.get_order(order.id), oms.events())
    gateway.lose_next = True
    with pytest.raises(PaymentError, match="answer lost"):
        oms.change_quantity(order.id, order.lines[0].id, 2)
    assert (oms.get_order(order.id), oms.events()) == before
    edited = oms.change_quantity(order.id, order.lines[0].id, 2)
    assert edited.authorized == eur("24.95")
    assert len(gateway.authorizations) == 2
    assert [c.outcome for c in gateway.calls] == ["ok", "ok", "repeat"]


def test_another_edit_after_a_lost_answer_is_authorised_for_its_own_amount(
    make_oms: Callable[..., OMS],
) -> None:
    """The answer to the 10.00 more of a second unit is lost; the customer then asks for
    three units instead: the key names the amount, so the gateway authorises the 20.00
    this edit needs rather than answering with the lost 10.00."""
    gateway = LostAnswer()
    oms = make_oms(payments=gateway)
    oms.add_location(warehouse("WH-1"))
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    gateway.lose_next = True
    with pytest.raises(PaymentError):
        oms.change_quantity(order.id, order.lines[0].id, 2)
    edited = oms.change_quantity(order.id, order.lines[0].id, 3)
    assert [b.authorized for b in edited.authorizations] == [eur("14.95"), eur("20.00")]
    assert edited.authorizations[1].reference == "pay-3"  # pay-2 expires at the gateway


def test_a_declined_edit_tried_again_under_a_new_command_key_asks_the_card_anew(
    make_oms: Callable[..., OMS],
) -> None:
    """A gateway that keeps a key's first answer declines the 10.00 more. The customer
    tries again (a new idempotency key): the gateway is asked anew and authorises. Under
    the first key again, or without keys, it answers with the decline it kept."""
    gateway = FakePaymentGateway(keep_declines=True)
    oms = make_oms(payments=gateway)
    oms.add_location(warehouse("WH-1"))
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    line = order.lines[0].id
    gateway.decline_next()
    with pytest.raises(PaymentDeclined):
        oms.change_quantity(order.id, line, 2, idempotency_key="edit-1")
    with pytest.raises(PaymentDeclined, match="kept under the key"):
        oms.change_quantity(order.id, line, 2, idempotency_key="edit-1")
    edited = oms.change_quantity(order.id, line, 2, idempotency_key="edit-2")
    assert [b.authorized for b in edited.authorizations] == [eur("14.95"), eur("10.00")]
    assert [c.outcome for c in gateway.calls] == ["ok", "declined", "repeat", "ok"]
    assert oms.change_quantity(order.id, line, 2, idempotency_key="edit-2") == edited
    assert len(gateway.calls) == 4  # the recorded command is replayed, the gateway not asked

    unkeyed = oms.place_order(paid_draft(("A", 1, "10.00")))
    gateway.decline_next()
    for _ in range(2):
        with pytest.raises(PaymentDeclined):
            oms.change_quantity(unkeyed.id, unkeyed.lines[0].id, 2)
    assert [c.outcome for c in gateway.calls[-2:]] == ["declined", "repeat"]


def test_an_edit_repeated_under_its_key_after_a_lost_answer_gets_the_same_authorisation(
    make_oms: Callable[..., OMS],
) -> None:
    """The answer to a keyed edit's authorisation is lost; the caller repeats the command
    under the same key, so the gateway's key is the same and it answers with the
    authorisation it made."""
    gateway = LostAnswer()
    oms = make_oms(payments=gateway)
    oms.add_location(warehouse("WH-1"))
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    gateway.lose_next = True
    with pytest.raises(PaymentError, match="answer lost"):
        oms.change_quantity(order.id, order.lines[0].id, 2, idempotency_key="edit-1")
    edited = oms.change_quantity(order.id, order.lines[0].id, 2, idempotency_key="edit-1")
    assert [b.authorized for b in edited.authorizations] == [eur("14.95"), eur("10.00")]
    assert [c.outcome for c in gateway.calls] == ["ok", "ok", "repeat"]
    assert edited.authorizations[1].reference == "pay-2"


def test_drawing_more_than_the_authorisations_have_is_refused_before_the_gateway(
    shop: OMS, gateway: FakePaymentGateway
) -> None:
    """The payments step itself refuses a capture or a refund beyond what the order's
    authorisations have room for in all, before any call (the first authorisation could
    be drawn on, then the second refuse)."""
    order = shop.place_order(paid_draft(("A", 1, "10.00")))
    order = shop.change_quantity(order.id, order.lines[0].id, 2)
    payments, calls = Payments(gateway), len(gateway.calls)
    with pytest.raises(PaymentLimitExceeded, match=r"capture 25\.00 EUR .* room for 24\.95"):
        payments.capture(order, eur("25.00"), "capture:too-much", order.placed_at)
    with pytest.raises(PaymentLimitExceeded, match=r"refund 0\.01 EUR .* room for 0 EUR"):
        payments.refund(order, eur("0.01"), "refund:too-much", order.placed_at)
    assert len(gateway.calls) == calls


class LostAnswer(FakePaymentGateway):
    """A gateway whose answer to the next authorisation, made all the same, is lost."""

    lose_next = False

    def authorize(self, order_id: str, amount: Money, key: str) -> PaymentResult:
        """Authorise; raise instead of answering if told to."""
        result = super().authorize(order_id, amount, key)
        if self.lose_next:
            self.lose_next = False
            raise TimeoutError("answer lost")
        return result


def test_an_edit_within_what_was_authorised_goes_through_and_ships(
    shop: OMS, gateway: FakePaymentGateway
) -> None:
    """Three units authorised (34.95); the customer takes one and adds a cheaper line
    (22.45): the edits go through, both parcels are captured, and the rest is voided."""
    order = shop.place_order(paid_draft(("A", 3, "10.00")))
    shop.change_quantity(order.id, order.lines[0].id, 1)
    order = shop.add_line(order.id, LineDraft("B", 1, eur("7.50")))
    assert order.total == eur("22.45")
    shop.allocate(order.id)
    for f in shop.get_order(order.id).fulfillments:
        shop.ship(f.id, tracking=f"T-{f.id}")
    done = shop.get_order(order.id)
    assert (done.captured, done.voided) == (eur("22.45"), eur("12.50"))
    check_books(shop)


def test_edits_are_not_limited_without_a_gateway_or_before_an_authorisation(
    make_oms: Callable[..., OMS],
) -> None:
    """Paid outside omscore, the order takes the extra line and ships it. After a
    decline, the new total is what the next authorisation asks for."""
    outside = make_oms()
    outside.add_location(warehouse("WH-1"))
    outside.receive("WH-1", "A", 5)
    order = outside.place_order(paid_draft(("A", 1, "10.00")))
    outside.change_quantity(order.id, order.lines[0].id, 2)
    outside.allocate(order.id)
    shipped = outside.ship(outside.get_order(order.id).fulfillments[0].id, tracking="T-1")
    assert shipped.captured == eur("24.95")
    gateway = FakePaymentGateway()
    declined = make_oms(payments=gateway)
    declined.add_location(warehouse("WH-1"))
    gateway.decline_next()
    order = declined.place_order(paid_draft(("A", 1, "10.00")))
    edited = declined.change_quantity(order.id, order.lines[0].id, 2)
    assert ([p.kind for p in edited.payments], len(gateway.calls)) == ([PaymentKind.DECLINED], 1)
    assert declined.authorize_payment(order.id).authorized == eur("24.95")


@given(
    edits=st.lists(
        st.tuples(st.sampled_from(["add", "quantity", "remove", "cancel"]), st.integers(1, 4)),
        max_size=8,
    )
)
def test_no_edit_leaves_an_order_costing_more_than_its_payment_covers(
    edits: list[tuple[str, int]],
) -> None:
    """Any edits and cancels, refused or not: what the order can be charged never passes
    what was authorised, and the order, once allocated, ships every parcel (every capture
    fits the authorisation)."""
    oms = OMS(
        MemoryStore(), clock=ManualClock(), ids=SequentialIds(), payments=FakePaymentGateway()
    )
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 100)
    order = oms.place_order(paid_draft(("A", 3, "10.00"), ("A", 1, "5.00")))
    for edit, n in edits:
        order = oms.get_order(order.id)
        with contextlib.suppress(OmsError):
            if edit == "add":
                oms.add_line(order.id, LineDraft("A", n, eur("4.00")))
            elif edit == "quantity":
                oms.change_quantity(order.id, order.lines[-1].id, n)
            elif edit == "remove":
                oms.remove_line(order.id, order.lines[-1].id)
            else:
                oms.cancel(order.id, {order.lines[0].id: 1})
        order = oms.get_order(order.id)
        assert order.chargeable <= order.covered
    if order.open_units:
        oms.allocate(order.id)
    for f in oms.get_order(order.id).fulfillments:
        oms.ship(f.id, tracking=f"T-{f.id}")
    assert oms.get_order(order.id).captured == order.chargeable


def test_an_order_authorised_in_part_is_authorised_only_for_what_an_edit_adds(
    make_oms: Callable[..., OMS],
) -> None:
    """A prepaid card authorised 10.00 EUR of 24.95 (the order waits on a payment hold):
    taking a unit off (14.95) calls nobody; adding it back asks the card for the 10.00
    the edit adds, not for what the order was short before; the hold stays."""
    partial = MisreportingGateway("authorize", lambda r: attrs.evolve(r, amount=eur("10.00")))
    oms = make_oms(payments=partial)
    oms.add_location(warehouse("WH-1"))
    order = oms.place_order(paid_draft(("A", 2, "10.00")))
    assert (order.total, order.covered) == (eur("24.95"), eur("10.00"))
    assert oms.change_quantity(order.id, order.lines[0].id, 1).total == eur("14.95")
    assert len(partial.calls) == 1
    order = oms.change_quantity(order.id, order.lines[0].id, 2)
    assert [(c.operation, c.amount) for c in partial.calls[1:]] == [("authorize", eur("10.00"))]
    assert (order.covered, order.chargeable) == (eur("20.00"), eur("24.95"))
    assert [h.kind for h in order.holds] == ["payment"]


def test_units_cancelled_make_room_for_an_added_line(
    shop: OMS, gateway: FakePaymentGateway
) -> None:
    """Three units authorised (34.95); two cancelled leave 14.95 to charge, so a line of
    15.00 fits (29.95) with no call to the gateway, and so does one of 5.00 that brings
    it to exactly 34.95, while one of 25.00 more (59.95) is authorised for the 25.00 it
    adds beyond the 34.95."""
    order = shop.place_order(paid_draft(("A", 3, "10.00")))
    shop.cancel(order.id, {order.lines[0].id: 2})
    order = shop.add_line(order.id, LineDraft("B", 1, eur("15.00")))
    assert (order.total, order.chargeable, len(gateway.calls)) == (eur("49.95"), eur("29.95"), 1)
    order = shop.add_line(order.id, LineDraft("B", 1, eur("5.00")))
    assert (order.chargeable, len(gateway.calls)) == (order.covered, 1)
    order = shop.add_line(order.id, LineDraft("B", 1, eur("25.00")))
    assert [b.authorized for b in order.authorizations] == [eur("34.95"), eur("25.00")]
    assert order.chargeable == order.covered == eur("59.95")


def test_a_partly_authorised_order_waits_until_what_is_left_is_covered(
    make_oms: Callable[..., OMS],
) -> None:
    """20.00 EUR of 24.95 authorised: the order waits on a payment hold that cannot be
    released as it stands; with one unit cancelled (14.95 left) it can, and ships, and the
    rest of the authorisation is voided."""
    oms = make_oms(payments=PrepaidCard(eur("20.00")))
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 5)
    order = oms.place_order(paid_draft(("A", 2, "10.00")), allocate=True)
    assert order.is_held
    assert order.lines[0].allocated == 0
    before = (oms.get_order(order.id), oms.events())
    with pytest.raises(PaymentLimitExceeded, match=r"authorised 20\.00 EUR of 24\.95 EUR"):
        oms.release(order.id, "payment")
    assert (oms.get_order(order.id), oms.events()) == before
    oms.cancel(order.id, {order.lines[0].id: 1}, reason="one is all the card covers")
    oms.release(order.id, "payment")
    oms.allocate(order.id)
    shipped = oms.ship(oms.get_order(order.id).fulfillments[0].id, tracking="T-1")
    assert (shipped.captured, shipped.voided) == (eur("14.95"), eur("5.05"))


def test_a_retried_authorisation_that_falls_short_keeps_the_hold_for_that_reason(
    make_oms: Callable[..., OMS],
) -> None:
    """Declined, then authorised in part: the payment hold stays, now saying how short."""
    card = PrepaidCard(eur("5.00"))
    oms = make_oms(payments=card)
    card.decline_next()
    order = oms.place_order(paid_draft(("A", 1, "10.00")))
    assert "declined" in order.holds[0].reason
    order = oms.authorize_payment(order.id)
    assert [h.reason for h in order.holds] == [
        "authorised 5.00 EUR of 14.95 EUR: cancel units until the payment covers the rest, "
        "or cancel the order"
    ]


def short_order(
    make_oms: Callable[..., OMS], *, keep_declines: bool = False
) -> tuple[OMS, PrepaidCard, Order]:
    """A prepaid card with 20.00 EUR on it, and an order of 24.95 waiting on its hold."""
    card = PrepaidCard(eur("20.00"), keep_declines=keep_declines)
    oms = make_oms(payments=card)
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 5)
    order = oms.place_order(paid_draft(("A", 2, "10.00")))
    assert [h.kind for h in order.holds] == ["payment"]
    return oms, card, order


def test_a_card_topped_up_is_authorised_for_the_rest_and_the_order_ships(
    make_oms: Callable[..., OMS],
) -> None:
    """The customer loads the card: authorising again asks for the 4.95 still due, as a
    second authorisation; the hold goes, and the parcel is captured on both."""
    oms, card, order = short_order(make_oms)
    card.limit = eur("50.00")
    paid = oms.authorize_payment(order.id)
    assert [(b.authorized, b.reference) for b in paid.authorizations] == [
        (eur("20.00"), "pay-1"),
        (eur("4.95"), "pay-2"),
    ]
    assert paid.payments[-1].key == f"authorize:{order.id}:2:4.95"
    assert paid.holds == ()
    oms.allocate(order.id)
    shipped = oms.ship(oms.get_order(order.id).fulfillments[0].id, tracking="T-1")
    assert shipped.captured == eur("24.95")
    assert_gateway_holds_the_ledger(card, shipped)


def test_a_top_up_declined_or_short_keeps_the_hold_saying_why(
    make_oms: Callable[..., OMS],
) -> None:
    """Declined: the decline is recorded and the hold says so. Then 2.00 of the 4.95: that
    is recorded (it covers some) and the hold says what is still short. The rest, later,
    releases it."""
    oms, card, order = short_order(make_oms, keep_declines=True)
    card.decline_next()
    declined = oms.authorize_payment(order.id)
    assert declined.payments[-1].kind is PaymentKind.DECLINED
    assert declined.holds[0].reason.startswith(
        "authorising the 4.95 EUR still due was declined: authorize of 4.95 EUR declined"
    )
    card.limit = eur("2.00")
    part = oms.authorize_payment(order.id)
    assert part.covered == eur("22.00")
    assert part.holds[0].reason.startswith("authorised 22.00 EUR of 24.95 EUR")
    card.limit = eur("10.00")
    done = oms.authorize_payment(order.id)
    assert [b.authorized for b in done.authorizations] == [eur("20.00"), eur("2.00"), eur("2.95")]
    assert done.holds == ()
    assert [p.key for p in done.payments[1:]] == [
        f"authorize:{order.id}:2:4.95",
        f"authorize:{order.id}:2:4.95:retry-1",  # the decline kept under the first is not asked
        f"authorize:{order.id}:3:2.95:retry-1",
    ]
    with pytest.raises(InvalidTransition, match="already authorised"):
        oms.authorize_payment(order.id)


def test_a_top_up_the_gateway_fails_changes_nothing(make_oms: Callable[..., OMS]) -> None:
    """A fault is refused as a PaymentError, and the order and its events stay as they
    were, for the next try."""
    oms, card, order = short_order(make_oms)
    before = (oms.get_order(order.id), oms.events())
    card.fail_next()
    with pytest.raises(PaymentError):
        oms.authorize_payment(order.id)
    assert (oms.get_order(order.id), oms.events()) == before


class PrepaidCard(FakePaymentGateway):
    """A gateway that authorises at most what is left on the card."""

    def __init__(self, limit: Money, *, keep_declines: bool = False) -> None:
        super().__init__(keep_declines=keep_declines)
        self.limit = limit

    def authorize(self, order_id: str, amount: Money, key: str) -> PaymentResult:
        """Authorise ``amount``, or what the card has if that is less."""
        return super().authorize(order_id, min(amount, self.limit), key)


def test_a_retried_authorisation_asks_only_for_what_can_still_be_charged(
    make_oms: Callable[..., OMS],
) -> None:
    """Declined for three units; two are cancelled meanwhile: the retry authorises the one
    left and the fee, not the cancelled units."""
    gateway = FakePaymentGateway()
    oms = make_oms(payments=gateway)
    gateway.decline_next()
    order = oms.place_order(paid_draft(("A", 3, "10.00")))
    oms.cancel(order.id, {order.lines[0].id: 2})
    assert oms.authorize_payment(order.id).authorized == eur("14.95")
