"""Ports: what the service needs from the outside world, as ``typing.Protocol`` classes.

A store adapter implements :class:`Store`: a factory of units of work, each of which reads
aggregates through repositories, stages changes, and commits aggregates, ledger rows,
outbox events and idempotency records atomically, or not at all. Every aggregate carries a
``version``; committing an aggregate whose stored version moved since it was read raises
:class:`~omscore.errors.ConcurrencyConflict`. ``MemoryStore`` is the reference adapter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

import attrs

from omscore.errors import InvalidQuery
from omscore.events import DomainEvent
from omscore.geo import Address
from omscore.ids import ChannelId, FulfillmentId, LocationId, OrderId, ReturnId, Sku
from omscore.inventory import Channel, InventoryItem, Location, LocationLoad, StockMovement
from omscore.money import Money
from omscore.orders import FulfillmentStatus, Order, OrderStatus
from omscore.returns import Return


class Clock(Protocol):
    """The source of the current time (timezone-aware)."""

    def now(self) -> datetime:
        """The current time."""
        ...


class IdGenerator(Protocol):
    """The source of new identifiers."""

    def new_id(self, prefix: str) -> str:
        """A new unique id starting with ``prefix``."""
        ...


@attrs.frozen(slots=True)
class IdempotencyRecord:
    """The first result of a command run under an idempotency key."""

    key: str
    fingerprint: str
    result: object
    at: datetime


@attrs.frozen(slots=True)
class OutboxRecord:
    """A domain event in the outbox, at its commit-order ``position`` (1-based)."""

    position: int
    event_id: str
    event: DomainEvent


@attrs.frozen(slots=True)
class Pruned:
    """What :meth:`omscore.OMS.prune` deleted: outbox events and idempotency records."""

    events: int
    idempotency_keys: int


class OrderRepository(Protocol):
    """Orders by id."""

    def get(self, order_id: OrderId) -> Order | None:
        """The stored order, or None."""
        ...

    def put(self, order: Order) -> None:
        """Stage a new or changed order for commit."""
        ...

    def by_fulfillment(self, fulfillment_id: FulfillmentId) -> OrderId | None:
        """The order that owns a fulfilment order."""
        ...

    def fulfillment_queue(
        self,
        statuses: frozenset[FulfillmentStatus],
        *,
        location_id: LocationId | None = None,
        waiting_since: datetime | None = None,
        limit: int | None = None,
    ) -> list[tuple[OrderId, FulfillmentId]]:
        """Fulfilment orders in one of ``statuses``: only those whose units are at
        ``location_id`` (their :attr:`~omscore.orders.FulfillmentOrder.stock_location`) when
        given, only those whose status has not changed since ``waiting_since`` (their
        :attr:`~omscore.orders.FulfillmentOrder.since` is at or before it) when given.
        Longest waiting first, ties by fulfilment id; at most ``limit``."""
        ...

    def order_queue(
        self,
        statuses: frozenset[OrderStatus],
        *,
        hold: str | None = None,
        channel: ChannelId | None = None,
        placed_before: datetime | None = None,
        limit: int | None = None,
    ) -> list[OrderId]:
        """Committed orders whose :attr:`~omscore.orders.Order.status` is one of
        ``statuses``: only those with a hold of kind ``hold``, on ``channel``, placed at or
        before ``placed_before``, when given. Placed earliest first, ties by order id; at
        most ``limit``."""
        ...

    def customer_orders(
        self,
        customer_ref: str,
        *,
        before: tuple[datetime, OrderId] | None = None,
        limit: int | None = None,
    ) -> list[OrderId]:
        """Committed orders whose :attr:`~omscore.orders.Order.customer_ref` is
        ``customer_ref``, newest first: by time placed, then by order id, both descending.
        With ``before`` (a ``(placed_at, order_id)`` pair), only those that come after it in
        that order (the next page); at most ``limit``."""
        ...


class InventoryRepository(Protocol):
    """Inventory items by SKU, and the movement ledger."""

    def get(self, sku: Sku) -> InventoryItem | None:
        """The stored item, or None if the SKU never had stock."""
        ...

    def put(self, item: InventoryItem) -> None:
        """Stage a new or changed item for commit."""
        ...

    def append_movements(self, movements: Sequence[StockMovement]) -> None:
        """Stage ledger rows for commit."""
        ...

    def movements(
        self, sku: Sku | None = None, location_id: LocationId | None = None
    ) -> list[StockMovement]:
        """Committed ledger rows in commit order, optionally for one SKU and/or location."""
        ...

    def skus(self) -> list[Sku]:
        """Every SKU with an item, sorted."""
        ...

    def ledger_totals(self) -> dict[tuple[LocationId, Sku], tuple[int, int]]:
        """The ledger summed from zero: (location, sku) -> (on hand, allocated)."""
        ...

    def expiring(self, now: datetime) -> list[Sku]:
        """SKUs holding a checkout reservation that expires at or before ``now``."""
        ...

    def reserved_under(self, key: str) -> list[Sku]:
        """SKUs holding a checkout reservation under ``key``."""
        ...

    def reserved_at(self, location_id: LocationId) -> list[Sku]:
        """SKUs with units reserved at ``location_id`` (for orders or carts), sorted."""
        ...

    def backordered(self) -> list[Sku]:
        """SKUs with backorders waiting for stock, sorted."""
        ...

    def supply_due(self, before: datetime | None) -> list[Sku]:
        """SKUs expecting incoming supply (a purchase order, or a transfer with an ETA) due
        at or before ``before`` (any when None), sorted."""
        ...


class LocationRepository(Protocol):
    """Locations by id."""

    def get(self, location_id: LocationId) -> Location | None:
        """The stored location, or None."""
        ...

    def put(self, location: Location) -> None:
        """Stage a new or changed location."""
        ...

    def all(self) -> list[Location]:
        """Every location, sorted by id. Stores may hand out one shared list while nothing
        changes (services use its identity to reuse channel pools): do not mutate it."""
        ...


class ChannelRepository(Protocol):
    """Channel pool configurations by channel id."""

    def get(self, channel: ChannelId) -> Channel | None:
        """The stored configuration, or None for a channel never configured."""
        ...

    def put(self, channel: Channel) -> None:
        """Stage a new or changed configuration."""
        ...

    def all(self) -> list[Channel]:
        """Every configured channel, sorted by id."""
        ...


class LoadRepository(Protocol):
    """Daily fulfilment counters of locations with a daily capacity."""

    def get(self, location_id: LocationId) -> LocationLoad | None:
        """The stored counter, or None."""
        ...

    def put(self, load: LocationLoad) -> None:
        """Stage a new or changed counter."""
        ...


class ReturnRepository(Protocol):
    """Returns (RMAs) by id."""

    def get(self, return_id: ReturnId) -> Return | None:
        """The stored return, or None."""
        ...

    def put(self, rma: Return) -> None:
        """Stage a new or changed return."""
        ...


class IdempotencyRepository(Protocol):
    """Results of commands run under an idempotency key."""

    def get(self, key: str) -> IdempotencyRecord | None:
        """The record for ``key``, or None."""
        ...

    def put(self, record: IdempotencyRecord) -> None:
        """Stage a record for commit."""
        ...


class UnitOfWork(Protocol):
    """One atomic transaction over every repository and the outbox."""

    @property
    def orders(self) -> OrderRepository:
        """Orders."""
        ...

    @property
    def inventory(self) -> InventoryRepository:
        """Inventory items and the ledger."""
        ...

    @property
    def locations(self) -> LocationRepository:
        """Locations."""
        ...

    @property
    def channels(self) -> ChannelRepository:
        """Channel pool configurations."""
        ...

    @property
    def loads(self) -> LoadRepository:
        """Daily capacity counters."""
        ...

    @property
    def returns(self) -> ReturnRepository:
        """Returns."""
        ...

    @property
    def idempotency(self) -> IdempotencyRepository:
        """Idempotency records."""
        ...

    def record(self, events: Iterable[DomainEvent]) -> None:
        """Stage events for the outbox, in order."""
        ...

    def commit(self) -> None:
        """Write everything staged atomically; raise ConcurrencyConflict on a stale version."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Discard whatever was not committed."""
        ...


