"""How an order reaches its customer."""

from __future__ import annotations

import enum

import attrs

from omscore.geo import Address
from omscore.ids import LocationId


class DeliveryMethod(enum.StrEnum):
    """Ship to an address, pick up at a location (click & collect), or same-day delivery."""

    SHIP = "ship"
    PICKUP = "pickup"
    SAME_DAY = "same_day"


@attrs.frozen(slots=True)
class Delivery:
    """The delivery of an order: a method and where it goes (an address, or a pickup location).

    Build it with :meth:`ship`, :meth:`pickup` or :meth:`same_day`.
    """

    method: DeliveryMethod
    address: Address | None = None
    pickup_location: LocationId | None = None

    @classmethod
    def ship(cls, address: Address) -> Delivery:
        """Parcel delivery to ``address``."""
        return cls(DeliveryMethod.SHIP, address=address)

    @classmethod
    def pickup(cls, location_id: str) -> Delivery:
        """Click & collect at ``location_id``."""
        return cls(DeliveryMethod.PICKUP, pickup_location=LocationId(location_id))

    @classmethod
    def same_day(cls, address: Address) -> Delivery:
        """Same-day delivery to ``address`` from a location near it."""
        return cls(DeliveryMethod.SAME_DAY, address=address)

    def problems(self) -> list[str]:
        """What is missing or malformed for this method (empty when complete)."""
        if not isinstance(self.method, DeliveryMethod):
            known = [m.value for m in DeliveryMethod]
            return [f"delivery method must be one of {known}, got {self.method!r}"]
        pickup = self.pickup_location
        if pickup is not None and (not isinstance(pickup, str) or not pickup.strip()):
            return [f"a pickup location must be a non-empty string, got {pickup!r}"]
        if self.method is DeliveryMethod.PICKUP:
            return [] if pickup else ["a pickup delivery needs a pickup location"]
        if self.address is None:
            return [f"a {self.method.value} delivery needs an address"]
        if not isinstance(self.address, Address):
            return [f"the delivery address must be an Address, got {self.address!r}"]
        return self.address.problems()
