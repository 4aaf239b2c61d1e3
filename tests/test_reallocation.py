"""Sourcing again after the fact: ``reallocate`` takes back the fulfilment orders no
location has started and plans their units anew (one parcel where two were needed, stock
that turned up nearer); ``move_fulfillment`` gives one fulfilment order, whole, to a
location a person chose. Both keep every rule sourcing keeps, and a refusal changes
nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omscore import OMS, Delivery, Order
from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.errors import (
    InsufficientStock,
    InvalidTransition,
    NothingToAllocate,
    OrderOnHold,
    UnknownFulfillment,
    UnknownLocation,
    UnknownOrder,
    UnsuitableLocation,
)
from omscore.events import FulfillmentCreated, FulfillmentMoved, FulfillmentWithdrawn
from omscore.ids import LocationId
from omscore.inventory import Capability, MovementKind
from omscore.orders import FulfillmentStatus
from omscore.ports import Store
from omscore.sourcing import (
    AllocationPlan,
    LowestCostPolicy,
    NetworkSnapshot,
    PriorityPolicy,
    SourcingPolicy,
    SourcingRequest,
    StoreShipMinimum,
)
from omscore.testing import ManualClock, SequentialIds
from omscore.testing.invariants import check_books

from .conftest import draft, store_location, warehouse

STORES: dict[str, Callable[[], Store]] = {
    "memory": MemoryStore,
    "sqlite": lambda: SqliteStore(":memory:"),
}


@pytest.fixture(params=sorted(STORES))
def make_store(request: pytest.FixtureRequest) -> Callable[[], Store]:
    """Each test runs on both stores."""
    return STORES[request.param]


def network(store: Store, policy: SourcingPolicy | None = None) -> OMS:
    """WH-1 (priority 1), WH-2 (priority 2) and the store ST-1 (priority 5), no stock."""
    oms = OMS(store, clock=ManualClock(), ids=SequentialIds(), sourcing=policy or PriorityPolicy())
    oms.add_location(warehouse("WH-1", priority=1))
    oms.add_location(warehouse("WH-2", priority=2))
    oms.add_location(store_location("ST-1"))
    return oms


def state(oms: OMS, order_id: str) -> tuple[object, ...]:
    """What a command that changes nothing leaves as it was."""
    return (oms.get_order(order_id), oms.events(), oms.ledger(), oms.inventory("A"))


def active(order: Order) -> list[tuple[str, str, int]]:
    """(id, location, units) of the order's active fulfilment orders."""
    return [(f.id, f.location_id, f.units) for f in order.fulfillments if f.is_active]


# --- reallocate ------------------------------------------------------------------------------


def test_a_split_order_ships_in_one_parcel_once_one_location_has_it_all(
    make_store: Callable[[], Store],
) -> None:
    """Two units, one at each warehouse: two parcels. WH-1 receives a second unit before
    either warehouse started; reallocate takes both fulfilment orders back and gives WH-1
    the whole order."""
    oms = network(make_store())
    oms.receive("WH-1", "A", 1)
    oms.receive("WH-2", "A", 1)
    order = oms.place_order(draft(("A", 2)), allocate=True)
    assert active(order) == [(f"{order.id}-F1", "WH-1", 1), (f"{order.id}-F2", "WH-2", 1)]
    oms.receive("WH-1", "A", 1)
    plan = oms.reallocate(order.id, reason="one parcel")
    assert plan.shipments == ("WH-1",)
    after = oms.get_order(order.id)
    assert active(after) == [(f"{order.id}-F3", "WH-1", 2)]
    assert [f.status for f in after.fulfillments[:2]] == [FulfillmentStatus.WITHDRAWN] * 2
    assert after.lines[0].allocated == 2
    assert after.rejections == 0
    assert after.rejected_locations == frozenset()
    withdrawn = [e for e in oms.events() if isinstance(e, FulfillmentWithdrawn)]
    assert [(e.fulfillment_id, e.location_id, e.reason) for e in withdrawn] == [
        (f"{order.id}-F1", "WH-1", "one parcel"),
        (f"{order.id}-F2", "WH-2", "one parcel"),
    ]
    levels = oms.inventory("A").levels
    assert (levels[LocationId("WH-1")].allocated, levels[LocationId("WH-2")].allocated) == (2, 0)
    assert levels[LocationId("WH-2")].available == 1
    check_books(oms)


