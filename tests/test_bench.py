"""``python -m omscore bench``: every store timed, figures consistent, bad input refused."""

from __future__ import annotations

import json
import math

import pytest

from omscore.__main__ import main
from omscore.adapters.memory import MemoryStore
from omscore.bench import (
    BACKGROUND,
    BenchReport,
    StoreResult,
    prepared,
    python_loop_seconds,
    run,
    timed_orders,
)
from omscore.errors import InvalidQuantity


def test_bench_times_every_order_on_every_store() -> None:
    report = run(orders=25, rounds=2)
    assert [r.store for r in report.results] == ["MemoryStore", "SqliteStore", BACKGROUND]
    for result in report.results:
        assert len(result.rounds) == 2
        assert len(result.order_seconds) == 50
        assert 0 < result.median_us <= result.p99_us
        assert min(result.rounds) <= result.orders_per_second <= max(result.rounds)
    assert "MemoryStore" in report.render()
    assert "SqliteStore" in report.render()
    assert BACKGROUND in report.render()
    assert report.python_loop_s is not None
    assert 0 < report.python_loop_s < math.inf
    assert f"Python additions took {report.python_loop_s:.2f} s" in report.render()


def test_the_command_line_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--orders", "10", "--rounds", "1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["orders"] == 10
    assert set(figures["stores"]) == {"MemoryStore", "SqliteStore", BACKGROUND}
    assert figures["stores"]["SqliteStore"]["orders_per_second"] > 0
    assert figures["python_loop_seconds"] > 0


def test_bench_times_the_one_command_checkout(capsys: pytest.CaptureFixture[str]) -> None:
    """``--one-command`` places and allocates with ``place_order(draft, allocate=True)``."""
    assert main(["bench", "--orders", "10", "--rounds", "1", "--one-command"]) == 0
    assert "place_order(allocate=True), 10 one-line orders" in capsys.readouterr().out
    report = run(orders=5, rounds=1, one_command=True)
    assert report.as_dict()["one_command"] is True
    assert all(len(r.order_seconds) == 5 for r in report.results)
    oms, drafts = prepared(MemoryStore())
    assert len(timed_orders(oms, drafts[:5], one_command=True)) == 5
    commands = {type(e).__name__ for e in oms.events()}
    assert "FulfillmentCreated" in commands
    assert "OrderStockHeld" not in commands  # sourced at once: never held first


@pytest.mark.parametrize(("orders", "rounds"), [(0, 1), (20_001, 1), (10, 0)])
def test_bench_refuses_what_it_cannot_run(orders: int, rounds: int) -> None:
    with pytest.raises(InvalidQuantity, match="bench takes 1 to 20,000 orders"):
        run(orders=orders, rounds=rounds)


@pytest.mark.parametrize(("orders", "p99"), [(1, 1), (100, 100), (1000, 991), (2000, 1981)])
def test_the_p99_is_the_order_below_which_99_in_100_fall(orders: int, p99: int) -> None:
    """Orders taking 1, 2, ... ``orders`` us: the p99 is the one at position
    ``int(0.99 * orders)`` of the sorted times (never past the slowest)."""
    seconds = tuple(n / 1e6 for n in range(orders, 0, -1))  # slowest first: sorting matters
    result = StoreResult("memory", (1.0,), seconds)
    assert result.p99_us == pytest.approx(p99)
    assert result.median_us == pytest.approx((orders + 1) / 2)


def test_the_machine_speed_is_the_fastest_of_its_tries() -> None:
    """The yardstick times the loop ``tries`` times and keeps the fastest: a report made
    without it says nothing of the machine."""
    seconds = python_loop_seconds(additions=1_000, tries=3)
    assert 0 < seconds < 1
    assert "machine speed" not in BenchReport(1, ()).render()
    assert BenchReport(1, ()).as_dict()["python_loop_seconds"] is None
