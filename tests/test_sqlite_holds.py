"""SqliteStore keeps stock holds as rows: the rows written follow every change of the holds,
and a busy SKU costs one row per hold placed, not a rewrite of all of them."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omscore import OMS, Location
from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import (
    SqliteStore,
    _all_again,
    _first_difference,
    _one_edit,
    _row_changes,
)
from omscore.geo import GeoPoint
from omscore.ids import ChannelId, LocationId, Sku
from omscore.inventory import StockHold
from omscore.ports import Store
from omscore.service import StockPosition
from omscore.testing import ManualClock, SequentialIds

from .conftest import draft

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_made = iter(range(10**9))


def new_hold() -> StockHold:
    n = next(_made)
    return StockHold(f"K-{n}", None, ChannelId("web"), LocationId("WH"), 1 + n % 3, T0, None)


def rows_after(
    rows: dict[int, StockHold],
    old: tuple[StockHold, ...],
    new: tuple[StockHold, ...],
    *,
    patch_expected: bool = True,
) -> dict[int, StockHold]:
    """The rows once the store wrote the change (as ``_Items.write_rows`` does)."""
    positions = tuple(sorted(rows))
    changes = _row_changes(old, positions, new)
    assert changes is not None or not patch_expected
    gone, placed, new_positions, removed = changes or _all_again(old, positions, new)
    after = {p: h for p, h in rows.items() if p not in gone}
    after.update(placed)
    assert tuple(sorted(after)) == new_positions
    assert {id(h) for h in removed} >= {id(h) for h in old} - {id(h) for h in new}
    return after


edits = st.lists(
    st.tuples(st.sampled_from(["remove", "replace", "append"]), st.integers(0, 50)),
    max_size=12,
)


@given(st.lists(st.integers(1, 5), max_size=8), edits, edits)
def test_the_rows_follow_removals_replacements_and_appends(
    gaps: list[int], first: list[tuple[str, int]], second: list[tuple[str, int]]
) -> None:
    """Whatever commands do to the holds (remove, replace in place, append), the rows
    written give back the holds in order, at increasing positions, over several commits."""
    positions = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    holds = [new_hold() for _ in positions]
    rows = dict(zip(positions, holds, strict=True))
    for batch in (first, second):
        old = tuple(holds)
        for action, index in batch:
            if action == "append" or not holds:
                holds.append(new_hold())
            elif action == "remove":
                del holds[index % len(holds)]
            else:
                holds[index % len(holds)] = new_hold()
        rows = rows_after(rows, old, tuple(holds))
        assert [rows[p] for p in sorted(rows)] == holds


@given(st.integers(2, 6), st.data())
def test_holds_in_another_order_are_patched_right_or_not_at_all(
    size: int, data: st.DataObject
) -> None:
    """Kept holds in a new order, or a new hold before a kept one: either rows that give
    back the new order, or no patch (the store then writes all of them again)."""
    old = tuple(new_hold() for _ in range(size))
    rows = dict(zip(range(1, size + 1), old, strict=True))
    inserted = data.draw(st.integers(0, size))
    for new in (
        tuple(data.draw(st.permutations(old))),
        (*old[:inserted], new_hold(), *old[inserted:]),
    ):
        after = rows_after(rows, old, new, patch_expected=False)
        assert [h for _, h in sorted(after.items())] == list(new)
    reversed_rows = rows_after(rows, old, old[::-1], patch_expected=False)
    assert [h for _, h in sorted(reversed_rows.items())] == list(old[::-1])


@given(st.integers(0, 300), st.integers(0, 300), st.integers(0, 3))
def test_the_first_difference_is_found_at_any_position(
    length: int, position: int, change: int
) -> None:
    """Windowed slice comparisons find the first differing hold as a plain loop would: a
    hold removed, replaced or added anywhere, or nothing changed."""
    old = tuple(new_hold() for _ in range(length))
    at = min(position, length)
    new = [
        old,
        old[:at] + old[at + 1 :],
        (*old[:at], new_hold(), *old[at + 1 :]),
        (*old[:at], new_hold(), *old[at:]),
    ][change]
    expected = next(
        (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a is not b),
        min(len(old), len(new)),
    )
    assert _first_difference(old, new) == expected


@given(
    st.integers(1, 300),
    st.integers(0, 299),
    st.sampled_from(["remove", "replace"]),
    st.integers(0, 3),
)
def test_one_removal_or_replacement_is_patched_without_a_walk_of_the_holds(
    length: int, position: int, edit: str, appended: int
) -> None:
    """A command's usual change (one hold removed or replaced, holds appended after it) is
    found by slice comparisons, not by the walk over every hold: a busy SKU's thousands of
    holds must not cost a Python loop per command."""
    old = tuple(new_hold() for _ in range(length))
    positions = tuple(range(2, 2 * length + 1, 2))
    at = position % length
    fresh = tuple(new_hold() for _ in range(1 + appended))
    kept = old[at + 1 :] if edit == "remove" else (fresh[0], *old[at + 1 :])
    new = (*old[:at], *kept, *fresh[1:])
    patch = _one_edit(old, positions, new)
    assert patch is not None
    gone, placed, new_positions, removed = patch
    rows = {p: h for p, h in zip(positions, old, strict=True) if p not in gone}
    rows.update(placed)
    assert tuple(sorted(rows)) == new_positions
    assert [rows[p] for p in new_positions] == list(new)
    assert len(gone) <= 1
    assert len(placed) <= 1 + appended
    assert removed == [old[at]]


def test_a_busy_sku_writes_one_hold_row_per_order(tmp_path: Path) -> None:
    """Each order placed on a SKU with many open orders adds one row to ``holds``; the
    item's body carries no holds, and the item read back has them all, in order."""
    store = SqliteStore(str(tmp_path / "busy.db"))
    oms = OMS(store, clock=ManualClock(), ids=SequentialIds())
    oms.add_location(
        Location(id="WH", kind="warehouse", geo=GeoPoint(50, 8), capabilities={"ship"})
    )
    oms.receive_many([StockPosition("WH", "HOT", 1_000)])
    for _ in range(40):
        oms.place_order(draft(("HOT", 1)))
    store.statement_log = []
    oms.place_order(draft(("HOT", 1)))
    hold_writes = [args for kind, sql, args in store.statement_log if "INTO holds" in sql]
    assert [len(rows) for rows in hold_writes] == [1]
    connection = store.connection()
    (body,) = connection.execute("SELECT body FROM items WHERE sku = 'HOT'").fetchone()
    assert '"holds":[]' in body
    assert connection.execute("SELECT COUNT(*) FROM holds WHERE sku = 'HOT'").fetchone()[0] == 41
    fresh = SqliteStore(str(tmp_path / "busy.db"))
    with fresh.unit_of_work(write=False) as uow:
        item = uow.inventory.get(Sku("HOT"))
    assert item is not None
    assert [h.key for h in item.holds] == [f"O-{n}" for n in range(1, 42)]


