"""Hypothesis strategies for omscore values, drafts and networks (public API).

Use them to property-test code built on omscore, e.g. your own sourcing policy::

    from hypothesis import given
    from omscore.testing import strategies as oms_st

    @given(oms_st.order_drafts())
    def test_my_rule(draft): ...

Requires ``hypothesis``: ``pip install "omscore[testing]"``.
"""

from __future__ import annotations

from decimal import Decimal

from omscore.testing._extra import missing_test_tool

try:
    from hypothesis import strategies as st
except ModuleNotFoundError as missing:
    raise missing_test_tool(__name__, "Hypothesis", missing) from missing

from omscore.geo import Address, GeoPoint
from omscore.ids import LineId, LocationId, Sku
from omscore.inventory import Capability, Location, LocationKind
from omscore.money import Money, minor_units
from omscore.orders import Delivery, DeliveryMethod, LineDraft, OrderDraft
from omscore.sourcing import NetworkSnapshot, RequestLine, SourcingRequest

#: Currencies with 0, 2 and 3 decimal places.
CURRENCIES = ("EUR", "USD", "JPY", "KWD", "GBP", "CHF")


def currencies() -> st.SearchStrategy[str]:
    """ISO 4217 codes of different minor units."""
    return st.sampled_from(CURRENCIES)


def money(
    currency: str | None = None, *, max_minor: int = 10_000_000, min_minor: int = 0
) -> st.SearchStrategy[Money]:
    """Money amounts whole to the minor unit, between ``min_minor`` and ``max_minor`` units."""
    codes = st.just(currency) if currency else currencies()
    return st.builds(Money.from_minor, st.integers(min_value=min_minor, max_value=max_minor), codes)


def precise_money(currency: str | None = None) -> st.SearchStrategy[Money]:
    """Money with more decimals than the currency's minor unit (for rounding tests)."""
    codes = st.just(currency) if currency else currencies()
    return codes.flatmap(
        lambda code: st.decimals(
            min_value=Decimal("-1000000"),
            max_value=Decimal("1000000"),
            places=minor_units(code) + 3,
            allow_nan=False,
            allow_infinity=False,
        ).map(lambda amount: Money(amount, code))
    )


def geo_points() -> st.SearchStrategy[GeoPoint]:
    """Any valid point."""
    return st.builds(
        GeoPoint,
        st.floats(min_value=-90, max_value=90, allow_nan=False),
        st.floats(min_value=-180, max_value=180, allow_nan=False),
    )


def addresses() -> st.SearchStrategy[Address]:
    """Addresses with a point."""
    return st.builds(
        Address,
        country=st.sampled_from(["DE", "FR", "US", "JP"]),
        postal_code=st.from_regex(r"[0-9]{5}", fullmatch=True),
        city=st.sampled_from(["Berlin", "Paris", "Austin", "Osaka"]),
        geo=geo_points(),
    )


def skus(count: int = 8) -> st.SearchStrategy[str]:
    """SKU codes from a small catalogue (``SKU-1`` ... ``SKU-count``), so lines collide."""
    return st.integers(min_value=1, max_value=count).map(lambda n: f"SKU-{n}")


def line_drafts(currency: str, *, max_quantity: int = 20) -> st.SearchStrategy[LineDraft]:
    """Valid line drafts in ``currency``: discount never above the line price."""

    def build(sku: str, quantity: int, price: Money, share: int, tax: Money) -> LineDraft:
        gross = price * quantity
        discount = gross.allocate([share, 100 - share])[0] if share else None
        return LineDraft(sku=sku, quantity=quantity, unit_price=price, discount=discount, tax=tax)

    return st.builds(
        build,
        skus(),
        st.integers(min_value=1, max_value=max_quantity),
        money(currency, max_minor=1_000_000),
        st.integers(min_value=0, max_value=100),
        money(currency, max_minor=100_000),
    )


def deliveries(
    pickup_locations: list[str] | None = None, *, same_day: bool = True
) -> st.SearchStrategy[Delivery]:
    """Ship, same-day (unless ``same_day=False``), or (when locations are given) pickup."""
    options = [st.builds(Delivery.ship, addresses())]
    if same_day:
        options.append(st.builds(Delivery.same_day, addresses()))
    if pickup_locations:
        options.append(st.sampled_from(pickup_locations).map(Delivery.pickup))
    return st.one_of(*options)


def order_drafts(
    *,
    currency: str | None = None,
    channels: tuple[str, ...] = ("web", "app", "marketplace"),
    max_lines: int = 5,
    max_quantity: int = 20,
    pickup_locations: list[str] | None = None,
    same_day: bool = True,
) -> st.SearchStrategy[OrderDraft]:
    """Valid order drafts."""
    codes = st.just(currency) if currency else currencies()
    return codes.flatmap(
        lambda code: st.builds(
            OrderDraft,
            channel=st.sampled_from(channels),
            currency=st.just(code),
            lines=st.lists(
                line_drafts(code, max_quantity=max_quantity), min_size=1, max_size=max_lines
            ),
            delivery=deliveries(pickup_locations, same_day=same_day),
            shipping_fee=st.one_of(st.none(), money(code, max_minor=2_000)),
            customer_ref=st.one_of(st.none(), st.sampled_from(["C-1", "C-2", "cust 7"])),
        )
    )


