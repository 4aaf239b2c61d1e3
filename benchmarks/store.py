"""Store benchmark: place + allocate throughput on SqliteStore, its bare SQL, and memory.

    python benchmarks/store.py [--orders 2000] [--rounds 3] [--one-command]
                               [--checkpoint auto|background]

Each round runs the same order stream three ways, in the same process:

1. ``OMS`` on ``SqliteStore`` (a fresh file, WAL, synchronous=NORMAL): ``place_order`` then
   ``allocate`` for every order. An untimed repeat of the same deterministic stream on
   another fresh file records every statement the store executes.
2. The bare SQL of run 1: the recorded statements (same rows, same transactions, same
   BEGIN IMMEDIATE / COMMIT) replayed with plain ``sqlite3`` on a fresh file prepared
   the same way. This is the floor: what those commands cost in SQLite alone.
3. ``OMS`` on ``MemoryStore``.

With ``--checkpoint background`` the store checkpoints from a thread of its own, and the
bare replay does the same (a thread checkpoints after its commits), so both still run the
same work.

It prints orders per second for each (median over rounds) and the ratio SQLite / bare SQL.
The network is small (three warehouses, 200 SKUs, one-line orders) so that the store, not
sourcing, is what is measured; benchmarks/sourcing.py measures sourcing.
"""

from __future__ import annotations

import argparse
import functools
import gc
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import (
    BACKSTOP_PAGES,
    CHECKPOINT_INTERVAL,
    Checkpointer,
    CheckpointMode,
    SqliteStore,
)
from omscore.bench import place_and_allocate, prepared


def sqlite_round(
    directory: Path, count: int, one_command: bool, checkpoint: CheckpointMode = "auto"
) -> tuple[float, list[tuple[str, str, Any]]]:
    """Seconds for ``count`` orders on SqliteStore, and the statements they executed.

    The statements are recorded in a second, untimed run of the same deterministic stream
    on another fresh file (recording costs time and memory the store would not spend), and
    the two files must end with the same counts.
    """
    timed = SqliteStore(str(directory / "omscore.db"), checkpoint=checkpoint)
    oms, drafts = prepared(timed)
    seconds = place_and_allocate(oms, drafts[:count], one_command=one_command)
    recorded = SqliteStore(str(directory / "recorded.db"))
    oms, drafts = prepared(recorded)
    recorded.statement_log = []
    place_and_allocate(oms, drafts[:count], one_command=one_command)
    log, recorded.statement_log = recorded.statement_log, None
    events = timed.counts()["outbox"]
    last = [r.event for r in timed.outbox(after=events - 20)]
    if timed.counts() != recorded.counts() or last != [
        r.event for r in recorded.outbox(after=events - 20)
    ]:
        raise AssertionError("the recorded run did not repeat the timed run")
    timed.close()
    recorded.close()
    return seconds, log


def bare_round(
    directory: Path, log: list[tuple[str, str, Any]], checkpoint: CheckpointMode = "auto"
) -> float:
    """Seconds to replay ``log`` with plain sqlite3 on a file prepared like the store's;
    with ``checkpoint="background"`` a thread checkpoints after commits, as the store's."""
    path = str(directory / "bare.db")
    store = SqliteStore(path)
    prepared(store)
    store.close()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    checkpointer = None
    if checkpoint == "background":
        connection.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
        connect = functools.partial(sqlite3.connect, path, isolation_level=None)
        checkpointer = Checkpointer(connect, CHECKPOINT_INTERVAL)
    execute, executemany = connection.execute, connection.executemany
    gc.collect()
    start = time.perf_counter()
    for kind, sql, args in log:
        if kind == "many":
            executemany(sql, args)
        else:
            execute(sql, args).fetchall()
            if checkpointer is not None and sql == "COMMIT":
                checkpointer.wake()
    seconds = time.perf_counter() - start
    if checkpointer is not None:
        checkpointer.stop()
    connection.close()
    return seconds


def memory_round(count: int, one_command: bool) -> float:
    """Seconds for ``count`` orders on MemoryStore."""
    oms, drafts = prepared(MemoryStore())
    return place_and_allocate(oms, drafts[:count], one_command=one_command)


def main() -> None:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--one-command",
        action="store_true",
        help="place and allocate with place_order(draft, allocate=True): one transaction",
    )
    parser.add_argument(
        "--checkpoint",
        choices=["auto", "background"],
        default="auto",
        help="SqliteStore's checkpoint mode (and the same for the bare-SQL replay)",
    )
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=None,
        help="set the cyclic GC's generation-0 threshold, as a host may (default: Python's)",
    )
    args = parser.parse_args()
    if args.gc_threshold is not None:
        gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    rates: dict[str, list[float]] = {"sqlite": [], "bare": [], "memory": []}
    statements = 0
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as directory:
            seconds, log = sqlite_round(
                Path(directory), args.orders, args.one_command, args.checkpoint
            )
            rates["sqlite"].append(args.orders / seconds)
            rates["bare"].append(args.orders / bare_round(Path(directory), log, args.checkpoint))
            statements = len(log)
        rates["memory"].append(args.orders / memory_round(args.orders, args.one_command))
    median = {name: statistics.median(values) for name, values in rates.items()}
    tuned = f" --gc-threshold {args.gc_threshold}" if args.gc_threshold is not None else ""
    tuned += " --one-command" if args.one_command else ""
    tuned += f" --checkpoint {args.checkpoint}" if args.checkpoint != "auto" else ""
    how = "place_order(allocate=True)" if args.one_command else "place_order + allocate"
    print(
        f"omscore store benchmark: {how}, {args.orders} one-line orders, "
        f"{args.rounds} rounds, gc thresholds {gc.get_threshold()}; reproduce: python "
        f"benchmarks/store.py --orders {args.orders} --rounds {args.rounds}{tuned}"
    )
    print(f"  statements per order (bare SQL replays them): {statements / args.orders:.1f}")
    for name, label in (
        ("sqlite", "SqliteStore"),
        ("bare", "bare SQL, same statements"),
        ("memory", "MemoryStore"),
    ):
        runs = ", ".join(f"{r:,.0f}" for r in rates[name])
        print(f"  {label:<28} {median[name]:>9,.0f} orders/s   (rounds: {runs})")
    ratio = median["sqlite"] / median["bare"]
    print(f"  SqliteStore / bare SQL       {ratio:>9.2f}")
    per_order = {name: 1e6 / rate for name, rate in median.items()}
    allowed = per_order["bare"] / 0.6 - per_order["bare"]
    print(
        f"  per order: SQL {per_order['bare']:.0f} us, SqliteStore's Python "
        f"{per_order['sqlite'] - per_order['bare']:.0f} us (0.6 allows {allowed:.0f} us), "
        f"the whole domain on MemoryStore {per_order['memory']:.0f} us"
    )
    print(
        f"targets: SQLite >= 0.6 of bare SQL [{'met' if ratio >= 0.6 else 'MISSED'}], "
        f"SQLite > 1,500 orders/s [{'met' if median['sqlite'] > 1500 else 'MISSED'}], "
        f"memory > 10,000 orders/s [{'met' if median['memory'] > 10_000 else 'MISSED'}]"
    )


if __name__ == "__main__":
    main()
