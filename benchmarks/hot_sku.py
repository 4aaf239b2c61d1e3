"""Hot-SKU benchmark: ``place_order`` and ``allocate`` on a SKU with many open orders.

    python benchmarks/hot_sku.py [--open 100,1000,4000] [--samples 200]

A flash sale puts thousands of open orders (and carts) on one SKU. Every order holds
stock on that SKU's inventory item until it is allocated, so the cost of placing the next
order must not grow with the orders already waiting. For each store, orders are placed on
one SKU without allocating; at each mark, ``place_order`` is timed ``--samples`` times,
then ``allocate`` of as many of the oldest open orders (what a warehouse release does).
The baseline is the same store with the first mark's open orders, in the same process;
the ratio says how much a busy SKU costs over a quiet one.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import deque
from pathlib import Path

from _timing import Timing, measure
from store import prepared

from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.ports import Store


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
        stores = (
            ("MemoryStore", MemoryStore()),
            ("SqliteStore", SqliteStore(str(Path(directory) / "hot.db"))),
        )
        for name, store in stores:
            timings = run(store, marks, args.samples)
            print(name)
            for command in (0, 1):
                quiet = timings[0][command].median
                for pair in timings:
                    timing = pair[command]
                    print(f"  {timing.line()}   x{timing.median / quiet:.1f} the quiet SKU")


if __name__ == "__main__":
    main()
