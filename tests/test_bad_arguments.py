"""Every public OMS method, every argument, each of a dozen wrong values: the call either
works (an empty reason is a reason) or raises an ``OmsError``, and a refused call changes
nothing, on both stores. Before this test, 359 such calls raised a bare ``TypeError``,
``AttributeError`` or ``ValueError`` (an order id given as a list, a mapping of lines given
as a string, a ``ttl`` given as an int), one half-applied a reservation on
``MemoryStore`` (its key a list), and ``SqliteStore`` failed to serialise a reason or a
reference that was not a string."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest

from omscore import OMS, Address, Delivery, GeoPoint, LineDraft, OmsError, OrderDraft
from omscore.adapters.memory import MemoryStore
from omscore.adapters.payments import FakePaymentGateway
from omscore.adapters.sqlite import SqliteStore
from omscore.errors import (
    InvalidArgument,
    InvalidChannelConfig,
    InvalidDraft,
    InvalidLocation,
    InvalidQuantity,
    InvalidQuery,
    InvalidReturn,
    InvalidSourcingConfig,
    UnknownFulfillment,
    UnknownOrder,
)
from omscore.inventory import Capability, Location, LocationKind
from omscore.orders import DeliveryMethod, DraftLimits, OrderStatus
from omscore.ports import Store
from omscore.returns import Disposition, ReturnPolicy
from omscore.sourcing import (
    CostModel,
    FewestShipmentsPolicy,
    KindFilter,
    LowestCostPolicy,
    MaxDistanceFilter,
    NearestPolicy,
    PriorityPolicy,
    Route,
    RoutedPolicy,
    StoreShipMinimum,
)
from omscore.testing import ManualClock, SequentialIds

from .conftest import BERLIN, LabelRecorder, draft, eur, store_location, warehouse


class _Unprintable:
    """Not a string, a number or a collection: what a caller's bug may pass."""

    def __repr__(self) -> str:
        return "_Unprintable()"


WRONG: list[object] = [
    None,
    -1,
    0,
    "",
    "nonsense",
    1.5,
    True,
    [],
    {},
    _Unprintable(),
    datetime(2026, 1, 1),  # naive
    Decimal("NaN"),
    ("WH-1",),
    {"x": None},
]

#: Methods without arguments have nothing to get wrong.
NO_ARGUMENTS = {"expire_pickups", "expire_reservations", "locations", "reconcile"}


def shop(store: Store) -> tuple[OMS, dict[str, str]]:
    """Two warehouses' worth of states: orders open, allocated, shipped, delivered, on
    hold, awaiting payment, ready for pickup and on their way to a store; returns
    requested, approved, received and rejected; a cart, a transfer and a purchase order."""
    gateway = FakePaymentGateway()
    oms = OMS(
        store,
        clock=ManualClock(datetime(2026, 1, 1, 9, tzinfo=UTC)),
        ids=SequentialIds(),
        payments=gateway,
        carrier=LabelRecorder(),
        sourcing=LowestCostPolicy(allow_ship_to_store=True),
    )
    oms.add_location(warehouse("WH-1"))
    oms.add_location(store_location("ST-1"))
    oms.receive("WH-1", "A", 50)
    oms.receive("ST-1", "B", 5)
    allocated = oms.place_order(draft(("A", 2)), allocate=True)
    placed = oms.place_order(draft(("A", 1)))
    delivered = oms.place_order(draft(("A", 4)), allocate=True)
    parcel = delivered.fulfillments[0].id
    oms.ship(parcel)
    oms.deliver(parcel)
    line = delivered.lines[0].id
    requested = oms.request_return(delivered.id, {line: 1})
    approved = oms.request_return(delivered.id, {line: 1})
    oms.approve_return(approved.id)
    received = oms.request_return(delivered.id, {line: 1})
    oms.approve_return(received.id)
    oms.receive_return(received.id, "WH-1", {line: {Disposition.RESTOCK: 1}})
    rejected = oms.request_return(delivered.id, {line: 1})
    oms.reject_return(rejected.id, "worn")
    oms.reserve("A", 1, ttl=timedelta(hours=1), key="cart")
    transfer = oms.transfer("A", "WH-1", "ST-1", 1)
    oms.add_supply("A", "WH-1", 5, datetime(2026, 2, 1, tzinfo=UTC), reference="PO-SHOP")
    pickup = oms.place_order(draft(("B", 1), delivery=Delivery.pickup("ST-1")), allocate=True)
    ready = oms.place_order(draft(("B", 1), delivery=Delivery.pickup("ST-1")), allocate=True)
    oms.ready_for_pickup(ready.fulfillments[0].id)
    shipped = oms.place_order(draft(("A", 1)), allocate=True)
    oms.ship(shipped.fulfillments[0].id)
    held = oms.place_order(draft(("A", 1), ("B", 1)))
    oms.hold(held.id, "fraud")
    gateway.decline_next()
    unpaid = oms.place_order(draft(("A", 1)))
    oms.add_location(store_location("ST-2"))
    to_store = oms.place_order(draft(("A", 1), delivery=Delivery.pickup("ST-2")), allocate=True)
    oms.receive("ST-2", "A", 5)  # where a fulfilment order may move
    ids = {
        "allocated": allocated.id,
        "allocated_line": allocated.lines[0].id,
        "parcel": allocated.fulfillments[0].id,
        "placed": placed.id,
        "placed_line": placed.lines[0].id,
        "delivered": delivered.id,
        "delivered_line": line,
        "requested": requested.id,
        "approved": approved.id,
        "received": received.id,
        "rejected": rejected.id,
        "transfer": transfer.id,
        "pickup": pickup.fulfillments[0].id,
        "ready": ready.fulfillments[0].id,
        "shipped": shipped.fulfillments[0].id,
        "held": held.id,
        "held_line": held.lines[1].id,
        "unpaid": unpaid.id,
        "unpaid_line": unpaid.lines[0].id,
        "to_store": to_store.fulfillments[0].id,
    }
    return oms, ids


