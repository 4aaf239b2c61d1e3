"""Returns: eligibility, the RMA lifecycle, inspection and dispositions, exact refunds."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import attrs
import pytest

from omscore import (
    OMS,
    Capability,
    Delivery,
    GeoPoint,
    LineDraft,
    Location,
    Money,
    Order,
    OrderDraft,
    OrderStatus,
)
from omscore.adapters.carriers import TableRateCarrier
from omscore.adapters.payments import FakePaymentGateway
from omscore.errors import (
    CurrencyMismatch,
    InvalidMoney,
    InvalidRefund,
    InvalidReturn,
    InvalidTransition,
    PaymentDeclined,
    PaymentLimitExceeded,
    UnknownLocation,
    UnknownOrder,
)
from omscore.events import OrderRefunded, ReturnRefunded, ReturnStatusChanged
from omscore.inventory import MovementKind
from omscore.orders import PaymentKind
from omscore.returns import Disposition, Return, ReturnPolicy, ReturnStatus
from omscore.testing import ManualClock
from omscore.testing.contract import assert_gateway_holds_the_ledger
from omscore.testing.invariants import check_books

from .conftest import BERLIN, LabelRecorder, eur, store_location, warehouse

R = Disposition.RESTOCK


@pytest.fixture
def shop(make_oms: Callable[..., OMS]) -> Callable[..., OMS]:
    """An OMS with a gateway, a carrier, a returns warehouse and a store without RETURNS."""

    def build(**policy: Any) -> OMS:
        oms = make_oms(
            payments=FakePaymentGateway(),
            carrier=TableRateCarrier(),
            return_policy=ReturnPolicy(**policy),
        )
        oms.add_location(warehouse("WH-1"))
        oms.add_location(
            Location(
                id="ST-9",
                kind="store",
                geo=GeoPoint(52.5, 13.3),
                capabilities={Capability.SHIP},
                priority=9,
            )
        )
        for sku in ("A", "B", "GIFT"):
            oms.receive("WH-1", sku, 20)
        return oms

    return build


def placed(oms: OMS, *lines: LineDraft, shipping: str = "0.00") -> Order:
    """A placed order shipped to Berlin."""
    return oms.place_order(
        OrderDraft(
            channel="web",
            currency="EUR",
            lines=list(lines),
            delivery=Delivery.ship(BERLIN),
            shipping_fee=eur(shipping),
        )
    )


def delivered(oms: OMS, *lines: LineDraft, shipping: str = "0.00") -> str:
    """Place, allocate, ship and deliver an order; its id."""
    order = placed(oms, *lines, shipping=shipping)
    oms.allocate(order.id)
    for f in oms.get_order(order.id).fulfillments:
        oms.ship(f.id)
        oms.deliver(f.id)
    return order.id


def received_back(oms: OMS, order_id: str) -> Return:
    """One unit of the order's first line asked back, approved and received at WH-1 for
    restock: the return."""
    line = oms.get_order(order_id).lines[0]
    rma = oms.approve_return(oms.request_return(order_id, {line.id: 1}).id)
    return oms.receive_return(rma.id, "WH-1", {line.id: {R: 1}})


def test_the_whole_path_request_approve_receive_refund_close(shop: Callable[..., OMS]) -> None:
    """An RMA moves through its lifecycle; restock puts the unit back on hand."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 2, eur("25.00")))
    line = oms.get_order(order_id).lines[0]
    rma = oms.request_return(order_id, {line.id: 1}, reason="too small")
    assert rma.status is ReturnStatus.REQUESTED
    rma = oms.approve_return(rma.id)
    assert rma.tracking is not None
    assert rma.tracking.startswith("TR")
    approved = [e for e in oms.events() if isinstance(e, ReturnStatusChanged)][-1]
    assert (approved.status, approved.note) == ("approved", rma.tracking)
    on_hand = oms.stock("WH-1", "A").on_hand
    rma = oms.receive_return(rma.id, location_id="WH-1", dispositions={line.id: {R: 1}})
    assert rma.status is ReturnStatus.RECEIVED
    assert oms.stock("WH-1", "A").on_hand == on_hand + 1
    assert oms.ledger("A")[-1].kind is MovementKind.RESTOCK
    assert oms.refund_return(rma.id) == eur("25.00")
    assert oms.get_return(rma.id).status is ReturnStatus.REFUNDED
    assert oms.close_return(rma.id).status is ReturnStatus.CLOSED
    said = [e.version for e in oms.events() if getattr(e, "return_id", None) == rma.id]
    assert said == sorted(set(said)), "each change of the return has a later version"
    assert oms.get_return(rma.id).version == said[-1]
    order = oms.get_order(order_id)
    assert (order.lines[0].delivered, order.lines[0].returned) == (2, 1)
    assert order.status is OrderStatus.DELIVERED
    assert order.return_ids == (rma.id,)
    check_books(oms)