def test_a_plan_like_the_one_in_place_changes_nothing(make_store: Callable[[], Store]) -> None:
    """No event, no new fulfilment order, no ledger row: a location is not told twice."""
    oms = network(make_store())
    oms.receive("WH-1", "A", 1)
    oms.receive("WH-2", "A", 1)
    order = oms.place_order(draft(("A", 2)), allocate=True)
    before = state(oms, order.id)
    plan = oms.reallocate(order.id)
    assert plan.shipments == ("WH-1", "WH-2")
    assert state(oms, order.id) == before


def test_only_fulfilment_orders_no_location_started_are_taken_back(
    make_store: Callable[[], Store],
) -> None:
    """WH-1 accepted its unit and keeps it, accepted. WH-2's unit, not started, moves to
    WH-1 once WH-1 has a spare one (the priority policy prefers WH-1)."""
    oms = network(make_store())
    oms.receive("WH-1", "A", 1)
    oms.receive("WH-2", "A", 1)
    order = oms.place_order(draft(("A", 2)), allocate=True)
    first, second = (f.id for f in order.fulfillments)
    oms.accept_fulfillment(first)
    oms.receive("WH-1", "A", 1)
    oms.reallocate(order.id)
    after = oms.get_order(order.id)
    assert active(after) == [(first, "WH-1", 1), (f"{order.id}-F3", "WH-1", 1)]
    assert after.fulfillment(first).status is FulfillmentStatus.ACCEPTED
    assert after.fulfillment(second).status is FulfillmentStatus.WITHDRAWN
    check_books(oms)


def test_open_units_are_sourced_with_the_ones_taken_back(make_store: Callable[[], Store]) -> None:
    """One unit allocated at WH-2, one backordered. WH-1 receives two: the backorder is
    served (held at WH-1), and reallocate sends both units from WH-1 together."""
    oms = network(make_store())
    oms.receive("WH-2", "A", 1)
    order = oms.place_order(draft(("A", 2)), allocate=True)
    assert active(order) == [(f"{order.id}-F1", "WH-2", 1)]
    assert order.open_units == 1
    oms.receive("WH-1", "A", 2)
    oms.reallocate(order.id)
    after = oms.get_order(order.id)
    assert active(after) == [(f"{order.id}-F2", "WH-1", 2)]
    assert after.open_units == 0
    check_books(oms)


def test_a_location_at_its_daily_capacity_keeps_the_work_it_already_has(
    make_store: Callable[[], Store],
) -> None:
    """WH-1 may take one fulfilment order a day and has this order's: taking it back gives
    that capacity back to the plan, so the plan stays (and nothing changes). Had the taken
    back order still counted, WH-1 would look full and the unit would go to WH-2."""
    oms = network(make_store())
    oms.update_location("WH-1", daily_capacity=1)
    oms.receive("WH-1", "A", 5)
    oms.receive("WH-2", "A", 5)
    order = oms.place_order(draft(("A", 1)), allocate=True)
    before = state(oms, order.id)
    oms.reallocate(order.id)
    assert state(oms, order.id) == before


def test_capacity_used_by_a_withdrawn_fulfilment_order_is_given_back(
    make_store: Callable[[], Store],
) -> None:
    """WH-2 (one a day) had this order's second parcel; when the order moves to WH-1 whole,
    WH-2 can take another order today."""
    oms = network(make_store())
    oms.update_location("WH-2", daily_capacity=1)
    oms.receive("WH-1", "A", 1)
    oms.receive("WH-2", "A", 3)
    order = oms.place_order(draft(("A", 2)), allocate=True)
    assert [loc for _, loc, _ in active(order)] == ["WH-1", "WH-2"]
    oms.receive("WH-1", "A", 1)
    oms.reallocate(order.id)
    other = oms.place_order(draft(("A", 1)), allocate=True)
    assert [loc for _, loc, _ in active(other)] == ["WH-2"]