def good_calls(c: dict[str, str]) -> dict[str, dict[str, Any]]:
    """One call per method that works on :func:`shop`, by keyword."""
    return {
        "accept_fulfillment": {"fulfillment_id": c["parcel"]},
        # Edits that raise the total: on the order whose card was declined (an authorised
        # one is not charged more than its authorisation, test_payments.py).
        "add_line": {"order_id": c["unpaid"], "line": LineDraft("A", 1, eur("5.00"))},
        "add_location": {"location": warehouse("WH-9")},
        "add_supply": {
            "sku": "A",
            "location_id": "WH-1",
            "quantity": 3,
            "eta": datetime(2026, 2, 1, tzinfo=UTC),
            "reference": "PO-1",
        },
        "adjust": {"location_id": "WH-1", "sku": "A", "delta": -1, "reason": "x", "damage": False},
        "allocate": {"order_id": c["placed"]},
        "approve_return": {"return_id": c["requested"]},
        "authorize_payment": {"order_id": c["unpaid"]},
        "availability": {
            "skus": {"A": 1},
            "near": BERLIN.geo,
            "radius_km": 50,
            "capability": Capability.SHIP,
        },
        "available": {"sku": "A", "channel": "web"},
        "available_many": {"skus": ["A", "B"], "channel": "web"},
        "channel_pool": {"channel": "web"},
        "backorder_dates": {"order_id": c["held"]},
        "backorder_queue": {"sku": "A", "older_than": timedelta(0), "limit": 5},
        "cancel": {"order_id": c["placed"], "lines": {c["placed_line"]: 1}, "reason": "x"},
        "cancel_supply": {"sku": "A", "location_id": "WH-1", "reference": "PO-SHOP"},
        "change_address": {"order_id": c["placed"], "address": BERLIN},
        "change_delivery": {
            "order_id": c["placed"],
            "delivery": Delivery.pickup("ST-1"),
            "shipping_fee": eur("0.00"),
        },
        "change_ship_complete": {"order_id": c["placed"], "ship_complete": True},
        "change_quantity": {"order_id": c["unpaid"], "line_id": c["unpaid_line"], "quantity": 2},
        "close_return": {"return_id": c["rejected"]},
        "collect": {"fulfillment_id": c["ready"]},
        "configure_channel": {
            "channel": "web",
            "location_ids": ["WH-1"],
            "kinds": ["warehouse"],
            "buffer": 1,
            "buffer_percent": 10,
            "low_stock_threshold": 2,
            "requires": ["ship"],
        },
        "count": {"location_id": "WH-1", "sku": "A", "on_hand": 30},
        "customer_orders": {"customer_ref": "C-1", "limit": 5},
        "deliver": {"fulfillment_id": c["shipped"]},
        "events": {"after": 0, "limit": 5},
        "exchange": {"return_id": c["received"], "lines": [LineDraft("A", 1, eur("10.00"))]},
        "extend_reservation": {"key": "cart", "ttl": timedelta(hours=2)},
        "fulfillment_queue": {"location_id": "WH-1", "statuses": ["open"], "limit": 5},
        "get_order": {"order_id": c["allocated"]},
        "get_order_by_fulfillment": {"fulfillment_id": c["parcel"]},
        "get_return": {"return_id": c["requested"]},
        "hold": {"order_id": c["placed"], "kind": "fraud", "reason": "x"},
        "incoming_supply": {
            "due_by": datetime(2026, 3, 1, tzinfo=UTC),
            "location_id": "WH-1",
            "limit": 5,
        },
        "inventory": {"sku": "A"},
        "ledger": {"sku": "A", "location_id": "WH-1"},
        "order_history": {"order_id": c["allocated"]},
        "order_queue": {
            "statuses": ["open"],
            "hold": "fraud",
            "channel": "web",
            "older_than": timedelta(0),
            "limit": 5,
        },
        "pack": {"fulfillment_id": c["parcel"]},
        "pick": {"fulfillment_id": c["parcel"]},
        "place_order": {"draft": draft(("A", 1)), "allocate": False},
        "promise_date": {"sku": "A", "quantity": 1, "channel": "web"},
        "prune": {"keep_events": timedelta(days=1), "keep_keys": timedelta(days=1)},
        "ready_for_pickup": {"fulfillment_id": c["pickup"]},
        "receive": {"location_id": "WH-1", "sku": "A", "quantity": 1, "reference": "x"},
        "receive_many": {"positions": [("WH-1", "A", 1)], "mode": "delta", "reference": "feed"},
        "receive_return": {
            "return_id": c["approved"],
            "location_id": "WH-1",
            "dispositions": {c["delivered_line"]: {Disposition.RESTOCK: 1}},
        },
        "receive_transfer": {"sku": "A", "transfer_id": c["transfer"]},
        "refund_order": {"order_id": c["delivered"], "amount": eur("1.00"), "reason": "goodwill"},
        "refund_return": {"return_id": c["received"]},
        "reject_fulfillment": {"fulfillment_id": c["parcel"], "reason": "x"},
        "reallocate": {"order_id": c["allocated"], "reason": "x"},
        "move_fulfillment": {"fulfillment_id": c["parcel"], "location_id": "ST-2", "reason": "x"},
        "reject_return": {"return_id": c["requested"], "reason": "x"},
        "release": {"order_id": c["held"], "kind": "fraud"},
        "release_reservation": {"key": "cart"},
        "remove_line": {"order_id": c["held"], "line_id": c["held_line"]},
        "request_return": {
            "order_id": c["delivered"],
            "lines": {c["delivered_line"]: 1},
            "reason": "x",
            "method": "ship",
        },
        "reservations": {"key": "cart"},
        "reschedule_transfer": {
            "sku": "A",
            "transfer_id": c["transfer"],
            "eta": datetime(2026, 2, 3, tzinfo=UTC),
        },
        "reserve": {
            "sku": "B",
            "quantity": 1,
            "channel": "web",
            "ttl": timedelta(hours=1),
            "key": "cart-2",
            "pickup_location": "ST-1",
        },
        "returnable": {"order_id": c["delivered"]},
        "send_to_store": {"fulfillment_id": c["to_store"], "tracking": "T1", "carrier": "dhl"},
        "set_safety_stock": {"location_id": "WH-1", "sku": "A", "units": 1},
        "ship": {
            "fulfillment_id": c["parcel"],
            "tracking": "T1",
            "carrier": "dhl",
            "units": {c["allocated_line"]: 1},
        },
        "short_pick": {"fulfillment_id": c["parcel"], "missing": {c["allocated_line"]: 1}},
        "stalled_fulfillments": {
            "older_than": timedelta(0),
            "location_id": "WH-1",
            "statuses": ["open"],
            "limit": 5,
        },
        "stock": {"location_id": "WH-1", "sku": "A"},
        "stock_matrix": {"skus": ["A"], "location_ids": ["WH-1"]},
        "transfer": {
            "sku": "A",
            "from_location": "WH-1",
            "to_location": "ST-1",
            "quantity": 1,
            "reference": "x",
            "eta": datetime(2026, 2, 1, tzinfo=UTC),
        },
        "update_supply": {
            "sku": "A",
            "location_id": "WH-1",
            "reference": "PO-SHOP",
            "quantity": 4,
            "eta": datetime(2026, 2, 8, tzinfo=UTC),
        },
        "update_location": {
            "location_id": "WH-1",
            "active": True,
            "capabilities": ["ship"],
            "priority": 2,
            "daily_capacity": 10,
            "time_zone": "Europe/Berlin",
        },
    }


