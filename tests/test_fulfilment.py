"""Allocation and fulfilment end to end through the OMS on the in-memory store.

Every scenario ends with ``check_books``: levels agree with the ledger, allocated stock
equals the orders' allocated units, units shipped out equal units shipped on orders, and
every open unit is held or backordered exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from omscore import (
    OMS,
    Address,
    Capability,
    Delivery,
    FulfillmentStatus,
    GeoPoint,
    Location,
    LocationKind,
    OrderStatus,
)
from omscore.adapters.carriers import TableRateCarrier
from omscore.adapters.payments import FakePaymentGateway
from omscore.errors import (
    DuplicateIdempotencyKey,
    InvalidQuantity,
    InvalidTransition,
    NotCancellable,
    NothingToAllocate,
    OrderOnHold,
    UnknownFulfillment,
)
from omscore.events import (
    FulfillmentCreated,
    FulfillmentProgressed,
    FulfillmentRejected,
    FulfillmentSentToStore,
    FulfillmentShipped,
    FulfillmentShortPicked,
    FulfillmentSplit,
    PickupExpired,
    UnitsCancelled,
)
from omscore.inventory import MovementKind
from omscore.orders import FulfillmentOrder, Order
from omscore.sourcing import (
    AllocationPlan,
    CostModel,
    FewestShipmentsPolicy,
    LowestCostPolicy,
    NearestPolicy,
    NetworkSnapshot,
    PriorityPolicy,
    SourcingRequest,
)
from omscore.testing import ManualClock
from omscore.testing.invariants import check_books

from .conftest import LabelRecorder, draft, eur, warehouse

BERLIN = GeoPoint(52.53, 13.38)
HOME = Address(country="DE", postal_code="10115", city="Berlin", geo=BERLIN)


@pytest.fixture
def network(make_oms: Callable[..., OMS]) -> Callable[..., OMS]:
    """An OMS over a Berlin store, two warehouses and a dropship supplier."""

    def build(**kwargs: object) -> OMS:
        kwargs.setdefault("carrier", TableRateCarrier())
        oms = make_oms(**kwargs)
        for location in (
            Location(
                id="ST-BER",
                kind=LocationKind.STORE,
                geo=GeoPoint(52.52, 13.41),
                capabilities=frozenset(Capability),
                priority=5,
            ),
            Location(
                id="WH-HAM",
                kind=LocationKind.WAREHOUSE,
                geo=GeoPoint(53.55, 9.99),
                capabilities={Capability.SHIP, Capability.RETURNS},
                priority=1,
            ),
            Location(
                id="WH-MUC",
                kind=LocationKind.WAREHOUSE,
                geo=GeoPoint(48.14, 11.58),
                capabilities={Capability.SHIP},
                priority=2,
            ),
            Location(
                id="SUP-1",
                kind=LocationKind.SUPPLIER,
                geo=GeoPoint(50.11, 8.68),
                capabilities={Capability.SHIP},
                priority=9,
            ),
        ):
            oms.add_location(location)
        return oms

    return build


def test_ship_an_order_from_allocation_to_delivery(network: Callable[..., OMS]) -> None:
    """Allocate, accept, pick, pack, ship with a carrier label, deliver."""
    oms = network()
    oms.receive("WH-HAM", "A", 10)
    order = oms.place_order(draft(("A", 2)))
    plan = oms.allocate(order.id)
    assert plan.shipments == ("WH-HAM",)
    order = oms.get_order(order.id)
    assert order.status is OrderStatus.ALLOCATED
    f = order.fulfillments[0]
    assert (f.id, f.location_id, f.status) == (f"{order.id}-F1", "WH-HAM", FulfillmentStatus.OPEN)
    assert oms.stock("WH-HAM", "A").allocated == 2
    assert oms.stock("WH-HAM", "A").reserved == 0
    for step in (oms.accept_fulfillment, oms.pick, oms.pack):
        step(f.id)
    order = oms.ship(f.id)
    assert order.status is OrderStatus.SHIPPED
    assert order.fulfillments[0].tracking is not None
    assert order.fulfillments[0].tracking.startswith("TR")
    level = oms.stock("WH-HAM", "A")
    assert (level.on_hand, level.allocated) == (8, 0)
    assert [m.kind for m in oms.ledger("A")][-1] is MovementKind.SHIPMENT
    order = oms.deliver(f.id)
    assert order.status is OrderStatus.DELIVERED
    assert order.lines[0].delivered == 2
    check_books(oms)


def test_ship_from_store_when_the_store_is_cheapest(network: Callable[..., OMS]) -> None:
    """The Berlin store ships to a Berlin customer under the lowest-cost policy."""
    oms = network(sourcing=LowestCostPolicy(CostModel()))
    oms.receive("ST-BER", "A", 3)
    oms.receive("WH-MUC", "A", 30)
    order = oms.place_order(draft(("A", 2), delivery=Delivery.ship(HOME)))
    assert oms.allocate(order.id).shipments == ("ST-BER",)
    check_books(oms)


def test_dropship_from_a_supplier(network: Callable[..., OMS]) -> None:
    """Only the supplier has it: the supplier gets the fulfilment order."""
    oms = network()
    oms.receive("SUP-1", "RARE", 50)
    order = oms.place_order(draft(("RARE", 1)))
    oms.allocate(order.id)
    f = oms.get_order(order.id).fulfillments[0]
    assert f.location_id == "SUP-1"
    oms.ship(f.id, tracking="SUP-TRACK-1", carrier="SupplierPost")
    assert oms.get_order(order.id).fulfillments[0].tracking == "SUP-TRACK-1"
    check_books(oms)


def test_click_and_collect_then_collected(network: Callable[..., OMS]) -> None:
    """Pickup at the store: ready, then collected (delivered without shipping)."""
    oms = network()
    oms.receive("ST-BER", "A", 2)
    oms.receive("WH-HAM", "A", 50)
    order = oms.place_order(draft(("A", 2), delivery=Delivery.pickup("ST-BER")))
    assert oms.allocate(order.id).shipments == ("ST-BER",)
    f = oms.get_order(order.id).fulfillments[0]
    with pytest.raises(InvalidTransition, match="pickup fulfilment"):
        oms.ship(f.id)
    oms.ready_for_pickup(f.id)
    order = oms.collect(f.id)
    assert order.status is OrderStatus.DELIVERED
    assert oms.stock("ST-BER", "A").on_hand == 0
    created = [e for e in oms.events() if isinstance(e, FulfillmentCreated)]
    assert [(e.location_id, e.method) for e in created] == [("ST-BER", "pickup")]
    assert type(created[0].method) is str  # the value itself, as stored and compared
    check_books(oms)


def test_each_step_of_a_parcel_says_its_new_status_in_its_event(
    network: Callable[..., OMS],
) -> None:
    """Accept, pick, pack, ship, deliver: one event each, in order, naming the step."""
    oms = network()
    oms.receive("WH-HAM", "A", 1)
    order = oms.place_order(draft(("A", 1)))
    oms.allocate(order.id)
    f = oms.get_order(order.id).fulfillments[0]
    oms.accept_fulfillment(f.id)
    oms.pick(f.id)
    oms.pack(f.id)
    oms.ship(f.id, tracking="T1")
    oms.deliver(f.id)
    said = [e for e in oms.events() if getattr(e, "fulfillment_id", None) == f.id]
    steps = [e.status if isinstance(e, FulfillmentProgressed) else type(e).__name__ for e in said]
    assert steps == [
        "FulfillmentCreated",
        "accepted",
        "picked",
        "packed",
        "FulfillmentShipped",
        "delivered",
    ]


def test_an_uncollected_pickup_expires_and_its_stock_returns(
    network: Callable[..., OMS], clock: ManualClock
) -> None:
    """After the pickup window the units are cancelled and the shelf stock is free again."""
    oms = network(pickup_expiry=timedelta(days=3))
    oms.receive("ST-BER", "A", 2)
    order = oms.place_order(draft(("A", 2), delivery=Delivery.pickup("ST-BER")))
    oms.allocate(order.id)
    f = oms.get_order(order.id).fulfillments[0]
    oms.ready_for_pickup(f.id)
    clock.advance(timedelta(days=2))
    assert oms.expire_pickups() == 0
    clock.advance(timedelta(days=1))
    assert oms.expire_pickups() == 1
    order = oms.get_order(order.id)
    assert order.status is OrderStatus.CANCELLED
    assert order.fulfillments[0].status is FulfillmentStatus.EXPIRED
    assert oms.stock("ST-BER", "A").available == 2
    said = [e for e in oms.events() if getattr(e, "fulfillment_id", None) == f.id]
    assert [type(e).__name__ for e in said] == [
        "FulfillmentCreated",
        "FulfillmentProgressed",
        "PickupExpired",
    ]
    progressed, expired = said[1], said[2]
    assert isinstance(progressed, FulfillmentProgressed)
    assert progressed.status == "ready_for_pickup"
    assert isinstance(expired, PickupExpired)
    assert [(u.sku, u.quantity) for u in expired.units] == [("A", 2)]
    check_books(oms)


def ship_to_store(network: Callable[..., OMS], **kwargs: object) -> tuple[OMS, str]:
    """A pickup at ST-BER, which has none, sourced from WH-HAM and ready at the store."""
    oms = network(sourcing=LowestCostPolicy(allow_ship_to_store=True), **kwargs)
    oms.receive("WH-HAM", "A", 5)
    order = oms.place_order(draft(("A", 2), delivery=Delivery.pickup("ST-BER")))
    oms.allocate(order.id)
    parcel = oms.get_order(order.id).fulfillments[0]
    assert (parcel.location_id, parcel.method.value) == ("WH-HAM", "pickup")
    oms.pack(parcel.id)
    assert oms.stock("WH-HAM", "A").allocated == 2  # packed, still at the warehouse
    ready = oms.ready_for_pickup(parcel.id).fulfillments[0]
    assert (ready.location_id, ready.handover_location) == ("WH-HAM", "ST-BER")
    return oms, parcel.id


def test_a_ship_to_store_parcel_comes_from_the_warehouse_nearest_the_store(
    network: Callable[..., OMS],
) -> None:
    """Distance counts from the pickup store: Potsdam (priority 9) before Hamburg
    (priority 1) for a pickup in Berlin."""
    oms = network(sourcing=NearestPolicy(allow_ship_to_store=True))
    oms.add_location(warehouse("WH-POT", priority=9, geo=GeoPoint(52.39, 13.06)))
    oms.receive("WH-HAM", "A", 5)
    oms.receive("WH-POT", "A", 5)
    order = oms.place_order(draft(("A", 2), delivery=Delivery.pickup("ST-BER")))
    assert oms.allocate(order.id).shipments == ("WH-POT",)


def on_hand_and_allocated(oms: OMS, location_id: str) -> tuple[int, int]:
    level = oms.stock(location_id, "A")
    return level.on_hand, level.allocated


def test_ship_to_store_hands_the_units_over_at_the_pickup_store(
    network: Callable[..., OMS],
) -> None:
    """Ready at the store: the units are the store's (a transfer in the ledger); the
    customer collects them there."""
    oms, parcel = ship_to_store(network)
    assert on_hand_and_allocated(oms, "WH-HAM") == (3, 0)
    assert on_hand_and_allocated(oms, "ST-BER") == (2, 2)
    moves = [(m.location_id, m.kind) for m in oms.ledger("A")][-2:]
    assert moves == [("WH-HAM", MovementKind.TRANSFER_OUT), ("ST-BER", MovementKind.TRANSFER_IN)]
    check_books(oms)
    order = oms.collect(parcel)
    assert order.status is OrderStatus.DELIVERED
    assert on_hand_and_allocated(oms, "ST-BER") == (0, 0)
    assert on_hand_and_allocated(oms, "WH-HAM") == (3, 0)
    assert oms.reconcile() == []
    check_books(oms)


def test_an_uncollected_ship_to_store_parcel_stays_on_the_store_shelf(
    network: Callable[..., OMS], clock: ManualClock
) -> None:
    oms, _ = ship_to_store(network, pickup_expiry=timedelta(days=3))
    clock.advance(timedelta(days=3))
    assert oms.expire_pickups() == 1
    assert oms.stock("ST-BER", "A").available == 2
    assert oms.stock("WH-HAM", "A").available == 3
    check_books(oms)


def test_cancelling_a_handed_over_parcel_frees_the_units_at_the_store(
    network: Callable[..., OMS],
) -> None:
    oms, parcel = ship_to_store(network)
    order_id = parcel.rsplit("-F", 1)[0]
    oms.cancel(order_id)
    assert on_hand_and_allocated(oms, "ST-BER") == (2, 0)
    assert on_hand_and_allocated(oms, "WH-HAM") == (3, 0)
    check_books(oms)


def test_the_store_rejecting_a_handed_over_parcel_is_the_store_rejecting(
    network: Callable[..., OMS],
) -> None:
    """The store releases the units on its own shelf and never gets the order again; the
    warehouse sends another parcel."""
    oms, parcel = ship_to_store(network)
    order = oms.reject_fulfillment(parcel, reason="parcel damaged")
    assert order.rejected_locations == {"ST-BER"}
    assert on_hand_and_allocated(oms, "ST-BER") == (2, 0)
    again = order.fulfillments[-1]
    assert (again.location_id, again.status, again.handover_location) == (
        "WH-HAM",
        FulfillmentStatus.OPEN,
        None,
    )
    check_books(oms)


def sent_to_store(network: Callable[..., OMS], **kwargs: object) -> tuple[OMS, str, str]:
    """An order for 2 A and 1 B picked up at ST-BER, which has neither: WH-HAM sends the
    A parcel to the store; the B line is still open (nobody has B)."""
    oms = network(sourcing=LowestCostPolicy(allow_ship_to_store=True), **kwargs)
    oms.receive("WH-HAM", "A", 5)
    order = oms.place_order(draft(("A", 2), ("B", 1), delivery=Delivery.pickup("ST-BER")))
    oms.allocate(order.id)
    parcel = oms.get_order(order.id).fulfillments[0]
    sent = oms.send_to_store(parcel.id).fulfillment(parcel.id)
    assert (sent.status, sent.handover_location) == (FulfillmentStatus.IN_TRANSIT, "ST-BER")
    return oms, order.id, parcel.id


def test_a_label_is_addressed_to_the_customer_and_a_store_leg_to_no_one(
    network: Callable[..., OMS],
) -> None:
    """A parcel shipped to the customer is labelled with their address; one sent on to
    the pickup store travels on the retailer's own leg, with no customer address."""
    carrier = LabelRecorder()
    oms, _, parcel = sent_to_store(network, carrier=carrier)
    shipped = oms.place_order(draft(("A", 1)))
    oms.allocate(shipped.id)
    oms.ship(oms.get_order(shipped.id).fulfillments[0].id)
    assert carrier.labels == [
        (parcel, "WH-HAM", None),
        (f"{shipped.id}-F1", "WH-HAM", shipped.delivery.address),
    ]


