"""Invariant checks for plans (public API): use them to prove your own sourcing policy.

``check_plan(request, snapshot, plan)`` raises :class:`PlanViolation` listing every broken
rule, or returns quietly::

    from hypothesis import given
    from omscore.testing import strategies as oms_st
    from omscore.testing.invariants import check_plan

    @given(oms_st.sourcing_cases())
    def test_my_policy_keeps_the_rules(case):
        request, snapshot = case
        check_plan(request, snapshot, MyPolicy().plan(request, snapshot))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import attrs

from omscore.events import OrderPlaced
from omscore.geo import distance_km
from omscore.ids import LocationId, Sku
from omscore.inventory import Capability, Location, MovementKind
from omscore.orders import FulfillmentStatus, Order
from omscore.orders.delivery import DeliveryMethod
from omscore.service import OMS
from omscore.sourcing import AllocationPlan, NetworkSnapshot, SourcingRequest


class PlanViolation(AssertionError):
    """A plan broke one or more hard rules; ``violations`` lists each."""

    def __init__(self, violations: list[str]) -> None:
        self.violations = violations
        super().__init__("plan breaks the rules:\n  " + "\n  ".join(violations))


def eligible(
    location: Location,
    request: SourcingRequest,
    snapshot: NetworkSnapshot,
    *,
    same_day_radius_km: float = 50.0,
    allow_ship_to_store: bool = False,
) -> bool:
    """Whether the hard rules let ``location`` serve ``request`` (recomputed independently)."""
    if location.id in request.exclude or not location.active:
        return False
    capacity = snapshot.capacity.get(location.id)
    if capacity is not None and capacity <= 0:
        return False
    caps = location.capabilities
    if request.delivery is DeliveryMethod.SHIP:
        return Capability.SHIP in caps
    if request.delivery is DeliveryMethod.SAME_DAY:
        if Capability.SAME_DAY not in caps:
            return False
        if request.destination is None:
            return True
        return location.geo is not None and (
            distance_km(location.geo, request.destination) <= same_day_radius_km
        )
    if location.id == request.pickup_location:
        return Capability.PICKUP in caps
    return allow_ship_to_store and Capability.SHIP in caps


def check_plan(
    request: SourcingRequest,
    snapshot: NetworkSnapshot,
    plan: AllocationPlan,
    *,
    maximal: bool = True,
    same_day_radius_km: float = 50.0,
    allow_ship_to_store: bool = False,
) -> None:
    """Check every hard rule; raise :class:`PlanViolation` naming each one broken.

    The rules: every assignment is positive, at an eligible location, within what the
    location has of the SKU (pooled over lines); no line gets more than it asks; assigned
    plus unallocated is each line's quantity; with ``maximal`` (for policies without
    extra filters), each SKU allocates ``min(demand, eligible supply)``; the trace has one
    entry per snapshot location and marks exactly the locations used. A ``ship_complete``
    request is served whole by one location or not at all, and (with ``maximal``) served
    whenever one eligible location holds all of it.
    """
    problems: list[str] = []
    by_id = {loc.id: loc for loc in snapshot.locations}

    def may_serve(location: Location) -> bool:
        return eligible(
            location,
            request,
            snapshot,
            same_day_radius_km=same_day_radius_km,
            allow_ship_to_store=allow_ship_to_store,
        )

    used: dict[tuple[LocationId, Sku], int] = {}
    per_line: dict[str, int] = {}
    for a in plan.assignments:
        if a.quantity < 1:
            problems.append(f"assignment {a} has a quantity below 1")
        location = by_id.get(a.location_id)
        if location is None:
            problems.append(f"assignment {a} names a location not in the snapshot")
        elif not may_serve(location):
            problems.append(f"assignment {a} uses {a.location_id}, which may not serve it")
        used[(a.location_id, a.sku)] = used.get((a.location_id, a.sku), 0) + a.quantity
        per_line[a.line_id] = per_line.get(a.line_id, 0) + a.quantity
    for (location_id, sku), units in sorted(used.items()):
        have = snapshot.available.get((location_id, sku), 0)
        if units > have:
            problems.append(f"{units} of {sku} assigned at {location_id}, which has {have}")
    for line in request.lines:
        got = per_line.pop(line.line_id, 0)
        left = plan.unallocated.get(line.line_id, 0)
        if got + left != line.quantity:
            problems.append(
                f"line {line.line_id}: {got} assigned + {left} unallocated != {line.quantity}"
            )
    if per_line:
        problems.append(f"assignments for lines not in the request: {sorted(per_line)}")
    if request.ship_complete:
        problems += _split(plan)
    if maximal:
        problems += _maximality(request, snapshot, plan, by_id, may_serve)
    problems += _trace(snapshot, plan)
    if problems:
        raise PlanViolation(problems)


def _maximality(
    request: SourcingRequest,
    snapshot: NetworkSnapshot,
    plan: AllocationPlan,
    by_id: dict[LocationId, Location],
    may_serve: Callable[[Location], bool],
) -> list[str]:
    demand: dict[Sku, int] = {}
    for line in request.lines:
        demand[line.sku] = demand.get(line.sku, 0) + line.quantity
    if request.ship_complete:
        return _whole_from_one(snapshot, plan, by_id, may_serve, demand)
    problems = []
    for sku, wanted in sorted(demand.items()):
        supply = 0
        for (location_id, s), units in snapshot.available.items():
            if s == sku and units > 0 and location_id in by_id and may_serve(by_id[location_id]):
                supply += units
        got = sum(a.quantity for a in plan.assignments if a.sku == sku)
        if got != min(wanted, supply):
            problems.append(
                f"{sku}: {got} allocated, but {min(wanted, supply)} could be "
                f"(demand {wanted}, eligible supply {supply})"
            )
    return problems


def _split(plan: AllocationPlan) -> list[str]:
    """A ship-complete request's plan is empty, or one location with every unit."""
    if plan.assignments and (len(plan.shipments) > 1 or plan.units_unallocated):
        return [
            f"a ship-complete request got {plan.units_allocated} units from "
            f"{list(plan.shipments)}, {plan.units_unallocated} left unallocated"
        ]
    return []


