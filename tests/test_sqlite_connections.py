"""The connections of a ``SqliteStore``: one per thread, each closed by ``close()``, by
dropping the store or when its thread ends; and a child forked after open opens its own
(and a checkpointer of its own) and never touches those of its parent, as SQLite requires."""

from __future__ import annotations

import gc
import multiprocessing
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from omscore.adapters.sqlite import SqliteStore
from omscore.adapters.system import UuidIds
from omscore.bench import place_and_allocate, prepared
from omscore.geo import GeoPoint
from omscore.inventory import Capability, Location, LocationKind
from omscore.orders import OrderDraft
from omscore.service import OMS
from omscore.sourcing import LowestCostPolicy
from omscore.testing.clock import ManualClock
from omscore.testing.invariants import check_books

needs_fork = pytest.mark.skipif(
    sys.platform == "win32" or "fork" not in multiprocessing.get_all_start_methods(),
    reason="needs fork()",
)

ORDERS_EACH = 150


def is_closed(connection: sqlite3.Connection) -> bool:
    """Whether ``connection`` was closed."""
    try:
        connection.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def connection_of_a_thread(
    store: SqliteStore, until: threading.Event
) -> tuple[sqlite3.Connection, threading.Thread]:
    """The connection a new thread gets from ``store`` (after a command on it), and the
    thread, which lives until ``until`` is set."""
    opened: list[sqlite3.Connection] = []
    ready = threading.Event()

    def work() -> None:
        OMS(store).receive("WH-1", "A", 1)
        opened.append(store.connection())
        ready.set()
        until.wait()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    ready.wait(10)
    return opened[0], thread


def a_store(path: Path) -> SqliteStore:
    """A store with one warehouse."""
    store = SqliteStore(str(path))
    OMS(store).add_location(
        Location(
            id="WH-1",
            kind=LocationKind.WAREHOUSE,
            geo=GeoPoint(52.5, 13.4),
            capabilities={Capability.SHIP},
        )
    )
    return store


def test_the_connection_of_a_thread_that_ended_is_closed_when_another_opens(
    tmp_path: Path,
) -> None:
    """A thread's connection outlives a finished thread only until the store opens the
    next one: no connection is left for the garbage collector (which Python 3.13 reports
    as a ResourceWarning)."""
    store = a_store(tmp_path / "shop.db")
    done = threading.Event()
    done.set()
    first, thread = connection_of_a_thread(store, done)
    thread.join(10)
    assert not is_closed(first), "closed before another connection was opened"
    second_done = threading.Event()
    second, _ = connection_of_a_thread(store, second_done)
    assert is_closed(first)
    assert not is_closed(second)
    second_done.set()
    store.close()


def test_closing_an_ended_threads_connection_keeps_the_live_ones_and_forgets_it(
    tmp_path: Path,
) -> None:
    """When the store closes the connection of a thread that ended, it keeps those of the
    threads still alive (its own thread's, another's), so ``close()`` still closes them,
    and it lets go of the closed one: a pool of threads that come and go leaves no
    closed connections behind in the store."""
    store = a_store(tmp_path / "shop.db")
    own = store.connection()
    done = threading.Event()
    done.set()
    first, thread = connection_of_a_thread(store, done)
    thread.join(10)
    waiting = threading.Event()
    second, _ = connection_of_a_thread(store, waiting)
    assert is_closed(first)
    gc.collect()
    held_by_store = [r for r in gc.get_referrers(first) if isinstance(r, tuple)]
    assert held_by_store == [], "the store still holds the closed connection"
    store.close()
    assert is_closed(own)
    assert is_closed(second)
    waiting.set()


def test_close_closes_the_connection_of_every_thread_and_the_store_goes_on(
    tmp_path: Path,
) -> None:
    """``close()`` from one thread closes those of the others too; the next command opens
    a new connection."""
    store = a_store(tmp_path / "shop.db")
    own = store.connection()
    waiting = threading.Event()
    other, _ = connection_of_a_thread(store, waiting)
    store.close()
    assert is_closed(own)
    assert is_closed(other)
    waiting.set()
    assert OMS(store).receive("WH-1", "A", 2).on_hand == 3  # 1 from the other thread
    assert store.connection() is not own
    store.close()


def test_dropping_a_store_closes_its_connections(tmp_path: Path) -> None:
    """A store dropped without ``close()`` closes every connection it opened, that of a
    thread that ended without another being opened after it too."""
    store = a_store(tmp_path / "shop.db")
    ended = threading.Event()
    ended.set()
    other, thread = connection_of_a_thread(store, ended)
    thread.join(10)
    connections = [store.connection(), other]
    assert not any(is_closed(c) for c in connections)
    del store
    gc.collect()
    assert all(is_closed(c) for c in connections)