def everything(oms: OMS, ids: dict[str, str]) -> tuple[object, ...]:
    """What a refused call must leave as it was, read through the OMS."""
    orders = [oms.get_order(ids[k]) for k in ("allocated", "placed", "delivered", "held", "unpaid")]
    returns = [oms.get_return(ids[k]) for k in ("requested", "approved", "received")]
    return (
        oms.events(),
        oms.ledger(),
        orders,
        returns,
        oms.inventory("A"),
        oms.inventory("B"),
        oms.locations(),
        oms.available("A", channel="web"),
        oms.store.unpublished(),
    )


STORES: dict[str, Callable[[], Store]] = {
    "memory": MemoryStore,
    "sqlite": lambda: SqliteStore(":memory:"),
}
COMMANDS = sorted(good_calls(shop(MemoryStore())[1]))


@pytest.mark.parametrize("store", sorted(STORES))
def test_a_reason_or_a_reference_is_text_and_none_is_refused(store: str) -> None:
    """An empty reason is a reason, but ``None`` is none: refused with the argument's
    name, and the order, the stock and the outbox stay as they were."""
    oms = OMS(STORES[store](), clock=ManualClock(), ids=SequentialIds())
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 5)
    order = oms.place_order(draft(("A", 1)))
    before = (oms.get_order(order.id), oms.stock("WH-1", "A"), oms.events())
    with pytest.raises(InvalidArgument, match="reason must be a string, got None"):
        oms.cancel(order.id, reason=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="reference must be a string, got None"):
        oms.receive("WH-1", "A", 1, reference=None)  # type: ignore[arg-type]
    assert (oms.get_order(order.id), oms.stock("WH-1", "A"), oms.events()) == before
    assert oms.cancel(order.id, reason="").status is OrderStatus.CANCELLED


