"""The error tree: one root, :class:`OmsError`, and one subclass per broken rule.

Every refused command raises a subclass of :class:`OmsError` and changes nothing. Where a
builtin exception fits the meaning, the error also derives from it, so callers that catch
``ValueError`` or ``KeyError`` keep working. Messages name the rule and the values involved.
"""

from __future__ import annotations

from collections.abc import Sequence


class OmsError(Exception):
    """Root of every error omscore raises on purpose."""


# --- values -------------------------------------------------------------------------------


class InvalidMoney(OmsError, TypeError):
    """An amount that is not a Decimal, int or decimal string (a float, NaN, infinity)."""


class UnknownCurrency(OmsError, ValueError):
    """A currency code that is not in the ISO 4217 table."""


class CurrencyMismatch(OmsError, ValueError):
    """Arithmetic or comparison between amounts of two different currencies."""


class InvalidAllocationRatios(OmsError, ValueError):
    """Ratios for ``Money.allocate`` that are empty, negative or all zero."""


class InvalidGeoPoint(OmsError, ValueError):
    """A latitude outside [-90, 90] or a longitude outside [-180, 180]."""


class InvalidQuantity(OmsError, ValueError):
    """A quantity that is not a whole number of units in the allowed range."""


# --- orders -------------------------------------------------------------------------------


class InvalidDraft(OmsError, ValueError):
    """An order draft (or edit) with one or more problems; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        listing = "; ".join(self.problems)
        super().__init__(f"order draft refused ({len(self.problems)} problem(s)): {listing}")


class UnknownOrder(OmsError, KeyError):
    """No order with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown order"


class UnknownLine(OmsError, KeyError):
    """No line with that id on the order."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown line"


class InvalidTransition(OmsError):
    """A command that the aggregate's current state does not allow."""


class OrderOnHold(InvalidTransition):
    """A command refused because the order carries at least one hold."""


class UnknownHold(OmsError, KeyError):
    """Releasing a hold kind that the order does not carry."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown hold"


class NotCancellable(InvalidTransition):
    """Cancelling more units than are open or allocated-but-unshipped."""


# --- store and service --------------------------------------------------------------------


class ConcurrencyConflict(OmsError):
    """A commit raced another: the stored aggregate moved past the version this one was read at."""


class DuplicateIdempotencyKey(OmsError, ValueError):
    """An idempotency key reused for a different command or different arguments."""


class StoreError(OmsError):
    """A storage failure that is not a rule of the domain (disk, driver, corrupt data)."""


# --- inventory ----------------------------------------------------------------------------


class UnknownLocation(OmsError, KeyError):
    """No location with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown location"


class DuplicateLocation(OmsError, ValueError):
    """Adding a location whose id is already taken."""


class InvalidLocation(OmsError, ValueError):
    """A location or location update with invalid fields."""


class InvalidChannelConfig(OmsError, ValueError):
    """A channel pool configuration that cannot work (unknown ids, negative buffer ...)."""


class InsufficientStock(OmsError, ValueError):
    """A reservation or transfer asking for more than is available to promise."""


class StockInUse(OmsError, ValueError):
    """A change that would leave on hand below what is allocated and reserved.

    ``holders`` names the orders and reservations that hold the stock.
    """

    def __init__(self, message: str, holders: tuple[str, ...] = ()) -> None:
        self.holders = holders
        super().__init__(message)


class UnknownReservation(OmsError, KeyError):
    """No live reservation with that key (and SKU)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown reservation"


class DuplicateReservation(OmsError, ValueError):
    """A reservation key already holds stock of that SKU."""


class UnknownTransfer(OmsError, KeyError):
    """No transfer in transit with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown transfer"


class UnknownSupply(OmsError, KeyError):
    """No supply of that SKU expected at that location under that reference."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown supply"


class DuplicateSupply(OmsError, ValueError):
    """Expecting supply under a reference already expected for that SKU at that location
    (change it with ``update_supply``)."""


# --- sourcing and fulfilment --------------------------------------------------------------


class InvalidSourcingRequest(OmsError, ValueError):
    """A sourcing request or network snapshot that cannot be planned (bad quantities,
    duplicate line or location ids)."""


class InvalidSourcingConfig(OmsError, ValueError):
    """A sourcing configuration dict with one or more problems; ``problems`` lists each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("sourcing configuration refused: " + "; ".join(self.problems))


class UnknownFulfillment(OmsError, KeyError):
    """No fulfilment order with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown fulfilment order"


class InvalidPlan(OmsError, ValueError):
    """A sourcing policy's plan the OMS will not apply: it splits a ship-complete order
    over locations or leaves part of it behind. Nothing is allocated."""


class UnsuitableLocation(OmsError, ValueError):
    """A location asked to take work it may not take under the sourcing rules (outside the
    channel's pool, unable to ship or hand out pickups, beyond the same-day radius, out of
    capacity today, or one that rejected the order). Nothing changes."""


class NothingToAllocate(InvalidTransition):
    """Allocation asked for an order with no open units."""


class CarrierError(OmsError):
    """The carrier could not quote, label or track."""


# --- payments and returns -----------------------------------------------------------------


class PaymentError(OmsError):
    """The payment gateway failed (a technical error, not a decision about the card)."""


class PaymentDeclined(PaymentError):
    """The payment gateway declined the authorisation, capture or refund."""


class PaymentLimitExceeded(PaymentError, ValueError):
    """A capture beyond the authorisation, or a refund beyond what was captured."""


class InvalidRefund(OmsError, ValueError):
    """A refund amount that cannot be paid back: zero or negative, or finer than the
    currency's minor unit."""


class UnknownReturn(OmsError, KeyError):
    """No return with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown return"


class InvalidReturn(OmsError, ValueError):
    """A return request or receipt with one or more problems; ``problems`` lists each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("return refused: " + "; ".join(self.problems))


class InvalidArgument(OmsError, ValueError):
    """An argument that cannot mean anything where it is given: a key, a channel or an
    idempotency key that is not a non-empty string, a mapping of lines that is not a
    mapping, a list of SKUs that is not a collection of strings."""


class MalformedData(InvalidArgument):
    """Text or a dict given to :mod:`omscore.serialization` that is not what it writes:
    not JSON, a field missing or of the wrong kind, an unknown event type. The message
    names each problem with its path (``required field missing @ $.id``)."""


class InvalidQuery(InvalidArgument):
    """A read asked with arguments that cannot mean anything: an unknown status, a
    negative age, a limit below one."""


class StoreBusy(ConcurrencyConflict):
    """The store stayed locked by another writer past its busy timeout; retried like a
    conflict."""


class SchemaError(StoreError):
    """The store's schema is newer than this omscore understands, or is damaged."""


class DamagedRecord(StoreError):
    """A stored row that cannot be read back: not JSON, or not the aggregate it should
    be. The file was changed outside omscore, or damaged; restore it from a backup."""
