"""Housekeeping: ``OMS.prune`` and ``python -m omscore prune`` on a store that has run for a
while (the kit's contract tests cover each store's ``prune_outbox`` and
``prune_idempotency``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from omscore import OMS
from omscore.__main__ import main
from omscore.adapters import sqlite as sqlite_adapter
from omscore.adapters.sqlite import SqliteStore
from omscore.errors import InvalidArgument
from omscore.ports import Pruned
from omscore.testing import ManualClock, SequentialIds
from omscore.testing.contract import T0, order_draft, sample_location


def shop(path: Path) -> tuple[OMS, ManualClock]:
    """A SQLite shop that took an order with a key at T0 and another a day later."""
    clock = ManualClock(T0)
    oms = OMS(SqliteStore(str(path)), clock=clock, ids=SequentialIds())
    oms.add_location(sample_location("WH-1"))
    oms.receive("WH-1", "A", 10)
    oms.place_order(order_draft("A", 1), idempotency_key="day-1")
    clock.advance(timedelta(days=1))
    oms.place_order(order_draft("A", 1), idempotency_key="day-2")
    return oms, clock


def test_prune_keeps_what_is_younger_than_each_window(tmp_path: Path) -> None:
    oms, _ = shop(tmp_path / "shop.db")
    everything = oms.store.outbox()
    oms.store.mark_published(everything[-1].position)
    pruned = oms.prune(keep_events=timedelta(hours=12), keep_keys=timedelta(hours=12))
    day_two = [r for r in everything if r.event.at >= T0 + timedelta(days=1)]
    assert pruned == Pruned(events=len(everything) - len(day_two), idempotency_keys=1)
    assert oms.store.outbox() == day_two
    assert oms.prune(keep_events=timedelta(hours=12), keep_keys=timedelta(hours=12)) == Pruned(
        events=0, idempotency_keys=0
    )


def test_prune_without_windows_deletes_nothing(tmp_path: Path) -> None:
    oms, _ = shop(tmp_path / "shop.db")
    oms.store.mark_published(10**9)
    before = oms.store.outbox()
    assert oms.prune() == Pruned(events=0, idempotency_keys=0)
    assert oms.store.outbox() == before


@pytest.mark.parametrize("keep", [timedelta(seconds=-1), 3600])
def test_a_bad_window_is_refused_and_deletes_nothing(tmp_path: Path, keep: object) -> None:
    oms, _ = shop(tmp_path / "shop.db")
    oms.store.mark_published(10**9)
    before = oms.store.outbox()
    with pytest.raises(InvalidArgument, match="keep_keys must be a timedelta of zero or more"):
        oms.prune(keep_events=timedelta(0), keep_keys=keep)  # type: ignore[arg-type]
    assert oms.store.outbox() == before


def test_the_command_line_prunes_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """By the system clock: everything the shop did in January is older than a week."""
    db = tmp_path / "shop.db"
    oms, _ = shop(db)
    published = oms.store.outbox()[-2].position
    oms.store.mark_published(published)
    args = ["prune", "--db", str(db), "--keep-events-days", "7", "--keep-keys-hours", "48"]
    assert main(args) == 0
    assert f"deleted {published:,} published events, forgot 2 idempotency keys" in (
        capsys.readouterr().out
    )
    assert [r.position for r in SqliteStore(str(db)).outbox()] == [published + 1]


def test_the_command_line_needs_a_window_and_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "shop.db"
    shop(db)
    assert main(["prune", "--db", str(db)]) == 2
    assert "give --keep-events-days, --keep-keys-hours or both" in capsys.readouterr().err
    assert main(["prune", "--db", str(tmp_path / "none.db"), "--keep-keys-hours", "1"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["prune", "--db", str(db), "--keep-keys-hours", "-1"]) == 2
    assert "keep_keys must be a timedelta of zero or more" in capsys.readouterr().err


@pytest.mark.parametrize("chunk", [1, 2, 3])
@pytest.mark.parametrize("unpublished", [0, 1, 2])
def test_sqlite_prunes_in_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, unpublished: int
) -> None:
    """Small chunks: the same events go, the unpublished ones stay."""
    monkeypatch.setattr(sqlite_adapter, "PRUNE_CHUNK", chunk)
    oms, clock = shop(tmp_path / "shop.db")
    everything = oms.store.outbox()
    published = len(everything) - unpublished
    oms.store.mark_published(everything[published - 1].position)
    clock.advance(timedelta(days=8))
    assert oms.prune(keep_events=timedelta(days=7)).events == published
    assert oms.store.outbox() == everything[published:]
