"""Several processes on one SQLite file: does place + allocate throughput grow with them?

    python benchmarks/processes.py [--orders 4000] [--processes 1,2,3] [--rounds 2]

For each process count, a fresh ``SqliteStore`` file gets the network of
benchmarks/store.py, then that many worker processes (forked) place and allocate an equal
share of ``--orders`` one-line orders at once, each with its own ids. It prints the
orders per second of all workers together (from the first start to the last finish, the
median over rounds) and the ratio against one process, measured in the same run. For
comparison it also times pure Python arithmetic in the same process counts: the most any
program of this kind could gain from more processes on this machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Barrier
from pathlib import Path

from omscore import OMS, OrderDraft
from omscore.adapters.sqlite import CheckpointMode, SqliteStore
from omscore.bench import prepared
from omscore.sourcing import LowestCostPolicy
from omscore.testing import ManualClock


class _WorkerIds:
    """``prefix-wN``: ids no other worker hands out."""

    def __init__(self, worker: int) -> None:
        self.worker, self.count = worker, 0

    def new_id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}-w{self.worker}-{self.count}"


def _place_and_allocate(
    db: str,
    checkpoint: CheckpointMode,
    worker: int,
    drafts: Sequence[OrderDraft],
    start: Barrier,
    times: list[float],
) -> None:
    store = SqliteStore(db, checkpoint=checkpoint)
    oms = OMS(store, clock=ManualClock(), ids=_WorkerIds(worker), sourcing=LowestCostPolicy())
    start.wait()
    began = time.perf_counter()
    for draft in drafts:
        oms.allocate(oms.place_order(draft).id)
    times[2 * worker : 2 * worker + 2] = [began, time.perf_counter()]
    store.close()


#: Iterations of the arithmetic each worker does (about half a second).
ARITHMETIC = 10_000_000


def _arithmetic(worker: int, start: Barrier, times: list[float]) -> None:
    start.wait()
    began = time.perf_counter()
    total = 0
    for i in range(ARITHMETIC):
        total += i * i
    times[2 * worker : 2 * worker + 2] = [began, time.perf_counter()]


def _together(processes: int, target: Callable[..., None], jobs: list[tuple[object, ...]]) -> float:
    """Seconds from the first worker's start to the last worker's finish."""
    context = multiprocessing.get_context("fork")
    start = context.Barrier(processes)
    with context.Manager() as manager:
        shared = manager.list([0.0] * (2 * processes))
        workers = [context.Process(target=target, args=(*job, start, shared)) for job in jobs]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        times = list(shared)
    return max(times[1::2]) - min(times[0::2])


def orders_per_second(orders: int, processes: int, checkpoint: CheckpointMode = "auto") -> float:
    """All workers' orders per second on one fresh file (each worker's store checkpoints
    as ``checkpoint`` says)."""
    with tempfile.TemporaryDirectory() as folder:
        db = str(Path(folder) / "shared.db")
        setup = SqliteStore(db)
        _, drafts = prepared(setup)
        setup.close()
        share = orders // processes
        jobs: list[tuple[object, ...]] = [
            (db, checkpoint, w, drafts[w * share : (w + 1) * share]) for w in range(processes)
        ]
        return share * processes / _together(processes, _place_and_allocate, jobs)


def arithmetic_speedup(processes: int) -> float:
    """Work per second of the arithmetic workers, relative to one worker doing it alone."""
    alone = _together(1, _arithmetic, [(0,)])
    together = _together(processes, _arithmetic, [(w,) for w in range(processes)])
    return processes * alone / together


def main() -> None:
    """Measure each process count and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=4_000)
    parser.add_argument("--processes", default="1,2,3")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--checkpoint", choices=["auto", "background"], default="auto")
    args = parser.parse_args()
    counts = sorted({int(x) for x in args.processes.split(",")} | {1})
    print(
        "omscore processes benchmark: place + allocate from several processes on one "
        f"SqliteStore file; reproduce: python benchmarks/processes.py --orders {args.orders} "
        f"--processes {args.processes} --rounds {args.rounds} --checkpoint {args.checkpoint}"
    )
    rates = {
        n: statistics.median(
            orders_per_second(args.orders, n, args.checkpoint) for _ in range(args.rounds)
        )
        for n in counts
    }
    for n in counts:
        cpu = arithmetic_speedup(n) if n > 1 else 1.0
        print(
            f"  {n} process(es): {rates[n]:>7,.0f} orders/s   x{rates[n] / rates[1]:.2f} one "
            f"process   (pure Python arithmetic: x{cpu:.2f})"
        )


if __name__ == "__main__":
    main()
