"""The internal value helpers: evolved() is attrs.evolve, remember_last() is its function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from omscore._values import evolved, on_first_use, opened, remember_last
from omscore.ids import LineId, Sku
from omscore.inventory import StockLevel
from omscore.money import Money
from omscore.orders.model import OrderLine


@given(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))
def test_evolved_gives_what_attrs_evolve_gives(on_hand: int, allocated: int, reserved: int) -> None:
    level = StockLevel(100, 1, 2, 3)
    changes = {"on_hand": on_hand, "allocated": allocated, "reserved": reserved}
    assert evolved(level, **changes) == attrs.evolve(level, **changes)


def test_evolved_runs_the_class_checks_and_refuses_unknown_fields() -> None:
    """Validators and converters still run; a misspelt field is a TypeError, not ignored."""
    line = OrderLine(
        LineId("L-1"), Sku("SKU"), 2, Money("5", "EUR"), Money.zero("EUR"), Money.zero("EUR")
    )
    assert evolved(line, allocated=1).open == 1
    with pytest.raises(TypeError, match="alocated"):
        evolved(line, alocated=1)


@attrs.frozen
class _KeywordsOnly:
    a: int
    b: int = attrs.field(kw_only=True, default=0)


@attrs.frozen
class _Private:
    _a: int


def test_evolved_refuses_classes_it_cannot_build_by_position() -> None:
    """A keyword-only field or an aliased (private) one would be passed in the wrong
    place: evolved() says so instead of building a wrong instance."""
    with pytest.raises(TypeError, match="_KeywordsOnly has fields evolved"):
        evolved(_KeywordsOnly(1), a=2)
    with pytest.raises(TypeError, match="_Private has fields evolved"):
        evolved(_Private(1), _a=2)


@attrs.frozen
class _One:
    a: int


def test_evolved_works_on_a_class_of_one_field() -> None:
    assert evolved(_One(1), a=2) == _One(2)
    assert evolved(_One(1)) == _One(1)


def test_remember_last_calls_the_function_once_per_new_argument() -> None:
    calls: list[datetime] = []

    def text(moment: datetime) -> str:
        calls.append(moment)
        return moment.isoformat()

    remembered = remember_last(text)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = now + timedelta(seconds=1)
    assert [remembered(now), remembered(now), remembered(later)] == [
        now.isoformat(),
        now.isoformat(),
        later.isoformat(),
    ]
    assert calls == [now, later]
    equal_but_new = datetime(2026, 1, 1, tzinfo=UTC)
    assert remembered(equal_but_new) == now.isoformat()
    assert len(calls) == 3, "by identity: an equal new object is formatted again"


def test_on_first_use_makes_the_value_once_and_opened_tells_whether_it_did() -> None:
    class Unit:
        made = 0

        @on_first_use
        def repository(self) -> list[int]:
            """A repository."""
            Unit.made += 1
            return [Unit.made]

    unit = Unit()
    assert opened(unit, "repository") is None
    assert unit.repository is unit.repository == [1]
    assert Unit.made == 1
    assert opened(unit, "repository") == [1]
    assert Unit.__dict__["repository"].__doc__ == "A repository."
