"""What sourcing is asked (a request) and what it knows (a network snapshot)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

import attrs

from omscore._values import remember_last
from omscore.errors import InvalidSourcingRequest
from omscore.geo import GeoPoint
from omscore.ids import ChannelId, LineId, LocationId, Sku, to_line_id, to_sku
from omscore.inventory import Location
from omscore.orders.delivery import DeliveryMethod


def _check_quantity(_: object, __: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidSourcingRequest(f"a request line needs a quantity >= 1, got {value!r}")


@attrs.frozen(slots=True)
class RequestLine:
    """Units of one order line that need a location."""

    line_id: LineId = attrs.field(converter=to_line_id)
    sku: Sku = attrs.field(converter=to_sku)
    quantity: int = attrs.field(validator=_check_quantity)


def _lines(values: Iterable[RequestLine]) -> tuple[RequestLine, ...]:
    lines = tuple(values)
    ids = [line.line_id for line in lines]
    if len(set(ids)) != len(ids):
        raise InvalidSourcingRequest(f"request line ids must be unique, got {ids}")
    return lines


def _location_set(values: Iterable[str]) -> frozenset[LocationId]:
    if isinstance(values, frozenset):
        return values
    return frozenset(LocationId(v) for v in values)


def _check_flag(_: object, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        raise InvalidSourcingRequest(f"{attribute.name} must be True or False, got {value!r}")


#: What a trace says of a location the request excludes, unless it says why.
EXCLUDED = "excluded by the request"


def _check_reason(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidSourcingRequest(f"{attribute.name} must be a non-empty text, got {value!r}")


def _delivery_method(value: DeliveryMethod | str) -> DeliveryMethod:
    return value if isinstance(value, DeliveryMethod) else DeliveryMethod(value)


@attrs.frozen(slots=True)
class SourcingRequest:
    """Which units need a location, how they travel, and where to.

    ``destination`` of ``None`` (a pickup) counts as distance 0 from everywhere.
    ``exclude`` lists locations that must not be used (e.g. ones that rejected the order);
    ``exclude_reason`` is what the trace says of them (the OMS: "rejected this order").
    ``ship_complete`` asks for every unit from one location, or none at all: only a
    location that holds the whole request may serve it.
    """

    lines: tuple[RequestLine, ...] = attrs.field(converter=_lines)
    delivery: DeliveryMethod = attrs.field(converter=_delivery_method)
    destination: GeoPoint | None = None
    channel: ChannelId | None = None
    exclude: frozenset[LocationId] = attrs.field(default=frozenset(), converter=_location_set)
    pickup_location: LocationId | None = None
    ship_complete: bool = attrs.field(default=False, validator=_check_flag)
    exclude_reason: str = attrs.field(default=EXCLUDED, validator=_check_reason)


def _locations(values: Iterable[Location]) -> tuple[Location, ...]:
    return _unique_locations(tuple(values))


@remember_last  # the service passes one tuple while the network stays the same
def _unique_locations(locations: tuple[Location, ...]) -> tuple[Location, ...]:
    ids = [loc.id for loc in locations]
    if len(set(ids)) != len(ids):
        raise InvalidSourcingRequest("snapshot location ids must be unique")
    return locations


def _available(
    values: Mapping[tuple[LocationId, Sku], int] | Mapping[tuple[str, str], int],
) -> Mapping[tuple[LocationId, Sku], int]:
    # Ids are str at run time: the mapping is kept as given (no copy on the allocation path).
    return cast("Mapping[tuple[LocationId, Sku], int]", values)


def _capacity(values: Mapping[LocationId, int] | Mapping[str, int]) -> Mapping[LocationId, int]:
    return cast("Mapping[LocationId, int]", values)


@attrs.frozen(slots=True)
class NetworkSnapshot:
    """The network as sourcing sees it.

    ``available`` maps ``(location_id, sku)`` to units free for this request (safety stock
    already subtracted); ``capacity`` maps a location to the fulfilment orders it can still
    take today (absent: unlimited). The service gives capacity for the locations in
    ``available`` only: the others have nothing to offer.
    """

    locations: tuple[Location, ...] = attrs.field(converter=_locations)
    available: Mapping[tuple[LocationId, Sku], int] = attrs.field(
        factory=dict, converter=_available
    )
    capacity: Mapping[LocationId, int] = attrs.field(factory=dict, converter=_capacity)
