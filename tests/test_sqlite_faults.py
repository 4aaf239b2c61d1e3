"""Faults and load on the SQLite store: migrations, busy locks, corruption, a killed writer."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from omscore import OMS, Delivery, Location
from omscore.adapters import sqlite as sqlite_adapter
from omscore.adapters.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore
from omscore.errors import DamagedRecord, OmsError, SchemaError, StoreBusy, StoreError
from omscore.events import OrderPlaced
from omscore.geo import GeoPoint
from omscore.ids import OrderId, Sku
from omscore.inventory import Backorder, InventoryItem, StockHold
from omscore.orders import WAITING_ORDER, FulfillmentStatus
from omscore.ports import Store
from omscore.serialization import make_converter
from omscore.service import StockPosition
from omscore.sourcing import LowestCostPolicy
from omscore.testing import ManualClock, SequentialIds
from omscore.testing.invariants import check_books

from .conftest import draft, warehouse
from .sqlite_writer import run_command

WRITER = Path(__file__).with_name("sqlite_writer.py")


def old_file(path: Path, version: int) -> None:
    """A database written by an omscore that knew only migrations up to ``version``."""
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for number, statements in MIGRATIONS:
            if number <= version:
                for statement in statements:
                    if isinstance(statement, str):
                        connection.execute(statement)
                    else:
                        statement(connection)
                connection.execute("INSERT INTO schema_version VALUES (?)", (number,))


def test_a_migration_that_fails_leaves_the_file_at_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each migration is one transaction: when a statement of the last one fails (a full
    disk, say), opening raises StoreError, nothing of that migration stays, and the next
    open, with the fault gone, migrates the file."""
    path = tmp_path / "old.db"
    old_file(path, SCHEMA_VERSION - 1)
    last, statements = MIGRATIONS[-1]
    failing = (*MIGRATIONS[:-1], (last, (*statements, "CREATE TABLE half_done (")))
    monkeypatch.setattr(sqlite_adapter, "MIGRATIONS", failing)
    with pytest.raises(StoreError, match="open: OperationalError"):
        SqliteStore(str(path))

    def versions_and_indexes() -> tuple[int, set[str]]:
        with closing(sqlite3.connect(path)) as connection:
            version = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            return version, {r[0] for r in rows}

    version, indexes = versions_and_indexes()
    assert version == SCHEMA_VERSION - 1
    assert "outbox_by_order" not in indexes  # what the last migration creates
    monkeypatch.undo()
    assert SqliteStore(str(path)).migrated_from == SCHEMA_VERSION - 1
    version, indexes = versions_and_indexes()
    assert version == SCHEMA_VERSION
    assert "outbox_by_order" in indexes


