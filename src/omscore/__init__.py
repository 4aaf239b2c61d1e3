"""omscore: an embeddable Order Management System core.

Orders, inventory pooled across warehouses, stores and suppliers, explainable sourcing,
fulfilment, payments and returns, behind ports that a host plugs storage, carriers and
payment gateways into. Start with :class:`OMS`.
"""

from omscore.errors import OmsError
from omscore.geo import Address, GeoPoint, distance_km
from omscore.ids import (
    ChannelId,
    FulfillmentId,
    LineId,
    LocationId,
    OrderId,
    ReservationId,
    ReturnId,
    Sku,
)
from omscore.inventory import Capability, Location, LocationKind, StockLevel
from omscore.money import Money
from omscore.orders import (
    Delivery,
    DeliveryMethod,
    FulfillmentStatus,
    HoldKind,
    LineDraft,
    Order,
    OrderDraft,
    OrderLine,
    OrderStatus,
)
from omscore.returns import Disposition, Return, ReturnPolicy, ReturnStatus
from omscore.service import (
    OMS,
    IncomingSupply,
    LocationAvailability,
    QueuedBackorder,
    QueuedFulfillment,
    QueuedOrder,
    StockPosition,
)

__all__ = [
    "OMS",
    "Address",
    "Capability",
    "ChannelId",
    "Delivery",
    "DeliveryMethod",
    "Disposition",
    "FulfillmentId",
    "FulfillmentStatus",
    "GeoPoint",
    "HoldKind",
    "IncomingSupply",
    "LineDraft",
    "LineId",
    "Location",
    "LocationAvailability",
    "QueuedBackorder",
    "QueuedFulfillment",
    "QueuedOrder",
    "LocationId",
    "LocationKind",
    "Money",
    "OmsError",
    "Order",
    "OrderDraft",
    "OrderId",
    "OrderLine",
    "OrderStatus",
    "ReservationId",
    "Return",
    "ReturnId",
    "ReturnPolicy",
    "ReturnStatus",
    "Sku",
    "StockLevel",
    "StockPosition",
    "distance_km",
]
