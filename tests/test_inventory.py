"""Inventory pooling through the OMS: levels, ledger, reservations, pools, ATP, supply."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omscore import OMS, Capability, Delivery, GeoPoint, Location, LocationKind, StockLevel
from omscore._stock import _promises_more_than
from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.adapters.system import SequentialIds
from omscore.errors import (
    DuplicateIdempotencyKey,
    DuplicateLocation,
    DuplicateReservation,
    DuplicateSupply,
    InsufficientStock,
    InvalidArgument,
    InvalidChannelConfig,
    InvalidLocation,
    InvalidQuantity,
    InvalidQuery,
    StockInUse,
    UnknownLocation,
    UnknownOrder,
    UnknownReservation,
    UnknownSupply,
    UnknownTransfer,
)
from omscore.events import (
    BackorderServed,
    ChannelConfigured,
    InventoryEvent,
    LowStock,
    OrderStockHeld,
    OrderStockReleased,
    OutOfStock,
    ReservationReleased,
    StockCounted,
    StockReserved,
    SupplyCancelled,
    SupplyUpdated,
    TransferDue,
    TransferShipped,
)
from omscore.ids import ChannelId, LineId, LocationId, OrderId, Sku
from omscore.inventory import (
    Channel,
    ChannelPool,
    ExpectedArrival,
    InventoryItem,
    LocationLoad,
    MovementKind,
    Supply,
)
from omscore.testing import ManualClock
from omscore.testing.invariants import check_books

from .conftest import draft, store_location, warehouse


def snapshot(oms: OMS) -> tuple[object, ...]:
    """Everything a refused command must leave alone."""
    items = tuple(oms.inventory(s) for s in ("A", "B"))
    return (items, len(oms.ledger()), len(oms.events()))


# --- levels and the ledger ------------------------------------------------------------------


def test_a_sku_that_never_had_stock_answers_zero(oms: OMS) -> None:
    """available and stock at a known location are zero, not an error."""
    assert oms.available("NEVER") == 0
    assert oms.available("NEVER", channel="web") == 0
    assert oms.stock("WH-1", "NEVER") == StockLevel()


def test_commands_refuse_an_unknown_location(oms: OMS) -> None:
    """receive, adjust, count, safety stock, stock and transfer need a known location."""
    for call in (
        lambda: oms.receive("NOWHERE", "A", 1),
        lambda: oms.adjust("NOWHERE", "A", 1),
        lambda: oms.count("NOWHERE", "A", 1),
        lambda: oms.set_safety_stock("NOWHERE", "A", 1),
        lambda: oms.stock("NOWHERE", "A"),
        lambda: oms.transfer("A", "WH-1", "NOWHERE", 1),
    ):
        with pytest.raises(UnknownLocation, match="NOWHERE"):
            call()
    assert oms.ledger() == []


def test_adding_a_location_twice_is_refused(oms: OMS) -> None:
    """Location ids are unique."""
    with pytest.raises(DuplicateLocation):
        oms.add_location(warehouse("WH-1"))


def test_available_is_on_hand_less_allocated_reserved_and_safety_stock(oms: OMS) -> None:
    """And never below zero."""
    oms.receive("WH-1", "A", 10)
    oms.set_safety_stock("WH-1", "A", 3)
    oms.reserve("A", 4, ttl=timedelta(minutes=5), key="cart")
    level = oms.stock("WH-1", "A")
    assert (level.on_hand, level.reserved, level.safety_stock, level.available) == (10, 4, 3, 3)
    oms.set_safety_stock("WH-1", "A", 20)
    assert oms.stock("WH-1", "A").available == 0


def test_every_change_of_on_hand_is_a_ledger_row_with_its_reference(oms: OMS) -> None:
    """receipt, adjustment, damage and count each write one row."""
    oms.receive("WH-1", "A", 10, reference="PO-1")
    oms.adjust("WH-1", "A", -2, reason="found broken", damage=True)
    oms.adjust("WH-1", "A", 1, reason="found one")
    oms.count("WH-1", "A", 7)
    rows = oms.ledger("A")
    assert [(r.kind, r.on_hand_delta, r.reference) for r in rows] == [
        (MovementKind.RECEIPT, 10, "PO-1"),
        (MovementKind.DAMAGE, -2, "found broken"),
        (MovementKind.ADJUSTMENT, 1, "found one"),
        (MovementKind.COUNT, -2, "cycle count"),
    ]
    assert oms.stock("WH-1", "A").on_hand == 7
    assert oms.reconcile() == []


def test_the_ledger_is_read_by_sku_by_location_or_both(oms: OMS) -> None:
    """Each filter keeps only its rows, in commit order; none gives every row."""
    oms.receive("WH-1", "A", 1, reference="PO-1")
    oms.receive("ST-1", "A", 2, reference="PO-2")
    oms.receive("WH-1", "B", 3, reference="PO-3")
    refs = {
        name: [r.reference for r in rows]
        for name, rows in {
            "all": oms.ledger(),
            "A": oms.ledger("A"),
            "WH-1": oms.ledger(location_id="WH-1"),
            "A at WH-1": oms.ledger("A", "WH-1"),
        }.items()
    }
    assert refs == {
        "all": ["PO-1", "PO-2", "PO-3"],
        "A": ["PO-1", "PO-2"],
        "WH-1": ["PO-1", "PO-3"],
        "A at WH-1": ["PO-1"],
    }


def test_a_count_that_finds_the_level_right_posts_no_movement(oms: OMS) -> None:
    """The count is recorded (an event with delta 0); the ledger gets no empty row."""
    oms.receive("WH-1", "A", 10, reference="PO-1")
    oms.count("WH-1", "A", 10)
    assert [r.kind for r in oms.ledger("A")] == [MovementKind.RECEIPT]
    counted = [e for e in oms.events() if isinstance(e, StockCounted)]
    assert [(e.location_id, e.counted, e.delta) for e in counted] == [("WH-1", 10, 0)]
    assert oms.reconcile() == []


def test_a_movements_quantity_is_what_it_changed(oms: OMS) -> None:
    """A receipt's quantity is its on-hand change, an allocation's its allocated change."""
    oms.receive("WH-1", "A", 10)
    oms.allocate(oms.place_order(draft(("A", 3))).id)
    quantities = [(m.kind, m.quantity) for m in oms.ledger("A")]
    assert quantities == [(MovementKind.RECEIPT, 10), (MovementKind.ALLOCATION, 3)]


def test_a_locations_daily_load_counts_up_and_starts_again_each_day() -> None:
    """Each take is a new version; a new day starts from zero."""
    monday, tuesday = datetime(2026, 1, 5).date(), datetime(2026, 1, 6).date()
    load = LocationLoad(LocationId("WH-1"), monday).take(monday, 2).take(monday, 1)
    assert (load.used_on(monday), load.used_on(tuesday), load.version) == (3, 0, 2)
    tomorrow = load.take(tuesday, 1)
    assert (tomorrow.day, tomorrow.used_on(tuesday), tomorrow.version) == (tuesday, 1, 3)


@pytest.mark.parametrize(
    "call",
    [
        lambda oms: oms.receive("WH-1", "A", 0),
        lambda oms: oms.receive("WH-1", "A", -3),
        lambda oms: oms.receive("WH-1", "A", 2.0),
        lambda oms: oms.receive("WH-1", "A", True),
        lambda oms: oms.adjust("WH-1", "A", 0),
        lambda oms: oms.count("WH-1", "A", -1),
        lambda oms: oms.set_safety_stock("WH-1", "A", -1),
        lambda oms: oms.reserve("A", 0, ttl=timedelta(minutes=1), key="k"),
        lambda oms: oms.reserve("A", 1, ttl=timedelta(0), key="k"),
        lambda oms: oms.receive("WH-1", "", 1),
    ],
)
def test_bad_quantities_are_refused_and_change_nothing(
    oms: OMS, call: Callable[[OMS], object]
) -> None:
    """Quantities must be whole and in range; nothing is written when they are not."""
    oms.receive("WH-1", "A", 5)
    before = snapshot(oms)
    with pytest.raises(InvalidQuantity):
        call(oms)
    assert snapshot(oms) == before


def test_a_count_below_what_is_held_names_the_holders(oms: OMS) -> None:
    """The error says which reservation and which order hold the stock."""
    oms.receive("WH-1", "A", 5)
    oms.reserve("A", 2, ttl=timedelta(minutes=5), key="cart-9")
    order = oms.place_order(draft(("A", 2)))
    before = snapshot(oms)
    with pytest.raises(StockInUse) as info:
        oms.count("WH-1", "A", 3)
    message = str(info.value)
    assert "reservation 'cart-9' (2)" in message
    assert f"order {order.id} line {order.lines[0].id} (2)" in message
    assert len(info.value.holders) == 2
    with pytest.raises(StockInUse):
        oms.adjust("WH-1", "A", -2)
    with pytest.raises(StockInUse):
        oms.receive_many([("WH-1", "A", 1)], mode="absolute")
    assert snapshot(oms) == before


def test_on_hand_never_goes_negative(oms: OMS) -> None:
    """A negative adjustment beyond on hand is refused."""
    oms.receive("WH-1", "A", 2)
    with pytest.raises(StockInUse, match="below zero"):
        oms.adjust("WH-1", "A", -3)


# --- reservations ----------------------------------------------------------------------------


def test_a_reservation_holds_stock_until_it_expires(oms: OMS, clock: ManualClock) -> None:
    """ATP drops at reserve, comes back at expiry, and expiry is counted."""
    oms.receive("WH-1", "A", 10)
    oms.reserve("A", 4, channel="web", ttl=timedelta(minutes=15), key="cart-1")
    assert oms.available("A", channel="web") == 6
    clock.advance(timedelta(minutes=14))
    assert oms.expire_reservations() == 0
    clock.advance(timedelta(minutes=1))
    assert oms.expire_reservations() == 1
    assert oms.available("A", channel="web") == 10


def one_warehouse_on(store: str, clock: ManualClock) -> OMS:
    """An OMS with the warehouse WH-1 on a fresh ``"memory"`` or ``"sqlite"`` store."""
    oms = OMS(
        MemoryStore() if store == "memory" else SqliteStore(":memory:"),
        clock=clock,
        ids=SequentialIds(),
    )
    oms.add_location(warehouse("WH-1"))
    return oms


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_the_earliest_of_a_sku_s_carts_expires_on_time(store: str, clock: ManualClock) -> None:
    """Three carts on one SKU, ending in 10, 60 and 60 minutes; one of the later is
    released. At 10 minutes the first ends: the store still finds the SKU by its
    earliest expiry, whichever cart changed last."""
    oms = one_warehouse_on(store, clock)
    oms.receive("WH-1", "A", 10)
    for key, minutes in (("soon", 10), ("later", 60), ("dropped", 60)):
        oms.reserve("A", 1, ttl=timedelta(minutes=minutes), key=key)
    oms.release_reservation("dropped")
    clock.advance(timedelta(minutes=10))
    assert (oms.expire_reservations(), oms.available("A")) == (1, 9)
    assert oms.inventory("A").reservation_keys == {"later"}


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_cart_on_a_sku_many_orders_hold_expires_on_time(store: str, clock: ManualClock) -> None:
    """Forty placed orders hold a SKU (holds that never expire), then a cart takes a unit
    for ten minutes: the store must learn the SKU's first expiry from the cart alone."""
    oms = one_warehouse_on(store, clock)
    oms.receive("WH-1", "A", 100)
    for _ in range(40):
        oms.place_order(draft(("A", 1)))
    oms.reserve("A", 1, ttl=timedelta(minutes=10), key="cart")
    clock.advance(timedelta(minutes=10))
    assert (oms.expire_reservations(), oms.available("A")) == (1, 60)
    assert oms.inventory("A").reservation_keys == set()


