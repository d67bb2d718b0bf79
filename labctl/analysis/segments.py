"""The half-cycle stream under every cycling analyzer: checked samples, rest, segments, cycles and charge.

CCD (:mod:`labctl.analysis.ccd`) and CE (:mod:`labctl.analysis.ce`) read the same rows the same way:

- A *row* is one stored sample: test time (s), voltage (V), current (A, positive strips the working electrode of a
  half cell or charges a full cell), BDF ``Step Count`` and ``Cycle Count`` and, when the instrument gives them, its
  cumulative charging and discharging capacity counters (Ah). Time must be finite and never go back.
- *Rest*: |j| below ``REST_DENSITY_mA_cm2`` (0.001 mA/cm²).
- A *segment* is one instrument step (``Step Count``). A file without step numbers is split where rest starts or
  ends, the current changes sign, or (CCD) |I| moves beyond a tolerance from the segment's first sample.
- *Charge*, the one integration rule: between two rows of the same segment under current, the trapezoid of |I|;
  before the first row of a segment, the current held at that row's value since the previous row (the step began
  then); from the last row under current to the segment's own reading at rest, the current held at its last value
  (the instrument ran the step until then). A rest row after another rest row passes nothing. For constant-current
  steps this is exact at any sampling when the data have a point at each step end (BDF, Arbin), and it equals the
  rectangle rule |I|·dt that CCD used; with a drifting current it is second-order accurate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from labctl.units import SECONDS_PER_HOUR, density_mA_cm2

REST_DENSITY_mA_cm2 = 0.001  # |j| below this is rest


class Row(NamedTuple):
    """One stored sample (module docstring); ``cycle`` and the counters are None when the data do not give them."""

    t_s: float
    voltage_V: float
    current_A: float
    step: int
    cycle: int | None = None
    charge_Ah: float | None = None
    discharge_Ah: float | None = None


def check_sample(values: dict[str, float], time_name: str, last_t_s: float | None) -> None:
    """Every value finite and the time (``values[time_name]``) not before ``last_t_s``; the errors name the field."""
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    t_s = values[time_name]
    if last_t_s is not None and t_s < last_t_s:
        raise ValueError(f"{time_name} went backwards: {t_s} s after {last_t_s} s; feed samples in time order")


@dataclass(frozen=True)
class Split:
    """How an analyzer tells rest and segments apart: electrode area (cm²), the rest threshold (mA/cm²), the relative
    |I| change that starts a new segment in a file without step numbers (None: only sign and rest do), and whether
    cycles are counted from the half-cycles' signs when the file has no ``Cycle Count`` (else they stay None)."""

    area_cm2: float
    rest_density_mA_cm2: float = REST_DENSITY_mA_cm2
    current_tolerance: float | None = None
    count_cycles: bool = False

    def is_rest(self, current_A: float) -> bool:
        return abs(density_mA_cm2(current_A, self.area_cm2)) < self.rest_density_mA_cm2

    def same_current(self, a_A: float, b_A: float) -> bool:
        """Same sign and, with a tolerance, |a - b| within it of the larger."""
        if (a_A > 0) != (b_A > 0):
            return False
        return self.current_tolerance is None or abs(a_A - b_A) <= self.current_tolerance * max(abs(a_A), abs(b_A))

    def steps(self, amps: list[float]) -> list[int]:
        """Step numbers for a file without them (module docstring)."""
        steps, number, ref = [], 0, None
        for current in amps:
            if ref is None or self.is_rest(ref) != self.is_rest(current) or (
                    not self.is_rest(current) and not self.same_current(ref, current)):
                number, ref = number + 1, current
            steps.append(number)
        return steps

    def cycles(self, steps: list[int], amps: list[float]) -> list[int | None]:
        """Cycle numbers for a file without them: cycle 1 starts with the first half-cycle, a new one with each
        half-cycle of that sign after one of the other sign (rest in between does not count); None unless
        ``count_cycles``."""
        if not self.count_cycles:
            return [None] * len(steps)
        cycles: list[int | None] = []
        cycle, first_sign, last_sign, counted = 0, 0.0, 0.0, None
        for step, current in zip(steps, amps, strict=True):
            if step != counted and not self.is_rest(current):
                sign = math.copysign(1.0, current)
                if cycle == 0:
                    cycle, first_sign = 1, sign
                elif sign == first_sign and last_sign != first_sign:
                    cycle += 1
                last_sign, counted = sign, step
            cycles.append(cycle)
        return cycles


class Charge:
    """The one integration rule (module docstring), row by row: :meth:`add` gives the |charge| (Ah) passed in the
    interval before a row, which belongs to that row's half-cycle (for a segment's reading at rest: to the
    half-cycle it closes)."""

    def __init__(self, split: Split) -> None:
        self._split = split
        self._step: int | None = None
        self._current_A = 0.0  # signed I of the previous row, 0 when it was at rest

    def add(self, dt_s: float, current_A: float, step: int) -> float:
        before_A = self._current_A if step == self._step else 0.0
        now_A = 0.0 if self._split.is_rest(current_A) else current_A
        self._step, self._current_A = step, now_A
        if now_A == 0.0:
            mean_A = abs(before_A)  # the step ran until its reading at rest
        elif before_A * now_A > 0.0:
            mean_A = (abs(before_A) + abs(now_A)) / 2
        else:
            mean_A = abs(now_A)  # the half-cycle began at the previous row
        return mean_A * dt_s / SECONDS_PER_HOUR


def frame_rows(columns: dict[str, list], split: Split) -> Iterator[Row]:
    """Rows from the columns of a BDF frame (``t``, ``v``, ``i`` and, when the frame has them, ``step``, ``cycle``,
    ``charge``, ``discharge``), with steps and cycles derived by ``split`` where it has none."""
    t, v, i = columns["t"], columns["v"], columns["i"]
    steps = columns.get("step") or split.steps(i)
    cycles = columns.get("cycle") or split.cycles(steps, i)
    none: list[float | None] = [None] * len(t)
    charge, discharge = columns.get("charge") or none, columns.get("discharge") or none
    for row in zip(t, v, i, steps, cycles, charge, discharge, strict=True):
        yield Row(*row)
