"""One location's part in a sourcing decision (kept apart so that events can carry it)."""

from __future__ import annotations

import attrs

from omscore.ids import LocationId


@attrs.frozen(slots=True)
class LocationTrace:
    """One location's part in a plan: excluded (and why), or ranked and what it got."""

    location_id: LocationId
    used: bool
    units: int
    excluded: str | None = None
    rank: int | None = None
    detail: str = ""