def test_each_change_of_an_item_is_its_next_version_and_its_events_carry_it(oms: OMS) -> None:
    """Received, reserved, released: versions 1, 2 and 3, and each event the version of
    the change it belongs to, so a consumer can order and deduplicate a SKU's events."""
    oms.receive("WH-1", "A", 10)
    oms.reserve("A", 2, ttl=timedelta(minutes=5), key="cart")
    oms.release_reservation("cart")
    events = [e for e in oms.events() if isinstance(e, InventoryEvent) and e.sku == "A"]
    assert [(type(e).__name__, e.version) for e in events] == [
        ("StockReceived", 1),
        ("StockReserved", 2),
        ("ReservationReleased", 3),
    ]
    assert oms.inventory("A").version == 3


def test_extend_moves_the_expiry_and_release_frees_at_once(oms: OMS, clock: ManualClock) -> None:
    """extend_reservation and release_reservation act on every SKU under the key."""
    oms.receive("WH-1", "A", 10)
    oms.receive("WH-1", "B", 10)
    oms.reserve("A", 1, ttl=timedelta(minutes=5), key="cart")
    oms.reserve("B", 2, ttl=timedelta(minutes=5), key="cart")
    extended = oms.extend_reservation("cart", timedelta(minutes=30))
    assert {r.expires_at for r in extended} == {clock.now() + timedelta(minutes=30)}
    clock.advance(timedelta(minutes=10))
    assert oms.expire_reservations() == 0
    assert oms.release_reservation("cart") == 3
    assert oms.available("A") == 10
    assert oms.available("B") == 10
    with pytest.raises(UnknownReservation):
        oms.release_reservation("cart")


def test_a_reservation_beyond_atp_is_refused(oms: OMS) -> None:
    """InsufficientStock names the ATP; nothing is held."""
    oms.receive("WH-1", "A", 3)
    before = snapshot(oms)
    with pytest.raises(InsufficientStock, match="only 3 available to promise"):
        oms.reserve("A", 4, ttl=timedelta(minutes=5), key="cart")
    assert snapshot(oms) == before


def test_one_key_reserves_a_sku_once(oms: OMS) -> None:
    """A second reserve under the same key and SKU is refused: extend or release."""
    oms.receive("WH-1", "A", 3)
    oms.reserve("A", 1, ttl=timedelta(minutes=5), key="cart")
    with pytest.raises(DuplicateReservation):
        oms.reserve("A", 1, ttl=timedelta(minutes=5), key="cart")


def test_reservations_are_placed_in_pool_preference_order(oms: OMS) -> None:
    """Priority 1 warehouse first, then the store."""
    oms.receive("WH-1", "A", 2)
    oms.receive("ST-1", "A", 5)
    reservation = oms.reserve("A", 4, ttl=timedelta(minutes=5), key="cart")
    assert [(p.location_id, p.quantity) for p in reservation.placements] == [
        ("WH-1", 2),
        ("ST-1", 2),
    ]


# --- orders hold their stock -----------------------------------------------------------------


def test_placing_an_order_drops_atp_at_once(oms: OMS) -> None:
    """Two customers can never buy the same unit."""
    oms.receive("WH-1", "A", 3)
    oms.place_order(draft(("A", 2)))
    assert oms.available("A", channel="web") == 1
    assert oms.stock("WH-1", "A").reserved == 2


def test_an_order_takes_over_its_checkout_reservation(oms: OMS) -> None:
    """Nothing is counted twice and nothing goes back to the pool in between."""
    oms.receive("WH-1", "A", 5)
    oms.receive("WH-1", "B", 5)
    oms.reserve("A", 2, ttl=timedelta(minutes=5), key="cart")
    oms.reserve("B", 1, ttl=timedelta(minutes=5), key="cart")
    order = oms.place_order(draft(("A", 3), reservation_key="cart"))
    assert oms.available("A") == 2
    assert oms.stock("WH-1", "A").reserved == 3
    item = oms.inventory("A")
    assert item.held_for(order.id, order.lines[0].id) == 3
    assert item.checkout_holds("cart") == ()
    assert oms.available("B") == 5, "the reserved SKU that was not ordered goes back"


def held_at(oms: OMS, sku: str) -> list[tuple[str, str, int]]:
    """Each hold of a SKU: its key (a cart, or the order), location and units."""
    return [(h.key, h.location_id, h.quantity) for h in oms.inventory(sku).holds]


def test_a_cart_to_collect_in_store_holds_the_stores_units_and_the_order_keeps_them(
    oms: OMS,
) -> None:
    """Reserved at ST-1, the cart holds ST-1's units, not the warehouse's; the pickup order
    takes them over there. More than the store has is refused, and changes nothing."""
    oms.receive("WH-1", "A", 9)
    oms.receive("ST-1", "A", 2)
    oms.reserve("A", 2, ttl=timedelta(minutes=15), key="cart", pickup_location="ST-1")
    assert held_at(oms, "A") == [("cart", "ST-1", 2)]
    [reserved] = [e for e in oms.events() if isinstance(e, StockReserved)]
    assert reserved.pickup_location == "ST-1"
    before = snapshot(oms)
    with pytest.raises(InsufficientStock, match="cannot reserve 1 of A at ST-1: only 0"):
        oms.reserve("A", 1, ttl=timedelta(minutes=15), key="cart-2", pickup_location="ST-1")
    assert snapshot(oms) == before
    order = oms.place_order(
        draft(("A", 2), delivery=Delivery.pickup("ST-1"), reservation_key="cart")
    )
    assert held_at(oms, "A") == [(order.id, "ST-1", 2)]
    assert oms.available("A") == 9


def test_a_pickup_order_takes_over_only_what_its_cart_holds_at_the_store(oms: OMS) -> None:
    """A cart reserved on the web pool (at the warehouse) that becomes a pickup at ST-1: the
    warehouse's units go back to the pool, and the order holds what ST-1 has, the rest
    waiting for stock there, as any pickup order. Before, it kept the warehouse's units,
    which a pickup at ST-1 cannot use."""
    oms.receive("WH-1", "A", 5)
    oms.receive("ST-1", "A", 1)
    oms.reserve("A", 2, ttl=timedelta(minutes=15), key="cart")
    assert held_at(oms, "A") == [("cart", "WH-1", 2)]
    order = oms.place_order(
        draft(("A", 2), delivery=Delivery.pickup("ST-1"), reservation_key="cart")
    )
    assert held_at(oms, "A") == [(order.id, "ST-1", 1)]
    assert oms.inventory("A").backordered_for(order.id, order.lines[0].id) == 1
    assert oms.stock("WH-1", "A").available == 5


def test_an_order_takes_over_only_what_its_cart_holds_in_its_channels_pool(oms: OMS) -> None:
    """A web cart held at ST-1 placed as a marketplace order (the marketplace sells from
    WH-1 alone): the store's units go back, and the order holds WH-1's, so the marketplace's
    ATP drops as for any of its orders. Before, the order kept ST-1's units, and the
    marketplace went on promising WH-1's to others."""
    oms.configure_channel("marketplace", location_ids=["WH-1"])
    oms.receive("ST-1", "A", 2)
    oms.receive("WH-1", "A", 5)
    oms.update_location("ST-1", priority=0)  # the web cart takes the store's units first
    oms.reserve("A", 2, ttl=timedelta(minutes=15), key="cart")
    assert held_at(oms, "A") == [("cart", "ST-1", 2)]
    order = oms.place_order(draft(("A", 2), channel="marketplace", reservation_key="cart"))
    assert held_at(oms, "A") == [(order.id, "WH-1", 2)]
    assert oms.available("A", channel="marketplace") == 3


