"""Returns: the return policy, the return (RMA) aggregate, inspection and refund maths."""

from omscore.returns.model import (
    OPEN_RETURN,
    RETURN_TRANSITIONS,
    Disposition,
    DispositionCounts,
    LineDispositions,
    RefundQuote,
    Return,
    ReturnLine,
    ReturnPolicy,
    ReturnStatus,
    delivered_at,
    quote_refund,
    request_return,
    returnable_units,
)

__all__ = [
    "OPEN_RETURN",
    "RETURN_TRANSITIONS",
    "Disposition",
    "DispositionCounts",
    "LineDispositions",
    "RefundQuote",
    "Return",
    "ReturnLine",
    "ReturnPolicy",
    "ReturnStatus",
    "delivered_at",
    "quote_refund",
    "request_return",
    "returnable_units",
]
