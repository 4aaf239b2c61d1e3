"""The embedded default store: SQLite through the standard library's ``sqlite3``.

- WAL journal, ``synchronous=NORMAL`` by default (``FULL`` selectable), a busy timeout.
- A command's unit of work is one transaction begun with ``BEGIN IMMEDIATE``: writers queue
  for the write lock, so two processes never interleave a read-modify-write of the same
  stock. Every aggregate also carries a version that the write checks, and a stale write
  raises :class:`~omscore.errors.ConcurrencyConflict`.
- A schema version table and forward migrations applied on open; a file written by a newer
  omscore is refused with :class:`~omscore.errors.SchemaError`.
- Aggregates are stored as JSON written by the project's cattrs converter, beside columns
  for what is queried (status, sku, location, time). Only parameterised SQL; nothing stored
  is ever executed or unpickled.
- Driver errors never leak: each becomes an :class:`~omscore.errors.OmsError`
  (``raise ... from``).
- ``checkpoint="background"`` moves the write-ahead log back into the database file from
  a thread of the store's own instead of in the commit that crosses SQLite's mark, which
  takes the slowest commands' time from about 5 ms to under 1 ms.
"""

from __future__ import annotations

import contextlib
import functools
import json
import operator
import os
import sqlite3
import sys
import threading
import urllib.parse
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, Self, TypeVar

from omscore._values import evolved, on_first_use, opened, remember_last
from omscore.errors import (
    ConcurrencyConflict,
    DamagedRecord,
    SchemaError,
    StoreBusy,
    StoreError,
)
from omscore.events import DomainEvent
from omscore.ids import ChannelId, FulfillmentId, LocationId, OrderId, Sku
from omscore.inventory import (
    Backorder,
    Channel,
    InventoryItem,
    Location,
    LocationLoad,
    StockHold,
    StockMovement,
)
from omscore.inventory.stock import MovementKind
from omscore.orders import FulfillmentStatus, Order, OrderStatus
from omscore.ports import (
    IdempotencyRecord,
    OutboxRecord,
    Store,
    checked_cutoff,
    checked_id,
    checked_limit,
    checked_position,
)
from omscore.returns import Return
from omscore.serialization import decoding_problem, make_converter

T = TypeVar("T")


def _move_holds_out_of_item_bodies(connection: sqlite3.Connection) -> None:
    """Schema 3 keeps a SKU's stock holds as rows of ``holds`` (one write per hold placed or
    released, instead of rewriting every hold of a busy SKU in its item's body)."""
    _move_out_of_item_bodies(connection, "holds")


def _move_backorders_out_of_item_bodies(connection: sqlite3.Connection) -> None:
    """Schema 4 keeps a SKU's backorders as rows of ``backorders``, as schema 3 did holds
    (thousands of pre-orders waiting for a launch no longer rewrite each other)."""
    _move_out_of_item_bodies(connection, "backorders")


def _move_out_of_item_bodies(connection: sqlite3.Connection, field: str) -> None:
    """Move each item body's list ``field`` into rows of the table of that name, in order."""
    items = connection.execute("SELECT sku, body FROM items").fetchall()
    for sku, body in items:
        data = json.loads(body)
        rows = data.get(field) or []
        connection.executemany(
            f"INSERT INTO {field} (sku, position, body) VALUES (?, ?, ?)",
            [(sku, n, _stdlib_json_text(row)) for n, row in enumerate(rows, start=1)],
        )
        data[field] = []
        connection.execute(
            "UPDATE items SET body = ? WHERE sku = ?", (_stdlib_json_text(data), sku)
        )


def _fill_fulfillment_waits(connection: sqlite3.Connection) -> None:
    """Schema 6 queues fulfilment orders: each row gets the time it entered its status
    (``since``) and the location its units are at (the pickup store once handed over)."""
    rows = []
    for (body,) in connection.execute("SELECT body FROM orders"):
        for f in json.loads(body).get("fulfillments") or []:
            since = datetime.fromisoformat(f.get("changed_at") or f["created_at"])
            where = f.get("handover_location") or f["location_id"]
            rows.append((where, _utc(since), f["id"]))
    connection.executemany("UPDATE fulfillments SET location_id = ?, since = ? WHERE id = ?", rows)


def _fill_order_holds(connection: sqlite3.Connection) -> None:
    """Schema 7 queues orders by hold: one ``order_holds`` row per hold on an order."""
    rows = [
        (hold["kind"], order_id)
        for order_id, body in connection.execute("SELECT id, body FROM orders")
        for hold in json.loads(body).get("holds") or []
    ]
    connection.executemany("INSERT INTO order_holds (kind, order_id) VALUES (?, ?)", rows)


def _fill_customer_refs(connection: sqlite3.Connection) -> None:
    """Schema 8 finds a customer's orders: each order row gets its ``customer_ref``."""
    rows = [
        (ref, order_id)
        for order_id, body in connection.execute("SELECT id, body FROM orders")
        if (ref := json.loads(body).get("customer_ref")) is not None
    ]
    connection.executemany("UPDATE orders SET customer_ref = ? WHERE id = ?", rows)


def _fill_supply_etas(connection: sqlite3.Connection) -> None:
    """Schema 9 finds expected supply by date: each item row gets the earliest ETA of its
    purchase orders and of its transfers that have one."""
    rows = []
    for sku, body in connection.execute("SELECT sku, body FROM items"):
        data = json.loads(body)
        expected = [*(data.get("supply") or []), *(data.get("transfers") or [])]
        etas = [datetime.fromisoformat(a["eta"]) for a in expected if a.get("eta")]
        if etas:
            rows.append((_utc(min(etas)), sku))
    connection.executemany("UPDATE items SET next_eta = ? WHERE sku = ?", rows)


def _fill_outbox_orders(connection: sqlite3.Connection) -> None:
    """Schema 10 finds an order's events: each outbox row gets the order its event names."""
    rows = [
        (order_id, position)
        for position, body in connection.execute("SELECT position, body FROM outbox")
        if (order_id := json.loads(body).get("order_id")) is not None
    ]
    connection.executemany("UPDATE outbox SET order_id = ? WHERE position = ?", rows)


Migration = str | Callable[[sqlite3.Connection], None]

