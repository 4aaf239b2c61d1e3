"""The main job: the simulation conserves stock, is deterministic, and the CLI works."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from omscore import OMS, Address, Delivery, GeoPoint, Location, Money, OrderStatus
from omscore.__main__ import QUEUE_ROWS, main
from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.errors import InvalidQuantity
from omscore.events import (
    FulfillmentSentToStore,
    LineAdded,
    LineQuantityChanged,
    ReservationReleased,
)
from omscore.geo import distance_km
from omscore.ids import LocationId
from omscore.inventory import MovementKind
from omscore.orders import DeliveryMethod, FulfillmentStatus, PaymentKind
from omscore.returns import Disposition
from omscore.simulate import GOODWILL, Report, Simulation, run
from omscore.sourcing import LowestCostPolicy
from omscore.testing import ManualClock, SequentialIds
from omscore.testing.contract import order_draft, sample_location

from .conftest import draft, eur, warehouse

TIMINGS = ("elapsed_s", "peak_memory_mb", "orders_per_second", "commands_per_second")


def counts(report: Report) -> dict[str, object]:
    """The report without its timings."""
    return {k: v for k, v in report.as_dict().items() if k not in TIMINGS}


def test_a_simulated_period_conserves_stock_and_exercises_every_path() -> None:
    """Orders, pickups (one shipped to its store, one collected in part), same-day,
    rejections, short picks and parcels shipped in parts, a store closing, fraud reviews
    (one ending in a cancel), orders edited, returns with refunds and exchanges, goodwill
    for late parcels, and work a closed store had not started sourced again all happen, and
    no command the simulation sends is refused."""
    report = run(MemoryStore(), orders=400, seed=127, policy="lowest_cost", progress=None)
    assert report.stock_conserved
    assert report.work_left_open == 0  # every fulfilment order reached an end
    assert report.orders_left_waiting == 0  # and every order was allocated or cancelled
    assert report.orders > 350
    assert report.pickups > 0
    assert report.shipped_to_store > 0
    assert report.pickups_collected_in_part > 0
    assert report.fraud_reviews > report.fraud_cancelled > 0
    assert report.store_closures == 1
    assert report.resourced_at_closures > 0
    assert report.same_day > 0
    assert report.rejections > 0
    assert report.short_picks > 0
    assert report.shipped_in_parts > 0
    assert report.refused == 0
    assert report.returns > 0
    assert report.refunded.amount > 0
    assert report.goodwill_refunds > 0
    assert report.goodwill_refunded.amount > 0
    assert report.edits > 0
    assert report.exchanges > 0
    assert report.credit_given_back.amount > 0  # a replacement cancelled
    assert report.shipments > 0


def test_the_report_agrees_with_what_the_store_recorded() -> None:
    """The report's counts, recounted from the orders and returns the run left in the
    store: the report is what happened, not what the simulation meant to do."""
    store = MemoryStore()
    started = time.perf_counter()
    report = run(store, orders=400, seed=127, policy="lowest_cost", progress=None)
    assert 0 < report.elapsed_s <= time.perf_counter() - started
    assert report.peak_memory_mb > 0
    every_order = list(store.orders.rows.values())
    orders = [o for o in every_order if o.exchange_of is None]  # the checkouts
    replacements = [o for o in every_order if o.exchange_of is not None]
    returns = list(store.returns.rows.values())
    parcels = Counter(f.status for o in every_order for f in o.fulfillments)
    methods = Counter(o.delivery.method for o in orders)
    # Each refund once: one given back on another order's payment is counted there.
    refunds = [p.amount for o in every_order for p in o.payments if p.kind is PaymentKind.REFUNDED]
    for_exchanges = [
        p.amount
        for o in every_order
        for p in o.payments
        if p.kind is PaymentKind.REFUNDED and ":exchange" in p.key
    ]
    # Credit a cancelled replacement never used goes back on the original's payment.
    credit_back = [
        p.amount
        for o in every_order
        for p in o.payments
        if p.kind is PaymentKind.REFUNDED and p.key.startswith("credit-back:")
    ]
    refunded_for_returns = sum(
        (r.refunded for r in returns if r.refunded is not None), Money.zero("EUR")
    )
    assert (report.orders, report.units) == (
        len(orders),
        sum(line.quantity for o in orders for line in o.lines),
    )
    assert (report.pickups, report.same_day) == (
        methods[DeliveryMethod.PICKUP],
        methods[DeliveryMethod.SAME_DAY],
    )
    assert (report.pickups_collected, report.pickups_expired, report.rejections) == (
        parcels[FulfillmentStatus.COLLECTED],
        parcels[FulfillmentStatus.EXPIRED],
        parcels[FulfillmentStatus.REJECTED],
    )
    events = [record.event for record in store.outbox()]
    # (A parcel collected in part leaves two fulfilment orders with its handover store.)
    assert report.shipped_to_store == sum(isinstance(e, FulfillmentSentToStore) for e in events)
    # Each order sourced again at a closure gave up at least its work at the closed store.
    assert 0 < report.resourced_at_closures <= parcels[FulfillmentStatus.WITHDRAWN]
    assert (report.returns, report.refunded, report.restocked) == (
        len(returns),
        refunded_for_returns,
        sum(line.dispositions.get(Disposition.RESTOCK, 0) for r in returns for line in r.lines),
    )
    assert report.exchanges == len(replacements) > 0
    assert report.exchange_refunded == sum(for_exchanges, Money.zero("EUR"))
    assert report.goodwill_refunded == (
        sum(refunds, Money.zero("EUR"))
        - refunded_for_returns
        - report.exchange_refunded
        - report.credit_given_back
    )
    assert report.credit_given_back == sum(credit_back, Money.zero("EUR"))
    assert report.goodwill_refunded == GOODWILL * report.goodwill_refunds
    # Sourcing's first plans and parcels shipped in parts: every one is a fulfilment order
    # (re-sourcing makes more); a first plan split over locations leaves several.
    assert 0 < report.shipments <= sum(parcels.values())
    assert 0 < report.split_orders <= sum(1 for o in orders if len(o.fulfillments) > 1)
    # An edit adds a unit to a line (counted in report.units above) or a line of one unit.
    edited = [e for e in events if isinstance(e, LineQuantityChanged | LineAdded)]
    assert report.edits == len(edited) > 0
    expired = [e for e in events if isinstance(e, ReservationReleased) and e.cause == "expired"]
    assert report.reservations_expired == len(expired) > 0
    reorders = [m for m in OMS(store).ledger() if m.reference.startswith("PO-")]
    assert report.receipts == len(reorders) > 0
    assert {m.kind for m in reorders} == {MovementKind.RECEIPT}
    # A third as many customers as checkouts: most come back now and then.
    customers = Counter(o.customer_ref for o in orders)
    assert 100 < len(customers) <= 400 // 3
    assert max(customers.values()) > 1


def test_the_rates_are_worked_out_from_the_counts() -> None:
    """Each rate divides the count it names; a report of nothing divides by one, not by
    zero."""
    report = Report(
        orders=4,
        units=10,
        units_allocated_first=8,
        shipments=6,
        split_orders=1,
        distance_units_km=250.0,
        units_sourced=10,
        units_from_stores=3,
        commands=20,
        elapsed_s=2.0,
        refunded=Money("12.50", "EUR"),
    )
    assert report.rates() == {
        "fill_rate": 0.8,
        "shipments_per_order": 1.5,
        "split_rate": 0.25,
        "average_km_per_unit": 25.0,
        "ship_from_store_share": 0.3,
        "orders_per_second": 2.0,
        "commands_per_second": 10.0,
    }
    assert set(Report().rates().values()) == {0}
    data = report.as_dict()
    assert (data["refunded"], data["fill_rate"], data["orders"]) == ("12.50 EUR", 0.8, 4)


def test_the_refusals_are_named_the_most_frequent_first() -> None:
    """The report's refused line names each command and error, the most frequent first
    and, at equal counts, by name; JSON carries them as they are."""
    refusals = {
        "reserve InsufficientStock": 3,
        "allocate OrderOnHold": 1_205,
        "cancel InvalidTransition": 3,
    }
    report = Report(refused=1_211, refusals=refusals)
    (line,) = [x for x in report.render().splitlines() if "refused commands" in x]
    assert line.endswith(
        "1,211   (allocate OrderOnHold 1,205, cancel InvalidTransition 3, "
        "reserve InsufficientStock 3)"
    )
    assert report.as_dict()["refusals"] == refusals
    (quiet,) = [x for x in Report().render().splitlines() if "refused commands" in x]
    assert quiet.endswith(" 0")


def test_the_retailer_reorders_every_100_checkouts_and_closes_a_store_every_500() -> None:
    """The period's rhythm: a reorder run after every hundredth checkout, a store closing
    at the 121st and every 500th after it, and progress twenty times a run."""
    progress = io.StringIO()
    sim = Simulation(MemoryStore(), seed=3, policy="nearest", progress=progress)
    calls: Counter[str] = Counter()
    for name in ("_replenish", "_close_a_store"):
        method = getattr(sim, name)

        def counted(method: Any = method, name: str = name) -> None:
            calls[name] += 1
            method()

        setattr(sim, name, counted)
    sim.run(650)
    assert calls == {"_replenish": 6, "_close_a_store": 2}
    lines = progress.getvalue().splitlines()
    shown = [int(line.split()[0].replace(",", "")) for line in lines]
    assert shown == list(range(32, 650, 32))
    rates = [int(line.split("(")[1].split()[0].replace(",", "")) for line in lines]
    assert min(rates) >= 1  # orders so far over the seconds so far


def test_the_same_seed_gives_the_same_run_on_both_stores(tmp_path: Path) -> None:
    """Deterministic with a seed, and the SQLite store behaves like the reference."""
    memory = run(MemoryStore(), orders=150, seed=11, policy="fewest_shipments", progress=None)
    again = run(MemoryStore(), orders=150, seed=11, policy="fewest_shipments", progress=None)
    sqlite = run(
        SqliteStore(str(tmp_path / "sim.db")),
        orders=150,
        seed=11,
        policy="fewest_shipments",
        progress=None,
    )
    background = SqliteStore(str(tmp_path / "background.db"), checkpoint="background")
    checkpointed = run(background, orders=150, seed=11, policy="fewest_shipments", progress=None)
    background.close()
    assert counts(memory) == counts(again) == counts(sqlite) == counts(checkpointed)
    assert memory.exchanges > 0  # the stores agree on exchanges and edits too
    assert memory.edits > 0


def test_the_command_line_simulates_and_inspects(tmp_path: Path) -> None:
    """simulate --json (SQLite's own checkpoints; the default is the store's background
    checkpointer, which CI's run uses) reports conserved stock; inspect shows counts,
    stock and an order."""
    db = tmp_path / "shop.db"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "omscore",
            "simulate",
            "--orders",
            "120",
            "--db",
            str(db),
            "--json",
            "--policy",
            "priority",
            "--checkpoint",
            "auto",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["stock_conserved"] is True
    assert report["work_left_open"] == 0
    assert report["orders"] > 100
    again = subprocess.run(
        [sys.executable, "-m", "omscore", "simulate", "--orders", "10", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 2
    assert "pass --overwrite" in again.stderr
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "omscore",
            "inspect",
            "--db",
            str(db),
            "--sku",
            "SKU-000",
            "--order",
            "O-1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "orders" in shown.stdout
    assert "stock of SKU-000" in shown.stdout
    (header,) = [line for line in shown.stdout.splitlines() if line.startswith("order O-1:")]
    assert ", customer C-0, total " in header  # the first checkout's customer
    assert "OrderPlaced" in shown.stdout
    with closing(sqlite3.connect(db)) as connection, connection:
        returned, rma = connection.execute("SELECT order_id, id FROM returns LIMIT 1").fetchone()
    traced = subprocess.run(
        [sys.executable, "-m", "omscore", "inspect", "--db", str(db), "--order", returned],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert traced.returncode == 0, traced.stderr
    assert f"ReturnRequested ({rma})" in traced.stdout


@pytest.mark.parametrize("orders", ["0", "-5"])
def test_a_simulation_of_no_orders_is_refused_before_the_file_is_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], orders: str
) -> None:
    """Exit status 2, the reason on stderr, and the existing file left as it was."""
    db = tmp_path / "kept.db"
    db.write_bytes(b"a file someone may want")
    assert main(["simulate", "--db", str(db), "--overwrite", "--orders", orders]) == 2
    assert f"simulate takes 1 or more orders, got {int(orders)}" in capsys.readouterr().err
    assert db.read_bytes() == b"a file someone may want"
    with pytest.raises(InvalidQuantity):
        run(MemoryStore(), orders=int(orders), seed=1, policy="nearest", progress=None)
    assert run(MemoryStore(), orders=1, seed=1, policy="nearest", progress=None).orders == 1


@pytest.mark.parametrize(
    ("broken", "status"),
    [
        ({}, 0),
        ({"stock_conserved": False}, 1),
        ({"work_left_open": 1}, 1),
        ({"orders_left_waiting": 2}, 1),
    ],
)
def test_the_exit_status_says_whether_stock_was_conserved_and_everything_settled(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    broken: dict[str, Any],
    status: int,
) -> None:
    """CI runs ``simulate``: a run that lost stock or left work behind must fail it."""
    report = run(MemoryStore(), orders=20, seed=1, policy="nearest", progress=None)
    assert report.stock_conserved
    assert report.work_left_open == report.orders_left_waiting == 0
    monkeypatch.setattr("omscore.__main__.run", lambda *a, **k: attrs.evolve(report, **broken))
    assert main(["simulate", "--memory", "--orders", "20"]) == status
    assert "omscore simulation report" in capsys.readouterr().out


def test_an_order_left_open_by_a_rejection_is_tried_again() -> None:
    """After a rejection that re-sourcing could not place elsewhere, the simulated host
    tries the order again as stock comes in (or cancels it after three tries): no order is
    left open with nothing but rejected fulfilment orders, holding stock for ever."""
    store = MemoryStore()
    run(store, orders=1500, seed=5, policy="lowest_cost", progress=None)
    orders = list(store.orders.rows.values())
    end = max(o.placed_at for o in orders)
    stranded = [
        o.id
        for o in orders
        if o.status is OrderStatus.OPEN
        and o.fulfillments
        and all(f.status is FulfillmentStatus.REJECTED for f in o.fulfillments)
        and o.placed_at < end - timedelta(days=3)
    ]
    assert stranded == []
    assert any(f.status is FulfillmentStatus.REJECTED for o in orders for f in o.fulfillments)


def test_inspect_shows_where_a_ship_to_store_parcel_was_handed_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "shop.db"
    oms = OMS(
        SqliteStore(str(db)),
        ids=SequentialIds(),
        sourcing=LowestCostPolicy(allow_ship_to_store=True),
    )
    oms.add_location(sample_location("WH-1"))
    oms.add_location(
        Location(id="ST-1", kind="store", geo=GeoPoint(52.5, 13.4), capabilities={"pickup"})
    )
    oms.receive("WH-1", "A", 3)
    order = oms.place_order(order_draft("A", 1, Delivery.pickup("ST-1")))
    oms.allocate(order.id)
    parcel = oms.get_order(order.id).fulfillments[0].id
    oms.send_to_store(parcel, tracking="T-1")
    assert main(["inspect", "--db", str(db), "--order", order.id]) == 0
    assert "in_transit, on its way to ST-1" in capsys.readouterr().out
    oms.ready_for_pickup(parcel)
    assert main(["inspect", "--db", str(db), "--order", order.id]) == 0
    assert "ready_for_pickup, handed over at ST-1" in capsys.readouterr().out


def test_inspect_shows_a_location_queue_and_stalled_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--queue lists the work at a location, --stalled what waited past a time; each
    prints at most QUEUE_ROWS rows and says when there are more."""
    db = tmp_path / "shop.db"
    oms = OMS(SqliteStore(str(db)), ids=SequentialIds())
    oms.add_location(sample_location("WH-1"))
    oms.receive("WH-1", "A", 50)
    for _ in range(QUEUE_ROWS + 1):
        oms.allocate(oms.place_order(order_draft("A", 1)).id)
    oms.pack("O-1-F1")
    assert main(["inspect", "--db", str(db), "--queue", "WH-1", "--stalled", "0"]) == 0
    out = capsys.readouterr().out
    assert f"work at WH-1: {QUEUE_ROWS}+, longest waiting first" in out
    assert f"stalled for 0 h or more: {QUEUE_ROWS}+" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("  O-")]
    assert len(rows) == 2 * QUEUE_ROWS
    assert rows[0][:4] == ["O-2-F1", "open", "at", "WH-1"]  # O-1 moved on last
    assert main(["inspect", "--db", str(db), "--stalled", "1"]) == 0
    assert "stalled for 1 h or more: 0," in capsys.readouterr().out
    assert main(["inspect", "--db", str(db), "--queue", "NOPE"]) == 2
    assert "NOPE" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("rows", "count"), [(QUEUE_ROWS, str(QUEUE_ROWS)), (QUEUE_ROWS + 1, f"{QUEUE_ROWS}+")]
)
def test_a_listing_of_exactly_the_rows_shown_has_no_more_to_tell(
    rows: int, count: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every listing of ``inspect`` (a location's work, stalled work, the orders waiting,
    a hold's queue, a customer's orders) counts QUEUE_ROWS rows as that many, and one more
    as "QUEUE_ROWS+"."""
    db = tmp_path / "shop.db"
    with closing(SqliteStore(str(db))) as store:
        # inspect reads the system clock: work made on the manual clock's day is long stalled
        oms = OMS(store, clock=ManualClock(), ids=SequentialIds())
        oms.add_location(sample_location("WH-1"))
        oms.receive("WH-1", "A", 100)
        for _ in range(rows):
            oms.allocate(oms.place_order(order_draft("A", 1)).id)
            held = oms.place_order(attrs.evolve(order_draft("A", 1), customer_ref="C-2"))
            oms.hold(held.id, "fraud", reason="review")
    listings = {
        "--queue WH-1": "work at WH-1",
        "--stalled 1": "stalled for 1 h or more",
        "--waiting": "orders waiting",
        "--hold fraud": "orders on a fraud hold",
        "--customer C-2": "orders of customer C-2",
    }
    for option, title in listings.items():
        assert main(["inspect", "--db", str(db), *option.split()]) == 0
        out = capsys.readouterr().out
        assert f"{title}: {count}, " in out, option
        assert len(out.split(f"{title}: ")[1].splitlines()) == 1 + min(rows, QUEUE_ROWS)


def test_hours_and_days_on_the_command_line_must_be_finite_and_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``nan``, ``inf`` and words are refused by the parser; an age beyond the calendar
    finds nothing older; one no ``timedelta`` can hold is an error, not a traceback."""
    db = tmp_path / "shop.db"
    OMS(SqliteStore(str(db))).add_location(sample_location("WH-1"))
    for word in ("nan", "inf", "-inf", "soon"):
        with pytest.raises(SystemExit) as parsed:
            main(["inspect", "--db", str(db), f"--stalled={word}"])
        assert parsed.value.code == 2
        assert f"expected a finite number, got {word!r}" in capsys.readouterr().err
    assert main(["inspect", "--db", str(db), "--stalled", "1e8"]) == 0
    assert "stalled for 1e+08 h or more: 0," in capsys.readouterr().out
    assert main(["prune", "--db", str(db), "--keep-events-days", "1e6"]) == 0
    assert main(["prune", "--db", str(db), "--keep-keys-hours", "1e6"]) == 0
    assert main(["inspect", "--db", str(db), "--stalled", "1e30"]) == 2
    assert "1e+30 hours is too long a time" in capsys.readouterr().err
    assert main(["inspect", "--db", str(db), "--sku", ""]) == 2
    assert "sku must be a non-empty string, got ''" in capsys.readouterr().err


def test_inspect_shows_the_orders_waiting_and_those_on_a_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--waiting lists the orders not wholly allocated or on hold, --hold KIND those on a
    hold of that kind; at most QUEUE_ROWS rows each, and they say when there are more."""
    db = tmp_path / "shop.db"
    oms = OMS(SqliteStore(str(db)), ids=SequentialIds())
    oms.add_location(sample_location("WH-1"))
    oms.receive("WH-1", "A", 50)
    for _ in range(QUEUE_ROWS + 1):
        oms.place_order(order_draft("A", 1))
    oms.hold("O-2", "fraud", reason="score 91")
    assert main(["inspect", "--db", str(db), "--waiting", "--hold", "fraud"]) == 0
    out = capsys.readouterr().out
    assert f"orders waiting: {QUEUE_ROWS}+, longest waiting first" in out
    assert "orders on a fraud hold: 1, longest waiting first" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("  O-")]
    assert len(rows) == QUEUE_ROWS + 1
    assert rows[0][:3] == ["O-1", "open", "web"]
    assert rows[1][:2] == rows[-1][:2] == ["O-2", "on_hold"]
    assert rows[-1][-1] == "fraud"


def test_inspect_shows_a_customers_orders_newest_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--customer lists a customer's orders, newest first, at most QUEUE_ROWS rows, and
    says when there are more."""
    db = tmp_path / "shop.db"
    clock = ManualClock()
    oms = OMS(SqliteStore(str(db)), ids=SequentialIds(), clock=clock)
    oms.add_location(sample_location("WH-1"))
    oms.receive("WH-1", "A", 50)
    for n in range(QUEUE_ROWS + 2):
        oms.place_order(order_draft("A", 1 + n % 2, customer_ref="C-1" if n else "C-2"))
        clock.advance(timedelta(minutes=1))
    assert main(["inspect", "--db", str(db), "--customer", "C-1"]) == 0
    out = capsys.readouterr().out
    assert f"orders of customer C-1: {QUEUE_ROWS}+, newest first" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("  O-")]
    assert len(rows) == QUEUE_ROWS
    assert [row[0] for row in rows] == [f"O-{n}" for n in range(QUEUE_ROWS + 2, 2, -1)]
    assert rows[0][3:6] == ["open", "web", "2"]
    assert main(["inspect", "--db", str(db), "--customer", "C-2"]) == 0
    assert "orders of customer C-2: 1, newest first" in capsys.readouterr().out


