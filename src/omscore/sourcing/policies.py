"""The built-in sourcing policies, the cost model, and routing between policies.

Every policy is a pure function of ``(request, snapshot)``: no clock, no I/O, no
randomness. The same inputs give the same plan whatever their order; ties break on the
location id. Every policy allocates as many units as the eligible locations can supply and
obeys the hard rules (:class:`~omscore.sourcing.engine.HardRules`); they differ in which
locations supply them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from omscore._checks import flag, instance_of, members, number, optional, with_method
from omscore.geo import distance_km
from omscore.inventory import Location
from omscore.orders.delivery import DeliveryMethod
from omscore.sourcing.engine import (
    DEFAULT_MAX_COMBINATIONS,
    Candidate,
    HardRules,
    LocationFilter,
    Problem,
    SubsetSearch,
    _refused,
    greedy_cover,
)
from omscore.sourcing.plan import AllocationPlan
from omscore.sourcing.request import NetworkSnapshot, SourcingRequest


class SourcingPolicy(Protocol):
    """Anything that turns a request and a snapshot into a plan."""

    @property
    def name(self) -> str:
        """A name for traces and reports."""
        ...

    def plan(self, request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
        """Decide which locations fulfil which units."""
        ...


def _filters(values: Iterable[LocationFilter]) -> tuple[LocationFilter, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise _refused(f"filters must be a collection of LocationFilters, got {values!r}")
    filters = tuple(values)
    wrong = [f for f in filters if not isinstance(f, LocationFilter)]
    if wrong:
        raise _refused(f"filters must be LocationFilters, got {wrong!r}")
    return filters


def _check_costs(_: object, __: attrs.Attribute[Mapping[str, float]], costs: object) -> None:
    if not isinstance(costs, Mapping) or not all(
        isinstance(k, str)
        and isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
        and v >= 0
        for k, v in costs.items()
    ):
        raise _refused(
            f"location_costs must map location ids or kinds to numbers >= 0, got {costs!r}"
        )


@attrs.frozen(slots=True)
class CostModel:
    """What fulfilment costs: per shipment, per unit, per unit and kilometre, and an extra
    handling cost per unit by location id or kind (``{"store": 0.8}``). Floats: these are
    estimates for ranking, never money."""

    per_shipment: float = attrs.field(default=8.76, validator=number(_refused))
    per_unit: float = attrs.field(default=0.42, validator=number(_refused))
    per_unit_km: float = attrs.field(default=0.00034, validator=number(_refused))
    location_costs: Mapping[str, float] = attrs.field(factory=dict, validator=_check_costs)

    def handling(self, location: Location) -> float:
        """Extra cost per unit at ``location`` (by id first, then by kind)."""
        costs = self.location_costs
        if location.id in costs:
            return costs[location.id]
        return costs.get(location.kind, 0.0)  # a kind is a str enum: it finds its name

    def unit_cost(self, location: Location, distance: float) -> float:
        """Cost of one unit from ``location`` over ``distance`` km."""
        return self.per_unit + self.per_unit_km * distance + self.handling(location)


def plan_cost(
    plan: AllocationPlan, snapshot: NetworkSnapshot, request: SourcingRequest, model: CostModel
) -> float:
    """The cost of any plan under ``model`` (unallocated units are not costed)."""
    by_id = {loc.id: loc for loc in snapshot.locations}
    total = model.per_shipment * len(plan.shipments)
    for a in plan.assignments:
        location = by_id[a.location_id]
        distance = 0.0
        if request.destination is not None and location.geo is not None:
            distance = distance_km(location.geo, request.destination)
        total += a.quantity * model.unit_cost(location, distance)
    return total


@attrs.frozen(slots=True, kw_only=True)
class _BasePolicy:
    filters: tuple[LocationFilter, ...] = attrs.field(default=(), converter=_filters)
    same_day_radius_km: float = attrs.field(default=50.0, validator=number(_refused))
    allow_ship_to_store: bool = attrs.field(default=False, validator=flag(_refused))

    @property
    def rules(self) -> HardRules:
        """The hard rules with this policy's settings."""
        return _hard_rules(self.same_day_radius_km, self.allow_ship_to_store)

    @property
    def name(self) -> str:
        """The policy's class name."""
        return type(self).__name__

    def problem(self, request: SourcingRequest, snapshot: NetworkSnapshot) -> Problem:
        """The request reduced to candidates under this policy's rules and filters."""
        return Problem(request, snapshot, self.rules, self.filters)


