"""``python -m omscore bench``: what place + allocate cost on this machine, per store.

A small network (three stocked warehouses, 200 SKUs, one-line orders shipped to Berlin)
so that the store and the domain, not sourcing, are what is measured. Each round places
and allocates the same deterministic order stream on a fresh ``MemoryStore``, on a
fresh ``SqliteStore`` file (WAL, ``synchronous=NORMAL``), and on one that checkpoints from
a thread of its own (``checkpoint="background"``), and times every order. The
report gives orders per second (the median round) and the median and p99 of one order's
place + allocate, and how fast the machine ran a plain Python loop just before
(:func:`python_loop_seconds`), to scale the figures by. ``benchmarks/store.py`` in the
source tree adds the bare-SQL baseline.
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.adapters.system import SequentialIds
from omscore.errors import InvalidQuantity
from omscore.geo import Address, GeoPoint
from omscore.inventory import Capability, Location, LocationKind
from omscore.money import Money
from omscore.orders import Delivery, LineDraft, OrderDraft
from omscore.ports import Store
from omscore.service import OMS, StockPosition
from omscore.sourcing import LowestCostPolicy
from omscore.testing.clock import ManualClock

SEED = 5
#: Additions in the loop :func:`python_loop_seconds` times.
LOOP_ADDITIONS = 10_000_000
#: The name ``bench`` reports ``SqliteStore(path, checkpoint="background")`` under.
BACKGROUND = "SqliteStore, checkpoint=background"


def prepared(store: Store, clock: ManualClock | None = None) -> tuple[OMS, list[OrderDraft]]:
    """An OMS on ``store`` with three stocked warehouses, and a stream of 20,000 drafts."""
    rng = random.Random(SEED)
    oms = OMS(store, clock=clock or ManualClock(), ids=SequentialIds(), sourcing=LowestCostPolicy())
    for i in range(3):
        oms.add_location(
            Location(
                id=f"WH-{i}",
                kind=LocationKind.WAREHOUSE,
                geo=GeoPoint(48 + 2 * i, 8 + 2 * i),
                capabilities={Capability.SHIP},
                priority=1,
            )
        )
    skus = [f"SKU-{n:03d}" for n in range(200)]
    oms.receive_many([StockPosition(f"WH-{i}", sku, 1_000_000) for i in range(3) for sku in skus])
    home = Address("DE", "10115", "Berlin", geo=GeoPoint(52.53, 13.38))
    drafts = [
        OrderDraft(
            channel="web",
            currency="EUR",
            delivery=Delivery.ship(home),
            lines=[LineDraft(rng.choice(skus), 1, Money("19.99", "EUR"))],
        )
        for _ in range(20_000)
    ]
    return oms, drafts


def place_and_allocate(oms: OMS, drafts: list[OrderDraft], *, one_command: bool = False) -> float:
    """Seconds to place and allocate every draft (after collecting the garbage earlier runs
    left, so that no run pays for another's): ``place_order`` then ``allocate``, or with
    ``one_command`` ``place_order(draft, allocate=True)``."""
    gc.collect()
    start = time.perf_counter()
    if one_command:
        for draft in drafts:
            oms.place_order(draft, allocate=True)
    else:
        for draft in drafts:
            oms.allocate(oms.place_order(draft).id)
    return time.perf_counter() - start


def timed_orders(oms: OMS, drafts: list[OrderDraft], *, one_command: bool = False) -> list[float]:
    """Seconds of each draft's place + allocate (``one_command``: in one command)."""
    gc.collect()
    clock = time.perf_counter
    seconds = []
    for draft in drafts:
        start = clock()
        if one_command:
            oms.place_order(draft, allocate=True)
        else:
            oms.allocate(oms.place_order(draft).id)
        seconds.append(clock() - start)
    return seconds


def python_loop_seconds(additions: int = LOOP_ADDITIONS, tries: int = 2) -> float:
    """Seconds for a plain Python loop of ``additions`` additions (``x += i``), the fastest
    of ``tries`` runs: how fast this machine runs Python now. A shared machine's speed
    moves from day to day, so figures taken elsewhere or on another day scale by the ratio
    of the loop times measured with them."""
    best = math.inf
    for _ in range(tries):
        start = time.perf_counter()
        total = 0
        for i in range(additions):
            total += i
        best = min(best, time.perf_counter() - start)
    return best


@attrs.frozen(slots=True)
class StoreResult:
    """One store's rounds: orders per second of each round, and every order's seconds."""

    store: str
    rounds: tuple[float, ...]
    order_seconds: tuple[float, ...]

    @property
    def orders_per_second(self) -> float:
        """The median round's rate."""
        return statistics.median(self.rounds)

    @property
    def median_us(self) -> float:
        """The median order's place + allocate, in microseconds."""
        return statistics.median(self.order_seconds) * 1e6

    @property
    def p99_us(self) -> float:
        """The 99th percentile of an order's place + allocate, in microseconds."""
        ordered = sorted(self.order_seconds)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6


@attrs.frozen(slots=True)
class BenchReport:
    """What ``bench`` measured."""

    orders: int
    results: tuple[StoreResult, ...]
    one_command: bool = False
    #: :func:`python_loop_seconds` on the machine, just before the rounds (None: not timed).
    python_loop_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures per store."""
        return {
            "orders": self.orders,
            "one_command": self.one_command,
            "python_loop_seconds": (
                None if self.python_loop_s is None else round(self.python_loop_s, 3)
            ),
            "stores": {
                r.store: {
                    "orders_per_second": round(r.orders_per_second, 1),
                    "rounds": [round(x, 1) for x in r.rounds],
                    "median_us": round(r.median_us, 1),
                    "p99_us": round(r.p99_us, 1),
                }
                for r in self.results
            },
        }

    def _how(self) -> str:
        return "place_order(allocate=True)" if self.one_command else "place + allocate"

    def render(self) -> str:
        """A table for people."""
        rounds = len(self.results[0].rounds) if self.results else 0
        width = max([5, *(len(r.store) for r in self.results)])
        lines = [
            f"omscore bench: {self._how()}, {self.orders:,} one-line orders, {rounds} "
            "round(s) per store",
            f"  {'store':<{width}} {'orders/s':>10} {'median':>10} {'p99':>10}",
        ]
        for r in self.results:
            lines.append(
                f"  {r.store:<{width}} {r.orders_per_second:>10,.0f} {r.median_us:>8.0f} us "
                f"{r.p99_us:>7.0f} us"
            )
        if self.python_loop_s is not None:
            lines.append(machine_line(self.python_loop_s))
        return "\n".join(lines)


def machine_line(loop_seconds: float) -> str:
    """The report line that says how fast the machine ran Python (see
    :func:`python_loop_seconds`)."""
    return (
        f"  machine speed: a loop of {LOOP_ADDITIONS:,} Python additions took "
        f"{loop_seconds:.2f} s (to scale figures taken on another day or machine)"
    )


def run(orders: int = 2_000, rounds: int = 3, *, one_command: bool = False) -> BenchReport:
    """Measure ``rounds`` rounds of ``orders`` orders on each store, placed and allocated
    by two commands or (``one_command``) by ``place_order(draft, allocate=True)``."""
    if not 1 <= orders <= 20_000 or rounds < 1:
        raise InvalidQuantity(
            f"bench takes 1 to 20,000 orders and 1 or more rounds, got {orders} and {rounds}"
        )
    stores: dict[str, Callable[[Path], Store]] = {
        "MemoryStore": lambda _: MemoryStore(),
        "SqliteStore": lambda folder: SqliteStore(str(folder / "bench.db")),
        BACKGROUND: lambda folder: SqliteStore(str(folder / "bench.db"), checkpoint="background"),
    }
    loop_seconds = python_loop_seconds()
    results = []
    for name, make in stores.items():
        rates, seconds = [], []
        for _ in range(rounds):
            with tempfile.TemporaryDirectory() as folder:
                store = make(Path(folder))
                oms, drafts = prepared(store)
                times = timed_orders(oms, drafts[:orders], one_command=one_command)
                if isinstance(store, SqliteStore):
                    store.close()
            rates.append(orders / sum(times))
            seconds += times
        results.append(StoreResult(name, tuple(rates), tuple(seconds)))
    return BenchReport(orders, tuple(results), one_command, loop_seconds)