def _whole_from_one(
    snapshot: NetworkSnapshot,
    plan: AllocationPlan,
    by_id: dict[LocationId, Location],
    may_serve: Callable[[Location], bool],
    demand: dict[Sku, int],
) -> list[str]:
    """A ship-complete request is served whole when one eligible location holds all of it."""
    whole = [
        location_id
        for location_id, location in sorted(by_id.items())
        if may_serve(location)
        and all(snapshot.available.get((location_id, sku), 0) >= n for sku, n in demand.items())
    ]
    if whole and not plan.assignments:
        return [f"nothing allocated, but {whole} could ship the whole request"]
    return []


def _trace(snapshot: NetworkSnapshot, plan: AllocationPlan) -> list[str]:
    trace = plan.trace
    ids = sorted(loc.id for loc in snapshot.locations)
    problems = []
    if [t.location_id for t in trace] != ids:
        problems.append("the trace does not have exactly one entry per snapshot location")
    marked = {t.location_id for t in trace if t.used}
    if marked != set(plan.shipments):
        problems.append(
            f"the trace marks {sorted(marked)} used, the plan uses {sorted(plan.shipments)}"
        )
    return problems


class BooksViolation(AssertionError):
    """The stock books and the orders disagree; ``violations`` lists each disagreement."""

    def __init__(self, violations: list[str]) -> None:
        self.violations = violations
        super().__init__("the books disagree:\n  " + "\n  ".join(violations))


