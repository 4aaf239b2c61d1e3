"""The in-memory store enforces what a database store must (the reference adapter)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from omscore.adapters.memory import MemoryStore, _Table
from omscore.errors import ConcurrencyConflict
from omscore.events import OrderHeld
from omscore.ids import LineId, LocationId, OrderId
from omscore.inventory import Location
from omscore.orders import FulfillmentStatus, Order, OrderStatus
from omscore.ports import IdempotencyRecord

from .conftest import draft, warehouse

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def new_order(order_id: str = "O-1") -> Order:
    """A placed order, not yet stored."""
    return Order.place(OrderId(order_id), draft(("A", 1)), [LineId(f"{order_id}-1")], T0)[0]


def test_nothing_is_visible_before_commit() -> None:
    """A unit of work left without commit writes nothing."""
    store = MemoryStore()
    with store.unit_of_work() as uow:
        uow.orders.put(new_order())
        uow.record([OrderHeld(order_id=OrderId("O-1"), version=2, at=T0, kind="x", reason="")])
    with store.unit_of_work() as uow:
        assert uow.orders.get(OrderId("O-1")) is None
    assert store.outbox() == []


def test_an_exception_rolls_everything_back() -> None:
    """Aggregates, events and idempotency records go together or not at all."""
    store = MemoryStore()

    def failing_command() -> None:
        with store.unit_of_work() as uow:
            uow.orders.put(new_order())
            uow.idempotency.put(IdempotencyRecord("k", "f", None, T0))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing_command()
    with store.unit_of_work() as uow:
        assert uow.orders.get(OrderId("O-1")) is None
        assert uow.idempotency.get("k") is None


def test_adding_an_id_that_exists_is_a_conflict() -> None:
    """Two units of work creating the same order id: the second loses."""
    store = MemoryStore()
    first, second = store.unit_of_work(), store.unit_of_work()
    first.orders.put(new_order())
    second.orders.put(new_order())
    first.commit()
    with pytest.raises(ConcurrencyConflict):
        second.commit()


def test_a_failed_commit_writes_nothing_at_all() -> None:
    """One stale aggregate keeps every other change of the unit of work out too."""
    store = MemoryStore()
    with store.unit_of_work() as uow:
        uow.orders.put(new_order("O-1"))
        uow.commit()
    stale = store.unit_of_work()
    order = stale.orders.get(OrderId("O-1"))
    assert order is not None
    with store.unit_of_work() as uow:
        current = uow.orders.get(OrderId("O-1"))
        assert current is not None
        uow.orders.put(current.hold("manual", "x", T0)[0])
        uow.commit()
    stale.orders.put(order.hold("fraud", "y", T0)[0])
    stale.orders.put(new_order("O-2"))
    stale.record([OrderHeld(order_id=OrderId("O-1"), version=2, at=T0, kind="fraud", reason="")])
    with pytest.raises(ConcurrencyConflict):
        stale.commit()
    with store.unit_of_work() as uow:
        assert uow.orders.get(OrderId("O-2")) is None
    assert [r.event.kind for r in store.outbox()] == []  # type: ignore[attr-defined]


def test_outbox_positions_are_consecutive_and_can_be_marked_published() -> None:
    """The relay reads unpublished events in order and marks them."""
    store = MemoryStore()
    for i in range(3):
        with store.unit_of_work() as uow:
            uow.record([OrderHeld(order_id=OrderId("O"), version=i, at=T0, kind=str(i), reason="")])
            uow.commit()
    assert [r.position for r in store.outbox()] == [1, 2, 3]
    store.mark_published(2)
    assert [r.position for r in store.unpublished()] == [3]
    assert [r.position for r in store.outbox(after=1, limit=1)] == [2]


WALKS: dict[str, Callable[[MemoryStore], object]] = {
    "fulfillment_queue": lambda s: s.unit_of_work().orders.fulfillment_queue(
        frozenset(FulfillmentStatus)
    ),
    "order_queue": lambda s: s.unit_of_work().orders.order_queue(frozenset(OrderStatus)),
    "skus": lambda s: s.unit_of_work().inventory.skus(),
    "expiring": lambda s: s.unit_of_work().inventory.expiring(T0),
    "reserved_under": lambda s: s.unit_of_work().inventory.reserved_under("cart"),
    "reserved_at": lambda s: s.unit_of_work().inventory.reserved_at(LocationId("WH-1")),
    "backordered": lambda s: s.unit_of_work().inventory.backordered(),
    "supply_due": lambda s: s.unit_of_work().inventory.supply_due(T0),
    "outbox": lambda s: s.outbox(),
}


@pytest.mark.parametrize("name", sorted(WALKS))
def test_a_query_that_walks_the_tables_waits_for_a_commit_in_progress(name: str) -> None:
    """A commit on another thread changes the tables and indexes as it goes: a query that
    walks them waits for the store's lock, so it never sees a table change size under it
    (a raw RuntimeError)."""
    store = MemoryStore()
    finished = threading.Event()

    def query() -> None:
        WALKS[name](store)
        finished.set()

    with store.lock:  # as a commit holds it
        thread = threading.Thread(target=query)
        thread.start()
        assert not finished.wait(0.05)
    thread.join()
    assert finished.is_set()


class _CommitLandsDuringARead(dict[str, Location]):
    """Rows whose first walk is interrupted by another thread's commit of ``landing``."""

    def __init__(self, table: _Table[Location], landing: Location) -> None:
        super().__init__(table.rows)
        self.table, self.landing = table, landing

    def __iter__(self) -> Iterator[str]:
        keys = list(super().__iter__())
        if self.landing.id not in self:
            self.table.update({self.landing.id: self.landing})  # the commit lands now
        return iter(keys)


def test_a_list_of_locations_made_while_a_commit_lands_is_made_again() -> None:
    """Commands read the sorted locations without the lock: a list made from the rows
    before a commit, and kept after it, must not hide the committed location from the
    reads that follow."""
    store = MemoryStore()
    table = store.locations
    table.update({"WH-1": warehouse("WH-1")})
    assert [x.id for x in table.sorted_rows()] == ["WH-1"]
    table.update({"WH-2": warehouse("WH-2")})
    table.rows = _CommitLandsDuringARead(table, warehouse("WH-3"))
    assert [x.id for x in table.sorted_rows()] == ["WH-1", "WH-2"]  # read before it
    assert [x.id for x in table.sorted_rows()] == ["WH-1", "WH-2", "WH-3"]
    assert table.sorted_rows() is table.sorted_rows()  # and kept until the next change
