"""Channel pools: which locations feed which sales channel, and what each holds back."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal

import attrs

from omscore._checks import instance_of, optional, text
from omscore.errors import InvalidChannelConfig
from omscore.ids import ChannelId, LocationId
from omscore.inventory.location import Capability, Location, LocationKind
from omscore.inventory.stock import StockLevel


def _is_count(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 0


def _check_buffer(_: object, __: attrs.Attribute[int], buffer: object) -> None:
    if not _is_count(buffer):
        raise InvalidChannelConfig(f"channel buffer must be an int >= 0, got {buffer!r}")


def _percent(value: object) -> Decimal:
    """``value`` as a Decimal percentage between 0 and 100 (an int or a finite Decimal)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | Decimal)
        or (isinstance(value, Decimal) and not value.is_finite())
        or not (0 <= value <= 100)
    ):
        raise InvalidChannelConfig(f"buffer_percent must be between 0 and 100, got {value!r}")
    return Decimal(value)


def _check_threshold(_: object, __: attrs.Attribute[int | None], threshold: object) -> None:
    if threshold is not None and not _is_count(threshold):
        raise InvalidChannelConfig(
            f"low_stock_threshold must be None or an int >= 0, got {threshold!r}"
        )


@attrs.frozen(slots=True)
class Channel:
    """A channel's pool configuration (an aggregate of its own).

    The pool is every active location whose id is in ``location_ids`` or whose kind is in
    ``kinds``; with neither given, every active location. With ``requires``, only those
    that have every one of those capabilities: a web shop that only ships
    (``requires={Capability.SHIP}``) never counts the stock of a store that cannot ship,
    and a store that loses the capability leaves the pool. ``buffer`` units, or
    ``buffer_percent`` of the pool's available units (rounded up), whichever is larger, are
    never promised. ``low_stock_threshold`` turns on low-stock events for the channel.
    """

    id: ChannelId = attrs.field(validator=text(InvalidChannelConfig))  # "": every location
    location_ids: frozenset[LocationId] | None = attrs.field(
        default=None, validator=optional(instance_of(frozenset, InvalidChannelConfig))
    )
    kinds: frozenset[LocationKind] | None = attrs.field(
        default=None, validator=optional(instance_of(frozenset, InvalidChannelConfig))
    )
    buffer: int = attrs.field(default=0, validator=_check_buffer)
    buffer_percent: Decimal = attrs.field(default=Decimal(0), converter=_percent)
    low_stock_threshold: int | None = attrs.field(default=None, validator=_check_threshold)
    version: int = 0
    requires: frozenset[Capability] = attrs.field(
        default=frozenset(), validator=instance_of(frozenset, InvalidChannelConfig)
    )

    def feeds_from(self, location: Location) -> bool:
        """True when ``location`` is active and belongs to this channel's pool."""
        if not location.active or not self.requires <= location.capabilities:
            return False
        if self.location_ids is None and self.kinds is None:
            return True
        return (self.location_ids is not None and location.id in self.location_ids) or (
            self.kinds is not None and location.kind in self.kinds
        )

    def pool(self, locations: Iterable[Location]) -> ChannelPool:
        """The pool over ``locations``, in preference order (priority, then id)."""
        members = sorted(
            (loc for loc in locations if self.feeds_from(loc)), key=lambda x: (x.priority, x.id)
        )
        return ChannelPool(
            channel=self.id,
            locations=tuple(loc.id for loc in members),
            buffer=self.buffer,
            buffer_percent=self.buffer_percent,
        )


@functools.lru_cache(maxsize=256)
def default_channel(channel: ChannelId) -> Channel:
    """A channel never configured: every active location, no buffer."""
    return Channel(id=channel)


@attrs.frozen(slots=True)
class ChannelPool:
    """A channel's active pool locations in preference order, with its buffer."""

    channel: ChannelId | None
    locations: tuple[LocationId, ...]
    buffer: int = 0
    buffer_percent: Decimal = Decimal(0)

    def held_back(self, pool_available: int) -> int:
        """Units of ``pool_available`` the channel must not promise."""
        if not self.buffer_percent:
            return self.buffer
        by_percent = math.ceil(pool_available * self.buffer_percent / 100)
        return max(self.buffer, by_percent)

    def without(self, excluded: Iterable[LocationId]) -> ChannelPool:
        """The pool less ``excluded`` locations (e.g. ones that rejected the order)."""
        if not excluded:
            return self
        out = frozenset(excluded)
        kept = tuple(x for x in self.locations if x not in out)
        return ChannelPool(self.channel, kept, self.buffer, self.buffer_percent)

    def promisable(self, pool_available: int) -> int:
        """ATP: ``pool_available`` less the buffer, never below zero."""
        return max(0, pool_available - self.held_back(pool_available))

    def promisable_up_to(self, levels: Mapping[LocationId, StockLevel], wanted: int) -> int:
        """``min(wanted, ATP)`` of the pool over a SKU's ``levels``, summing the locations'
        available units only until they promise ``wanted``: ATP never falls as available
        units grow (a buffer of at most 100 % holds back at most one unit more per unit), so
        the locations not yet summed cannot take the promise back."""
        total, early = 0, self.buffer_percent <= 100
        for location_id in self.locations:
            level = levels.get(location_id)
            if level is not None:
                total += level.available
                if early and total >= wanted and self.promisable(total) >= wanted:
                    return wanted
        return min(wanted, self.promisable(total))
