"""The default clock and id generator used when the host gives none."""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import UTC, datetime


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)


class UuidIds:
    """Random ids: ``prefix-`` followed by 16 hex digits of a UUID4."""

    def new_id(self, prefix: str) -> str:
        """A new random id."""
        return f"{prefix}-{uuid.uuid4().hex[:16]}"


class SequentialIds:
    """Deterministic ids ``prefix-1``, ``prefix-2`` ... per prefix (tests, simulations)."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()

    def new_id(self, prefix: str) -> str:
        """The next id for ``prefix``."""
        with self._lock:
            counter = self._counters.setdefault(prefix, itertools.count(1))
            return f"{prefix}-{next(counter)}"