def test_reservation_keys_and_expiry_follow_checkout_holds_among_order_holds(
    tmp_path: Path,
) -> None:
    """Order holds come and go without touching the item's reservation keys and expiry;
    a checkout hold placed, extended or released updates both."""
    clock = ManualClock(T0)
    store = SqliteStore(str(tmp_path / "keys.db"))
    oms = OMS(store, clock=clock, ids=SequentialIds())
    oms.add_location(
        Location(id="WH", kind="warehouse", geo=GeoPoint(50, 8), capabilities={"ship"})
    )
    oms.receive_many([StockPosition("WH", "SKU", 100)])

    def expiring_and_reserved() -> tuple[list[Sku], list[Sku]]:
        with store.unit_of_work(write=False) as uow:
            soon = uow.inventory.expiring(T0 + timedelta(minutes=20))
            return soon, uow.inventory.reserved_under("cart")

    oms.reserve("SKU", 2, ttl=timedelta(minutes=10), key="cart")
    assert expiring_and_reserved() == (["SKU"], ["SKU"])
    first = oms.place_order(draft(("SKU", 1)))
    oms.place_order(draft(("SKU", 1)))
    oms.allocate(first.id)
    assert expiring_and_reserved() == (["SKU"], ["SKU"])
    oms.extend_reservation("cart", ttl=timedelta(hours=1))
    assert expiring_and_reserved() == ([], ["SKU"])
    oms.place_order(draft(("SKU", 1)))
    oms.release_reservation("cart")
    assert expiring_and_reserved() == ([], [])
    fresh = SqliteStore(str(tmp_path / "keys.db"))
    with fresh.unit_of_work(write=False) as uow:
        item = uow.inventory.get("SKU")
    assert item is not None
    assert [h.key for h in item.holds] == ["O-2", "O-3"]


