"""Sourcing behaviour: the policies' choices, filters, traces, routing and configuration."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omscore import GeoPoint, Location
from omscore.errors import InvalidSourcingConfig, InvalidSourcingRequest, UnknownLocation
from omscore.ids import LocationId, Sku
from omscore.sourcing import (
    CostModel,
    DeepestStockPolicy,
    DeliveryMethod,
    FewestShipmentsPolicy,
    KindFilter,
    LowestCostPolicy,
    MaxDistanceFilter,
    NearestPolicy,
    NetworkSnapshot,
    PriorityPolicy,
    RequestLine,
    Route,
    RoutedPolicy,
    SourcingPolicy,
    SourcingRequest,
    StoreShipMinimum,
    policy_from_config,
)

BERLIN = GeoPoint(52.52, 13.40)
HAMBURG = GeoPoint(53.55, 9.99)
MUNICH = GeoPoint(48.14, 11.58)


def loc(location_id: str, kind: str, geo: GeoPoint, caps: set[str], priority: int = 5) -> Location:
    """A location with plain-string settings."""
    return Location(id=location_id, kind=kind, geo=geo, capabilities=caps, priority=priority)


NETWORK = [
    loc("WH-MUC", "warehouse", MUNICH, {"ship"}, priority=1),
    loc("WH-HAM", "warehouse", HAMBURG, {"ship"}, priority=2),
    loc("ST-BER", "store", GeoPoint(52.50, 13.35), {"ship", "pickup", "same_day"}),
    loc("SUP-1", "supplier", MUNICH, {"ship"}, priority=9),
]


def snapshot(stock: dict[tuple[str, str], int], **capacity: int) -> NetworkSnapshot:
    """The network with ``{(location, sku): units}``."""
    return NetworkSnapshot(
        NETWORK,
        {(LocationId(a), Sku(b)): n for (a, b), n in stock.items()},
        {LocationId(k.replace("_", "-")): v for k, v in capacity.items()},
    )


def request(*lines: tuple[str, int], method: str = "ship", **kwargs: object) -> SourcingRequest:
    """A request to Berlin unless told otherwise."""
    kwargs.setdefault("destination", BERLIN)
    return SourcingRequest(
        [RequestLine(f"L{i}", sku, q) for i, (sku, q) in enumerate(lines, 1)],
        method,
        **kwargs,  # type: ignore[arg-type]
    )


def test_priority_splits_where_a_single_location_could_ship_everything() -> None:
    """The baseline splits an order the warehouse of priority 1 cannot fill alone."""
    stock = {("WH-MUC", "A"): 1, ("WH-MUC", "B"): 0, ("WH-HAM", "A"): 5, ("WH-HAM", "B"): 5}
    plan = PriorityPolicy().plan(request(("A", 2), ("B", 1)), snapshot(stock))
    assert plan.shipments == ("WH-MUC", "WH-HAM")
    fewest = FewestShipmentsPolicy().plan(request(("A", 2), ("B", 1)), snapshot(stock))
    assert fewest.shipments == ("WH-HAM",)


def test_nearest_takes_the_closest_location_first() -> None:
    """Berlin's store before Hamburg before Munich."""
    stock = {("WH-MUC", "A"): 9, ("WH-HAM", "A"): 9, ("ST-BER", "A"): 1}
    plan = NearestPolicy().plan(request(("A", 3)), snapshot(stock))
    assert [(a.location_id, a.quantity) for a in plan.assignments] == [("ST-BER", 1), ("WH-HAM", 2)]


def test_deepest_stock_draws_from_the_deepest_location_first() -> None:
    """Depth counts every unit a location has of the requested SKUs, not only what the
    order asks: the store with 12 hats and 1 scarf beats Munich's 4 and 4, then Hamburg
    (priority 2) and Munich (priority 1) with the same depth go by priority."""
    stock = {
        ("ST-BER", "HAT"): 12,
        ("ST-BER", "SCARF"): 1,
        ("WH-MUC", "HAT"): 4,
        ("WH-MUC", "SCARF"): 4,
        ("WH-HAM", "HAT"): 8,
    }
    plan = DeepestStockPolicy().plan(request(("HAT", 2), ("SCARF", 2)), snapshot(stock))
    assert [(a.location_id, a.sku, a.quantity) for a in plan.assignments] == [
        ("ST-BER", "HAT", 2),
        ("ST-BER", "SCARF", 1),
        ("WH-MUC", "SCARF", 1),
    ]
    assert [r.location_id for r in plan.ranking] == ["ST-BER", "WH-MUC", "WH-HAM"]
    assert plan.search == "greedy"
    tie = {("WH-HAM", "HAT"): 8, ("WH-MUC", "HAT"): 8}
    assert DeepestStockPolicy().plan(request(("HAT", 1)), snapshot(tie)).shipments == ("WH-MUC",)


