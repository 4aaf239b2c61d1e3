"""The main job: a simulated omnichannel retailer running on omscore.

``python -m omscore simulate`` builds a retailer (warehouses, stores, a dropship supplier;
channels web, marketplace and store), then runs a period of trade on a store: checkouts with
reservations, orders shipped, collected in store and delivered the same day, sourcing with
the chosen policy, rejections and re-sourcing, shipments and deliveries, pickups collected
or expired (shipped to the store when it cannot fill them), stores closing for a few hours
(their holds move elsewhere), orders changed in their edit window, returns with
dispositions, refunds and exchanges, and stock receipts. It is deterministic for a seed,
streams (only orders in flight are kept in memory), and ends with a report.
"""

from __future__ import annotations

import heapq
import math
import random
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO

import attrs

from omscore.adapters.carriers import TableRateCarrier
from omscore.adapters.payments import FakePaymentGateway
from omscore.adapters.system import SequentialIds
from omscore.errors import InvalidQuantity, OmsError
from omscore.geo import Address, GeoPoint, distance_km
from omscore.ids import LineId, LocationId
from omscore.inventory import Capability, Location, LocationKind
from omscore.money import Money
from omscore.orders import (
    ACTIVE_FULFILLMENT,
    Delivery,
    FulfillmentOrder,
    FulfillmentStatus,
    HoldKind,
    LineDraft,
    Order,
    OrderDraft,
    PaymentKind,
)
from omscore.ports import Store
from omscore.returns import Disposition, Return, ReturnPolicy
from omscore.service import OMS, StockPosition
from omscore.sourcing import (
    DeepestStockPolicy,
    FewestShipmentsPolicy,
    LowestCostPolicy,
    NearestPolicy,
    PriorityPolicy,
    SourcingPolicy,
)
from omscore.testing.clock import ManualClock

#: The retailer's sourcing, by ``--policy``; pickups a store cannot fill are shipped to it.
POLICIES: dict[str, Callable[[], SourcingPolicy]] = {
    "lowest_cost": lambda: LowestCostPolicy(allow_ship_to_store=True),
    "fewest_shipments": lambda: FewestShipmentsPolicy(allow_ship_to_store=True),
    "nearest": lambda: NearestPolicy(allow_ship_to_store=True),
    "deepest_stock": lambda: DeepestStockPolicy(allow_ship_to_store=True),
    "priority": lambda: PriorityPolicy(allow_ship_to_store=True),
}

# (city, latitude, longitude): the retailer's German network and its customers.
CITIES = (
    ("Berlin", 52.52, 13.40),
    ("Hamburg", 53.55, 9.99),
    ("Munich", 48.14, 11.58),
    ("Cologne", 50.94, 6.96),
    ("Frankfurt", 50.11, 8.68),
    ("Stuttgart", 48.78, 9.18),
    ("Düsseldorf", 51.23, 6.78),
    ("Leipzig", 51.34, 12.37),
    ("Dortmund", 51.51, 7.47),
    ("Essen", 51.46, 7.01),
    ("Bremen", 53.08, 8.80),
    ("Dresden", 51.05, 13.74),
    ("Hanover", 52.38, 9.73),
    ("Nuremberg", 49.45, 11.08),
)
WAREHOUSES = ("Hamburg", "Berlin", "Frankfurt", "Munich")
SKUS = 300
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
#: What customer service gives back for a late parcel.
GOODWILL = Money("5.00", "EUR")
#: How long after checkout a customer who asked for it may still change the order; the
#: shop sources it when the window closes.
EDIT_WINDOW = timedelta(minutes=30)


