"""A faster ``attrs.evolve`` for the project's own frozen value types.

``attrs.evolve`` looks the fields up and passes every value by keyword on each call; the
aggregates change on every command, so that overhead is paid millions of times in a long
run. ``evolved`` keeps each class's field names once and builds the copy positionally,
through the class's own ``__init__`` (validators and converters still run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import attrs

T = TypeVar("T")

_NAMES: dict[type, tuple[tuple[str, ...], frozenset[str]]] = {}


def _init_names(cls: type) -> tuple[tuple[str, ...], frozenset[str]]:
    fields = attrs.fields(cls)
    if any(not f.init or f.alias != f.name or f.kw_only for f in fields):
        raise TypeError(f"{cls.__name__} has fields evolved() cannot pass by position")
    names = tuple(f.name for f in fields)
    _NAMES[cls] = (names, frozenset(names))
    return _NAMES[cls]


def evolved(instance: T, **changes: Any) -> T:
    """A copy of an attrs ``instance`` with ``changes`` applied, like ``attrs.evolve``."""
    cls = type(instance)
    names, known = _NAMES.get(cls) or _init_names(cls)
    if not known.issuperset(changes):
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(set(changes) - known)}")
    return cls(*[changes[n] if n in changes else getattr(instance, n) for n in names])


K = TypeVar("K")
V = TypeVar("V")


def remember_last(function: Callable[[K], V]) -> Callable[[K], V]:
    """``function`` with a memo of its last argument, by identity: one command stamps its
    aggregates, rows and events with the same ``now``, formatted once."""
    last: list[tuple[object, Any]] = [(_NOTHING, None)]

    def remembered(argument: K) -> V:
        seen, known = last[0]
        if seen is argument:
            return cast(V, known)
        value = function(argument)
        last[0] = (argument, value)  # one tuple swapped whole: safe across threads
        return value

    return remembered


_NOTHING = object()
