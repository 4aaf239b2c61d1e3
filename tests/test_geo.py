"""Geography: validated points and great-circle distances."""

from __future__ import annotations

import pytest
from hypothesis import given

from omscore import GeoPoint, distance_km
from omscore.errors import InvalidGeoPoint
from omscore.testing import strategies as oms_st


@pytest.mark.parametrize(("lat", "lon"), [(91, 0), (-90.5, 0), (0, 180.1), (0, -181), (True, 0)])
def test_points_outside_the_globe_are_refused(lat: float, lon: float) -> None:
    """Latitude in [-90, 90], longitude in [-180, 180], numbers only."""
    with pytest.raises(InvalidGeoPoint):
        GeoPoint(lat, lon)


@pytest.mark.parametrize(("lat", "lon"), [(90, 180), (-90, -180), (90.0, -180.0), (0, 0)])
def test_the_poles_and_the_date_line_are_on_the_globe(lat: float, lon: float) -> None:
    """The bounds themselves are valid points."""
    assert (GeoPoint(lat, lon).lat, GeoPoint(lat, lon).lon) == (lat, lon)


def test_berlin_to_munich_is_about_504_km() -> None:
    """A known distance (Berlin 52.52/13.405, Munich 48.137/11.575: about 504 km)."""
    assert distance_km(GeoPoint(52.52, 13.405), GeoPoint(48.137, 11.575)) == pytest.approx(
        504, abs=3
    )


@given(oms_st.geo_points(), oms_st.geo_points())
def test_distance_is_symmetric_and_bounded(a: GeoPoint, b: GeoPoint) -> None:
    """Property: d(a, b) == d(b, a), d(a, a) == 0, and nothing is farther than half the globe."""
    assert distance_km(a, b) == pytest.approx(distance_km(b, a))
    assert distance_km(a, a) == pytest.approx(0, abs=1e-6)
    assert 0 <= distance_km(a, b) <= 20_016
