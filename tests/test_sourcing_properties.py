"""Property tests for every built-in sourcing policy, with the public strategies and checks.

Hard rules and determinism for all policies; FewestShipmentsPolicy against a brute-force
minimum number of locations; LowestCostPolicy against a brute-force optimum over every
possible allocation of units to locations.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Iterator

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omscore.geo import GeoPoint, distance_km
from omscore.ids import LocationId, Sku
from omscore.inventory import Location
from omscore.orders import DeliveryMethod
from omscore.sourcing import (
    AllocationPlan,
    CostModel,
    DeepestStockPolicy,
    FewestShipmentsPolicy,
    KindFilter,
    LowestCostPolicy,
    MaxDistanceFilter,
    NearestPolicy,
    NetworkSnapshot,
    PriorityPolicy,
    RequestLine,
    SourcingPolicy,
    SourcingRequest,
    StoreShipMinimum,
    plan_cost,
)
from omscore.testing import strategies as oms_st
from omscore.testing.invariants import check_plan, eligible

POLICIES: list[SourcingPolicy] = [
    PriorityPolicy(),
    NearestPolicy(),
    DeepestStockPolicy(),
    PriorityPolicy(single_location_first=True),
    NearestPolicy(single_location_first=True),
    DeepestStockPolicy(single_location_first=True),
    FewestShipmentsPolicy(),
    FewestShipmentsPolicy(max_shipments=1),
    LowestCostPolicy(CostModel()),
    LowestCostPolicy(CostModel(per_shipment=0.5, location_costs={"store": 0.8})),
]
Case = tuple[SourcingRequest, NetworkSnapshot]
# Where every location can serve, the units' source is the policy's choice alone: the
# default cases leave few locations eligible, so that few plans use two or more (1 in 300).
SMALL = oms_st.sourcing_cases(
    max_locations=4, skus=("A", "B"), usable=True, methods=(DeliveryMethod.SHIP,)
)
#: The default cases, which test eligibility, and cases where every location is usable.
MIXED = st.one_of(oms_st.sourcing_cases(), oms_st.sourcing_cases(usable=True))


def outcome(plan: AllocationPlan) -> tuple[object, ...]:
    """What must not depend on input order."""
    return (plan.assignments, dict(plan.unallocated), plan.trace, plan.cost)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: repr(p)[:60])
@given(case=MIXED)
def test_every_policy_keeps_the_hard_rules(policy: SourcingPolicy, case: Case) -> None:
    """Never beyond stock, never beyond the line, only eligible locations, as many units as
    the eligible locations hold (except when max_shipments limits the locations)."""
    request, snapshot = case
    plan = policy.plan(request, snapshot)
    limited = isinstance(policy, FewestShipmentsPolicy) and policy.max_shipments is not None
    check_plan(request, snapshot, plan, maximal=not limited)
    if limited:
        assert len(plan.shipments) <= 1


SINGLE_FIRST = [
    PriorityPolicy(single_location_first=True),
    NearestPolicy(single_location_first=True),
    DeepestStockPolicy(single_location_first=True),
]


@pytest.mark.parametrize("policy", SINGLE_FIRST, ids=lambda p: type(p).__name__)
@given(case=st.one_of(SMALL, oms_st.sourcing_cases(usable=True)))
def test_single_location_first_never_splits_what_one_location_covers(
    policy: SourcingPolicy, case: Case
) -> None:
    """Whenever an eligible location holds every SKU's demand, the plan is that one
    location, the best of them by the policy's ranking; the trace's rank 1 is in the plan
    whenever it could have shipped everything."""
    request, snapshot = case
    plan = policy.plan(request, snapshot)
    demand: Counter[str] = Counter()
    for line in request.lines:
        demand[line.sku] += line.quantity
    covering = [
        location.id
        for location in snapshot.locations
        if eligible(location, request, snapshot)
        and all(snapshot.available.get((location.id, Sku(k)), 0) >= n for k, n in demand.items())
    ]
    if covering:
        assert len(plan.shipments) == 1
        assert plan.units_unallocated == 0
        assert plan.shipments[0] in covering
        best = plan.ranking[0].location_id
        assert best not in covering or plan.shipments == (best,)


SHIP_COMPLETE = st.one_of(
    oms_st.sourcing_cases(ship_complete=True),
    oms_st.sourcing_cases(usable=True, ship_complete=True),
)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: repr(p)[:60])
@given(case=SHIP_COMPLETE)
def test_a_ship_complete_request_is_served_whole_from_one_location_or_not_at_all(
    policy: SourcingPolicy, case: Case
) -> None:
    """Every policy serves a ship-complete request from one location that holds all of it,
    whenever an eligible one does, and otherwise allocates nothing; the trace says why each
    location short of the whole was left out."""
    request, snapshot = case
    plan = policy.plan(request, snapshot)
    check_plan(request, snapshot, plan)
    demand: Counter[str] = Counter()
    for line in request.lines:
        demand[line.sku] += line.quantity
    for location in snapshot.locations:
        have = {sku: snapshot.available.get((location.id, Sku(sku)), 0) for sku in demand}
        if not eligible(location, request, snapshot) or max(have.values()) <= 0:
            continue
        whole = all(have[sku] >= n for sku, n in demand.items())
        excluded = plan.trace_of(location.id).excluded
        assert (excluded is None) == whole, (location.id, excluded)
        assert whole or "ships complete" in str(excluded)


FILTERS = (
    KindFilter(kinds={"warehouse", "store"}),
    StoreShipMinimum(2),
    MaxDistanceFilter(800),
)
FILTERED: list[SourcingPolicy] = [
    PriorityPolicy(filters=FILTERS),
    NearestPolicy(filters=FILTERS),
    FewestShipmentsPolicy(filters=FILTERS),
    LowestCostPolicy(filters=FILTERS),
]


@pytest.mark.parametrize("policy", FILTERED, ids=lambda p: p.name)
@given(case=MIXED)
def test_filters_only_narrow_what_the_hard_rules_allow(policy: SourcingPolicy, case: Case) -> None:
    """A policy with filters keeps every hard rule (a filter never lets back a location
    the rules left out) and uses no location a filter leaves out."""
    request, snapshot = case
    plan = policy.plan(request, snapshot)
    check_plan(request, snapshot, plan, maximal=False)
    kinds = {loc.id: loc.kind for loc in snapshot.locations}
    assert all(kinds[location_id] != "supplier" for location_id in plan.shipments)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: repr(p)[:60])
@given(case=MIXED, seed=st.integers(0, 2**32 - 1))
def test_plans_do_not_depend_on_input_order(policy: SourcingPolicy, case: Case, seed: int) -> None:
    """Shuffling the snapshot's locations and entries gives the same plan."""
    request, snapshot = case
    rng = random.Random(seed)
    locations = list(snapshot.locations)
    rng.shuffle(locations)
    entries = list(snapshot.available.items())
    rng.shuffle(entries)
    shuffled = NetworkSnapshot(locations, dict(entries), dict(snapshot.capacity))
    assert outcome(policy.plan(request, shuffled)) == outcome(policy.plan(request, snapshot))
    assert outcome(policy.plan(request, snapshot)) == outcome(policy.plan(request, snapshot))


