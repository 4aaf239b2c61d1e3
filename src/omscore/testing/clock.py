"""A clock that moves only when told to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from omscore.errors import InvalidArgument, OmsError


class ManualClock:
    """A settable clock for tests: ``now()`` is ``start`` until ``advance`` or ``set``.

    ``start`` must be timezone-aware (naive times are taken as UTC).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = _aware(start or datetime(2026, 1, 1, 9, 0, tzinfo=UTC))

    def now(self) -> datetime:
        """The clock's current time."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` (never backwards); returns the new time."""
        if not isinstance(delta, timedelta):
            raise InvalidArgument(f"a ManualClock advances by a timedelta, got {delta!r}")
        if delta < timedelta(0):
            raise OmsError(f"a ManualClock only moves forward, got {delta}")
        self._now += delta
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (not before the current time; naive is taken as UTC)."""
        moment = _aware(moment)
        if moment < self._now:
            raise OmsError(f"a ManualClock only moves forward: {moment} is before {self._now}")
        self._now = moment


def _aware(moment: object) -> datetime:
    """``moment`` as a timezone-aware datetime (a naive one is taken as UTC)."""
    if not isinstance(moment, datetime):
        raise InvalidArgument(f"a ManualClock's time is a datetime, got {moment!r}")
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)