@functools.lru_cache(maxsize=64)
def _hard_rules(same_day_radius_km: float, allow_ship_to_store: bool) -> HardRules:
    return HardRules(same_day_radius_km, allow_ship_to_store)


def _by_priority(c: Candidate) -> tuple[object, ...]:
    return (c.priority, c.id)


def _nearness(problem: Problem) -> Callable[[Candidate], tuple[object, ...]]:
    def key(c: Candidate) -> tuple[object, ...]:
        return (problem.distance(c), c.priority, c.id)

    return key


@attrs.frozen(slots=True, kw_only=True)
class _RankedPolicy(_BasePolicy):
    """Greedy by a ranking of the locations; with ``single_location_first``, one location
    that covers the whole order (the best ranked of those) before any split."""

    single_location_first: bool = attrs.field(default=False, validator=flag(_refused))

    def ranking(self, problem: Problem) -> Callable[[Candidate], tuple[object, ...]]:
        """The sort key of the candidates, best first."""
        raise NotImplementedError

    def plan(self, request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
        """Greedy by the ranking, after one covering location if asked to look first."""
        problem = self.problem(request, snapshot)
        key = self.ranking(problem)
        singles = problem.covering_singles() if self.single_location_first else []
        if not singles:
            return _greedy(self.name, problem, key)
        best = min(singles, key=key)
        return problem.plan(
            self.name,
            problem.fill([best]),
            lambda: sorted(problem.candidates, key=key),
            search=f"one location of {len(singles)} covers all, the best ranked",
            steps=len(singles),
        )


@attrs.frozen(slots=True, kw_only=True)
class PriorityPolicy(_RankedPolicy):
    """Lines in order, locations by (priority, id), a line split across locations as needed.
    The baseline the open-source order managers use."""

    def ranking(self, problem: Problem) -> Callable[[Candidate], tuple[object, ...]]:
        """By priority, then id."""
        return _by_priority


@attrs.frozen(slots=True, kw_only=True)
class NearestPolicy(_RankedPolicy):
    """Like :class:`PriorityPolicy`, with locations by distance to the destination."""

    def ranking(self, problem: Problem) -> Callable[[Candidate], tuple[object, ...]]:
        """By distance, then priority, then id."""
        return _nearness(problem)


@attrs.frozen(slots=True, kw_only=True)
class DeepestStockPolicy(_RankedPolicy):
    """Like :class:`PriorityPolicy`, with locations by stock depth: the most units available
    of the requested SKUs first, ties by priority, then id. It draws stock down where it is
    deep and spares locations about to run out, so a store's last units stay on its shelf
    for the customers who walk in."""

    def ranking(self, problem: Problem) -> Callable[[Candidate], tuple[object, ...]]:
        """By stock depth, deepest first, then priority, then id."""
        return _deepest_first(problem)


def _deepest_first(problem: Problem) -> Callable[[Candidate], tuple[object, ...]]:
    def key(c: Candidate) -> tuple[object, ...]:
        return (-problem.depth(c), c.priority, c.id)

    return key


def _greedy(
    name: str, problem: Problem, key: Callable[[Candidate], tuple[object, ...]]
) -> AllocationPlan:
    ordered = sorted(problem.candidates, key=key)
    return problem.plan(name, problem.fill(ordered), lambda: ordered, search="greedy")


@attrs.frozen(slots=True, kw_only=True)
class FewestShipmentsPolicy(_BasePolicy):
    """The fewest locations that reach every SKU's target: single location first, then
    pairs, then triples ... up to ``max_shipments``; ties by total unit distance, then
    priority, then id. When no set within the bound reaches every target (or the search
    budget runs out), it covers as much as it can greedily."""

    max_shipments: int | None = attrs.field(
        default=None, validator=optional(number(_refused, minimum=1, whole=True))
    )
    max_combinations: int = attrs.field(
        default=DEFAULT_MAX_COMBINATIONS, validator=number(_refused, minimum=1, whole=True)
    )

    def plan(self, request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
        """Search covering sets by size."""
        problem = self.problem(request, snapshot)
        near = _nearness(problem)

        def rank() -> list[Candidate]:
            return sorted(problem.candidates, key=lambda c: (-c.units, *near(c)))

        singles = problem.covering_singles()
        if singles:
            best = min(singles, key=near)
            return problem.plan(
                self.name,
                problem.fill([best]),
                rank,
                search=f"exact: one location of {len(singles)} covers all",
                steps=len(singles),
            )
        limit = len(problem.candidates)
        if self.max_shipments is not None:
            limit = min(limit, self.max_shipments)
        search = SubsetSearch(problem, self.max_combinations, sorted(problem.candidates, key=near))
        found: tuple[tuple[object, ...], list[tuple[Candidate, list[int]]]] | None = None
        for size in range(2, limit + 1):
            pair = _best_pair(problem, search, _pair_distance_key(problem)) if size == 2 else None
            if pair is not None:
                found = (pair[0], problem.fill([pair[1], pair[2]]))
            for subset in search.covers(size) if size > 2 else ():
                filled = problem.fill(sorted(subset, key=near))
                key = _fewest_key(problem, filled)
                if found is None or key < found[0]:
                    found = (key, filled)
            if found is not None or search.exhausted:
                break
        if found is None:
            chosen = greedy_cover(problem, near, self.max_shipments)
            filled = problem.fill(sorted(chosen, key=near))
            how = f"greedy cover after {search.spent} search steps"
        else:
            filled = found[1]
            how = f"exact within {search.spent} search steps"
            if search.exhausted:
                how = f"best found within the budget of {self.max_combinations} search steps"
        return problem.plan(self.name, filled, rank, search=how, steps=search.spent)


def _pair_distance_key(problem: Problem) -> Callable[[Candidate, Candidate], tuple[object, ...]]:
    """The fewest-shipments key of the pair (a first, then b) without filling it."""
    total = problem.total_target

    def key(a: Candidate, b: Candidate) -> tuple[object, ...]:
        distance = problem.distance(a) * a.units + problem.distance(b) * (total - a.units)
        return (2, round(distance, 6), a.priority + b.priority, tuple(sorted((a.id, b.id))))

    return key


def _best_pair(
    problem: Problem,
    search: SubsetSearch,
    key: Callable[[Candidate, Candidate], tuple[object, ...]],
) -> tuple[tuple[object, ...], Candidate, Candidate] | None:
    """The pair with the least key among each candidate's best partner (pairs whose first
    member covers everything alone are singles, not pairs)."""
    total = problem.total_target
    best: tuple[tuple[object, ...], Candidate, Candidate] | None = None
    for a, b in search.best_partners():
        if a.units == total:
            continue
        k = key(a, b)
        if best is None or k < best[0]:
            best = (k, a, b)
    return best


def _fewest_key(
    problem: Problem, filled: Sequence[tuple[Candidate, list[int]]]
) -> tuple[object, ...]:
    distance = sum(problem.distance(c) * sum(row) for c, row in filled)
    return (
        len(filled),
        round(distance, 6),
        sum(c.priority for c, _ in filled),
        tuple(sorted(c.id for c, _ in filled)),
    )


@attrs.frozen(slots=True, kw_only=True, init=False)
class LowestCostPolicy(_BasePolicy):
    """The plan of least total cost under ``cost_model``: per shipment, plus per unit
    (handling, distance). A plan that allocates more units always beats one that allocates
    fewer; of plans that cost the same, the one with fewer shipments wins, then the one
    whose location ids sort first. Exact within the search budget: sets are searched by
    size, and the search stops once ``size x per_shipment`` plus the cheapest possible unit
    costs cannot beat the best plan found; past the budget it falls back to a greedy
    cover."""

    cost_model: CostModel = attrs.field(
        factory=CostModel, validator=instance_of(CostModel, _refused)
    )
    max_combinations: int = attrs.field(
        default=DEFAULT_MAX_COMBINATIONS, validator=number(_refused, minimum=1, whole=True)
    )

    def __init__(
        self,
        cost_model: CostModel | None = None,
        *,
        filters: Iterable[LocationFilter] = (),
        same_day_radius_km: float = 50.0,
        allow_ship_to_store: bool = False,
        max_combinations: int = DEFAULT_MAX_COMBINATIONS,
    ) -> None:
        self.__attrs_init__(
            filters=filters,
            same_day_radius_km=same_day_radius_km,
            allow_ship_to_store=allow_ship_to_store,
            cost_model=CostModel() if cost_model is None else cost_model,
            max_combinations=max_combinations,
        )

    def plan(self, request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
        """One location when it is provably cheapest, else search sets by size."""
        problem = self.problem(request, snapshot)
        cost_of = _unit_costs(problem, self.cost_model)

        def rank() -> list[Candidate]:
            return sorted(problem.candidates, key=cost_of)

        per_shipment = self.cost_model.per_shipment
        singles = problem.covering_singles()
        single: _Best | None = None
        if singles:
            total = problem.total_target
            best = min(singles, key=cost_of)
            cost = per_shipment + total * cost_of(best)[0]
            filled = [(best, list(problem.targets))]  # a covering single supplies every target
            # No unit costs less than per_unit: no distance, and handling costs are >= 0.
            if 2 * per_shipment + total * self.cost_model.per_unit >= cost - 1e-9:
                how = f"exact: one location of {len(singles)}; no two shipments can cost less"
                return problem.plan(
                    self.name, filled, rank, cost=cost, search=how, steps=len(singles)
                )
            single = (cost, (best.id,), filled)
        return self._search(problem, cost_of, rank, single)

    def _search(
        self,
        problem: Problem,
        cost_of: Callable[[Candidate], tuple[float, str]],
        rank: Callable[[], list[Candidate]],
        best: _Best | None,
    ) -> AllocationPlan:
        model = self.cost_model
        search = SubsetSearch(
            problem, self.max_combinations, sorted(problem.candidates, key=cost_of)
        )
        floor = _cheapest_units(problem, cost_of)
        total = problem.total_target

        def pair_cost(a: Candidate, b: Candidate) -> float:
            rest = total - a.units
            return 2 * model.per_shipment + cost_of(a)[0] * a.units + cost_of(b)[0] * rest

        def pair_key(a: Candidate, b: Candidate) -> tuple[object, ...]:
            return _cost_rank(pair_cost(a, b), tuple(sorted((a.id, b.id))))

        for size in range(2, len(problem.candidates) + 1):
            if best is not None and size * model.per_shipment + floor >= best[0] - 1e-9:
                break
            pair = _best_pair(problem, search, pair_key) if size == 2 else None
            if pair is not None and (best is None or pair[0] < _cost_rank(best[0], best[1])):
                _, a, b = pair
                best = (pair_cost(a, b), tuple(sorted((a.id, b.id))), problem.fill([a, b]))
            for subset in search.covers(size) if size > 2 else ():
                filled = problem.fill(sorted(subset, key=cost_of))
                cost = _cost(model, filled, cost_of)
                ids = tuple(sorted(c.id for c, _ in filled))
                if best is None or _cost_rank(cost, ids) < _cost_rank(best[0], best[1]):
                    best = (cost, ids, filled)
            if search.exhausted:
                break
        if best is None:
            chosen = greedy_cover(problem, cost_of)
            filled = problem.fill(sorted(chosen, key=cost_of))
            cost, how = (
                _cost(model, filled, cost_of),
                (f"greedy cover after {search.spent} search steps"),
            )
        else:
            cost, filled = best[0], best[2]
            how = f"exact within {search.spent} search steps"
            if search.exhausted:
                how = f"best found within the budget of {self.max_combinations} search steps"
        return problem.plan(self.name, filled, rank, cost=cost, search=how, steps=search.spent)


_Best = tuple[float, tuple[str, ...], list[tuple[Candidate, list[int]]]]


def _cost_rank(cost: float, ids: tuple[str, ...]) -> tuple[object, ...]:
    """How plans of ``LowestCostPolicy`` compare: cost (to 9 decimals, so that sums in
    another order tie), then fewer shipments, then the location ids."""
    return (round(cost, 9), len(ids), ids)


def _unit_costs(problem: Problem, model: CostModel) -> Callable[[Candidate], tuple[float, str]]:
    """A sort key (unit cost, id) that computes and keeps each candidate's unit cost."""

    def key(c: Candidate) -> tuple[float, str]:
        if c.unit_cost is None:
            c.unit_cost = model.unit_cost(c.location, problem.distance(c))
        return (c.unit_cost, c.id)

    return key


def _cost(
    model: CostModel,
    filled: Sequence[tuple[Candidate, list[int]]],
    cost_of: Callable[[Candidate], tuple[float, str]],
) -> float:
    units = sum(cost_of(c)[0] * sum(row) for c, row in filled)
    return model.per_shipment * len(filled) + units


def _cheapest_units(problem: Problem, cost_of: Callable[[Candidate], tuple[float, str]]) -> float:
    """The least any plan pays for its units alone: each SKU's target from the cheapest."""
    by_cost = sorted(problem.candidates, key=cost_of)
    total = 0.0
    for i, target in enumerate(problem.targets):
        need = target
        for c in by_cost:
            if not need:
                break
            take = min(need, c.supply[i])
            total += take * cost_of(c)[0]
            need -= take
    return total


def _optional_names(values: Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    names = _listed(values, "channels")
    if not all(isinstance(n, str) and n.strip() for n in names):
        raise _refused(f"channels must be non-empty strings, got {values!r}")
    if not names:
        raise _refused(_NEVER_MATCHES.format("channels", "channel"))
    return frozenset(names)


def _optional_methods(
    values: Iterable[DeliveryMethod | str] | None,
) -> frozenset[DeliveryMethod] | None:
    if values is None:
        return None
    methods = members(values, DeliveryMethod, "methods", _refused)
    if not methods:
        raise _refused(_NEVER_MATCHES.format("methods", "delivery method"))
    return methods


_NEVER_MATCHES = "{} must name at least one {} (None matches any; none would match nothing)"


def _listed(values: object, name: str) -> list[Any]:
    """The items of a collection setting (a string alone would be taken letter by letter)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise _refused(f"{name} must be a collection, got {values!r}")
    return list(values)


def _check_when(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        raise _refused(f"when must be None or a function of the request, got {value!r}")


@attrs.frozen(slots=True)
class Route:
    """A rule of a :class:`RoutedPolicy`: use ``policy`` when every given condition holds
    (the channel is one of ``channels``, the delivery one of ``methods``, ``when(request)``)."""

    policy: SourcingPolicy = attrs.field(validator=with_method("plan", _refused))
    channels: frozenset[str] | None = attrs.field(default=None, converter=_optional_names)
    methods: frozenset[DeliveryMethod] | None = attrs.field(
        default=None, converter=_optional_methods
    )
    when: Callable[[SourcingRequest], bool] | None = attrs.field(
        default=None, validator=_check_when
    )

    def matches(self, request: SourcingRequest) -> bool:
        """True when every condition of the route holds for ``request``."""
        if self.channels is not None and request.channel not in self.channels:
            return False
        if self.methods is not None and request.delivery not in self.methods:
            return False
        return self.when is None or self.when(request)


def _routes(values: Iterable[Route]) -> tuple[Route, ...]:
    routes = tuple(_listed(values, "routes"))
    if not all(isinstance(r, Route) for r in routes):
        raise _refused(f"routes must be Routes, got {values!r}")
    return routes


@attrs.frozen(slots=True)
class RoutedPolicy:
    """Choose a policy per request: the first route that matches, else ``fallback``."""

    routes: tuple[Route, ...] = attrs.field(converter=_routes)
    fallback: SourcingPolicy = attrs.field(validator=with_method("plan", _refused))

    @property
    def name(self) -> str:
        """The routing policy's name."""
        return "RoutedPolicy"

    def choose(self, request: SourcingRequest) -> SourcingPolicy:
        """The policy that will plan ``request``."""
        for route in self.routes:
            if route.matches(request):
                return route.policy
        return self.fallback

    def plan(self, request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
        """Plan with the chosen policy; the plan's name says which route decided."""
        chosen = self.choose(request)
        plan = chosen.plan(request, snapshot)
        return attrs.evolve(plan, policy=f"{self.name} -> {plan.policy}")
