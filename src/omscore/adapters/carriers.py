"""A table-rate carrier for demos and tests: deterministic rates, labels and tracking."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import attrs

from omscore.errors import CarrierError
from omscore.geo import Address, distance_km
from omscore.inventory import Location
from omscore.money import Money
from omscore.ports import Label


def _default_weight_bands() -> tuple[tuple[Decimal, Decimal], ...]:
    return (
        (Decimal(1), Decimal("4.90")),
        (Decimal(5), Decimal("6.90")),
        (Decimal(20), Decimal("9.90")),
        (Decimal("31.5"), Decimal("16.90")),
    )


def _default_zones() -> tuple[tuple[float, Decimal], ...]:
    return (
        (50.0, Decimal("1.00")),
        (300.0, Decimal("1.15")),
        (1000.0, Decimal("1.35")),
        (float("inf"), Decimal("1.80")),
    )


@attrs.frozen(slots=True)
class TableRateCarrier:
    """Rates from a table: the weight band's base rate times the distance zone's factor.

    Weight is ``units x unit_weight_kg``. Tracking numbers are derived from the fulfilment
    id, so the same fulfilment always gets the same label (the call is idempotent).
    """

    name: str = "TableRate"
    currency: str = "EUR"
    unit_weight_kg: Decimal = Decimal("0.5")
    weight_bands: tuple[tuple[Decimal, Decimal], ...] = attrs.field(factory=_default_weight_bands)
    zones: tuple[tuple[float, Decimal], ...] = attrs.field(factory=_default_zones)

    def quote(self, origin: Location, destination: Address | None, units: int) -> Money:
        """Base rate of the weight band times the zone factor, rounded to the minor unit."""
        weight = self.unit_weight_kg * units
        base = next((rate for limit, rate in self.weight_bands if weight <= limit), None)
        if base is None:
            raise CarrierError(
                f"{self.name} takes parcels up to {self.weight_bands[-1][0]} kg, got {weight} kg"
            )
        return (Money(base, self.currency) * self._zone_factor(origin, destination)).quantize()

    def _zone_factor(self, origin: Location, destination: Address | None) -> Decimal:
        if destination is None or destination.geo is None or origin.geo is None:
            return self.zones[0][1]
        km = distance_km(origin.geo, destination.geo)
        return next(factor for limit, factor in self.zones if km <= limit)

    def create_label(
        self,
        fulfillment_id: str,
        origin: Location,
        destination: Address | None,
        units: int,
        key: str,
    ) -> Label:
        """A label with a tracking number derived from the fulfilment id."""
        digest = hashlib.sha256(f"{self.name}:{fulfillment_id}".encode()).hexdigest()
        return Label(self.name, f"TR{digest[:12].upper()}", self.quote(origin, destination, units))

    def track(self, tracking: str) -> str:
        """Table-rate parcels report themselves in transit."""
        if not tracking.startswith("TR"):
            raise CarrierError(f"{tracking!r} is not a {self.name} tracking number")
        return "in_transit"