def test_an_order_on_a_sourcing_hold_is_reviewed_and_its_work_goes_on() -> None:
    """Too many rejections put an order on a sourcing hold, which also stops the work on
    its other fulfilment orders; the simulated reviewer releases it on the retry, and the
    work is scheduled again (a 100,000-order run once ended with one such order stuck)."""
    sim = Simulation(MemoryStore(), seed=1, policy="lowest_cost", progress=None)
    sim.build()
    order = sim.oms.place_order(order_draft("SKU-000", 1))
    sim.oms.allocate(order.id)
    (f,) = sim.oms.get_order(order.id).fulfillments
    sim.oms.hold(order.id, "sourcing", reason="3 fulfilment orders rejected")
    sim.retry_due.add(order.id)
    sim._retry(order.id)
    assert not sim.oms.get_order(order.id).is_held
    assert f.id in sim.scheduled


@pytest.mark.parametrize("command", ["inspect", "prune", "backup"])
def test_the_file_commands_leave_a_database_that_is_no_store_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Pointed at another application's database, an empty file or a text file, inspect,
    prune and backup refuse it (exit status 2) and change nothing in it: opening a store
    on it would have written omscore's tables into it and switched it to WAL mode."""
    other, empty, text = tmp_path / "crm.db", tmp_path / "empty.db", tmp_path / "notes.db"
    with closing(sqlite3.connect(other)) as connection, connection:
        connection.execute("CREATE TABLE customers (id TEXT)")
    empty.touch()
    text.write_text("not a database")
    options = {
        "inspect": [],
        "prune": ["--keep-events-days", "7"],
        "backup": ["--to", str(tmp_path / "copy.db")],
    }[command]
    before = {path: path.read_bytes() for path in (other, empty, text)}
    for path, why in (
        (other, "is not an omscore store (no schema_version table); left unchanged"),
        (empty, "is not an omscore store (no schema_version table); left unchanged"),
        (text, "is not a SQLite database"),
    ):
        assert main([command, "--db", str(path), *options]) == 2
        assert f"error: {path} {why}" in capsys.readouterr().err
    assert {path: path.read_bytes() for path in (other, empty, text)} == before
    assert not (tmp_path / "copy.db").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.db", "empty.db", "notes.db"]


