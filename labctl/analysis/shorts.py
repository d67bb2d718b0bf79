"""Per-sample short-circuit detectors for a symmetric Li|SE|Li cell (science.md §1.3, criteria A, B, D).

Each detector sees the *tested* samples of constant-current segments (rest and the settle time after a current
change already removed) and works on the apparent resistance r = |V|/|I|: at constant current this is |V| up to a
constant, and across a current change it stays comparable, so a short that begins at the end of one half-cycle is
still followed into the next. All times are in seconds of test time, never in sample counts, except the rule that
a collapse must span at least ``MIN_SAMPLES`` consecutive samples: one or two odd readings are a glitch, not a
short, at any sampling interval.

The orchestration (segments, current levels, criteria C and E, the result) is in :mod:`labctl.analysis.ccd`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from statistics import median
from typing import Literal

FindingKind = Literal["hard_short", "soft_short", "contact_loss", "noise"]
Criterion = Literal["A", "B", "C", "D", "E"]

MIN_SAMPLES = 3  # a collapse seen in fewer consecutive samples is a glitch
FLOOR_FRACTION = 0.5  # A: short if |V| < 0.5·|I|·R_floor ...
FLOOR_MIN_S = 5.0  # ... for >= 3 samples and >= 5 s
DROP_FRACTION = 0.5  # B: |V| falls to <= 50 % of its running median ...
DROP_WITHIN_S = 10.0  # ... within 10 s (or between two samples, when they are further apart)
MEDIAN_WINDOW_S = 30.0  # the running median spans 30 s, and at least MIN_SAMPLES samples
RECOVER_FRACTION = 0.8  # B: back above 80 % of that median ...
RECOVER_WITHIN_S = 60.0  # ... within 60 s, or it is a hard short
NOISE_WINDOW_S = 60.0  # D: detrended scatter over 60 s, and at least NOISE_MIN_SAMPLES samples
NOISE_MIN_SAMPLES = 6
NOISE_FACTOR = 5.0  # D: scatter > 5 x the first segment's ...
NOISE_FLOOR = 0.005  # ... which is taken as at least 0.5 % of |V| (instrument resolution)
SPIKE_FRACTION = 0.2  # D: together with a dip > 20 % below the trend


@dataclass(frozen=True)
class Finding:
    """Something the CCD detector found in the data.

    ``kind`` is ``hard_short`` or ``contact_loss`` (when ``ends_test``: the cell has failed and the procedure
    stops) or an event that does not end the test: ``soft_short``, ``noise``, or ``contact_loss`` with
    ``ends_test`` false (voltage growth within a half-cycle: an early sign of voids). ``t_s`` is the test time at
    which the condition began (onset), ``current_density_mA_cm2`` the signed current density of the segment
    (positive strips the working electrode; None only if no sample with current was recorded in it),
    ``criterion`` the science.md §1.3 letter, ``cumulative_capacity_mAh_cm2`` the lithium plated per electrode
    until then, ``depth_fraction`` how far |V| collapsed (soft shorts: 0.6 = to 40 % of its median).
    """

    kind: FindingKind
    t_s: float
    current_density_mA_cm2: float | None
    cycle: int
    segment: int
    criterion: Criterion
    detail: str
    ends_test: bool
    cumulative_capacity_mAh_cm2: float
    depth_fraction: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Sample:
    """One tested sample of a constant-current segment, as the detectors see it."""

    t_s: float
    voltage_V: float
    current_A: float
    density_mA_cm2: float  # signed, of its segment
    segment: int
    cycle: int
    cumulative_capacity_mAh_cm2: float
    resistance_ohm: float = field(init=False)  # apparent resistance |V|/|I|

    def __post_init__(self) -> None:
        object.__setattr__(self, "resistance_ohm", abs(self.voltage_V) / abs(self.current_A))


def finding_at(s: Sample, kind: FindingKind, criterion: Criterion, detail: str, *, ends_test: bool,
               depth_fraction: float | None = None) -> Finding:
    """A finding whose onset is sample ``s``."""
    return Finding(kind=kind, t_s=s.t_s, current_density_mA_cm2=s.density_mA_cm2, cycle=s.cycle,
                   segment=s.segment, criterion=criterion, detail=detail, ends_test=ends_test,
                   cumulative_capacity_mAh_cm2=s.cumulative_capacity_mAh_cm2, depth_fraction=depth_fraction)


class BelowFloor:
    """A: |V| < 0.5·|I|·R_floor for >= 3 consecutive tested samples spanning >= 5 s is a hard short.

    An intact cell cannot show less than the ionic IR drop across its electrolyte; below half of it, current is
    flowing electronically. The run of low samples is not broken by a segment change (r = |V|/|I| is comparable
    across currents), so the onset is the first low sample even when the short began at the end of a half-cycle.
    A dip below the floor that lasts this long is a hard short even if it later recovers.
    """

    def __init__(self) -> None:
        self._onset: Sample | None = None
        self._count = 0

    def add(self, s: Sample, floor_ohm: float | None) -> Finding | None:
        if floor_ohm is None or s.resistance_ohm >= FLOOR_FRACTION * floor_ohm:
            self._onset, self._count = None, 0
            return None
        if self._onset is None:
            self._onset = s
        self._count += 1
        span_s = s.t_s - self._onset.t_s
        if self._count < MIN_SAMPLES or span_s < FLOOR_MIN_S:
            return None
        floor_mV = FLOOR_FRACTION * abs(s.current_A) * floor_ohm * 1e3
        return finding_at(self._onset, "hard_short", "A", (
            f"|V| = {abs(s.voltage_V) * 1e3:.3g} mV is below the ohmic floor 0.5·|I|·R_floor = {floor_mV:.3g} mV "
            f"(R_floor = {floor_ohm:.4g} Ω) for {self._count} samples over {span_s:.0f} s; "
            f"confirmed at {s.t_s:.0f} s"), ends_test=True)


@dataclass
class _Drop:
    onset: Sample
    baseline_ohm: float
    count: int = 1
    lowest_ohm: float = math.inf


class SuddenDrop:
    """B: |V| collapses to <= 50 % of its running 30-s median within 10 s at unchanged current.

    If it stays below 80 % of that median for 60 s (and for >= 3 samples) it is a hard short; if it comes back
    sooner after >= 3 low samples it is a soft-short event with its depth; fewer low samples are a glitch and are
    ignored. The drop must happen inside one segment (unchanged current); its recovery is followed across segment
    changes in terms of |V|/|I|. With samples more than 10 s apart a collapse between two samples counts as
    sudden: that is as fast as the data can show. The running median takes at least 3 samples, so one high
    reading cannot make the next normal one look like a drop.
    """

    def __init__(self) -> None:
        self._recent: deque[tuple[float, float]] = deque()  # (t_s, r) of this segment
        self._medians: deque[tuple[float, float]] = deque()  # (t_s, running median of r) once it has 3 samples
        self._drop: _Drop | None = None

    @property
    def pending(self) -> bool:
        """A collapse is being followed and has not yet been judged."""
        return self._drop is not None

    def new_segment(self) -> None:
        self._recent.clear()
        self._medians.clear()

    def add(self, s: Sample) -> Finding | None:
        found = self._follow(s) if self._drop is not None else self._detect(s)
        self._remember(s)
        return found

    def _detect(self, s: Sample) -> None:
        references = [m for t, m in self._medians if t >= s.t_s - DROP_WITHIN_S]
        if not references and self._medians:
            references = [self._medians[-1][1]]  # samples further apart than 10 s: compare with the last one
        if references and s.resistance_ohm <= DROP_FRACTION * max(references):
            self._drop = _Drop(onset=s, baseline_ohm=max(references), lowest_ohm=s.resistance_ohm)

    def _follow(self, s: Sample) -> Finding | None:
        drop = self._drop
        assert drop is not None
        depth = 1.0 - drop.lowest_ohm / drop.baseline_ohm
        if s.resistance_ohm >= RECOVER_FRACTION * drop.baseline_ohm:
            self._drop = None
            if drop.count < MIN_SAMPLES:
                return None  # a glitch
            return finding_at(drop.onset, "soft_short", "B", (
                f"|V| collapsed to {100 * (1 - depth):.0f} % of its running median for {drop.count} samples and "
                f"recovered above {100 * RECOVER_FRACTION:.0f} % at {s.t_s:.0f} s"),
                ends_test=False, depth_fraction=depth)
        drop.count += 1
        drop.lowest_ohm = min(drop.lowest_ohm, s.resistance_ohm)
        if drop.count < MIN_SAMPLES or s.t_s - drop.onset.t_s < RECOVER_WITHIN_S:
            return None
        self._drop = None
        depth = 1.0 - drop.lowest_ohm / drop.baseline_ohm
        return finding_at(drop.onset, "hard_short", "B", (
            f"|V| collapsed to {100 * (1 - depth):.0f} % of its running median at unchanged current and did not "
            f"recover above {100 * RECOVER_FRACTION:.0f} % within {RECOVER_WITHIN_S:.0f} s "
            f"(confirmed at {s.t_s:.0f} s)"), ends_test=True, depth_fraction=depth)

    def _remember(self, s: Sample) -> None:
        self._recent.append((s.t_s, s.resistance_ohm))
        while len(self._recent) > MIN_SAMPLES and self._recent[0][0] < s.t_s - MEDIAN_WINDOW_S:
            self._recent.popleft()
        if len(self._recent) >= MIN_SAMPLES:
            self._medians.append((s.t_s, median(r for _, r in self._recent)))
        while len(self._medians) > 1 and self._medians[0][0] < s.t_s - DROP_WITHIN_S:
            self._medians.popleft()


class VoltageNoise:
    """D: strong scatter of |V| with negative spikes, the signature of a soft short (an event, never a failure).

    The scatter is the standard deviation of |V|/|I| about a straight line fitted over the last 60 s (and at
    least 6 samples), relative to its mean. The baseline is the median of that figure over the first completed
    segment, at least 0.5 %. An event needs the scatter above 5 x the baseline and a sample more than 20 % below
    the line; at most one event per segment.
    """

    def __init__(self) -> None:
        self._window = _LineFit()
        self._segment_scatter: list[float] = []
        self._baseline: float | None = None
        self._quiet = False

    def new_segment(self) -> None:
        self._window = _LineFit()
        self._segment_scatter.clear()
        self._quiet = False

    def quiet(self) -> None:
        """No more events in this segment (another detector already reported its soft short)."""
        self._quiet = True

    def end_segment(self) -> None:
        """A segment completed: the first one with enough samples sets the baseline."""
        if self._baseline is None and self._segment_scatter:
            self._baseline = max(median(self._segment_scatter), NOISE_FLOOR)

    def add(self, s: Sample) -> Finding | None:
        window = self._window
        window.push(s)
        while len(window.samples) > NOISE_MIN_SAMPLES and window.samples[0].t_s < s.t_s - NOISE_WINDOW_S:
            window.pop()
        if len(window.samples) < NOISE_MIN_SAMPLES:
            return None
        scatter = window.scatter()
        if self._baseline is None:
            self._segment_scatter.append(scatter)
            return None
        if self._quiet or scatter <= NOISE_FACTOR * self._baseline:
            return None
        deepest, dip = window.deepest()
        if deepest >= -SPIKE_FRACTION:
            return None
        self._quiet = True
        return finding_at(dip, "noise", "D", (
            f"|V| scatters by {100 * scatter:.1f} % about its trend over {s.t_s - window.samples[0].t_s:.0f} s "
            f"({scatter / self._baseline:.0f} x the first segment's) with a dip {100 * -deepest:.0f} % below it"),
            ends_test=False)


class _LineFit:
    """Least-squares line of r against t over a sliding window, kept as running sums (O(1) per sample).
    t and r are taken relative to the window's first sample, which keeps the sums well conditioned."""

    def __init__(self) -> None:
        self.samples: deque[Sample] = deque()
        self._origin = (0.0, 0.0)
        self._n = self._st = self._sr = self._stt = self._str = self._srr = 0.0

    def _shifted(self, s: Sample) -> tuple[float, float]:
        return s.t_s - self._origin[0], s.resistance_ohm - self._origin[1]

    def _update(self, s: Sample, sign: float) -> None:
        t, r = self._shifted(s)
        self._n += sign
        self._st += sign * t
        self._sr += sign * r
        self._stt += sign * t * t
        self._str += sign * t * r
        self._srr += sign * r * r

    def push(self, s: Sample) -> None:
        if not self.samples:
            self._origin = (s.t_s, s.resistance_ohm)
        self.samples.append(s)
        self._update(s, 1.0)

    def pop(self) -> None:
        self._update(self.samples.popleft(), -1.0)

    def _line(self) -> tuple[float, float, float]:
        """Mean r (absolute), slope, intercept (shifted)."""
        n = self._n
        s_tt = self._stt - self._st ** 2 / n
        slope = (self._str - self._st * self._sr / n) / s_tt if s_tt > 0 else 0.0
        return self._sr / n + self._origin[1], slope, (self._sr - slope * self._st) / n

    def scatter(self) -> float:
        """Residual standard deviation relative to the mean of r."""
        n = self._n
        mean, slope, _ = self._line()
        s_rr = self._srr - self._sr ** 2 / n
        s_tr = self._str - self._st * self._sr / n
        residual = max(s_rr - slope * s_tr, 0.0)
        return math.sqrt(residual / (n - 2)) / mean if mean > 0 else 0.0

    def deepest(self) -> tuple[float, Sample]:
        """The most negative residual relative to the mean of r, and its sample."""
        mean, slope, intercept = self._line()
        residual, sample = min(((r - intercept - slope * t, s) for s in self.samples
                                for t, r in [self._shifted(s)]), key=lambda pair: pair[0])
        return (residual / mean if mean > 0 else 0.0), sample
