"""Identifier types. Each is a ``str`` at run time and a distinct type for the checker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NewType

Sku = NewType("Sku", str)
OrderId = NewType("OrderId", str)
LineId = NewType("LineId", str)
LocationId = NewType("LocationId", str)
FulfillmentId = NewType("FulfillmentId", str)
ReturnId = NewType("ReturnId", str)
ReservationId = NewType("ReservationId", str)
ChannelId = NewType("ChannelId", str)


#: Units per order line, keyed by the line ids an order hands out or by plain strings
#: (a mapping's key type is invariant, so ``dict[LineId, int]`` is not a
#: ``Mapping[str, int]``; commands take either).
LineQuantities = Mapping[LineId, int] | Mapping[str, int]

#: Units per SKU, keyed by :data:`Sku` or by plain strings.
SkuQuantities = Mapping[Sku, int] | Mapping[str, int]


# Converters for model fields that take an id: a caller writes ``Location(id="WH-1")`` and
# the type checker accepts the plain ``str`` (the field still holds the id type).


def to_location_id(value: str) -> LocationId:
    """``value`` as a :data:`LocationId`."""
    return LocationId(value)


def to_line_id(value: str) -> LineId:
    """``value`` as a :data:`LineId`."""
    return LineId(value)


def to_sku(value: str) -> Sku:
    """``value`` as a :data:`Sku`."""
    return Sku(value)


__all__ = [
    "ChannelId",
    "FulfillmentId",
    "LineId",
    "LineQuantities",
    "LocationId",
    "OrderId",
    "ReservationId",
    "ReturnId",
    "Sku",
    "SkuQuantities",
]
