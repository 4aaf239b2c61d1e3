"""Domain events: frozen records of what happened, written to the outbox with the change.

Every event names the aggregate it belongs to, that aggregate's version after the change,
and the time from the injected clock. Events are plain values: serialize them with
:func:`omscore.serialization.make_converter`.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from omscore._trace import LocationTrace
from omscore.geo import Address
from omscore.ids import ChannelId, FulfillmentId, LineId, LocationId, OrderId, ReturnId, Sku
from omscore.money import Money


@attrs.frozen(slots=True, kw_only=True)
class DomainEvent:
    """Base of every domain event: the aggregate's version after the change and the time."""

    version: int
    at: datetime

    @property
    def name(self) -> str:
        """The event's type name, as stored in the outbox."""
        return type(self).__name__


# --- orders -------------------------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class OrderEvent(DomainEvent):
    """An event of one order."""

    order_id: OrderId


@attrs.frozen(slots=True)
class PlacedLine:
    """One line as it was placed."""

    line_id: LineId
    sku: Sku
    quantity: int


@attrs.frozen(slots=True, kw_only=True)
class OrderPlaced(OrderEvent):
    """An order was placed (for ``customer_ref``, the draft's, when it named one; to ship
    in one parcel when ``ship_complete``)."""

    channel: ChannelId
    total: Money
    lines: tuple[PlacedLine, ...]
    customer_ref: str | None = None
    ship_complete: bool = False


@attrs.frozen(slots=True, kw_only=True)
class OrderHeld(OrderEvent):
    """A hold of ``kind`` was put on the order."""

    kind: str
    reason: str


@attrs.frozen(slots=True, kw_only=True)
class HoldReleased(OrderEvent):
    """The hold of ``kind`` was released."""

    kind: str


@attrs.frozen(slots=True, kw_only=True)
class LineQuantityChanged(OrderEvent):
    """A line's ordered quantity was edited before allocation."""

    line_id: LineId
    sku: Sku
    old_quantity: int
    new_quantity: int


@attrs.frozen(slots=True, kw_only=True)
class LineAdded(OrderEvent):
    """A line was added before allocation."""

    line_id: LineId
    sku: Sku
    quantity: int


@attrs.frozen(slots=True, kw_only=True)
class LineRemoved(OrderEvent):
    """A line that had no allocated units was removed; ``open_units`` were still open."""

    line_id: LineId
    sku: Sku
    open_units: int


@attrs.frozen(slots=True, kw_only=True)
class AddressChanged(OrderEvent):
    """The delivery address was changed before allocation."""

    address: Address


@attrs.frozen(slots=True, kw_only=True)
class DeliveryChanged(OrderEvent):
    """The way the order reaches the customer was changed before allocation: ``method``
    (``"ship"``, ``"pickup"``, ``"same_day"``), with its pickup store or its address, and
    ``shipping_fee``, the new fee, when the change set one (``None``: the fee stayed)."""

    method: str
    pickup_location: LocationId | None
    address: Address | None
    shipping_fee: Money | None = None


@attrs.frozen(slots=True, kw_only=True)
class ShipCompleteChanged(OrderEvent):
    """The order's open units are now to be sourced whole from one location
    (``ship_complete``), or may be split again."""

    ship_complete: bool


@attrs.frozen(slots=True)
class CancelledUnits:
    """Units of one line cancelled: ``open`` were unallocated; ``allocated`` came out of a
    fulfilment order (``fulfillment_id``) whose units were at ``location_id`` (the pickup
    store for a ship-to-store parcel handed over there)."""

    line_id: LineId
    sku: Sku
    open: int = 0
    allocated: int = 0
    fulfillment_id: FulfillmentId | None = None
    location_id: LocationId | None = None


@attrs.frozen(slots=True, kw_only=True)
class UnitsCancelled(OrderEvent):
    """Units were cancelled; ``fully_cancelled`` when no unit of the order is left to fulfil."""

    reason: str
    units: tuple[CancelledUnits, ...]
    fully_cancelled: bool