def test_every_method_with_arguments_is_tried() -> None:
    """A new public method must join the table."""
    public = {name for name, _ in inspect.getmembers(OMS, inspect.isfunction)}
    assert {n for n in public if not n.startswith("_")} - NO_ARGUMENTS == set(COMMANDS)


@pytest.mark.parametrize("store", sorted(STORES))
@pytest.mark.parametrize("command", COMMANDS)
def test_a_wrong_argument_is_an_oms_error_and_changes_nothing(store: str, command: str) -> None:
    """The good call works; then each argument in turn, and the idempotency key, gets
    each wrong value."""
    oms, ids = shop(STORES[store]())
    call = getattr(oms, command)
    call(**good_calls(ids)[command])
    parameters = inspect.signature(getattr(OMS, command)).parameters
    names = list(good_calls(ids)[command]) + ["idempotency_key"] * ("idempotency_key" in parameters)
    refused = 0
    for name in names:
        oms, ids = shop(STORES[store]())
        for wrong in WRONG:
            arguments = {**good_calls(ids)[command], name: wrong}
            before = everything(oms, ids)
            try:
                getattr(oms, command)(**arguments)
            except OmsError:
                refused += 1
                assert everything(oms, ids) == before, f"{command}({name}={wrong!r}) changed it"
            else:  # a value that happens to do (an empty reason): start again
                oms, ids = shop(STORES[store]())
    assert refused


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda oms, c: oms.get_order([]), UnknownOrder, "no order [] (an order id is a string)"),
        (
            lambda oms, c: oms.order_history(7),
            UnknownOrder,
            "no order 7 (an order id is a string)",
        ),
        (
            lambda oms, c: oms.pick({"id": c["parcel"]}),
            UnknownFulfillment,
            "(a fulfilment order id is a string)",
        ),
        (
            lambda oms, c: oms.reserve("A", 1, ttl=timedelta(hours=1), key=["cart"]),
            InvalidArgument,
            "reservation key must be a non-empty string, got ['cart']",
        ),
        (
            lambda oms, c: oms.extend_reservation("cart", 3600),
            InvalidQuantity,
            "reservation ttl must be a positive timedelta, got 3600",
        ),
        (
            lambda oms, c: oms.place_order(draft(("A", 1)), idempotency_key=""),
            InvalidArgument,
            "idempotency_key must be a non-empty string, got ''",
        ),
        (
            lambda oms, c: oms.adjust("WH-1", "A", -1, damage="yes"),
            InvalidArgument,
            "damage must be True or False, got 'yes'",
        ),
        (
            lambda oms, c: oms.place_order(draft(("A", 1)), allocate="no"),
            InvalidArgument,
            "allocate must be True or False, got 'no'",
        ),
        (
            lambda oms, c: oms.cancel(c["placed"], lines=[c["placed_line"]]),
            InvalidQuantity,
            "lines to cancel ({line_id: units}) must be a mapping",
        ),
        (
            lambda oms, c: oms.request_return(c["delivered"], "all"),
            InvalidReturn,
            "lines to return ({line_id: units}) must be a mapping, got 'all'",
        ),
        (
            lambda oms, c: oms.add_line(c["placed"], ("A", 1)),
            InvalidDraft,
            "new line: expected a LineDraft, got tuple",
        ),
        (
            lambda oms, c: oms.receive_many([("WH-1", "A")]),
            InvalidQuantity,
            "each feed position must be a StockPosition or a (location_id, sku, quantity) tuple",
        ),
        (
            lambda oms, c: oms.update_location("WH-1", capabilities=["ship", "fly"]),
            InvalidLocation,
            "unknown capabilities ['fly']",
        ),
        (
            lambda oms, c: oms.configure_channel("web", kinds=["warehouse", "moon"]),
            InvalidChannelConfig,
            "unknown location kinds ['moon']",
        ),
        (
            lambda oms, c: oms.availability({"A": 1}, near=(52.5, 13.4)),
            InvalidQuery,
            "near must be a GeoPoint, got (52.5, 13.4)",
        ),
        (
            lambda oms, c: oms.availability({}),
            InvalidQuantity,
            "a basket needs at least one SKU",
        ),
        (
            lambda oms, c: oms.stock_matrix("A"),
            InvalidQuantity,
            "skus must be a collection of strings, got 'A'",
        ),
        (
            lambda oms, c: oms.hold(c["placed"], "fraud", reason=42),
            InvalidArgument,
            "reason must be a string, got 42",
        ),
        (
            lambda oms, c: oms.ship(c["parcel"], tracking=""),
            InvalidArgument,
            "tracking must be a non-empty string, got ''",
        ),
        (
            lambda oms, c: oms.ledger(sku=["A"]),
            InvalidQuery,
            "sku must be a non-empty string, got ['A']",
        ),
        (
            lambda oms, c: oms.available("A", channel=7),
            InvalidArgument,
            "channel must be a non-empty string, got 7",
        ),
    ],
)
def test_the_error_names_the_argument_and_the_value(
    call: Callable[[OMS, dict[str, str]], object], error: type[OmsError], message: str
) -> None:
    """A typed error a caller can act on, whose message says what was wrong."""
    oms, ids = shop(MemoryStore())
    with pytest.raises(error) as refused:
        call(oms, ids)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("setting", "value", "error", "message"),
    [
        ("max_attempts", 0, InvalidQuantity, "max_attempts must be an int >= 1, got 0"),
        ("max_rejections", "3", InvalidQuantity, "max_rejections must be an int >= 1, got '3'"),
        ("pickup_expiry", 7, InvalidArgument, "pickup_expiry must be a positive timedelta"),
        ("pickup_expiry", timedelta(0), InvalidArgument, "pickup_expiry must be a positive"),
        ("limits", 5, InvalidArgument, "limits must be a DraftLimits, got 5"),
        ("return_policy", {}, InvalidArgument, "return_policy must be a ReturnPolicy, got {}"),
        ("sourcing", "nearest", InvalidArgument, "sourcing must have the method plan()"),
        ("clock", 5, InvalidArgument, "clock must have the method now(), got 5"),
        ("ids", 5, InvalidArgument, "ids must have the method new_id(), got 5"),
        ("payments", 5, InvalidArgument, "payments must have the method authorize()"),
        ("carrier", 5, InvalidArgument, "carrier must have the method create_label()"),
    ],
)
def test_an_oms_with_a_setting_that_cannot_work_is_refused_when_made(
    setting: str, value: object, error: type[OmsError], message: str
) -> None:
    """Not at the first command (``max_attempts=0`` ran no attempt and failed an
    assertion; a clock of 5 raised AttributeError)."""
    with pytest.raises(error) as refused:
        OMS(MemoryStore(), **{setting: value})  # type: ignore[arg-type]
    assert message in str(refused.value)
    with pytest.raises(InvalidArgument, match=r"store must have the method unit_of_work\(\)"):
        OMS("shop.db")  # type: ignore[arg-type]