def test_a_key_repeated_for_a_cart_elsewhere_or_a_transfer_due_another_day_is_refused(
    oms: OMS, clock: ManualClock
) -> None:
    """The store of a cart and the ETA of a transfer belong to what the idempotency key
    names: a retry with the same ones returns the first result, a change is refused."""
    oms.add_location(store_location("ST-2"))
    for location in ("WH-1", "ST-1", "ST-2"):
        oms.receive(location, "A", 5)
    ttl = timedelta(minutes=15)

    def cart(store: str | None) -> object:
        return oms.reserve("A", 1, ttl=ttl, key="cart", pickup_location=store, idempotency_key="k1")

    first = cart("ST-1")
    assert cart("ST-1") == first
    for elsewhere in ("ST-2", None):
        with pytest.raises(DuplicateIdempotencyKey):
            cart(elsewhere)
    day = timedelta(days=1)

    def transfer(eta: datetime | None) -> object:
        return oms.transfer("A", "WH-1", "ST-1", 1, eta=eta, idempotency_key="k2")

    sent = transfer(clock.now() + day)
    assert transfer(clock.now() + day) == sent
    for other in (clock.now() + 2 * day, None):
        with pytest.raises(DuplicateIdempotencyKey):
            transfer(other)


@pytest.mark.parametrize(
    ("store", "error", "message"),
    [
        ("NOWHERE", InvalidLocation, "pickup location 'NOWHERE' is unknown"),
        ("WH-1", InvalidLocation, "pickup location 'WH-1' does not take pickups now"),
        ("", InvalidArgument, "pickup_location must be a non-empty string"),
    ],
)
def test_a_cart_cannot_be_reserved_at_a_place_that_hands_out_no_pickups(
    oms: OMS, store: str, error: type, message: str
) -> None:
    oms.receive("WH-1", "A", 5)
    before = snapshot(oms)
    with pytest.raises(error, match=re.escape(message)):
        oms.reserve("A", 1, ttl=timedelta(minutes=5), key="cart", pickup_location=store)
    assert snapshot(oms) == before


def test_units_no_location_can_hold_are_backordered_and_served_oldest_first(oms: OMS) -> None:
    """A receipt serves the oldest backorder first."""
    oms.receive("WH-1", "A", 1)
    first = oms.place_order(draft(("A", 3)))
    second = oms.place_order(draft(("A", 2)))
    item = oms.inventory("A")
    assert item.backordered_for(first.id, first.lines[0].id) == 2
    assert item.backordered_for(second.id, second.lines[0].id) == 2
    oms.receive("ST-1", "A", 3)
    item = oms.inventory("A")
    assert item.backordered_for(first.id, first.lines[0].id) == 0
    assert item.backordered_for(second.id, second.lines[0].id) == 1
    served = [e for e in oms.events() if isinstance(e, BackorderServed)]
    assert [(e.order_id, e.quantity) for e in served] == [(first.id, 2), (second.id, 1)]
    assert oms.available("A") == 0


def test_more_units_of_a_waiting_line_wait_with_its_backorder(oms: OMS) -> None:
    """Two held and three backordered; the customer asks for seven: the two more wait in
    the same backorder (five), in its place in the queue."""
    oms.receive("WH-1", "A", 2)
    order = oms.place_order(draft(("A", 5)))
    line = order.lines[0].id
    oms.change_quantity(order.id, line, 7)
    item = oms.inventory("A")
    assert (item.held_for(order.id, line), item.backordered_for(order.id, line)) == (2, 5)
    assert [(b.quantity, b.since) for b in item.backorders] == [(5, order.placed_at)]


def test_cancelling_open_units_releases_what_they_hold(oms: OMS) -> None:
    """Backordered units go first, then held units."""
    oms.receive("WH-1", "A", 2)
    order = oms.place_order(draft(("A", 5)))
    oms.cancel(order.id, {order.lines[0].id: 3})
    item = oms.inventory("A")
    assert item.backordered_for(order.id, order.lines[0].id) == 0
    assert item.held_for(order.id, order.lines[0].id) == 2
    oms.cancel(order.id)
    assert oms.available("A") == 2


def test_hold_events_say_what_each_line_holds_and_gives_back(oms: OMS) -> None:
    """Placing holds what there is and backorders the rest; a cancel gives back
    backordered units first; allocating gives back the rest (held and backordered)."""
    oms.receive("WH-1", "A", 2)
    order = oms.place_order(draft(("A", 5)))
    line = order.lines[0].id
    oms.cancel(order.id, {line: 1})
    oms.receive("WH-1", "A", 2)  # serves both units still backordered
    oms.allocate(order.id)
    events = oms.events()
    held = [(e.line_id, e.held, e.backordered) for e in events if isinstance(e, OrderStockHeld)]
    released = [
        (e.order_id, e.line_id, e.quantity) for e in events if isinstance(e, OrderStockReleased)
    ]
    assert held == [(line, 2, 3)]
    assert released == [(order.id, line, 1), (order.id, line, 4)]


def test_cancelling_an_order_gives_back_what_it_held_and_what_it_waited_for(oms: OMS) -> None:
    """Two units held and three backordered: cancelling the order gives back all five of
    the line in one event, and the two held are available again."""
    oms.receive("WH-1", "A", 2)
    order = oms.place_order(draft(("A", 5)))
    oms.cancel(order.id)
    released = [
        (e.order_id, e.line_id, e.quantity)
        for e in oms.events()
        if isinstance(e, OrderStockReleased)
    ]
    assert released == [(order.id, order.lines[0].id, 5)]
    assert (oms.available("A"), oms.inventory("A").backorders) == (2, ())


def test_allocating_gives_back_what_the_order_held_and_waited_for_then_waits_for_the_rest(
    oms: OMS,
) -> None:
    """Two units held and three backordered: allocating gives back all five in one event,
    allocates the two, and backorders the three again."""
    oms.receive("WH-1", "A", 2)
    order = oms.place_order(draft(("A", 5)))
    line = order.lines[0].id
    oms.allocate(order.id)
    events = oms.events()
    released = [(e.line_id, e.quantity) for e in events if isinstance(e, OrderStockReleased)]
    held = [(e.line_id, e.held, e.backordered) for e in events if isinstance(e, OrderStockHeld)]
    assert (released, held) == ([(line, 5)], [(line, 2, 3), (line, 0, 3)])
    assert oms.inventory("A").backordered_for(order.id, line) == 3


def test_a_pickup_order_holds_stock_at_the_pickup_store_only(oms: OMS) -> None:
    """Warehouse stock does not serve a click & collect order."""
    oms.receive("WH-1", "A", 10)
    oms.receive("ST-1", "A", 1)
    order = oms.place_order(draft(("A", 2), delivery=Delivery.pickup("ST-1")))
    item = oms.inventory("A")
    assert item.level("ST-1").reserved == 1
    assert item.level("WH-1").reserved == 0
    assert item.backordered_for(order.id, order.lines[0].id) == 1


def test_edits_move_the_order_holds(oms: OMS) -> None:
    """Raising a quantity holds more, lowering it and removing a line release."""
    oms.receive("WH-1", "A", 10)
    oms.receive("WH-1", "B", 10)
    order = oms.place_order(draft(("A", 2), ("B", 1)))
    oms.change_quantity(order.id, order.lines[0].id, 5)
    assert oms.available("A") == 5
    oms.change_quantity(order.id, order.lines[0].id, 1)
    assert oms.available("A") == 9
    oms.remove_line(order.id, order.lines[1].id)
    assert oms.available("B") == 10


# --- channel pools and ATP -------------------------------------------------------------------


def test_channel_pools_by_kind_and_by_id_with_buffers(oms: OMS) -> None:
    """web sells everything, marketplace warehouses less 2, app the store less 50 %."""
    oms.receive("WH-1", "A", 10)
    oms.receive("ST-1", "A", 5)
    oms.configure_channel("marketplace", kinds=[LocationKind.WAREHOUSE], buffer=2)
    oms.configure_channel("app", location_ids=["ST-1"], buffer_percent=50)
    assert oms.available("A", channel="web") == 15
    assert oms.available("A", channel="marketplace") == 8
    assert oms.available("A", channel="app") == 2


def test_atp_never_goes_below_zero_with_a_large_buffer(oms: OMS) -> None:
    """A buffer larger than the pool leaves zero to promise."""
    oms.receive("WH-1", "A", 3)
    oms.configure_channel("web", buffer=10)
    assert oms.available("A", channel="web") == 0


def test_a_location_that_leaves_a_channels_pool_hands_its_holds_to_the_rest_of_it(
    oms: OMS,
) -> None:
    """The marketplace stops selling from ST-1: its order and its cart held there hold in
    WH-1 now (what WH-1 cannot hold waits), the web's hold at ST-1 and a pickup at ST-1
    stay, and the marketplace's ATP is what WH-1 has left. Before, the holds stayed at
    ST-1 and the marketplace went on promising WH-1's units to others."""
    oms.update_location("ST-1", priority=0)  # the store first, in every pool
    oms.receive("ST-1", "A", 6)
    oms.receive("WH-1", "A", 3)
    oms.configure_channel("marketplace", location_ids=["ST-1", "WH-1"])
    market = oms.place_order(draft(("A", 2), channel="marketplace"))
    oms.reserve("A", 2, channel="marketplace", ttl=timedelta(minutes=15), key="cart")
    web = oms.place_order(draft(("A", 1)))
    pickup = oms.place_order(
        draft(("A", 1), channel="marketplace", delivery=Delivery.pickup("ST-1"))
    )
    seen = len(oms.events())
    oms.configure_channel("marketplace", location_ids=["WH-1"])
    moved = {getattr(e, "order_id", None) for e in oms.events()[seen:]}
    assert moved == {None, market.id}  # the channel's event, the cart's, the order's
    assert sorted(held_at(oms, "A")) == [
        (market.id, "WH-1", 2),
        (web.id, "ST-1", 1),
        (pickup.id, "ST-1", 1),
        ("cart", "WH-1", 1),  # WH-1's third unit: the order came first
    ]
    assert oms.available("A", channel="marketplace") == 0
    check_books(oms)


def test_a_location_that_joins_a_channels_pool_serves_its_waiting_orders(oms: OMS) -> None:
    oms.receive("ST-1", "A", 4)
    oms.configure_channel("marketplace", location_ids=["WH-1"])
    waiting = oms.place_order(draft(("A", 3), channel="marketplace"))
    assert oms.inventory("A").backordered_for(waiting.id, waiting.lines[0].id) == 3
    oms.configure_channel("marketplace", location_ids=["WH-1", "ST-1"])
    assert held_at(oms, "A") == [(waiting.id, "ST-1", 3)]
    check_books(oms)


