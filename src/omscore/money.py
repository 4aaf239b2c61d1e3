"""Money: a Decimal amount in an ISO 4217 currency. Never a float."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction

import attrs

from omscore.errors import (
    CurrencyMismatch,
    InvalidAllocationRatios,
    InvalidMoney,
    UnknownCurrency,
)

# ISO 4217 active codes and their minor units (decimal places), per the ISO 4217 list
# published by SIX (the maintenance agency). Codes not listed in the exceptions have 2.
_ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "ISK",
        "JPY",
        "KMF",
        "KRW",
        "PYG",
        "RWF",
        "UGX",
        "UYI",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
_THREE_DECIMAL = frozenset(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"])
_FOUR_DECIMAL = frozenset(["CLF", "UYW"])
_TWO_DECIMAL = frozenset(
    [
        "AED",
        "AFN",
        "ALL",
        "AMD",
        "ANG",
        "AOA",
        "ARS",
        "AUD",
        "AWG",
        "AZN",
        "BAM",
        "BBD",
        "BDT",
        "BGN",
        "BMD",
        "BND",
        "BOB",
        "BOV",
        "BRL",
        "BSD",
        "BTN",
        "BWP",
        "BYN",
        "BZD",
        "CAD",
        "CDF",
        "CHE",
        "CHF",
        "CHW",
        "CNY",
        "COP",
        "COU",
        "CRC",
        "CUC",
        "CUP",
        "CVE",
        "CZK",
        "DKK",
        "DOP",
        "DZD",
        "EGP",
        "ERN",
        "ETB",
        "EUR",
        "FJD",
        "FKP",
        "GBP",
        "GEL",
        "GHS",
        "GIP",
        "GMD",
        "GTQ",
        "GYD",
        "HKD",
        "HNL",
        "HTG",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "IRR",
        "JMD",
        "KES",
        "KGS",
        "KHR",
        "KPW",
        "KYD",
        "KZT",
        "LAK",
        "LBP",
        "LKR",
        "LRD",
        "LSL",
        "MAD",
        "MDL",
        "MGA",
        "MKD",
        "MMK",
        "MNT",
        "MOP",
        "MRU",
        "MUR",
        "MVR",
        "MWK",
        "MXN",
        "MXV",
        "MYR",
        "MZN",
        "NAD",
        "NGN",
        "NIO",
        "NOK",
        "NPR",
        "NZD",
        "PAB",
        "PEN",
        "PGK",
        "PHP",
        "PKR",
        "PLN",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "SAR",
        "SBD",
        "SCR",
        "SDG",
        "SEK",
        "SGD",
        "SHP",
        "SLE",
        "SLL",
        "SOS",
        "SRD",
        "SSP",
        "STN",
        "SVC",
        "SYP",
        "SZL",
        "THB",
        "TJS",
        "TMT",
        "TOP",
        "TRY",
        "TTD",
        "TWD",
        "TZS",
        "UAH",
        "USD",
        "USN",
        "UYU",
        "UZS",
        "VED",
        "VES",
        "WST",
        "XCD",
        "XCG",
        "YER",
        "ZAR",
        "ZMW",
        "ZWG",
        "ZWL",
    ]
)


def minor_units(currency: str) -> int:
    """Decimal places of a currency's minor unit (JPY 0, EUR 2, KWD 3)."""
    if not isinstance(currency, str):
        raise UnknownCurrency(f"currency {currency!r} is not an ISO 4217 code")
    if currency in _TWO_DECIMAL:
        return 2
    if currency in _ZERO_DECIMAL:
        return 0
    if currency in _THREE_DECIMAL:
        return 3
    if currency in _FOUR_DECIMAL:
        return 4
    raise UnknownCurrency(f"currency {currency!r} is not an ISO 4217 code")


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, bool | float):
        raise InvalidMoney(
            f"money amounts must be Decimal, int or str, not {type(value).__name__} {value!r}"
        )
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int | str):
        try:
            amount = Decimal(value)
        except InvalidOperation as e:
            raise InvalidMoney(f"not a decimal amount: {value!r}") from e
    else:
        raise InvalidMoney(f"money amounts must be Decimal, int or str, not {type(value).__name__}")
    if not amount.is_finite():
        raise InvalidMoney(f"money amounts must be finite, got {value!r}")
    return amount


def _check_currency(_: object, __: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str):
        raise UnknownCurrency(f"currency must be an ISO 4217 code string, got {value!r}")
    minor_units(value)


