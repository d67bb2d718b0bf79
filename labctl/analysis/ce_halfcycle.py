"""The pieces a CE stream is made of: one half-cycle's accumulators, and the instrument's capacity counters.

The counters (``Charging Capacity / Ah``, ``Discharging Capacity / Ah``) grow over a test; a half-cycle's capacity is
their increase over its rows, and a counter that falls was reset and counts from zero (:mod:`labctl.analysis.ce`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import median

from labctl.analysis.checks import sig
from labctl.analysis.shorts import Debounce
from labctl.units import SECONDS_PER_HOUR

STORED_DIGITS = 10  # the run store keeps samples to 10 significant digits (labctl/store/folder.py)
SHORT_MIN_S = 5.0  # a short's run of samples (shorts.MIN_SAMPLES, science.md §1.3) spans at least 5 s
FROM_ZERO_FRACTION = 0.01  # the first row's counters fit a start from zero at test time 0 within 1 %


@dataclass
class HalfCycle:
    """A half-cycle's accumulators; its samples are kept only until the next half-cycle begins."""

    sign: int  # +1 strip / charge, -1 plate / discharge
    step: int
    cycle: int | None
    t_first_s: float
    inventory_mAh_cm2: float  # lithium plated minus stripped before it
    overrun_limit_mAh_cm2: float | None
    t_last_s: float = 0.0  # latest sample with current
    v_last_V: float = 0.0
    i_last_A: float = 0.0  # |I|
    t_before_s: float | None = None  # the sample before it
    v_before_V: float | None = None
    q_int_Ah: float = 0.0
    q_at_last_Ah: float = 0.0  # integrated up to the latest sample with current
    q_counter_Ah: float = 0.0
    counters: bool = True  # every row carried the instrument's counters
    closed: bool = False  # the instrument ended it
    v_dq_VAh: float = 0.0  # ∫V dq between samples, for the mean voltage
    dq_between_Ah: float = 0.0
    samples: list[tuple[float, float, float]] | None = field(default_factory=list)  # (q_int Ah, V, |I| A)
    armed: bool = False  # collapse detector: the plateau level was reached
    low: Debounce = field(default_factory=lambda: Debounce(min_span_s=SHORT_MIN_S))  # samples below a detector's line
    v_max_V: float = -math.inf
    rest_V: float | None = None  # the first reading at rest after it
    current_A: float | None = None  # median |I|, set when sealed
    plateau_V: float | None = None  # signed median over the plateau, set when sealed
    nucleation_V: float | None = None  # depth of the nucleation dip, set when sealed

    @property
    def charge_Ah(self) -> float:
        """Charge passed: the instrument's counters, else the integrated current."""
        return self.q_counter_Ah if self.counters and self.q_counter_Ah > 0 else self.q_int_Ah

    @property
    def typical_current_A(self) -> float:
        """|I| of the half-cycle: the median over its samples."""
        if self.current_A is None and self.samples:
            return median(s[2] for s in self.samples)
        return self.current_A or self.i_last_A

    def credit(self, gained: tuple[float, float] | None) -> None:
        """Count a row's counter gains (None: the row had no counters, so the integrated charge counts)."""
        if gained is None:
            self.counters = False
        else:
            self.q_counter_Ah += gained[0] if self.sign > 0 else gained[1]



class Counters:
    """The instrument's cumulative counters, row by row: what each row added (charge, discharge; Ah)."""

    def __init__(self) -> None:
        self.last_t_s: float | None = None
        self._last: tuple[float, float] | None = None

    def step(self, t_s: float, current_A: float, charge_Ah: float | None,
             discharge_Ah: float | None) -> tuple[float, tuple[float, float] | None]:
        """Seconds and counter gains since the previous row (None without counters). Before the first row the
        counters stood at zero at test time 0 when its values fit that, else the first row starts from itself."""
        counters = _counters(charge_Ah, discharge_Ah)
        if self.last_t_s is None:
            from_zero = counters is not None and (
                sum(counters) <= abs(current_A) * t_s / SECONDS_PER_HOUR * (1 + FROM_ZERO_FRACTION) + 1e-12)
            self.last_t_s, self._last = (0.0, (0.0, 0.0)) if from_zero else (t_s, counters)
        dt = t_s - self.last_t_s
        gained = None
        if counters is not None and self._last is not None:
            gained = tuple(now - before if now >= before else now  # a counter that fell was reset to zero
                           for now, before in zip(counters, self._last, strict=True))
        self.last_t_s = t_s
        if counters is not None:
            self._last = counters
        return dt, gained  # type: ignore[return-value]


def stored(x: float) -> float:
    """``x`` as the run store keeps it, so a live run and the analysis of its file agree."""
    return sig(x, STORED_DIGITS)


def _counters(charge_Ah: float | None, discharge_Ah: float | None) -> tuple[float, float] | None:
    charge, discharge = _optional(charge_Ah), _optional(discharge_Ah)
    return None if charge is None or discharge is None else (stored(charge), stored(discharge))


def _optional(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None
