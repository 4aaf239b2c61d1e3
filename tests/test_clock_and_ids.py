"""The clocks and id generators: the manual clock tests run on, and the defaults."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from omscore import OMS
from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.adapters.system import SystemClock, UuidIds
from omscore.errors import InvalidArgument, OmsError
from omscore.ports import Store
from omscore.testing import ManualClock, SequentialIds

from .conftest import draft, warehouse

BERLIN_WINTER = timezone(timedelta(hours=1))


def test_a_manual_clock_starts_at_a_fixed_moment_in_utc() -> None:
    assert ManualClock().now() == datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def test_a_naive_start_is_taken_as_utc_and_an_aware_one_is_kept() -> None:
    naive = ManualClock(datetime(2026, 3, 1, 12, 0)).now()
    assert (naive, naive.tzinfo) == (datetime(2026, 3, 1, 12, 0, tzinfo=UTC), UTC)
    aware = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=BERLIN_WINTER)).now()
    assert aware == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert aware.utcoffset() == timedelta(hours=1)


def test_a_manual_clock_only_moves_forward() -> None:
    clock = ManualClock()
    start = clock.now()
    assert clock.advance(timedelta(minutes=5)) == start + timedelta(minutes=5)
    clock.set(start + timedelta(hours=1))
    assert clock.now() == start + timedelta(hours=1)
    with pytest.raises(OmsError, match="only moves forward, got -1 day"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(OmsError, match="only moves forward: 2026-01-01 09:00:00"):
        clock.set(start)
    assert clock.now() == start + timedelta(hours=1)
    clock.set(clock.now())  # standing still is allowed
    assert clock.advance(timedelta(0)) == start + timedelta(hours=1)


def test_a_manual_clock_takes_a_naive_jump_as_utc_and_refuses_what_is_no_time() -> None:
    """``set`` reads a naive time as the constructor does; a string or a number of
    seconds is refused with InvalidArgument, and the clock stays where it was."""
    clock = ManualClock()
    clock.set(datetime(2026, 1, 1, 10, 0))
    assert clock.now() == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    for wrong in (lambda: clock.set("2026-02-01"), lambda: clock.advance(60)):  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            wrong()
    with pytest.raises(InvalidArgument, match="a ManualClock's time is a datetime"):
        ManualClock("2026-01-01")  # type: ignore[arg-type]
    assert clock.now() == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


class FixedClock:
    """A clock of the caller's that always says ``moment``."""

    def __init__(self, moment: object) -> None:
        self.moment = moment

    def now(self) -> datetime:
        """The fixed moment, whatever it is."""
        return self.moment  # type: ignore[return-value]


@pytest.mark.parametrize("store", ["memory", "sqlite"])
@pytest.mark.parametrize("moment", [datetime(2026, 1, 1, 9, 0), "2026-01-01", 1767258000])
def test_a_clock_that_gives_no_aware_time_is_refused_and_changes_nothing(
    store: str, moment: object
) -> None:
    """A naive time cannot be compared with the aware times the OMS keeps (and each store
    would read it in its own way); a string or a number is no time at all. Every command
    and every query that reads the clock refuses it, and nothing is written."""
    backing: Store = MemoryStore() if store == "memory" else SqliteStore(":memory:")
    setup = OMS(backing, ids=SequentialIds())
    setup.add_location(warehouse("WH-1"))
    setup.receive("WH-1", "A", 5)
    oms = OMS(backing, clock=FixedClock(moment), ids=SequentialIds())
    events = len(setup.events())
    for call in (
        lambda: oms.place_order(draft(("A", 1))),
        lambda: oms.receive("WH-1", "A", 1),
        lambda: oms.stalled_fulfillments(timedelta(hours=1)),
        lambda: oms.promise_date("A", 1),
    ):
        with pytest.raises(InvalidArgument, match="the clock must return a timezone-aware"):
            call()
    assert len(setup.events()) == events
    assert setup.available("A") == 5


def test_the_system_clock_is_aware_utc_now() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)


def test_sequential_ids_count_per_prefix_without_gaps_across_threads() -> None:
    ids = SequentialIds()
    assert [ids.new_id("O"), ids.new_id("O"), ids.new_id("R"), ids.new_id("O")] == [
        "O-1",
        "O-2",
        "R-1",
        "O-3",
    ]
    made: list[str] = []

    def make() -> None:
        made.extend(ids.new_id("T") for _ in range(500))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(made) == sorted(f"T-{n}" for n in range(1, 2001))


def test_uuid_ids_are_the_prefix_and_16_hex_digits_and_differ() -> None:
    ids = UuidIds()
    made = {ids.new_id("O") for _ in range(1000)}
    assert len(made) == 1000
    assert all(re.fullmatch(r"O-[0-9a-f]{16}", i) for i in made)


def test_a_clock_in_another_zone_is_taken_as_it_is() -> None:
    """An aware time in any zone is a time: the order records it, zone and all."""
    winter = datetime(2026, 1, 1, 10, 0, tzinfo=BERLIN_WINTER)
    oms = OMS(MemoryStore(), clock=FixedClock(winter), ids=SequentialIds())
    placed = oms.place_order(draft(("A", 1))).placed_at
    assert (placed, placed.utcoffset()) == (winter, timedelta(hours=1))


class FixedIds:
    """An id generator of the caller's that always gives ``value``."""

    def __init__(self, value: object) -> None:
        self.value = value

    def new_id(self, prefix: str) -> str:
        """The fixed value, whatever it is."""
        return self.value  # type: ignore[return-value]


@pytest.mark.parametrize("store", ["memory", "sqlite"])
@pytest.mark.parametrize("value", [1, "", "  ", None])
def test_an_id_generator_that_gives_no_id_is_refused_and_changes_nothing(
    store: str, value: object
) -> None:
    """An order stored under the id 1 could never be found again (ids are strings), and
    one under "" is no id: placing, transferring and requesting a return refuse it with
    InvalidArgument, and nothing is written."""
    backing: Store = MemoryStore() if store == "memory" else SqliteStore(":memory:")
    setup = OMS(backing, clock=ManualClock(), ids=SequentialIds())
    setup.add_location(warehouse("WH-1"))
    setup.add_location(warehouse("WH-2"))
    setup.receive("WH-1", "A", 5)
    delivered = setup.place_order(draft(("A", 1)), allocate=True)
    parcel = setup.get_order(delivered.id).fulfillments[0].id
    setup.ship(parcel)
    setup.deliver(parcel)
    events = len(setup.events())
    oms = OMS(backing, clock=ManualClock(), ids=FixedIds(value))
    line = delivered.lines[0].id
    for call in (
        lambda: oms.place_order(draft(("A", 1))),
        lambda: oms.transfer("A", "WH-1", "WH-2", 1),
        lambda: oms.request_return(delivered.id, {line: 1}),
    ):
        with pytest.raises(InvalidArgument, match="the id generator must return a non-empty"):
            call()
    assert len(setup.events()) == events
    assert setup.available("A") == 4
