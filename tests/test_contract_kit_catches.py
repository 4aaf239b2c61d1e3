"""The adapter contract kit fails a store with a bug, and names the behaviour it broke.

Each store of ``tests.broken_stores`` is the reference ``MemoryStore`` with one rule
broken. The kit runs on it as an integrator would run it on theirs (a test module with a
subclass of ``StoreContract``), and the tests of that rule must fail. The reference store
itself, run the same way, must pass every test: the failures are the bug's, not the
harness's.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from omscore.testing.contract import twin_machine

from .broken_stores import FrozenReturnsStore

MODULE = """
from omscore.testing.contract import StoreContract
from omscore.adapters.memory import MemoryStore
from tests.broken_stores import *


class TestTheStore(StoreContract):
    def make_store(self, tmp_path):
        return {store}()
"""


def _failed(pytester: pytest.Pytester, store: str, claims: str = "") -> set[str]:
    """The kit's tests that fail on ``store``, by name (``claims``: lines that go into the
    test class, as an integrator states what the store promises)."""
    pytester.makepyfile(test_kit=MODULE.format(store=store) + claims)
    passed, _, failed = pytester.inline_run("-p", "no:cacheprovider").listoutcomes()
    assert passed, "the kit ran no test"
    return {report.nodeid.rsplit("::", 1)[-1] for report in failed}


def test_the_reference_store_passes_the_kit_run_this_way(pytester: pytest.Pytester) -> None:
    assert _failed(pytester, "MemoryStore") == set()


@pytest.mark.parametrize(
    ("store", "caught_by"),
    [
        (
            "LastWriteWinsStore",
            {
                "test_a_stale_write_raises_concurrency_conflict",
                "test_writing_over_an_aggregate_not_read_is_a_conflict",
                "test_creating_an_existing_id_is_a_conflict",
            },
        ),
        (
            "EagerStore",
            {
                "test_an_uncommitted_unit_of_work_writes_nothing",
                "test_an_exception_rolls_everything_back",
            },
        ),
        (
            "DoubledOutboxStore",
            {"test_each_commit_appears_once", "test_the_outbox_keeps_commit_order"},
        ),
        ("CommittedReadsStore", {"test_a_unit_of_work_reads_its_own_writes"}),
        ("LedgerlessStore", {"test_inventory_items_and_the_ledger_round_trip"}),
        (
            "ForgetfulStore",
            {
                "test_idempotency_records_keep_their_results",
                "test_a_repeated_command_key_changes_nothing",
            },
        ),
        ("NoExpiryIndexStore", {"test_reservations_expire_by_the_clock"}),
        ("FrozenReturnsStore", {"test_a_later_write_replaces_the_earlier_one"}),
    ],
)
def test_the_kit_fails_a_store_with_a_bug(
    pytester: pytest.Pytester, store: str, caught_by: set[str]
) -> None:
    failed = _failed(pytester, store)
    assert caught_by <= failed, f"{store} failed only {sorted(failed)}"


def test_the_kit_fails_a_store_that_says_it_serialises_writers_but_interleaves_them(
    pytester: pytest.Pytester,
) -> None:
    """A store that claims ``interleaved_units_of_work = False`` is spared the stale-write
    test; the kit checks the claim instead. MemoryStore interleaves its writers."""
    claims = "    interleaved_units_of_work = False\n"
    failed = _failed(pytester, "MemoryStore", claims)
    assert failed == {"test_a_second_writer_waits_and_reads_what_the_first_committed"}


def test_the_reference_model_catches_a_store_that_loses_later_steps_of_a_return() -> None:
    """The machine delivers parcels and returns their units, so a return that stays as it
    was requested shows (a receipt refused on one store only, or the stores' returns
    differing) in a run that returns something."""
    search = settings(
        max_examples=100,
        stateful_step_count=30,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
    )
    with pytest.raises(AssertionError, match=r"state\.return_something\("):
        run_state_machine_as_test(twin_machine(FrozenReturnsStore), settings=search)