@pytest.mark.parametrize("ranked", [PriorityPolicy, NearestPolicy, DeepestStockPolicy])
def test_single_location_first_ships_whole_from_the_best_ranked_location_that_can(
    ranked: type[PriorityPolicy | NearestPolicy | DeepestStockPolicy],
) -> None:
    """The split the greedy rule makes (Munich ranks first by priority, Berlin's store by
    distance and depth, and neither has the B) gives way to the one location that covers
    the order; with none that does, the policy splits as before."""
    stock = {
        ("WH-MUC", "A"): 1,
        ("ST-BER", "A"): 30,
        ("WH-HAM", "A"): 5,
        ("WH-HAM", "B"): 5,
    }
    order = request(("A", 2), ("B", 1))
    assert len(ranked().plan(order, snapshot(stock)).shipments) == 2
    plan = ranked(single_location_first=True).plan(order, snapshot(stock))
    assert plan.shipments == ("WH-HAM",)
    assert plan.search == "one location of 1 covers all, the best ranked"
    stock[("WH-HAM", "A")] = 1
    assert len(ranked(single_location_first=True).plan(order, snapshot(stock)).shipments) == 2


def test_lowest_cost_weighs_a_shipment_against_distance() -> None:
    """Per-shipment cost makes one parcel from far cheaper than two from near; a tiny
    per-shipment cost makes the near split cheaper."""
    stock = {("ST-BER", "A"): 1, ("WH-MUC", "A"): 5}
    one_parcel = LowestCostPolicy(CostModel()).plan(request(("A", 3)), snapshot(stock))
    assert one_parcel.shipments == ("WH-MUC",)
    cheap_parcels = LowestCostPolicy(CostModel(per_shipment=0.01, per_unit_km=0.01))
    split = cheap_parcels.plan(request(("A", 3)), snapshot(stock))
    assert set(split.shipments) == {"ST-BER", "WH-MUC"}


def test_a_dear_kind_does_not_make_one_far_location_look_cheapest() -> None:
    """Stores cost 50 a unit to pick, but none is in play: one far warehouse holding the
    whole order (800 km: 1 + 2 x 8 = 17) loses to two near ones holding a SKU each
    (10 km: 2 x 1 + 2 x 0.1 = 2.2). Only the cheapest handling may bound what a split
    could cost."""
    held = {"N-A": (0.09, {"A": 1}), "N-B": (0.09, {"B": 1}), "FAR": (7.2, {"A": 1, "B": 1})}
    network = [loc(x, "warehouse", GeoPoint(0, d), {"ship"}) for x, (d, _) in held.items()]
    stock = {
        (LocationId(x), Sku(sku)): n for x, (_, units) in held.items() for sku, n in units.items()
    }
    model = CostModel(per_shipment=1, per_unit=0, per_unit_km=0.01, location_costs={"store": 50})
    plan = LowestCostPolicy(model).plan(
        request(("A", 1), ("B", 1), destination=GeoPoint(0, 0)), NetworkSnapshot(network, stock)
    )
    assert sorted(plan.shipments) == ["N-A", "N-B"]
    assert plan.cost == pytest.approx(2.2, abs=0.01)


def test_a_deep_cheap_location_does_not_make_the_search_stop_early() -> None:
    """N-A holds 100 of A, the order wants 1: what the search counts as the least a split
    could pay for its units is that one unit (0.1), not the hundred held there (10), so
    it looks at pairs. Two near parcels (2.2) beat one from 300 km (1 + 2 x 3 = 7)."""
    held = {"N-A": (0.09, {"A": 100}), "N-B": (0.09, {"B": 1}), "FAR": (2.7, {"A": 1, "B": 1})}
    network = [loc(x, "warehouse", GeoPoint(0, d), {"ship"}) for x, (d, _) in held.items()]
    stock = {
        (LocationId(x), Sku(sku)): n for x, (_, units) in held.items() for sku, n in units.items()
    }
    model = CostModel(per_shipment=1, per_unit=0, per_unit_km=0.01)
    plan = LowestCostPolicy(model).plan(
        request(("A", 1), ("B", 1), destination=GeoPoint(0, 0)), NetworkSnapshot(network, stock)
    )
    assert sorted(plan.shipments) == ["N-A", "N-B"]
    assert plan.cost == pytest.approx(2.2, abs=0.01)


def test_lowest_cost_breaks_a_tie_by_fewer_shipments_then_ids() -> None:
    """Shipments free, two warehouses at one point: one parcel from B (2 units) costs what
    one unit from each costs. The plan ships from B alone, though A sorts first; with both
    able to ship the whole order, A wins."""
    model = CostModel(per_shipment=0, per_unit=1, per_unit_km=0.01)
    network = [loc(x, "warehouse", GeoPoint(0, 0.09), {"ship"}) for x in ("A", "B")]
    order = request(("SKU", 2), destination=GeoPoint(0, 0))
    stock = {(LocationId("A"), Sku("SKU")): 1, (LocationId("B"), Sku("SKU")): 2}
    plan = LowestCostPolicy(model).plan(order, NetworkSnapshot(network, stock))
    assert plan.shipments == ("B",)
    assert plan.cost == pytest.approx(2 * (1 + 0.01 * 10.0), abs=0.01)
    stock[(LocationId("A"), Sku("SKU"))] = 2
    assert LowestCostPolicy(model).plan(order, NetworkSnapshot(network, stock)).shipments == ("A",)


