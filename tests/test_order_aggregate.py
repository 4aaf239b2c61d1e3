"""The order aggregate: buckets, derived status, holds, edits and cancellation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from omscore import Address, Delivery, LineDraft, Money, OrderStatus
from omscore.errors import (
    CurrencyMismatch,
    InvalidDraft,
    InvalidQuantity,
    InvalidTransition,
    NotCancellable,
    UnknownHold,
    UnknownLine,
)
from omscore.events import FulfilledUnits, OrderHeld, UnitsCancelled
from omscore.ids import FulfillmentId, LineId, LocationId, OrderId, Sku
from omscore.orders import (
    DeliveryMethod,
    DraftLimits,
    FulfillmentLine,
    FulfillmentOrder,
    FulfillmentStatus,
    HoldKind,
    Order,
    OrderLine,
    PaymentEntry,
    PaymentKind,
)

from .conftest import BERLIN, draft, eur

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def place(*lines: tuple[str, int]) -> Order:
    """A placed order (no store involved)."""
    order, _ = Order.place(
        OrderId("O-1"), draft(*lines), [LineId(f"O-1-{i}") for i in range(1, len(lines) + 1)], T0
    )
    return order


def with_fulfillment(order: Order, line_units: int, status: FulfillmentStatus) -> Order:
    """The order with ``line_units`` of its first line in one fulfilment order."""
    line = order.lines[0]
    f = FulfillmentOrder(
        FulfillmentId("F-1"),
        LocationId("WH-1"),
        DeliveryMethod.SHIP,
        (FulfillmentLine(line.id, line.sku, line_units),),
        status,
        T0,
    )
    allocated = line_units if f.is_active else 0
    shipped = 0 if f.is_active else line_units
    new_line = attrs.evolve(line, allocated=allocated, shipped=shipped)
    return attrs.evolve(order, lines=(new_line, *order.lines[1:]), fulfillments=(f,))


def test_a_new_order_is_open_with_every_unit_open() -> None:
    """Placing puts every unit in the open bucket, version 1."""
    order = place(("A", 3), ("B", 1))
    assert order.status is OrderStatus.OPEN
    assert [line.open for line in order.lines] == [3, 1]
    assert order.version == 1


def test_status_follows_the_buckets() -> None:
    """Allocated, partially allocated, shipped and partially shipped derive from buckets."""
    order = place(("A", 4))
    assert with_fulfillment(order, 4, FulfillmentStatus.OPEN).status is OrderStatus.ALLOCATED
    assert with_fulfillment(order, 2, FulfillmentStatus.OPEN).status is (
        OrderStatus.PARTIALLY_ALLOCATED
    )
    assert with_fulfillment(order, 4, FulfillmentStatus.SHIPPED).status is OrderStatus.SHIPPED
    assert with_fulfillment(order, 1, FulfillmentStatus.SHIPPED).status is (
        OrderStatus.PARTIALLY_SHIPPED
    )


def test_several_holds_stand_at_once_and_release_one_by_one() -> None:
    """A held order is ON_HOLD until its last hold is released."""
    order, events = place(("A", 1)).hold("payment", "card declined", T0)
    assert isinstance(events[0], OrderHeld)
    order, _ = order.hold("fraud", "score 91", T0)
    assert order.status is OrderStatus.ON_HOLD
    assert (order.has_hold(HoldKind.PAYMENT), order.has_hold("fraud")) == (True, True)
    order, _ = order.release("payment", T0)
    assert order.status is OrderStatus.ON_HOLD
    assert (order.has_hold(HoldKind.PAYMENT), order.has_hold("fraud")) == (False, True)
    order, _ = order.release("fraud", T0)
    assert order.status is OrderStatus.OPEN
    assert (order.has_hold("payment"), order.has_hold("fraud"), order.is_held) == (False,) * 3


def test_a_second_hold_of_the_same_kind_is_refused() -> None:
    """One hold per kind."""
    order, _ = place(("A", 1)).hold("fraud", "x", T0)
    with pytest.raises(InvalidTransition, match="already has a 'fraud' hold"):
        order.hold("fraud", "again", T0)


@pytest.mark.parametrize("kind", ["", None, 3])
def test_a_hold_needs_a_kind(kind: object) -> None:
    """The aggregate refuses a hold without a kind, whoever calls it."""
    with pytest.raises(InvalidTransition, match=f"a hold needs a non-empty kind, got {kind!r}"):
        place(("A", 1)).hold(kind, "x", T0)  # type: ignore[arg-type]


def test_releasing_a_hold_that_is_not_there_is_refused() -> None:
    """UnknownHold names the kinds that do stand."""
    order, _ = place(("A", 1)).hold("manual", "x", T0)
    with pytest.raises(UnknownHold, match=r"no 'fraud' hold \(holds: manual\)"):
        order.release("fraud", T0)


def test_edits_change_quantity_add_and_remove_lines_and_the_address() -> None:
    """Every edit before allocation works and bumps the version once."""
    order = place(("A", 2), ("B", 1))
    order, _ = order.change_quantity("O-1-1", 5, T0)
    order, _ = order.add_line(LineId("O-1-3"), LineDraft("C", 1, eur("3.00")), T0)
    order, _ = order.remove_line("O-1-2", T0)
    new_address = Address(country="DE", postal_code="80331", city="Munich")
    order, _ = order.change_address(new_address, T0)
    assert [(line.sku, line.quantity) for line in order.lines] == [("A", 5), ("C", 1)]
    assert order.delivery.address == new_address
    assert order.version == 5


def test_editing_a_line_with_allocated_units_is_refused() -> None:
    """After a unit is allocated the line is frozen."""
    order = with_fulfillment(place(("A", 4)), 1, FulfillmentStatus.OPEN)
    with pytest.raises(InvalidTransition, match="can no longer be edited"):
        order.change_quantity("O-1-1", 6, T0)
    with pytest.raises(InvalidTransition, match="can no longer be edited"):
        order.remove_line("O-1-1", T0)
    with pytest.raises(InvalidTransition, match="already allocated"):
        order.change_address(BERLIN, T0)
    line = attrs.evolve(order.lines[0], allocated=1, shipped=2, delivered=1)
    touched = attrs.evolve(order, lines=(line,))
    with pytest.raises(InvalidTransition, match=r": 4 unit\(s\) already allocated"):
        touched.change_quantity("O-1-1", 6, T0)


def test_a_later_step_keeps_the_tracking_carrier_and_note_an_earlier_one_gave() -> None:
    """Shipped with a tracking number, a carrier and a note; delivering names none of them
    and keeps all three."""
    order = with_fulfillment(place(("A", 2)), 2, FulfillmentStatus.PACKED)
    order, _ = order.advance("F-1", "ship", T0, tracking="T-1", carrier="DHL", reason="fragile")
    order, _ = order.advance("F-1", "deliver", T0)
    f = order.fulfillment("F-1")
    assert (f.status, f.tracking, f.carrier, f.note) == (
        FulfillmentStatus.DELIVERED,
        "T-1",
        "DHL",
        "fragile",
    )


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, 200_000])
def test_edited_quantities_are_validated(bad: object) -> None:
    """Quantities stay whole, positive and within the limit."""
    with pytest.raises(InvalidQuantity):
        place(("A", 1)).change_quantity("O-1-1", bad, T0)  # type: ignore[arg-type]


def test_an_edited_quantity_may_reach_the_limit_and_the_cancelled_units() -> None:
    """The bounds are inclusive: the line limit itself, and as few units as were cancelled
    (never fewer than one); one past either is refused."""
    limits = DraftLimits(max_units_per_line=5)
    order, _ = place(("A", 1)).change_quantity("O-1-1", 5, T0, limits)
    assert order.lines[0].quantity == 5
    with pytest.raises(InvalidQuantity, match="between 1 and 5, got 6"):
        order.change_quantity("O-1-1", 6, T0, limits)
    cancelled, _ = order.cancel({"O-1-1": 2}, "customer", T0)
    shrunk, _ = cancelled.change_quantity("O-1-1", 2, T0, limits)
    assert (shrunk.lines[0].quantity, shrunk.lines[0].open) == (2, 0)
    with pytest.raises(InvalidQuantity, match="between 2 and 5, got 1"):
        cancelled.change_quantity("O-1-1", 1, T0, limits)


def test_an_added_line_is_validated_like_a_draft_line() -> None:
    """A USD line on a EUR order is refused."""
    with pytest.raises(InvalidDraft, match="is in USD"):
        place(("A", 1)).add_line(LineId("O-1-2"), LineDraft("B", 1, Money(1, "USD")), T0)


def test_lines_can_be_added_up_to_the_limit_and_no_further() -> None:
    """With at most 2 lines, a one-line order takes one more line, then no more."""
    limits = DraftLimits(max_lines=2)
    order, _ = place(("A", 1)).add_line(LineId("O-1-2"), LineDraft("B", 1, eur("1.00")), T0, limits)
    assert len(order.lines) == 2
    with pytest.raises(InvalidDraft, match="at most 2 lines"):
        order.add_line(LineId("O-1-3"), LineDraft("C", 1, eur("1.00")), T0, limits)


def test_allocating_more_than_is_open_is_refused_across_fulfilment_orders() -> None:
    """What a plan gives a line, summed over its fulfilment orders, must be 1 to its open
    units; a refused allocation keeps the order as it was."""
    order = place(("A", 3))
    line = order.lines[0]

    def allocation(*counts: int) -> list[tuple[FulfillmentId, LocationId, list[FulfilledUnits]]]:
        return [
            (FulfillmentId(f"F-{n}"), LocationId(f"WH-{n}"), [FulfilledUnits(line.id, line.sku, c)])
            for n, c in enumerate(counts, start=1)
        ]

    with pytest.raises(
        InvalidQuantity, match="cannot allocate 4 unit\\(s\\) of line O-1-1: 3 open"
    ):
        order.allocate(allocation(2, 2), T0)
    with pytest.raises(InvalidQuantity, match="cannot allocate 0 unit"):
        order.allocate(allocation(0), T0)
    allocated, events = order.allocate(allocation(1, 2), T0)
    assert [f.lines[0].quantity for f in allocated.fulfillments] == [1, 2]
    assert allocated.lines[0].allocated == 3
    assert allocated.version == order.version + 1  # one change, whatever it made
    assert [e.version for e in events] == [allocated.version] * 2


def test_a_fulfilment_order_carries_the_day_its_location_s_capacity_counted_it() -> None:
    """A capped location's new fulfilment order carries the day it counted on, an uncapped
    one's None. A part split off was not counted (its order was, once); a moved order
    carries the day its new location counts it."""
    order = place(("A", 3))
    line = order.lines[0]
    planned = [
        (FulfillmentId(f"F-{n}"), LocationId(f"WH-{n}"), [FulfilledUnits(line.id, line.sku, c)])
        for n, c in ((1, 2), (2, 1))
    ]
    day = T0.date()
    order, _ = order.allocate(planned, T0, {LocationId("WH-1"): day})
    assert [f.counted_on for f in order.fulfillments] == [day, None]
    order, _ = order.split_fulfillment("F-1", {line.id: 1}, FulfillmentId("F-3"), T0)
    assert {f.id: f.counted_on for f in order.fulfillments} == {
        "F-1": day,
        "F-2": None,
        "F-3": None,
    }
    later = day + timedelta(days=1)
    order, _ = order.move_fulfillment("F-2", LocationId("WH-1"), "", T0, later)
    order, _ = order.move_fulfillment("F-1", LocationId("WH-2"), "", T0)
    assert [(f.location_id, f.counted_on) for f in order.fulfillments] == [
        ("WH-2", None),
        ("WH-1", later),
        ("WH-1", None),
    ]


def test_cancelling_an_open_fulfilment_order_whole_clears_its_capacity_count() -> None:
    """Cancelled whole while open, a fulfilment order no longer counts; once its location
    accepted it, or cancelled in part, it still does."""
    day = T0.date()
    counted = {LocationId("WH-1"): day, LocationId("WH-2"): day}
    order = place(("A", 1), ("B", 1), ("C", 2))
    a, b, c = order.lines
    planned = [
        (FulfillmentId("F-1"), LocationId("WH-1"), [FulfilledUnits(a.id, a.sku, 1)]),
        (FulfillmentId("F-2"), LocationId("WH-2"), [FulfilledUnits(b.id, b.sku, 1)]),
        (FulfillmentId("F-3"), LocationId("WH-1"), [FulfilledUnits(c.id, c.sku, 2)]),
    ]
    order, _ = order.allocate(planned, T0, counted)
    order, _ = order.advance("F-2", "accept", T0)
    order, _ = order.cancel({a.id: 1, b.id: 1, c.id: 1}, "", T0)
    assert [(f.status.value, f.counted_on) for f in order.fulfillments] == [
        ("cancelled", None),
        ("cancelled", day),
        ("open", day),
    ]


def test_what_a_payment_covers_is_authorised_less_voided_plus_credited() -> None:
    """30.00 authorised, 10.00 of it voided, 5.00 credited from an exchanged return: the
    order may be charged 25.00 in all, of which 20.00 is still open on the card."""
    entries = [
        (PaymentKind.AUTHORIZED, "30.00"),
        (PaymentKind.VOIDED, "10.00"),
        (PaymentKind.CREDITED, "5.00"),
    ]
    payments = tuple(PaymentEntry(k, eur(a), "ref", f"key-{k}", T0) for k, a in entries)
    order = attrs.evolve(place(("A", 1)), payments=payments)
    assert (order.covered, order.uncaptured) == (eur("25.00"), eur("20.00"))


@given(
    quantity=st.integers(1, 12),
    price=st.integers(1, 99_999),
    tax=st.integers(0, 9_999),
    data=st.data(),
)
def test_the_value_of_some_units_is_the_sum_of_their_shares(
    quantity: int, price: int, tax: int, data: st.DataObject
) -> None:
    """A line's unit shares sum to its total; any run of units (in capture or refund order)
    is worth the sum of its shares, which ``value_of_units`` gives without listing them."""
    discount = data.draw(st.integers(0, price * quantity), label="discount")
    unit_price, off, taxed = (Money.from_minor(cents, "EUR") for cents in (price, discount, tax))
    line = OrderLine(LineId("L-1"), Sku("A"), quantity, unit_price, off, taxed)
    shares = line.unit_shares()
    assert len(shares) == quantity
    assert sum(shares, Money.zero("EUR")) == line.total
    first = data.draw(st.integers(0, quantity - 1))
    count = data.draw(st.integers(1, quantity - first))
    assert line.value_of_units(first, count) == sum(shares[first : first + count], eur("0"))


def test_units_counted_back_are_zero_up_to_what_the_bucket_before_holds() -> None:
    """Two units delivered: counting 0 of them returned changes nothing, -1 or 3 is
    refused, 2 are counted; then refunds count within what was returned."""
    placed = place(("A", 2))
    order = attrs.evolve(placed, lines=(attrs.evolve(placed.lines[0], delivered=2),))
    line = LineId("O-1-1")
    assert order.mark_returned({line: 0}).lines[0].returned == 0
    for bad in (-1, 3):
        with pytest.raises(InvalidQuantity, match=f"cannot count {bad} more unit"):
            order.mark_returned({line: bad})
    returned = order.mark_returned({line: 2})
    assert returned.lines[0].returned == 2
    with pytest.raises(InvalidQuantity, match="2 already are, of 2 returned"):
        returned.mark_refunded({line: 2}).mark_refunded({line: 1})


def test_a_shipment_captures_the_shares_of_the_units_after_those_already_sent() -> None:
    """10.00 for three units is 3.34, 3.33 and 3.33, in capture order. One unit delivered
    and one shipped, the third unit's parcel captures the third share: 3.33."""
    placed = place(("A", 3))
    line = attrs.evolve(
        placed.lines[0],
        unit_price=eur("3.33"),
        tax=eur("0.01"),
        delivered=1,
        shipped=1,
        allocated=1,
    )
    assert [str(m) for m in line.unit_shares()] == ["3.34 EUR", "3.33 EUR", "3.33 EUR"]
    third = FulfillmentOrder(
        FulfillmentId("F-3"),
        LocationId("WH-1"),
        DeliveryMethod.SHIP,
        (FulfillmentLine(line.id, line.sku, 1),),
        FulfillmentStatus.PACKED,
        T0,
    )
    paid = PaymentEntry(PaymentKind.CAPTURED, eur("3.34"), "ref", "capture:F-1", T0)
    order = attrs.evolve(placed, lines=(line,), fulfillments=(third,), payments=(paid,))
    assert order.capture_value("F-3") == eur("3.33")