def test_a_parcel_sent_to_the_store_is_at_no_location_until_it_is_ready_there(
    network: Callable[..., OMS],
) -> None:
    """Sending writes a transfer out at the warehouse (with a carrier label); readying at
    the store writes the transfer in. In between the units are nowhere, and the books
    count them in transit."""
    oms, order_id, parcel = sent_to_store(network)
    assert on_hand_and_allocated(oms, "WH-HAM") == (3, 0)
    assert on_hand_and_allocated(oms, "ST-BER") == (0, 0)
    out = oms.ledger("A")[-1]
    assert (out.location_id, out.kind, out.on_hand_delta, out.allocated_delta) == (
        "WH-HAM",
        MovementKind.TRANSFER_OUT,
        -2,
        -2,
    )
    sent = [e for e in oms.events() if isinstance(e, FulfillmentSentToStore)]
    assert [(e.fulfillment_id, e.store_id) for e in sent] == [(parcel, "ST-BER")]
    assert sent[0].tracking is not None
    assert sent[0].tracking.startswith("TR")
    assert oms.get_order(order_id).fulfillment(parcel).tracking == sent[0].tracking
    check_books(oms)
    assert [q.fulfillment.id for q in oms.fulfillment_queue("ST-BER")] == [parcel]
    assert oms.fulfillment_queue("WH-HAM") == []
    oms.ready_for_pickup(parcel)
    assert on_hand_and_allocated(oms, "ST-BER") == (2, 2)
    arrived = oms.ledger("A")[-1]
    assert (arrived.location_id, arrived.kind) == ("ST-BER", MovementKind.TRANSFER_IN)
    check_books(oms)
    oms.collect(parcel)
    assert on_hand_and_allocated(oms, "ST-BER") == (0, 0)
    check_books(oms)