def test_handling_costs_by_kind_steer_away_from_stores() -> None:
    """With stores dear to pick from, the warehouse wins even though the store is nearer."""
    stock = {("ST-BER", "A"): 5, ("WH-HAM", "A"): 5}
    model = CostModel(location_costs={"store": 5.0})
    assert LowestCostPolicy(model).plan(request(("A", 2)), snapshot(stock)).shipments == ("WH-HAM",)
    assert LowestCostPolicy().plan(request(("A", 2)), snapshot(stock)).shipments == ("ST-BER",)


def test_a_handling_cost_by_location_id_comes_before_the_cost_of_its_kind() -> None:
    """One dear warehouse among cheap ones: its own cost counts, not its kind's."""
    model = CostModel(location_costs={"WH-HAM": 5.0, "warehouse": 0.25})
    by_id = {loc.id: loc for loc in NETWORK}
    handling = {x: model.handling(by_id[LocationId(x)]) for x in ("WH-HAM", "WH-MUC", "ST-BER")}
    assert handling == {"WH-HAM": 5.0, "WH-MUC": 0.25, "ST-BER": 0.0}
    stock = {("WH-HAM", "A"): 5, ("WH-MUC", "A"): 5}
    cheapest = LowestCostPolicy(model).plan(request(("A", 2)), snapshot(stock))
    assert cheapest.shipments == ("WH-MUC",)  # Hamburg is nearer Berlin, but dear
    free = CostModel(location_costs={"WH-HAM": 0, "warehouse": 5.0})  # free is a cost too
    assert [free.handling(by_id[LocationId(x)]) for x in ("WH-HAM", "WH-MUC")] == [0, 5.0]


def test_a_location_without_a_point_is_the_farthest() -> None:
    """A location with no geo point (a supplier known only by name) is infinitely far from
    a destination: nearest and lowest cost choose it last, a distance limit excludes it."""
    supplier = Location(id="SUP-X", kind="supplier", geo=None, capabilities={"ship"})
    network = [supplier, NETWORK[1]]
    stock = {(LocationId(x), Sku("A")): 5 for x in ("SUP-X", "WH-HAM")}
    shop = NetworkSnapshot(network, stock)
    assert NearestPolicy().plan(request(("A", 2)), shop).shipments == ("WH-HAM",)
    assert LowestCostPolicy().plan(request(("A", 2)), shop).shipments == ("WH-HAM",)
    limited = NearestPolicy(filters=[MaxDistanceFilter(500)]).plan(request(("A", 9)), shop)
    reasons = {t.location_id: t.excluded for t in limited.trace}
    assert reasons[LocationId("SUP-X")] == "inf km away, beyond the 500 km limit"
    assert limited.shipments == ("WH-HAM",)


SPREAD_THIN = NetworkSnapshot(
    [
        Location(
            id=f"WH-{i}", kind="warehouse", geo=GeoPoint(50 + i / 10, 10), capabilities={"ship"}
        )
        for i in range(8)
    ],
    {(LocationId(f"WH-{i}"), Sku("A")): 2 for i in range(8)},
)


@pytest.mark.parametrize("policy", [FewestShipmentsPolicy, LowestCostPolicy])
@pytest.mark.parametrize(
    ("units", "budget", "search"),
    [
        (4, 4000, "exact within 8 search steps"),
        (4, 3, "best found within the budget of 3 search steps"),
        (6, 20, "best found within the budget of 20 search steps"),
        (6, 5, "greedy cover after 5 search steps"),
    ],
)
def test_the_plan_says_how_far_its_search_went(
    policy: type[FewestShipmentsPolicy | LowestCostPolicy], units: int, budget: int, search: str
) -> None:
    """Eight warehouses with two units each: a whole search, a search cut short by
    ``max_combinations`` after a cover was found, and a greedy cover when none was found
    within it. Each says so, and spends no more steps than its budget."""
    wanted = SourcingRequest([RequestLine("L1", "A", units)], "ship", destination=BERLIN)
    plan = policy(max_combinations=budget).plan(wanted, SPREAD_THIN)
    assert plan.search == search
    assert plan.search_steps <= budget
    assert plan.units_allocated == units
    assert len(plan.shipments) == units // 2


def test_lines_of_one_sku_share_its_stock() -> None:
    """Two lines of A never take more than the A in stock; the shortfall is unallocated."""
    stock = {("WH-MUC", "A"): 3}
    plan = PriorityPolicy().plan(request(("A", 2), ("A", 2)), snapshot(stock))
    assert plan.units_allocated == 3
    assert dict(plan.unallocated) == {"L2": 1}


def test_same_day_only_within_the_radius_and_with_the_capability() -> None:
    """Only the Berlin store does same-day, and only within 50 km."""
    stock = {("ST-BER", "A"): 1, ("WH-HAM", "A"): 5}
    plan = NearestPolicy().plan(request(("A", 2), method="same_day"), snapshot(stock))
    assert plan.shipments == ("ST-BER",)
    assert dict(plan.unallocated) == {"L1": 1}
    trace = {t.location_id: t for t in plan.trace}
    assert trace[LocationId("WH-HAM")].excluded == "no same-day capability"
    far = NearestPolicy().plan(
        request(("A", 1), method="same_day", destination=MUNICH), snapshot(stock)
    )
    assert far.units_allocated == 0
    reason = {t.location_id: t.excluded for t in far.trace}[LocationId("ST-BER")]
    assert reason is not None
    assert "beyond the 50 km same-day radius" in reason