@attrs.frozen(slots=True, repr=False)
class Money:
    """An exact amount of one currency.

    ``amount`` accepts a ``Decimal``, ``int`` or decimal ``str``; a ``float`` raises
    :class:`~omscore.errors.InvalidMoney`. Amounts of different currencies never mix:
    ``+``, ``-`` and comparisons raise :class:`~omscore.errors.CurrencyMismatch`.
    """

    amount: Decimal = attrs.field(converter=_to_decimal)
    currency: str = attrs.field(validator=_check_currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Zero in ``currency``; the start value for ``sum()``."""
        shared = cls is Money  # a subclass gets zeros of its own type, never cached
        zero = _ZEROS.get(currency) if shared and isinstance(currency, str) else None
        if zero is None:
            zero = cls(_ZERO, currency)
            if shared and len(_ZEROS) < 512:
                _ZEROS[currency] = zero
        return zero

    @classmethod
    def from_minor(cls, units: int, currency: str) -> Money:
        """An amount given in minor units (cents): ``from_minor(1999, "EUR")`` is 19.99 EUR."""
        return cls(Decimal(units).scaleb(-minor_units(currency)), currency)

    @property
    def minor_units(self) -> int:
        """The amount in minor units, rounded half-even (19.99 EUR -> 1999)."""
        return int(self.quantize().amount.scaleb(minor_units(self.currency)))

    def quantize(self) -> Money:
        """This amount rounded half-even to the currency's minor unit."""
        exponent = Decimal(1).scaleb(-minor_units(self.currency))
        return Money(self.amount.quantize(exponent, rounding=ROUND_HALF_EVEN), self.currency)

    def is_zero(self) -> bool:
        """True when the amount is zero."""
        return self.amount == 0

    def allocate(self, ratios: Sequence[int | Decimal]) -> list[Money]:
        """Split this amount (rounded to the minor unit) in proportion to ``ratios``.

        Largest remainder: every part is the floor of its exact share, and the minor units
        left over go one each to the parts with the largest remainders (earlier parts first on
        ties). The parts always sum exactly to the rounded whole.
        """
        exact = [_ratio(r) for r in ratios]
        total_ratio = sum(exact, Fraction(0))
        if not exact or total_ratio == 0:
            raise InvalidAllocationRatios(
                f"ratios must be non-negative with a positive sum, got {list(ratios)!r}"
            )
        whole = self.minor_units
        sign, units = (-1 if whole < 0 else 1), abs(whole)
        shares = [units * r / total_ratio for r in exact]
        parts = [math.floor(s) for s in shares]
        leftover = units - sum(parts)
        by_remainder = sorted(range(len(parts)), key=lambda i: (-(shares[i] - parts[i]), i))
        for i in by_remainder[:leftover]:
            parts[i] += 1
        return [Money.from_minor(sign * p, self.currency) for p in parts]

    def even_shares(self, parts: int, first: int, count: int) -> Money:
        """The sum of shares ``first`` to ``first + count - 1`` of
        ``allocate([1] * parts)``, worked out without building the ``parts`` shares.

        With equal ratios every share is the whole divided by ``parts``, rounded down to
        the minor unit, and the minor units left over go one each to the first shares; so
        the sum of any run of shares is known directly. Shares past ``parts`` count as none,
        as in a slice.
        """
        if parts < 1 or first < 0 or count < 0:
            raise InvalidAllocationRatios(
                f"even shares need parts >= 1 and a non-negative first share and count, "
                f"got parts={parts}, first={first}, count={count}"
            )
        whole = self.minor_units
        sign, units = (-1 if whole < 0 else 1), abs(whole)
        base, leftover = divmod(units, parts)
        start, end = min(first, parts), min(first + count, parts)
        with_extra = max(0, min(end, leftover) - start)
        return Money.from_minor(sign * ((end - start) * base + with_extra), self.currency)

    def _same_currency(self, other: Money, op: str) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(
                f"cannot {op} {self} and {other}: currencies {self.currency} and {other.currency}"
            )

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "add")
        return _valid(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "subtract")
        return _valid(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int | Decimal):
            raise InvalidMoney(f"money can be multiplied by int or Decimal only, got {factor!r}")
        if isinstance(factor, Decimal) and not factor.is_finite():
            raise InvalidMoney(f"money can be multiplied by finite numbers only, got {factor!r}")
        return _valid(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __bool__(self) -> bool:
        """False for zero, written any way, as for numbers: ``if order.refundable:``."""
        return not self.is_zero()

    def __neg__(self) -> Money:
        return _valid(-self.amount, self.currency)

    def _compare(self, other: object, op: str) -> tuple[Decimal, Decimal]:
        if not isinstance(other, Money):
            raise CurrencyMismatch(f"cannot compare {self} with {other!r}")
        self._same_currency(other, op)
        return self.amount, other.amount

    def __lt__(self, other: Money) -> bool:
        a, b = self._compare(other, "compare")
        return a < b

    def __le__(self, other: Money) -> bool:
        a, b = self._compare(other, "compare")
        return a <= b

    def __gt__(self, other: Money) -> bool:
        a, b = self._compare(other, "compare")
        return a > b

    def __ge__(self, other: Money) -> bool:
        a, b = self._compare(other, "compare")
        return a >= b

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def __repr__(self) -> str:
        return f"Money({str(self.amount)!r}, {self.currency!r})"


_ZERO = Decimal(0)
_ZEROS: dict[str, Money] = {}  # Money is immutable: one zero per currency serves everyone


def _valid(amount: Decimal, currency: str) -> Money:
    """A Money from parts already known to be valid (a finite Decimal, a checked currency):
    the result of arithmetic on Money skips the constructor's checks."""
    money = object.__new__(Money)
    object.__setattr__(money, "amount", amount)
    object.__setattr__(money, "currency", currency)
    return money


def _ratio(value: int | Decimal) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidAllocationRatios(f"ratios must be int or Decimal, got {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise InvalidAllocationRatios(f"ratios must be finite, got {value!r}")
    if value < 0:
        raise InvalidAllocationRatios(f"ratios must not be negative, got {value!r}")
    return Fraction(value)
