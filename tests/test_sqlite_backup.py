"""``SqliteStore.backup`` and ``python -m omscore backup``: a consistent copy of a store in
use, never over an existing file, never half-written."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from omscore import OMS
from omscore.__main__ import main
from omscore.adapters.sqlite import SqliteStore
from omscore.errors import StoreError
from omscore.testing import ManualClock, SequentialIds
from omscore.testing.contract import order_draft, sample_location
from omscore.testing.invariants import check_books


def shop(path: Path) -> OMS:
    oms = OMS(SqliteStore(str(path)), clock=ManualClock(), ids=SequentialIds())
    oms.add_location(sample_location("WH-1"))
    oms.receive("WH-1", "A", 1_000)
    return oms


def test_a_backup_taken_while_orders_come_in_is_a_consistent_store(tmp_path: Path) -> None:
    oms = shop(tmp_path / "shop.db")
    placed: list[str] = []
    under_way = threading.Event()
    failures: list[BaseException] = []

    def take_orders() -> None:
        try:
            writer = OMS(SqliteStore(str(tmp_path / "shop.db")))
            for _ in range(150):
                order = writer.place_order(order_draft("A", 1))
                writer.allocate(order.id)
                placed.append(order.id)
                if len(placed) == 20:
                    under_way.set()
        except BaseException as error:  # the test thread reports it
            failures.append(error)
            under_way.set()

    thread = threading.Thread(target=take_orders)
    thread.start()
    assert under_way.wait(timeout=60)
    oms.store.backup(str(tmp_path / "copy.db"))  # type: ignore[attr-defined]
    thread.join(timeout=120)
    assert failures == []
    copy = SqliteStore(str(tmp_path / "copy.db"))
    assert copy.integrity_check() == "ok"
    restored = OMS(copy)
    assert restored.reconcile() == []
    check_books(restored)
    assert 20 <= copy.counts()["orders"] <= 150


def test_a_backup_never_overwrites_a_file(tmp_path: Path) -> None:
    oms = shop(tmp_path / "shop.db")
    target = tmp_path / "copy.db"
    target.write_text("keep me")
    with pytest.raises(StoreError, match="exists; choose a new file"):
        oms.store.backup(str(target))  # type: ignore[attr-defined]
    assert target.read_text() == "keep me"


def test_a_failed_backup_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    oms = shop(tmp_path / "shop.db")
    store = oms.store
    assert isinstance(store, SqliteStore)
    target = tmp_path / "copy.db"

    class Failing:
        def backup(self, _: object) -> None:
            import sqlite3  # noqa: PLC0415

            raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "connection", Failing)
    with pytest.raises(StoreError, match="back up to"):
        store.backup(str(target))
    assert not target.exists()


def test_the_command_line_backs_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    oms = shop(tmp_path / "shop.db")
    oms.place_order(order_draft("A", 2))
    copy = tmp_path / "copy.db"
    assert main(["backup", "--db", str(tmp_path / "shop.db"), "--to", str(copy)]) == 0
    assert "backed up to" in capsys.readouterr().out
    assert SqliteStore(str(copy)).counts()["orders"] == 1
    assert main(["backup", "--db", str(tmp_path / "none.db"), "--to", str(copy)]) == 2
    assert main(["backup", "--db", str(tmp_path / "shop.db"), "--to", str(copy)]) == 2
    assert "exists" in capsys.readouterr().err