def location(
    location_id: str,
    *,
    kinds: tuple[LocationKind, ...] = tuple(LocationKind),
    usable: bool = False,
) -> st.SearchStrategy[Location]:
    """One location with ``location_id``: any kind, point, capabilities, priority, state,
    time zone; with ``usable``, active and with every capability."""
    return st.builds(
        Location,
        id=st.just(LocationId(location_id)),
        kind=st.sampled_from(kinds),
        geo=geo_points(),
        capabilities=(
            st.just(frozenset(Capability))
            if usable
            else st.frozensets(st.sampled_from(list(Capability)), min_size=1)
        ),
        priority=st.integers(min_value=0, max_value=5),
        active=st.just(True) if usable else st.booleans(),
        time_zone=st.none() | st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Tokyo"]),
    )


def locations(
    *,
    max_size: int = 8,
    kinds: tuple[LocationKind, ...] = tuple(LocationKind),
    usable: bool = False,
) -> st.SearchStrategy[list[Location]]:
    """A network of 1 to ``max_size`` locations with distinct ids ``L01`` ... ``L99``
    (with ``usable``, each active and with every capability)."""
    numbers = st.lists(
        st.integers(min_value=1, max_value=99), min_size=1, max_size=max_size, unique=True
    )
    return numbers.flatmap(
        lambda ns: st.tuples(
            *[location(f"L{n:02d}", kinds=kinds, usable=usable) for n in sorted(ns)]
        ).map(list)
    )


# --- sourcing -------------------------------------------------------------------------------


def snapshots(
    locations: list[Location], skus: list[str], *, max_units: int = 6, capacity: bool = True
) -> st.SearchStrategy[NetworkSnapshot]:
    """Availability of ``skus`` at ``locations`` (often zero) and, sometimes (unless
    ``capacity=False``), a capacity."""
    keys = [(loc.id, Sku(sku)) for loc in locations for sku in skus]
    capacities = st.dictionaries(
        st.sampled_from([LocationId(loc.id) for loc in locations]), st.integers(0, 3)
    )
    return st.builds(
        NetworkSnapshot,
        st.just(locations),
        st.fixed_dictionaries({k: st.integers(0, max_units) for k in keys}).map(
            lambda d: {k: v for k, v in d.items() if v}
        ),
        capacities if capacity else st.just({}),
    )


def requests(
    location_ids: list[str],
    skus: list[str],
    *,
    methods: tuple[DeliveryMethod, ...] = tuple(DeliveryMethod),
    max_lines: int = 4,
    max_quantity: int = 5,
    exclusions: bool = True,
    ship_complete: bool = False,
) -> st.SearchStrategy[SourcingRequest]:
    """Requests over ``skus`` (lines may share a SKU) by any of ``methods``; pickups name one
    of ``location_ids``; some locations may be excluded (unless ``exclusions=False``); with
    ``ship_complete``, every request asks for its units from one location or none."""

    def build(
        picks: list[tuple[str, int]],
        method: DeliveryMethod,
        destination: GeoPoint | None,
        exclude: frozenset[str],
        pickup: str,
    ) -> SourcingRequest:
        lines = [RequestLine(LineId(f"L{i}"), Sku(s), q) for i, (s, q) in enumerate(picks, 1)]
        return SourcingRequest(
            lines=lines,
            delivery=method,
            destination=None if method is DeliveryMethod.PICKUP else destination,
            exclude=exclude,
            pickup_location=LocationId(pickup) if method is DeliveryMethod.PICKUP else None,
            ship_complete=ship_complete,
        )

    return st.builds(
        build,
        st.lists(
            st.tuples(st.sampled_from(skus), st.integers(1, max_quantity)),
            min_size=1,
            max_size=max_lines,
        ),
        st.sampled_from(methods),
        st.one_of(st.none(), geo_points()),
        (
            st.frozensets(st.sampled_from(location_ids), max_size=2)
            if exclusions
            else st.just(frozenset())
        ),
        st.sampled_from(location_ids),
    )


def sourcing_cases(
    *,
    max_locations: int = 6,
    skus: tuple[str, ...] = ("A", "B", "C"),
    methods: tuple[DeliveryMethod, ...] = tuple(DeliveryMethod),
    usable: bool = False,
    ship_complete: bool = False,
) -> st.SearchStrategy[tuple[SourcingRequest, NetworkSnapshot]]:
    """A request with a snapshot of a small network to plan it on.

    By default most cases leave few locations eligible (inactive, lacking the capability,
    excluded, out of capacity), which tests the rules of eligibility. ``usable=True`` makes
    every location active, with every capability, no capacity limit and none excluded, so
    that where the units come from is the policy's choice: for tests of that choice (the
    delivery method still narrows it: a pickup's store, the same-day radius). With
    ``ship_complete`` every request is for its units from one location or none."""
    sku_list = list(skus)
    return locations(max_size=max_locations, usable=usable).flatmap(
        lambda locs: st.tuples(
            requests(
                [loc.id for loc in locs],
                sku_list,
                methods=methods,
                exclusions=not usable,
                ship_complete=ship_complete,
            ),
            snapshots(locs, sku_list, capacity=not usable),
        )
    )
