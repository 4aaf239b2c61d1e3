"""An outbox relay on a SQLite file: at-least-once delivery, a consumer that dedupes, and
housekeeping.

Run it with ``python examples/outbox_relay.py``.

Every command writes its domain events to the store's outbox in its own transaction. A
relay process reads the unpublished ones in order, hands them to a broker and then marks
them published. If the relay dies between the two, the next run sends those events again:
delivery is at least once, so the consumer remembers the event ids it has seen.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import attrs

from omscore import (
    OMS,
    Address,
    Capability,
    Delivery,
    GeoPoint,
    LineDraft,
    Location,
    LocationKind,
    Money,
    OrderDraft,
)
from omscore.adapters.sqlite import SqliteStore
from omscore.ports import OutboxRecord, Store
from omscore.testing import ManualClock


@attrs.define
class Consumer:
    """A downstream system (an ERP, a CRM) that applies each event once."""

    seen: set[str] = attrs.field(factory=set)
    applied: list[str] = attrs.field(factory=list)

    def receive(self, record: OutboxRecord) -> None:
        """Apply ``record`` unless its event was applied before."""
        if record.event_id in self.seen:
            return  # a redelivery after a relay crash
        self.seen.add(record.event_id)
        self.applied.append(record.event.name)


def relay(store: Store, consumer: Consumer, *, crash_after_send: bool = False) -> int:
    """Send every unpublished event, a page at a time; returns how many were sent."""
    sent = 0
    while page := store.unpublished(limit=25):
        for record in page:
            consumer.receive(record)
            sent += 1
        if crash_after_send:
            return sent  # sent, but not marked: the next run sends the page again
        store.mark_published(page[-1].position)
    return sent


def main() -> None:
    """Run a small shop, relay its events twice (once crashing), then prune."""
    clock = ManualClock()
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(str(Path(folder) / "shop.db"))
        oms = OMS(store, clock=clock)
        oms.add_location(
            Location(
                id="WH-1",
                kind=LocationKind.WAREHOUSE,
                geo=GeoPoint(52.52, 13.40),
                capabilities={Capability.SHIP},
            )
        )
        oms.receive("WH-1", "MUG", 50)
        home = Address(country="DE", postal_code="10115", city="Berlin")
        for n in range(1, 6):
            draft = OrderDraft(
                channel="web",
                currency="EUR",
                delivery=Delivery.ship(home),
                lines=[LineDraft("MUG", n, Money(Decimal("12.00"), "EUR"))],
            )
            oms.allocate(oms.place_order(draft).id)

        consumer = Consumer()
        first = relay(store, consumer, crash_after_send=True)
        second = relay(store, consumer)
        print(f"relay sent {first} events, crashed, then sent {second} on the next run")
        print(f"the consumer applied {len(consumer.applied)} events once each")
        assert len(consumer.applied) == len(oms.events()) == second
        assert consumer.applied.count("OrderPlaced") == 5

        clock.advance(timedelta(days=8))
        pruned = oms.prune(keep_events=timedelta(days=7), keep_keys=timedelta(days=1))
        print(f"a week later, prune deleted {pruned.events} published events")
        assert store.outbox() == []
        store.close()


if __name__ == "__main__":
    main()
