"""The store adapter contract kit (public API): prove a store behaves like the reference.

Subclass the plain base classes in a test module and say how to make your store::

    from omscore.testing.contract import ReferenceModelContract, StoreContract

    class TestMyStore(StoreContract, ReferenceModelContract):
        def make_store(self, tmp_path):
            return MyStore(tmp_path / "shop.db")

The bases have no ``Test`` prefix, so importing them collects nothing; your subclass runs
every behaviour, one per test. ``ProcessContract`` adds a test with several processes
sharing one store, for stores that support it (give ``store_opener``, a picklable
zero-argument callable). ``ReferenceModelContract`` drives your store through the OMS with
a Hypothesis state machine, next to the in-memory reference store and a plain tally of
stock, and compares stock, orders, returns and events after every step.

Requires ``pytest`` and ``hypothesis``: ``pip install "omscore[testing]"``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import attrs

from omscore.testing._extra import missing_test_tool

try:
    import pytest
    from hypothesis import event, settings
    from hypothesis import strategies as st
    from hypothesis.stateful import (
        RuleBasedStateMachine,
        invariant,
        rule,
        run_state_machine_as_test,
    )
except ModuleNotFoundError as missing:
    raise missing_test_tool(__name__, "pytest and Hypothesis", missing) from missing

from omscore.adapters.memory import MemoryStore
from omscore.adapters.payments import FakePaymentGateway
from omscore.adapters.system import SequentialIds, UuidIds
from omscore.errors import ConcurrencyConflict, InvalidQuery, OmsError, StoreError
from omscore.events import OrderHeld, OrderPlaced, ReturnEvent
from omscore.geo import Address, GeoPoint
from omscore.ids import ChannelId, FulfillmentId, LineId, LocationId, OrderId, ReturnId, Sku
from omscore.inventory import (
    Capability,
    Channel,
    ChannelPool,
    Discrepancy,
    InventoryItem,
    Location,
    LocationKind,
    LocationLoad,
    MovementKind,
    StockMovement,
    replay,
)
from omscore.money import Money
from omscore.orders import (
    MOVABLE_FULFILLMENT,
    WAITING_ORDER,
    Delivery,
    DeliveryMethod,
    FulfillmentOrder,
    FulfillmentStatus,
    HoldKind,
    LineDraft,
    Order,
    OrderDraft,
    OrderStatus,
    PaymentKind,
)
from omscore.ports import IdempotencyRecord, Pruned, Store, UnitOfWork
from omscore.returns import Disposition, Return, ReturnLine, ReturnStatus
from omscore.service import OMS
from omscore.sourcing import LowestCostPolicy
from omscore.testing.clock import ManualClock
from omscore.testing.invariants import check_books

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
HOME = Address(country="DE", postal_code="10115", city="Berlin", geo=GeoPoint(52.53, 13.38))


def sample_order(order_id: str = "O-1", quantity: int = 2) -> Order:
    """A placed order (not stored) for round trips."""
    draft = OrderDraft(
        channel="web",
        currency="EUR",
        delivery=Delivery.ship(HOME),
        lines=[LineDraft("A", quantity, Money("9.99", "EUR"))],
    )
    return Order.place(OrderId(order_id), draft, [LineId(f"{order_id}-1")], T0)[0]


def sample_return() -> Return:
    """A partly received return of order O-1 (not stored) with dispositions and a refund."""
    return Return(
        ReturnId("R-1"),
        OrderId("O-1"),
        (ReturnLine(LineId("O-1-1"), Sku("A"), 2, 1, 0, {Disposition.RESTOCK: 1}),),
        ReturnStatus.PARTIALLY_RECEIVED,
        "too small",
        "ship",
        T0,
        refunded=Money("3.00", "EUR"),
    )


@attrs.frozen
class _Aggregates:
    """One aggregate of each repository."""

    order: Order
    item: InventoryItem
    location: Location
    channel: Channel
    load: LocationLoad
    rma: Return


def _read_all(uow: UnitOfWork) -> _Aggregates | None:
    """The stored aggregates of :class:`_Aggregates`' ids, or None before any is stored."""
    found = (
        uow.orders.get(OrderId("O-1")),
        uow.inventory.get(Sku("A")),
        uow.locations.get(LocationId("WH-1")),
        uow.channels.get(ChannelId("web")),
        uow.loads.get(LocationId("WH-1")),
        uow.returns.get(ReturnId("R-1")),
    )
    if None in found:
        return None
    return _Aggregates(*found)  # type: ignore[arg-type]


def _put_all(uow: UnitOfWork, aggregates: _Aggregates) -> None:
    uow.orders.put(aggregates.order)
    uow.inventory.put(aggregates.item)
    uow.locations.put(aggregates.location)
    uow.channels.put(aggregates.channel)
    uow.loads.put(aggregates.load)
    uow.returns.put(aggregates.rma)


def _first_versions() -> _Aggregates:
    """One aggregate of each repository, as first stored (version 1)."""
    day = T0.date()
    return _Aggregates(
        sample_order(),
        InventoryItem(Sku("A")).receive(LocationId("W1"), 5, "po-1", T0).item,
        attrs.evolve(sample_location("WH-1"), version=1),
        Channel(id=ChannelId("web"), buffer=1, version=1),
        LocationLoad(LocationId("WH-1"), day).take(day, 1),
        sample_return(),
    )


def sample_location(location_id: str, priority: int = 1) -> Location:
    """A warehouse in Berlin's time zone that ships and takes returns."""
    return Location(
        id=LocationId(location_id),
        kind=LocationKind.WAREHOUSE,
        geo=GeoPoint(52.5, 13.4),
        capabilities={Capability.SHIP, Capability.RETURNS},
        priority=priority,
        time_zone="Europe/Berlin",
    )


def sample_pickup_store(location_id: str) -> Location:
    """A store that hands out pickups (and ships nothing)."""
    return Location(
        id=LocationId(location_id),
        kind=LocationKind.STORE,
        geo=GeoPoint(52.52, 13.41),
        capabilities={Capability.PICKUP},
    )


def order_draft(
    sku: str,
    quantity: int,
    delivery: Delivery | None = None,
    *,
    more: tuple[tuple[str, int], ...] = (),
    reservation_key: str | None = None,
    customer_ref: str | None = None,
    ship_complete: bool = False,
) -> OrderDraft:
    """A draft shipped to Berlin: one line, and a line for each of ``more``."""
    lines = [(sku, quantity), *more]
    return OrderDraft(
        channel="web",
        currency="EUR",
        delivery=delivery or Delivery.ship(HOME),
        lines=[LineDraft(s, n, Money("10.00", "EUR")) for s, n in lines],
        reservation_key=reservation_key,
        customer_ref=customer_ref,
        ship_complete=ship_complete,
    )


#: The customers the reference-model machine places orders for (and orders without one).
CUSTOMERS = ("C-1", "C-2")
PRICE = Money("10.00", "EUR")
POTSDAM = Address(country="DE", postal_code="14467", city="Potsdam", geo=GeoPoint(52.40, 13.06))