@pytest.mark.parametrize("method", ["ship", "same_day"])
def test_a_location_exactly_at_the_limit_is_within_it(method: str) -> None:
    """The distance limit and the same-day radius include their bound: with both at 0 km,
    the store at the destination itself still serves it."""
    store = NETWORK[2]
    assert store.geo is not None
    plan = NearestPolicy(filters=[MaxDistanceFilter(0)], same_day_radius_km=0).plan(
        request(("A", 1), method=method, destination=store.geo), snapshot({("ST-BER", "A"): 1})
    )
    assert plan.shipments == ("ST-BER",)


def test_pickup_uses_the_pickup_store_unless_ship_to_store_is_allowed() -> None:
    """Click & collect: only the store; with ship-to-store, a warehouse tops it up."""
    stock = {("ST-BER", "A"): 1, ("WH-HAM", "A"): 5}
    pickup = request(("A", 2), method="pickup", destination=None, pickup_location="ST-BER")
    plan = LowestCostPolicy().plan(pickup, snapshot(stock))
    assert plan.shipments == ("ST-BER",)
    assert plan.units_unallocated == 1
    topped_up = LowestCostPolicy(allow_ship_to_store=True).plan(pickup, snapshot(stock))
    assert topped_up.units_allocated == 2


def test_excluded_inactive_and_full_locations_are_never_used() -> None:
    """Each is skipped with its reason in the trace."""
    network = [
        *NETWORK[:3],
        Location(id="SUP-1", kind="supplier", geo=MUNICH, capabilities={"ship"}, active=False),
    ]
    stock = {("WH-MUC", "A"): 5, ("WH-HAM", "A"): 5, ("ST-BER", "A"): 5, ("SUP-1", "A"): 5}
    snap = NetworkSnapshot(
        network,
        {(LocationId(a), Sku(b)): n for (a, b), n in stock.items()},
        {LocationId("WH-HAM"): 0},
    )
    plan = PriorityPolicy().plan(request(("A", 3), exclude={"WH-MUC"}), snap)
    assert plan.shipments == ("ST-BER",)
    reasons = {t.location_id: t.excluded for t in plan.trace}
    assert reasons == {
        "ST-BER": None,
        "SUP-1": "inactive",
        "WH-HAM": "no fulfilment capacity left today",
        "WH-MUC": "excluded by the request",
    }


def test_a_request_says_why_it_excludes_locations() -> None:
    """``exclude_reason`` is what the trace says of each excluded location; it must be
    some text."""
    asked = request(("A", 1), exclude={"WH-MUC"}, exclude_reason="rejected this order")
    plan = PriorityPolicy().plan(asked, snapshot({("WH-MUC", "A"): 9, ("WH-HAM", "A"): 9}))
    assert plan.trace_of("WH-MUC").excluded == "rejected this order"
    for bad in ("", "  ", None):
        with pytest.raises(InvalidSourcingRequest, match="exclude_reason must be a non-empty"):
            request(("A", 1), exclude_reason=bad)


def test_filters_by_kind_distance_and_store_minimum() -> None:
    """No dropship, nothing beyond 400 km, and a store ships only with 3 or more on hand."""
    stock = {("SUP-1", "A"): 9, ("WH-MUC", "A"): 9, ("ST-BER", "A"): 2, ("WH-HAM", "A"): 9}
    policy = NearestPolicy(
        filters=[KindFilter(["warehouse", "store"]), MaxDistanceFilter(400), StoreShipMinimum(3)]
    )
    plan = policy.plan(request(("A", 1)), snapshot(stock))
    assert plan.shipments == ("WH-HAM",)
    reasons: dict[str, str | None] = {t.location_id: t.excluded for t in plan.trace}
    assert reasons["SUP-1"] == "kind supplier not allowed (only store, warehouse)"
    assert reasons["WH-MUC"] is not None
    assert "beyond the 400 km limit" in reasons["WH-MUC"]
    assert reasons["ST-BER"] == "its stock is held back by a filter"


@given(
    available=st.integers(0, 30),
    minimum=st.integers(1, 10),
    wanted=st.integers(1, 12),
    policy=st.sampled_from([NearestPolicy, LowestCostPolicy, PriorityPolicy]),
)
def test_a_store_minimum_judges_the_store_stock_not_the_order(
    available: int, minimum: int, wanted: int, policy: Callable[..., SourcingPolicy]
) -> None:
    """A store with at least the minimum ships any order it can, however small; below the
    minimum it ships none."""
    plan = policy(filters=[StoreShipMinimum(minimum)]).plan(
        request(("A", wanted)), snapshot({("ST-BER", "A"): available})
    )
    shipped = min(wanted, available) if available >= minimum else 0
    assert plan.units_allocated == shipped
    assert plan.shipments == (("ST-BER",) if shipped else ())