def test_a_return_refunded_receipt_by_receipt_adds_up_its_refunds(
    shop: Callable[..., OMS],
) -> None:
    """Two units back in two parcels, each refunded when it arrives: the return's refunded
    total is both refunds."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 2, eur("25.00")))
    line = oms.get_order(order_id).lines[0]
    rma = oms.approve_return(oms.request_return(order_id, {line.id: 2}).id)
    oms.receive_return(rma.id, "WH-1", {line.id: {R: 1}})
    assert oms.refund_return(rma.id) == eur("25.00")
    oms.receive_return(rma.id, "WH-1", {line.id: {R: 1}})
    assert oms.refund_return(rma.id) == eur("25.00")
    assert oms.get_return(rma.id).refunded == eur("50.00")
    assert oms.get_order(order_id).refunded == eur("50.00")


def test_every_eligibility_problem_is_reported_at_once(
    shop: Callable[..., OMS], clock: ManualClock
) -> None:
    """Too many units, a non-returnable SKU, an unknown line, past the window."""
    oms = shop(window=timedelta(days=14), non_returnable_skus={"GIFT"})
    order_id = delivered(oms, LineDraft("A", 1, eur("5.00")), LineDraft("GIFT", 1, eur("5.00")))
    a, gift = oms.get_order(order_id).lines
    closed_on = (clock.now() + timedelta(days=14)).date().isoformat()
    clock.advance(timedelta(days=15))
    events = len(oms.events())
    with pytest.raises(InvalidReturn) as info:
        oms.request_return(order_id, {a.id: 2, gift.id: 1, "nope": 1}, method="post")
    problems = " | ".join(info.value.problems)
    assert "2 unit(s) asked back, 1 returnable" in problems
    assert "GIFT cannot be returned" in problems
    assert "no line 'nope'" in problems
    assert f"14-day return window closed on {closed_on}" in problems
    assert "return method must be ship or in_store" in problems
    assert len(oms.events()) == events
    assert oms.get_order(order_id).return_ids == ()


@pytest.mark.parametrize("quantity", [0, -1, True, 1.0, "1"])
def test_a_returned_quantity_must_be_a_whole_number_of_units(
    shop: Callable[..., OMS], quantity: object
) -> None:
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 2, eur("5.00")))
    line = oms.get_order(order_id).lines[0]
    with pytest.raises(InvalidReturn) as info:
        oms.request_return(order_id, {line.id: quantity})  # type: ignore[arg-type]
    assert info.value.problems == (
        f"line {line.id}: quantity must be an int >= 1, got {quantity!r}",
    )
    assert oms.get_order(order_id).return_ids == ()


def test_undelivered_units_and_units_in_open_returns_cannot_be_returned(
    shop: Callable[..., OMS],
) -> None:
    """Only delivered units, and only once while a return claims them."""
    oms = shop()
    order = placed(oms, LineDraft("A", 2, eur("5.00")))
    with pytest.raises(InvalidReturn, match="0 returnable"):
        oms.request_return(order.id, {order.lines[0].id: 1})
    order_id = delivered(oms, LineDraft("A", 2, eur("5.00")))
    line = oms.get_order(order_id).lines[0]
    first = oms.request_return(order_id, {line.id: 2})
    with pytest.raises(InvalidReturn, match="2 in open returns"):
        oms.request_return(order_id, {line.id: 1})
    oms.reject_return(first.id, reason="worn")
    assert oms.request_return(order_id, {line.id: 1}).status is ReturnStatus.REQUESTED


def test_returnable_says_what_a_return_request_accepts(
    shop: Callable[..., OMS], clock: ManualClock
) -> None:
    """Delivered units of returnable SKUs, less those returned or waiting in open returns,
    until the window closes (on its last second still open); nothing for an order not yet
    delivered; an unknown order is an UnknownOrder."""
    oms = shop(window=timedelta(days=14), non_returnable_skus={"GIFT"})
    undelivered = placed(oms, LineDraft("A", 2, eur("5.00")))
    assert oms.returnable(undelivered.id) == {}
    order_id = delivered(
        oms,
        LineDraft("A", 3, eur("5.00")),
        LineDraft("B", 1, eur("5.00")),
        LineDraft("GIFT", 1, eur("5.00")),
    )
    a, b, _ = oms.get_order(order_id).lines
    assert oms.returnable(order_id) == {a.id: 3, b.id: 1}
    first = oms.request_return(order_id, {a.id: 2})
    assert oms.returnable(order_id) == {a.id: 1, b.id: 1}
    both = oms.request_return(order_id, {a.id: 1, b.id: 1})
    assert (both.line(b.id).sku, both.line(a.id).sku) == ("B", "A")
    oms.reject_return(both.id)
    oms.approve_return(first.id)
    oms.receive_return(first.id, "WH-1", {a.id: {R: 1}})
    assert oms.returnable(order_id) == {a.id: 1, b.id: 1}  # 1 back, 1 still on its way
    oms.close_return(first.id)
    assert oms.returnable(order_id) == {a.id: 2, b.id: 1}  # the one never sent is free again
    clock.advance(timedelta(days=14))
    assert oms.returnable(order_id) == {a.id: 2, b.id: 1}
    assert oms.request_return(order_id, {b.id: 1}).status is ReturnStatus.REQUESTED
    assert oms.returnable(order_id) == {a.id: 2}  # b's one unit is claimed: b is left out
    clock.advance(timedelta(seconds=1))
    assert oms.returnable(order_id) == {}
    with pytest.raises(UnknownOrder):
        oms.returnable("O-404")


def test_a_return_label_goes_to_the_active_returns_location_nearest_the_customer(
    make_oms: Callable[..., OMS],
) -> None:
    """Berlin's customer: of a far warehouse that sorts first (A-MUC), an inactive near one
    and a near one, the label names the near active one, whatever the ids."""
    carrier = LabelRecorder()
    oms = make_oms(payments=FakePaymentGateway(), carrier=carrier)
    oms.add_location(warehouse("A-MUC", geo=GeoPoint(48.14, 11.58)))
    oms.add_location(warehouse("Z-BER", geo=GeoPoint(52.52, 13.40)))
    oms.add_location(warehouse("B-BER", geo=BERLIN.geo))
    oms.receive("A-MUC", "A", 5)
    oms.update_location("B-BER", active=False)
    order_id = delivered(oms, LineDraft("A", 1, eur("5.00")))
    line = oms.get_order(order_id).lines[0]
    oms.approve_return(oms.request_return(order_id, {line.id: 1}).id)
    assert carrier.depots == ["A-MUC", "Z-BER"]  # the parcel out, then the return label


def test_a_label_with_nowhere_to_go_is_refused_and_changes_nothing(
    make_oms: Callable[..., OMS],
) -> None:
    """The only location taking returns is closed: approving a shipped-back return would
    give the customer no label (and nowhere could receive it), so it is refused, naming
    the rule, and the return stays requested; once the warehouse reopens it goes through."""
    carrier = LabelRecorder()
    oms = make_oms(payments=FakePaymentGateway(), carrier=carrier)
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 5)
    order_id = delivered(oms, LineDraft("A", 1, eur("5.00")))
    rma = oms.request_return(order_id, {oms.get_order(order_id).lines[0].id: 1})
    oms.update_location("WH-1", active=False)
    before = (oms.get_return(rma.id), oms.events(), list(carrier.depots))
    with pytest.raises(InvalidReturn, match=r"no active location takes returns .* R-1's label"):
        oms.approve_return(rma.id)
    assert (oms.get_return(rma.id), oms.events(), list(carrier.depots)) == before
    oms.update_location("WH-1", active=True)
    assert oms.approve_return(rma.id).tracking is not None
    assert carrier.depots[-1] == "WH-1"


def test_a_returns_location_with_no_point_of_its_own_comes_last(
    make_oms: Callable[..., OMS],
) -> None:
    """A location that takes returns but has no geo point is not "at distance 0": it sorts
    after every location with a point, however its id sorts."""
    carrier = LabelRecorder()
    oms = make_oms(payments=FakePaymentGateway(), carrier=carrier)
    oms.add_location(warehouse("Z-MUC", geo=GeoPoint(48.14, 11.58)))
    oms.add_location(attrs.evolve(warehouse("A-NOWHERE"), geo=None))
    oms.receive("Z-MUC", "A", 5)
    order_id = delivered(oms, LineDraft("A", 1, eur("5.00")))
    line = oms.get_order(order_id).lines[0]
    oms.approve_return(oms.request_return(order_id, {line.id: 1}).id)
    assert carrier.depots == ["Z-MUC", "Z-MUC"]


def test_a_click_and_collect_return_goes_to_the_depot_nearest_the_pickup_store(
    make_oms: Callable[..., OMS],
) -> None:
    """A click & collect order has no address: the customer is where they collected, so
    the return label names the depot nearest that store (Munich), not the first by id
    (the store itself takes no returns)."""
    carrier = LabelRecorder()
    oms = make_oms(payments=FakePaymentGateway(), carrier=carrier)
    oms.add_location(warehouse("A-BER", geo=BERLIN.geo))
    oms.add_location(warehouse("Z-MUC", geo=GeoPoint(48.14, 11.58)))
    collection_point = store_location("ST-MUC", geo=GeoPoint(48.13, 11.57))
    oms.add_location(attrs.evolve(collection_point, capabilities={Capability.PICKUP}))
    oms.receive("ST-MUC", "A", 5)
    order = oms.place_order(
        OrderDraft(
            channel="web",
            currency="EUR",
            lines=[LineDraft("A", 1, eur("5.00"))],
            delivery=Delivery.pickup("ST-MUC"),
        )
    )
    oms.allocate(order.id)
    parcel = oms.get_order(order.id).fulfillments[0]
    oms.ready_for_pickup(parcel.id)
    oms.collect(parcel.id)
    line = oms.get_order(order.id).lines[0]
    oms.approve_return(oms.request_return(order.id, {line.id: 1}).id)
    assert carrier.depots[-1] == "Z-MUC"


def test_receiving_needs_a_returns_location_and_dispositions_that_add_up(
    shop: Callable[..., OMS],
) -> None:
    """A store without RETURNS, more units than expected, a bad disposition, a line the
    return does not hold, nothing at all: refused."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 2, eur("5.00")))
    line = oms.get_order(order_id).lines[0]
    rma = oms.approve_return(oms.request_return(order_id, {line.id: 2}).id)
    before = (oms.get_return(rma.id), oms.stock("WH-1", "A"), len(oms.events()))
    with pytest.raises(InvalidReturn, match="ST-9 does not take returns"):
        oms.receive_return(rma.id, "ST-9", {line.id: {R: 1}})
    with pytest.raises(UnknownLocation):
        oms.receive_return(rma.id, "NOWHERE", {line.id: {R: 1}})
    with pytest.raises(InvalidReturn) as info:
        oms.receive_return(rma.id, "WH-1", {line.id: {R: 2, Disposition.DAMAGED: 1, "lost": 1}})
    assert any("3 unit(s) inspected, but only 2" in p for p in info.value.problems)
    assert any("'lost' is not a disposition" in p for p in info.value.problems)
    for count in (0, -1, True, "1", 1.0):
        with pytest.raises(InvalidReturn) as info:
            oms.receive_return(rma.id, "WH-1", {line.id: {R: count}})  # type: ignore[arg-type]
        assert info.value.problems == (
            f"line {line.id}: restock count must be an int >= 1, got {count!r}",
        )
    with pytest.raises(InvalidReturn) as info:
        oms.receive_return(rma.id, "WH-1", {line.id: {R: 1}, "L-9": {R: 1}})
    assert info.value.problems == (f"line 'L-9' is not part of return {rma.id}",)
    nothing_at_all: list[dict[str, dict[Disposition, int]]] = [{}, {line.id: {}}]
    for nothing in nothing_at_all:
        with pytest.raises(InvalidReturn) as info:
            oms.receive_return(rma.id, "WH-1", nothing)
        assert info.value.problems == ("a receipt needs at least one unit with its disposition",)
    assert (oms.get_return(rma.id), oms.stock("WH-1", "A"), len(oms.events())) == before
    oms.receive_return(rma.id, "WH-1", {line.id: {R: 1}})
    with pytest.raises(InvalidReturn, match=r"2 unit\(s\) inspected, but only 1 of 2 are still"):
        oms.receive_return(rma.id, "WH-1", {line.id: {R: 2}})


