"""The result of sourcing: assignments, what stays unallocated, and why (the trace)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs

from omscore._trace import LocationTrace
from omscore.errors import UnknownLocation
from omscore.ids import LineId, LocationId, Sku

NO_STOCK = "no stock of the requested SKUs"


@attrs.frozen(slots=True)
class Assignment:
    """``quantity`` units of a line's SKU to be fulfilled from ``location_id``."""

    location_id: LocationId
    line_id: LineId
    sku: Sku
    quantity: int


@attrs.frozen(slots=True)
class RankedLocation:
    """A location that passed every filter and had stock: its rank and the figures behind it
    (``supply``: units of the request it could provide; ``unit_cost`` under the cost model)."""

    location_id: LocationId
    rank: int
    priority: int
    distance_km: float
    supply: int
    unit_cost: float | None = None

    @property
    def detail(self) -> str:
        """The figures as text."""
        text = f"priority {self.priority}, {self.distance_km:.0f} km, can supply {self.supply}"
        if self.unit_cost is not None:
            text += f", {self.unit_cost:.3f}/unit"
        return text


@attrs.frozen(slots=True)
class PlanDetails:
    """What a plan's trace is made of: every snapshot location (sorted), why the stocked
    ones that were left out were left out, and how the candidates ranked."""

    location_ids: tuple[LocationId, ...] = ()
    excluded: Mapping[LocationId, str] = attrs.field(factory=dict)
    ranking: tuple[RankedLocation, ...] = ()


@attrs.frozen(slots=True)
class AllocationPlan:
    """Which location fulfils which units, what stays unallocated, and the reasoning.

    ``trace`` has one entry per location of the snapshot; ``explain()`` renders it. The
    details behind the trace are worked out on first use, so planning stays fast when
    nobody asks. ``cost`` is the policy's objective where it has one (``LowestCostPolicy``).
    """

    policy: str
    assignments: tuple[Assignment, ...]
    unallocated: Mapping[LineId, int]
    cost: float | None = None
    search: str = ""
    search_steps: int = 0
    _details: PlanDetails | Callable[[], PlanDetails] = attrs.field(
        factory=PlanDetails, eq=False, repr=False, alias="details"
    )
    _trace: tuple[LocationTrace, ...] | None = attrs.field(
        default=None, eq=False, repr=False, init=False
    )

    @property
    def details(self) -> PlanDetails:
        """The trace's ingredients (computed once, on first use)."""
        details = self._details
        if not isinstance(details, PlanDetails):
            details = details()
            object.__setattr__(self, "_details", details)
        return details

    @property
    def location_ids(self) -> tuple[LocationId, ...]:
        """Every location of the snapshot, sorted."""
        return self.details.location_ids

    @property
    def excluded(self) -> Mapping[LocationId, str]:
        """Why each stocked location that was left out was left out."""
        return self.details.excluded

    @property
    def ranking(self) -> tuple[RankedLocation, ...]:
        """The candidates in the policy's order of preference."""
        return self.details.ranking

    @property
    def shipments(self) -> tuple[LocationId, ...]:
        """The distinct locations used, in order of first use."""
        return tuple(dict.fromkeys(a.location_id for a in self.assignments))

    @property
    def units_allocated(self) -> int:
        """Units assigned to a location."""
        return sum(a.quantity for a in self.assignments)

    @property
    def units_unallocated(self) -> int:
        """Units no eligible location could supply."""
        return sum(self.unallocated.values())

    def units_at(self, location_id: str) -> int:
        """Units assigned to ``location_id``."""
        return sum(a.quantity for a in self.assignments if a.location_id == location_id)

    @property
    def trace(self) -> tuple[LocationTrace, ...]:
        """One entry per location of the snapshot, sorted by location id (worked out
        once, on first use)."""
        if self._trace is None:
            object.__setattr__(self, "_trace", self._traced())
        assert self._trace is not None
        return self._trace

    def _traced(self) -> tuple[LocationTrace, ...]:
        ranks = {r.location_id: r for r in self.ranking}
        entries = []
        for location_id in self.location_ids:
            units = self.units_at(location_id)
            ranked = ranks.get(location_id)
            if ranked is not None:
                entries.append(
                    LocationTrace(location_id, units > 0, units, None, ranked.rank, ranked.detail)
                )
            else:
                reason = self.excluded.get(location_id, NO_STOCK)
                entries.append(LocationTrace(location_id, False, 0, reason))
        return tuple(entries)

    def trace_of(self, location_id: str) -> LocationTrace:
        """The trace entry of one location: used or not, its rank, or why it was left out.
        Raises :class:`~omscore.errors.UnknownLocation` for one the snapshot did not have."""
        for entry in self.trace:
            if entry.location_id == location_id:
                return entry
        raise UnknownLocation(f"location {location_id!r} was not in the snapshot of this plan")

    def explain(self) -> str:
        """A readable report: the decision, then every location and why."""
        head = (
            f"{self.policy}: {len(self.shipments)} shipment(s), {self.units_allocated} unit(s) "
            f"allocated, {self.units_unallocated} unallocated"
        )
        if self.cost is not None:
            head += f", cost {self.cost:.2f}"
        lines = [head]
        traces = self.trace
        for entry in sorted((t for t in traces if t.rank is not None), key=lambda t: t.rank or 0):
            state = f"USED {entry.units} unit(s)" if entry.used else "not used"
            lines.append(f"  #{entry.rank:<3} {entry.location_id:<14} {state:<20} {entry.detail}")
        no_stock = 0
        for entry in traces:
            if entry.excluded == NO_STOCK:
                no_stock += 1
            elif entry.excluded is not None:
                lines.append(f"  -    {entry.location_id:<14} excluded: {entry.excluded}")
        if no_stock:
            lines.append(f"  ({no_stock} location(s) without stock of the requested SKUs)")
        for line_id, units in sorted(self.unallocated.items()):
            lines.append(f"  unallocated: line {line_id}: {units} unit(s)")
        if self.search:
            lines.append(f"  search: {self.search}")
        return "\n".join(lines)