def test_an_age_longer_than_time_finds_nothing_older() -> None:
    """A hundred million hours (or a million days) back is before the calendar starts:
    nothing waited that long and nothing is pruned (before: OverflowError)."""
    oms, _ = shop(MemoryStore())
    ages = timedelta(hours=10**8)
    assert oms.stalled_fulfillments(ages) == []
    assert oms.order_queue(older_than=ages) == []
    pruned = oms.prune(keep_events=timedelta(days=10**6), keep_keys=ages)
    assert (pruned.events, pruned.idempotency_keys) == (0, 0)
    patient = OMS(MemoryStore(), pickup_expiry=timedelta(days=10**6))
    assert patient.expire_pickups() == 0


@pytest.mark.parametrize("store", [MemoryStore, lambda: SqliteStore(":memory:")])
def test_a_reservation_that_would_outlive_the_calendar_is_refused(
    store: Callable[[], Store],
) -> None:
    """``timedelta.max`` as a cart's ttl expires after the year 9999: InvalidQuantity says
    so (before: OverflowError), for a new cart and an extended one, and nothing changes."""
    oms, _ = shop(store())
    oms.reserve("A", 1, ttl=timedelta(minutes=15), key="cart-1")
    kept = (oms.inventory("A"), len(oms.events()))
    for call in (
        lambda: oms.reserve("A", 1, ttl=timedelta.max, key="cart-2"),
        lambda: oms.extend_reservation("cart-1", ttl=timedelta.max),
    ):
        with pytest.raises(InvalidQuantity, match="reaches past the year 9999"):
            call()
    assert (oms.inventory("A"), len(oms.events())) == kept
    far = oms.reserve("A", 1, ttl=timedelta(days=365 * 100), key="cart-3")
    assert far.expires_at.year > 2100


