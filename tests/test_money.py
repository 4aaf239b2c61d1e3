"""Money: exact Decimal amounts, one currency at a time, allocation that never loses a cent."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omscore import Money, OmsError
from omscore import money as money_module
from omscore.errors import (
    CurrencyMismatch,
    InvalidAllocationRatios,
    InvalidMoney,
    UnknownCurrency,
)
from omscore.money import minor_units
from omscore.testing import strategies as oms_st


def test_accepts_decimal_int_and_string_amounts() -> None:
    """Decimal, int and decimal strings all give the same exact amount."""
    assert Money(Decimal("10"), "EUR") == Money(10, "EUR") == Money("10.00", "EUR")


@pytest.mark.parametrize("bad", [1.5, float("nan"), True, None, [1]])
def test_refuses_floats_bools_and_other_types(bad: object) -> None:
    """A float is never money; the error is a TypeError and an OmsError."""
    with pytest.raises(InvalidMoney) as info:
        Money(bad, "EUR")
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, OmsError)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-inf", "abc", Decimal("NaN")])
def test_refuses_non_finite_and_malformed_amounts(bad: object) -> None:
    """NaN, infinities and text that is not a number are refused."""
    with pytest.raises(InvalidMoney):
        Money(bad, "EUR")


@pytest.mark.parametrize("code", ["EURO", "eur", "XXX1", "", "ABC"])
def test_refuses_unknown_currency(code: str) -> None:
    """Only ISO 4217 codes are currencies."""
    with pytest.raises(UnknownCurrency, match=repr(code)):
        Money(1, code)


@pytest.mark.parametrize("code", [None, 978, ["EUR"], b"EUR"])
def test_refuses_a_currency_that_is_not_a_string(code: object) -> None:
    """A currency is an ISO 4217 code given as a string, never a number or bytes."""
    with pytest.raises(UnknownCurrency, match="currency must be an ISO 4217 code string"):
        Money(1, code)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "places"), [("JPY", 0), ("EUR", 2), ("USD", 2), ("KWD", 3), ("CLF", 4)]
)
def test_minor_units_follow_iso_4217(code: str, places: int) -> None:
    """Each currency knows its decimal places."""
    assert minor_units(code) == places


@pytest.mark.parametrize("code", ["EURO", None, ["EUR"], b"EUR"])
def test_minor_units_of_something_else_is_an_unknown_currency(code: object) -> None:
    """``minor_units`` is public too: a wrong code is an OmsError, not a TypeError."""
    with pytest.raises(UnknownCurrency, match="is not an ISO 4217 code"):
        minor_units(code)  # type: ignore[arg-type]


def test_adds_and_subtracts_within_one_currency() -> None:
    """+ and - keep the currency."""
    assert Money("1.10", "EUR") + Money("2.20", "EUR") == Money("3.30", "EUR")
    assert Money("1.10", "EUR") - Money("2.20", "EUR") == Money("-1.10", "EUR")


@given(
    st.integers(-1000, 1000),
    st.integers(-1000, 1000),
    st.sampled_from(["", "0", "00"]),
)
def test_comparisons_follow_the_amounts(a: int, b: int, zeros: str) -> None:
    """<, <=, > and >= of one currency agree with the amounts' (trailing zeros and
    equal amounts included); equal amounts are equal money."""
    left = Money(Decimal(a).scaleb(-2), "EUR")
    exponent = Decimal(1).scaleb(-2 - len(zeros))  # 1.23 as 1.23, 1.230 or 1.2300
    right = Money(Decimal(b).scaleb(-2).quantize(exponent), "EUR")
    assert (left < right, left <= right, left > right, left >= right, left == right) == (
        a < b,
        a <= b,
        a > b,
        a >= b,
        a == b,
    )


def test_mixing_currencies_is_refused() -> None:
    """Adding, subtracting or comparing two currencies raises CurrencyMismatch naming both."""
    eur, usd = Money(1, "EUR"), Money(1, "USD")
    with pytest.raises(CurrencyMismatch, match="EUR and USD"):
        _ = eur + usd
    with pytest.raises(CurrencyMismatch):
        _ = eur - usd
    with pytest.raises(CurrencyMismatch):
        _ = eur < usd


def test_arithmetic_with_something_else_than_money_is_refused() -> None:
    """Money adds and subtracts only Money (Python's TypeError, as for any operand it does
    not know), and compares only with Money: 1 EUR < 5 has no meaning."""
    eur = Money(1, "EUR")
    with pytest.raises(TypeError):
        _ = eur + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = eur - Decimal(1)  # type: ignore[operator]
    with pytest.raises(CurrencyMismatch, match="cannot compare 1 EUR with 5"):
        _ = eur < 5  # type: ignore[operator]


def test_negation_and_repr() -> None:
    """Negating keeps the currency; the repr is the code that makes the same amount."""
    assert -Money("1.50", "EUR") == Money("-1.50", "EUR")
    assert -Money("-2", "JPY") == Money("2", "JPY")
    assert repr(Money("1.50", "EUR")) == "Money('1.50', 'EUR')"


def test_multiplies_by_int_or_decimal_only() -> None:
    """Money times a quantity or a Decimal rate; never times a float."""
    assert Money("19.99", "EUR") * 3 == Money("59.97", "EUR")
    assert 2 * Money("1.50", "EUR") == Money("3.00", "EUR")
    assert Money("10", "EUR") * Decimal("0.5") == Money("5", "EUR")
    with pytest.raises(InvalidMoney):
        _ = Money("10", "EUR") * 0.5  # type: ignore[operator]


def test_sum_works_from_a_zero_start() -> None:
    """sum() of money needs a Money.zero start."""
    total = sum([Money("1.25", "EUR"), Money("2.75", "EUR")], Money.zero("EUR"))
    assert total == Money(4, "EUR")


class Points(Money):
    """A subclass, as a host might keep loyalty points."""


def test_a_subclass_zero_is_of_the_subclass_and_money_zero_stays_money() -> None:
    """Money.zero keeps one zero per currency; a subclass's zero is the subclass's own,
    whether Money's was made first or not, and never takes Money's place."""
    assert type(Money.zero("EUR")) is Money
    assert type(Points.zero("EUR")) is Points
    money_module._ZEROS.pop("NOK", None)  # this rule's order: the subclass asks first
    assert type(Points.zero("NOK")) is Points
    assert type(Money.zero("NOK")) is Money
    assert Money.zero("NOK") is Money.zero("NOK")


@pytest.mark.parametrize(
    ("money", "zero"),
    [
        (Money.zero("EUR"), True),
        (Money("0.00", "EUR"), True),
        (Money("-0", "JPY"), True),
        (Money("0.01", "EUR"), False),
        (Money("-0.001", "KWD"), False),
        (Money(1, "EUR"), False),
    ],
)
def test_is_zero_whatever_the_exponent_or_sign(money: Money, zero: bool) -> None:
    """Zero is zero written any way; the smallest amount either side of it is not. As a
    number, money is false exactly when it is zero."""
    assert money.is_zero() is zero
    assert bool(money) is not zero


def test_quantize_rounds_half_even_to_the_minor_unit() -> None:
    """Banker's rounding to cents, yen, fils."""
    assert Money("0.125", "EUR").quantize().amount == Decimal("0.12")
    assert Money("0.135", "EUR").quantize().amount == Decimal("0.14")
    assert Money("2.5", "JPY").quantize().amount == Decimal("2")
    assert Money("1.0005", "KWD").quantize().amount == Decimal("1.000")


