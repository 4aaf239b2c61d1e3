"""The command line: ``python -m omscore simulate | inspect | prune | backup | bench``."""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TypeVar

import attrs

from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore, stored_schema_version
from omscore.bench import run as bench_run
from omscore.errors import InvalidQuery, OmsError
from omscore.events import OrderEvent, ReturnEvent, SourcingDecided
from omscore.money import Money
from omscore.orders import Order
from omscore.ports import Store
from omscore.service import OMS, QueuedFulfillment, QueuedOrder
from omscore.simulate import POLICIES, check_orders, run

DEFAULT_DB = "omscore-simulation.db"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and run the command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m omscore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser("simulate", help="run a simulated omnichannel retailer")
    sim.add_argument("--db", default=DEFAULT_DB, help=f"SQLite file (default {DEFAULT_DB})")
    sim.add_argument("--memory", action="store_true", help="use the in-memory store")
    sim.add_argument("--orders", type=int, default=2_000, help="checkouts to simulate")
    sim.add_argument("--seed", type=int, default=7, help="random seed (same seed, same run)")
    sim.add_argument("--policy", choices=sorted(POLICIES), default="lowest_cost")
    sim.add_argument("--json", action="store_true", help="print the report as JSON")
    sim.add_argument("--overwrite", action="store_true", help="replace an existing --db file")
    sim.add_argument(
        "--record-sourcing",
        action="store_true",
        help="keep why each order was sourced where it was (inspect --order shows it)",
    )
    sim.add_argument(
        "--checkpoint",
        choices=["auto", "background"],
        default="background",
        help="SqliteStore's checkpoint mode (default background: from a thread of its own)",
    )
    ins = commands.add_parser("inspect", help="look into a store file")
    ins.add_argument("--db", default=DEFAULT_DB)
    ins.add_argument("--sku", help="show the stock of this SKU")
    ins.add_argument("--order", help="show this order with its fulfilment and events")
    ins.add_argument("--queue", metavar="LOCATION", help="show the work waiting at a location")
    ins.add_argument(
        "--stalled",
        type=_finite,
        metavar="HOURS",
        help="show work no location has moved on for this many hours",
    )
    ins.add_argument(
        "--waiting",
        action="store_true",
        help="show the orders not wholly allocated yet or on hold, longest waiting first",
    )
    ins.add_argument(
        "--hold", metavar="KIND", help="show the orders on a hold of this kind (fraud, ...)"
    )
    ins.add_argument("--customer", metavar="REF", help="show a customer's orders, newest first")
    prune = commands.add_parser(
        "prune", help="delete old published events and forget old idempotency keys"
    )
    prune.add_argument("--db", required=True, help="SQLite file")
    prune.add_argument(
        "--keep-events-days",
        type=_finite,
        help="delete published outbox events older than this many days",
    )
    prune.add_argument(
        "--keep-keys-hours",
        type=_finite,
        help="forget idempotency keys older than this many hours (keep them longer than "
        "clients retry)",
    )
    backup = commands.add_parser("backup", help="copy a store file safely while it is in use")
    backup.add_argument("--db", required=True, help="SQLite file")
    backup.add_argument("--to", required=True, help="the new backup file")
    bench = commands.add_parser("bench", help="time place + allocate on each store")
    bench.add_argument("--orders", type=int, default=2_000, help="orders per round (<= 20,000)")
    bench.add_argument("--rounds", type=int, default=3, help="rounds per store")
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")
    bench.add_argument(
        "--one-command",
        action="store_true",
        help="place and allocate with place_order(draft, allocate=True)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "prune":
            return _prune(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "backup":
            return _backup(args)
        return _inspect(args)
    except OmsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``inspect ... | head``): nothing more to say, and no
        # traceback. Python flushes stdout again at exit, so point it at nothing first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _simulate(args: argparse.Namespace) -> int:
    check_orders(args.orders)  # before an existing file is replaced
    store: Store
    if args.memory:
        store = MemoryStore()
        where = "in memory"
    else:
        if os.path.exists(args.db):
            if not (args.overwrite or args.db == DEFAULT_DB):
                print(f"error: {args.db} exists; pass --overwrite to replace it", file=sys.stderr)
                return 2
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(args.db + suffix):
                    os.remove(args.db + suffix)
        store = SqliteStore(args.db, checkpoint=args.checkpoint)
        where = f"SQLite file {args.db}"
    progress = None if args.json else sys.stderr
    if progress:
        print(
            f"simulating {args.orders:,} checkouts with {args.policy} sourcing, {where}",
            file=progress,
        )
    report = run(
        store,
        orders=args.orders,
        seed=args.seed,
        policy=args.policy,
        progress=progress,
        record_sourcing=args.record_sourcing,
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.render())
    if isinstance(store, SqliteStore):
        store.close()
    settled = not (report.work_left_open or report.orders_left_waiting)
    return 0 if report.stock_conserved and settled else 1


def _inspect(args: argparse.Namespace) -> int:
    if _not_a_store(args.db):
        return 2
    store = SqliteStore(args.db)
    oms = OMS(store)
    print(f"{args.db}: schema version {stored_schema_version(args.db)}")
    for table, rows in store.counts().items():
        print(f"  {table:<14} {rows:>10,}")
    if args.sku is not None:
        _print_stock(oms, args.sku)
    if args.order is not None:
        _print_order(oms, store, args.order)
    if args.queue is not None:
        queue = oms.fulfillment_queue(args.queue, limit=QUEUE_ROWS + 1)
        _print_queue(f"work at {args.queue}", queue)
    if args.stalled is not None:
        older_than = _duration(args.stalled, "hours")
        assert older_than is not None
        stalled = oms.stalled_fulfillments(older_than, limit=QUEUE_ROWS + 1)
        _print_queue(f"stalled for {args.stalled:g} h or more", stalled)
    if args.waiting:
        _print_orders("orders waiting", oms.order_queue(limit=QUEUE_ROWS + 1))
    if args.hold is not None:
        held = oms.order_queue(hold=args.hold, limit=QUEUE_ROWS + 1)
        _print_orders(f"orders on a {args.hold} hold", held)
    if args.customer is not None:
        _print_history(args.customer, oms.customer_orders(args.customer, limit=QUEUE_ROWS + 1))
    return 0


def _print_stock(oms: OMS, sku: str) -> None:
    print(f"stock of {sku} (web ATP {oms.available(sku, channel='web')}):")
    for location_id, level in sorted(oms.inventory(sku).levels.items()):
        print(
            f"  {location_id:<10} on hand {level.on_hand:>6}  allocated "
            f"{level.allocated:>5}  reserved {level.reserved:>5}  safety "
            f"{level.safety_stock:>4}  available {level.available:>6}"
        )


def _print_order(oms: OMS, store: SqliteStore, order_id: str) -> None:
    order = oms.get_order(order_id)
    customer = f", customer {order.customer_ref}" if order.customer_ref else ""
    print(
        f"order {order.id}: {order.status.value}, {order.channel}{customer}, total "
        f"{order.total}, captured {order.captured}, refunded {order.refunded}"
    )
    for line in order.lines:
        print(
            f"  line {line.id} {line.sku} x{line.quantity}: open {line.open}, allocated "
            f"{line.allocated}, shipped {line.shipped}, delivered {line.delivered}, "
            f"cancelled {line.cancelled}, returned {line.returned}"
        )
    for f in order.fulfillments:
        handover = ""
        if f.handover_location:
            verb = "on its way to" if f.in_transit else "handed over at"
            handover = f", {verb} {f.handover_location}"
        print(
            f"  fulfilment {f.id} at {f.location_id}: {f.status.value}{handover} "
            f"({', '.join(f'{x.sku} x{x.quantity}' for x in f.lines)})"
        )
    print("  trace:")
    for record in store.order_events(order.id):
        event = record.event
        if isinstance(event, OrderEvent | ReturnEvent):  # returns move the order's version too
            print(_trace_line(event))
        if isinstance(event, SourcingDecided):  # why, from an OMS(record_sourcing=True)
            for text in event.explanation.splitlines():
                print(f"        {text}")


def _trace_line(event: OrderEvent | ReturnEvent) -> str:
    """One event of an order's trace: the time, the order's version (a return's id for a
    return's event), the event's name and its details."""
    if isinstance(event, ReturnEvent):
        head = f"{event.at:%Y-%m-%d %H:%M}      {event.name} ({event.return_id})"
    else:
        head = f"{event.at:%Y-%m-%d %H:%M} v{event.version:<3} {event.name}"
    details = _trace_details(event)
    return f"    {head}  {details}" if details else f"    {head}"


#: Event fields a trace line leaves out: its own columns, the payment gateway's key, and
#: what ``SourcingDecided`` prints on lines of its own.
_TRACE_LEAVES_OUT = frozenset(
    {"order_id", "return_id", "version", "at", "key", "trace", "explanation"}
)


def _trace_details(event: OrderEvent | ReturnEvent) -> str:
    """The plain fields of an order's or a return's event as ``name=value``, for its line
    in a trace: ids, statuses, amounts, reasons. Units and addresses, a false flag and a
    field that is ``None`` are left out; a text with spaces is quoted."""
    shown = []
    for field in attrs.fields(type(event)):
        value = getattr(event, field.name)
        if field.name in _TRACE_LEAVES_OUT or value is None or value is False:
            continue
        if isinstance(value, str):
            shown.append(f"{field.name}={value!r}" if " " in value else f"{field.name}={value}")
        elif isinstance(value, float):  # a sourcing cost: an estimate, as explain() rounds it
            shown.append(f"{field.name}={value:.2f}")
        elif isinstance(value, int | Money):
            shown.append(f"{field.name}={value}")
    return " ".join(shown)


#: Rows ``inspect`` prints of a queue (the longest waiting).
QUEUE_ROWS = 20

R = TypeVar("R")


def _print_rows(title: str, order: str, rows: Sequence[R], line: Callable[[R], str]) -> None:
    """A heading with how many ``rows`` there are (fetched with one more than
    :data:`QUEUE_ROWS`, to tell if there are more: ``20+``), then the first
    :data:`QUEUE_ROWS` of them, one ``line`` each."""
    count = f"{QUEUE_ROWS}+" if len(rows) > QUEUE_ROWS else str(len(rows))
    print(f"{title}: {count}, {order}")
    for row in rows[:QUEUE_ROWS]:
        print(f"  {line(row)}")


def _print_queue(title: str, queue: list[QueuedFulfillment]) -> None:
    """Fulfilment orders of a queue, longest waiting first."""
    _print_rows(title, "longest waiting first", queue, _fulfillment_row)


def _fulfillment_row(q: QueuedFulfillment) -> str:
    f, hours = q.fulfillment, q.waiting.total_seconds() / 3600
    return (
        f"{f.id:<14} {f.status.value:<17} at {f.stock_location:<8} {hours:>8.1f} h  "
        f"order {q.order_id} ({', '.join(f'{x.sku} x{x.quantity}' for x in f.lines)})"
    )


def _print_orders(title: str, queue: list[QueuedOrder]) -> None:
    """Orders of an order queue, longest waiting first."""
    _print_rows(title, "longest waiting first", queue, _waiting_order_row)


def _waiting_order_row(q: QueuedOrder) -> str:
    order, hours = q.order, q.waiting.total_seconds() / 3600
    holds = ", ".join(h.kind for h in order.holds) or "none"
    return (
        f"{order.id:<10} {order.status.value:<19} {order.channel:<11} {hours:>8.1f} h  "
        f"{order.open_units} unit(s) open, holds: {holds}"
    )


def _print_history(customer_ref: str, orders: list[Order]) -> None:
    """A customer's orders, newest first."""
    _print_rows(f"orders of customer {customer_ref}", "newest first", orders, _history_row)


def _history_row(order: Order) -> str:
    units = sum(line.quantity for line in order.lines)
    return (
        f"{order.id:<10} {order.placed_at:%Y-%m-%d %H:%M}  {order.status.value:<19} "
        f"{order.channel:<11} {units:>3} unit(s)  total {order.total}"
    )


def _prune(args: argparse.Namespace) -> int:
    if _not_a_store(args.db):
        return 2
    if args.keep_events_days is None and args.keep_keys_hours is None:
        print("error: give --keep-events-days, --keep-keys-hours or both", file=sys.stderr)
        return 2
    store = SqliteStore(args.db)
    keep_events = _duration(args.keep_events_days, "days")
    keep_keys = _duration(args.keep_keys_hours, "hours")
    pruned = OMS(store).prune(keep_events=keep_events, keep_keys=keep_keys)
    print(
        f"{args.db}: deleted {pruned.events:,} published events, "
        f"forgot {pruned.idempotency_keys:,} idempotency keys"
    )
    return 0


def _backup(args: argparse.Namespace) -> int:
    if _not_a_store(args.db):
        return 2
    store = SqliteStore(args.db)
    store.backup(args.to)
    print(f"{args.db}: backed up to {args.to} ({store.counts()['orders']:,} orders)")
    return 0


def _bench(args: argparse.Namespace) -> int:
    report = bench_run(orders=args.orders, rounds=args.rounds, one_command=args.one_command)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.render())
    return 0


