"""The sourcing engine shared by every policy: eligibility, candidates, fills, subset search.

A :class:`Problem` turns a request and a snapshot into candidates: the locations that pass
the hard rules and the policy's filters and hold stock of a requested SKU, each with the
units it can supply per SKU (capped at the demand). Demand of lines that share a SKU is
pooled. ``targets`` is the most that can be allocated per SKU; every policy allocates
exactly that, and differs only in which locations supply it.

Everything is deterministic: candidates are sorted by location id, and every ordering
ends on the location id, so the input's order never matters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence

import attrs

from omscore.geo import distance_km
from omscore.ids import LineId, LocationId, Sku
from omscore.inventory import Capability, Location, LocationKind
from omscore.orders.delivery import DeliveryMethod
from omscore.sourcing.plan import AllocationPlan, Assignment, RankedLocation
from omscore.sourcing.request import NetworkSnapshot, SourcingRequest

#: The default bound on the subset search per plan: search nodes visited plus subsets
#: scored. Small networks (up to about ten candidate locations) are searched exhaustively
#: within it; beyond it a policy falls back to a greedy cover.
DEFAULT_MAX_COMBINATIONS = 4_000


@attrs.frozen(slots=True)
class LocationFilter:
    """A rule that keeps a location out of a plan, or holds some of its stock back.

    Subclasses override :meth:`reason` (return why the location is out, or None) and/or
    :meth:`usable` (how many of its available units of a SKU may be used).
    """

    def reason(self, location: Location, distance: float) -> str | None:
        """Why ``location`` (``distance`` km from the destination) is out; None if it stays."""
        return None

    def usable(self, location: Location, sku: Sku, units: int) -> int:
        """How many of ``units`` available at ``location`` may be used."""
        return units


def _kinds(values: Iterable[LocationKind | str]) -> frozenset[LocationKind]:
    return frozenset(LocationKind(k) for k in values)


@attrs.frozen(slots=True)
class KindFilter(LocationFilter):
    """Only locations of these kinds (e.g. warehouses and stores, no dropship)."""

    kinds: frozenset[LocationKind] = attrs.field(converter=_kinds)

    def reason(self, location: Location, distance: float) -> str | None:
        """Out unless its kind is listed."""
        if location.kind in self.kinds:
            return None
        allowed = ", ".join(sorted(k.value for k in self.kinds))
        return f"kind {location.kind.value} not allowed (only {allowed})"


@attrs.frozen(slots=True)
class MaxDistanceFilter(LocationFilter):
    """Only locations within ``km`` of the destination."""

    km: float

    def reason(self, location: Location, distance: float) -> str | None:
        """Out beyond the distance."""
        if distance <= self.km:
            return None
        return f"{distance:.0f} km away, beyond the {self.km:g} km limit"


@attrs.frozen(slots=True)
class StoreShipMinimum(LocationFilter):
    """Ship-from-store protection: a store ships a SKU only while it has at least
    ``units`` available (its safety stock already kept back)."""

    units: int

    def usable(self, location: Location, sku: Sku, units: int) -> int:
        """All of a store's units at or above the minimum, none below it."""
        if location.kind is LocationKind.STORE and units < self.units:
            return 0
        return units


@attrs.frozen(slots=True)
class HardRules:
    """Rules every policy obeys; the tunable parts."""

    same_day_radius_km: float = 50.0
    allow_ship_to_store: bool = False


class Candidate:
    """A location that may supply units, with its supply per SKU (capped at demand)."""

    __slots__ = ("distance", "id", "index", "location", "priority", "supply", "unit_cost", "units")

    def __init__(self, location: Location, supply: list[int], distance: float) -> None:
        self.location = location
        self.id = location.id
        self.priority = location.priority
        self.supply = supply
        self.units = sum(supply)
        self.distance = distance
        self.unit_cost = 0.0
        self.index = 0


