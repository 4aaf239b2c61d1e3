"""Stock points: warehouses, stores and dropship suppliers."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import date

import attrs

from omscore.errors import InvalidLocation
from omscore.geo import GeoPoint
from omscore.ids import LocationId, to_location_id


class LocationKind(enum.StrEnum):
    """What kind of stock point a location is."""

    WAREHOUSE = "warehouse"
    STORE = "store"
    SUPPLIER = "supplier"


class Capability(enum.StrEnum):
    """What a location can do for an order or a return."""

    SHIP = "ship"
    PICKUP = "pickup"
    SAME_DAY = "same_day"
    RETURNS = "returns"


def _check_priority(_: object, __: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidLocation(f"priority must be an int, got {value!r}")


def _check_capacity(_: object, __: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidLocation(f"daily capacity must be None or an int >= 0, got {value!r}")


def _capabilities(values: Iterable[Capability | str]) -> frozenset[Capability]:
    return frozenset(Capability(c) for c in values)


def _check_id(_: object, __: attrs.Attribute[LocationId], value: LocationId) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidLocation(f"location id must be a non-empty string, got {value!r}")


@attrs.frozen(slots=True)
class Location:
    """A stock point. Lower ``priority`` is preferred; ``daily_capacity`` caps the fulfilment
    orders it takes per day (``None``: no cap)."""

    id: LocationId = attrs.field(converter=to_location_id, validator=_check_id)
    kind: LocationKind = attrs.field(converter=LocationKind)
    geo: GeoPoint | None
    capabilities: frozenset[Capability] = attrs.field(converter=_capabilities)
    priority: int = attrs.field(default=100, validator=_check_priority)
    active: bool = True
    daily_capacity: int | None = attrs.field(default=None, validator=_check_capacity)
    name: str = ""
    version: int = 0

    def can(self, capability: Capability) -> bool:
        """True when the location has ``capability``."""
        return capability in self.capabilities


@attrs.frozen(slots=True)
class LocationLoad:
    """Fulfilment orders a location took on ``day`` (its daily capacity counter)."""

    location_id: LocationId
    day: date
    fulfillments: int = 0
    version: int = 0

    def used_on(self, day: date) -> int:
        """Fulfilment orders taken on ``day`` (0 for any other day)."""
        return self.fulfillments if self.day == day else 0

    def take(self, day: date, count: int) -> LocationLoad:
        """The load after ``count`` more fulfilment orders on ``day``."""
        return LocationLoad(self.location_id, day, self.used_on(day) + count, self.version + 1)
