"""A Hypothesis state machine over place / hold / release / edit / cancel, through the OMS.

After every step: each line's buckets sum to its quantity, every line's open units are
held or backordered exactly, stock is never over-reserved, and a refused command changed
neither the order nor the outbox.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)

from omscore import OMS, LineDraft, OmsError
from omscore.adapters.memory import MemoryStore
from omscore.testing import ManualClock, SequentialIds

from .conftest import draft, eur, store_location, warehouse

SKUS = ["A", "B", "C"]
HOLD_KINDS = ["payment", "fraud", "manual"]


class OrderLifecycle(RuleBasedStateMachine):
    """Random command sequences against one OMS."""

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.oms = OMS(MemoryStore(), clock=ManualClock(), ids=SequentialIds())
        self.oms.add_location(warehouse("WH-1"))
        self.oms.add_location(store_location("ST-1"))
        for sku in SKUS:
            self.oms.receive("WH-1", sku, 6)
            self.oms.receive("ST-1", sku, 3)

    def attempt(self, order_id: str, command: str, *args: object) -> None:
        """Run a command; if refused, check it changed nothing."""
        before, events = self.oms.get_order(order_id), len(self.oms.events())
        try:
            getattr(self.oms, command)(order_id, *args)
        except OmsError:
            assert self.oms.get_order(order_id) == before
            assert len(self.oms.events()) == events

    @rule(
        target=orders,
        lines=st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 8)), min_size=1, max_size=3),
    )
    def place(self, lines: list[tuple[str, int]]) -> str:
        return self.oms.place_order(draft(*lines)).id

    @rule(order_id=orders, kind=st.sampled_from(HOLD_KINDS))
    def hold(self, order_id: str, kind: str) -> None:
        self.attempt(order_id, "hold", kind, "test")

    @rule(order_id=orders, kind=st.sampled_from(HOLD_KINDS))
    def release(self, order_id: str, kind: str) -> None:
        self.attempt(order_id, "release", kind)

    @rule(order_id=orders, index=st.integers(0, 3), quantity=st.integers(-1, 10))
    def change_quantity(self, order_id: str, index: int, quantity: int) -> None:
        lines = self.oms.get_order(order_id).lines
        self.attempt(order_id, "change_quantity", lines[index % len(lines)].id, quantity)

    @rule(order_id=orders, sku=st.sampled_from(SKUS), quantity=st.integers(1, 5))
    def add_line(self, order_id: str, sku: str, quantity: int) -> None:
        self.attempt(order_id, "add_line", LineDraft(sku, quantity, eur("2.00")))

    @rule(order_id=orders, index=st.integers(0, 3))
    def remove_line(self, order_id: str, index: int) -> None:
        lines = self.oms.get_order(order_id).lines
        self.attempt(order_id, "remove_line", lines[index % len(lines)].id)

    @rule(order_id=orders, index=st.integers(0, 3), units=st.integers(0, 9))
    def cancel_some(self, order_id: str, index: int, units: int) -> None:
        lines = self.oms.get_order(order_id).lines
        self.attempt(order_id, "cancel", {lines[index % len(lines)].id: units}, "test")

    @rule(order_id=consumes(orders))
    def cancel_all(self, order_id: str) -> None:
        self.attempt(order_id, "cancel", None, "test")

    @rule(sku=st.sampled_from(SKUS), quantity=st.integers(1, 5))
    def receive(self, sku: str, quantity: int) -> None:
        self.oms.receive("ST-1", sku, quantity)

    @invariant()
    def buckets_are_conserved_and_holds_match_open_units(self) -> None:
        for sku in SKUS:
            item = self.oms.inventory(sku)
            for level in item.levels.values():
                assert 0 <= level.allocated + level.reserved <= level.on_hand
        for record in self.oms.store.outbox():
            order_id = getattr(record.event, "order_id", None)
            if order_id is None:
                continue
            order = self.oms.get_order(order_id)
            for line in order.lines:
                total = line.open + line.allocated + line.shipped + line.delivered + line.cancelled
                assert total == line.quantity
                assert min(line.open, line.allocated, line.cancelled) >= 0
                item = self.oms.inventory(line.sku)
                waiting = item.held_for(order.id, line.id) + item.backordered_for(order.id, line.id)
                assert waiting == line.open

    @invariant()
    def the_ledger_agrees_with_the_levels(self) -> None:
        assert self.oms.reconcile() == []


TestOrderLifecycle = OrderLifecycle.TestCase
