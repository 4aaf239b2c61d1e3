"""When a line's units were delivered: what the return window counts from."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from omscore.orders import FulfillmentStatus, Order
from omscore.returns import delivered_at

from .test_cancel_properties import T0, allocated_orders


@given(allocated_orders(), st.data())
def test_a_line_counts_from_its_last_delivery(order: Order, data: st.DataObject) -> None:
    """Property: ``delivered_at`` is the latest time a delivered (or collected) fulfilment
    order holding the line changed, and None for a line none of them holds."""
    for f in order.fulfillments:
        if f.status is FulfillmentStatus.OPEN and data.draw(st.booleans()):
            order, _ = order.advance(f.id, "ship", T0)
        if order.fulfillment(f.id).status is FulfillmentStatus.SHIPPED and data.draw(st.booleans()):
            # Parcels arrive in any order: the latest, not the last looked at, counts.
            day = data.draw(st.integers(1, 9))
            order, _ = order.advance(f.id, "deliver", T0 + timedelta(days=day))
    for line in order.lines:
        times = [
            f.changed_at or f.created_at
            for f in order.fulfillments
            if f.status is FulfillmentStatus.DELIVERED and f.quantity_of(line.id) > 0
        ]
        assert delivered_at(order, line.id) == (max(times) if times else None)
