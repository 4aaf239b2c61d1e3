"""Commands leave no reference cycles behind: what a command allocates is freed when it
returns, not by the cyclic collector (whose pauses grow with a long-running host's heap)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from omscore import OMS, Location, OrderDraft
from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.geo import GeoPoint
from omscore.ports import Store
from omscore.service import StockPosition
from omscore.testing import ManualClock, SequentialIds

from .conftest import draft


@pytest.fixture
def collector_paused() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "make_store",
    [lambda _: MemoryStore(), lambda tmp: SqliteStore(str(tmp / "oms.db"))],
    ids=["memory", "sqlite"],
)
@pytest.mark.usefixtures("collector_paused")
def test_placing_and_allocating_leaves_nothing_for_the_cyclic_collector(
    make_store: Callable[[Path], Store], tmp_path: Path
) -> None:
    oms = OMS(make_store(tmp_path), clock=ManualClock(), ids=SequentialIds())
    oms.add_location(
        Location(id="WH", kind="warehouse", geo=GeoPoint(50, 8), capabilities={"ship"})
    )
    oms.receive_many([StockPosition("WH", sku, 100) for sku in ("A", "B")])
    orders: list[OrderDraft] = [draft(("A", 1), ("B", 2)) for _ in range(20)]
    oms.allocate(oms.place_order(orders.pop()).id)  # first use builds the store's codecs
    gc.collect()
    for order_draft in orders:
        oms.allocate(oms.place_order(order_draft).id)
    assert gc.collect() == 0
