"""The application layer: :class:`OMS`, one method per use case, one unit of work each.

Every command loads the aggregates it needs, asks the domain to decide, and commits the new
aggregates, ledger rows and domain events together. Every command takes an optional
``idempotency_key``: repeating it returns the first result and changes nothing; reusing it
for another command raises :class:`~omscore.errors.DuplicateIdempotencyKey`. A lost race
(:class:`~omscore.errors.ConcurrencyConflict`) is retried a bounded number of times.

The use cases live in :mod:`omscore._service`, one mixin per pillar, over a shared core.
"""

from __future__ import annotations

from omscore._service.core import (
    IncomingSupply,
    LocationAvailability,
    QueuedBackorder,
    QueuedFulfillment,
    QueuedOrder,
    StockPosition,
)
from omscore._service.fulfilment import FulfilmentUseCases
from omscore._service.inventory import InventoryUseCases
from omscore._service.orders import OrderUseCases
from omscore._service.returns import ReturnUseCases


class OMS(OrderUseCases, FulfilmentUseCases, ReturnUseCases, InventoryUseCases):
    """The order management system: the public entry point.

    ``store`` is a storage adapter (``MemoryStore``, ``SqliteStore`` ...). ``clock`` and
    ``ids`` default to the system clock and random ids; pass ``ManualClock`` and
    ``SequentialIds`` for tests and simulations. With ``record_sourcing=True`` every
    sourcing run that changes the order records a ``SourcingDecided`` event with the
    plan's trace, so why an order went where it went can be read long after (off by
    default: place + allocate take about a tenth to a fifth longer with it).
    """


__all__ = [
    "OMS",
    "IncomingSupply",
    "LocationAvailability",
    "QueuedBackorder",
    "QueuedFulfillment",
    "QueuedOrder",
    "StockPosition",
]
