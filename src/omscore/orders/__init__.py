"""The order aggregate and what a checkout submits."""

from omscore.orders.delivery import Delivery, DeliveryMethod
from omscore.orders.draft import DraftLimits, LineDraft, OrderDraft, validate_draft
from omscore.orders.model import (
    ACTIVE_FULFILLMENT,
    MOVABLE_FULFILLMENT,
    WAITING_ORDER,
    AuthorizationBalance,
    FulfillmentLine,
    FulfillmentOrder,
    FulfillmentStatus,
    Hold,
    HoldKind,
    Order,
    OrderLine,
    OrderStatus,
    PaymentEntry,
    PaymentKind,
)

__all__ = [
    "ACTIVE_FULFILLMENT",
    "MOVABLE_FULFILLMENT",
    "WAITING_ORDER",
    "Delivery",
    "DeliveryMethod",
    "DraftLimits",
    "FulfillmentLine",
    "FulfillmentOrder",
    "FulfillmentStatus",
    "Hold",
    "HoldKind",
    "LineDraft",
    "Order",
    "OrderDraft",
    "OrderLine",
    "OrderStatus",
    "AuthorizationBalance",
    "PaymentEntry",
    "PaymentKind",
    "validate_draft",
]
