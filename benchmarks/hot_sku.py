"""Hot-SKU benchmark: ``place_order`` and ``allocate`` on a SKU with many open orders.

    python benchmarks/hot_sku.py [--open 100,1000,4000] [--samples 200]

A flash sale puts thousands of open orders (and carts) on one SKU. Every order holds
stock on that SKU's inventory item until it is allocated, so the cost of placing the next
order must not grow with the orders already waiting. For each store, orders are placed on
one SKU without allocating; at each mark, ``place_order`` is timed ``--samples`` times,
then ``allocate`` of as many of the oldest open orders (what a warehouse release does).
Then the same with checkout reservations: at each mark, a fresh store with that many
open carts on the SKU times ``reserve`` for the next cart, and one ``expire_reservations``
that ends them all. The baseline is the same store with the first mark's open orders (or
carts), in the same process; the ratio says how much a busy SKU costs over a quiet one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from _timing import Timing, measure

from omscore import OMS
from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.bench import prepared
from omscore.ports import Store
from omscore.testing import ManualClock


def run(store: Store, marks: list[int], samples: int) -> list[tuple[Timing, Timing]]:
    """``place_order`` and ``allocate`` timings on one SKU at each number of open orders in
    ``marks``. Allocation takes the oldest open orders (their holds lead the SKU's list)."""
    oms, drafts = prepared(store)
    hot = drafts[0]
    waiting: deque[str] = deque()
    timings = []
    for mark in marks:
        while len(waiting) < mark:
            waiting.append(oms.place_order(hot).id)
        placing = measure(
            f"{mark:>6,} open orders: place_order",
            lambda: waiting.append(oms.place_order(hot).id),
            samples,
        )
        allocating = measure(
            f"{mark:>6,} open orders: allocate",
            lambda: oms.allocate(waiting.popleft()),
            samples,
        )
        timings.append((placing, allocating))
    return timings


def _next_cart(oms: OMS, sku: str) -> Callable[[], object]:
    """A call that reserves one unit of ``sku`` for a new cart each time."""
    carts = iter(range(10**9))
    return lambda: oms.reserve(sku, 1, ttl=timedelta(minutes=15), key=f"cart-{next(carts)}")


def run_carts(
    make_store: Callable[[], Store], marks: list[int], samples: int
) -> list[tuple[Timing, float]]:
    """``reserve`` timings with each number of open carts in ``marks`` on one SKU (a fresh
    store per mark), and the seconds of the ``expire_reservations`` that ends them all."""
    results = []
    for mark in marks:
        clock = ManualClock()
        oms, drafts = prepared(make_store(), clock=clock)
        reserve = _next_cart(oms, drafts[0].lines[0].sku)
        for _ in range(mark):
            reserve()
        timing = measure(f"{mark:>6,} open carts: reserve", reserve, samples)
        clock.advance(timedelta(minutes=30))
        start = time.perf_counter()
        oms.expire_reservations()
        results.append((timing, time.perf_counter() - start))
    return results


def main() -> None:
    """Run both stores and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", default="100,1000,4000")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    marks = sorted(int(x) for x in args.open.split(","))
    print(
        f"omscore hot-SKU benchmark: place_order and allocate with open orders on one SKU; "
        f"reproduce: "
        f"python benchmarks/hot_sku.py --open {args.open} --samples {args.samples}"
    )
    with tempfile.TemporaryDirectory() as directory:
        files = (Path(directory) / f"hot-{n}.db" for n in range(10**9))
        makers: tuple[tuple[str, Callable[[], Store]], ...] = (
            ("MemoryStore", MemoryStore),
            ("SqliteStore", lambda: SqliteStore(str(next(files)))),
        )
        for name, make_store in makers:
            timings = run(make_store(), marks, args.samples)
            print(name)
            for command in (0, 1):
                quiet = timings[0][command].median
                for pair in timings:
                    timing = pair[command]
                    print(f"  {timing.line()}   x{timing.median / quiet:.1f} the quiet SKU")
            carts = run_carts(make_store, marks, args.samples)
            quiet = carts[0][0].median
            for timing, _ in carts:
                print(f"  {timing.line()}   x{timing.median / quiet:.1f} the quiet SKU")
            for (_, seconds), mark in zip(carts, marks, strict=True):
                ended = mark + args.samples + 20
                label = f"{ended:>6,} carts ended by expire_reservations"
                print(f"  {label:<44} {seconds * 1e3:9.1f} ms")


if __name__ == "__main__":
    main()
