"""A channel that ``requires`` capabilities sells only the stock of locations that have them:
a web shop that ships never promises what sits in a store that cannot ship, and a store
that loses (or gains) the capability leaves (or joins) the pool, its holds moved with it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import attrs
import pytest

from omscore import OMS, Delivery
from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.errors import InvalidChannelConfig
from omscore.inventory import Capability, InventoryItem
from omscore.ports import Store
from omscore.sourcing import PriorityPolicy
from omscore.testing import ManualClock, SequentialIds
from omscore.testing.invariants import check_books

from .conftest import draft, store_location, warehouse

STORES: dict[str, Callable[[], Store]] = {
    "memory": MemoryStore,
    "sqlite": lambda: SqliteStore(":memory:"),
}
PICKUPS_ONLY = {Capability.PICKUP}


@pytest.fixture(params=sorted(STORES))
def oms(request: pytest.FixtureRequest) -> OMS:
    """WH-1 (priority 3) with 2 units of A; ST-1 (priority 1, the pool's first) with 5,
    which hands out pickups but does not ship; web requires shipping."""
    system = OMS(
        STORES[request.param](), clock=ManualClock(), ids=SequentialIds(), sourcing=PriorityPolicy()
    )
    system.add_location(warehouse("WH-1", priority=3))
    system.add_location(store_location("ST-1", priority=1))
    system.update_location("ST-1", capabilities=PICKUPS_ONLY)
    system.receive("WH-1", "A", 2)
    system.receive("ST-1", "A", 5)
    system.configure_channel("web", requires=[Capability.SHIP])
    return system


def held_at(oms: OMS, order_id: str) -> dict[str, int]:
    """Units the order holds, by location."""
    item: InventoryItem = oms.inventory("A")
    return {str(k): v for k, v in sorted(item.order_holds_by_location(order_id).items())}  # type: ignore[arg-type]


def test_a_web_shop_that_ships_promises_only_what_can_ship(oms: OMS) -> None:
    """ATP on web is WH-1's 2 units, not the store's 5; the whole network has 7."""
    assert oms.available("A", "web") == 2
    assert oms.available("A") == 7
    assert oms.channel_pool("web") == ("WH-1",)


def test_a_web_order_holds_where_it_can_ship_from(oms: OMS) -> None:
    """The store comes first in priority, but cannot ship: the order holds at WH-1, and
    the third unit waits (backordered) rather than sitting on the store's shelf."""
    order = oms.place_order(draft(("A", 3)))
    assert held_at(oms, order.id) == {"WH-1": 2}
    assert oms.inventory("A").backordered_for(order.id, order.lines[0].id) == 1
    check_books(oms)


def test_a_store_that_loses_shipping_leaves_the_pool_with_its_holds(oms: OMS) -> None:
    """ST-2 ships and holds a web order's units and a cart's; once it cannot ship, both
    move to WH-1 (what WH-1 cannot hold waits), web's ATP drops, and a pickup order at
    ST-2 keeps its hold there."""
    oms.add_location(store_location("ST-2", priority=2))
    oms.receive("ST-2", "A", 4)
    order = oms.place_order(draft(("A", 2)))
    assert held_at(oms, order.id) == {"ST-2": 2}
    oms.reserve("A", 1, ttl=timedelta(minutes=30), key="cart", channel="web")
    pickup = oms.place_order(draft(("A", 1), channel="store", delivery=Delivery.pickup("ST-2")))
    assert held_at(oms, pickup.id) == {"ST-2": 1}
    assert oms.available("A", "web") == 2  # 2 at WH-1 and 4 at ST-2, 4 held
    oms.update_location("ST-2", capabilities=PICKUPS_ONLY)
    assert oms.channel_pool("web") == ("WH-1",)
    assert held_at(oms, order.id) == {"WH-1": 2}
    assert held_at(oms, pickup.id) == {"ST-2": 1}
    assert oms.inventory("A").checkout_holds("cart") == ()  # WH-1 had no unit left for it
    assert oms.available("A", "web") == 0
    check_books(oms)


def carts_at(oms: OMS, key: str) -> dict[str, int]:
    """Units a cart holds of A, by location."""
    return {h.location_id: h.quantity for h in oms.inventory("A").checkout_holds(key)}


@pytest.mark.parametrize("change", ["loses shipping", "closes"])
def test_a_click_and_collect_cart_stays_at_its_store(oms: OMS, change: str) -> None:
    """ST-2 ships and is in web's pool; a web cart to be shipped and one to be collected
    at ST-2 hold units there. When ST-2 leaves the pool (it stops shipping) or closes for
    a while, the cart to be shipped moves to WH-1; the click & collect cart stays at its
    store, as a pickup order's hold does, and its order takes it over there."""
    oms.add_location(store_location("ST-2", priority=2))
    oms.receive("ST-2", "A", 4)
    ttl = timedelta(minutes=30)
    oms.reserve("A", 1, ttl=ttl, key="ship-cart", channel="web")
    collect = oms.reserve(
        "A", 2, ttl=ttl, key="collect-cart", channel="web", pickup_location="ST-2"
    )
    assert (collect.pickup_location, carts_at(oms, "ship-cart")) == ("ST-2", {"ST-2": 1})
    if change == "closes":
        oms.update_location("ST-2", active=False)
    else:
        oms.update_location("ST-2", capabilities=PICKUPS_ONLY)
    assert carts_at(oms, "ship-cart") == {"WH-1": 1}
    assert carts_at(oms, "collect-cart") == {"ST-2": 2}
    assert oms.inventory("A").reservation("collect-cart").pickup_location == "ST-2"
    check_books(oms)
    if change == "closes":
        oms.update_location("ST-2", active=True)
    pickup = draft(("A", 2), delivery=Delivery.pickup("ST-2"))
    order = oms.place_order(attrs.evolve(pickup, reservation_key="collect-cart"))
    assert held_at(oms, order.id) == {"ST-2": 2}
    assert carts_at(oms, "collect-cart") == {}
    check_books(oms)


def test_a_store_that_starts_shipping_joins_the_pool_and_serves_waiting_orders(
    oms: OMS,
) -> None:
    """A web order for 4 holds WH-1's 2 and waits for 2; once ST-1 ships, it joins web's
    pool and the waiting units are held there."""
    order = oms.place_order(draft(("A", 4)))
    assert held_at(oms, order.id) == {"WH-1": 2}
    oms.update_location("ST-1", capabilities={Capability.PICKUP, Capability.SHIP})
    assert oms.channel_pool("web") == ("ST-1", "WH-1")
    assert held_at(oms, order.id) == {"ST-1": 2, "WH-1": 2}
    assert oms.available("A", "web") == 3
    assert oms.allocate(order.id).units_allocated == 4
    check_books(oms)


def test_a_location_that_stays_in_the_pool_keeps_its_holds(oms: OMS) -> None:
    """WH-1 gains a capability and still ships: it stays in web's pool, and the web
    order's holds stay there, though WH-0, first in the pool, now has stock too."""
    order = oms.place_order(draft(("A", 2)))
    assert held_at(oms, order.id) == {"WH-1": 2}
    oms.add_location(warehouse("WH-0", priority=1))
    oms.receive("WH-0", "A", 5)
    oms.update_location("WH-1", capabilities={Capability.SHIP, Capability.RETURNS})
    assert held_at(oms, order.id) == {"WH-1": 2}
    assert oms.inventory("A").backorders == ()
    check_books(oms)


def test_a_channel_without_requirements_keeps_a_store_that_stops_shipping(oms: OMS) -> None:
    """The marketplace sells from every location: ST-1's stock counts and its holds stay,
    whatever ST-1 can do."""
    order = oms.place_order(draft(("A", 1), channel="marketplace"))
    assert held_at(oms, order.id) == {"ST-1": 1}
    oms.update_location("ST-1", capabilities={Capability.PICKUP, Capability.SHIP})
    oms.update_location("ST-1", capabilities=PICKUPS_ONLY)
    assert held_at(oms, order.id) == {"ST-1": 1}
    assert oms.available("A", "marketplace") == 6


@pytest.mark.parametrize(
    ("requires", "words"),
    [
        ("ship", "must be a collection"),
        (["fly"], "unknown required capabilities"),
        ([None], "unknown required capabilities"),
    ],
)
def test_a_requirement_that_is_no_capability_is_refused(
    oms: OMS, requires: object, words: str
) -> None:
    """A string alone or an unknown capability: refused, the channel as it was."""
    before = (oms.channel_pool("web"), oms.events())
    with pytest.raises(InvalidChannelConfig, match=words):
        oms.configure_channel("web", requires=requires)  # type: ignore[arg-type]
    assert (oms.channel_pool("web"), oms.events()) == before


def test_capabilities_by_name_are_accepted(oms: OMS) -> None:
    """``requires=["ship"]`` is the same as ``[Capability.SHIP]``."""
    channel = oms.configure_channel("web", requires=["ship", "same_day"])
    assert channel.requires == {Capability.SHIP, Capability.SAME_DAY}
    assert oms.channel_pool("web") == ()


def test_a_location_with_just_the_required_capabilities_feeds_the_channel(oms: OMS) -> None:
    """ST-1 hands out pickups and can do nothing else: a channel that requires exactly
    that sells its stock, and so does web from a warehouse that can only ship."""
    oms.configure_channel("collect", requires=[Capability.PICKUP])
    assert oms.channel_pool("collect") == ("ST-1",)
    assert oms.available("A", "collect") == 5
    oms.update_location("WH-1", capabilities={Capability.SHIP})
    assert oms.channel_pool("web") == ("WH-1",)
    assert oms.available("A", "web") == 2
