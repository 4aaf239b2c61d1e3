"""What a checkout submits: an order draft, and its complete validation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from omscore._checks import number
from omscore.errors import InvalidArgument, InvalidDraft, OmsError
from omscore.money import Money, minor_units
from omscore.orders.delivery import Delivery


@attrs.frozen(slots=True)
class DraftLimits:
    """Upper bounds a draft must respect; the OMS takes them as ``limits=``."""

    max_lines: int = attrs.field(
        default=1_000, validator=number(InvalidArgument, minimum=1, whole=True)
    )
    max_units_per_line: int = attrs.field(
        default=100_000, validator=number(InvalidArgument, minimum=1, whole=True)
    )


@attrs.frozen(slots=True)
class LineDraft:
    """One line of a draft: ``quantity`` units of ``sku`` at ``unit_price`` each.

    ``discount`` and ``tax`` apply to the whole line; ``None`` means zero.
    """

    sku: str
    quantity: int
    unit_price: Money
    discount: Money | None = None
    tax: Money | None = None


def _line_tuple(values: Iterable[LineDraft]) -> tuple[LineDraft, ...]:
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise InvalidDraft([f"lines must be a sequence of LineDrafts, got {values!r}"])
    return tuple(values)


@attrs.frozen(slots=True)
class OrderDraft:
    """An order as submitted at checkout, before it is validated and placed.

    ``reservation_key`` names the checkout reservation the order takes over, if any;
    ``shipping_fee`` of ``None`` means free shipping. ``ship_complete`` asks for one
    parcel: the order's open units are sourced only when one location can send them all.
    """

    channel: str
    currency: str
    lines: Sequence[LineDraft] = attrs.field(converter=_line_tuple)
    delivery: Delivery
    customer_ref: str | None = None
    shipping_fee: Money | None = None
    reservation_key: str | None = None
    ship_complete: bool = False


def _non_empty_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def is_quantity(value: object) -> bool:
    """True for an ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def money_problems(label: str, value: object, currency: str) -> list[str]:
    """What is wrong with ``value`` as an amount of the order's ``currency`` (none: [])."""
    if isinstance(value, Money) and value.currency == currency and value.amount >= 0:
        return []
    if not isinstance(value, Money):
        return [f"{label} must be Money, got {value!r}"]
    problems = []
    if value.currency != currency:
        problems.append(f"{label} is in {value.currency}, the order is in {currency}")
    if value.amount < 0:
        problems.append(f"{label} must not be negative, got {value}")
    return problems


def line_problems(label: str, line: LineDraft, currency: str, limits: DraftLimits) -> list[str]:
    """Every problem of one line draft, each prefixed by ``label``."""
    if not isinstance(line, LineDraft):
        return [f"{label}: expected a LineDraft, got {type(line).__name__}"]
    problems: list[str] = []
    if not _non_empty_text(line.sku):
        problems.append(f"{label}: sku must be a non-empty string, got {line.sku!r}")
    if not is_quantity(line.quantity):
        problems.append(f"{label}: quantity must be an int, got {line.quantity!r}")
    elif not 1 <= line.quantity <= limits.max_units_per_line:
        problems.append(
            f"{label}: quantity must be between 1 and {limits.max_units_per_line}, "
            f"got {line.quantity}"
        )
    problems += money_problems(f"{label}: unit price", line.unit_price, currency)
    for name, value in (("discount", line.discount), ("tax", line.tax)):
        if value is not None:
            problems += money_problems(f"{label}: {name}", value, currency)
    if not problems and line.discount is not None:
        gross = line.unit_price * line.quantity
        if line.discount > gross:
            problems.append(f"{label}: discount {line.discount} exceeds the line price {gross}")
    return problems


def draft_problems(draft: OrderDraft, limits: DraftLimits) -> list[str]:
    """Every problem of a draft at once; empty when the draft can be placed."""
    if not isinstance(draft, OrderDraft):
        return [f"an order is placed from an OrderDraft, got {type(draft).__name__}"]
    problems: list[str] = []
    for name in ("channel", "customer_ref", "reservation_key"):
        value = getattr(draft, name)
        if (name == "channel" or value is not None) and not _non_empty_text(value):
            problems.append(f"{name} must be a non-empty string, got {value!r}")
    try:
        minor_units(draft.currency)
    except OmsError as e:
        problems.append(str(e))
    if not draft.lines:
        problems.append("an order needs at least one line")
    if len(draft.lines) > limits.max_lines:
        problems.append(
            f"an order may have at most {limits.max_lines} lines, got {len(draft.lines)}"
        )
    for i, line in enumerate(draft.lines, start=1):
        problems += line_problems(f"line {i}", line, draft.currency, limits)
    if not isinstance(draft.delivery, Delivery):
        problems.append(f"delivery must be a Delivery, got {draft.delivery!r}")
    else:
        problems += draft.delivery.problems()
    if draft.shipping_fee is not None:
        problems += money_problems("shipping fee", draft.shipping_fee, draft.currency)
    if not isinstance(draft.ship_complete, bool):
        problems.append(f"ship_complete must be True or False, got {draft.ship_complete!r}")
    return problems


def validate_draft(draft: OrderDraft, limits: DraftLimits) -> None:
    """Raise :class:`~omscore.errors.InvalidDraft` listing every problem, or return."""
    problems = draft_problems(draft, limits)
    if problems:
        raise InvalidDraft(problems)