def supplies(request: SourcingRequest, snapshot: NetworkSnapshot) -> dict[Location, dict[Sku, int]]:
    """Eligible locations and what each has of each requested SKU."""
    skus = {line.sku for line in request.lines}
    found: dict[Location, dict[Sku, int]] = {}
    for location in snapshot.locations:
        if not eligible(location, request, snapshot):
            continue
        stock = {s: snapshot.available.get((location.id, s), 0) for s in skus}
        if any(stock.values()):
            found[location] = stock
    return found


def targets(request: SourcingRequest, found: dict[Location, dict[Sku, int]]) -> dict[Sku, int]:
    """The most that can be allocated per SKU."""
    demand: dict[Sku, int] = {}
    for line in request.lines:
        demand[line.sku] = demand.get(line.sku, 0) + line.quantity
    return {s: min(d, sum(stock[s] for stock in found.values())) for s, d in demand.items()}


@pytest.mark.parametrize("bound", [None, 2])
@given(case=SMALL)
def test_fewest_shipments_matches_a_brute_force_minimum(bound: int | None, case: Case) -> None:
    """No covering set of locations is smaller than the one the policy uses (when one
    within ``max_shipments`` exists)."""
    request, snapshot = case
    found = supplies(request, snapshot)
    goal = targets(request, found)
    smallest = next(
        size
        for size in range(len(found) + 1)
        for subset in itertools.combinations(found, size)
        if all(sum(found[loc][s] for loc in subset) >= q for s, q in goal.items())
    )
    plan = FewestShipmentsPolicy(max_shipments=bound).plan(request, snapshot)
    if bound is None or smallest <= bound:
        assert len(plan.shipments) == smallest
    else:
        assert len(plan.shipments) <= bound