def test_the_trace_covers_every_location_and_explain_reads_well() -> None:
    """Used, ranked-but-unused, excluded and stockless locations all appear."""
    stock = {("WH-MUC", "A"): 5, ("WH-HAM", "A"): 5}
    plan = LowestCostPolicy().plan(request(("A", 2), ("Z", 1)), snapshot(stock))
    assert [t.location_id for t in plan.trace] == ["ST-BER", "SUP-1", "WH-HAM", "WH-MUC"]
    text = plan.explain()
    assert text.startswith("LowestCostPolicy: 1 shipment(s), 2 unit(s) allocated, 1 unallocated")
    assert "#1   WH-HAM         USED 2 unit(s)" in text
    assert "#2   WH-MUC         not used" in text
    assert "(2 location(s) without stock of the requested SKUs)" in text
    assert "unallocated: line L2: 1 unit(s)" in text


def test_explain_lists_ranked_locations_by_rank_then_the_excluded_with_their_reason() -> None:
    """To Munich with Berlin's store excluded: the head with the cost, the ranked locations
    in rank order (not id order), the excluded one and why, the stockless count, the search."""
    munich = next(loc.geo for loc in NETWORK if loc.id == "WH-MUC")
    stock = {("WH-MUC", "A"): 5, ("WH-HAM", "A"): 5, ("ST-BER", "A"): 5}
    to_munich = request(("A", 2), destination=munich, exclude=frozenset({"ST-BER"}))
    plan = LowestCostPolicy().plan(to_munich, snapshot(stock))
    assert plan.explain().splitlines() == [
        "LowestCostPolicy: 1 shipment(s), 2 unit(s) allocated, 0 unallocated, cost 9.60",
        "  #1   WH-MUC         USED 2 unit(s)       priority 1, 0 km, can supply 2, 0.420/unit",
        "  #2   WH-HAM         not used             priority 2, 612 km, can supply 2, 0.628/unit",
        "  -    ST-BER         excluded: excluded by the request",
        "  (1 location(s) without stock of the requested SKUs)",
        "  search: exact: one location of 2; no two shipments can cost less",
    ]


def test_trace_of_names_one_location_and_refuses_an_unknown_one() -> None:
    stock = {("WH-MUC", "A"): 5, ("WH-HAM", "A"): 5}
    plan = LowestCostPolicy().plan(request(("A", 2)), snapshot(stock))
    assert plan.trace_of("WH-HAM") == next(t for t in plan.trace if t.location_id == "WH-HAM")
    assert plan.trace_of("SUP-1").excluded is not None
    with pytest.raises(UnknownLocation, match="'NOWHERE' was not in the snapshot"):
        plan.trace_of("NOWHERE")


@pytest.mark.parametrize(
    "policy",
    [PriorityPolicy(), NearestPolicy(), LowestCostPolicy(), FewestShipmentsPolicy()],
    ids=lambda p: p.name,
)
def test_a_location_listed_with_zero_units_has_no_stock(policy: SourcingPolicy) -> None:
    """A snapshot may list a location with 0 units: it is left out for having no stock,
    not for a filter, and the plan is the one without that entry."""
    stock = {("WH-MUC", "A"): 0, ("WH-HAM", "A"): 3}
    plan = policy.plan(request(("A", 2)), snapshot(stock))
    assert plan.trace_of("WH-MUC").excluded == "no stock of the requested SKUs"
    without = policy.plan(request(("A", 2)), snapshot({("WH-HAM", "A"): 3}))
    assert (plan.assignments, plan.trace) == (without.assignments, without.trace)


def test_fewest_shipments_ships_from_the_nearest_of_the_locations_that_hold_everything() -> None:
    """WH-MUC comes first by priority, but WH-HAM is nearer Berlin; the store holds too
    little to ship alone."""
    stock = {("WH-MUC", "A"): 3, ("WH-HAM", "A"): 3, ("ST-BER", "A"): 2}
    plan = FewestShipmentsPolicy().plan(request(("A", 3)), snapshot(stock))
    assert plan.shipments == ("WH-HAM",)


def test_fewest_shipments_finds_a_pair_where_greedy_needs_three() -> None:
    """WH-MUC has the most of the order (2 A, 2 B), so a greedy cover starts there and
    needs three locations; WH-HAM's 3 A and SUP-1's 3 B make two."""
    stock = {
        ("WH-MUC", "A"): 2,
        ("WH-MUC", "B"): 2,
        ("WH-HAM", "A"): 3,
        ("SUP-1", "B"): 3,
    }
    plan = FewestShipmentsPolicy().plan(request(("A", 3), ("B", 3)), snapshot(stock))
    assert sorted(plan.shipments) == ["SUP-1", "WH-HAM"]
    assert plan.units_allocated == 6


