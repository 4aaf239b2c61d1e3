"""SqliteStore's own queries, beyond the store port: one order's events."""

from __future__ import annotations

from pathlib import Path

import pytest

from omscore import OMS
from omscore.adapters.sqlite import SqliteStore
from omscore.errors import StoreError
from omscore.ids import OrderId
from omscore.ports import OutboxRecord
from omscore.service import StockPosition
from omscore.testing import ManualClock, SequentialIds

from .conftest import draft, warehouse


def shop(path: Path) -> tuple[SqliteStore, list[OrderId]]:
    """A store with three orders, one of them allocated and one cancelled."""
    store = SqliteStore(str(path))
    oms = OMS(store, clock=ManualClock(), ids=SequentialIds())
    oms.add_location(warehouse("WH-1"))
    oms.receive_many([StockPosition("WH-1", "A", 10)])
    orders = [oms.place_order(draft(("A", 1))).id for _ in range(3)]
    oms.allocate(orders[0])
    oms.cancel(orders[1])
    return store, orders


def naming(records: list[OutboxRecord], order_id: str) -> list[OutboxRecord]:
    return [r for r in records if getattr(r.event, "order_id", None) == order_id]


def test_order_events_are_the_outbox_events_naming_the_order(tmp_path: Path) -> None:
    """Every event that names the order, in commit order, and no other."""
    store, orders = shop(tmp_path / "shop.db")
    everything = store.outbox()
    for order_id in orders:
        found = store.order_events(order_id)
        assert found == naming(everything, order_id)
        assert found
    assert store.order_events("O-404") == []


def test_order_events_without_sqlite_json_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SQLite without its JSON functions gives the same answer, by decoding every event."""
    store, orders = shop(tmp_path / "shop.db")
    expected = store.order_events(orders[0])
    records = store._records

    def no_json(sql: str, args: tuple[object, ...]) -> list[OutboxRecord]:
        if "json_extract" in sql:
            raise StoreError("read outbox: OperationalError: no such function: json_extract")
        return records(sql, args)

    monkeypatch.setattr(store, "_records", no_json)
    assert store.order_events(orders[0]) == expected
