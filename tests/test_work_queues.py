"""Work queues: what each location still has to do, the work that has stalled, and the
orders still waiting to be allocated or released from a hold; and a customer's orders.

The stores' side (ordering, filters, limits) is proven for every store by the contract kit;
these tests cover what the service adds: default statuses, waiting times, the errors, and
pickup expiry reading only what is overdue.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import attrs
import pytest

from omscore import OMS, Delivery, FulfillmentStatus, QueuedFulfillment
from omscore.adapters.payments import FakePaymentGateway
from omscore.errors import InvalidQuery, UnknownFulfillment, UnknownLocation, UnknownOrder
from omscore.testing import ManualClock
from omscore.testing.invariants import check_books

from .conftest import draft, store_location, warehouse


def ids(queue: list[QueuedFulfillment]) -> list[str]:
    """The fulfilment ids of a queue, in its order."""
    return [q.fulfillment.id for q in queue]


@pytest.fixture
def busy(oms: OMS, clock: ManualClock) -> OMS:
    """WH-1 with three shipments an hour apart (the first packed, the last shipped) and
    ST-1 with a pickup ready for an hour."""
    oms.receive("WH-1", "A", 10)
    oms.receive("ST-1", "B", 10)
    for _ in range(3):
        oms.allocate(oms.place_order(draft(("A", 1))).id)
        clock.advance(timedelta(hours=1))
    pickup = oms.place_order(draft(("B", 1), delivery=Delivery.pickup("ST-1")))
    oms.allocate(pickup.id)
    oms.pack("O-1-F1")
    oms.ship("O-3-F1", tracking="T-3")
    oms.ready_for_pickup(oms.get_order(pickup.id).fulfillments[0].id)
    clock.advance(timedelta(hours=1))
    return oms


def test_a_location_queue_lists_its_active_work_longest_waiting_first(
    busy: OMS, clock: ManualClock
) -> None:
    """Active statuses by default; the waiting time runs from the last status change."""
    queue = busy.fulfillment_queue("WH-1")
    assert ids(queue) == ["O-2-F1", "O-1-F1"]  # O-1 was packed after O-2 was created
    assert [q.waiting for q in queue] == [timedelta(hours=3), timedelta(hours=1)]
    assert queue[0].since == clock.now() - timedelta(hours=3)
    assert [q.order_id for q in queue] == ["O-2", "O-1"]
    assert ids(busy.fulfillment_queue("ST-1")) == ["O-4-F1"]
    assert ids(busy.fulfillment_queue("WH-1", statuses=["shipped"])) == ["O-3-F1"]
    assert ids(busy.fulfillment_queue("WH-1", limit=1)) == ["O-2-F1"]


def test_stalled_work_is_what_a_location_owes_past_a_time(busy: OMS) -> None:
    """Open, accepted, picked or packed for at least ``older_than``; a pickup waiting for
    its customer is not stalled work, a parcel never delivered can be asked for."""
    assert ids(busy.stalled_fulfillments(timedelta(hours=1))) == ["O-2-F1", "O-1-F1"]
    assert ids(busy.stalled_fulfillments(timedelta(hours=2))) == ["O-2-F1"]
    assert busy.stalled_fulfillments(timedelta(hours=4)) == []
    assert busy.stalled_fulfillments(timedelta(hours=1), location_id="ST-1") == []
    lost = busy.stalled_fulfillments(timedelta(hours=1), statuses={FulfillmentStatus.SHIPPED})
    assert ids(lost) == ["O-3-F1"]
    assert ids(busy.stalled_fulfillments(timedelta(0), statuses="ready_for_pickup")) == ["O-4-F1"]


def test_work_leaves_the_queue_as_it_is_done(busy: OMS) -> None:
    """Shipped, rejected and collected fulfilment orders are no longer active work."""
    busy.ship("O-1-F1", tracking="T-1")
    busy.reject_fulfillment("O-2-F1", reason="damaged")  # no other location has A
    assert "O-1-F1" not in ids(busy.fulfillment_queue("WH-1"))
    assert "O-2-F1" not in ids(busy.fulfillment_queue("WH-1"))
    busy.collect("O-4-F1")
    assert "O-4-F1" not in ids(busy.fulfillment_queue("ST-1"))
    check_books(busy)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda oms: oms.fulfillment_queue("NOPE"), UnknownLocation, "NOPE"),
        (
            lambda oms: oms.fulfillment_queue("WH-1", statuses=["packed", "lost"]),
            InvalidQuery,
            "unknown fulfilment status(es) ['lost']",
        ),
        (lambda oms: oms.fulfillment_queue("WH-1", limit=0), InvalidQuery, "got 0"),
        (
            lambda oms: oms.stalled_fulfillments(timedelta(minutes=-1)),
            InvalidQuery,
            "older_than must not be negative",
        ),
        (
            lambda oms: oms.order_queue(statuses=["open", "stuck"]),
            InvalidQuery,
            "unknown order status(es) ['stuck']",
        ),
        (
            lambda oms: oms.order_queue(statuses={"open", "shipped", "delivered"}),
            InvalidQuery,
            "not ['delivered', 'shipped']: find those by their fulfilment orders",
        ),
        (lambda oms: oms.order_queue(limit=0), InvalidQuery, "got 0"),
        (lambda oms: oms.order_queue(limit=True), InvalidQuery, "limit must be an int, got True"),
        (lambda oms: oms.order_queue(limit=2.5), InvalidQuery, "limit must be an int, got 2.5"),
        (
            lambda oms: oms.fulfillment_queue("WH-1", limit="10"),
            InvalidQuery,
            "limit must be an int, got '10'",
        ),
        (
            lambda oms: oms.customer_orders("C-1", limit=1.0),
            InvalidQuery,
            "limit must be an int, got 1.0",
        ),
        (
            lambda oms: oms.order_queue(older_than=3600),
            InvalidQuery,
            "older_than must be a timedelta, got 3600",
        ),
        (
            lambda oms: oms.stalled_fulfillments(None),
            InvalidQuery,
            "older_than must be a timedelta, got None",
        ),
        (
            lambda oms: oms.stalled_fulfillments(timedelta(hours=1), limit=-3),
            InvalidQuery,
            "limit must be at least 1, got -3",
        ),
        (
            lambda oms: oms.order_queue(older_than=timedelta(seconds=-1)),
            InvalidQuery,
            "older_than must not be negative",
        ),
        (
            lambda oms: oms.stalled_fulfillments(timedelta(hours=1), location_id="NOPE"),
            UnknownLocation,
            "NOPE",
        ),
    ],
)
def test_queue_questions_that_mean_nothing_are_refused(
    busy: OMS, call: Callable[[OMS], object], error: type[Exception], message: str
) -> None:
    """A typed error that names the value."""
    with pytest.raises(error) as raised:
        call(busy)
    assert message in str(raised.value)


def test_expiring_pickups_reads_only_the_overdue_orders(
    make_oms: Callable[..., OMS], clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of many pickups waiting at a store, expiry loads only those past their window."""
    oms = make_oms(pickup_expiry=timedelta(days=3))
    oms.add_location(store_location("ST-1"))
    oms.receive("ST-1", "A", 50)
    for n in range(20):
        order = oms.place_order(draft(("A", 1), delivery=Delivery.pickup("ST-1")))
        oms.allocate(order.id)
        oms.ready_for_pickup(oms.get_order(order.id).fulfillments[0].id)
        if n == 1:
            clock.advance(timedelta(days=1))
    clock.advance(timedelta(days=2))
    loaded: list[str] = []
    orders_type = type(oms.store.unit_of_work().orders)
    original = orders_type.get

    def counting_get(self: object, order_id: str) -> object:
        loaded.append(order_id)
        return original(self, order_id)  # type: ignore[arg-type]

    monkeypatch.setattr(orders_type, "get", counting_get)
    assert oms.expire_pickups() == 2
    assert sorted(set(loaded)) == ["O-1", "O-2"]
    assert oms.get_order("O-3").fulfillments[0].status is FulfillmentStatus.READY_FOR_PICKUP
    check_books(oms)


