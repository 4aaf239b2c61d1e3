"""JSON-ready dicts for every aggregate, value and event, with cattrs.

``make_converter()`` returns a converter whose ``unstructure`` gives plain dicts, lists,
strings, ints and bools (Decimals and datetimes as strings, sets as sorted lists, so the
output is deterministic) and whose ``structure`` turns them back into the same objects.
Domain events carry their type name under ``"type"``, so a list of mixed events round-trips.
"""

from __future__ import annotations

import decimal
import json
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import StructureHandlerNotFoundError
from cattrs.fns import identity
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn
from cattrs.v import format_exception

from omscore import events as events_module
from omscore._values import remember_last
from omscore.errors import MalformedData, OmsError
from omscore.events import DomainEvent
from omscore.ids import LineId
from omscore.inventory.item import StockHold
from omscore.orders.model import PaymentEntry
from omscore.sourcing.plan import AllocationPlan, Assignment, PlanDetails

T = TypeVar("T")


def _event_types() -> dict[str, type[DomainEvent]]:
    found: dict[str, type[DomainEvent]] = {}
    for value in vars(events_module).values():
        if isinstance(value, type) and issubclass(value, DomainEvent):
            found[value.__name__] = value
    return found


EVENT_TYPES: dict[str, type[DomainEvent]] = _event_types()


#: Values stored by the thousand whose later fields are mostly at their defaults: written
#: without them, their rows stay as short as before the fields existed.
WRITTEN_WITHOUT_DEFAULTS: tuple[type, ...] = (PaymentEntry, StockHold)

_PLAIN = (str, int, bool, float, type(None))


def _is_optional_plain(t: Any) -> bool:
    """``X | None`` of a JSON-ready X (str, int, an id NewType ...): written as it is."""
    args = typing.get_args(t)
    return (
        typing.get_origin(t) in (typing.Union, types.UnionType)
        and type(None) in args
        and all(getattr(a, "__supertype__", a) in _PLAIN for a in args)
    )


def _is_tuple_of_values(t: Any) -> bool:
    """``tuple[X, ...]`` of an attrs class X (not an event base: events dispatch by type)."""
    args: tuple[Any, ...] = getattr(t, "__args__", ())
    return (
        getattr(t, "__origin__", None) is tuple
        and len(args) == 2
        and args[1] is Ellipsis
        and attrs.has(args[0])
        and not issubclass(args[0], DomainEvent)
    )


def _list_of(converter: cattrs.Converter) -> Callable[[Any], Callable[[Any], list[Any]]]:
    """The same list cattrs makes of such a tuple, by a list comprehension."""

    def factory(t: Any) -> Callable[[Any], list[Any]]:
        item = converter.get_unstructure_hook(t.__args__[0])
        return lambda values: [item(v) for v in values]

    return factory


def _sorted_list(values: frozenset[Any] | set[Any], converter: cattrs.Converter) -> list[Any]:
    if not values:
        return []
    return sorted((converter.unstructure(v) for v in values), key=json.dumps)