def _draft_variants() -> list[tuple[str, Callable[[], OrderDraft]]]:
    """A draft with one field of itself, its line, its delivery, its address or its
    point made wrong."""
    line = LineDraft("A", 1, eur("10.00"), discount=eur("1.00"), tax=eur("0.50"))
    base = OrderDraft(
        channel="web",
        currency="EUR",
        lines=[line],
        delivery=Delivery.ship(BERLIN),
        customer_ref="C-1",
        shipping_fee=eur("4.95"),
    )
    assert BERLIN.geo is not None
    geo = BERLIN.geo

    def variant(where: str, name: str, wrong: Any) -> Callable[[], OrderDraft]:
        def build() -> OrderDraft:
            if where == "draft":
                return attrs.evolve(base, **{name: wrong})
            if where == "line":
                return attrs.evolve(base, lines=[attrs.evolve(line, **{name: wrong})])
            if where == "delivery":
                return attrs.evolve(base, delivery=attrs.evolve(base.delivery, **{name: wrong}))
            if where == "address":
                return attrs.evolve(
                    base, delivery=Delivery.ship(attrs.evolve(BERLIN, **{name: wrong}))
                )
            moved = attrs.evolve(BERLIN, geo=attrs.evolve(geo, **{name: wrong}))
            return attrs.evolve(base, delivery=Delivery.ship(moved))

        return build

    kinds = {"draft": OrderDraft, "line": LineDraft, "delivery": Delivery, "address": Address}
    kinds["point"] = GeoPoint
    return [
        (f"{where}.{field.name}={wrong!r}", variant(where, field.name, wrong))
        for where, kind in kinds.items()
        for field in attrs.fields(kind)
        for wrong in WRONG
    ]


@pytest.mark.parametrize("allocate", [False, True])
def test_a_draft_with_a_wrong_field_is_refused_as_a_draft(allocate: bool) -> None:
    """Each field of a draft, of its line, of its delivery, of its address and of the
    address's point, given each wrong value: building it refuses it with an ``OmsError``,
    placing it with ``InvalidDraft``, or the value does (a postal code may be empty). A
    refused draft places nothing. Before, a customer_ref or reservation_key given as a
    list, a pickup location given as a list and a currency given as a dict raised a
    bare TypeError; a delivery method of "nonsense" and an address of 5 were placed."""
    oms = OMS(MemoryStore(), clock=ManualClock(), ids=SequentialIds())
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 1000)
    refused, variants = 0, _draft_variants()
    for name, build in variants:
        try:
            wrong = build()
        except OmsError:
            refused += 1
            continue
        events = len(oms.events())
        try:
            oms.place_order(wrong, allocate=allocate)
        except InvalidDraft:
            refused += 1
            assert len(oms.events()) == events, name
    assert refused > 0.8 * len(variants)  # what does: a postal code "", a latitude 0 ...