def test_a_fulfilment_order_leads_to_its_order(busy: OMS) -> None:
    """What a packing slip needs from a queue entry; an unknown id is a typed error."""
    assert busy.get_order_by_fulfillment("O-2-F1").id == "O-2"
    with pytest.raises(UnknownFulfillment, match="O-9-F1"):
        busy.get_order_by_fulfillment("O-9-F1")


def test_the_order_queue_lists_what_still_waits_for_the_oms_or_a_person(
    make_oms: Callable[..., OMS], clock: ManualClock
) -> None:
    """By default: orders not wholly allocated and held orders, placed earliest first, with
    how long the customer has waited; a hold kind gives its review queue, ``older_than``
    the customers waiting that long, and allocated orders leave it."""
    gateway = FakePaymentGateway()
    oms = make_oms(payments=gateway)
    oms.add_location(warehouse("WH-1"))
    for sku, units in (("A", 3), ("B", 5), ("C", 5)):
        oms.receive("WH-1", sku, units)
    backordered = oms.place_order(draft(("A", 5)))  # 3 on the shelf, 2 waiting for stock
    clock.advance(timedelta(hours=2))
    gateway.decline_next()
    declined = oms.place_order(draft(("B", 2)))  # the card is declined: a payment hold
    clock.advance(timedelta(hours=1))
    allocated = oms.place_order(draft(("C", 1)))
    oms.allocate(allocated.id)
    oms.allocate(backordered.id)  # the 3 units there are
    queue = oms.order_queue()
    assert [(q.order.id, q.order.status.value, q.waiting) for q in queue] == [
        (backordered.id, "partially_allocated", timedelta(hours=3)),
        (declined.id, "on_hold", timedelta(hours=1)),
    ]
    assert queue[0].since == backordered.placed_at
    assert [q.order.id for q in oms.order_queue(hold="payment")] == [declined.id]
    assert oms.order_queue(hold="fraud") == []
    assert [q.order.id for q in oms.order_queue(older_than=timedelta(hours=2))] == [backordered.id]
    assert [q.order.id for q in oms.order_queue(statuses="on_hold")] == [declined.id]
    assert [q.order.id for q in oms.order_queue(channel="web", limit=1)] == [backordered.id]
    assert oms.order_queue(channel="marketplace") == []
    oms.cancel(declined.id)
    assert [q.order.id for q in oms.order_queue()] == [backordered.id]


