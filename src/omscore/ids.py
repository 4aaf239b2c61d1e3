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
