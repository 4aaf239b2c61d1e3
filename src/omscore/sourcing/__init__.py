"""Sourcing: pure, explainable policies that decide which locations fulfil which units.

``policy.plan(SourcingRequest(...), NetworkSnapshot(...)) -> AllocationPlan``; no store,
no clock, no randomness. See ``docs/sourcing.md``.
"""

from omscore._trace import LocationTrace
from omscore.orders.delivery import DeliveryMethod
from omscore.sourcing.config import policy_from_config
from omscore.sourcing.engine import (
    DEFAULT_MAX_COMBINATIONS,
    HardRules,
    KindFilter,
    LocationFilter,
    MaxDistanceFilter,
    StoreShipMinimum,
)
from omscore.sourcing.plan import AllocationPlan, Assignment, RankedLocation
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
    plan_cost,
)
from omscore.sourcing.request import NetworkSnapshot, RequestLine, SourcingRequest

__all__ = [
    "DEFAULT_MAX_COMBINATIONS",
    "AllocationPlan",
    "Assignment",
    "CostModel",
    "DeliveryMethod",
    "FewestShipmentsPolicy",
    "HardRules",
    "KindFilter",
    "LocationFilter",
    "LocationTrace",
    "LowestCostPolicy",
    "MaxDistanceFilter",
    "DeepestStockPolicy",
    "NearestPolicy",
    "NetworkSnapshot",
    "PriorityPolicy",
    "RankedLocation",
    "RequestLine",
    "Route",
    "RoutedPolicy",
    "SourcingPolicy",
    "SourcingRequest",
    "StoreShipMinimum",
    "plan_cost",
    "policy_from_config",
]