@pytest.mark.parametrize(
    ("held", "units", "used"),
    [
        # 2 from 3 degrees and 3 from 8 (30 degree-units) beat 1 from 1 and 4 from 8 (33)
        ({"L-A": (2, 1), "L-B": (8, 4), "L-C": (1, 1), "L-D": (3, 2)}, 5, {"L-B": 3, "L-D": 2}),
        # 2 from 3 degrees and 4 from 13 (58) beat 3 from 8 and 3 from 13 (63)
        ({"L-A": (8, 3), "L-B": (13, 4), "L-C": (3, 2)}, 6, {"L-B": 4, "L-C": 2}),
        # no pair holds 6, so triples: 2 from 10, 2 from 60 and 2 from 70 (280) beat
        # 2 from 10, 1 from 20 and 3 from 100 (340)
        (
            {"L-A": (10, 2), "L-B": (20, 1), "L-C": (100, 3), "L-D": (60, 2), "L-E": (70, 2)},
            6,
            {"L-A": 2, "L-D": 2, "L-E": 2},
        ),
    ],
)
def test_of_the_smallest_covers_of_a_line_the_fewest_unit_kilometres_win(
    held: dict[str, tuple[int, int]], units: int, used: dict[str, int]
) -> None:
    """No location holds the whole line (``held``: degrees from the destination, units):
    of the smallest sets that cover it, the one whose units travel least wins."""
    network = [
        loc(x, "warehouse", GeoPoint(0, degrees), {"ship"}) for x, (degrees, _) in held.items()
    ]
    stock = {(LocationId(x), Sku("A")): n for x, (_, n) in held.items()}
    plan = FewestShipmentsPolicy().plan(
        request(("A", units), destination=GeoPoint(0, 0)), NetworkSnapshot(network, stock)
    )
    assert {a.location_id: a.quantity for a in plan.assignments} == used


def test_without_a_cover_the_greedy_fallback_counts_only_the_units_still_needed() -> None:
    """It takes three locations to cover 3 A and 3 B, and only two may ship. The greedy
    cover takes L-1's 3 A, then L-3's 2 B over L-2's 3 A, which the order no longer needs."""
    held = {"L-1": (1, "A", 3), "L-2": (2, "A", 3), "L-3": (3, "B", 2), "L-4": (4, "B", 1)}
    network = [loc(x, "warehouse", GeoPoint(0, d), {"ship"}) for x, (d, _, _) in held.items()]
    stock = {(LocationId(x), Sku(sku)): n for x, (_, sku, n) in held.items()}
    plan = FewestShipmentsPolicy(max_shipments=2).plan(
        request(("A", 3), ("B", 3), destination=GeoPoint(0, 0)), NetworkSnapshot(network, stock)
    )
    assert {a.location_id: a.quantity for a in plan.assignments} == {"L-1": 3, "L-3": 2}
    assert plan.units_unallocated == 1


def test_of_pairs_as_near_as_each_other_the_one_of_least_priority_sum_wins() -> None:
    """Three warehouses at one point with a unit each, priorities 1, 2 and 9: every pair's
    units travel as far, so the pair of priorities 1 and 2 ships."""
    network = [
        loc(x, "warehouse", GeoPoint(0, 1), {"ship"}, priority=p)
        for x, p in (("L-W", 1), ("L-X", 2), ("L-Y", 9))
    ]
    stock = {(LocationId(x), Sku("A")): 1 for x in ("L-W", "L-X", "L-Y")}
    plan = FewestShipmentsPolicy().plan(
        request(("A", 2), destination=GeoPoint(0, 0)), NetworkSnapshot(network, stock)
    )
    assert sorted(plan.shipments) == ["L-W", "L-X"]


def test_max_shipments_caps_the_locations_used() -> None:
    """With one shipment allowed, the location covering most units is used."""
    stock = {("WH-MUC", "A"): 2, ("WH-HAM", "A"): 1}
    plan = FewestShipmentsPolicy(max_shipments=1).plan(request(("A", 3)), snapshot(stock))
    assert plan.shipments == ("WH-MUC",)
    assert plan.units_unallocated == 1


def test_routes_pick_a_policy_by_channel_and_method() -> None:
    """Marketplace orders go by priority, same-day by distance, the rest by cost."""
    routed = RoutedPolicy(
        [
            Route(PriorityPolicy(), channels=["marketplace"]),
            Route(NearestPolicy(), methods=["same_day"]),
        ],
        fallback=LowestCostPolicy(),
    )
    stock = {("ST-BER", "A"): 5}
    assert routed.plan(request(("A", 1), channel="marketplace"), snapshot(stock)).policy == (
        "RoutedPolicy -> PriorityPolicy"
    )
    assert routed.plan(request(("A", 1), method="same_day"), snapshot(stock)).policy == (
        "RoutedPolicy -> NearestPolicy"
    )
    assert routed.plan(request(("A", 1), channel="web"), snapshot(stock)).policy == (
        "RoutedPolicy -> LowestCostPolicy"
    )


def test_requests_are_validated() -> None:
    """Quantities of at least one, unique line ids, unique snapshot locations."""
    with pytest.raises(InvalidSourcingRequest):
        RequestLine("L1", "A", 0)
    with pytest.raises(InvalidSourcingRequest):
        SourcingRequest([RequestLine("L1", "A", 1), RequestLine("L1", "B", 1)], "ship")
    with pytest.raises(InvalidSourcingRequest):
        NetworkSnapshot([NETWORK[0], NETWORK[0]])