def test_units_in_transit_to_the_store_cannot_be_cancelled(network: Callable[..., OMS]) -> None:
    """Cancelling everything cancels the open line and leaves the parcel on its way;
    naming its units is refused and says why."""
    oms, order_id, parcel = sent_to_store(network)
    order = oms.get_order(order_id)
    a_line = order.lines[0]
    with pytest.raises(NotCancellable, match=r"only 0 .* \(2 are in transit to the pickup store\)"):
        oms.cancel(order_id, {a_line.id: 1})
    order = oms.cancel(order_id)
    assert [(line.cancelled, line.allocated) for line in order.lines] == [(0, 2), (1, 0)]
    assert order.fulfillment(parcel).status is FulfillmentStatus.IN_TRANSIT
    with pytest.raises(NotCancellable):
        oms.cancel(order_id)
    check_books(oms)


def test_a_cancel_takes_units_from_the_store_not_from_the_parcel_on_its_way(
    network: Callable[..., OMS],
) -> None:
    """A line split between the store's own shelf and a parcel in transit: cancelling one
    unit takes the store's, whichever fulfilment order is newer."""
    oms = network(sourcing=LowestCostPolicy(allow_ship_to_store=True))
    oms.receive("ST-BER", "A", 1)
    oms.receive("WH-HAM", "A", 2)
    order = oms.place_order(draft(("A", 3), delivery=Delivery.pickup("ST-BER")))
    oms.allocate(order.id)
    by_location: dict[str, FulfillmentOrder] = {
        f.location_id: f for f in oms.get_order(order.id).fulfillments
    }
    parcel, own = by_location["WH-HAM"], by_location["ST-BER"]
    assert list(by_location) == ["ST-BER", "WH-HAM"]  # the parcel is the newer one
    oms.send_to_store(parcel.id)
    order = oms.cancel(order.id, {order.lines[0].id: 1})
    assert order.fulfillment(own.id).status is FulfillmentStatus.CANCELLED
    assert order.fulfillment(parcel.id).status is FulfillmentStatus.IN_TRANSIT
    assert order.fulfillment(parcel.id).units == 2
    assert on_hand_and_allocated(oms, "ST-BER") == (1, 0)
    check_books(oms)


def test_a_parcel_in_transit_cannot_be_rejected_and_only_parcels_are_sent(
    network: Callable[..., OMS],
) -> None:
    """The warehouse has let it go; the store may reject it once it is ready. A parcel
    shipped to the customer, or a pickup prepared at its own store, is not sent."""
    oms, _, parcel = sent_to_store(network)
    with pytest.raises(InvalidTransition, match="it is in_transit"):
        oms.reject_fulfillment(parcel)
    with pytest.raises(InvalidTransition, match="it is in_transit"):
        oms.send_to_store(parcel)
    oms.receive("ST-BER", "A", 1)
    at_store = oms.place_order(draft(("A", 1), delivery=Delivery.pickup("ST-BER")))
    oms.allocate(at_store.id)
    own = oms.get_order(at_store.id).fulfillments[0]
    assert own.location_id == "ST-BER"
    with pytest.raises(InvalidTransition, match="not a pickup shipped to another store"):
        oms.send_to_store(own.id)
    shipped = oms.place_order(draft(("A", 1)))
    oms.allocate(shipped.id)
    with pytest.raises(InvalidTransition, match="not a pickup shipped to another store"):
        oms.send_to_store(oms.get_order(shipped.id).fulfillments[0].id)
    oms.ready_for_pickup(parcel)
    order = oms.reject_fulfillment(parcel, reason="box crushed")
    assert order.rejected_locations == {"ST-BER"}
    assert on_hand_and_allocated(oms, "ST-BER") == (3, 1)  # 2 back on the shelf, 1 allocated
    check_books(oms)


def test_a_held_order_is_not_sent_to_the_store(network: Callable[..., OMS]) -> None:
    """Sending moves goods, so a hold stops it like shipping."""
    oms = network(sourcing=LowestCostPolicy(allow_ship_to_store=True))
    oms.receive("WH-HAM", "A", 5)
    order = oms.place_order(draft(("A", 2), delivery=Delivery.pickup("ST-BER")))
    oms.allocate(order.id)
    parcel = oms.get_order(order.id).fulfillments[0]
    oms.hold(order.id, "fraud", reason="check")
    with pytest.raises(OrderOnHold):
        oms.send_to_store(parcel.id)
    assert on_hand_and_allocated(oms, "WH-HAM") == (5, 2)