# --- inventory ----------------------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class InventoryEvent(DomainEvent):
    """An event of one SKU's inventory (the inventory item's version)."""

    sku: Sku


@attrs.frozen(slots=True, kw_only=True)
class StockReceived(InventoryEvent):
    """Units arrived at a location (a receipt, settling incoming supply by reference)."""

    location_id: LocationId
    quantity: int
    reference: str


@attrs.frozen(slots=True, kw_only=True)
class StockAdjusted(InventoryEvent):
    """On hand was corrected by ``delta`` (an adjustment or damage)."""

    location_id: LocationId
    delta: int
    reason: str
    kind: str


@attrs.frozen(slots=True, kw_only=True)
class StockCounted(InventoryEvent):
    """A cycle count found ``counted`` on hand; ``delta`` was posted."""

    location_id: LocationId
    counted: int
    delta: int


@attrs.frozen(slots=True, kw_only=True)
class SafetyStockSet(InventoryEvent):
    """The safety stock of a location was set."""

    location_id: LocationId
    safety_stock: int


@attrs.frozen(slots=True, kw_only=True)
class StockReserved(InventoryEvent):
    """A checkout reservation holds stock until ``expires_at`` (at ``pickup_location``
    alone, for a cart to be collected there)."""

    key: str
    channel: ChannelId | None
    quantity: int
    expires_at: datetime
    pickup_location: LocationId | None = None


@attrs.frozen(slots=True, kw_only=True)
class ReservationExtended(InventoryEvent):
    """A checkout reservation now lives until ``expires_at``."""

    key: str
    expires_at: datetime


@attrs.frozen(slots=True, kw_only=True)
class ReservationReleased(InventoryEvent):
    """A checkout reservation ended: released, expired, or taken over by an order."""

    key: str
    quantity: int
    cause: str


@attrs.frozen(slots=True, kw_only=True)
class OrderStockHeld(InventoryEvent):
    """A placed order's line holds ``held`` units; ``backordered`` wait for stock."""

    order_id: OrderId
    line_id: LineId
    held: int
    backordered: int


@attrs.frozen(slots=True, kw_only=True)
class OrderStockReleased(InventoryEvent):
    """A line's hold or backorder shrank by ``quantity`` (cancel, edit, or allocation)."""

    order_id: OrderId
    line_id: LineId
    quantity: int


@attrs.frozen(slots=True, kw_only=True)
class BackorderServed(InventoryEvent):
    """Stock that became available now holds ``quantity`` backordered units of a line."""

    order_id: OrderId
    line_id: LineId
    location_id: LocationId
    quantity: int


@attrs.frozen(slots=True, kw_only=True)
class SupplyAdded(InventoryEvent):
    """Incoming supply (a purchase order) is expected at ``eta``."""

    reference: str
    location_id: LocationId
    quantity: int
    eta: datetime


@attrs.frozen(slots=True, kw_only=True)
class SupplyUpdated(InventoryEvent):
    """Expected supply changed: ``quantity`` units still due, now at ``eta``."""

    reference: str
    location_id: LocationId
    quantity: int
    eta: datetime


@attrs.frozen(slots=True, kw_only=True)
class SupplyCancelled(InventoryEvent):
    """Expected supply will not come: its ``quantity`` units no longer promise a date."""

    reference: str
    location_id: LocationId
    quantity: int


@attrs.frozen(slots=True, kw_only=True)
class TransferShipped(InventoryEvent):
    """Units left ``from_location`` for ``to_location``; in transit, available at neither
    (due by ``eta`` when one was given)."""

    transfer_id: str
    from_location: LocationId
    to_location: LocationId
    quantity: int
    eta: datetime | None = None


@attrs.frozen(slots=True, kw_only=True)
class TransferDue(InventoryEvent):
    """A transfer in transit is now due at its destination by ``eta`` (None: no date)."""

    transfer_id: str
    to_location: LocationId
    quantity: int
    eta: datetime | None


