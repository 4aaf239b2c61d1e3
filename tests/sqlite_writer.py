"""A writer process for the SIGKILL test: places and allocates orders under idempotency
keys, journaling each intent before the call and its completion after it."""

from __future__ import annotations

import os
import sys

from omscore import OMS, Address, Delivery, LineDraft, Money, OrderDraft
from omscore.adapters.sqlite import CheckpointMode, SqliteStore
from omscore.adapters.system import UuidIds

HOME = Address(country="DE", postal_code="10115", city="Berlin")


def draft(i: int) -> OrderDraft:
    """The i-th order: deterministic, so a replay sends the same command."""
    return OrderDraft(
        channel="web",
        currency="EUR",
        delivery=Delivery.ship(HOME),
        lines=[LineDraft(f"SKU-{i % 5}", 1 + i % 2, Money("5.00", "EUR"))],
    )


def run_command(oms: OMS, i: int) -> None:
    """Place and allocate order i under its keys."""
    order = oms.place_order(draft(i), idempotency_key=f"checkout-{i}")
    oms.allocate(order.id, idempotency_key=f"allocate-{i}")


def main(db: str, journal: str, start: int, count: int, checkpoint: CheckpointMode) -> None:
    """Run orders ``start`` .. ``start + count - 1``, journaling each."""
    oms = OMS(SqliteStore(db, checkpoint=checkpoint), ids=UuidIds())
    with open(journal, "a", encoding="utf-8") as log:
        for i in range(start, start + count):
            log.write(f"intent {i}\n")
            log.flush()
            os.fsync(log.fileno())
            run_command(oms, i)
            log.write(f"done {i}\n")
            log.flush()


if __name__ == "__main__":
    mode: CheckpointMode = "background" if sys.argv[5:] == ["background"] else "auto"
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), mode)
