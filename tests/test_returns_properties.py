"""Property tests for payments and returns.

For any order, any split into shipments and any sequence of partial returns: refunds of
fully returned lines add up to their paid totals exactly, refunds never exceed captures,
captures never exceed authorisations, and on hand changes only by RESTOCK units.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from omscore import OMS, LineDraft, Money, OrderDraft
from omscore.adapters.memory import MemoryStore
from omscore.adapters.payments import FakePaymentGateway
from omscore.inventory import MovementKind
from omscore.returns import Disposition, ReturnPolicy
from omscore.sourcing import PriorityPolicy
from omscore.testing import ManualClock, SequentialIds
from omscore.testing import strategies as oms_st
from omscore.testing.contract import assert_gateway_holds_the_ledger, order_draft
from omscore.testing.invariants import check_books

from .conftest import warehouse

LOCATIONS = ("WH-1", "WH-2", "WH-3")


def shop(gateway: FakePaymentGateway) -> OMS:
    """An OMS on memory with ``gateway``, the default return policy, sourcing by
    priority."""
    return OMS(
        MemoryStore(),
        clock=ManualClock(),
        ids=SequentialIds(),
        payments=gateway,
        sourcing=PriorityPolicy(),
        return_policy=ReturnPolicy(),
    )


def ship_everything(oms: OMS, draft: OrderDraft, stock: Callable[[str, int], list[int]]) -> str:
    """Spread stock over three warehouses, place, allocate (split), ship and deliver."""
    for line in draft.lines:
        for location_id, units in zip(LOCATIONS, stock(line.sku, line.quantity), strict=True):
            if units:
                oms.receive(location_id, line.sku, units)
    order = oms.place_order(draft)
    oms.allocate(order.id)
    for f in oms.get_order(order.id).fulfillments:
        oms.ship(f.id)
        oms.deliver(f.id)
    return order.id


@settings(max_examples=40, deadline=None)
@given(
    draft=oms_st.order_drafts(max_lines=3).filter(
        lambda d: all(line.quantity <= 8 for line in d.lines) and d.delivery.method.value == "ship"
    ),
    data=st.data(),
)
def test_refunds_add_up_exactly_and_never_exceed_what_was_paid(
    draft: OrderDraft, data: st.DataObject
) -> None:
    """Ship in random splits, return in random steps with random dispositions."""
    gateway = FakePaymentGateway()
    oms = shop(gateway)
    for i, location_id in enumerate(LOCATIONS):
        oms.add_location(warehouse(location_id, priority=i))

    def spread(sku: str, quantity: int) -> list[int]:
        first = data.draw(st.integers(0, quantity), label=f"{sku} at WH-1")
        second = data.draw(st.integers(0, quantity - first), label=f"{sku} at WH-2")
        return [first, second, quantity - first - second + 1]

    order_id = ship_everything(oms, draft, spread)
    order = oms.get_order(order_id)
    shipped_on_hand = {
        loc: {line.sku: oms.stock(loc, line.sku).on_hand for line in order.lines}
        for loc in LOCATIONS
    }
    to_return = {
        line.id: data.draw(st.integers(0, line.quantity), label=f"return {line.id}")
        for line in order.lines
    }
    left = dict(to_return)
    restocked = 0
    while any(left.values()):
        ask = {line_id: data.draw(st.integers(1, n)) for line_id, n in left.items() if n}
        rma = oms.approve_return(oms.request_return(order_id, ask).id)
        for line_id, n in ask.items():
            keep = data.draw(st.integers(0, n))
            dispositions = {Disposition.RESTOCK: keep} if keep else {}
            if n - keep:
                dispositions[
                    data.draw(
                        st.sampled_from(
                            [
                                Disposition.DAMAGED,
                                Disposition.REFURBISH,
                                Disposition.RETURN_TO_VENDOR,
                            ]
                        )
                    )
                ] = n - keep
            oms.receive_return(rma.id, "WH-1", {line_id: dispositions})
            restocked += keep
            left[line_id] -= n
        oms.refund_return(rma.id)

    order = oms.get_order(order_id)
    expected = Money.zero(order.currency)
    for line in order.lines:
        shares = line.total.allocate([1] * line.quantity)
        expected += sum(shares[: to_return[line.id]], Money.zero(order.currency))
        if to_return[line.id] == line.quantity:
            assert sum(shares, Money.zero(order.currency)) == line.total
    assert order.refunded == expected
    assert order.refunded <= order.captured <= order.authorized
    auth = gateway.authorizations[order.payment_reference or ""]
    assert auth.refunded <= auth.captured <= auth.amount
    assert auth.refunded == order.refunded
    restocks = sum(m.on_hand_delta for m in oms.ledger() if m.kind is MovementKind.RESTOCK)
    assert restocks == restocked
    for location_id in LOCATIONS:
        for line in order.lines:
            before = shipped_on_hand[location_id][line.sku]
            restock_here = sum(
                m.on_hand_delta
                for m in oms.ledger(line.sku, location_id)
                if m.kind is MovementKind.RESTOCK
            )
            assert oms.stock(location_id, line.sku).on_hand == before + restock_here
    check_books(oms)


def _deliver(oms: OMS, order_id: str) -> None:
    oms.allocate(order_id)
    for f in oms.get_order(order_id).fulfillments:
        oms.ship(f.id)
        oms.deliver(f.id)


def _gateway_totals(gateway: FakePaymentGateway) -> tuple[Money, Money]:
    """What the gateway captured and refunded, over every authorisation."""
    zero = Money.zero("EUR")
    captured = sum((a.captured for a in gateway.authorizations.values()), zero)
    refunded = sum((a.refunded for a in gateway.authorizations.values()), zero)
    return captured, refunded


@settings(max_examples=60, deadline=None)
@given(
    prices=st.lists(st.integers(100, 5000), min_size=1, max_size=4),
    goodwill=st.lists(st.integers(0, 6000), min_size=5, max_size=5),
    cancel_last=st.booleans(),
)
def test_a_chain_of_exchanges_never_gives_back_more_than_was_paid_and_settles_whole(
    prices: list[int], goodwill: list[int], cancel_last: bool
) -> None:
    """One item bought at 10.00, then exchanged for another at each price (in cents), with a
    goodwill refund tried on any order of the chain between steps: every refund accepted
    fits what the gateway holds for that order's payment, no order's ledger drifts from
    the gateway, and returning the last item gives the customer back, over all the
    chain's cards, exactly what they paid; so does cancelling the last replacement before
    it ships (its credit, which no shipment will use, goes back)."""
    gateway = FakePaymentGateway()
    oms = shop(gateway)
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 10)

    def cents(n: int) -> Money:
        return Money.from_minor(n, "EUR")

    def returned(order_id: str) -> str:
        line = oms.get_order(order_id).lines[0]
        rma = oms.approve_return(oms.request_return(order_id, {line.id: 1}).id)
        return oms.receive_return(rma.id, "WH-1", {line.id: {Disposition.RESTOCK: 1}}).id

    chain = [oms.place_order(order_draft("A", 1)).id]
    for step, price in enumerate(prices):
        _deliver(oms, chain[-1])
        try_on = chain[goodwill[step] % len(chain)]
        amount = cents(goodwill[step])
        fits = amount.amount > 0 and amount <= oms.get_order(try_on).refundable
        if fits:
            oms.refund_order(try_on, amount, "goodwill")
        new = oms.exchange(returned(chain[-1]), [LineDraft("A", 1, cents(price))])
        chain.append(new.id)
    if cancel_last and len(chain) > 1:
        oms.cancel(chain[-1], reason="changed my mind")
    else:
        _deliver(oms, chain[-1])
        oms.refund_return(returned(chain[-1]))
    for order_id in chain:
        order = oms.get_order(order_id)
        assert order.refundable == Money.zero("EUR"), order.payments
        assert_gateway_holds_the_ledger(gateway, order)
    captured, refunded = _gateway_totals(gateway)
    assert refunded == captured