def test_an_order_of_many_lines_finds_each_line_through_its_index() -> None:
    """``line_finder`` indexes an order of eight lines or more; it answers as ``line`` does,
    unknown ids included."""
    order = place(*[(f"SKU-{n}", 1) for n in range(10)])
    find = order.line_finder()
    assert [find(line.id) for line in order.lines] == list(order.lines)
    with pytest.raises(UnknownLine, match="order O-1 has no line 'O-1-99'"):
        find("O-1-99")


def test_a_pickup_order_has_no_address_to_change() -> None:
    """Changing the address of a click & collect order is refused."""
    order, _ = Order.place(
        OrderId("O-1"), draft(("A", 1), delivery=Delivery.pickup("ST-1")), [LineId("O-1-1")], T0
    )
    with pytest.raises(InvalidTransition, match="O-1 is a pickup order: it has no address"):
        order.change_address(BERLIN, T0)


def test_the_last_line_cannot_be_removed() -> None:
    """An order keeps at least one line; cancel it instead."""
    with pytest.raises(InvalidTransition, match="last line"):
        place(("A", 1)).remove_line("O-1-1", T0)


def test_cancel_part_of_a_line_then_the_rest() -> None:
    """Per-line cancellation, then cancel-all; the order ends CANCELLED."""
    order, events = place(("A", 3), ("B", 2)).cancel({"O-1-1": 2}, "customer", T0)
    assert order.lines[0].cancelled == 2
    assert order.lines[0].open == 1
    event = events[0]
    assert isinstance(event, UnitsCancelled)
    assert not event.fully_cancelled
    order, events = order.cancel(None, "customer", T0)
    assert order.status is OrderStatus.CANCELLED
    assert isinstance(events[0], UnitsCancelled)
    assert events[0].fully_cancelled


