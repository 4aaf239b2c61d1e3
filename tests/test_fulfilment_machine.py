"""A state machine over the whole order-to-door flow, with the books checked after each step.

Actors: stock arrives, customers order (ship or click & collect) and sometimes cancel,
sourcing allocates, locations do the next step of a fulfilment order (or reject it), time
passes and pickups expire, and now and then somebody sends a command out of turn. A refused
command must change nothing; after every step ``check_books`` holds (daily capacity counts
included: caps are set, changed and lifted at any time) and every line's buckets sum to
its quantity.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from omscore import OMS, Delivery, FulfillmentStatus, OmsError
from omscore.adapters.memory import MemoryStore
from omscore.ids import LineId
from omscore.orders import DeliveryMethod, FulfillmentOrder
from omscore.orders.model import FULFILLMENT_TRANSITIONS
from omscore.sourcing import (
    DeepestStockPolicy,
    FewestShipmentsPolicy,
    LowestCostPolicy,
    PriorityPolicy,
    SourcingPolicy,
)
from omscore.testing import ManualClock, SequentialIds
from omscore.testing.invariants import check_books

from .conftest import draft, store_location, warehouse

SKUS = ("A", "B")
LOCATIONS = ("WH-1", "WH-2", "ST-1")
POLICIES: dict[str, SourcingPolicy] = {
    "cost": LowestCostPolicy(),
    "priority": PriorityPolicy(),
    "deepest stock": DeepestStockPolicy(),
    "fewest": FewestShipmentsPolicy(),
    "cost, ship to store": LowestCostPolicy(allow_ship_to_store=True),
}
NEXT_STEP = {
    FulfillmentStatus.OPEN: "accept_fulfillment",
    FulfillmentStatus.ACCEPTED: "pick",
    FulfillmentStatus.PICKED: "pack",
    FulfillmentStatus.PACKED: "ship",
    FulfillmentStatus.SHIPPED: "deliver",
}
PICKUP_STEP = {
    FulfillmentStatus.OPEN: "ready_for_pickup",
    FulfillmentStatus.IN_TRANSIT: "ready_for_pickup",
    FulfillmentStatus.READY_FOR_PICKUP: "collect",
}
COMMANDS = {"accept": "accept_fulfillment", "reject": "reject_fulfillment"}


class Fulfilment(RuleBasedStateMachine):
    """Random flows against one OMS."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.oms = OMS(
            MemoryStore(),
            clock=self.clock,
            ids=SequentialIds(),
            sourcing=LowestCostPolicy(),
            pickup_expiry=timedelta(hours=5),
            max_rejections=2,
        )
        self.oms.add_location(warehouse("WH-1", priority=1))
        self.oms.add_location(warehouse("WH-2", priority=2))
        self.oms.add_location(store_location("ST-1"))
        self.oms.update_location("ST-1", daily_capacity=2)
        for loc in LOCATIONS:
            for sku in SKUS:
                self.oms.receive(loc, sku, 3)
        self.orders: list[str] = []

    def attempt(self, command: str, *args: object, **kwargs: object) -> None:
        """Run a command; a refused one leaves every order, the ledger and the outbox."""
        before = (
            [self.oms.get_order(o) for o in self.orders],
            len(self.oms.events()),
            len(self.oms.ledger()),
        )
        try:
            getattr(self.oms, command)(*args, **kwargs)
            event(f"accepted: {command}")
        except OmsError:
            after = (
                [self.oms.get_order(o) for o in self.orders],
                len(self.oms.events()),
                len(self.oms.ledger()),
            )
            assert after == before

    def fulfillment_orders(self) -> list[FulfillmentOrder]:
        return [f for o in self.orders for f in self.oms.get_order(o).fulfillments]

    @rule(loc=st.sampled_from(LOCATIONS), sku=st.sampled_from(SKUS), n=st.integers(1, 6))
    def stock_arrives(self, loc: str, sku: str, n: int) -> None:
        self.oms.receive(loc, sku, n)

    @rule(
        lines=st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 3)), min_size=1, max_size=2),
        pickup=st.booleans(),
        allocate_now=st.booleans(),
    )
    def customer_orders(
        self, lines: list[tuple[str, int]], pickup: bool, allocate_now: bool
    ) -> None:
        delivery = Delivery.pickup("ST-1") if pickup else None
        order = self.oms.place_order(draft(*lines, delivery=delivery))
        self.orders.append(order.id)
        if allocate_now:
            self.attempt("allocate", order.id)

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), policy=st.sampled_from(sorted(POLICIES)))
    def sourcing_runs(self, data: st.DataObject, policy: str) -> None:
        self.oms.sourcing = POLICIES[policy]
        self.attempt("allocate", data.draw(st.sampled_from(self.orders)))

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), policy=st.sampled_from(sorted(POLICIES)), to=st.sampled_from(LOCATIONS))
    def sourcing_runs_again(self, data: st.DataObject, policy: str, to: str) -> None:
        """An order is sourced again (on any policy), or one of its fulfilment orders is
        moved by hand, whatever its status: a refusal must change nothing."""
        self.oms.sourcing = POLICIES[policy]
        found = self.fulfillment_orders()
        by_hand: bool = data.draw(st.booleans())
        if found and by_hand:
            self.attempt("move_fulfillment", data.draw(st.sampled_from(found)).id, to)
        else:
            self.attempt("reallocate", data.draw(st.sampled_from(self.orders)))

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), shortcut=st.booleans(), reject=st.integers(0, 5))
    def location_works(self, data: st.DataObject, shortcut: bool, reject: int) -> None:
        moving = [
            f for f in self.fulfillment_orders() if f.status in NEXT_STEP or f.status in PICKUP_STEP
        ]
        if not moving:
            return
        f = data.draw(st.sampled_from(moving))
        if reject == 0 and f.status is not FulfillmentStatus.SHIPPED:
            self.attempt("reject_fulfillment", f.id)
        elif f.method is DeliveryMethod.PICKUP:
            parcel = f.location_id != "ST-1"  # shipped to the store: sent, or readied at once
            if parcel and not shortcut and f.status is FulfillmentStatus.OPEN:
                self.attempt("send_to_store", f.id)
            else:
                self.attempt(PICKUP_STEP.get(f.status, "collect"), f.id)
        elif shortcut and f.status is not FulfillmentStatus.SHIPPED:
            self.attempt("ship", f.id)
        else:
            self.attempt(NEXT_STEP[f.status], f.id)

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), units=st.integers(0, 3))
    def location_ships_part(self, data: st.DataObject, units: int) -> None:
        """Part of a fulfilment order leaves now (``units`` may be all, none or too many:
        then it is refused)."""
        waiting = [
            f
            for f in self.fulfillment_orders()
            if f.status in NEXT_STEP and f.status is not FulfillmentStatus.SHIPPED
        ]
        if waiting:
            f = data.draw(st.sampled_from(waiting))
            line = data.draw(st.sampled_from(f.lines))
            self.attempt_ship_part(f.id, {line.line_id: units})

    def attempt_ship_part(self, fulfillment_id: str, units: dict[LineId, int]) -> None:
        before = len(self.oms.get_order_by_fulfillment(fulfillment_id).fulfillments)
        self.attempt("ship", fulfillment_id, units=units)
        after = self.oms.get_order_by_fulfillment(fulfillment_id)
        if len(after.fulfillments) > before:
            event("a part shipped")
            assert after.fulfillments[-1].status is FulfillmentStatus.SHIPPED

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), units=st.integers(0, 3))
    def store_readies_part(self, data: st.DataObject, units: int) -> None:
        """Part of a pickup is ready while the rest is still worked (``units`` may be all,
        none or too many, and the pickup a parcel on its way: then it is refused)."""
        pickups = [
            f
            for f in self.fulfillment_orders()
            if f.method is DeliveryMethod.PICKUP
            and f.status in PICKUP_STEP
            and f.status is not FulfillmentStatus.READY_FOR_PICKUP
        ]
        if not pickups:
            return
        f = data.draw(st.sampled_from(pickups))
        line = data.draw(st.sampled_from(f.lines))
        before = len(self.oms.get_order_by_fulfillment(f.id).fulfillments)
        self.attempt("ready_for_pickup", f.id, units={line.line_id: units})
        after = self.oms.get_order_by_fulfillment(f.id)
        if len(after.fulfillments) > before:
            event("a part of a pickup ready")
            assert after.fulfillments[-1].status is FulfillmentStatus.READY_FOR_PICKUP
            assert after.fulfillment(f.id).status is f.status

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), units=st.integers(0, 3), refuse_rest=st.booleans())
    def customer_collects_part(self, data: st.DataObject, units: int, refuse_rest: bool) -> None:
        """The customer takes part of a ready pickup (``units`` may be all, none or too
        many: then it is refused), and may refuse the rest at the counter."""
        ready = [
            f for f in self.fulfillment_orders() if f.status is FulfillmentStatus.READY_FOR_PICKUP
        ]
        if not ready:
            return
        f = data.draw(st.sampled_from(ready))
        line = data.draw(st.sampled_from(f.lines))
        order = self.oms.get_order_by_fulfillment(f.id)
        self.attempt("collect", f.id, units={line.line_id: units})
        after = self.oms.get_order(order.id)
        if len(after.fulfillments) == len(order.fulfillments):
            return
        event("a part of a pickup collected")
        assert after.fulfillments[-1].status is FulfillmentStatus.COLLECTED
        rest = after.fulfillment(f.id)
        assert (rest.status, rest.since) == (f.status, f.since)
        if refuse_rest:
            self.attempt(
                "cancel", order.id, None, reason="refused at the counter", fulfillment_id=f.id
            )
            refused = self.oms.get_order(order.id)
            assert refused.fulfillment(f.id).status is FulfillmentStatus.CANCELLED
            others = [x for x in after.fulfillments if x.id != f.id]
            assert [x for x in refused.fulfillments if x.id != f.id] == others

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), units=st.integers(0, 3))
    def location_misses_units(self, data: st.DataObject, units: int) -> None:
        """A location finds fewer units than it was given (``units`` may be 0 or more than
        it has: then the short pick is refused)."""
        unpacked = [
            f
            for f in self.fulfillment_orders()
            if f.status
            in (FulfillmentStatus.OPEN, FulfillmentStatus.ACCEPTED, FulfillmentStatus.PICKED)
        ]
        if unpacked:
            f = data.draw(st.sampled_from(unpacked))
            line = data.draw(st.sampled_from(f.lines))
            self.attempt("short_pick", f.id, {line.line_id: units})

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), everything=st.integers(0, 3), units=st.integers(1, 3))
    def customer_cancels(self, data: st.DataObject, everything: int, units: int) -> None:
        order = self.oms.get_order(data.draw(st.sampled_from(self.orders)))
        if everything == 0:
            self.attempt("cancel", order.id)
        else:
            self.attempt("cancel", order.id, {order.lines[-1].id: units})

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def somebody_acts_out_of_turn(self, data: st.DataObject) -> None:
        found = self.fulfillment_orders()
        if found:
            command = data.draw(st.sampled_from(sorted(FULFILLMENT_TRANSITIONS)))
            if command not in ("expire", "withdraw"):  # the OMS's own steps, not commands
                self.attempt(COMMANDS.get(command, command), data.draw(st.sampled_from(found)).id)
        self.attempt("release", data.draw(st.sampled_from(self.orders)), "sourcing")

    @rule(loc=st.sampled_from(LOCATIONS), cap=st.none() | st.integers(0, 3))
    def a_location_sets_its_daily_capacity(self, loc: str, cap: int | None) -> None:
        """A cap set, changed or lifted at any time of the day, with work already taken."""
        self.oms.update_location(loc, daily_capacity=cap)

    @rule(hours=st.integers(1, 4))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))
        if self.oms.expire_pickups():
            event("accepted: expire_pickups")

    @invariant()
    def the_books_agree(self) -> None:
        check_books(self.oms)
        for order_id in self.orders:
            for line in self.oms.get_order(order_id).lines:
                assert min(line.open, line.allocated, line.shipped, line.delivered) >= 0
                assert (
                    line.open + line.allocated + line.shipped + line.delivered + line.cancelled
                ) == line.quantity

    @invariant()
    def a_ready_pickup_is_at_its_store(self) -> None:
        for order_id in self.orders:
            order = self.oms.get_order(order_id)
            for f in order.fulfillments:
                if f.status is FulfillmentStatus.READY_FOR_PICKUP:
                    assert f.stock_location == order.delivery.pickup_location
                    if f.location_id != order.delivery.pickup_location:
                        event("ship-to-store parcel ready at the store")
                if f.in_transit:
                    assert f.stock_location == order.delivery.pickup_location != f.location_id
                    event("ship-to-store parcel in transit")

    @invariant()
    def units_in_transit_are_never_cancelled(self) -> None:
        """An order's lines keep allocated at least what its parcels in transit carry."""
        for order_id in self.orders:
            order = self.oms.get_order(order_id)
            for line in order.lines:
                moving = sum(f.quantity_of(line.id) for f in order.fulfillments if f.in_transit)
                assert line.allocated >= moving


TestFulfilment = Fulfilment.TestCase
TestFulfilment.settings = settings(settings.default, stateful_step_count=60)
