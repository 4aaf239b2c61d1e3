"""``python -m omscore bench``: every store timed, figures consistent, bad input refused."""

from __future__ import annotations

import json

import pytest

from omscore.__main__ import main
from omscore.adapters.memory import MemoryStore
from omscore.bench import BACKGROUND, prepared, run, timed_orders
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


def test_the_command_line_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--orders", "10", "--rounds", "1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["orders"] == 10
    assert set(figures["stores"]) == {"MemoryStore", "SqliteStore", BACKGROUND}
    assert figures["stores"]["SqliteStore"]["orders_per_second"] > 0


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
