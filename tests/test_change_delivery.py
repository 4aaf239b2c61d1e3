"""Changing how an order reaches the customer before allocation: ship, pickup, same-day."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from omscore import OMS, Capability, Delivery, Money, OrderStatus
from omscore.adapters.memory import MemoryStore
from omscore.adapters.payments import FakePaymentGateway
from omscore.adapters.system import SequentialIds
from omscore.errors import (
    DuplicateIdempotencyKey,
    InvalidDraft,
    InvalidTransition,
    OmsError,
    PaymentDeclined,
)
from omscore.events import DeliveryChanged
from omscore.sourcing import DeliveryMethod
from omscore.testing import ManualClock
from omscore.testing.invariants import check_books

from .conftest import BERLIN, draft, store_location, warehouse

STORE_PICKUP = Delivery.pickup("ST-1")
OTHER_PICKUP = Delivery.pickup("ST-2")
HOME = Delivery.ship(BERLIN)


def shop() -> OMS:
    """A warehouse and two stores that ship and hand out pickups."""
    oms = OMS(MemoryStore(), clock=ManualClock(), ids=SequentialIds())
    oms.add_location(warehouse("WH-1"))
    oms.add_location(store_location("ST-1"))
    oms.add_location(store_location("ST-2"))
    return oms


def held_at(oms: OMS, sku: str = "A") -> dict[str, int]:
    """Units held for orders, by location."""
    held: dict[str, int] = {}
    for hold in oms.inventory(sku).holds:
        held[hold.location_id] = held.get(hold.location_id, 0) + hold.quantity
    return held


def test_a_pickup_that_becomes_a_parcel_is_held_in_the_pool_and_shipped() -> None:
    """The hold leaves the store for the channel's pool; the order ships from there."""
    oms = shop()
    oms.receive("ST-1", "A", 2)
    oms.receive("WH-1", "A", 5)
    order = oms.place_order(draft(("A", 2), delivery=STORE_PICKUP))
    assert held_at(oms) == {"ST-1": 2}
    changed = oms.change_delivery(order.id, HOME)
    assert changed.delivery == HOME
    assert held_at(oms) == {"WH-1": 2}  # the warehouse comes first in the pool
    assert oms.available("A", channel="web") == 5
    assert not oms.allocate(order.id).unallocated
    assert oms.get_order(order.id).fulfillments[0].method is DeliveryMethod.SHIP
    [event] = [e for e in oms.events() if isinstance(e, DeliveryChanged)]
    assert (event.method, event.pickup_location, event.address) == ("ship", None, BERLIN)
    check_books(oms)


def test_an_edit_to_what_the_order_has_already_changes_nothing() -> None:
    """A checkout page that saves the whole order again: the same delivery, address,
    quantity and ship-complete setting record no event, keep the version, and leave the
    stock held where it is (here at ST-1, though the warehouse now has stock and comes
    first in the pool)."""
    oms = shop()
    oms.receive("ST-1", "A", 2)
    order = oms.place_order(draft(("A", 2), delivery=HOME))
    oms.receive("WH-1", "A", 5)
    assert held_at(oms) == {"ST-1": 2}
    events = len(oms.events())
    assert oms.change_delivery(order.id, HOME) == order
    assert oms.change_address(order.id, BERLIN) == order
    assert oms.change_quantity(order.id, order.lines[0].id, 2) == order
    assert oms.change_ship_complete(order.id, order.ship_complete) == order
    assert (len(oms.events()), oms.get_order(order.id), held_at(oms)) == (
        events,
        order,
        {"ST-1": 2},
    )
    moved = oms.change_delivery(order.id, HOME, shipping_fee=Money("4.95", "EUR"))
    assert (moved.version, held_at(oms)) == (order.version + 1, {"WH-1": 2})  # a new fee
    check_books(oms)


def test_a_parcel_that_becomes_a_pickup_waits_at_its_store() -> None:
    """Held where the customer collects; what the store lacks waits for it there."""
    oms = shop()
    oms.receive("WH-1", "A", 5)
    oms.receive("ST-2", "A", 1)
    order = oms.place_order(draft(("A", 2)))
    oms.change_delivery(order.id, OTHER_PICKUP)
    assert held_at(oms) == {"ST-2": 1}
    line = order.lines[0].id
    assert oms.inventory("A").backordered_for(order.id, line) == 1
    oms.receive("ST-2", "A", 1)
    assert held_at(oms) == {"ST-2": 2}
    check_books(oms)


def test_a_pickup_store_that_stopped_taking_pickups_can_be_left_for_another() -> None:
    """The way out for a store that stops handing out pickups: its waiting orders move."""
    oms = shop()
    oms.receive("ST-1", "A", 1)
    oms.receive("ST-2", "A", 1)
    order = oms.place_order(draft(("A", 1), delivery=STORE_PICKUP))
    oms.update_location("ST-1", capabilities=[Capability.SHIP])
    assert oms.allocate(order.id).unallocated  # ST-1 cannot hand it out
    oms.change_delivery(order.id, OTHER_PICKUP)
    assert oms.allocate(order.id).shipments == ("ST-2",)
    assert oms.get_order(order.id).status is OrderStatus.ALLOCATED
    check_books(oms)


