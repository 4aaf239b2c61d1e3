"""Sourcing from plain data: ``policy_from_config(dict)``, validated with every problem named.

A merchant configures sourcing without code::

    {"policy": "lowest_cost",
     "cost_model": {"per_shipment": 8.76, "location_costs": {"store": 0.8}},
     "filters": {"kinds": ["warehouse", "store"], "max_distance_km": 800,
                 "store_ship_minimum": 2}}

or routes by channel and delivery method with a fallback::

    {"routes": [{"channels": ["marketplace"], "use": {"policy": "priority"}},
                {"delivery": ["same_day"], "use": {"policy": "nearest"}}],
     "fallback": {"policy": "fewest_shipments", "max_shipments": 3}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from omscore.errors import InvalidSourcingConfig
from omscore.inventory import LocationKind
from omscore.orders.delivery import DeliveryMethod
from omscore.sourcing.engine import (
    KindFilter,
    LocationFilter,
    MaxDistanceFilter,
    StoreShipMinimum,
)
from omscore.sourcing.policies import (
    CostModel,
    DeepestStockPolicy,
    FewestShipmentsPolicy,
    LowestCostPolicy,
    NearestPolicy,
    PriorityPolicy,
    Route,
    RoutedPolicy,
    SourcingPolicy,
)

POLICIES = ("priority", "nearest", "deepest_stock", "fewest_shipments", "lowest_cost")
_COMMON_KEYS = {"policy", "filters", "same_day_radius_km", "allow_ship_to_store"}
_EXTRA_KEYS = {
    "priority": {"single_location_first"},
    "nearest": {"single_location_first"},
    "deepest_stock": {"single_location_first"},
    "fewest_shipments": {"max_shipments", "max_combinations"},
    "lowest_cost": {"cost_model", "max_combinations"},
}
_FILTER_KEYS = {"kinds", "max_distance_km", "store_ship_minimum"}
_COST_KEYS = {"per_shipment", "per_unit", "per_unit_km", "location_costs"}


class _Problems:
    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.found.append(f"{path}: {message}")

    def number(
        self,
        data: Mapping[str, Any],
        key: str,
        path: str,
        *,
        whole: bool = False,
        minimum: float = 0,
    ) -> Any:
        if key not in data:
            return None
        value = data[key]
        kinds = (int,) if whole else (int, float)
        if (
            isinstance(value, bool)
            or not isinstance(value, kinds)
            or not math.isfinite(value)
            or value < minimum
        ):
            what = "an integer" if whole else "a finite number"
            self.add(f"{path}.{key}", f"must be {what} >= {minimum:g}, got {value!r}")
            return None
        return value

    def unknown_keys(self, data: Mapping[str, Any], allowed: set[str], path: str) -> None:
        for key in sorted(set(data) - allowed):
            self.add(f"{path}.{key}", f"unknown setting (allowed: {', '.join(sorted(allowed))})")


def policy_from_config(config: Mapping[str, Any]) -> SourcingPolicy:
    """Build a policy (or a routed set of policies) from plain data.

    Raises :class:`~omscore.errors.InvalidSourcingConfig` listing every problem, each with
    its path (``routes[1].use.cost_model.per_unit``).
    """
    problems = _Problems()
    policy = _any_policy(config, "config", problems)
    if problems.found or policy is None:
        raise InvalidSourcingConfig(problems.found or ["config: nothing to build"])
    return policy


def _any_policy(config: object, path: str, problems: _Problems) -> SourcingPolicy | None:
    if not isinstance(config, Mapping):
        problems.add(path, f"must be a mapping, got {type(config).__name__}")
        return None
    if "routes" in config:
        return _routed(config, path, problems)
    return _single(config, path, problems)


def _routed(config: Mapping[str, Any], path: str, problems: _Problems) -> SourcingPolicy | None:
    problems.unknown_keys(config, {"routes", "fallback"}, path)
    routes_data = config["routes"]
    routes: list[Route] = []
    if not isinstance(routes_data, list) or not routes_data:
        problems.add(f"{path}.routes", "must be a non-empty list")
        routes_data = []
    for index, route in enumerate(routes_data):
        built = _route(route, f"{path}.routes[{index}]", problems)
        if built is not None:
            routes.append(built)
    if "fallback" not in config:
        problems.add(f"{path}.fallback", "is required with routes")
        return None
    fallback = _any_policy(config["fallback"], f"{path}.fallback", problems)
    if fallback is None or problems.found:
        return None
    return RoutedPolicy(tuple(routes), fallback)


def _route(data: object, path: str, problems: _Problems) -> Route | None:
    if not isinstance(data, Mapping):
        problems.add(path, "must be a mapping")
        return None
    problems.unknown_keys(data, {"channels", "delivery", "use"}, path)
    channels = data.get("channels")
    if channels is not None and (
        not isinstance(channels, list)
        or not channels
        or not all(isinstance(c, str) and c.strip() for c in channels)
    ):
        problems.add(f"{path}.channels", "must be a non-empty list of channel names")
        channels = None
    methods = _methods(data.get("delivery"), f"{path}.delivery", problems)
    if data.get("channels") is None and data.get("delivery") is None:
        problems.add(path, "needs 'channels' and/or 'delivery' to match on")
    if "use" not in data:
        problems.add(f"{path}.use", "is required: the policy this route uses")
        return None
    policy = _any_policy(data["use"], f"{path}.use", problems)
    if policy is None:
        return None
    return Route(policy, channels=channels, methods=methods)


def _methods(value: object, path: str, problems: _Problems) -> list[DeliveryMethod] | None:
    if value is None:
        return None
    allowed = [m.value for m in DeliveryMethod]
    if not isinstance(value, list) or not value or not all(v in allowed for v in value):
        problems.add(path, f"must be a non-empty list of {', '.join(allowed)}; got {value!r}")
        return None
    return [DeliveryMethod(v) for v in value]


def _single(config: Mapping[str, Any], path: str, problems: _Problems) -> SourcingPolicy | None:
    name = config.get("policy")
    if name not in POLICIES:
        problems.add(f"{path}.policy", f"must be one of {', '.join(POLICIES)}; got {name!r}")
        return None
    problems.unknown_keys(config, _COMMON_KEYS | _EXTRA_KEYS[name], path)
    filters = _filters(config.get("filters", {}), f"{path}.filters", problems)
    radius = problems.number(config, "same_day_radius_km", path)
    common: dict[str, Any] = {
        "filters": filters,
        "same_day_radius_km": 50.0 if radius is None else float(radius),
        "allow_ship_to_store": _flag(config, "allow_ship_to_store", path, problems),
    }
    budget = None
    if "max_combinations" in _EXTRA_KEYS[name]:
        budget = problems.number(config, "max_combinations", path, whole=True, minimum=1)
    if budget is not None:
        common["max_combinations"] = budget
    if "single_location_first" in _EXTRA_KEYS[name]:
        common["single_location_first"] = _flag(config, "single_location_first", path, problems)
    if name == "priority":
        return PriorityPolicy(**common)
    if name == "nearest":
        return NearestPolicy(**common)
    if name == "deepest_stock":
        return DeepestStockPolicy(**common)
    if name == "fewest_shipments":
        most = problems.number(config, "max_shipments", path, whole=True, minimum=1)
        return FewestShipmentsPolicy(max_shipments=most, **common)
    model = _cost_model(config.get("cost_model", {}), f"{path}.cost_model", problems)
    return LowestCostPolicy(model, **common)


def _flag(config: Mapping[str, Any], key: str, path: str, problems: _Problems) -> bool:
    """The setting ``key`` (false when absent); anything but true or false is a problem."""
    value = config.get(key, False)
    if not isinstance(value, bool):
        problems.add(f"{path}.{key}", f"must be true or false, got {value!r}")
    return value is True


def _filters(data: object, path: str, problems: _Problems) -> list[LocationFilter]:
    if not isinstance(data, Mapping):
        problems.add(path, "must be a mapping")
        return []
    problems.unknown_keys(data, _FILTER_KEYS, path)
    built: list[LocationFilter] = []
    if "kinds" in data:
        kinds = data["kinds"]
        allowed = [k.value for k in LocationKind]
        if not isinstance(kinds, list) or not kinds or not all(k in allowed for k in kinds):
            problems.add(f"{path}.kinds", f"must be a non-empty list of {', '.join(allowed)}")
        else:
            built.append(KindFilter(kinds))
    distance = problems.number(data, "max_distance_km", path)
    if distance is not None:
        built.append(MaxDistanceFilter(float(distance)))
    minimum = problems.number(data, "store_ship_minimum", path, whole=True)
    if minimum is not None:
        built.append(StoreShipMinimum(minimum))
    return built


def _cost_model(data: object, path: str, problems: _Problems) -> CostModel:
    if not isinstance(data, Mapping):
        problems.add(path, "must be a mapping")
        return CostModel()
    problems.unknown_keys(data, _COST_KEYS, path)
    values: dict[str, Any] = {}
    for key in ("per_shipment", "per_unit", "per_unit_km"):
        number = problems.number(data, key, path)
        if number is not None:
            values[key] = float(number)
    costs = data.get("location_costs", {})
    if not isinstance(costs, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
        for k, v in costs.items()
    ):
        problems.add(f"{path}.location_costs", "must map location ids or kinds to numbers >= 0")
    else:
        values["location_costs"] = {k: float(v) for k, v in costs.items()}
    return CostModel(**values)
