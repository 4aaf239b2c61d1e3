"""Helpers shared by the benchmarks: repeated runs, median and p99, in one process, and
fresh stores to run them on."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.ports import Store

#: The stores a benchmark compares, by the name :func:`fresh_store` takes.
STORES = ("MemoryStore", "SqliteStore")


@attrs.frozen
class Timing:
    """Seconds per call over repeated calls."""

    name: str
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median seconds per call."""
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        """99th percentile seconds per call."""
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]

    def line(self, unit: str = "us") -> str:
        """One report line."""
        scale = {"us": 1e6, "ms": 1e3}[unit]
        return (
            f"{self.name:<44} median {self.median * scale:9.1f} {unit}"
            f"   p99 {self.p99 * scale:9.1f} {unit}   n={len(self.samples)}"
        )


def measure(name: str, call: Callable[[], object], repeat: int, warmup: int = 20) -> Timing:
    """Time ``call`` ``repeat`` times after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return Timing(name, tuple(samples))


@contextmanager
def fresh_store(name: str) -> Iterator[Store]:
    """An empty store of the kind ``name`` names; a ``SqliteStore`` is a file in a
    temporary directory, closed and removed afterwards."""
    if name == "MemoryStore":
        yield MemoryStore()
        return
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(str(Path(directory) / "benchmark.db"))
        try:
            yield store
        finally:
            store.close()