def unit_distance(location: Location, request: SourcingRequest) -> float:
    """Kilometres from ``location`` to the request's destination (0 without one)."""
    if request.destination is None:
        return 0.0
    if location.geo is None:
        return math.inf
    return distance_km(location.geo, request.destination)


def nearest_first(
    subset: tuple[Location, ...],
    found: dict[Location, dict[Sku, int]],
    goal: dict[Sku, int],
    request: SourcingRequest,
) -> float:
    """Unit-kilometres of filling ``goal`` from ``subset``, nearest location first."""
    ordered = sorted(subset, key=lambda loc: unit_distance(loc, request))
    total = 0.0
    for sku, quantity in goal.items():
        need = quantity
        for location in ordered:
            take = min(need, found[location][sku])
            if take:
                total += take * unit_distance(location, request)
                need -= take
    return total


@given(
    case=oms_st.sourcing_cases(
        max_locations=6, skus=("A", "B"), usable=True, methods=(DeliveryMethod.SHIP,)
    )
)
def test_fewest_shipments_breaks_ties_by_the_least_unit_distance(case: Case) -> None:
    """Among the smallest covering sets, the plan's units travel the fewest kilometres."""
    request, snapshot = case
    found = supplies(request, snapshot)
    goal = targets(request, found)
    plan = FewestShipmentsPolicy().plan(request, snapshot)
    by_id = {location.id: location for location in found}
    travelled = sum(
        a.quantity * unit_distance(by_id[a.location_id], request) for a in plan.assignments
    )
    least = min(
        nearest_first(subset, found, goal, request)
        for subset in itertools.combinations(found, len(plan.shipments))
        if all(sum(found[loc][s] for loc in subset) >= q for s, q in goal.items())
    )
    assert travelled == pytest.approx(least, abs=1e-6)


def splits(total: int, caps: list[int]) -> Iterator[tuple[int, ...]]:
    """Every way to put ``total`` units on locations with these caps."""
    if not caps:
        if total == 0:
            yield ()
        return
    for first in range(min(total, caps[0]) + 1):
        for rest in splits(total - first, caps[1:]):
            yield (first, *rest)


def brute_force_cost(
    request: SourcingRequest, snapshot: NetworkSnapshot, model: CostModel
) -> float:
    """The least cost over every allocation that allocates the most units."""
    found = supplies(request, snapshot)
    goal = targets(request, found)
    locations = sorted(found, key=lambda loc: loc.id)

    def unit_cost(loc: Location) -> float:
        d = 0.0
        if request.destination is not None and loc.geo is not None:
            d = distance_km(loc.geo, request.destination)
        return model.unit_cost(loc, d)

    costs = [unit_cost(loc) for loc in locations]
    per_sku = [list(splits(q, [found[loc][s] for loc in locations])) for s, q in goal.items()]
    best = float("inf")
    for combo in itertools.product(*per_sku):
        used = [any(split[i] for split in combo) for i in range(len(locations))]
        cost = model.per_shipment * sum(used) + sum(
            split[i] * costs[i] for split in combo for i in range(len(locations))
        )
        best = min(best, cost)
    return 0.0 if best == float("inf") else best


@pytest.mark.parametrize(
    "model",
    [
        CostModel(),
        CostModel(per_shipment=0.3, per_unit_km=0.01),
        CostModel(per_shipment=2.0, location_costs={"store": 1.5, "supplier": 0.2}),
    ],
    ids=["default", "cheap-shipments", "handling"],
)
@settings(max_examples=40)
@given(case=SMALL.filter(lambda c: sum(line.quantity for line in c[0].lines) <= 8))
def test_lowest_cost_is_exactly_optimal_on_small_instances(model: CostModel, case: Case) -> None:
    """Equal to the brute-force optimum over every allocation of the units."""
    request, snapshot = case
    plan = LowestCostPolicy(model).plan(request, snapshot)
    assert plan.cost is not None
    assert plan.cost == pytest.approx(brute_force_cost(request, snapshot, model), abs=1e-9)


