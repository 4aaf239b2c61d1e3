"""The public checkers catch what they promise to catch.

``check_plan`` and ``check_books`` are what users prove their own policies and stores
with; every other test calls them on correct plans and books, where a checker that never
fires would pass too. Here each rule is broken on purpose, one at a time, and the checker
must name it (and, where the damage touches one rule only, nothing else). Then buggy
policies of the kinds people write are run on the public strategies: Hypothesis must find
a case that ``check_plan`` rejects, and the correct policy must pass that same case.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, find, settings

from omscore import OMS
from omscore._values import evolved
from omscore.events import OrderPlaced
from omscore.geo import GeoPoint
from omscore.ids import LineId, LocationId, Sku
from omscore.inventory import (
    Capability,
    Location,
    LocationKind,
    LocationLoad,
    MovementKind,
    StockMovement,
)
from omscore.orders import DeliveryMethod, Order
from omscore.ports import UnitOfWork
from omscore.sourcing import (
    AllocationPlan,
    Assignment,
    NetworkSnapshot,
    PriorityPolicy,
    RequestLine,
    SourcingRequest,
)
from omscore.testing import strategies as oms_st
from omscore.testing.invariants import (
    BooksViolation,
    PlanViolation,
    check_books,
    check_plan,
    eligible,
)

from .conftest import draft, warehouse

BERLIN = GeoPoint(52.53, 13.38)
CENTRE = GeoPoint(52.5, 13.4)
S1 = Sku("S1")
L1 = LineId("L1")


def _location(
    location_id: str,
    *capabilities: Capability,
    active: bool = True,
    geo: GeoPoint = CENTRE,
) -> Location:
    kind = LocationKind.STORE if location_id.startswith("ST") else LocationKind.WAREHOUSE
    return Location(
        id=location_id,
        kind=kind,
        geo=geo,
        capabilities=set(capabilities or {Capability.SHIP}),
        active=active,
    )


#: WH-A and WH-B may ship; WH-D is inactive, WH-X excluded, ST-C only hands out pickups,
#: WH-F has no capacity left today. All have S1.
SNAPSHOT = NetworkSnapshot(
    [
        _location("WH-A"),
        _location("WH-B"),
        _location("WH-D", active=False),
        _location("WH-X"),
        _location("ST-C", Capability.PICKUP),
        _location("WH-F"),
    ],
    {
        (LocationId("WH-A"), S1): 5,
        (LocationId("WH-B"), S1): 3,
        (LocationId("WH-D"), S1): 9,
        (LocationId("WH-X"), S1): 9,
        (LocationId("ST-C"), S1): 4,
        (LocationId("WH-F"), S1): 9,
    },
    {LocationId("WH-F"): 0},
)


def _request(*lines: tuple[str, int]) -> SourcingRequest:
    return SourcingRequest(
        lines=[RequestLine(line_id, S1, quantity) for line_id, quantity in lines],
        delivery=DeliveryMethod.SHIP,
        destination=BERLIN,
        exclude={"WH-X"},
    )


REQUEST = _request(("L1", 6))


def _assignment(location_id: str, quantity: int, line_id: str = "L1") -> Assignment:
    return Assignment(LocationId(location_id), LineId(line_id), S1, quantity)


def _tampered(
    plan: AllocationPlan,
    assignments: list[Assignment],
    unallocated: dict[str, int] | None = None,
    **details: Any,
) -> AllocationPlan:
    """``plan`` with other assignments (and unallocated units, and trace details)."""
    return AllocationPlan(
        policy=plan.policy,
        assignments=tuple(assignments),
        unallocated={LineId(k): v for k, v in (unallocated or {}).items()},
        details=attrs.evolve(plan.details, **details),
    )


def _violations(
    request: SourcingRequest, snapshot: NetworkSnapshot, plan: AllocationPlan, **options: bool
) -> list[str]:
    return _named(lambda: check_plan(request, snapshot, plan, **options), "plan breaks the rules:")


def _named(check: Callable[[], None], heading: str) -> list[str]:
    """What ``check`` names as broken (nothing if it passes); its message must list it."""
    try:
        check()
    except (PlanViolation, BooksViolation) as violation:
        problems, message = violation.violations, str(violation)
    else:
        return []
    assert message == heading + "\n  " + "\n  ".join(problems)
    return problems


@pytest.fixture
def plan() -> AllocationPlan:
    """The correct plan: 5 from WH-A, 1 from WH-B."""
    correct = PriorityPolicy().plan(REQUEST, SNAPSHOT)
    assert correct.assignments == (_assignment("WH-A", 5), _assignment("WH-B", 1))
    assert _violations(REQUEST, SNAPSHOT, correct) == []
    return correct


def test_an_assignment_below_one_unit_is_named(plan: AllocationPlan) -> None:
    zero = _assignment("WH-A", 0)
    broken = _tampered(plan, [*plan.assignments, zero])
    assert _violations(REQUEST, SNAPSHOT, broken) == [f"assignment {zero} has a quantity below 1"]


@pytest.mark.parametrize(
    "location_id",
    ["WH-D", "WH-X", "ST-C", "WH-F"],
    ids=["inactive", "excluded", "lacks the capability", "no capacity left"],
)
def test_a_location_that_may_not_serve_is_named(plan: AllocationPlan, location_id: str) -> None:
    wrong = _assignment(location_id, 1)
    broken = _tampered(plan, [_assignment("WH-A", 5), wrong])
    assert f"assignment {wrong} uses {location_id}, which may not serve it" in _violations(
        REQUEST, SNAPSHOT, broken
    )


def test_a_location_outside_the_snapshot_is_named(plan: AllocationPlan) -> None:
    stray = _assignment("WH-Z", 1)
    found = _violations(REQUEST, SNAPSHOT, _tampered(plan, [_assignment("WH-A", 5), stray]))
    assert f"assignment {stray} names a location not in the snapshot" in found
    assert "1 of S1 assigned at WH-Z, which has 0" in found


def test_units_beyond_a_locations_stock_are_named_pooled_over_lines(
    plan: AllocationPlan,
) -> None:
    """Two lines of one SKU take 3 each at WH-A, which has 5: each line alone fits."""
    request = _request(("L1", 3), ("L2", 3))
    broken = _tampered(plan, [_assignment("WH-A", 3, "L1"), _assignment("WH-A", 3, "L2")])
    assert _violations(request, SNAPSHOT, broken) == ["6 of S1 assigned at WH-A, which has 5"]


def test_units_that_do_not_add_up_to_the_line_are_named(plan: AllocationPlan) -> None:
    broken = _tampered(plan, list(plan.assignments), {"L1": 1})
    assert _violations(REQUEST, SNAPSHOT, broken) == ["line L1: 6 assigned + 1 unallocated != 6"]


def test_assignments_for_lines_not_asked_for_are_named(plan: AllocationPlan) -> None:
    broken = _tampered(plan, [*plan.assignments, _assignment("WH-B", 1, "L9")])
    assert _violations(REQUEST, SNAPSHOT, broken, maximal=False) == [
        "assignments for lines not in the request: ['L9']"
    ]


def test_a_plan_that_leaves_eligible_stock_unused_is_named_unless_not_asked(
    plan: AllocationPlan,
) -> None:
    """Eligible supply is WH-A's 5 and WH-B's 3: the others may not serve."""
    short = _tampered(plan, [_assignment("WH-A", 5)], {"L1": 1})
    assert _violations(REQUEST, SNAPSHOT, short) == [
        "S1: 5 allocated, but 6 could be (demand 6, eligible supply 8)"
    ]
    assert _violations(REQUEST, SNAPSHOT, short, maximal=False) == []


def test_a_trace_without_every_location_is_named(plan: AllocationPlan) -> None:
    ids = tuple(loc_id for loc_id in plan.location_ids if loc_id != "WH-B")
    broken = _tampered(plan, list(plan.assignments), location_ids=ids)
    assert _violations(REQUEST, SNAPSHOT, broken) == [
        "the trace does not have exactly one entry per snapshot location",
        "the trace marks ['WH-A'] used, the plan uses ['WH-A', 'WH-B']",
    ]


def test_a_used_location_the_trace_counts_as_left_out_is_named(plan: AllocationPlan) -> None:
    ranking = tuple(r for r in plan.ranking if r.location_id != "WH-B")
    broken = _tampered(plan, list(plan.assignments), ranking=ranking)
    assert _violations(REQUEST, SNAPSHOT, broken) == [
        "the trace marks ['WH-A'] used, the plan uses ['WH-A', 'WH-B']"
    ]


# --- eligibility, recomputed independently of the engine -----------------------------------

NEAR = GeoPoint(52.60, 13.40)  # about 8 km from BERLIN
FAR = GeoPoint(53.55, 9.99)  # Hamburg, about 255 km


@pytest.mark.parametrize(
    ("location", "method", "destination", "options", "expected"),
    [
        (_location("ST-1", Capability.SAME_DAY, geo=NEAR), "same_day", BERLIN, {}, True),
        (_location("ST-1", Capability.SAME_DAY, geo=FAR), "same_day", BERLIN, {}, False),
        (
            _location("ST-1", Capability.SAME_DAY, geo=FAR),
            "same_day",
            BERLIN,
            {"same_day_radius_km": 300.0},
            True,
        ),
        (
            _location("ST-1", Capability.SAME_DAY, geo=BERLIN),
            "same_day",
            BERLIN,
            {"same_day_radius_km": 0.0},
            True,
        ),
        (_location("ST-1", Capability.SAME_DAY, geo=FAR), "same_day", None, {}, True),
        (_location("ST-1", Capability.SHIP, geo=NEAR), "same_day", BERLIN, {}, False),
        (_location("ST-1", Capability.PICKUP), "pickup", None, {}, True),
        (_location("ST-1", Capability.SHIP), "pickup", None, {}, False),
        (_location("WH-1", Capability.SHIP), "pickup", None, {}, False),
        (_location("WH-1", Capability.SHIP), "pickup", None, {"allow_ship_to_store": True}, True),
        (
            _location("WH-1", Capability.PICKUP),
            "pickup",
            None,
            {"allow_ship_to_store": True},
            False,
        ),
        (_location("WH-1", Capability.PICKUP), "ship", BERLIN, {}, False),
    ],
    ids=[
        "same-day within the radius",
        "same-day beyond the radius",
        "same-day within a wider radius",
        "same-day on the radius itself",
        "same-day without a destination",
        "same-day without the capability",
        "the pickup store",
        "the pickup store without the pickup capability",
        "another location for a pickup",
        "another location ships to the store when allowed",
        "another location that cannot ship to the store",
        "ship without the capability",
    ],
)
def test_eligibility_follows_the_delivery_method(
    location: Location,
    method: str,
    destination: GeoPoint | None,
    options: dict[str, bool | float],
    expected: bool,
) -> None:
    request = SourcingRequest(
        lines=[RequestLine("L1", "S1", 1)],
        delivery=method,
        destination=destination,
        pickup_location=LocationId("ST-1") if method == "pickup" else None,
    )
    snapshot = NetworkSnapshot([location], {(location.id, S1): 1})
    assert eligible(location, request, snapshot, **options) is expected  # type: ignore[arg-type]


# --- buggy policies, found by Hypothesis -------------------------------------------------------

Case = tuple[SourcingRequest, NetworkSnapshot]
Planner = Callable[[SourcingRequest, NetworkSnapshot], AllocationPlan]
CORRECT = PriorityPolicy()


def _ignores_exclusions(request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
    return CORRECT.plan(attrs.evolve(request, exclude=frozenset()), snapshot)


def _ignores_capacity(request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
    return CORRECT.plan(request, attrs.evolve(snapshot, capacity={}))


def _never_splits_a_line(request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
    """Each line's units all from the first location the correct plan used for it."""
    plan = CORRECT.plan(request, snapshot)
    first: dict[LineId, Assignment] = {}
    for a in plan.assignments:
        if a.line_id in first:
            kept = first[a.line_id]
            first[a.line_id] = attrs.evolve(kept, quantity=kept.quantity + a.quantity)
        else:
            first[a.line_id] = a
    return attrs.evolve(plan, assignments=tuple(first.values()), details=plan.details)