def test_an_inactive_location_feeds_no_channel(oms: OMS) -> None:
    """Deactivating a location takes its stock out of ATP; reactivating restores it."""
    oms.receive("ST-1", "A", 4)
    oms.update_location("ST-1", active=False)
    assert oms.available("A", channel="web") == 0
    oms.update_location("ST-1", active=True)
    assert oms.available("A", channel="web") == 4


def test_changing_an_active_locations_settings_leaves_its_holds_where_they_are(
    oms: OMS,
) -> None:
    """Only deactivation moves holds: a new priority or capacity for a location that stays
    active keeps what it holds for orders and carts, even with stock elsewhere."""
    oms.receive("ST-1", "A", 5)
    order = oms.place_order(draft(("A", 2)))
    oms.reserve("A", 1, ttl=timedelta(minutes=15), key="cart")
    oms.receive("WH-1", "A", 10)
    before = oms.inventory("A").holds
    assert {h.location_id for h in before} == {"ST-1"}
    oms.update_location("ST-1", priority=9, daily_capacity=50)
    oms.update_location("ST-1", active=True)
    item = oms.inventory("A")
    assert item.holds == before
    assert item.held_for(order.id, order.lines[0].id) == 2


def test_deactivating_a_location_moves_its_holds_to_the_rest_of_the_pool(oms: OMS) -> None:
    """Orders first, oldest first, then carts: the units stay promised where the store has
    them; what it lacks is backordered (served on reactivation) or leaves the cart."""
    oms.receive("WH-1", "A", 10)
    oms.receive("ST-1", "A", 3)
    order = oms.place_order(draft(("A", 2)))
    oms.reserve("A", 2, ttl=timedelta(minutes=15), key="cart")
    late = oms.place_order(draft(("A", 3)))
    assert oms.stock("WH-1", "A").reserved == 7
    oms.update_location("WH-1", active=False)
    assert oms.stock("WH-1", "A").reserved == 0
    assert oms.stock("ST-1", "A").reserved == 3
    item = oms.inventory("A")
    assert item.held_for(order.id, order.lines[0].id) == 2
    assert item.checkout_holds("cart") == ()  # no unit left for the cart at the store
    assert item.backordered_for(late.id, late.lines[0].id) == 2
    assert item.held_for(late.id, late.lines[0].id) == 1
    assert oms.available("A", channel="web") == 0
    oms.update_location("WH-1", active=True)
    item = oms.inventory("A")
    assert item.backordered_for(late.id, late.lines[0].id) == 0
    assert item.held_for(late.id, late.lines[0].id) == 3


def test_the_oldest_orders_keep_their_units_when_a_location_closes(
    oms: OMS, clock: ManualClock
) -> None:
    """Ten one-unit orders, nine units elsewhere: the newest order waits (ids sort O-10
    before O-2, so the order of placement, not of ids, decides)."""
    oms.receive("WH-1", "A", 10)
    oms.receive("ST-1", "A", 9)
    orders = []
    for _ in range(10):
        orders.append(oms.place_order(draft(("A", 1))))
        clock.advance(timedelta(minutes=1))
    oms.update_location("WH-1", active=False)
    item = oms.inventory("A")
    waiting = [o.id for o in orders if item.backordered_for(o.id, o.lines[0].id)]
    assert waiting == [orders[-1].id]


def test_a_moved_cart_keeps_its_units_and_expiry(oms: OMS) -> None:
    oms.receive("WH-1", "A", 10)
    oms.receive("ST-1", "A", 5)
    cart = oms.reserve("A", 2, ttl=timedelta(minutes=15), key="cart")
    assert [p.location_id for p in cart.placements] == ["WH-1"]
    oms.update_location("WH-1", active=False)
    moved = oms.inventory("A").reservation("cart")
    assert (moved.quantity, moved.expires_at, moved.channel) == (2, cart.expires_at, cart.channel)
    assert [p.location_id for p in moved.placements] == ["ST-1"]
    released = [e for e in oms.events() if isinstance(e, ReservationReleased)]
    assert [e.cause for e in released] == ["location deactivated"]


def test_a_pickup_keeps_its_hold_at_a_deactivated_store(oms: OMS) -> None:
    """The customer collects at that store: its hold waits there, and nothing is re-held."""
    oms.receive("ST-1", "A", 3)
    oms.receive("WH-1", "A", 3)
    order = oms.place_order(draft(("A", 1), delivery=Delivery.pickup("ST-1")))
    before = len(oms.events())
    oms.update_location("ST-1", active=False)
    assert oms.stock("ST-1", "A").reserved == 1
    assert oms.inventory("A").held_for(order.id, order.lines[0].id) == 1
    assert [type(e).__name__ for e in oms.events()[before:]] == ["LocationUpdated"]


def test_each_configuration_of_a_channel_is_its_next_version(oms: OMS) -> None:
    """The first configuration is version 1, the next 2; their events say so."""
    first = oms.configure_channel("web", buffer=1)
    second = oms.configure_channel("web", buffer=2)
    versions = [(e.channel, e.version) for e in oms.events() if isinstance(e, ChannelConfigured)]
    assert (first.version, second.version, versions) == (1, 2, [("web", 1), ("web", 2)])


def test_channel_configuration_is_validated(oms: OMS) -> None:
    """Unknown location ids, negative buffers and percentages over 100 are refused."""
    with pytest.raises(InvalidChannelConfig, match="NOWHERE"):
        oms.configure_channel("web", location_ids=["NOWHERE"])
    with pytest.raises(InvalidChannelConfig):
        oms.configure_channel("web", buffer=-1)
    with pytest.raises(InvalidChannelConfig):
        oms.configure_channel("web", buffer_percent=101)


def test_low_stock_and_out_of_stock_events(oms: OMS) -> None:
    """Crossing the threshold signals once; reaching zero signals out of stock."""
    oms.configure_channel("web", low_stock_threshold=3)
    oms.receive("WH-1", "A", 5)
    oms.place_order(draft(("A", 1)))
    assert not [e for e in oms.events() if isinstance(e, LowStock)]
    oms.place_order(draft(("A", 2)))
    low = [e for e in oms.events() if isinstance(e, LowStock)]
    assert [(e.channel, e.atp, e.threshold) for e in low] == [("web", 2, 3)]
    assert not [e for e in oms.events() if isinstance(e, OutOfStock)], "2 are left"
    oms.place_order(draft(("A", 2)))
    assert [e.channel for e in oms.events() if isinstance(e, OutOfStock)] == ["web"]
    assert len([e for e in oms.events() if isinstance(e, LowStock)]) == 1


# --- store locator ---------------------------------------------------------------------------


def test_store_locator_lists_nearby_locations_nearest_first(
    make_oms: Callable[..., OMS],
) -> None:
    """Within the radius, with stock, for one SKU or a whole basket."""
    oms = make_oms()
    oms.add_location(store_location("ST-MITTE", geo=GeoPoint(52.52, 13.40)))
    oms.add_location(store_location("ST-SPANDAU", geo=GeoPoint(52.535, 13.20)))
    oms.add_location(store_location("ST-HAMBURG", geo=GeoPoint(53.55, 9.99)))
    for loc in ("ST-MITTE", "ST-SPANDAU", "ST-HAMBURG"):
        oms.receive(loc, "A", 3)
    oms.receive("ST-SPANDAU", "B", 1)
    here = GeoPoint(52.53, 13.38)
    found = oms.availability("A", near=here, radius_km=50, capability=Capability.PICKUP)
    assert [a.location_id for a in found] == ["ST-MITTE", "ST-SPANDAU"]
    assert found[0].distance_km is not None
    assert found[0].distance_km < found[1].distance_km  # type: ignore[operator]
    basket = oms.availability({"A": 2, "B": 1}, near=here, radius_km=50)
    assert [(a.location_id, a.available) for a in basket] == [("ST-SPANDAU", 1)]


def test_the_store_locator_s_radius_includes_its_bound(make_oms: Callable[..., OMS]) -> None:
    """A store exactly ``radius_km`` away is within it; a radius a metre shorter leaves it
    out. A store at the point itself is 0 km away, within a radius of 0."""
    oms = make_oms()
    oms.add_location(store_location("ST-MITTE", geo=GeoPoint(52.52, 13.40)))
    oms.receive("ST-MITTE", "A", 1)
    here = GeoPoint(52.53, 13.38)
    exact = oms.availability("A", near=here)[0].distance_km
    assert exact is not None
    assert [a.location_id for a in oms.availability("A", near=here, radius_km=exact)] == [
        "ST-MITTE"
    ]
    assert oms.availability("A", near=here, radius_km=exact - 0.001) == []
    at_the_door = oms.availability("A", near=GeoPoint(52.52, 13.40), radius_km=0)
    assert [(a.location_id, a.distance_km) for a in at_the_door] == [("ST-MITTE", 0.0)]


def test_the_store_locator_sorts_by_distance_not_by_id(make_oms: Callable[..., OMS]) -> None:
    """The nearer store comes first though its id sorts last."""
    oms = make_oms()
    oms.add_location(store_location("ST-A-POTSDAM", geo=GeoPoint(52.40, 13.06)))
    oms.add_location(store_location("ST-Z-MITTE", geo=GeoPoint(52.52, 13.40)))
    for loc in ("ST-A-POTSDAM", "ST-Z-MITTE"):
        oms.receive(loc, "A", 1)
    found = oms.availability("A", near=GeoPoint(52.53, 13.38))
    assert [a.location_id for a in found] == ["ST-Z-MITTE", "ST-A-POTSDAM"]