@attrs.frozen(slots=True)
class Label:
    """A shipping label: the carrier's name, the tracking number and what it cost."""

    carrier: str
    tracking: str
    rate: Money


class CarrierPort(Protocol):
    """A parcel carrier: rates, labels and tracking. Failures raise ``CarrierError``; the
    OMS takes any other exception ``create_label`` raises for one, raised from it."""

    def quote(self, origin: Location, destination: Address | None, units: int) -> Money:
        """The rate for ``units`` from ``origin`` to ``destination``."""
        ...

    def create_label(
        self,
        fulfillment_id: str,
        origin: Location,
        destination: Address | None,
        units: int,
        key: str,
    ) -> Label:
        """Buy a label; ``key`` makes a retried call return the same label."""
        ...

    def track(self, tracking: str) -> str:
        """The parcel's latest status."""
        ...


@attrs.frozen(slots=True)
class PaymentResult:
    """What the gateway did: its reference for the payment and the amount it moved."""

    reference: str
    amount: Money


class PaymentPort(Protocol):
    """A payment gateway. Every call carries an idempotency key: a repeated key returns the
    first result and moves no money. Failures raise ``PaymentDeclined`` (a decision) or
    ``PaymentError`` (a fault); the OMS takes any other exception it raises for a fault,
    a ``PaymentError`` raised from it. A gateway may keep a decline under its key too: the
    OMS asks under a new key after each decline it records (an authorisation's retry)."""

    def authorize(self, order_id: str, amount: Money, key: str) -> PaymentResult:
        """Reserve ``amount`` on the customer's payment method."""
        ...

    def capture(self, reference: str, amount: Money, key: str) -> PaymentResult:
        """Charge part of an authorisation."""
        ...

    def refund(self, reference: str, amount: Money, key: str) -> PaymentResult:
        """Give back part of what was captured."""
        ...

    def void(self, reference: str, key: str) -> PaymentResult:
        """Release what is left of an authorisation; the result's amount is what was left."""
        ...


