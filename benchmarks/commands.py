"""What each command costs over a long simulated run, early against late.

    python benchmarks/commands.py [--orders 20000] [--memory] [--seed 7]

Runs the main job (``omscore.simulate``, the lowest-cost policy) with a timer around every
public ``OMS`` command and splits the calls into quarters of the run by how many orders had
been placed. For each command with enough calls it prints the median and p99 in the first
and in the last quarter, and the ratio of the two medians (last / first) - above 1 would
mean a command gets slower as the store's history grows. It also prints, per quarter, the
commands run per order placed and the orders placed per second: the simulated retailer's
stock thins as the run goes on, so more orders split and each order takes more commands
(shipments, deliveries), and orders per second can fall while no command costs more.
The timers (two ``perf_counter`` calls and a wrapper, well under a microsecond) are
inside every figure alike.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omscore import OMS
from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.ports import Store
from omscore.simulate import run

QUARTERS = 4


class Timings:
    """Every command's durations, each tagged with the orders placed before it."""

    def __init__(self) -> None:
        self.placed = 0
        self.calls: dict[str, list[tuple[int, float]]] = defaultdict(list)

    def wrap(self, name: str, command: Callable[..., Any]) -> Callable[..., Any]:
        """``command`` with a timer that files each call under ``name``."""
        calls, clock = self.calls[name], time.perf_counter

        @functools.wraps(command)
        def timed(oms: OMS, *args: Any, **kwargs: Any) -> Any:
            placed, start = self.placed, clock()
            try:
                return command(oms, *args, **kwargs)
            finally:
                calls.append((placed, clock() - start))
                if name == "place_order":
                    self.placed += 1

        return timed

    def quarter(self, placed: int) -> int:
        """Which quarter of the run a call falls in."""
        return min(placed * QUARTERS // max(self.placed, 1), QUARTERS - 1)


def timed_commands(timings: Timings) -> None:
    """Put a timer around every public command of ``OMS`` (for this process)."""
    for name, member in vars(OMS).items():
        if not name.startswith("_") and callable(member):
            setattr(OMS, name, timings.wrap(name, member))
    for base in OMS.__mro__[1:]:
        for name, member in vars(base).items():
            if not name.startswith("_") and callable(member) and name not in vars(OMS):
                setattr(OMS, name, timings.wrap(name, member))


def p99(values: list[float]) -> float:
    """The 99th percentile."""
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def report(timings: Timings, seconds_per_quarter: list[float]) -> None:
    """Print the per-quarter workload and the per-command table."""
    per_quarter: list[dict[str, list[float]]] = [defaultdict(list) for _ in range(QUARTERS)]
    for name, calls in timings.calls.items():
        for placed, seconds in calls:
            per_quarter[timings.quarter(placed)][name].append(seconds)
    print("quarter  orders placed  commands per order  orders/s (time in commands)")
    for q, commands in enumerate(per_quarter):
        placed = len(commands.get("place_order", []))
        count = sum(len(v) for v in commands.values())
        rate = placed / seconds_per_quarter[q] if seconds_per_quarter[q] else 0.0
        print(f"  {q + 1}      {placed:>13,}  {count / max(placed, 1):>18.2f}  {rate:>8,.0f}")
    first, last = per_quarter[0], per_quarter[-1]
    print(
        f"{'command':<22} {'calls':>8}  {'first: median':>13} {'p99':>8}  "
        f"{'last: median':>12} {'p99':>8}  {'last/first':>10}"
    )
    names = sorted(timings.calls, key=lambda n: -sum(s for _, s in timings.calls[n]))
    for name in names:
        early, late = first.get(name, []), last.get(name, [])
        if len(early) < 50 or len(late) < 50:
            continue
        e, lt = statistics.median(early), statistics.median(late)
        count = len(timings.calls[name])
        print(
            f"{name:<22} {count:>8,}  {e * 1e6:>10.0f} us {p99(early) * 1e6:>5.0f} us"
            f"  {lt * 1e6:>9.0f} us {p99(late) * 1e6:>5.0f} us  {lt / e:>10.2f}"
        )


def main() -> None:
    """Run the simulation with timed commands and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--memory", action="store_true", help="MemoryStore instead of SQLite")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    timings = Timings()
    timed_commands(timings)
    with tempfile.TemporaryDirectory() as directory:
        store: Store = (
            MemoryStore() if args.memory else SqliteStore(str(Path(directory) / "run.db"))
        )
        start = time.perf_counter()
        result = run(store, orders=args.orders, seed=args.seed, policy="lowest_cost", progress=None)
        elapsed = time.perf_counter() - start
        if isinstance(store, SqliteStore):
            store.close()
    seconds = [0.0] * QUARTERS
    for calls in timings.calls.values():
        for placed, s in calls:
            seconds[timings.quarter(placed)] += s
    kind = "MemoryStore" if args.memory else "SqliteStore"
    flag = " --memory" if args.memory else ""
    print(
        f"omscore command costs over a simulated run: {kind}, {args.orders:,} checkouts, "
        f"seed {args.seed}, {result.orders:,} orders in {elapsed:.1f} s; reproduce: python "
        f"benchmarks/commands.py --orders {args.orders} --seed {args.seed}{flag}"
    )
    report(timings, seconds)


if __name__ == "__main__":
    main()
