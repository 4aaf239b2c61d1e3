"""Where place + allocate spend their time, step by step, on each store.

    python benchmarks/breakdown.py [--orders 3000]

The order stream of benchmarks/store.py. The steps of the two commands are timed where
they run: for the length of a run each step's function is wrapped with a timer, and on
SqliteStore every statement is timed inside sqlite3 as well. The cyclic collector is off
during the runs, so its pauses are not charged to whichever step happens to allocate.

Wrapping costs time of its own. The report gives each command's time per order without
wrappers (a first, plain run), the wrapped steps, and what one wrapper costs per call,
measured in the same process, so the steps can be read against the plain figure.
"""

from __future__ import annotations

import argparse
import functools
import gc
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from omscore import Order
from omscore._payments import Payments
from omscore._service import core, fulfilment
from omscore._service.core import ServiceCore
from omscore._service.orders import OrderUseCases
from omscore._stock import StockSession
from omscore.adapters.memory import MemoryStore, MemoryUnitOfWork
from omscore.adapters.sqlite import SqliteStore, SqliteUnitOfWork
from omscore.bench import prepared
from omscore.inventory import InventoryItem
from omscore.ports import Store
from omscore.sourcing import LowestCostPolicy

Owner = Any  # a class or a module whose attribute is wrapped

PLACE_STEPS: list[tuple[str, Owner, str]] = [
    ("draft check", ServiceCore, "_check_draft"),
    ("order from draft", Order, "from_checked_draft"),
    ("stock holds", ServiceCore, "_hold_new_order"),
    ("payment authorisation", Payments, "authorize"),
]
ALLOCATE_STEPS: list[tuple[str, Owner, str]] = [
    ("load order", fulfilment, "_load_order"),
    ("sourcing request", ServiceCore, "_request"),
    ("network snapshot", ServiceCore, "_snapshot"),
    ("sourcing plan (LowestCostPolicy)", LowestCostPolicy, "plan"),
    ("fulfilment orders from the plan", core, "_fulfillments_of"),
    ("Order.allocate", Order, "allocate"),
    ("item: release holds, allocate", InventoryItem, "allocate_order"),
    ("sync remaining holds", ServiceCore, "_sync_holds"),
]
SHARED_STEPS: list[tuple[str, Owner, str]] = [
    ("stock flush", StockSession, "flush"),
    ("commit (MemoryStore)", MemoryUnitOfWork, "commit"),
    ("commit (SqliteStore)", SqliteUnitOfWork, "commit"),
]
COMMANDS: list[tuple[str, Owner, str]] = [
    ("place_order", OrderUseCases, "place_order"),
    ("allocate", fulfilment.FulfilmentUseCases, "allocate"),
]