def test_a_short_pick_writes_off_the_missing_units_and_sources_them_elsewhere(
    network: Callable[..., OMS],
) -> None:
    """WH-HAM finds 2 of 3: the third leaves its stock (a deallocation, then an
    adjustment) and is sourced at WH-MUC at once; the two stay with WH-HAM."""
    oms = network()
    oms.receive("WH-HAM", "A", 10)
    oms.receive("WH-MUC", "A", 10)
    order = oms.place_order(draft(("A", 3)))
    oms.allocate(order.id)
    first = oms.get_order(order.id).fulfillments[0]
    assert first.location_id == "WH-HAM"
    oms.accept_fulfillment(first.id)
    order = oms.short_pick(first.id, {order.lines[0].id: 1}, reason="only two on the shelf")
    kept, again = order.fulfillments
    assert (kept.status, kept.units, kept.note) == (
        FulfillmentStatus.ACCEPTED,
        2,
        "only two on the shelf",
    )
    assert (again.location_id, again.status, again.units) == ("WH-MUC", FulfillmentStatus.OPEN, 1)
    assert order.lines[0].allocated == 3
    assert order.rejected_locations == {"WH-HAM"}
    assert on_hand_and_allocated(oms, "WH-HAM") == (9, 2)
    kinds = [(m.kind, m.on_hand_delta, m.allocated_delta) for m in oms.ledger("A")][-3:-1]
    assert kinds == [(MovementKind.DEALLOCATION, 0, -1), (MovementKind.ADJUSTMENT, -1, 0)]
    (short,) = [e for e in oms.events() if isinstance(e, FulfillmentShortPicked)]
    assert (short.location_id, short.reason, short.emptied) == (
        "WH-HAM",
        "only two on the shelf",
        False,
    )
    assert [(u.line_id, u.quantity) for u in short.units] == [(order.lines[0].id, 1)]
    check_books(oms)


def test_short_picking_every_unit_rejects_the_fulfilment_order(
    network: Callable[..., OMS],
) -> None:
    """Nothing found: the fulfilment order is rejected; with no stock anywhere else the
    units wait, held back for the order as backorders."""
    oms = network()
    oms.receive("WH-HAM", "A", 2)
    order = oms.place_order(draft(("A", 2)))
    oms.allocate(order.id)
    f = oms.get_order(order.id).fulfillments[0]
    order = oms.short_pick(f.id, {order.lines[0].id: 2})
    assert order.fulfillment(f.id).status is FulfillmentStatus.REJECTED
    assert order.fulfillment(f.id).units == 2  # the record of what was asked of it
    assert order.lines[0].open == 2
    assert on_hand_and_allocated(oms, "WH-HAM") == (0, 0)
    assert [e.emptied for e in oms.events() if isinstance(e, FulfillmentShortPicked)] == [True]
    oms.receive("WH-MUC", "A", 2)  # the backorder is served from new stock
    assert oms.allocate(order.id).shipments == ("WH-MUC",)
    check_books(oms)


def test_units_sent_back_to_wait_keep_the_order_s_place_in_the_queue(
    network: Callable[..., OMS], clock: ManualClock
) -> None:
    """The first order's parcel is short-picked an hour after a second order began to
    wait: its units wait again from when the order was placed, so stock arriving then
    goes to it, not to the order placed after it."""
    oms = network()
    oms.receive("WH-HAM", "A", 2)
    first = oms.place_order(draft(("A", 2)), allocate=True)
    clock.advance(timedelta(hours=1))
    second = oms.place_order(draft(("A", 2)))
    clock.advance(timedelta(hours=1))
    oms.short_pick(oms.get_order(first.id).fulfillments[0].id, {first.lines[0].id: 2})
    assert [(b.order_id, b.since) for b in oms.inventory("A").backorders] == [
        (second.id, second.placed_at),
        (first.id, first.placed_at),
    ]
    oms.receive("WH-MUC", "A", 2)
    stock = oms.inventory("A")
    assert stock.held_for(first.id, first.lines[0].id) == 2
    assert stock.backordered_for(second.id, second.lines[0].id) == 2
    check_books(oms)


def test_a_packed_or_shipped_fulfilment_order_cannot_be_short_picked(
    network: Callable[..., OMS],
) -> None:
    """Packed means every unit was found."""
    oms = network()
    oms.receive("WH-HAM", "A", 5)
    order = oms.place_order(draft(("A", 2)))
    oms.allocate(order.id)
    f = oms.get_order(order.id).fulfillments[0]
    oms.pack(f.id)
    with pytest.raises(InvalidTransition, match=r"cannot short-pick .* it is packed"):
        oms.short_pick(f.id, {order.lines[0].id: 1})
    oms.ship(f.id)
    with pytest.raises(InvalidTransition, match="it is shipped"):
        oms.short_pick(f.id, {order.lines[0].id: 1})


def test_shipping_part_of_a_fulfilment_order_splits_off_a_shipped_parcel(
    network: Callable[..., OMS],
) -> None:
    """Two of three leave now as a fulfilment order of their own (stock and money for
    those two only); the third stays and ships later; in all, exactly the order's total
    is captured."""
    oms = network(payments=FakePaymentGateway())
    oms.receive("WH-HAM", "A", 10)
    order = oms.place_order(draft(("A", 3)))
    oms.allocate(order.id)
    first = oms.get_order(order.id).fulfillments[0]
    oms.pick(first.id)
    line = order.lines[0].id
    order = oms.ship(first.id, tracking="T-1", units={line: 2})
    rest, parcel = order.fulfillments
    assert (rest.id, rest.status, rest.units) == (first.id, FulfillmentStatus.PICKED, 1)
    assert (parcel.id, parcel.status, parcel.units, parcel.tracking) == (
        f"{order.id}-F2",
        FulfillmentStatus.SHIPPED,
        2,
        "T-1",
    )
    assert (order.lines[0].shipped, order.lines[0].allocated) == (2, 1)
    assert order.status is OrderStatus.PARTIALLY_SHIPPED
    assert on_hand_and_allocated(oms, "WH-HAM") == (8, 1)
    split = [e for e in oms.events() if isinstance(e, FulfillmentSplit)]
    assert [(e.fulfillment_id, e.new_fulfillment_id) for e in split] == [(first.id, parcel.id)]
    assert order.captured < order.total
    order = oms.ship(first.id, tracking="T-2")
    assert order.status is OrderStatus.SHIPPED
    assert order.captured == order.total
    check_books(oms)


@pytest.mark.parametrize(
    ("command", "units", "message"),
    [
        ("short_pick", {}, "names no line"),
        ("short_pick", {"O-1-1": 3}, "cannot short-pick 3 unit(s) of line O-1-1"),
        ("short_pick", {"O-1-1": 0}, "cannot short-pick 0"),
        ("short_pick", {"O-1-1": True}, "cannot short-pick True"),
        ("short_pick", {"O-1-9": 1}, "it has 0 of that line"),
        ("ship", {"O-1-1": 2}, "must leave it at least one unit"),
        ("ship", {"O-1-1": 3}, "cannot split off 3 unit(s) of line O-1-1"),
        ("ship", {"O-1-9": 1}, "it has 0 of that line"),
        ("ship", {}, "names no line"),
    ],
)
def test_units_a_fulfilment_order_has_not_are_refused_and_change_nothing(
    network: Callable[..., OMS], command: str, units: dict[str, int], message: str
) -> None:
    """A short pick or a partial shipment of units the fulfilment order does not have
    (or of all of them, for a partial shipment) is an InvalidQuantity, nothing written."""
    oms = network()
    oms.receive("WH-HAM", "A", 5)
    order = oms.place_order(draft(("A", 2)))
    oms.allocate(order.id)
    before = (oms.get_order(order.id), oms.ledger(), oms.events())
    fulfillment_id = f"{order.id}-F1"
    attempt: Callable[[], Order] = {
        "ship": lambda: oms.ship(fulfillment_id, units=units),
        "short_pick": lambda: oms.short_pick(fulfillment_id, units),
    }[command]
    with pytest.raises(InvalidQuantity, match=re.escape(message)):
        attempt()
    assert (oms.get_order(order.id), oms.ledger(), oms.events()) == before


