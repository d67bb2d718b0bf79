"""Critical current density (CCD) of a symmetric Li|SE|Li cell by stepped galvanostatic cycling.

Protocol (PROTOCOLS.md §1): each current level passes ``cycles_per_step`` cycles, each a positive
half-cycle (stripping the working electrode) then a negative one, from ``start_density`` to
``stop_density`` in ``density_step`` increments.

- *fixed-time* (default; patent US 2025/0266506 Example 1): half-cycles of ``half_cycle_time``
  (0.5 h), so the capacity per half-cycle grows with the current (0.05 mAh/cm² at 0.1 mA/cm²).
  60 h if the cell never fails.
- *fixed-capacity* (Wan et al., Nature 2023): half-cycles pass ``half_cycle_capacity`` (mAh/cm²),
  lasting capacity / current; the cycler ends them on charge, with a time guard of 1.5 × that.

Every sample goes through the same failure detector as ``labctl analyze ccd``: a hard short or
contact loss (the voltage limit reached) ends the test with the channel at rest; soft shorts are
recorded as events. The result reports CCD = j_fail with the failure mode, j_last_pass, the capacity
per half-cycle at failure, the cumulative capacity, and the time and cycle of failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import islice
from typing import Any

import pandas as pd
from pymeasure.experiment import FloatParameter, IntegerParameter, ListParameter

from labctl.analysis.ccd import CCDAnalyzer
from labctl.analysis.replay import Analysis, rows_of
from labctl.procedures.base import ParameterError
from labctl.procedures.cycling import CyclingProcedure
from labctl.procedures.longcycle import LongCycling, long_headline
from labctl.roles import CyclerReading
from labctl.units import SECONDS_PER_HOUR, charge_Ah, current_A


@dataclass(frozen=True)
class HalfCycle:
    density_mA_cm2: float  # signed: positive strips the working electrode
    cycle: int
    until_time_s: float
    until_charge_Ah: float | None


class CCDProcedure(LongCycling, CyclingProcedure):
    """Stepped galvanostatic cycling until the cell shorts or loses contact."""

    NAME = "ccd"
    ROLES = ("cycler",)
    FIRST_WAITS_S = ()  # evenly spaced samples: the short detector's windows count samples

    variant = ListParameter("Variant", choices=["fixed-time", "fixed-capacity"], default="fixed-time")
    start_density = FloatParameter("Start current density", units="mA/cm²", minimum=0.001, maximum=100, default=0.1)
    stop_density = FloatParameter("Stop current density", units="mA/cm²", minimum=0.001, maximum=100, default=3.0)
    density_step = FloatParameter("Current density step", units="mA/cm²", minimum=0.001, maximum=100, default=0.1)
    cycles_per_step = IntegerParameter("Cycles per step", minimum=1, maximum=1000, default=2)
    half_cycle_time = FloatParameter("Half-cycle time", units="h", minimum=0.001, maximum=1000, default=0.5,
                                     description="Duration of each half-cycle (fixed-time variant)")
    half_cycle_capacity = FloatParameter("Half-cycle capacity", units="mAh/cm²", minimum=0.001, maximum=100,
                                         default=1.0, description="Capacity of each half-cycle (fixed-capacity)")
    voltage_limit = FloatParameter("Voltage limit", units="V", minimum=0.01, maximum=5, default=1.0,
                                   description="|V| safety limit; reaching it ends the test as contact loss")
    sample_interval = FloatParameter("Sample interval", units="s", minimum=0.1, maximum=600, default=10.0)
    bulk_resistance = FloatParameter("Bulk resistance", units="Ω", minimum=0, maximum=1e7, default=0.0,
                                     description="R_b from EIS for the short detector's ohmic floor; "
                                     "0 = estimate it from the first half-cycle")
    then_density = FloatParameter("Long cycling current density", units="mA/cm²", minimum=0, maximum=100, default=0.0,
                                  description="After a ladder without failure, cycle on at this density; 0 = stop "
                                  "after the ladder (Wan et al.: 1.2)")
    then_half_cycle_time = FloatParameter("Long cycling half-cycle time", units="h", minimum=0.001, maximum=1000, default=1.0,
                                          description="Duration of each half-cycle of the long phase")
    then_hours = FloatParameter("Long cycling duration", units="h", minimum=0.001, maximum=1e6, default=2700.0,
                                description="Test time of the long phase (Wan et al.: > 2700 h)")
    then_sample_interval = FloatParameter("Long cycling sample interval", units="s", minimum=0.1, maximum=600, default=60.0,
                                          description="Time between stored samples in the long phase")

    def check(self) -> None:
        if self.stop_density < self.start_density:
            raise ParameterError(f"stop_density: {self.stop_density:g} mA/cm² is below start_density "
                                 f"{self.start_density:g} mA/cm²; raise it or lower start_density")

    def levels(self) -> list[float]:
        n = math.floor((self.stop_density - self.start_density) / self.density_step + 1e-9) + 1
        return [round(self.start_density + k * self.density_step, 9) for k in range(n)]

    def half_cycles(self) -> list[HalfCycle]:
        plan, cycle = [], 0
        for j in self.levels():
            for _ in range(self.cycles_per_step):
                cycle += 1
                plan += [self._half_cycle(sign * j, cycle) for sign in (1, -1)]
        return plan

    def _half_cycle(self, density: float, cycle: int) -> HalfCycle:
        if self.variant == "fixed-time":
            return HalfCycle(density, cycle, self.half_cycle_time * SECONDS_PER_HOUR, None)
        duration_s = self.half_cycle_capacity / abs(density) * SECONDS_PER_HOUR
        return HalfCycle(density, cycle, 1.5 * duration_s, charge_Ah(self.half_cycle_capacity, self.area_cm2))

    def estimated_duration_s(self) -> float:
        ladder = sum(h.until_time_s / (1.5 if h.until_charge_Ah else 1.0) for h in self.half_cycles())
        return ladder + self.long_duration_s()

    def analysis(self) -> Analysis:
        """The analysis of this run, live and from its files (the settings its parameters give)."""
        return Analysis("ccd", CCDAnalyzer, self.area_cm2, {"voltage_limit_V": self.voltage_limit,
                                                           "ohmic_floor_ohm": self.bulk_resistance or None})

    RESUMABLE = True
    ladder = None  # the ladder's result, once the ladder is over
    long_started_s: float | None = None  # test time at which the long phase began

    def startup(self) -> None:
        resumed = self.interrupted is not None
        if not resumed:
            self.analyzer = self.analysis().analyzer()
        self.begin_cycling()
        if not resumed:
            self.emit("event", {"kind": "test_started", "planned_half_cycles": len(self.half_cycles())})

    def restore(self, rows: pd.DataFrame | None, events: list[dict[str, Any]]) -> None:
        """The detector's state from the stored rows, and the ladder's result if the long phase had begun."""
        self.analyzer = self.analysis().analyzer()
        ladder_steps = len(self.half_cycles())
        for row in rows_of(rows, self.analyzer.split) if rows is not None else ():
            if row.step > ladder_steps and self.ladder is None:
                self.ladder = self.analyzer.result()
            self.analyzer.feed(row)
        started = [e["test_time_s"] for e in events if e.get("kind") == "long_phase_started"]
        self.long_started_s = started[-1] if started else None

    def execute(self) -> None:
        ladder, done = self.half_cycles(), self.segments_done()
        for half in ladder[done:]:
            if self.analyzer.failure or self.should_stop():  # a resumed run may have found its failure already
                break
            self._run_half_cycle(half)
        if self.ladder is None:  # the CCD is the ladder's; the long phase is reported beside it
            self.ladder = self.analyzer.result()
        self.long_cycling = None
        if self.then_density and self.ladder.failure is None and not self.should_stop():
            self._run_long_phase(max(done - len(ladder), 0))
        self.cycler.rest()
        self._report()

    def _run_long_phase(self, done: int) -> None:
        """Cycle on at ``then_density`` (see :mod:`labctl.procedures.longcycle`) until done, a failure or a stop;
        a resumed run skips the ``done`` half-cycles it completed before."""
        if self.long_started_s is None:
            self.long_started_s = self.cycler.read().test_time_s
            self.emit("event", {"kind": "long_phase_started", "test_time_s": self.long_started_s})
        plan = self.long_half_cycles(self.half_cycles()[-1].cycle + 1)
        cycles = sum(density < 0 for density, _, _ in islice(plan, done))  # a cycle ends with its negative half
        for density, cycle, duration_s in plan:
            if self.analyzer.failure or self.should_stop():
                break
            self._run_half_cycle(HalfCycle(density, cycle, duration_s, None), self.then_sample_interval)
            cycles += density < 0 and not self.analyzer.failure and not self.should_stop()
        failure, found = self.analyzer.failure, self.analyzer.result().soft_shorts
        self.long_cycling = self.long_result(self.long_started_s, self.cycler.read().test_time_s, cycles,
                                             failure.to_dict() if failure else None, self.should_stop(),
                                             [f.to_dict() for f in found[len(self.ladder.soft_shorts):]])

    def _run_half_cycle(self, half: HalfCycle, interval_s: float | None = None) -> None:
        current = current_A(half.density_mA_cm2, self.area_cm2)
        limits = self.remainder(half.until_time_s, half.until_charge_Ah, current)
        if limits is None:  # a resumed run's interrupted half-cycle ended while no process watched it
            self._findings(self.analyzer.end_segment("charge" if half.until_charge_Ah else "time"))
            return
        until_time_s, until_charge_Ah = limits
        reading = self.run_segment(lambda: self.cycler.apply_current(
            current, max_voltage_V=self.voltage_limit, min_voltage_V=-self.voltage_limit,
            until_time_s=until_time_s, until_charge_Ah=until_charge_Ah),
            cycle=half.cycle, density_mA_cm2=half.density_mA_cm2, label=f"{half.density_mA_cm2:+g} mA/cm²",
            interval_s=interval_s)  # fmt: skip
        if not reading.segment_active and self.analyzer.failure is None:
            self._findings(self.analyzer.end_segment(reading.end_reason))

    def observe(self, reading: CyclerReading, cycle: int, step: int) -> bool:
        return self._findings(self.analyzer.add(reading.test_time_s, reading.voltage_V, reading.current_A, step, cycle))

    def _findings(self, findings: list) -> bool:
        """Record detector findings as events; True when one of them ends the test."""
        for f in findings:
            self.emit("event", {"kind": f.kind, **f.to_dict()})
        return self.analyzer.failure is not None

    def _report(self) -> None:
        result = self.ladder.to_dict() | {"long_cycling": self.long_cycling}
        result["headline"] = self.ladder.headline() + long_headline(self.long_cycling)
        result["brief"] = self.ladder.brief()
        self.emit("result", result)
