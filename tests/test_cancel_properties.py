"""Cancelling allocated units: newest fulfilment order first (or from one named
fulfilment order only), units conserved.

``Order.cancel`` counts what it takes per fulfilment order and line and rebuilds each
changed fulfilment order once; these properties hold it to the plain rule, taken one
line and one fulfilment order at a time.
"""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
from hypothesis import given
from hypothesis import strategies as st

from omscore.events import FulfilledUnits, UnitsCancelled
from omscore.ids import FulfillmentId, LineId, LocationId, OrderId
from omscore.orders import FulfillmentOrder, FulfillmentStatus, Order

from .conftest import draft

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def allocated_orders(draw: st.DrawFn) -> Order:
    """An order of 1-6 lines whose units are spread over 1-4 fulfilment orders (some of
    them already shipped), with some units left open."""
    quantities = draw(st.lists(st.integers(1, 6), min_size=1, max_size=6))
    lines = [(f"SKU-{i}", q) for i, q in enumerate(quantities)]
    ids = [LineId(f"O-1-{i}") for i in range(1, len(lines) + 1)]
    order, _ = Order.place(OrderId("O-1"), draft(*lines), ids, T0)
    for n in range(1, draw(st.integers(1, 4)) + 1):
        units = []
        for line in order.lines:
            take = draw(st.integers(0, line.open))
            if take:
                units.append(FulfilledUnits(line.id, line.sku, take))
        if units:
            f_id, location = FulfillmentId(f"O-1-F{n}"), LocationId(f"WH-{n}")
            order, _ = order.allocate([(f_id, location, units)], T0)
    for f in order.fulfillments:
        if draw(st.booleans()) and draw(st.booleans()):
            order, _ = order.advance(f.id, "ship", T0)
    return order


def reference_cancel(order: Order, wanted: dict[LineId, int]) -> list[FulfillmentOrder]:
    """The fulfilment orders after taking each line's allocated units to cancel from the
    newest active fulfilment order holding it, one line and one fulfilment at a time."""
    fulfillments = list(order.fulfillments)
    for line in order.lines:
        units = wanted.get(line.id, 0) - min(wanted.get(line.id, 0), line.open)
        for index in reversed(range(len(fulfillments))):
            f = fulfillments[index]
            take = min(units, f.quantity_of(line.id) if f.is_active else 0)
            if not take:
                continue
            units -= take
            lines = tuple(
                attrs.evolve(fl, quantity=fl.quantity - take) if fl.line_id == line.id else fl
                for fl in f.lines
            )
            kept = tuple(fl for fl in lines if fl.quantity > 0)
            fulfillments[index] = (
                attrs.evolve(f, lines=kept)
                if kept
                else attrs.evolve(f, status=FulfillmentStatus.CANCELLED)
            )
    return fulfillments


@given(allocated_orders(), st.data())
def test_cancel_takes_allocated_units_newest_fulfilment_first(
    order: Order, data: st.DataObject
) -> None:
    """Property: after any cancel the fulfilment orders are those of the one-at-a-time rule,
    every line's allocated units equal what its active fulfilment orders hold, and the
    event reports exactly the units taken from each."""
    cancellable = [line for line in order.lines if line.cancellable]
    if not cancellable:
        return
    chosen = data.draw(st.lists(st.sampled_from(cancellable), min_size=1, unique=True))
    wanted = {line.id: data.draw(st.integers(1, line.cancellable)) for line in chosen}
    after, events = order.cancel(dict(wanted), "changed my mind", T0)
    assert list(after.fulfillments) == reference_cancel(order, wanted)
    for line in after.lines:
        active = [f for f in after.fulfillments if f.is_active]
        assert line.allocated == sum(f.quantity_of(line.id) for f in active)
    (event,) = events
    assert isinstance(event, UnitsCancelled)
    for line in order.lines:
        reported = sum(u.open + u.allocated for u in event.units if u.line_id == line.id)
        assert reported == wanted.get(line.id, 0)
    for f in after.fulfillments:
        assert f.status is FulfillmentStatus.CANCELLED or all(fl.quantity > 0 for fl in f.lines)


@given(allocated_orders(), st.data())
def test_a_cancel_naming_a_fulfilment_order_takes_units_from_it_alone(
    order: Order, data: st.DataObject
) -> None:
    """Property: a cancel with ``fulfillment_id`` takes exactly the units asked from that
    fulfilment order, leaves open units and every other fulfilment order as they were,
    and reports the units as taken from it."""
    active = [f for f in order.fulfillments if f.is_active]
    if not active:
        return
    f = data.draw(st.sampled_from(active))
    held = {fl.line_id: f.quantity_of(fl.line_id) for fl in f.lines}
    chosen = data.draw(st.lists(st.sampled_from(sorted(held)), min_size=1, unique=True))
    wanted = {line_id: data.draw(st.integers(1, held[line_id])) for line_id in chosen}
    after, events = order.cancel(dict(wanted), "refused", T0, fulfillment_id=f.id)
    for before_f, after_f in zip(order.fulfillments, after.fulfillments, strict=True):
        if before_f.id != f.id:
            assert after_f == before_f
    left = after.fulfillment(f.id)
    for line_id, units in held.items():
        expected = units - wanted.get(line_id, 0)
        assert (left.quantity_of(line_id) if left.is_active else 0) == expected
    assert left.is_active == (sum(held.values()) > sum(wanted.values()))
    for before_line, after_line in zip(order.lines, after.lines, strict=True):
        assert after_line.open == before_line.open
        taken = wanted.get(before_line.id, 0)
        assert after_line.allocated == before_line.allocated - taken
        assert after_line.cancelled == before_line.cancelled + taken
    (event,) = events
    assert isinstance(event, UnitsCancelled)
    assert all(u.open == 0 and u.fulfillment_id == f.id for u in event.units)
    assert {u.line_id: u.allocated for u in event.units} == wanted
