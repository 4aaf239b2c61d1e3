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
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence

import attrs

from omscore._checks import members, number
from omscore._values import remember_last
from omscore.errors import InvalidSourcingConfig
from omscore.geo import distances_from
from omscore.ids import LineId, LocationId, Sku
from omscore.inventory import Capability, Location, LocationKind
from omscore.orders.delivery import DeliveryMethod
from omscore.sourcing.plan import AllocationPlan, Assignment, PlanDetails, RankedLocation
from omscore.sourcing.request import NetworkSnapshot, SourcingRequest

#: The default bound on the subset search per plan: search nodes visited plus subsets
#: scored. Small networks (up to about ten candidate locations) are searched exhaustively
#: within it; beyond it a policy falls back to a greedy cover.
DEFAULT_MAX_COMBINATIONS = 4_000


@attrs.frozen(slots=True)
class LocationFilter:
    """A rule that keeps a location out of a plan, or holds some of its stock back.

    Subclasses override :meth:`reason` (return why the location is out, or None) and/or
    :meth:`usable` (how many of its available units of a SKU may be used). ``distance()``
    gives the kilometres to the destination; it is computed only when called.
    """

    def reason(self, location: Location, distance: Callable[[], float]) -> str | None:
        """Why ``location`` is out; None if it stays."""
        return None

    def usable(self, location: Location, sku: Sku, units: int) -> int:
        """How many of ``units`` available at ``location`` may be used."""
        return units


def _kinds(values: Iterable[LocationKind | str]) -> frozenset[LocationKind]:
    kinds = members(values, LocationKind, "kinds", _refused)
    if not kinds:
        raise _refused("kinds must name at least one location kind (none would allow none)")
    return kinds


def _refused(problem: str) -> InvalidSourcingConfig:
    """The error for one wrong sourcing setting (the policies' validators use it too)."""
    return InvalidSourcingConfig([problem])


@attrs.frozen(slots=True)
class KindFilter(LocationFilter):
    """Only locations of these kinds (e.g. warehouses and stores, no dropship)."""

    kinds: frozenset[LocationKind] = attrs.field(converter=_kinds)

    def reason(self, location: Location, distance: Callable[[], float]) -> str | None:
        """Out unless its kind is listed."""
        if location.kind in self.kinds:
            return None
        allowed = ", ".join(sorted(k.value for k in self.kinds))
        return f"kind {location.kind.value} not allowed (only {allowed})"


@attrs.frozen(slots=True)
class MaxDistanceFilter(LocationFilter):
    """Only locations within ``km`` of the destination."""

    km: float = attrs.field(validator=number(_refused))

    def reason(self, location: Location, distance: Callable[[], float]) -> str | None:
        """Out beyond the distance."""
        km = distance()
        if km <= self.km:
            return None
        return f"{km:.0f} km away, beyond the {self.km:g} km limit"


