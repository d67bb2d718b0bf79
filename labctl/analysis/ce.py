"""Coulombic efficiency (CE) of lithium plating and stripping (half cells) and of full cells, live and offline.

One streaming :class:`CEAnalyzer` serves the live CE procedures (sample by sample) and ``labctl analyze ce``
(:func:`analyze_ce`, which replays a BDF time series through it), so both give the same answer.

Protocols (PROTOCOLS.md §2, science.md §2.1-2.2):

- ``cycling``: Li|SE|Cu half cell; each cycle plates a fixed capacity and strips to the anodic cutoff;
  CE_i = Q_strip,i / Q_plate,i with plating, stripping and nucleation overpotentials.
- ``reservoir``: Adams et al. 2018 as run by Wang et al. 2024: [formation plate, formation strip to the cutoff,
  reservoir plate Q_T, n × (strip Q_c, plate Q_c), final strip Q_S to the cutoff];
  CE = (Σ strips of the n cycles + Q_S) / (Σ plates of the n cycles + Q_T), which is (n·Q_c + Q_S)/(n·Q_c + Q_T).
- ``fullcell``: cathode|SE|collector; CE = Q_discharge / Q_charge, retention against a reference cycle, fade.

Conventions.

- Sign (BDF): positive current strips lithium from the working electrode of a half cell and charges a full cell.
- A *half-cycle* is one run of samples with the same ``Step Count`` and current of one sign. Samples with
  |j| < 0.001 mA/cm² are rest and belong to no half-cycle, except that a step's own reading at rest (the one a
  live procedure takes after the instrument ended the step) closes it and carries its last charge.
- Capacity of a half-cycle: the increase of the instrument's cumulative counters (``Charging Capacity / Ah`` for
  positive, ``Discharging Capacity / Ah`` for negative half-cycles) over its rows; a counter that falls was reset
  and counts from zero. The counters are taken to start at zero with the test when the first row's values fit
  that. Without counters: trapezoids of |I| between samples, with the current held over the interval before the
  first sample and up to the step's reading at rest (as :class:`~labctl.analysis.ccd.CCDAnalyzer` counts).
- Cycles come from the order of half-cycles, not from ``Cycle Count`` (which only labels the rows): a cycle opens
  with a plating (half cells) or a charge (full cells) that follows a half-cycle of the other sign. The reservoir
  phases are the runs of same-sign half-cycles, in the protocol's order; the last lone strip is the final strip.
  Rows of files without ``Cycle Count`` are numbered as the ``ce-reservoir`` procedure numbers them:
  formation = cycle 0, the reservoir plate = cycle 1 (it opens the first of the n cycles), cycle k = the k-th
  strip of Q_c and the plate after it, the final strip = cycle n + 1. Cycling and full cells count from 1.
- Overpotentials (mV): plating, |median V| over the second half of the plating's charge (past the nucleation
  dip and any alloying); stripping, |median V| over the strip without the part of its second half that rises above
  3 × the first half's median (de-alloying plateaus, the end-of-strip spike); nucleation, the depth of the dip in
  the first 20 % of the plating's charge, from its tip to the level the voltage recovers to after it (the Li
  plating plateau on bare Cu, the alloying plateau on an alloying film), 0 when there is no dip.
- What ended a half-cycle (``plate_end``, ``strip_end``, ``charge_end``, ``discharge_end``) is read off the data
  and the protocol's limits, in this order: ``voltage`` when its last voltage (carried to the end of the current
  along the last two samples) is at or beyond its voltage limit within 5 mV, or, for a strip, when the reading at
  rest after it is above a quarter of the cutoff (no Li metal left, which would rest at 0 V); ``capacity`` when
  its charge is within 1 % of ``capacity_mAh_cm2`` (for half-cycles that pass a planned charge: platings,
  full-cell charges, the reservoir's cycle strips); ``time`` when its time under current (charge / current) is
  within 1 % of ``time_limit_s``; ``stopped`` when the data end (or a short ended the test) before the
  instrument ended it. A half-cycle the instrument ended at none of the limits it was told about ended at one it
  was not told: ``capacity`` for one that passes a planned charge; for a strip to the cutoff ``voltage`` (the end
  spike fell between samples) unless it passed more lithium than was plated, then ``time`` (a time guard);
  ``voltage`` for a full-cell discharge.
- Short (ends the test; the first one is reported with its cycle, time and evidence):
  half cells: ``collapse``, |V| below half of the plateau |V| of the last 5 half-cycles of the same direction for
  ≥ 3 samples spanning ≥ 5 s (science.md §1.3), once the half-cycle has reached that level; ``overrun``, a strip
  passing more than 110 % of the charge plated in its cycle (reservoir: more than Q_T plus the formation
  lithium) below the cutoff; ``time_end``, a strip ended by the time limit having passed at least the charge
  plated (it could not polarise). Full cells: ``voltage_drop``, V more than 0.1 V below the running maximum of a
  constant-current charge for ≥ 3 samples spanning ≥ 5 s; ``charge_overrun``, a charge passing more than 120 %
  of ``capacity_mAh_cm2`` below the upper voltage. CE > 100 % alone is a flag (``ce_above_100``: suspect short
  or reservoir artefact), a strip ended by time a ``ce_lower_bound`` (science.md §2.2).

Memory stays flat over any number of cycles: samples are kept for the half-cycle in progress only; finished
half-cycles are reduced to a few numbers and finished cycles to their table row.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from statistics import median
from typing import Any, Literal

import numpy as np
import pandas as pd

from labctl.analysis.ce_results import (
    CEFinding,
    CEResult,
    EndReason,
    FullCellCycle,
    HalfCellCycle,
    Phase,
    Protocol,
    ReservoirCE,
    headline,
    table,
)  # fmt: skip
from labctl.analysis.timeseries import CURRENT, CYCLE, STEP, TIME, VOLTAGE, checked_series, load_bdf_csv, numbers
from labctl.units import SECONDS_PER_HOUR, areal_mAh_cm2, density_mA_cm2

__all__ = [
    "CEAnalyzer",
    "CEFinding",
    "CEResult",
    "FullCellCycle",
    "HalfCellCycle",
    "ReservoirCE",
    "analyze_ce",
    "headline",
    "load_bdf_csv",
    "table",
]

PROTOCOLS: tuple[str, ...] = ("reservoir", "cycling", "fullcell")
CHARGE_COUNTER, DISCHARGE_COUNTER = "Charging Capacity / Ah", "Discharging Capacity / Ah"
COUNTER_LABELS = {"charging_capacity_ah": CHARGE_COUNTER, "discharging_capacity_ah": DISCHARGE_COUNTER}  # BDF names

STORED_DIGITS = 10  # the run store keeps samples to 10 significant digits (labctl/store/folder.py)
REST_DENSITY_mA_cm2 = 0.001  # |j| below this is rest (as CCDAnalyzer)
HALF_CELL_LOWER_V = -0.5  # plating safety limit of Sandoval's −0.5…0.5 V window (PROTOCOLS.md §2b)
VOLTAGE_TOLERANCE_V = 0.005  # labctl: "at the limit" within a few mV of it
LIMIT_FRACTION = 0.01  # labctl: a charge or duration within 1 % of its limit ended there
# The nucleation dip (≈0.01 mAh/cm²) and alloying (≈0.06 mAh/cm² per 100 nm Ag, ≈0.2 for Wang's Mg film) come first
# in a plating (science.md §4.3): the dip lies in the first 20 % of its charge, the Li plating plateau in the second
# half, whatever the film.
NUCLEATION_WINDOW, PLATEAU_FROM = 0.2, 0.5
DIP_MIN_FRACTION, DIP_MIN_V = 0.1, 0.001  # labctl: a dip < 10 % of the plateau (or < 1 mV) is noise, no dip
# The de-alloying plateaus and the end-of-strip spike (science.md §4.3) rise far above the Li-metal plateau: in the
# second half of a strip, samples above 3 × the first half's median are the tail, not the plateau.
TAIL_FACTOR = 3.0
# With lithium metal on it the working electrode rests at 0 V against the Li counter electrode; emptied, it rests at its
# film's or the collector's potential, far above (science.md §4.3): a reading at rest after a strip above a quarter
# of the cutoff means the strip took all the Li metal and ended at the cutoff.
EMPTY_REST_FRACTION = 0.25
SETTLE_S = 2.0  # detectors skip the first 2 s of a half-cycle, the current change (as CCDAnalyzer)
COLLAPSE_FRACTION = 0.5  # science.md §1.3: |V| collapsing to ≤ 50 % of its level is a short
SHORT_SAMPLES, SHORT_MIN_S = 3, 5.0  # science.md §1.3 (shorts.py): one or two odd readings are a glitch
REFERENCE_HALF_CYCLES = 5  # the plateau level of the last 5 half-cycles of a direction
OVERRUN_FRACTION = 0.1  # labctl: a strip passing > 110 % of its cycle's plating runs on a short (CE > 100 % cases
# from reservoir artefacts are a few % at most, science.md §2.2)
CHARGE_DROP_V = 0.1  # labctl: a full cell's voltage falling 0.1 V under constant-current charge is a short
CHARGE_OVERRUN_FRACTION = 0.2  # labctl: a charge passing > 120 % of the expected capacity runs on a short


@dataclass
class _HalfCycle:
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
    low: tuple[float, int, float] | None = None  # (onset s, samples, V) of a run below a detector's line
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


class CEAnalyzer:
    """Streaming CE analysis and short detection; see the module docstring for definitions and criteria.

    Feed every sample with :meth:`add` (it returns findings: finished cycles and a short), call :meth:`finish` at
    the end of the test, then :meth:`result`. After a short the analyzer ignores further data, like
    :class:`~labctl.analysis.ccd.CCDAnalyzer`; :attr:`failure` tells the procedure to stop.
    """

    def __init__(
        self,
        area_cm2: float,
        *,
        protocol: Protocol,
        cutoff_V: float = 0.2,
        lower_V: float | None = None,
        upper_V: float | None = None,
        time_limit_s: float | None = None,
        capacity_mAh_cm2: float | None = None,
        cathode_mass_mg: float | None = None,
        reference_cycle: int | None = None,
    ) -> None:
        """``area_cm2``: electrode area (cm²). ``protocol``: ``reservoir``, ``cycling`` or ``fullcell``.
        ``cutoff_V``: half cells, the anodic cutoff of strips (V, > 0; Wang 0.2, Sandoval 0.5).
        ``lower_V``: the lower voltage limit (V): half cells, the plating safety limit (< 0; default −0.5);
        full cells, the discharge cutoff (default: unknown). ``upper_V``: full cells, the charge cutoff (V).
        ``time_limit_s``: the half-cycle time limit (s), if any (Sandoval: 4 h). ``capacity_mAh_cm2``: the planned
        charge per plating (half cells) or per charge (full cells), mAh/cm², if any. ``cathode_mass_mg``: full
        cells, active cathode mass (mg) for mAh/g. ``reference_cycle``: full cells, the cycle retention is
        relative to (default: the first complete cycle; give the first cycle after activation)."""
        _positive("area_cm2", area_cm2, "the electrode area in cm² (12 mm diameter: 1.131)")
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        self.area_cm2, self.protocol = float(area_cm2), protocol
        self.full = protocol == "fullcell"
        if not self.full:
            _positive("cutoff_V", cutoff_V, "the anodic cutoff of the strips in V, e.g. 0.2")
            lower_V = HALF_CELL_LOWER_V if lower_V is None else lower_V
            if not (isinstance(lower_V, (int, float)) and lower_V < 0):
                raise ValueError(f"lower_V must be below 0 V for a half cell (plating is negative), got {lower_V!r}")
        elif lower_V is not None and upper_V is not None and not upper_V > lower_V:
            raise ValueError(f"upper_V ({upper_V!r} V) must be above lower_V ({lower_V!r} V)")
        for name, value, hint in (
            ("time_limit_s", time_limit_s, "the half-cycle time limit in s"),
            ("capacity_mAh_cm2", capacity_mAh_cm2, "the planned charge in mAh/cm²"),
            ("cathode_mass_mg", cathode_mass_mg, "the active cathode mass in mg"),
        ):
            if value is not None:
                _positive(name, value, f"{hint}, or None")
        if reference_cycle is not None and not (isinstance(reference_cycle, int) and reference_cycle >= 0):
            raise ValueError(f"reference_cycle must be a cycle number (>= 0) or None, got {reference_cycle!r}")
        self.cutoff_V = None if self.full else float(cutoff_V)
        self.lower_V, self.upper_V = lower_V, upper_V if self.full else None
        self.time_limit_s, self.capacity_mAh_cm2 = time_limit_s, capacity_mAh_cm2
        self.cathode_mass_mg, self.reference_cycle = cathode_mass_mg, reference_cycle
        self._opening = 1 if self.full else -1  # a cycle opens with a charge (full cell) or a plating (half cell)
        self._latest: _HalfCycle | None = None
        self._group: list[_HalfCycle] = []
        self._phase: tuple[Phase, int] | None = None  # reservoir: the open group's phase and its cycle k
        self._runs, self._last_sign, self._groups = 0, 0, 0
        self._rows: list[HalfCellCycle | FullCellCycle] = []
        self._plated_mAh_cm2 = self._stripped_mAh_cm2 = 0.0
        self._plateaus: dict[int, deque[float]] = {
            1: deque(maxlen=REFERENCE_HALF_CYCLES),
            -1: deque(maxlen=REFERENCE_HALF_CYCLES),
        }
        self._formation_plate: float | None = None
        self._reservoir_plate: float | None = None
        self._prev_t: float | None = None
        self._prev_counters: tuple[float, float] | None = None
        self._ref: tuple[int, float] | None = None  # (cycle, discharge mAh/cm²) retention is relative to
        self._prev_retention: tuple[int, float] | None = None
        self._failure: CEFinding | None = None
        self._finished = False

    @property
    def failure(self) -> CEFinding | None:
        """The short that ends the test, or None."""
        return self._failure

    # -- feeding

    def add(
        self,
        test_time_s: float,
        voltage_V: float,
        current_A: float,
        cycle: int | None,
        step: int,
        charge_Ah: float | None = None,
        discharge_Ah: float | None = None,
    ) -> list[CEFinding]:
        """One sample: test time (s), voltage (V), current (A, positive strips/charges), BDF cycle count (None if
        unknown) and step count, the instrument's cumulative charging and discharging capacity counters (Ah, None
        if unknown). Returns what it revealed: finished cycles and a short."""
        for name, value in (("test_time_s", test_time_s), ("voltage_V", voltage_V), ("current_A", current_A)):
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self._finished:
            raise RuntimeError("the analyzer has finished; make a new one for another test")
        if self._prev_t is not None and test_time_s < self._prev_t:
            raise ValueError(
                f"test_time_s went backwards: {test_time_s} s after {self._prev_t} s; feed samples in time order"
            )
        if self._failure is not None:
            return []
        # the analysis sees the samples as the run store keeps them, so a live run and the analysis of its file agree
        t, v, i = _stored(test_time_s), _stored(voltage_V), _stored(current_A)
        dt, gained = self._increments(t, i, _counters(charge_Ah, discharge_Ah))
        found: list[CEFinding] = []
        hc = self._latest
        if abs(density_mA_cm2(i, self.area_cm2)) < REST_DENSITY_mA_cm2:
            if hc is not None:
                if hc.step == step and not hc.closed:  # the step's reading at rest: the instrument ended it
                    hc.q_int_Ah += hc.i_last_A * dt / SECONDS_PER_HOUR
                if hc.rest_V is None:
                    hc.rest_V = v
                self._credit(hc, gained)
                if not hc.closed:
                    found += self._close(hc)
            return found
        sign = 1 if i > 0 else -1
        if hc is None or hc.step != step or hc.sign != sign:
            found += self._begin(t, sign, step, cycle)
            if self._failure is not None:
                return found
            hc = self._latest
            assert hc is not None
            hc.q_int_Ah += abs(i) * dt / SECONDS_PER_HOUR  # the current ran since the previous row
        else:
            hc.closed = False  # the current resumed within its step
            dq = (hc.i_last_A + abs(i)) / 2 * dt / SECONDS_PER_HOUR
            hc.q_int_Ah += dq
            hc.v_dq_VAh += (hc.v_last_V + v) / 2 * dq
            hc.dq_between_Ah += dq
        self._credit(hc, gained)
        if hc.samples:
            hc.t_before_s, hc.v_before_V = hc.t_last_s, hc.v_last_V
        hc.t_last_s, hc.v_last_V, hc.i_last_A, hc.q_at_last_Ah = t, v, abs(i), hc.q_int_Ah
        assert hc.samples is not None
        hc.samples.append((hc.q_int_Ah, v, abs(i)))
        if t - hc.t_first_s >= SETTLE_S:
            short = self._charge_short(hc, t, v) if self.full else self._half_cell_short(hc, t, v)
            if short is not None:
                found.append(short)
        return found

    def finish(self) -> list[CEFinding]:
        """The test has ended: the last cycle is complete (a half-cycle the instrument did not end is ``stopped``).
        Returns the findings of that (usually the last cycle's row)."""
        if self._finished:
            return []
        self._finished = True
        if self._latest is not None:
            self._seal(self._latest)
        return self._complete_group(last=True) if self._group else []

    # -- the result

    def result(self) -> CEResult:
        """The result over the finished cycles (all of them once :meth:`finish` was called)."""
        rows = tuple(self._rows)
        done = [
            r
            for r in rows
            if r.ce_percent is not None and "incomplete" not in r.flags and (self.protocol == "cycling" or self.full)
        ]
        ces = [r.ce_percent for r in done if r.ce_percent is not None]
        retained = [
            (r.cycle, r.retention_percent)
            for r in rows
            if isinstance(r, FullCellCycle) and r.retention_percent is not None
        ]
        fade = None
        if len(retained) >= 2:
            x, y = np.array(retained, dtype=float).T
            fade = _sig(-float(np.polyfit(x, y, 1)[0]))
        limits = {
            "cutoff_V": self.cutoff_V,
            "lower_V": self.lower_V,
            "upper_V": self.upper_V,
            "time_limit_h": None if self.time_limit_s is None else self.time_limit_s / SECONDS_PER_HOUR,
            "capacity_mAh_cm2": self.capacity_mAh_cm2,
            "cathode_mass_mg": self.cathode_mass_mg,
        }
        return CEResult(
            protocol=self.protocol, area_cm2=self.area_cm2, cycles=rows, cycles_completed=len(ces),
            mean_ce_percent=_sig(sum(ces) / len(ces)) if ces else None, last_ce_percent=ces[-1] if ces else None,
            reservoir=self._reservoir(rows) if self.protocol == "reservoir" else None, short=self._failure,
            reference_cycle=self._ref[0] if self._ref else self.reference_cycle,
            retention_percent=retained[-1][1] if retained else None, fade_percent_per_cycle=fade,
            test_time_h=(self._prev_t or 0.0) / SECONDS_PER_HOUR, limits=limits)  # fmt: skip

    # -- half-cycles

    def _increments(
        self,
        t: float,
        i: float,
        counters: tuple[float, float] | None,
    ) -> tuple[float, tuple[float, float] | None]:
        """Seconds and counter gains (charge, discharge; Ah) since the previous row. Before the first row the
        counters stood at zero at test time 0 when its values fit that, else the first row starts from itself."""
        if self._prev_t is None:
            from_zero = (
                counters is not None and sum(counters) <= abs(i) * t / SECONDS_PER_HOUR * (1 + LIMIT_FRACTION) + 1e-12
            )
            self._prev_t, self._prev_counters = (0.0, (0.0, 0.0)) if from_zero else (t, counters)
        dt = t - self._prev_t
        gained = None
        if counters is not None and self._prev_counters is not None:
            gained = tuple(
                now - before if now >= before else now  # a counter that fell was reset to zero
                for now, before in zip(counters, self._prev_counters, strict=True)
            )
        self._prev_t = t
        if counters is not None:
            self._prev_counters = counters
        return dt, gained  # type: ignore[return-value]

    def _credit(self, hc: _HalfCycle, gained: tuple[float, float] | None) -> None:
        if gained is None:
            hc.counters = False
        else:
            hc.q_counter_Ah += gained[0] if hc.sign > 0 else gained[1]

    def _begin(self, t: float, sign: int, step: int, cycle: int | None) -> list[CEFinding]:
        """A new half-cycle: the previous one ended (and is checked), a cycle may be complete."""
        found: list[CEFinding] = []
        previous = self._latest
        if previous is not None:
            if not previous.closed:
                found += self._close(previous)
                if self._failure is not None:
                    return found
            self._seal(previous)
        if sign != self._last_sign:
            self._runs, self._last_sign = self._runs + 1, sign
        if self._starts_group(sign):
            if self._group:
                found += self._complete_group(last=False)
            self._groups += 1
            self._phase = _reservoir_phase(self._runs) if self.protocol == "reservoir" else None
        hc = _HalfCycle(
            sign=sign,
            step=step,
            cycle=cycle,
            t_first_s=t,
            inventory_mAh_cm2=self._plated_mAh_cm2 - self._stripped_mAh_cm2,
            overrun_limit_mAh_cm2=self._overrun_limit(sign),
        )
        self._group.append(hc)
        self._latest = hc
        return found

    def _starts_group(self, sign: int) -> bool:
        if not self._group:
            return True
        if self.protocol == "reservoir":
            return _reservoir_phase(self._runs) != self._phase
        return sign == self._opening and any(h.sign != sign for h in self._group)

    def _overrun_limit(self, sign: int) -> float | None:
        """The charge a strip may pass before it runs on a short, mAh/cm² (None: not checked)."""
        if self.full or sign < 0:
            return None
        if self.protocol == "reservoir" and self._reservoir_plate is not None and self._formation_plate is not None:
            return self._reservoir_plate + self._formation_plate
        plated = sum(self._capacity(h) for h in self._group if h.sign < 0)
        return (1 + OVERRUN_FRACTION) * plated if plated > 0 else None

    def _close(self, hc: _HalfCycle) -> list[CEFinding]:
        """The instrument ended ``hc``; a strip of long cycling that ran into the time limit after passing the
        plated charge could not polarise."""
        hc.closed = True
        if self.protocol != "cycling" or hc.sign < 0 or self._end(hc, "cutoff") != "time":
            return []
        plated = sum(self._capacity(h) for h in self._group if h.sign < 0)
        stripped = self._capacity(hc)
        if plated <= 0 or stripped < plated:
            return []
        limit = f"the {self.time_limit_s / SECONDS_PER_HOUR:.3g} h time limit" if self.time_limit_s else "a time limit"
        return [
            self._short(
                hc,
                hc.t_last_s,
                "time_end",
                (
                    f"the strip ran into {limit} below the {self.cutoff_V:g} V cutoff "
                    f"after passing {stripped:.4g} mAh/cm², at least the {plated:.4g} mAh/cm² plated "
                    f"(CE {100 * stripped / plated:.1f} %): the cell could not polarise"
                ),
            )
        ]

    def _seal(self, hc: _HalfCycle) -> None:
        """Reduce a finished half-cycle to its statistics and count its lithium."""
        if hc.samples is None:
            return
        hc.current_A = hc.typical_current_A
        if not self.full and hc.samples:
            if hc.sign < 0:
                hc.plateau_V, hc.nucleation_V = _plating_plateau(hc.samples, hc.q_int_Ah)
            else:
                hc.plateau_V = _stripping_plateau(hc.samples, hc.q_int_Ah)
            if hc.plateau_V is not None and hc.sign * hc.plateau_V > 0:
                self._plateaus[hc.sign].append(hc.sign * hc.plateau_V)
        hc.samples = None
        capacity = self._capacity(hc)
        if hc.sign < 0:
            self._plated_mAh_cm2 += capacity
        else:
            self._stripped_mAh_cm2 += capacity
        if self.protocol == "reservoir" and hc.sign < 0:
            if self._runs == 1:
                self._formation_plate = (self._formation_plate or 0.0) + capacity
            elif self._runs == 3:
                self._reservoir_plate = (self._reservoir_plate or 0.0) + capacity

    def _capacity(self, hc: _HalfCycle) -> float:
        return areal_mAh_cm2(hc.charge_Ah, self.area_cm2)

    def _limit_V(self, sign: int) -> float | None:
        if sign > 0:
            return self.upper_V if self.full else self.cutoff_V
        return self.lower_V

    def _end(self, hc: _HalfCycle, role: Literal["planned", "cutoff"]) -> EndReason:
        """What ended ``hc`` (module docstring); ``planned``: it passes a planned charge, ``cutoff``: it runs to
        its voltage limit."""
        limit = self._limit_V(hc.sign)
        if limit is not None and hc.sign * (self._end_voltage(hc) - limit) >= -VOLTAGE_TOLERANCE_V:
            return "voltage"
        if self.cutoff_V and hc.sign > 0 and hc.rest_V is not None and hc.rest_V >= EMPTY_REST_FRACTION * self.cutoff_V:
            return "voltage"  # the electrode rests with no Li metal left: the strip ran to the cutoff
        capacity = self._capacity(hc)
        planned = self.capacity_mAh_cm2
        if role == "planned" and planned and abs(capacity - planned) <= LIMIT_FRACTION * planned:
            return "capacity"
        if self.time_limit_s and abs(self._duration_s(hc) - self.time_limit_s) <= LIMIT_FRACTION * self.time_limit_s:
            return "time"
        if not hc.closed:
            return "stopped"
        if role == "planned":
            return "capacity"
        if not self.full and capacity > hc.inventory_mAh_cm2 * (1 + LIMIT_FRACTION):
            return "time"
        return "voltage"

    def _duration_s(self, hc: _HalfCycle) -> float:
        """Time under current: charge over the (constant) current, exact whatever the sampling."""
        return hc.charge_Ah * SECONDS_PER_HOUR / hc.typical_current_A

    def _end_voltage(self, hc: _HalfCycle) -> float:
        """The voltage when the current stopped: the last sample's, carried along the last two samples' slope to
        the end of a half-cycle the instrument ended after that sample."""
        if not hc.closed or hc.t_before_s is None or hc.v_before_V is None or hc.t_last_s <= hc.t_before_s:
            return hc.v_last_V
        left_s = max(0.0, hc.charge_Ah - hc.q_at_last_Ah) * SECONDS_PER_HOUR / hc.i_last_A
        slope = (hc.v_last_V - hc.v_before_V) / (hc.t_last_s - hc.t_before_s)
        return hc.v_last_V + slope * left_s

    # -- shorts

    def _half_cell_short(self, hc: _HalfCycle, t: float, v: float) -> CEFinding | None:
        if hc.sign > 0 and hc.overrun_limit_mAh_cm2 is not None and self.cutoff_V is not None:
            passed = self._capacity(hc)
            if passed > hc.overrun_limit_mAh_cm2 and v < self.cutoff_V - VOLTAGE_TOLERANCE_V:
                return self._short(
                    hc,
                    t,
                    "overrun",
                    (
                        f"the strip passed {passed:.4g} mAh/cm² below the {self.cutoff_V:g} V cutoff, more than the "
                        f"{hc.overrun_limit_mAh_cm2:.4g} mAh/cm² of lithium it could hold ({self._overrun_basis()})"
                    ),
                )
        reference = self._reference(hc.sign)
        if reference is None:
            return None
        line_V = COLLAPSE_FRACTION * reference
        if not hc.armed:
            hc.armed = hc.sign * v >= line_V
            return None
        onset = self._run_below(hc, t, v, hc.sign * v < line_V)
        if onset is None:
            return None
        what = "plating" if hc.sign < 0 else "stripping"
        return self._short(
            hc,
            onset[0],
            "collapse",
            (
                f"|V| fell to {abs(v) * 1e3:.3g} mV while {what} (from {abs(onset[1]) * 1e3:.3g} mV at the "
                f"onset), below half of the {reference * 1e3:.3g} mV plateau of the previous half-cycles"
            ),
        )

    def _charge_short(self, hc: _HalfCycle, t: float, v: float) -> CEFinding | None:
        if hc.sign < 0:
            return None
        hc.v_max_V = max(hc.v_max_V, v)
        onset = self._run_below(hc, t, v, v < hc.v_max_V - CHARGE_DROP_V)
        if onset is not None:
            return self._short(
                hc,
                onset[0],
                "voltage_drop",
                (
                    f"V fell to {v:.4g} V at constant-current charge, {(hc.v_max_V - v) * 1e3:.0f} mV below the "
                    f"charge's maximum of {hc.v_max_V:.4g} V"
                ),
            )
        expected = self.capacity_mAh_cm2
        passed = self._capacity(hc)
        below_top = self.upper_V is None or v < self.upper_V - VOLTAGE_TOLERANCE_V
        if expected and passed > (1 + CHARGE_OVERRUN_FRACTION) * expected and below_top:
            return self._short(
                hc,
                t,
                "charge_overrun",
                (
                    f"the charge passed {passed:.4g} mAh/cm², more than {100 * (1 + CHARGE_OVERRUN_FRACTION):.0f} % of "
                    f"the expected {expected:g} mAh/cm², without reaching the upper voltage"
                ),
            )
        return None

    def _run_below(self, hc: _HalfCycle, t: float, v: float, below: bool) -> tuple[float, float] | None:
        """Track a run of samples below a detector's line; (onset s, onset V) once it is a short."""
        if not below:
            hc.low = None
            return None
        onset_s, count, onset_V = hc.low or (t, 0, v)
        hc.low = (onset_s, count + 1, onset_V)
        if count + 1 >= SHORT_SAMPLES and t - onset_s >= SHORT_MIN_S:
            return onset_s, onset_V
        return None

    def _reference(self, sign: int) -> float | None:
        """The plateau |V| of recent half-cycles of this direction (of the other one before there are any)."""
        levels = self._plateaus[sign] or self._plateaus[-sign]
        return median(levels) if levels else None

    def _overrun_basis(self) -> str:
        if self.protocol == "reservoir" and self._reservoir_plate is not None:
            return "Q_T plus the formation plating"
        return f"{100 * (1 + OVERRUN_FRACTION):.0f} % of the charge plated in this cycle"

    def _short(self, hc: _HalfCycle, t: float, criterion: str, detail: str) -> CEFinding:
        self._failure = CEFinding(
            kind="hard_short",
            t_s=t,
            cycle=self._label(hc),
            step=hc.step,
            detail=detail,
            ends_test=True,
            criterion=criterion,
        )
        return self._failure

    # -- cycles

    def _label(self, hc: _HalfCycle | None = None) -> int:
        """The open cycle's number: the data's Cycle Count, else counted (module docstring)."""
        first = hc if hc is not None and hc.cycle is not None else (self._group[0] if self._group else None)
        if first is not None and first.cycle is not None:
            return first.cycle
        if self._phase is not None:
            return {"formation": 0, "reservoir": 1}.get(self._phase[0], self._phase[1])
        return self._groups

    def _complete_group(self, last: bool) -> list[CEFinding]:
        group, label = self._group, self._label()
        row = self._full_row(group, label) if self.full else self._half_row(group, label, self._group_phase(last))
        self._rows.append(row)
        self._group = []
        end = group[-1]
        return [
            CEFinding(
                kind="cycle_completed",
                t_s=end.t_last_s,
                cycle=label,
                step=end.step,
                detail=f"cycle {label} complete",
                row=row.to_dict(),
            )
        ]

    def _group_phase(self, last: bool) -> Phase:
        """The reservoir phase of the open group; a last lone strip is the final strip unless it is a cycle strip
        cut short (stopped within the cycles' strip charge)."""
        if self._phase is None:
            return "cycle"
        phase = self._phase[0]
        if last and phase == "cycle" and all(h.sign > 0 for h in self._group):
            strip = self._group[-1]
            cycled = [r.strip_mAh_cm2 for r in self._rows if r.phase == "cycle" and r.strip_mAh_cm2 is not None]
            cut_short = not strip.closed and (not cycled or self._capacity(strip) <= max(cycled) * (1 + LIMIT_FRACTION))
            return "cycle" if cut_short else "final"
        return phase

    def _half_row(self, group: list[_HalfCycle], label: int, phase: Phase) -> HalfCellCycle:
        plates, strips = [h for h in group if h.sign < 0], [h for h in group if h.sign > 0]
        plate = _sig(sum(self._capacity(h) for h in plates)) if plates else None
        strip = _sig(sum(self._capacity(h) for h in strips)) if strips else None
        plate_end = self._end(plates[-1], "planned") if plates else None
        strip_end = (
            self._end(strips[-1], "planned" if phase == "cycle" and self.protocol == "reservoir" else "cutoff")
            if strips
            else None
        )
        with_ce = self.protocol == "cycling" or phase == "formation"
        ce = _sig(100 * strip / plate) if with_ce and plate and strip is not None else None
        main_plate = max(plates, key=self._capacity) if plates else None
        main_strip = max(strips, key=self._capacity) if strips else None
        cut = (
            "stopped" in (plate_end, strip_end)
            or (with_ce and ce is None)
            or (phase == "cycle" and self.protocol == "reservoir" and not (plates and strips))
        )
        return HalfCellCycle(
            cycle=label, phase=phase, plate_mAh_cm2=plate, strip_mAh_cm2=strip, ce_percent=ce,
            plating_overpotential_mV=_mV(main_plate.plateau_V if main_plate else None),
            stripping_overpotential_mV=_mV(main_strip.plateau_V if main_strip else None),
            nucleation_overpotential_mV=_mV(plates[0].nucleation_V if plates else None),
            plate_end=plate_end, strip_end=strip_end, flags=_flags(ce, strip_end, cut),
            end_time_h=group[-1].t_last_s / SECONDS_PER_HOUR)  # fmt: skip

    def _full_row(self, group: list[_HalfCycle], label: int) -> FullCellCycle:
        charges, discharges = [h for h in group if h.sign > 0], [h for h in group if h.sign < 0]
        charge = sum(self._capacity(h) for h in charges) if charges else None
        discharge = sum(self._capacity(h) for h in discharges) if discharges else None
        charge_end = self._end(charges[-1], "planned") if charges else None
        discharge_end = self._end(discharges[-1], "cutoff") if discharges else None
        ce = 100 * discharge / charge if charge and discharge is not None else None
        cut = ce is None or "stopped" in (charge_end, discharge_end)
        retention = fade = None
        if not cut and discharge:
            retention, fade = self._retention(label, discharge)
        return FullCellCycle(
            cycle=label, charge_mAh_cm2=_sig(charge), discharge_mAh_cm2=_sig(discharge),
            charge_mAh_g=self._per_gram(charge), discharge_mAh_g=self._per_gram(discharge), ce_percent=_sig(ce),
            mean_charge_V=_sig(_mean_voltage(charges)), mean_discharge_V=_sig(_mean_voltage(discharges)),
            charge_end=charge_end, discharge_end=discharge_end, retention_percent=retention,
            fade_percent_per_cycle=fade, flags=_flags(ce, discharge_end, cut),
            end_time_h=group[-1].t_last_s / SECONDS_PER_HOUR)  # fmt: skip

    def _retention(self, cycle: int, discharge_mAh_cm2: float) -> tuple[float | None, float | None]:
        """Retention (%) of this cycle's discharge against the reference cycle's, and the fade since the previous
        complete cycle (percentage points per cycle)."""
        if self._ref is None and (self.reference_cycle is None or cycle >= self.reference_cycle):
            self._ref = (cycle, discharge_mAh_cm2)
        if self._ref is None:
            return None, None
        retention = _sig(100 * discharge_mAh_cm2 / self._ref[1])
        fade = None
        if self._prev_retention is not None and cycle > self._prev_retention[0]:
            fade = _sig((self._prev_retention[1] - retention) / (cycle - self._prev_retention[0]))
        self._prev_retention = (cycle, retention)
        return retention, fade

    def _per_gram(self, capacity_mAh_cm2: float | None) -> float | None:
        if capacity_mAh_cm2 is None or not self.cathode_mass_mg:
            return None
        return _sig(capacity_mAh_cm2 * self.area_cm2 / (self.cathode_mass_mg / 1000))

    def _reservoir(self, rows: tuple[HalfCellCycle | FullCellCycle, ...]) -> ReservoirCE:
        """The reservoir CE from the phase rows (science.md §2.1)."""
        half = [r for r in rows if isinstance(r, HalfCellCycle)]
        formation = next((r for r in half if r.phase == "formation"), None)
        reservoir = next((r for r in half if r.phase == "reservoir"), None)
        final = next((r for r in half if r.phase == "final"), None)
        cycles = [r for r in half if r.phase == "cycle" and r.plate_mAh_cm2 is not None and r.strip_mAh_cm2 is not None]
        strips = sum(r.strip_mAh_cm2 or 0.0 for r in cycles)
        plates = sum(r.plate_mAh_cm2 or 0.0 for r in cycles)
        q_t = reservoir.plate_mAh_cm2 if reservoir else None
        q_s = final.strip_mAh_cm2 if final else None
        formation_plate = formation.plate_mAh_cm2 if formation else None
        ce = _sig(100 * (strips + q_s) / (plates + q_t)) if q_t and q_s is not None else None
        flags = []
        if final is not None and final.strip_end == "time":
            flags.append("lower_bound")
        if (
            final is not None
            and q_s is not None
            and final.strip_end != "voltage"
            and q_t is not None
            and q_s > q_t + (formation_plate or 0.0)
        ):
            flags.append("suspect_short")
        return ReservoirCE(
            ce_percent=ce, n=len(cycles), Q_c_mAh_cm2=_sig(plates / len(cycles)) if cycles else None,
            Q_T_mAh_cm2=q_t, Q_S_mAh_cm2=q_s, cycled_strip_mAh_cm2=_sig(strips), cycled_plate_mAh_cm2=_sig(plates),
            formation_plate_mAh_cm2=formation_plate,
            formation_strip_mAh_cm2=formation.strip_mAh_cm2 if formation else None,
            initial_ce_percent=formation.ce_percent if formation else None,
            final_strip_end=final.strip_end if final else None, flags=tuple(flags))  # fmt: skip


def analyze_ce(df: pd.DataFrame, area_cm2: float, **options: Any) -> CEResult:
    """The CE result of a test recorded as a BDF time series, computed by :class:`CEAnalyzer` with ``options``
    (``protocol``, ``cutoff_V``, ...), row by row as a live run feeds it.

    Steps come from ``Step Count / 1`` when present, else from changes of the current's sign or rest; cycle labels
    from ``Cycle Count / 1`` when present; capacities from the capacity counters when present, else integrated.
    """
    analyzer = CEAnalyzer(area_cm2, **options)
    df = checked_series(df).rename(columns=COUNTER_LABELS)
    t, volts, amps = (numbers(df, name) for name in (TIME, VOLTAGE, CURRENT))
    steps = numbers(df, STEP).astype(int).tolist() if STEP in df else _derive_steps(amps, analyzer.area_cm2)
    cycles = numbers(df, CYCLE).astype(int).tolist() if CYCLE in df else [None] * len(t)
    counted = CHARGE_COUNTER in df and DISCHARGE_COUNTER in df
    charge, discharge = (
        [_optional(x) for x in pd.to_numeric(df[name], errors="coerce").tolist()] if counted else [None] * len(t)
        for name in (CHARGE_COUNTER, DISCHARGE_COUNTER)
    )
    for row in zip(t.tolist(), volts.tolist(), amps.tolist(), cycles, steps, charge, discharge, strict=True):
        analyzer.add(*row)
        if analyzer.failure is not None:
            break
    analyzer.finish()
    return analyzer.result()


def _reservoir_phase(runs: int) -> tuple[Phase, int]:
    """The reservoir phase of the ``runs``-th run of same-sign half-cycles and its cycle k (module docstring)."""
    if runs <= 2:
        return "formation", 0
    if runs == 3:
        return "reservoir", 1
    return "cycle", (runs - 2) // 2


def _plating_plateau(samples: list[tuple[float, float, float]], total_Ah: float) -> tuple[float | None, float | None]:
    """(signed median V over the second half of the charge, depth of the nucleation dip or 0).

    The dip is measured from its tip (the most negative V in the nucleation window) to the highest V after it in
    the window: the level the voltage recovers to, which is the Li plating plateau on bare Cu and the alloying
    plateau on an alloying film (Mg/W-Cu: a 27 mV dip onto a plateau near 0 V, Wang et al.)."""
    late = [v for q, v, _ in samples if q > PLATEAU_FROM * total_Ah]
    if not late:
        return None, None
    plateau = median(late)
    early = [v for q, v, _ in samples if q <= NUCLEATION_WINDOW * total_Ah]
    if not early:
        return plateau, None
    tip = early.index(min(early))
    depth = max(early[tip + 1 :]) - early[tip] if tip + 1 < len(early) else 0.0
    return plateau, depth if depth > max(DIP_MIN_V, DIP_MIN_FRACTION * abs(plateau)) else 0.0


def _stripping_plateau(samples: list[tuple[float, float, float]], total_Ah: float) -> float | None:
    """Median V over the Li-metal stripping plateau: without the tail of the second half that rises above
    ``TAIL_FACTOR`` × the first half's median."""
    first = [v for q, v, _ in samples if q <= 0.5 * total_Ah] or [v for _, v, _ in samples]
    level = median(first)
    kept = [v for q, v, _ in samples if q <= 0.5 * total_Ah or level <= 0 or v <= TAIL_FACTOR * level]
    return median(kept) if kept else None


def _mean_voltage(half_cycles: list[_HalfCycle]) -> float | None:
    dq = sum(h.dq_between_Ah for h in half_cycles)
    return sum(h.v_dq_VAh for h in half_cycles) / dq if dq > 0 else None


def _flags(ce: float | None, end: EndReason | None, cut: bool) -> tuple[str, ...]:
    flags = []
    if ce is not None and end == "time":
        flags.append("ce_lower_bound")
    if ce is not None and ce > 100:
        flags.append("ce_above_100")
    if cut:
        flags.append("incomplete")
    return tuple(flags)


def _derive_steps(amps: np.ndarray, area_cm2: float) -> list[int]:
    """A new step wherever the current changes sign or starts or stops resting."""
    steps, number, state = [], 0, None
    for current in amps.tolist():
        now = 0 if abs(density_mA_cm2(current, area_cm2)) < REST_DENSITY_mA_cm2 else math.copysign(1, current)
        if now != state:
            number, state = number + 1, now
        steps.append(number)
    return steps


def _counters(charge_Ah: float | None, discharge_Ah: float | None) -> tuple[float, float] | None:
    charge, discharge = _optional(charge_Ah), _optional(discharge_Ah)
    return None if charge is None or discharge is None else (_stored(charge), _stored(discharge))


def _stored(x: float) -> float:
    return float(f"{x:.{STORED_DIGITS}g}")


def _optional(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _mV(v: float | None) -> float | None:
    return None if v is None else _sig(abs(v) * 1e3)


def _sig(x: float | None, digits: int = 6) -> float | None:
    """``x`` to 6 significant digits: what the data carry, and the same live and after a CSV round trip."""
    return None if x is None else float(f"{x:.{digits}g}")


def _positive(name: str, value: Any, hint: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}; give {hint}")