class Problem:
    """A request and a snapshot, reduced to candidates and per-SKU targets."""

    def __init__(
        self,
        request: SourcingRequest,
        snapshot: NetworkSnapshot,
        rules: HardRules,
        filters: Sequence[LocationFilter] = (),
    ) -> None:
        self.request = request
        self.rules = rules
        self.skus: list[Sku] = sorted({line.sku for line in request.lines})
        self.sku_index = {sku: i for i, sku in enumerate(self.skus)}
        demand = [0] * len(self.skus)
        for line in request.lines:
            demand[self.sku_index[line.sku]] += line.quantity
        self.demand = demand
        by_id = {loc.id: loc for loc in snapshot.locations}
        self.location_ids = tuple(sorted(by_id))
        self.excluded: dict[LocationId, str] = {}
        self._distances: dict[LocationId, float] = {}
        stocked = self._stock_by_location(snapshot, by_id)
        self.candidates: list[Candidate] = []
        for location_id in sorted(stocked):
            self._admit(by_id[location_id], stocked[location_id], snapshot, filters)
        totals = [0] * len(self.skus)
        for c in self.candidates:
            for i, units in enumerate(c.supply):
                totals[i] += units
        self.targets = [min(d, t) for d, t in zip(demand, totals, strict=True)]

    def _stock_by_location(
        self, snapshot: NetworkSnapshot, by_id: dict[LocationId, Location]
    ) -> dict[LocationId, list[int]]:
        stocked: dict[LocationId, list[int]] = {}
        index = self.sku_index
        for (location_id, sku), units in snapshot.available.items():
            i = index.get(sku)
            if i is None or units <= 0 or location_id not in by_id:
                continue
            row = stocked.get(location_id)
            if row is None:
                row = stocked[location_id] = [0] * len(self.skus)
            row[i] += units
        return stocked

    def _admit(
        self,
        location: Location,
        stock: list[int],
        snapshot: NetworkSnapshot,
        filters: Sequence[LocationFilter],
    ) -> None:
        distance = self.distance(location)
        reason = self._hard_reason(location, distance, snapshot)
        for f in filters:
            if reason is not None:
                break
            reason = f.reason(location, distance)
        if reason is not None:
            self.excluded[location.id] = reason
            return
        supply = [min(units, d) for units, d in zip(stock, self.demand, strict=True)]
        for f in filters:
            supply = [f.usable(location, sku, u) for sku, u in zip(self.skus, supply, strict=True)]
        if not any(supply):
            self.excluded[location.id] = "its stock is held back by a filter"
            return
        self.candidates.append(Candidate(location, supply, distance))

    def _hard_reason(
        self, location: Location, distance: float, snapshot: NetworkSnapshot
    ) -> str | None:
        request = self.request
        if location.id in request.exclude:
            return "excluded by the request"
        if not location.active:
            return "inactive"
        capacity = snapshot.capacity.get(location.id)
        if capacity is not None and capacity <= 0:
            return "no fulfilment capacity left today"
        method = request.delivery
        caps = location.capabilities
        if method is DeliveryMethod.SHIP:
            return None if Capability.SHIP in caps else "cannot ship"
        if method is DeliveryMethod.SAME_DAY:
            if Capability.SAME_DAY not in caps:
                return "no same-day capability"
            radius = self.rules.same_day_radius_km
            if distance > radius:
                return f"{distance:.0f} km away, beyond the {radius:g} km same-day radius"
            return None
        if location.id == request.pickup_location:
            return None if Capability.PICKUP in caps else "cannot hand out pickups"
        if self.rules.allow_ship_to_store and Capability.SHIP in caps:
            return None
        return "not the pickup location"

    def distance(self, location: Location) -> float:
        """Kilometres from ``location`` to the destination (0 without a destination)."""
        known = self._distances.get(location.id)
        if known is not None:
            return known
        destination = self.request.destination
        if destination is None or location.geo is None:
            value = 0.0 if destination is None else math.inf
        else:
            value = distance_km(location.geo, destination)
        self._distances[location.id] = value
        return value

    @property
    def total_target(self) -> int:
        """Units that can be allocated at most."""
        return sum(self.targets)

    # --- building plans ---------------------------------------------------------------------

    def fill(self, ordered: Sequence[Candidate]) -> list[tuple[Candidate, list[int]]]:
        """Take each SKU's target from ``ordered`` candidates, first to last."""
        remaining = list(self.targets)
        taken: list[tuple[Candidate, list[int]]] = []
        for c in ordered:
            row = [0] * len(remaining)
            for i, need in enumerate(remaining):
                if need and c.supply[i]:
                    take = min(need, c.supply[i])
                    row[i] = take
                    remaining[i] = need - take
            if any(row):
                taken.append((c, row))
            if not any(remaining):
                break
        return taken

    def plan(
        self,
        policy: str,
        filled: Sequence[tuple[Candidate, list[int]]],
        ranking: Sequence[tuple[Candidate, float | None]],
        cost: float | None = None,
        search: str = "",
        steps: int = 0,
    ) -> AllocationPlan:
        """Spread ``filled`` units over the request's lines (in line order) and build the plan."""
        per_sku: dict[int, list[tuple[LocationId, int]]] = {}
        for c, row in filled:
            for i, units in enumerate(row):
                if units:
                    per_sku.setdefault(i, []).append((c.id, units))
        assignments: list[Assignment] = []
        unallocated: dict[LineId, int] = {}
        for line in self.request.lines:
            sources = per_sku.get(self.sku_index[line.sku], [])
            need = line.quantity
            while need and sources:
                location_id, units = sources[0]
                take = min(need, units)
                assignments.append(Assignment(location_id, line.line_id, line.sku, take))
                need -= take
                if take == units:
                    sources.pop(0)
                else:
                    sources[0] = (location_id, units - take)
            if need:
                unallocated[line.line_id] = need
        ranked = tuple(
            RankedLocation(c.id, rank, c.priority, c.distance, c.units, unit_cost)
            for rank, (c, unit_cost) in enumerate(ranking, 1)
        )
        return AllocationPlan(
            policy=policy,
            assignments=tuple(assignments),
            unallocated=unallocated,
            location_ids=self.location_ids,
            excluded=dict(self.excluded),
            ranking=ranked,
            cost=cost,
            search=search,
            search_steps=steps,
        )