@attrs.frozen(slots=True)
class StoreShipMinimum(LocationFilter):
    """Ship-from-store protection: a store ships a SKU only while it has at least
    ``units`` available (its safety stock already kept back)."""

    units: int = attrs.field(validator=number(_refused, whole=True))

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
    """A location that may supply units: its supply per SKU (capped at the target), with
    distance and unit cost filled in only when a policy needs them."""

    __slots__ = ("distance", "id", "index", "location", "priority", "supply", "unit_cost", "units")

    def __init__(self, location: Location, supply: tuple[int, ...]) -> None:
        self.location = location
        self.id = location.id
        self.priority = location.priority
        self.supply = supply
        self.units = sum(supply)
        self.distance: float | None = None
        self.unit_cost: float | None = None
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
        self.snapshot = snapshot
        self.rules = rules
        self.filters = filters
        self.skus: list[Sku] = sorted({line.sku for line in request.lines})
        self.sku_index = {sku: i for i, sku in enumerate(self.skus)}
        demand = [0] * len(self.skus)
        for line in request.lines:
            demand[self.sku_index[line.sku]] += line.quantity
        self.demand = demand
        self.excluded: dict[LocationId, str] = {}
        destination = request.destination
        self._distance_to = distances_from(destination) if destination is not None else None
        self._by_id = _locations_by_id(snapshot.locations)
        self._stocked = self._stock_by_location(snapshot, self._by_id)
        self._admitted: dict[LocationId, Candidate | None] = {}
        self._candidates: list[Candidate] | None = None
        self._targets: list[int] | None = None

    @property
    def candidates(self) -> list[Candidate]:
        """Every eligible location with stock of a requested SKU, sorted by id."""
        if self._candidates is None:
            found = [self._admit(x) for x in sorted(self._stocked)]
            self._candidates = [c for c in found if c is not None]
            totals = [0] * len(self.skus)
            for c in self._candidates:
                for i, units in enumerate(c.supply):
                    totals[i] += units
            # Each supply is at most its SKU's demand (see _admit) and its SKU's total, so
            # it is already within the target: nothing to cap.
            self._targets = [min(d, t) for d, t in zip(self.demand, totals, strict=True)]
        return self._candidates

    @property
    def targets(self) -> list[int]:
        """The most that can be allocated of each SKU: min(demand, eligible supply)."""
        if self._targets is None:
            _ = self.candidates
        assert self._targets is not None
        return self._targets

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

    def _admit(self, location_id: LocationId) -> Candidate | None:
        """The location as a candidate, or None with its reason in ``excluded`` (once)."""
        admitted = self._admitted
        if location_id in admitted:
            return admitted[location_id]
        location = self._by_id[location_id]
        reason = self._hard_reason(location)
        if reason is None and self.filters:
            reason = self._filter_reason(location)
        candidate = None
        if reason is None:
            stocked: Sequence[int] = self._stocked[location_id]
            if self.filters:  # a filter judges what the location has, not what is asked of it
                stocked = self._usable(location, tuple(stocked))
            supply = tuple(map(min, stocked, self.demand))
            if not any(supply):
                reason = "its stock is held back by a filter"
            elif self.request.ship_complete and list(supply) != self.demand:
                reason = self._short_of_the_whole(supply)
            else:
                candidate = Candidate(location, supply)
        if reason is not None:
            self.excluded[location_id] = reason
        admitted[location_id] = candidate
        return candidate

    def _short_of_the_whole(self, supply: tuple[int, ...]) -> str:
        return (
            f"has {sum(supply)} of the {sum(self.demand)} units; the order ships complete "
            "from one location"
        )

    def _filter_reason(self, location: Location) -> str | None:
        for f in self.filters:
            reason = f.reason(location, lambda: self.distance_of(location))
            if reason is not None:
                return reason
        return None

    def _usable(self, location: Location, supply: tuple[int, ...]) -> tuple[int, ...]:
        for f in self.filters:
            supply = tuple(
                f.usable(location, sku, u) for sku, u in zip(self.skus, supply, strict=True)
            )
        return supply

    def _hard_reason(self, location: Location) -> str | None:
        request = self.request
        if location.id in request.exclude:
            return request.exclude_reason
        if not location.active:
            return "inactive"
        capacity = self.snapshot.capacity.get(location.id)
        if capacity is not None and capacity <= 0:
            return "no fulfilment capacity left today"
        method = request.delivery
        caps = location.capabilities
        if method is DeliveryMethod.SHIP:
            return None if Capability.SHIP in caps else "cannot ship"
        if method is DeliveryMethod.SAME_DAY:
            if Capability.SAME_DAY not in caps:
                return "no same-day capability"
            radius, distance = self.rules.same_day_radius_km, self.distance_of(location)
            if distance > radius:
                return f"{distance:.0f} km away, beyond the {radius:g} km same-day radius"
            return None
        if location.id == request.pickup_location:
            return None if Capability.PICKUP in caps else "cannot hand out pickups"
        if self.rules.allow_ship_to_store and Capability.SHIP in caps:
            return None
        return "not the pickup location"

    def distance_of(self, location: Location) -> float:
        """Kilometres from ``location`` to the destination (0 without a destination)."""
        if self._distance_to is None:
            return 0.0
        if location.geo is None:
            return math.inf
        return self._distance_to(location.geo)

    def depth(self, c: Candidate) -> int:
        """Every unit the candidate has available of the requested SKUs (not capped at
        what the request asks)."""
        return sum(self._stocked[c.id])

    def distance(self, c: Candidate) -> float:
        """The candidate's distance, computed once."""
        if c.distance is None:
            c.distance = self.distance_of(c.location)
        return c.distance

    def covering_singles(self) -> list[Candidate]:
        """Candidates that reach every target alone, sorted by id.

        Fast path: when some eligible location holds the whole demand, the targets are the
        demand, and only locations holding all of it need to be looked at; the others are
        admitted later, if a trace or a search asks for them.
        """
        if self._candidates is None:
            demand, ge = self.demand, operator.ge
            whole = sorted(
                location_id
                for location_id, row in self._stocked.items()
                if all(map(ge, row, demand))
            )
            singles = [c for c in map(self._admit, whole) if c is not None]
            if singles:
                self._targets = list(demand)
                return singles
        total = self.total_target
        return [c for c in self.candidates if c.units == total]

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
        filled: Sequence[tuple[Candidate, Sequence[int]]],
        rank: Callable[[], Sequence[Candidate]],
        cost: float | None = None,
        search: str = "",
        steps: int = 0,
    ) -> AllocationPlan:
        """Spread ``filled`` units over the request's lines (in line order) and build the
        plan; ``rank()`` orders the candidates for the trace, when somebody asks for it."""
        if len(filled) == 1 and filled[0][1] == self.demand:
            return self._single_location_plan(filled[0][0], policy, rank, cost, search, steps)
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
        return AllocationPlan(
            policy=policy,
            assignments=tuple(assignments),
            unallocated=unallocated,
            cost=cost,
            search=search,
            search_steps=steps,
            details=lambda: self.details(rank()),
        )

    def _single_location_plan(
        self,
        c: Candidate,
        policy: str,
        rank: Callable[[], Sequence[Candidate]],
        cost: float | None,
        search: str,
        steps: int,
    ) -> AllocationPlan:
        """Every line whole from one location (what :meth:`plan` would spread, built directly)."""
        return AllocationPlan(
            policy=policy,
            assignments=tuple(
                [
                    Assignment(c.id, line.line_id, line.sku, line.quantity)
                    for line in self.request.lines
                ]
            ),
            unallocated={},
            cost=cost,
            search=search,
            search_steps=steps,
            details=lambda: self.details(rank()),
        )

    def details(self, ranked: Sequence[Candidate]) -> PlanDetails:
        """The trace's ingredients, with the candidates in ``ranked`` order."""
        ranking = tuple(
            RankedLocation(c.id, rank, c.priority, self.distance(c), c.units, c.unit_cost)
            for rank, c in enumerate(ranked, 1)
        )
        ids = tuple(sorted(self._by_id))
        _ = self.candidates
        return PlanDetails(ids, dict(self.excluded), ranking)