def test_allocate_splits_by_largest_remainder() -> None:
    """10.00 in three parts: the extra cent goes to the first part."""
    assert Money("10.00", "EUR").allocate([1, 1, 1]) == [
        Money("3.34", "EUR"),
        Money("3.33", "EUR"),
        Money("3.33", "EUR"),
    ]
    assert Money("100", "JPY").allocate([1, 2]) == [Money(33, "JPY"), Money(67, "JPY")]
    # 7.14, 1.43 and 1.43 cents: the cent left goes to the larger remainder, not the
    # larger share, and of two equal remainders to the earlier part.
    assert Money("0.10", "EUR").allocate([5, 1, 1]) == [
        Money("0.07", "EUR"),
        Money("0.02", "EUR"),
        Money("0.01", "EUR"),
    ]


@given(
    st.integers(min_value=-10_000, max_value=10_000),
    st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=12).filter(any),
)
def test_allocate_rounds_up_the_parts_with_the_largest_remainders(
    cents: int, ratios: list[int]
) -> None:
    """Property: a part rounded up (away from zero) never has a smaller remainder than a
    part rounded down, and on equal remainders it comes first."""
    parts = Money.from_minor(cents, "EUR").allocate(ratios)
    shares = [Fraction(abs(cents) * r, sum(ratios)) for r in ratios]
    remainders = [share - math.floor(share) for share in shares]
    up = [abs(p.minor_units) > math.floor(s) for p, s in zip(parts, shares, strict=True)]
    for i, j in itertools.product(range(len(parts)), repeat=2):
        if up[i] and not up[j]:
            assert (remainders[i], j) > (remainders[j], i), (i, j, remainders)


