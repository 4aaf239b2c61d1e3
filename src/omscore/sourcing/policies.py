"""The built-in sourcing policies, the cost model, and routing between policies.

Every policy is a pure function of ``(request, snapshot)``: no clock, no I/O, no
randomness. The same inputs give the same plan whatever their order; ties break on the
location id. Every policy allocates as many units as the eligible locations can supply and
obeys the hard rules (:class:`~omscore.sourcing.engine.HardRules`); they differ in which
locations supply them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

import attrs

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
    return tuple(values)


@attrs.frozen(slots=True)
class CostModel:
    """What fulfilment costs: per shipment, per unit, per unit and kilometre, and an extra
    handling cost per unit by location id or kind (``{"store": 0.8}``). Floats: these are
    estimates for ranking, never money."""

    per_shipment: float = 8.76
    per_unit: float = 0.42
    per_unit_km: float = 0.00034
    location_costs: Mapping[str, float] = attrs.field(factory=dict)

    def handling(self, location: Location) -> float:
        """Extra cost per unit at ``location`` (by id first, then by kind)."""
        costs = self.location_costs
        if location.id in costs:
            return costs[location.id]
        return costs.get(location.kind.value, 0.0)

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
    same_day_radius_km: float = 50.0
    allow_ship_to_store: bool = False

    @property
    def rules(self) -> HardRules:
        """The hard rules with this policy's settings."""
        return HardRules(self.same_day_radius_km, self.allow_ship_to_store)

    @property
    def name(self) -> str:
        """The policy's class name."""
        return type(self).__name__

    def problem(self, request: SourcingRequest, snapshot: NetworkSnapshot) -> Problem:
        """The request reduced to candidates under this policy's rules and filters."""
        return Problem(request, snapshot, self.rules, self.filters)


def _by_priority(c: Candidate) -> tuple[object, ...]:
    return (c.priority, c.id)


def _by_distance(c: Candidate) -> tuple[object, ...]:
    return (c.distance, c.priority, c.id)


