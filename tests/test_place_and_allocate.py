"""``place_order(draft, allocate=True)`` is ``place_order`` then ``allocate``, in one write.

A property test runs the same checkouts on two systems, one command on the first and two
on the second, and compares what they recorded.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from omscore import OMS, Delivery, Order, OrderStatus
from omscore.adapters.memory import MemoryStore, MemoryUnitOfWork
from omscore.adapters.payments import FakePaymentGateway
from omscore.errors import InsufficientStock, InvalidDraft
from omscore.events import DomainEvent, InventoryEvent, OrderStockHeld, OrderStockReleased
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
        st.booleans(),  # the cart reserved its stock first
    ),
    min_size=1,
    max_size=6,
)
stock_positions = st.dictionaries(
    st.tuples(st.sampled_from(LOCATIONS), st.sampled_from(SKUS)), st.integers(1, 8), max_size=6
)
HOLD_EVENTS = (OrderStockHeld, OrderStockReleased)


def recorded(oms: OMS) -> list[DomainEvent]:
    """The events but stock holds, and without the items' versions (fewer hold changes
    give an item fewer versions)."""
    return [
        attrs.evolve(e, version=0) if isinstance(e, InventoryEvent) else e
        for e in oms.events()
        if not isinstance(e, HOLD_EVENTS)
    ]


def checkout(
    oms: OMS, n: int, lines: list[tuple[str, int]], pickup: bool, cart: bool, allocate: bool
) -> Order:
    """Place the n-th checkout (reserved first when ``cart``, as far as stock allows)."""
    key = f"cart-{n}" if cart else None
    if key is not None:
        wanted: dict[str, int] = {}
        for sku, quantity in lines:
            wanted[sku] = wanted.get(sku, 0) + quantity
        for sku, quantity in sorted(wanted.items()):
            with contextlib.suppress(InsufficientStock):
                oms.reserve(sku, quantity, channel="web", ttl=timedelta(hours=1), key=key)
    delivery = Delivery.pickup("ST-1") if pickup else None
    return oms.place_order(draft(*lines, delivery=delivery, reservation_key=key), allocate=allocate)


@given(stock=stock_positions, orders=checkouts)
def test_one_command_ends_where_two_commands_end(
    stock: dict[tuple[str, str], int],
    orders: list[tuple[list[tuple[str, int]], bool, bool, bool]],
) -> None:
    """Checkout after checkout, the same orders (with their fulfilment orders), stock
    levels, holds and backorders per order line, ledger and events, but for the stock
    holds a one-command checkout never needed; a declined payment holds the order, which
    then is not sourced by either."""
    gateways = FakePaymentGateway(), FakePaymentGateway()
    one, two = (system(stock, gateway) for gateway in gateways)
    for n, (lines, pickup, declined, cart) in enumerate(orders):
        if declined:
            for gateway in gateways:
                gateway.decline_next()
        placed = checkout(one, n, lines, pickup, cart, allocate=True)
        twin = checkout(two, n, lines, pickup, cart, allocate=False)
        if twin.status is not OrderStatus.ON_HOLD:
            two.allocate(twin.id)
        assert placed == two.get_order(twin.id)
        for line in placed.lines:
            a, b = one.inventory(line.sku), two.inventory(line.sku)
            assert a.levels == b.levels
            assert a.held_for(placed.id, line.id) == b.held_for(placed.id, line.id)
            assert a.backordered_for(placed.id, line.id) == b.backordered_for(placed.id, line.id)
    assert one.ledger() == two.ledger()
    assert recorded(one) == recorded(two)
    check_books(one)


def test_one_command_without_a_cart_holds_no_stock_it_would_release_at_once() -> None:
    """Placed and allocated in one command, the order's units go straight to allocation:
    no stock hold events. Placed, then allocated, it holds first and releases on
    allocating."""
    oms = system({("WH-1", "A"): 5}, FakePaymentGateway())
    oms.place_order(draft(("A", 2)), allocate=True)
    assert [e for e in oms.events() if isinstance(e, HOLD_EVENTS)] == []
    order = oms.place_order(draft(("A", 2)))
    oms.allocate(order.id)
    held = [type(e) for e in oms.events() if isinstance(e, HOLD_EVENTS)]
    assert held == [OrderStockHeld, OrderStockReleased]


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
