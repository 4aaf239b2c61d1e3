"""The table-rate carrier: weight bands, distance zones, labels and tracking."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import attrs
import pytest

from omscore import OMS, Address, GeoPoint, Location
from omscore.adapters.carriers import TableRateCarrier
from omscore.adapters.memory import MemoryStore
from omscore.adapters.payments import FakePaymentGateway
from omscore.errors import CarrierError
from omscore.ports import Label
from omscore.testing import ManualClock, SequentialIds

from .conftest import BERLIN, LabelRecorder, draft, eur, warehouse

ORIGIN = warehouse("WH-BER", geo=GeoPoint(52.53, 13.38))
HAMBURG = Address(country="DE", postal_code="20095", city="Hamburg", geo=GeoPoint(53.55, 9.99))
MUNICH = Address(country="DE", postal_code="80331", city="Munich", geo=GeoPoint(48.14, 11.58))
NO_GEO = Address(country="DE", postal_code="20095", city="Hamburg")


@pytest.mark.parametrize(
    ("destination", "units", "rate"),
    [
        (BERLIN, 1, "4.90"),  # 0.5 kg, the first band, the first zone
        (BERLIN, 2, "4.90"),  # 1 kg: a band's limit belongs to it
        (BERLIN, 3, "6.90"),  # 1.5 kg: the next band
        (HAMBURG, 3, "7.94"),  # about 255 km: x 1.15, rounded half-even
        (MUNICH, 1, "6.62"),  # about 500 km: x 1.35
        (NO_GEO, 3, "6.90"),  # no coordinates: the first zone
        (None, 63, "16.90"),  # 31.5 kg: the heaviest band
    ],
)
def test_a_rate_is_the_weight_bands_rate_times_the_zones_factor(
    destination: Address | None, units: int, rate: str
) -> None:
    assert TableRateCarrier().quote(ORIGIN, destination, units) == eur(rate)


def test_a_zones_limit_belongs_to_it() -> None:
    """A parcel exactly as far as a zone reaches (here 0 km: Berlin from the Berlin
    warehouse) is priced in that zone, not the next, as a band's weight limit is."""
    carrier = TableRateCarrier(zones=((0.0, Decimal("1.00")), (float("inf"), Decimal("2.00"))))
    assert carrier.quote(ORIGIN, BERLIN, 1) == eur("4.90")
    assert carrier.quote(ORIGIN, HAMBURG, 1) == eur("9.80")  # further: the next zone


def test_a_parcel_over_the_heaviest_band_is_refused() -> None:
    with pytest.raises(CarrierError, match=r"takes parcels up to 31.5 kg, got 32.0 kg"):
        TableRateCarrier().quote(ORIGIN, BERLIN, 64)


def test_a_fulfilment_always_gets_the_same_label_and_it_can_be_tracked() -> None:
    carrier = TableRateCarrier()
    label = carrier.create_label("O-1-F1", ORIGIN, HAMBURG, 3, "key-1")
    again = carrier.create_label("O-1-F1", ORIGIN, HAMBURG, 3, "key-2")
    other = carrier.create_label("O-1-F2", ORIGIN, HAMBURG, 3, "key-3")
    assert label == again != other
    assert (label.carrier, label.rate, len(label.tracking)) == ("TableRate", eur("7.94"), 14)
    assert carrier.track(label.tracking) == "in_transit"


def test_a_tracking_number_of_another_carrier_is_refused() -> None:
    with pytest.raises(CarrierError, match="'1Z999' is not a TableRate tracking number"):
        TableRateCarrier().track("1Z999")


def test_a_location_without_coordinates_is_in_the_first_zone() -> None:
    nowhere = Location(id="SUP-1", kind="supplier", geo=None, capabilities=["ship"])
    assert TableRateCarrier().quote(nowhere, MUNICH, 1) == eur("4.90")


class MislabellingCarrier(LabelRecorder):
    """A carrier adapter with a bug: its labels come back as ``wrong(label)``."""

    def __init__(self, wrong: Callable[[Label], object]) -> None:
        super().__init__()
        self.wrong = wrong

    def create_label(
        self,
        fulfillment_id: str,
        origin: Location,
        destination: Address | None,
        units: int,
        key: str,
    ) -> Label:
        """Buy the label, then misreport it."""
        label = super().create_label(fulfillment_id, origin, destination, units, key)
        return self.wrong(label)  # type: ignore[return-value]


class CrashingCarrier(LabelRecorder):
    """A carrier adapter whose HTTP client fails on every label."""

    def create_label(
        self,
        fulfillment_id: str,
        origin: Location,
        destination: Address | None,
        units: int,
        key: str,
    ) -> Label:
        """Fail as a network library does."""
        raise OSError("network is unreachable")


def test_a_carrier_that_crashes_refuses_the_shipment_with_a_carrier_error() -> None:
    """Its own error becomes a CarrierError raised from it; nothing is recorded."""
    oms = OMS(MemoryStore(), clock=ManualClock(), ids=SequentialIds(), carrier=CrashingCarrier())
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 5)
    order = oms.place_order(draft(("A", 2)), allocate=True)
    kept = (oms.get_order(order.id), len(oms.events()))
    message = "the carrier port's create_label raised OSError: network is unreachable"
    with pytest.raises(CarrierError, match=message) as refused:
        oms.ship(order.fulfillments[0].id)
    assert isinstance(refused.value.__cause__, OSError)
    assert (oms.get_order(order.id), len(oms.events())) == kept


@pytest.mark.parametrize(
    "wrong",
    [
        lambda label: None,
        lambda label: label.tracking,
        lambda label: attrs.evolve(label, tracking=""),
        lambda label: attrs.evolve(label, carrier=" "),
        lambda label: attrs.evolve(label, tracking=42),
    ],
)
def test_a_label_without_a_tracking_number_refuses_the_shipment_and_the_return(
    wrong: Callable[[Label], object],
) -> None:
    """A parcel recorded with no tracking number (or a label that is no Label) is lost to
    the customer: shipping, and approving a return, refuse it with CarrierError and record
    nothing."""
    oms = OMS(
        MemoryStore(),
        clock=ManualClock(),
        ids=SequentialIds(),
        carrier=MislabellingCarrier(wrong),
        payments=FakePaymentGateway(),
    )
    oms.add_location(warehouse("WH-1"))
    oms.receive("WH-1", "A", 5)
    order = oms.place_order(draft(("A", 2)), allocate=True)
    parcel = order.fulfillments[0].id
    kept = (oms.get_order(order.id), len(oms.events()))
    with pytest.raises(CarrierError, match="create_label returned no Label with a tracking"):
        oms.ship(parcel)
    assert (oms.get_order(order.id), len(oms.events())) == kept
    oms.ship(parcel, tracking="1Z999", carrier="UPS")  # a label bought elsewhere
    oms.deliver(parcel)
    rma = oms.request_return(order.id, {order.lines[0].id: 1})
    with pytest.raises(CarrierError, match="create_label returned no Label with a tracking"):
        oms.approve_return(rma.id)
    assert oms.get_return(rma.id).status == "requested"
