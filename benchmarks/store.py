"""Store benchmark: place + allocate throughput on SqliteStore, its bare SQL, and memory.

    python benchmarks/store.py [--orders 2000] [--rounds 3] [--one-command]
                               [--checkpoint auto|background] [--synchronous NORMAL|FULL]

Each round runs the same order stream five ways, in the same process:

1. ``OMS`` on ``SqliteStore`` (a fresh file, WAL, synchronous=NORMAL): ``place_order`` then
   ``allocate`` for every order. An untimed repeat of the same deterministic stream on
   another fresh file records every statement the store executes.
2. The bare SQL of run 1: the recorded statements (same rows, same transactions, same
   BEGIN IMMEDIATE / COMMIT) replayed with plain ``sqlite3`` on a fresh file prepared
   the same way. This is the floor: what those commands cost in SQLite alone.
3. ``OMS`` on ``MemoryStore``.
4. ``OMS`` on ``MemoryStore`` again, with each command's recorded statements of run 1
   replayed on a bare connection right after it: the domain's Python and the store's SQL,
   interleaved as a store interleaves them, with nothing of the store's own Python. This
   is the rate of a store whose own code cost nothing, so ``bare / (4)`` is the highest
   ratio to bare SQL any store could reach with this domain on this machine.
5. The statements of run 2 again, on an in-memory copy of the prepared file: what they
   cost without the file (its writes, locks and syncs), printed for reference.

With ``--checkpoint background`` the store checkpoints from a thread of its own, and the
bare replay does the same (a thread checkpoints after its commits), so both still run the
same work. With ``--synchronous FULL`` the store syncs the log on every commit, and so do
the bare replays on a file.

It prints orders per second for each (median over rounds), the ratio SQLite / bare SQL,
the ceiling (4) / bare SQL, and the one over the other: how near the store comes to the
best a store of this domain can do.
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
from typing import Any, Literal

from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import (
    BACKSTOP_PAGES,
    CHECKPOINT_INTERVAL,
    Checkpointer,
    CheckpointMode,
    SqliteStore,
)
from omscore.bench import machine_line, place_and_allocate, prepared, python_loop_seconds

Statement = tuple[str, str, Any]
Synchronous = Literal["NORMAL", "FULL"]

#: What a replay must end with, as the store ended: every row written, at its version.
WRITTEN = (
    "SELECT (SELECT COUNT(*) || ',' || TOTAL(version) FROM orders) || ';' || "
    "(SELECT COUNT(*) || ',' || TOTAL(version) FROM items) || ';' || "
    "(SELECT COUNT(*) || ',' || TOTAL(on_hand + allocated + reserved) FROM levels) || ';' || "
    "(SELECT COUNT(*) FROM holds) || ';' || (SELECT COUNT(*) FROM movements) || ';' || "
    "(SELECT COUNT(*) FROM outbox)"
)


def sqlite_round(
    directory: Path,
    count: int,
    one_command: bool,
    checkpoint: CheckpointMode = "auto",
    synchronous: Synchronous = "NORMAL",
) -> tuple[float, list[Statement], str]:
    """Seconds for ``count`` orders on SqliteStore, the statements they executed, and what
    the file ends with (``WRITTEN``).

    The statements are recorded in a second, untimed run of the same deterministic stream
    on another fresh file (recording costs time and memory the store would not spend), and
    the two files must end with the same counts.
    """
    timed = SqliteStore(
        str(directory / "omscore.db"), checkpoint=checkpoint, synchronous=synchronous
    )
    oms, drafts = prepared(timed)
    seconds = place_and_allocate(oms, drafts[:count], one_command=one_command)
    recorded = SqliteStore(str(directory / "recorded.db"), synchronous=synchronous)
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
    written = str(recorded.connection().execute(WRITTEN).fetchone()[0])
    timed.close()
    recorded.close()
    return seconds, log, written


class BareReplay:
    """Plain sqlite3 on a fresh file prepared like the store's (WAL, the store's
    ``synchronous``); with ``checkpoint="background"`` a thread checkpoints after commits,
    as the store's."""

    def __init__(
        self,
        path: Path,
        checkpoint: CheckpointMode = "auto",
        *,
        in_memory: bool = False,
        synchronous: Synchronous = "NORMAL",
    ) -> None:
        store = SqliteStore(str(path))
        prepared(store)
        store.close()
        self.connection = sqlite3.connect(str(path), isolation_level=None)
        self.checkpointer = None
        if in_memory:
            copy = sqlite3.connect(":memory:", isolation_level=None)
            self.connection.backup(copy)
            self.connection.close()
            self.connection = copy
            return
        self.connection.execute("PRAGMA journal_mode = WAL")
        self.connection.execute(f"PRAGMA synchronous = {synchronous}")
        if checkpoint == "background":
            self.connection.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
            connect = functools.partial(sqlite3.connect, str(path), isolation_level=None)
            self.checkpointer = Checkpointer(connect, CHECKPOINT_INTERVAL)

    def replay(self, statements: list[Statement]) -> None:
        """Run ``statements`` as the store ran them."""
        execute, executemany = self.connection.execute, self.connection.executemany
        checkpointer = self.checkpointer
        for kind, sql, args in statements:
            if kind == "many":
                executemany(sql, args)
            else:
                execute(sql, args).fetchall()
                if checkpointer is not None and sql == "COMMIT":
                    checkpointer.wake()

    def check(self, written: str) -> None:
        """Fail unless the file ends as the store's did (a replay that skipped rows, or
        updated none, would have done less work than the store)."""
        replayed = self.connection.execute(WRITTEN).fetchone()[0]
        if replayed != written:
            raise AssertionError(f"the replay wrote {replayed}, the store {written}")

    def close(self) -> None:
        """Stop the checkpointer and close the connection."""
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.connection.close()