def test_a_customers_order_history_pages_back_from_the_newest(oms: OMS, clock: ManualClock) -> None:
    """Pages of a customer's orders, newest first, each after the last of the one before;
    another customer's order as the page mark, an unknown one, an empty customer
    reference or a limit below 1 are refused."""
    oms.receive("WH-1", "A", 10)
    placed = []
    for customer in ("C-1", "C-2", "C-1", "C-1", None, "C-1", "C-1"):
        placed.append(oms.place_order(attrs.evolve(draft(("A", 1)), customer_ref=customer)))
        clock.advance(timedelta(minutes=1))
    history = [o.id for o in reversed(placed) if o.customer_ref == "C-1"]
    pages, before = [], None
    while page := oms.customer_orders("C-1", before=before, limit=2):
        pages.append([o.id for o in page])
        before = page[-1].id
    assert pages == [history[0:2], history[2:4], history[4:]]
    assert oms.customer_orders("C-9") == []
    with pytest.raises(InvalidQuery, match="order O-2 is not an order of customer 'C-1'"):
        oms.customer_orders("C-1", before="O-2")
    with pytest.raises(UnknownOrder, match="no order 'O-404'"):
        oms.customer_orders("C-1", before="O-404")
    for customer_ref in ("", None, 7):
        with pytest.raises(InvalidQuery, match="customer_ref must be a non-empty string"):
            oms.customer_orders(customer_ref)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="limit must be at least 1, got 0"):
        oms.customer_orders("C-1", limit=0)
