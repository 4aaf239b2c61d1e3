"""A busy SKU: the index of its holds (kept from one item version to the next) must answer
every question about them exactly as a scan of the holds does, whatever the commands."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from omscore.errors import OmsError
from omscore.ids import ChannelId, LineId, LocationId, OrderId, Sku
from omscore.inventory import ChannelPool, InventoryItem, ItemChange
from omscore.inventory import item as item_module
from omscore.inventory.item import _INDEXED_FROM, _HoldIndex

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOCATIONS = (LocationId("A"), LocationId("B"))
POOL = ChannelPool(ChannelId("web"), LOCATIONS)
ORDERS = [OrderId(f"O-{n}") for n in range(60)]
CARTS = [f"cart-{n}" for n in range(8)]
LINES = [LineId("1"), LineId("2")]


def scanned_order_holds(item: InventoryItem, order_id: str) -> dict[LocationId, int]:
    held: dict[LocationId, int] = {}
    for h in item.holds:
        if h.key == order_id and h.line_id is not None:
            held[h.location_id] = held.get(h.location_id, 0) + h.quantity
    return held


class BusySku(RuleBasedStateMachine):
    """Order holds, checkout reservations, releases, allocations and take-overs on a SKU
    that starts with more holds than the index's threshold."""

    def __init__(self) -> None:
        super().__init__()
        self.item = InventoryItem(Sku("HOT"))
        self.at = T0

    def apply(self, change: ItemChange) -> None:
        self.item = change.item

    @initialize()
    def a_busy_sku(self) -> None:
        for location in LOCATIONS:
            self.apply(self.item.receive(location, 10_000, "stock", self.at))
        for order_id in ORDERS[: _INDEXED_FROM + 8]:
            self.apply(self.item.hold_for_line(order_id, LINES[0], 1, POOL, self.at))

    @rule(order=st.sampled_from(ORDERS), line=st.sampled_from(LINES), units=st.integers(1, 3))
    def hold(self, order: OrderId, line: LineId, units: int) -> None:
        self.apply(self.item.hold_for_line(order, line, units, POOL, self.at))

    @rule(order=st.sampled_from(ORDERS), line=st.sampled_from(LINES), units=st.integers(1, 3))
    def release_line(self, order: OrderId, line: LineId, units: int) -> None:
        before = {other: self.item.held_for(order, other) for other in LINES}
        self.apply(self.item.release_line(order, line, units, self.at))
        released = min(units, before[line])
        assert {other: self.item.held_for(order, other) for other in LINES} == {
            other: held - released * (other == line) for other, held in before.items()
        }, "only the line's own holds are released"

    @rule(order=st.sampled_from(ORDERS), allocate=st.booleans())
    def allocate_order(self, order: OrderId, allocate: bool) -> None:
        held = scanned_order_holds(self.item, order)
        allocations = [(loc, units, f"F-{order}") for loc, units in held.items() if allocate]
        self.apply(self.item.allocate_order(order, allocations, self.at))

    @rule(cart=st.sampled_from(CARTS), units=st.integers(1, 4))
    def reserve(self, cart: str, units: int) -> None:
        if self.item.checkout_holds(cart):
            return
        expires = self.at + timedelta(minutes=units)
        self.apply(self.item.reserve(cart, units, POOL, expires, self.at))

    @rule(cart=st.sampled_from(CARTS))
    def release_reservation(self, cart: str) -> None:
        if self.item.checkout_holds(cart):
            self.apply(self.item.release_reservation(cart, self.at))

    @rule(cart=st.sampled_from(CARTS), minutes=st.integers(1, 30))
    def extend(self, cart: str, minutes: int) -> None:
        if self.item.checkout_holds(cart):
            self.apply(self.item.extend(cart, self.at + timedelta(minutes=minutes), self.at))

    @rule(cart=st.sampled_from(CARTS), order=st.sampled_from(ORDERS), units=st.integers(1, 4))
    def take_over(self, cart: str, order: OrderId, units: int) -> None:
        if not self.item.checkout_holds(cart):
            return
        try:
            change, _ = self.item.take_over(cart, order, [(LINES[1], units)], self.at)
        except OmsError:
            return
        self.apply(change)

    @rule(minutes=st.integers(0, 30))
    def expire(self, minutes: int) -> None:
        now = self.at + timedelta(minutes=minutes)
        holds = self.item.holds
        due = {h.key for h in holds if h.line_id is None and h.expires_at and h.expires_at <= now}
        change, count = self.item.expire(now)
        assert count == len(due)
        assert change.item.holds == tuple(h for h in holds if h.key not in due or h.line_id)
        assert [(e.key, e.quantity) for e in change.events] == [  # type: ignore[attr-defined]
            (key, sum(h.quantity for h in holds if h.key == key and h.line_id is None))
            for key in sorted(due)
        ]
        self.apply(change)

    @invariant()
    def the_index_agrees_with_a_scan(self) -> None:
        holds = self.item.holds
        index = _HoldIndex.of(self.item.sku, holds)
        assert index.keys == [h.key for h in holds]
        assert index.checkouts == [h.line_id is None for h in holds]
        assert index.expiries == [h.expires_at for h in holds]
        assert index.count == sum(h.line_id is None for h in holds)
        assert index.counts.as_dict() == Counter(h.key for h in holds)
        assert item_module._UNINDEXED.as_dict() == {}  # the shared placeholder stays empty
        for order in ORDERS[:12]:
            assert self.item.order_holds_by_location(order) == scanned_order_holds(self.item, order)
            for line in LINES:
                assert self.item.held_for(order, line) == sum(
                    h.quantity for h in holds if h.key == order and h.line_id == line
                )
        for cart in CARTS:
            assert self.item.checkout_holds(cart) == tuple(
                h for h in holds if h.key == cart and h.line_id is None
            )
        checkout = [h for h in holds if h.line_id is None]
        assert self.item.has_checkout_holds == bool(checkout)
        assert self.item.reservation_keys == frozenset(h.key for h in checkout)
        expiries = [h.expires_at for h in checkout if h.expires_at is not None]
        assert self.item.next_expiry == (min(expiries) if expiries else None)

    @invariant()
    def reserved_units_are_the_holds(self) -> None:
        assert self.item.discrepancies() == []


