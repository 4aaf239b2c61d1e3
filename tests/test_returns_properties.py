"""Property tests for payments and returns.

For any order, any split into shipments and any sequence of partial returns: refunds of
fully returned lines add up to their paid totals exactly, refunds never exceed captures,
captures never exceed authorisations, and on hand changes only by RESTOCK units.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from omscore import OMS, Money, OrderDraft
from omscore.adapters.memory import MemoryStore
from omscore.adapters.payments import FakePaymentGateway
from omscore.inventory import MovementKind
from omscore.returns import Disposition, ReturnPolicy
from omscore.sourcing import PriorityPolicy
from omscore.testing import ManualClock, SequentialIds
from omscore.testing import strategies as oms_st
from omscore.testing.invariants import check_books

from .conftest import warehouse

LOCATIONS = ("WH-1", "WH-2", "WH-3")


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
    oms = OMS(
        MemoryStore(),
        clock=ManualClock(),
        ids=SequentialIds(),
        payments=gateway,
        sourcing=PriorityPolicy(),
        return_policy=ReturnPolicy(),
    )
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