def check_books(oms: OMS, *, order_ids: Iterable[str] | None = None) -> None:
    """Check that stock and orders tell one story; raise :class:`BooksViolation` if not.

    Every level agrees with its ledger and its holds (``reconcile()``); nowhere is more
    allocated and reserved than on hand; each SKU's allocated units, with those in transit
    to a pickup store, equal the orders' allocated units; units shipped out in the ledger
    equal the orders' shipped and delivered units; every open unit of every line is
    held or backordered, exactly once; and each location's daily capacity counter for
    today equals its fulfilment orders counted today (``counted_on``) and not taken back.

    ``order_ids`` are every order placed; by default they are read from the outbox's
    ``OrderPlaced`` events, so pass them once published events may have been pruned.
    """
    problems = [f"reconcile: {d}" for d in oms.reconcile()]
    if order_ids is None:
        order_ids = [e.order_id for e in oms.events() if isinstance(e, OrderPlaced)]
    orders = [oms.get_order(order_id) for order_id in order_ids]
    problems += _open_units_waiting(oms, orders)
    problems += _capacity_counted(oms, orders)
    on_lines = _order_totals(orders)
    shipped_out: Counter[Sku] = Counter()
    for m in oms.ledger():
        if m.kind is MovementKind.SHIPMENT:
            shipped_out[m.sku] -= m.on_hand_delta
    for sku in sorted(set(on_lines.allocated) | set(shipped_out)):
        item = oms.inventory(sku)
        in_levels = sum(level.allocated for level in item.levels.values())
        moving, allocated = on_lines.in_transit[sku], on_lines.allocated[sku]
        if in_levels + moving != allocated:
            problems.append(
                f"{sku}: {in_levels} allocated in stock and {moving} in transit to stores, "
                f"{allocated} on order lines"
            )
        if shipped_out[sku] != on_lines.gone[sku]:
            problems.append(
                f"{sku}: {shipped_out[sku]} shipped in the ledger, "
                f"{on_lines.gone[sku]} shipped or delivered on order lines"
            )
        problems += [
            f"{sku} at {location_id}: {level} commits more than on hand"
            for location_id, level in sorted(item.levels.items())
            if not 0 <= level.allocated + level.reserved <= level.on_hand
        ]
    if problems:
        raise BooksViolation(problems)


@attrs.frozen
class _OrderTotals:
    """Units per SKU as the orders count them."""

    allocated: Counter[Sku]
    gone: Counter[Sku]  # shipped or delivered
    in_transit: Counter[Sku]  # in parcels on their way to a pickup store


def _order_totals(orders: Iterable[Order]) -> _OrderTotals:
    totals = _OrderTotals(Counter(), Counter(), Counter())
    for order in orders:
        for line in order.lines:
            totals.allocated[line.sku] += line.allocated
            totals.gone[line.sku] += line.shipped + line.delivered
        for f in order.fulfillments:
            if f.in_transit:
                for fl in f.lines:
                    totals.in_transit[fl.sku] += fl.quantity
    return totals


def _capacity_counted(oms: OMS, orders: Iterable[Order]) -> list[str]:
    """Each location's count of today: its fulfilment orders its cap counted today, less
    those withdrawn (moved ones count where they are now; one cancelled before it was
    accepted has no count left)."""
    now = oms.clock.now()
    today = {location.id: location.day_at(now) for location in oms.locations()}
    counted: Counter[LocationId] = Counter()
    for order in orders:
        for f in order.fulfillments:
            if f.status is FulfillmentStatus.WITHDRAWN or f.counted_on is None:
                continue  # taken back, or never counted
            if f.counted_on == today.get(f.location_id):
                counted[f.location_id] += 1
    with oms.store.unit_of_work(write=False) as uow:
        loads = {location_id: uow.loads.get(location_id) for location_id in sorted(today)}
    used = {
        location_id: load.used_on(today[location_id])
        for location_id, load in loads.items()
        if load is not None
    }
    return [
        f"{location_id}: {used.get(location_id, 0)} fulfilment orders counted today, "
        f"{counted[location_id]} on orders"
        for location_id in sorted(today)
        if used.get(location_id, 0) != counted[location_id]
    ]


def _open_units_waiting(oms: OMS, orders: Iterable[Order]) -> list[str]:
    """Every open unit held or backordered, exactly once."""
    problems = []
    for order in orders:
        for line in order.lines:
            item = oms.inventory(line.sku)
            waiting = item.held_for(order.id, line.id) + item.backordered_for(order.id, line.id)
            if waiting != line.open:
                problems.append(
                    f"order {order.id} line {line.id}: {line.open} open, {waiting} held or "
                    "backordered"
                )
    return problems
