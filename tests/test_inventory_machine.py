"""A Hypothesis state machine over stock commands, checked against a naive recomputation.

Rules: receive, adjust, count, set safety stock, reserve, release, expire (by the clock),
transfer out and in, place (to ship or to collect) and cancel orders, deactivate and
reactivate a location. After every step: ``0 <= allocated + reserved <= on_hand``
everywhere, reserved equals the holds, ATP is never negative, the ledger replays to the
levels, each channel's ATP equals a recomputation from the levels and the pool rules, every
open unit of an order is held or backordered, and an inactive location holds nothing but
the pickups waiting there.
"""

from __future__ import annotations

import math
from datetime import timedelta

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from omscore import OMS, Delivery, LocationKind, OmsError
from omscore.adapters.memory import MemoryStore
from omscore.ids import Sku
from omscore.inventory import replay
from omscore.testing import ManualClock, SequentialIds

from .conftest import draft, store_location, warehouse

SKUS = ("A", "B")
LOCATIONS = ("WH-1", "WH-2", "ST-1")


@attrs.frozen
class PoolRule:
    """A channel's pool as the machine configures it: locations by id or kind (None: any),
    a buffer of units and a buffer percent."""

    ids: frozenset[str] | None
    kinds: frozenset[str] | None
    buffer: int
    percent: int


CHANNELS = {
    "web": PoolRule(None, None, 0, 0),
    "marketplace": PoolRule(None, frozenset({"warehouse"}), 2, 0),
    "app": PoolRule(frozenset({"ST-1", "WH-2"}), None, 0, 25),
}


