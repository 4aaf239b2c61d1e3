"""Pre-order benchmark: orders for a SKU with no stock, waiting as backorders, then served.

    python benchmarks/pre_orders.py [--waiting 100,1000,4000] [--samples 200]

A product launch takes thousands of orders before the first unit arrives. Each waits as a
backorder on the SKU's inventory item, so placing the next pre-order must not cost more
with every one already waiting, and the receipt that finally brings the stock must serve
them all in time proportional to their number. For each store and each mark, a fresh
network takes that many pre-orders; then ``place_order`` is timed ``--samples`` times, and
one ``receive`` with stock for every waiting order is timed (it turns them all into
holds). Before it, five purchase orders that cover them all are expected, a day apart,
and ``backorder_dates`` is timed for the oldest and the newest pre-order (the newest
waits for the last purchase order), and ``backorder_queue`` for all of them at once (one
pass of the supply over the queue dates every pre-order). The first mark, in the same
process, is the baseline of the ratios.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import timedelta

import attrs
from _timing import STORES, Timing, fresh_store, measure

from omscore.bench import prepared
from omscore.ports import Store
from omscore.service import OMS


@attrs.frozen
class Run:
    """One mark's timings: placing, the dates of the oldest and newest pre-order, the
    queue of them all, and the seconds of the receipt that serves them all."""

    placing: Timing
    oldest_date: Timing
    newest_date: Timing
    whole_queue: Timing
    receipt: float


def dates_of(oms: OMS, order_id: str) -> Callable[[], object]:
    """A call of ``backorder_dates`` for one order."""
    return lambda: oms.backorder_dates(order_id)


def run(store: Store, waiting: int, samples: int) -> Run:
    """Time ``place_order`` with ``waiting`` pre-orders on one SKU, ``backorder_dates``
    with purchase orders expected for them all, and the receipt that serves them."""
    oms, drafts = prepared(store)
    sku = "LAUNCH"  # a SKU no location has yet
    launch = attrs.evolve(drafts[0], lines=[attrs.evolve(drafts[0].lines[0], sku=sku)])
    first = oms.place_order(launch).id
    for _ in range(waiting - 1):
        oms.place_order(launch)
    placing = measure(
        f"{waiting:>6,} waiting: place_order", lambda: oms.place_order(launch), samples
    )
    last = oms.place_order(launch).id
    units = sum(line.quantity for line in launch.lines) * (waiting + samples + 20)
    now = oms.clock.now()
    for day in range(1, 6):
        due = now + timedelta(days=day)
        oms.add_supply(sku, "WH-0", -(-units // 5), due, reference=f"PO-{day}")
    oldest, newest = (
        measure(f"{waiting:>6,} waiting: backorder_dates, {which}", dates_of(oms, order), 10, 2)
        for which, order in (("oldest", first), ("newest", last))
    )
    queue = measure(f"{waiting:>6,} waiting: backorder_queue", oms.backorder_queue, 5, 1)
    start = time.perf_counter()
    oms.receive("WH-0", sku, units, reference="launch delivery")
    return Run(placing, oldest, newest, queue, time.perf_counter() - start)


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
        quiet = results[0].placing.median
        for result in results:
            placing = result.placing
            print(f"  {placing.line()}   x{placing.median / quiet:.1f} the first mark")
        for dates in ("oldest_date", "newest_date", "whole_queue"):
            first = getattr(results[0], dates).median
            for result in results:
                timing: Timing = getattr(result, dates)
                print(f"  {timing.line('ms')}   x{timing.median / first:.1f} the first mark")
        for result, mark in zip(results, marks, strict=True):
            served = mark + args.samples + 21
            print(
                f"  {f'{served:>6,} served by one receipt':<44} {result.receipt * 1e3:9.1f} ms"
                f"   {result.receipt / served * 1e6:6.1f} us per pre-order"
            )


if __name__ == "__main__":
    main()