def test_a_reader_that_goes_away_ends_inspect_quietly(tmp_path: Path) -> None:
    """``inspect ... | head``: when the pipe closes before the report is written, the
    command ends with status 1 and no traceback."""
    db = tmp_path / "shop.db"
    SqliteStore(str(db)).close()
    child = subprocess.Popen(
        [sys.executable, "-m", "omscore", "inspect", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    child.stdout.close()  # long before the child has imported omscore
    _, err = child.communicate(timeout=60)
    assert "Traceback" not in err.decode()
    assert child.returncode == 1


def _shipped_order(sim: Simulation, delivery: Delivery | None = None, units: int = 1) -> str:
    """An order of ``units`` of SKU-000 placed, sourced and worked on the retailer."""
    if not sim.locations:
        sim.build()
    order = sim.oms.place_order(order_draft("SKU-000", units, delivery, customer_ref="C-1"))
    sim.oms.allocate(order.id)
    for f in sim.oms.get_order(order.id).fulfillments:
        sim.oms.accept_fulfillment(f.id)
        if delivery is None:
            sim.oms.ship(f.id)
    return order.id


def test_goodwill_for_a_late_parcel_never_refunds_more_than_is_left() -> None:
    """5.00 back, or what is left of what was paid when that is less; once nothing is
    left, customer service sends no refund at all (the gateway would refuse it)."""
    sim = Simulation(MemoryStore(), seed=1, policy="lowest_cost", progress=None)
    order_id = _shipped_order(sim)
    captured = sim.oms.get_order(order_id).captured
    sim.oms.refund_order(order_id, captured - Money("2.00", "EUR"), "damaged box")
    sim._complain(order_id)
    assert (sim.report.goodwill_refunds, sim.report.goodwill_refunded) == (1, Money("2", "EUR"))
    sim._complain(order_id)
    assert sim.report.goodwill_refunds == 1
    assert sim.report.commands == 1
    assert sim.report.refused == 0
    order = sim.oms.get_order(order_id)
    assert order.refunded == order.captured


def test_a_customer_collecting_two_units_may_take_one_and_refuse_the_other() -> None:
    sim = Simulation(MemoryStore(), seed=1, policy="lowest_cost", progress=None)
    sim.build()
    sim.oms.receive("ST-BER", "SKU-000", 2)
    order_id = _shipped_order(sim, Delivery.pickup("ST-BER"), units=2)
    (parcel,) = sim.oms.get_order(order_id).fulfillments
    sim.oms.ready_for_pickup(parcel.id)
    assert sim._collect_part(parcel.id)
    order = sim.oms.get_order(order_id)
    (line,) = order.lines
    assert (line.delivered, line.cancelled) == (1, 1)
    assert (sim.report.pickups_collected, sim.report.pickups_collected_in_part) == (1, 1)


def test_a_retry_of_an_order_with_nothing_open_sends_no_command() -> None:
    """An order allocated meanwhile is left alone when its retry comes due."""
    sim = Simulation(MemoryStore(), seed=1, policy="lowest_cost", progress=None)
    order_id = _shipped_order(sim)
    sim.retry_due.add(order_id)
    sim._retry(order_id)
    assert sim.report.commands == 0
    assert order_id not in sim.retries
    assert order_id not in sim.retry_due


def test_a_shipped_order_comes_back_to_the_depot_nearest_its_address() -> None:
    """Returns of shipped orders go to the nearest location taking returns, not the
    first one listed."""
    sim = Simulation(MemoryStore(), seed=1, policy="lowest_cost", progress=None)
    sim.build()
    munich = sim.locations[LocationId("WH-MUN")].geo
    assert munich is not None
    home = Address(country="DE", postal_code="80331", city="Munich", geo=munich)
    order = sim.oms.place_order(order_draft("SKU-000", 1, Delivery.ship(home)))
    assert sim._nearest_depot(order) == "WH-MUN"


def test_the_readme_sample_report_is_what_the_default_run_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README shows the report of ``python -m omscore simulate``; the same run on
    memory (a seed gives the same counts on every store) prints the same lines, timings
    aside."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    sample = readme.split("```\nomscore simulation report\n")[1].split("```")[0]
    assert main(["simulate", "--memory"]) == 0
    printed = capsys.readouterr().out.split("omscore simulation report\n")[1]
    timings = ("  throughput", "  elapsed", "  peak memory")
    assert [line for line in printed.splitlines() if not line.startswith(timings)] == (
        sample.splitlines()
    )


def test_sourced_units_count_their_distance_and_whether_a_store_shipped_them() -> None:
    """A shipped order's units from a store count towards the ship-from-store share, and
    every unit its distance to the address; a pickup's units count neither (the store
    hands them over, and there is no address)."""
    sim = Simulation(MemoryStore(), seed=1, policy="lowest_cost", progress=None)
    sim.build()
    shipped = sim.oms.place_order(order_draft("SKU-000", 3), allocate=False)
    sim._sourced(shipped, [("ST-BER", 2), ("WH-HAM", 1)], first=True)
    home = shipped.delivery.address
    assert home is not None
    assert home.geo is not None
    berlin, hamburg = (sim.locations[LocationId(x)].geo for x in ("ST-BER", "WH-HAM"))
    assert berlin is not None
    assert hamburg is not None
    expected_km = 2 * distance_km(berlin, home.geo) + distance_km(hamburg, home.geo)
    report = sim.report
    assert (report.units_sourced, report.units_from_stores) == (3, 2)
    assert report.distance_units_km == pytest.approx(expected_km)
    assert (report.shipments, report.split_orders, report.units_allocated_first) == (2, 1, 3)
    sim.oms.receive("ST-BER", "SKU-001", 1)
    pickup = sim.oms.place_order(
        order_draft("SKU-001", 1, Delivery.pickup("ST-BER")), allocate=False
    )
    sim._sourced(pickup, [("ST-BER", 1)], first=False)
    assert (report.units_sourced, report.units_from_stores) == (4, 2)
    assert report.distance_units_km == pytest.approx(expected_km)
    assert (report.shipments, report.units_allocated_first) == (2, 3)
    whole = sim.oms.place_order(order_draft("SKU-000", 2), allocate=False)
    sim._sourced(whole, [("WH-HAM", 2)], first=True)
    assert (report.shipments, report.split_orders) == (3, 1)  # one parcel is no split


def test_a_customer_waits_three_tries_then_cancels_what_is_still_open() -> None:
    """Each retry allocates what arrived since; the fourth cancels what never came."""
    sim = Simulation(MemoryStore(), seed=1, policy="lowest_cost", progress=None)
    sim.build()
    order = sim.oms.place_order(order_draft("NOT-STOCKED", 2), allocate=False)
    for _ in range(3):
        sim._retry(order.id)
        assert sim.oms.get_order(order.id).open_units == 2
    sim._retry(order.id)
    assert sim.oms.get_order(order.id).open_units == 0
    assert sim.report.cancelled_units == 2
    assert order.id not in sim.retries


@pytest.mark.parametrize("step", ["ship", "arrive", "collect"])
def test_a_step_refused_while_the_order_is_held_is_tried_again_after_the_review(
    step: str,
) -> None:
    """A sourcing hold stops all of an order's work: the rest of a parcel shipped in
    parts, a pickup reaching its store or being collected is refused meanwhile and tried
    again twelve hours later, once the reviewer has released the order (a 100,000-order
    run once ended with such a parcel never shipped)."""
    sim = Simulation(MemoryStore(), seed=1, policy="lowest_cost", progress=None)
    sim.build()
    delivery = None if step == "ship" else Delivery.pickup("ST-BER")
    sim.oms.receive("ST-BER", "SKU-000", 1)
    order = sim.oms.place_order(order_draft("SKU-000", 1, delivery))
    sim.oms.allocate(order.id)
    (parcel,) = sim.oms.get_order(order.id).fulfillments
    sim.oms.accept_fulfillment(parcel.id)
    if step == "collect":
        sim.oms.ready_for_pickup(parcel.id)
    sim.oms.hold(order.id, "sourcing", reason="3 fulfilment orders rejected")
    getattr(sim, f"_{step}")(parcel.id)
    assert sim.report.refused == 1
    command = {"ship": "ship", "arrive": "ready_for_pickup", "collect": "collect"}[step]
    assert sim.report.refusals == {f"{command} OrderOnHold": 1}
    said = f"  refused commands       {1:>12,}   ({command} OrderOnHold 1)"
    assert said in sim.report.render().splitlines()
    sim.oms.release(order.id, "sourcing")
    sim.clock.advance(timedelta(hours=12))
    sim._due()
    done = {"ship": "shipped", "arrive": "ready_for_pickup", "collect": "collected"}[step]
    assert sim.oms.get_order(order.id).fulfillment(parcel.id).status.value == done


def test_inspect_traces_each_event_with_its_details(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each line of an order's trace says what happened: the event's ids, statuses,
    amounts and reasons, a text with spaces quoted; not its units, nor the payment key."""
    db = tmp_path / "shop.db"
    with closing(SqliteStore(str(db))) as store:
        oms = OMS(store, clock=ManualClock(), ids=SequentialIds())
        oms.add_location(warehouse("WH-1"))
        oms.receive("WH-1", "A", 5)
        order = oms.place_order(attrs.evolve(draft(("A", 2)), customer_ref="C-9"), allocate=True)
        parcel = oms.get_order(order.id).fulfillments[0]
        oms.ship(parcel.id, tracking="1Z9", carrier="DHL")
        oms.deliver(parcel.id)
        oms.refund_order(order.id, eur("5.00"), "parcel late")
        rma = oms.request_return(order.id, {order.lines[0].id: 1}, reason="too small")
    assert main(["inspect", "--db", str(db), "--order", order.id]) == 0
    trace = capsys.readouterr().out.split("  trace:\n")[1].splitlines()
    details = [line.split(maxsplit=3)[3] for line in trace]
    assert details == [
        "OrderPlaced  channel=web total=20.00 EUR customer_ref=C-9",
        "PaymentRecorded  kind=authorized amount=20.00 EUR",  # no gateway: no reference
        f"FulfillmentCreated  fulfillment_id={parcel.id} location_id=WH-1 method=ship",
        f"FulfillmentShipped  fulfillment_id={parcel.id} location_id=WH-1 tracking=1Z9 carrier=DHL",
        "PaymentRecorded  kind=captured amount=20.00 EUR",
        f"FulfillmentProgressed  fulfillment_id={parcel.id} location_id=WH-1 status=delivered",
        "PaymentRecorded  kind=refunded amount=5.00 EUR",
        "OrderRefunded  amount=5.00 EUR reason='parcel late'",
        f"({rma.id})  reason='too small' method=ship",
    ]
    assert trace[-1].split()[2] == "ReturnRequested"
