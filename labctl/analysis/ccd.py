"""Critical current density (CCD) of a symmetric Li|SE|Li cell: failure detection and the CCD result.

One streaming :class:`CCDAnalyzer` serves the live procedure (sample by sample) and ``labctl analyze ccd``
(:func:`analyze_ccd`, which streams a BDF time series through it), so both give the same answer.
Criteria follow science.md §1.3: A (below the ohmic floor), B (sudden drop) and D (noise) are per-sample
detectors in :mod:`labctl.analysis.shorts`; C (step inconsistency) and E (contact loss) are here because they
need segments and current levels.

Conventions. A *segment* is one constant-current (or rest) step of the instrument, BDF ``Step Count``. A *current
level* is a run of consecutive segments with the same |j| (the half-cycles of one CCD step). CCD = j_fail, the
|j| of the level in which the cell failed (the garnet convention, e.g. Sharafi 2016); j_last_pass is the last
level whose half-cycles all completed, which is the "maximum endurable current density" of Lu et al. 2021.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from statistics import median
from typing import Literal

import pandas as pd

from labctl.analysis.checks import SettingError, positive, sig
from labctl.analysis.replay import replay
from labctl.analysis.segments import Charge, Row, Split, check_sample
from labctl.analysis.shorts import Collapse, Finding, Sample, VoltageNoise, finding_at
from labctl.analysis.timeseries import load_bdf_csv
from labctl.units import SECONDS_PER_HOUR, areal_mAh_cm2, density_mA_cm2

__all__ = ["CCDAnalyzer", "CCDResult", "Finding", "LevelSummary", "analyze_ccd", "brief", "headline", "load_bdf_csv"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

END_REASONS = (None, "time", "charge", "voltage_high", "voltage_low")
LIMIT_TOLERANCE = 0.005  # |V| within 0.5 % of the limit has reached it (logged values are rounded)
STEP_FRACTION = 0.5  # C: a level's median |V| below half the previous level's although |j| rose
GROWTH_FRACTION = 0.5  # E (event): |V| grew by more than 50 % within a segment ...
DENSITY_DIGITS, CAPACITY_DIGITS = 4, 6  # measured densities and integrated capacities carry no more
CONVENTION = ("CCD = j_fail, the current density of the step in which the cell failed; j_last_pass is the last "
              "step completed without failure (the Lu et al. 2021 convention, one step lower)")



@dataclass(frozen=True)
class LevelSummary:
    """One current level (CCD step): |j|, half-cycles started and completed, median |V|, and whether it passed."""

    current_density_mA_cm2: float
    half_cycles: int
    half_cycles_completed: int
    median_abs_voltage_V: float | None
    capacity_per_half_cycle_mAh_cm2: float | None  # achieved in its last completed half-cycle
    passed: bool


@dataclass(frozen=True)
class CCDResult:
    """The CCD of one cell, in the units users think in. ``to_dict()`` gives plain JSON types."""

    ccd_mA_cm2: float | None  # j_fail; None when the cell did not fail
    failure_mode: Literal["hard_short", "contact_loss"] | None
    criterion: str | None
    j_last_pass_mA_cm2: float | None
    capacity_per_half_cycle_mAh_cm2: float | None  # at the failing level (None: no level ever completed one)
    cumulative_capacity_mAh_cm2: float  # Li plated per electrode over the whole test (all the data fed)
    capacity_to_failure_mAh_cm2: float | None  # CAC: Li plated per electrode until the failure's onset
    failure_time_h: float | None  # onset
    failure_confirmed_time_h: float | None  # when the data confirmed it (a hard short: see Collapse)
    failure_cycle: int | None
    failure: Finding | None
    soft_shorts: tuple[Finding, ...]  # soft-short (B) and noise (D) events
    soft_short_onset_mA_cm2: float | None  # |j| of the first of them
    contact_warnings: tuple[Finding, ...]  # voltage growth within a half-cycle (E, not ending the test)
    levels: tuple[LevelSummary, ...]
    ohmic_floor_ohm: float | None
    ohmic_floor_source: Literal["given", "estimated"] | None
    area_cm2: float
    voltage_limit_V: float
    test_time_h: float
    convention: str = CONVENTION

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("soft_shorts", "contact_warnings", "levels"):
            d[key] = list(d[key])
        return d

    def headline(self) -> str:
        """One line for people (:func:`headline`)."""
        return headline(self.to_dict())

    def brief(self) -> str:
        """A few words for run lists (:func:`brief`)."""
        return brief(self.to_dict())


@dataclass
class _Level:
    first_density_mA_cm2: float  # |j| of its first sample, to recognise its segments
    densities_mA_cm2: list[float] = field(default_factory=list)  # |j| of every sample with current
    tested: list[Sample] = field(default_factory=list)  # kept while the level is open, for C
    half_cycles: int = 0
    completed: int = 0
    last_capacity_mAh_cm2: float | None = None
    median_abs_voltage_V: float | None = None  # set when the level closes
    median_resistance_ohm: float | None = None

    @property
    def density_mA_cm2(self) -> float:
        """|j| of the level: the median over its samples, to 4 significant digits."""
        return sig(median(self.densities_mA_cm2) if self.densities_mA_cm2 else self.first_density_mA_cm2, DENSITY_DIGITS)

    def summary(self, passed: bool) -> LevelSummary:
        median_V = self.median_abs_voltage_V
        if median_V is None and self.tested:
            median_V = median(abs(s.voltage_V) for s in self.tested)
        return LevelSummary(self.density_mA_cm2, self.half_cycles, self.completed, median_V,
                            _capacity(self.last_capacity_mAh_cm2), passed)


@dataclass
class _Segment:
    number: int
    cycle: int
    level: int
    density_mA_cm2: float
    start_s: float
    last_s: float
    charge_Ah: float = 0.0
    tested: list[Sample] = field(default_factory=list)


class CCDAnalyzer:
    """Streaming failure detector and CCD result for a symmetric Li|SE|Li cell under stepped galvanostatic cycling.

    Feed every sample with :meth:`add` and call :meth:`end_segment` when the instrument ends a segment. Samples
    with |j| below ``rest_density_mA_cm2`` are rest and ignored for detection. In each constant-current segment
    the first ``settle_s`` after its first sample with current are skipped (the current change); criterion E's
    limit check applies to every sample with current.

    Criteria (science.md §1.3):

    - A and B, a collapse of |V| (:class:`labctl.analysis.shorts.Collapse`): it begins when |V| < 0.5·|I|·R_floor
      (A) or |V| falls to <= 50 % of its running 30-s median within 10 s at unchanged current (B). One that
      recovers (back above 80 % of that median) after >= 3 samples is a soft-short event with its depth and
      duration, however long it lasted within its half-cycle, and the test goes on; 1-2 samples are a glitch. It
      is a hard short only if it persists: through the end of its half-cycle and then 60 s (>= 3 samples) of the
      following current, flat and ohmic (V ≈ I·R_short). The failure is reported at its onset (``t_s``), with
      the confirmation time (``confirmed_t_s``); when the data ends inside a collapse that has lasted 60 s,
      :meth:`result` reports it as a hard short confirmed at the last sample.
      R_floor is ``ohmic_floor_ohm`` (R_b from the latest EIS) when given. Otherwise it is estimated: the median
      |V|/|I| of the first completed constant-current segment, then lowered to the median |V|/|I| of each completed
      current level when that is lower; medians are taken over samples outside collapses, so a soft short neither
      lowers the floor nor drags a level's median down. An intact cell's |V|/|I| is never below R_b, so the estimate
      is at least R_b: this fallback is conservative (its floor is at least as high as the EIS one, so no short is
      missed for want of an EIS value), and following the levels keeps a strongly non-linear interface, whose |V|/|I|
      falls as j rises, from tripping it. Its cost: A is inactive during the first segment, and without R_b a cell
      shorted from its first sample cannot be told from an intact one. Give R_b.
    - C, step inconsistency, checked when a segment ends: the median |V| of the current level (outside
      collapses) is below half of the previous level's although |j| rose. A hard short (onset: the level's first
      such sample below that line; confirmed at the end of the segment).
    - D, noise: an event only (see :class:`labctl.analysis.shorts.VoltageNoise`); a lone outlier sample is not
      noise.
    - E, contact loss (not a short) ends the test when the voltage limit is reached: a segment ended with reason
      ``voltage_high``/``voltage_low``, or any sample with |V| >= ``voltage_limit_V`` (within 0.5 %). |V| growing by
      more than 50 % within a segment and still rising at its end is only an event (a warning of voids).

    One or two odd samples in a row fire nothing, at any sampling interval from 1 s to 60 s. Rest (an open-circuit
    rest before the first step included) is ignored. After the first failure the analyzer detects nothing more
    but goes on counting charge, so the cumulative capacity covers every sample fed (the whole test), while the
    capacity to failure stops at the failure's onset.

    Cumulative capacity (CAC) is the total |charge| passed divided by 2·area, i.e. the lithium plated per
    electrode, in mAh/cm2; for the fixed-time protocol it equals the sum of j over completed steps. Charge follows
    the one rule of :mod:`labctl.analysis.segments` (trapezoids within a segment, the current held at its ends, up
    to the segment's own reading at rest), exact when the data has a point at each step end (BDF, Arbin).
    """

    def __init__(self, area_cm2: float, *, voltage_limit_V: float = 1.0, ohmic_floor_ohm: float | None = None,
                 settle_s: float = 2.0, current_tolerance: float = 0.01, rest_density_mA_cm2: float = 0.001) -> None:
        """``area_cm2``: electrode area; ``voltage_limit_V``: the test's |V| safety limit; ``ohmic_floor_ohm``:
        R_b from EIS (None: estimate, see the class docstring); ``settle_s``: time skipped after a current change;
        ``current_tolerance``: relative difference of |j| below which two segments are the same level;
        ``rest_density_mA_cm2``: |j| below which a sample is rest."""
        positive("area_cm2", area_cm2, "the electrode area in cm² (10 mm diameter: 0.785)")
        positive("voltage_limit_V", voltage_limit_V, "the |V| safety limit of the test, e.g. 1.0")
        if ohmic_floor_ohm is not None:
            positive("ohmic_floor_ohm", ohmic_floor_ohm, "R_b from EIS in Ω, or None to estimate it")
        positive("settle_s", settle_s, "seconds to skip after a current change, e.g. 2", allow_zero=True)
        positive("rest_density_mA_cm2", rest_density_mA_cm2, "e.g. 0.001", allow_zero=True)
        if not 0 < current_tolerance < 0.5:
            raise SettingError("current_tolerance", "current_tolerance must be a fraction between 0 and 0.5, got "
                               f"{current_tolerance!r}; use e.g. 0.01 (1 %)")
        self.area_cm2 = float(area_cm2)
        self.voltage_limit_V = float(voltage_limit_V)
        self.settle_s = float(settle_s)
        self.current_tolerance = float(current_tolerance)
        self.rest_density_mA_cm2 = float(rest_density_mA_cm2)
        self.split = Split(self.area_cm2, self.rest_density_mA_cm2, self.current_tolerance, count_cycles=True)
        self._charge = Charge(self.split)
        self._fed_step: int | None = None  # replay: the step of the previous row fed
        self._given_floor_ohm = ohmic_floor_ohm
        self._estimated_floor_ohm: float | None = None
        self._collapse, self._noise = Collapse(), VoltageNoise()
        self._levels: list[_Level] = []
        self._segment: _Segment | None = None
        self._segment_levels: dict[int, int] = {}
        self._last_t_s: float | None = None
        self._last_labels = (0, 0)  # (segment, cycle) of the latest sample, rest included
        self._charge_Ah = 0.0
        self._findings: list[Finding] = []
        self._failure: Finding | None = None
        self._failure_level: int | None = None

    @property
    def failure(self) -> Finding | None:
        """The first finding that ends the test (hard short or contact loss), or None."""
        return self._failure

    @property
    def ohmic_floor_ohm(self) -> float | None:
        """R_floor in use for criterion A: the given R_b, the estimate, or None before one exists."""
        return self._given_floor_ohm if self._given_floor_ohm is not None else self._estimated_floor_ohm

    def is_rest(self, current_A: float) -> bool:
        return self.split.is_rest(current_A)

    def feed(self, row: Row) -> list[Finding]:
        """One recorded row (:func:`labctl.analysis.replay.replay`): a change of step ends the previous segment for
        a reason a file does not tell."""
        found = self.end_segment(None) if self._fed_step is not None and row.step != self._fed_step else []
        self._fed_step = row.step
        return found + self.add(row.t_s, row.voltage_V, row.current_A, row.step, row.cycle or 0)

    def finish(self) -> list[Finding]:
        """The data have ended: the last segment counts as completed."""
        return self.end_segment(None)

    def add(self, t_s: float, voltage_V: float, current_A: float, segment: int, cycle: int) -> list[Finding]:
        """One sample: test time (s), voltage (V), current (A, positive charges), BDF step count and cycle count.
        Returns what it revealed (usually nothing)."""
        check_sample({"t_s": t_s, "voltage_V": voltage_V, "current_A": current_A}, "t_s", self._last_t_s)
        charge_Ah = self._charge.add(0.0 if self._last_t_s is None else t_s - self._last_t_s, current_A, segment)
        self._last_t_s, self._last_labels = t_s, (segment, cycle)
        if self._failure is not None:  # nothing more to detect; the whole test's charge still counts
            self._charge_Ah += charge_Ah
            return []
        found: list[Finding] = []
        if self._segment is not None and segment != self._segment.number:
            found += self._close_segment(None)  # the instrument moved on without end_segment
        if self._failure is not None:
            return found
        seg = self._segment
        if self.is_rest(current_A):
            if seg is not None:  # the segment's own reading at rest: it ran until then
                self._pass_charge(seg, charge_Ah)
            return found
        if seg is None:
            seg = self._open_segment(t_s, current_A, segment, cycle)
        self._pass_charge(seg, charge_Ah)
        seg.last_s = t_s
        self._levels[seg.level].densities_mA_cm2.append(abs(density_mA_cm2(current_A, self.area_cm2)))
        s = Sample(t_s, voltage_V, current_A, seg.density_mA_cm2, segment, seg.cycle, self._cac())
        return found + self._check(s, seg)

    def _pass_charge(self, seg: _Segment, charge_Ah: float) -> None:
        self._charge_Ah += charge_Ah
        seg.charge_Ah += charge_Ah

    def end_segment(self, reason: str | None) -> list[Finding]:
        """The instrument ended the current segment: ``time``, ``charge``, ``voltage_high``, ``voltage_low``, or
        None when unknown. A voltage-limit end is contact loss and ends the test."""
        if reason not in END_REASONS:
            raise ValueError(f"reason must be one of {END_REASONS}, got {reason!r}")
        if self._failure is not None:
            return []
        if self._segment is None and reason in ("voltage_high", "voltage_low"):
            return [self._record(self._limit_without_samples(reason))]
        return self._close_segment(reason)

    def result(self) -> CCDResult:
        """The CCD result of the data so far, read as if the test ended here: a collapse still open that has
        lasted ``shorts.CONFIRM_S`` counts as a hard short confirmed at the last sample (nothing is changed by asking)."""
        failure, failure_level = self._failure, self._failure_level
        if failure is None and (failure := self._collapse.at_end(self.ohmic_floor_ohm)) is not None:
            failure_level = self._segment_levels.get(failure.segment)
        levels = [lv.summary(self._passed(i, failure_level)) for i, lv in enumerate(self._levels)]
        last = [lv.current_density_mA_cm2 for lv in levels if lv.passed]
        soft = tuple(f for f in self._findings if f.kind in ("soft_short", "noise"))
        floor_source = "given" if self._given_floor_ohm is not None else (
            "estimated" if self._estimated_floor_ohm is not None else None)
        return CCDResult(
            ccd_mA_cm2=levels[failure_level].current_density_mA_cm2 if failure_level is not None else None,
            failure_mode=failure.kind if failure else None,  # type: ignore[arg-type]
            criterion=failure.criterion if failure else None,
            j_last_pass_mA_cm2=last[-1] if last else None,
            capacity_per_half_cycle_mAh_cm2=_capacity(self._failing_capacity(failure_level)),
            cumulative_capacity_mAh_cm2=sig(self._cac(), CAPACITY_DIGITS),
            capacity_to_failure_mAh_cm2=sig(failure.cumulative_capacity_mAh_cm2, CAPACITY_DIGITS) if failure else None,
            failure_time_h=failure.t_s / SECONDS_PER_HOUR if failure else None,
            failure_confirmed_time_h=failure.confirmed_t_s / SECONDS_PER_HOUR if failure else None,
            failure_cycle=failure.cycle if failure else None,
            failure=failure,
            soft_shorts=soft,
            soft_short_onset_mA_cm2=abs(soft[0].current_density_mA_cm2 or 0.0) if soft else None,
            contact_warnings=tuple(f for f in self._findings if f.kind == "contact_loss" and not f.ends_test),
            levels=tuple(levels),
            ohmic_floor_ohm=self.ohmic_floor_ohm,
            ohmic_floor_source=floor_source,
            area_cm2=self.area_cm2,
            voltage_limit_V=self.voltage_limit_V,
            test_time_h=(self._last_t_s or 0.0) / SECONDS_PER_HOUR,
        )

    # -- segments and levels

    def _open_segment(self, t_s: float, current_A: float, number: int, cycle: int) -> _Segment:
        j = sig(density_mA_cm2(current_A, self.area_cm2), DENSITY_DIGITS)
        level = self._levels[-1] if self._levels else None
        if level is None or abs(abs(j) - level.first_density_mA_cm2) > self.current_tolerance * max(
                abs(j), level.first_density_mA_cm2):
            self._close_level()
            self._levels.append(_Level(first_density_mA_cm2=abs(j)))
        self._levels[-1].half_cycles += 1
        self._segment = _Segment(number, cycle, len(self._levels) - 1, j, t_s, t_s)
        self._segment_levels[number] = len(self._levels) - 1
        self._collapse.new_segment()
        self._noise.new_segment()
        return self._segment

    def _close_level(self) -> None:
        """Keep the summary of the level that just ended; it lowers the estimated floor if it is lower."""
        if not self._levels or not self._levels[-1].tested:
            return
        level = self._levels[-1]
        level.median_abs_voltage_V = median(abs(s.voltage_V) for s in level.tested)
        level.median_resistance_ohm = median(s.resistance_ohm for s in level.tested)
        if self._estimated_floor_ohm is not None and level.completed == level.half_cycles:
            self._estimated_floor_ohm = min(self._estimated_floor_ohm, level.median_resistance_ohm)
        level.tested = []

    def _close_segment(self, reason: str | None) -> list[Finding]:
        seg, self._segment = self._segment, None
        if seg is None:
            return []
        if reason in ("voltage_high", "voltage_low"):
            last = seg.tested[-1] if seg.tested else None
            return [self._record(Finding(
                kind="contact_loss", t_s=seg.last_s, current_density_mA_cm2=seg.density_mA_cm2, cycle=seg.cycle,
                segment=seg.number, criterion="E", ends_test=True, cumulative_capacity_mAh_cm2=self._cac(),
                confirmed_t_s=seg.last_s, detail=f"the instrument ended the segment at its voltage limit ({reason})"
                       + (f"; last |V| = {abs(last.voltage_V):.3g} V" if last else "")))]
        level = self._levels[seg.level]
        level.completed += 1
        level.last_capacity_mAh_cm2 = areal_mAh_cm2(seg.charge_Ah, self.area_cm2)
        if self._estimated_floor_ohm is None and self._given_floor_ohm is None and seg.tested:
            self._estimated_floor_ohm = median(s.resistance_ohm for s in seg.tested)
            log.info("ohmic floor estimated from the first segment: R_floor = %.4g Ω", self._estimated_floor_ohm)
        self._noise.end_segment()
        for check in (self._step_inconsistency, _growth):
            f = check(seg)
            if f is not None:
                return [self._record(f)]
        return []

    def _passed(self, index: int, failure_level: int | None) -> bool:
        level = self._levels[index]
        before_failure = failure_level is None or index < failure_level
        return before_failure and level.completed > 0 and level.completed == level.half_cycles

    # -- checks

    def _check(self, s: Sample, seg: _Segment) -> list[Finding]:
        if abs(s.voltage_V) >= self.voltage_limit_V * (1 - LIMIT_TOLERANCE):
            return [self._record(finding_at(s, "contact_loss", "E", (
                f"|V| = {abs(s.voltage_V):.3g} V reached the {self.voltage_limit_V:g} V limit"), ends_test=True,
                confirmed_t_s=s.t_s))]
        if s.t_s - seg.start_s < self.settle_s:
            return []
        collapse = self._collapse.add(s, self.ohmic_floor_ohm)
        if collapse is not None:
            self._noise.quiet()  # one event per segment: its soft short is reported
            return [self._record(collapse)]
        if self._collapse.pending:
            return []
        # outside collapses: the samples the medians (floor, C, growth) and the noise detector are built on
        seg.tested.append(s)
        self._levels[seg.level].tested.append(s)
        noise = self._noise.add(s)
        return [self._record(noise)] if noise is not None else []

    def _step_inconsistency(self, seg: _Segment) -> Finding | None:
        """C: this level's median |V| is below half the previous level's although |j| rose."""
        if seg.level == 0:
            return None
        previous, level = self._levels[seg.level - 1], self._levels[seg.level]
        rose = level.density_mA_cm2 > previous.density_mA_cm2 * (1 + self.current_tolerance)
        if previous.median_abs_voltage_V is None or not level.tested or not rose:
            return None
        line_V = STEP_FRACTION * previous.median_abs_voltage_V
        median_V = median(abs(s.voltage_V) for s in level.tested)
        if median_V >= line_V:
            return None
        onset = next(s for s in level.tested if abs(s.voltage_V) < line_V)
        return finding_at(onset, "hard_short", "C", (
            f"median |V| = {median_V * 1e3:.3g} mV at {level.density_mA_cm2:.4g} mA/cm² is below half of "
            f"{previous.median_abs_voltage_V * 1e3:.3g} mV at {previous.density_mA_cm2:.4g} mA/cm² although |j| rose"
            + (" (below the ohmic floor too)" if self._below_floor(onset) else "")), ends_test=True,
            confirmed_t_s=seg.last_s)

    def _below_floor(self, s: Sample) -> bool:
        floor = self.ohmic_floor_ohm
        return floor is not None and s.resistance_ohm < 0.5 * floor

    def _limit_without_samples(self, reason: str) -> Finding:
        """A segment that hit the voltage limit before any sample with current was recorded (e.g. contact lost
        completely): its current density is unknown, so the CCD is reported as None with this contact loss."""
        segment, cycle = self._last_labels
        t_s = self._last_t_s or 0.0
        return Finding(kind="contact_loss", t_s=t_s, confirmed_t_s=t_s, current_density_mA_cm2=None, cycle=cycle,
                       segment=segment, criterion="E", ends_test=True, cumulative_capacity_mAh_cm2=self._cac(),
                       detail=f"segment {segment} ended at its voltage limit ({reason}) before any sample with "
                              "current was recorded; its current density is unknown")

    def _record(self, f: Finding) -> Finding:
        self._findings.append(f)
        if f.ends_test and self._failure is None:
            self._failure = f
            self._failure_level = self._segment_levels.get(f.segment)
            log.info("cell failed: %s (criterion %s) at %.0f s: %s", f.kind, f.criterion, f.t_s, f.detail)
        else:
            log.info("%s (criterion %s) at %.0f s: %s", f.kind, f.criterion, f.t_s, f.detail)
        return f

    def _failing_capacity(self, failure_level: int | None) -> float | None:
        """Capacity per half-cycle at the failing level: achieved in its last completed half-cycle, else planned,
        from the last two earlier levels that completed one: their capacity when their capacities agree better
        than their durations do (fixed-capacity protocol), else |j_fail| times the last one's duration (fixed-time
        protocol, also assumed when only one earlier level completed a half-cycle)."""
        if failure_level is None:
            return None
        failing = self._levels[failure_level]
        if failing.last_capacity_mAh_cm2 is not None:
            return failing.last_capacity_mAh_cm2
        done = [lv for lv in self._levels[:failure_level] if lv.last_capacity_mAh_cm2]
        if not done:
            return None
        last = done[-1]
        assert last.last_capacity_mAh_cm2 is not None
        if len(done) >= 2 and _fixed_capacity(done[-2], last):
            return last.last_capacity_mAh_cm2
        return failing.density_mA_cm2 * last.last_capacity_mAh_cm2 / last.density_mA_cm2

    def _cac(self) -> float:
        return areal_mAh_cm2(self._charge_Ah, self.area_cm2) / 2.0


def analyze_ccd(df: pd.DataFrame, area_cm2: float, **options: float | None) -> CCDResult:
    """The CCD result of a stepped test recorded as a BDF time series, computed by :class:`CCDAnalyzer` with
    ``options`` (``voltage_limit_V``, ``ohmic_floor_ohm``, ...) through :func:`~labctl.analysis.replay.replay`.

    Segments come from ``Step Count / 1`` when present, else from changes of the current (sign, rest, or |I|
    beyond ``current_tolerance``); cycles from ``Cycle Count / 1`` when present, else one per pair of
    half-cycles, counted from the sign of the first one. Why a segment ended is unknown in a file, so contact
    loss is detected by |V| reaching ``voltage_limit_V``. The last segment in the file counts as completed.
    """
    return replay(df, CCDAnalyzer(area_cm2, **options))  # type: ignore[arg-type]


def _fixed_capacity(a: _Level, b: _Level) -> bool:
    """Two levels' half-cycles differ less in capacity than in duration (duration = capacity / |j|)."""
    assert a.last_capacity_mAh_cm2 and b.last_capacity_mAh_cm2
    capacity_ratio = b.last_capacity_mAh_cm2 / a.last_capacity_mAh_cm2
    duration_ratio = capacity_ratio * a.density_mA_cm2 / b.density_mA_cm2
    return abs(math.log(capacity_ratio)) < abs(math.log(duration_ratio))


