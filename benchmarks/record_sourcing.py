"""What keeping sourcing decisions costs: place + allocate with ``record_sourcing`` on and off.

    python benchmarks/record_sourcing.py [--orders 1000] [--rounds 3]

The order stream of benchmarks/store.py, on each store, in one process: every order is
placed and allocated, once by an OMS that records nothing more (the baseline) and once by
one that records a ``SourcingDecided`` event with the plan's trace and explanation. Rounds
alternate the two, each on a fresh store. It prints the median and p99 of one order's two
commands and the ratio of the medians (recording / baseline).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import STORES, Timing, fresh_store

from omscore.bench import prepared
from omscore.events import SourcingDecided


def per_order(store_name: str, count: int, record: bool) -> list[float]:
    """Seconds of place + allocate for each of ``count`` orders on a fresh store."""
    with fresh_store(store_name) as store:
        oms, drafts = prepared(store)
        oms.record_sourcing = record
        samples = []
        for draft in drafts[:count]:
            start = time.perf_counter()
            oms.allocate(oms.place_order(draft).id)
            samples.append(time.perf_counter() - start)
        recorded = sum(isinstance(e, SourcingDecided) for e in oms.events())
        if record != (recorded > 0):
            raise AssertionError(f"record_sourcing={record} recorded {recorded} decisions")
    return samples


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(
        f"omscore record_sourcing benchmark: place + allocate, {args.orders} orders x "
        f"{args.rounds} rounds per store; reproduce: python benchmarks/record_sourcing.py "
        f"--orders {args.orders} --rounds {args.rounds}"
    )
    for store_name in STORES:
        off: list[float] = []
        on: list[float] = []
        for _ in range(args.rounds):
            off += per_order(store_name, args.orders, record=False)
            on += per_order(store_name, args.orders, record=True)
        baseline = Timing(f"{store_name}, nothing recorded (baseline)", tuple(off))
        recording = Timing(f"{store_name}, decisions recorded", tuple(on))
        print(f"  {baseline.line()}")
        print(f"  {recording.line()}")
        print(f"  {'ratio of medians':<44} {recording.median / baseline.median:13.2f}")


if __name__ == "__main__":
    main()
