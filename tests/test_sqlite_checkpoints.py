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
from typing import cast

import pytest

from omscore.adapters.sqlite import BACKSTOP_PAGES, CHECKPOINT_INTERVAL, Checkpointer, SqliteStore
from omscore.bench import place_and_allocate, prepared
from omscore.errors import StoreError


def orders_in_the_file_alone(path: Path, copy: Path) -> int | None:
    """Orders a copy of the database file holds without its log (what was checkpointed);
    None when the copy caught a checkpoint writing its pages (a plain file copy of a live
    database can be torn: the store itself is not)."""
    shutil.copyfile(path, copy)
    try:
        with closing(sqlite3.connect(copy)) as connection, connection:
            count: int = connection.execute("SELECT count(*) FROM orders").fetchone()[0]
    except sqlite3.DatabaseError:
        return None
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
    in_the_file = orders_in_the_file_alone(path, tmp_path / "copy.db")  # no thread writes now
    assert in_the_file is not None
    assert in_the_file < 600
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


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` for up to ten seconds."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


class FlakyConnection:
    """A connection whose first ``failures`` checkpoints fail as a busy database does."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.closed = False

    def execute(self, sql: str) -> FlakyConnection:
        """Fail, or run the checkpoint (which returns nothing to read here)."""
        assert sql == "PRAGMA wal_checkpoint(PASSIVE)"
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return self

    def fetchall(self) -> list[object]:
        """The checkpoint's row, unread."""
        return []

    def close(self) -> None:
        """Note the close."""
        self.closed = True


def test_a_failed_checkpoint_is_kept_as_the_error_and_the_next_commit_tries_again() -> None:
    """A checkpoint that fails leaves its error on ``checkpointer.error``; the thread goes
    on, the next wake checkpoints, and stopping closes the thread's connection."""
    connection = FlakyConnection(failures=1)
    checkpointer = Checkpointer(lambda: cast(sqlite3.Connection, connection), interval=0.0)
    checkpointer.wake()
    wait_for(lambda: checkpointer.error is not None, "the failure was not kept")
    assert isinstance(checkpointer.error, sqlite3.OperationalError)
    assert (checkpointer.checkpoints, checkpointer.running) == (0, True)
    checkpointer.wake()
    wait_for(lambda: checkpointer.checkpoints == 1, "the next wake did not checkpoint")
    checkpointer.stop()
    assert not checkpointer.running
    assert connection.closed


def test_a_checkpointer_that_cannot_connect_keeps_why_and_ends() -> None:
    """Without a connection of its own the thread ends at once with the error kept; the
    store's commands then checkpoint themselves past the backstop."""

    def connect() -> sqlite3.Connection:
        raise StoreError("cannot open the database file")

    checkpointer = Checkpointer(connect, interval=0.0)
    wait_for(lambda: not checkpointer.running, "the thread did not end")
    assert isinstance(checkpointer.error, StoreError)
    checkpointer.wake()
    checkpointer.stop()
    assert checkpointer.checkpoints == 0