def test_partial_receipts_and_dispositions_only_restock_restock(shop: Callable[..., OMS]) -> None:
    """Damaged and return-to-vendor units are recorded, never sellable; the order counts
    each unit returned once, whatever receipt it came in."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 3, eur("5.00")))
    line = oms.get_order(order_id).lines[0]
    rma = oms.approve_return(oms.request_return(order_id, {line.id: 3}).id)
    on_hand = oms.stock("WH-1", "A").on_hand
    rma = oms.receive_return(rma.id, "WH-1", {line.id: {Disposition.DAMAGED: 1}})
    assert rma.status is ReturnStatus.PARTIALLY_RECEIVED
    assert oms.get_order(order_id).lines[0].returned == 1
    rma = oms.receive_return(rma.id, "WH-1", {line.id: {R: 1, Disposition.RETURN_TO_VENDOR: 1}})
    assert rma.status is ReturnStatus.RECEIVED
    assert oms.get_order(order_id).lines[0].returned == 3
    assert dict(rma.lines[0].dispositions) == {
        Disposition.DAMAGED: 1,
        R: 1,
        Disposition.RETURN_TO_VENDOR: 1,
    }
    assert oms.stock("WH-1", "A").on_hand == on_hand + 1


def test_refunds_split_discount_and_tax_per_unit_to_the_cent(shop: Callable[..., OMS]) -> None:
    """3 x 10.00 - 1.00 discount + 5.70 tax = 34.70: units refund 11.57, 11.57, 11.56."""
    oms = shop()
    order_id = delivered(
        oms, LineDraft("A", 3, eur("10.00"), discount=eur("1.00"), tax=eur("5.70"))
    )
    line = oms.get_order(order_id).lines[0]
    refunds = []
    for _ in range(3):
        rma = oms.approve_return(oms.request_return(order_id, {line.id: 1}).id)
        oms.receive_return(rma.id, "WH-1", {line.id: {R: 1}})
        refunds.append(oms.refund_return(rma.id))
    assert refunds == [eur("11.57"), eur("11.57"), eur("11.56")]
    assert sum(refunds, Money.zero("EUR")) == line.total


def test_a_refund_without_a_return_is_paid_back_once_and_caps_later_refunds(
    shop: Callable[..., OMS],
) -> None:
    """Goodwill for a late parcel: the gateway pays it back once (a repeat under its key
    returns the first result), the events say how much and why, and the return that
    follows refunds only what is left of the payment."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 2, eur("20.00")), shipping="4.95")
    order = oms.refund_order(order_id, eur("15.00"), "parcel three days late", "goodwill-1")
    assert oms.refund_order(order_id, eur("15.00"), "parcel three days late", "goodwill-1") == (
        order
    )
    assert (order.captured, order.refunded) == (eur("44.95"), eur("15.00"))
    gateway = cast(FakePaymentGateway, oms.payments)
    assert order.payment_reference is not None
    assert gateway.authorizations[order.payment_reference].refunded == eur("15.00")
    said = [e for e in oms.events() if isinstance(e, OrderRefunded)]
    assert [(e.amount, e.reason) for e in said] == [(eur("15.00"), "parcel three days late")]
    line = order.lines[0]
    rma = oms.approve_return(oms.request_return(order_id, {line.id: 2}).id)
    oms.receive_return(rma.id, "WH-1", {line.id: {R: 2}})
    assert oms.refund_return(rma.id) == eur("29.95")  # 40.00 asked, 29.95 left to refund
    assert oms.get_order(order_id).refunded == oms.get_order(order_id).captured


