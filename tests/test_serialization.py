"""Serialization: structure(json(unstructure(x))) == x for aggregates, values and events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from omscore import Location, Money, OmsError, OrderDraft
from omscore.errors import MalformedData
from omscore.events import DomainEvent, OrderPlaced
from omscore.ids import ChannelId, LineId, LocationId, OrderId, Sku
from omscore.inventory import ChannelPool, InventoryItem, StockMovement
from omscore.inventory.item import StockHold
from omscore.orders import Order, PaymentEntry, PaymentKind
from omscore.serialization import event_from_dict, event_to_dict, from_json, make_converter, to_json
from omscore.sourcing import AllocationPlan, LowestCostPolicy, NetworkSnapshot, SourcingRequest
from omscore.testing import strategies as oms_st

from .conftest import draft

T0 = datetime(2026, 1, 1, tzinfo=UTC)


CONVERTER = make_converter()
EVENT = Order.place(OrderId("O-1"), draft(("A", 1)), [LineId("O-1-1")], T0)[1][0]


def round_trip(value: Any, cls: type[Any]) -> Any:
    """Through plain JSON text and back."""
    converter = CONVERTER
    text = json.dumps(converter.unstructure(value))
    return converter.structure(json.loads(text), cls)


@given(oms_st.precise_money())
def test_money_round_trips_exactly(amount: Money) -> None:
    """Every decimal digit survives."""
    assert round_trip(amount, Money) == amount
    assert round_trip(amount, Money).amount.as_tuple() == amount.amount.as_tuple()


@given(oms_st.order_drafts(pickup_locations=["ST-1"]))
def test_drafts_round_trip(draft: OrderDraft) -> None:
    """Drafts of every delivery method."""
    assert round_trip(draft, OrderDraft) == draft


@given(
    oms_st.order_drafts(),
    st.lists(st.sampled_from(["hold", "cancel_one", "change"]), max_size=4),
)
def test_orders_and_their_events_round_trip(draft: OrderDraft, steps: list[str]) -> None:
    """An order after a few commands, and every event those commands recorded."""
    order, events = Order.place(
        OrderId("O-1"), draft, [LineId(f"O-1-{i}") for i in range(len(draft.lines))], T0
    )
    for step in steps:
        try:
            if step == "hold":
                order, more = order.hold("manual", "x", T0)
            elif step == "cancel_one":
                order, more = order.cancel({order.lines[0].id: 1}, "x", T0)
            else:
                order, more = order.change_quantity(order.lines[-1].id, 3, T0)
        except OmsError:
            continue
        events += more
    assert round_trip(order, Order) == order
    for event in events:
        assert event_from_dict(json.loads(json.dumps(event_to_dict(event)))) == event
    assert round_trip(events, list[DomainEvent]) == events


def test_an_order_placed_event_written_before_it_named_the_customer_reads_back() -> None:
    """Outboxes keep events written by earlier versions: an ``OrderPlaced`` without
    ``customer_ref`` reads back with none, and one with it keeps it."""
    for_customer = attrs.evolve(draft(("A", 1)), customer_ref="C-9")
    order, (placed,) = Order.place(OrderId("O-1"), for_customer, [LineId("O-1-1")], T0)
    assert isinstance(placed, OrderPlaced)
    assert (order.customer_ref, placed.customer_ref) == ("C-9", "C-9")
    body = event_to_dict(placed)
    assert event_from_dict(body) == placed
    del body["customer_ref"]
    assert event_from_dict(body) == attrs.evolve(placed, customer_ref=None)


def test_a_payment_entry_written_before_it_named_its_authorisation_reads_back() -> None:
    """Orders stored before edits were authorised again have entries without
    ``draws_on``: they read back drawn on the first authorisation; one that names another
    keeps it."""
    entry = PaymentEntry(
        PaymentKind.CAPTURED, Money("5.00", "EUR"), "pay-2", "capture:F-1@pay-2", T0, "pay-2"
    )
    assert round_trip(entry, PaymentEntry) == entry
    body = json.loads(to_json(entry))
    del body["draws_on"]
    assert from_json(json.dumps(body), PaymentEntry) == attrs.evolve(entry, draws_on=None)


def test_a_stock_hold_written_before_pickup_carts_were_marked_reads_back() -> None:
    """Holds stored before ``pickup`` existed read back as holds of carts to be shipped;
    a click & collect cart's hold keeps its mark."""
    hold = StockHold("cart", None, ChannelId("web"), LocationId("ST-1"), 2, T0, T0, pickup=True)
    assert round_trip(hold, StockHold) == hold
    body = json.loads(to_json(hold))
    del body["pickup"]
    assert from_json(json.dumps(body), StockHold) == attrs.evolve(hold, pickup=False)


