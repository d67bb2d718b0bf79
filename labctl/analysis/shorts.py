"""Per-sample short-circuit detectors for a symmetric Li|SE|Li cell (science.md §1.3, criteria A, B, D).

Each detector sees the *tested* samples of constant-current segments (rest and the settle time after a current
change already removed) and works on the apparent resistance r = |V|/|I|: at constant current this is |V| up to a
constant, and across a current change it stays comparable, so a collapse that begins at the end of one half-cycle
is still followed into the next. All times are in seconds of test time, never in sample counts, except the rule
that a collapse must span at least ``MIN_SAMPLES`` consecutive samples: one or two odd readings are a glitch, not
a short, at any sampling interval.

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
FLOOR_FRACTION = 0.5  # A: collapsed while |V| < 0.5·|I|·R_floor
DROP_FRACTION = 0.5  # B: collapsed when |V| falls to <= 50 % of its running median ...
DROP_WITHIN_S = 10.0  # ... within 10 s (or between two samples, when they are further apart)
MEDIAN_WINDOW_S = 30.0  # the running median spans 30 s, and at least MIN_SAMPLES samples
RECOVER_FRACTION = 0.8  # a collapse ends when |V| is back above 80 % of that median (or above the floor line)
CONFIRM_S = 60.0  # hard short: still collapsed after its half-cycle ended, for 60 s of the following current
NOISE_WINDOW_S = 60.0  # D: detrended scatter over 60 s, and at least NOISE_MIN_SAMPLES samples
NOISE_MIN_SAMPLES = 6
NOISE_FACTOR = 5.0  # D: scatter > 5 x the first segment's ...
NOISE_FLOOR = 0.005  # ... which is taken as at least 0.5 % of |V| (instrument resolution)
SPIKE_FRACTION = 0.2  # D: together with a dip > 20 % below the trend
DESPIKE_SAMPLES = 3  # D sees the running median of 3 samples: a lone outlier is not noise


@dataclass(frozen=True)
class Finding:
    """Something the CCD detector found in the data.

    ``kind`` is ``hard_short`` or ``contact_loss`` (when ``ends_test``: the cell has failed and the procedure
    stops) or an event that does not end the test: ``soft_short``, ``noise``, or ``contact_loss`` with
    ``ends_test`` false (voltage growth within a half-cycle: an early sign of voids). ``t_s`` is the test time at
    which the condition began (onset); ``confirmed_t_s`` the test time at which the data settled it (a hard short
    confirmed, a soft short recovered; the onset itself for a voltage limit reached). ``current_density_mA_cm2``
    is the signed current density of the onset's segment (positive strips the working electrode; None only if no
    sample with current was recorded in it), ``criterion`` the science.md §1.3 letter,
    ``cumulative_capacity_mAh_cm2`` the lithium plated per electrode until the onset, ``depth_fraction`` how far
    |V| collapsed (0.6 = to 40 % of its running median), ``duration_s`` how long a collapse lasted.
    """

    kind: FindingKind
    t_s: float
    confirmed_t_s: float
    current_density_mA_cm2: float | None
    cycle: int
    segment: int
    criterion: Criterion
    detail: str
    ends_test: bool
    cumulative_capacity_mAh_cm2: float
    depth_fraction: float | None = None
    duration_s: float | None = None

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
               confirmed_t_s: float, depth_fraction: float | None = None,
               duration_s: float | None = None) -> Finding:
    """A finding whose onset is sample ``s``."""
    return Finding(kind=kind, t_s=s.t_s, confirmed_t_s=confirmed_t_s, current_density_mA_cm2=s.density_mA_cm2,
                   cycle=s.cycle, segment=s.segment, criterion=criterion, detail=detail, ends_test=ends_test,
                   cumulative_capacity_mAh_cm2=s.cumulative_capacity_mAh_cm2, depth_fraction=depth_fraction,
                   duration_s=duration_s)


class Debounce:
    """A condition that counts only once it has held at ``min_samples`` consecutive samples spanning at least
    ``min_span_s``: one or two odd readings are a glitch, at any sampling interval. :meth:`update` gives the onset
    (time in s and the value then) once it counts; a sample where it does not hold starts over."""

    def __init__(self, min_samples: int = MIN_SAMPLES, min_span_s: float = 0.0) -> None:
        self.min_samples, self.min_span_s = min_samples, min_span_s
        self._run: tuple[float, float, int] | None = None  # (onset s, onset value, samples)

    def update(self, t_s: float, holds: bool, value: float) -> tuple[float, float] | None:
        if not holds:
            self._run = None
            return None
        onset_s, onset_value, count = self._run or (t_s, value, 0)
        self._run = (onset_s, onset_value, count + 1)
        if count + 1 >= self.min_samples and t_s - onset_s >= self.min_span_s:
            return onset_s, onset_value
        return None


@dataclass
class _Open:
    """A collapse being followed."""

    onset: Sample
    baseline_ohm: float | None  # the running median before it (None: found by A before a median existed)
    below_floor: bool  # |V| went below the ohmic floor line at some sample (criterion A)
    lowest_ohm: float
    last: Sample
    count: int = 1
    later: Sample | None = None  # its first sample after the half-cycle it began in had ended
    later_count: int = 0

    def follow(self, s: Sample, below_floor: bool) -> None:
        self.count += 1
        self.last = s
        self.lowest_ohm = min(self.lowest_ohm, s.resistance_ohm)
        self.below_floor = self.below_floor or below_floor
        if s.segment != self.onset.segment:
            self.later = self.later or s
            self.later_count += 1

    def recovery_ohm(self, floor_ohm: float | None) -> float:
        """r at or above which the collapse has ended."""
        if self.baseline_ohm is not None:
            return RECOVER_FRACTION * self.baseline_ohm
        assert floor_ohm is not None  # found by A, which needs a floor
        return FLOOR_FRACTION * floor_ohm

    def depth(self, floor_ohm: float | None) -> float:
        """How far r fell: relative to the running median, else to R_floor."""
        reference = self.baseline_ohm if self.baseline_ohm is not None else floor_ohm
        return 1.0 - self.lowest_ohm / reference if reference else 1.0

    def confirmed(self, s: Sample) -> bool:
        return self.later is not None and self.later_count >= MIN_SAMPLES and s.t_s - self.later.t_s >= CONFIRM_S


class Collapse:
    """A and B: a collapse of |V| at constant current, followed until it recovers or is confirmed as a hard short.

    A collapse begins at a sample with |V| < 0.5·|I|·R_floor (A), or with |V| <= 50 % of its running 30-s median
    within 10 s at unchanged current (B; with samples more than 10 s apart a collapse between two samples counts
    as sudden, as fast as the data can show). The running median takes at least 3 samples and only samples
    outside collapses, so one high reading cannot make the next normal one look like a drop, and a soft short
    does not lower the reference for the next one.

    - It *recovers* at the first sample back at or above 80 % of that median (above the floor line for a collapse
      that A found before a median existed). After >= 3 low samples that is a soft-short event with its depth and
      duration, however long it lasted within its half-cycle: the test goes on. Fewer low samples are a glitch
      and are ignored.
    - It is a *hard short* once it has persisted through the end of the half-cycle it began in and then for 60 s
      (and >= 3 samples) of the following current: with the current reversed the cell still shows V ≈ I·R_short,
      flat and ohmic, so no filament is dissolving. It is reported at its onset, with the confirmation time;
      criterion A if |V| went below the ohmic floor line, else B.
    - When the data ends while it is still collapsed, :meth:`at_end` calls it a hard short if it had lasted 60 s
      (and >= 3 samples): it never recovered in the data there is.
    """

    def __init__(self) -> None:
        self._recent: deque[tuple[float, float]] = deque()  # (t_s, r) of this segment, outside collapses
        self._medians: deque[tuple[float, float]] = deque()  # (t_s, running median of r) once it has 3 samples
        self._open: _Open | None = None

    @property
    def pending(self) -> bool:
        """A collapse is being followed and has not yet been judged."""
        return self._open is not None

    def new_segment(self) -> None:
        self._recent.clear()
        self._medians.clear()

    def add(self, s: Sample, floor_ohm: float | None) -> Finding | None:
        below = floor_ohm is not None and s.resistance_ohm < FLOOR_FRACTION * floor_ohm
        found = self._follow(s, below, floor_ohm) if self._open is not None else self._detect(s, below)
        if self._open is None:
            self._remember(s)
        return found

    def at_end(self, floor_ohm: float | None) -> Finding | None:
        """The data has ended: a collapse still open after CONFIRM_S (and MIN_SAMPLES samples) is a hard short,
        confirmed at its last sample. Nothing is changed, so more data may still follow."""
        c = self._open
        if c is None or c.count < MIN_SAMPLES or c.last.t_s - c.onset.t_s < CONFIRM_S:
            return None
        return self._hard(c, c.last, floor_ohm, "until the data ended")

    def _detect(self, s: Sample, below_floor: bool) -> None:
        references = [m for t, m in self._medians if t >= s.t_s - DROP_WITHIN_S]
        if not references and self._medians:
            references = [self._medians[-1][1]]  # samples further apart than 10 s: compare with the last one
        baseline = max(references) if references else None
        if below_floor or (baseline is not None and s.resistance_ohm <= DROP_FRACTION * baseline):
            self._open = _Open(onset=s, baseline_ohm=baseline, below_floor=below_floor, lowest_ohm=s.resistance_ohm,
                               last=s)

    def _follow(self, s: Sample, below_floor: bool, floor_ohm: float | None) -> Finding | None:
        c = self._open
        assert c is not None
        if s.resistance_ohm >= c.recovery_ohm(floor_ohm):
            self._open = None
            return self._soft(c, s, floor_ohm) if c.count >= MIN_SAMPLES else None  # else a glitch
        c.follow(s, below_floor)
        if not c.confirmed(s):
            return None
        self._open = None
        assert c.later is not None
        return self._hard(c, s, floor_ohm, f"through the end of its half-cycle and {s.t_s - c.later.t_s:.0f} s "
                          "of the following current")

    @staticmethod
    def _soft(c: _Open, s: Sample, floor_ohm: float | None) -> Finding:
        depth, duration = c.depth(floor_ohm), s.t_s - c.onset.t_s
        return finding_at(c.onset, "soft_short", "B", (
            f"|V|/|I| collapsed to {c.lowest_ohm:.3g} Ω ({100 * (1 - depth):.0f} % of its running median"
            f"{', below the ohmic floor' if c.below_floor else ''}) for {c.count} samples and recovered above "
            f"{c.recovery_ohm(floor_ohm):.3g} Ω after {duration:.0f} s, at {s.t_s:.0f} s"),
            ends_test=False, confirmed_t_s=s.t_s, depth_fraction=depth, duration_s=duration)

    @staticmethod
    def _hard(c: _Open, s: Sample, floor_ohm: float | None, how: str) -> Finding:
        floor = (f", below the ohmic floor 0.5·R_floor = {FLOOR_FRACTION * floor_ohm:.3g} Ω"
                 if c.below_floor and floor_ohm is not None else "")
        return finding_at(c.onset, "hard_short", "A" if c.below_floor else "B", (
            f"|V|/|I| collapsed to {c.lowest_ohm:.3g} Ω{floor} and stayed collapsed {how} ({c.count} samples "
            f"over {s.t_s - c.onset.t_s:.0f} s, V ≈ I·R_short); confirmed at {s.t_s:.0f} s"),
            ends_test=True, confirmed_t_s=s.t_s, depth_fraction=c.depth(floor_ohm), duration_s=s.t_s - c.onset.t_s)

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

    It works on the running median of 3 consecutive samples of |V|/|I| (each attributed to the middle one), so a
    lone outlier, a dropout or an overshoot of one sample, is neither scatter nor a spike. The scatter is the
    standard deviation of that series about a straight line fitted over the last 60 s (and at least 6 samples),
    relative to its mean. The baseline is the median of that figure over the first completed segment, at least
    0.5 %. An event needs the scatter above 5 x the baseline and a sample more than 20 % below the line; at most one
    event per segment.
    """

    def __init__(self) -> None:
        self._raw: deque[Sample] = deque(maxlen=DESPIKE_SAMPLES)
        self._window = _LineFit()
        self._segment_scatter: list[float] = []
        self._baseline: float | None = None
        self._quiet = False

    def new_segment(self) -> None:
        self._raw.clear()
        self._window = _LineFit()
        self._segment_scatter.clear()
        self._quiet = False

    def quiet(self) -> None:
        """No more events in this segment (a collapse is being followed or was reported)."""
        self._quiet = True

    def end_segment(self) -> None:
        """A segment completed: the first one with enough samples sets the baseline."""
        if self._baseline is None and self._segment_scatter:
            self._baseline = max(median(self._segment_scatter), NOISE_FLOOR)

    def add(self, s: Sample) -> Finding | None:
        self._raw.append(s)
        if len(self._raw) < DESPIKE_SAMPLES:
            return None
        window, middle = self._window, self._raw[DESPIKE_SAMPLES // 2]
        window.push(middle, median(x.resistance_ohm for x in self._raw))
        while len(window.points) > NOISE_MIN_SAMPLES and window.points[0][0].t_s < middle.t_s - NOISE_WINDOW_S:
            window.pop()
        if len(window.points) < NOISE_MIN_SAMPLES:
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
        span_s = middle.t_s - window.points[0][0].t_s
        return finding_at(dip, "noise", "D", (
            f"|V| scatters by {100 * scatter:.1f} % about its trend over {span_s:.0f} s "
            f"({scatter / self._baseline:.0f} x the first segment's) with a dip {100 * -deepest:.0f} % below it"),
            ends_test=False, confirmed_t_s=s.t_s)


class _LineFit:
    """Least-squares line of r against t over a sliding window, kept as running sums (O(1) per sample).
    t and r are taken relative to the window's first point, which keeps the sums well conditioned."""

    def __init__(self) -> None:
        self.points: deque[tuple[Sample, float]] = deque()  # (sample, r attributed to it)
        self._origin = (0.0, 0.0)
        self._n = self._st = self._sr = self._stt = self._str = self._srr = 0.0

    def _shifted(self, s: Sample, r: float) -> tuple[float, float]:
        return s.t_s - self._origin[0], r - self._origin[1]

    def _update(self, s: Sample, r_ohm: float, sign: float) -> None:
        t, r = self._shifted(s, r_ohm)
        self._n += sign
        self._st += sign * t
        self._sr += sign * r
        self._stt += sign * t * t
        self._str += sign * t * r
        self._srr += sign * r * r

    def push(self, s: Sample, r_ohm: float) -> None:
        if not self.points:
            self._origin = (s.t_s, r_ohm)
        self.points.append((s, r_ohm))
        self._update(s, r_ohm, 1.0)

    def pop(self) -> None:
        self._update(*self.points.popleft(), -1.0)

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
        residual, sample = min(((r - intercept - slope * t, s) for s, r_ohm in self.points
                                for t, r in [self._shifted(s, r_ohm)]), key=lambda pair: pair[0])
        return (residual / mean if mean > 0 else 0.0), sample
