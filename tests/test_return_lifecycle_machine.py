"""A state machine over the return lifecycle: no step out of turn succeeds, a refused one
changes nothing, the money and units always add up, and ``OMS.returnable`` says exactly
what a return request will accept."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from omscore import OMS, Delivery, LineDraft, Money, OmsError, Order, OrderDraft
from omscore.adapters.memory import MemoryStore
from omscore.adapters.payments import FakePaymentGateway
from omscore.ids import LineId
from omscore.returns import Disposition, ReturnPolicy, ReturnStatus
from omscore.testing import ManualClock, SequentialIds
from omscore.testing.contract import assert_gateway_holds_the_ledger

from .conftest import BERLIN, eur, warehouse


class ReturnLifecycle(RuleBasedStateMachine):
    """One delivered order of two lines; returns requested, moved and settled at random."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.gateway = FakePaymentGateway()
        self.oms = OMS(
            MemoryStore(),
            clock=self.clock,
            ids=SequentialIds(),
            payments=self.gateway,
            return_policy=ReturnPolicy(restocking_fee_percent=5, refund_shipping="if_all_returned"),
        )
        self.oms.add_location(warehouse("WH-1"))
        self.oms.receive("WH-1", "A", 50)
        self.oms.receive("WH-1", "B", 50)
        order = self.oms.place_order(
            OrderDraft(
                channel="web",
                currency="EUR",
                delivery=Delivery.ship(BERLIN),
                lines=[
                    LineDraft("A", 3, eur("19.99"), discount=eur("2.00")),
                    LineDraft("B", 2, eur("7.10"), tax=eur("1.35")),
                ],
                shipping_fee=eur("4.95"),
            )
        )
        self.oms.allocate(order.id)
        for f in self.oms.get_order(order.id).fulfillments:
            self.oms.ship(f.id)
            self.oms.deliver(f.id)
        self.order_id = order.id
        self.returns: list[str] = []
        self.replacements: list[str] = []  # delivered orders of exchanges

    def snapshot(self) -> object:
        return (
            [self.oms.get_order(o) for o in (self.order_id, *self.replacements)],
            [self.oms.get_return(r) for r in self.returns],
            len(self.oms.events()),
            len(self.oms.ledger()),
        )

    def attempt(self, command: str, *args: object) -> object:
        before = self.snapshot()
        try:
            return getattr(self.oms, command)(*args)
        except OmsError:
            assert self.snapshot() == before
            return None

    def lines(self) -> list[LineId]:
        return [line.id for line in self.oms.get_order(self.order_id).lines]

    @rule(a=st.integers(0, 3), b=st.integers(0, 2))
    def request(self, a: int, b: int) -> None:
        first, second = self.lines()
        ask = {k: v for k, v in ((first, a), (second, b)) if v}
        returnable = self.oms.returnable(self.order_id)
        rma = self.attempt("request_return", self.order_id, ask)
        fits = bool(ask) and all(units <= returnable.get(k, 0) for k, units in ask.items())
        assert (rma is not None) == fits, (ask, returnable)
        if rma is not None:
            self.returns.append(rma.id)  # type: ignore[attr-defined]

    @rule(cents=st.integers(1, 6000), which=st.integers(0, 3))
    def goodwill(self, cents: int, which: int) -> None:
        """A refund without a return, on the order or one of its replacements: accepted
        exactly when it fits what was captured and neither refunded nor moved to a
        replacement as credit."""
        order_ids = (self.order_id, *self.replacements)
        order = self.oms.get_order(order_ids[which % len(order_ids)])
        amount = Money(Decimal(cents).scaleb(-2), "EUR")
        refunded = self.attempt("refund_order", order.id, amount, "goodwill")
        assert (refunded is not None) == (amount <= order.refundable)

    @rule(days=st.integers(1, 12))
    def time_passes(self, days: int) -> None:
        """The 30-day window closes after a few of these."""
        self.clock.advance(timedelta(days=days))

    @precondition(lambda self: self.returns)
    @rule(
        data=st.data(),
        command=st.sampled_from(
            ["approve_return", "reject_return", "refund_return", "close_return"]
        ),
    )
    def move(self, data: st.DataObject, command: str) -> None:
        self.attempt(command, data.draw(st.sampled_from(self.returns)))

    @precondition(lambda self: self.returns)
    @rule(
        data=st.data(),
        restock=st.integers(0, 3),
        damaged=st.integers(0, 2),
        which=st.integers(0, 1),
    )
    def receive(self, data: st.DataObject, restock: int, damaged: int, which: int) -> None:
        counts = {
            k: v for k, v in ((Disposition.RESTOCK, restock), (Disposition.DAMAGED, damaged)) if v
        }
        self.attempt(
            "receive_return",
            data.draw(st.sampled_from(self.returns)),
            "WH-1",
            {self.lines()[which]: counts},
        )

    @precondition(lambda self: self.returns)
    @rule(data=st.data())
    def exchange(self, data: st.DataObject) -> None:
        """Exchanged for another B, dearer or cheaper than the units sent back; the
        replacement is delivered."""
        price = data.draw(st.sampled_from(["7.10", "30.00"]))
        new = self.attempt(
            "exchange", data.draw(st.sampled_from(self.returns)), [LineDraft("B", 1, eur(price))]
        )
        if isinstance(new, Order):
            self.oms.allocate(new.id)
            for f in self.oms.get_order(new.id).fulfillments:
                self.oms.ship(f.id)
                self.oms.deliver(f.id)
            self.replacements.append(new.id)

    @invariant()
    def units_and_money_add_up(self) -> None:
        order = self.oms.get_order(self.order_id)
        zero = Money.zero("EUR")
        assert order.refunded <= order.captured <= order.authorized
        assert order.payment_reference is not None
        paid = self.gateway.authorizations[order.payment_reference]
        assert (paid.captured, paid.refunded) == (order.captured, order.refunded)
        for replacement in map(self.oms.get_order, self.replacements):
            assert zero <= replacement.refundable
            assert_gateway_holds_the_ledger(self.gateway, replacement)
        captured = sum((a.captured for a in self.gateway.authorizations.values()), zero)
        refunded = sum((a.refunded for a in self.gateway.authorizations.values()), zero)
        assert refunded <= captured
        refunded_by_returns = sum(
            (r.refunded for r in map(self.oms.get_return, self.returns) if r.refunded is not None),
            zero,
        )
        assert refunded_by_returns <= order.refunded
        for line in order.lines:
            assert 0 <= line.refunded <= line.returned <= line.delivered
            received = sum(
                rl.received
                for r in map(self.oms.get_return, self.returns)
                for rl in r.lines
                if rl.line_id == line.id
            )
            assert received == line.returned
        for rma in map(self.oms.get_return, self.returns):
            for rl in rma.lines:
                assert 0 <= rl.refunded <= rl.received <= rl.requested
                assert sum(rl.dispositions.values()) == rl.received
            if rma.status is ReturnStatus.RECEIVED:
                assert all(rl.received == rl.requested for rl in rma.lines)


TestReturnLifecycle = ReturnLifecycle.TestCase