def test_an_older_schema_is_migrated_on_open(tmp_path: Path) -> None:
    """A version-1 file gets the later migrations and keeps its rows."""
    path = tmp_path / "old.db"
    old_file(path, 1)
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("INSERT INTO locations VALUES ('X', 1, '{}')")
    store = SqliteStore(str(path))
    assert store.migrated_from == 1
    with closing(sqlite3.connect(path)) as connection, connection:
        assert connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == (
            SCHEMA_VERSION
        )
        indexes = {
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        assert {"fulfillments_by_wait", "fulfillments_at_location"} <= indexes
        assert "fulfillments_by_status" not in indexes  # schema 6 replaced it
        assert "orders_by_status" in indexes  # what order queues read
        assert connection.execute("SELECT COUNT(*) FROM locations").fetchone()[0] == 1


HOLD_KINDS = ("fraud", "manual", "payment")


def stocked_file(tmp_path: Path) -> tuple[Path, ManualClock, OMS]:
    """A store file with a warehouse WH holding 10 A, the clock and the OMS on it."""
    path = tmp_path / "orders.db"
    clock = ManualClock()
    oms = OMS(SqliteStore(str(path)), clock=clock, ids=SequentialIds())
    oms.add_location(warehouse("WH"))
    oms.receive("WH", "A", 10)
    return path, clock, oms


def reopened_as(
    oms: OMS, path: Path, clock: ManualClock, undo: Callable[[sqlite3.Connection], None]
) -> tuple[OMS, SqliteStore]:
    """Close the OMS's store, make its file as an older schema left it with ``undo``, and
    open it again (which migrates it): the new OMS and its store."""
    oms.store.close()  # type: ignore[attr-defined]
    with closing(sqlite3.connect(path)) as connection, connection:
        undo(connection)
    store = SqliteStore(str(path))
    return OMS(store, clock=clock), store


def as_schema_9(connection: sqlite3.Connection) -> None:
    """Undo schema 10: outbox rows without the order their event names."""
    connection.execute("DROP INDEX outbox_by_order")
    connection.execute("ALTER TABLE outbox DROP COLUMN order_id")
    connection.execute("DELETE FROM schema_version WHERE version >= 10")


def test_an_orders_events_are_filled_in_by_the_schema_10_migration(tmp_path: Path) -> None:
    """A schema-9 file opens with each outbox row under the order its event names (a
    return's events under its order, stock events under none), and an order's events are
    read through the index, in commit order."""
    path, clock, oms = stocked_file(tmp_path)
    first = oms.place_order(draft(("A", 2)), allocate=True)
    second = oms.place_order(draft(("A", 1)))
    oms.cancel(first.id, reason="changed my mind")
    before = {o.id: oms.order_history(o.id) for o in (first, second)}
    oms, reopened = reopened_as(oms, path, clock, as_schema_9)
    assert reopened.migrated_from == 9
    assert {o: oms.order_history(o) for o in before} == before
    assert "UnitsCancelled" in [e.name for e in before[first.id]]
    reopened.statement_log = []
    reopened.order_events(first.id)
    ((_, sql, args),) = [row for row in reopened.statement_log if "FROM outbox" in row[1]]
    with reopened.unit_of_work(write=False) as uow:
        plan = [row[3] for row in uow.all(f"EXPLAIN QUERY PLAN {sql}", args)]
    assert plan == ["SEARCH outbox USING INDEX outbox_by_order (order_id=?)"]
    with closing(sqlite3.connect(path)) as connection:
        unnamed = connection.execute(
            "SELECT COUNT(*) FROM outbox WHERE order_id IS NULL AND type = 'StockReceived'"
        ).fetchone()[0]
    assert unnamed == 1


def as_schema_8(connection: sqlite3.Connection) -> None:
    """Undo schema 9: items without the column of their earliest supply ETA."""
    as_schema_9(connection)
    connection.execute("DROP INDEX items_by_eta")
    connection.execute("ALTER TABLE items DROP COLUMN next_eta")
    connection.execute("DELETE FROM schema_version WHERE version >= 9")


def test_supply_due_is_filled_in_by_the_schema_9_migration(tmp_path: Path) -> None:
    """A schema-8 file opens with each item's earliest supply ETA, which the index finds
    (an ETA given in another zone is compared in UTC)."""
    path, clock, oms = stocked_file(tmp_path)
    berlin = timezone(timedelta(hours=1))
    now = clock.now()
    oms.add_supply("A", "WH", 5, (now + timedelta(days=3)).astimezone(berlin), "PO-1")
    oms.add_supply("A", "WH", 5, now + timedelta(days=1), "PO-2")
    oms.add_supply("B", "WH", 5, (now + timedelta(days=2)).astimezone(berlin), "PO-3")
    oms.add_location(warehouse("WH-2"))
    oms.transfer("A", "WH", "WH-2", 4, eta=now + timedelta(hours=12))
    oms, reopened = reopened_as(oms, path, clock, as_schema_8)
    assert reopened.migrated_from == 8
    due = [
        [i.arrival.reference for i in oms.incoming_supply(due_by=now + timedelta(days=days))]
        for days in (0, 0.5, 1, 2, 3)
    ]
    assert due == [
        [],
        ["transfer T-1"],  # found by the transfer's ETA: A's earliest, before any PO's
        ["transfer T-1", "PO-2"],
        ["transfer T-1", "PO-2", "PO-3"],
        ["transfer T-1", "PO-2", "PO-3", "PO-1"],
    ]
    reopened.statement_log = []
    with reopened.unit_of_work(write=False) as uow:
        uow.inventory.supply_due(now)
        ((_, sql, args),) = [row for row in reopened.statement_log if "FROM items" in row[1]]
        plan = [row[3] for row in uow.all(f"EXPLAIN QUERY PLAN {sql}", args)]
    assert plan[0] == "SEARCH items USING INDEX items_by_eta (next_eta>? AND next_eta<?)"


def as_schema_7(connection: sqlite3.Connection) -> None:
    """Undo schema 8: orders without a customer column."""
    as_schema_8(connection)
    connection.execute("DROP INDEX orders_by_customer")
    connection.execute("ALTER TABLE orders DROP COLUMN customer_ref")
    connection.execute("DELETE FROM schema_version WHERE version >= 8")


def test_customer_orders_are_filled_in_by_the_schema_8_migration(tmp_path: Path) -> None:
    """A schema-7 file opens with each order under its customer, found by the index."""
    path, clock, oms = stocked_file(tmp_path)
    for customer in ("C-1", "C-2", None, "C-1"):
        oms.place_order(attrs.evolve(draft(("A", 1)), customer_ref=customer))
        clock.advance(timedelta(minutes=5))
    assert [o.id for o in oms.customer_orders("C-1")] == ["O-4", "O-1"]
    oms, reopened = reopened_as(oms, path, clock, as_schema_7)
    assert reopened.migrated_from == 7
    assert [o.id for o in oms.customer_orders("C-1")] == ["O-4", "O-1"]
    assert [o.id for o in oms.customer_orders("C-2")] == ["O-2"]
    assert [o.id for o in oms.customer_orders("C-1", before="O-4")] == ["O-1"]


def test_a_customers_orders_are_read_through_the_customer_index(tmp_path: Path) -> None:
    """A page of a customer's orders is found and ordered by the index: no scan, no sort."""
    store = SqliteStore(str(tmp_path / "plan.db"))
    store.statement_log = []
    with store.unit_of_work(write=False) as uow:
        when = ManualClock().now()
        uow.orders.customer_orders("C-1", before=(when, OrderId("O-9")), limit=20)
        ((_, sql, args),) = [row for row in store.statement_log if "FROM orders" in row[1]]
        plan = [row[3] for row in uow.all(f"EXPLAIN QUERY PLAN {sql}", args)]
    assert plan == [
        "SEARCH orders USING COVERING INDEX orders_by_customer "
        "(customer_ref=? AND (placed_at,id)<(?,?))"
    ]


def as_schema_6(connection: sqlite3.Connection) -> None:
    """Undo schema 7: no rows of order holds."""
    as_schema_7(connection)
    connection.execute("DROP TABLE order_holds")
    connection.execute("DELETE FROM schema_version WHERE version >= 7")


def test_order_queues_are_filled_in_by_the_schema_7_migration(tmp_path: Path) -> None:
    """A schema-6 file opens with its held orders in their hold queues."""
    path, clock, oms = stocked_file(tmp_path)
    for _ in range(3):
        oms.place_order(draft(("A", 1)))
        clock.advance(timedelta(minutes=5))
    oms.hold("O-3", "fraud", reason="score 91")
    oms.hold("O-1", "fraud", reason="score 93")
    oms.hold("O-1", "manual", reason="call")
    oms.allocate("O-2")
    queues = {kind: oms.order_queue(hold=kind) for kind in HOLD_KINDS}
    assert [q.order.id for q in queues["fraud"]] == ["O-1", "O-3"]
    assert [q.order.id for q in queues["manual"]] == ["O-1"]
    reopened, store = reopened_as(oms, path, clock, as_schema_6)
    assert store.migrated_from == 6
    assert {k: reopened.order_queue(hold=k) for k in HOLD_KINDS} == queues
    assert [q.order.id for q in reopened.order_queue()] == ["O-1", "O-3"]


def test_a_queue_of_waiting_orders_reads_them_by_status(tmp_path: Path) -> None:
    """The order queue finds orders through the status index, not by scanning them all."""
    store = SqliteStore(str(tmp_path / "plan.db"))
    store.statement_log = []
    with store.unit_of_work(write=False) as uow:
        uow.orders.order_queue(WAITING_ORDER, limit=20)
        ((_, sql, args),) = [row for row in store.statement_log if "FROM orders" in row[1]]
        plan = uow.all(f"EXPLAIN QUERY PLAN {sql}", args)
    assert "SEARCH orders USING INDEX orders_by_status (status=?)" in [row[3] for row in plan]


def as_schema_5(connection: sqlite3.Connection) -> None:
    """Undo schemas 7 and 6: fulfilment rows without ``since``, at the location that
    fulfils them (handed over or not), and the index schema 2 made."""
    as_schema_6(connection)
    connection.execute("DROP INDEX fulfillments_by_wait")
    connection.execute("DROP INDEX fulfillments_at_location")
    connection.execute("ALTER TABLE fulfillments DROP COLUMN since")
    for (body,) in connection.execute("SELECT body FROM orders").fetchall():
        for f in json.loads(body)["fulfillments"]:
            connection.execute(
                "UPDATE fulfillments SET location_id = ? WHERE id = ?", (f["location_id"], f["id"])
            )
    connection.execute("CREATE INDEX fulfillments_by_status ON fulfillments (status, order_id)")
    connection.execute("DELETE FROM schema_version WHERE version >= 6")


def test_fulfilment_queues_are_filled_in_by_the_schema_6_migration(tmp_path: Path) -> None:
    """A schema-5 file opens with every fulfilment order queued where its units are, by
    the time it entered its status: a handed-over ship-to-store parcel at the store."""
    path = tmp_path / "queues.db"
    clock = ManualClock()
    oms = OMS(
        SqliteStore(str(path)),
        clock=clock,
        ids=SequentialIds(),
        sourcing=LowestCostPolicy(allow_ship_to_store=True),
    )
    oms.add_location(warehouse("WH"))
    oms.add_location(Location(id="ST", kind="store", geo=GeoPoint(50, 8), capabilities={"pickup"}))
    oms.receive("WH", "A", 10)
    for delivery in (None, Delivery.pickup("ST"), None):
        order = oms.place_order(draft(("A", 1), delivery=delivery))
        oms.allocate(order.id)
        clock.advance(timedelta(minutes=5))
    first, parcel, third = (oms.get_order(f"O-{n}").fulfillments[0] for n in (1, 2, 3))
    oms.ready_for_pickup(parcel.id)
    clock.advance(timedelta(minutes=5))
    oms.accept_fulfillment(first.id)
    everything = [s.value for s in FulfillmentStatus]
    before = {loc: oms.fulfillment_queue(loc, statuses=everything) for loc in ("WH", "ST")}
    assert [q.fulfillment.id for q in before["WH"]] == [third.id, first.id]
    assert [q.fulfillment.id for q in before["ST"]] == [parcel.id]
    reopened, store = reopened_as(oms, path, clock, as_schema_5)
    assert store.migrated_from == 5
    after = {loc: reopened.fulfillment_queue(loc, statuses=everything) for loc in ("WH", "ST")}
    assert after == before


def items_of(store: Store, *skus: str) -> dict[str, InventoryItem | None]:
    """The stored items of ``skus``."""
    with store.unit_of_work(write=False) as uow:
        return {sku: uow.inventory.get(Sku(sku)) for sku in skus}


def three_orders(path: Path, stock: list[StockPosition]) -> dict[str, InventoryItem | None]:
    """Items A and B after three orders on a new store at ``path`` with ``stock``."""
    oms = OMS(SqliteStore(str(path)), clock=ManualClock(), ids=SequentialIds())
    oms.add_location(
        Location(id="WH", kind="warehouse", geo=GeoPoint(50, 8), capabilities={"ship"})
    )
    oms.receive_many(stock)
    for lines in ((("A", 2),), (("A", 1), ("B", 3)), (("B", 1),)):
        oms.place_order(draft(*lines))
    items = items_of(oms.store, "A", "B")
    oms.store.close()  # type: ignore[attr-defined]
    return items


def into_item_bodies(
    connection: sqlite3.Connection,
    items: dict[str, InventoryItem | None],
    field: str,
    row: type[StockHold] | type[Backorder],
) -> None:
    """Write each item's ``field`` back into its JSON body, as older schemas kept it."""
    converter = make_converter()
    for sku, item in items.items():
        assert item is not None
        (text,) = connection.execute("SELECT body FROM items WHERE sku = ?", (sku,)).fetchone()
        body = json.loads(text)
        body[field] = converter.unstructure(getattr(item, field), tuple[row, ...])  # type: ignore[valid-type]
        connection.execute("UPDATE items SET body = ? WHERE sku = ?", (json.dumps(body), sku))


def test_stock_holds_move_out_of_item_bodies_into_rows_on_migration(tmp_path: Path) -> None:
    """Schema 3 keeps holds as rows: a schema-2 file, whose item bodies hold them, opens
    with every hold of every SKU in place, in order, and the books still agree."""
    path = tmp_path / "holds.db"
    before = three_orders(path, [StockPosition("WH", sku, 50) for sku in ("A", "B")])
    assert all(item is not None and item.holds for item in before.values())
    # as schema 2 wrote it: holds in the body
    with closing(sqlite3.connect(path)) as connection, connection:
        into_item_bodies(connection, before, "holds", StockHold)
        connection.execute("DROP TABLE holds")
        connection.execute("DROP TABLE backorders")
        as_schema_5(connection)
        connection.execute("DELETE FROM schema_version WHERE version >= 3")
    store = SqliteStore(str(path))
    assert store.migrated_from == 2
    assert items_of(store, "A", "B") == before
    check_books(OMS(store))


def test_backorders_move_out_of_item_bodies_into_rows_on_migration(tmp_path: Path) -> None:
    """Schema 4 keeps backorders as rows: a schema-3 file, whose item bodies hold them,
    opens with every backorder of every SKU in place, in order, and the books agree."""
    path = tmp_path / "backorders.db"
    before = three_orders(path, [StockPosition("WH", "A", 1)])
    assert all(item is not None and item.backorders for item in before.values())
    # as schema 3 wrote it: backorders in the body
    with closing(sqlite3.connect(path)) as connection, connection:
        into_item_bodies(connection, before, "backorders", Backorder)
        connection.execute("DROP TABLE backorders")
        as_schema_5(connection)
        connection.execute("DELETE FROM schema_version WHERE version >= 4")
    store = SqliteStore(str(path))
    assert store.migrated_from == 3
    assert items_of(store, "A", "B") == before
    check_books(OMS(store))


def test_the_relay_keeps_its_place_across_the_schema_5_migration(tmp_path: Path) -> None:
    """Schema 5 keeps the relay's progress as one mark: a schema-4 file whose first events
    carry the old per-row published flag opens with exactly the rest unpublished."""
    path = tmp_path / "relay.db"
    store = SqliteStore(str(path))
    oms = OMS(store, clock=ManualClock(), ids=SequentialIds())
    oms.add_location(warehouse("WH-1"))
    for sku in ("A", "B", "C", "D"):
        oms.receive("WH-1", sku, 3)
    everything = store.outbox()
    store.close()
    # as schema 4 marked them: a flag per row
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("UPDATE outbox SET published = 1 WHERE position <= 3")
        connection.execute("DELETE FROM meta WHERE name = 'published'")
        as_schema_5(connection)
        connection.execute("DELETE FROM schema_version WHERE version >= 5")
    reopened = SqliteStore(str(path))
    assert reopened.migrated_from == 4
    assert reopened.unpublished() == everything[3:]


def test_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    """A file from a newer omscore: a clear SchemaError, nothing written."""
    path = tmp_path / "new.db"
    old_file(path, SCHEMA_VERSION)
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    before = path.read_bytes()
    with pytest.raises(SchemaError, match=f"schema version {SCHEMA_VERSION + 1}"):
        SqliteStore(str(path))
    assert path.read_bytes() == before


def test_a_file_that_is_not_a_database_raises_a_store_error(tmp_path: Path) -> None:
    """Driver errors come out as omscore errors, with the driver's as cause."""
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as info:
        SqliteStore(str(path))
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_a_statement_first_in_a_unit_of_work_is_inside_its_transaction(
    tmp_path: Path,
) -> None:
    """A unit of work's first statement, a write included, begins its transaction: a unit
    left without commit undoes it, and another writer waits for it meanwhile."""
    path = tmp_path / "first.db"
    store = SqliteStore(str(path), busy_timeout_ms=20)
    with store.unit_of_work() as uow:
        uow.execute("INSERT INTO meta (name, value) VALUES ('probe', 1)")
        other = sqlite3.connect(path, timeout=0.02, isolation_level=None)
        with closing(other), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    with closing(sqlite3.connect(path)) as reader:
        assert reader.execute("SELECT COUNT(*) FROM meta WHERE name = 'probe'").fetchone() == (0,)
    store.close()


def test_a_busy_database_is_retried_until_it_frees(tmp_path: Path) -> None:
    """Another connection holds the write lock for a while: the command waits, retries, and
    succeeds; no sqlite3 error leaks."""
    path = tmp_path / "busy.db"
    oms = OMS(SqliteStore(str(path), busy_timeout_ms=50), ids=SequentialIds(), max_attempts=60)
    oms.add_location(warehouse("WH-1"))
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.4, lambda: blocker.execute("COMMIT")).start()
    level = oms.receive("WH-1", "A", 3)
    assert level.on_hand == 3
    blocker.close()


