"""Per-cycle curves of a cycling test, as papers plot them: capacity and CE against cycle with retention, voltage
against capacity for chosen cycles, and incremental capacity dQ/dV. Plain arrays in, arrays out; no Qt.

Conventions (those of :mod:`labctl.analysis.segments` and :mod:`labctl.analysis.ce`):

- Sign (BDF): positive current charges a full cell and strips the working electrode of a half cell.
- Basis: capacities are per gram of cathode active material (mAh/g) when its mass is known, else per electrode
  area (mAh/cm²), else absolute (mAh).
- Per-cycle capacities come from the CE analysis' table when the run has one (the numbers of its result: charge and
  discharge of a full cell, plating and stripping of a half cell, lithiation and delithiation of an activation);
  otherwise (imported data) from the samples: each cycle's charge passed under positive and under negative
  current. The direction of the test's first half-cycle is the one that stores charge (a full cell's charge, a half
  cell's plating), the other returns it: CE = returned / stored, retention = returned / returned at a reference
  cycle.
- Charge of a sample: the increase of the instrument's capacity counters over the interval before it when every
  row has them (a counter that falls was reset and counts from zero), else the charge rule of
  :class:`~labctl.analysis.segments.Charge` (trapezoids of |I| within a step), vectorised. A step's reading at rest
  closes its half-cycle and carries its last charge.
- Cycles: the ``Cycle Count`` labels (taken to be non-decreasing, as BDF writes them); without them, counted as
  :meth:`~labctl.analysis.segments.Split.cycles` counts them (a cycle opens with a half-cycle of the first
  half-cycle's sign that follows one of the other sign).
- A half-cycle curve: the rows of one cycle under current of one sign, in a run not interrupted by the other sign
  (rest in between does not split it), with the capacity passed since the run began. Rows at rest are left out
  (their relaxation is no part of the profile), except that a step's reading at rest ends the curve at the charge
  it carries, at the voltage of the last reading under current (the current was held until then).
- dQ/dV: the charge of each interval between two samples is spread evenly over the voltages it swept (Q(V) taken
  as linear between samples, so noise that makes V go back and forth puts charge where V was instead of giving
  negative or infinite slopes), summed into bins of ``bin_V`` (5 mV) and smoothed with a Gaussian of ``smooth_V``
  (10 mV) standard deviation; its integral over V is the charge between the curve's first and last points.
  Positive for a half-cycle under positive current (charge), negative under negative current (discharge), as
  papers draw them.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labctl.analysis.ce import VARIANTS
from labctl.analysis.segments import REST_DENSITY_mA_cm2
from labctl.bdf_columns import CHARGE_CAPACITY, CURRENT, CYCLE, DISCHARGE_CAPACITY, STEP, TIME, VOLTAGE
from labctl.units import SECONDS_PER_HOUR, current_A

CE_PROTOCOLS = frozenset(VARIANTS)  # a CE procedure's `test_started` event names its protocol
SAMPLE_CYCLED = frozenset({"import", "follow"})  # runs whose cycles only their samples tell (imported, followed data)
# analysis-table keys per kind of cell: (stored, returned) in mAh/cm² and what they are called
ROW_KEYS = (("charge_mAh_cm2", "discharge_mAh_cm2", ("charge", "discharge")),
            ("plate_mAh_cm2", "strip_mAh_cm2", ("plating", "stripping")),
            ("lithiation_mAh_cm2", "delithiation_mAh_cm2", ("lithiation", "delithiation")))  # fmt: skip
SAMPLE_NAMES = ("charge", "discharge")  # positive, negative current: names for data without an analysis table
REST_A_WITHOUT_AREA = 1e-6  # rest threshold when the electrode area is unknown (1 µA)
BIN_V = 0.005
SMOOTH_V = 0.010
DEFAULT_CHOICE = 5  # cycles shown by default: the first, the last and round numbers between


@dataclass(frozen=True)
class Basis:
    """What capacities are divided by: ``unit`` mAh/g (cathode mass known), mAh/cm² (area known) or mAh."""

    unit: str
    area_cm2: float | None
    mass_mg: float | None

    def from_Ah(self, q_Ah: Any) -> Any:
        if self.mass_mg:
            return q_Ah * 1e6 / self.mass_mg
        return q_Ah * 1000 / (self.area_cm2 or 1.0)

    def from_areal(self, q_mAh_cm2: Any) -> Any:
        """A capacity in mAh/cm² (an analysis table's) in this basis; needs the area."""
        return self.from_Ah(q_mAh_cm2 * (self.area_cm2 or math.nan) / 1000)

    @property
    def rest_A(self) -> float:
        """|I| below this is rest (segments' threshold, in A for this electrode)."""
        return current_A(REST_DENSITY_mA_cm2, self.area_cm2) if self.area_cm2 else REST_A_WITHOUT_AREA


def capacity_basis(area_cm2: float | None, cathode_mass_mg: float | None) -> Basis:
    if cathode_mass_mg and cathode_mass_mg > 0:
        return Basis("mAh/g", area_cm2, float(cathode_mass_mg))
    if area_cm2 and area_cm2 > 0:
        return Basis("mAh/cm²", float(area_cm2), None)
    return Basis("mAh", None, None)


def run_basis(metadata: Mapping[str, Any], result: Mapping[str, Any] | None) -> Basis:
    """The basis of a run: its cell's area and the cathode mass its analysis used, or before a result the full
    cell's ``cathode_mass`` parameter (0: none was given)."""
    area = (metadata.get("cell") or {}).get("area_cm2")
    limits = (result or {}).get("limits") or {}
    if "cathode_mass_mg" in limits:
        return capacity_basis(area, limits["cathode_mass_mg"])
    return capacity_basis(area, ((metadata.get("parameters") or {}).get("cathode_mass") or {}).get("value"))


@dataclass(frozen=True)
class Samples:
    """A cycling time series as arrays: test time (s), voltage (V), current (A) and, when the data have them, BDF
    step and cycle numbers and the instrument's cumulative capacity counters (Ah)."""

    t_s: np.ndarray
    voltage_V: np.ndarray
    current_A: np.ndarray
    step: np.ndarray | None = None
    cycle: np.ndarray | None = None
    charge_Ah: np.ndarray | None = None
    discharge_Ah: np.ndarray | None = None

    @classmethod
    def of_columns(cls, columns: Mapping[str, np.ndarray]) -> Samples | None:
        """From BDF-named columns; None without time, voltage and current."""
        if not all(name in columns for name in (TIME, VOLTAGE, CURRENT)):
            return None
        return cls(*(np.asarray(columns[n], float) if n in columns else None for n in
                     (TIME, VOLTAGE, CURRENT, STEP, CYCLE, CHARGE_CAPACITY, DISCHARGE_CAPACITY)))  # fmt: skip

    def __len__(self) -> int:
        return len(self.t_s)

    def cycles(self, rest_A: float) -> np.ndarray:
        """The cycle of every row: its label, or counted from the half-cycles' signs (module docstring)."""
        if self.cycle is not None and not np.isnan(self.cycle).all():
            return _filled(self.cycle)
        return _counted_cycles(_signs(self.current_A, rest_A), self.steps(rest_A))

    def steps(self, rest_A: float) -> np.ndarray:
        """Step numbers: the data's, or a new step wherever rest starts or ends or the current changes sign."""
        if self.step is not None and not np.isnan(self.step).any():
            return self.step
        sign = _signs(self.current_A, rest_A)
        return np.cumsum(np.r_[True, sign[1:] != sign[:-1]])

    def charges_Ah(self, rest_A: float) -> np.ndarray:
        """Charge passed in the interval before each row (Ah), signed by the half-cycle it belongs to."""
        if self.charge_Ah is not None and self.discharge_Ah is not None and np.isfinite(self.charge_Ah).all() \
                and np.isfinite(self.discharge_Ah).all():
            return _increments(self.charge_Ah) - _increments(self.discharge_Ah)
        return _integrated(self.t_s, self.current_A, self.steps(rest_A), rest_A)

    def rows(self, rows: slice) -> Samples:
        return Samples(*(None if a is None else a[rows] for a in (self.t_s, self.voltage_V, self.current_A,
                                                                   self.step, self.cycle, self.charge_Ah,
                                                                   self.discharge_Ah)))  # fmt: skip


def _signs(current_A: np.ndarray, rest_A: float) -> np.ndarray:
    """+1, -1 under current, 0 at rest (and where the current is missing)."""
    current_A = np.nan_to_num(current_A)
    return np.where(np.abs(current_A) < rest_A, 0, np.sign(current_A)).astype(int)


def _filled(cycle: np.ndarray) -> np.ndarray:
    """Cycle labels as ints, a missing label (NaN) taking the one before it (the first label before any)."""
    known = np.flatnonzero(~np.isnan(cycle))
    k = np.searchsorted(known, np.arange(len(cycle)), side="right") - 1
    return cycle[known[np.maximum(k, 0)]].astype(int)


def _counted_cycles(sign: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Split.cycles, vectorised: the first row under current of each step opens a half-cycle; a half-cycle of the
    first one's sign after one of the other sign opens a cycle. Rest before the first half-cycle is in cycle 1."""
    opens = np.flatnonzero((sign != 0) & np.r_[True, step[1:] != step[:-1]])
    if not opens.size:
        return np.ones(len(sign), int)
    s = sign[opens]
    cycle_of_open = 1 + np.cumsum(np.r_[False, (s[1:] == s[0]) & (s[:-1] != s[0])])
    k = np.searchsorted(opens, np.arange(len(sign)), side="right") - 1
    return cycle_of_open[np.maximum(k, 0)]


def _increments(counter: np.ndarray) -> np.ndarray:
    """Per-row increase of a cumulative counter; a fall is a reset, after which the counter counts from zero."""
    d = np.diff(counter, prepend=counter[:1])
    return np.where(d < 0, counter, d)


def _integrated(t_s: np.ndarray, current: np.ndarray, step: np.ndarray, rest_A: float) -> np.ndarray:
    """segments.Charge over all rows at once: the trapezoid of |I| between rows of a step under current, the current
    held before a step's first row and up to its reading at rest; signed by the current (a rest row by the one
    before it). A missing current passes nothing."""
    current = np.nan_to_num(current)
    now = np.where(np.abs(current) < rest_A, 0.0, current)
    before = np.where(step[1:] == step[:-1], now[:-1], 0.0)
    after = now[1:]
    mean = np.where(after == 0, np.abs(before),
                    np.where(before * after > 0, (np.abs(before) + np.abs(after)) / 2, np.abs(after)))  # fmt: skip
    sign = np.where(after != 0, np.sign(after), np.sign(before))
    return np.r_[0.0, sign * mean * np.diff(t_s) / SECONDS_PER_HOUR]


def _runs(direction: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, stop, sign) of each run of equal non-zero direction."""
    edges = np.flatnonzero(np.r_[True, direction[1:] != direction[:-1], True])
    return [(int(a), int(b), int(direction[a])) for a, b in itertools.pairwise(edges) if direction[a]]


def _carried(sign: np.ndarray) -> np.ndarray:
    """Each row's direction, a rest row taking the one of the last row under current (rest does not split)."""
    moving = sign != 0
    last = np.maximum.accumulate(np.where(moving, np.arange(len(sign)), -1))
    return np.where(last >= 0, sign[np.maximum(last, 0)], 0)


# -- per-cycle capacities


@dataclass(frozen=True)
class CycleCapacities:
    """Per cycle: the capacity ``stored`` (charge, plating, lithiation) and ``returned`` (discharge, stripping,
    delithiation) in ``unit``, CE in % (NaN where none), ``names`` of the two."""

    cycle: np.ndarray
    stored: np.ndarray
    returned: np.ndarray
    ce_percent: np.ndarray
    names: tuple[str, str]
    unit: str

    def retention(self, reference_cycle: int) -> np.ndarray:
        """Returned capacity in % of the reference cycle's (all NaN if that cycle has none)."""
        ref = self.returned[self.cycle == reference_cycle]
        base = ref[0] if ref.size and ref[0] > 0 else math.nan
        return 100 * self.returned / base


def capacities_from_rows(rows: Sequence[Mapping[str, Any]], basis: Basis) -> CycleCapacities | None:
    """From a CE analysis table (its rows as dicts); None if the rows carry no capacities this module knows."""
    for stored, returned, names in ROW_KEYS:
        if any(r.get(stored) is not None or r.get(returned) is not None for r in rows):
            return CycleCapacities(np.array([int(r["cycle"]) for r in rows]),
                                   basis.from_areal(values_of(rows, stored)), basis.from_areal(values_of(rows, returned)),
                                   values_of(rows, "ce_percent"), names, basis.unit)
    return None


def announces_cycling(event: Mapping[str, Any]) -> bool:
    """The event starts a CE protocol's test: its cycles will pass capacity worth plotting."""
    return event.get("kind") == "test_started" and event.get("protocol") in CE_PROTOCOLS


def values_of(rows: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """``key`` of every row as floats, NaN where a row has none."""
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows], dtype=float)


def capacities_from_samples(samples: Samples, basis: Basis) -> CycleCapacities | None:
    """From the samples (module docstring); None unless some cycle passed current both ways."""
    rest_A = basis.rest_A
    sign = _signs(samples.current_A, rest_A)
    if not (sign > 0).any() or not (sign < 0).any():
        return None
    cycles = samples.cycles(rest_A)
    dq = samples.charges_Ah(rest_A)
    numbers, index = np.unique(cycles, return_inverse=True)
    positive = basis.from_Ah(np.bincount(index, np.clip(dq, 0, None), len(numbers)))
    negative = basis.from_Ah(np.bincount(index, np.clip(-dq, 0, None), len(numbers)))
    stored, returned = (positive, negative) if sign[sign != 0][0] > 0 else (negative, positive)
    with np.errstate(divide="ignore", invalid="ignore"):
        ce = np.where((stored > 0) & (returned > 0), 100 * returned / stored, np.nan)
    keep = (stored > 0) | (returned > 0)  # a cycle label on rows at rest alone is no cycle
    names = SAMPLE_NAMES if stored is positive else SAMPLE_NAMES[::-1]
    return CycleCapacities(numbers[keep], stored[keep], returned[keep], ce[keep], names, basis.unit)


# -- voltage against capacity


@dataclass(frozen=True)
class HalfCycleCurve:
    """Voltage (V) against the capacity passed since the half-cycle began (in the basis' unit); ``sign`` is that of
    its current (+1: charge or strip)."""

    cycle: int
    sign: int
    capacity: np.ndarray
    voltage_V: np.ndarray


class CycleRows:
    """Where each cycle's rows are in a growing time series: ``update`` looks only at the rows added since the last
    call when the data label their cycles (labels non-decreasing), so following a live run costs the new rows, not
    the whole run."""

    def __init__(self) -> None:
        self.bounds: dict[int, list[int]] = {}  # cycle → [first row, stop row)
        self._n = 0

    def update(self, samples: Samples, rest_A: float) -> None:
        if samples.cycle is not None and not np.isnan(samples.cycle[self._n :]).all():
            new = _filled(samples.cycle[self._n :])
        else:
            new = samples.cycles(rest_A)[self._n :]  # counted: from the first row on (imported data, read once)
        if not new.size:
            return
        edges = np.flatnonzero(np.r_[True, new[1:] != new[:-1]])
        for a, b in zip(edges, np.r_[edges[1:], new.size], strict=True):
            bounds = self.bounds.setdefault(int(new[a]), [self._n + int(a), 0])
            bounds[1] = self._n + int(b)
        self._n = len(samples)

    @property
    def cycles(self) -> list[int]:
        return sorted(self.bounds)

    def rows(self, cycle: int) -> slice:
        first, stop = self.bounds[cycle]
        return slice(first, stop)


def half_cycle_curves(samples: Samples, rows: slice, cycle: int, basis: Basis) -> list[HalfCycleCurve]:
    """The half-cycles of one cycle's ``rows`` of ``samples`` (module docstring)."""
    start = max(0, rows.start - 1)  # the row before: the first row's charge is counted from it
    part = samples.rows(slice(start, rows.stop))
    rest_A = basis.rest_A
    charge = np.abs(part.charges_Ah(rest_A))
    sign = _signs(part.current_A, rest_A)
    sign[: rows.start - start] = 0  # the row before is the previous cycle's: its direction is not carried over
    curves = []
    for a, b, s in _runs(_carried(sign)):
        moving = sign[a:b] != 0
        held = np.maximum.accumulate(np.where(moving, np.arange(b - a), 0))  # the last row under current
        shown = moving | (charge[a:b] > 0)
        capacity = basis.from_Ah(np.cumsum(charge[a:b]))
        curves.append(HalfCycleCurve(cycle, s, capacity[shown], part.voltage_V[a:b][held][shown]))
    return curves


# -- dQ/dV


def dq_dv(curve: HalfCycleCurve, bin_V: float = BIN_V, smooth_V: float = SMOOTH_V) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres (V) and dQ/dV (the curve's capacity unit per V) of a half-cycle (module docstring), over its points
    with a voltage; empty arrays for fewer than two."""
    known = np.isfinite(curve.capacity) & np.isfinite(curve.voltage_V)
    q, v = curve.capacity[known], curve.voltage_V[known]
    if q.size < 2:
        return np.empty(0), np.empty(0)
    sigma = smooth_V / bin_V  # in bins
    pad = math.ceil(4 * sigma) + 1  # room for the smoothing's tails: the integral stays the capacity
    lo = (math.floor(np.min(v) / bin_V) - pad) * bin_V
    edges = lo + bin_V * np.arange(math.ceil((np.max(v) - lo) / bin_V) + pad + 1)
    per_bin = np.diff(_spread_charge(np.diff(q), v[:-1], v[1:], edges))
    if sigma > 0:
        x = np.arange(-pad + 1, pad)
        kernel = np.exp(-0.5 * (x / sigma) ** 2)
        per_bin = np.convolve(per_bin, kernel / kernel.sum(), mode="same")
    return (edges[:-1] + edges[1:]) / 2, curve.sign * per_bin / bin_V


def _spread_charge(dq: np.ndarray, v0: np.ndarray, v1: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Charge at voltages up to each of ``at`` when each interval's ``dq`` is spread evenly over [v0, v1]: a sum of
    ramps, built from its slope changes; an interval that swept no voltage puts its charge at that voltage."""
    lo, hi = np.minimum(v0, v1), np.maximum(v0, v1)
    swept = hi > lo
    slope = dq[swept] / (hi[swept] - lo[swept])
    knots = np.r_[lo[swept], hi[swept]]
    order = np.argsort(knots, kind="stable")
    knots, change = knots[order], np.r_[slope, -slope][order]
    rising = np.cumsum(change)  # slope of the cumulative charge after each knot
    at_knots = np.r_[0.0, np.cumsum(rising[:-1] * np.diff(knots))] if knots.size else np.empty(0)
    ramps = np.interp(at, knots, at_knots, left=0.0, right=at_knots[-1]) if knots.size else np.zeros(at.size)
    order = np.argsort(lo[~swept])
    points, weights = lo[~swept][order], np.r_[0.0, np.cumsum(dq[~swept][order])]
    return ramps + weights[np.searchsorted(points, at, side="right")]


# -- which cycles to draw


def default_cycles(cycles: Sequence[int], count: int = DEFAULT_CHOICE) -> list[int]:
    """The first and last cycles and, between them, multiples of a round step (1, 2, 5 × 10ⁿ) giving about
    ``count`` in all: cycles 1-150 → 1, 50, 100, 150."""
    if len(cycles) <= count:
        return list(cycles)
    first, last = cycles[0], cycles[-1]
    step = _round_step((last - first) / (count - 1))
    middle = [c for c in cycles if c % step == 0 and first < c < last]
    return [first, *middle, last]


def _round_step(x: float) -> int:
    scale = 10 ** math.floor(math.log10(x))
    return int(next(m * scale for m in (1, 2, 5, 10) if m * scale >= x))


_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")


def parse_cycle_choice(text: str, cycles: Sequence[int]) -> list[int]:
    """Cycles named in ``text`` ('1, 10-20, last'), those of them in ``cycles``, sorted; empty text: the default.
    ValueError naming a word that is not a cycle, a range or 'last'."""
    words = [w.strip() for w in text.replace(";", ",").split(",") if w.strip()]
    if not words:
        return default_cycles(cycles)
    chosen: set[int] = set()
    for word in words:
        if word.lower() == "last":
            chosen.update(cycles[-1:])
        elif word.isdigit():
            chosen.add(int(word))
        elif match := _RANGE.match(word):
            chosen.update(c for c in cycles if int(match[1]) <= c <= int(match[2]))
        else:
            raise ValueError(f"{word!r} is not a cycle, a range A-B or 'last'; write e.g. '1, 10-20, last'")
    return sorted(chosen.intersection(cycles))
