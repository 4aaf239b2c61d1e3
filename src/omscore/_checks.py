"""Checks of what callers pass: functions for the arguments of OMS methods, and attrs
validators for the settings users build by hand (locations, policies, limits).

Each raises the pillar's own :class:`~omscore.errors.OmsError` naming the field and the
value, so a wrong setting is refused where it is written, not at the first command that
uses it. Aggregates and events get none: the service builds those from checked input.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from omscore.errors import InvalidArgument, OmsError

E = TypeVar("E", bound=enum.Enum)
Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]
Error = Callable[[str], OmsError]


def number(error: Error, *, minimum: float = 0, whole: bool = False) -> Validator:
    """A finite number (an int when ``whole``) of ``minimum`` or more; never a bool."""
    kinds: tuple[type, ...] = (int,) if whole else (int, float, Decimal)
    what = "an int" if whole else "a finite number"

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, kinds)
            or not math.isfinite(value)  # type: ignore[arg-type]
            or value < minimum  # type: ignore[operator]
        ):
            raise error(f"{attribute.name} must be {what} >= {minimum:g}, got {value!r}")

    return check


def optional(check: Validator) -> Validator:
    """``check``, or ``None``."""

    def maybe(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            check(instance, attribute, value)

    return maybe


def flag(error: Error) -> Validator:
    """``True`` or ``False`` (see :func:`require_flag`)."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        require_flag(value, attribute.name, error)

    return check


def text(error: Error) -> Validator:
    """A string, empty allowed (see :func:`require_note`)."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        require_note(value, attribute.name, error)

    return check


def with_method(method: str, error: Error) -> Validator:
    """An object with a callable ``method`` (a port or a policy: any class will do)."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not callable(getattr(value, method, None)):
            raise error(f"{attribute.name} must have the method {method}(), got {value!r}")

    return check


def instance_of(kind: type, error: Error) -> Validator:
    """An instance of ``kind``."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise error(f"{attribute.name} must be a {kind.__name__}, got {value!r}")

    return check


# --- arguments: each returns what it checked, or raises ``error`` naming ``what`` ----------


def members(values: object, kind: type[E], what: str, error: Error) -> frozenset[E]:
    """Members of the enum ``kind`` given by member or value. A string alone (it would be
    taken letter by letter) or an unknown value is ``error``, naming the unknown ones."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise error(f"{what} must be a collection, got {values!r}")
    given = list(values)
    known = [member.value for member in kind]
    unknown = [v for v in given if not isinstance(v, str) or v not in known]
    if unknown:
        raise error(f"unknown {what} {unknown!r}; known: {known}")
    return frozenset(kind(v) for v in given)


def require_text(value: object, what: str, error: Error = InvalidArgument) -> str:
    """``value`` if it is a non-empty string, else ``error`` naming ``what``."""
    if not isinstance(value, str) or not value.strip():
        raise error(f"{what} must be a non-empty string, got {value!r}")
    return value


def require_note(value: object, what: str, error: Error = InvalidArgument) -> None:
    """Free text (a reason, a reference, a tracking number) is a string, empty allowed."""
    if not isinstance(value, str):
        raise error(f"{what} must be a string, got {value!r}")


def require_flag(value: object, what: str, error: Error = InvalidArgument) -> None:
    """A yes-or-no argument is a bool (a truthy string or list is a mistake, not a yes)."""
    if not isinstance(value, bool):
        raise error(f"{what} must be True or False, got {value!r}")


def optional_text(value: object, what: str, error: Error = InvalidArgument) -> None:
    """A name given to filter by: ``None`` (no filter) or a non-empty string."""
    if value is not None:
        require_text(value, what, error)


def require_mapping(value: object, what: str, error: Error = InvalidArgument) -> Mapping[Any, Any]:
    """``value`` if it is a mapping (``{line_id: units}`` and the like), else ``error``."""
    if not isinstance(value, Mapping):
        raise error(f"{what} must be a mapping, got {value!r}")
    return value


def require_names(values: object, what: str, error: Error = InvalidArgument) -> list[str]:
    """``values`` as a list if it is a collection of non-empty strings (a string alone is
    not one), else ``error`` naming ``what``."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise error(f"{what} must be a collection of strings, got {values!r}")
    names = list(values)
    for name in names:
        require_text(name, f"each of {what}", error)
    return names
