"""Order use cases: place, read, hold and release, edit, cancel, authorise payment."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from omscore._checks import optional_text, require_flag, require_mapping, require_note
from omscore._service.core import (
    QueuedOrder,
    ServiceCore,
    _before,
    _check_wait,
    _chosen_statuses,
    _freed_today,
    _load_order,
    _next_line_id,
    _pickup_problems,
    _uncounted,
)
from omscore._stock import StockSession
from omscore.errors import (
    InvalidArgument,
    InvalidDraft,
    InvalidQuantity,
    InvalidQuery,
    InvalidTransition,
    PaymentLimitExceeded,
)
from omscore.events import DomainEvent
from omscore.geo import Address
from omscore.ids import ChannelId, LineQuantities
from omscore.money import Money
from omscore.orders import (
    WAITING_ORDER,
    Delivery,
    HoldKind,
    LineDraft,
    Order,
    OrderDraft,
    OrderStatus,
    PaymentKind,
)
from omscore.ports import Pruned, UnitOfWork, checked_limit, checked_position


class OrderUseCases(ServiceCore):
    """Order use cases: place, read, hold and release, edit, cancel, authorise payment."""

    def place_order(
        self, draft: OrderDraft, idempotency_key: str | None = None, *, allocate: bool = False
    ) -> Order:
        """Validate and place an order; its open units take stock (or wait as backorders).

        With ``allocate=True`` the order is also sourced in the same transaction, as
        :meth:`allocate` right after would (the same fulfilment orders, stock and ledger),
        unless a hold stops it (a declined payment): one write instead of two for a
        checkout that is sourced at once. Without a cart reservation to take over, the
        order does not hold its stock first only to release it again, so the stock
        hold events of units allocated at once are not recorded. ``allocate`` returns the
        plan; this returns the order, whose events carry what the plan decided."""
        require_flag(allocate, "allocate")

        def work(uow: UnitOfWork, now: datetime) -> Order:
            stock = StockSession(uow, now)
            # getattr: the draft is checked inside _create_order, with every problem named
            hold_first = not allocate or getattr(draft, "reservation_key", None) is not None
            order = self._create_order(stock, draft, hold=hold_first)
            order, events = self._payments.authorize(order, order.total, now)
            uow.record(events)
            if not order.is_held and allocate:
                if hold_first:
                    stock.flush()  # what placing did, recorded before what sourcing does
                order, _ = self._source(stock, order)
            elif not hold_first:  # a hold stops sourcing: the order holds its stock instead
                self._hold_new_order(stock, order)
            uow.orders.put(order)
            stock.flush()
            return order

        # A key recorded before ``allocate`` existed must still match a repeat of its call.
        arguments: dict[str, object] = {"draft": draft} | ({"allocate": True} if allocate else {})
        return self._run("place_order", arguments, idempotency_key, work)

    def authorize_payment(self, order_id: str, idempotency_key: str | None = None) -> Order:
        """Try the authorisation again (after a decline); on success the payment hold goes.
        An order authorised in part (a prepaid card) is asked for what it still lacks, as
        another authorisation; one authorised in full is :class:`InvalidTransition`."""

        def work(uow: UnitOfWork, now: datetime) -> Order:
            order = _load_order(uow, order_id)
            if self._payments.shortfall(order) is not None:
                order, topped = self._payments.top_up(order, now)
                uow.record(topped)
                uow.orders.put(order)
                return order
            if order.payment_reference is not None or any(
                p.kind is PaymentKind.AUTHORIZED for p in order.payments
            ):
                raise InvalidTransition(f"order {order.id} is already authorised")
            due = order.chargeable - order.captured
            order, events = self._payments.authorize(order, due, now)
            uow.record(events)
            authorized = any(p.kind is PaymentKind.AUTHORIZED for p in order.payments)
            if authorized and order.has_hold(HoldKind.PAYMENT):
                order, released = order.release(HoldKind.PAYMENT, now)
                uow.record(released)
                short = self._payments.shortfall(order)
                if short is not None:  # the hold stays, for what it is now
                    order, held = order.hold(HoldKind.PAYMENT, short, now)
                    uow.record(held)
            uow.orders.put(order)
            return order

        return self._run("authorize_payment", {"order_id": order_id}, idempotency_key, work)

    def get_order(self, order_id: str) -> Order:
        """The order with ``order_id``; :class:`UnknownOrder` if there is none."""
        return self._read(lambda uow: _load_order(uow, order_id))

    def order_queue(
        self,
        *,
        statuses: Iterable[OrderStatus | str] | None = None,
        hold: str | None = None,
        channel: str | None = None,
        older_than: timedelta | None = None,
        limit: int | None = None,
    ) -> list[QueuedOrder]:
        """Orders still waiting for the OMS or for a person, placed earliest first: those
        not wholly allocated yet (open, partially allocated) and those on hold
        (:data:`~omscore.orders.WAITING_ORDER`), or the ones of those ``statuses`` given.
        ``hold="fraud"`` gives one review queue (orders with a hold of that kind),
        ``older_than`` the orders placed at least that long ago (a customer still waiting
        for a parcel to be sent), ``channel`` one channel's. Orders further on are found
        by their fulfilment orders (``stalled_fulfillments(statuses={"shipped"})``: parcels
        never delivered). Bad arguments raise :class:`~omscore.errors.InvalidQuery`."""
        wanted = _chosen_statuses(OrderStatus, statuses, WAITING_ORDER)
        if not wanted <= WAITING_ORDER:
            moved_on = sorted(s.value for s in wanted - WAITING_ORDER)
            raise InvalidQuery(
                f"order queues hold waiting orders ({sorted(s.value for s in WAITING_ORDER)}), "
                f"not {moved_on}: find those by their fulfilment orders"
            )
        _check_wait(older_than)
        checked_limit(limit)
        optional_text(hold, "hold", InvalidQuery)
        optional_text(channel, "channel", InvalidQuery)

        def read(uow: UnitOfWork) -> list[QueuedOrder]:
            now = self._now()
            found = uow.orders.order_queue(
                wanted,
                hold=hold,
                channel=ChannelId(channel) if channel is not None else None,
                placed_before=_before(now, older_than) if older_than is not None else None,
                limit=limit,
            )
            orders = [_load_order(uow, order_id) for order_id in found]
            return [QueuedOrder(order, now - order.placed_at) for order in orders]

        return self._read(read)

    def customer_orders(
        self, customer_ref: str, *, before: str | None = None, limit: int | None = None
    ) -> list[Order]:
        """The orders placed with ``customer_ref`` (the draft's), newest first (ties by
        order id, descending): a customer's order history, or what a service agent looks
        up. ``before`` (an order id, the last of a page) gives the next page: the orders
        listed after it. An unknown ``before`` is an :class:`~omscore.errors.UnknownOrder`;
        an empty customer reference, another customer's order as ``before`` or a limit
        below 1 an :class:`~omscore.errors.InvalidQuery`."""
        if not isinstance(customer_ref, str) or not customer_ref:
            raise InvalidQuery(f"customer_ref must be a non-empty string, got {customer_ref!r}")
        checked_limit(limit)

        def read(uow: UnitOfWork) -> list[Order]:
            after = None
            if before is not None:
                last = _load_order(uow, before)
                if last.customer_ref != customer_ref:
                    raise InvalidQuery(
                        f"order {last.id} is not an order of customer {customer_ref!r}"
                    )
                after = (last.placed_at, last.id)
            found = uow.orders.customer_orders(customer_ref, before=after, limit=limit)
            return [_load_order(uow, order_id) for order_id in found]

        return self._read(read)

    def hold(
        self, order_id: str, kind: str, reason: str = "", idempotency_key: str | None = None
    ) -> Order:
        """Put a hold of ``kind`` (payment, fraud, manual, or a host string) on the order."""
        require_note(reason, "reason")
        return self._order_command(
            "hold",
            order_id,
            {"kind": kind, "reason": reason},
            idempotency_key,
            lambda order, now: order.hold(kind, reason, now),
        )

    def release(self, order_id: str, kind: str, idempotency_key: str | None = None) -> Order:
        """Release the order's hold of ``kind``. A ``payment`` hold stays while the
        authorisation cannot pay for the order (:class:`PaymentLimitExceeded`)."""

        def decide(order: Order, now: datetime) -> tuple[Order, list[DomainEvent]]:
            short = self._payments.shortfall(order) if kind == HoldKind.PAYMENT else None
            if short is not None:
                raise PaymentLimitExceeded(f"cannot release order {order.id}: {short}")
            return order.release(kind, now)

        return self._order_command("release", order_id, {"kind": kind}, idempotency_key, decide)

    def change_quantity(
        self, order_id: str, line_id: str, quantity: int, idempotency_key: str | None = None
    ) -> Order:
        """Edit a line's quantity before any of its units is allocated."""
        return self._order_command(
            "change_quantity",
            order_id,
            {"line_id": line_id, "quantity": quantity},
            idempotency_key,
            lambda order, now: order.change_quantity(line_id, quantity, now, self.limits),
        )

    def add_line(self, order_id: str, line: LineDraft, idempotency_key: str | None = None) -> Order:
        """Add a line to an order that is not yet allocated."""

        def decide(order: Order, now: datetime) -> tuple[Order, list[DomainEvent]]:
            return order.add_line(_next_line_id(order), line, now, self.limits)

        return self._order_command("add_line", order_id, {"line": line}, idempotency_key, decide)

    def remove_line(self, order_id: str, line_id: str, idempotency_key: str | None = None) -> Order:
        """Remove a line none of whose units is allocated."""
        return self._order_command(
            "remove_line",
            order_id,
            {"line_id": line_id},
            idempotency_key,
            lambda order, now: order.remove_line(line_id, now),
        )

    def change_address(
        self, order_id: str, address: Address, idempotency_key: str | None = None
    ) -> Order:
        """Change the delivery address before allocation."""
        return self._order_command(
            "change_address",
            order_id,
            {"address": address},
            idempotency_key,
            lambda order, now: order.change_address(address, now),
        )

    def change_delivery(
        self,
        order_id: str,
        delivery: Delivery,
        idempotency_key: str | None = None,
        *,
        shipping_fee: Money | None = None,
    ) -> Order:
        """Change how the order reaches the customer before allocation: ship it instead of
        a pickup, collect it at another store, deliver it the same day. What it holds moves
        with it; units it waits for keep their place in the queue. A pickup store must take
        pickups now, as when the order is placed. ``shipping_fee`` sets what the new way
        costs (``Money.zero`` for a free pickup; ``None`` keeps the fee); a fee that would
        make the order cost more than its payment covers is refused
        (:class:`PaymentLimitExceeded`). Prices stay as they are."""

        def check_pickup(stock: StockSession) -> None:
            problems = _pickup_problems(delivery, stock)
            if problems:
                raise InvalidDraft(problems)

        arguments = {"delivery": delivery} | (
            {"shipping_fee": shipping_fee} if shipping_fee is not None else {}
        )  # a key recorded before shipping_fee existed must still match a repeat of its call
        return self._order_command(
            "change_delivery",
            order_id,
            arguments,
            idempotency_key,
            lambda order, now: order.change_delivery(delivery, now, shipping_fee),
            check=check_pickup,
        )

    def change_ship_complete(
        self, order_id: str, ship_complete: bool, idempotency_key: str | None = None
    ) -> Order:
        """Have the order's open units sourced whole from one location from now on, or let
        them be split: a customer who would rather have what is there now than wait."""
        return self._order_command(
            "change_ship_complete",
            order_id,
            {"ship_complete": ship_complete},
            idempotency_key,
            lambda order, now: order.change_ship_complete(ship_complete, now),
        )

    def cancel(
        self,
        order_id: str,
        lines: LineQuantities | None = None,
        reason: str = "",
        idempotency_key: str | None = None,
        *,
        fulfillment_id: str | None = None,
    ) -> Order:
        """Cancel units: ``None`` cancels everything not yet shipped, else ``{line_id: units}``.

        Open units go first, then allocated units, newest fulfilment order first. Open units
        release what they hold; allocated units release their stock at the location and
        shrink (or cancel) their fulfilment order.

        With ``fulfillment_id``, only that fulfilment order's units are cancelled (``None``
        as lines: all of them), whatever else the order has open or allocated: the rest of
        a pickup the customer refused at the counter, or a parcel the location will not
        send.
        """
        require_note(reason, "reason")
        if lines is not None:
            require_mapping(lines, "lines to cancel ({line_id: units})", InvalidQuantity)
        arguments = {"lines": dict(lines) if lines else None, "reason": reason}
        if fulfillment_id is not None:
            arguments["fulfillment_id"] = fulfillment_id
        return self._order_command(
            "cancel",
            order_id,
            arguments,
            idempotency_key,
            lambda order, now: order.cancel(lines, reason, now, fulfillment_id=fulfillment_id),
        )

    def _order_command(
        self,
        command: str,
        order_id: str,
        arguments: Mapping[str, object],
        idempotency_key: str | None,
        decide: Callable[[Order, datetime], tuple[Order, list[DomainEvent]]],
        *,
        check: Callable[[StockSession], None] | None = None,
    ) -> Order:
        """Run ``decide`` on the order (after ``check``, given one, on the stock), keep its
        holds in step and settle its payment."""

        def work(uow: UnitOfWork, now: datetime) -> Order:
            stock = StockSession(uow, now)
            if check is not None:
                check(stock)
            before = _load_order(uow, order_id)
            order, events = decide(before, now)
            if order is before:
                return before  # an edit to what the order has already: nothing to write
            order, paid = self._payments.cover(order, before, now, idempotency_key)  # after checks
            uow.record([*events, *paid])
            self._follow_stock(stock, order, events)
            self._release_loads(stock, _freed_today(stock, _uncounted(before, order)))
            order = self._settle(uow, order, now)
            uow.orders.put(order)
            stock.flush()
            return order

        return self._run(command, {"order_id": order_id, **arguments}, idempotency_key, work)

    def events(self, after: int = 0, limit: int | None = None) -> list[DomainEvent]:
        """The recorded domain events in commit order, read from the outbox: every one by
        default; those after outbox position ``after``, at most ``limit`` of them, for a
        host that reads them page by page (a store holding millions never loads them all).
        A position below 0 or a limit below 1 is an :class:`InvalidQuery`."""
        after, limit = checked_position(after, "after"), checked_limit(limit)
        return [record.event for record in self.store.outbox(after, limit)]

    def order_history(self, order_id: str) -> list[DomainEvent]:
        """The order's events in commit order, its returns' included: a customer service
        timeline (placed, paid, sourced and why when decisions are kept, shipped, returned,
        refunded). Read from the outbox, so events pruned from it are gone. An unknown
        order is :class:`UnknownOrder`."""
        self.get_order(order_id)
        return [record.event for record in self.store.order_events(order_id)]

    def prune(
        self, *, keep_events: timedelta | None = None, keep_keys: timedelta | None = None
    ) -> Pruned:
        """Housekeeping for a long-running store: delete the published outbox events older
        than ``keep_events`` and forget the idempotency keys older than ``keep_keys``, by
        this OMS's clock (``None`` leaves that part alone). Unpublished events always stay.
        Keep keys at least as long as clients retry: a command repeated under a forgotten
        key runs again."""
        for name, keep in (("keep_events", keep_events), ("keep_keys", keep_keys)):
            if keep is not None and (not isinstance(keep, timedelta) or keep < timedelta(0)):
                raise InvalidArgument(f"{name} must be a timedelta of zero or more, got {keep!r}")
        now = self._now()
        events = (
            self.store.prune_outbox(_before(now, keep_events)) if keep_events is not None else 0
        )
        keys = self.store.prune_idempotency(_before(now, keep_keys)) if keep_keys is not None else 0
        return Pruned(events=events, idempotency_keys=keys)
