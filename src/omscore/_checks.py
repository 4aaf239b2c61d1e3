"""attrs validators for the settings users build by hand (locations, policies, limits).

Each raises the pillar's own :class:`~omscore.errors.OmsError` naming the field and the
value, so a wrong setting is refused where it is written, not at the first command that
uses it. Aggregates and events get none: the service builds those from checked input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from omscore.errors import OmsError

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
    """``True`` or ``False``: a truthy string or list is a mistake, not a yes."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, bool):
            raise error(f"{attribute.name} must be True or False, got {value!r}")

    return check


def text(error: Error) -> Validator:
    """A string (empty allowed)."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str):
            raise error(f"{attribute.name} must be a string, got {value!r}")

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
