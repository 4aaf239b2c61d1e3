"""A store opened before ``fork()`` is safe in the child: the child opens connections (and
a checkpointer) of its own and never touches those of its parent, as SQLite requires."""

from __future__ import annotations

import multiprocessing
import sqlite3
import sys
from pathlib import Path

import pytest

from omscore.adapters.sqlite import SqliteStore
from omscore.adapters.system import UuidIds
from omscore.bench import place_and_allocate, prepared
from omscore.orders import OrderDraft
from omscore.service import OMS
from omscore.sourcing import LowestCostPolicy
from omscore.testing.clock import ManualClock
from omscore.testing.invariants import check_books

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or "fork" not in multiprocessing.get_all_start_methods(),
    reason="needs fork()",
)

ORDERS_EACH = 150


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
