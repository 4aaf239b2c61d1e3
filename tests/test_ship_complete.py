"""Ship complete: an order the customer wants in one parcel is sourced whole from one
location, or waits (its units stay held) until one location can send it all."""

from __future__ import annotations

import json
import re

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from omscore import OMS, Order, OrderDraft, OrderStatus
from omscore.adapters.memory import MemoryStore
from omscore.errors import (
    InvalidDraft,
    InvalidPlan,
    InvalidSourcingRequest,
    InvalidTransition,
    UnknownOrder,
)
from omscore.events import OrderPlaced, ShipCompleteChanged
from omscore.ids import LineId, OrderId
from omscore.serialization import event_from_dict, event_to_dict, from_json, to_json
from omscore.sourcing import (
    AllocationPlan,
    DeliveryMethod,
    NetworkSnapshot,
    PriorityPolicy,
    RequestLine,
    SourcingRequest,
)
from omscore.testing import ManualClock, SequentialIds
from omscore.testing.invariants import check_books

from .conftest import draft, warehouse


def network(policy: object = None) -> OMS:
    """Two warehouses: WH-1 (priority 1) and WH-2 (priority 2), no stock yet."""
    oms = OMS(MemoryStore(), clock=ManualClock(), ids=SequentialIds(), sourcing=policy)  # type: ignore[arg-type]
    oms.add_location(warehouse("WH-1", priority=1))
    oms.add_location(warehouse("WH-2", priority=2))
    return oms


def whole(*lines: tuple[str, int]) -> OrderDraft:
    return attrs.evolve(draft(*lines), ship_complete=True)


def test_a_ship_complete_order_waits_for_one_location_that_can_send_it_all() -> None:
    """WH-1 has the shoes, WH-2 the socks: an ordinary order ships in two parcels, a
    ship-complete one waits, held, and says why; once WH-1 gets socks too, it ships from
    WH-1 alone."""
    oms = network(PriorityPolicy())
    oms.receive("WH-1", "SHOES", 2)
    oms.receive("WH-2", "SOCKS", 3)
    split = oms.place_order(draft(("SHOES", 1), ("SOCKS", 1)))
    assert oms.allocate(split.id).shipments == ("WH-1", "WH-2")

    order = oms.place_order(whole(("SHOES", 1), ("SOCKS", 2)))
    assert order.ship_complete
    plan = oms.allocate(order.id)
    assert plan.assignments == ()
    assert plan.units_unallocated == 3
    assert "has 1 of the 3 units; the order ships complete" in plan.explain()
    waiting = oms.get_order(order.id)
    assert (waiting.status, waiting.fulfillments) == (OrderStatus.OPEN, ())
    assert oms.available("SOCKS") == 0  # its units stay held where they are
    check_books(oms)

    oms.receive("WH-1", "SOCKS", 2)
    plan = oms.allocate(order.id)
    assert plan.shipments == ("WH-1",)
    assert plan.units_allocated == 3
    [parcel] = oms.get_order(order.id).fulfillments
    assert parcel.location_id == "WH-1"
    assert oms.available("SOCKS") == 2  # WH-2's hold on the socks was let go
    check_books(oms)


