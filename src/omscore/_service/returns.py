"""Return use cases: request, approve or reject, receive and inspect, refund, exchange."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from omscore._checks import require_mapping, require_note
from omscore._service.core import (
    ServiceCore,
    _load_order,
    _load_return,
    _returns_location,
)
from omscore._stock import StockSession
from omscore.errors import (
    CurrencyMismatch,
    InvalidDraft,
    InvalidMoney,
    InvalidRefund,
    InvalidReturn,
    PaymentLimitExceeded,
)
from omscore.events import (
    DomainEvent,
    OrderRefunded,
    ReturnRefunded,
)
from omscore.ids import LineId, LineQuantities, ReturnId
from omscore.inventory import Capability
from omscore.money import Money
from omscore.orders import (
    LineDraft,
    Order,
    OrderDraft,
    PaymentKind,
)
from omscore.ports import UnitOfWork
from omscore.returns import (
    Disposition,
    LineDispositions,
    Return,
    ReturnStatus,
    quote_refund,
    request_return,
    returnable_units,
)


class ReturnUseCases(ServiceCore):
    """Return use cases: request, approve or reject, receive and inspect, refund, exchange."""

    def request_return(
        self,
        order_id: str,
        lines: LineQuantities,
        reason: str = "",
        method: str = "ship",
        idempotency_key: str | None = None,
    ) -> Return:
        """Ask to send delivered units back (an RMA). Eligible: delivered or collected units
        not returned or in an open return, inside the policy's window, of returnable SKUs.
        Every problem is reported at once; nothing is created otherwise."""
        require_note(reason, "reason")

        def work(uow: UnitOfWork, now: datetime) -> Return:
            order = _load_order(uow, order_id)
            existing = [_load_return(uow, rid) for rid in order.return_ids]
            rma, events = request_return(
                ReturnId(self._new_id("R")),
                order,
                lines,
                existing,
                self.return_policy,
                reason,
                method,
                now,
            )
            uow.returns.put(rma)
            uow.orders.put(order.add_return(rma.id))
            uow.record(events)
            return rma

        require_mapping(lines, "lines to return ({line_id: units})", _return_problem)
        arguments = {"order_id": order_id, "lines": dict(lines), "reason": reason, "method": method}
        return self._run("request_return", arguments, idempotency_key, work)

    def returnable(self, order_id: str) -> dict[LineId, int]:
        """What the customer may ask back now, per line (``{line_id: units}``; lines with
        none left out): the units :meth:`request_return` would accept, for a "return
        items" page. :class:`~omscore.errors.UnknownOrder` if there is no such order."""

        def read(uow: UnitOfWork) -> dict[LineId, int]:
            order = _load_order(uow, order_id)
            returns = [_load_return(uow, rid) for rid in order.return_ids]
            return returnable_units(order, returns, self.return_policy, self._now())

        return self._read(read)

    def get_return(self, return_id: str) -> Return:
        """The return with ``return_id``."""
        return self._read(lambda uow: _load_return(uow, return_id))

    def approve_return(self, return_id: str, idempotency_key: str | None = None) -> Return:
        """Accept the return; a ``ship`` return gets a label through the carrier port,
        addressed to the nearest active location taking returns (with a carrier and no
        such location, :class:`InvalidReturn`, and nothing changes)."""

        def work(uow: UnitOfWork, now: datetime) -> Return:
            rma = _load_return(uow, return_id)
            rma.require("approve")
            tracking = None
            if rma.method == "ship" and self.carrier is not None:
                order = _load_order(uow, rma.order_id)
                depot = _returns_location(StockSession(uow, now), order)
                if depot is None:
                    raise InvalidReturn(
                        [
                            f"no active location takes returns (capability 'returns'): "
                            f"the carrier has nowhere to address return {rma.id}'s label to"
                        ]
                    )
                units = sum(line.requested for line in rma.lines)
                label = self._buy_label(
                    f"return-{rma.id}", depot, order.delivery.address, units, key=f"label:{rma.id}"
                )
                tracking = label.tracking
            rma, events = rma.approve(now, tracking)
            uow.returns.put(rma)
            uow.record(events)
            return rma

        return self._run("approve_return", {"return_id": return_id}, idempotency_key, work)

    def reject_return(
        self, return_id: str, reason: str = "", idempotency_key: str | None = None
    ) -> Return:
        """Refuse the return; its units may be asked back again."""
        require_note(reason, "reason")
        return self._return_command(
            "reject_return",
            return_id,
            {"reason": reason},
            idempotency_key,
            lambda r, now: r.reject(reason, now),
        )

    def close_return(self, return_id: str, idempotency_key: str | None = None) -> Return:
        """Close a refunded, exchanged, rejected or abandoned return."""
        return self._return_command(
            "close_return", return_id, {}, idempotency_key, lambda r, now: r.close(now)
        )

    def _return_command(
        self,
        command: str,
        return_id: str,
        arguments: Mapping[str, object],
        idempotency_key: str | None,
        decide: Callable[[Return, datetime], tuple[Return, list[DomainEvent]]],
    ) -> Return:
        def work(uow: UnitOfWork, now: datetime) -> Return:
            rma, events = decide(_load_return(uow, return_id), now)
            uow.returns.put(rma)
            uow.record(events)
            return rma

        return self._run(command, {"return_id": return_id, **arguments}, idempotency_key, work)

    def receive_return(
        self,
        return_id: str,
        location_id: str,
        dispositions: LineDispositions,
        idempotency_key: str | None = None,
    ) -> Return:
        """Units arrive at a location with RETURNS capability and are inspected: a
        disposition per unit. RESTOCK units go back on hand there (a restock in the ledger);
        the others are recorded on the return."""

        def work(uow: UnitOfWork, now: datetime) -> Return:
            stock = StockSession(uow, now)
            location = stock.location(location_id)
            if not location.can(Capability.RETURNS):
                raise InvalidReturn([f"location {location.id} does not take returns"])
            rma = _load_return(uow, return_id)
            before = {line.line_id: line.received for line in rma.lines}
            rma, events = rma.receive(location.id, dispositions, now)
            uow.record(events)
            skus = {line.line_id: line.sku for line in rma.lines}
            for line_id, by in dispositions.items():
                restock = sum(n for key, n in by.items() if key == Disposition.RESTOCK)
                if restock:
                    item = stock.item(skus[LineId(line_id)])
                    stock.keep(item.restock(location.id, restock, f"return {rma.id}", now))
            received = {
                line.line_id: line.received - before[line.line_id]
                for line in rma.lines
                if line.received > before[line.line_id]
            }
            uow.orders.put(_load_order(uow, rma.order_id).mark_returned(received))
            uow.returns.put(rma)
            stock.flush()
            return rma

        what = "dispositions ({line_id: {disposition: units}})"
        for split in require_mapping(dispositions, what, _return_problem).values():
            require_mapping(split, what, _return_problem)
        arguments = {
            "return_id": return_id,
            "location_id": location_id,
            "dispositions": {k: dict(v) for k, v in dispositions.items()},
        }
        return self._run("receive_return", arguments, idempotency_key, work)

    def refund_return(self, return_id: str, idempotency_key: str | None = None) -> Money:
        """Refund the received units not refunded yet, through the payment port: each
        unit's share of its line total, less the restocking fee, plus shipping per the
        policy; never more than was captured less earlier refunds. Repeating it refunds
        nothing more."""

        def work(uow: UnitOfWork, now: datetime) -> Money:
            rma = _load_return(uow, return_id)
            order = _load_order(uow, rma.order_id)
            units = {
                line.line_id: line.awaiting_refund for line in rma.lines if line.awaiting_refund
            }
            if not units and rma.status not in (ReturnStatus.REQUESTED, ReturnStatus.APPROVED):
                return Money.zero(order.currency)
            rma.require("refund")
            quote = quote_refund(order, units, self.return_policy)
            amount = min(quote.amount, order.refundable)
            order = self._refund(uow, order, amount, f"refund:{rma.id}:{rma.version}", now)
            rma = rma.mark_refunded(units, amount, now)
            uow.record(
                [
                    ReturnRefunded(
                        return_id=rma.id,
                        order_id=order.id,
                        version=rma.version,
                        at=now,
                        amount=amount,
                        merchandise=quote.merchandise,
                        restocking_fee=quote.restocking_fee,
                        shipping=quote.shipping,
                    )
                ]
            )
            uow.orders.put(order.mark_refunded(units))
            uow.returns.put(rma)
            return amount

        return self._run("refund_return", {"return_id": return_id}, idempotency_key, work)

    def refund_order(
        self, order_id: str, amount: Money, reason: str, idempotency_key: str | None = None
    ) -> Order:
        """Give ``amount`` back on the order without a return: goodwill for a late parcel,
        a price match, a damaged unit the customer keeps. The payment port refunds it and
        ``OrderRefunded`` records why. At most what was captured less what was refunded
        (:class:`~omscore.errors.PaymentLimitExceeded` names both); refunds of returns
        that follow are capped by what is left. ``amount`` must be :class:`Money` in the
        order's currency, positive and in whole minor units (else
        :class:`~omscore.errors.InvalidMoney`, ``CurrencyMismatch`` or ``InvalidRefund``)."""
        require_note(reason, "reason")

        def work(uow: UnitOfWork, now: datetime) -> Order:
            order = _load_order(uow, order_id)
            _check_refund(order, amount)
            key = f"refund:{order.id}:v{order.version}"  # a retried command refunds once
            order = self._refund(uow, order, amount, key, now)
            uow.record(
                [
                    OrderRefunded(
                        order_id=order.id,
                        version=order.version,
                        at=now,
                        amount=amount,
                        reason=reason,
                    )
                ]
            )
            uow.orders.put(order)
            return order

        arguments = {"order_id": order_id, "amount": amount, "reason": reason}
        return self._run("refund_order", arguments, idempotency_key, work)

    def exchange(
        self, return_id: str, lines: Sequence[LineDraft], idempotency_key: str | None = None
    ) -> Order:
        """Settle a received return with a replacement order (same channel and delivery).
        The returned units' value is credit on the new order; a higher price is authorised
        for the difference, a lower one refunded on the original order."""

        def work(uow: UnitOfWork, now: datetime) -> Order:
            rma = _load_return(uow, return_id)
            rma.require("exchange")
            original = _load_order(uow, rma.order_id)
            units = {
                line.line_id: line.awaiting_refund for line in rma.lines if line.awaiting_refund
            }
            # The units' whole value is credit: an exchange takes no restocking fee.
            credit = min(
                quote_refund(original, units, self.return_policy).merchandise,
                original.refundable,
            )
            stock = StockSession(uow, now)
            draft = OrderDraft(
                channel=original.channel,
                currency=original.currency,
                lines=list(lines),
                delivery=original.delivery,
                customer_ref=original.customer_ref,
                ship_complete=original.ship_complete,
            )
            new = self._create_order(stock, draft, exchange_of=rma.id)
            applied = min(credit, new.total)
            new, credited = self._payments.credit(new, applied, f"credit:{rma.id}", now)
            uow.record(credited)
            if new.total > applied:
                new, authorized = self._payments.authorize(new, new.total - applied, now)
                uow.record(authorized)
            original, moved = self._payments.note(
                original, PaymentKind.TRANSFERRED, applied, f"credit:{rma.id}", now
            )
            uow.record(moved)
            original = original.mark_refunded(units)
            original = self._refund(
                uow, original, credit - applied, f"refund:{rma.id}:exchange", now
            )
            rma, events = rma.mark_exchanged(new.id, now)
            uow.record(events)
            uow.orders.put(original)
            uow.orders.put(new)
            uow.returns.put(rma)
            stock.flush()
            return new

        if isinstance(lines, str | bytes | Mapping) or not isinstance(lines, Iterable):
            raise InvalidDraft([f"exchange lines must be a list of LineDrafts, got {lines!r}"])
        arguments = {"return_id": return_id, "lines": list(lines)}
        return self._run("exchange", arguments, idempotency_key, work)


def _check_refund(order: Order, amount: object) -> None:
    if not isinstance(amount, Money):
        raise InvalidMoney(f"a refund amount must be Money, got {amount!r}")
    if amount.currency != order.currency:
        raise CurrencyMismatch(
            f"order {order.id} was paid in {order.currency}, not {amount.currency}"
        )
    if amount.amount <= 0 or amount.quantize() != amount:
        raise InvalidRefund(
            f"a refund must be positive and in whole {amount.currency} minor units, got {amount}"
        )
    refundable = order.refundable
    if amount > refundable:
        moved = (
            "" if order.transferred.is_zero() else f", {order.transferred} moved to a replacement"
        )
        unused = "" if order.credit_left.is_zero() else f", {order.credit_left} credit not used"
        raise PaymentLimitExceeded(
            f"cannot refund {amount} on order {order.id}: {refundable} refundable "
            f"({order.captured} captured, {order.refunded} refunded{moved}{unused})"
        )


def _return_problem(problem: str) -> InvalidReturn:
    return InvalidReturn([problem])
