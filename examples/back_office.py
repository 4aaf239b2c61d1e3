"""Back office: the queues a shop's staff works from, on an embedded SQLite file.

A fraud team reviews held orders, customer service adds a unit to an order the card has
already authorised (the card is asked for the difference), the warehouse takes its work
from its queue, an alarm finds work nobody moved on, pickups nobody collected expire, and
customer service refunds a late parcel, tells a customer what can still be returned and
reads why an order was sourced where it was.

Run it with ``python examples/back_office.py``.
"""

from __future__ import annotations

import tempfile
from contextlib import closing
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from omscore import (
    OMS,
    Address,
    Capability,
    Delivery,
    GeoPoint,
    LineDraft,
    Location,
    LocationKind,
    Money,
    OrderDraft,
)
from omscore.adapters.payments import FakePaymentGateway
from omscore.adapters.sqlite import SqliteStore
from omscore.events import SourcingDecided
from omscore.testing import ManualClock

BERLIN = Address(country="DE", postal_code="10115", city="Berlin", geo=GeoPoint(52.53, 13.38))


def draft(sku: str, quantity: int, delivery: Delivery) -> OrderDraft:
    """A web order of one line at 25.00 EUR a unit."""
    price = Money(Decimal("25.00"), "EUR")
    return OrderDraft(
        channel="web",
        currency="EUR",
        delivery=delivery,
        lines=[LineDraft(sku=sku, quantity=quantity, unit_price=price)],
    )


def open_shop(store: SqliteStore, clock: ManualClock) -> OMS:
    """A warehouse and a store with stock, on a SQLite file."""
    oms = OMS(
        store,
        clock=clock,
        payments=FakePaymentGateway(),
        pickup_expiry=timedelta(days=3),
        record_sourcing=True,  # keep why each order went where it went
    )
    oms.add_location(
        Location(
            id="WH-BER",
            kind=LocationKind.WAREHOUSE,
            geo=GeoPoint(52.45, 13.30),
            capabilities={Capability.SHIP, Capability.RETURNS},
            priority=1,  # order holds take the warehouse's stock before a store's
        )
    )
    oms.add_location(
        Location(
            id="ST-MITTE",
            kind=LocationKind.STORE,
            geo=GeoPoint(52.52, 13.40),
            capabilities={Capability.PICKUP},
            priority=5,
        )
    )
    oms.receive("WH-BER", "MUG", 50)
    oms.receive("ST-MITTE", "MUG", 5)
    return oms


def main() -> None:
    """A day in the back office, printed as it goes."""
    clock = ManualClock()
    with (
        tempfile.TemporaryDirectory() as directory,
        closing(SqliteStore(str(Path(directory) / "shop.db"))) as store,
    ):
        oms = open_shop(store, clock)

        # Checkouts: one is held by the fraud screen before it is sourced.
        shipped = oms.place_order(draft("MUG", 2, Delivery.ship(BERLIN)), allocate=True)
        pickup = oms.place_order(draft("MUG", 1, Delivery.pickup("ST-MITTE")), allocate=True)
        suspicious = oms.place_order(draft("MUG", 8, Delivery.ship(BERLIN)))
        oms.hold(suspicious.id, "fraud", reason="new account, high value")
        clock.advance(timedelta(hours=2))

        # The fraud team works its queue, oldest first.
        for queued in oms.order_queue(hold="fraud"):
            print(f"fraud review: {queued.order.id}, waiting {queued.waiting}")
            oms.release(queued.order.id, "fraud")
            oms.allocate(queued.order.id)
        assert oms.order_queue() == []  # nothing left waiting to be sourced

        # A customer calls: one more mug on an order not yet sourced. The card authorised
        # 25.00 EUR; the edit has the gateway authorise the 25.00 more.
        called = oms.place_order(draft("MUG", 1, Delivery.ship(BERLIN)))
        called = oms.change_quantity(called.id, called.lines[0].id, 2)
        print("authorisations:", [str(a.authorized) for a in called.authorizations])
        oms.allocate(called.id)

        # The warehouse takes its work from its queue; the alarm finds what waits too long.
        work = oms.fulfillment_queue("WH-BER")
        print("warehouse queue:", [q.fulfillment.id for q in work])
        oms.ship(work[0].fulfillment.id, tracking="1Z-1")
        clock.advance(timedelta(hours=2))  # the second parcel is left lying
        stalled = oms.stalled_fulfillments(timedelta(hours=1), location_id="WH-BER")
        print("stalled at the warehouse:", [q.fulfillment.id for q in stalled])
        for late in stalled:
            oms.ship(late.fulfillment.id, tracking=f"1Z-{late.order_id}")

        # The store readies its pickup; nobody comes, and it expires after three days.
        (counter,) = oms.fulfillment_queue("ST-MITTE")
        oms.ready_for_pickup(counter.fulfillment.id)
        clock.advance(timedelta(days=3))
        print("pickups expired:", oms.expire_pickups())
        print("pickup order:", oms.get_order(pickup.id).status.value)

        # The first parcel arrives late: goodwill, and what the customer may still send back.
        parcel = oms.get_order(shipped.id).fulfillments[0]
        oms.deliver(parcel.id)
        refunded = oms.refund_order(shipped.id, Money("5.00", "EUR"), "parcel two days late")
        print(f"goodwill: {refunded.refunded} back of {refunded.captured} paid")
        print("returnable:", oms.returnable(shipped.id))

        # Why did the reviewed order go where it went? The decision was kept.
        why = [e for e in oms.events() if isinstance(e, SourcingDecided)]
        print(next(e.explanation for e in why if e.order_id == suspicious.id))


if __name__ == "__main__":
    main()