def checked_limit(limit: object) -> int | None:
    """``limit`` when it is ``None`` or an int of at least 1 (how many rows a read may
    return); anything else is an :class:`~omscore.errors.InvalidQuery` that names it."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidQuery(f"limit must be an int, got {limit!r}")
    if limit < 1:
        raise InvalidQuery(f"limit must be at least 1, got {limit}")
    return limit


def checked_position(position: object, name: str) -> int:
    """``position`` when it is an outbox position: an int of 0 or more (0 is before the
    first event); anything else is an :class:`~omscore.errors.InvalidQuery` naming
    ``name``."""
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        raise InvalidQuery(f"{name} must be an outbox position (an int >= 0), got {position!r}")
    return position


def checked_id(value: object, name: str) -> str:
    """``value`` when it is a non-empty string (an id a read looks up); anything else is an
    :class:`~omscore.errors.InvalidQuery` naming ``name``."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidQuery(f"{name} must be a non-empty string, got {value!r}")
    return value


def checked_cutoff(before: object, name: str = "before") -> datetime:
    """``before`` when it is a timezone-aware datetime (where pruning, or a query, stops);
    anything else is an :class:`~omscore.errors.InvalidQuery` naming ``name``."""
    if not isinstance(before, datetime) or before.utcoffset() is None:
        raise InvalidQuery(f"{name} must be a timezone-aware datetime, got {before!r}")
    return before


class Store(Protocol):
    """A storage adapter: units of work and the outbox relay.

    The relay and housekeeping methods refuse arguments that cannot mean anything with
    :class:`~omscore.errors.InvalidQuery` and change nothing: a position below 0, a limit
    below 1, anything but an int (or a bool) for either, a ``before`` that is not an aware
    datetime. :func:`checked_position`, :func:`checked_limit` and :func:`checked_cutoff` do
    those checks; the contract kit tests them."""

    def unit_of_work(self, *, write: bool = True) -> UnitOfWork:
        """A new unit of work; ``write=False`` for queries that will not commit."""
        ...

    def outbox(self, after: int = 0, limit: int | None = None) -> list[OutboxRecord]:
        """Committed events after ``position``, in commit order."""
        ...

    def unpublished(self, limit: int | None = None) -> list[OutboxRecord]:
        """Committed events not yet marked published, in commit order."""
        ...

    def mark_published(self, up_to: int) -> None:
        """Mark every event up to ``position`` as published."""
        ...

    def order_events(self, order_id: str) -> list[OutboxRecord]:
        """The committed events that name ``order_id`` (``event.order_id``: its returns'
        events too), in commit order, as :meth:`outbox` gives them; pruned events are gone.
        An ``order_id`` that is not a non-empty string is :class:`InvalidQuery`
        (:func:`checked_id`)."""
        ...

    def prune_outbox(self, before: datetime) -> int:
        """Delete published events, oldest first, up to the first one recorded at or after
        ``before``; returns how many. Unpublished events are never deleted, the events kept
        keep their positions, and later events are numbered after the last ever given."""
        ...

    def prune_idempotency(self, before: datetime) -> int:
        """Forget the idempotency records made before ``before``; returns how many. A
        command repeated under a forgotten key runs again."""
        ...
