"""Draft validation: every problem of a draft is reported at once, nothing is placed."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest
from hypothesis import given

from omscore import OMS, Delivery, LineDraft, Money, OrderDraft
from omscore.adapters.memory import MemoryStore
from omscore.errors import InvalidDraft
from omscore.orders import DeliveryMethod, DraftLimits
from omscore.orders.draft import draft_problems
from omscore.testing import ManualClock, SequentialIds
from omscore.testing import strategies as oms_st

from .conftest import BERLIN, draft, eur, store_location


def test_a_draft_with_many_problems_reports_every_one(oms: OMS) -> None:
    """No lines is one problem; a bad channel, currency and delivery are three more."""
    bad = OrderDraft(channel="", currency="EURO", lines=[], delivery=Delivery(DeliveryMethod.SHIP))
    with pytest.raises(InvalidDraft) as info:
        oms.place_order(bad)
    problems = info.value.problems
    assert len(problems) == 4
    assert any("channel" in p for p in problems)
    assert any("EURO" in p for p in problems)
    assert any("at least one line" in p for p in problems)
    assert any("needs an address" in p for p in problems)


def test_line_problems_are_each_named_with_their_line(oms: OMS) -> None:
    """Quantity 0, a bool quantity, another currency, a negative price and an oversize
    discount are five problems on three lines."""
    lines = [
        LineDraft(sku="A", quantity=0, unit_price=eur("1.00")),
        LineDraft(sku="B", quantity=True, unit_price=Money("1", "USD")),
        LineDraft(sku="C", quantity=2, unit_price=eur("-1.00"), discount=eur("0.50")),
        LineDraft(sku="D", quantity=2, unit_price=eur("5.00"), discount=eur("10.01")),
    ]
    bad = OrderDraft(channel="web", currency="EUR", lines=lines, delivery=Delivery.ship(BERLIN))
    with pytest.raises(InvalidDraft) as info:
        oms.place_order(bad)
    problems = info.value.problems
    assert any(p.startswith("line 1: quantity must be between 1") for p in problems)
    assert any(p.startswith("line 2: quantity must be an int") for p in problems)
    assert any(p.startswith("line 2: unit price is in USD") for p in problems)
    assert any(p.startswith("line 3: unit price must not be negative") for p in problems)
    assert any(
        p.startswith("line 4: discount 10.01 EUR exceeds the line price 10.00") for p in problems
    )
    assert len(problems) == 5


@pytest.mark.parametrize("sku", ["", "   ", None, 7])
def test_a_line_needs_a_sku(oms: OMS, sku: object) -> None:
    """An empty, blank or missing SKU is a problem of its line."""
    line = LineDraft(sku=sku, quantity=1, unit_price=eur("1.00"))  # type: ignore[arg-type]
    bad = OrderDraft(channel="web", currency="EUR", lines=[line], delivery=Delivery.ship(BERLIN))
    with pytest.raises(InvalidDraft) as info:
        oms.place_order(bad)
    assert info.value.problems == (f"line 1: sku must be a non-empty string, got {sku!r}",)


def test_a_free_line_is_no_problem(oms: OMS) -> None:
    """A gift at 0.00, and a discount of 0.00 or of the whole line price, are allowed."""
    lines = [
        LineDraft(sku="GIFT", quantity=1, unit_price=eur("0.00")),
        LineDraft(sku="A", quantity=2, unit_price=eur("5.00"), discount=eur("0.00")),
        LineDraft(sku="B", quantity=2, unit_price=eur("5.00"), discount=eur("10.00")),
    ]
    good = OrderDraft(channel="web", currency="EUR", lines=lines, delivery=Delivery.ship(BERLIN))
    assert oms.place_order(good).total == eur("10.00")
    in_dollars = LineDraft(sku="GIFT", quantity=1, unit_price=Money("0", "USD"))
    with pytest.raises(InvalidDraft) as info:
        oms.place_order(attrs.evolve(good, lines=[in_dollars]))
    assert info.value.problems == ("line 1: unit price is in USD, the order is in EUR",)


def test_limits_on_lines_and_units_are_configurable(make_oms: object) -> None:
    """A host can lower the maximum lines per order and units per line."""
    oms = make_oms(limits=DraftLimits(max_lines=2, max_units_per_line=5))  # type: ignore[operator]
    with pytest.raises(InvalidDraft) as info:
        oms.place_order(draft(("A", 1), ("B", 1), ("C", 6)))
    assert any("at most 2 lines" in p for p in info.value.problems)
    assert any("between 1 and 5, got 6" in p for p in info.value.problems)
    at_the_limits = oms.place_order(draft(("A", 5), ("B", 1)))
    assert [line.quantity for line in at_the_limits.lines] == [5, 1]


def test_pickup_needs_a_known_location_that_takes_pickups(oms: OMS) -> None:
    """Pickup without a location, at one that is no string, at an unknown location, or at
    a warehouse without PICKUP: each draft is refused for that one problem."""
    for delivery, expected in [
        (Delivery(DeliveryMethod.PICKUP), "a pickup delivery needs a pickup location"),
        (
            Delivery(DeliveryMethod.PICKUP, pickup_location=5),  # type: ignore[arg-type]
            "a pickup location must be a non-empty string, got 5",
        ),
        (Delivery.pickup("NOWHERE"), "pickup location 'NOWHERE' is unknown"),
        (Delivery.pickup("WH-1"), "pickup location 'WH-1' does not take pickups now"),
    ]:
        with pytest.raises(InvalidDraft) as refused:
            oms.place_order(draft(("A", 1), delivery=delivery))
        assert refused.value.problems == (expected,)


@pytest.mark.parametrize("allocate", [False, True])
def test_something_else_than_a_draft_is_a_typed_refusal(oms: OMS, allocate: bool) -> None:
    """Not an AttributeError from deep inside: an InvalidDraft that says what came."""
    with pytest.raises(InvalidDraft, match="placed from an OrderDraft, got dict"):
        oms.place_order({"channel": "web"}, allocate=allocate)  # type: ignore[arg-type]
    assert [e for e in oms.events() if e.name == "OrderPlaced"] == []


def test_refused_drafts_leave_nothing_behind(oms: OMS) -> None:
    """No order, no event and no idempotency record after a refused draft."""
    store = oms.store
    assert isinstance(store, MemoryStore)
    events_before = len(oms.events())
    with pytest.raises(InvalidDraft):
        oms.place_order(draft(("A", 0)), idempotency_key="checkout-1")
    assert len(oms.events()) == events_before
    assert store.orders.rows == {}
    assert store.idempotency == {}
    placed = oms.place_order(draft(("A", 1)), idempotency_key="checkout-1")
    assert placed.lines[0].quantity == 1


def test_totals_are_price_times_quantity_less_discount_plus_tax_plus_shipping(oms: OMS) -> None:
    """Line total and order total, to the cent."""
    order = oms.place_order(
        OrderDraft(
            channel="web",
            currency="EUR",
            lines=[
                LineDraft("A", 3, eur("19.99"), discount=eur("5.00"), tax=eur("10.44")),
                LineDraft("B", 1, eur("0.01")),
            ],
            delivery=Delivery.ship(BERLIN),
            shipping_fee=eur("4.95"),
        )
    )
    assert order.lines[0].total == Money(Decimal("65.41"), "EUR")
    assert order.total == Money(Decimal("70.37"), "EUR")


@given(oms_st.order_drafts(max_lines=4, max_quantity=7, pickup_locations=["ST-1"]))
def test_the_public_draft_strategy_draws_drafts_that_can_be_placed(drawn: OrderDraft) -> None:
    """``order_drafts()`` promises valid drafts: none has a problem within its own bounds,
    and each is placed as drawn (a pickup at a store that takes them)."""
    assert draft_problems(drawn, DraftLimits(max_lines=4, max_units_per_line=7)) == []
    oms = OMS(MemoryStore(), clock=ManualClock(), ids=SequentialIds())
    oms.add_location(store_location("ST-1"))
    order = oms.place_order(drawn)
    assert [(line.sku, line.quantity) for line in order.lines] == [
        (line.sku, line.quantity) for line in drawn.lines
    ]
    assert order.delivery == drawn.delivery