def test_policy_from_config_builds_every_policy() -> None:
    """Plain data to policies, filters and routes."""
    policy = policy_from_config(
        {
            "policy": "lowest_cost",
            "cost_model": {"per_shipment": 5, "location_costs": {"store": 0.8, "WH-HAM": 0}},
            "filters": {
                "kinds": ["warehouse", "store"],
                "max_distance_km": 800,
                "store_ship_minimum": 2,
            },
            "same_day_radius_km": 30,
        }
    )
    assert isinstance(policy, LowestCostPolicy)
    assert policy.cost_model == CostModel(
        per_shipment=5.0, location_costs={"store": 0.8, "WH-HAM": 0.0}
    )
    assert policy.same_day_radius_km == 30
    assert len(policy.filters) == 3
    routed = policy_from_config(
        {
            "routes": [
                {"channels": ["marketplace"], "use": {"policy": "priority"}},
                {"delivery": ["same_day"], "use": {"policy": "nearest"}},
            ],
            "fallback": {"policy": "fewest_shipments", "max_shipments": 3},
        }
    )
    assert policy_from_config({"policy": "deepest_stock"}) == DeepestStockPolicy()
    assert policy_from_config(
        {"policy": "nearest", "single_location_first": True}
    ) == NearestPolicy(single_location_first=True)
    assert isinstance(routed, RoutedPolicy)
    assert routed.fallback == FewestShipmentsPolicy(max_shipments=3)
    assert routed.routes[1].methods == frozenset({DeliveryMethod.SAME_DAY})


def test_policy_from_config_reports_every_problem_with_its_path() -> None:
    """One error listing each bad setting."""
    with pytest.raises(InvalidSourcingConfig) as info:
        policy_from_config(
            {
                "routes": [
                    {"channels": "web", "use": {"policy": "cheapest"}},
                    {"delivery": ["teleport"], "use": {"policy": "priority", "colour": 1}},
                ],
                "fallback": {
                    "policy": "lowest_cost",
                    "cost_model": {"per_unit": -1, "location_costs": {"store": "dear"}},
                    "filters": {"kinds": ["castle"], "max_distance_km": "far"},
                },
            }
        )
    problems = info.value.problems
    expected = [
        "config.routes[0].channels: must be a non-empty list of channel names",
        "config.routes[0].use.policy: must be one of",
        "config.routes[1].delivery: must be a non-empty list of ship, pickup, same_day",
        "config.routes[1].use.colour: unknown setting",
        "config.fallback.cost_model.per_unit: must be a finite number >= 0, got -1",
        "config.fallback.cost_model.location_costs: must map",
        "config.fallback.filters.kinds: must be a non-empty list",
        "config.fallback.filters.max_distance_km: must be a finite number",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)


@pytest.mark.parametrize("routes", [[], "web", None])
def test_routes_must_be_a_non_empty_list(routes: object) -> None:
    """No route, or routes that are not a list, is a mistake, not a router of nothing."""
    with pytest.raises(InvalidSourcingConfig) as info:
        policy_from_config({"routes": routes, "fallback": {"policy": "priority"}})
    assert info.value.problems == ("config.routes: must be a non-empty list",)


PRIORITY = {"policy": "priority"}


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ("priority", "config: must be a mapping, got str"),
        ({"routes": [5], "fallback": PRIORITY}, "config.routes[0]: must be a mapping"),
        (
            {"routes": [{"channels": ["web"]}], "fallback": PRIORITY},
            "config.routes[0].use: is required: the policy this route uses",
        ),
        (
            {"routes": [{"channels": ["web"], "use": PRIORITY}]},
            "config.fallback: is required with routes",
        ),
        (
            {"routes": [{"use": PRIORITY}], "fallback": PRIORITY},
            "config.routes[0]: needs 'channels' and/or 'delivery' to match on",
        ),
        (
            {"routes": [{"channels": [], "use": PRIORITY}], "fallback": PRIORITY},
            "config.routes[0].channels: must be a non-empty list of channel names",
        ),
        (
            {"routes": [{"channels": [" "], "use": PRIORITY}], "fallback": PRIORITY},
            "config.routes[0].channels: must be a non-empty list of channel names",
        ),
        (
            {"routes": [{"delivery": [], "use": PRIORITY}], "fallback": PRIORITY},
            "config.routes[0].delivery: must be a non-empty list of ship, pickup, same_day; got []",
        ),
        ({"policy": "priority", "filters": []}, "config.filters: must be a mapping"),
        ({"policy": "lowest_cost", "cost_model": 5}, "config.cost_model: must be a mapping"),
        (
            {"policy": "nearest", "allow_ship_to_store": "yes"},
            "config.allow_ship_to_store: must be true or false, got 'yes'",
        ),
        (
            {"policy": "priority", "max_combinations": 10},
            "config.max_combinations: unknown setting (allowed: allow_ship_to_store, filters, "
            "policy, same_day_radius_km, single_location_first)",
        ),
        (
            {"policy": "deepest_stock", "single_location_first": 1},
            "config.single_location_first: must be true or false, got 1",
        ),
        (
            {"policy": "lowest_cost", "single_location_first": True},
            "config.single_location_first: unknown setting (allowed: allow_ship_to_store, "
            "cost_model, filters, max_combinations, policy, same_day_radius_km)",
        ),
        (
            {"policy": "fewest_shipments", "max_combinations": 0},
            "config.max_combinations: must be an integer >= 1, got 0",
        ),
        (
            {"policy": "nearest", "same_day_radius_km": float("nan")},
            "config.same_day_radius_km: must be a finite number >= 0, got nan",
        ),
        (
            {"policy": "nearest", "filters": {"max_distance_km": float("inf")}},
            "config.filters.max_distance_km: must be a finite number >= 0, got inf",
        ),
        (
            {"policy": "lowest_cost", "cost_model": {"per_unit_km": float("-inf")}},
            "config.cost_model.per_unit_km: must be a finite number >= 0, got -inf",
        ),
    ],
)
def test_policy_from_config_names_each_mistake_with_its_path(config: object, problem: str) -> None:
    """Each mistake is one problem with its path, never a bare TypeError or a setting
    quietly dropped: a route that could never match, a number that is not finite, a
    setting the chosen policy does not have."""
    with pytest.raises(InvalidSourcingConfig) as info:
        policy_from_config(config)  # type: ignore[arg-type]
    assert info.value.problems == (problem,)


