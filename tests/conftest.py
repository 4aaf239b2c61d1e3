"""Shared fixtures: an OMS on the in-memory store with a manual clock and sequential ids."""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings

from omscore import (
    OMS,
    Address,
    Capability,
    Delivery,
    GeoPoint,
    LineDraft,
    Location,
    LocationKind,
    Money,
    OrderDraft,
)
from omscore.adapters.carriers import TableRateCarrier
from omscore.adapters.memory import MemoryStore
from omscore.ports import Label
from omscore.testing import ManualClock, SequentialIds

pytest_plugins = ["pytester"]  # test_contract_kit_catches runs the kit on broken stores

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile(
    "deep", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

BERLIN = Address(country="DE", postal_code="10115", city="Berlin", geo=GeoPoint(52.53, 13.38))


def eur(amount: str) -> Money:
    """Euros from a decimal string."""
    return Money(Decimal(amount), "EUR")


def draft(
    *lines: tuple[str, int],
    price: str = "10.00",
    channel: str = "web",
    delivery: Delivery | None = None,
    reservation_key: str | None = None,
) -> OrderDraft:
    """A EUR draft shipped to Berlin with ``(sku, quantity)`` lines at ``price`` each."""
    return OrderDraft(
        channel=channel,
        currency="EUR",
        lines=[LineDraft(sku=s, quantity=q, unit_price=eur(price)) for s, q in lines],
        delivery=delivery or Delivery.ship(BERLIN),
        reservation_key=reservation_key,
    )


def warehouse(location_id: str, priority: int = 1, geo: GeoPoint | None = None) -> Location:
    """A shipping warehouse."""
    return Location(
        id=location_id,
        kind=LocationKind.WAREHOUSE,
        geo=geo or GeoPoint(52.5, 13.4),
        capabilities=frozenset({Capability.SHIP, Capability.RETURNS}),
        priority=priority,
    )


def store_location(location_id: str, priority: int = 5, geo: GeoPoint | None = None) -> Location:
    """A store that ships, takes pickups and does same-day."""
    return Location(
        id=location_id,
        kind=LocationKind.STORE,
        geo=geo or GeoPoint(52.52, 13.41),
        capabilities=frozenset(Capability),
        priority=priority,
    )


class LabelRecorder:
    """A carrier that rates like ``TableRateCarrier`` and keeps each label's fulfilment
    order, origin and destination."""

    def __init__(self) -> None:
        self.rates = TableRateCarrier()
        self.labels: list[tuple[str, str, Address | None]] = []

    @property
    def depots(self) -> list[str]:
        """The origin of each label, in order."""
        return [origin for _, origin, _ in self.labels]

    def quote(self, origin: Location, destination: Address | None, units: int) -> Money:
        return self.rates.quote(origin, destination, units)

    def create_label(
        self,
        fulfillment_id: str,
        origin: Location,
        destination: Address | None,
        units: int,
        key: str,
    ) -> Label:
        self.labels.append((fulfillment_id, origin.id, destination))
        return self.rates.create_label(fulfillment_id, origin, destination, units, key)

    def track(self, tracking: str) -> str:
        return self.rates.track(tracking)


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock at 2026-01-01 09:00 UTC."""
    return ManualClock()


@pytest.fixture
def make_oms(clock: ManualClock) -> Callable[..., OMS]:
    """Build an OMS on a fresh MemoryStore with the manual clock and sequential ids."""

    def build(**kwargs: object) -> OMS:
        return OMS(MemoryStore(), clock=clock, ids=SequentialIds(), **kwargs)  # type: ignore[arg-type]

    return build


@pytest.fixture
def oms(make_oms: Callable[..., OMS]) -> OMS:
    """An OMS with one warehouse WH-1 (priority 1) and one store ST-1 (priority 5)."""
    system = make_oms()
    system.add_location(warehouse("WH-1"))
    system.add_location(store_location("ST-1"))
    return system
