"""The in-memory store: the reference implementation of the store ports.

It enforces what a database store must: a unit of work commits everything or nothing, a
stale version raises :class:`~omscore.errors.ConcurrencyConflict`, an idempotency key is
recorded once, and outbox events keep commit order. Aggregates are immutable, so the store
keeps them as they are, without copying. Safe for threads: one lock around each commit,
and around every query that walks the store's tables or indexes (which a commit on another
thread changes as it goes), but for the list of locations or channels most commands read
(see ``_Table.sorted_rows``).

Reads are read-committed, not snapshots: a query that reads several aggregates while
another thread commits may see some before the commit and some after (``SqliteStore``
reads one moment per unit of work). Holding the lock for a whole read would make it a
snapshot, but a thread reading in a loop would then starve the writers: the lock is not
fair. The one read that must compare two moments' worth of state, the ledger's totals
against the levels (``reconcile()``), pins the items of its moment instead.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Generic, Protocol, Self, TypeVar

from omscore._values import on_first_use, opened
from omscore.errors import ConcurrencyConflict
from omscore.events import DomainEvent
from omscore.ids import ChannelId, FulfillmentId, LocationId, OrderId, ReturnId, Sku
from omscore.inventory import (
    Channel,
    InventoryItem,
    Location,
    LocationLoad,
    StockHold,
    StockMovement,
    replay,
)
from omscore.orders import FulfillmentOrder, FulfillmentStatus, Order, OrderStatus
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


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


A = TypeVar("A", bound=_Versioned)
R = TypeVar("R", bound="_Staged")


class _Staged(Protocol):
    @property
    def staged(self) -> Mapping[str, object]: ...

    def conflicts(self) -> list[str]: ...

    def apply(self) -> None: ...


class _Table(Generic[A]):
    """Committed aggregates of one kind, by key."""

    def __init__(self, name: str, key_of: Callable[[A], str]) -> None:
        self.name = name
        self.key_of = key_of
        self.rows: dict[str, A] = {}
        self.changes = 0  # commits that changed the table
        self._sorted: tuple[int, list[A]] = (-1, [])

    def sorted_rows(self) -> list[A]:
        """Every row sorted by key; the same list object until the table changes.

        Safe without the store's lock, as most commands read it: the list is kept with the
        count of changes it was made at, so one made while a commit changed the table is
        made again by the next read."""
        changes, cached = self.changes, self._sorted
        if cached[0] == changes:
            return cached[1]
        rows = self.rows
        fresh = [rows[k] for k in sorted(rows)]  # rows are never deleted
        self._sorted = (changes, fresh)
        return fresh

    def update(self, staged: dict[str, A]) -> None:
        """Apply committed rows (under the store's lock)."""
        if staged:
            self.rows.update(staged)
            self.changes += 1


class _Repo(Generic[A]):
    """A repository view of one table inside one unit of work."""

    def __init__(self, store: MemoryStore, table: _Table[A]) -> None:
        self._store = store
        self._table = table
        self._rows = table.rows  # what reads see: the live rows, or a copy of one moment
        self.staged: dict[str, A] = {}
        self.seen: dict[str, int] = {}

    def get(self, key: str) -> A | None:
        if key in self.staged:
            return self.staged[key]
        row = self._rows.get(key)
        self.seen.setdefault(key, row.version if row is not None else 0)
        return row

    def put(self, aggregate: A) -> None:
        key = self._table.key_of(aggregate)
        self.seen.setdefault(key, 0)
        self.staged[key] = aggregate

    def conflicts(self) -> list[str]:
        rows = self._table.rows
        return [
            f"{self._table.name} {key}: read at version {self.seen[key]}, "
            f"now {rows[key].version if key in rows else 0}"
            for key in self.staged
            if (rows[key].version if key in rows else 0) != self.seen[key]
        ]

    def apply(self) -> None:
        self._table.update(self.staged)


class _Orders(_Repo[Order]):
    def get(self, order_id: OrderId) -> Order | None:  # type: ignore[override]
        return super().get(order_id)

    def by_fulfillment(self, fulfillment_id: FulfillmentId) -> OrderId | None:
        found = self._store.fulfillments.get(fulfillment_id)
        return found[0] if found is not None else None

    def fulfillment_queue(
        self,
        statuses: frozenset[FulfillmentStatus],
        *,
        location_id: LocationId | None = None,
        waiting_since: datetime | None = None,
        limit: int | None = None,
    ) -> list[tuple[OrderId, FulfillmentId]]:
        by_status = self._store.fulfillments_by_status
        with self._store.lock:
            found = [
                (f.since, f.id, order_id)
                for status in statuses
                for order_id, f in by_status.get(status, {}).values()
                if (location_id is None or f.stock_location == location_id)
                and (waiting_since is None or f.since <= waiting_since)
            ]
        found.sort()
        return [(order_id, f_id) for _, f_id, order_id in found[:limit]]

    def order_queue(
        self,
        statuses: frozenset[OrderStatus],
        *,
        hold: str | None = None,
        channel: ChannelId | None = None,
        placed_before: datetime | None = None,
        limit: int | None = None,
    ) -> list[OrderId]:
        found = [
            (order.placed_at, order.id)
            for order in self._store.orders_in(statuses)
            if (hold is None or order.has_hold(hold))
            and (channel is None or order.channel == channel)
            and (placed_before is None or order.placed_at <= placed_before)
        ]
        found.sort()
        return [order_id for _, order_id in found[:limit]]

    def customer_orders(
        self,
        customer_ref: str,
        *,
        before: tuple[datetime, OrderId] | None = None,
        limit: int | None = None,
    ) -> list[OrderId]:
        found = [
            (order.placed_at, order.id)
            for order in self._store.orders_of(customer_ref)
            if before is None or (order.placed_at, order.id) < before
        ]
        found.sort(reverse=True)
        return [order_id for _, order_id in found[:limit]]


class _Loads(_Repo[LocationLoad]):
    def get(self, location_id: LocationId) -> LocationLoad | None:  # type: ignore[override]
        return super().get(location_id)


class _Inventory(_Repo[InventoryItem]):
    def __init__(self, store: MemoryStore, table: _Table[InventoryItem]) -> None:
        super().__init__(store, table)
        self.new_movements: list[StockMovement] = []

    def get(self, sku: Sku) -> InventoryItem | None:  # type: ignore[override]
        return super().get(sku)

    def append_movements(self, movements: Sequence[StockMovement]) -> None:
        self.new_movements.extend(movements)

    def movements(
        self, sku: Sku | None = None, location_id: LocationId | None = None
    ) -> list[StockMovement]:
        # The ledger only grows, by one extend under the lock: walking it needs no lock.
        return [
            m
            for m in self._store.ledger
            if (sku is None or m.sku == sku)
            and (location_id is None or m.location_id == location_id)
        ]

    def skus(self) -> list[Sku]:
        with self._store.lock:
            return sorted(Sku(s) for s in self._rows)

    def ledger_totals(self) -> dict[tuple[LocationId, Sku], tuple[int, int]]:
        """The ledger's totals; from now on this unit of work reads the items of the same
        moment (a copy of the table, which is small next to the ledger), so a level is
        compared with the ledger that made it, whatever other threads commit meanwhile."""
        store = self._store
        with store.lock:
            moment = len(store.ledger)
            self._rows = dict(store.items.rows)
        return replay(itertools.islice(store.ledger, moment))  # the ledger only grows

    def expiring(self, now: datetime) -> list[Sku]:
        with self._store.lock:
            return sorted(Sku(s) for s, t in self._store.expiry_index.items() if t <= now)

    def reserved_under(self, key: str) -> list[Sku]:
        with self._store.lock:
            return sorted(self._store.key_index.get(key, ()))

    def reserved_at(self, location_id: LocationId) -> list[Sku]:
        with self._store.lock:
            items = list(self._store.items.rows.values())
        return sorted(i.sku for i in items if i.level(location_id).reserved)

    def backordered(self) -> list[Sku]:
        with self._store.lock:
            items = list(self._store.items.rows.values())
        return sorted(i.sku for i in items if i.backorders)

    def supply_due(self, before: datetime | None) -> list[Sku]:
        with self._store.lock:
            items = list(self._store.items.rows.values())
        return sorted(
            i.sku
            for i in items
            if (i.supply or i.transfers)
            and (due := i.expected_arrivals())
            and (before is None or due[0].eta <= before)
        )


class _Network(_Repo[A]):
    """Locations or channels: few, read whole by most commands."""

    def all(self) -> list[A]:
        if not self.staged:
            return self._table.sorted_rows()
        rows = {**self._table.rows, **self.staged}  # one copy, made without a gap
        return [rows[k] for k in sorted(rows)]


class _Locations(_Network[Location]):
    def get(self, location_id: LocationId) -> Location | None:  # type: ignore[override]
        return super().get(location_id)


class _Channels(_Network[Channel]):
    def get(self, channel: ChannelId) -> Channel | None:  # type: ignore[override]
        return super().get(channel)


class _Returns(_Repo[Return]):
    def get(self, return_id: ReturnId) -> Return | None:  # type: ignore[override]
        return super().get(return_id)


class _Idempotency:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.staged: dict[str, IdempotencyRecord] = {}

    def get(self, key: str) -> IdempotencyRecord | None:
        return self.staged.get(key) or self._store.idempotency.get(key)

    def put(self, record: IdempotencyRecord) -> None:
        self.staged[record.key] = record


class MemoryUnitOfWork:
    """One transaction against a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._events: list[DomainEvent] = []
        self._repos: list[_Staged] = []  # the repositories this unit of work opened

    # Repositories open on first use: most commands touch two or three of them.

    @on_first_use
    def orders(self) -> _Orders:
        """Orders."""
        return self._opened(_Orders(self.store, self.store.orders))

    @on_first_use
    def inventory(self) -> _Inventory:
        """Inventory items and the ledger."""
        return self._opened(_Inventory(self.store, self.store.items))

    @on_first_use
    def locations(self) -> _Locations:
        """Locations."""
        return self._opened(_Locations(self.store, self.store.locations))

    @on_first_use
    def channels(self) -> _Channels:
        """Channel configurations."""
        return self._opened(_Channels(self.store, self.store.channels))

    @on_first_use
    def loads(self) -> _Loads:
        """Daily fulfilment loads of locations."""
        return self._opened(_Loads(self.store, self.store.loads))

    @on_first_use
    def returns(self) -> _Returns:
        """Returns."""
        return self._opened(_Returns(self.store, self.store.returns))

    @on_first_use
    def idempotency(self) -> _Idempotency:
        """Idempotency records."""
        return _Idempotency(self.store)

    def _opened(self, repo: R) -> R:
        self._repos.append(repo)
        return repo

    def record(self, events: Iterable[DomainEvent]) -> None:
        """Stage events for the outbox, in order."""
        self._events.extend(events)

    def commit(self) -> None:
        """Apply everything staged at once, or raise ConcurrencyConflict and apply nothing."""
        store = self.store
        with store.lock:
            idempotency: _Idempotency | None = opened(self, "idempotency")
            records = idempotency.staged if idempotency is not None else {}
            written = [repo for repo in self._repos if repo.staged]
            conflicts = [c for repo in written for c in repo.conflicts()]
            taken = [k for k in records if k in store.idempotency]
            if taken:
                conflicts.append(f"idempotency key(s) {taken} were recorded meanwhile")
            if conflicts:
                raise ConcurrencyConflict("; ".join(conflicts))
            for repo in written:
                repo.apply()
            store.idempotency.update(records)
            orders: _Orders | None = opened(self, "orders")
            items: _Inventory | None = opened(self, "inventory")
            if items is not None:
                store.ledger.extend(items.new_movements)
            store.index(
                orders.staged.values() if orders is not None else (),
                items.staged.values() if items is not None else (),
            )
            store.events.extend(self._events)
        self._events = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._events = []


_NO_KEYS: frozenset[str] = frozenset()


class MemoryStore:
    """Every aggregate, the ledger, the outbox and idempotency records, in memory."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.orders: _Table[Order] = _Table("order", lambda o: o.id)
        self.items: _Table[InventoryItem] = _Table("inventory item", lambda i: i.sku)
        self.locations: _Table[Location] = _Table("location", lambda loc: loc.id)
        self.channels: _Table[Channel] = _Table("channel", lambda c: c.id)
        self.loads: _Table[LocationLoad] = _Table("location load", lambda x: x.location_id)
        self.returns: _Table[Return] = _Table("return", lambda r: r.id)
        self.ledger: list[StockMovement] = []
        #: The outbox: position n is ``events[n - first]`` (pruning moves ``first`` on).
        self.events: list[DomainEvent] = []
        self.first = 1
        self.idempotency: dict[str, IdempotencyRecord] = {}
        #: Every fulfilment order with its order, by id and by status (the status index
        #: makes a queue of live work independent of how many orders were ever placed).
        self.fulfillments: dict[str, tuple[OrderId, FulfillmentOrder]] = {}
        self.fulfillments_by_status: dict[
            FulfillmentStatus, dict[str, tuple[OrderId, FulfillmentOrder]]
        ] = {}
        self.expiry_index: dict[Sku, datetime] = {}
        self.key_index: dict[str, set[Sku]] = {}
        self.keys_of: dict[Sku, set[str]] = {}
        self.indexed_holds: dict[Sku, tuple[StockHold, ...]] = {}  # as the indexes saw them
        #: Orders by status, for order queues, and by customer. Commits only note the
        #: orders they wrote (``unfiled``); the first query after them files those (a
        #: status is derived, so working it out at every commit would cost every command).
        self.orders_by_status: dict[OrderStatus, dict[OrderId, Order]] = {}
        self.status_of: dict[OrderId, OrderStatus] = {}
        self.orders_by_customer: dict[str, dict[OrderId, Order]] = {}
        self.unfiled: dict[OrderId, Order] = {}
        self.published_up_to = 0

    def unit_of_work(self, *, write: bool = True) -> MemoryUnitOfWork:
        """A new unit of work (``write`` makes no difference in memory)."""
        return MemoryUnitOfWork(self)

    def index(self, orders: Iterable[Order], items: Iterable[InventoryItem]) -> None:
        """Keep the query indexes in step with committed aggregates (called under the lock)."""
        known, by_status, unfiled = self.fulfillments, self.fulfillments_by_status, self.unfiled
        for order in orders:
            unfiled[order.id] = order
            for f in order.fulfillments:
                before = known.get(f.id)
                if before is not None:
                    if before[1] is f:  # unchanged: fulfilment orders are immutable
                        continue
                    del by_status[before[1].status][f.id]
                known[f.id] = entry = (order.id, f)
                by_status.setdefault(f.status, {})[f.id] = entry
        for item in items:
            self._index_item(item)

    def orders_in(self, statuses: frozenset[OrderStatus]) -> list[Order]:
        """The committed orders in one of ``statuses``."""
        with self.lock:
            self._file_orders()
            by_status = self.orders_by_status
            return [o for status in statuses for o in by_status.get(status, {}).values()]

    def orders_of(self, customer_ref: str) -> list[Order]:
        """The committed orders of one customer."""
        with self.lock:
            self._file_orders()
            return list(self.orders_by_customer.get(customer_ref, {}).values())

    def _file_orders(self) -> None:
        """File the orders committed since the last query by status and by customer."""
        by_status, status_of = self.orders_by_status, self.status_of
        by_customer = self.orders_by_customer
        for order_id, order in self.unfiled.items():
            before = status_of.get(order_id)
            if before is not None:
                del by_status[before][order_id]
            status = status_of[order_id] = order.status
            by_status.setdefault(status, {})[order_id] = order
            if order.customer_ref is not None:  # never changed once placed
                by_customer.setdefault(order.customer_ref, {})[order_id] = order
        self.unfiled.clear()

    def _index_item(self, item: InventoryItem) -> None:
        added = item.checkout_holds_added_since(self.indexed_holds.get(item.sku))
        self.indexed_holds[item.sku] = item.holds
        if added is not None:  # carts as indexed, but for those the command added
            self._index_added(item.sku, added)
            return
        sku, keys, expiry = item.sku, _NO_KEYS, None
        if item.has_checkout_holds:  # order holds neither expire nor have keys
            keys, expiry = item.reservation_keys, item.next_expiry
        if expiry is None:
            self.expiry_index.pop(sku, None)
        else:
            self.expiry_index[sku] = expiry
        old = self.keys_of.get(sku, _NO_KEYS)
        if old or keys:
            for key in old - keys:
                self.key_index[key].discard(sku)
            for key in keys - old:
                self.key_index.setdefault(key, set()).add(sku)
            self.keys_of[sku] = set(keys)

    def _index_added(self, sku: Sku, added: Iterable[tuple[str, datetime | None]]) -> None:
        """Index checkout holds a command added to carts indexed before."""
        for key, expires_at in added:
            self.keys_of.setdefault(sku, set()).add(key)
            self.key_index.setdefault(key, set()).add(sku)
            if expires_at is not None:
                current = self.expiry_index.get(sku)
                if current is None or expires_at < current:
                    self.expiry_index[sku] = expires_at

    def outbox(self, after: int = 0, limit: int | None = None) -> list[OutboxRecord]:
        """Committed events after ``position``, in commit order."""
        after, limit = checked_position(after, "after"), checked_limit(limit)
        with self.lock:
            first, events = self.first, self.events
            after = max(after, first - 1)
            last = first + len(events) - 1
            end = last if limit is None else min(last, after + limit)
            chosen = events[after + 1 - first : end + 1 - first]
        return [OutboxRecord(n, f"evt-{n}", e) for n, e in enumerate(chosen, start=after + 1)]

    def unpublished(self, limit: int | None = None) -> list[OutboxRecord]:
        """Committed events not yet marked published."""
        return self.outbox(self.published_up_to, limit)

    def mark_published(self, up_to: int) -> None:
        """Mark every event up to ``position`` as published."""
        up_to = checked_position(up_to, "up_to")
        with self.lock:
            last = self.first + len(self.events) - 1
            self.published_up_to = max(self.published_up_to, min(up_to, last))

    def order_events(self, order_id: str) -> list[OutboxRecord]:
        """The committed events that name ``order_id``, in commit order (a scan of the
        outbox: this store keeps no index for it)."""
        order_id = checked_id(order_id, "order_id")
        with self.lock:
            first, events = self.first, list(self.events)
        return [
            OutboxRecord(n, f"evt-{n}", e)
            for n, e in enumerate(events, start=first)
            if getattr(e, "order_id", None) == order_id
        ]

    def prune_outbox(self, before: datetime) -> int:
        """Delete published events, oldest first, up to the first recorded at or after
        ``before``; returns how many (positions of the rest stay)."""
        before = checked_cutoff(before)
        with self.lock:
            published = self.events[: self.published_up_to - self.first + 1]
            count = next((n for n, e in enumerate(published) if e.at >= before), len(published))
            del self.events[:count]
            self.first += count
            return count

    def prune_idempotency(self, before: datetime) -> int:
        """Forget the idempotency records made before ``before``; returns how many."""
        before = checked_cutoff(before)
        with self.lock:
            old = [key for key, record in self.idempotency.items() if record.at < before]
            for key in old:
                del self.idempotency[key]
            return len(old)


if TYPE_CHECKING:  # the type checker proves the reference store satisfies the port

    def _conforms(store: MemoryStore) -> Store:
        return store