@pytest.mark.parametrize(
    ("amount", "error", "message"),
    [
        (5.0, InvalidMoney, "must be Money, got 5.0"),
        (Money("5.00", "USD"), CurrencyMismatch, "paid in EUR, not USD"),
        (eur("0"), InvalidRefund, "must be positive"),
        (eur("-1.00"), InvalidRefund, "must be positive"),
        (eur("0.005"), InvalidRefund, "whole EUR minor units, got 0.005 EUR"),
        (
            eur("20.01"),
            PaymentLimitExceeded,
            "20.00 EUR refundable (20.00 EUR captured, 0 EUR refunded)",
        ),
    ],
)
def test_a_refund_that_cannot_be_paid_back_is_refused_and_changes_nothing(
    shop: Callable[..., OMS], amount: object, error: type[Exception], message: str
) -> None:
    """Not Money, another currency, nothing or less, finer than a cent, more than was
    captured and not refunded: a typed error naming the values; nothing moves."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 2, eur("10.00")))
    before = (oms.get_order(order_id), oms.events())
    with pytest.raises(error, match=re.escape(message)):
        oms.refund_order(order_id, amount, "price match")  # type: ignore[arg-type]
    assert (oms.get_order(order_id), oms.events()) == before


def test_nothing_is_refundable_before_anything_was_captured_or_when_the_gateway_declines(
    shop: Callable[..., OMS],
) -> None:
    """An order not shipped has paid nothing yet; a declined refund changes nothing."""
    oms = shop()
    unshipped = placed(oms, LineDraft("A", 1, eur("10.00")))
    with pytest.raises(PaymentLimitExceeded, match="0 EUR refundable"):
        oms.refund_order(unshipped.id, eur("1.00"), "price match")
    order_id = delivered(oms, LineDraft("A", 1, eur("10.00")))
    cast(FakePaymentGateway, oms.payments).decline_next()
    before = (oms.get_order(order_id), oms.events())
    with pytest.raises(PaymentDeclined):
        oms.refund_order(order_id, eur("1.00"), "price match")
    assert (oms.get_order(order_id), oms.events()) == before
    assert oms.refund_order(order_id, eur("1.00"), "price match").refunded == eur("1.00")


def test_without_a_payment_port_refunds_are_capped_all_the_same(
    make_oms: Callable[..., OMS],
) -> None:
    """Payments settled outside omscore are recorded, never beyond what was captured."""
    oms = make_oms()
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 5)
    order_id = delivered(oms, LineDraft("A", 1, eur("10.00")))
    assert oms.refund_order(order_id, eur("4.00"), "price match").refunded == eur("4.00")
    with pytest.raises(PaymentLimitExceeded, match=re.escape("6.00 EUR refundable")):
        oms.refund_order(order_id, eur("6.01"), "price match")
    assert oms.get_order(order_id).refunded == eur("4.00")
    assert oms.refund_order(order_id, eur("6.00"), "price match").refunded == eur("10.00")


def test_a_refund_of_exactly_what_is_left_is_paid(shop: Callable[..., OMS]) -> None:
    """The cap is inclusive: everything captured can be given back, at once or in parts."""
    oms = shop()
    whole = delivered(oms, LineDraft("A", 2, eur("10.00")))
    assert oms.refund_order(whole, eur("20.00"), "lost parcel").refunded == eur("20.00")
    parts = delivered(oms, LineDraft("A", 1, eur("10.00")))
    oms.refund_order(parts, eur("2.50"), "price match")
    assert oms.refund_order(parts, eur("7.50"), "damaged").refunded == eur("10.00")


def test_restocking_fee_and_shipping_rules(shop: Callable[..., OMS]) -> None:
    """10 % fee on merchandise; shipping back once everything came back."""
    oms = shop(restocking_fee_percent=10, refund_shipping="if_all_returned")
    order_id = delivered(oms, LineDraft("A", 2, eur("20.00")), shipping="4.95")
    line = oms.get_order(order_id).lines[0]
    first = oms.approve_return(oms.request_return(order_id, {line.id: 1}).id)
    oms.receive_return(first.id, "WH-1", {line.id: {R: 1}})
    assert oms.refund_return(first.id) == eur("18.00")
    second = oms.approve_return(oms.request_return(order_id, {line.id: 1}).id)
    oms.receive_return(second.id, "WH-1", {line.id: {R: 1}})
    assert oms.refund_return(second.id) == eur("22.95")
    refunded = [e for e in oms.events() if isinstance(e, ReturnRefunded)]
    assert [(e.restocking_fee, e.shipping) for e in refunded] == [
        (eur("2.00"), eur("0")),
        (eur("2.00"), eur("4.95")),
    ]


def test_a_two_line_return_refunds_each_line_as_it_arrives(shop: Callable[..., OMS]) -> None:
    """Both lines asked back, A arrives first: A alone is refunded, without shipping (B is
    still out); B's arrival refunds B and, everything being back, the shipping."""
    oms = shop(refund_shipping="if_all_returned")
    order_id = delivered(
        oms, LineDraft("A", 1, eur("20.00")), LineDraft("B", 1, eur("8.00")), shipping="4.95"
    )
    a, b = (line.id for line in oms.get_order(order_id).lines)
    rma = oms.approve_return(oms.request_return(order_id, {a: 1, b: 1}).id)
    oms.receive_return(rma.id, "WH-1", {a: {R: 1}})
    assert oms.refund_return(rma.id) == eur("20.00")
    assert [(x.received, x.refunded) for x in oms.get_return(rma.id).lines] == [(1, 1), (0, 0)]
    assert [x.refunded for x in oms.get_order(order_id).lines] == [1, 0]
    oms.receive_return(rma.id, "WH-1", {b: {R: 1}})
    assert oms.refund_return(rma.id) == eur("12.95")
    assert [(x.received, x.refunded) for x in oms.get_return(rma.id).lines] == [(1, 1), (1, 1)]
    assert oms.get_return(rma.id).status is ReturnStatus.REFUNDED
    check_books(oms)


