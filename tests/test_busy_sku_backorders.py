"""A SKU with many backorders (a launch's pre-orders): the index of their order ids, kept
from one item version to the next, must answer as a scan of the backorders does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from omscore.ids import ChannelId, LineId, LocationId, OrderId, Sku
from omscore.inventory import ChannelPool, InventoryItem, ItemChange
from omscore.inventory.item import _INDEXED_FROM, _BackorderIndex

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOCATION = LocationId("WH")
POOL = ChannelPool(ChannelId("web"), (LOCATION,))
ORDERS = [OrderId(f"O-{n}") for n in range(80)]
LINES = [LineId("1"), LineId("2")]


class BusyBackorders(RuleBasedStateMachine):
    """Pre-orders, releases and receipts on a SKU that starts with more backorders than
    the index's threshold."""

    def __init__(self) -> None:
        super().__init__()
        self.item = InventoryItem(Sku("LAUNCH"))
        self.minutes = 0

    def apply(self, change: ItemChange) -> None:
        self.item = change.item

    def since(self) -> datetime:
        self.minutes += 1
        return T0 + timedelta(minutes=self.minutes)

    @initialize()
    def a_launch_with_pre_orders(self) -> None:
        for order in ORDERS[: _INDEXED_FROM + 4]:
            self.pre_order(order, LINES[0], 1)

    @rule(order=st.sampled_from(ORDERS), line=st.sampled_from(LINES), units=st.integers(1, 3))
    def pre_order(self, order: OrderId, line: LineId, units: int) -> None:
        self.apply(self.item.hold_for_line(order, line, units, POOL, T0, since=self.since()))

    @rule(order=st.sampled_from(ORDERS), line=st.sampled_from(LINES), units=st.integers(1, 3))
    def release_line(self, order: OrderId, line: LineId, units: int) -> None:
        self.apply(self.item.release_line(order, line, units, T0))

    @rule(order=st.sampled_from(ORDERS))
    def release_order(self, order: OrderId) -> None:
        self.apply(self.item.release_order(order, T0)[0])

    @rule(units=st.integers(1, 12))
    def stock_arrives(self, units: int) -> None:
        self.apply(self.item.receive(LOCATION, units, "delivery", T0))
        self.apply(self.item.serve_backorders(lambda _: POOL, lambda _: True, T0))

    @invariant()
    def the_index_agrees_with_a_scan(self) -> None:
        backorders = self.item.backorders
        assert _BackorderIndex.of(self.item.sku, backorders).keys == [
            b.order_id for b in backorders
        ]
        lines = [(b.order_id, b.line_id) for b in backorders]
        assert len(lines) == len(set(lines))  # one backorder per line at most
        for order in ORDERS[:16]:
            for line in LINES:
                assert self.item.backordered_for(order, line) == sum(
                    b.quantity for b in backorders if b.order_id == order and b.line_id == line
                )

    @invariant()
    def reserved_units_are_the_holds(self) -> None:
        assert self.item.discrepancies() == []


TestBusyBackorders = BusyBackorders.TestCase