def test_the_store_locator_leaves_out_closed_locations_and_those_without_the_capability(
    make_oms: Callable[..., OMS],
) -> None:
    oms = make_oms()
    oms.add_location(store_location("ST-1"))
    oms.add_location(store_location("ST-CLOSED"))
    oms.add_location(warehouse("WH-1"))  # ships, takes no pickups
    for loc in ("ST-1", "ST-CLOSED", "WH-1"):
        oms.receive(loc, "A", 1)
    oms.update_location("ST-CLOSED", active=False)
    anywhere = [a.location_id for a in oms.availability("A")]
    pickups = [a.location_id for a in oms.availability("A", capability=Capability.PICKUP)]
    assert (anywhere, pickups) == (["ST-1", "WH-1"], ["ST-1"])


def test_the_stock_matrix_gives_each_locations_available_units(oms: OMS) -> None:
    """Per SKU and location: available after what is held and the safety stock; 0 where
    a SKU never was; every location unless some are named."""
    oms.receive("WH-1", "A", 5)
    oms.receive("ST-1", "A", 2)
    oms.set_safety_stock("WH-1", "A", 1)
    oms.place_order(draft(("A", 2)))  # holds 2 at WH-1
    assert oms.stock_matrix(["A", "B"]) == {
        "A": {"WH-1": 2, "ST-1": 2},
        "B": {"WH-1": 0, "ST-1": 0},
    }
    assert oms.stock_matrix(["A"], location_ids=["ST-1"]) == {"A": {"ST-1": 2}}


def test_available_to_promise_of_many_skus_follows_the_channel(oms: OMS) -> None:
    """A channel's buffer holds units back; no channel means every active location and
    no buffer; a SKU never stocked has none."""
    oms.receive("WH-1", "A", 5)
    oms.receive("ST-1", "B", 3)
    oms.configure_channel("web", location_ids=["WH-1"], buffer=1)
    assert oms.available_many(["A", "B", "C"], channel="web") == {"A": 4, "B": 0, "C": 0}
    assert oms.available_many(["A", "B", "C"]) == {"A": 5, "B": 3, "C": 0}
    assert oms.available_many(["A", "B"], channel="web") == {
        sku: oms.available(sku, channel="web") for sku in ("A", "B")
    }


def test_a_backordered_pickup_waits_while_its_store_is_closed(oms: OMS) -> None:
    """Stock arriving while the pickup store is closed does not serve its backorder
    (at the store or at a warehouse); reopening the store does."""
    order = oms.place_order(draft(("A", 1), delivery=Delivery.pickup("ST-1")))
    line = order.lines[0].id
    oms.update_location("ST-1", active=False)
    oms.receive("ST-1", "A", 2)
    oms.receive("WH-1", "A", 2)
    item = oms.inventory("A")
    assert (item.held_for(order.id, line), item.backordered_for(order.id, line)) == (0, 1)
    oms.update_location("ST-1", active=True)
    item = oms.inventory("A")
    assert (item.held_for(order.id, line), item.backordered_for(order.id, line)) == (1, 0)
    assert [(h.location_id, h.quantity) for h in item.holds] == [("ST-1", 1)]


# --- supply and transfers --------------------------------------------------------------------


def test_promise_dates_come_from_incoming_supply(oms: OMS, clock: ManualClock) -> None:
    """Now within ATP; the ETA that covers the rest; None beyond all supply."""
    oms.receive("WH-1", "A", 2)
    soon, later = clock.now() + timedelta(days=3), clock.now() + timedelta(days=10)
    oms.add_supply("A", "WH-1", 5, soon, reference="PO-1")
    oms.add_supply("A", "WH-1", 10, later, reference="PO-2")
    assert oms.promise_date("A", 2) == clock.now()
    assert oms.promise_date("A", 7) == soon
    assert oms.promise_date("A", 8) == later
    assert oms.promise_date("A", 18) is None
    oms.receive("WH-1", "A", 5, reference="PO-1")
    assert oms.inventory("A").supply[0].reference == "PO-2"


def test_a_promise_date_counts_the_channels_supply_after_the_waiting_backorders(
    oms: OMS, clock: ManualClock
) -> None:
    """Supply arriving at a store does not make a promise on a channel the store does not
    feed; units already backordered are served from supply before a new promise."""
    soon, later = clock.now() + timedelta(days=3), clock.now() + timedelta(days=10)
    oms.receive("WH-1", "A", 1)
    oms.add_supply("A", "ST-1", 5, soon, reference="PO-STORE")
    oms.add_supply("A", "WH-1", 2, later, reference="PO-WH")
    oms.configure_channel("marketplace", location_ids=["WH-1"])
    assert oms.promise_date("A", 2, channel="marketplace") == later
    assert oms.promise_date("A", 2) == soon
    oms.place_order(draft(("A", 4)))  # 1 held, 3 backordered
    assert oms.available("A") == 0
    assert oms.promise_date("A", 1) == soon  # 3 waiting + 1 = 4 of the 5 due soon
    assert oms.promise_date("A", 3) == later  # 3 waiting + 3 = 6: the later PO too
    assert oms.promise_date("A", 5) is None  # 8 > all 7 due


def test_a_transfer_with_an_eta_is_incoming_supply_at_its_destination(
    oms: OMS, clock: ManualClock
) -> None:
    """Units sent from the warehouse to the store by Thursday promise a pickup there for
    Thursday; the store's backorder gets that date and is served when they arrive. A
    transfer without an ETA promises nothing."""
    thursday = clock.now() + timedelta(days=3)
    oms.receive("WH-1", "A", 5)
    transfer = oms.transfer("A", "WH-1", "ST-1", 5, reference="replenish", eta=thursday)
    assert transfer.eta == thursday
    [shipped] = [e for e in oms.events() if isinstance(e, TransferShipped)]
    assert shipped.eta == thursday
    pickup = oms.place_order(draft(("A", 2), delivery=Delivery.pickup("ST-1")))
    assert oms.backorder_dates(pickup.id) == {pickup.lines[0].id: thursday}
    assert oms.promise_date("A", 3) == thursday  # 2 of the 5 go to the pickup first
    assert oms.promise_date("A", 4) is None
    [incoming] = oms.incoming_supply()
    assert incoming.arrival == ExpectedArrival(
        LocationId("ST-1"), f"transfer {transfer.id}", 5, thursday, transfer.id
    )
    saturday = thursday + timedelta(days=2)
    late = oms.reschedule_transfer("A", transfer.id, saturday)  # the truck is late
    assert late.eta == saturday
    assert oms.backorder_dates(pickup.id) == {pickup.lines[0].id: saturday}
    due = oms.events()[-1]
    assert isinstance(due, TransferDue)
    assert (due.transfer_id, due.to_location, due.quantity, due.eta) == (
        transfer.id,
        "ST-1",
        5,
        saturday,
    )
    oms.reschedule_transfer("A", transfer.id, None)  # nobody knows when
    assert oms.backorder_dates(pickup.id) == {pickup.lines[0].id: None}
    before = snapshot(oms)
    with pytest.raises(UnknownTransfer, match="no transfer 'T-9' of A is in transit"):
        oms.reschedule_transfer("A", "T-9", saturday)
    with pytest.raises(InvalidQuantity, match="transfer eta must be a timezone-aware"):
        oms.reschedule_transfer("A", transfer.id, datetime(2026, 3, 1))
    assert snapshot(oms) == before
    clock.set(thursday)
    oms.receive_transfer("A", transfer.id)
    assert oms.backorder_dates(pickup.id) == {}  # held at the store now
    oms.receive("WH-1", "B", 3)
    oms.transfer("B", "WH-1", "ST-1", 3)  # no ETA
    assert oms.promise_date("B", 1) is None


def test_backordered_lines_get_the_date_of_the_supply_that_completes_them(
    oms: OMS, clock: ManualClock
) -> None:
    """Oldest order first: the first takes 3 of the 4 due on day 3, the second waits for
    the rest on day 10; a line beyond all supply has no date, a held line is left out."""
    day = {n: clock.now() + timedelta(days=n) for n in (3, 10)}
    oms.receive("WH-1", "B", 5)
    oms.add_supply("A", "WH-1", 4, day[3], reference="PO-1")
    oms.add_supply("A", "ST-1", 10, day[10], reference="PO-2")
    first = oms.place_order(draft(("A", 3), ("B", 1)))
    second = oms.place_order(draft(("A", 4)))
    third = oms.place_order(draft(("A", 8)))
    assert oms.backorder_dates(first.id) == {first.lines[0].id: day[3]}
    assert oms.backorder_dates(second.id) == {second.lines[0].id: day[10]}
    assert oms.backorder_dates(third.id) == {third.lines[0].id: None}  # 7 of 8 due
    oms.cancel(first.id)  # the second moves up: 4 due on day 3
    assert oms.backorder_dates(second.id) == {second.lines[0].id: day[3]}
    oms.update_supply("A", "WH-1", "PO-1", eta=clock.now() - timedelta(days=1))  # overdue
    assert oms.backorder_dates(second.id) == {second.lines[0].id: clock.now()}


def test_the_backorder_queue_lists_what_waits_longest_first_with_its_date(
    oms: OMS, clock: ManualClock
) -> None:
    """Across SKUs, oldest first, each with how long it has waited and the date the supply
    gives it; ``older_than``, ``sku`` and ``limit`` narrow it; served units leave it."""
    day = timedelta(days=1)
    start = clock.now()
    oms.add_supply("A", "WH-1", 3, start + 5 * day, reference="PO-1")
    first = oms.place_order(draft(("A", 2), ("B", 1)))
    clock.advance(day)
    second = oms.place_order(draft(("A", 2)))
    clock.advance(day)

    def queue(**query: object) -> list[tuple[str, str, int, timedelta, datetime | None]]:
        found = oms.backorder_queue(**query)  # type: ignore[arg-type]
        return [(q.order_id, q.sku, q.quantity, q.waiting, q.expected) for q in found]

    assert queue() == [
        (first.id, "A", 2, 2 * day, start + 5 * day),
        (first.id, "B", 1, 2 * day, None),
        (second.id, "A", 2, day, None),  # 1 of its 2 is due
    ]
    assert queue(older_than=2 * day) == queue()[:2]
    assert queue(sku="A") == [queue()[0], queue()[2]]
    assert queue(limit=1) == queue()[:1]
    assert queue(sku="NEVER") == []
    oms.receive("WH-1", "A", 3, reference="PO-1")  # the first order's 2, then 1 of the second
    assert queue() == [(first.id, "B", 1, 2 * day, None), (second.id, "A", 1, day, None)]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"older_than": -timedelta(days=1)}, "older_than must not be negative"),
        ({"older_than": 3}, "older_than must be a timedelta"),
        ({"sku": ""}, "sku must be a non-empty string"),
        ({"limit": 0}, "limit"),
    ],
)
def test_a_wrong_backorder_queue_query_is_refused(
    oms: OMS, query: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidQuery, match=re.escape(message)):
        oms.backorder_queue(**query)  # type: ignore[arg-type]