def _one_shipment_only(request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
    """Only the first location's units; the rest left unallocated."""
    plan = CORRECT.plan(request, snapshot)
    kept = [a for a in plan.assignments if a.location_id == plan.assignments[0].location_id]
    unallocated = {line.line_id: line.quantity for line in request.lines}
    for a in kept:
        unallocated[a.line_id] -= a.quantity
    return attrs.evolve(
        plan,
        assignments=tuple(kept),
        unallocated={k: v for k, v in unallocated.items() if v},
        details=plan.details,
    )


SEARCH = settings(
    max_examples=5_000,
    database=None,
    derandomize=True,
    phases=[Phase.generate],  # the first case found is enough: no need to shrink it
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize(
    ("buggy", "named", "usable"),
    [
        (_ignores_exclusions, "which may not serve it", False),
        (_ignores_capacity, "which may not serve it", False),
        (_never_splits_a_line, "which has", True),
        (_one_shipment_only, "could be", True),
    ],
    ids=["ignores exclusions", "ignores capacity", "never splits a line", "one shipment only"],
)
def test_hypothesis_and_check_plan_catch_a_buggy_policy(
    buggy: Planner, named: str, usable: bool
) -> None:
    """Eligibility bugs need the default cases, where many locations may not serve; bugs
    in splitting need ``usable`` cases, where plans of several locations are common."""

    def rejected(case: Case) -> bool:
        return any(named in v for v in _violations(*case, buggy(*case)))

    case = find(oms_st.sourcing_cases(usable=usable), rejected, settings=SEARCH)
    assert _violations(*case, CORRECT.plan(*case)) == []


# --- the books ------------------------------------------------------------------------------

T = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def _books_violations(oms: OMS) -> list[str]:
    return _named(lambda: check_books(oms), "the books disagree:")


def _damage(oms: OMS, change: Callable[[UnitOfWork], None]) -> None:
    """Write straight to the store, past every rule of the service."""
    with oms.store.unit_of_work() as uow:
        change(uow)
        uow.commit()


def _put_back(order: Order) -> Callable[[UnitOfWork], None]:
    """Store ``order`` as it was, over whatever the service made of it since."""

    def put(uow: UnitOfWork) -> None:
        uow.orders.get(order.id)
        uow.orders.put(order)

    return put


@pytest.fixture
def books(make_oms: Callable[..., OMS]) -> OMS:
    """WH-1 with 10 of A, and order O-1 for 2 of A, allocated."""
    oms = make_oms()
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 10)
    oms.allocate(oms.place_order(draft(("A", 2))).id)
    assert _books_violations(oms) == []
    return oms


def _change_level(uow: UnitOfWork, **changes: int) -> None:
    item = uow.inventory.get(Sku("A"))
    assert item is not None
    level = item.levels[LocationId("WH-1")]
    uow.inventory.put(evolved(item, levels={LocationId("WH-1"): evolved(level, **changes)}))


def test_a_level_the_ledger_does_not_explain_is_named(books: OMS) -> None:
    _damage(books, lambda uow: _change_level(uow, on_hand=11))
    found = _books_violations(books)
    assert len(found) == 1
    assert found[0].startswith("reconcile: ")
    assert "on_hand" in found[0]


def test_a_level_lost_while_its_ledger_stays_is_named(books: OMS) -> None:
    """A level row gone: the ledger still says WH-1 has 10 of A, 2 allocated."""

    def drop_level(uow: UnitOfWork) -> None:
        item = uow.inventory.get(Sku("A"))
        assert item is not None
        uow.inventory.put(evolved(item, levels={}))

    _damage(books, drop_level)
    assert [(d.location_id, d.field, d.level, d.expected) for d in books.reconcile()] == [
        ("WH-1", "on_hand", 0, 10),
        ("WH-1", "allocated", 0, 2),
    ]


def test_more_committed_than_on_hand_is_named(books: OMS) -> None:
    """On hand goes to 3 with the ledger's say-so: under the 2 allocated and 2 reserved
    together, though above either alone."""
    books.reserve("A", 2, ttl=timedelta(minutes=30), key="cart")

    def shrink(uow: UnitOfWork) -> None:
        _change_level(uow, on_hand=3)
        adjustment = StockMovement(
            Sku("A"), LocationId("WH-1"), MovementKind.ADJUSTMENT, -7, 0, "damage test", T
        )
        uow.inventory.append_movements([adjustment])

    _damage(books, shrink)
    level = books.stock("WH-1", "A")
    assert _books_violations(books) == [f"A at WH-1: {level} commits more than on hand"]


def test_an_open_unit_neither_held_nor_backordered_is_named(books: OMS) -> None:
    order_id = books.place_order(draft(("A", 1))).id

    def grow_the_line(uow: UnitOfWork) -> None:
        order = uow.orders.get(order_id)
        assert order is not None
        line = order.lines[0]
        uow.orders.put(evolved(order, lines=(evolved(line, quantity=2),)))

    _damage(books, grow_the_line)
    assert _books_violations(books) == [
        f"order {order_id} line {order_id}-1: 2 open, 1 held or backordered"
    ]


def test_allocated_stock_the_orders_do_not_account_for_is_named(
    make_oms: Callable[..., OMS],
) -> None:
    oms = make_oms()
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 10)
    placed = oms.place_order(draft(("A", 2)))
    oms.allocate(placed.id)
    _damage(oms, _put_back(placed))
    assert _books_violations(oms) == [
        f"order {placed.id} line {placed.id}-1: 2 open, 0 held or backordered",
        "A: 2 allocated in stock and 0 in transit to stores, 0 on order lines",
    ]