def test_always_refunds_shipping_with_the_first_refund_only(shop: Callable[..., OMS]) -> None:
    oms = shop(refund_shipping="always")
    order_id = delivered(oms, LineDraft("A", 2, eur("20.00")), shipping="4.95")
    assert oms.refund_return(received_back(oms, order_id).id) == eur("24.95")
    assert oms.refund_return(received_back(oms, order_id).id) == eur("20.00")


def test_every_unit_back_means_every_unit_not_cancelled(shop: Callable[..., OMS]) -> None:
    """Of 3 units, 1 is cancelled before shipping: the 2 delivered coming back is
    everything, and shipping is refunded with them."""
    oms = shop(refund_shipping="if_all_returned")
    order = placed(oms, LineDraft("A", 3, eur("10.00")), shipping="4.95")
    line = order.lines[0].id
    oms.cancel(order.id, {line: 1}, reason="changed my mind")
    oms.allocate(order.id)
    for f in oms.get_order(order.id).fulfillments:
        oms.ship(f.id)
        oms.deliver(f.id)
    rma = oms.approve_return(oms.request_return(order.id, {line: 2}).id)
    oms.receive_return(rma.id, "WH-1", {line: {R: 2}})
    assert oms.refund_return(rma.id) == eur("24.95")


def test_repeating_a_refund_refunds_nothing_more(shop: Callable[..., OMS]) -> None:
    """The second call gives back zero and calls no gateway."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 1, eur("9.99")))
    rma = received_back(oms, order_id)
    assert oms.refund_return(rma.id) == eur("9.99")
    assert oms.refund_return(rma.id) == Money.zero("EUR")
    assert oms.get_order(order_id).refunded == eur("9.99")


def test_out_of_order_steps_are_refused(shop: Callable[..., OMS]) -> None:
    """Receive before approval, refund before receipt, approve twice."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 1, eur("9.99")))
    line = oms.get_order(order_id).lines[0]
    rma = oms.request_return(order_id, {line.id: 1})
    with pytest.raises(InvalidTransition, match="cannot receive return"):
        oms.receive_return(rma.id, "WH-1", {line.id: {R: 1}})
    with pytest.raises(InvalidTransition, match="cannot refund return"):
        oms.refund_return(rma.id)
    oms.approve_return(rma.id)
    with pytest.raises(InvalidTransition, match="cannot approve return"):
        oms.approve_return(rma.id)