@attrs.frozen(slots=True, kw_only=True)
class TransferReceived(InventoryEvent):
    """A transfer arrived at its destination."""

    transfer_id: str
    to_location: LocationId
    quantity: int


@attrs.frozen(slots=True, kw_only=True)
class StockFeedApplied(InventoryEvent):
    """A bulk stock feed set or moved on hand at ``positions`` locations of this SKU."""

    positions: int
    mode: str


@attrs.frozen(slots=True, kw_only=True)
class LowStock(InventoryEvent):
    """A channel's ATP for the SKU fell to or below its threshold."""

    channel: ChannelId
    atp: int
    threshold: int


@attrs.frozen(slots=True, kw_only=True)
class OutOfStock(InventoryEvent):
    """A channel's ATP for the SKU reached zero."""

    channel: ChannelId


@attrs.frozen(slots=True, kw_only=True)
class LocationAdded(DomainEvent):
    """A location joined the network."""

    location_id: LocationId
    kind: str


@attrs.frozen(slots=True, kw_only=True)
class LocationUpdated(DomainEvent):
    """A location's settings changed (active, capabilities, priority, capacity)."""

    location_id: LocationId
    active: bool


@attrs.frozen(slots=True, kw_only=True)
class ChannelConfigured(DomainEvent):
    """A channel's pool or buffer was configured."""

    channel: ChannelId


# --- fulfilment -----------------------------------------------------------------------------


@attrs.frozen(slots=True)
class FulfilledUnits:
    """Units of one line in a fulfilment order."""

    line_id: LineId
    sku: Sku
    quantity: int


@attrs.frozen(slots=True, kw_only=True)
class SourcingDecided(OrderEvent):
    """Why sourcing split the order's open units as it did, kept for later (recorded only
    by an ``OMS(record_sourcing=True)``): the policy, each location of its snapshot (used,
    ranked or excluded, and why), the readable ``explanation`` of ``plan.explain()``, and
    the objective where the policy has one. The fulfilment orders it made follow it."""

    policy: str
    trace: tuple[LocationTrace, ...]
    explanation: str
    cost: float | None = None


@attrs.frozen(slots=True, kw_only=True)
class FulfillmentCreated(OrderEvent):
    """Sourcing gave units of the order to a location: a new fulfilment order."""

    fulfillment_id: FulfillmentId
    location_id: LocationId
    method: str
    units: tuple[FulfilledUnits, ...]


@attrs.frozen(slots=True, kw_only=True)
class FulfillmentProgressed(OrderEvent):
    """A fulfilment order moved on: accepted, picked, packed, ready for pickup, delivered,
    collected (``status`` is the new status)."""

    fulfillment_id: FulfillmentId
    location_id: LocationId
    status: str


@attrs.frozen(slots=True, kw_only=True)
class FulfillmentShipped(OrderEvent):
    """A fulfilment order left its location with a carrier."""

    fulfillment_id: FulfillmentId
    location_id: LocationId
    tracking: str | None
    carrier: str | None
    units: tuple[FulfilledUnits, ...]


@attrs.frozen(slots=True, kw_only=True)
class FulfillmentSentToStore(OrderEvent):
    """A ship-to-store parcel left its location for the pickup store (``store_id``); its
    units are in transit until the store readies it."""

    fulfillment_id: FulfillmentId
    location_id: LocationId
    store_id: LocationId
    tracking: str | None
    carrier: str | None
    units: tuple[FulfilledUnits, ...]


@attrs.frozen(slots=True, kw_only=True)
class FulfillmentRejected(OrderEvent):
    """A location rejected its fulfilment order; the units are open again."""

    fulfillment_id: FulfillmentId
    location_id: LocationId
    reason: str
    units: tuple[FulfilledUnits, ...]


@attrs.frozen(slots=True, kw_only=True)
class FulfillmentWithdrawn(OrderEvent):
    """The OMS took back a fulfilment order no location had started, to source its units
    again (``oms.reallocate``); the units are open again and the location is not
    counted as having rejected them."""

    fulfillment_id: FulfillmentId
    location_id: LocationId
    reason: str
    units: tuple[FulfilledUnits, ...]