def _growth(seg: _Segment) -> Finding | None:
    """E as an event: |V| grew by > 50 % from its lowest point within the segment and was still rising at its end
    (median of the last tenth, at least 3 samples, above the tenth before it)."""
    volts = [abs(s.voltage_V) for s in seg.tested]
    k = max(3, len(volts) // 10)
    if len(volts) < 2 * k:
        return None
    smooth = [median(volts[i:i + 3]) for i in range(len(volts) - 2)]
    lowest, end, before = min(smooth), median(volts[-k:]), median(volts[-2 * k:-k])
    if lowest <= 0 or end <= (1 + GROWTH_FRACTION) * lowest or end <= before:
        return None
    onset = seg.tested[smooth.index(lowest)]
    return finding_at(onset, "contact_loss", "E", (
        f"|V| grew from {lowest * 1e3:.3g} mV to {end * 1e3:.3g} mV within the half-cycle and was still rising "
        "at its end: a sign of voids/contact loss (the test goes on)"), ends_test=False, confirmed_t_s=seg.last_s)


def _capacity(x: float | None) -> float | None:
    return None if x is None else sig(x, CAPACITY_DIGITS)


def brief(result: dict) -> str:
    """A few words for run lists: 'CCD 0.6 mA/cm² (hard short)' or 'no failure to 3 mA/cm²'."""
    if result.get("failure_mode") and result.get("ccd_mA_cm2") is None:
        return f"{result['failure_mode'].replace('_', ' ')} before any current flowed"
    if result.get("ccd_mA_cm2") is None:
        last = result.get("j_last_pass_mA_cm2")
        return f"no failure to {last} mA/cm²" if last is not None else "no failure; no step completed"
    return f"CCD {result['ccd_mA_cm2']:g} mA/cm² ({result['failure_mode'].replace('_', ' ')})"


def headline(result: dict) -> str:
    """One line for people: 'CCD = 0.6 mA/cm² (hard short) …' or that the cell did not fail."""
    if result.get("failure_mode") and result.get("ccd_mA_cm2") is None:
        return f"Failed by {result['failure_mode'].replace('_', ' ')} before any current was measured"
    if result.get("ccd_mA_cm2") is None:
        last = result.get("j_last_pass_mA_cm2")
        if last is None:
            return "No failure, and no step completed"
        return f"No failure: the cell passed every step it ran (the last at {last} mA/cm²)" + _soft_shorts(result)
    capacity = result["capacity_per_half_cycle_mAh_cm2"]
    last = result["j_last_pass_mA_cm2"]
    return (f"CCD = {result['ccd_mA_cm2']:g} mA/cm² ({result['failure_mode'].replace('_', ' ')}) "
            + (f"at {capacity:.3g} mAh/cm² per half-cycle" if capacity is not None
               else "(capacity per half-cycle unknown: no half-cycle completed)")
            + (f"; last passed {last:g} mA/cm²" if last is not None else "; no level passed")
            + f"; {result['capacity_to_failure_mAh_cm2']:.3g} mAh/cm² plated to failure "
            f"({result['cumulative_capacity_mAh_cm2']:.3g} mAh/cm² in the whole test); failed at "
            f"{result['failure_time_h']:.2f} h (confirmed at {result['failure_confirmed_time_h']:.2f} h), "
            f"cycle {result['failure_cycle']}" + _soft_shorts(result))


def _soft_shorts(result: dict) -> str:
    """'; 2 soft-short events, the first at 0.4 mA/cm²', or nothing."""
    events = result.get("soft_shorts") or []
    if not events:
        return ""
    return (f"; {len(events)} soft-short event{'s' if len(events) > 1 else ''}, the first at "
            f"{result['soft_short_onset_mA_cm2']:g} mA/cm²")
