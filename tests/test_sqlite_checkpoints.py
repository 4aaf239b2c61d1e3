"""``SqliteStore(checkpoint="background")``: the log goes back into the database file from
a thread of the store's own, and the thread ends with the store."""

from __future__ import annotations

import gc
import shutil
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from omscore.adapters.sqlite import BACKSTOP_PAGES, CHECKPOINT_INTERVAL, SqliteStore
from omscore.bench import place_and_allocate, prepared
from omscore.errors import StoreError


def orders_in_the_file_alone(path: Path, copy: Path) -> int:
    """Orders a copy of the database file holds without its log (what was checkpointed)."""
    shutil.copyfile(path, copy)
    with closing(sqlite3.connect(copy)) as connection, connection:
        count: int = connection.execute("SELECT count(*) FROM orders").fetchone()[0]
    return count


def test_the_checkpointer_moves_every_commit_into_the_file_soon_after(tmp_path: Path) -> None:
    """600 orders placed and allocated: the thread checkpoints while they run, commands
    checkpoint themselves only past the backstop, and shortly after the last commit the
    database file alone holds every order (SQLite's own checkpoint would leave the last
    commits in the log until the next 1,000 pages)."""
    path = tmp_path / "shop.db"
    store = SqliteStore(str(path), checkpoint="background")
    oms, drafts = prepared(store)
    place_and_allocate(oms, drafts[:600])
    assert store.checkpointer is not None
    assert store.connection().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
    deadline = time.monotonic() + 10
    while orders_in_the_file_alone(path, tmp_path / "copy.db") != 600:
        assert time.monotonic() < deadline, "the log was not checkpointed"
        time.sleep(0.05)
    assert store.checkpointer.checkpoints > 0
    assert store.checkpointer.error is None
    store.close()
    assert SqliteStore(str(path)).counts()["orders"] == 600


def test_sqlites_own_checkpoint_leaves_the_last_commits_in_the_log(tmp_path: Path) -> None:
    """The contrast the test above relies on: in ``"auto"`` mode the file alone lacks the
    orders committed since the last automatic checkpoint."""
    path = tmp_path / "shop.db"
    store = SqliteStore(str(path))
    oms, drafts = prepared(store)
    place_and_allocate(oms, drafts[:600])
    assert store.checkpointer is None
    time.sleep(0.2)
    assert orders_in_the_file_alone(path, tmp_path / "copy.db") < 600
    store.close()


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
    """Poll ``condition`` until it holds, or fail naming ``what``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_the_relays_writes_wake_the_checkpointer_too(tmp_path: Path) -> None:
    """Marking events published and pruning are writes outside a unit of work: each asks
    for a checkpoint as a command's commit does."""
    store = SqliteStore(str(tmp_path / "shop.db"), checkpoint="background")
    oms, drafts = prepared(store)
    place_and_allocate(oms, drafts[:20])
    checkpointer = store.checkpointer
    assert checkpointer is not None
    for write in (
        lambda: store.mark_published(store.counts()["outbox"]),
        lambda: store.prune_outbox(datetime.now(UTC) + timedelta(days=1)),
        lambda: store.prune_idempotency(datetime.now(UTC) + timedelta(days=1)),
    ):
        wait_until(lambda: not checkpointer.wanted.is_set(), "the checkpointer stayed busy")
        time.sleep(3 * CHECKPOINT_INTERVAL)
        done = checkpointer.checkpoints
        write()
        wait_until(lambda: checkpointer.checkpoints > done, "the write did not wake it")  # noqa: B023
    store.close()


def test_close_ends_the_checkpointer(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "shop.db"), checkpoint="background")
    checkpointer = store.checkpointer
    assert checkpointer is not None
    assert checkpointer.running
    store.close()
    assert not checkpointer.running


def test_a_store_dropped_without_close_ends_its_checkpointer(tmp_path: Path) -> None:
    """The thread holds no reference to the store, so dropping the store stops it."""
    store = SqliteStore(str(tmp_path / "shop.db"), checkpoint="background")
    oms, drafts = prepared(store)
    place_and_allocate(oms, drafts[:20])
    checkpointer = store.checkpointer
    assert checkpointer is not None
    del store, oms
    gc.collect()
    deadline = time.monotonic() + 5
    while checkpointer.running:
        assert time.monotonic() < deadline, "the checkpointer outlived its store"
        time.sleep(0.01)


def test_an_unknown_checkpoint_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="checkpoint must be auto or background, got 'eager'"):
        SqliteStore(str(tmp_path / "shop.db"), checkpoint="eager")  # type: ignore[arg-type]
    assert not (tmp_path / "shop.db").exists()


def test_an_in_memory_database_has_no_log_to_checkpoint() -> None:
    store = SqliteStore(":memory:", checkpoint="background")
    assert store.checkpointer is None
    oms, drafts = prepared(store)
    place_and_allocate(oms, drafts[:5])
    assert store.counts()["orders"] == 5
