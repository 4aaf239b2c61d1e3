"""Quick start: a warehouse and a store, stock, a checkout reservation, an order, a cancel.

Run it with ``python examples/quickstart.py``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

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
from omscore.adapters.memory import MemoryStore


def main() -> None:
    """Walk one order from checkout to a partial cancel and print what happened."""
    oms = OMS(MemoryStore())
    oms.add_location(
        Location(
            id="WH-BER",
            kind=LocationKind.WAREHOUSE,
            geo=GeoPoint(52.52, 13.40),
            capabilities=frozenset({Capability.SHIP, Capability.RETURNS}),
            priority=1,
        )
    )
    oms.add_location(
        Location(
            id="ST-MUC",
            kind=LocationKind.STORE,
            geo=GeoPoint(48.14, 11.58),
            capabilities=frozenset({Capability.SHIP, Capability.PICKUP}),
            priority=5,
        )
    )
    oms.configure_channel("marketplace", kinds=[LocationKind.WAREHOUSE], buffer=2)
    oms.receive("WH-BER", "SKU-1", 10, reference="PO-7")
    oms.receive("ST-MUC", "SKU-1", 4, reference="PO-8")
    print("ATP web:", oms.available("SKU-1", channel="web"))
    print("ATP marketplace:", oms.available("SKU-1", channel="marketplace"))

    oms.reserve("SKU-1", 2, channel="web", ttl=timedelta(minutes=15), key="cart-42")
    print("ATP web after a checkout reservation:", oms.available("SKU-1", channel="web"))

    berlin = Address(country="DE", postal_code="10115", city="Berlin", geo=GeoPoint(52.53, 13.38))
    order = oms.place_order(
        OrderDraft(
            channel="web",
            currency="EUR",
            lines=[LineDraft(sku="SKU-1", quantity=3, unit_price=Money(Decimal("19.99"), "EUR"))],
            delivery=Delivery.ship(berlin),
            reservation_key="cart-42",
        ),
        idempotency_key="checkout-42",
    )
    print(f"order {order.id}: {order.status.value}, total {order.total}")
    print("ATP web after the order:", oms.available("SKU-1", channel="web"))

    line = order.lines[0]
    order = oms.cancel(order.id, {line.id: 1}, reason="customer changed their mind")
    print(
        f"after cancelling one unit: open {order.lines[0].open}, "
        f"cancelled {order.lines[0].cancelled}"
    )
    print("ATP web:", oms.available("SKU-1", channel="web"))
    print("events:", ", ".join(type(e).__name__ for e in oms.events()))
    assert oms.reconcile() == [], "every level agrees with its ledger"


if __name__ == "__main__":
    main()
