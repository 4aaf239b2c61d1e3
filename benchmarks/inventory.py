"""Inventory benchmarks on the in-memory store.

    python benchmarks/inventory.py

1. ATP of one SKU over a 200-location channel pool (targets: p99 under 1 ms).
2. A 100 SKU x 100 location availability matrix (target: under 25 ms).
3. A 10,000-position stock feed in one transaction (target: above 20,000 positions/s).

Each is printed next to a baseline run in the same process: the same sums over plain
dicts, i.e. the floor any implementation pays for the arithmetic alone.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import measure

from omscore import OMS, Capability, GeoPoint, Location, LocationKind
from omscore.adapters.memory import MemoryStore
from omscore.service import StockPosition
from omscore.testing import ManualClock, SequentialIds

SEED = 7


def network(oms: OMS, count: int) -> list[str]:
    """``count`` locations (a tenth warehouses, the rest stores) spread over Germany."""
    rng = random.Random(SEED)
    ids = []
    for i in range(count):
        kind = LocationKind.WAREHOUSE if i % 10 == 0 else LocationKind.STORE
        location_id = f"{kind.value[:2].upper()}-{i:03d}"
        oms.add_location(
            Location(
                id=location_id,
                kind=kind,
                geo=GeoPoint(rng.uniform(47.5, 54.5), rng.uniform(6.0, 14.5)),
                capabilities=frozenset({Capability.SHIP, Capability.PICKUP}),
                priority=1 if kind is LocationKind.WAREHOUSE else 5,
            )
        )
        ids.append(location_id)
    return ids


def bench_one_sku_atp() -> None:
    """ATP for one SKU over 200 locations, with reservations and safety stock in play."""
    oms = OMS(MemoryStore(), clock=ManualClock(), ids=SequentialIds())
    ids = network(oms, 200)
    rng = random.Random(SEED)
    positions = [StockPosition(loc, "HOT", rng.randint(0, 40)) for loc in ids]
    oms.receive_many([p for p in positions if p.quantity], mode="absolute")
    oms.configure_channel("web", buffer_percent=5)
    levels = {p.location_id: (p.quantity, 0, 0, 0) for p in positions}

    def baseline() -> int:
        total = sum(max(0, h - a - r - s) for h, a, r, s in levels.values())
        return max(0, total - -(-total * 5 // 100))

    assert oms.available("HOT", channel="web") == baseline()
    ours = measure(
        "ATP, 1 SKU x 200 locations (OMS.available)", lambda: oms.available("HOT", "web"), 5000
    )
    base = measure("baseline: the same sum over a dict", baseline, 5000)
    print(ours.line())
    print(base.line())
    print(f"{'ratio ours / baseline (median)':<44} {ours.median / base.median:9.1f} x")
    print(f"target p99 < 1 ms: {'met' if ours.p99 < 1e-3 else 'MISSED'}")


def bench_matrix() -> None:
    """Available of 100 SKUs at each of 100 locations."""
    oms = OMS(MemoryStore(), clock=ManualClock(), ids=SequentialIds())
    ids = network(oms, 100)
    skus = [f"SKU-{n:03d}" for n in range(100)]
    rng = random.Random(SEED)
    feed = [StockPosition(loc, sku, rng.randint(1, 30)) for sku in skus for loc in ids]
    oms.receive_many(feed)
    plain = {(p.location_id, p.sku): p.quantity for p in feed}

    def baseline() -> dict[str, dict[str, int]]:
        return {sku: {loc: plain[(loc, sku)] for loc in ids} for sku in skus}

    assert oms.stock_matrix(skus, ids) == baseline()
    ours = measure("matrix, 100 SKUs x 100 locations", lambda: oms.stock_matrix(skus, ids), 200)
    base = measure("baseline: the same dict of dicts", baseline, 200)
    print(ours.line("ms"))
    print(base.line("ms"))
    print(f"{'ratio ours / baseline (median)':<44} {ours.median / base.median:9.1f} x")
    print(f"target < 25 ms: {'met' if ours.p99 < 25e-3 else 'MISSED'}")


def bench_feed() -> None:
    """10,000 positions (1,000 SKUs x 10 locations), delta then absolute, in one transaction."""
    rng = random.Random(SEED)
    rates = []
    for mode in ("delta", "absolute"):
        samples = []
        for _ in range(5):
            oms = OMS(MemoryStore(), clock=ManualClock(), ids=SequentialIds())
            ids = network(oms, 10)
            feed = [
                StockPosition(loc, f"SKU-{n:04d}", rng.randint(1, 50))
                for n in range(1000)
                for loc in ids
            ]
            start = time.perf_counter()
            oms.receive_many(feed, mode=mode)
            samples.append(time.perf_counter() - start)
        best = sorted(samples)[len(samples) // 2]
        rates.append(len(feed) / best)
        print(
            f"{'feed 10,000 positions, ' + mode:<44} median {best * 1e3:9.1f} ms"
            f"   {len(feed) / best:12,.0f} positions/s"
        )
    print(f"target > 20,000 positions/s: {'met' if min(rates) > 20_000 else 'MISSED'}")


def main() -> None:
    """Run every inventory benchmark and print the command that reproduces them."""
    print(f"omscore inventory benchmarks (seed {SEED}); reproduce: python benchmarks/inventory.py")
    bench_one_sku_atp()
    bench_matrix()
    bench_feed()


if __name__ == "__main__":
    main()
