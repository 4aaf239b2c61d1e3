"""The OMS service over the in-memory store: units of work, idempotency, events, conflicts."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from omscore import OMS, OrderStatus
from omscore.adapters.memory import MemoryStore, MemoryUnitOfWork
from omscore.adapters.sqlite import SqliteStore
from omscore.errors import (
    ConcurrencyConflict,
    DuplicateIdempotencyKey,
    InvalidQuery,
    NotCancellable,
    OrderOnHold,
    UnknownOrder,
)
from omscore.events import OrderEvent, OrderHeld, OrderPlaced, UnitsCancelled
from omscore.ports import OutboxRecord, Store
from omscore.testing import ManualClock, SequentialIds

from .conftest import draft


def test_place_then_read_back(oms: OMS) -> None:
    """A placed order is stored and read back equal."""
    order = oms.place_order(draft(("A", 2)))
    assert oms.get_order(order.id) == order


def test_unknown_orders_raise_unknown_order(oms: OMS) -> None:
    """UnknownOrder is a KeyError naming the id."""
    with pytest.raises(UnknownOrder, match="'O-404'") as info:
        oms.get_order("O-404")
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownOrder):
        oms.hold("O-404", "manual")


def test_repeating_an_idempotency_key_returns_the_first_result(oms: OMS) -> None:
    """The same key and the same draft: one order, one OrderPlaced event."""
    first = oms.place_order(draft(("A", 2)), idempotency_key="checkout-1")
    again = oms.place_order(draft(("A", 2)), idempotency_key="checkout-1")
    assert again == first
    placed = [e for e in oms.events() if isinstance(e, OrderPlaced)]
    assert len(placed) == 1


def test_reusing_a_key_for_different_arguments_is_refused(oms: OMS) -> None:
    """Same key, other draft or other command: DuplicateIdempotencyKey, nothing changes."""
    order = oms.place_order(draft(("A", 2)), idempotency_key="k")
    events = len(oms.events())
    with pytest.raises(DuplicateIdempotencyKey):
        oms.place_order(draft(("A", 3)), idempotency_key="k")
    with pytest.raises(DuplicateIdempotencyKey):
        oms.hold(order.id, "manual", idempotency_key="k")
    assert len(oms.events()) == events


def test_idempotent_hold_is_applied_once(oms: OMS) -> None:
    """A retried hold under its key returns the held order and records one event."""
    order = oms.place_order(draft(("A", 1)))
    oms.hold(order.id, "fraud", reason="score", idempotency_key="h1")
    oms.hold(order.id, "fraud", reason="score", idempotency_key="h1")
    assert len([e for e in oms.events() if isinstance(e, OrderHeld)]) == 1


def test_refused_commands_change_nothing(oms: OMS) -> None:
    """Cancelling too much or releasing a hold that is not there leaves order and events."""
    order = oms.place_order(draft(("A", 2)))
    events = oms.events()
    with pytest.raises(NotCancellable):
        oms.cancel(order.id, {order.lines[0].id: 3})
    assert oms.get_order(order.id) == order
    assert oms.events() == events


def test_events_come_in_commit_order_with_versions(oms: OMS) -> None:
    """Each command's event carries the order's version after it."""
    order = oms.place_order(draft(("A", 2)))
    oms.hold(order.id, "manual", reason="check address")
    oms.release(order.id, "manual")
    oms.cancel(order.id, reason="customer")
    order_events = [e for e in oms.events() if isinstance(e, OrderEvent)]
    names = [type(e).__name__ for e in order_events]
    assert names == [
        "OrderPlaced",
        "PaymentRecorded",
        "OrderHeld",
        "HoldReleased",
        "UnitsCancelled",
        "PaymentRecorded",
    ]
    assert [e.version for e in order_events] == [1, 2, 3, 4, 5, 6]
    assert isinstance(order_events[-2], UnitsCancelled)
    assert oms.get_order(order.id).status is OrderStatus.CANCELLED


@pytest.mark.parametrize("make_store", [MemoryStore, lambda: SqliteStore(":memory:")])
def test_events_can_be_read_page_by_page(make_store: Callable[[], Store]) -> None:
    """``events(after, limit)`` is the slice of ``events()`` after that outbox position."""
    oms = OMS(make_store(), clock=ManualClock(), ids=SequentialIds())
    for _ in range(3):
        order = oms.place_order(draft(("A", 1)))
        oms.hold(order.id, "manual")
    everything = oms.events()
    assert len(everything) > 6
    pages = [oms.events(after, 4) for after in range(0, len(everything), 4)]
    assert [e for page in pages for e in page] == everything
    assert oms.events(after=5) == everything[5:]
    assert oms.events(after=len(everything)) == []


class _UnreadOutbox(MemoryStore):
    """A store whose outbox must not be read."""

    def outbox(self, after: int = 0, limit: int | None = None) -> list[OutboxRecord]:
        raise AssertionError(f"the outbox was read with after={after!r}, limit={limit!r}")


@pytest.mark.parametrize(
    ("after", "limit", "message"),
    [
        (-1, None, "after must be an outbox position (an int >= 0), got -1"),
        (True, None, "after must be an outbox position (an int >= 0), got True"),
        ("3", None, "after must be an outbox position (an int >= 0), got '3'"),
        (0, 0, "limit must be at least 1, got 0"),
        (0, -1, "limit must be at least 1, got -1"),
        (0, 2.0, "limit must be an int, got 2.0"),
        (0, False, "limit must be an int, got False"),
    ],
)
def test_an_events_page_that_means_nothing_is_refused_before_the_store_is_read(
    after: int, limit: int | None, message: str
) -> None:
    """The OMS checks the page itself, whatever store it runs on."""
    oms = OMS(_UnreadOutbox(), clock=ManualClock(), ids=SequentialIds())
    with pytest.raises(InvalidQuery) as refused:
        oms.events(after, limit)
    assert str(refused.value) == message


def test_a_stale_commit_raises_concurrency_conflict() -> None:
    """Two units of work read the same version; the second commit loses."""
    store = MemoryStore()
    oms = OMS(store, clock=ManualClock(), ids=SequentialIds())
    order = oms.place_order(draft(("A", 1)))
    first, second = store.unit_of_work(), store.unit_of_work()
    a = first.orders.get(order.id)
    b = second.orders.get(order.id)
    assert a is not None
    assert b is not None
    first.orders.put(a.hold("manual", "x", a.placed_at)[0])
    first.commit()
    second.orders.put(b.hold("fraud", "y", b.placed_at)[0])
    with pytest.raises(ConcurrencyConflict) as lost:
        second.commit()
    stored = oms.get_order(order.id)
    assert [h.kind for h in stored.holds] == ["manual"]
    read, now = b.version, stored.version
    assert now == read + 1
    assert f"order {order.id}: read at version {read}, now {now}" in str(lost.value)


class _LosesRaces(MemoryStore):
    """A store whose first ``losses`` commits lose a race."""

    def __init__(self, losses: int) -> None:
        super().__init__()
        self.losses = losses
        self.commits_tried = 0

    def unit_of_work(self, *, write: bool = True) -> MemoryUnitOfWork:
        uow = super().unit_of_work(write=write)
        commit = uow.commit

        def racing() -> None:
            self.commits_tried += 1
            if self.losses:
                self.losses -= 1
                raise ConcurrencyConflict("lost a race on purpose")
            commit()

        uow.commit = racing  # type: ignore[method-assign]
        return uow


@pytest.mark.parametrize(("losses", "wins"), [(0, True), (2, True), (3, False)])
def test_a_command_is_tried_max_attempts_times(losses: int, wins: bool) -> None:
    """With ``max_attempts=3`` a command that loses two races commits on its third try;
    one that loses three raises the conflict, having changed nothing."""
    store = _LosesRaces(0)
    oms = OMS(store, clock=ManualClock(), ids=SequentialIds(), max_attempts=3)
    order = oms.place_order(draft(("A", 1)))
    store.losses, store.commits_tried = losses, 0
    if wins:
        assert [h.kind for h in oms.hold(order.id, "fraud").holds] == ["fraud"]
    else:
        with pytest.raises(ConcurrencyConflict, match="lost a race on purpose"):
            oms.hold(order.id, "fraud")
        assert oms.get_order(order.id).holds == ()
    assert store.commits_tried == min(losses + 1, 3)


def test_concurrent_commands_on_one_order_lose_no_update() -> None:
    """Eight threads each put a different hold kind on one order: all eight stand."""
    oms = OMS(MemoryStore(), clock=ManualClock(), ids=SequentialIds(), max_attempts=50)
    order = oms.place_order(draft(("A", 1)))
    threads = [threading.Thread(target=oms.hold, args=(order.id, f"kind-{i}")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = oms.get_order(order.id)
    assert sorted(h.kind for h in stored.holds) == sorted(f"kind-{i}" for i in range(8))
    assert stored.version == order.version + 8


def test_a_held_order_reports_on_hold_and_refuses_moving(oms: OMS) -> None:
    """require_not_held names the hold kinds (allocation and shipping use it)."""
    order = oms.hold(oms.place_order(draft(("A", 1))).id, "payment", reason="declined")
    assert order.status is OrderStatus.ON_HOLD
    with pytest.raises(OrderOnHold, match="payment"):
        order.require_not_held("allocate")