@remember_last
def _locations_by_id(locations: tuple[Location, ...]) -> dict[LocationId, Location]:
    # Snapshots of one network share their tuple of locations; the index is only read.
    return {loc.id: loc for loc in locations}


# --- the bounded subset search -------------------------------------------------------------


class SubsetSearch:
    """Enumerate the subsets of candidates that reach every SKU's target.

    Candidates are taken in the policy's order of preference. The last member of a subset
    is found with bitmasks: ``masks[i][q]`` holds the candidates that supply at least ``q``
    units of SKU ``i``. ``budget`` caps search nodes plus subsets yielded across calls.
    """

    def __init__(self, problem: Problem, budget: int, order: Sequence[Candidate]) -> None:
        self.problem = problem
        self.budget = budget
        self.spent = 0
        self.order = list(order)
        for index, c in enumerate(self.order):
            c.index = index
        self.masks: list[list[int]] = []
        for i, target in enumerate(problem.targets):
            exactly = [0] * (target + 1)
            for c in self.order:
                exactly[min(c.supply[i], target)] |= 1 << c.index
            masks = [0] * (target + 1)
            at_least = 0
            for q in range(target, -1, -1):
                at_least |= exactly[q]
                masks[q] = at_least
            self.masks.append(masks)

    def best_partners(self) -> Iterator[tuple[Candidate, Candidate]]:
        """For each candidate, the first later candidate (in preference order) that covers
        what it lacks. With a fill that takes from the preferred member first, that partner
        is the best pair the candidate can lead, so scoring these pairs finds the best pair
        of all in one pass."""
        targets, masks, order = self.problem.targets, self.masks, self.order
        full = (1 << len(order)) - 1
        for i, a in enumerate(order):
            self.spent += 1
            if self.exhausted:
                return
            bits = full >> (i + 1) << (i + 1)
            for k, (target, supply) in enumerate(zip(targets, a.supply, strict=True)):
                if target > supply:
                    bits &= masks[k][target - supply]
                    if not bits:
                        break
            if bits:
                yield a, order[(bits & -bits).bit_length() - 1]

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