@pytest.mark.parametrize(
    ("before_cancel", "comes_back"),
    [("nothing", True), ("accept", False), ("cancel one unit", False)],
)
def test_capacity_used_by_a_fulfilment_order_cancelled_before_it_was_accepted_is_given_back(
    make_store: Callable[[], Store], before_cancel: str, comes_back: bool
) -> None:
    """WH-1 takes one order a day. A customer cancels the order it took: while WH-1 had
    not accepted it, WH-1 can take another order today; once it accepted it, or when the
    cancel left it a unit to send, the day's count stands."""
    oms = network(make_store())
    oms.update_location("WH-1", daily_capacity=1)
    oms.receive("WH-1", "A", 5)
    oms.receive("WH-2", "A", 5)
    order = oms.place_order(draft(("A", 2)), allocate=True)
    [(fulfillment_id, location, _)] = active(order)
    assert location == "WH-1"
    if before_cancel == "accept":
        oms.accept_fulfillment(fulfillment_id)
    lines = {order.lines[0].id: 1} if before_cancel == "cancel one unit" else None
    oms.cancel(order.id, lines, reason="changed my mind")
    other = oms.place_order(draft(("A", 1)), allocate=True)
    assert [loc for _, loc, _ in active(other)] == ["WH-1" if comes_back else "WH-2"]
    check_books(oms)


@pytest.mark.parametrize("case", ["unknown", "held", "cancelled", "nothing to source"])
def test_a_refused_reallocation_changes_nothing(case: str, make_store: Callable[[], Store]) -> None:
    """Unknown order, an order on hold, a cancelled order, and one whose units all went to
    locations that started on them."""
    oms = network(make_store())
    oms.receive("WH-1", "A", 5)
    order = oms.place_order(draft(("A", 1)), allocate=True)
    expected: type[Exception] = NothingToAllocate
    if case == "held":
        oms.hold(order.id, "fraud")
        expected = OrderOnHold
    elif case == "cancelled":
        oms.cancel(order.id)
    elif case == "nothing to source":
        oms.accept_fulfillment(order.fulfillments[0].id)
    before = state(oms, order.id)
    with pytest.raises(UnknownOrder if case == "unknown" else expected):
        oms.reallocate("nope" if case == "unknown" else order.id)
    assert state(oms, order.id) == before


def test_a_reallocation_is_done_once_per_key(make_store: Callable[[], Store]) -> None:
    """A retry with the same key returns the first plan and changes nothing more."""
    oms = network(make_store())
    oms.receive("WH-1", "A", 1)
    oms.receive("WH-2", "A", 1)
    order = oms.place_order(draft(("A", 2)), allocate=True)
    oms.receive("WH-1", "A", 1)
    first = oms.reallocate(order.id, idempotency_key="k")
    after = state(oms, order.id)
    again = oms.reallocate(order.id, idempotency_key="k")
    assert again.shipments == first.shipments == ("WH-1",)
    assert state(oms, order.id) == after


# --- move_fulfillment -----------------------------------------------------------------------


def test_a_person_moves_an_accepted_fulfilment_order_to_another_warehouse(
    make_store: Callable[[], Store],
) -> None:
    """Same id, new location, open again; stock deallocated at WH-1 and allocated at
    WH-2 (a ledger row each); WH-2's queue has it, WH-1's no longer."""
    oms = network(make_store())
    oms.receive("WH-1", "A", 3)
    oms.receive("WH-2", "A", 3)
    order = oms.place_order(draft(("A", 2)), allocate=True)
    (f,) = order.fulfillments
    oms.accept_fulfillment(f.id)
    moved = oms.move_fulfillment(f.id, "WH-2", reason="WH-1 short of staff")
    after = moved.fulfillment(f.id)
    assert (after.location_id, after.status, after.units) == ("WH-2", FulfillmentStatus.OPEN, 2)
    assert after.note == "WH-1 short of staff"
    (event,) = [e for e in oms.events() if isinstance(e, FulfillmentMoved)]
    assert (event.fulfillment_id, event.from_location_id, event.location_id) == (
        f.id,
        "WH-1",
        "WH-2",
    )
    levels = oms.inventory("A").levels
    assert (levels[LocationId("WH-1")].allocated, levels[LocationId("WH-2")].allocated) == (0, 2)
    kinds = [(m.location_id, m.kind) for m in oms.ledger()[-2:]]
    assert kinds == [("WH-1", MovementKind.DEALLOCATION), ("WH-2", MovementKind.ALLOCATION)]
    assert [q.fulfillment.id for q in oms.fulfillment_queue("WH-2")] == [f.id]
    assert oms.fulfillment_queue("WH-1") == []
    oms.ship(f.id, tracking="T-1")
    assert oms.inventory("A").levels[LocationId("WH-2")].on_hand == 1
    check_books(oms)