def test_an_items_backorder_dates_cover_every_waiting_order(oms: OMS, clock: ManualClock) -> None:
    """Without an order, the item's what-if dates every backorder of the SKU; with one,
    that order's alone, with the same dates the OMS gives."""
    oms.add_supply("A", "WH-1", 3, clock.now() + timedelta(days=2), reference="PO-1")
    oms.add_supply("A", "ST-1", 2, clock.now() + timedelta(days=5), reference="PO-2")
    orders = [oms.place_order(draft(("A", n))) for n in (2, 2, 2)]
    item = oms.inventory("A")
    pool = ChannelPool(ChannelId("web"), (LocationId("WH-1"), LocationId("ST-1")))
    every = item.backorder_dates(lambda _: pool, lambda _: True, clock.now())
    assert sorted(every.values(), key=str) == [
        clock.now() + timedelta(days=2),
        clock.now() + timedelta(days=5),
        None,
    ]
    for order in orders:
        mine = item.backorder_dates(lambda _: pool, lambda _: True, clock.now(), order_id=order.id)
        assert mine == {key: when for key, when in every.items() if key[0] == order.id}
        assert mine == {(order.id, line): d for line, d in oms.backorder_dates(order.id).items()}


def test_a_backorder_waits_for_supply_its_channel_can_use(oms: OMS, clock: ManualClock) -> None:
    """Supply to a store outside the marketplace's pool dates no marketplace order; a
    pickup waits for its own store's. The query changes nothing."""
    oms.configure_channel("marketplace", location_ids=["WH-1"])
    soon, later = clock.now() + timedelta(days=2), clock.now() + timedelta(days=9)
    oms.add_supply("A", "ST-1", 5, soon, reference="PO-STORE")
    oms.add_supply("A", "WH-1", 5, later, reference="PO-WH")
    market = oms.place_order(draft(("A", 2), channel="marketplace"))
    pickup = oms.place_order(draft(("A", 4), delivery=Delivery.pickup("ST-1")))
    before = snapshot(oms)
    assert oms.backorder_dates(market.id) == {market.lines[0].id: later}
    assert oms.backorder_dates(pickup.id) == {pickup.lines[0].id: soon}
    assert snapshot(oms) == before
    with pytest.raises(UnknownOrder):
        oms.backorder_dates("O-404")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["purchase order", "transfer"]),
            st.sampled_from(["WH-1", "ST-1"]),
            st.integers(1, 6),
            st.integers(1, 10),
        ),
        max_size=5,
    ),
    st.lists(
        st.tuples(st.sampled_from(["web", "marketplace", "pickup"]), st.integers(1, 5)),
        min_size=1,
        max_size=5,
    ),
)
def test_backorder_dates_are_when_the_supply_serves_them(
    arrivals: list[tuple[str, str, int, int]], orders: list[tuple[str, int]]
) -> None:
    """Property: receive each purchase order, and each transfer from a depot, on its ETA,
    and every backordered line is held in full on the date it was given (None: still
    waiting at the end)."""
    clock = ManualClock()
    oms = OMS(MemoryStore(), clock=clock, ids=SequentialIds())
    oms.add_location(warehouse("WH-1"))
    oms.add_location(store_location("ST-1"))
    oms.add_location(warehouse("DEPOT"))
    oms.configure_channel("marketplace", location_ids=["WH-1"])
    start = clock.now()
    due: list[tuple[datetime, str, Callable[[], object]]] = []  # (eta, reference, arrival)
    for n, (kind, location, units, days) in enumerate(arrivals):
        eta = start + timedelta(days=days)
        if kind == "transfer":  # all the depot has goes out before any order is placed
            oms.receive("DEPOT", "A", units)
            sent = oms.transfer("A", "DEPOT", location, units, eta=eta)
            due.append((eta, f"transfer {sent.id}", partial(oms.receive_transfer, "A", sent.id)))
        else:
            oms.add_supply("A", location, units, eta, reference=f"PO-{n}")
            receipt = partial(oms.receive, location, "A", units, reference=f"PO-{n}")
            due.append((eta, f"PO-{n}", receipt))
    placed = []
    for channel, units in orders:
        pickup = Delivery.pickup("ST-1") if channel == "pickup" else None
        on = "web" if pickup else channel
        placed.append(oms.place_order(draft(("A", units), channel=on, delivery=pickup)))
    promised = {o.lines[0].id: oms.backorder_dates(o.id)[o.lines[0].id] for o in placed}
    served: dict[LineId, datetime | None] = dict.fromkeys(promised)
    for eta, _, arrive in sorted(due, key=lambda d: d[:2]):
        clock.set(eta)
        arrive()
        for order in placed:
            line = order.lines[0].id
            if served[line] is None and not oms.inventory("A").backordered_for(order.id, line):
                served[line] = clock.now()
    assert served == promised


@pytest.mark.parametrize("eta", ["2026-02-01", datetime(2026, 2, 1)])
def test_a_supply_eta_must_be_an_aware_datetime(oms: OMS, eta: object) -> None:
    """A date string or a naive datetime (whose zone is anyone's guess) is refused."""
    with pytest.raises(InvalidQuantity, match="timezone-aware datetime"):
        oms.add_supply("A", "WH-1", 5, eta, reference="PO-1")  # type: ignore[arg-type]
    assert oms.inventory("A").supply == ()


def test_a_delayed_purchase_order_moves_the_promise_date(oms: OMS, clock: ManualClock) -> None:
    """The vendor's new date, then a smaller PO line: promise dates follow each change."""
    soon, later = clock.now() + timedelta(days=3), clock.now() + timedelta(days=10)
    oms.add_supply("A", "WH-1", 5, soon, reference="PO-1")
    oms.add_supply("A", "WH-1", 10, later, reference="PO-2")
    assert oms.promise_date("A", 5) == soon
    delayed = oms.update_supply("A", "WH-1", "PO-1", eta=clock.now() + timedelta(days=20))
    assert (delayed.quantity, delayed.eta) == (5, clock.now() + timedelta(days=20))
    assert oms.promise_date("A", 5) == later  # PO-2 now comes first
    assert oms.promise_date("A", 12) == delayed.eta
    smaller = oms.update_supply("A", "WH-1", "PO-2", quantity=4)
    assert (smaller.quantity, smaller.eta) == (4, later)
    assert oms.promise_date("A", 5) == delayed.eta
    assert oms.promise_date("A", 10) is None
    updates = [e for e in oms.events() if isinstance(e, SupplyUpdated)]
    assert [(u.reference, u.quantity, u.eta) for u in updates] == [
        ("PO-1", 5, delayed.eta),
        ("PO-2", 4, later),
    ]


def test_a_cancelled_purchase_order_promises_nothing(oms: OMS, clock: ManualClock) -> None:
    """Its units give no date; a later receipt under its reference is a plain receipt."""
    eta = clock.now() + timedelta(days=3)
    oms.add_supply("A", "WH-1", 5, eta, reference="PO-1")
    oms.add_supply("A", "ST-1", 5, eta, reference="PO-1")  # the same PO to another location
    cancelled = oms.cancel_supply("A", "WH-1", "PO-1")
    assert (cancelled.location_id, cancelled.quantity, cancelled.eta) == ("WH-1", 5, eta)
    assert [(s.location_id, s.reference) for s in oms.inventory("A").supply] == [("ST-1", "PO-1")]
    assert oms.promise_date("A", 6) is None
    [event] = [e for e in oms.events() if isinstance(e, SupplyCancelled)]
    assert (event.reference, event.location_id, event.quantity) == ("PO-1", "WH-1", 5)
    oms.receive("WH-1", "A", 5, reference="PO-1")
    assert oms.inventory("A").supply == (Supply("PO-1", LocationId("ST-1"), 5, eta),)


def test_a_change_to_supply_counts_what_is_still_due(oms: OMS, clock: ManualClock) -> None:
    """After a partial receipt the supply brings the rest; an update sets what is due."""
    eta = clock.now() + timedelta(days=3)
    oms.add_supply("A", "WH-1", 10, eta, reference="PO-1")
    oms.receive("WH-1", "A", 4, reference="PO-1")
    assert oms.inventory("A").supply[0].quantity == 6
    assert oms.update_supply("A", "WH-1", "PO-1", quantity=2).quantity == 2
    assert oms.promise_date("A", 6) == eta
    assert oms.promise_date("A", 7) is None