def test_a_backorder_keeps_its_place_in_the_queue() -> None:
    """Units an order waits for are still served before a newer order's."""
    oms = shop()
    first = oms.place_order(draft(("A", 1), delivery=STORE_PICKUP))
    second = oms.place_order(draft(("A", 1)))
    oms.change_delivery(first.id, HOME)
    oms.receive("WH-1", "A", 1)
    item = oms.inventory("A")
    assert item.held_for(first.id, first.lines[0].id) == 1
    assert item.backordered_for(second.id, second.lines[0].id) == 1


def refused_changes() -> list[tuple[Callable[[OMS, str], object], type[OmsError], str]]:
    """A change that is refused: what it calls, the error and what it says."""
    return [
        (
            lambda oms, order: oms.change_delivery(order, Delivery.pickup("ST-9")),
            InvalidDraft,
            "pickup location 'ST-9' is unknown",
        ),
        (
            lambda oms, order: oms.change_delivery(order, Delivery.pickup("WH-1")),
            InvalidDraft,
            "pickup location 'WH-1' does not take pickups now",
        ),
        (
            lambda oms, order: oms.change_delivery(order, "pickup"),  # type: ignore[arg-type]
            InvalidDraft,
            "delivery must be a Delivery, got 'pickup'",
        ),
        (
            lambda oms, order: oms.change_delivery(order, Delivery.ship(None)),  # type: ignore[arg-type]
            InvalidDraft,
            "a ship delivery needs an address",
        ),
    ]


@pytest.mark.parametrize(("call", "error", "message"), refused_changes())
def test_a_delivery_that_cannot_work_is_refused_and_changes_nothing(
    call: Callable[[OMS, str], object], error: type[OmsError], message: str
) -> None:
    """An unknown store, one that hands out no pickups, no Delivery, no address."""
    oms = shop()
    oms.receive("ST-1", "A", 2)
    order = oms.place_order(draft(("A", 1), delivery=STORE_PICKUP))
    before = (oms.get_order(order.id), oms.inventory("A"), oms.events())
    with pytest.raises(error, match=message):
        call(oms, order.id)
    assert (oms.get_order(order.id), oms.inventory("A"), oms.events()) == before


def test_an_allocated_or_cancelled_order_keeps_its_delivery() -> None:
    """Once a unit is allocated the parcel is being made; a cancelled order is over."""
    oms = shop()
    oms.receive("WH-1", "A", 5)
    allocated = oms.place_order(draft(("A", 1)), allocate=True)
    with pytest.raises(InvalidTransition, match="units are already allocated"):
        oms.change_delivery(allocated.id, STORE_PICKUP)
    cancelled = oms.cancel(oms.place_order(draft(("A", 1))).id)
    with pytest.raises(InvalidTransition):
        oms.change_delivery(cancelled.id, STORE_PICKUP)
    assert oms.get_order(cancelled.id).delivery == HOME


DELIVERIES = st.sampled_from([HOME, STORE_PICKUP, OTHER_PICKUP, Delivery.same_day(BERLIN)])


@given(
    st.lists(st.tuples(st.sampled_from(["WH-1", "ST-1", "ST-2"]), st.integers(1, 4)), max_size=4),
    st.lists(st.tuples(DELIVERIES, st.integers(1, 3)), min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(0, 3), DELIVERIES), max_size=6),
)
def test_every_open_unit_stays_held_or_waiting_once_whatever_the_changes(
    stock: list[tuple[str, int]],
    orders: list[tuple[Delivery, int]],
    changes: list[tuple[int, Delivery]],
) -> None:
    """Property: after any changes of delivery (then allocation), the books balance: each
    open unit held or backordered exactly once, no level beyond its stock; a pickup's
    units are held at its store only."""
    oms = shop()
    for location, units in stock:
        oms.receive(location, "A", units)
    placed = [oms.place_order(draft(("A", n), delivery=d)).id for d, n in orders]
    for index, delivery in changes:
        order_id = placed[index % len(placed)]
        assert oms.change_delivery(order_id, delivery).delivery == delivery
        check_books(oms)
        places = {h.location_id for h in oms.inventory("A").holds if h.key == order_id}
        if delivery.pickup_location is not None:
            assert places <= {delivery.pickup_location}
    for order_id in placed:
        oms.allocate(order_id)
    check_books(oms)


# --- the shipping fee -------------------------------------------------------------------------


