"""Stock points: warehouses, stores and dropship suppliers."""

from __future__ import annotations

import enum
import zoneinfo
from collections.abc import Iterable
from datetime import date, datetime

import attrs

from omscore._checks import flag, instance_of, members, number, optional, text
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


def capabilities_of(values: Iterable[Capability | str]) -> frozenset[Capability]:
    """Capabilities given by member or value; :class:`InvalidLocation` names any unknown
    (a string alone would be taken letter by letter)."""
    return members(values, Capability, "capabilities", InvalidLocation)


def _kind(value: LocationKind | str) -> LocationKind:
    known = [k.value for k in LocationKind]
    if not isinstance(value, str) or value not in known:
        raise InvalidLocation(f"location kind must be one of {known}, got {value!r}")
    return LocationKind(value)


def _check_time_zone(_: object, __: attrs.Attribute[str | None], value: str | None) -> None:
    if value is None or (isinstance(value, str) and _is_zone(value)):
        return
    raise InvalidLocation(
        f"time zone must be None or an IANA time zone name such as 'Europe/Berlin', got {value!r}"
    )


def _is_zone(name: str) -> bool:
    """Whether the time zone database knows ``name`` (an absolute path, a folder or a file
    that is no zone is not one)."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _check_id(_: object, __: attrs.Attribute[LocationId], value: LocationId) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidLocation(f"location id must be a non-empty string, got {value!r}")


@attrs.frozen(slots=True)
class Location:
    """A stock point. Lower ``priority`` is preferred; ``daily_capacity`` caps the fulfilment
    orders it takes per day (``None``: no cap). ``time_zone``, an IANA name such as
    ``"America/New_York"``, says when its day begins; without one, the day is the clock's."""

    id: LocationId = attrs.field(converter=to_location_id, validator=_check_id)
    kind: LocationKind = attrs.field(converter=_kind)
    geo: GeoPoint | None = attrs.field(validator=optional(instance_of(GeoPoint, InvalidLocation)))
    capabilities: frozenset[Capability] = attrs.field(converter=capabilities_of)
    priority: int = attrs.field(default=100, validator=_check_priority)
    active: bool = attrs.field(default=True, validator=flag(InvalidLocation))
    daily_capacity: int | None = attrs.field(default=None, validator=_check_capacity)
    name: str = attrs.field(default="", validator=text(InvalidLocation))
    version: int = attrs.field(default=0, validator=number(InvalidLocation, whole=True))
    time_zone: str | None = attrs.field(default=None, validator=_check_time_zone)

    def can(self, capability: Capability) -> bool:
        """True when the location has ``capability``."""
        return capability in self.capabilities

    def day_at(self, moment: datetime) -> date:
        """The location's calendar day at ``moment`` (an aware datetime): in its own time
        zone, or in ``moment``'s when it has none."""
        if self.time_zone is None:
            return moment.date()
        return moment.astimezone(zoneinfo.ZoneInfo(self.time_zone)).date()


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
