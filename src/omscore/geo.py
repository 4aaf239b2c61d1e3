"""Points on the earth, great-circle distance, and postal addresses."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import attrs

from omscore.errors import InvalidArgument, InvalidGeoPoint

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius


def _check_lat(_: object, __: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not -90 <= value <= 90:
        raise InvalidGeoPoint(f"latitude must be a number in [-90, 90], got {value!r}")


def _check_lon(_: object, __: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not -180 <= value <= 180:
        raise InvalidGeoPoint(f"longitude must be a number in [-180, 180], got {value!r}")


@attrs.frozen(slots=True)
class GeoPoint:
    """A latitude and longitude in decimal degrees (WGS 84)."""

    lat: float = attrs.field(validator=_check_lat)
    lon: float = attrs.field(validator=_check_lon)


def distance_km(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle (haversine) distance between two points, in kilometres."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def distances_from(origin: GeoPoint) -> Callable[[GeoPoint], float]:
    """A function giving the great-circle distance in km from ``origin`` to a point; the
    origin's trigonometry is worked out once (for ranking many points against one)."""
    lat0, lon0 = math.radians(origin.lat), math.radians(origin.lon)
    cos0 = math.cos(lat0)
    sin, cos, radians, asin, sqrt = math.sin, math.cos, math.radians, math.asin, math.sqrt
    diameter = 2 * EARTH_RADIUS_KM

    def distance(point: GeoPoint) -> float:
        lat = radians(point.lat)
        h = sin((lat - lat0) / 2) ** 2 + cos0 * cos(lat) * sin((radians(point.lon) - lon0) / 2) ** 2
        return diameter * asin(min(1.0, sqrt(h)))

    return distance


def _address_lines(lines: object) -> tuple[object, ...]:
    """An address's lines as a tuple; one string alone would become its characters."""
    if isinstance(lines, str | bytes) or not isinstance(lines, Iterable):
        raise InvalidArgument(f"address lines must be a sequence of strings, got {lines!r}")
    return tuple(lines)


def _is_country_code(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 2
        and value.isascii()
        and value.isalpha()
        and value.isupper()
    )


@attrs.frozen(slots=True)
class Address:
    """A postal address; ``geo`` is optional and enables distance-based sourcing."""

    country: str
    postal_code: str
    city: str
    lines: tuple[str, ...] = attrs.field(default=(), converter=_address_lines)
    geo: GeoPoint | None = None
    name: str = ""

    def problems(self) -> list[str]:
        """What is malformed (empty when the address can be used): the country is an ISO
        3166-1 alpha-2 code ("DE"); the city is a non-empty string; the postal code, the
        name and each line are strings (some countries have no postal codes); ``geo`` is a
        :class:`GeoPoint` or None."""
        if (  # the usual case, at checkout: every field as it should be
            _is_country_code(self.country)
            and isinstance(self.city, str)
            and self.city.strip()
            and isinstance(self.postal_code, str)
            and isinstance(self.name, str)
            and (self.geo is None or isinstance(self.geo, GeoPoint))
            and all(isinstance(line, str) for line in self.lines)
        ):
            return []
        problems = []
        if not _is_country_code(self.country):
            problems.append(
                "the address country must be an ISO 3166-1 alpha-2 code (two capital letters, "
                f"such as 'DE'), got {self.country!r}"
            )
        if not isinstance(self.city, str) or not self.city.strip():
            problems.append(f"the address city must be a non-empty string, got {self.city!r}")
        problems += [
            f"the address {name} must be a string, got {value!r}"
            for name, value in (
                ("postal code", self.postal_code),
                ("name", self.name),
                *((f"line {n}", line) for n, line in enumerate(self.lines, start=1)),
            )
            if not isinstance(value, str)
        ]
        if self.geo is not None and not isinstance(self.geo, GeoPoint):
            problems.append(f"the address geo must be a GeoPoint, got {self.geo!r}")
        return problems