MIGRATIONS: tuple[tuple[int, tuple[Migration, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE orders (
                id TEXT PRIMARY KEY, version INTEGER NOT NULL, status TEXT NOT NULL,
                channel TEXT NOT NULL, placed_at TEXT NOT NULL, body TEXT NOT NULL)""",
            """CREATE TABLE fulfillments (
                id TEXT PRIMARY KEY, order_id TEXT NOT NULL, location_id TEXT NOT NULL,
                status TEXT NOT NULL)""",
            """CREATE TABLE items (
                sku TEXT PRIMARY KEY, version INTEGER NOT NULL, next_expiry TEXT,
                body TEXT NOT NULL)""",
            """CREATE TABLE levels (
                sku TEXT NOT NULL, location_id TEXT NOT NULL, on_hand INTEGER NOT NULL,
                allocated INTEGER NOT NULL, reserved INTEGER NOT NULL,
                safety_stock INTEGER NOT NULL, PRIMARY KEY (sku, location_id))""",
            """CREATE TABLE reservation_keys (
                key TEXT NOT NULL, sku TEXT NOT NULL, PRIMARY KEY (key, sku))""",
            """CREATE TABLE movements (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, sku TEXT NOT NULL,
                location_id TEXT NOT NULL, kind TEXT NOT NULL, on_hand_delta INTEGER NOT NULL,
                allocated_delta INTEGER NOT NULL, reference TEXT NOT NULL, at TEXT NOT NULL)""",
            """CREATE TABLE locations (
                id TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL)""",
            """CREATE TABLE channels (
                id TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL)""",
            """CREATE TABLE loads (
                location_id TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL)""",
            """CREATE TABLE returns (
                id TEXT PRIMARY KEY, order_id TEXT NOT NULL, version INTEGER NOT NULL,
                status TEXT NOT NULL, body TEXT NOT NULL)""",
            """CREATE TABLE outbox (
                position INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL,
                at TEXT NOT NULL, body TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 0)""",
            """CREATE TABLE idempotency (
                key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, result_type TEXT NOT NULL,
                result TEXT NOT NULL, at TEXT NOT NULL)""",
            """CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)""",
            "CREATE INDEX movements_by_sku ON movements (sku, location_id)",
        ),
    ),
    (
        2,
        (
            "CREATE INDEX fulfillments_by_status ON fulfillments (status, order_id)",
            "CREATE INDEX items_by_expiry ON items (next_expiry) WHERE next_expiry IS NOT NULL",
            "CREATE INDEX orders_by_status ON orders (status)",
            "CREATE INDEX returns_by_order ON returns (order_id)",
        ),
    ),
    (
        3,
        (
            """CREATE TABLE holds (
                sku TEXT NOT NULL, position INTEGER NOT NULL, body TEXT NOT NULL,
                PRIMARY KEY (sku, position)) WITHOUT ROWID""",
            _move_holds_out_of_item_bodies,
        ),
    ),
    (
        4,
        (
            """CREATE TABLE backorders (
                sku TEXT NOT NULL, position INTEGER NOT NULL, body TEXT NOT NULL,
                PRIMARY KEY (sku, position)) WITHOUT ROWID""",
            _move_backorders_out_of_item_bodies,
        ),
    ),
    (
        5,
        (
            # The relay's progress is one high-water mark in ``meta`` (events are published
            # in commit order, so the published ones are always a prefix); the per-row
            # ``published`` flag made each read and mark scan every event before it.
            "INSERT OR REPLACE INTO meta (name, value) "
            "SELECT 'published', COALESCE(MAX(position), 0) FROM outbox WHERE published = 1",
        ),
    ),
    (
        6,
        (
            "ALTER TABLE fulfillments ADD COLUMN since TEXT NOT NULL DEFAULT ''",
            _fill_fulfillment_waits,
            "DROP INDEX fulfillments_by_status",
            "CREATE INDEX fulfillments_by_wait ON fulfillments (status, since, id)",
            "CREATE INDEX fulfillments_at_location ON fulfillments (location_id, status, since)",
        ),
    ),
    (
        7,
        (
            """CREATE TABLE order_holds (
                kind TEXT NOT NULL, order_id TEXT NOT NULL,
                PRIMARY KEY (kind, order_id)) WITHOUT ROWID""",
            _fill_order_holds,
        ),
    ),
    (
        8,
        (
            "ALTER TABLE orders ADD COLUMN customer_ref TEXT",
            _fill_customer_refs,
            # Only orders with a customer are indexed: the rest cost nothing to write.
            "CREATE INDEX orders_by_customer ON orders (customer_ref, placed_at, id) "
            "WHERE customer_ref IS NOT NULL",
        ),
    ),
    (
        9,
        (
            "ALTER TABLE items ADD COLUMN next_eta TEXT",
            _fill_supply_etas,
            "CREATE INDEX items_by_eta ON items (next_eta) WHERE next_eta IS NOT NULL",
        ),
    ),
    (
        10,
        (
            "ALTER TABLE outbox ADD COLUMN order_id TEXT",
            _fill_outbox_orders,
            # Stock and network events name no order: they cost the index nothing.
            "CREATE INDEX outbox_by_order ON outbox (order_id, position) "
            "WHERE order_id IS NOT NULL",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


@remember_last
def _utc(moment: datetime) -> str:
    """A sortable text form of a time: UTC, ISO 8601, always with microseconds."""
    utc = moment if moment.utcoffset() == _ZERO else moment.astimezone(UTC)
    return utc.isoformat(timespec="microseconds")


_ZERO = timedelta(0)


def _is_busy(error: sqlite3.Error) -> bool:
    return isinstance(error, sqlite3.OperationalError) and (
        "locked" in str(error) or "busy" in str(error)
    )


def _translate(action: str, error: sqlite3.Error) -> StoreError | StoreBusy:
    """The omscore error for a driver error (busy: StoreBusy; anything else: StoreError)."""
    if _is_busy(error):
        return StoreBusy(f"{action}: the database stayed locked ({error})")
    return StoreError(f"{action}: {type(error).__name__}: {error}")


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn ``sqlite3`` errors raised inside the block into omscore errors."""
    try:
        yield
    except sqlite3.Error as error:
        raise _translate(action, error) from error


def stored_schema_version(path: str) -> int | None:
    """The omscore schema version of the file at ``path``, read without changing anything
    in it; None when there is no file, or it has no omscore schema (opening a store on it
    would add one). A file that is not a SQLite database raises ``sqlite3.DatabaseError``."""
    if path == ":memory:" or not os.path.exists(path):
        return None
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
        known = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if known is None:
            return None
        found = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    return int(found or 0)


def refuse_newer(path: str) -> None:
    """Raise :class:`SchemaError` for a file written by a newer omscore, before anything
    (not even the journal mode) is changed in it."""
    found = stored_schema_version(path)
    if found is not None and found > SCHEMA_VERSION:
        raise SchemaError(
            f"the database has schema version {found}; this omscore knows up to "
            f"{SCHEMA_VERSION}: upgrade omscore to open it"
        )


def migrate(connection: sqlite3.Connection) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`; returns the version found first."""
    connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()
    found = row[0] or 0
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"the database has schema version {found}; this omscore knows up to "
            f"{SCHEMA_VERSION}: upgrade omscore to open it"
        )
    for version, statements in MIGRATIONS:
        if version <= found:
            continue
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                if isinstance(statement, str):
                    connection.execute(statement)
                else:
                    statement(connection)
            connection.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return int(found)


_compact_json = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, check_circular=False
).encode


def _stdlib_json_text(data: object) -> str:
    return _compact_json(data)


def _accelerated() -> tuple[Callable[[object], str], Callable[[str], Any]] | None:
    """orjson's encoder and decoder when the optional accelerator is installed
    (``pip install omscore[speedups]``); both write the same UTF-8 JSON text."""
    try:
        import orjson  # noqa: PLC0415
    except ImportError:  # pragma: no cover - CI installs it; a test compares both encoders
        return None
    dumps, keys = orjson.dumps, orjson.OPT_NON_STR_KEYS

    def text(data: object) -> str:
        try:
            return dumps(data).decode()
        except TypeError:  # enum keys, written as the standard library writes them (slower)
            return dumps(data, option=keys).decode()

    return text, orjson.loads


_json_text, _json_value = _accelerated() or (_stdlib_json_text, json.loads)


class _Codec:
    """JSON text for aggregates and command results, through the cattrs converter."""

    def __init__(self) -> None:
        self.converter = make_converter()
        self._hooks: dict[type[Any], Callable[[Any], Any]] = {}

    def dump(self, value: object, cls: type[Any] | None = None) -> str:
        kind = cls or type(value)
        hook = self._hooks.get(kind)
        if hook is None:  # the converter's dispatch, looked up once per type
            hook = self._hooks[kind] = self.converter.get_unstructure_hook(kind)
        return _json_text(hook(value))

    def load(self, text: str, cls: type[T]) -> T:
        try:
            return self.converter.structure(_json_value(text), cls)
        except Exception as error:  # JSON, cattrs and validators each raise their own
            raise DamagedRecord(
                f"a stored {cls.__name__} cannot be read ({decoding_problem(error)}); "
                f"the row begins {str(text)[:60]!r}"
            ) from error

    def dump_result(self, value: object) -> tuple[str, str]:
        if value is None or isinstance(value, bool | int | str):
            return "json", json.dumps(value)
        if isinstance(value, list):
            kinds = {type(v).__name__ for v in value}
            kind = kinds.pop() if len(kinds) == 1 else "json"
            return f"list:{kind}", self.dump(value)
        return type(value).__name__, self.dump(value)

    def load_result(self, kind: str, text: str) -> object:
        if kind == "json":
            return json.loads(text)
        if kind.startswith("list:"):
            item = _result_types().get(kind[5:])
            return [self.load(json.dumps(v), item) if item else v for v in json.loads(text)]
        cls = _result_types().get(kind)
        if cls is None:
            raise StoreError(f"unknown stored result type {kind!r}")
        return self.load(text, cls)


# One codec for every store of the process: the converter builds its hook for a type once,
# on first use, instead of once per store opened.
_CODEC = _Codec()


@functools.cache
def _result_types() -> dict[str, type[Any]]:
    """Command results an idempotency record may hold, by type name."""
    from omscore.inventory import Reservation, StockLevel, Supply, Transfer  # noqa: PLC0415
    from omscore.money import Money  # noqa: PLC0415
    from omscore.sourcing import AllocationPlan  # noqa: PLC0415

    kinds = (
        Order,
        Return,
        Location,
        Channel,
        Reservation,
        StockLevel,
        Supply,
        Transfer,
        Money,
        AllocationPlan,
        InventoryItem,
    )
    return {cls.__name__: cls for cls in kinds}


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


A = TypeVar("A", bound=_Versioned)


class _Table(Generic[A]):
    """One aggregate table: reads inside the transaction, staged writes at commit."""

    def __init__(
        self,
        uow: SqliteUnitOfWork,
        table: str,
        key_column: str,
        cls: type[A],
        key_of: Callable[[A], str],
    ) -> None:
        self.uow = uow
        self.table = table
        self.key_column = key_column
        self.cls = cls
        self.key_of = key_of
        self.seen: dict[str, int] = {}
        self.loaded: dict[str, A] = {}
        self.staged: dict[str, A] = {}

    def get(self, key: str) -> A | None:
        if key in self.staged:
            return self.staged[key]
        if key in self.loaded:
            return self.loaded[key]
        row = self.uow.one(f"SELECT version FROM {self.table} WHERE {self.key_column} = ?", (key,))
        if row is None:
            self.seen.setdefault(key, 0)
            return None
        version = row[0]
        kept = self.uow.store.cached_aggregate(self.table, key, version)
        if kept is None:
            kept = self._read(key)
            self.uow.store.keep(self.table, key, version, kept)
        value = self._unpack(key, kept)
        self.seen.setdefault(key, version)
        self.loaded[key] = value
        return value

    def _unpack(self, key: str, kept: Any) -> A:
        """The aggregate from what the cache keeps for it (here: the aggregate itself)."""
        aggregate: A = kept
        return aggregate

    def _read(self, key: str) -> Any:
        """What the cache keeps for the row (the cache did not hold its version)."""
        body = self.uow.one(f"SELECT body FROM {self.table} WHERE {self.key_column} = ?", (key,))
        return self.uow.store.codec.load(body[0], self.cls)

    def _body(self, aggregate: A) -> str:
        return self.uow.store.codec.dump(aggregate)

    def remember(self) -> None:
        """Keep what this unit of work committed in the store's cache of decoded aggregates."""
        for key, aggregate in self.staged.items():
            self.uow.store.keep(self.table, key, aggregate.version, aggregate)

    def put(self, aggregate: A) -> None:
        """Stage a write; an aggregate this unit of work did not read must be new."""
        key = self.key_of(aggregate)
        self.seen.setdefault(key, 0)
        self.staged[key] = aggregate

    def write(
        self,
        columns: Callable[[A], dict[str, object]],
        fixed: Callable[[A], dict[str, object]] | None = None,
    ) -> None:
        """Insert new rows, update changed ones where the version is still the one read.
        ``columns`` are written with every change; ``fixed`` (what never changes once the
        row exists) only when it is inserted, so updates leave their indexes alone."""
        for key, aggregate in self.staged.items():
            values = {
                "version": aggregate.version,
                "body": self._body(aggregate),
                **columns(aggregate),
            }
            expected = self.seen.get(key, 0)
            if expected == 0:
                if fixed is not None:
                    values.update(fixed(aggregate))
                insert, _ = _statements(self.table, self.key_column, tuple(values))
                try:
                    self.uow.execute(insert, (key, *values.values()))
                except StoreError as error:
                    if isinstance(error.__cause__, sqlite3.IntegrityError):
                        raise ConcurrencyConflict(
                            f"{self.table} {key} was created meanwhile"
                        ) from error
                    raise
                continue
            _, update = _statements(self.table, self.key_column, tuple(values))
            cursor = self.uow.execute(update, (*values.values(), key, expected))
            if cursor.rowcount != 1:
                raise ConcurrencyConflict(
                    f"{self.table} {key}: read at version {expected}, changed meanwhile"
                )


@functools.cache
def _statements(table: str, key_column: str, columns: tuple[str, ...]) -> tuple[str, str]:
    """The INSERT of a new row and the version-checked UPDATE of an existing one."""
    names = ", ".join((key_column, *columns))
    marks = ", ".join("?" * (len(columns) + 1))
    assignments = ", ".join(f"{name} = ?" for name in columns)
    return (
        f"INSERT INTO {table} ({names}) VALUES ({marks})",
        f"UPDATE {table} SET {assignments} WHERE {key_column} = ? AND version = ?",
    )


class _Orders(_Table[Order]):
    def by_fulfillment(self, fulfillment_id: FulfillmentId) -> OrderId | None:
        row = self.uow.one("SELECT order_id FROM fulfillments WHERE id = ?", (fulfillment_id,))
        return OrderId(row[0]) if row else None

    def fulfillment_queue(
        self,
        statuses: frozenset[FulfillmentStatus],
        *,
        location_id: LocationId | None = None,
        waiting_since: datetime | None = None,
        limit: int | None = None,
    ) -> list[tuple[OrderId, FulfillmentId]]:
        if not statuses:
            return []
        sql, args = _queue_query(
            "SELECT order_id, id FROM fulfillments WHERE ",
            statuses,
            {
                "location_id = ?": location_id,
                "since <= ?": _utc(waiting_since) if waiting_since is not None else None,
            },
            "since, id",
            limit,
        )
        return [(OrderId(o), FulfillmentId(f)) for o, f in self.uow.all(sql, args)]

    def order_queue(
        self,
        statuses: frozenset[OrderStatus],
        *,
        hold: str | None = None,
        channel: ChannelId | None = None,
        placed_before: datetime | None = None,
        limit: int | None = None,
    ) -> list[OrderId]:
        if not statuses:
            return []
        # orders_by_status finds them; the few waiting orders are sorted (an index that
        # kept them in order would cost every command writing an order more than the sort).
        sql, args = _queue_query(
            "SELECT id FROM orders WHERE ",
            statuses,
            {
                "id IN (SELECT order_id FROM order_holds WHERE kind = ?)": hold,
                "channel = ?": channel,
                "placed_at <= ?": _utc(placed_before) if placed_before is not None else None,
            },
            "placed_at, id",
            limit,
        )
        return [OrderId(order_id) for (order_id,) in self.uow.all(sql, args)]

    def customer_orders(
        self,
        customer_ref: str,
        *,
        before: tuple[datetime, OrderId] | None = None,
        limit: int | None = None,
    ) -> list[OrderId]:
        sql = "SELECT id FROM orders WHERE customer_ref = ?"
        args: list[object] = [customer_ref]
        if before is not None:
            sql += " AND (placed_at, id) < (?, ?)"
            args += [_utc(before[0]), before[1]]
        sql += " ORDER BY placed_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [OrderId(order_id) for (order_id,) in self.uow.all(sql, args)]


def _queue_query(
    select: str,
    statuses: frozenset[FulfillmentStatus] | frozenset[OrderStatus],
    conditions: dict[str, object | None],
    order_by: str,
    limit: int | None,
) -> tuple[str, list[object]]:
    """A queue's query (``select`` ends where a condition may follow): the rows in one of
    ``statuses`` that meet each condition given a value (``None``: that filter is not
    asked for), in ``order_by`` order, at most ``limit``. Only the values are parameters;
    the SQL pieces are the callers' constants."""
    args: list[object] = [*sorted(s.value for s in statuses)]
    sql = f"{select}status IN ({', '.join('?' * len(args))})"
    for condition, value in conditions.items():
        if value is not None:
            sql += f" AND {condition}"
            args.append(value)
    sql += f" ORDER BY {order_by}"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return sql, args


class _Items(_Table[InventoryItem]):
    """Items keep their holds and backorders as rows of ``holds`` and ``backorders``
    (``position`` orders them): placing or releasing one writes one row, however many a
    busy SKU has. The cache keeps each item with the positions of both kinds of rows."""

    def __init__(self, uow: SqliteUnitOfWork) -> None:
        super().__init__(uow, "items", "sku", InventoryItem, _SKU)
        self.new_movements: list[StockMovement] = []
        self.positions: dict[str, tuple[int, ...]] = {}  # of the holds' rows
        self.backorder_positions: dict[str, tuple[int, ...]] = {}
        #: By write_rows, per SKU written: the reservation keys whose checkout holds changed.
        self.checkout_keys: dict[str, set[str]] = {}

    def _read(self, key: str) -> tuple[InventoryItem, tuple[int, ...], tuple[int, ...]]:
        body = self.uow.one("SELECT body FROM items WHERE sku = ?", (key,))[0]
        shell = self.uow.store.codec.load(body, InventoryItem)
        holds, hold_positions = self._rows("holds", key, StockHold)
        backorders, backorder_positions = self._rows("backorders", key, Backorder)
        item = evolved(shell, holds=holds, backorders=backorders)
        return item, hold_positions, backorder_positions

    def _rows(
        self, table: str, key: str, cls: type[Row]
    ) -> tuple[tuple[Row, ...], tuple[int, ...]]:
        load = self.uow.store.codec.load
        rows = self.uow.all(
            f"SELECT position, body FROM {table} WHERE sku = ? ORDER BY position", (key,)
        )
        return tuple(load(body, cls) for _, body in rows), tuple(n for n, _ in rows)

    def _unpack(self, key: str, kept: Any) -> InventoryItem:
        item: InventoryItem = kept[0]
        self.positions[key], self.backorder_positions[key] = kept[1], kept[2]
        return item

    def _body(self, aggregate: InventoryItem) -> str:
        return self.uow.store.codec.dump(evolved(aggregate, holds=(), backorders=()))

    def remember(self) -> None:
        for key, item in self.staged.items():
            positions = (self.positions.get(key, ()), self.backorder_positions.get(key, ()))
            self.uow.store.keep(self.table, key, item.version, (item, *positions))

    def columns(self, item: InventoryItem) -> dict[str, object]:
        """The queried columns of an item's row that changed: the expiry, when its checkout
        holds moved (after :meth:`write_rows`), and the earliest ETA, when its supply did
        (a new row without them gets NULL, right for no holds and no supply)."""
        changed: dict[str, object] = {}
        if self.checkout_keys[item.sku]:
            expiry = item.next_expiry
            changed["next_expiry"] = _utc(expiry) if expiry else None
        before = self.loaded.get(item.sku)
        if before is None or item.supply != before.supply or item.transfers != before.transfers:
            due = item.expected_arrivals() if item.supply or item.transfers else []
            changed["next_eta"] = _utc(due[0].eta) if due else None
        return changed

    def write_rows(self) -> None:
        """Write the rows of the holds and backorders that changed; ``positions`` and
        ``backorder_positions`` then name the new ones."""
        holds = _RowWrites("holds")
        backorders = _RowWrites("backorders")
        dump = self.uow.store.codec.dump
        for sku, item in self.staged.items():
            before = self.loaded.get(sku)
            removed = holds.add(
                sku, before.holds if before else (), self.positions, item.holds, dump
            )
            # Only checkout holds carry reservation keys and expiries.
            self.checkout_keys[sku] = (
                {h.key for h in removed if h.line_id is None}
                | {h.key for _, h in holds.placed if h.line_id is None}
                if removed is not None
                else set()
            )
            backorders.add(
                sku,
                before.backorders if before else (),
                self.backorder_positions,
                item.backorders,
                dump,
            )
        holds.execute(self.uow)
        backorders.execute(self.uow)

    def append_movements(self, movements: Sequence[StockMovement]) -> None:
        self.new_movements.extend(movements)

    def movements(
        self, sku: Sku | None = None, location_id: LocationId | None = None
    ) -> list[StockMovement]:
        where: list[str] = []
        args: list[str] = []
        if sku is not None:
            where.append("sku = ?")
            args.append(sku)
        if location_id is not None:
            where.append("location_id = ?")
            args.append(location_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.uow.all(
            "SELECT sku, location_id, kind, on_hand_delta, allocated_delta, reference, at "
            f"FROM movements {clause} ORDER BY seq",
            tuple(args),
        )
        return [
            StockMovement(
                Sku(r[0]),
                LocationId(r[1]),
                MovementKind(r[2]),
                r[3],
                r[4],
                r[5],
                datetime.fromisoformat(r[6]),
            )
            for r in rows
        ]

    def skus(self) -> list[Sku]:
        return [Sku(r[0]) for r in self.uow.all("SELECT sku FROM items ORDER BY sku", ())]

    def ledger_totals(self) -> dict[tuple[LocationId, Sku], tuple[int, int]]:
        rows = self.uow.all(
            "SELECT location_id, sku, SUM(on_hand_delta), SUM(allocated_delta) FROM movements "
            "GROUP BY location_id, sku",
            (),
        )
        return {(LocationId(r[0]), Sku(r[1])): (r[2], r[3]) for r in rows}

    def expiring(self, now: datetime) -> list[Sku]:
        rows = self.uow.all(
            "SELECT sku FROM items WHERE next_expiry IS NOT NULL AND next_expiry <= ? ORDER BY sku",
            (_utc(now),),
        )
        return [Sku(r[0]) for r in rows]

    def reserved_under(self, key: str) -> list[Sku]:
        rows = self.uow.all("SELECT sku FROM reservation_keys WHERE key = ? ORDER BY sku", (key,))
        return [Sku(r[0]) for r in rows]

    def reserved_at(self, location_id: LocationId) -> list[Sku]:
        rows = self.uow.all(
            "SELECT sku FROM levels WHERE location_id = ? AND reserved > 0 ORDER BY sku",
            (location_id,),
        )
        return [Sku(r[0]) for r in rows]

    def backordered(self) -> list[Sku]:
        rows = self.uow.all("SELECT DISTINCT sku FROM backorders ORDER BY sku", ())
        return [Sku(r[0]) for r in rows]

    def supply_due(self, before: datetime | None) -> list[Sku]:
        due = "" if before is None else " AND next_eta <= ?"
        rows = self.uow.all(
            f"SELECT sku FROM items WHERE next_eta IS NOT NULL{due} ORDER BY sku",
            () if before is None else (_utc(before),),
        )
        return [Sku(r[0]) for r in rows]


Row = TypeVar("Row")


class _RowWrites:
    """The deletes and upserts of one rows table (``holds`` or ``backorders``) at commit."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.deleted: list[tuple[str, int]] = []
        self.written: list[tuple[str, int, str]] = []
        self.placed: list[tuple[int, Any]] = []  # the last SKU's rows placed

    def add(
        self,
        sku: str,
        old: tuple[Row, ...],
        positions: dict[str, tuple[int, ...]],
        new: tuple[Row, ...],
        dump: Callable[[object], str],
    ) -> list[Row] | None:
        """Stage the changes of ``sku``'s rows from ``old`` to ``new`` and keep their new
        positions; returns the old rows no longer there (None: the rows are the same)."""
        self.placed = []
        if old is new:
            return None
        before = positions.get(sku, ())
        changes = _row_changes(old, before, new) or _all_again(old, before, new)
        gone, self.placed, positions[sku], removed = changes
        self.deleted += [(sku, p) for p in gone]
        self.written += [(sku, p, dump(row)) for p, row in self.placed]
        return removed

    def execute(self, uow: SqliteUnitOfWork) -> None:
        """Run the staged deletes, then the upserts."""
        if self.deleted:
            uow.execute_many(
                f"DELETE FROM {self.table} WHERE sku = ? AND position = ?", self.deleted
            )
        if self.written:
            uow.execute_many(
                f"INSERT INTO {self.table} (sku, position, body) VALUES (?, ?, ?) "
                "ON CONFLICT (sku, position) DO UPDATE SET body = excluded.body",
                self.written,
            )


#: How a sequence of rows changed: positions gone, ``(position, row)`` to write, the
#: positions of the new sequence, and the old rows no longer there.
RowChanges = tuple[list[int], list[tuple[int, Row]], tuple[int, ...], list[Row]]


def _row_changes(
    old: tuple[Row, ...], positions: tuple[int, ...], new: tuple[Row, ...]
) -> RowChanges[Row] | None:
    """How ``old`` (rows at ``positions``, increasing) became ``new``: the positions gone,
    the ``(position, row)`` rows to write, the positions of ``new``, and the old rows no
    longer there. Rows are an item's holds or backorders.

    They are immutable, so a row kept is the same object. Commands remove rows, replace
    some in place and append new ones; a new row where an old one went takes its position,
    one after all the old ones gets the next free position. None when ``new`` is not of
    that form (a new row before a kept one, or kept rows in another order).
    """
    quick = _one_edit(old, positions, new)
    if quick is not None:
        return quick
    kept, known = {id(h) for h in new}, {id(h) for h in old}
    gone: list[int] = []
    placed: list[tuple[int, Row]] = []
    new_positions: list[int] = []
    removed: list[Row] = []
    last = positions[-1] if positions else 0
    i = 0
    for hold in new:
        if id(hold) in known:
            while old[i] is not hold:
                if id(old[i]) in kept:
                    return None
                gone.append(positions[i])
                removed.append(old[i])
                i += 1
            new_positions.append(positions[i])
            i += 1
        elif i < len(old):
            if id(old[i]) in kept:
                return None
            placed.append((positions[i], hold))
            new_positions.append(positions[i])
            removed.append(old[i])
            i += 1
        else:
            last = max(last, new_positions[-1] if new_positions else 0) + 1
            placed.append((last, hold))
            new_positions.append(last)
    gone += positions[i:]
    removed += old[i:]
    return gone, placed, tuple(new_positions), removed


def _one_edit(
    old: tuple[Row, ...], positions: tuple[int, ...], new: tuple[Row, ...]
) -> RowChanges[Row] | None:
    """The common cases: rows appended, or one row removed or replaced in place (rows may
    be appended too); None for anything else.

    The checks compare slices of rows in C. A kept row is the same object, and equality
    stops at identity, so a busy SKU's thousands of holds cost microseconds; a row equal
    to the one it replaced is the same row body, so counting it as kept is right.
    """
    n = len(old)
    first = _first_difference(old, new)
    gone: list[int] = []
    placed: list[tuple[int, Row]] = []
    removed: list[Row] = []
    if first == n:  # old is a prefix of new
        kept, appended = positions, new[n:]
    elif len(new) >= n - 1 and old[first + 1 :] == new[first : n - 1]:
        gone, removed = [positions[first]], [old[first]]  # old[first] removed
        kept, appended = positions[:first] + positions[first + 1 :], new[n - 1 :]
    elif len(new) >= n and old[first + 1 :] == new[first + 1 : n]:
        placed, removed = [(positions[first], new[first])], [old[first]]  # replaced in place
        kept, appended = positions, new[n:]
    else:
        return None
    last = positions[-1] if positions else 0
    placed += [(last + k, h) for k, h in enumerate(appended, start=1)]
    return gone, placed, (*kept, *range(last + 1, last + 1 + len(appended))), removed


def _first_difference(old: tuple[Row, ...], new: tuple[Row, ...]) -> int:
    """The first position where ``old`` and ``new`` differ (the shorter one's length when
    one starts the other), found with slice comparisons: windows growing from the front,
    then halving the window that differs."""
    n = min(len(old), len(new))
    low, width = 0, 16
    while True:
        if low >= n:
            return n
        high = min(n, low + width)
        if old[low:high] != new[low:high]:
            break
        low, width = high, width * 4
    while high - low > 1:
        middle = (low + high) // 2
        if old[low:middle] == new[low:middle]:
            low = middle
        else:
            high = middle
    return low


def _all_again(
    old: tuple[Row, ...], positions: tuple[int, ...], new: tuple[Row, ...]
) -> RowChanges[Row]:
    """Every old row gone and every row written again, at positions 1, 2, ..."""
    numbered = list(enumerate(new, start=1))
    return list(positions), numbered, tuple(n for n, _ in numbered), list(old)


class _Locations(_Table[Location]):
    def all(self) -> list[Location]:
        cached = self.uow.store.cached("locations", self.uow, self._read_all)
        if not self.staged:
            return cached
        merged: dict[str, Location] = {loc.id: loc for loc in cached}
        merged.update(self.staged)
        return [merged[k] for k in sorted(merged)]

    def _read_all(self) -> list[Location]:
        codec = self.uow.store.codec
        rows = self.uow.all("SELECT body FROM locations ORDER BY id", ())
        return [codec.load(r[0], Location) for r in rows]


class _Channels(_Table[Channel]):
    def all(self) -> list[Channel]:
        cached = self.uow.store.cached("channels", self.uow, self._read_all)
        if not self.staged:
            return cached
        merged: dict[str, Channel] = {c.id: c for c in cached}
        merged.update(self.staged)
        return [merged[k] for k in sorted(merged)]

    def _read_all(self) -> list[Channel]:
        codec = self.uow.store.codec
        rows = self.uow.all("SELECT body FROM channels ORDER BY id", ())
        return [codec.load(r[0], Channel) for r in rows]


class _Idempotency:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self.uow = uow
        self.staged: dict[str, IdempotencyRecord] = {}

    def get(self, key: str) -> IdempotencyRecord | None:
        if key in self.staged:
            return self.staged[key]
        row = self.uow.one(
            "SELECT fingerprint, result_type, result, at FROM idempotency WHERE key = ?", (key,)
        )
        if row is None:
            return None
        result = self.uow.store.codec.load_result(row[1], row[2])
        return IdempotencyRecord(key, row[0], result, datetime.fromisoformat(row[3]))

    def put(self, record: IdempotencyRecord) -> None:
        self.staged[record.key] = record


_REPOSITORIES = ("orders", "inventory", "locations", "channels", "loads", "returns", "idempotency")
_ID = operator.attrgetter("id")
_SKU = operator.attrgetter("sku")
_LOCATION_ID = operator.attrgetter("location_id")


def _order_columns(order: Order) -> dict[str, object]:
    return {"status": order.status.value}


def _placed_order_columns(order: Order) -> dict[str, object]:
    return {
        "channel": order.channel,
        "placed_at": _utc(order.placed_at),
        "customer_ref": order.customer_ref,
    }


def _return_columns(rma: Return) -> dict[str, object]:
    return {"order_id": rma.order_id, "status": rma.status.value}


def _no_columns(_: object) -> dict[str, object]:
    return {}


class SqliteUnitOfWork:
    """One transaction on the store's connection for this thread."""

    def __init__(self, store: SqliteStore, write: bool) -> None:
        self.store = store
        self.write_mode = write
        self.connection = store.connection()
        self.begun = False
        self.events: list[DomainEvent] = []
        self._generation: int | None = None

    # Repositories open on first use: most commands touch two or three of them.

    @on_first_use
    def orders(self) -> _Orders:
        """Orders."""
        return _Orders(self, "orders", "id", Order, _ID)

    @on_first_use
    def inventory(self) -> _Items:
        """Inventory items and the ledger."""
        return _Items(self)

    @on_first_use
    def locations(self) -> _Locations:
        """Locations."""
        return _Locations(self, "locations", "id", Location, _ID)

    @on_first_use
    def channels(self) -> _Channels:
        """Channel configurations."""
        return _Channels(self, "channels", "id", Channel, _ID)

    @on_first_use
    def loads(self) -> _Table[LocationLoad]:
        """Daily fulfilment loads of locations."""
        return _Table(self, "loads", "location_id", LocationLoad, _LOCATION_ID)

    @on_first_use
    def returns(self) -> _Table[Return]:
        """Returns."""
        return _Table(self, "returns", "id", Return, _ID)

    @on_first_use
    def idempotency(self) -> _Idempotency:
        """Idempotency records."""
        return _Idempotency(self)

    # --- statements -------------------------------------------------------------------------

    def begin(self) -> None:
        """Start the transaction (BEGIN IMMEDIATE for writers) on first use."""
        if not self.begun:
            gate = self.store.shared_gate
            if gate is not None:
                gate.acquire()
            try:
                statement = "BEGIN IMMEDIATE" if self.write_mode else "BEGIN"
                if self.store.statement_log is not None:
                    self.store.statement_log.append(("one", statement, ()))
                try:
                    self.connection.execute(statement)
                except sqlite3.Error as error:
                    raise _translate("begin", error) from error
            except BaseException:
                if gate is not None:
                    gate.release()
                raise
            self.begun = True

    def _end(self) -> None:
        self.begun = False
        if self.store.shared_gate is not None:
            self.store.shared_gate.release()

    def execute(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Cursor:
        """Run one statement inside the transaction."""
        if not self.begun:
            self.begin()
        if self.store.statement_log is not None:
            self.store.statement_log.append(("one", sql, args))
        try:
            return self.connection.execute(sql, args)
        except sqlite3.Error as error:
            raise _translate("write", error) from error

    def one(self, sql: str, args: Sequence[object]) -> Any:
        """The first row of a query inside the transaction, or None."""
        if not self.begun:
            self.begin()
        if self.store.statement_log is not None:
            self.store.statement_log.append(("one", sql, args))
        try:
            return self.connection.execute(sql, args).fetchone()
        except sqlite3.Error as error:
            raise _translate("read", error) from error

    def all(self, sql: str, args: Sequence[object]) -> list[Any]:
        """Every row of a query inside the transaction."""
        if not self.begun:
            self.begin()
        if self.store.statement_log is not None:
            self.store.statement_log.append(("one", sql, args))
        try:
            return self.connection.execute(sql, args).fetchall()
        except sqlite3.Error as error:
            raise _translate("read", error) from error

    def execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement for each row."""
        if self.store.statement_log is not None:
            self.store.statement_log.append(("many", sql, list(rows)))
        try:
            self.connection.executemany(sql, rows)
        except sqlite3.Error as error:
            raise _translate("write", error) from error

    def network_generation(self) -> int:
        """The counter of network writes, read once per unit of work."""
        if self._generation is None:
            row = self.one("SELECT value FROM meta WHERE name = 'network'", ())
            self._generation = row[0] if row else 0
        return self._generation

    # --- the unit of work -------------------------------------------------------------------

    def record(self, events: Iterable[DomainEvent]) -> None:
        """Stage events for the outbox, in order."""
        self.events.extend(events)

    def commit(self) -> None:
        """Write everything staged in one transaction; a stale version raises
        ConcurrencyConflict and nothing is written."""
        if not self.write_mode:
            raise StoreError("a read-only unit of work cannot commit")
        self.begin()
        try:
            self._write()
            if self.store.statement_log is not None:
                self.store.statement_log.append(("one", "COMMIT", ()))
            try:
                self.connection.execute("COMMIT")
            except sqlite3.Error as error:
                raise _translate("commit", error) from error
        except BaseException:
            self._rollback()
            raise
        self._end()
        self.store.committed()
        network = self._network_staged()
        self.store.wrote(locations=network[0], channels=network[1])
        for name in ("orders", "inventory", "returns"):
            table = opened(self, name)
            if table is not None:
                table.remember()

    def _network_staged(self) -> tuple[bool, bool]:
        """Whether locations, and channels, have writes staged."""
        locations, channels = opened(self, "locations"), opened(self, "channels")
        return (
            locations is not None and bool(locations.staged),
            channels is not None and bool(channels.staged),
        )

    def _write(self) -> None:
        orders: _Orders | None = opened(self, "orders")
        if orders is not None:
            orders.write(_order_columns, _placed_order_columns)
            self._write_fulfillments(orders)
            self._write_order_holds(orders)
        items: _Items | None = opened(self, "inventory")
        if items is not None:
            items.write_rows()
            items.write(items.columns)
            self._write_levels_and_keys(items)
            self._write_movements(items)
        for name in ("locations", "channels", "loads"):
            table = opened(self, name)
            if table is not None:
                table.write(_no_columns)
        returns: _Table[Return] | None = opened(self, "returns")
        if returns is not None:
            returns.write(_return_columns)
        if any(self._network_staged()):
            self.execute(
                "INSERT INTO meta (name, value) VALUES ('network', 1) "
                "ON CONFLICT (name) DO UPDATE SET value = value + 1"
            )
        self._write_outbox()
        idempotency: _Idempotency | None = opened(self, "idempotency")
        if idempotency is not None:
            self._write_idempotency(idempotency)

    def _write_fulfillments(self, orders: _Orders) -> None:
        rows = []
        for key, order in orders.staged.items():
            before = orders.loaded.get(key)
            known = {f.id: f for f in before.fulfillments} if before else {}
            rows += [
                (f.id, order.id, f.stock_location, f.status.value, _utc(f.since))
                for f in order.fulfillments
                if known.get(f.id) is not f  # a changed fulfilment order is a new object
            ]
        if rows:
            self.execute_many(
                "INSERT INTO fulfillments (id, order_id, location_id, status, since) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = "
                "excluded.status, location_id = excluded.location_id, since = excluded.since",
                rows,
            )

    def _write_order_holds(self, orders: _Orders) -> None:
        gone: list[tuple[str, str]] = []
        new: list[tuple[str, str]] = []
        for key, order in orders.staged.items():
            before = orders.loaded.get(key)
            held_before = before.holds if before is not None else ()
            if held_before is order.holds or not (held_before or order.holds):
                continue  # unchanged (an evolved copy keeps the tuple), or never held
            kinds_before = {h.kind for h in held_before}
            kinds = {h.kind for h in order.holds}
            gone += [(kind, order.id) for kind in sorted(kinds_before - kinds)]
            new += [(kind, order.id) for kind in sorted(kinds - kinds_before)]
        if gone:
            self.execute_many("DELETE FROM order_holds WHERE kind = ? AND order_id = ?", gone)
        if new:
            self.execute_many("INSERT INTO order_holds (kind, order_id) VALUES (?, ?)", new)

    def _write_levels_and_keys(self, items: _Items) -> None:
        levels: list[tuple[object, ...]] = []
        gone_keys: list[tuple[str, str]] = []
        new_keys: list[tuple[str, str]] = []
        for sku, item in items.staged.items():
            before = items.loaded.get(sku)
            old_levels = before.levels if before else {}
            levels += [
                (sku, loc, lv.on_hand, lv.allocated, lv.reserved, lv.safety_stock)
                for loc, lv in item.levels.items()
                if old_levels.get(loc) is not lv  # a changed level is a new object
            ]
            for key in sorted(items.checkout_keys[sku]):  # the keys whose holds changed
                (new_keys if item.checkout_holds(key) else gone_keys).append((key, sku))
        if levels:
            self.execute_many(
                "INSERT INTO levels (sku, location_id, on_hand, allocated, reserved, "
                "safety_stock) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sku, location_id) DO "
                "UPDATE SET on_hand = excluded.on_hand, allocated = excluded.allocated, "
                "reserved = excluded.reserved, safety_stock = excluded.safety_stock",
                levels,
            )
        if gone_keys:
            self.execute_many("DELETE FROM reservation_keys WHERE key = ? AND sku = ?", gone_keys)
        if new_keys:
            self.execute_many(
                "INSERT OR IGNORE INTO reservation_keys (key, sku) VALUES (?, ?)", new_keys
            )

    def _write_movements(self, items: _Items) -> None:
        rows = [
            (
                m.sku,
                m.location_id,
                m.kind.value,
                m.on_hand_delta,
                m.allocated_delta,
                m.reference,
                _utc(m.at),
            )
            for m in items.new_movements
        ]
        if rows:
            self.execute_many(
                "INSERT INTO movements (sku, location_id, kind, on_hand_delta, "
                "allocated_delta, reference, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def _write_outbox(self) -> None:
        codec = self.store.codec
        rows = [
            (e.name, _utc(e.at), codec.dump(e, DomainEvent), getattr(e, "order_id", None))
            for e in self.events
        ]
        if rows:
            self.execute_many(
                "INSERT INTO outbox (type, at, body, order_id) VALUES (?, ?, ?, ?)", rows
            )

    def _write_idempotency(self, idempotency: _Idempotency) -> None:
        codec = self.store.codec
        for record in idempotency.staged.values():
            kind, text = codec.dump_result(record.result)
            try:
                self.execute(
                    "INSERT INTO idempotency (key, fingerprint, result_type, result, at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (record.key, record.fingerprint, kind, text, _utc(record.at)),
                )
            except StoreError as error:
                if isinstance(error.__cause__, sqlite3.IntegrityError):
                    raise ConcurrencyConflict(
                        f"idempotency key {record.key!r} was recorded meanwhile"
                    ) from error
                raise

    def _rollback(self) -> None:
        if self.begun:
            # A failed statement may already have ended the transaction.
            if self.store.statement_log is not None:
                self.store.statement_log.append(("one", "ROLLBACK", ()))
            with contextlib.suppress(sqlite3.Error):
                self.connection.execute("ROLLBACK")
            self._end()

    def __enter__(self) -> Self:
        """The unit of work itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._rollback()
        self._close_tables()

    def _close_tables(self) -> None:
        # Tables point back at their unit of work; dropping them here lets both be freed as
        # soon as the command returns, instead of waiting for the cyclic collector.
        for name in _REPOSITORIES:
            self.__dict__.pop(name, None)


CheckpointMode = Literal["auto", "background"]

#: Log pages past which a committing command checkpoints itself in ``"background"`` mode:
#: a backstop for a checkpointer that cannot keep up (SQLite's own mark is 1,000 pages).
BACKSTOP_PAGES = 4_000
#: Seconds the background checkpointer waits after a checkpoint before the next one.
CHECKPOINT_INTERVAL = 0.01


def _file_path(path: object) -> str:
    """The store's file as a string: a path (``str`` or ``os.PathLike``) or ``":memory:"``.
    An empty one would give each connection a private temporary database."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path.strip():
        raise StoreError(f"path must be a file path or ':memory:', got {path!r}")
    return path


def _connect(
    path: str, synchronous: str, busy_timeout_ms: int, autocheckpoint: int | None = None
) -> sqlite3.Connection:
    """A connection to ``path`` configured as every connection of the store is."""
    with translated(f"open {path}"):
        # Not checked per thread: each thread keeps to its own (the store sees to that),
        # and the store closes those of threads that ended.
        connection = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
        )
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if path != ":memory:":
                connection.execute("PRAGMA journal_mode = WAL")
            connection.execute(f"PRAGMA synchronous = {synchronous}")
            connection.execute("PRAGMA foreign_keys = ON")
            if autocheckpoint is not None:
                connection.execute(f"PRAGMA wal_autocheckpoint = {int(autocheckpoint)}")
        except BaseException:
            connection.close()
            raise
    return connection


class _Connections:
    """Every connection a store opened, with the thread it is for, so that ``close()``, or
    dropping the store, closes them all (other threads' too), and so that a thread that
    ended leaves no connection open for the garbage collector to find."""

    __slots__ = ("lock", "opened")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.opened: list[tuple[threading.Thread | None, sqlite3.Connection]] = []

    def add(self, connection: sqlite3.Connection, thread: threading.Thread | None) -> None:
        """Keep ``connection``, ``thread``'s own (None: shared by every thread, never
        closed before :meth:`close_all`); close those of threads that ended."""
        with self.lock:
            ended = [c for t, c in self.opened if t is not None and not t.is_alive()]
            if ended:
                self.opened = [(t, c) for t, c in self.opened if t is None or t.is_alive()]
            self.opened.append((thread, connection))
        for orphan in ended:
            orphan.close()

    def close_all(self) -> None:
        """Close every connection kept."""
        with self.lock:
            opened, self.opened = self.opened, []
        for _, connection in opened:
            connection.close()


class Checkpointer:
    """A thread that checkpoints the log after commits, at most every ``interval`` seconds
    (``SqliteStore(checkpoint="background")`` runs one, as ``store.checkpointer``).

    SQLite's automatic checkpoint runs in the commit that crosses its mark: that command
    copies a thousand pages and syncs the file while its caller waits. Here a connection
    of the thread's own runs ``PASSIVE`` checkpoints, which wait for no reader or writer,
    while commands go on. It holds no reference to the store, so a store dropped without
    ``close()`` still stops it (the store's finalizer does).
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], interval: float) -> None:
        self.interval = interval
        self.wanted = threading.Event()
        self.stopping = threading.Event()
        self.checkpoints = 0
        #: The last error a checkpoint met (the next commit tries again; one that could
        #: not open its connection ends the thread, and commands checkpoint themselves).
        self.error: Exception | None = None
        # Referenced here too, so that a forked child, which has no such thread, never
        # closes the connection its parent's thread still uses.
        self._connection: sqlite3.Connection | None = None
        #: Held while the thread is inside SQLite: ``fork()`` waits for it, because a
        #: child copies SQLite's own mutexes in whatever state they are, and one held by
        #: a thread the child does not have would stop the child's next connection.
        self.in_sqlite = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, args=(connect,), name="omscore checkpointer", daemon=True
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread.is_alive()

    def wake(self) -> None:
        """Ask for a checkpoint (a commit landed)."""
        if not self.wanted.is_set():
            self.wanted.set()

    def stop(self) -> None:
        """End the thread and close its connection."""
        self.stopping.set()
        self.wanted.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self, connect: Callable[[], sqlite3.Connection]) -> None:
        try:
            with self.in_sqlite:
                connection = self._connection = connect()
        except StoreError as error:
            self.error = error
            return
        try:
            while self.wanted.wait() and not self.stopping.is_set():
                self.wanted.clear()
                try:
                    with self.in_sqlite:
                        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as error:
                    self.error = error
                if self.stopping.wait(self.interval):
                    return
        finally:
            with self.in_sqlite:
                connection.close()


#: Every open store, so that a child process forgets its parent's connections on fork.
_OPEN_STORES: weakref.WeakSet[SqliteStore] = weakref.WeakSet()
#: What a forked child inherited and must neither use nor close.
_INHERITED: list[object] = []


#: Checkpointers held out of SQLite while this process forks.
_PAUSED: list[Checkpointer] = []


def _pause_checkpointers() -> None:
    for store in list(_OPEN_STORES):
        checkpointer = store.checkpointer
        if checkpointer is not None and checkpointer.running:
            checkpointer.in_sqlite.acquire()
            _PAUSED.append(checkpointer)


def _resume_checkpointers() -> None:
    while _PAUSED:
        _PAUSED.pop().in_sqlite.release()


def _forget_parent_connections() -> None:
    _PAUSED.clear()  # the child starts checkpointers of its own
    for store in list(_OPEN_STORES):
        store.forked()


if sys.platform != "win32":
    os.register_at_fork(
        before=_pause_checkpointers,
        after_in_parent=_resume_checkpointers,
        after_in_child=_forget_parent_connections,
    )


#: The relay's mark (NULL before anything was published: then nothing is deleted).
_MARK = "(SELECT value FROM meta WHERE name = 'published')"
#: Outbox positions one pruning write deletes at most.
PRUNE_CHUNK = 10_000


class SqliteStore:
    """Every aggregate, the ledger, the outbox and idempotency records in one SQLite file.

    ``SqliteStore("shop.db")``; ``":memory:"`` keeps everything in this process (one shared
    connection). Each thread gets its own connection; several processes may open one file.

    ``checkpoint``: ``"auto"`` (the default) leaves checkpoints to SQLite, which runs one
    in the commit that takes the log past 1,000 pages; ``"background"`` runs them from a
    thread of the store's own after commits, so no command waits for one (a command still
    checkpoints past :data:`BACKSTOP_PAGES`, should the thread fall behind). Call
    :meth:`close` to end the thread.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "omscore.db",
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout_ms: int = 5_000,
        cache_size: int = 20_000,
        checkpoint: CheckpointMode = "auto",
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise StoreError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        if checkpoint not in ("auto", "background"):
            raise StoreError(f"checkpoint must be auto or background, got {checkpoint!r}")
        path = _file_path(path)
        for name, count in (("busy_timeout_ms", busy_timeout_ms), ("cache_size", cache_size)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise StoreError(f"{name} must be an int >= 0, got {count!r}")
        self.path = path
        self.checkpoint_mode: CheckpointMode = checkpoint
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self.codec = _CODEC
        self._local = threading.local()
        self._shared: sqlite3.Connection | None = None
        #: With ``:memory:`` every thread shares one connection: one unit of work at a time.
        self.shared_gate = threading.Lock() if path == ":memory:" else None
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[int, list[Any]]] = {}
        self._decoded: OrderedDict[tuple[str, str], tuple[int, object]] = OrderedDict()
        self.cache_size = cache_size
        #: When a list, every statement units of work execute is appended to it as
        #: ``(kind, sql, arguments)`` (the store benchmark replays it as its bare-SQL baseline).
        self.statement_log: list[tuple[str, str, Any]] | None = None
        self.checkpointer: Checkpointer | None = None
        self._track_connections()
        with translated("open"):
            refuse_newer(path)
            self.migrated_from = migrate(self.connection())
        self._start_checkpointer()
        _OPEN_STORES.add(self)

    def _track_connections(self) -> None:
        self._connections = _Connections()
        self._close_connections = weakref.finalize(self, self._connections.close_all)

    def _start_checkpointer(self) -> None:
        if self.checkpoint_mode == "background" and self.path != ":memory:":
            self.checkpointer = Checkpointer(
                functools.partial(_connect, self.path, self.synchronous, self.busy_timeout_ms),
                CHECKPOINT_INTERVAL,
            )
            self._stop_checkpointer = weakref.finalize(self, self.checkpointer.stop)

    def forked(self) -> None:
        """Called in a child process after ``fork()`` (by an ``os.register_at_fork`` hook of
        this module; there is no need to call it): leave every connection the parent opened
        untouched and open new ones on first use, with a checkpointer of the child's own.
        SQLite forbids using a connection across ``fork()``: its locks stay with the parent,
        and closing or rolling one back in the child can corrupt the parent's log index.
        (A ``:memory:`` store keeps its connection: the child has its own copy.)"""
        self._lock = threading.Lock()
        if self.shared_gate is not None:
            self.shared_gate = threading.Lock()
        if self.path != ":memory:":
            # Kept, never closed: the parent still uses them.
            _INHERITED.extend((self._local, self._connections))
            self._close_connections.detach()
            self._local = threading.local()
            self._track_connections()
        parents = self.checkpointer
        if parents is not None and not parents.stopping.is_set():
            _INHERITED.append(parents)
            self._stop_checkpointer.detach()
            self._start_checkpointer()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened and configured on first use)."""
        if self.path == ":memory:":
            if self._shared is None:
                self._shared = self._open()
            return self._shared
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._open()
            self._local.connection = connection
        return connection

    def _open(self) -> sqlite3.Connection:
        backstop = BACKSTOP_PAGES if self.checkpoint_mode == "background" else None
        connection = _connect(self.path, self.synchronous, self.busy_timeout_ms, backstop)
        shared = self.path == ":memory:"
        self._connections.add(connection, None if shared else threading.current_thread())
        return connection

    def unit_of_work(self, *, write: bool = True) -> SqliteUnitOfWork:
        """A new unit of work: ``BEGIN IMMEDIATE`` on first use when ``write``."""
        return SqliteUnitOfWork(self, write)

    def cached(self, name: str, uow: SqliteUnitOfWork, read: Callable[[], list[T]]) -> list[T]:
        """The network tables change rarely: read them again only when their generation
        counter moved (any process bumps it when it writes them)."""
        generation = uow.network_generation()
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None and hit[0] == generation:
                return hit[1]
        fresh = read()
        with self._lock:
            self._cache[name] = (generation, fresh)
        return fresh

    def cached_aggregate(self, table: str, key: str, version: int) -> Any | None:
        """The decoded aggregate at ``version`` if this process holds it, else None (the
        body then needs reading; a hit saves transferring and decoding it)."""
        with self._lock:
            hit = self._decoded.get((table, key))
            if hit is not None and hit[0] == version:
                self._decoded.move_to_end((table, key))
                return hit[1]
        return None

    def keep(self, table: str, key: str, version: int, value: object) -> None:
        """Keep a decoded aggregate (or what a table keeps for it) at ``version``."""
        cache_key = (table, key)
        with self._lock:
            self._decoded[cache_key] = (version, value)
            self._decoded.move_to_end(cache_key)
            while len(self._decoded) > self.cache_size:
                self._decoded.popitem(last=False)

    def committed(self) -> None:
        """A write landed: the background checkpointer (if any) copies it into the file."""
        if self.checkpointer is not None:
            self.checkpointer.wake()

    def wrote(self, *, locations: bool, channels: bool) -> None:
        """Forget cached network tables this process just changed."""
        with self._lock:
            if locations:
                self._cache.pop("locations", None)
            if channels:
                self._cache.pop("channels", None)

    # --- the outbox relay -------------------------------------------------------------------

    def outbox(self, after: int = 0, limit: int | None = None) -> list[OutboxRecord]:
        """Committed events after ``position``, in commit order."""
        after, limit = checked_position(after, "after"), checked_limit(limit)
        sql = "SELECT position, body FROM outbox WHERE position > ? ORDER BY position"
        args: tuple[object, ...] = (after,)
        if limit is not None:
            sql += " LIMIT ?"
            args = (after, limit)
        return self._records(sql, args)

    def unpublished(self, limit: int | None = None) -> list[OutboxRecord]:
        """Committed events not yet marked published, in commit order."""
        limit = checked_limit(limit)
        sql = (
            f"SELECT position, body FROM outbox WHERE position > COALESCE({_MARK}, 0) "
            "ORDER BY position"
        )
        args: tuple[object, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            args = (limit,)
        return self._records(sql, args)

    def mark_published(self, up_to: int) -> None:
        """Mark every event up to ``position`` as published (the mark never moves back, nor
        past the last event committed)."""
        up_to = checked_position(up_to, "up_to")
        with translated("mark published"):
            self.connection().execute(
                "INSERT INTO meta (name, value) VALUES "
                "('published', MIN(?, (SELECT COALESCE(MAX(position), 0) FROM outbox))) "
                "ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)",
                (up_to,),
            )
        self.committed()

    def prune_outbox(self, before: datetime) -> int:
        """Delete published events, oldest first, up to the first recorded at or after
        ``before``; returns how many. Where to stop is read once (the relay's mark only
        moves forward, so what was published then stays published); the rows then go in
        chunks of ``PRUNE_CHUNK`` positions, each its own short write, so commands keep
        running between them (one statement over a million rows held the write lock for
        about a second). ``AUTOINCREMENT`` numbers later events after the last ever given.
        The file keeps its size; SQLite reuses the freed pages for new rows."""
        before = checked_cutoff(before)
        with translated("prune the outbox"):
            connection = self.connection()
            first, stop = connection.execute(
                "SELECT (SELECT MIN(position) FROM outbox), COALESCE("
                f"(SELECT position FROM outbox WHERE position <= {_MARK} AND at >= ? "
                f"ORDER BY position LIMIT 1), {_MARK} + 1)",
                (_utc(before),),
            ).fetchone()
            if first is None or stop is None:  # an empty outbox, or nothing published
                return 0
            deleted = 0
            for low in range(first, stop, PRUNE_CHUNK):
                cursor = connection.execute(
                    "DELETE FROM outbox WHERE position >= ? AND position < ?",
                    (low, min(low + PRUNE_CHUNK, stop)),
                )
                deleted += cursor.rowcount
                self.committed()
            return deleted

    def prune_idempotency(self, before: datetime) -> int:
        """Forget the idempotency records made before ``before``; returns how many."""
        before = checked_cutoff(before)
        with translated("prune idempotency records"):
            cursor = self.connection().execute(
                "DELETE FROM idempotency WHERE at < ?", (_utc(before),)
            )
        self.committed()
        return cursor.rowcount

    def order_events(self, order_id: str) -> list[OutboxRecord]:
        """The committed events that name ``order_id`` (its returns' included), in commit
        order, found by the outbox's ``order_id`` index; pruned events are gone."""
        order_id = checked_id(order_id, "order_id")
        sql = "SELECT position, body FROM outbox WHERE order_id = ? ORDER BY position"
        return self._records(sql, (order_id,))

    def _records(self, sql: str, args: tuple[object, ...]) -> list[OutboxRecord]:
        if self.statement_log is not None:
            self.statement_log.append(("one", sql, args))
        with translated("read outbox"):
            rows = self.connection().execute(sql, args).fetchall()
        return [
            OutboxRecord(position, f"evt-{position}", self.codec.load(body, DomainEvent))
            for position, body in rows
        ]

    # --- maintenance ------------------------------------------------------------------------

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` when the file is sound."""
        with translated("integrity check"):
            return str(self.connection().execute("PRAGMA integrity_check").fetchone()[0])

    def backup(self, path: str) -> None:
        """Copy the whole store to a new file at ``path`` while it stays in use: SQLite's
        online backup, a consistent snapshot of one moment (copying a live WAL file by hand
        can miss committed transactions). An existing file at ``path`` is refused."""
        if os.path.exists(path):
            raise StoreError(f"backup target {path} exists; choose a new file")
        with translated(f"back up to {path}"):
            target = sqlite3.connect(path)
            try:
                self.connection().backup(target)
            except BaseException:
                target.close()
                with contextlib.suppress(OSError):
                    os.remove(path)  # no half-written backup is left behind
                raise
            target.close()

    def counts(self) -> dict[str, int]:
        """Rows per table, for reports."""
        tables = (
            "orders",
            "fulfillments",
            "items",
            "movements",
            "returns",
            "outbox",
            "idempotency",
            "locations",
        )
        with translated("count"):
            connection = self.connection()
            return {
                t: connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables
            }

    def close(self) -> None:
        """Close every connection the store opened, in every thread, and end the background
        checkpointer. Call it when no command is running; a later command opens a new
        connection. Dropping the store does the same."""
        if self.checkpointer is not None:
            self._stop_checkpointer()
        self._connections.close_all()
        self._local = threading.local()
        self._shared = None


__all__ = [
    "BACKSTOP_PAGES",
    "CHECKPOINT_INTERVAL",
    "SCHEMA_VERSION",
    "CheckpointMode",
    "Checkpointer",
    "SqliteStore",
    "SqliteUnitOfWork",
    "migrate",
]


if TYPE_CHECKING:  # the type checker proves this store satisfies the port

    def _conforms(store: SqliteStore) -> Store:
        return store