@pytest.mark.parametrize(
    ("text", "cls", "problem"),
    [
        ("not json", Order, "cannot decode Order: JSONDecodeError: Expecting value"),
        (None, Order, "cannot decode Order: TypeError: the JSON object must be str"),
        ("{}", Order, "cannot decode Order: required field missing @ $.id;"),
        (
            '{"amount": 1.5, "currency": "EUR"}',
            Money,
            "cannot decode Money: MalformedData: a decimal is written as a string, got 1.5 "
            "@ $.amount",
        ),
        (
            '{"amount": "1.5x", "currency": "EUR"}',
            Money,
            "cannot decode Money: MalformedData: '1.5x' is not a decimal @ $.amount",
        ),
        (
            '{"amount": "1.50", "currency": "EURO"}',
            Money,
            "cannot decode Money: UnknownCurrency: currency 'EURO' is not an ISO 4217 code @ $",
        ),
        ("[]", Money, "cannot decode Money: invalid value for type, expected Decimal @ $.amount"),
    ],
)
def test_text_to_json_did_not_write_is_malformed_data(text: str, cls: type, problem: str) -> None:
    """A consumer decoding what reached it gets MalformedData naming each problem with its
    path, never a bare JSON, cattrs or type error; a float amount is refused, as money is
    never a float."""
    with pytest.raises(MalformedData) as info:
        from_json(text, cls)
    assert str(info.value).startswith(problem), str(info.value)
    assert isinstance(info.value, OmsError)


def test_a_long_list_of_problems_names_the_first_five_and_counts_the_rest() -> None:
    """An empty object for an Order misses seven fields: five are named, two counted."""
    with pytest.raises(MalformedData) as info:
        from_json("{}", Order)
    assert str(info.value).count("required field missing") == 5
    assert str(info.value).endswith("required field missing @ $.lines (and 2 more)")


def test_five_problems_are_all_named_with_none_left_to_count() -> None:
    """A movement with only its SKU and location misses five fields: each is named, and
    nothing is left over to count."""
    with pytest.raises(MalformedData) as info:
        from_json('{"sku": "A", "location_id": "WH-1"}', StockMovement)
    assert str(info.value).count("required field missing") == 5
    assert str(info.value).endswith("required field missing @ $.at")


def test_a_decimal_written_as_a_string_or_an_int_reads_back_exactly() -> None:
    """What to_json writes (a string), and a whole number, are exact amounts."""
    assert from_json('{"amount": "0.10", "currency": "EUR"}', Money) == Money("0.10", "EUR")
    assert from_json('{"amount": 2, "currency": "JPY"}', Money) == Money(2, "JPY")