def test_a_partial_shipment_keeps_the_rules_of_shipping(network: Callable[..., OMS]) -> None:
    """A hold stops it, a pickup is not shipped, and a key makes it happen once."""
    oms = network()
    oms.receive("WH-HAM", "A", 5)
    oms.receive("ST-BER", "A", 5)
    order = oms.place_order(draft(("A", 2)))
    oms.allocate(order.id)
    f_id, line = f"{order.id}-F1", order.lines[0].id
    oms.hold(order.id, "fraud", reason="check")
    with pytest.raises(OrderOnHold):
        oms.ship(f_id, units={line: 1})
    oms.release(order.id, "fraud")
    once = oms.ship(f_id, units={line: 1}, idempotency_key="ship-1")
    assert oms.ship(f_id, units={line: 1}, idempotency_key="ship-1") == once
    assert len(oms.get_order(order.id).fulfillments) == 2
    pickup = oms.place_order(draft(("A", 2), delivery=Delivery.pickup("ST-BER")))
    oms.allocate(pickup.id)
    with pytest.raises(InvalidTransition, match=f"order {pickup.id}-F1: it is a pickup"):
        oms.ship(f"{pickup.id}-F1", units={pickup.lines[0].id: 1})
    assert len(oms.get_order(pickup.id).fulfillments) == 1
    check_books(oms)


def ready_pickup(network: Callable[..., OMS], **kwargs: object) -> tuple[OMS, Order]:
    """A pickup of 3 A and 1 B at ST-BER, ready there, paid through the fake gateway."""
    oms = network(payments=FakePaymentGateway(), **kwargs)
    oms.receive("ST-BER", "A", 5)
    oms.receive("ST-BER", "B", 5)
    order = oms.place_order(draft(("A", 3), ("B", 1), delivery=Delivery.pickup("ST-BER")))
    oms.allocate(order.id)
    order = oms.ready_for_pickup(f"{order.id}-F1")
    assert [f.units for f in order.fulfillments] == [4]
    return oms, order


def test_collecting_part_of_a_pickup_leaves_the_rest_ready_on_the_same_clock(
    network: Callable[..., OMS], clock: ManualClock
) -> None:
    """The customer takes 1 of 3 A: it leaves the store as a collected fulfilment order
    of its own, and only it is paid for; the rest stays ready under the old id, and
    expires when the whole pickup would have."""
    oms, order = ready_pickup(network, pickup_expiry=timedelta(days=3))
    ready = order.fulfillments[0]
    clock.advance(timedelta(days=1))
    a, b = (line.id for line in order.lines)
    order = oms.collect(ready.id, units={a: 1})
    rest, taken = order.fulfillments
    assert (rest.id, rest.status, rest.since) == (ready.id, ready.status, ready.since)
    assert [(x.line_id, x.quantity) for x in rest.lines] == [(a, 2), (b, 1)]
    assert (taken.id, taken.status, taken.units) == (
        f"{order.id}-F2",
        FulfillmentStatus.COLLECTED,
        1,
    )
    assert (order.lines[0].delivered, order.lines[0].allocated) == (1, 2)
    assert oms.stock("ST-BER", "A").on_hand == 4
    assert oms.stock("ST-BER", "A").allocated == 2
    assert order.captured == eur("10.00")  # not the 30.00 of the units left
    clock.advance(timedelta(days=2))
    assert oms.expire_pickups() == 1
    order = oms.get_order(order.id)
    assert order.fulfillments[0].status is FulfillmentStatus.EXPIRED
    assert (order.lines[0].delivered, order.lines[0].cancelled) == (1, 2)
    assert order.status is OrderStatus.DELIVERED
    assert oms.stock("ST-BER", "A").available == 4
    assert order.captured == eur("10.00")
    assert order.uncaptured.is_zero()  # the rest of the authorisation is voided
    check_books(oms)


def test_what_the_customer_refuses_at_the_counter_is_cancelled_and_back_on_the_shelf(
    network: Callable[..., OMS],
) -> None:
    """Collect what is taken, cancel what is refused: nothing is left waiting, the store's
    stock is free again, and only what was taken is captured."""
    oms, order = ready_pickup(network)
    a, b = (line.id for line in order.lines)
    oms.collect(f"{order.id}-F1", units={a: 1})
    order = oms.cancel(order.id, {a: 2, b: 1}, reason="refused at the counter")
    assert order.status is OrderStatus.DELIVERED
    assert [f.status for f in order.fulfillments] == [
        FulfillmentStatus.CANCELLED,
        FulfillmentStatus.COLLECTED,
    ]
    assert oms.fulfillment_queue("ST-BER") == []
    assert (oms.stock("ST-BER", "A").available, oms.stock("ST-BER", "B").available) == (4, 5)
    assert order.captured == eur("10.00")
    assert order.uncaptured.is_zero()
    check_books(oms)


def test_the_refused_rest_of_a_pickup_is_cancelled_by_its_fulfilment_order(
    network: Callable[..., OMS],
) -> None:
    """3 A for pickup at ST-BER: 2 from its shelf, ready; 1 in a parcel from WH-HAM, newer
    and still at the warehouse. The customer takes 1 and refuses the other ready unit:
    a cancel naming the pickup ends it, and leaves the parcel (which a cancel by line
    alone would have taken, as the newest) to come."""
    oms = network(
        payments=FakePaymentGateway(), sourcing=LowestCostPolicy(allow_ship_to_store=True)
    )
    oms.receive("ST-BER", "A", 2)
    oms.receive("WH-HAM", "A", 2)
    order = oms.place_order(draft(("A", 3), delivery=Delivery.pickup("ST-BER")))
    oms.allocate(order.id)
    order = oms.get_order(order.id)
    own, parcel = order.fulfillments
    assert (own.location_id, parcel.location_id) == ("ST-BER", "WH-HAM")
    oms.ready_for_pickup(own.id)
    a = order.lines[0].id
    oms.collect(own.id, units={a: 1})
    order = oms.cancel(order.id, reason="refused at the counter", fulfillment_id=own.id)
    assert [(f.id, f.status, f.units) for f in order.fulfillments] == [
        (own.id, FulfillmentStatus.CANCELLED, 1),
        (parcel.id, FulfillmentStatus.OPEN, 1),
        (f"{order.id}-F3", FulfillmentStatus.COLLECTED, 1),
    ]
    line = order.lines[0]
    assert (line.delivered, line.cancelled, line.allocated) == (1, 1, 1)
    assert on_hand_and_allocated(oms, "ST-BER") == (1, 0)
    assert on_hand_and_allocated(oms, "WH-HAM") == (2, 1)
    cancelled = [e for e in oms.events() if isinstance(e, UnitsCancelled)][-1]
    assert [(u.fulfillment_id, u.allocated, u.open) for u in cancelled.units] == [(own.id, 1, 0)]
    check_books(oms)