TestBusySku = BusySku.TestCase


class BusySkuFoldingEveryCommand(BusySku):
    """The same, with the per-key counts folded into a new base after every change (a
    long-lived busy SKU does that every ``_FOLD_AFTER`` changes)."""

    def __init__(self) -> None:
        super().__init__()
        self.fold_after = item_module._FOLD_AFTER
        item_module._FOLD_AFTER = 0

    def teardown(self) -> None:
        item_module._FOLD_AFTER = self.fold_after

    @invariant()
    def a_folded_base_keeps_no_key_without_holds(self) -> None:
        counts = _HoldIndex.of(self.item.sku, self.item.holds).counts
        assert 0 not in counts.base.values()


TestBusySkuFoldingEveryCommand = BusySkuFoldingEveryCommand.TestCase


def test_a_busy_sku_keeps_the_index_of_its_holds_between_versions() -> None:
    """The version a command makes starts with its index; a new tuple of holds (read back
    from a store, say) gets one built on first use."""
    item = InventoryItem(Sku("HOT"))
    item = item.receive(LOCATIONS[0], 1_000, "stock", T0).item
    for order_id in ORDERS[:_INDEXED_FROM]:
        item = item.hold_for_line(order_id, LINES[0], 1, POOL, T0).item
    kept = _HoldIndex.of(item.sku, item.holds)
    assert _HoldIndex.of(item.sku, item.holds) is kept
    assert kept.keys == [h.key for h in item.holds]
    copy = (*item.holds[:-1], item.holds[-1])
    assert copy is not item.holds
    rebuilt = _HoldIndex.of(item.sku, copy)
    assert rebuilt is not kept
    assert rebuilt.keys == kept.keys
