"""A product launch on an embedded SQLite file: pre-orders, purchase orders that change,
and the date each customer is told.

Run it with ``python examples/product_launch.py``.

Customers pre-order a console before the first unit exists. Each order waits as a
backorder, oldest first. The purchase orders on their way give every waiting line a
date; when the vendor is late or a purchase order is cancelled, the dates move at once,
and when the units arrive they go to the oldest orders first.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
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
from omscore.adapters.sqlite import SqliteStore
from omscore.events import BackorderServed, SupplyCancelled, SupplyUpdated
from omscore.testing import ManualClock

CONSOLE = "CONSOLE-X"
BERLIN = Address(country="DE", postal_code="10115", city="Berlin", geo=GeoPoint(52.53, 13.38))


def pre_order(oms: OMS, clock: ManualClock, customer: str) -> str:
    """One console for ``customer``, shipped to Berlin, an hour after the last; the new
    order's id."""
    clock.advance(timedelta(hours=1))
    draft = OrderDraft(
        channel="web",
        currency="EUR",
        lines=[LineDraft(sku=CONSOLE, quantity=1, unit_price=Money(Decimal("499.00"), "EUR"))],
        delivery=Delivery.ship(BERLIN),
        customer_ref=customer,
    )
    return oms.place_order(draft).id


def tell_customers(oms: OMS, orders: dict[str, str], when: str) -> None:
    """Print the date each waiting customer is told."""
    print(f"-- {when}")
    for customer, order_id in orders.items():
        dates = oms.backorder_dates(order_id)
        if not dates:
            print(f"  {customer}: held, ready to ship")
            continue
        [date] = dates.values()
        print(f"  {customer}: {date:%d %b}" if date else f"  {customer}: no date yet")


def main() -> None:
    """Take pre-orders, move the purchase orders about, chase the late one, receive the
    first units."""
    clock = ManualClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(str(Path(directory) / "launch.db"))
        oms = OMS(store, clock=clock)
        oms.add_location(
            Location(
                id="WH-BER",
                kind=LocationKind.WAREHOUSE,
                geo=GeoPoint(52.52, 13.40),
                capabilities=frozenset({Capability.SHIP}),
                priority=1,
                time_zone="Europe/Berlin",
            )
        )
        launch_day = clock.now() + timedelta(days=10)
        oms.add_supply(CONSOLE, "WH-BER", 3, launch_day, reference="PO-1")
        oms.add_supply(CONSOLE, "WH-BER", 2, launch_day + timedelta(days=7), reference="PO-2")
        print("a new pre-order of 1 is promised for", f"{oms.promise_date(CONSOLE, 1):%d %b}")

        orders = {c: pre_order(oms, clock, c) for c in ("ana", "ben", "cem", "dia")}
        tell_customers(oms, orders, "four pre-orders, 3 consoles due on launch day, 2 a week on")
        assert oms.available(CONSOLE, channel="web") == 0

        oms.update_supply(CONSOLE, "WH-BER", "PO-1", eta=launch_day + timedelta(days=3))
        tell_customers(oms, orders, "the vendor ships PO-1 three days late")

        oms.cancel_supply(CONSOLE, "WH-BER", "PO-2")
        orders["eva"] = pre_order(oms, clock, "eva")
        tell_customers(oms, orders, "PO-2 is cancelled, and eva pre-orders too")

        clock.set(launch_day + timedelta(days=4))
        [late] = oms.incoming_supply(due_by=clock.now())  # what the buyer chases
        print(
            f"buyer: {late.arrival.reference} is {late.late.days} day(s) late, "
            f"{late.backordered} consoles on backorder wait for it"
        )
        oms.receive("WH-BER", CONSOLE, 3, reference="PO-1")
        assert oms.incoming_supply() == []
        tell_customers(oms, orders, "PO-1 arrives: the three oldest orders get a console")
        for order_id in orders.values():
            if not oms.backorder_dates(order_id):
                oms.allocate(order_id)
        queue = oms.fulfillment_queue("WH-BER")
        print(f"WH-BER has {len(queue)} parcels to pick")

        told = [
            type(e).__name__
            for e in oms.events()
            if isinstance(e, SupplyUpdated | SupplyCancelled | BackorderServed)
        ]
        print("events:", ", ".join(told))
        assert oms.reconcile() == [], "every level agrees with its ledger"
        store.close()


if __name__ == "__main__":
    main()