@attrs.frozen
class IgnoresShipComplete:
    """A policy of the user's own that plans as if no order shipped complete."""

    inner: PriorityPolicy = attrs.Factory(PriorityPolicy)

    def plan(self, request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
        return self.inner.plan(attrs.evolve(request, ship_complete=False), snapshot)


def test_a_plan_that_splits_a_ship_complete_order_is_refused_and_changes_nothing() -> None:
    oms = network(IgnoresShipComplete())
    oms.receive("WH-1", "SHOES", 1)
    oms.receive("WH-2", "SOCKS", 1)
    order = oms.place_order(whole(("SHOES", 1), ("SOCKS", 1)))
    before = (oms.get_order(order.id), oms.inventory("SHOES"), oms.inventory("SOCKS"), oms.events())
    with pytest.raises(
        InvalidPlan,
        match=r"O-1 ships complete, but policy PriorityPolicy planned 2 units from \['WH-1', "
        r"'WH-2'\] and left 0 behind",
    ):
        oms.allocate(order.id)
    after = (oms.get_order(order.id), oms.inventory("SHOES"), oms.inventory("SOCKS"), oms.events())
    assert after == before


def test_ship_complete_must_be_a_bool() -> None:
    oms = network()
    with pytest.raises(InvalidDraft, match="ship_complete must be True or False, got 'yes'"):
        oms.place_order(attrs.evolve(draft(("A", 1)), ship_complete="yes"))  # type: ignore[arg-type]
    assert oms.events()[-1].name == "LocationAdded"  # nothing was placed
    with pytest.raises(InvalidSourcingRequest, match="ship_complete must be True or False"):
        SourcingRequest([RequestLine("L1", "A", 1)], DeliveryMethod.SHIP, ship_complete=1)  # type: ignore[arg-type]


def test_orders_and_events_written_before_ship_complete_read_back_without_it() -> None:
    """Stores and outboxes keep what earlier versions wrote: no field means not complete."""
    order, (placed,) = Order.place(
        OrderId("O-1"), whole(("A", 1)), [LineId("O-1-1")], ManualClock().now()
    )
    assert isinstance(placed, OrderPlaced)
    assert (order.ship_complete, placed.ship_complete) == (True, True)
    body = event_to_dict(placed)
    del body["ship_complete"]
    assert event_from_dict(body) == attrs.evolve(placed, ship_complete=False)
    stored = json.loads(to_json(order))
    del stored["ship_complete"]
    assert from_json(json.dumps(stored), Order) == attrs.evolve(order, ship_complete=False)


def test_a_customer_who_would_rather_have_what_is_there_lets_the_order_split() -> None:
    """A ship-complete order waiting for the socks is let go: the next allocation splits
    it; an ordinary order can be made ship complete while it has open units."""
    oms = network(PriorityPolicy())
    oms.receive("WH-1", "SHOES", 2)
    oms.receive("WH-2", "SOCKS", 2)
    order = oms.place_order(whole(("SHOES", 1), ("SOCKS", 1)))
    assert oms.allocate(order.id).assignments == ()
    changed = oms.change_ship_complete(order.id, False)
    assert not changed.ship_complete
    assert oms.events()[-1] == ShipCompleteChanged(
        order_id=order.id, version=changed.version, at=ManualClock().now(), ship_complete=False
    )
    assert oms.allocate(order.id).shipments == ("WH-1", "WH-2")
    other = oms.place_order(draft(("SHOES", 1), ("SOCKS", 1)))
    assert oms.change_ship_complete(other.id, True).ship_complete
    assert oms.allocate(other.id).assignments == ()
    check_books(oms)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ("allocated", InvalidTransition, "has no open units: ship complete applies to what is"),
        ("cancelled", InvalidTransition, "cannot edit order O-1: it is cancelled"),
        ("not a bool", InvalidDraft, "ship_complete must be True or False, got 'no'"),
        ("unknown", UnknownOrder, "no order 'O-9'"),
    ],
)
def test_a_change_of_ship_complete_that_cannot_apply_is_refused_and_changes_nothing(
    change: str, error: type, message: str
) -> None:
    oms = network(PriorityPolicy())
    oms.receive("WH-1", "SHOES", 2)
    order = oms.place_order(draft(("SHOES", 1)))
    if change == "allocated":
        oms.allocate(order.id)
    if change == "cancelled":
        oms.cancel(order.id, None, reason="customer")
    before = (oms.get_order(order.id), oms.events())
    order_id, value = (
        ("O-9" if change == "unknown" else order.id),
        ("no" if change == "not a bool" else True),
    )
    with pytest.raises(error, match=re.escape(message)):
        oms.change_ship_complete(order_id, value)  # type: ignore[arg-type]
    assert (oms.get_order(order.id), oms.events()) == before


stocks = st.dictionaries(
    st.tuples(st.sampled_from(["WH-1", "WH-2"]), st.sampled_from(["A", "B"])),
    st.integers(1, 4),
    max_size=4,
)
orders = st.lists(
    st.tuples(
        st.lists(st.tuples(st.sampled_from(["A", "B"]), st.integers(1, 3)), min_size=1, max_size=2),
        st.booleans(),  # ship complete
        st.booleans(),  # the first location it is sent to rejects it
    ),
    min_size=1,
    max_size=5,
)


@given(stock=stocks, checkouts=orders, late=stocks)
def test_a_ship_complete_order_only_ever_leaves_in_one_parcel(
    stock: dict[tuple[str, str], int],
    checkouts: list[tuple[list[tuple[str, int]], bool, bool]],
    late: dict[tuple[str, str], int],
) -> None:
    """Property: whatever the stock, rejections and late receipts, every ship-complete
    order has no fulfilment order or one active one with all its units, and the books
    balance after every step."""
    oms = network(PriorityPolicy())
    for (location, sku), units in sorted(stock.items()):
        oms.receive(location, sku, units)
    placed = []
    for lines, complete, rejects in checkouts:
        order = oms.place_order(attrs.evolve(draft(*lines), ship_complete=complete))
        placed.append(order.id)
        oms.allocate(order.id)
        fulfillments = oms.get_order(order.id).fulfillments
        if rejects and fulfillments:
            oms.reject_fulfillment(fulfillments[0].id, reason="short on the shelf")
        check_books(oms)
    for (location, sku), units in sorted(late.items()):
        oms.receive(location, sku, units)
    for order_id in placed:
        if oms.get_order(order_id).open_units:
            oms.allocate(order_id)
    for order_id in placed:
        order = oms.get_order(order_id)
        if not order.ship_complete:
            continue
        active = [f for f in order.fulfillments if f.is_active]
        assert len(active) <= 1
        if active:
            assert order.open_units == 0
            assert sum(u.quantity for u in active[0].lines) == sum(
                line.quantity for line in order.lines
            )
    check_books(oms)
