"""Public helpers for testing code built on omscore: a settable clock, deterministic ids,
Hypothesis strategies (:mod:`omscore.testing.strategies`) and invariant checks
(:mod:`omscore.testing.invariants`)."""

from omscore.adapters.system import SequentialIds
from omscore.testing.clock import ManualClock

__all__ = ["ManualClock", "SequentialIds"]