def _finite(text: str) -> float:
    """A number of hours or days given on the command line: finite (``nan`` and ``inf``
    are refused by argparse, with the usage)."""
    try:
        amount = float(text)
    except ValueError:
        amount = math.nan
    if not math.isfinite(amount):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return amount


def _duration(amount: float | None, unit: str) -> timedelta | None:
    """``amount`` of ``unit`` (a negative one is refused by the command it is given to;
    one too long for a ``timedelta`` here)."""
    if amount is None:
        return None
    try:
        return timedelta(**{unit: amount})
    except OverflowError:
        raise InvalidQuery(f"{amount:g} {unit} is too long a time") from None


def _not_a_store(path: str) -> bool:
    """True (and says why) when ``path`` is not an omscore store file: there is no such
    file, it is not a SQLite database, or it has no omscore schema (opening it would write
    one into somebody else's database). Nothing is changed in the file."""
    if not os.path.exists(path):
        print(f"error: no such file {path}", file=sys.stderr)
        return True
    try:
        version = stored_schema_version(path)
    except sqlite3.DatabaseError as error:
        print(f"error: {path} is not a SQLite database ({error})", file=sys.stderr)
        return True
    if version is None:
        print(
            f"error: {path} is not an omscore store (no schema_version table); left unchanged",
            file=sys.stderr,
        )
        return True
    return False


if __name__ == "__main__":
    sys.exit(main())