def test_policy_from_config_passes_on_the_search_budget_and_ship_to_store() -> None:
    """``max_combinations`` and ``allow_ship_to_store`` reach the policy they configure."""
    cheapest = policy_from_config(
        {"policy": "lowest_cost", "max_combinations": 7, "allow_ship_to_store": True}
    )
    fewest = policy_from_config({"policy": "fewest_shipments", "max_combinations": 3})
    assert isinstance(cheapest, LowestCostPolicy)
    assert isinstance(fewest, FewestShipmentsPolicy)
    assert (cheapest.max_combinations, cheapest.allow_ship_to_store) == (7, True)
    assert (fewest.max_combinations, fewest.allow_ship_to_store) == (3, False)
    at_the_minimum = policy_from_config(
        {"policy": "nearest", "same_day_radius_km": 0, "filters": {"store_ship_minimum": 0}}
    )
    assert isinstance(at_the_minimum, NearestPolicy)
    assert at_the_minimum.same_day_radius_km == 0
    least = policy_from_config({"policy": "lowest_cost", "max_combinations": 1})
    assert isinstance(least, LowestCostPolicy)
    assert least.max_combinations == 1


def test_a_route_may_match_on_any_predicate_of_the_request() -> None:
    """``when``: big orders go to the fewest parcels, the rest by priority; all conditions
    of a route must hold."""

    def big(r: SourcingRequest) -> bool:
        return sum(line.quantity for line in r.lines) >= 5

    routed = RoutedPolicy(
        [Route(FewestShipmentsPolicy(), channels=["web"], when=big)], fallback=PriorityPolicy()
    )
    stock = {("WH-HAM", "A"): 9}
    chosen = [
        routed.plan(request(("A", n), channel=channel), snapshot(stock)).policy
        for n, channel in ((5, "web"), (4, "web"), (5, "marketplace"))
    ]
    assert chosen == [
        "RoutedPolicy -> FewestShipmentsPolicy",
        "RoutedPolicy -> PriorityPolicy",
        "RoutedPolicy -> PriorityPolicy",
    ]
    with pytest.raises(InvalidSourcingConfig, match="when must be None or a function"):
        Route(PriorityPolicy(), when=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("condition", [{"channels": []}, {"methods": []}, {"methods": set()}])
def test_a_route_that_could_never_match_is_refused(condition: dict[str, object]) -> None:
    """None matches any channel or method; an empty collection would match nothing."""
    with pytest.raises(InvalidSourcingConfig, match="must name at least one"):
        Route(PriorityPolicy(), **condition)  # type: ignore[arg-type]


CONFIG_KEYS = [
    *("policy", "routes", "fallback", "channels", "delivery", "use", "filters", "kinds"),
    *("max_distance_km", "store_ship_minimum", "cost_model", "per_shipment", "per_unit"),
    *("per_unit_km", "location_costs", "same_day_radius_km", "allow_ship_to_store"),
    *("max_shipments", "max_combinations", "colour"),
]
CONFIG_VALUES = st.sampled_from(
    [
        *("priority", "nearest", "fewest_shipments", "lowest_cost", "warehouse", "store"),
        *("ship", "same_day", "web", "", None, True, False, 0, 1, -1, 2.5, 10**30),
        *(float("nan"), float("inf")),
    ]
)
CONFIGS = st.recursive(
    CONFIG_VALUES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(CONFIG_KEYS), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(CONFIGS)
def test_policy_from_config_builds_a_policy_or_names_the_problems(config: object) -> None:
    """Whatever plain data it is given (as from JSON or YAML), ``policy_from_config``
    returns a policy or raises InvalidSourcingConfig with each problem under its path."""
    problems: tuple[str, ...] = ()
    try:
        policy = policy_from_config(config)  # type: ignore[arg-type]
    except InvalidSourcingConfig as error:
        problems = error.problems
    else:
        assert callable(policy.plan)
        return
    assert problems
    assert all(p.startswith("config") for p in problems)
