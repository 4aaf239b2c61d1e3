"""Identifier types. Each is a ``str`` at run time and a distinct type for the checker."""

from __future__ import annotations

from typing import NewType

Sku = NewType("Sku", str)
OrderId = NewType("OrderId", str)
LineId = NewType("LineId", str)
LocationId = NewType("LocationId", str)
FulfillmentId = NewType("FulfillmentId", str)
ReturnId = NewType("ReturnId", str)
ReservationId = NewType("ReservationId", str)
ChannelId = NewType("ChannelId", str)


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
    "LocationId",
    "OrderId",
    "ReservationId",
    "ReturnId",
    "Sku",
]
