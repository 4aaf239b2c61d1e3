"""Stock levels and the append-only movement ledger they are the sum of."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

import attrs

from omscore.ids import LocationId, Sku


@attrs.frozen(slots=True)
class StockLevel:
    """One SKU at one location.

    ``available = on_hand - allocated - reserved - safety_stock``, never below zero.
    """

    on_hand: int = 0
    allocated: int = 0
    reserved: int = 0
    safety_stock: int = 0

    @property
    def available(self) -> int:
        """Units free to promise at this location."""
        return max(0, self.on_hand - self.allocated - self.reserved - self.safety_stock)

    def available_after_release(self, released: int) -> int:
        """Units free to promise once ``released`` reserved units are let go."""
        free = self.on_hand - self.allocated - self.reserved + released - self.safety_stock
        return max(0, free)

    @property
    def committed(self) -> int:
        """Units on hand that are allocated or reserved."""
        return self.allocated + self.reserved


class MovementKind(enum.StrEnum):
    """Why on hand or allocated changed."""

    RECEIPT = "receipt"
    ADJUSTMENT = "adjustment"
    COUNT = "count"
    ALLOCATION = "allocation"
    DEALLOCATION = "deallocation"
    SHIPMENT = "shipment"
    RESTOCK = "restock"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    DAMAGE = "damage"


@attrs.frozen(slots=True)
class StockMovement:
    """One ledger row: how on hand and allocated moved at a location, and why."""

    sku: Sku
    location_id: LocationId
    kind: MovementKind
    on_hand_delta: int
    allocated_delta: int
    reference: str
    at: datetime

    @property
    def quantity(self) -> int:
        """The signed size of the movement (on hand change, or allocated change)."""
        return self.on_hand_delta or self.allocated_delta


def replay(movements: Iterable[StockMovement]) -> dict[tuple[LocationId, Sku], tuple[int, int]]:
    """Sum a ledger from zero: (location, sku) -> (on_hand, allocated)."""
    totals: dict[tuple[LocationId, Sku], tuple[int, int]] = {}
    for m in movements:
        on_hand, allocated = totals.get((m.location_id, m.sku), (0, 0))
        totals[(m.location_id, m.sku)] = (on_hand + m.on_hand_delta, allocated + m.allocated_delta)
    return totals


@attrs.frozen(slots=True)
class Discrepancy:
    """A stock level that disagrees with its ledger (or its holds)."""

    location_id: LocationId
    sku: Sku
    field: str
    level: int
    expected: int