def test_a_shipment_the_orders_do_not_account_for_is_named(books: OMS) -> None:
    placed = next(e for e in books.events() if isinstance(e, OrderPlaced))
    order = books.get_order(placed.order_id)
    fulfillment_id = order.fulfillments[0].id
    for step in (books.accept_fulfillment, books.pick, books.pack):
        step(fulfillment_id)
    books.ship(fulfillment_id, tracking="T-1")
    _damage(books, _put_back(order))
    assert _books_violations(books) == [
        "A: 0 allocated in stock and 0 in transit to stores, 2 on order lines",
        "A: 2 shipped in the ledger, 0 shipped or delivered on order lines",
    ]


def test_a_capacity_count_the_orders_do_not_account_for_is_named(books: OMS) -> None:
    """O-1 was taken before WH-1 had a cap; the next order is the one it counted. A
    counter that says 3 is named; one that agrees is not."""
    books.update_location("WH-1", daily_capacity=5)
    second = books.allocate(books.place_order(draft(("A", 1))).id)
    assert second.shipments == ("WH-1",)
    assert _books_violations(books) == []
    today = books.clock.now().date()

    def overcount(uow: UnitOfWork) -> None:
        load = uow.loads.get(LocationId("WH-1"))
        assert load is not None
        uow.loads.put(LocationLoad(load.location_id, today, 3, load.version))

    _damage(books, overcount)
    assert _books_violations(books) == ["WH-1: 3 fulfilment orders counted today, 1 on orders"]
