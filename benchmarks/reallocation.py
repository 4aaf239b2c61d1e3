"""What sourcing again costs, next to the allocation it redoes, on both stores.

    python benchmarks/reallocation.py [--orders 1000]

On the network of ``python -m omscore bench`` (three warehouses) with the priority
policy, each order is for two units of a SKU of its own, one at WH-0 and one at WH-1, so
its first ``allocate`` splits it in two parcels (the baseline). Then WH-0 receives a second
unit and ``reallocate`` merges the order into one parcel from WH-0 (two fulfilment orders
withdrawn, one created); ``reallocate`` again finds the same plan and changes nothing;
WH-2 receives two units and ``move_fulfillment`` moves the parcel there. Every call is
timed; the report gives each command's median and p99 and the ratio of its median to
``allocate``'s, per store, measured in this process.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import attrs
from _timing import STORES, Timing, fresh_store

from omscore import OMS, Money
from omscore.bench import prepared
from omscore.orders import LineDraft, OrderDraft
from omscore.ports import Store
from omscore.sourcing import PriorityPolicy

COMMANDS = ("allocate", "reallocate (merge)", "reallocate (unchanged)", "move_fulfillment")


Timed = Callable[[str, Callable[[], object]], object]


def run_orders(store: Store, orders: int) -> dict[str, list[float]]:
    """Seconds of each command for ``orders`` orders on a fresh network on ``store``."""
    oms, drafts = prepared(store)
    oms.sourcing = PriorityPolicy()  # equal priorities: WH-0, then WH-1, then WH-2
    seconds: dict[str, list[float]] = defaultdict(list)

    def timed(name: str, call: Callable[[], object]) -> object:
        start = time.perf_counter()
        result = call()
        seconds[name].append(time.perf_counter() - start)
        return result

    gc.collect()
    for n in range(orders):
        one_order(oms, attrs.evolve(drafts[0], lines=[]), f"R-{n:05d}", timed)
    check(oms, orders)
    return seconds


def one_order(oms: OMS, template: OrderDraft, sku: str, timed: Timed) -> None:
    """Split, merge, merge again (unchanged) and move one order for ``sku``."""
    oms.receive("WH-0", sku, 1)
    oms.receive("WH-1", sku, 1)
    price = Money("19.99", "EUR")
    order = oms.place_order(attrs.evolve(template, lines=[LineDraft(sku, 2, price)]))
    timed("allocate", lambda: oms.allocate(order.id))
    oms.receive("WH-0", sku, 1)
    timed("reallocate (merge)", lambda: oms.reallocate(order.id))
    timed("reallocate (unchanged)", lambda: oms.reallocate(order.id))
    oms.receive("WH-2", sku, 2)
    parcel = oms.get_order(order.id).fulfillments[-1].id
    timed("move_fulfillment", lambda: oms.move_fulfillment(parcel, "WH-2"))


def check(oms: OMS, orders: int) -> None:
    """Every order ended as one parcel at WH-2, with the merge and the move behind it."""
    last = oms.get_order(f"O-{orders}")
    assert [(f.location_id, f.status.value) for f in last.fulfillments] == [
        ("WH-0", "withdrawn"),
        ("WH-1", "withdrawn"),
        ("WH-2", "open"),
    ], last.fulfillments


def main() -> None:
    """Run every store and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000)
    args = parser.parse_args()
    print(
        f"omscore sourcing again: {args.orders:,} two-unit orders per store, split then "
        f"merged then moved; reproduce: python benchmarks/reallocation.py --orders {args.orders}"
    )
    for name in STORES:
        with fresh_store(name) as store:
            seconds = run_orders(store, args.orders)
        baseline = statistics.median(seconds["allocate"])
        print(f"  {name}")
        for command in COMMANDS:
            timing = Timing(command, tuple(seconds[command]))
            print(f"    {timing.line()}   {timing.median / baseline:5.2f} x allocate")


if __name__ == "__main__":
    main()