def test_a_cancel_of_a_fulfilment_order_refuses_what_it_does_not_hold(
    network: Callable[..., OMS],
) -> None:
    """Naming a fulfilment order another order has, one that is done or on its way to
    the store, a line it does not hold, more units than it holds, no line or no unit is
    refused, names the rule, and changes nothing; a key makes a good cancel happen once."""
    oms, order_id, parcel = sent_to_store(network)
    oms.receive("ST-BER", "B", 1)
    oms.allocate(order_id)
    order = oms.get_order(order_id)
    a, b = (line.id for line in order.lines)
    pickup = order.fulfillments[-1]
    assert (pickup.location_id, pickup.units) == ("ST-BER", 1)
    other = oms.place_order(draft(("B", 1)))
    before, events = oms.get_order(order_id), len(oms.events())
    for lines, fulfillment_id, error, says in (
        (None, "O-404-F1", UnknownFulfillment, "has no fulfilment order 'O-404-F1'"),
        (None, f"{other.id}-F1", UnknownFulfillment, f"no fulfilment order '{other.id}-F1'"),
        (None, parcel, NotCancellable, "it is in transit to the pickup store"),
        ({a: 1}, pickup.id, NotCancellable, f"line {a} from fulfilment order {pickup.id}: it"),
        ({b: 2}, pickup.id, NotCancellable, "it has 1 of that line"),
        ({}, pickup.id, NotCancellable, f"cancel of fulfilment order {pickup.id} names no"),
        ({b: 0}, pickup.id, InvalidQuantity, "must be a positive int, got 0"),
    ):
        with pytest.raises(error, match=re.escape(says)):
            oms.cancel(order_id, lines, fulfillment_id=fulfillment_id)
        assert oms.get_order(order_id) == before
        assert len(oms.events()) == events
    for _ in range(2):
        order = oms.cancel(order_id, {b: 1}, idempotency_key="k", fulfillment_id=pickup.id)
    assert order.fulfillment(pickup.id).status is FulfillmentStatus.CANCELLED
    assert order.fulfillment(parcel).status is FulfillmentStatus.IN_TRANSIT
    assert oms.stock("ST-BER", "B").allocated == 0
    with pytest.raises(NotCancellable, match="it is cancelled"):
        oms.cancel(order_id, fulfillment_id=pickup.id)
    with pytest.raises(DuplicateIdempotencyKey):  # the same key for another cancel
        oms.cancel(order_id, {b: 1}, idempotency_key="k", fulfillment_id=parcel)
    check_books(oms)


def test_part_of_a_pickup_can_be_ready_while_the_rest_is_still_being_picked(
    network: Callable[..., OMS], clock: ManualClock
) -> None:
    """Two of three units are ready: they wait at the counter on their own clock, while
    the third is still being worked; each part expires or is collected on its own."""
    oms = network(payments=FakePaymentGateway(), pickup_expiry=timedelta(days=3))
    oms.receive("ST-BER", "A", 5)
    order = oms.place_order(draft(("A", 3), delivery=Delivery.pickup("ST-BER")))
    oms.allocate(order.id)
    first = oms.get_order(order.id).fulfillments[0]
    oms.pick(first.id)
    clock.advance(timedelta(days=1))
    order = oms.ready_for_pickup(first.id, units={order.lines[0].id: 2})
    rest, ready = order.fulfillments
    assert (rest.id, rest.status, rest.units) == (first.id, FulfillmentStatus.PICKED, 1)
    assert (ready.status, ready.units, ready.since) == (
        FulfillmentStatus.READY_FOR_PICKUP,
        2,
        clock.now(),
    )
    clock.advance(timedelta(days=2))
    oms.ready_for_pickup(rest.id)
    clock.advance(timedelta(days=1))
    assert oms.expire_pickups() == 1  # the first two, ready three days ago
    order = oms.collect(rest.id)
    assert [f.status for f in order.fulfillments] == [
        FulfillmentStatus.COLLECTED,
        FulfillmentStatus.EXPIRED,
    ]
    assert (order.lines[0].delivered, order.lines[0].cancelled) == (1, 2)
    assert order.captured == eur("10.00")
    assert oms.stock("ST-BER", "A").on_hand == 4
    check_books(oms)


def test_part_of_a_parcel_for_the_store_is_handed_over_and_the_rest_stays_behind(
    network: Callable[..., OMS],
) -> None:
    """A parcel of A and B for the store, packed but not sent: the A units are readied at
    the store (handed over there), the B unit is still the warehouse's to send."""
    oms = network(sourcing=LowestCostPolicy(allow_ship_to_store=True))
    oms.receive("WH-HAM", "A", 5)
    oms.receive("WH-HAM", "B", 5)
    order = oms.place_order(draft(("A", 2), ("B", 1), delivery=Delivery.pickup("ST-BER")))
    oms.allocate(order.id)
    parcel = oms.get_order(order.id).fulfillments[0]
    oms.pack(parcel.id)
    a_line = order.lines[0].id
    order = oms.ready_for_pickup(parcel.id, units={a_line: 2})
    rest, ready = order.fulfillments
    assert (ready.status, ready.stock_location, [x.sku for x in ready.lines]) == (
        FulfillmentStatus.READY_FOR_PICKUP,
        "ST-BER",
        ["A"],
    )
    assert (rest.status, rest.stock_location, [x.sku for x in rest.lines]) == (
        FulfillmentStatus.PACKED,
        "WH-HAM",
        ["B"],
    )
    level = oms.stock
    assert (level("ST-BER", "A").allocated, level("WH-HAM", "A").allocated) == (2, 0)
    assert (level("ST-BER", "B").allocated, level("WH-HAM", "B").allocated) == (0, 1)
    check_books(oms)


def test_a_parcel_on_its_way_to_the_store_arrives_whole(network: Callable[..., OMS]) -> None:
    """Readying part of a parcel in transit is refused, and changes nothing."""
    oms, order_id, parcel = sent_to_store(network)
    line = oms.get_order(order_id).lines[0].id
    before = (oms.get_order(order_id), oms.ledger(), oms.events())
    with pytest.raises(InvalidTransition, match=f"cannot split fulfilment order {parcel}: it is"):
        oms.ready_for_pickup(parcel, units={line: 1})
    assert (oms.get_order(order_id), oms.ledger(), oms.events()) == before


def test_a_part_of_a_pickup_is_only_collected_from_a_ready_pickup(
    network: Callable[..., OMS],
) -> None:
    """Taking every unit, units the pickup has not, a pickup not ready yet, and shipping
    part of a ready pickup are refused and change nothing; a key makes it happen once."""
    oms = network(payments=FakePaymentGateway())
    oms.receive("ST-BER", "A", 5)
    order = oms.place_order(draft(("A", 3), delivery=Delivery.pickup("ST-BER")))
    oms.allocate(order.id)
    f_id, line = f"{order.id}-F1", order.lines[0].id
    before = (oms.get_order(order.id), oms.ledger(), oms.events())
    with pytest.raises(InvalidTransition, match="cannot collect"):
        oms.collect(f_id, units={line: 1})
    assert (oms.get_order(order.id), oms.ledger(), oms.events()) == before
    oms.ready_for_pickup(f_id)
    before = (oms.get_order(order.id), oms.ledger(), oms.events())
    for units, refusal in (
        ({line: 3}, "must leave it at least one unit"),
        ({line: 4}, "cannot split off 4 unit(s)"),
        ({"O-9-1": 1}, "it has 0 of that line"),
    ):
        with pytest.raises(InvalidQuantity, match=re.escape(refusal)):
            oms.collect(f_id, units=units)
    with pytest.raises(InvalidTransition, match=f"cannot ship fulfilment order {f_id}: it is"):
        oms.ship(f_id, units={line: 1})  # named as asked, not by the part it would split off
    assert (oms.get_order(order.id), oms.ledger(), oms.events()) == before
    once = oms.collect(f_id, units={line: 1}, idempotency_key="collect-1")
    assert oms.collect(f_id, units={line: 1}, idempotency_key="collect-1") == once
    assert [f.units for f in oms.get_order(order.id).fulfillments] == [2, 1]
    check_books(oms)


