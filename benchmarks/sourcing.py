"""Sourcing benchmark: every built-in policy on one network and one order stream.

    python benchmarks/sourcing.py [--orders 10000] [--seed 11]

The network: 200 locations over the United States (20 warehouses: the 10 fulfilment centres
of ../shared/benchmarks/us-network plus 10 at the largest cities; 170 stores at cities
weighted by population; 10 dropship suppliers). 5,000 SKUs with Zipf-like popularity:
warehouses carry most of the range, stores the popular head, suppliers the long tail.
10,000 orders of 1-6 lines ship to cities weighted by population. Each policy plans every
order against its own copy of the stock, which the plan then depletes, as allocation would.

For each policy it prints decisions per second, median and p99 microseconds per plan,
shipments per order, the total cost of its plans under the default ``CostModel``, and the
ratios against ``PriorityPolicy`` (the peers' greedy baseline) run in the same process.
Only ``policy.plan`` is timed; building each order's snapshot is not.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

from omscore.geo import GeoPoint
from omscore.ids import LineId, LocationId, Sku
from omscore.inventory import Capability, Location, LocationKind
from omscore.sourcing import (
    CostModel,
    DeliveryMethod,
    FewestShipmentsPolicy,
    LowestCostPolicy,
    NearestPolicy,
    NetworkSnapshot,
    PriorityPolicy,
    RequestLine,
    SourcingPolicy,
    SourcingRequest,
    plan_cost,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "us-network"
SKUS = 5_000
LINE_COUNTS = (1, 2, 3, 4, 5, 6)
LINE_WEIGHTS = (40, 25, 15, 10, 6, 4)


def read_csv(name: str) -> list[dict[str, str]]:
    """Rows of one file of the shared US network data."""
    with (DATA / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def near(rng: random.Random, lat: float, lon: float, spread: float = 0.15) -> GeoPoint:
    """A point a few kilometres around a city."""
    return GeoPoint(lat + rng.uniform(-spread, spread), lon + rng.uniform(-spread, spread))


def build_network(rng: random.Random) -> tuple[list[Location], list[tuple[float, float, int]]]:
    """200 locations and the cities (lat, lon, population) orders ship to."""
    cities = [
        (float(c["Latitude"]), float(c["Longitude"]), int(c["Population"]))
        for c in read_csv("cities.csv")
    ]
    centres = [
        (float(c["Latitude"]), float(c["Longitude"])) for c in read_csv("fulfillment_centers.csv")
    ]
    biggest = sorted(cities, key=lambda c: -c[2])[:10]
    ship = frozenset({Capability.SHIP})
    locations = [
        Location(
            id=f"WH-{i:02d}",
            kind=LocationKind.WAREHOUSE,
            geo=GeoPoint(lat, lon),
            capabilities=ship | {Capability.RETURNS},
            priority=1 + i % 3,
        )
        for i, (lat, lon) in enumerate(centres + [(c[0], c[1]) for c in biggest])
    ]
    weights = [c[2] for c in cities]
    for i in range(170):
        lat, lon, _ = rng.choices(cities, weights)[0]
        locations.append(
            Location(
                id=f"ST-{i:03d}",
                kind=LocationKind.STORE,
                geo=near(rng, lat, lon),
                capabilities=frozenset(Capability),
                priority=5,
            )
        )
    for i in range(10):
        lat, lon, _ = rng.choice(cities)
        locations.append(
            Location(
                id=f"SUP-{i:02d}",
                kind=LocationKind.SUPPLIER,
                geo=near(rng, lat, lon),
                capabilities=ship,
                priority=9,
            )
        )
    return locations, cities


def build_stock(rng: random.Random, locations: list[Location]) -> dict[Sku, dict[LocationId, int]]:
    """Per SKU, units per location: warehouses most SKUs, stores the head, suppliers the tail."""
    stock: dict[Sku, dict[LocationId, int]] = {}
    for rank in range(1, SKUS + 1):
        sku = Sku(f"SKU-{rank:04d}")
        depth = max(1, int(400 / rank**0.8))
        row: dict[LocationId, int] = {}
        for loc in locations:
            if loc.kind is LocationKind.WAREHOUSE and rng.random() < 0.6:
                row[loc.id] = rng.randint(1, 2 * depth)
            elif loc.kind is LocationKind.STORE and rank <= 1000 and rng.random() < 0.35:
                row[loc.id] = rng.randint(1, max(1, depth // 8))
            elif (
                loc.kind is LocationKind.SUPPLIER
                and rank > 2500
                and (rank % 10) == int(loc.id[-2:])
            ):
                row[loc.id] = 1_000
        stock[sku] = row
    return stock


def orders(
    rng: random.Random, count: int, cities: list[tuple[float, float, int]]
) -> Iterator[SourcingRequest]:
    """The order stream: 1-6 lines, popular SKUs more often, to cities by population."""
    popularity = [1 / rank**1.1 for rank in range(1, SKUS + 1)]
    weights = [c[2] for c in cities]
    for n in range(count):
        lines = rng.choices(LINE_COUNTS, LINE_WEIGHTS)[0]
        ranks: set[int] = set()
        while len(ranks) < lines:
            ranks.add(rng.choices(range(1, SKUS + 1), popularity)[0])
        lat, lon, _ = rng.choices(cities, weights)[0]
        yield SourcingRequest(
            [
                RequestLine(
                    LineId(f"O{n}-{i}"), Sku(f"SKU-{r:04d}"), rng.choices((1, 2, 3), (80, 15, 5))[0]
                )
                for i, r in enumerate(sorted(ranks))
            ],
            DeliveryMethod.SHIP,
            destination=near(rng, lat, lon),
        )


def run(
    policy: SourcingPolicy,
    requests: list[SourcingRequest],
    locations: list[Location],
    initial: dict[Sku, dict[LocationId, int]],
    model: CostModel,
) -> dict[str, float]:
    """Plan every request in turn on a private copy of the stock; time only ``plan``."""
    stock = {sku: dict(row) for sku, row in initial.items()}
    samples: list[float] = []
    shipments = units = unallocated = 0
    cost = 0.0
    for request in requests:
        available = {
            (loc, line.sku): n
            for line in request.lines
            for loc, n in stock[line.sku].items()
            if n > 0
        }
        snapshot = NetworkSnapshot(locations, available)
        start = time.perf_counter()
        plan = policy.plan(request, snapshot)
        samples.append(time.perf_counter() - start)
        for a in plan.assignments:
            stock[a.sku][a.location_id] -= a.quantity
        shipments += len(plan.shipments)
        units += plan.units_allocated
        unallocated += plan.units_unallocated
        cost += plan_cost(plan, snapshot, request, model)
    ordered = sorted(samples)
    return {
        "per_second": len(samples) / sum(samples),
        "median_us": statistics.median(samples) * 1e6,
        "p99_us": ordered[int(0.99 * (len(ordered) - 1))] * 1e6,
        "shipments": shipments / len(requests),
        "cost": cost,
        "units": units,
        "unallocated": unallocated,
    }


def main() -> None:
    """Run every built-in policy and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    locations, cities = build_network(rng)
    stock = build_stock(rng, locations)
    requests = list(orders(rng, args.orders, cities))
    model = CostModel()
    policies: list[SourcingPolicy] = [
        PriorityPolicy(),
        NearestPolicy(),
        FewestShipmentsPolicy(),
        LowestCostPolicy(model),
    ]
    print(
        f"omscore sourcing benchmark: {len(locations)} locations, {SKUS} SKUs, "
        f"{len(requests)} orders, seed {args.seed}"
    )
    print(f"reproduce: python benchmarks/sourcing.py --orders {args.orders} --seed {args.seed}")
    print(
        f"{'policy':<24}{'plans/s':>9}{'median us':>11}{'p99 us':>9}{'ship/order':>12}"
        f"{'total cost':>12}{'units':>8}{'short':>7}{'ships vs prio':>15}{'cost vs prio':>14}"
    )
    results = {p.name: run(p, requests, locations, stock, model) for p in policies}
    base = results["PriorityPolicy"]
    for name, r in results.items():
        print(
            f"{name:<24}{r['per_second']:>9,.0f}{r['median_us']:>11.0f}{r['p99_us']:>9.0f}"
            f"{r['shipments']:>12.3f}{r['cost']:>12,.0f}{r['units']:>8,.0f}"
            f"{r['unallocated']:>7,.0f}{r['shipments'] / base['shipments']:>15.3f}"
            f"{r['cost'] / base['cost']:>14.3f}"
        )
    best = results["LowestCostPolicy"]
    print(
        "targets for LowestCostPolicy: median < 200 us "
        f"[{'met' if best['median_us'] < 200 else 'MISSED'}], p99 < 2 ms "
        f"[{'met' if best['p99_us'] < 2000 else 'MISSED'}], >= 30 % fewer shipments than "
        f"PriorityPolicy [{'met' if best['shipments'] <= 0.7 * base['shipments'] else 'MISSED'}]"
        f", lower total cost [{'met' if best['cost'] < base['cost'] else 'MISSED'}]"
    )


if __name__ == "__main__":
    main()
