"""Network-size benchmark: ``allocate`` on a chain of 10, 100 and 1,000 stores.

    python benchmarks/network.py [--stores 10,100,1000] [--orders 400]

An omnichannel retailer ships from its stores: hundreds of them, each stocking part of
the range, each with a daily capacity of fulfilment orders. Every allocation reads the
SKU's levels across the channel's pool and, for each location with units to offer, its
counter of the day; ``LowestCostPolicy`` then prices every store that could ship the
order. For each network size and each store, ``--orders`` one-line orders to Berlin are
placed, then each ``allocate`` is timed; stores stock 30 % of 200 SKUs (so a SKU is at
about 30 % of the stores), with and without a daily capacity. The baseline is the
smallest network, in the same process: the ratio says what a bigger chain costs.
"""

from __future__ import annotations

import argparse
import random
import time

from _timing import STORES, Timing, fresh_store

from omscore import OMS
from omscore.adapters.system import SequentialIds
from omscore.geo import Address, GeoPoint
from omscore.inventory import Capability, Location, LocationKind
from omscore.money import Money
from omscore.orders import Delivery, LineDraft, OrderDraft
from omscore.ports import Store
from omscore.service import StockPosition
from omscore.sourcing import LowestCostPolicy
from omscore.testing import ManualClock

SKUS = [f"SKU-{n:03d}" for n in range(200)]
BERLIN = Address("DE", "10115", "Berlin", geo=GeoPoint(52.53, 13.38))


def chain(store: Store, stores: int, capacity: bool, seed: int = 3) -> OMS:
    """An OMS over ``stores`` shipping stores across Germany, each stocking 30 % of SKUS."""
    rng = random.Random(seed)
    oms = OMS(store, clock=ManualClock(), ids=SequentialIds(), sourcing=LowestCostPolicy())
    for n in range(stores):
        oms.add_location(
            Location(
                id=f"ST-{n:04d}",
                kind=LocationKind.STORE,
                geo=GeoPoint(47.5 + rng.random() * 7, 6 + rng.random() * 9),
                capabilities={Capability.SHIP, Capability.PICKUP},
                priority=2,
                daily_capacity=10_000 if capacity else None,
            )
        )
    oms.receive_many(
        [
            StockPosition(f"ST-{n:04d}", sku, 1_000)
            for n in range(stores)
            for sku in SKUS
            if rng.random() < 0.3
        ]
    )
    return oms


def allocations(store: Store, stores: int, capacity: bool, orders: int) -> Timing:
    """Seconds per ``allocate`` of ``orders`` placed one-line orders on the chain."""
    oms = chain(store, stores, capacity)
    rng = random.Random(11)
    placed = [
        oms.place_order(
            OrderDraft(
                channel="web",
                currency="EUR",
                delivery=Delivery.ship(BERLIN),
                lines=[LineDraft(rng.choice(SKUS), 1, Money("19.99", "EUR"))],
            )
        ).id
        for _ in range(orders)
    ]
    samples = []
    for order_id in placed:
        start = time.perf_counter()
        oms.allocate(order_id)
        samples.append(time.perf_counter() - start)
    return Timing(f"{stores:>5} stores", tuple(samples))


def main() -> None:
    """Time every network size on both stores and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="10,100,1000")
    parser.add_argument("--orders", type=int, default=400)
    args = parser.parse_args()
    sizes = [int(x) for x in args.stores.split(",")]
    print(
        f"omscore network benchmark: allocate, {args.orders} one-line orders per network; "
        f"reproduce: python benchmarks/network.py --stores {args.stores} --orders {args.orders}"
    )
    for name in STORES:
        for capacity in (False, True):
            print(f"{name}, {'a daily capacity at every store' if capacity else 'no capacity'}")
            baseline = None
            for size in sizes:
                with fresh_store(name) as store:
                    timing = allocations(store, size, capacity, args.orders)
                baseline = baseline or timing.median
                print(f"  {timing.line()}   x{timing.median / baseline:.1f}")


if __name__ == "__main__":
    main()
