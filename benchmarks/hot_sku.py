"""Hot-SKU benchmark: ``place_order`` on a SKU that already has many open orders.

    python benchmarks/hot_sku.py [--open 100,1000,4000] [--samples 200]

A flash sale puts thousands of open orders (and carts) on one SKU. Every order holds
stock on that SKU's inventory item until it is allocated, so the cost of placing the next
order must not grow with the orders already waiting. For each store, orders are placed on
one SKU without allocating; at each mark, ``place_order`` is timed ``--samples`` times.
The baseline is the same store with the first mark's open orders, in the same process;
the ratio says how much a busy SKU costs over a quiet one.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _timing import Timing, measure
from store import prepared

from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.ports import Store


def run(store: Store, marks: list[int], samples: int) -> list[Timing]:
    """``place_order`` timings on one SKU at each number of open orders in ``marks``."""
    oms, drafts = prepared(store)
    hot = drafts[0]
    placed, timings = 0, []
    for mark in marks:
        while placed < mark:
            oms.place_order(hot)
            placed += 1
        timing = measure(
            f"{mark:>6,} open orders on the SKU", lambda: oms.place_order(hot), samples
        )
        placed += samples + 20  # the warm-up and timed orders stay open too
        timings.append(timing)
    return timings


def main() -> None:
    """Run both stores and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", default="100,1000,4000")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    marks = sorted(int(x) for x in args.open.split(","))
    print(
        f"omscore hot-SKU benchmark: place_order with open orders on one SKU; reproduce: "
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
            for timing in timings:
                ratio = timing.median / timings[0].median
                print(f"  {timing.line()}   x{ratio:.1f} the quiet SKU")


if __name__ == "__main__":
    main()