def test_a_ship_to_store_parcel_moved_to_its_pickup_store_is_a_plain_pickup(
    make_store: Callable[[], Store],
) -> None:
    """A pickup at ST-1 was sourced from WH-1 (the store had none); once the store has the
    unit, the parcel moves there, is readied and collected without travelling."""
    oms = network(make_store(), PriorityPolicy(allow_ship_to_store=True))
    oms.receive("WH-1", "A", 1)
    order = oms.place_order(draft(("A", 1), delivery=Delivery.pickup("ST-1")), allocate=True)
    (f,) = order.fulfillments
    assert f.location_id == "WH-1"
    oms.receive("ST-1", "A", 1)
    oms.move_fulfillment(f.id, "ST-1")
    oms.ready_for_pickup(f.id)
    collected = oms.collect(f.id)
    assert collected.fulfillment(f.id).status is FulfillmentStatus.COLLECTED
    levels = oms.inventory("A").levels
    assert (
        levels[LocationId("WH-1")].on_hand,
        levels[LocationId("WH-1")].available,
        levels[LocationId("ST-1")].on_hand,
    ) == (1, 1, 0)
    check_books(oms)


def test_the_capacity_a_moved_fulfilment_order_used_moves_with_it(
    make_store: Callable[[], Store],
) -> None:
    """WH-1 and WH-2 each take one fulfilment order a day: after the move WH-2 is full and
    WH-1 free again, so the next order goes to WH-1."""
    oms = network(make_store())
    for location_id in ("WH-1", "WH-2"):
        oms.update_location(location_id, daily_capacity=1)
        oms.receive(location_id, "A", 5)
    order = oms.place_order(draft(("A", 1)), allocate=True)
    oms.move_fulfillment(order.fulfillments[0].id, "WH-2")
    second = oms.place_order(draft(("A", 1)), allocate=True)
    assert [loc for _, loc, _ in active(second)] == ["WH-1"]
    before = state(oms, second.id)
    with pytest.raises(UnsuitableLocation, match="no fulfilment capacity left today"):
        oms.move_fulfillment(second.fulfillments[0].id, "WH-2")
    assert state(oms, second.id) == before


def take_back_from_wh1(oms: OMS, order: Order, how: str) -> None:
    """Take the order's first fulfilment order back from WH-1, to WH-2: moved by hand, or
    re-sourced by ``reallocate`` while WH-1 is inactive."""
    if how == "move":
        oms.move_fulfillment(order.fulfillments[0].id, "WH-2")
    else:
        oms.update_location("WH-1", active=False)
        oms.reallocate(order.id)
        oms.update_location("WH-1", active=True)


@pytest.mark.parametrize("how", ["move", "reallocate"])
def test_a_cap_set_after_the_allocation_has_nothing_to_give_back(
    how: str, make_store: Callable[[], Store]
) -> None:
    """WH-1 took the order's fulfilment order before it had a cap, so no load was counted
    for it; taking it back today gives back nothing, and WH-1 still has its one of today
    for the next order."""
    oms = network(make_store())
    oms.receive("WH-1", "A", 5)
    oms.receive("WH-2", "A", 5)
    order = oms.place_order(draft(("A", 1)), allocate=True)
    assert [loc for _, loc, _ in active(order)] == ["WH-1"]
    oms.update_location("WH-1", daily_capacity=1)
    take_back_from_wh1(oms, order, how)
    assert [loc for _, loc, _ in active(oms.get_order(order.id))] == ["WH-2"]
    second = oms.place_order(draft(("A", 1)), allocate=True)
    assert [loc for _, loc, _ in active(second)] == ["WH-1"]
    third = oms.place_order(draft(("A", 1)), allocate=True)
    assert [loc for _, loc, _ in active(third)] == ["WH-2"]
    check_books(oms)


@pytest.mark.parametrize("how", ["move", "reallocate"])
def test_taking_back_an_order_the_cap_never_counted_leaves_the_day_s_count(
    how: str, make_store: Callable[[], Store]
) -> None:
    """WH-1 took the first order before it had a cap of one a day, and the second after:
    the second is the one its cap counted. Taking the first back gives back nothing, so
    WH-1 stays full today and the third order goes to WH-2."""
    oms = network(make_store())
    oms.receive("WH-1", "A", 5)
    oms.receive("WH-2", "A", 5)
    first = oms.place_order(draft(("A", 1)), allocate=True)
    oms.update_location("WH-1", daily_capacity=1)
    second = oms.place_order(draft(("A", 1)), allocate=True)
    assert [loc for _, loc, _ in active(first) + active(second)] == ["WH-1", "WH-1"]
    today = oms.clock.now().date()
    counted = [o.fulfillments[0].counted_on for o in (first, second)]
    assert counted == [None, today]
    take_back_from_wh1(oms, first, how)
    assert [loc for _, loc, _ in active(oms.get_order(first.id))] == ["WH-2"]
    third = oms.place_order(draft(("A", 1)), allocate=True)
    assert [loc for _, loc, _ in active(third)] == ["WH-2"]
    check_books(oms)


