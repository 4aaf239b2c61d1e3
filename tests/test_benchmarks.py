"""Every benchmark in ``benchmarks/`` still runs, on a tiny load.

The figures of the performance guide come from these scripts; one that no longer runs
(a step it times was renamed or moved) would leave the guide unreproducible without
anyone noticing. The runs are far too small to mean anything as measurements.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"

#: Each script with arguments small enough for CI. ``instructions.py`` runs only its
#: child part: the callgrind runs around it take about a minute even for a few orders.
TINY_RUNS: dict[str, list[str]] = {
    "breakdown.py": ["--orders", "30"],
    "commands.py": ["--orders", "300"],
    "hot_sku.py": ["--open", "20", "--samples", "5"],
    "instructions.py": ["--child", "5"],
    "inventory.py": [],
    "network.py": ["--stores", "3,6", "--orders", "5"],
    "pre_orders.py": ["--waiting", "20", "--samples", "5"],
    "processes.py": ["--orders", "60", "--processes", "1,2", "--rounds", "1"],
    "queues.py": ["--history", "50", "--live", "10", "--repeat", "5"],
    "reallocation.py": ["--orders", "20"],
    "record_sourcing.py": ["--orders", "20", "--rounds", "1"],
    "relay.py": ["--sizes", "500", "--page", "10", "--pages", "3"],
    "sourcing.py": ["--orders", "20"],
    "store.py": ["--orders", "40", "--rounds", "1"],
}
#: Modules the scripts share; not run on their own.
HELPERS = {"_timing.py"}


def test_every_benchmark_has_a_tiny_run() -> None:
    scripts = {p.name for p in BENCHMARKS.glob("*.py")} - HELPERS
    assert scripts == set(TINY_RUNS)


def run_benchmark(script: str, arguments: list[str], directory: Path) -> str:
    """The script's output; the script must end well."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *arguments],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("script", sorted(TINY_RUNS))
def test_the_benchmark_runs(script: str, tmp_path: Path) -> None:
    output = run_benchmark(script, TINY_RUNS[script], tmp_path)
    if script != "instructions.py":  # the child prints nothing; its parent prints the count
        assert "reproduce" in output, output[-2000:]


def test_the_instruction_count_can_run_on_sqlite(tmp_path: Path) -> None:
    run_benchmark("instructions.py", ["--child", "5", "--sqlite"], tmp_path)


def test_the_store_benchmark_also_runs_as_one_command(tmp_path: Path) -> None:
    output = run_benchmark("store.py", [*TINY_RUNS["store.py"], "--one-command"], tmp_path)
    assert "place_order(allocate=True)" in output
    assert "MemoryStore + the same SQL" in output


def test_the_store_benchmark_splits_the_stores_python_from_the_domains(tmp_path: Path) -> None:
    # The interleaved run replays each command's recorded transaction after it, and fails
    # when the orders ran another number of commands than the store recorded.
    output = run_benchmark("store.py", TINY_RUNS["store.py"], tmp_path)
    assert "ceiling: a store with no Python of its own" in output
    (near,) = [line for line in output.splitlines() if "SqliteStore / the ceiling" in line]
    assert float(near.split()[4]) > 0, near
    assert "the domain beside its SQL" in output
    assert "the store's own" in output
    assert "same SQL, in-memory copy" in output
    assert "machine speed: a loop of 10,000,000 Python additions took" in output


@pytest.mark.parametrize(("synchronous", "pragma"), [("NORMAL", 1), ("FULL", 2)])
def test_the_bare_replay_syncs_as_the_store_does(
    synchronous: str, pragma: int, tmp_path: Path
) -> None:
    """With ``--synchronous FULL`` the baseline pays for the same syncs as the store."""
    store_benchmark = benchmark_module("store.py")
    bare = store_benchmark.BareReplay(tmp_path / "bare.db", synchronous=synchronous)
    assert bare.connection.execute("PRAGMA synchronous").fetchone()[0] == pragma
    bare.close()


def test_the_store_benchmark_runs_with_full_syncs(tmp_path: Path) -> None:
    output = run_benchmark("store.py", [*TINY_RUNS["store.py"], "--synchronous", "FULL"], tmp_path)
    assert "--rounds 1 --synchronous FULL" in output
    assert "SqliteStore / bare SQL" in output


def benchmark_module(script: str) -> ModuleType:
    """A benchmark script imported as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(script.removesuffix(".py"), BENCHMARKS / script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_instructions_are_summed_by_the_library_they_ran_in() -> None:
    """Self costs go to their object, names defined once are found again by id, and the
    inclusive cost after a ``calls=`` line is the callee's, not counted again."""
    profile = "\n".join(
        [
            "events: Ir",
            "ob=(1) /usr/lib/libpython3.11.so.1.0",
            "fl=(1) ceval.c",
            "fn=(1) eval",
            "10 500",
            "+2 250",
            "cob=(2) /usr/lib/libsqlite3.so.0",
            "cfn=(2) step",
            "calls=1 0",
            "12 9000",
            "ob=(2)",
            "fn=(2)",
            "0 1000",
            "* 7",
            "ob=(1)",
            "fn=(1)",
            "-1 3",
        ]
    )
    libraries = benchmark_module("instructions.py").by_library(profile)
    assert libraries == {"libpython3.11.so.1.0": 753, "libsqlite3.so.0": 1007}