def test_an_exchange_charges_the_difference(shop: Callable[..., OMS]) -> None:
    """Return a 20.00 item for a 35.00 one: 15.00 authorised on the replacement order."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 1, eur("20.00")))
    rma = received_back(oms, order_id)
    new = oms.exchange(rma.id, [LineDraft("B", 1, eur("35.00"))])
    assert new.exchange_of == rma.id
    assert new.authorized == eur("15.00")
    assert new.credit_left == eur("20.00")
    assert oms.get_return(rma.id).status is ReturnStatus.EXCHANGED
    oms.allocate(new.id)
    shipped = oms.ship(oms.get_order(new.id).fulfillments[0].id)
    assert shipped.captured == eur("35.00")
    assert shipped.credit_left == Money.zero("EUR")
    check_books(oms)


def test_an_exchange_whose_difference_is_declined_asks_only_for_it_again(
    shop: Callable[..., OMS],
) -> None:
    """The 15.00 difference is declined: the replacement order waits on a payment hold,
    and the retry asks for the 15.00 again, not for what the credit already paid."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 1, eur("20.00")))
    rma = received_back(oms, order_id)
    cast(FakePaymentGateway, oms.payments).decline_next()
    new = oms.exchange(rma.id, [LineDraft("B", 1, eur("35.00"))])
    assert ([h.kind for h in new.holds], new.authorized) == (["payment"], Money.zero("EUR"))
    paid = oms.authorize_payment(new.id)
    assert (paid.holds, paid.authorized, paid.captured) == ((), eur("15.00"), eur("20.00"))
    oms.allocate(new.id)
    shipped = oms.ship(oms.get_order(new.id).fulfillments[0].id)
    assert shipped.captured == eur("35.00")
    check_books(oms)


def test_an_exchange_for_less_refunds_the_difference(shop: Callable[..., OMS]) -> None:
    """Return a 20.00 item for a 12.50 one: 7.50 back on the original payment."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 1, eur("20.00")))
    rma = received_back(oms, order_id)
    new = oms.exchange(rma.id, [LineDraft("B", 1, eur("12.50"))])
    assert new.authorized == Money.zero("EUR")
    assert oms.get_order(order_id).refunded == eur("7.50")
    assert oms.refund_return(rma.id) == Money.zero("EUR"), "an exchanged return is settled"
    assert oms.get_order(order_id).refunded == eur("7.50")


def test_an_exchange_after_a_goodwill_refund_credits_only_what_is_left(
    shop: Callable[..., OMS],
) -> None:
    """20.00 paid, 15.00 already given back: returning the item credits 5.00, not 20.00,
    so the replacement is charged 7.50 and nothing more is refunded."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 1, eur("20.00")))
    oms.refund_order(order_id, eur("15.00"), "parcel a week late")
    rma = received_back(oms, order_id)
    new = oms.exchange(rma.id, [LineDraft("B", 1, eur("12.50"))])
    assert new.credit_left == eur("5.00")
    assert new.authorized == eur("7.50")
    assert oms.get_order(order_id).refunded == eur("15.00")
    check_books(oms)


