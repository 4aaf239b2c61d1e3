"""Outbox relay benchmark: reading and marking one page of events as the outbox grows.

    python benchmarks/relay.py [--sizes 10000,100000,300000] [--page 100] [--pages 50]

A relay polls ``unpublished(limit=page)``, hands the events on, and calls
``mark_published`` with the last position. That must cost the same whether the outbox
holds ten thousand events or millions (they are never deleted). For each size a fresh
``SqliteStore`` file is filled with that many events (stock receipts, a thousand to a
command), everything but the last ``page x pages`` events is marked published, and the
relay then works through the rest page by page. It prints the median and p99 of one poll
(read plus mark) at each size and the ratio against the smallest size, in the same process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _timing import Timing

from omscore import OMS, GeoPoint, Location
from omscore.adapters.sqlite import SqliteStore
from omscore.ids import LocationId
from omscore.service import StockPosition
from omscore.testing import ManualClock, SequentialIds

BATCH = 1_000


def filled(path: Path, events: int) -> SqliteStore:
    """A store whose outbox holds at least ``events`` events (stock receipts)."""
    store = SqliteStore(str(path))
    oms = OMS(store, clock=ManualClock(), ids=SequentialIds())
    oms.add_location(
        Location(id=LocationId("WH"), kind="warehouse", geo=GeoPoint(50, 8), capabilities={"ship"})
    )
    batch = [StockPosition("WH", f"SKU-{n:04d}", 1) for n in range(BATCH)]
    while store.counts()["outbox"] < events:
        oms.receive_many(batch)
    return store


def polls(store: SqliteStore, page: int, pages: int) -> Timing:
    """Mark all but the last ``page x pages`` events published, then time each poll."""
    total = store.counts()["outbox"]
    store.mark_published(total - page * pages)
    samples = []
    while True:
        start = time.perf_counter()
        records = store.unpublished(limit=page)
        if not records:
            break
        store.mark_published(records[-1].position)
        samples.append(time.perf_counter() - start)
    return Timing(f"{total:>9,} events: one poll of {page}", tuple(samples))


def main() -> None:
    """Fill a store per size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,300000")
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--pages", type=int, default=50)
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.sizes.split(","))
    print(
        "omscore relay benchmark: unpublished(limit) + mark_published on SqliteStore; "
        f"reproduce: python benchmarks/relay.py --sizes {args.sizes} --page {args.page} "
        f"--pages {args.pages}"
    )
    timings = []
    with tempfile.TemporaryDirectory() as directory:
        for size in sizes:
            store = filled(Path(directory) / f"outbox-{size}.db", size)
            timings.append(polls(store, args.page, args.pages))
            store.close()
    smallest = timings[0].median
    for timing in timings:
        print(f"  {timing.line()}   x{timing.median / smallest:.2f} the smallest outbox")


if __name__ == "__main__":
    main()
