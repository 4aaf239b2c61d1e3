"""Work-queue benchmark: a location's queue, the stalled work, the order queues and a
customer's orders, as history grows.

    python benchmarks/queues.py [--history 1000,15000] [--live 200] [--repeat 300]

A queue must cost what the live work costs, not what was ever placed. For each history
size a fresh ``SqliteStore`` file gets that many orders placed, allocated, shipped and
delivered, then ``--live`` orders placed and left open (the stream of benchmarks/store.py, 20,000
orders at most in all): every fourth on a fraud hold, the others allocated. It prints the
median and p99 of ``fulfillment_queue`` (the first 20, and all) at the warehouse with the
most open work, of ``stalled_fulfillments`` (the 20 longest waiting anywhere), of
``order_queue`` (the first 20 waiting, and the whole fraud queue) and of
``customer_orders`` (the newest 20 of a regular customer, who placed 30 of the delivered
orders whatever the history's size; the rest are spread over a third as many customers as
orders), and each one's ratio against the smallest history, in the same process.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import attrs
from _timing import Timing, measure

from omscore import OMS
from omscore.adapters.sqlite import SqliteStore
from omscore.bench import prepared
from omscore.testing import ManualClock

#: Orders in the stream ``omscore.bench.prepared`` makes.
DRAFTS = 20_000

#: The customer whose orders are read, and how many of the history's orders are theirs.
REGULAR, REGULAR_ORDERS = "C-0", 30


def filled(path: Path, history: int, live: int) -> tuple[OMS, SqliteStore, str]:
    """An OMS on a new file with ``history`` delivered orders and ``live`` open ones, and
    the warehouse with the most open fulfilment orders."""
    store = SqliteStore(str(path))
    clock = ManualClock()
    oms, drafts = prepared(store, clock)
    regular_every = max(1, history // REGULAR_ORDERS)
    for n, draft in enumerate(drafts[:history]):
        clock.advance(timedelta(minutes=1))
        customer = REGULAR if n % regular_every == 0 else f"C-{1 + n % max(1, history // 3)}"
        order = oms.place_order(attrs.evolve(draft, customer_ref=customer))
        oms.allocate(order.id)
        f = oms.get_order(order.id).fulfillments[0]
        oms.ship(f.id, tracking=f"T-{f.id}")
        oms.deliver(f.id)
    where: Counter[str] = Counter()
    for n, draft in enumerate(drafts[history : history + live]):
        clock.advance(timedelta(minutes=1))
        order = oms.place_order(draft)
        if n % 4 == 0:
            oms.hold(order.id, "fraud", reason="score over 90")
            continue
        oms.allocate(order.id)
        where[oms.get_order(order.id).fulfillments[0].location_id] += 1
    clock.advance(timedelta(hours=2))
    return oms, store, where.most_common(1)[0][0]


def timings(oms: OMS, busiest: str, repeat: int) -> list[Timing]:
    """The six reads, ``repeat`` times each."""
    reads: list[tuple[str, Callable[[], object]]] = [
        (f"queue at {busiest}, first 20", lambda: oms.fulfillment_queue(busiest, limit=20)),
        (f"queue at {busiest}, all", lambda: oms.fulfillment_queue(busiest)),
        (
            "stalled 1 h, 20 longest anywhere",
            lambda: oms.stalled_fulfillments(timedelta(hours=1), limit=20),
        ),
        ("orders waiting, first 20", lambda: oms.order_queue(limit=20)),
        ("orders on a fraud hold, all", lambda: oms.order_queue(hold="fraud")),
        (
            f"orders of customer {REGULAR}, newest 20",
            lambda: oms.customer_orders(REGULAR, limit=20),
        ),
    ]
    return [measure(name, read, repeat) for name, read in reads]


def main() -> None:
    """Fill a store per history size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", default="1000,15000")
    parser.add_argument("--live", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.history.split(","))
    if sizes[-1] + args.live > DRAFTS or args.live < 2:
        parser.error(f"history + live must be at most {DRAFTS:,}, and live at least 2")
    print(
        "omscore queue benchmark: fulfillment_queue / stalled_fulfillments / order_queue / "
        "customer_orders on SqliteStore; "
        f"reproduce: python benchmarks/queues.py --history {args.history} --live {args.live} "
        f"--repeat {args.repeat}"
    )
    results = []
    with tempfile.TemporaryDirectory() as directory:
        for size in sizes:
            oms, store, busiest = filled(Path(directory) / f"q-{size}.db", size, args.live)
            results.append((size, timings(oms, busiest, args.repeat)))
            store.close()
    baseline = results[0][1]
    for size, measured in results:
        print(f"  {size:,} delivered orders behind {args.live} live ones:")
        for timing, base in zip(measured, baseline, strict=True):
            print(f"    {timing.line()}   x{timing.median / base.median:.2f} the smallest")


if __name__ == "__main__":
    main()