def test_same_day_from_a_nearby_store_only(network: Callable[..., OMS]) -> None:
    """Same-day uses the store within 50 km; the warehouses are far and cannot."""
    oms = network()
    oms.receive("ST-BER", "A", 1)
    oms.receive("WH-HAM", "A", 9)
    order = oms.place_order(draft(("A", 2), delivery=Delivery.same_day(HOME)))
    plan = oms.allocate(order.id)
    assert plan.shipments == ("ST-BER",)
    assert plan.units_unallocated == 1
    order = oms.get_order(order.id)
    assert order.status is OrderStatus.PARTIALLY_ALLOCATED
    check_books(oms)


def test_partial_allocation_completes_after_a_receipt(network: Callable[..., OMS]) -> None:
    """Allocate what exists; the rest waits as a backorder; allocate again after a receipt."""
    oms = network(sourcing=PriorityPolicy())
    oms.receive("WH-HAM", "A", 1)
    order = oms.place_order(draft(("A", 3)))
    assert oms.allocate(order.id).units_allocated == 1
    assert oms.inventory("A").backordered_for(order.id, order.lines[0].id) == 2
    check_books(oms)
    oms.receive("WH-MUC", "A", 5)
    assert oms.inventory("A").held_for(order.id, order.lines[0].id) == 2
    plan = oms.allocate(order.id)
    assert plan.shipments == ("WH-MUC",)
    order = oms.get_order(order.id)
    assert order.status is OrderStatus.ALLOCATED
    assert [f.id for f in order.fulfillments] == [f"{order.id}-F1", f"{order.id}-F2"]
    check_books(oms)
    with pytest.raises(NothingToAllocate):
        oms.allocate(order.id)


def test_a_rejection_is_re_sourced_elsewhere_at_once(network: Callable[..., OMS]) -> None:
    """The rejecting location is excluded; another one takes the units."""
    oms = network(sourcing=PriorityPolicy())
    oms.receive("WH-HAM", "A", 5)
    oms.receive("WH-MUC", "A", 5)
    order = oms.place_order(draft(("A", 2)))
    oms.allocate(order.id)
    first = oms.get_order(order.id).fulfillments[0]
    assert first.location_id == "WH-HAM"
    order = oms.reject_fulfillment(first.id, reason="stock not found")
    assert order.rejected_locations == {"WH-HAM"}
    assert [(f.location_id, f.status) for f in order.fulfillments] == [
        ("WH-HAM", FulfillmentStatus.REJECTED),
        ("WH-MUC", FulfillmentStatus.OPEN),
    ]
    assert oms.stock("WH-HAM", "A").allocated == 0
    events = [type(e) for e in oms.events()]
    assert events.count(FulfillmentCreated) == 2
    assert events.count(FulfillmentRejected) == 1
    check_books(oms)


def test_repeated_rejections_end_in_a_sourcing_hold(network: Callable[..., OMS]) -> None:
    """After max_rejections the order is held for a person to look at."""
    oms = network(sourcing=PriorityPolicy(), max_rejections=2)
    for loc in ("WH-HAM", "WH-MUC", "SUP-1"):
        oms.receive(loc, "A", 5)
    order = oms.place_order(draft(("A", 1)))
    oms.allocate(order.id)
    for _ in range(2):
        current = oms.get_order(order.id).fulfillments[-1]
        order = oms.reject_fulfillment(current.id, reason="closed")
    assert [h.kind for h in order.holds] == ["sourcing"]
    assert order.status is OrderStatus.ON_HOLD
    assert order.lines[0].open == 1
    with pytest.raises(OrderOnHold):
        oms.allocate(order.id)
    held = oms.inventory("A")
    assert held.held_for(order.id, order.lines[0].id) == 1
    assert held.level("SUP-1").reserved == 1, "held where nobody rejected it"
    check_books(oms)


def test_a_rejection_of_an_order_already_on_sourcing_hold_keeps_the_one_hold(
    network: Callable[..., OMS],
) -> None:
    """Split over two warehouses with max_rejections=1: the first rejection holds the
    order, the second (of the other parcel) finds the hold in place and adds none."""
    oms = network(sourcing=PriorityPolicy(), max_rejections=1)
    oms.receive("WH-HAM", "A", 1)
    oms.receive("WH-MUC", "B", 1)
    order = oms.place_order(draft(("A", 1), ("B", 1)))
    oms.allocate(order.id)
    first, second = oms.get_order(order.id).fulfillments
    oms.reject_fulfillment(first.id, reason="closed")
    order = oms.reject_fulfillment(second.id, reason="closed too")
    assert [h.kind for h in order.holds] == ["sourcing"]
    assert order.rejections == 2
    check_books(oms)


def test_held_orders_are_neither_allocated_nor_shipped(network: Callable[..., OMS]) -> None:
    """A hold stops allocation and shipping, not delivery of what already left."""
    oms = network()
    oms.receive("WH-HAM", "A", 5)
    order = oms.place_order(draft(("A", 1)))
    oms.hold(order.id, "fraud", reason="check")
    with pytest.raises(OrderOnHold):
        oms.allocate(order.id)
    oms.release(order.id, "fraud")
    oms.allocate(order.id)
    oms.hold(order.id, "manual", reason="address?")
    f = oms.get_order(order.id).fulfillments[0]
    with pytest.raises(OrderOnHold):
        oms.ship(f.id)
    check_books(oms)


def test_cancelling_allocated_units_frees_their_stock(network: Callable[..., OMS]) -> None:
    """Allocated but unshipped units can be cancelled; the fulfilment order shrinks."""
    oms = network()
    oms.receive("WH-HAM", "A", 5)
    order = oms.place_order(draft(("A", 3)))
    oms.allocate(order.id)
    order = oms.cancel(order.id, {order.lines[0].id: 2})
    assert order.fulfillments[0].units == 1
    assert oms.stock("WH-HAM", "A").allocated == 1
    assert oms.available("A") == 4
    check_books(oms)


def test_fewest_shipments_avoids_a_split(network: Callable[..., OMS]) -> None:
    """Priority splits over two warehouses; fewest shipments sends one parcel."""
    for policy, expected in ((PriorityPolicy(), 2), (FewestShipmentsPolicy(), 1)):
        oms = network(sourcing=policy)
        oms.receive("WH-HAM", "A", 1)
        oms.receive("WH-HAM", "B", 1)
        oms.receive("WH-MUC", "A", 5)
        oms.receive("WH-MUC", "B", 0 + 5)
        order = oms.place_order(draft(("A", 2), ("B", 1)))
        assert len(oms.allocate(order.id).shipments) == expected
        check_books(oms)


def test_daily_capacity_is_counted_and_respected(network: Callable[..., OMS]) -> None:
    """A location with capacity 1 takes one fulfilment order a day."""
    oms = network(sourcing=PriorityPolicy())
    oms.update_location("WH-HAM", daily_capacity=1)
    oms.receive("WH-HAM", "A", 10)
    oms.receive("WH-MUC", "A", 10)
    first = oms.place_order(draft(("A", 1)))
    second = oms.place_order(draft(("A", 1)))
    assert oms.allocate(first.id).shipments == ("WH-HAM",)
    plan = oms.allocate(second.id)
    assert plan.shipments == ("WH-MUC",)
    reasons: dict[str, str | None] = {t.location_id: t.excluded for t in plan.trace}
    assert reasons["WH-HAM"] == "no fulfilment capacity left today"