@attrs.frozen(slots=True, kw_only=True)
class FulfillmentMoved(OrderEvent):
    """A fulfilment order not yet picked was moved, whole, from ``from_location_id`` to
    ``location_id`` (``oms.move_fulfillment``), where it starts again as open."""

    fulfillment_id: FulfillmentId
    location_id: LocationId
    from_location_id: LocationId
    reason: str
    units: tuple[FulfilledUnits, ...]


@attrs.frozen(slots=True, kw_only=True)
class FulfillmentSplit(OrderEvent):
    """Part of a fulfilment order (``units``) became a fulfilment order of its own
    (``new_fulfillment_id``) at the same location, to ship now; the rest stays."""

    fulfillment_id: FulfillmentId
    new_fulfillment_id: FulfillmentId
    location_id: LocationId
    units: tuple[FulfilledUnits, ...]


@attrs.frozen(slots=True, kw_only=True)
class FulfillmentShortPicked(OrderEvent):
    """A location could not find some of its fulfilment order's units (``units``): they are
    written off its stock and open again; the rest stays with it (``emptied``: none did,
    and the fulfilment order is rejected)."""

    fulfillment_id: FulfillmentId
    location_id: LocationId
    reason: str
    units: tuple[FulfilledUnits, ...]
    emptied: bool


@attrs.frozen(slots=True, kw_only=True)
class PickupExpired(OrderEvent):
    """A click & collect order was not collected in time; its units are cancelled."""

    fulfillment_id: FulfillmentId
    location_id: LocationId
    units: tuple[FulfilledUnits, ...]


# --- payments -------------------------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class PaymentRecorded(OrderEvent):
    """An entry of the order's payment ledger (a :class:`~omscore.orders.PaymentKind`):
    authorized, captured, refunded, voided, declined; credited (an exchange's credit on a
    replacement) and applied (that credit used: paying a shipment, or given back unused);
    transferred (captured money moved to a replacement as credit, or, negative, come back
    and refunded on this payment) and credit_refunded (a replacement's credit refunded on
    the payment it came from)."""

    kind: str
    amount: Money
    reference: str | None
    key: str


@attrs.frozen(slots=True, kw_only=True)
class OrderRefunded(OrderEvent):
    """Money given back on an order without a return (goodwill for a late parcel, a price
    match, a damaged unit the customer keeps), and why; ``PaymentRecorded`` says how."""

    amount: Money
    reason: str


# --- returns --------------------------------------------------------------------------------


@attrs.frozen(slots=True, kw_only=True)
class ReturnEvent(DomainEvent):
    """An event of one return (the return's version)."""

    return_id: ReturnId
    order_id: OrderId


@attrs.frozen(slots=True, kw_only=True)
class ReturnRequested(ReturnEvent):
    """A customer asked to send units back."""

    units: tuple[FulfilledUnits, ...]
    reason: str
    method: str


@attrs.frozen(slots=True, kw_only=True)
class ReturnStatusChanged(ReturnEvent):
    """The return was approved, rejected, exchanged or closed (``status``), with a note
    (the label's tracking number, the rejection's reason ...)."""

    status: str
    note: str = ""


@attrs.frozen(slots=True)
class InspectedUnits:
    """Units of one line that arrived and what was decided for them."""

    line_id: LineId
    disposition: str
    quantity: int


@attrs.frozen(slots=True, kw_only=True)
class ReturnReceived(ReturnEvent):
    """Units arrived at ``location_id`` and were inspected."""

    location_id: LocationId
    inspected: tuple[InspectedUnits, ...]


@attrs.frozen(slots=True, kw_only=True)
class ReturnRefunded(ReturnEvent):
    """Received units were refunded: merchandise less the restocking fee plus shipping."""

    amount: Money
    merchandise: Money
    restocking_fee: Money
    shipping: Money