@pytest.mark.parametrize(
    "ratios", [[], [0, 0], [-1, 2], [1.5], [True, 1], [Decimal("NaN"), 1], [Decimal("Infinity")]]
)
def test_allocate_refuses_bad_ratios(ratios: list[object]) -> None:
    """Empty, all-zero, negative or float ratios are refused."""
    with pytest.raises(InvalidAllocationRatios):
        Money(10, "EUR").allocate(ratios)  # type: ignore[arg-type]


@given(
    oms_st.precise_money(),
    st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=20).filter(any),
)
def test_allocate_parts_always_sum_to_the_whole(amount: Money, ratios: list[int]) -> None:
    """Property: the parts sum exactly to the amount rounded to the minor unit, every part is
    whole in minor units, and no part is more than one minor unit from its exact share."""
    parts = amount.allocate(ratios)
    whole = amount.quantize()
    assert sum(parts, Money.zero(amount.currency)) == whole
    assert all(p == p.quantize() for p in parts)
    total = sum(ratios)
    for part, ratio in zip(parts, ratios, strict=True):
        exact = Decimal(whole.minor_units) * ratio / total
        assert abs(Decimal(part.minor_units) - exact) < 1


@given(oms_st.money(), st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=10))
def test_allocate_is_deterministic(amount: Money, ratios: list[int]) -> None:
    """Property: the same split twice gives the same parts."""
    assert amount.allocate(ratios) == amount.allocate(list(ratios))


@given(
    oms_st.precise_money(),
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=0, max_value=70),
    st.integers(min_value=0, max_value=70),
)
def test_even_shares_sum_the_slice_of_an_even_allocation(
    amount: Money, parts: int, first: int, count: int
) -> None:
    """Property: a run of even shares is exactly the sum of that slice of
    ``allocate([1] * parts)``, for any amount (negative ones too), start and length."""
    shares = amount.allocate([1] * parts)[first : first + count]
    assert amount.even_shares(parts, first, count) == sum(shares, Money.zero(amount.currency))


def test_even_shares_give_the_leftover_units_to_the_first_shares() -> None:
    """10.00 EUR in three: 3.34, 3.33, 3.33; -0.05 EUR in three: -0.02, -0.02, -0.01."""
    ten = Money("10.00", "EUR")
    assert ten.even_shares(3, 0, 1) == Money("3.34", "EUR")
    assert ten.even_shares(3, 1, 2) == Money("6.66", "EUR")
    assert ten.even_shares(3, 2, 5) == Money("3.33", "EUR")  # past the last share: none
    assert ten.even_shares(3, 3, 1) == Money("0.00", "EUR")
    assert Money("-0.05", "EUR").even_shares(3, 0, 2) == Money("-0.04", "EUR")


@pytest.mark.parametrize(("parts", "first", "count"), [(0, 0, 1), (3, -1, 1), (3, 0, -1)])
def test_even_shares_refuse_bad_arguments(parts: int, first: int, count: int) -> None:
    """No parts, or a negative first share or count, is refused with the values named."""
    with pytest.raises(InvalidAllocationRatios, match=f"parts={parts}"):
        Money("10.00", "EUR").even_shares(parts, first, count)


@given(oms_st.money(), oms_st.money())
def test_addition_is_exact_in_minor_units(a: Money, b: Money) -> None:
    """Property: adding amounts of one currency adds their minor units exactly."""
    if a.currency == b.currency:
        assert (a + b).minor_units == a.minor_units + b.minor_units
    else:
        with pytest.raises(CurrencyMismatch):
            _ = a + b


def test_arithmetic_results_are_checked_money() -> None:
    """Results of arithmetic keep the currency and stay finite; NaN factors are refused."""
    total = Money("1.10", "EUR") + Money("2.20", "EUR")
    assert total == Money("3.30", "EUR")
    assert total.currency == "EUR"
    assert isinstance(total.amount, Decimal)
    with pytest.raises(InvalidMoney, match="finite"):
        _ = Money("1.00", "EUR") * Decimal("NaN")