# --- the bounded subset search -------------------------------------------------------------


class SubsetSearch:
    """Enumerate the subsets of candidates of one size that reach every SKU's target.

    Depth-first over candidates (most units first, then id); the last member of a subset is
    found with bitmasks: ``masks[i][q]`` holds the candidates that supply at least ``q``
    units of SKU ``i``. ``budget`` caps search nodes plus subsets yielded across calls.
    """

    def __init__(self, problem: Problem, budget: int) -> None:
        self.problem = problem
        self.budget = budget
        self.spent = 0
        order = sorted(problem.candidates, key=lambda c: (-c.units, c.id))
        for index, c in enumerate(order):
            c.index = index
        self.order = order
        self.masks: list[list[int]] = []
        for i, target in enumerate(problem.targets):
            masks = [0] * (target + 1)
            masks[0] = (1 << len(order)) - 1
            for c in order:
                for q in range(1, min(c.supply[i], target) + 1):
                    masks[q] |= 1 << c.index
            self.masks.append(masks)

    @property
    def exhausted(self) -> bool:
        """True once the budget is spent."""
        return self.spent >= self.budget

    def covers(self, size: int) -> Iterator[list[Candidate]]:
        """Every subset of ``size`` candidates that reaches all targets (within budget)."""
        yield from self._extend([], 0, size, list(self.problem.targets))

    def _extend(
        self, chosen: list[Candidate], start: int, size: int, need: list[int]
    ) -> Iterator[list[Candidate]]:
        self.spent += 1
        if self.exhausted:
            return
        if len(chosen) == size - 1:
            yield from self._last_members(chosen, start, need)
            return
        slots_left = size - len(chosen)
        for j in range(start, len(self.order) - slots_left + 1):
            c = self.order[j]
            reduced = [max(0, q - s) for q, s in zip(need, c.supply, strict=True)]
            yield from self._extend([*chosen, c], j + 1, size, reduced)
            if self.exhausted:
                return

    def _last_members(
        self, chosen: list[Candidate], start: int, need: list[int]
    ) -> Iterator[list[Candidate]]:
        bits = ((1 << len(self.order)) - 1) >> start << start
        for i, q in enumerate(need):
            if q:
                bits &= self.masks[i][q]
        while bits:
            low = bits & -bits
            index = low.bit_length() - 1
            bits ^= low
            self.spent += 1
            yield [*chosen, self.order[index]]
            if self.exhausted:
                return


def greedy_cover(
    problem: Problem,
    preference: Callable[[Candidate], tuple[object, ...]],
    max_size: int | None = None,
) -> list[Candidate]:
    """Repeatedly add the candidate that adds the most units toward the targets (ties by
    ``preference``), until the targets are met or ``max_size`` locations are chosen."""
    remaining = list(problem.targets)
    chosen: list[Candidate] = []
    pool = sorted(problem.candidates, key=preference)
    while any(remaining) and (max_size is None or len(chosen) < max_size):
        best, best_gain = None, 0
        for c in pool:
            gain = sum(min(q, s) for q, s in zip(remaining, c.supply, strict=True))
            if gain > best_gain:
                best, best_gain = c, gain
        if best is None:
            break
        chosen.append(best)
        pool.remove(best)
        remaining = [max(0, q - s) for q, s in zip(remaining, best.supply, strict=True)]
    return chosen
