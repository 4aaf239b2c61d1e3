"""A faster ``attrs.evolve`` for the project's own frozen value types.

``attrs.evolve`` looks the fields up and passes every value by keyword on each call; the
aggregates change on every command, so that overhead is paid millions of times in a long
run. ``evolved`` keeps each class's field names once and builds the copy positionally,
through the class's own ``__init__`` (validators and converters still run).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast, overload

import attrs

T = TypeVar("T")


class _Layout:
    """How to read all fields of a class at once and where each goes in its ``__init__``."""

    __slots__ = ("position", "read_all")

    def __init__(self, cls: type) -> None:
        fields = attrs.fields(cls)
        if any(not f.init or f.alias != f.name or f.kw_only for f in fields):
            raise TypeError(f"{cls.__name__} has fields evolved() cannot pass by position")
        names = [f.name for f in fields]
        getter = operator.attrgetter(*names)
        self.read_all: Callable[[Any], tuple[Any, ...]] = (
            getter if len(names) > 1 else lambda instance: (getter(instance),)
        )
        self.position = {name: i for i, name in enumerate(names)}


_LAYOUTS: dict[type, _Layout] = {}


def evolved(instance: T, **changes: Any) -> T:
    """A copy of an attrs ``instance`` with ``changes`` applied, like ``attrs.evolve``."""
    cls = type(instance)
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = _Layout(cls)
    values = list(layout.read_all(instance))
    position = layout.position
    for name, value in changes.items():
        if name not in position:
            raise TypeError(f"{cls.__name__} has no field {name!r}")
        values[position[name]] = value
    return cls(*values)


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


Owner = TypeVar("Owner")


class on_first_use(Generic[Owner, V]):  # noqa: N801 - used as a decorator, like cached_property
    """A read-only attribute made by ``make(instance)`` on first access and then kept in the
    instance's ``__dict__``, where later reads find it directly (``functools.cached_property``
    without its lock: a unit of work belongs to one thread). ``opened(instance, name)``
    tells whether it was made."""

    def __init__(self, make: Callable[[Owner], V]) -> None:
        self.make = make
        self.name = make.__name__
        self.__doc__ = make.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> on_first_use[Owner, V]: ...

    @overload
    def __get__(self, instance: Owner, owner: type) -> V: ...

    def __get__(self, instance: Owner | None, owner: type) -> on_first_use[Owner, V] | V:
        if instance is None:
            return self
        value = self.make(instance)
        instance.__dict__[self.name] = value
        return value


def opened(instance: object, name: str) -> Any:
    """The value an :class:`on_first_use` attribute made on ``instance``, or None."""
    return instance.__dict__.get(name)