@attrs.frozen(slots=True, kw_only=True)
class PriorityPolicy(_BasePolicy):
    """Lines in order, locations by (priority, id), a line split across locations as needed.
    The baseline the open-source order managers use."""

    def plan(self, request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
        """Greedy by priority."""
        return _greedy(self.name, self.problem(request, snapshot), _by_priority)


@attrs.frozen(slots=True, kw_only=True)
class NearestPolicy(_BasePolicy):
    """Like :class:`PriorityPolicy`, with locations by distance to the destination."""

    def plan(self, request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
        """Greedy by distance."""
        return _greedy(self.name, self.problem(request, snapshot), _by_distance)


def _greedy(
    name: str, problem: Problem, key: Callable[[Candidate], tuple[object, ...]]
) -> AllocationPlan:
    ordered = sorted(problem.candidates, key=key)
    return problem.plan(name, problem.fill(ordered), [(c, None) for c in ordered], search="greedy")


@attrs.frozen(slots=True, kw_only=True)
class FewestShipmentsPolicy(_BasePolicy):
    """The fewest locations that reach every SKU's target: single location first, then
    pairs, then triples ... up to ``max_shipments``; ties by total unit distance, then
    priority, then id. When no set within the bound reaches every target (or the search
    budget runs out), it covers as much as it can greedily."""

    max_shipments: int | None = None
    max_combinations: int = DEFAULT_MAX_COMBINATIONS

    def plan(self, request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
        """Search covering sets by size."""
        problem = self.problem(request, snapshot)
        limit = len(problem.candidates)
        if self.max_shipments is not None:
            limit = min(limit, self.max_shipments)
        search = SubsetSearch(problem, self.max_combinations)
        best: tuple[tuple[object, ...], list[tuple[Candidate, list[int]]]] | None = None
        for size in range(1, limit + 1):
            for subset in search.covers(size):
                filled = problem.fill(sorted(subset, key=_by_distance))
                key = _fewest_key(problem, filled)
                if best is None or key < best[0]:
                    best = (key, filled)
            if best is not None or search.exhausted:
                break
        if best is None:
            chosen = greedy_cover(problem, _by_distance, self.max_shipments)
            filled = problem.fill(sorted(chosen, key=_by_distance))
            how = f"greedy cover after {search.spent} search steps"
        else:
            filled = best[1]
            how = f"exact within {search.spent} search steps"
            if search.exhausted:
                how = f"best found within the budget of {self.max_combinations} search steps"
        ranking = sorted(problem.candidates, key=lambda c: (-c.units, *_by_distance(c)))
        return problem.plan(
            self.name, filled, [(c, None) for c in ranking], search=how, steps=search.spent
        )


def _fewest_key(
    problem: Problem, filled: Sequence[tuple[Candidate, list[int]]]
) -> tuple[object, ...]:
    distance = sum(c.distance * sum(row) for c, row in filled)
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
    fewer. Exact within the search budget: sets are searched by size, and the search stops
    once ``size x per_shipment`` plus the cheapest possible unit costs cannot beat the best
    plan found; past the budget it falls back to a greedy cover."""

    cost_model: CostModel = attrs.field(factory=CostModel)
    max_combinations: int = DEFAULT_MAX_COMBINATIONS

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
            filters=tuple(filters),
            same_day_radius_km=same_day_radius_km,
            allow_ship_to_store=allow_ship_to_store,
            cost_model=cost_model or CostModel(),
            max_combinations=max_combinations,
        )

    def plan(self, request: SourcingRequest, snapshot: NetworkSnapshot) -> AllocationPlan:
        """Search sets by size with a cost bound."""
        problem = self.problem(request, snapshot)
        model = self.cost_model
        for c in problem.candidates:
            c.unit_cost = model.unit_cost(c.location, c.distance)
        search = SubsetSearch(problem, self.max_combinations)
        best: tuple[float, tuple[str, ...], list[tuple[Candidate, list[int]]]] | None = None
        floor = _cheapest_units(problem)
        for size in range(1, len(problem.candidates) + 1):
            if best is not None and size * model.per_shipment + floor >= best[0] - 1e-9:
                break
            for subset in search.covers(size):
                filled = problem.fill(sorted(subset, key=_by_unit_cost))
                cost = _cost(model, filled)
                key = (round(cost, 9), tuple(sorted(c.id for c, _ in filled)))
                if best is None or key < (round(best[0], 9), best[1]):
                    best = (cost, key[1], filled)
            if search.exhausted:
                break
        if best is None:
            chosen = greedy_cover(problem, _by_unit_cost)
            filled = problem.fill(sorted(chosen, key=_by_unit_cost))
            cost, how = _cost(model, filled), f"greedy cover after {search.spent} search steps"
        else:
            cost, filled = best[0], best[2]
            how = f"exact within {search.spent} search steps"
            if search.exhausted:
                how = f"best found within the budget of {self.max_combinations} search steps"
        ranking = sorted(problem.candidates, key=_by_unit_cost)
        return problem.plan(
            self.name,
            filled,
            [(c, c.unit_cost) for c in ranking],
            cost=cost,
            search=how,
            steps=search.spent,
        )


def _by_unit_cost(c: Candidate) -> tuple[object, ...]:
    return (c.unit_cost, c.id)


def _cost(model: CostModel, filled: Sequence[tuple[Candidate, list[int]]]) -> float:
    return model.per_shipment * len(filled) + sum(c.unit_cost * sum(row) for c, row in filled)


def _cheapest_units(problem: Problem) -> float:
    """The least any plan pays for its units alone: each SKU's target from the cheapest."""
    total = 0.0
    for i, target in enumerate(problem.targets):
        need = target
        for c in sorted(problem.candidates, key=_by_unit_cost):
            if not need:
                break
            take = min(need, c.supply[i])
            total += take * c.unit_cost
            need -= take
    return total


def _optional_names(values: Iterable[str] | None) -> frozenset[str] | None:
    return frozenset(values) if values is not None else None


def _optional_methods(
    values: Iterable[DeliveryMethod | str] | None,
) -> frozenset[DeliveryMethod] | None:
    return frozenset(DeliveryMethod(m) for m in values) if values is not None else None


@attrs.frozen(slots=True)
class Route:
    """A rule of a :class:`RoutedPolicy`: use ``policy`` when every given condition holds
    (the channel is one of ``channels``, the delivery one of ``methods``, ``when(request)``)."""

    policy: SourcingPolicy
    channels: frozenset[str] | None = attrs.field(default=None, converter=_optional_names)
    methods: frozenset[DeliveryMethod] | None = attrs.field(
        default=None, converter=_optional_methods
    )
    when: Callable[[SourcingRequest], bool] | None = None

    def matches(self, request: SourcingRequest) -> bool:
        """True when every condition of the route holds for ``request``."""
        if self.channels is not None and request.channel not in self.channels:
            return False
        if self.methods is not None and request.delivery not in self.methods:
            return False
        return self.when is None or self.when(request)


def _routes(values: Iterable[Route]) -> tuple[Route, ...]:
    return tuple(values)


@attrs.frozen(slots=True)
class RoutedPolicy:
    """Choose a policy per request: the first route that matches, else ``fallback``."""

    routes: tuple[Route, ...] = attrs.field(converter=_routes)
    fallback: SourcingPolicy

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