def test_an_order_moved_in_today_gives_its_count_back_when_moved_on(
    make_store: Callable[[], Store],
) -> None:
    """WH-1 and WH-2 take one fulfilment order a day. Yesterday's order, moved to WH-2
    today, counts on WH-2 today; moved back to WH-1, it counts there and WH-2 is free
    again, so today's new order goes to WH-2."""
    oms = network(make_store())
    clock = oms.clock
    assert isinstance(clock, ManualClock)
    for location_id in ("WH-1", "WH-2"):
        oms.update_location(location_id, daily_capacity=1)
        oms.receive(location_id, "A", 5)
    order = oms.place_order(draft(("A", 1)), allocate=True)
    f = order.fulfillments[0]
    assert (f.location_id, f.counted_on) == ("WH-1", clock.now().date())
    clock.advance(timedelta(days=1))
    today = clock.now().date()
    moved = oms.move_fulfillment(f.id, "WH-2").fulfillment(f.id)
    assert (moved.location_id, moved.counted_on) == ("WH-2", today)
    back = oms.move_fulfillment(f.id, "WH-1").fulfillment(f.id)
    assert (back.location_id, back.counted_on) == ("WH-1", today)
    new = oms.place_order(draft(("A", 1)), allocate=True)
    assert [loc for _, loc, _ in active(new)] == ["WH-2"]
    check_books(oms)


def refusals() -> dict[str, tuple[type[Exception], str]]:
    """Each refused move: the error and words its message must have."""
    return {
        "picked": (InvalidTransition, "it is picked"),
        "same place": (InvalidTransition, "already at WH-1"),
        "unknown location": (UnknownLocation, "WH-9"),
        "unknown fulfilment": (UnknownFulfillment, "nope"),
        "outside the pool": (UnsuitableLocation, "not in channel web's pool"),
        "inactive": (UnsuitableLocation, "inactive"),
        "cannot ship": (UnsuitableLocation, "cannot ship"),
        "rejected before": (UnsuitableLocation, "rejected units of this order before"),
        "too few units": (InsufficientStock, "has 1 of the 2 units available"),
        "no units": (InsufficientStock, "has 0 of the 2 units available"),
        "own holds do not count": (InsufficientStock, "has 1 of the 2 units available"),
        "a filter holds it back": (UnsuitableLocation, "held back by a filter"),
        "the policy will not": (UnsuitableLocation, "policy Nowhere would not send them"),
    }


def refused_move(oms: OMS, case: str) -> tuple[str, str, str]:
    """Set up ``case`` on a network with stock: (order id, fulfilment order, target)."""
    oms.receive("WH-1", "A", 4)
    oms.receive("WH-2", "A", 2)
    order = oms.place_order(draft(("A", 2)), allocate=True)
    f: str = order.fulfillments[0].id
    target = {"same place": "WH-1", "unknown location": "WH-9", "no units": "ST-1"}.get(
        case, "WH-2"
    )
    if case == "picked":
        oms.pick(f)
    elif case == "unknown fulfilment":
        f = "nope"
    elif case == "outside the pool":
        oms.configure_channel("web", location_ids=["WH-1"])
    elif case == "inactive":
        oms.update_location("WH-2", active=False)
    elif case == "cannot ship":
        oms.update_location("WH-2", capabilities={Capability.PICKUP})
    elif case == "rejected before":
        rejected = oms.reject_fulfillment(f, "flooded")  # re-sourced to WH-2
        f, target = rejected.fulfillments[1].id, "WH-1"
    elif case == "too few units":
        oms.adjust("WH-2", "A", -1, "damaged")
    elif case == "own holds do not count":
        # Another order has 2 units at WH-1 and its third held at WH-2, beside 1 free unit.
        oms.cancel(order.id)
        oms.adjust("WH-1", "A", -2, "damaged")
        oms.adjust("WH-2", "A", -2, "damaged")
        order = oms.place_order(draft(("A", 3)), allocate=True)
        assert order.open_units == 1
        assert active(order)[0][1] == "WH-1"
        oms.receive("WH-2", "A", 2)
        assert oms.inventory("A").levels[LocationId("WH-2")].available == 1
        f = order.fulfillments[0].id
    elif case == "a filter holds it back":
        oms.receive("ST-1", "A", 2)
        oms.sourcing = PriorityPolicy(filters=[StoreShipMinimum(3)])
        target = "ST-1"
    elif case == "the policy will not":
        oms.sourcing = Nowhere()
    return order.id, f, target