@pytest.mark.parametrize(
    ("wrong", "problem"),
    [
        (
            {"delivery": Delivery("drone", address=BERLIN)},  # type: ignore[arg-type]
            "delivery method must be one of ['ship', 'pickup', 'same_day'], got 'drone'",
        ),
        (
            {"delivery": Delivery.ship(attrs.evolve(BERLIN, city=""))},
            "the address city must be a non-empty string, got ''",
        ),
        (
            {"delivery": Delivery(DeliveryMethod.SHIP, address="Berlin")},  # type: ignore[arg-type]
            "the delivery address must be an Address, got 'Berlin'",
        ),
        ({"customer_ref": ""}, "customer_ref must be a non-empty string, got ''"),
        ({"reservation_key": ["cart"]}, "reservation_key must be a non-empty string"),
        ({"currency": {"EUR": 1}}, "currency {'EUR': 1} is not an ISO 4217 code"),
    ],
)
def test_a_wrong_field_is_named_in_the_drafts_problems(wrong: dict[str, Any], problem: str) -> None:
    """The problem names the field and the value."""
    oms = OMS(MemoryStore(), clock=ManualClock(), ids=SequentialIds())
    good = draft(("A", 1))
    with pytest.raises(InvalidDraft) as refused:
        oms.place_order(attrs.evolve(good, **wrong))
    assert problem in str(refused.value)


def test_address_lines_are_a_sequence_of_strings() -> None:
    """One string alone would have become one line per character."""
    with pytest.raises(InvalidArgument, match="address lines must be a sequence of strings"):
        attrs.evolve(BERLIN, lines="Invalidenstr. 1")
    assert attrs.evolve(BERLIN, lines=["Invalidenstr. 1"]).lines == ("Invalidenstr. 1",)


def test_a_changed_address_is_checked_as_a_drafts_address() -> None:
    """The same problems as at checkout; the order keeps its address."""
    oms = OMS(MemoryStore(), clock=ManualClock(), ids=SequentialIds())
    order = oms.place_order(draft(("A", 1)))
    with pytest.raises(InvalidDraft) as refused:
        oms.change_address(order.id, attrs.evolve(BERLIN, country="", city=None))  # type: ignore[arg-type]
    assert refused.value.problems == (
        "the address country must be an ISO 3166-1 alpha-2 code (two capital letters, such as "
        "'DE'), got ''",
        "the address city must be a non-empty string, got None",
    )
    assert oms.get_order(order.id).delivery.address == BERLIN


@pytest.mark.parametrize("country", ["Germany", "de", "DEU", "D", " DE", "D1", "ÄÖ", 49, None])
def test_an_address_country_is_an_iso_3166_code(country: object) -> None:
    """A carrier's rates and a tax engine key on the two-letter code: a country name, a
    lower-case or three-letter code is refused at checkout, not found wrong at shipping."""
    oms = OMS(MemoryStore(), clock=ManualClock(), ids=SequentialIds())
    wrong = attrs.evolve(
        draft(("A", 1)),
        delivery=Delivery.ship(attrs.evolve(BERLIN, country=country)),  # type: ignore[arg-type]
    )
    with pytest.raises(InvalidDraft) as refused:
        oms.place_order(wrong)
    assert refused.value.problems == (
        "the address country must be an ISO 3166-1 alpha-2 code (two capital letters, such as "
        f"'DE'), got {country!r}",
    )
    assert oms.events() == []


def test_any_two_letter_code_is_taken_as_a_country() -> None:
    """The format is checked, not a list of countries: a newly assigned code still works."""
    oms = OMS(MemoryStore(), clock=ManualClock(), ids=SequentialIds())
    for country in ("DE", "US", "GB", "XK"):
        address = attrs.evolve(BERLIN, country=country)
        order = oms.place_order(attrs.evolve(draft(("A", 1)), delivery=Delivery.ship(address)))
        assert order.delivery.address == address