def test_an_exchange_of_equal_value_authorises_nothing(shop: Callable[..., OMS]) -> None:
    """The credit pays the whole replacement: no authorisation, not even of zero."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 1, eur("20.00")))
    rma = received_back(oms, order_id)
    new = oms.exchange(rma.id, [LineDraft("B", 1, eur("20.00"))])
    kinds = [p.kind for p in new.payments]
    assert PaymentKind.AUTHORIZED not in kinds
    assert new.credit_left == eur("20.00")
    assert oms.get_order(order_id).refunded == Money.zero("EUR")


def test_an_exchange_takes_no_restocking_fee(shop: Callable[..., OMS]) -> None:
    """Under a 10 % restocking fee, a refund keeps 2.00 of a 20.00 item; an exchange
    credits the whole 20.00 towards the replacement."""
    oms = shop(restocking_fee_percent=10)
    refunded_id = delivered(oms, LineDraft("A", 1, eur("20.00")))
    assert oms.refund_return(received_back(oms, refunded_id).id) == eur("18.00")
    exchanged_id = delivered(oms, LineDraft("A", 1, eur("20.00")))
    new = oms.exchange(received_back(oms, exchanged_id).id, [LineDraft("B", 1, eur("25.00"))])
    assert new.credit_left == eur("20.00")
    assert new.authorized == eur("5.00")
    assert oms.get_order(exchanged_id).refunded == Money.zero("EUR")
    check_books(oms)


def _replacement_delivered(oms: OMS, old: str, new: str) -> tuple[str, str]:
    """An item at ``old`` delivered, returned and exchanged for one at ``new``, which is
    delivered too: the ids of the original order and the replacement."""
    order_id = delivered(oms, LineDraft("A", 1, eur(old)))
    replacement = oms.exchange(received_back(oms, order_id).id, [LineDraft("B", 1, eur(new))])
    oms.allocate(replacement.id)
    for f in oms.get_order(replacement.id).fulfillments:
        oms.ship(f.id)
        oms.deliver(f.id)
    return order_id, replacement.id


def _gateway_refunds(oms: OMS, order_id: str) -> Money:
    """What the gateway refunded on the authorisations of ``order_id``."""
    gateway = cast(FakePaymentGateway, oms.payments)
    refunded = [a.refunded for a in gateway.authorizations.values() if a.order_id == order_id]
    return sum(refunded, Money.zero("EUR"))


def _assert_gateway_holds_the_ledgers(oms: OMS, *orders: Order) -> None:
    """Each order's payment ledger matches what the fake gateway holds for it."""
    gateway = cast(FakePaymentGateway, oms.payments)
    for order in orders:
        assert_gateway_holds_the_ledger(gateway, order)


@pytest.mark.parametrize(("old", "new"), [("20.00", "35.00"), ("20.00", "20.00")])
def test_a_returned_replacement_refunds_its_credit_to_the_card_that_paid_for_it(
    shop: Callable[..., OMS], old: str, new: str
) -> None:
    """The replacement's credit was money captured on the original order: returning the
    replacement gives the card part back on its own authorisation and the credit on the
    original's, each at the gateway; the customer gets back all they paid."""
    oms = shop()
    order_id, replacement_id = _replacement_delivered(oms, old, new)
    assert oms.refund_return(received_back(oms, replacement_id).id) == eur(new)
    assert _gateway_refunds(oms, order_id) == eur(old)
    assert _gateway_refunds(oms, replacement_id) == eur(new) - eur(old)
    replacement = oms.get_order(replacement_id)
    assert replacement.refunded == eur(new)
    assert replacement.refundable == Money.zero("EUR")
    original = oms.get_order(order_id)
    assert (original.refunded, original.refundable) == (eur(old), Money.zero("EUR"))
    _assert_gateway_holds_the_ledgers(oms, original, replacement)


def test_goodwill_on_a_replacement_draws_on_its_card_first_then_the_credit(
    shop: Callable[..., OMS],
) -> None:
    """20.00 credit and 15.00 on the card: 25.00 goodwill is 15.00 on the replacement's
    card and 10.00 on the original's; nothing more than the 35.00 can go back."""
    oms = shop()
    order_id, replacement_id = _replacement_delivered(oms, "20.00", "35.00")
    oms.refund_order(replacement_id, eur("25.00"), "parcel late")
    assert _gateway_refunds(oms, replacement_id) == eur("15.00")
    assert _gateway_refunds(oms, order_id) == eur("10.00")
    with pytest.raises(PaymentLimitExceeded, match=re.escape("cannot refund 10.01 EUR")):
        oms.refund_order(replacement_id, eur("10.01"), "price match")
    oms.refund_order(replacement_id, eur("10.00"), "price match")
    assert _gateway_refunds(oms, order_id) == eur("20.00")