def test_cancelling_more_than_is_cancellable_is_refused() -> None:
    """The error names the line, the request and what is cancellable."""
    order = place(("A", 3))
    with pytest.raises(NotCancellable, match=r"cannot cancel 4 unit.*only 3"):
        order.cancel({"O-1-1": 4}, "x", T0)
    with pytest.raises(UnknownLine):
        order.cancel({"nope": 1}, "x", T0)
    with pytest.raises(InvalidQuantity):
        order.cancel({"O-1-1": 0}, "x", T0)


def test_cancelling_allocated_units_shrinks_the_fulfilment_order() -> None:
    """Open units go first, then allocated ones; an emptied fulfilment order is cancelled."""
    order = with_fulfillment(place(("A", 4)), 3, FulfillmentStatus.ACCEPTED)
    order, events = order.cancel({"O-1-1": 2}, "x", T0)
    assert order.lines[0].open == 0
    assert order.lines[0].allocated == 2
    assert order.fulfillments[0].units == 2
    cancelled = events[0]
    assert isinstance(cancelled, UnitsCancelled)
    assert [(u.open, u.allocated, u.location_id) for u in cancelled.units] == [
        (1, 0, None),
        (0, 1, "WH-1"),
    ]
    order, _ = order.cancel(None, "x", T0)
    assert order.fulfillments[0].status is FulfillmentStatus.CANCELLED
    assert order.status is OrderStatus.CANCELLED