class Clock:
    """Seconds and calls per (command, step), charged to the command that runs; time
    inside sqlite3 is also charged to the innermost step running."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.calls: Counter[tuple[str, str]] = Counter()
        self.in_sqlite: dict[tuple[str, str], float] = defaultdict(float)
        self.running: list[str] = []

    def timed(self, label: str, function: Callable[..., Any]) -> Any:
        """``function`` with a timer that charges ``label``."""

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.running.append(label)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - start
                self.running.pop()
                key = (self.running[0] if self.running else label, label)
                self.seconds[key] += seconds
                self.calls[key] += 1

        return wrapper

    def sqlite(self, seconds: float) -> None:
        """Charge time spent inside sqlite3."""
        if self.running:
            self.in_sqlite[(self.running[0], self.running[-1])] += seconds


@contextmanager
def wrapped(clock: Clock) -> Iterator[None]:
    """Every step and command wrapped for the length of the block."""
    originals: list[tuple[Owner, str, Any]] = []
    for label, owner, name in PLACE_STEPS + ALLOCATE_STEPS + SHARED_STEPS + COMMANDS:
        original = owner.__dict__[name]
        function = original.__func__ if isinstance(original, classmethod) else original
        timed = clock.timed(label, function)
        setattr(owner, name, classmethod(timed) if isinstance(original, classmethod) else timed)
        originals.append((owner, name, original))
    try:
        yield
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)


class TimedConnection(sqlite3.Connection):
    """A connection that charges the time spent inside sqlite3 to the running command."""

    clock: Clock | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        """Run one statement, timed."""
        start = time.perf_counter()
        try:
            return super().execute(sql, parameters)
        finally:
            if TimedConnection.clock is not None:
                TimedConnection.clock.sqlite(time.perf_counter() - start)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        """Run one statement per row, timed."""
        start = time.perf_counter()
        try:
            return super().executemany(sql, parameters)
        finally:
            if TimedConnection.clock is not None:
                TimedConnection.clock.sqlite(time.perf_counter() - start)


def run(store: Store, orders: int) -> tuple[float, float]:
    """Seconds per order for place_order and for allocate, without wrappers."""
    oms, drafts = prepared(store)
    place = allocate = 0.0
    for draft in drafts[:orders]:
        start = time.perf_counter()
        order = oms.place_order(draft)
        middle = time.perf_counter()
        oms.allocate(order.id)
        place += middle - start
        allocate += time.perf_counter() - middle
    return place / orders, allocate / orders


def wrapper_cost() -> float:
    """Seconds one timer wrapper adds to a call."""
    clock = Clock()

    def bare() -> None:
        """The cheapest call there is."""

    timed = clock.timed("x", bare)
    rounds = 200_000
    start = time.perf_counter()
    for _ in range(rounds):
        bare()
    plain = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(rounds):
        timed()
    return (time.perf_counter() - start - plain) / rounds


def report(name: str, make: Callable[[], Store], orders: int, overhead: float) -> None:
    """Print one store's breakdown."""
    gc.collect()
    gc.disable()
    connect = sqlite3.connect
    try:
        plain = run(make(), orders)
        clock = Clock()
        TimedConnection.clock = clock
        sqlite3.connect = functools.partial(connect, factory=TimedConnection)  # type: ignore[assignment]
        with wrapped(clock):
            run(make(), orders)
    finally:
        sqlite3.connect = connect
        TimedConnection.clock = None
        gc.enable()
    print(f"{name} ({orders:,} orders; microseconds per order)")
    steps = [label for label, _, _ in PLACE_STEPS + ALLOCATE_STEPS + SHARED_STEPS]
    for (command, _, _), unwrapped in zip(COMMANDS, plain, strict=True):
        total = clock.seconds[(command, command)] / orders
        calls = sum(n for (c, _), n in clock.calls.items() if c == command) / orders
        sql = sum(t for (c, _), t in clock.in_sqlite.items() if c == command) / orders
        print(
            f"  {command:<34} {unwrapped * 1e6:7.1f} without timers; {total * 1e6:7.1f} with "
            f"({calls:.0f} timed calls, about {calls * overhead * 1e6:.1f} of it timers)"
            + (f"; {sql * 1e6:.1f} inside sqlite3" if sql else "")
        )
        for label in steps:
            if clock.calls[(command, label)] == 0:
                continue
            seconds = clock.seconds[(command, label)] / orders
            inside = clock.in_sqlite[(command, label)] / orders
            note = f"   ({inside * 1e6:.1f} inside sqlite3)" if inside else ""
            print(f"    {label:<32} {seconds * 1e6:7.1f}{note}")


def main() -> None:
    """Both stores, one after the other."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3_000)
    args = parser.parse_args()
    overhead = wrapper_cost()
    print(
        f"omscore breakdown of place + allocate; one timer wrapper costs "
        f"{overhead * 1e6:.2f} us per call; reproduce: python benchmarks/breakdown.py "
        f"--orders {args.orders}"
    )
    report("MemoryStore", MemoryStore, args.orders, overhead)
    with tempfile.TemporaryDirectory() as directory:
        files = iter(range(1_000))

        def sqlite_store() -> Store:
            return SqliteStore(str(Path(directory) / f"run-{next(files)}.db"))

        report("SqliteStore", sqlite_store, args.orders, overhead)


if __name__ == "__main__":
    main()
