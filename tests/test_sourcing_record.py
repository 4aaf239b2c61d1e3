"""Sourcing decisions kept: ``OMS(record_sourcing=True)`` records ``SourcingDecided``.

Why an order went where it went is asked long after the plan is gone (a customer asks why
a parcel came from 400 km away, a planner audits the ship-from-store share). Each test runs
on both stores: the event must come back from the outbox as it was recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from omscore import OMS
from omscore.__main__ import main
from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.errors import InvalidArgument
from omscore.events import FulfillmentCreated, SourcingDecided
from omscore.ids import LocationId
from omscore.ports import Store
from omscore.sourcing import LocationTrace, LowestCostPolicy, PriorityPolicy, SourcingPolicy
from omscore.testing import ManualClock, SequentialIds

from .conftest import draft, store_location, warehouse

STORES: dict[str, Callable[[], Store]] = {
    "memory": MemoryStore,
    "sqlite": lambda: SqliteStore(":memory:"),
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest) -> Store:
    """Each test runs on both stores."""
    return STORES[request.param]()


def network(store: Store, *, record: bool = True, sourcing: SourcingPolicy | None = None) -> OMS:
    """WH-1 (priority 1) and WH-2 (priority 2), under the priority policy unless told."""
    oms = OMS(
        store,
        clock=ManualClock(),
        ids=SequentialIds(),
        sourcing=sourcing or PriorityPolicy(),
        record_sourcing=record,
    )
    oms.add_location(warehouse("WH-1", priority=1))
    oms.add_location(warehouse("WH-2", priority=2))
    return oms


def decisions(oms: OMS, after: int = 0) -> list[SourcingDecided]:
    """The decisions in the outbox, in order."""
    return [e for e in oms.events(after=after) if isinstance(e, SourcingDecided)]


def test_nothing_is_recorded_by_default(store: Store) -> None:
    """Off unless asked for: place + allocate costs no more than it did."""
    oms = network(store, record=False)
    oms.receive("WH-1", "A", 5)
    oms.allocate(oms.place_order(draft(("A", 1))).id)
    assert decisions(oms) == []


def test_an_allocation_records_the_plan_it_applied(store: Store) -> None:
    """The event carries the plan's trace, its explanation, the policy and the order's
    version before the allocation, and comes before the fulfilment orders it made; it
    reads back from the store as it was recorded."""
    oms = network(store)
    oms.receive("WH-1", "A", 1)
    oms.receive("WH-2", "A", 5)
    order = oms.place_order(draft(("A", 3)))
    plan = oms.allocate(order.id)
    (decided,) = decisions(oms)
    assert decided.order_id == order.id
    assert decided.version == order.version
    assert decided.policy == plan.policy == "PriorityPolicy"
    assert decided.trace == plan.trace
    assert decided.explanation == plan.explain()
    assert decided.trace[0] == LocationTrace(
        LocationId("WH-1"), True, 1, None, 1, decided.trace[0].detail
    )
    names = [type(e).__name__ for e in oms.events() if getattr(e, "order_id", None) == order.id]
    assert names.index("SourcingDecided") < names.index("FulfillmentCreated")


def test_a_checkout_sourced_at_once_keeps_its_decision(store: Store) -> None:
    """``place_order(allocate=True)`` returns the order, not the plan: the event is where
    the reason is found, here why WH-2 got the units: WH-1 has no stock of them."""
    oms = network(store)
    oms.receive("WH-2", "A", 5)
    order = oms.place_order(draft(("A", 2)), allocate=True)
    (decided,) = decisions(oms)
    assert decided.order_id == order.id
    assert "#1   WH-2           USED 2 unit(s)" in decided.explanation
    assert "(1 location(s) without stock of the requested SKUs)" in decided.explanation
    assert [t.location_id for t in decided.trace if t.used] == ["WH-2"]


def test_a_rejection_records_the_decision_that_replaced_it(store: Store) -> None:
    """WH-1 rejects: the units are sourced again at WH-2, and that decision says WH-1 was
    left out because it rejected the order."""
    oms = network(store)
    oms.receive("WH-1", "A", 5)
    oms.receive("WH-2", "A", 5)
    order = oms.place_order(draft(("A", 1)))
    oms.allocate(order.id)
    oms.reject_fulfillment(oms.get_order(order.id).fulfillments[0].id, reason="damaged")
    first, second = decisions(oms)
    assert [t.location_id for t in first.trace if t.used] == ["WH-1"]
    assert [t.location_id for t in second.trace if t.used] == ["WH-2"]
    assert second.version > first.version
    (wh1,) = [t for t in second.trace if t.location_id == "WH-1"]
    assert wh1.excluded == "rejected this order"


def test_sourcing_again_records_a_decision_only_when_it_changes_the_work(store: Store) -> None:
    """``reallocate`` on the same stock changes nothing and records nothing; once WH-1
    has what WH-2 was given, the new plan is recorded."""
    oms = network(store)
    oms.receive("WH-2", "A", 5)
    order = oms.place_order(draft(("A", 1)))
    oms.allocate(order.id)
    oms.reallocate(order.id)
    assert len(decisions(oms)) == 1
    oms.receive("WH-1", "A", 5)
    oms.reallocate(order.id)
    last = decisions(oms)[-1]
    assert [t.location_id for t in last.trace if t.used] == ["WH-1"]
    assert len(decisions(oms)) == 2


def test_a_decision_with_nothing_to_allocate_says_what_waits(store: Store) -> None:
    """No stock anywhere: the decision is recorded all the same, naming what stays
    unallocated, and no fulfilment order follows."""
    oms = network(store)
    order = oms.place_order(draft(("A", 2)))
    oms.allocate(order.id)
    (decided,) = decisions(oms)
    assert f"unallocated: line {order.lines[0].id}: 2 unit(s)" in decided.explanation
    assert not any(isinstance(e, FulfillmentCreated) for e in oms.events())


def test_record_sourcing_must_be_a_bool() -> None:
    """A flag that is not a bool is refused when the OMS is built."""
    with pytest.raises(InvalidArgument, match="record_sourcing"):
        OMS(MemoryStore(), record_sourcing="yes")  # type: ignore[arg-type]


def test_inspect_shows_why_an_order_went_where_it_went(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``inspect --order`` prints the decision under its event."""
    db = tmp_path / "shop.db"
    oms = network(SqliteStore(str(db)))
    oms.add_location(store_location("ST-1"))
    oms.receive("WH-2", "A", 5)
    order = oms.place_order(draft(("A", 1)), allocate=True)
    assert main(["inspect", "--db", str(db), "--order", order.id]) == 0
    out = capsys.readouterr().out
    assert "SourcingDecided" in out
    assert "PriorityPolicy: 1 shipment(s), 1 unit(s) allocated, 0 unallocated" in out


def test_inspect_gives_a_decisions_policy_and_its_cost_to_the_cent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The decision's line names the policy and its cost, rounded as ``explain()`` rounds
    it (the cost is an estimate for ranking, never money)."""
    db = tmp_path / "shop.db"
    with closing(SqliteStore(str(db))) as store:
        oms = network(store, sourcing=LowestCostPolicy())
        oms.receive("WH-1", "A", 5)
        order = oms.place_order(draft(("A", 3)), allocate=True)
        (decided,) = decisions(oms)
    assert decided.cost is not None
    assert decided.cost != round(decided.cost, 2)  # more decimals than the line shows
    assert main(["inspect", "--db", str(db), "--order", order.id]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "SourcingDecided" in x]
    assert line.endswith(f"SourcingDecided  policy=LowestCostPolicy cost={decided.cost:.2f}")