def test_shipped_units_cannot_be_cancelled() -> None:
    """Only open and allocated-unshipped units are cancellable."""
    order = with_fulfillment(place(("A", 2)), 2, FulfillmentStatus.SHIPPED)
    with pytest.raises(NotCancellable):
        order.cancel(None, "x", T0)


def test_a_cancelled_order_takes_no_more_edits_or_holds() -> None:
    """Cancelled is final for edits and holds."""
    order, _ = place(("A", 1)).cancel(None, "x", T0)
    with pytest.raises(InvalidTransition, match="it is cancelled"):
        order.hold("manual", "x", T0)
    with pytest.raises(InvalidTransition):
        order.change_quantity("O-1-1", 2, T0)


def test_the_total_adds_lines_and_fee_and_refuses_a_mixed_currency() -> None:
    """quantity x price - discount + tax per line, plus the fee; an order built by hand
    with a line in another currency cannot be totalled."""
    order = place(("A", 3), ("B", 1))
    line = attrs.evolve(order.lines[0], discount=eur("1.50"), tax=eur("0.25"))
    order = attrs.evolve(order, lines=(line, order.lines[1]), shipping_fee=eur("4.90"))
    assert order.total == eur("43.65")
    foreign = attrs.evolve(order.lines[1], unit_price=Money("10.00", "USD"))
    with pytest.raises(CurrencyMismatch, match="not all in EUR"):
        _ = attrs.evolve(order, lines=(line, foreign)).total


def test_returned_units_stay_within_delivered_and_refunded_within_returned() -> None:
    """The counters inside ``delivered``: a line never counts more units returned than
    were delivered, nor more refunded than returned; the error names the line and counts."""
    order = place(("A", 3), ("B", 1))
    line, other = order.lines
    order = attrs.evolve(order, lines=(attrs.evolve(line, delivered=3), other))
    order = order.mark_returned({line.id: 2})
    assert order.lines[0].returned == 2
    with pytest.raises(InvalidQuantity, match=r"O-1-1: cannot count 2 more unit\(s\) as returned"):
        order.mark_returned({line.id: 2})
    with pytest.raises(InvalidQuantity, match="0 already are, of 0 delivered"):
        order.mark_returned({other.id: 1})
    with pytest.raises(InvalidQuantity):
        order.mark_returned({line.id: -1})
    with pytest.raises(UnknownLine):
        order.mark_returned({LineId("O-1-9"): 1})
    order = order.mark_returned({line.id: 1}).mark_refunded({line.id: 3})
    assert (order.lines[0].returned, order.lines[0].refunded) == (3, 3)
    with pytest.raises(InvalidQuantity, match="3 already are, of 3 returned"):
        order.mark_refunded({line.id: 1})