@attrs.define
class Report:
    """What the simulation counted."""

    orders: int = 0
    units: int = 0
    units_allocated_first: int = 0
    shipments: int = 0
    split_orders: int = 0
    distance_units_km: float = 0.0
    units_sourced: int = 0
    units_from_stores: int = 0
    pickups: int = 0
    pickups_collected: int = 0
    pickups_collected_in_part: int = 0
    pickups_expired: int = 0
    shipped_to_store: int = 0
    store_closures: int = 0
    resourced_at_closures: int = 0
    edits: int = 0
    fraud_reviews: int = 0
    fraud_cancelled: int = 0
    same_day: int = 0
    rejections: int = 0
    short_picks: int = 0
    shipped_in_parts: int = 0
    returns: int = 0
    refunded: Money = attrs.field(factory=lambda: Money.zero("EUR"))
    restocked: int = 0
    exchanges: int = 0
    exchange_refunded: Money = attrs.field(factory=lambda: Money.zero("EUR"))
    credit_given_back: Money = attrs.field(factory=lambda: Money.zero("EUR"))
    goodwill_refunds: int = 0
    goodwill_refunded: Money = attrs.field(factory=lambda: Money.zero("EUR"))
    reservations_expired: int = 0
    cancelled_units: int = 0
    receipts: int = 0
    refused: int = 0
    #: The refused commands by command and error, e.g. ``{"reserve InsufficientStock": 3}``.
    refusals: dict[str, int] = attrs.field(factory=dict)
    commands: int = 0
    stock_conserved: bool = False
    discrepancies: int = 0
    work_left_open: int = 0
    orders_left_waiting: int = 0
    elapsed_s: float = 0.0
    peak_memory_mb: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, with the derived rates."""
        data = attrs.asdict(self)
        data["refunded"] = str(self.refunded)
        data["goodwill_refunded"] = str(self.goodwill_refunded)
        data["exchange_refunded"] = str(self.exchange_refunded)
        data["credit_given_back"] = str(self.credit_given_back)
        data.update(self.rates())
        return data

    def rates(self) -> dict[str, float]:
        """Fill rate, shipments per order, split rate, distance, store share, throughput."""
        orders = max(self.orders, 1)
        return {
            "fill_rate": round(self.units_allocated_first / max(self.units, 1), 4),
            "shipments_per_order": round(self.shipments / orders, 3),
            "split_rate": round(self.split_orders / orders, 4),
            "average_km_per_unit": round(self.distance_units_km / max(self.units_sourced, 1), 1),
            "ship_from_store_share": round(self.units_from_stores / max(self.units_sourced, 1), 4),
            "orders_per_second": round(self.orders / max(self.elapsed_s, 1e-9), 1),
            "commands_per_second": round(self.commands / max(self.elapsed_s, 1e-9), 1),
        }

    def render(self) -> str:
        """A readable report."""
        r = self.rates()
        lines = [
            "omscore simulation report",
            f"  orders                 {self.orders:>12,}   units {self.units:,}",
            f"  fill rate (first try)  {r['fill_rate']:>12.1%}",
            f"  shipments per order    {r['shipments_per_order']:>12.3f}   split rate "
            f"{r['split_rate']:.1%}, {self.shipped_in_parts:,} shipped in parts",
            f"  average distance       {r['average_km_per_unit']:>12.1f} km per unit",
            f"  ship-from-store share  {r['ship_from_store_share']:>12.1%}",
            f"  pickups                {self.pickups:>12,}   collected {self.pickups_collected:,}"
            f" ({self.pickups_collected_in_part:,} in part), expired {self.pickups_expired:,},"
            f" {self.shipped_to_store:,} shipped to the store",
            f"  same-day orders        {self.same_day:>12,}",
            f"  orders edited          {self.edits:>12,}   (in the {EDIT_WINDOW.seconds // 60} "
            "minutes before sourcing)",
            f"  rejections re-sourced  {self.rejections:>12,}   and {self.short_picks:,} short "
            "picks (a unit not found)",
            f"  store closures         {self.store_closures:>12,}   (their holds moved elsewhere, "
            f"{self.resourced_at_closures:,} orders' unstarted work re-sourced)",
            f"  fraud reviews          {self.fraud_reviews:>12,}   {self.fraud_cancelled:,} "
            "cancelled, the rest sourced",
            f"  returns                {self.returns:>12,}   refunded {self.refunded}, "
            f"restocked {self.restocked:,} units",
            f"  exchanges              {self.exchanges:>12,}   for another item, "
            f"refunded {self.exchange_refunded} in price differences and "
            f"{self.credit_given_back} of credit unused",
            f"  goodwill refunds       {self.goodwill_refunds:>12,}   refunded "
            f"{self.goodwill_refunded} for late parcels",
            f"  reservations expired   {self.reservations_expired:>12,}",
            f"  units cancelled        {self.cancelled_units:>12,}   (waited too long)",
            f"  stock receipts         {self.receipts:>12,}",
            f"  refused commands       {self.refused:>12,}{self._refusals_said()}",
            f"  stock conserved        {'yes' if self.stock_conserved else 'NO':>12}   "
            f"(ledger replays to every level; {self.discrepancies} discrepancies)",
            f"  work left open         {self.work_left_open:>12,}   (fulfilment orders not "
            "delivered, collected or ended)",
            f"  orders left waiting    {self.orders_left_waiting:>12,}   (not wholly allocated, "
            "or on hold)",
            f"  throughput             {r['orders_per_second']:>12,.1f} orders/s, "
            f"{r['commands_per_second']:,.1f} commands/s",
            f"  elapsed                {self.elapsed_s:>12.1f} s",
            f"  peak memory            {self.peak_memory_mb:>12.1f} MB",
        ]
        return "\n".join(lines)

    def _refusals_said(self) -> str:
        """The refusals by command and error, the most frequent first."""
        if not self.refusals:
            return ""
        ranked = sorted(self.refusals.items(), key=lambda kv: (-kv[1], kv[0]))
        return "   (" + ", ".join(f"{what} {count:,}" for what, count in ranked) + ")"


class Simulation:
    """One retailer, one period of trade, on one store."""

    def __init__(
        self,
        store: Store,
        *,
        seed: int,
        policy: str,
        progress: TextIO | None,
        record_sourcing: bool = False,
    ) -> None:
        self.rng = random.Random(seed)
        self.clock = ManualClock(START)
        # A long run keeps no call log and only the latest keys (a retry reuses its key at
        # once), so the simulated gateway does not grow with every payment ever made.
        self.gateway = FakePaymentGateway(record_calls=False, remember_keys=10_000)
        self.oms = OMS(
            store,
            sourcing=POLICIES[policy](),
            carrier=TableRateCarrier(),
            payments=self.gateway,
            clock=self.clock,
            ids=SequentialIds(),
            return_policy=ReturnPolicy(
                window=timedelta(days=30),
                restocking_fee_percent=5,
                refund_shipping="if_all_returned",
            ),
            pickup_expiry=timedelta(days=3),
            record_sourcing=record_sourcing,
        )
        self.progress = progress
        self.customers = 1
        self.report = Report()
        self.agenda: list[tuple[datetime, int, str, str]] = []
        self.sequence = 0
        self.locations: dict[str, Location] = {}
        self.prices = [
            Money(Decimal(self.rng.randrange(499, 19999)) / 100, "EUR") for _ in range(SKUS)
        ]
        self.popularity = [1 / (rank + 1) ** 1.05 for rank in range(SKUS)]
        self.retries: dict[str, int] = {}
        self.retry_due: set[str] = set()
        self.scheduled: set[str] = set()  # fulfilment orders a location will work on
        self.withdrawn: set[str] = set()  # scheduled, then sourced again elsewhere
        self.replacements: set[str] = set()  # exchanges' orders not settled yet

    # --- the retailer -----------------------------------------------------------------------

    def build(self) -> None:
        """Locations, channels and opening stock."""
        for name, lat, lon in CITIES:
            if name in WAREHOUSES:
                self._add(
                    f"WH-{name[:3].upper()}",
                    LocationKind.WAREHOUSE,
                    lat,
                    lon,
                    {Capability.SHIP, Capability.RETURNS},
                    1,
                )
            self._add(
                f"ST-{name[:3].upper()}",
                LocationKind.STORE,
                lat + 0.01,
                lon + 0.01,
                set(Capability),
                5,
            )
        self._add("SUP-1", LocationKind.SUPPLIER, 51.0, 10.0, {Capability.SHIP}, 9)
        self.oms.configure_channel("web", kinds=list(LocationKind), low_stock_threshold=5)
        self.oms.configure_channel(
            "marketplace", kinds=[LocationKind.WAREHOUSE, LocationKind.SUPPLIER], buffer=2
        )
        self.oms.configure_channel("store", kinds=[LocationKind.STORE])
        positions = []
        for index in range(SKUS):
            sku = f"SKU-{index:03d}"
            for location in self.locations.values():
                units = self._opening_stock(location, index)
                if units:
                    positions.append(StockPosition(location.id, sku, units))
        self.oms.receive_many(positions, reference="opening stock")

    def _add(
        self,
        location_id: str,
        kind: LocationKind,
        lat: float,
        lon: float,
        capabilities: set[Capability],
        priority: int,
    ) -> None:
        location = Location(
            id=LocationId(location_id),
            kind=kind,
            geo=GeoPoint(lat, lon),
            capabilities=frozenset(capabilities),
            priority=priority,
            name=location_id,
        )
        self.oms.add_location(location)
        self.locations[location.id] = location

    def _opening_stock(self, location: Location, index: int) -> int:
        depth = max(2, int(600 / (index + 1) ** 0.7))
        if location.kind is LocationKind.WAREHOUSE:
            return self.rng.randint(depth // 2, depth) if self.rng.random() < 0.8 else 0
        if location.kind is LocationKind.STORE:
            return self.rng.randint(1, 6) if index < 120 and self.rng.random() < 0.6 else 0
        return 500 if index >= 200 else 0

    # --- the period -------------------------------------------------------------------------

    def run(self, orders: int) -> Report:
        """Trade until ``orders`` were placed and everything in flight settled."""
        started = time.perf_counter()
        self.build()
        self.customers = max(1, orders // 3)  # most customers come back now and then
        step = timedelta(minutes=5)
        for n in range(orders):
            self.clock.advance(step)
            self._due()
            self._checkout(n)
            if n % 100 == 99:
                self._housekeeping()
                self._replenish()
            if n % 500 == 120:
                self._close_a_store()
            if self.progress and n % max(1, orders // 20) == 0 and n:
                elapsed = time.perf_counter() - started
                print(
                    f"  {n:>9,} / {orders:,} orders  ({n / elapsed:,.0f} orders/s)",
                    file=self.progress,
                    flush=True,
                )
        while self.agenda:
            self.clock.set(max(self.clock.now(), self.agenda[0][0]))
            self._due()
            self._housekeeping()
        self._housekeeping()
        discrepancies = self.oms.reconcile()
        self.report.discrepancies = len(discrepancies)
        self.report.stock_conserved = not discrepancies
        unfinished = [*ACTIVE_FULFILLMENT, FulfillmentStatus.SHIPPED]
        self.report.work_left_open = len(
            self.oms.stalled_fulfillments(timedelta(0), statuses=unfinished)
        )
        self.report.orders_left_waiting = len(self.oms.order_queue())
        self.report.elapsed_s = time.perf_counter() - started
        self.report.peak_memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return self.report

    def _later(self, delay: timedelta, action: str, subject: str) -> None:
        self.sequence += 1
        heapq.heappush(self.agenda, (self.clock.now() + delay, self.sequence, action, subject))

    def _due(self) -> None:
        now = self.clock.now()
        while self.agenda and self.agenda[0][0] <= now:
            _, _, action, subject = heapq.heappop(self.agenda)
            getattr(self, f"_{action}")(subject)

    def _try(self, command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.report.commands += 1
        try:
            return command(*args, **kwargs)
        except OmsError as error:
            self.report.refused += 1
            refusal = f"{command.__name__} {type(error).__name__}"
            self.report.refusals[refusal] = self.report.refusals.get(refusal, 0) + 1
            return None

    def _housekeeping(self) -> None:
        self.report.reservations_expired += self._try(self.oms.expire_reservations) or 0
        self.report.pickups_expired += self._try(self.oms.expire_pickups) or 0
        self._review_fraud()
        self._count_credit_given_back()

    def _count_credit_given_back(self) -> None:
        """Replacement orders settled since: the credit their cancelled units never used
        went back on the original's payment."""
        for order_id in sorted(self.replacements):
            order = self.oms.get_order(order_id)
            if order.fully_settled:
                self.replacements.discard(order_id)
                given_back = (
                    p.amount
                    for p in order.payments
                    if p.kind is PaymentKind.CREDIT_REFUNDED and p.key.startswith("credit-back:")
                )
                self.report.credit_given_back += sum(given_back, Money.zero("EUR"))

    def _close_a_store(self) -> None:
        """A store closes for a few hours (a stocktake, a staff shortage): what it holds for
        orders and carts moves to the locations still open, and it reopens later."""
        stores = sorted(x.id for x in self.locations.values() if x.kind is LocationKind.STORE)
        store = self.rng.choice(stores)
        if self._try(self.oms.update_location, store, active=False) is not None:
            self.report.store_closures += 1
            self._source_again_without(store)
            self._later(timedelta(hours=self.rng.randint(2, 6)), "reopen", store)

    def _source_again_without(self, store: str) -> None:
        """The orders the closed store had not started on are sourced again elsewhere;
        pickups there wait for it to reopen."""
        waiting = self.oms.fulfillment_queue(store, statuses=[FulfillmentStatus.OPEN])
        for order_id in dict.fromkeys(q.order_id for q in waiting):
            if self.oms.get_order(order_id).delivery.pickup_location == store:
                continue
            if self._try(self.oms.reallocate, order_id, reason=f"{store} closed") is None:
                continue
            self.report.resourced_at_closures += 1
            order = self.oms.get_order(order_id)
            for f in order.fulfillments:
                if f.status is FulfillmentStatus.OPEN:
                    self._schedule_work(f)
                elif f.status is FulfillmentStatus.WITHDRAWN and f.id in self.scheduled:
                    self.scheduled.discard(f.id)
                    self.withdrawn.add(f.id)
            if order.open_units:
                self._retry_later(order.id)

    def _reopen(self, store: str) -> None:
        self._try(self.oms.update_location, store, active=True)

    def _replenish(self) -> None:
        """Reorder what runs low on the web: a purchase order received at a warehouse."""
        skus = [f"SKU-{i:03d}" for i in range(SKUS)]
        low = [sku for sku, atp in self.oms.available_many(skus, channel="web").items() if atp < 20]
        warehouses = [
            loc.id for loc in self.locations.values() if loc.kind is LocationKind.WAREHOUSE
        ]
        for sku in low:
            target = self.rng.choice(warehouses)
            self._try(self.oms.receive, target, sku, 120, reference=f"PO-{sku}-{self.sequence}")
            self.report.receipts += 1

    # --- customers --------------------------------------------------------------------------

    def _checkout(self, n: int) -> None:
        rng = self.rng
        name, lat, lon = rng.choice(CITIES)
        home = Address(
            country="DE",
            postal_code=f"{rng.randint(10000, 99999)}",
            city=name,
            geo=GeoPoint(lat + rng.uniform(-0.1, 0.1), lon + rng.uniform(-0.1, 0.1)),
        )
        roll = rng.random()
        channel = "web" if roll < 0.65 else "marketplace" if roll < 0.85 else "store"
        lines = self._basket()
        delivery = Delivery.ship(home)
        if channel == "store" or rng.random() < 0.12:
            store = self._store_with(lines, home)
            if store is not None:
                delivery = Delivery.pickup(store)
            elif channel == "store":
                channel = "web"
        elif channel == "web" and rng.random() < 0.1:
            delivery = Delivery.same_day(home)
        key = None
        if rng.random() < 0.3:
            key = f"cart-{n}"
            for line in lines:  # a cart to collect in store holds the store's units
                self._try(
                    self.oms.reserve,
                    line.sku,
                    line.quantity,
                    channel=channel,
                    ttl=timedelta(minutes=30),
                    key=key,
                    pickup_location=delivery.pickup_location,
                )
            if rng.random() < 0.1:
                return  # abandoned: the reservation expires
        draft = OrderDraft(
            channel=channel,
            currency="EUR",
            lines=lines,
            delivery=delivery,
            shipping_fee=Money("4.95", "EUR") if delivery.address else None,
            reservation_key=key,
            customer_ref=self._customer(n),
        )
        flagged = rng.random() < 0.01  # the fraud screen wants a person to look first
        editable = not flagged and channel == "web" and rng.random() < 0.05
        order = self._try(
            self.oms.place_order,
            draft,
            idempotency_key=f"checkout-{n}",
            allocate=not (flagged or editable),
        )
        if order is None:
            return
        if flagged:
            order = self._try(self.oms.hold, order.id, HoldKind.FRAUD, reason="score over 90")
            if order is None:
                return
        if editable:
            self._later(EDIT_WINDOW, "close_edit_window", order.id)
        self.report.orders += 1
        self.report.units += sum(line.quantity for line in lines)
        self.report.pickups += delivery.pickup_location is not None
        self.report.same_day += delivery.address is not None and delivery.method.value == "same_day"
        if not (flagged or editable):
            sourced = [(f.location_id, fl.quantity) for f in order.fulfillments for fl in f.lines]
            self._sourced(order, sourced, first=True)

    def _review_fraud(self) -> None:
        """The fraud team works its queue: orders held for an hour or more, oldest first;
        most are fine and sourced at once, one in ten is cancelled."""
        waiting = self._try(
            self.oms.order_queue, hold=HoldKind.FRAUD, older_than=timedelta(hours=1)
        )
        for queued in waiting or ():
            order_id = queued.order.id
            self.report.fraud_reviews += 1
            if self.rng.random() < 0.1:
                self._try(self.oms.cancel, order_id, reason="fraud confirmed")
                self.report.fraud_cancelled += 1
                continue
            if self._try(self.oms.release, order_id, HoldKind.FRAUD) is not None:
                self._allocate(order_id, first=True)

    def _close_edit_window(self, order_id: str) -> None:
        """Half the customers who asked to change their order did: one more of the first
        item, or another item added (either may cost more than was authorised at checkout,
        and is authorised then). The order is sourced now."""
        if self.rng.random() < 0.5:
            edited = self._edit(self.oms.get_order(order_id))
            self.report.edits += edited
            self.report.units += edited
        self._allocate(order_id, first=True)

    def _edit(self, order: Order) -> bool:
        """Add one unit to the order; whether the edit was made."""
        key = f"edit-{order.id}"
        if self.rng.random() < 0.5:
            line = order.lines[0]
            changed = self._try(self.oms.change_quantity, order.id, line.id, line.quantity + 1, key)
        else:
            ordered = {line.sku for line in order.lines}
            index = self.rng.choices(range(SKUS), self.popularity)[0]
            while f"SKU-{index:03d}" in ordered:
                index = self.rng.choices(range(SKUS), self.popularity)[0]
            line_draft = LineDraft(f"SKU-{index:03d}", 1, self.prices[index])
            changed = self._try(self.oms.add_line, order.id, line_draft, key)
        return changed is not None

    def _store_with(self, lines: list[LineDraft], home: Address) -> str | None:
        """Click & collect: the nearest store (within 60 km) holding the whole basket."""
        basket: dict[str, int] = {}
        for line in lines:
            basket[line.sku] = basket.get(line.sku, 0) + line.quantity
        found = self.oms.availability(
            basket, near=home.geo, radius_km=60, capability=Capability.PICKUP
        )
        stores = [a for a in found if a.kind is LocationKind.STORE]
        return stores[0].location_id if stores else None

    def _basket(self) -> list[LineDraft]:
        size = self.rng.choices((1, 2, 3, 4), (55, 25, 13, 7))[0]
        picked: set[int] = set()
        while len(picked) < size:
            picked.add(self.rng.choices(range(SKUS), self.popularity)[0])
        return [
            LineDraft(f"SKU-{i:03d}", self.rng.choices((1, 2, 3), (80, 15, 5))[0], self.prices[i])
            for i in sorted(picked)
        ]

    # --- the order's life -------------------------------------------------------------------

    def _allocate(self, order_id: str, first: bool = False) -> None:
        """Source what is open: the ``first`` time, or again (after a rejection, or as
        stock came in)."""
        plan = self._try(self.oms.allocate, order_id)
        if plan is None:
            return
        sourced = [(a.location_id, a.quantity) for a in plan.assignments]
        self._sourced(self.oms.get_order(order_id), sourced, first=first)

    def _sourced(self, order: Any, sourced: list[tuple[str, int]], first: bool) -> None:
        """Count what sourcing gave (``(location, units)``), then schedule the work."""
        destination = self._destination(order)
        if first:
            self.report.units_allocated_first += sum(units for _, units in sourced)
            shipments = len({location_id for location_id, _ in sourced})
            self.report.shipments += shipments
            self.report.split_orders += shipments > 1
        for location_id, units in sourced:
            location = self.locations[location_id]
            self.report.units_sourced += units
            self.report.units_from_stores += units * (
                location.kind is LocationKind.STORE and order.delivery.pickup_location is None
            )
            if destination is not None and location.geo is not None:
                self.report.distance_units_km += units * distance_km(location.geo, destination)
        for f in order.fulfillments:
            if f.status is FulfillmentStatus.OPEN:
                self._schedule_work(f)
        if order.open_units:
            self._retry_later(order.id)

    def _retry_later(self, order_id: str) -> None:
        if order_id not in self.retry_due:
            self.retry_due.add(order_id)
            self._later(timedelta(hours=12), "retry", order_id)

    def _retry(self, order_id: str) -> None:
        """Allocate what arrived since; after three tries the customer cancels the rest."""
        self.retry_due.discard(order_id)
        tries = self.retries.get(order_id, 0) + 1
        self.retries[order_id] = tries
        order = self.oms.get_order(order_id)
        if order.has_hold(HoldKind.SOURCING):
            order = self._review(order)
        if not order.open_units or order.status.value == "cancelled":
            self.retries.pop(order_id, None)
            return
        if tries > 3 or order.is_held:
            open_units = {line.id: line.open for line in order.lines if line.open}
            self._try(self.oms.cancel, order_id, open_units, reason="waited too long")
            self.report.cancelled_units += sum(open_units.values())
            self.retries.pop(order_id, None)
            return
        self._allocate(order_id)

    def _review(self, order: Any) -> Any:
        """Someone looks at an order put on a sourcing hold (too many rejections) and
        releases it: the fulfilment orders the hold stopped are worked again."""
        released = self._try(self.oms.release, order.id, HoldKind.SOURCING)
        if released is None:
            return order
        for f in released.fulfillments:
            if f.status is FulfillmentStatus.OPEN:
                self._schedule_work(f)
        return released

    def _destination(self, order: Any) -> GeoPoint | None:
        if order.delivery.address is not None:
            return order.delivery.address.geo  # type: ignore[no-any-return]
        return None

    def _schedule_work(self, f: FulfillmentOrder) -> None:
        """The location works on a new fulfilment order (once): a warehouse an hour from
        now, a store, which picks between customers, in three."""
        if f.id not in self.scheduled:
            self.scheduled.add(f.id)
            in_store = self.locations[f.location_id].kind is LocationKind.STORE
            self._later(timedelta(hours=3 if in_store else 1), "work", f.id)

    def _work(self, fulfillment_id: str) -> None:
        """The location picks, packs and ships (or makes ready) or, sometimes, misses a unit
        or rejects the whole fulfilment order."""
        self.scheduled.discard(fulfillment_id)
        if fulfillment_id in self.withdrawn:
            self.withdrawn.discard(fulfillment_id)
            return
        if self.rng.random() < 0.03:
            order = self._short_pick_or_reject(fulfillment_id)
            if order is not None:
                for f in order.fulfillments:
                    if f.status is FulfillmentStatus.OPEN and f.id != fulfillment_id:
                        self._schedule_work(f)
                if order.open_units:
                    # Re-sourcing found no other location: try again as stock comes in.
                    self._retry_later(order.id)
            return
        order = self._try(self.oms.accept_fulfillment, fulfillment_id)
        if order is None:
            return
        f = order.fulfillment(fulfillment_id)
        if f.method.value == "pickup":
            if f.location_id != order.delivery.pickup_location:  # shipped to the store
                if self._try(self.oms.send_to_store, fulfillment_id) is not None:
                    self.report.shipped_to_store += 1
                    hours = self.rng.randint(20, 40)
                    self._later(timedelta(hours=hours), "arrive", fulfillment_id)
                return
            self._arrive(fulfillment_id)
            return
        if f.units > 1 and self.rng.random() < 0.05:  # one unit now, the rest tomorrow
            self._ship(fulfillment_id, units={f.lines[0].line_id: 1})
            self._later(timedelta(hours=24), "ship", fulfillment_id)
            return
        self._ship(fulfillment_id)

    def _ship(self, fulfillment_id: str, units: dict[LineId, int] | None = None) -> None:
        """Ship the fulfilment order (or only ``units`` of it); the carrier delivers later."""
        order = self._try(self.oms.ship, fulfillment_id, units=units)
        if order is None:
            self._again_if_held("ship", fulfillment_id)
            return
        parcel = order.fulfillments[-1] if units else order.fulfillment(fulfillment_id)
        if units is not None:  # one more parcel than the plan had
            self.report.shipped_in_parts += 1
            self.report.shipments += 1
        same_day = parcel.method.value == "same_day"
        hours = 4 if same_day else self.rng.randint(20, 60)
        self._later(timedelta(hours=hours), "deliver", parcel.id)
        if hours > 54 and self.rng.random() < 0.5:  # late, and the customer says so
            self._later(timedelta(hours=hours + 2), "complain", order.id)

    def _short_pick_or_reject(self, fulfillment_id: str) -> Any:
        """Half the time, one unit of a bigger fulfilment order is not found; else the
        location rejects it all."""
        f = self.oms.get_order_by_fulfillment(fulfillment_id).fulfillment(fulfillment_id)
        if f.units > 1 and self.rng.random() < 0.5:
            missing = {f.lines[0].line_id: 1}
            order = self._try(self.oms.short_pick, fulfillment_id, missing, reason="not found")
            self.report.short_picks += order is not None
            if order is not None:
                self._schedule_work(f)  # the rest is still to be worked
            return order
        order = self._try(self.oms.reject_fulfillment, fulfillment_id, reason="not found")
        self.report.rejections += order is not None
        return order

    def _arrive(self, fulfillment_id: str) -> None:
        """The pickup is ready at its store; most customers come for it."""
        if self._try(self.oms.ready_for_pickup, fulfillment_id) is None:
            self._again_if_held("arrive", fulfillment_id)
            return
        if self.rng.random() < 0.9:
            self._later(timedelta(hours=self.rng.randint(2, 48)), "collect", fulfillment_id)

    def _collect(self, fulfillment_id: str) -> None:
        """The customer comes; now and then they take one unit of several and refuse the
        rest at the counter."""
        if self.rng.random() < 0.1 and self._collect_part(fulfillment_id):
            return
        order = self._try(self.oms.collect, fulfillment_id)
        if order is None:
            self._again_if_held("collect", fulfillment_id)
            return
        self.report.pickups_collected += 1
        self._maybe_return(order.id)

    def _again_if_held(self, action: str, fulfillment_id: str) -> None:
        """A step refused because its order is on hold (a sourcing hold stops all of its
        work) is tried again in twelve hours, by when a reviewer has released it."""
        if self.oms.get_order_by_fulfillment(fulfillment_id).is_held:
            self._later(timedelta(hours=12), action, fulfillment_id)

    def _collect_part(self, fulfillment_id: str) -> bool:
        order = self.oms.get_order_by_fulfillment(fulfillment_id)
        f = order.fulfillment(fulfillment_id)
        if f.status is not FulfillmentStatus.READY_FOR_PICKUP or f.units < 2:
            return False
        taken = {f.lines[0].line_id: 1}
        if self._try(self.oms.collect, fulfillment_id, units=taken) is None:
            return False
        self.report.pickups_collected += 1
        self.report.pickups_collected_in_part += 1
        self._try(
            self.oms.cancel,
            order.id,
            None,
            reason="refused at the counter",
            fulfillment_id=fulfillment_id,
        )
        self._maybe_return(order.id)
        return True

    def _customer(self, n: int) -> str:
        """The customer of checkout ``n``: spread over the run, without drawing from the
        random stream (so every other choice of a seed stays as it was)."""
        return f"C-{n * 2_654_435_761 % self.customers}"

    def _complain(self, order_id: str) -> None:
        """The customer calls about a late parcel; customer service finds the order among
        theirs and gives 5.00 back (less, if less was paid)."""
        order = self._find_in_history(order_id)
        amount = min(GOODWILL, order.refundable)
        if amount.amount <= 0:
            return
        if self._try(self.oms.refund_order, order_id, amount, "parcel late") is not None:
            self.report.goodwill_refunds += 1
            self.report.goodwill_refunded += amount

    def _find_in_history(self, order_id: str) -> Order:
        """The order, as customer service finds it: paging back through its customer's
        orders, ten at a time, newest first."""
        customer = self.oms.get_order(order_id).customer_ref or ""  # every checkout has one
        before = None
        while page := self.oms.customer_orders(customer, before=before, limit=10):
            for order in page:
                if order.id == order_id:
                    return order
            before = page[-1].id
        raise AssertionError(f"order {order_id} is missing from customer {customer}'s orders")

    def _deliver(self, fulfillment_id: str) -> None:
        order = self._try(self.oms.deliver, fulfillment_id)
        if order is not None:
            self._maybe_return(order.id)

    def _maybe_return(self, order_id: str) -> None:
        if self.rng.random() < 0.08:
            self._later(timedelta(days=self.rng.randint(1, 10)), "request_return", order_id)

    def _request_return(self, order_id: str) -> None:
        units = {
            line_id: self.rng.randint(1, returnable)
            for line_id, returnable in self.oms.returnable(order_id).items()
        }
        if not units:
            return
        order = self.oms.get_order(order_id)
        method = "in_store" if order.delivery.pickup_location else "ship"
        rma = self._try(
            self.oms.request_return, order_id, units, reason="changed my mind", method=method
        )
        if rma is not None:
            self.report.returns += 1
            self._try(self.oms.approve_return, rma.id)
            self._later(timedelta(days=self.rng.randint(2, 6)), "receive_return", rma.id)

    def _receive_return(self, return_id: str) -> None:
        rma = self.oms.get_return(return_id)
        dispositions: dict[str, dict[Disposition, int]] = {}
        for line in rma.lines:
            counts: dict[Disposition, int] = {}
            for _ in range(line.requested):
                d = self.rng.choices(list(Disposition), (70, 15, 10, 5))[0]
                counts[d] = counts.get(d, 0) + 1
            dispositions[line.line_id] = counts
        order = self.oms.get_order(rma.order_id)
        depot = order.delivery.pickup_location or self._nearest_depot(order)
        if self._try(self.oms.receive_return, return_id, depot, dispositions) is not None:
            restocked = (counts.get(Disposition.RESTOCK, 0) for counts in dispositions.values())
            self.report.restocked += sum(restocked)
            if self.rng.random() < 0.2:
                self._exchange(rma, order)
                return
            refund = self._try(self.oms.refund_return, return_id)
            if refund is not None:
                self.report.refunded += refund

    def _exchange(self, rma: Return, order: Order) -> None:
        """The customer takes the item next to each returned one (another size or colour)
        at its own price instead of the money: the returned units' value is credit, a
        dearer item is authorised for the difference, a cheaper one refunded. The
        replacement order is sourced and worked like any other."""
        lines = []
        for returned in rma.lines:
            index = int(order.line(returned.line_id).sku.removeprefix("SKU-")) ^ 1
            lines.append(LineDraft(f"SKU-{index:03d}", returned.requested, self.prices[index]))
        refunded_before = order.refunded
        new = self._try(self.oms.exchange, rma.id, lines, f"exchange-{rma.id}")
        if new is None:
            return
        self.report.exchanges += 1
        self.report.exchange_refunded += self.oms.get_order(order.id).refunded - refunded_before
        self.replacements.add(new.id)
        self._allocate(new.id)

    def _nearest_depot(self, order: Any) -> str:
        destination = self._destination(order)
        depots = [loc for loc in self.locations.values() if loc.can(Capability.RETURNS)]
        if destination is None:
            return depots[0].id
        return min(
            depots,
            key=lambda loc: (distance_km(loc.geo, destination) if loc.geo else math.inf, loc.id),
        ).id


def check_orders(orders: object) -> None:
    """A simulation places 1 or more orders."""
    if isinstance(orders, bool) or not isinstance(orders, int) or orders < 1:
        raise InvalidQuantity(f"simulate takes 1 or more orders, got {orders!r}")


def run(
    store: Store,
    *,
    orders: int,
    seed: int,
    policy: str,
    progress: TextIO | None = sys.stderr,
    record_sourcing: bool = False,
) -> Report:
    """Build the retailer on ``store`` and simulate ``orders`` checkouts (1 or more, else
    :class:`~omscore.errors.InvalidQuantity`, before the store is touched);
    ``record_sourcing`` keeps why each order was sourced where it was."""
    check_orders(orders)
    simulation = Simulation(
        store, seed=seed, policy=policy, progress=progress, record_sourcing=record_sourcing
    )
    return simulation.run(orders)