def bare_round(
    directory: Path,
    log: list[Statement],
    written: str,
    checkpoint: CheckpointMode = "auto",
    *,
    in_memory: bool = False,
    synchronous: Synchronous = "NORMAL",
) -> float:
    """Seconds to replay ``log`` with plain sqlite3 on a file prepared like the store's
    (``in_memory``: on an in-memory copy of it)."""
    name = "bare-in-memory.db" if in_memory else "bare.db"
    bare = BareReplay(directory / name, checkpoint, in_memory=in_memory, synchronous=synchronous)
    gc.collect()
    start = time.perf_counter()
    bare.replay(log)
    seconds = time.perf_counter() - start
    bare.check(written)
    bare.close()
    return seconds


def per_command(log: list[Statement]) -> list[list[Statement]]:
    """``log`` cut into its transactions, one per command, each ending with its COMMIT."""
    commands: list[list[Statement]] = [[]]
    for statement in log:
        commands[-1].append(statement)
        if statement[1] == "COMMIT":
            commands.append([])
    if commands[-1]:
        raise AssertionError("the recorded log ends inside a transaction")
    return commands[:-1]


def interleaved_round(
    directory: Path,
    log: list[Statement],
    written: str,
    count: int,
    one_command: bool,
    checkpoint: CheckpointMode = "auto",
    synchronous: Synchronous = "NORMAL",
) -> float:
    """Seconds for ``count`` orders on MemoryStore with each command's recorded statements
    replayed on a bare connection right after the command: a store with no Python of its
    own."""
    commands = iter(per_command(log))
    bare = BareReplay(directory / "interleaved.db", checkpoint, synchronous=synchronous)
    oms, drafts = prepared(MemoryStore())
    replay = bare.replay
    gc.collect()
    start = time.perf_counter()
    for draft in drafts[:count]:
        if one_command:
            oms.place_order(draft, allocate=True)
            replay(next(commands))
        else:
            order = oms.place_order(draft)
            replay(next(commands))
            oms.allocate(order.id)
            replay(next(commands))
    seconds = time.perf_counter() - start
    if next(commands, None) is not None:
        raise AssertionError("the orders ran fewer commands than the store recorded")
    bare.check(written)
    bare.close()
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
        "--synchronous",
        choices=["NORMAL", "FULL"],
        default="NORMAL",
        help="SqliteStore's synchronous setting (and the same for the bare-SQL replays)",
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
    rates: dict[str, list[float]] = {
        "sqlite": [],
        "bare": [],
        "memory": [],
        "interleaved": [],
        "bare_in_memory": [],
    }
    statements = 0
    loop_seconds = python_loop_seconds()
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as directory:
            folder = Path(directory)
            seconds, log, written = sqlite_round(
                folder, args.orders, args.one_command, args.checkpoint, args.synchronous
            )
            rates["sqlite"].append(args.orders / seconds)
            bare = bare_round(folder, log, written, args.checkpoint, synchronous=args.synchronous)
            rates["bare"].append(args.orders / bare)
            interleaved = interleaved_round(
                folder,
                log,
                written,
                args.orders,
                args.one_command,
                args.checkpoint,
                args.synchronous,
            )
            rates["interleaved"].append(args.orders / interleaved)
            in_memory = bare_round(folder, log, written, in_memory=True)
            rates["bare_in_memory"].append(args.orders / in_memory)
            statements = len(log)
        rates["memory"].append(args.orders / memory_round(args.orders, args.one_command))
    median = {name: statistics.median(values) for name, values in rates.items()}
    tuned = f" --gc-threshold {args.gc_threshold}" if args.gc_threshold is not None else ""
    tuned += " --one-command" if args.one_command else ""
    tuned += f" --checkpoint {args.checkpoint}" if args.checkpoint != "auto" else ""
    tuned += f" --synchronous {args.synchronous}" if args.synchronous != "NORMAL" else ""
    how = "place_order(allocate=True)" if args.one_command else "place_order + allocate"
    print(
        f"omscore store benchmark: {how}, {args.orders} one-line orders, "
        f"{args.rounds} rounds, gc thresholds {gc.get_threshold()}; reproduce: python "
        f"benchmarks/store.py --orders {args.orders} --rounds {args.rounds}{tuned}"
    )
    print(machine_line(loop_seconds))
    print(f"  statements per order (bare SQL replays them): {statements / args.orders:.1f}")
    for name, label in (
        ("sqlite", "SqliteStore"),
        ("bare", "bare SQL, same statements"),
        ("memory", "MemoryStore"),
        ("interleaved", "MemoryStore + the same SQL"),
        ("bare_in_memory", "same SQL, in-memory copy"),
    ):
        runs = ", ".join(f"{r:,.0f}" for r in rates[name])
        print(f"  {label:<28} {median[name]:>9,.0f} orders/s   (rounds: {runs})")
    ratio = median["sqlite"] / median["bare"]
    print(f"  SqliteStore / bare SQL       {ratio:>9.2f}")
    ceiling = median["interleaved"] / median["bare"]
    print(
        f"  ceiling: a store with no Python of its own (MemoryStore + the same SQL) "
        f"/ bare SQL {ceiling:.2f}"
    )
    print(
        f"  SqliteStore / the ceiling    {ratio / ceiling:>9.2f}   (how near the store comes to "
        "the best rate a store of this domain can reach)"
    )
    per_order = {name: 1e6 / rate for name, rate in median.items()}
    allowed = per_order["bare"] / 0.6 - per_order["bare"]
    print(
        f"  per order: SQL {per_order['bare']:.0f} us, SqliteStore's Python "
        f"{per_order['sqlite'] - per_order['bare']:.0f} us (0.6 allows {allowed:.0f} us), "
        f"the whole domain on MemoryStore {per_order['memory']:.0f} us"
    )
    print(
        f"  of SqliteStore's Python: the domain beside its SQL "
        f"{per_order['interleaved'] - per_order['bare']:.0f} us, the store's own "
        f"{per_order['sqlite'] - per_order['interleaved']:.0f} us"
    )
    print(
        f"targets: SQLite >= 0.6 of bare SQL [{'met' if ratio >= 0.6 else 'MISSED'}], "
        f"SQLite > 1,500 orders/s [{'met' if median['sqlite'] > 1500 else 'MISSED'}], "
        f"memory > 10,000 orders/s [{'met' if median['memory'] > 10_000 else 'MISSED'}]"
    )


if __name__ == "__main__":
    main()