class StockMachine(RuleBasedStateMachine):
    """Random stock commands against one OMS, with a tally of what was accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.oms = OMS(MemoryStore(), clock=self.clock, ids=SequentialIds())
        self.oms.add_location(warehouse("WH-1", priority=1))
        self.oms.add_location(warehouse("WH-2", priority=2))
        self.oms.add_location(store_location("ST-1"))
        self.oms.configure_channel("marketplace", kinds=[LocationKind.WAREHOUSE], buffer=2)
        self.oms.configure_channel("app", location_ids=["ST-1", "WH-2"], buffer_percent=25)
        self.inactive: set[str] = set()
        self.keys = 0
        self.orders: list[str] = []
        self.pickups: set[str] = set()  # orders collected at ST-1
        self.transfers: list[tuple[str, str]] = []

    def attempt(self, call: object, *args: object, **kwargs: object) -> object:
        """Run a command; a refused one must leave stock, ledger and outbox alone."""
        before = (
            [self.oms.inventory(s) for s in SKUS],
            len(self.oms.ledger()),
            len(self.oms.events()),
        )
        try:
            return call(*args, **kwargs)  # type: ignore[operator]
        except OmsError:
            after = (
                [self.oms.inventory(s) for s in SKUS],
                len(self.oms.ledger()),
                len(self.oms.events()),
            )
            assert after == before
            return None

    @rule(loc=st.sampled_from(LOCATIONS), sku=st.sampled_from(SKUS), n=st.integers(1, 12))
    def receive(self, loc: str, sku: str, n: int) -> None:
        self.oms.receive(loc, sku, n)

    @rule(loc=st.sampled_from(LOCATIONS), sku=st.sampled_from(SKUS), delta=st.integers(-8, 8))
    def adjust(self, loc: str, sku: str, delta: int) -> None:
        self.attempt(self.oms.adjust, loc, sku, delta, "test")

    @rule(loc=st.sampled_from(LOCATIONS), sku=st.sampled_from(SKUS), n=st.integers(0, 15))
    def count(self, loc: str, sku: str, n: int) -> None:
        self.attempt(self.oms.count, loc, sku, n)

    @rule(loc=st.sampled_from(LOCATIONS), sku=st.sampled_from(SKUS), n=st.integers(0, 4))
    def safety_stock(self, loc: str, sku: str, n: int) -> None:
        self.oms.set_safety_stock(loc, sku, n)

    @rule(
        sku=st.sampled_from(SKUS),
        n=st.integers(1, 6),
        channel=st.sampled_from(list(CHANNELS)),
        minutes=st.integers(1, 30),
    )
    def reserve(self, sku: str, n: int, channel: str, minutes: int) -> None:
        self.keys += 1
        self.attempt(
            self.oms.reserve,
            sku,
            n,
            channel=channel,
            ttl=timedelta(minutes=minutes),
            key=f"cart-{self.keys}",
        )

    @rule(k=st.integers(1, 40))
    def release(self, k: int) -> None:
        self.attempt(self.oms.release_reservation, f"cart-{k}")

    @rule(minutes=st.integers(1, 20))
    def time_passes_and_reservations_expire(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        self.oms.expire_reservations()

    @rule(
        sku=st.sampled_from(SKUS),
        a=st.sampled_from(LOCATIONS),
        b=st.sampled_from(LOCATIONS),
        n=st.integers(1, 6),
    )
    def transfer(self, sku: str, a: str, b: str, n: int) -> None:
        result = self.attempt(self.oms.transfer, sku, a, b, n)
        if result is not None:
            self.transfers.append((sku, result.id))  # type: ignore[attr-defined]

    @rule(data=st.data())
    def transfer_arrives(self, data: st.DataObject) -> None:
        if self.transfers:
            sku, transfer_id = self.transfers.pop(
                data.draw(st.integers(0, len(self.transfers) - 1))
            )
            self.oms.receive_transfer(sku, transfer_id)

    @rule(sku=st.sampled_from(SKUS), n=st.integers(1, 8), channel=st.sampled_from(list(CHANNELS)))
    def place_order(self, sku: str, n: int, channel: str) -> None:
        self.orders.append(self.oms.place_order(draft((sku, n), channel=channel)).id)

    @rule(sku=st.sampled_from(SKUS), n=st.integers(1, 4))
    def place_pickup_order(self, sku: str, n: int) -> None:
        pickup = draft((sku, n), delivery=Delivery.pickup("ST-1"))
        order = self.attempt(self.oms.place_order, pickup)  # refused while ST-1 is inactive
        if order is not None:
            self.orders.append(order.id)  # type: ignore[attr-defined]
            self.pickups.add(order.id)  # type: ignore[attr-defined]

    @rule(data=st.data())
    def cancel_order(self, data: st.DataObject) -> None:
        if self.orders:
            order_id = self.orders.pop(data.draw(st.integers(0, len(self.orders) - 1)))
            self.oms.cancel(order_id)

    @rule(loc=st.sampled_from(LOCATIONS))
    def toggle_location(self, loc: str) -> None:
        active = loc in self.inactive
        self.oms.update_location(loc, active=active)
        (self.inactive.discard if active else self.inactive.add)(loc)

    @invariant()
    def levels_are_sound(self) -> None:
        for sku in SKUS:
            item = self.oms.inventory(sku)
            for level in item.levels.values():
                assert 0 <= level.allocated + level.reserved <= level.on_hand
                assert level.available >= 0
            assert item.discrepancies() == []

    @invariant()
    def every_open_unit_is_held_or_backordered(self) -> None:
        items = {sku: self.oms.inventory(sku) for sku in SKUS}
        for order_id in self.orders:
            for line in self.oms.get_order(order_id).lines:
                item = items[line.sku]
                waiting = item.held_for(order_id, line.id) + item.backordered_for(order_id, line.id)
                assert waiting == line.open

    @invariant()
    def an_inactive_location_holds_only_pickups_waiting_there(self) -> None:
        for sku in SKUS:
            for hold in self.oms.inventory(sku).holds:
                if hold.location_id in self.inactive:
                    assert not hold.is_checkout, hold
                    assert hold.key in self.pickups, hold

    @invariant()
    def the_ledger_replays_to_the_levels(self) -> None:
        replayed = replay(self.oms.ledger())
        for sku in SKUS:
            for loc, level in self.oms.inventory(sku).levels.items():
                assert replayed.get((loc, Sku(sku)), (0, 0)) == (level.on_hand, level.allocated)

    @invariant()
    def channel_atp_matches_a_naive_recomputation(self) -> None:
        kinds = {"WH-1": "warehouse", "WH-2": "warehouse", "ST-1": "store"}
        for sku in SKUS:
            item = self.oms.inventory(sku)
            for channel, rule_ in CHANNELS.items():
                pool = [
                    loc
                    for loc in LOCATIONS
                    if loc not in self.inactive
                    and (rule_.ids is None or loc in rule_.ids)
                    and (rule_.kinds is None or kinds[loc] in rule_.kinds)
                ]
                total = 0
                for loc in pool:
                    level = item.level(loc)
                    total += max(
                        0, level.on_hand - level.allocated - level.reserved - level.safety_stock
                    )
                held_back = max(rule_.buffer, math.ceil(total * rule_.percent / 100))
                expected = max(0, total - held_back)
                assert self.oms.available(sku, channel=channel) == expected
                assert expected >= 0


TestStockMachine = StockMachine.TestCase