def test_a_lock_that_never_frees_ends_in_store_busy(tmp_path: Path) -> None:
    """Past the bounded retries the caller gets StoreBusy, an OmsError, and nothing moved."""
    path = tmp_path / "stuck.db"
    oms = OMS(SqliteStore(str(path), busy_timeout_ms=20), ids=SequentialIds(), max_attempts=3)
    oms.add_location(warehouse("WH-1"))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreBusy) as info:
            oms.receive("WH-1", "A", 3)
        assert isinstance(info.value, OmsError)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert oms.stock("WH-1", "A").on_hand == 0


@pytest.mark.parametrize(
    ("seed", "checkpoint"), [(1, "auto"), (2, "auto"), (3, "background"), (4, "background")]
)
def test_a_writer_killed_mid_load_leaves_a_sound_file(
    tmp_path: Path, seed: int, checkpoint: str
) -> None:
    """SIGKILL a writer at a random moment (checkpointing in its commands, or from a thread
    of its own): the file passes integrity_check, no order is half-written, the books
    agree, and replaying in-flight commands with their keys completes each exactly once."""
    db, journal = tmp_path / "shop.db", tmp_path / "journal.txt"
    setup = OMS(SqliteStore(str(db)), ids=SequentialIds())
    setup.add_location(warehouse("WH-1"))
    for n in range(5):
        setup.receive("WH-1", f"SKU-{n}", 1_000_000)
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), str(db), str(journal), "0", "100000", checkpoint]
    )
    time.sleep(random.Random(seed).uniform(1.5, 3.0))
    writer.send_signal(signal.SIGKILL)
    writer.wait()

    store = SqliteStore(str(db))
    assert store.integrity_check() == "ok"
    oms = OMS(store)
    placed = [e for e in oms.events() if isinstance(e, OrderPlaced)]
    assert store.counts()["orders"] == len(placed), "every stored order has its event"
    check_books(oms)

    lines = journal.read_text(encoding="utf-8").split()
    intents = {int(n) for kind, n in zip(lines[::2], lines[1::2], strict=True) if kind == "intent"}
    done = {int(n) for kind, n in zip(lines[::2], lines[1::2], strict=True) if kind == "done"}
    assert intents, "the writer got going before it was killed"
    for i in sorted(intents - done):
        run_command(oms, i)
    for i in sorted(intents):
        run_command(oms, i)
    placed = [e for e in oms.events() if isinstance(e, OrderPlaced)]
    assert len(placed) == len(intents)
    for event in placed:
        assert oms.get_order(event.order_id).open_units == 0
    check_books(oms)


