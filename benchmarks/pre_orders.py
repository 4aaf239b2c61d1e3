"""Pre-order benchmark: orders for a SKU with no stock, waiting as backorders, then served.

    python benchmarks/pre_orders.py [--waiting 100,1000,4000] [--samples 200]

A product launch takes thousands of orders before the first unit arrives. Each waits as a
backorder on the SKU's inventory item, so placing the next pre-order must not cost more
with every one already waiting, and the receipt that finally brings the stock must serve
them all in time proportional to their number. For each store and each mark, a fresh
network takes that many pre-orders; then ``place_order`` is timed ``--samples`` times, and
one ``receive`` with stock for every waiting order is timed (it turns them all into
holds). The first mark, in the same process, is the baseline of the ratios.
"""

from __future__ import annotations

import argparse
import time

import attrs
from _timing import STORES, Timing, fresh_store, measure

from omscore.bench import prepared
from omscore.ports import Store


def run(store: Store, waiting: int, samples: int) -> tuple[Timing, float]:
    """``place_order`` timings with ``waiting`` pre-orders on one SKU, and the seconds of
    the receipt that serves every one of them."""
    oms, drafts = prepared(store)
    sku = "LAUNCH"  # a SKU no location has yet
    launch = attrs.evolve(drafts[0], lines=[attrs.evolve(drafts[0].lines[0], sku=sku)])
    for _ in range(waiting):
        oms.place_order(launch)
    placing = measure(
        f"{waiting:>6,} waiting: place_order", lambda: oms.place_order(launch), samples
    )
    units = sum(line.quantity for line in launch.lines) * (waiting + samples + 20)
    start = time.perf_counter()
    oms.receive("WH-0", sku, units, reference="launch delivery")
    return placing, time.perf_counter() - start


def main() -> None:
    """Run both stores and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", default="100,1000,4000")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    marks = sorted(int(x) for x in args.waiting.split(","))
    print(
        "omscore pre-order benchmark: place_order with pre-orders waiting on one SKU, and "
        f"the receipt that serves them; reproduce: python benchmarks/pre_orders.py "
        f"--waiting {args.waiting} --samples {args.samples}"
    )
    for name in STORES:
        print(name)
        results = []
        for mark in marks:
            with fresh_store(name) as store:
                results.append(run(store, mark, args.samples))
        quiet = results[0][0].median
        for placing, _ in results:
            print(f"  {placing.line()}   x{placing.median / quiet:.1f} the first mark")
        for (_, receipt), mark in zip(results, marks, strict=True):
            served = mark + args.samples + 20
            print(
                f"  {f'{served:>6,} served by one receipt':<44} {receipt * 1e3:9.1f} ms"
                f"   {receipt / served * 1e6:6.1f} us per pre-order"
            )


if __name__ == "__main__":
    main()
