"""``place_order(draft, allocate=True)`` is ``place_order`` then ``allocate``, in one write.

A property test runs the same checkouts on two systems, one command on the first and two
on the second, and compares everything they recorded.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omscore import OMS, Delivery, OrderStatus
from omscore.adapters.memory import MemoryStore, MemoryUnitOfWork
from omscore.adapters.payments import FakePaymentGateway
from omscore.errors import InvalidDraft
from omscore.sourcing import LowestCostPolicy
from omscore.testing import ManualClock, SequentialIds
from omscore.testing.invariants import check_books

from .conftest import draft, store_location, warehouse

SKUS = ("A", "B", "C")
LOCATIONS = ("WH-1", "WH-2", "ST-1")


def system(stock: dict[tuple[str, str], int], gateway: FakePaymentGateway) -> OMS:
    """Two warehouses and a store with ``stock``; pickups may be sent to the store."""
    oms = OMS(
        MemoryStore(),
        clock=ManualClock(),
        ids=SequentialIds(),
        payments=gateway,
        sourcing=LowestCostPolicy(allow_ship_to_store=True),
    )
    oms.add_location(warehouse("WH-1", priority=1))
    oms.add_location(warehouse("WH-2", priority=2))
    oms.add_location(store_location("ST-1"))
    for (location, sku), units in sorted(stock.items()):
        oms.receive(location, sku, units)
    return oms


checkouts = st.lists(
    st.tuples(
        st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 4)), min_size=1, max_size=3),
        st.booleans(),  # a pickup at ST-1
        st.booleans(),  # the payment is declined
    ),
    min_size=1,
    max_size=6,
)
stock_positions = st.dictionaries(
    st.tuples(st.sampled_from(LOCATIONS), st.sampled_from(SKUS)), st.integers(1, 8), max_size=6
)


@given(stock=stock_positions, orders=checkouts)
def test_one_command_records_what_two_commands_record(
    stock: dict[tuple[str, str], int], orders: list[tuple[list[tuple[str, int]], bool, bool]]
) -> None:
    """Orders, stock levels, the ledger and the events are the same, checkout after
    checkout; a declined payment holds the order, which then is not sourced by either."""
    gateways = FakePaymentGateway(), FakePaymentGateway()
    one, two = (system(stock, gateway) for gateway in gateways)
    for lines, pickup, declined in orders:
        checkout = draft(*lines, delivery=Delivery.pickup("ST-1") if pickup else None)
        if declined:
            for gateway in gateways:
                gateway.decline_next()
        placed = one.place_order(checkout, allocate=True)
        twin = two.place_order(checkout)
        if twin.status is not OrderStatus.ON_HOLD:
            two.allocate(twin.id)
        assert placed == two.get_order(twin.id)
    for sku in SKUS:
        assert one.inventory(sku) == two.inventory(sku)
    assert one.ledger() == two.ledger()
    assert one.events() == two.events()
    check_books(one)


def test_one_command_writes_once_and_repeats_under_its_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One commit per checkout; the key replays it; a bad draft changes nothing."""
    oms = system({("WH-1", "A"): 5}, FakePaymentGateway())
    commits = 0
    commit = MemoryUnitOfWork.commit

    def counting(self: MemoryUnitOfWork) -> None:
        nonlocal commits
        commits += 1
        commit(self)

    monkeypatch.setattr(MemoryUnitOfWork, "commit", counting)
    order = oms.place_order(draft(("A", 2)), idempotency_key="checkout-1", allocate=True)
    assert commits == 1
    assert order.status is OrderStatus.ALLOCATED
    assert oms.place_order(draft(("A", 2)), idempotency_key="checkout-1", allocate=True) == order
    assert oms.stock("WH-1", "A").allocated == 2
    before = oms.events()
    with pytest.raises(InvalidDraft):
        oms.place_order(draft(("A", 0)), allocate=True)
    assert oms.events() == before