class StoreContract:
    """Behaviour every store must show. Override :meth:`make_store`."""

    def make_store(self, tmp_path: Path) -> Store:
        """A new, empty store (``tmp_path`` is a fresh directory for files)."""
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        """The store under test."""
        return self.make_store(tmp_path)

    @pytest.fixture
    def oms(self, store: Store) -> OMS:
        """An OMS on the store with a manual clock, sequential ids and a fake gateway."""
        system = OMS(
            store, clock=ManualClock(T0), ids=SequentialIds(), payments=FakePaymentGateway()
        )
        system.add_location(sample_location("WH-1"))
        return system

    # --- units of work ----------------------------------------------------------------------

    def test_a_commit_makes_changes_visible(self, store: Store) -> None:
        """What one unit of work commits, the next one reads."""
        with store.unit_of_work() as uow:
            uow.orders.put(sample_order())
            uow.commit()
        with store.unit_of_work(write=False) as uow:
            assert uow.orders.get(OrderId("O-1")) == sample_order()

    def test_an_uncommitted_unit_of_work_writes_nothing(self, store: Store) -> None:
        """Leaving without commit discards aggregates and events."""
        with store.unit_of_work() as uow:
            uow.orders.put(sample_order())
            uow.record([OrderHeld(order_id=OrderId("O-1"), version=2, at=T0, kind="x", reason="")])
        with store.unit_of_work(write=False) as uow:
            assert uow.orders.get(OrderId("O-1")) is None
        assert store.outbox() == []

    def test_an_exception_rolls_everything_back(self, store: Store) -> None:
        """Aggregates, ledger rows and idempotency records go together or not at all."""

        def failing() -> None:
            with store.unit_of_work() as uow:
                uow.orders.put(sample_order())
                uow.inventory.append_movements([_movement()])
                uow.idempotency.put(IdempotencyRecord("k", "f", None, T0))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            failing()
        with store.unit_of_work(write=False) as uow:
            assert uow.orders.get(OrderId("O-1")) is None
            assert uow.inventory.movements() == []
            assert uow.idempotency.get("k") is None

    #: False for stores whose write units of work lock (SQLite's ``BEGIN IMMEDIATE``): a
    #: second unit of work cannot commit while the first is open, so no stale read arises.
    #: The kit then checks that claim (a second writer waits) instead of stale writes.
    interleaved_units_of_work: bool = True

    def test_a_stale_write_raises_concurrency_conflict(self, store: Store) -> None:
        """Two units of work read one version; the one committing second loses, and
        nothing of it lands."""
        if not self.interleaved_units_of_work:
            pytest.skip("this store serialises write units of work; no stale read can arise")
        with store.unit_of_work() as uow:
            uow.orders.put(sample_order())
            uow.commit()
        first, second = store.unit_of_work(), store.unit_of_work()
        a, b = first.orders.get(OrderId("O-1")), second.orders.get(OrderId("O-1"))
        assert a is not None
        assert b is not None
        first.orders.put(a.hold("manual", "x", T0)[0])
        first.commit()
        second.orders.put(b.hold("fraud", "y", T0)[0])
        second.orders.put(sample_order("O-2"))
        with pytest.raises(ConcurrencyConflict):
            second.commit()
        with store.unit_of_work(write=False) as uow:
            stored = uow.orders.get(OrderId("O-1"))
            assert stored is not None
            assert [h.kind for h in stored.holds] == ["manual"]
            assert uow.orders.get(OrderId("O-2")) is None

    def test_a_second_writer_waits_and_reads_what_the_first_committed(self, store: Store) -> None:
        """A store that says it serialises write units of work
        (``interleaved_units_of_work = False``) must: a second one, begun on another
        thread while the first is open after a read, waits until the first ends, then
        reads what it committed, so neither update is lost. (A store that interleaves them
        is held to the stale-write test instead.)"""
        if self.interleaved_units_of_work:
            pytest.skip("this store interleaves write units of work; a stale write conflicts")
        with store.unit_of_work() as uow:
            uow.orders.put(sample_order())
            uow.commit()
        read_second: list[Order] = []
        errors: list[BaseException] = []

        def second() -> None:
            try:
                with store.unit_of_work() as uow:
                    order = uow.orders.get(OrderId("O-1"))
                    assert order is not None
                    read_second.append(order)
                    uow.orders.put(order.hold("fraud", "y", T0)[0])
                    uow.commit()
            except BaseException as error:  # surfaced below, never swallowed
                errors.append(error)

        thread = threading.Thread(target=second)
        with store.unit_of_work() as first:
            order = first.orders.get(OrderId("O-1"))
            assert order is not None
            thread.start()
            thread.join(timeout=0.3)
            assert thread.is_alive(), "the second unit of work went on while the first was open"
            first.orders.put(order.hold("manual", "x", T0)[0])
            first.commit()
        thread.join()
        assert errors == []
        assert [h.kind for h in read_second[0].holds] == ["manual"]
        with store.unit_of_work(write=False) as uow:
            stored = uow.orders.get(OrderId("O-1"))
            assert stored is not None
            assert [h.kind for h in stored.holds] == ["manual", "fraud"]

    def test_writing_over_an_aggregate_not_read_is_a_conflict(self, store: Store) -> None:
        """A unit of work may only overwrite what it read: a blind write loses."""
        with store.unit_of_work() as uow:
            uow.orders.put(sample_order())
            uow.commit()
        with store.unit_of_work() as uow:
            uow.orders.put(sample_order().hold("manual", "x", T0)[0])
            with pytest.raises(ConcurrencyConflict):
                uow.commit()
        with store.unit_of_work(write=False) as uow:
            assert uow.orders.get(OrderId("O-1")) == sample_order()

    def test_creating_an_existing_id_is_a_conflict(self, store: Store) -> None:
        """Two units of work creating the same aggregate: the second loses."""
        with store.unit_of_work() as uow:
            uow.orders.put(sample_order())
            uow.commit()
        with store.unit_of_work() as uow:
            uow.orders.put(sample_order())
            with pytest.raises(ConcurrencyConflict):
                uow.commit()

    # --- idempotency ------------------------------------------------------------------------

    def test_idempotency_records_keep_their_results(self, store: Store) -> None:
        """Results of every kind come back equal: lists too (``extend_reservation``
        returns one), empty or not."""
        results: dict[str, object] = {
            "none": None,
            "int": 3,
            "order": sample_order(),
            "money": Money("1.50", "EUR"),
            "list": [Money("1.50", "EUR"), Money("2.00", "EUR")],
            "empty list": [],
        }
        with store.unit_of_work() as uow:
            for key, result in results.items():
                uow.idempotency.put(IdempotencyRecord(key, f"f-{key}", result, T0))
            uow.commit()
        with store.unit_of_work(write=False) as uow:
            for key, result in results.items():
                record = uow.idempotency.get(key)
                assert record is not None
                assert (record.fingerprint, record.result) == (f"f-{key}", result)

    def test_a_repeated_command_key_changes_nothing(self, oms: OMS) -> None:
        """Through the service: the same key returns the first result, one event."""
        oms.receive("WH-1", "A", 5)
        first = oms.place_order(order_draft("A", 1), idempotency_key="checkout-1")
        again = oms.place_order(order_draft("A", 1), idempotency_key="checkout-1")
        assert again == first
        assert len([e for e in oms.events() if isinstance(e, OrderPlaced)]) == 1

    # --- the outbox -------------------------------------------------------------------------

    def test_the_outbox_keeps_commit_order(self, store: Store) -> None:
        """Positions rise with commits; events of one commit stay in recorded order."""
        for batch in (["a", "b"], ["c"]):
            with store.unit_of_work() as uow:
                uow.record(
                    [
                        OrderHeld(order_id=OrderId("O"), version=1, at=T0, kind=k, reason="")
                        for k in batch
                    ]
                )
                uow.commit()
        records = store.outbox()
        assert [r.event.kind for r in records] == ["a", "b", "c"]  # type: ignore[attr-defined]
        positions = [r.position for r in records]
        assert positions == sorted(positions)
        assert len({r.event_id for r in records}) == 3

    def test_each_commit_appears_once(self, oms: OMS) -> None:
        """A command's events are in the outbox exactly once."""
        oms.receive("WH-1", "A", 5)
        order = oms.place_order(order_draft("A", 2))
        oms.hold(order.id, "manual", reason="check")
        held = [e for e in oms.events() if isinstance(e, OrderHeld)]
        assert len(held) == 1

    def test_the_relay_marks_events_published(self, oms: OMS) -> None:
        """unpublished() shrinks as mark_published() moves on; outbox() keeps everything."""
        oms.receive("WH-1", "A", 5)
        records = oms.store.unpublished()
        assert records
        oms.store.mark_published(records[0].position)
        assert [r.position for r in oms.store.unpublished()] == [r.position for r in records[1:]]
        assert len(oms.store.outbox()) == len(records)

    def test_the_relay_mark_moves_forward_to_committed_events_only(self, oms: OMS) -> None:
        """Marking past the last event publishes the events there are, not those committed
        later; marking an earlier position again unpublishes nothing; pages follow on."""
        oms.receive("WH-1", "A", 5)
        oms.store.mark_published(10**9)
        assert oms.store.unpublished() == []
        oms.receive("WH-1", "B", 5)
        oms.receive("WH-1", "C", 5)
        later = oms.store.unpublished()
        assert len(later) == 2
        oms.store.mark_published(1)
        assert oms.store.unpublished() == later
        assert oms.store.unpublished(limit=1) == later[:1]
        oms.store.mark_published(later[0].position)
        assert oms.store.unpublished() == later[1:]

    def test_pruning_deletes_published_events_older_than_the_cutoff(self, oms: OMS) -> None:
        """Oldest first, up to the first event at or after the cutoff, and never past the
        relay's mark; the events kept keep their positions and later ones follow on; an
        empty outbox prunes nothing."""
        clock = oms.clock
        assert isinstance(clock, ManualClock)
        positions: list[list[int]] = []
        for sku in ("A", "B", "C"):  # the location's events are in the first hour's
            before = len(oms.store.outbox()) if positions else 0
            oms.receive("WH-1", sku, 5)
            positions.append([r.position for r in oms.store.outbox()[before:]])
            clock.advance(timedelta(hours=1))
        oms.store.mark_published(positions[1][-1])
        assert oms.store.prune_outbox(T0) == 0
        assert oms.store.prune_outbox(T0 + timedelta(hours=1)) == len(positions[0])
        assert oms.store.outbox()[0].position == positions[1][0]
        kept = oms.store.outbox()
        assert oms.store.prune_outbox(T0 + timedelta(days=1)) == len(positions[1])
        assert oms.store.outbox() == kept[len(positions[1]) :]
        assert [r.position for r in oms.store.unpublished()] == positions[2]
        assert oms.store.outbox(after=0, limit=1) == kept[len(positions[1]) :][:1]
        oms.store.mark_published(10**9)
        assert oms.store.prune_outbox(T0 + timedelta(days=1)) == len(positions[2])
        assert oms.store.outbox() == []
        assert oms.store.prune_outbox(T0 + timedelta(days=1)) == 0  # an empty outbox
        oms.receive("WH-1", "D", 5)
        assert oms.store.outbox()[0].position == positions[2][-1] + 1

    def test_an_orders_events_are_found_by_its_id(self, oms: OMS) -> None:
        """``order_events`` gives the events naming the order, its returns' included, in
        commit order, as the outbox has them: nothing of another order, nothing of the
        stock; an order with no events left (pruned) gives none."""
        oms.receive("WH-1", "A", 5)
        first = oms.place_order(order_draft("A", 2))
        second = oms.place_order(order_draft("A", 1), allocate=True)
        oms.allocate(first.id)
        oms.cancel(first.id, reason="changed my mind")
        for f in oms.get_order(second.id).fulfillments:
            oms.ship(f.id, tracking="T-1")
            oms.deliver(f.id)
        line = oms.get_order(second.id).lines[0].id
        oms.request_return(second.id, {line: 1})
        everything = oms.store.outbox()
        for order in (first, second):
            named = [r for r in everything if getattr(r.event, "order_id", None) == order.id]
            assert oms.store.order_events(order.id) == named
            assert oms.order_history(order.id) == [r.event for r in named]
        assert any(isinstance(r.event, ReturnEvent) for r in oms.store.order_events(second.id))
        assert oms.store.order_events("O-404") == []
        oms.store.mark_published(10**9)
        oms.store.prune_outbox(T0 + timedelta(days=365))
        assert oms.store.order_events(first.id) == []
        with pytest.raises(InvalidQuery):
            oms.store.order_events("")

    def test_relay_arguments_that_mean_nothing_are_refused(self, oms: OMS) -> None:
        """A position below 0, a limit below 1, anything but an int for either, a cutoff
        that is not an aware datetime: each is an InvalidQuery, and nothing changes (a
        negative limit must not quietly drop the newest event, nor mean "no limit")."""
        oms.receive("WH-1", "A", 5)
        oms.place_order(order_draft("A", 1), idempotency_key="kept")
        store = oms.store
        store.mark_published(1)
        before = (store.outbox(), store.unpublished())
        naive = datetime(2030, 1, 1)
        refused: list[Callable[[], object]] = [
            lambda: store.outbox(after=-1),
            lambda: store.outbox(after=True),
            lambda: store.outbox(after=1.5),  # type: ignore[arg-type]
            lambda: store.outbox(after="2"),  # type: ignore[arg-type]
            lambda: store.outbox(limit=0),
            lambda: store.outbox(limit=-1),
            lambda: store.outbox(limit=2.0),  # type: ignore[arg-type]
            lambda: store.unpublished(limit=0),
            lambda: store.unpublished(limit=-1),
            lambda: store.unpublished(limit=True),
            lambda: store.mark_published(-1),
            lambda: store.mark_published(10**9 + 0.5),  # type: ignore[arg-type]
            lambda: store.mark_published(None),  # type: ignore[arg-type]
            lambda: store.prune_outbox(naive),
            lambda: store.prune_outbox(T0.date()),  # type: ignore[arg-type]
            lambda: store.prune_idempotency(naive),
            lambda: store.prune_idempotency(0),  # type: ignore[arg-type]
        ]
        for number, call in enumerate(refused):
            with pytest.raises(InvalidQuery):
                call()
            assert (store.outbox(), store.unpublished()) == before, f"call {number} changed it"
        assert oms.place_order(order_draft("A", 1), idempotency_key="kept").id == "O-1"

    def test_forgotten_idempotency_keys_run_again(self, oms: OMS) -> None:
        """Records older than the cutoff are forgotten; younger ones still answer."""
        clock = oms.clock
        assert isinstance(clock, ManualClock)
        oms.receive("WH-1", "A", 5)
        first = oms.place_order(order_draft("A", 1), idempotency_key="old")
        clock.advance(timedelta(hours=2))
        kept = oms.place_order(order_draft("A", 1), idempotency_key="young")
        assert oms.store.prune_idempotency(T0 + timedelta(hours=1)) == 1
        assert oms.place_order(order_draft("A", 1), idempotency_key="young") == kept
        again = oms.place_order(order_draft("A", 1), idempotency_key="old")
        assert again.id != first.id
        assert oms.prune(keep_keys=timedelta(0)).idempotency_keys == 0  # made just now
        clock.advance(timedelta(seconds=1))
        assert oms.prune(keep_keys=timedelta(0)) == Pruned(events=0, idempotency_keys=2)

    # --- repositories -----------------------------------------------------------------------

    def test_inventory_items_and_the_ledger_round_trip(self, store: Store) -> None:
        """An item with levels, holds and backorders; movements in order, filtered."""
        pool = ChannelPool(None, (LocationId("W1"),))
        item = InventoryItem(Sku("A")).receive(LocationId("W1"), 5, "po", T0).item
        item = item.reserve("cart", 2, pool, T0 + timedelta(minutes=5), T0).item
        item = item.hold_for_line(OrderId("O-1"), LineId("O-1-1"), 9, pool, T0).item
        moves = [_movement("A", "W1"), _movement("A", "W2"), _movement("B", "W1")]
        with store.unit_of_work() as uow:
            uow.inventory.put(item)
            uow.inventory.append_movements(moves)
            uow.commit()
        with store.unit_of_work(write=False) as uow:
            assert uow.inventory.get(Sku("A")) == item
            assert uow.inventory.movements() == moves
            assert uow.inventory.movements(Sku("A")) == moves[:2]
            assert uow.inventory.movements(location_id=LocationId("W1")) == [moves[0], moves[2]]
            assert uow.inventory.skus() == [Sku("A")]
            assert uow.inventory.ledger_totals() == replay(moves)
            assert uow.inventory.reserved_under("cart") == [Sku("A")]
            assert uow.inventory.expiring(T0 + timedelta(minutes=5)) == [Sku("A")]
            assert uow.inventory.expiring(T0 + timedelta(minutes=4)) == []

    def test_network_aggregates_round_trip(self, store: Store) -> None:
        """Locations (listed sorted), channels and capacity counters."""
        locations = [sample_location("WH-2", 2), sample_location("WH-1")]
        channel = Channel(
            id=ChannelId("web"),
            kinds=frozenset({LocationKind.STORE}),
            buffer=2,
            version=1,
            requires=frozenset({Capability.SHIP, Capability.SAME_DAY}),
        )
        load = LocationLoad(LocationId("WH-1"), T0.date(), 3, 1)
        with store.unit_of_work() as uow:
            for loc in locations:
                uow.locations.put(loc)
            uow.channels.put(channel)
            uow.loads.put(load)
            uow.commit()
        with store.unit_of_work(write=False) as uow:
            assert uow.locations.all() == sorted(locations, key=lambda x: x.id)
            assert uow.channels.all() == [channel]
            assert uow.loads.get(LocationId("WH-1")) == load

    def test_returns_round_trip(self, store: Store) -> None:
        """A return with dispositions and a refund."""
        rma = sample_return()
        with store.unit_of_work() as uow:
            uow.returns.put(rma)
            uow.commit()
        with store.unit_of_work(write=False) as uow:
            assert uow.returns.get(ReturnId("R-1")) == rma

    def test_a_later_write_replaces_the_earlier_one(self, store: Store) -> None:
        """Every repository keeps the latest committed version of an aggregate (a store
        whose upsert keeps the first row, as ``INSERT OR IGNORE`` does, fails here). Stored
        versions start at 1, as the service stores them: 0 means "never stored"."""
        day = T0.date()
        first = _first_versions()
        later = _Aggregates(
            attrs.evolve(first.order, customer_ref="C-9", version=first.order.version + 1),
            first.item.receive(LocationId("W1"), 3, "po-2", T0).item,
            attrs.evolve(first.location, priority=7, version=first.location.version + 1),
            attrs.evolve(first.channel, buffer=4, version=first.channel.version + 1),
            first.load.take(day, 1),
            attrs.evolve(first.rma, status=ReturnStatus.RECEIVED, version=first.rma.version + 1),
        )
        for aggregates in (first, later):
            with store.unit_of_work() as uow:
                assert _read_all(uow) != aggregates
                _put_all(uow, aggregates)
                uow.commit()
        with store.unit_of_work(write=False) as uow:
            assert _read_all(uow) == later

    def test_a_unit_of_work_reads_its_own_writes(self, store: Store) -> None:
        """What a unit of work has put it reads back before it commits, by ``get`` and in
        ``all()``: a command reads again what it changed a step earlier (placing and
        allocating in one command does). A store that reads committed rows only fails here."""
        written = _first_versions()
        with store.unit_of_work() as uow:
            _put_all(uow, written)
            uow.idempotency.put(IdempotencyRecord("key-1", "fingerprint", 3, T0))
            assert _read_all(uow) == written
            assert uow.locations.all() == [written.location]
            assert uow.channels.all() == [written.channel]
            record = uow.idempotency.get("key-1")
            assert record is not None
            assert (record.fingerprint, record.result) == ("fingerprint", 3)
            uow.commit()
        with store.unit_of_work(write=False) as uow:
            assert _read_all(uow) == written

    def test_fulfilment_queries(self, oms: OMS) -> None:
        """An order is found by its fulfilment id; ready pickups are queued at their store."""
        oms.add_location(sample_pickup_store("ST-1"))
        oms.receive("ST-1", "A", 3)
        order = oms.place_order(order_draft("A", 1, Delivery.pickup("ST-1")))
        oms.allocate(order.id)
        f = oms.get_order(order.id).fulfillments[0]
        oms.ready_for_pickup(f.id)
        ready = frozenset({FulfillmentStatus.READY_FOR_PICKUP})
        with oms.store.unit_of_work(write=False) as uow:
            assert uow.orders.by_fulfillment(FulfillmentId(f.id)) == order.id
            assert uow.orders.by_fulfillment(FulfillmentId("nope")) is None
            assert uow.orders.fulfillment_queue(ready) == [(order.id, f.id)]
            assert uow.orders.fulfillment_queue(ready, location_id=LocationId("ST-1")) == [
                (order.id, f.id)
            ]
            assert uow.orders.fulfillment_queue(ready, location_id=LocationId("WH-1")) == []
        oms.collect(f.id)
        with oms.store.unit_of_work(write=False) as uow:
            assert uow.orders.fulfillment_queue(ready) == []
            stored = uow.orders.get(order.id)
            assert stored is not None
            assert stored.fulfillments[0].status is FulfillmentStatus.COLLECTED

    def test_the_fulfilment_queue_is_longest_waiting_first(self, oms: OMS) -> None:
        """Queues order by the time a fulfilment order entered its status (ties by id),
        filter by status, location and wait (inclusive), and stop at the limit."""
        clock = cast(ManualClock, oms.clock)
        oms.add_location(sample_location("WH-2"))
        oms.receive("WH-1", "A", 5)
        oms.receive("WH-2", "B", 5)
        split = oms.place_order(order_draft("A", 1, more=(("B", 1),)))
        oms.allocate(split.id)  # two fulfilment orders created at the same moment
        clock.advance(timedelta(minutes=10))
        later = oms.place_order(order_draft("A", 1))
        oms.allocate(later.id)
        clock.advance(timedelta(minutes=10))
        by_id = sorted(oms.get_order(split.id).fulfillments, key=lambda f: f.id)
        (late,) = oms.get_order(later.id).fulfillments
        oms.accept_fulfillment(by_id[0].id)  # accepted now: it entered its status last
        opened = frozenset({FulfillmentStatus.OPEN})
        working = frozenset({FulfillmentStatus.OPEN, FulfillmentStatus.ACCEPTED})
        at = clock.now()
        with oms.store.unit_of_work(write=False) as uow:
            queue = uow.orders.fulfillment_queue
            assert queue(opened) == [(split.id, by_id[1].id), (later.id, late.id)]
            assert queue(working) == [
                (split.id, by_id[1].id),
                (later.id, late.id),
                (split.id, by_id[0].id),
            ]
            assert queue(working, limit=2) == queue(working)[:2]
            at_wh1 = next(f for f in by_id if f.location_id == "WH-1")
            at_wh2 = next(f for f in by_id if f.location_id == "WH-2")
            wh1, wh2 = LocationId("WH-1"), LocationId("WH-2")
            accepted_last = (split.id, at_wh1.id)
            assert queue(working, location_id=wh1) == [(later.id, late.id), accepted_last]
            assert queue(working, location_id=wh2) == [(split.id, at_wh2.id)]
            assert queue(working, waiting_since=at - timedelta(minutes=10)) == [
                (split.id, by_id[1].id),
                (later.id, late.id),  # entered its status exactly then: included
            ]
            assert queue(working, waiting_since=at - timedelta(minutes=11)) == [
                (split.id, by_id[1].id)
            ]
            assert queue(frozenset()) == []
        oms.ship(late.id, tracking="T-1")
        with oms.store.unit_of_work(write=False) as uow:
            assert (later.id, late.id) not in uow.orders.fulfillment_queue(working)
            assert uow.orders.fulfillment_queue(frozenset({FulfillmentStatus.SHIPPED})) == [
                (later.id, late.id)
            ]

    def test_the_order_queue_is_placed_earliest_first(self, oms: OMS) -> None:
        """Order queues list committed orders by status (ties by id, earliest placed
        first), filter by hold kind, channel and time placed (inclusive), and stop at the
        limit; a hold released or an order allocated leaves the queue."""
        clock = cast(ManualClock, oms.clock)
        oms.receive("WH-1", "A", 10)
        first = oms.place_order(order_draft("A", 1))
        second = oms.place_order(order_draft("A", 1))  # placed at the same moment
        clock.advance(timedelta(minutes=10))
        marketplace = attrs.evolve(order_draft("A", 1), channel="marketplace")
        third = oms.place_order(marketplace)
        oms.hold(third.id, "fraud", reason="score 91")
        oms.hold(third.id, "manual", reason="call the customer")
        clock.advance(timedelta(minutes=10))
        fourth = oms.place_order(order_draft("A", 1))
        oms.allocate(fourth.id)
        at = clock.now()
        opened = frozenset({OrderStatus.OPEN})
        waiting = frozenset({OrderStatus.OPEN, OrderStatus.ON_HOLD})
        ids = sorted([first.id, second.id])
        with oms.store.unit_of_work(write=False) as uow:
            queue = uow.orders.order_queue
            assert queue(opened) == ids
            assert queue(waiting) == [*ids, third.id]
            assert queue(waiting, limit=2) == ids
            assert queue(waiting, hold="fraud") == queue(waiting, hold="manual") == [third.id]
            assert queue(waiting, hold="payment") == []
            assert queue(waiting, channel=ChannelId("marketplace")) == [third.id]
            assert queue(waiting, placed_before=at - timedelta(minutes=10)) == [*ids, third.id]
            assert queue(waiting, placed_before=at - timedelta(minutes=11)) == ids
            assert queue(frozenset({OrderStatus.ALLOCATED})) == [fourth.id]
            assert queue(frozenset()) == []
        oms.release(third.id, "fraud")
        oms.allocate(first.id)
        with oms.store.unit_of_work(write=False) as uow:
            queue = uow.orders.order_queue
            assert queue(waiting) == [second.id, third.id]
            assert queue(waiting, hold="fraud") == []
            assert queue(waiting, hold="manual") == [third.id]
            assert queue(frozenset({OrderStatus.ALLOCATED})) == sorted([first.id, fourth.id])

    def test_a_customers_orders_are_listed_newest_first(self, oms: OMS) -> None:
        """A customer's orders, whatever their status: newest placed first, ties by order
        id descending; ``before`` a listed order gives those after it, and the limit
        stops the page. Orders without a customer, or another's, are not listed."""
        clock = cast(ManualClock, oms.clock)
        oms.receive("WH-1", "A", 10)
        first = oms.place_order(order_draft("A", 1, customer_ref="C-1"))
        tied = oms.place_order(order_draft("A", 1, customer_ref="C-1"))  # the same moment
        oms.place_order(order_draft("A", 1, customer_ref="C-2"))
        oms.place_order(order_draft("A", 1))
        clock.advance(timedelta(minutes=10))
        latest = oms.place_order(order_draft("A", 1, customer_ref="C-1"))
        oms.allocate(first.id)
        oms.cancel(latest.id)
        pair = sorted([first, tied], key=lambda o: o.id, reverse=True)
        newest_first = [latest.id, pair[0].id, pair[1].id]
        with oms.store.unit_of_work(write=False) as uow:
            listed = uow.orders.customer_orders
            assert listed("C-1") == newest_first
            assert listed("C-1", limit=2) == newest_first[:2]
            assert listed("C-1", before=(latest.placed_at, latest.id)) == newest_first[1:]
            assert listed("C-1", before=(pair[0].placed_at, pair[0].id)) == newest_first[2:]
            assert listed("C-1", before=(pair[1].placed_at, pair[1].id)) == []
            assert listed("C-3") == []
        assert [o.id for o in oms.customer_orders("C-1", before=latest.id, limit=1)] == [pair[0].id]
        assert oms.customer_orders("C-1")[0].status is OrderStatus.CANCELLED

    def test_a_fulfilment_order_keeps_the_day_its_location_s_cap_counted_it(self, oms: OMS) -> None:
        """``counted_on`` reads back as written, so taking the order back later gives back
        the count it took (and the books' capacity check holds)."""
        oms.update_location("WH-1", daily_capacity=5)
        oms.receive("WH-1", "A", 3)
        order = oms.place_order(order_draft("A", 1), allocate=True)
        with oms.store.unit_of_work(write=False) as uow:
            stored = uow.orders.get(order.id)
            load = uow.loads.get(LocationId("WH-1"))
        today = oms.clock.now().date()
        assert stored is not None
        assert load is not None
        assert (stored.fulfillments[0].counted_on, load.used_on(today)) == (today, 1)
        check_books(oms)

    def test_a_ship_to_store_parcel_is_handed_over_at_the_store(self, oms: OMS) -> None:
        """The store keeps where a parcel's units are: in transit at no location, after the
        handover at the pickup store; levels, status and handover read back as written."""
        oms.add_location(sample_pickup_store("ST-1"))
        oms.sourcing = LowestCostPolicy(allow_ship_to_store=True)
        oms.receive("WH-1", "A", 3)
        order = oms.place_order(order_draft("A", 2, Delivery.pickup("ST-1")))
        oms.allocate(order.id)
        parcel = oms.get_order(order.id).fulfillments[0]
        queued = [(order.id, parcel.id)]
        assert [(q.order_id, q.fulfillment.id) for q in oms.fulfillment_queue("WH-1")] == queued
        oms.send_to_store(parcel.id, tracking="T-1")
        assert oms.fulfillment_queue("WH-1") == []
        assert [(q.order_id, q.fulfillment.id) for q in oms.fulfillment_queue("ST-1")] == queued
        with oms.store.unit_of_work(write=False) as uow:
            moving = uow.orders.get(order.id)
            item = uow.inventory.get(Sku("A"))
        assert moving is not None
        assert item is not None
        sent = moving.fulfillments[0]
        assert (sent.status, sent.handover_location, sent.tracking) == (
            FulfillmentStatus.IN_TRANSIT,
            "ST-1",
            "T-1",
        )
        assert (item.level("WH-1").on_hand, item.level("WH-1").allocated) == (1, 0)
        assert (item.level("ST-1").on_hand, item.level("ST-1").allocated) == (0, 0)
        check_books(oms)
        oms.ready_for_pickup(parcel.id)
        with oms.store.unit_of_work(write=False) as uow:
            stored = uow.orders.get(order.id)
            item = uow.inventory.get(Sku("A"))
        assert stored is not None
        assert item is not None
        assert stored.fulfillments[0].handover_location == "ST-1"
        assert (item.level("ST-1").on_hand, item.level("ST-1").allocated) == (2, 2)
        assert (item.level("WH-1").on_hand, item.level("WH-1").allocated) == (1, 0)
        oms.collect(parcel.id)
        assert oms.stock("ST-1", "A").on_hand == 0
        check_books(oms)

    def test_reserved_and_backordered_skus_are_found(self, oms: OMS) -> None:
        """What a location closing or reopening looks up: the SKUs reserved there (for an
        order or a cart) and the SKUs with backorders."""
        oms.add_location(sample_location("WH-2", 2))
        for sku in ("A", "C", "D"):
            oms.receive("WH-1", sku, 5)
        oms.receive("WH-2", "E", 5)
        oms.place_order(order_draft("A", 1))
        oms.reserve("C", 1, ttl=timedelta(minutes=5), key="cart")
        oms.place_order(order_draft("B", 2))  # no stock anywhere: backordered
        oms.place_order(order_draft("E", 1))  # held at WH-2
        with oms.store.unit_of_work(write=False) as uow:
            assert uow.inventory.reserved_at(LocationId("WH-1")) == ["A", "C"]
            assert uow.inventory.reserved_at(LocationId("WH-2")) == ["E"]
            assert uow.inventory.backordered() == ["B"]
        oms.receive("WH-2", "B", 5)  # serves the backorder
        with oms.store.unit_of_work(write=False) as uow:
            assert uow.inventory.backordered() == []
            assert uow.inventory.reserved_at(LocationId("WH-2")) == ["B", "E"]

    def test_skus_with_supply_due_are_found_by_the_earliest_eta(self, oms: OMS) -> None:
        """What a buyer chasing purchase orders looks up: the SKUs with supply due by a
        date; a receipt that settles a SKU's earliest supply, a new date or a cancellation
        moves the SKU."""
        oms.add_location(sample_location("WH-2", 2))
        now = oms.clock.now()
        day = timedelta(days=1)
        oms.add_supply("A", "WH-1", 5, now + 3 * day, "PO-1")
        oms.add_supply("A", "WH-2", 5, now + day, "PO-2")
        oms.add_supply("B", "WH-1", 5, now + 2 * day, "PO-3")
        oms.receive("WH-1", "C", 5)  # stock without supply is never due
        oms.receive("WH-1", "D", 5)
        transfer = oms.transfer("D", "WH-1", "WH-2", 5, eta=now + 3 * day)

        def due(by: datetime | None) -> list[Sku]:
            with oms.store.unit_of_work(write=False) as uow:
                return uow.inventory.supply_due(by)

        assert [due(now), due(now + day), due(now + 2 * day)] == [[], ["A"], ["A", "B"]]
        assert due(None) == ["A", "B", "D"]
        oms.receive("WH-2", "A", 5, reference="PO-2")  # settles A's earliest supply
        assert [due(now + 2 * day), due(now + 3 * day)] == [["B"], ["A", "B", "D"]]
        oms.update_supply("B", "WH-1", "PO-3", eta=now + 4 * day)
        oms.cancel_supply("A", "WH-1", "PO-1")
        oms.reschedule_transfer("D", transfer.id, now + 5 * day)
        assert [due(now + 3 * day), due(now + 4 * day), due(None)] == [[], ["B"], ["B", "D"]]
        oms.receive_transfer("D", transfer.id)
        assert due(None) == ["B"]

    def test_reservations_expire_by_the_clock(self, oms: OMS) -> None:
        """A reservation holds stock until its time is up, then expiry frees it."""
        oms.receive("WH-1", "A", 5)
        oms.reserve("A", 3, ttl=timedelta(minutes=10), key="cart")
        assert oms.available("A") == 2
        clock = oms.clock
        assert isinstance(clock, ManualClock)
        clock.advance(timedelta(minutes=10))
        assert oms.expire_reservations() == 1
        assert oms.available("A") == 5

    def test_a_shorter_reservation_beside_a_longer_one_expires_on_its_own_time(
        self, oms: OMS
    ) -> None:
        """A store that indexes each SKU's earliest expiry must lower it when a cart with a
        shorter time to live joins: else expiry finds the SKU only when the first carts'
        time is up. Forty carts make a busy SKU, whose holds are indexed as they change."""
        oms.receive("WH-1", "A", 100)
        for n in range(40):
            oms.reserve("A", 1, ttl=timedelta(hours=2), key=f"slow-{n}")
        oms.reserve("A", 2, ttl=timedelta(minutes=10), key="quick")
        clock = oms.clock
        assert isinstance(clock, ManualClock)
        clock.advance(timedelta(minutes=10))
        assert oms.expire_reservations() == 1
        assert oms.available("A") == 60
        assert len(oms.reservations("slow-0")) == 1

    # --- concurrency ------------------------------------------------------------------------

    def test_threads_never_oversell(self, oms: OMS) -> None:
        """Eight threads order a hot SKU with stock for half of them: exactly the stock is
        allocated, the rest waits as backorders, and the books agree."""
        oms.receive("WH-1", "HOT", 20)
        oms.max_attempts = 200
        errors: list[BaseException] = []

        def buyer() -> None:
            try:
                for _ in range(5):
                    order = oms.place_order(order_draft("HOT", 1))
                    oms.allocate(order.id)
            except BaseException as error:  # surfaced below, never swallowed
                errors.append(error)

        threads = [threading.Thread(target=buyer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        level = oms.stock("WH-1", "HOT")
        assert level.allocated == 20
        assert level.reserved == 0
        assert sum(b.quantity for b in oms.inventory("HOT").backorders) == 20
        check_books(oms)

    def test_concurrent_commands_lose_no_update(self, oms: OMS) -> None:
        """Eight threads each put a hold of their own kind on one order: all stand."""
        order = oms.place_order(order_draft("A", 1))
        oms.max_attempts = 200
        threads = [
            threading.Thread(target=oms.hold, args=(order.id, f"kind-{i}")) for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        kinds = sorted(h.kind for h in oms.get_order(order.id).holds)
        assert kinds == sorted(f"kind-{i}" for i in range(8))

    def test_threads_running_every_command_keep_the_books_and_the_money(self, oms: OMS) -> None:
        """Four threads each run a seeded mix of commands on their own orders and on shared
        stock (placing, sourcing, holds, cancels, shipping, delivery, returns and refunds,
        receipts): whatever the interleaving and the retries it causes, no command fails
        but for a rule of the domain, the books balance, and the gateway holds exactly the
        money each order says it captured and refunded, on the authorisations it records
        (edits add some, retried commands none)."""
        oms.max_attempts = 500
        for sku in ("A", "B"):
            oms.receive("WH-1", sku, 80)
        errors: list[BaseException] = []
        placed: list[list[str]] = [[] for _ in range(4)]
        done: Counter[str] = Counter()

        def trader(seed: int) -> None:
            rng = random.Random(seed)
            try:
                for _ in range(60):
                    try:
                        done[run_a_command(oms, rng, placed[seed])] += 1
                    except (ConcurrencyConflict, StoreError):
                        raise  # the retries ran out, or the store failed
                    except OmsError:
                        done["refused"] += 1  # by a rule of the domain: nothing changed
            except BaseException as error:  # surfaced below, never swallowed
                errors.append(error)

        threads = [threading.Thread(target=trader, args=(seed,)) for seed in range(4)]
        with threads_switching_every(1e-5):  # interleave the threads' commands closely
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert errors == []
        assert all(done[step] for step in ("place", "fulfil", "return", "cancel", "edit")), done
        check_books(oms)
        gateway = cast(FakePaymentGateway, oms.payments)
        for order_id in (o for mine in placed for o in mine):
            order = oms.get_order(order_id)
            assert order.refunded <= order.captured <= order.authorized
            assert order.payment_reference is not None
            assert_gateway_holds_the_ledger(gateway, order)
            made = [a.reference for a in gateway.authorizations.values() if a.order_id == order_id]
            assert made == [b.reference for b in order.authorizations], (order_id, made)

    def test_a_reconcile_next_to_a_writing_thread_finds_nothing(self, oms: OMS) -> None:
        """``reconcile()`` compares each level with the ledger of the same moment: run
        over and over while another thread places and sources orders, it never reports a
        difference that a commit landing between its reads would make."""
        for sku in ("A", "B", "C"):
            oms.receive("WH-1", sku, 1_000)
        reports: list[list[Discrepancy]] = []
        done = threading.Event()

        def auditor() -> None:
            while not done.is_set():
                reports.append(oms.reconcile())

        with threads_switching_every(1e-5), alongside(auditor, done):
            for n in range(150):
                oms.place_order(order_draft("ABC"[n % 3], 1), allocate=True)
        assert reports
        assert [found for found in reports if found] == []

    def test_queries_run_while_another_thread_commits(self, oms: OMS) -> None:
        """A reader walks every queue and index while a writer places, allocates, holds,
        reserves and adds locations: no query fails, and a location is listed as soon as
        its command returns (a list cached while it was being added would hide it)."""
        oms.receive("WH-1", "A", 10_000)
        errors: list[BaseException] = []
        hidden: list[str] = []
        done = threading.Event()

        def reader() -> None:
            try:
                while not done.is_set():
                    walk_the_store(oms)
            except BaseException as error:  # surfaced below, never swallowed
                errors.append(error)

        def writer() -> None:
            for n in range(150):
                order = oms.place_order(order_draft("A", 1))
                if n % 3:
                    oms.allocate(order.id)
                else:
                    oms.hold(order.id, "fraud")
                oms.reserve("A", 1, ttl=timedelta(minutes=n + 1), key=f"cart-{n}")
                location = sample_location(f"WH-N{n:02d}")
                oms.add_location(location)
                if location.id not in {x.id for x in oms.locations()}:
                    hidden.append(location.id)

        with threads_switching_every(1e-6), alongside(reader, done):
            writer()
        assert errors == []
        assert hidden == []
        assert len(oms.locations()) == 151
        assert len(oms.order_queue(hold="fraud")) == 50
        check_books(oms)


def run_a_command(oms: OMS, rng: random.Random, placed: list[str]) -> str:
    """Run one command drawn by ``rng`` and name it ("nothing" if there was nothing to do):
    a new order (``placed`` keeps its id), a receipt, or a step on one of ``placed``. A
    command the domain refuses raises its OmsError."""
    roll = rng.random()
    if roll < 0.25 or not placed:
        sku = rng.choice(["A", "B"])
        order = oms.place_order(order_draft(sku, rng.randint(1, 3)), allocate=rng.random() < 0.8)
        placed.append(order.id)
        return "place"
    if roll < 0.3:
        oms.receive("WH-1", rng.choice(["A", "B"]), 5)
        return "receive"
    steps = sorted(ORDER_STEPS)
    (step,) = rng.choices(steps, weights=[ORDER_STEPS[name][1] for name in steps])
    done = ORDER_STEPS[step][0](oms, rng, oms.get_order(rng.choice(placed)))
    return step if done else "nothing"


def _allocate(oms: OMS, rng: random.Random, order: Order) -> bool:
    oms.allocate(order.id)
    return True


def _cancel(oms: OMS, rng: random.Random, order: Order) -> bool:
    """Cancel all of the order, or all of one of its active fulfilment orders."""
    active = [f.id for f in order.fulfillments if f.is_active]
    chosen = rng.choice(active) if active and rng.random() < 0.5 else None
    oms.cancel(order.id, reason="changed my mind", fulfillment_id=chosen)
    return True


def _hold_or_release(oms: OMS, rng: random.Random, order: Order) -> bool:
    if order.holds:
        oms.release(order.id, order.holds[0].kind)
    else:
        oms.hold(order.id, "fraud", reason="score 91")
    return True


def _ship_or_deliver(oms: OMS, rng: random.Random, order: Order) -> bool:
    """Ship one of the order's parcels still at the warehouse, or deliver a shipped one."""
    for f in order.fulfillments:
        if f.is_active:
            oms.ship(f.id, tracking="T-1")
            return True
        if f.status is FulfillmentStatus.SHIPPED:
            oms.deliver(f.id)
            return True
    if order.open_units and not order.holds:  # nothing to fulfil yet: source what is open
        oms.allocate(order.id)
        return True
    return False


def _return_and_refund(oms: OMS, rng: random.Random, order: Order) -> bool:
    """Every returnable unit of the order's first returnable line, back and refunded."""
    returnable = oms.returnable(order.id)
    if not returnable:
        return False
    line_id, units = next(iter(returnable.items()))
    rma = oms.request_return(order.id, {line_id: units})
    oms.approve_return(rma.id)
    oms.receive_return(rma.id, "WH-1", {line_id: {Disposition.RESTOCK: units}})
    oms.refund_return(rma.id)
    return True


def _add_a_line(oms: OMS, rng: random.Random, order: Order) -> bool:
    """The customer adds a unit (refused once the order is sourced): an authorised order
    is authorised again for it, inside a command that may be retried."""
    oms.add_line(order.id, LineDraft(rng.choice(["A", "B"]), 1, Money("10.00", "EUR")))
    return True


def _goodwill(oms: OMS, rng: random.Random, order: Order) -> bool:
    oms.refund_order(order.id, Money("1.00", "EUR"), "parcel late")
    return True


#: The steps :func:`run_a_command` takes on an order, with how often: each says whether it
#: did anything.
ORDER_STEPS: dict[str, tuple[Callable[[OMS, random.Random, Order], bool], int]] = {
    "allocate": (_allocate, 2),
    "cancel": (_cancel, 1),
    "hold": (_hold_or_release, 1),
    "fulfil": (_ship_or_deliver, 6),
    "return": (_return_and_refund, 2),
    "goodwill": (_goodwill, 1),
    "edit": (_add_a_line, 1),
}


@contextlib.contextmanager
def threads_switching_every(seconds: float) -> Iterator[None]:
    """Let the interpreter switch threads every ``seconds`` (mid-read included) inside the
    block, and as before after it."""
    switching = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(switching)


@contextlib.contextmanager
def alongside(target: Callable[[], None], done: threading.Event) -> Iterator[None]:
    """Run ``target`` on a thread while the block runs; then set ``done`` (which
    ``target`` watches to stop) and wait for it."""
    thread = threading.Thread(target=target)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def walk_the_store(oms: OMS) -> None:
    """Every query that walks a store's tables or indexes, once."""
    oms.locations()
    oms.fulfillment_queue("WH-1")
    oms.order_queue()
    oms.events()
    with oms.store.unit_of_work(write=False) as uow:
        uow.inventory.skus()
        uow.inventory.expiring(oms.clock.now() + timedelta(days=1))
        uow.inventory.reserved_under("cart-1")
        uow.inventory.reserved_at(LocationId("WH-1"))
        uow.inventory.backordered()
        uow.inventory.supply_due(None)
        uow.inventory.movements(Sku("A"))
        uow.inventory.ledger_totals()
        uow.channels.all()


class ProcessContract:
    """Several processes sharing one store. Override :meth:`store_opener`."""

    def store_opener(self, tmp_path: Path) -> Callable[[], Store]:
        """A picklable zero-argument callable opening the shared store (e.g.
        ``functools.partial(SqliteStore, str(tmp_path / "shop.db"))``)."""
        raise NotImplementedError

    def test_processes_never_oversell(self, tmp_path: Path) -> None:
        """Four processes place and allocate orders for one hot SKU: zero oversell, stock
        conserved, every accepted order allocated exactly once."""
        opener = self.store_opener(tmp_path)
        setup = OMS(opener(), ids=SequentialIds())
        setup.add_location(sample_location("WH-1"))
        setup.receive("WH-1", "HOT", 30)
        context = multiprocessing.get_context("spawn")
        with context.Pool(4) as pool:
            outcomes = pool.starmap(buy_in_process, [(opener, f"P{i}", 12) for i in range(4)])
        placed = [order_id for ids in outcomes for order_id in ids]
        oms = OMS(opener())
        assert len(placed) == 48
        allocated = sum(oms.get_order(o).lines[0].allocated for o in placed)
        assert allocated == 30
        level = oms.stock("WH-1", "HOT")
        assert (level.on_hand, level.allocated) == (30, 30)
        for order_id in placed:
            assert len(oms.get_order(order_id).fulfillments) <= 1
        check_books(oms)

    def test_what_another_process_wrote_is_what_the_next_unit_of_work_reads(
        self, tmp_path: Path
    ) -> None:
        """A process may keep what it read (the network, decoded orders) but never past
        another's write: a location added there, a channel configured there and an order
        held there are what this process reads next."""
        opener = self.store_opener(tmp_path)
        here, there = OMS(opener(), ids=SequentialIds()), OMS(opener(), ids=UuidIds())
        here.add_location(sample_location("WH-1"))
        order = here.place_order(order_draft("A", 1))
        assert [x.id for x in here.locations()] == ["WH-1"]
        assert here.channel_pool("web") == ("WH-1",)
        assert not here.get_order(order.id).holds
        there.add_location(sample_location("WH-2"))
        there.configure_channel("web", location_ids=["WH-2"])
        there.hold(order.id, "fraud")
        assert [x.id for x in here.locations()] == ["WH-1", "WH-2"]
        assert here.channel_pool("web") == ("WH-2",)
        assert here.get_order(order.id).has_hold("fraud")


def buy_in_process(opener: Callable[[], Store], prefix: str, count: int) -> list[str]:
    """Run in a child process: place and allocate ``count`` one-unit orders of HOT."""
    oms = OMS(opener(), ids=UuidIds(), max_attempts=500)
    placed: list[str] = []
    for _ in range(count):
        order = oms.place_order(order_draft("HOT", 1))
        oms.allocate(order.id)
        placed.append(order.id)
    return placed


class ReferenceModelContract:
    """A state machine drives the store next to the in-memory reference store and a plain
    tally; both must agree after every step. Override :meth:`make_store`."""

    def make_store(self, tmp_path: Path) -> Store:
        """A new, empty store."""
        raise NotImplementedError

    def test_agrees_with_the_reference_model(self, tmp_path: Path) -> None:
        """Random commands give the same stock, orders, returns and events on both stores."""
        counter = iter(range(1_000_000))

        def fresh() -> Store:
            directory = tmp_path / f"run-{next(counter)}"
            directory.mkdir()
            return self.make_store(directory)

        machine = twin_machine(fresh)
        run_state_machine_as_test(
            machine, settings=settings(settings.default, stateful_step_count=30)
        )


def _next_step(f: FulfillmentOrder, reject: bool, pickup_store: str = "ST-1") -> str:
    """The command that moves ``f`` on (or rejects it, where that is still possible); a
    parcel for the pickup store is sent there before it is readied."""
    on_its_way = (FulfillmentStatus.SHIPPED, FulfillmentStatus.IN_TRANSIT)
    if reject and f.status not in on_its_way:
        return "reject_fulfillment"
    if f.method is DeliveryMethod.PICKUP:
        if f.status is FulfillmentStatus.READY_FOR_PICKUP:
            return "collect"
        parcel = f.location_id != pickup_store
        return "send_to_store" if parcel and not f.in_transit else "ready_for_pickup"
    return "deliver" if f.status is FulfillmentStatus.SHIPPED else "ship"


def assert_gateway_holds_the_ledger(gateway: FakePaymentGateway, order: Order) -> None:
    """Each of the order's authorisations, as its payment ledger counts it, is at the
    gateway with the same amounts authorised, captured, refunded and voided."""
    for balance in order.authorizations:
        assert balance.reference is not None, order.payments
        paid = gateway.authorizations[balance.reference]
        seen = (paid.amount, paid.captured, paid.refunded, paid.voided)
        kept = (balance.authorized, balance.captured, balance.refunded, balance.voided)
        assert seen == kept, (order.id, balance.reference, seen, kept)


def twin_machine(make_store: Callable[[], Store]) -> type[RuleBasedStateMachine]:
    """A state machine class comparing a store with the reference, step by step."""

    class Twins(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.clock = ManualClock(T0)
            self.systems = [
                OMS(
                    store,
                    clock=self.clock,
                    ids=SequentialIds(),
                    payments=FakePaymentGateway(),
                    sourcing=LowestCostPolicy(allow_ship_to_store=True),  # handovers too
                    record_sourcing=True,  # the decisions' traces go through the store too
                )
                for store in (MemoryStore(), make_store())
            ]
            self.received = {"A": 0, "B": 0}
            self.orders: list[str] = []
            self.returns: list[str] = []
            self.both("add_location", sample_location("WH-1"))
            self.both(
                "add_location",
                Location(
                    id=LocationId("ST-1"),
                    kind=LocationKind.STORE,
                    geo=GeoPoint(52.52, 13.41),
                    capabilities=frozenset(Capability),
                    priority=5,
                ),
            )
            # Stock to start trading with; the store has no B, so B pickups go to it by parcel.
            for location, sku, units in (("WH-1", "A", 12), ("WH-1", "B", 12), ("ST-1", "A", 4)):
                self.both("receive", location, sku, units)
                self.received[sku] += units

        def both(self, command: str, *args: Any, **kwargs: Any) -> Any:
            """Run the command on both; both must succeed alike or fail alike."""
            outcomes = []
            for system in self.systems:
                try:
                    outcomes.append(("ok", getattr(system, command)(*args, **kwargs)))
                except OmsError as error:
                    outcomes.append((type(error).__name__, str(error)))
            assert outcomes[0] == outcomes[1], (command, outcomes)
            return outcomes[0][1] if outcomes[0][0] == "ok" else None

        @rule(
            loc=st.sampled_from(["WH-1", "ST-1"]),
            sku=st.sampled_from(["A", "B"]),
            n=st.integers(1, 12),
        )
        def receive(self, loc: str, sku: str, n: int) -> None:
            self.both("receive", loc, sku, n)
            self.received[sku] += n

        @rule(loc=st.sampled_from(["WH-1", "ST-1"]), a=st.integers(0, 6), b=st.integers(1, 6))
        def a_stock_feed_arrives(self, loc: str, a: int, b: int) -> None:
            """A feed of receipts in one command (a position of 0 changes nothing)."""
            self.both("receive_many", [(loc, "A", a), (loc, "B", b)] if a else [(loc, "B", b)])
            self.received["A"] += a
            self.received["B"] += b

        @rule(
            sku=st.sampled_from(["A", "B"]),
            n=st.integers(1, 4),
            pickup=st.booleans(),
            second=st.integers(0, 3),
            allocate_now=st.booleans(),
            customer=st.sampled_from([None, *CUSTOMERS]),
            complete=st.booleans(),
        )
        def place(
            self,
            sku: str,
            n: int,
            pickup: bool,
            second: int,
            allocate_now: bool,
            customer: str | None,
            complete: bool,
        ) -> None:
            """An order (to ship complete, now and then), sourced at once or later."""
            delivery = Delivery.pickup("ST-1") if pickup else None
            more = (("B" if sku == "A" else "A", second),) if second else ()
            draft = order_draft(
                sku, n, delivery, more=more, customer_ref=customer, ship_complete=complete
            )
            order = self.both("place_order", draft)
            if order is not None:
                self.orders.append(order.id)
                if allocate_now:  # most orders are sourced at once, as most shops do
                    self.both("allocate", order.id)

        @rule(
            n=st.integers(1, 3),
            minutes=st.integers(5, 60),
            extend=st.booleans(),
            abandon=st.integers(0, 3),
            collect=st.sampled_from([None, "cart at the store", "web cart"]),
        )
        def checkout_then_order(
            self, n: int, minutes: int, extend: bool, abandon: int, collect: str | None
        ) -> None:
            """A cart reserves B, may be extended, and becomes an order (now and then the
            customer gives up and the cart is released instead). An order to collect at
            ST-1 comes from a cart reserved there, or from a web cart."""
            key = f"checkout-{len(self.orders)}-{n}"
            store = "ST-1" if collect == "cart at the store" else None
            reserved = self.both(
                "reserve", "B", n, ttl=timedelta(minutes=30), key=key, pickup_location=store
            )
            if reserved is None:
                return
            if extend:
                self.both("extend_reservation", key, ttl=timedelta(minutes=minutes))
            if abandon == 0:
                self.both("release_reservation", key)
                return
            delivery = Delivery.pickup("ST-1") if collect else None
            order = self.both("place_order", order_draft("B", n, delivery, reservation_key=key))
            if order is not None:
                self.orders.append(order.id)

        @rule(data=st.data())
        def cancel_one_unit(self, data: st.DataObject) -> None:
            if not self.orders:
                return
            order = self.systems[0].get_order(data.draw(st.sampled_from(self.orders)))
            line = data.draw(st.sampled_from(order.lines))
            self.both("cancel", order.id, {line.id: 1})

        @rule(data=st.data())
        def move_an_order(self, data: st.DataObject) -> None:
            if not self.orders:
                return
            order_id = data.draw(st.sampled_from(self.orders))
            step = data.draw(
                st.sampled_from(
                    [
                        "allocate",
                        "cancel",
                        "ship",
                        "deliver",
                        "ready_for_pickup",
                        "collect",
                        "reject",
                    ]
                )
            )
            if step in ("allocate", "cancel"):
                self.both(step, order_id)
                return
            order = self.systems[0].get_order(order_id)
            if order.fulfillments:
                f = data.draw(st.sampled_from(order.fulfillments))
                self.both("reject_fulfillment" if step == "reject" else step, f.id)

        @rule(data=st.data(), to=st.sampled_from(["WH-1", "ST-1"]))
        def someone_sources_again(self, data: st.DataObject, to: str) -> None:
            """An order's unstarted work is sourced again, or a person moves one of its
            fulfilment orders to another location."""
            if not self.orders:
                return
            order = self.systems[0].get_order(data.draw(st.sampled_from(self.orders)))
            movable = [f for f in order.fulfillments if f.status in MOVABLE_FULFILLMENT]
            by_hand: bool = data.draw(st.booleans())
            if movable and by_hand:
                f = data.draw(st.sampled_from(movable))
                if self.both("move_fulfillment", f.id, to) is not None:
                    event("a fulfilment order moved by hand")
                return
            before = order.version
            self.both("reallocate", order.id)
            if self.systems[0].get_order(order.id).version != before:
                event("an order sourced again")

        def fulfillment_orders(self) -> list[tuple[str, FulfillmentOrder]]:
            """Every fulfilment order on the reference store, with its order's id."""
            return [
                (order_id, f)
                for order_id in self.orders
                for f in self.systems[0].get_order(order_id).fulfillments
            ]

        @rule(data=st.data(), reject=st.integers(0, 5), steps=st.integers(1, 3))
        def work_a_fulfilment(self, data: st.DataObject, reject: int, steps: int) -> None:
            """Up to ``steps`` natural next steps of one active fulfilment order (now and
            then, its location rejects it instead)."""
            working = [
                (order_id, f.id)
                for order_id, f in self.fulfillment_orders()
                if f.is_active or f.status is FulfillmentStatus.SHIPPED
            ]
            if not working:
                return
            order_id, fulfillment_id = data.draw(st.sampled_from(working))
            for _ in range(steps):
                f = self.systems[0].get_order(order_id).fulfillment(fulfillment_id)
                if not (f.is_active or f.status is FulfillmentStatus.SHIPPED):
                    return
                self.both(_next_step(f, reject == 0), f.id)
                moved = self.systems[0].get_order(order_id).fulfillment(f.id)
                if moved.in_transit:
                    event("a ship-to-store parcel sent to its store")
                elif moved.handover_location:
                    event("a ship-to-store parcel handed over at its store")

        @rule(data=st.data())
        def a_parcel_is_prepared(self, data: st.DataObject) -> None:
            """One step of the work before a parcel leaves: accept, pick or pack."""
            steps = {
                FulfillmentStatus.OPEN: "accept_fulfillment",
                FulfillmentStatus.ACCEPTED: "pick",
                FulfillmentStatus.PICKED: "pack",
            }
            waiting = [f for _, f in self.fulfillment_orders() if f.status in steps]
            if waiting:
                f = data.draw(st.sampled_from(waiting))
                self.both(steps[f.status], f.id)

        @rule(sku=st.sampled_from(["A", "B"]))
        def a_card_is_declined_then_accepted(self, sku: str) -> None:
            """The gateway declines the order's authorisation (a payment hold), then the
            customer's second try goes through and the order can be sourced."""
            for system in self.systems:
                cast(FakePaymentGateway, system.payments).decline_next()
            order = self.both("place_order", order_draft(sku, 1))
            if order is not None:
                self.orders.append(order.id)
                self.both("authorize_payment", order.id)
                self.both("allocate", order.id)

        @rule(sku=st.sampled_from(["A", "B"]), loaded=st.booleans())
        def a_prepaid_card_pays_part_then_the_rest(self, sku: str, loaded: bool) -> None:
            """The card authorises 5.00 EUR of the order, which waits on a payment hold
            saying how short it is; once the card is loaded the rest is authorised as a
            second authorisation, the hold goes and the order can be sourced."""
            gateways = [cast(FakePaymentGateway, system.payments) for system in self.systems]
            for gateway in gateways:
                gateway.authorize_at_most(Money("5.00", "EUR"))
            try:
                order = self.both("place_order", order_draft(sku, 1))
            finally:
                for gateway in gateways:
                    gateway.clear_pending()
            if order is not None:
                self.orders.append(order.id)
                if loaded:
                    self.both("authorize_payment", order.id)
                    self.both("allocate", order.id)

        @rule(data=st.data())
        def one_unit_ships_ahead(self, data: st.DataObject) -> None:
            """One unit of a bigger parcel leaves now as a fulfilment order of its own."""
            waiting = [
                f
                for _, f in self.fulfillment_orders()
                if f.method is not DeliveryMethod.PICKUP
                and f.status in (FulfillmentStatus.OPEN, FulfillmentStatus.PACKED)
                and f.units > 1
            ]
            if waiting:
                f = data.draw(st.sampled_from(waiting))
                self.both("ship", f.id, units={f.lines[0].line_id: 1})

        @rule(data=st.data())
        def one_unit_is_collected(self, data: st.DataObject) -> None:
            """A bigger pickup is made ready (sent to the store first, if it is a parcel)
            and the customer takes one unit of it; the rest stays ready."""
            pickups = [
                (order_id, f.id)
                for order_id, f in self.fulfillment_orders()
                if f.method is DeliveryMethod.PICKUP and f.is_active and f.units > 1
            ]
            if not pickups:
                return
            order_id, fulfillment_id = data.draw(st.sampled_from(pickups))
            for _ in range(2):  # send it to the store, ready it: as far as the order allows
                f = self.systems[0].get_order(order_id).fulfillment(fulfillment_id)
                if f.status is not FulfillmentStatus.READY_FOR_PICKUP:
                    self.both(_next_step(f, reject=False), f.id)
            f = self.systems[0].get_order(order_id).fulfillment(fulfillment_id)
            if f.status is FulfillmentStatus.READY_FOR_PICKUP:
                self.both("collect", f.id, units={f.lines[0].line_id: 1})
                event("one unit of a pickup collected")

        @rule(data=st.data())
        def a_unit_is_not_found(self, data: st.DataObject) -> None:
            """A location misses one unit of a fulfilment order it has not packed."""
            unpacked = [
                f
                for _, f in self.fulfillment_orders()
                if f.status
                in (FulfillmentStatus.OPEN, FulfillmentStatus.ACCEPTED, FulfillmentStatus.PICKED)
            ]
            if unpacked:
                f = data.draw(st.sampled_from(unpacked))
                self.both("short_pick", f.id, {f.lines[0].line_id: 1}, reason="not found")

        @rule(
            data=st.data(),
            restock=st.booleans(),
            ending=st.sampled_from(
                ["refund", "refund and close", "exchange", "reject", "requested", "approved"]
            ),
        )
        def return_something(self, data: st.DataObject, restock: bool, ending: str) -> None:
            """Return units of a delivered line: request, approve, receive some or all of
            them, and refund what was received (and close the return) or exchange it for
            a unit of B; or reject the request and close it; or stop while requested or
            approved (:meth:`end_a_return` rejects or closes those later).
            With nothing delivered yet, a parcel on its way is delivered first; with none,
            a request that both must refuse alike."""
            if not self.orders:
                return
            reference = self.systems[0]
            returnable = self.returnable()
            if not returnable and self.deliver_a_parcel(data):
                returnable = self.returnable()
            if not returnable:
                order = reference.get_order(data.draw(st.sampled_from(self.orders)))
                self.both("request_return", order.id, {order.lines[0].id: 1})
                return
            order_id, units = data.draw(st.sampled_from(returnable))
            line_id = data.draw(st.sampled_from(sorted(units)))
            n = data.draw(st.integers(1, units[line_id]))
            rma = self.both("request_return", order_id, {line_id: n})
            if rma is None:
                return
            self.returns.append(rma.id)
            event("a return requested")
            if ending == "reject":
                self.both("reject_return", rma.id, "not bought here")
                self.both("close_return", rma.id)
                return
            if ending == "requested":
                return
            self.both("approve_return", rma.id)
            if ending == "approved":
                return
            received = data.draw(st.integers(1, n))
            disposition = Disposition.RESTOCK if restock else Disposition.DAMAGED
            self.both("receive_return", rma.id, "WH-1", {line_id: {disposition: received}})
            if ending == "exchange":
                exchange = self.both("exchange", rma.id, [LineDraft("B", 1, PRICE)])
                if exchange is not None:
                    self.orders.append(exchange.id)
                    event("an exchange order placed")
                return
            self.both("refund_return", rma.id)
            if ending == "refund and close":
                self.both("close_return", rma.id)

        @rule(data=st.data(), reject=st.booleans())
        def end_a_return(self, data: st.DataObject, reject: bool) -> None:
            """The retailer rejects a return, or closes it (refused alike where its status
            does not allow it)."""
            if self.returns:
                return_id = data.draw(st.sampled_from(self.returns))
                if reject:
                    self.both("reject_return", return_id, "not as described")
                else:
                    self.both("close_return", return_id)

        def returnable(self) -> list[tuple[str, dict[LineId, int]]]:
            """The orders with units the customer may send back, and those units."""
            reference = self.systems[0]
            return [(o, units) for o in self.orders if (units := reference.returnable(o))]

        def on_their_way(self) -> list[tuple[str, str]]:
            """Parcels to customers not delivered yet, with their orders' ids."""
            return [
                (order_id, f.id)
                for order_id, f in self.fulfillment_orders()
                if f.method is not DeliveryMethod.PICKUP
                and (f.is_active or f.status is FulfillmentStatus.SHIPPED)
            ]

        def deliver_a_parcel(self, data: st.DataObject) -> bool:
            """Ship and deliver one parcel on its way to a customer (sourcing an order
            that waits for it first, if none is on its way)."""
            on_their_way = self.on_their_way()
            if not on_their_way:
                reference = self.systems[0]
                waiting = [o for o in self.orders if reference.get_order(o).open_units]
                if waiting:
                    self.both("allocate", data.draw(st.sampled_from(waiting)))
                    on_their_way = self.on_their_way()
            if not on_their_way:
                return False
            order_id, fulfillment_id = data.draw(st.sampled_from(on_their_way))
            for _ in range(2):
                f = self.systems[0].get_order(order_id).fulfillment(fulfillment_id)
                if f.status is not FulfillmentStatus.DELIVERED:
                    self.both(_next_step(f, reject=False), f.id)
            return True

        @rule(data=st.data(), cents=st.integers(1, 2500))
        def goodwill(self, data: st.DataObject, cents: int) -> None:
            """A refund without a return (refused alike beyond what was paid)."""
            if self.orders:
                order_id = data.draw(st.sampled_from(self.orders))
                amount = Money(Decimal(cents).scaleb(-2), "EUR")
                self.both("refund_order", order_id, amount, "goodwill")

        @rule(minutes=st.integers(1, 90), n=st.integers(1, 3))
        def reserve_and_let_time_pass(self, minutes: int, n: int) -> None:
            self.both("reserve", "A", n, ttl=timedelta(minutes=30), key=f"cart-{minutes}-{n}")
            self.clock.advance(timedelta(minutes=minutes))
            self.both("expire_reservations")

        @rule(loc=st.sampled_from(["WH-1", "ST-1"]), sku=st.sampled_from(["A", "B"]))
        def close_a_location_for_a_while(self, loc: str, sku: str) -> None:
            """Closing moves the holds there to the rest of their pools; an order placed and
            sourced meanwhile avoids it; reopening serves what waits."""
            self.both("update_location", loc, active=False)
            order = self.both("place_order", order_draft(sku, 1))
            if order is not None:
                self.orders.append(order.id)
                self.both("allocate", order.id)
            self.both("update_location", loc, active=True)

        @rule(
            loc=st.sampled_from(["WH-1", "ST-1"]),
            sku=st.sampled_from(["A", "B"]),
            delta=st.integers(-2, 3).filter(bool),
            safety=st.integers(0, 2),
        )
        def count_and_protect_stock(self, loc: str, sku: str, delta: int, safety: int) -> None:
            """A correction of on hand, as an adjustment or as a cycle count (refused alike
            below what is committed); then the location keeps a safety stock of the SKU."""
            on_hand = self.systems[0].stock(loc, sku).on_hand
            if delta > 0 or on_hand + delta < 0:
                self.both("adjust", loc, sku, delta, reason="found, or lost")
            else:
                self.both("count", loc, sku, on_hand + delta)
            self.both("set_safety_stock", loc, sku, safety)

        @rule(
            sku=st.sampled_from(["A", "B"]),
            n=st.integers(1, 3),
            forward=st.booleans(),
            arrives=st.booleans(),
        )
        def transfer_stock(self, sku: str, n: int, forward: bool, arrives: bool) -> None:
            """Units leave one location for the other, available at neither on the way (due
            in a day when sent from the warehouse); now and then they arrive at once."""
            origin, destination = ("WH-1", "ST-1") if forward else ("ST-1", "WH-1")
            eta = self.clock.now() + timedelta(days=1) if forward else None
            transfer = self.both("transfer", sku, origin, destination, n, eta=eta)
            if transfer is not None and arrives:
                self.both("receive_transfer", sku, transfer.id)

        @rule(data=st.data(), hours=st.none() | st.integers(1, 48))
        def a_transfer_is_rescheduled(self, data: st.DataObject, hours: int | None) -> None:
            """The truck is late, or nobody knows when it comes (``hours`` of None)."""
            reference = self.systems[0]
            on_the_way = [(s, t.id) for s in ("A", "B") for t in reference.inventory(s).transfers]
            if on_the_way:
                sku, transfer_id = data.draw(st.sampled_from(on_the_way))
                eta = None if hours is None else self.clock.now() + timedelta(hours=hours)
                self.both("reschedule_transfer", sku, transfer_id, eta)

        @rule(data=st.data())
        def a_transfer_arrives(self, data: st.DataObject) -> None:
            reference = self.systems[0]
            on_the_way = [(s, t.id) for s in ("A", "B") for t in reference.inventory(s).transfers]
            if on_the_way:
                sku, transfer_id = data.draw(st.sampled_from(on_the_way))
                self.both("receive_transfer", sku, transfer_id)

        @rule(sku=st.sampled_from(["A", "B"]), n=st.integers(1, 6), hours=st.integers(1, 72))
        def supply_is_expected(self, sku: str, n: int, hours: int) -> None:
            """A purchase order to WH-1 (it promises dates; its receipt is a receive)."""
            eta = self.clock.now() + timedelta(hours=hours)
            self.both("add_supply", sku, "WH-1", n, eta, f"PO-{sku}-{hours}-{n}")

        @rule(data=st.data(), n=st.integers(0, 6), hours=st.integers(1, 96))
        def supply_changes(self, data: st.DataObject, n: int, hours: int) -> None:
            """The vendor moves a date and changes the quantity (``n`` of 0: the purchase
            order is cancelled)."""
            reference = self.systems[0]
            expected = [(s, p.reference) for s in ("A", "B") for p in reference.inventory(s).supply]
            if not expected:
                return
            sku, po = data.draw(st.sampled_from(expected))
            if n:
                eta = self.clock.now() + timedelta(hours=hours)
                self.both("update_supply", sku, "WH-1", po, quantity=n, eta=eta)
            else:
                self.both("cancel_supply", sku, "WH-1", po)

        @rule(data=st.data(), n=st.integers(1, 6))
        def supply_arrives(self, data: st.DataObject, n: int) -> None:
            """Units of a purchase order are received under its reference: what is left
            of it stays expected, by its ETA."""
            reference = self.systems[0]
            expected = [(s, p.reference) for s in ("A", "B") for p in reference.inventory(s).supply]
            if expected:
                sku, po = data.draw(st.sampled_from(expected))
                self.both("receive", "WH-1", sku, n, reference=po)
                self.received[sku] += n

        @rule(
            data=st.data(),
            edit=st.sampled_from(
                [
                    "change_quantity",
                    "add_line",
                    "remove_line",
                    "change_address",
                    "change_delivery",
                    "change_ship_complete",
                ]
            ),
            n=st.integers(1, 4),
            declined=st.booleans(),
        )
        def edit_an_order(self, data: st.DataObject, edit: str, n: int, declined: bool) -> None:
            """The customer edits an order (refused alike once it is sourced). An edit that
            costs more is authorised for the difference, or, when the card declines it,
            refused alike."""
            if not self.orders:
                return
            gateways = [cast(FakePaymentGateway, system.payments) for system in self.systems]
            if declined:
                for gateway in gateways:
                    gateway.decline_next()
            try:
                self._edit(data, edit, n)
            finally:
                for gateway in gateways:
                    gateway.clear_pending()  # a decline the edit did not use goes too

        def _edit(self, data: st.DataObject, edit: str, n: int) -> None:
            """One edit of a drawn order, on both systems (unsourced orders first)."""
            reference = self.systems[0]
            unsourced = [o for o in self.orders if not reference.get_order(o).fulfillments]
            order = reference.get_order(data.draw(st.sampled_from(unsourced or self.orders)))
            line_id = data.draw(st.sampled_from(order.lines)).id
            if edit == "change_quantity":
                self.both(edit, order.id, line_id, n)
            elif edit == "add_line":
                self.both(edit, order.id, LineDraft("B", n, PRICE))
            elif edit == "remove_line":
                self.both(edit, order.id, line_id)
            elif edit == "change_ship_complete":  # wait for one parcel, or take what is there
                self.both(edit, order.id, not order.ship_complete)
            elif edit == "change_delivery":  # collect at ST-1, or have it shipped after all
                shipped = order.delivery.method is not DeliveryMethod.PICKUP
                to = Delivery.pickup("ST-1") if shipped else Delivery.ship(POTSDAM)
                self.both(edit, order.id, to)
            else:
                self.both(edit, order.id, POTSDAM)

        @rule(
            buffer=st.integers(0, 3),
            pool=st.sampled_from([None, ("WH-1",), ("ST-1",), ("WH-1", "ST-1")]),
            ships_only=st.booleans(),
        )
        def the_web_changes_its_pool(
            self, buffer: int, pool: tuple[str, ...] | None, ships_only: bool
        ) -> None:
            """The web holds units back, sells from one location or both, and perhaps only
            from those that ship: the holds at a location that leaves its pool move to the
            rest of it."""
            requires = [Capability.SHIP] if ships_only else []
            self.both(
                "configure_channel", "web", location_ids=pool, buffer=buffer, requires=requires
            )

        @rule(ships=st.booleans())
        def the_store_stops_or_starts_shipping(self, ships: bool) -> None:
            """ST-1 stops shipping (it leaves the pool of a web that ships only, its holds
            moved) or starts again (it joins, and serves what waits)."""
            can = set(Capability) if ships else set(Capability) - {Capability.SHIP}
            self.both("update_location", "ST-1", capabilities=can)

        @rule(hours=st.integers(1, 200))
        def time_passes(self, hours: int) -> None:
            """Carts run out, and pickups nobody collected within their week expire."""
            self.clock.advance(timedelta(hours=hours))
            self.both("expire_reservations")
            self.both("expire_pickups")

        @rule(data=st.data(), keep_hours=st.integers(0, 3))
        def relay_then_prune(self, data: st.DataObject, keep_hours: int) -> None:
            """Publish a prefix of the outbox, then prune what is older than a window."""
            pending = self.systems[0].store.unpublished()
            if pending:
                up_to = data.draw(st.sampled_from(pending)).position
                for system in self.systems:
                    system.store.mark_published(up_to)
            self.clock.advance(timedelta(minutes=30))
            self.both("prune", keep_events=timedelta(hours=keep_hours))
            reference, tested = (s.store for s in self.systems)
            assert tested.unpublished() == reference.unpublished()

        @invariant()
        def the_stores_agree(self) -> None:
            reference, tested = self.systems
            for sku in ("A", "B"):
                assert tested.inventory(sku) == reference.inventory(sku)
            for order_id in self.orders:
                assert tested.get_order(order_id) == reference.get_order(order_id)
            for return_id in self.returns:
                assert tested.get_return(return_id) == reference.get_return(return_id)
            assert tested.events() == reference.events()
            for order_id in self.orders[-3:]:  # the latest, which the next steps touch most
                assert tested.order_history(order_id) == reference.order_history(order_id)
            assert tested.ledger() == reference.ledger()

        @invariant()
        def queues_match_a_scan_of_the_orders(self) -> None:
            """Every location's queue, all statuses, is its fulfilment orders (where their
            units are) longest waiting first; the stalled ones are a prefix of it."""
            reference, tested = self.systems
            everything = [s.value for s in FulfillmentStatus]
            fulfillments = [
                (f.since, f.id, order_id, f)
                for order_id in self.orders
                for f in reference.get_order(order_id).fulfillments
            ]
            for location in ("WH-1", "ST-1"):
                expected = [
                    (order_id, f_id)
                    for _, f_id, order_id, f in sorted(fulfillments, key=lambda x: x[:2])
                    if f.stock_location == location
                ]
                queue = tested.fulfillment_queue(location, statuses=everything)
                assert [(q.order_id, q.fulfillment.id) for q in queue] == expected
                stalled = tested.stalled_fulfillments(
                    timedelta(minutes=30), location_id=location, statuses=everything
                )
                assert stalled == queue[: len(stalled)]
                assert all(q.waiting >= timedelta(minutes=30) for q in stalled)
                assert all(q.waiting < timedelta(minutes=30) for q in queue[len(stalled) :])

        @invariant()
        def incoming_supply_matches_a_scan_of_the_items(self) -> None:
            """All supply expected is listed earliest ETA first, with how late it is and
            the units its SKU has on backorder; what is due by now is a prefix of it."""
            reference, tested = self.systems
            now = self.clock.now()
            expected: list[tuple[datetime, str, str, str, int, str | None, int]] = []
            for sku in ("A", "B"):
                item = reference.inventory(sku)
                waiting = sum(b.quantity for b in item.backorders)
                expected += [
                    (p.eta, sku, p.location_id, p.reference, p.quantity, None, waiting)
                    for p in item.supply
                ]
                expected += [
                    (t.eta, sku, t.to_location, f"transfer {t.id}", t.quantity, t.id, waiting)
                    for t in item.transfers
                    if t.eta is not None
                ]
            listed = tested.incoming_supply()
            assert [
                (a.eta, i.sku, a.location_id, a.reference, a.quantity, a.transfer_id, i.backordered)
                for i in listed
                for a in [i.arrival]
            ] == sorted(expected, key=lambda e: (e[0], e[1], e[2], e[3]))
            assert all(i.late == max(now - i.arrival.eta, timedelta(0)) for i in listed)
            due = tested.incoming_supply(due_by=now)
            assert due == listed[: len(due)]
            assert all(i.arrival.eta <= now for i in due)
            assert all(i.arrival.eta > now for i in listed[len(due) :])

        @invariant()
        def the_backorder_queue_matches_a_scan_of_the_items(self) -> None:
            """Every backorder, longest waiting first, with the date its SKU's expected
            supply gives it."""
            reference, tested = self.systems
            now = self.clock.now()
            expected = []
            for sku in ("A", "B"):
                item = reference.inventory(sku)
                dates = reference.backorder_dates  # by order: the OMS's own answer
                for b in item.backorders:
                    when = dates(b.order_id).get(b.line_id)
                    expected.append((b.since, b.order_id, b.line_id, sku, b.quantity, when))
            queue = tested.backorder_queue()
            assert [
                (q.since, q.order_id, q.line_id, q.sku, q.quantity, q.expected) for q in queue
            ] == sorted(expected, key=lambda e: e[:3])
            assert all(q.waiting == now - q.since for q in queue)

        @invariant()
        def order_queues_match_a_scan_of_the_orders(self) -> None:
            """Every order is in its status's queue, placed earliest first (ties by id);
            the waiting ones in the OMS's queue, the fraud queue those with a fraud hold."""
            reference, tested = self.systems
            orders = sorted(
                (reference.get_order(order_id) for order_id in self.orders),
                key=lambda o: (o.placed_at, o.id),
            )
            with tested.store.unit_of_work(write=False) as uow:
                for status in OrderStatus:
                    expected = [o.id for o in orders if o.status is status]
                    assert uow.orders.order_queue(frozenset({status})) == expected
            waiting = [o for o in orders if o.status in WAITING_ORDER]
            assert [q.order.id for q in tested.order_queue()] == [o.id for o in waiting]
            fraud = [o.id for o in waiting if o.has_hold(HoldKind.FRAUD)]
            assert [q.order.id for q in tested.order_queue(hold="fraud")] == fraud

        @invariant()
        def no_order_can_be_charged_more_than_its_payment_covers(self) -> None:
            """Edits, cancels, exchanges and expiries never leave an authorised order
            owing more than the gateway would capture (unless it waits on a payment hold:
            a card authorised in part), and each of its authorisations (edits and top-ups
            add some) holds at the gateway what the order's ledger says."""
            tested = self.systems[1]
            gateway = cast(FakePaymentGateway, tested.payments)
            for order_id in self.orders:
                order = tested.get_order(order_id)
                if order.payment_reference is None:
                    continue
                assert_gateway_holds_the_ledger(gateway, order)
                if not order.has_hold(HoldKind.PAYMENT):  # short, waiting
                    assert order.chargeable <= order.covered, (order.id, order.payments)

        @invariant()
        def refunds_never_pass_what_was_paid(self) -> None:
            """No order can give back more than it was paid (its card captures and the
            credit its shipments used, less what moved on to a replacement); over every
            order, the ledgers' refunds never pass their captures (credit refunded is
            refunded on the card it came from, once), and neither do the gateway's."""
            tested = self.systems[1]
            gateway = cast(FakePaymentGateway, tested.payments)
            zero = Money.zero("EUR")
            orders = [tested.get_order(order_id) for order_id in self.orders]
            for order in orders:
                assert order.refundable >= zero, (order.id, order.payments)
            entries = [p for order in orders for p in order.payments]
            captured = sum((p.amount for p in entries if p.kind is PaymentKind.CAPTURED), zero)
            refunded = sum((p.amount for p in entries if p.kind is PaymentKind.REFUNDED), zero)
            assert refunded <= captured
            captured = sum((a.captured for a in gateway.authorizations.values()), zero)
            refunded = sum((a.refunded for a in gateway.authorizations.values()), zero)
            assert refunded <= captured

        @invariant()
        def customer_orders_match_a_scan_of_the_orders(self) -> None:
            """Each customer's orders are listed newest first (ties by id, descending), and
            the page after the newest starts with the second."""
            reference, tested = self.systems
            orders = [reference.get_order(order_id) for order_id in self.orders]
            for customer in CUSTOMERS:
                expected = [
                    o.id
                    for o in sorted(orders, key=lambda o: (o.placed_at, o.id), reverse=True)
                    if o.customer_ref == customer
                ]
                assert [o.id for o in tested.customer_orders(customer)] == expected
                if expected:
                    page = tested.customer_orders(customer, before=expected[0], limit=1)
                    assert [o.id for o in page] == expected[1:2]

        @rule(data=st.data())
        def a_person_holds_or_releases(self, data: st.DataObject) -> None:
            """A fraud hold on an order, or its release."""
            if not self.orders:
                return
            order = self.systems[0].get_order(data.draw(st.sampled_from(self.orders)))
            held = order.has_hold(HoldKind.FRAUD)
            if held:
                self.both("release", order.id, "fraud")
            else:
                self.both("hold", order.id, "fraud", reason="score 91")

        @invariant()
        def stock_matches_a_plain_tally(self) -> None:
            """What came in, less what was shipped, plus what was restocked, less what was
            written off (short picks), is on a shelf or in a parcel on its way to a store."""
            tested = self.systems[1]
            parcels = [
                f
                for order_id in self.orders
                for f in tested.get_order(order_id).fulfillments
                if f.in_transit
            ]
            for sku, received in self.received.items():
                moves = tested.ledger(sku)
                shipped = -sum(m.on_hand_delta for m in moves if m.kind is MovementKind.SHIPMENT)
                restocked = sum(m.on_hand_delta for m in moves if m.kind is MovementKind.RESTOCK)
                written_off = -sum(
                    m.on_hand_delta
                    for m in moves
                    if m.kind in (MovementKind.ADJUSTMENT, MovementKind.COUNT)
                )
                on_hand = sum(level.on_hand for level in tested.inventory(sku).levels.values())
                moving = sum(fl.quantity for f in parcels for fl in f.lines if fl.sku == sku)
                moving += sum(t.quantity for t in tested.inventory(sku).transfers)
                assert on_hand + moving == received - shipped + restocked - written_off
            check_books(tested, order_ids=self.orders)  # the outbox may be pruned

    return Twins


def _movement(sku: str = "A", location: str = "W1") -> StockMovement:
    return StockMovement(Sku(sku), LocationId(location), MovementKind.RECEIPT, 1, 0, "po", T0)


__all__ = [
    "ProcessContract",
    "ReferenceModelContract",
    "StoreContract",
    "buy_in_process",
    "twin_machine",
]