class Nowhere:
    """A policy of a user's own that allocates nothing, and explains nothing."""

    name = "Nowhere"

    def plan(self, request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
        """Every unit stays unallocated."""
        return AllocationPlan(
            self.name, (), {line.line_id: line.quantity for line in request.lines}
        )


@pytest.mark.parametrize("case", sorted(refusals()))
def test_a_refused_move_changes_nothing(case: str, make_store: Callable[[], Store]) -> None:
    """The order, its events, the ledger and the stock stay as they were."""
    oms = network(make_store())
    order_id, f, target = refused_move(oms, case)
    error, words = refusals()[case]
    before = state(oms, order_id)
    with pytest.raises(error, match=words):
        oms.move_fulfillment(f, target)
    assert state(oms, order_id) == before


# --- properties -------------------------------------------------------------------------------


@given(
    first=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
    later=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
    quantities=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    accept=st.lists(st.booleans(), max_size=3),
    policy=st.sampled_from(["priority", "lowest_cost"]),
)
def test_reallocation_keeps_the_books_and_leaves_started_work_alone(
    first: tuple[int, int, int],
    later: tuple[int, int, int],
    quantities: list[int],
    accept: list[bool],
    policy: str,
) -> None:
    """Any stock, orders, started work and receipts, on either policy: after each
    reallocation the books balance (stock allocated = units on lines, open units held or
    backordered), the order's unstarted work is the plan returned, and reallocating it
    again at once changes nothing; started fulfilment orders are never touched."""
    chosen = PriorityPolicy() if policy == "priority" else LowestCostPolicy()
    oms = network(MemoryStore(), chosen)
    for location_id, units in zip(("WH-1", "WH-2", "ST-1"), first, strict=True):
        if units:
            oms.receive(location_id, "A", units)
    orders = [oms.place_order(draft(("A", q)), allocate=True) for q in quantities]
    started: dict[str, FulfillmentStatus] = {}
    for order, take in zip(orders, accept, strict=False):
        for f in order.fulfillments[:1]:
            if take:
                oms.accept_fulfillment(f.id)
                started[f.id] = FulfillmentStatus.ACCEPTED
    for location_id, units in zip(("WH-1", "WH-2", "ST-1"), later, strict=True):
        if units:
            oms.receive(location_id, "A", units)
    for order in orders:
        with contextlib.suppress(NothingToAllocate):
            plan = oms.reallocate(order.id)
            unstarted = [
                (f.location_id, f.units)
                for f in oms.get_order(order.id).fulfillments
                if f.status is FulfillmentStatus.OPEN
            ]
            assert sorted(unstarted) == sorted((x, plan.units_at(x)) for x in plan.shipments)
            before = state(oms, order.id)
            oms.reallocate(order.id)
            assert state(oms, order.id) == before
        check_books(oms)
    for order in orders:
        after = oms.get_order(order.id)
        for f in after.fulfillments:
            if f.id in started:
                assert f.status is started[f.id]
            assert f.status in (
                FulfillmentStatus.OPEN,
                FulfillmentStatus.ACCEPTED,
                FulfillmentStatus.WITHDRAWN,
            )
        units = sum(f.units for f in after.fulfillments if f.is_active)
        assert units == after.lines[0].allocated


def test_two_reallocations_in_a_row_change_nothing_the_second_time() -> None:
    """A plan that was just applied is the plan: reallocating again writes nothing."""
    oms = network(MemoryStore(), LowestCostPolicy())
    oms.receive("WH-1", "A", 1)
    oms.receive("WH-2", "A", 2)
    order = oms.place_order(draft(("A", 3)), allocate=True)
    oms.receive("WH-1", "A", 2)
    oms.reallocate(order.id)
    before = state(oms, order.id)
    oms.reallocate(order.id)
    assert state(oms, order.id) == before
    assert [e for e in oms.events() if isinstance(e, FulfillmentCreated)][-1].location_id == "WH-1"