@given(
    st.sampled_from(sorted(event_to_dict(EVENT))),
    st.sampled_from([None, 5, 1.5, "x", "", [], {}, True, "delete"]),
)
def test_an_event_dict_with_a_wrong_field_is_malformed_data_or_still_an_event(
    key: str, value: object
) -> None:
    """Each field of an event's dict replaced (or deleted): ``event_from_dict`` gives an
    event or raises MalformedData, nothing else."""
    body = event_to_dict(EVENT)
    if value == "delete":
        del body[key]
    else:
        body[key] = value
    message = ""
    try:
        decoded = event_from_dict(body)
    except MalformedData as error:
        message = str(error)
    else:
        assert isinstance(decoded, DomainEvent)
        return
    assert message.startswith("cannot decode a domain event: ")


@given(oms_st.locations())
def test_locations_round_trip(locations: list[Location]) -> None:
    """Kinds, capabilities (a set, written sorted) and points."""
    assert round_trip(locations, list[Location]) == locations


def test_a_location_stored_before_it_had_a_time_zone_reads_back_without_one() -> None:
    """Stores keep locations written by earlier versions: the day is the clock's."""
    berlin = Location(id="WH-1", kind="warehouse", geo=None, capabilities=["ship"])
    body = json.loads(to_json(attrs.evolve(berlin, time_zone="Europe/Berlin")))
    assert body["time_zone"] == "Europe/Berlin"
    del body["time_zone"]
    assert from_json(json.dumps(body), Location) == berlin


@given(st.lists(st.tuples(st.sampled_from(["W1", "W2"]), st.integers(1, 9)), max_size=6))
def test_inventory_items_round_trip(receipts: list[tuple[str, int]]) -> None:
    """An item with levels, holds (with expiry) and backorders."""
    item = InventoryItem(Sku("A"))
    for location, units in receipts:
        item = item.receive(LocationId(location), units, "po", T0).item
    pool = ChannelPool(None, (LocationId("W1"), LocationId("W2")))
    if item.atp(pool):
        item = item.reserve("cart", 1, pool, T0 + timedelta(minutes=5), T0).item
    item = item.hold_for_line(OrderId("O-1"), LineId("O-1-1"), 50, pool, T0).item
    assert round_trip(item, InventoryItem) == item
    assert from_json(to_json(item), InventoryItem) == item


def test_json_output_is_deterministic() -> None:
    """Sets are written sorted, so equal values give equal text."""
    a = Location(id="X", kind="store", geo=None, capabilities=["ship", "pickup", "returns"])
    b = Location(id="X", kind="store", geo=None, capabilities=["returns", "pickup", "ship"])
    assert to_json(a) == to_json(b)


@given(case=oms_st.sourcing_cases())
def test_plans_round_trip_with_their_trace(
    case: tuple[SourcingRequest, NetworkSnapshot],
) -> None:
    """A plan written out carries its trace; read back it explains the same way."""
    request, snapshot = case
    plan = LowestCostPolicy().plan(request, snapshot)
    back = round_trip(plan, AllocationPlan)
    assert back == plan
    assert back.trace == plan.trace
    assert back.explain() == plan.explain()


def test_the_json_accelerator_writes_what_the_standard_library_writes() -> None:
    """SqliteStore encodes with orjson when ``omscore[speedups]`` is installed: over every
    aggregate and event of a simulated period, both encoders give the same text."""
    pytest.importorskip("orjson")
    from omscore.adapters import sqlite  # noqa: PLC0415
    from omscore.adapters.memory import MemoryStore  # noqa: PLC0415
    from omscore.simulate import run  # noqa: PLC0415

    store = MemoryStore()
    run(store, orders=120, seed=4, policy="lowest_cost", progress=None)
    converter = make_converter()
    tables = (store.orders, store.items, store.locations, store.channels, store.returns)
    values: list[Any] = [row for table in tables for row in table.rows.values()]
    values += [converter.unstructure(e, DomainEvent) for e in store.events]
    assert len(values) > 500
    for value in values:
        data = value if isinstance(value, dict) else converter.unstructure(value)
        fast, plain = sqlite._json_text(data), sqlite._stdlib_json_text(data)
        assert json.loads(fast) == json.loads(plain)
        assert fast == plain