def test_pre_orders_write_one_backorder_row_per_order(tmp_path: Path) -> None:
    """Orders for a SKU with no stock wait as backorders, one row each in ``backorders``:
    the next pre-order writes one row, the item's body carries none, and stock arriving
    turns the oldest into holds; a fresh store reads the item as the writer left it."""
    path = str(tmp_path / "launch.db")
    store = SqliteStore(path)
    oms = OMS(store, clock=ManualClock(), ids=SequentialIds())
    oms.add_location(
        Location(id="WH", kind="warehouse", geo=GeoPoint(50, 8), capabilities={"ship"})
    )
    for _ in range(40):
        oms.place_order(draft(("LAUNCH", 2)))
    store.statement_log = []
    oms.place_order(draft(("LAUNCH", 2)))
    rows_written = [args for kind, sql, args in store.statement_log if "INTO backorders" in sql]
    assert [len(rows) for rows in rows_written] == [1]
    connection = store.connection()
    (body,) = connection.execute("SELECT body FROM items WHERE sku = 'LAUNCH'").fetchone()
    assert '"backorders":[]' in body
    oms.receive("WH", "LAUNCH", 25)
    with store.unit_of_work(write=False) as uow:
        written = uow.inventory.get(Sku("LAUNCH"))
    with SqliteStore(path).unit_of_work(write=False) as uow:
        read_back = uow.inventory.get(Sku("LAUNCH"))
    assert read_back == written
    assert written is not None
    assert len(written.holds) == 13  # 12 pre-orders served whole, one in part
    assert sorted(b.quantity for b in written.backorders) == [1] + [2] * 28
    assert sum(h.quantity for h in written.holds) == 25


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("order"), st.integers(1, 4)),
            st.tuples(st.just("cancel"), st.integers(0, 30)),
            st.tuples(st.just("receive"), st.integers(1, 9)),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_backorder_rows_follow_every_command(steps: list[tuple[str, int]]) -> None:
    """Property: whatever pre-orders, cancellations and receipts do to a SKU's holds and
    backorders, a fresh store reading the file finds the item the writer holds."""
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "rows.db")
        oms = OMS(SqliteStore(path), clock=ManualClock(), ids=SequentialIds())
        oms.add_location(
            Location(id="WH", kind="warehouse", geo=GeoPoint(50, 8), capabilities={"ship"})
        )
        placed: list[str] = []
        for kind, n in steps:
            if kind == "order":
                placed.append(oms.place_order(draft(("LAUNCH", n))).id)
            elif kind == "cancel" and placed:
                oms.cancel(placed.pop(n % len(placed)))
            elif kind == "receive":
                oms.receive("WH", "LAUNCH", n)
            with oms.store.unit_of_work(write=False) as uow:
                written = uow.inventory.get(Sku("LAUNCH"))
            with SqliteStore(path).unit_of_work(write=False) as uow:
                assert uow.inventory.get(Sku("LAUNCH")) == written


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("reserve"), st.integers(0, 60)),
            st.tuples(st.just("extend"), st.integers(0, 60)),
            st.tuples(st.just("release"), st.integers(0, 60)),
            st.tuples(st.just("order"), st.integers(0, 60)),
            st.tuples(st.just("plain order"), st.integers(1, 3)),
            st.tuples(st.just("allocate"), st.integers(0, 60)),
            st.tuples(st.just("expire"), st.integers(1, 30)),
        ),
        max_size=30,
    )
)
def test_reservation_indexes_follow_a_busy_sku(kind: str, steps: list[tuple[str, int]]) -> None:
    """Property: with more carts on a SKU than the index's threshold, whatever carts and
    orders do, the store's reservation keys and expiry (on SQLite, read by a fresh store)
    are the item's: a key is listed exactly while its checkout holds remain, and the SKU
    counts as expiring exactly from its earliest checkout expiry. Orders that leave the
    carts alone must leave both indexes right without recomputing them."""
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "carts.db")
        clock = ManualClock(T0)
        store: Store = SqliteStore(path) if kind == "sqlite" else MemoryStore()
        reader: Callable[[], Store] = (
            (lambda: SqliteStore(path)) if kind == "sqlite" else (lambda: store)
        )
        oms = OMS(store, clock=clock, ids=SequentialIds())
        orders: list[str] = []
        oms.add_location(
            Location(id="WH", kind="warehouse", geo=GeoPoint(50, 8), capabilities={"ship"})
        )
        oms.receive("WH", "HOT", 1_000)
        carts = [f"cart-{n}" for n in range(36)]  # past the threshold; 37-60 come and go
        for cart in carts:
            oms.reserve("HOT", 1, ttl=timedelta(minutes=15), key=cart)
        for step, n in steps:
            cart = f"cart-{n}"
            with oms.store.unit_of_work(write=False) as uow:
                item = uow.inventory.get(Sku("HOT"))
            assert item is not None
            held = bool(item.checkout_holds(cart))
            if step == "reserve" and not held:
                oms.reserve("HOT", 1 + n % 3, ttl=timedelta(minutes=n % 20 + 1), key=cart)
            elif step == "extend" and held:
                oms.extend_reservation(cart, ttl=timedelta(minutes=n % 25 + 1))
            elif step == "release" and held:
                oms.release_reservation(cart)
            elif step == "order" and held:
                wanted = 1 + n % 4  # at times more than the cart holds: taken over, then held
                orders.append(oms.place_order(draft(("HOT", wanted), reservation_key=cart)).id)
            elif step == "plain order":
                orders.append(oms.place_order(draft(("HOT", n))).id)
            elif step == "allocate" and orders:
                order = oms.get_order(orders.pop(n % len(orders)))
                if order.open_units:
                    oms.allocate(order.id)
            elif step == "expire":
                clock.advance(timedelta(minutes=n))
                oms.expire_reservations()
            with oms.store.unit_of_work(write=False) as uow:
                item = uow.inventory.get(Sku("HOT"))
            assert item is not None
            with reader().unit_of_work(write=False) as uow:
                for key in (f"cart-{n}" for n in range(61)):
                    listed = uow.inventory.reserved_under(key) == ["HOT"]
                    assert listed == bool(item.checkout_holds(key))
                expiry = item.next_expiry
                later = clock.now() + timedelta(days=1)
                assert uow.inventory.expiring(later) == (["HOT"] if expiry else [])
                if expiry is not None:
                    assert uow.inventory.expiring(expiry - timedelta(microseconds=1)) == []
                    assert uow.inventory.expiring(expiry) == ["HOT"]
