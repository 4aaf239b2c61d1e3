"""Inventory pooling: locations, channel pools, stock levels, the ledger, holds and ATP."""

from omscore.inventory.channel import Channel, ChannelPool, default_channel
from omscore.inventory.item import (
    Backorder,
    ExpectedArrival,
    InventoryItem,
    ItemChange,
    Placement,
    Reservation,
    StockHold,
    Supply,
    Transfer,
)
from omscore.inventory.location import Capability, Location, LocationKind, LocationLoad
from omscore.inventory.stock import (
    Discrepancy,
    MovementKind,
    StockLevel,
    StockMovement,
    replay,
)

__all__ = [
    "Backorder",
    "Capability",
    "Channel",
    "ChannelPool",
    "Discrepancy",
    "InventoryItem",
    "ItemChange",
    "Location",
    "LocationKind",
    "LocationLoad",
    "MovementKind",
    "Placement",
    "Reservation",
    "StockHold",
    "StockLevel",
    "StockMovement",
    "ExpectedArrival",
    "Supply",
    "Transfer",
    "default_channel",
    "replay",
]