def test_incoming_supply_lists_the_latest_purchase_orders_first(
    oms: OMS, clock: ManualClock
) -> None:
    """What a buyer chases: supply still expected, earliest ETA first, with how late it is
    and how many units of its SKU customers wait for; what is due by now is the overdue
    part. A receipt in full, a new date or a cancellation moves it."""
    day = timedelta(days=1)
    start = clock.now()
    oms.add_supply("A", "WH-1", 5, start + 3 * day, reference="PO-1")
    oms.add_supply("B", "ST-1", 5, start + day, reference="PO-2")
    oms.add_supply("A", "ST-1", 5, start + 5 * day, reference="PO-3")
    oms.place_order(draft(("A", 2)))  # nothing on hand: backordered
    clock.advance(3 * day)

    def listed(**query: object) -> list[tuple[str, str, timedelta, int]]:
        found = oms.incoming_supply(**query)  # type: ignore[arg-type]
        return [(i.sku, i.arrival.reference, i.late, i.backordered) for i in found]

    assert listed() == [
        ("B", "PO-2", 2 * day, 0),
        ("A", "PO-1", timedelta(0), 2),
        ("A", "PO-3", timedelta(0), 2),
    ]
    assert listed(due_by=clock.now()) == listed()[:2]
    assert listed(due_by=clock.now() - 2 * day) == listed()[:1]
    assert listed(location_id="ST-1") == [listed()[0], listed()[2]]
    assert listed(limit=1) == listed()[:1]
    oms.receive("ST-1", "B", 5, reference="PO-2")
    oms.update_supply("A", "WH-1", "PO-1", eta=clock.now() + 4 * day)
    oms.cancel_supply("A", "ST-1", "PO-3")
    assert listed() == [("A", "PO-1", timedelta(0), 2)]
    assert listed(due_by=clock.now()) == []


@pytest.mark.parametrize(
    ("query", "error", "message"),
    [
        ({"due_by": datetime(2026, 3, 1)}, InvalidQuery, "due_by must be a timezone-aware"),
        ({"due_by": "2026-03-01"}, InvalidQuery, "due_by must be a timezone-aware"),
        ({"limit": -1}, InvalidQuery, "limit"),
        ({"location_id": "NOWHERE"}, UnknownLocation, "NOWHERE"),
    ],
)
def test_a_wrong_incoming_supply_query_is_refused(
    oms: OMS, query: dict[str, object], error: type, message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        oms.incoming_supply(**query)  # type: ignore[arg-type]


def test_supply_already_expected_under_its_reference_is_refused(
    oms: OMS, clock: ManualClock
) -> None:
    """A feed that sends a PO line twice does not count it twice; once received in full,
    the reference is free again."""
    eta = clock.now() + timedelta(days=3)
    oms.add_supply("A", "WH-1", 5, eta, reference="PO-1")
    before = snapshot(oms)
    with pytest.raises(DuplicateSupply, match="'PO-1' of A is already expected at WH-1"):
        oms.add_supply("A", "WH-1", 5, eta, reference="PO-1")
    assert snapshot(oms) == before
    oms.add_supply("B", "WH-1", 5, eta, reference="PO-1")  # another SKU's line of the PO
    oms.receive("WH-1", "A", 5, reference="PO-1")
    oms.add_supply("A", "WH-1", 3, eta, reference="PO-1")
    assert [s.quantity for s in oms.inventory("A").supply] == [3]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda oms: oms.update_supply("A", "WH-1", "PO-9", quantity=1),
            UnknownSupply,
            "no supply 'PO-9' of A is expected at WH-1",
        ),
        (lambda oms: oms.cancel_supply("A", "ST-1", "PO-1"), UnknownSupply, "expected at ST-1"),
        (lambda oms: oms.cancel_supply("B", "WH-1", "PO-1"), UnknownSupply, "'PO-1' of B"),
        (lambda oms: oms.cancel_supply("A", "NOWHERE", "PO-1"), UnknownLocation, "NOWHERE"),
        (
            lambda oms: oms.update_supply("A", "WH-1", "PO-1"),
            InvalidArgument,
            "update_supply needs a new quantity, a new eta or both",
        ),
        (
            lambda oms: oms.update_supply("A", "WH-1", "PO-1", quantity=0),
            InvalidQuantity,
            "supply quantity",
        ),
        (
            lambda oms: oms.update_supply("A", "WH-1", "PO-1", eta=datetime(2026, 3, 1)),
            InvalidQuantity,
            "timezone-aware datetime",
        ),
        (
            lambda oms: oms.add_supply("A", "WH-1", 1, datetime.now(UTC), reference=""),
            InvalidArgument,
            "supply reference must be a non-empty string, got ''",
        ),
    ],
)
def test_a_wrong_change_to_supply_is_refused_and_changes_nothing(
    oms: OMS, clock: ManualClock, call: Callable[[OMS], object], error: type, message: str
) -> None:
    """Unknown supply, location or change; a reference that could never be matched."""
    oms.add_supply("A", "WH-1", 5, clock.now() + timedelta(days=3), reference="PO-1")
    before = snapshot(oms)
    with pytest.raises(error, match=re.escape(message)):
        call(oms)
    assert snapshot(oms) == before


SUPPLY_CHANGES = st.one_of(
    st.tuples(st.just("add"), st.integers(1, 9), st.integers(0, 30)),
    st.tuples(
        st.just("update"), st.none() | st.integers(1, 9), st.none() | st.integers(0, 30)
    ).filter(lambda step: step[1:] != (None, None)),
    st.tuples(st.just("cancel"), st.none(), st.none()),
    st.tuples(st.just("receive"), st.integers(1, 12), st.none()),
)


Due = dict[tuple[str, str], tuple[int, datetime]]
SupplyStep = tuple[str, str, tuple[str, int | None, int | None]]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["WH-1", "ST-1"]), st.sampled_from(["PO-1", "PO-2"]), SUPPLY_CHANGES
        ),
        max_size=25,
    ),
    st.integers(1, 40),
)
def test_supply_and_promise_dates_follow_every_change(steps: list[SupplyStep], wanted: int) -> None:
    """Property: after any run of adds, updates, cancellations and receipts, the supply
    expected is a plain model's (refused steps change nothing) and the promise date is
    the first ETA by which received stock and supply cover ``wanted``."""
    clock = ManualClock()
    oms = OMS(MemoryStore(), clock=clock, ids=SequentialIds())
    oms.add_location(warehouse("WH-1"))
    oms.add_location(store_location("ST-1"))
    due: Due = {}
    received = sum(supply_step(oms, clock, due, step) for step in steps)
    supply = oms.inventory("A").supply
    assert {(s.location_id, s.reference): (s.quantity, s.eta) for s in supply} == due
    promised = clock.now() if wanted <= received else None
    short = wanted - received
    for units, eta in sorted(due.values(), key=lambda d: d[1]):
        short -= units
        if promised is None and short <= 0:
            promised = eta
    assert oms.promise_date("A", wanted) == promised
    listed = [(i.arrival.location_id, i.arrival.reference) for i in oms.incoming_supply()]
    assert listed == sorted(due, key=lambda key: (due[key][1], key))
    overdue = oms.incoming_supply(due_by=clock.now())
    assert {(i.arrival.location_id, i.arrival.reference) for i in overdue} == {
        key for key, (_, eta) in due.items() if eta <= clock.now()
    }


def supply_step(oms: OMS, clock: ManualClock, due: Due, step: SupplyStep) -> int:
    """Run one step on the OMS and on ``due``, the model; the units it received."""
    location, reference, (kind, units, days) = step
    key = (location, reference)
    eta = None if days is None else clock.now() + timedelta(days=days)
    if kind == "receive":
        assert units is not None
        oms.receive(location, "A", units, reference=reference)
        still_due, when = due.pop(key, (0, clock.now()))
        if still_due > units:
            due[key] = (still_due - units, when)
        return units
    commands: dict[str, Callable[[], object]] = {
        "add": lambda: oms.add_supply("A", location, units, eta, reference),  # type: ignore[arg-type]
        "update": lambda: oms.update_supply("A", location, reference, quantity=units, eta=eta),
        "cancel": lambda: oms.cancel_supply("A", location, reference),
    }
    if (key in due) == (kind == "add"):
        with pytest.raises(DuplicateSupply if kind == "add" else UnknownSupply):
            commands[kind]()
        return 0
    commands[kind]()
    if kind == "cancel":
        del due[key]
    else:  # an add gives both; an update what changes
        old_units, old_eta = due.get(key, (0, clock.now()))
        due[key] = (old_units if units is None else units, old_eta if eta is None else eta)
    return 0


def test_transfers_are_available_nowhere_while_in_transit(oms: OMS) -> None:
    """Out now, in on receipt; the ledger has both legs."""
    oms.receive("WH-1", "A", 10)
    transfer = oms.transfer("A", "WH-1", "ST-1", 4, reference="replenish")
    assert oms.available("A") == 6
    assert oms.inventory("A").in_transit == 4
    level = oms.receive_transfer("A", transfer.id)
    assert level.on_hand == 4
    assert oms.available("A") == 10
    kinds = [r.kind for r in oms.ledger("A")]
    assert kinds == [MovementKind.RECEIPT, MovementKind.TRANSFER_OUT, MovementKind.TRANSFER_IN]
    with pytest.raises(UnknownTransfer):
        oms.receive_transfer("A", transfer.id)


def test_a_transfer_beyond_available_is_refused(oms: OMS) -> None:
    """Reserved units cannot be sent away."""
    oms.receive("WH-1", "A", 3)
    oms.reserve("A", 2, ttl=timedelta(minutes=5), key="cart")
    with pytest.raises(InsufficientStock, match="1 available"):
        oms.transfer("A", "WH-1", "ST-1", 2)


# --- bulk feeds ------------------------------------------------------------------------------


def test_a_delta_feed_and_an_absolute_feed(oms: OMS) -> None:
    """Deltas receive or adjust; absolute positions are counts."""
    assert oms.receive_many([("WH-1", "A", 5), ("ST-1", "A", 2), ("WH-1", "B", 1)]) == 3
    oms.receive_many([("WH-1", "A", -1)])
    assert oms.stock("WH-1", "A").on_hand == 4
    moved = len(oms.ledger())
    assert oms.receive_many([("WH-1", "A", 0), ("WH-1", "B", 0)]) == 2  # a delta of 0: a no-op
    assert (oms.stock("WH-1", "A").on_hand, len(oms.ledger())) == (4, moved)
    oms.receive_many([("WH-1", "A", 9), ("ST-1", "A", 0)], mode="absolute")
    assert oms.stock("WH-1", "A").on_hand == 9
    assert oms.stock("ST-1", "A").on_hand == 0
    assert oms.reconcile() == []