@pytest.mark.parametrize(
    ("table", "body", "read", "kind"),
    [
        ("orders", "{", lambda oms: oms.get_order("O-1"), "Order"),
        ("orders", "null", lambda oms: oms.get_order("O-1"), "Order"),
        ("orders", '{"id": "O-1"}', lambda oms: oms.get_order("O-1"), "Order"),
        ("items", "[1, 2]", lambda oms: oms.inventory("A"), "InventoryItem"),
        ("locations", "{}", lambda oms: oms.locations(), "Location"),
        ("outbox", '{"type": "NoSuchEvent"}', lambda oms: oms.events(), "DomainEvent"),
    ],
)
def test_a_row_changed_outside_omscore_is_a_damaged_record_not_a_decoder_error(
    tmp_path: Path, table: str, body: str, read: Callable[[OMS], object], kind: str
) -> None:
    """JSON, cattrs and the validators each raise their own errors on a damaged row; the
    store says which aggregate could not be read, and the rows around it still can."""
    path = tmp_path / "shop.db"
    oms = OMS(SqliteStore(str(path)), clock=ManualClock(), ids=SequentialIds())
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 5)
    oms.receive("WH-1", "B", 5)
    first, second = (oms.place_order(draft(("A", 1))) for _ in range(2))
    where = {"orders": "id = 'O-1'", "items": "sku = 'A'"}.get(table, "1 = 1")
    with closing(sqlite3.connect(path)) as raw:
        raw.execute(f"UPDATE {table} SET body = ? WHERE {where}", (body,))
        raw.commit()
    damaged = OMS(SqliteStore(str(path)))
    with pytest.raises(DamagedRecord, match=f"a stored {kind} cannot be read") as refused:
        read(damaged)
    assert isinstance(refused.value, StoreError)
    if table == "orders":
        assert damaged.get_order(second.id) == second
        assert first.id == "O-1"
    if table == "items":
        assert damaged.inventory("B").level("WH-1").on_hand == 5


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"path": ""}, "path must be a file path or ':memory:', got ''"),
        ({"path": 5}, "path must be a file path or ':memory:', got 5"),
        ({"path": None}, "path must be a file path or ':memory:', got None"),
        ({"busy_timeout_ms": "5s"}, "busy_timeout_ms must be an int >= 0, got '5s'"),
        ({"busy_timeout_ms": -1}, "busy_timeout_ms must be an int >= 0, got -1"),
        ({"cache_size": 1.5}, "cache_size must be an int >= 0, got 1.5"),
        ({"synchronous": "OFF"}, "synchronous must be NORMAL or FULL, got 'OFF'"),
    ],
)
def test_a_store_opened_with_settings_that_cannot_work_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: dict[str, Any], message: str
) -> None:
    """Refused before any file is made (an empty path gave each connection a private
    temporary database; a cache size of "x" failed at the first read)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError) as refused:
        SqliteStore(**settings)
    assert str(refused.value) == message
    assert list(tmp_path.iterdir()) == []


def test_a_store_path_may_be_a_path_object(tmp_path: Path) -> None:
    """``pathlib.Path`` works as well as ``str``."""
    store = SqliteStore(tmp_path / "shop.db")
    assert store.path == str(tmp_path / "shop.db")
    store.close()