def test_credit_no_shipment_used_yet_is_not_refundable(shop: Callable[..., OMS]) -> None:
    """A replacement not shipped yet has paid for nothing: goodwill there is refused, as
    on any order before its first capture, so the credit cannot go back to the card and
    then pay the shipment too."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 1, eur("20.00")))
    replacement = oms.exchange(received_back(oms, order_id).id, [LineDraft("B", 1, eur("35.00"))])
    assert replacement.refundable == Money.zero("EUR")
    unused = "0 EUR refundable (20.00 EUR captured, 0 EUR refunded, 20.00 EUR credit not used)"
    with pytest.raises(PaymentLimitExceeded, match=re.escape(unused)):
        oms.refund_order(replacement.id, eur("5.00"), "parcel late")
    oms.allocate(replacement.id)
    shipped = oms.ship(oms.get_order(replacement.id).fulfillments[0].id)
    assert shipped.refundable == eur("35.00")


def test_a_cancelled_replacement_gives_its_credit_back_to_the_card_that_paid_for_it(
    shop: Callable[..., OMS],
) -> None:
    """The replacement is cancelled before it ships: its 15.00 authorisation is voided
    and its 20.00 credit, which no shipment will use now, is refunded on the original
    order's card. The customer is back where they were before buying."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 1, eur("20.00")))
    replacement = oms.exchange(received_back(oms, order_id).id, [LineDraft("B", 1, eur("35.00"))])
    cancelled = oms.cancel(replacement.id, reason="changed my mind")
    assert (cancelled.credit_left, cancelled.refunded) == (Money.zero("EUR"), eur("20.00"))
    assert cancelled.voided == eur("15.00")
    assert _gateway_refunds(oms, order_id) == eur("20.00")
    original = oms.get_order(order_id)
    assert (original.refundable, original.transferred) == (Money.zero("EUR"), Money.zero("EUR"))
    _assert_gateway_holds_the_ledgers(oms, original, cancelled)


def test_credit_left_when_part_of_a_replacement_is_cancelled_goes_back(
    shop: Callable[..., OMS],
) -> None:
    """Two units at 10.00 paid by 20.00 of credit: one ships (its 10.00 of credit used),
    the other is cancelled, and its 10.00 goes back on the original's card."""
    oms = shop()
    order_id = delivered(oms, LineDraft("A", 1, eur("20.00")))
    replacement = oms.exchange(received_back(oms, order_id).id, [LineDraft("B", 2, eur("10.00"))])
    oms.cancel(replacement.id, {replacement.lines[0].id: 1}, reason="only one, please")
    oms.allocate(replacement.id)
    shipped = oms.ship(oms.get_order(replacement.id).fulfillments[0].id)
    assert shipped.credit_left == Money.zero("EUR")
    assert shipped.refundable == eur("10.00")
    assert _gateway_refunds(oms, order_id) == eur("10.00")
    assert oms.get_order(order_id).refundable == Money.zero("EUR")


def test_money_moved_to_a_replacement_as_credit_cannot_be_refunded_on_the_original(
    shop: Callable[..., OMS],
) -> None:
    """The original's 20.00 became credit on the replacement: a goodwill refund on the
    original is refused, so the 20.00 cannot go back twice."""
    oms = shop()
    order_id, _ = _replacement_delivered(oms, "20.00", "20.00")
    assert oms.get_order(order_id).refundable == Money.zero("EUR")
    moved = "0 EUR refundable (20.00 EUR captured, 0 EUR refunded, 20.00 EUR moved to a "
    with pytest.raises(PaymentLimitExceeded, match=re.escape(moved)):
        oms.refund_order(order_id, eur("5.00"), "parcel late")


def test_an_exchange_of_an_exchange_refunds_back_down_the_chain(
    shop: Callable[..., OMS],
) -> None:
    """20.00 paid, exchanged for 30.00 (10.00 more), exchanged again for 30.00, returned:
    20.00 goes back on the first order's card and 10.00 on the second's."""
    oms = shop()
    first, second = _replacement_delivered(oms, "20.00", "30.00")
    third = oms.exchange(received_back(oms, second).id, [LineDraft("A", 1, eur("30.00"))])
    oms.allocate(third.id)
    for f in oms.get_order(third.id).fulfillments:
        oms.ship(f.id)
        oms.deliver(f.id)
    assert oms.refund_return(received_back(oms, third.id).id) == eur("30.00")
    assert [_gateway_refunds(oms, o) for o in (first, second, third.id)] == [
        eur("20.00"),
        eur("10.00"),
        Money.zero("EUR"),
    ]
    check_books(oms)


def test_return_policy_settings_are_validated() -> None:
    """A fee over 100 %, an unknown shipping rule or a negative window is refused."""
    with pytest.raises(InvalidReturn):
        ReturnPolicy(restocking_fee_percent=101)
    with pytest.raises(InvalidReturn):
        ReturnPolicy(refund_shipping="sometimes")
    with pytest.raises(InvalidReturn, match="non_returnable_skus must be non-empty strings"):
        ReturnPolicy(non_returnable_skus=["GIFT-CARD", " "])
    assert ReturnPolicy(restocking_fee_percent=Decimal("12.5")).restocking_fee_percent == Decimal(
        "12.5"
    )
    with pytest.raises(InvalidReturn, match=r"a timedelta of 0 or more, got .*days=-1"):
        ReturnPolicy(window=timedelta(seconds=-1))
    assert ReturnPolicy(window=timedelta(0)).window == timedelta(0), "final sale: no window"
    assert ReturnPolicy(restocking_fee_percent=100).restocking_fee_percent == 100
    assert ReturnPolicy(restocking_fee_percent=0).restocking_fee_percent == 0
    assert ReturnPolicy().window == timedelta(days=30)