def first_shipment(oms: OMS) -> str:
    """Where a new one-unit order of A is allocated."""
    return oms.allocate(oms.place_order(draft(("A", 1))).id).shipments[0]


@pytest.mark.parametrize(
    ("time_zone", "days"),
    [
        # 18:30 and 20:00 in New York are one day there; 00:30 the next is another.
        ("America/New_York", ["first", "same day", "new day"]),
        # In the clock's zone (UTC) 20:00 New York time is already tomorrow.
        (None, ["first", "new day", "same day"]),
    ],
)
def test_daily_capacity_counts_the_days_of_the_locations_time_zone(
    network: Callable[..., OMS], clock: ManualClock, time_zone: str | None, days: list[str]
) -> None:
    """A store's day begins at its own midnight, not the clock's: capacity taken in the
    evening still counts that evening, and comes back after local midnight."""
    oms = network(sourcing=PriorityPolicy())
    oms.update_location("WH-HAM", daily_capacity=1, time_zone=time_zone)
    oms.receive("WH-HAM", "A", 10)
    oms.receive("WH-MUC", "A", 10)
    capacity_came_back = []
    for moment in ("2026-01-01T23:30", "2026-01-02T01:00", "2026-01-02T05:30"):
        clock.set(datetime.fromisoformat(moment).replace(tzinfo=UTC))
        capacity_came_back.append(first_shipment(oms) == "WH-HAM")
    expected = {"first": True, "same day": False, "new day": True}
    assert capacity_came_back == [expected[day] for day in days]


class SnapshotRecorder:
    """A sourcing policy that keeps every snapshot it is given and plans by lowest cost."""

    name = "recorder"

    def __init__(self) -> None:
        self.snapshots: list[NetworkSnapshot] = []

    def plan(self, request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
        self.snapshots.append(snapshot)
        return LowestCostPolicy().plan(request, snapshot)


def test_a_snapshot_has_the_pools_stocked_locations_and_their_capacity_left(
    make_oms: Callable[..., OMS],
) -> None:
    """Forty stores with a daily capacity, thirty in the web pool. A SKU stocked at a few
    stores (fewer levels than the pool has locations) and one stocked everywhere are both
    seen at the pool's stocked locations only, in id order, with the order's own holds
    counted as available to it; capacity is given for the locations with units."""
    recorder = SnapshotRecorder()
    oms = make_oms(sourcing=recorder)
    stores = [f"ST-{n:02d}" for n in range(40)]
    for n, location_id in enumerate(stores):
        oms.add_location(
            Location(
                id=location_id,
                kind=LocationKind.STORE,
                geo=GeoPoint(50 + n / 10, 10 + n / 10),
                capabilities={Capability.SHIP},
                priority=2,
                daily_capacity=5,
            )
        )
    pool = stores[:30]
    oms.configure_channel("web", location_ids=pool)
    for location_id, units in (("ST-17", 2), ("ST-03", 4), ("ST-35", 9)):
        oms.receive(location_id, "A", units)
    for location_id in stores:
        oms.receive(location_id, "B", 1)

    first = oms.allocate(oms.place_order(draft(("A", 1), ("B", 1))).id)
    seen = recorder.snapshots[-1]
    assert [loc.id for loc in seen.locations] == pool
    stocked_b = {(x, "B"): 1 for x in pool}
    assert dict(seen.available) == {("ST-03", "A"): 4, ("ST-17", "A"): 2, **stocked_b}
    assert seen.capacity == dict.fromkeys(pool, 5)

    oms.allocate(oms.place_order(draft(("A", 1))).id)
    seen = recorder.snapshots[-1]
    left = {x: units - (x in first.shipments) for x, units in (("ST-03", 4), ("ST-17", 2))}
    assert list(seen.available) == [("ST-03", "A"), ("ST-17", "A")]
    assert dict(seen.available) == {(x, "A"): units for x, units in left.items()}
    assert seen.capacity == {x: 4 if x in first.shipments else 5 for x in ("ST-03", "ST-17")}
    check_books(oms)


def test_unknown_fulfilment_orders_and_out_of_order_steps_are_refused(
    network: Callable[..., OMS],
) -> None:
    """Deliver before ship, ship twice, unknown ids: typed errors, nothing changes."""
    oms = network()
    oms.receive("WH-HAM", "A", 5)
    order = oms.place_order(draft(("A", 1)))
    oms.allocate(order.id)
    f = oms.get_order(order.id).fulfillments[0]
    before, events = oms.get_order(order.id), len(oms.events())
    with pytest.raises(InvalidTransition, match="it is open"):
        oms.deliver(f.id)
    with pytest.raises(UnknownFulfillment):
        oms.ship("F-404")
    assert oms.get_order(order.id) == before
    assert len(oms.events()) == events
    oms.ship(f.id, tracking="1Z")
    with pytest.raises(InvalidTransition, match="it is shipped"):
        oms.ship(f.id, tracking="1Z")
    with pytest.raises(InvalidTransition):
        oms.reject_fulfillment(f.id)
    shipped = [e for e in oms.events() if isinstance(e, FulfillmentShipped)]
    assert [e.tracking for e in shipped] == ["1Z"]
    check_books(oms)


def test_a_pickup_its_store_rejected_waits_in_the_pool_not_at_the_store(
    network: Callable[..., OMS],
) -> None:
    """The pickup store rejects the order; nothing else can source it yet. Its open unit
    waits in the channel's pool without the store (the store's shelf is not held for it),
    and the next unit a warehouse receives is held for it there."""
    oms = network()
    oms.receive("ST-BER", "A", 2)
    order = oms.place_order(draft(("A", 1), delivery=Delivery.pickup("ST-BER")))
    assert oms.allocate(order.id).shipments == ("ST-BER",)
    order = oms.reject_fulfillment(oms.get_order(order.id).fulfillments[0].id)
    line = order.lines[0].id
    item = oms.inventory("A")
    assert (item.held_for(order.id, line), item.backordered_for(order.id, line)) == (0, 1)
    assert oms.stock("ST-BER", "A").available == 2
    oms.receive("WH-HAM", "A", 1)
    assert [(h.location_id, h.quantity) for h in oms.inventory("A").holds] == [("WH-HAM", 1)]
    check_books(oms)


def test_a_location_that_rejected_never_holds_the_order_again(
    network: Callable[..., OMS],
) -> None:
    """Found by the fulfilment state machine: after two rejections the open units were held
    twice, once at the location that had rejected them (via a served backorder)."""
    oms = network(sourcing=LowestCostPolicy(), max_rejections=2)
    for loc in ("ST-BER", "WH-HAM", "WH-MUC"):
        for sku in ("A", "B"):
            oms.receive(loc, sku, 3)
    oms.place_order(draft(("B", 3)))
    oms.place_order(draft(("B", 2)))
    order = oms.place_order(draft(("A", 1), ("B", 1)))
    oms.allocate(order.id)
    oms.place_order(draft(("B", 1)))
    first = oms.get_order(order.id).fulfillments[0]
    order = oms.reject_fulfillment(first.id)
    order = oms.reject_fulfillment(order.fulfillments[-1].id)
    item = oms.inventory("B")
    rejected = order.rejected_locations
    assert all(h.location_id not in rejected for h in item.holds if h.key == order.id)
    check_books(oms)