def child_work(
    store: SqliteStore,
    parents_connection: sqlite3.Connection,
    parents_checkpointer: object,
    drafts: list[OrderDraft],
    report: multiprocessing.SimpleQueue[tuple[bool, bool, bool, int]],
) -> None:
    """In the forked child: which connection and checkpointer the store gives, then place
    and allocate orders through an OMS of the child's own ids on the inherited store."""
    fresh_connection = store.connection() is not parents_connection
    checkpointer = store.checkpointer
    own_checkpointer = checkpointer is not None and checkpointer is not parents_checkpointer
    running = checkpointer is not None and checkpointer.running
    child = OMS(store, clock=ManualClock(), ids=UuidIds(), sourcing=LowestCostPolicy())
    placed = [child.place_order(draft).id for draft in drafts]
    for order_id in placed:
        child.allocate(order_id)
    store.close()
    report.put((fresh_connection, own_checkpointer, running, len(placed)))


@needs_fork
# Python 3.12+ warns on any fork of a process with threads (the background checkpointer's);
# making the fork safe for the store is what this test checks.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("checkpoint", ["auto", "background"])
def test_a_child_forked_after_open_uses_connections_of_its_own(
    tmp_path: Path, checkpoint: str
) -> None:
    """Parent and child place and allocate orders on one store object at the same time:
    the child's store has a new connection (and, in background mode, a running
    checkpointer of its own), the parent keeps its own, and afterwards the file passes
    ``integrity_check`` and the books of every order of both processes balance."""
    store = SqliteStore(str(tmp_path / "shop.db"), checkpoint=checkpoint)  # type: ignore[arg-type]
    oms, drafts = prepared(store)
    place_and_allocate(oms, drafts[:20])
    parents_connection = store.connection()
    parents_checkpointer = store.checkpointer
    context = multiprocessing.get_context("fork")
    report: multiprocessing.SimpleQueue[tuple[bool, bool, bool, int]] = context.SimpleQueue()
    child = context.Process(
        target=child_work,
        args=(
            store,
            parents_connection,
            parents_checkpointer,
            drafts[ORDERS_EACH : 2 * ORDERS_EACH],
            report,
        ),
    )
    child.start()
    place_and_allocate(oms, drafts[20:ORDERS_EACH])
    child.join(60)
    assert child.exitcode == 0
    fresh_connection, own_checkpointer, running, placed = report.get()
    assert fresh_connection, "the child used the connection its parent opened"
    assert placed == ORDERS_EACH
    if checkpoint == "background":
        assert own_checkpointer, "the child shares its parent's checkpointer"
        assert running, "the child's checkpointer is not running"
        assert parents_checkpointer is not None
        assert parents_checkpointer.running
    assert store.connection() is parents_connection
    assert store.integrity_check() == "ok"
    assert store.counts()["orders"] == 2 * ORDERS_EACH
    check_books(oms)
    store.close()


def report_checkpointer(store: SqliteStore, report: multiprocessing.SimpleQueue[bool]) -> None:
    """In the forked child: whether the store has a running checkpointer."""
    checkpointer = store.checkpointer
    report.put(checkpointer is not None and checkpointer.running)


@needs_fork
def test_a_store_closed_before_the_fork_starts_no_checkpointer_in_the_child(
    tmp_path: Path,
) -> None:
    """``close()`` ended the thread; a child forked afterwards must not start it again."""
    store = SqliteStore(str(tmp_path / "shop.db"), checkpoint="background")
    store.close()
    context = multiprocessing.get_context("fork")
    report: multiprocessing.SimpleQueue[bool] = context.SimpleQueue()
    child = context.Process(target=report_checkpointer, args=(store, report))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert report.get() is False


def count_orders(store: SqliteStore) -> None:
    """In the forked child: read through a new connection (exits non-zero if it fails)."""
    store.counts()


@needs_fork
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_fork_waits_until_the_checkpointer_is_out_of_sqlite(tmp_path: Path) -> None:
    """A child copies SQLite's own mutexes as they are at the fork: one held by the
    checkpointer thread, which the child does not have, would stop the child's next use
    of SQLite for good (seen once in 40 forks right after big commits). So ``fork()`` waits
    while the checkpointer is inside SQLite: here a checkpoint held for 0.3 s."""
    store = SqliteStore(str(tmp_path / "shop.db"), checkpoint="background")
    checkpointer = store.checkpointer
    assert checkpointer is not None
    inside, left_at = threading.Event(), []

    def checkpoint_for_a_while() -> None:
        with checkpointer.in_sqlite:
            inside.set()
            time.sleep(0.3)
            left_at.append(time.monotonic())

    holder = threading.Thread(target=checkpoint_for_a_while)
    holder.start()
    inside.wait(5)
    child = multiprocessing.get_context("fork").Process(target=count_orders, args=(store,))
    child.start()
    forked_at = time.monotonic()
    child.join(10)
    holder.join()
    assert child.exitcode == 0
    assert forked_at >= left_at[0], "the fork did not wait for the checkpoint"
    assert checkpointer.running
    store.close()
