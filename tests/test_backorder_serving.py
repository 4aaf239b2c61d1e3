"""Stock arriving for many waiting backorders: served oldest first, in one pass.

One receipt can turn hundreds of backorders into holds; the command's working copy then
starts indexing its holds part way through, and takes the served units off the
backorders at the end. These properties hold it to the plain rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from omscore.events import BackorderServed
from omscore.ids import ChannelId, LineId, LocationId, OrderId, Sku
from omscore.inventory import ChannelPool, InventoryItem
from omscore.inventory.item import _INDEXED_FROM, _HoldIndex

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOCATIONS = (LocationId("A"), LocationId("B"))
POOL = ChannelPool(ChannelId("web"), LOCATIONS)


def waiting(item: InventoryItem) -> dict[tuple[OrderId, LineId], int]:
    return {(b.order_id, b.line_id): b.quantity for b in item.backorders}


@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.sampled_from(["1", "2"]), st.integers(1, 3)),
        min_size=1,
        max_size=90,
    ).map(lambda few: few * (1 + _INDEXED_FROM // len(few))),  # past the index's threshold
    st.lists(st.tuples(st.sampled_from(LOCATIONS), st.integers(1, 120)), min_size=1, max_size=3),
)
def test_arriving_stock_serves_the_oldest_backorders_first(
    orders: list[tuple[int, str, int]], receipts: list[tuple[LocationId, int]]
) -> None:
    """Property: after stock arrives and backorders are served, every line's held plus
    backordered units are what it waited for, the units served are the oldest backorders'
    (each served whole before a younger one gets any), the events say exactly what was
    served, and the item's index of holds agrees with its holds."""
    item = InventoryItem(Sku("PRE-ORDER"))
    for n, (minutes, line, units) in enumerate(orders):
        order = OrderId(f"O-{n:03d}")
        since = T0 + timedelta(minutes=minutes)
        item = item.hold_for_line(order, LineId(line), units, POOL, T0, since=since).item
    before = waiting(item)
    for location, units in receipts:
        item = item.receive(location, units, "delivery", T0).item
    change = item.serve_backorders(lambda _: POOL, lambda _: True, T0)
    after = change.item
    for (order, line), units in before.items():
        assert after.held_for(order, line) + after.backordered_for(order, line) == units
    oldest_first = sorted(item.backorders, key=lambda b: (b.since, b.order_id, b.line_id))
    served = [after.held_for(b.order_id, b.line_id) for b in oldest_first]
    partly = next((i for i, b in enumerate(oldest_first) if served[i] < b.quantity), None)
    if partly is not None:
        assert all(s == b.quantity for s, b in zip(served[:partly], oldest_first, strict=False))
        assert not any(served[partly + 1 :])
    assert sum(served) == min(sum(before.values()), sum(units for _, units in receipts))
    reported: dict[tuple[OrderId, LineId], int] = {}
    for event in change.events:
        assert isinstance(event, BackorderServed)
        key = (event.order_id, event.line_id)
        reported[key] = reported.get(key, 0) + event.quantity
    assert reported == {
        (b.order_id, b.line_id): s for b, s in zip(oldest_first, served, strict=True) if s
    }
    index = _HoldIndex.of(after.sku, after.holds)
    assert index.keys == [h.key for h in after.holds]
    assert index.count == 0
    assert after.discrepancies() == []