def test_a_feed_with_one_bad_position_applies_nothing(oms: OMS) -> None:
    """All or nothing: an unknown location in the last position keeps the first out."""
    before = snapshot(oms)
    with pytest.raises(UnknownLocation):
        oms.receive_many([("WH-1", "A", 5), ("NOWHERE", "B", 1)])
    assert snapshot(oms) == before


def test_location_settings_can_change(oms: OMS) -> None:
    """Capabilities, priority and capacity are updated in place."""
    updated = oms.update_location(
        "ST-1", capabilities=[Capability.PICKUP], priority=2, daily_capacity=40
    )
    assert updated.capabilities == frozenset({Capability.PICKUP})
    assert (updated.priority, updated.daily_capacity) == (2, 40)
    with pytest.raises(UnknownLocation):
        oms.update_location("NOWHERE", active=False)


def test_location_fields_are_validated() -> None:
    """Priority is an int, capacity an int >= 0 or None, ids non-empty."""
    with pytest.raises(InvalidLocation):
        Location(id="", kind="store", geo=None, capabilities=[])
    with pytest.raises(InvalidLocation):
        Location(id="X", kind="store", geo=None, capabilities=[], daily_capacity=-1)
    closed_for_today = Location(id="X", kind="store", geo=None, capabilities=[], daily_capacity=0)
    assert closed_for_today.daily_capacity == 0
    with pytest.raises(InvalidLocation):
        Location(id="X", kind="store", geo=None, capabilities=[], priority=1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", 7, "id must be a string, got 7"),
        ("location_ids", ["WH-1"], "location_ids must be a frozenset, got ['WH-1']"),
        ("kinds", "store", "kinds must be a frozenset, got 'store'"),
        ("buffer", -1, "channel buffer must be an int >= 0, got -1"),
        ("buffer", True, "channel buffer must be an int >= 0, got True"),
        ("buffer_percent", 101, "buffer_percent must be between 0 and 100, got 101"),
        ("buffer_percent", "5", "buffer_percent must be between 0 and 100, got '5'"),
        ("buffer_percent", Decimal("NaN"), "got Decimal('NaN')"),
        ("low_stock_threshold", 2.5, "low_stock_threshold must be None or an int >= 0"),
    ],
)
def test_a_channel_made_directly_is_checked_as_configure_channel_checks_it(
    field: str, value: object, message: str
) -> None:
    """A channel a store reads back or a test builds obeys the rules of the command."""
    with pytest.raises(InvalidChannelConfig, match=re.escape(message)):
        Channel(**{"id": ChannelId("web"), field: value})  # type: ignore[arg-type]
    assert Channel(ChannelId("web"), buffer_percent=12).buffer_percent == Decimal(12)


@pytest.mark.parametrize(
    "time_zone",
    ["", "Mars/Olympus", "America", "/etc/localtime", "../UTC", "zone.tab", "+02:00", 2],
)
def test_a_time_zone_is_an_iana_name(oms: OMS, time_zone: object) -> None:
    """Not a folder of the database, a path, an offset or a file that is no zone; a
    refused update changes nothing."""
    with pytest.raises(InvalidLocation, match="IANA time zone name such as 'Europe/Berlin'"):
        Location(id="X", kind="store", geo=None, capabilities=[], time_zone=time_zone)  # type: ignore[arg-type]
    before = oms.locations()
    with pytest.raises(InvalidLocation, match=re.escape(repr(time_zone))):
        oms.update_location("ST-1", time_zone=time_zone)  # type: ignore[arg-type]
    assert oms.locations() == before


def test_a_location_keeps_its_time_zone_until_told(oms: OMS, clock: ManualClock) -> None:
    """Other changes leave it; None goes back to the clock's day."""
    assert oms.update_location("ST-1", time_zone="America/Chicago").time_zone == "America/Chicago"
    assert oms.update_location("ST-1", priority=3).time_zone == "America/Chicago"
    [store] = [loc for loc in oms.locations() if loc.id == "ST-1"]
    evening = datetime(2026, 1, 1, 23, tzinfo=UTC)  # 17:00 in Chicago
    assert (store.day_at(evening), store.day_at(evening + timedelta(hours=6))) == (
        evening.date(),
        evening.date(),
    )
    assert oms.update_location("ST-1", time_zone=None).time_zone is None


@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 10), st.integers(0, 10)), max_size=8),
    st.integers(0, 20),
    st.integers(0, 100),
    st.integers(0, 60),
)
def test_summing_a_pool_until_it_promises_enough_answers_as_the_whole_sum(
    levels: list[tuple[int, int, int]], buffer: int, percent: int, wanted: int
) -> None:
    """Property: stopping the pool's sum once it promises ``wanted`` gives
    ``min(wanted, ATP)``, whatever the levels and the buffer; so does the low-stock check
    built on it."""
    locations = tuple(LocationId(f"L-{n}") for n in range(len(levels) + 1))  # one unstocked
    item = InventoryItem(
        Sku("A"),
        levels={
            location: StockLevel(on_hand, allocated, reserved)
            for location, (on_hand, allocated, reserved) in zip(locations, levels, strict=False)
        },
    )
    pool = ChannelPool(ChannelId("web"), locations, buffer, Decimal(percent))
    assert pool.promisable_up_to(item.levels, wanted) == min(wanted, item.atp(pool))
    assert _promises_more_than(item, pool, wanted) == (item.atp(pool) > wanted)


def test_low_stock_is_signalled_on_each_channel_that_crosses(oms: OMS) -> None:
    """With many channels watching, each signals where its own ATP crosses its threshold."""
    for n in range(12):
        oms.configure_channel(f"ch-{n}", low_stock_threshold=n, buffer=n % 3)
    oms.receive("WH-1", "A", 12)
    oms.place_order(draft(("A", 4)))
    crossed = sorted(
        (e.channel, e.atp, e.threshold) for e in oms.events() if isinstance(e, LowStock)
    )
    expected = []
    for n in range(12):  # ATP before: 12 - buffer; after: 8 - buffer
        was, now = 12 - n % 3, 8 - n % 3
        if now <= n < was:
            expected.append((f"ch-{n}", now, n))
    assert crossed == sorted(expected)


def test_an_item_allocates_at_one_location_up_to_what_is_available() -> None:
    """``InventoryItem.allocate`` (the aggregate's own single-location allocation, for
    callers that build their own flow) moves units to allocated with a ledger row, and
    refuses more than is available there."""
    at = ManualClock().now()
    wh = LocationId("WH")
    item = InventoryItem(Sku("A")).receive(wh, 5, "po", at).item
    change = item.allocate(wh, 3, "O-1-F1", at)
    assert (change.item.level(wh).on_hand, change.item.level(wh).allocated) == (5, 3)
    assert [
        (m.kind, m.on_hand_delta, m.allocated_delta, m.reference) for m in change.movements
    ] == [(MovementKind.ALLOCATION, 0, 3, "O-1-F1")]
    with pytest.raises(InsufficientStock, match="cannot allocate 3 of A at WH: 2 available"):
        change.item.allocate(wh, 3, "O-2-F1", at)
    with pytest.raises(InvalidQuantity):
        change.item.allocate(wh, 0, "O-2-F1", at)


def test_a_cart_taken_over_by_two_lines_gives_each_only_what_it_held() -> None:
    """A cart holds 3 units at one location; the order's two lines of the SKU want 1 and
    3: the first takes 1, the second the 2 left, and still needs 1."""
    at = ManualClock().now()
    wh, web = LocationId("WH"), ChannelId("web")
    item = InventoryItem(Sku("A")).receive(wh, 3, "po", at).item
    item = item.reserve("cart", 3, ChannelPool(web, (wh,)), at + timedelta(hours=1), at).item
    first, second = LineId("L1"), LineId("L2")
    change, remaining = item.take_over("cart", OrderId("O-1"), [(first, 1), (second, 3)], at)
    assert remaining == {first: 0, second: 1}
    held = change.item
    assert (held.held_for("O-1", first), held.held_for("O-1", second)) == (1, 2)
    assert (held.level(wh).reserved, held.discrepancies()) == (3, [])


def test_an_item_refuses_reservations_and_transfers_it_does_not_have() -> None:
    """The item itself (not only the OMS in front of it) names an unknown cart or transfer."""
    at = ManualClock().now()
    item = InventoryItem(Sku("A")).receive(LocationId("WH"), 5, "po", at).item
    for call in (
        lambda: item.reservation("cart"),
        lambda: item.extend("cart", at, at),
        lambda: item.release_reservation("cart", at),
    ):
        with pytest.raises(UnknownReservation, match="no reservation 'cart' holds A"):
            call()
    with pytest.raises(UnknownTransfer, match="no transfer 'T-9' of A is in transit"):
        item.receive_transfer("T-9", at)


def test_a_hand_over_moves_allocated_units_and_refuses_more_than_allocated() -> None:
    """A ship-to-store parcel's units move, allocated, from one location to another; asking
    for more than is allocated changes nothing."""
    at = ManualClock().now()
    wh, st = LocationId("WH"), LocationId("ST")
    item = InventoryItem(Sku("A")).receive(wh, 5, "po", at).item
    item = item.allocate_order(OrderId("O-1"), [(wh, 2, "O-1-F1")], at).item
    with pytest.raises(InsufficientStock, match="cannot hand over 3 of A from WH: 2 allocated"):
        item.hand_over(wh, st, 3, "handover O-1-F1", at)
    moved = item.hand_over(wh, st, 2, "handover O-1-F1", at)
    assert (moved.item.level("WH").on_hand, moved.item.level("WH").allocated) == (3, 0)
    assert (moved.item.level("ST").on_hand, moved.item.level("ST").allocated) == (2, 2)
    assert [(m.kind, m.on_hand_delta, m.allocated_delta) for m in moved.movements] == [
        (MovementKind.TRANSFER_OUT, -2, -2),
        (MovementKind.TRANSFER_IN, 2, 2),
    ]