def paid_shop() -> tuple[OMS, str]:
    """A shop with a payment gateway and an order of 2 x 10.00 EUR shipped for 4.95 EUR
    (24.95 authorised); ST-1 has the units."""
    oms = OMS(
        MemoryStore(), clock=ManualClock(), ids=SequentialIds(), payments=FakePaymentGateway()
    )
    oms.add_location(store_location("ST-1"))
    oms.receive("ST-1", "A", 5)
    fee = Money("4.95", "EUR")
    order = oms.place_order(attrs.evolve(draft(("A", 2)), shipping_fee=fee))
    assert order.authorized == Money("24.95", "EUR")
    return oms, order.id


def test_a_pickup_instead_of_a_parcel_can_drop_the_shipping_fee() -> None:
    """Collected at the store for free: the total falls by the fee, the collection
    captures the units alone, and the fee's part of the authorisation is voided."""
    oms, order_id = paid_shop()
    order = oms.change_delivery(order_id, STORE_PICKUP, shipping_fee=Money.zero("EUR"))
    assert order.total == Money("20.00", "EUR")
    changed = [e for e in oms.events() if isinstance(e, DeliveryChanged)]
    assert [e.shipping_fee for e in changed] == [Money.zero("EUR")]
    oms.allocate(order_id)
    f = oms.get_order(order_id).fulfillments[0].id
    oms.ready_for_pickup(f)
    done = oms.collect(f)
    assert (done.captured, done.voided) == (Money("20.00", "EUR"), Money("4.95", "EUR"))


def test_without_a_fee_the_fee_stays() -> None:
    """A change that names no fee keeps the one the order has, and says none was set."""
    oms, order_id = paid_shop()
    order = oms.change_delivery(order_id, STORE_PICKUP)
    assert order.shipping_fee == Money("4.95", "EUR")
    changed = [e for e in oms.events() if isinstance(e, DeliveryChanged)]
    assert [e.shipping_fee for e in changed] == [None]


def test_a_key_repeated_with_another_fee_is_refused_and_with_the_same_fee_replays() -> None:
    """The fee is part of the command: the key that changed the delivery for 0.00 cannot
    be reused for 4.95, and a repeat of the same call changes nothing more."""
    oms, order_id = paid_shop()
    free = Money.zero("EUR")
    first = oms.change_delivery(order_id, STORE_PICKUP, "pickup-1", shipping_fee=free)
    with pytest.raises(DuplicateIdempotencyKey, match="pickup-1"):
        oms.change_delivery(order_id, STORE_PICKUP, "pickup-1", shipping_fee=Money("4.95", "EUR"))
    assert oms.change_delivery(order_id, STORE_PICKUP, "pickup-1", shipping_fee=free) == first
    assert oms.get_order(order_id) == first
    assert len([e for e in oms.events() if isinstance(e, DeliveryChanged)]) == 1


def test_a_higher_fee_is_authorised_for_the_difference() -> None:
    """Express instead of standard (9.95 for 4.95): the gateway authorises the 5.00 more,
    and the parcel captures the new total on the two authorisations."""
    oms, order_id = paid_shop()
    order = oms.change_delivery(order_id, Delivery.ship(BERLIN), shipping_fee=Money("9.95", "EUR"))
    assert [b.authorized for b in order.authorizations] == [
        Money("24.95", "EUR"),
        Money("5.00", "EUR"),
    ]
    oms.allocate(order_id)
    shipped = oms.ship(oms.get_order(order_id).fulfillments[0].id, tracking="T-1")
    assert shipped.captured == Money("29.95", "EUR")


def test_a_higher_fee_the_card_declines_is_refused_and_changes_nothing() -> None:
    """The card declines the 5.00 more: the change is refused and nothing moves."""
    oms, order_id = paid_shop()
    before = (oms.get_order(order_id), oms.events())
    cast(FakePaymentGateway, oms.payments).decline_next()
    with pytest.raises(PaymentDeclined, match=r"29\.95 EUR, 5\.00 EUR more than"):
        oms.change_delivery(order_id, STORE_PICKUP, shipping_fee=Money("9.95", "EUR"))
    assert (oms.get_order(order_id), oms.events()) == before


@pytest.mark.parametrize(
    ("fee", "error", "words"),
    [
        (Money("-1.00", "EUR"), InvalidDraft, "shipping fee must not be negative"),
        (Money("1.00", "USD"), InvalidDraft, "shipping fee is in USD, the order is in EUR"),
        ("4.95", InvalidDraft, "shipping fee must be Money"),
    ],
)
def test_a_fee_that_is_not_a_fee_is_refused_and_changes_nothing(
    fee: object, error: type[OmsError], words: str
) -> None:
    """Negative, in another currency, or not money."""
    oms, order_id = paid_shop()
    before = (oms.get_order(order_id), oms.events())
    with pytest.raises(error, match=words):
        oms.change_delivery(order_id, STORE_PICKUP, shipping_fee=fee)  # type: ignore[arg-type]
    assert (oms.get_order(order_id), oms.events()) == before