@st.composite
def thin_stock(draw: st.DrawFn) -> Case:
    """Three to five warehouses holding one or two units each, and an order that no two of
    them can fill: every plan ships from three or more (which SMALL rarely draws)."""
    held = draw(st.lists(st.integers(min_value=1, max_value=2), min_size=3, max_size=5))
    two_most = sum(sorted(held)[-2:])
    quantity = draw(st.integers(min_value=two_most + 1, max_value=max(two_most + 1, sum(held))))
    points = st.builds(
        GeoPoint,
        st.floats(min_value=45, max_value=55),
        st.floats(min_value=5, max_value=15),
    )
    locations = [
        Location(id=f"W{i}", kind="warehouse", geo=draw(points), capabilities={"ship"})
        for i in range(len(held))
    ]
    available = {(LocationId(loc.id), Sku("A")): n for loc, n in zip(locations, held, strict=True)}
    request = SourcingRequest([RequestLine("L1", "A", quantity)], "ship", destination=draw(points))
    return request, NetworkSnapshot(locations, available)


@pytest.mark.parametrize(
    "model",
    [CostModel(), CostModel(per_shipment=0.3, per_unit_km=0.01)],
    ids=["default", "cheap-shipments"],
)
@given(case=thin_stock())
def test_plans_of_three_or_more_shipments_are_optimal(model: CostModel, case: Case) -> None:
    """Where only three or more locations fill the order, the lowest cost plan still costs
    the brute-force optimum, and the fewest shipments plan uses the fewest locations."""
    request, snapshot = case
    plan = LowestCostPolicy(model).plan(request, snapshot)
    assert plan.cost == pytest.approx(brute_force_cost(request, snapshot, model), abs=1e-9)
    held = sorted(snapshot.available.values(), reverse=True)
    need = min(request.lines[0].quantity, sum(held))
    fewest = next(n for n in range(1, len(held) + 1) if sum(held[:n]) >= need)
    assert fewest >= 3
    assert len(FewestShipmentsPolicy().plan(request, snapshot).shipments) == fewest


@given(case=st.one_of(oms_st.sourcing_cases(max_locations=8), SMALL))
def test_the_lowest_cost_plan_never_costs_more_than_the_others(case: Case) -> None:
    """Under its own cost model, no built-in policy's plan is cheaper."""
    request, snapshot = case
    model = CostModel()
    best = LowestCostPolicy(model).plan(request, snapshot)
    for other in (PriorityPolicy(), NearestPolicy(), FewestShipmentsPolicy()):
        plan = other.plan(request, snapshot)
        assert best.cost is not None
        assert best.cost <= plan_cost(plan, snapshot, request, model) + 1e-9


def test_the_search_is_bounded_on_a_large_network() -> None:
    """200 locations each holding a little of six SKUs: the plan stays within the budget,
    keeps the rules, and says it fell back or stopped at the bound."""
    rng = random.Random(3)
    locations = [
        Location(
            id=f"L{i:03d}",
            kind="warehouse",
            geo=GeoPoint(50 + rng.random(), 10 + rng.random()),
            capabilities={"ship"},
            priority=i % 7,
        )
        for i in range(200)
    ]
    skus = [f"S{i}" for i in range(6)]
    available = {
        (LocationId(loc.id), Sku(s)): 1 for loc in locations for s in skus if rng.random() < 0.5
    }
    snapshot = NetworkSnapshot(locations, available)
    request = SourcingRequest(
        [RequestLine(f"L{i}", s, 4) for i, s in enumerate(skus)],
        "ship",
        destination=GeoPoint(50.5, 10.5),
    )
    for policy in (
        FewestShipmentsPolicy(max_combinations=500),
        LowestCostPolicy(max_combinations=500),
    ):
        plan = policy.plan(request, snapshot)
        check_plan(request, snapshot, plan)
        assert "budget" in plan.search or "greedy" in plan.search
        assert plan.search_steps <= 500


def test_policy_settings_change_plans_not_rules() -> None:
    """A policy evolved with other settings is still a policy (attrs value objects)."""
    policy = attrs.evolve(FewestShipmentsPolicy(), max_shipments=2)
    assert policy.max_shipments == 2


@given(oms_st.sourcing_cases())
def test_the_public_strategies_draw_well_formed_cases(case: Case) -> None:
    """A pickup names a location of the network and has no address; any other delivery
    names no pickup location; exclusions and stock are of the network's locations."""
    request, snapshot = case
    ids = {loc.id for loc in snapshot.locations}
    if request.delivery is DeliveryMethod.PICKUP:
        assert request.pickup_location in ids
        assert request.destination is None
    else:
        assert request.pickup_location is None
    assert request.exclude <= ids
    assert {location_id for location_id, _ in snapshot.available} <= ids
    assert set(snapshot.capacity) <= ids
    assert all(units > 0 for units in snapshot.available.values())