def _decimal(value: object, _: object) -> Decimal:
    """A Decimal from the string it was written as (or an int); a JSON float is refused,
    as money never is a float."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedData(f"a decimal is written as a string, got {value!r}")
    try:
        return Decimal(value)
    except decimal.InvalidOperation:
        raise MalformedData(f"{value!r} is not a decimal") from None


def make_converter() -> cattrs.Converter:
    """A converter for every omscore aggregate, value and event (new on each call)."""
    converter = cattrs.Converter()
    converter.register_unstructure_hook(Decimal, str)
    converter.register_structure_hook(Decimal, _decimal)
    converter.register_unstructure_hook(datetime, remember_last(datetime.isoformat))
    converter.register_structure_hook(datetime, lambda v, _: datetime.fromisoformat(v))
    converter.register_unstructure_hook(date, date.isoformat)
    converter.register_structure_hook(date, lambda v, _: date.fromisoformat(v))
    converter.register_unstructure_hook_func(
        lambda t: t in (frozenset, set) or getattr(t, "__origin__", None) in (frozenset, set),
        lambda values: _sorted_list(values, converter),
    )
    converter.register_unstructure_hook_factory(_is_tuple_of_values, _list_of(converter))
    converter.register_unstructure_hook_func(_is_optional_plain, identity)

    unstructure_by_type = {
        cls: make_dict_unstructure_fn(attrs.resolve_types(cls), converter)
        for cls in EVENT_TYPES.values()
    }
    structure_by_name = {
        name: make_dict_structure_fn(attrs.resolve_types(cls), converter)
        for name, cls in EVENT_TYPES.items()
    }

    def unstructure_event(event: DomainEvent) -> dict[str, Any]:
        body: dict[str, Any] = unstructure_by_type[type(event)](event)
        return {"type": type(event).__name__, **body}

    def structure_event(data: dict[str, Any], _: type[Any]) -> DomainEvent:
        body = dict(data)
        name = body.pop("type", None)
        if name not in structure_by_name:
            raise StructureHandlerNotFoundError(f"unknown event type {name!r}", DomainEvent)
        event: DomainEvent = structure_by_name[name](body, EVENT_TYPES[name])
        return event

    _register_plans(converter)
    for cls in WRITTEN_WITHOUT_DEFAULTS:
        converter.register_unstructure_hook(
            cls, make_dict_unstructure_fn(cls, converter, _cattrs_omit_if_default=True)
        )
    converter.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, DomainEvent), unstructure_event
    )
    converter.register_structure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, DomainEvent), structure_event
    )
    return converter


def _register_plans(converter: cattrs.Converter) -> None:
    """Plans keep their trace details lazily; written out, the details are materialised."""

    def unstructure_plan(plan: AllocationPlan) -> dict[str, Any]:
        return {
            "policy": plan.policy,
            "assignments": converter.unstructure(plan.assignments, tuple[Assignment, ...]),
            "unallocated": dict(plan.unallocated),
            "cost": plan.cost,
            "search": plan.search,
            "search_steps": plan.search_steps,
            "details": converter.unstructure(plan.details, PlanDetails),
        }

    def structure_plan(data: dict[str, Any], _: type[Any]) -> AllocationPlan:
        return AllocationPlan(
            policy=data["policy"],
            assignments=converter.structure(data["assignments"], tuple[Assignment, ...]),
            unallocated=converter.structure(data["unallocated"], dict[LineId, int]),
            cost=data["cost"],
            search=data["search"],
            search_steps=data["search_steps"],
            details=converter.structure(data["details"], PlanDetails),
        )

    converter.register_unstructure_hook(AllocationPlan, unstructure_plan)
    converter.register_structure_hook(AllocationPlan, structure_plan)


_default = make_converter()


def to_json(value: object) -> str:
    """``value`` as a compact, deterministic JSON string."""
    return json.dumps(_default.unstructure(value), sort_keys=True, separators=(",", ":"))


def from_json(text: str, cls: type[T]) -> T:
    """The ``cls`` instance that :func:`to_json` wrote as ``text``; anything else raises
    :class:`~omscore.errors.MalformedData` naming what is wrong."""
    try:
        return _default.structure(json.loads(text), cls)
    except Exception as error:  # JSON, cattrs and the validators each raise their own
        raise MalformedData(f"cannot decode {cls.__name__}: {decoding_problem(error)}") from error


def event_to_dict(event: DomainEvent) -> dict[str, Any]:
    """A domain event as a JSON-ready dict with its ``"type"``."""
    data: dict[str, Any] = _default.unstructure(event, DomainEvent)
    return data


def event_from_dict(data: dict[str, Any]) -> DomainEvent:
    """The domain event that :func:`event_to_dict` wrote; anything else raises
    :class:`~omscore.errors.MalformedData` naming what is wrong."""
    try:
        return _default.structure(data, DomainEvent)
    except Exception as error:
        raise MalformedData(f"cannot decode a domain event: {decoding_problem(error)}") from error


def _field_problem(error: BaseException, cls: type | None) -> str:
    """One field's problem: omscore's own errors say it best themselves."""
    if isinstance(error, OmsError):
        return f"{type(error).__name__}: {error}"
    return format_exception(error, cls)


def decoding_problem(error: Exception) -> str:
    """What a failed decode found: each field's problem with its path for cattrs' errors
    (at most five), the error itself otherwise."""
    if isinstance(error, cattrs.BaseValidationError):
        problems = cattrs.transform_error(error, format_exception=_field_problem)
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        return "; ".join(problems[:5]) + more
    return f"{type(error).__name__}: {error}"