SETTINGS: dict[type, dict[str, Any]] = {
    Location: {
        "id": "WH-1",
        "kind": LocationKind.WAREHOUSE,
        "geo": GeoPoint(52.5, 13.4),
        "capabilities": {Capability.SHIP},
    },
    DraftLimits: {},
    ReturnPolicy: {},
    CostModel: {},
    LowestCostPolicy: {},
    NearestPolicy: {},
    PriorityPolicy: {},
    FewestShipmentsPolicy: {},
    KindFilter: {"kinds": ["warehouse"]},
    MaxDistanceFilter: {"km": 50},
    StoreShipMinimum: {"units": 2},
    Route: {"policy": NearestPolicy(), "channels": ["web"], "methods": ["ship"]},
    RoutedPolicy: {"routes": [Route(NearestPolicy())], "fallback": PriorityPolicy()},
}


@pytest.mark.parametrize("kind", list(SETTINGS), ids=lambda k: k.__name__)
def test_a_setting_with_a_wrong_field_is_refused_where_it_is_written(kind: type) -> None:
    """Locations, limits, the return policy, cost models, policies, filters and routes:
    each field given each wrong value (and ``nan`` and ``inf``) either does or raises an
    ``OmsError`` when the value is built. Before, a location's geo could be a tuple, its
    ``active`` a string, a policy's radius ``nan`` and its cost model ``[]``; a kind of
    "moon" or filters of ``5`` raised bare errors."""
    kind(**SETTINGS[kind])
    refused = 0
    names = [field.name for field in attrs.fields(kind)]
    for name in names:
        for wrong in [*WRONG, math.nan, math.inf]:
            try:
                kind(**{**SETTINGS[kind], name: wrong})
            except OmsError:
                refused += 1
    assert refused >= 10 * len(names)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: Location("WH-1", "moon", None, ["ship"]),
            InvalidLocation,
            "location kind must be one of ['warehouse', 'store', 'supplier'], got 'moon'",
        ),
        (
            lambda: Location("WH-1", "warehouse", None, "ship"),
            InvalidLocation,
            "capabilities must be a collection, got 'ship'",
        ),
        (
            lambda: Location("WH-1", "warehouse", (52.5, 13.4), ["ship"]),  # type: ignore[arg-type]
            InvalidLocation,
            "geo must be a GeoPoint, got (52.5, 13.4)",
        ),
        (
            lambda: Location("WH-1", "warehouse", None, ["ship"], active="no"),  # type: ignore[arg-type]
            InvalidLocation,
            "active must be True or False, got 'no'",
        ),
        (
            lambda: DraftLimits(max_lines=0),
            InvalidArgument,
            "max_lines must be an int >= 1, got 0",
        ),
        (
            lambda: ReturnPolicy(window=30),  # type: ignore[arg-type]
            InvalidReturn,
            "the return window must be a timedelta of 0 or more, got 30",
        ),
        (
            lambda: ReturnPolicy(non_returnable_skus="GIFT-CARD"),
            InvalidReturn,
            "non_returnable_skus must be a collection of SKUs, got 'GIFT-CARD'",
        ),
        (
            lambda: LowestCostPolicy(same_day_radius_km=math.nan),
            InvalidSourcingConfig,
            "same_day_radius_km must be a finite number >= 0, got nan",
        ),
        (
            lambda: LowestCostPolicy([]),  # type: ignore[arg-type]
            InvalidSourcingConfig,
            "cost_model must be a CostModel, got []",
        ),
        (
            lambda: NearestPolicy(allow_ship_to_store="yes"),  # type: ignore[arg-type]
            InvalidSourcingConfig,
            "allow_ship_to_store must be True or False, got 'yes'",
        ),
        (
            lambda: CostModel(location_costs={"store": -1}),
            InvalidSourcingConfig,
            "location_costs must map location ids or kinds to numbers >= 0",
        ),
        (
            lambda: Route(NearestPolicy(), channels=["web", " "]),
            InvalidSourcingConfig,
            "channels must be non-empty strings, got ['web', ' ']",
        ),
        (
            lambda: Route(NearestPolicy(), methods="ship"),
            InvalidSourcingConfig,
            "methods must be a collection, got 'ship'",
        ),
        (
            lambda: RoutedPolicy([], fallback="nearest"),  # type: ignore[arg-type]
            InvalidSourcingConfig,
            "fallback must have the method plan(), got 'nearest'",
        ),
    ],
)
def test_a_wrong_setting_is_named_with_its_value(
    build: Callable[[], object], error: type[OmsError], message: str
) -> None:
    """The pillar's own error, with the field and the value."""
    with pytest.raises(error) as refused:
        build()
    assert message in str(refused.value)
