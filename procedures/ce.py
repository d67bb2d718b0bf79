"""Coulombic efficiency (CE) of lithium plating and stripping on a current collector: Li|SE|Cu half cells.

Two protocols (PROTOCOLS.md §2a-2b, research/science.md §2):

- ``ce-reservoir`` (Wang et al., Adv. Mater. 2024, after Adams et al. 2018): at ``density`` (1 mA/cm²)
  plate ``formation_capacity`` (1 mAh/cm²) and strip to the anodic ``cutoff`` (0.2 V); plate a reservoir
  Q_T = ``reservoir_capacity`` (5 mAh/cm²); ``cycles`` (10) × strip then plate Q_c = ``cycle_capacity``
  (1 mAh/cm²); strip everything to the cutoff (Q_S). CE = (n·Q_c + Q_S) / (n·Q_c + Q_T). The formation strip
  and the final strip use the same cutoff, so lithium parked in the alloy interlayer does not bias CE.
- ``ce-cycling`` (Wang; Sandoval et al. variant): ``cycles`` (300) × plate ``capacity`` (1 mAh/cm²) at
  ``density`` (1 mA/cm²) and strip to ``anodic_cutoff`` (0.2 V); per-cycle CE = Q_strip/Q_plate with the
  plating, stripping and nucleation overpotentials. Sandoval: ``density=0.25 anodic_cutoff=0.5
  time_cutoff=4``: a half-cycle ended by its time cutoff gives a CE that is only a lower bound, and is flagged.

Plating is negative current (BDF: positive current charges, i.e. strips the working electrode). Plating stops at
``lower_limit`` (−0.5 V) as a safety limit. A strip with no time cutoff is guarded at 1.5× the time its charge
should take, so a shorted cell (whose strip never reaches the cutoff) is caught, not cycled forever. The short
detector of ``labctl analyze ce`` runs live and ends the test at a short, with the channel at rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from pymeasure.experiment import FloatParameter, IntegerParameter

from labctl.analysis.ce import CEAnalyzer, CEVariant
from labctl.analysis.replay import Analysis
from labctl.procedures.base import ParameterError
from labctl.procedures.cycle_eis import CycleEIS, RolesWithEIS
from labctl.procedures.cycling import CyclingProcedure
from labctl.roles import CyclerReading
from labctl.units import SECONDS_PER_HOUR, charge_Ah, current_A

GUARD = 1.5  # a segment's time guard, relative to the time its charge should take


class CEProcedure(CyclingProcedure):
    """What CE procedures share: the live CE analyzer, its findings as events, the result."""

    ROLES = ("cycler",)
    VARIANT: ClassVar[CEVariant]  # the CE analysis variant (`labctl analyze ce --protocol`)

    sample_interval = FloatParameter("Sample interval", units="s", minimum=0.1, maximum=600, default=60.0,
                                     description="Time between stored samples after each segment's first 16 s")

    def analyzer_settings(self) -> dict[str, Any]:
        """The CE analyzer's settings from this procedure's parameters (each procedure's own limits)."""
        return {}

    def analysis(self) -> Analysis:
        """The analysis of this run, live and from its files."""
        return Analysis("ce", CEAnalyzer, self.area_cm2, {"protocol": self.VARIANT, **self.analyzer_settings()})

    def startup(self) -> None:
        self.analyzer = self.analysis().analyzer()
        self.begin_cycling()
        self.emit("event", {"kind": "test_started", "protocol": self.VARIANT})

    def observe(self, reading: CyclerReading, cycle: int, step: int) -> bool:
        findings = self.analyzer.add(reading.test_time_s, reading.voltage_V, reading.current_A, cycle, step,
                                     reading.charge_capacity_Ah, reading.discharge_capacity_Ah)
        self._emit_findings(findings)
        return self.analyzer.failure is not None

    def _emit_findings(self, findings: list) -> None:
        for f in findings:
            self.emit("event", f.to_dict())

    @property
    def ended(self) -> bool:
        return self.analyzer.failure is not None or self.should_stop()

    def report(self) -> None:
        self.cycler.rest()
        self._emit_findings(self.analyzer.finish())
        self.emit("result", self.result())

    def result(self) -> dict[str, Any]:
        outcome = self.analyzer.result()
        return outcome.to_dict() | {"brief": outcome.brief()}


class HalfCellCE(CEProcedure):
    """A Li|SE|collector half cell cycled at one current density."""

    SIM_CELL = "Mg/W-Cu"

    density = FloatParameter("Current density", units="mA/cm²", minimum=0.001, maximum=100, default=1.0)
    lower_limit = FloatParameter("Lower voltage limit", units="V", minimum=-5, maximum=-0.001, default=-0.5,
                                 description="Plating stops here (safety)")

    def current(self, sign: int) -> float:
        return sign * current_A(self.density, self.area_cm2)

    def hours(self, capacity_mAh_cm2: float) -> float:
        """How long ``capacity_mAh_cm2`` takes at the test's current density, s."""
        return capacity_mAh_cm2 / self.density * SECONDS_PER_HOUR

    def plating(self, capacity_mAh_cm2: float, time_cutoff_s: float | None = None) -> CurrentSegment:
        """Plate ``capacity_mAh_cm2`` down to the lower limit at most, guarded in time (or ``time_cutoff_s``)."""
        return CurrentSegment(self.current(-1), 5.0, self.lower_limit,
                              time_cutoff_s or GUARD * self.hours(capacity_mAh_cm2),
                              charge_Ah(capacity_mAh_cm2, self.area_cm2))

    def stripping(self, cutoff_V: float, *, expected_mAh_cm2: float, capacity_mAh_cm2: float | None = None,
                  time_cutoff_s: float | None = None) -> CurrentSegment:
        """Strip to ``cutoff_V``, or ``capacity_mAh_cm2`` if given, guarded in time by what should be there."""
        return CurrentSegment(self.current(1), cutoff_V, self.lower_limit,
                              time_cutoff_s or GUARD * self.hours(expected_mAh_cm2),
                              charge_Ah(capacity_mAh_cm2, self.area_cm2) if capacity_mAh_cm2 else None)

    def plate(self, capacity_mAh_cm2: float, cycle: int, label: str, time_cutoff_s: float | None = None) -> None:
        self._run(self.plating(capacity_mAh_cm2, time_cutoff_s), cycle, label)

    def strip(self, cutoff_V: float, cycle: int, label: str, *, capacity_mAh_cm2: float | None = None,
              expected_mAh_cm2: float, time_cutoff_s: float | None = None) -> None:
        self._run(self.stripping(cutoff_V, expected_mAh_cm2=expected_mAh_cm2, capacity_mAh_cm2=capacity_mAh_cm2,
                                 time_cutoff_s=time_cutoff_s), cycle, label)

    def _run(self, segment: CurrentSegment, cycle: int, label: str) -> None:
        self.run_segment(lambda: self.cycler.apply_current(
            segment.current_A, max_voltage_V=segment.max_voltage_V, min_voltage_V=segment.min_voltage_V,
            until_time_s=segment.until_time_s, until_charge_Ah=segment.until_charge_Ah),
            cycle=cycle, density_mA_cm2=math.copysign(self.density, segment.current_A), label=label)  # fmt: skip


@dataclass(frozen=True)
class CurrentSegment:
    """A constant-current half-cycle of a half cell as the instrument runs it: its current and its ends."""

    current_A: float
    max_voltage_V: float
    min_voltage_V: float
    until_time_s: float
    until_charge_Ah: float | None


class ReservoirCEProcedure(HalfCellCE):
    """Reservoir ("modified Aurbach") CE: formation, reservoir, n short cycles, final strip."""

    NAME = "ce-reservoir"
    VARIANT = "reservoir"

    formation_capacity = FloatParameter("Formation capacity", units="mAh/cm²", minimum=0.001, maximum=100, default=1.0)
    reservoir_capacity = FloatParameter("Reservoir capacity Q_T", units="mAh/cm²", minimum=0.001, maximum=100,
                                        default=5.0)
    cycle_capacity = FloatParameter("Cycle capacity Q_c", units="mAh/cm²", minimum=0.001, maximum=100, default=1.0)
    cycles = IntegerParameter("Cycles n", minimum=1, maximum=1000, default=10)
    cutoff = FloatParameter("Anodic cutoff", units="V", minimum=0.01, maximum=5, default=0.2,
                            description="Formation and final strips end here")

    def check(self) -> None:
        if self.cycle_capacity > self.reservoir_capacity:
            raise ParameterError(f"cycle_capacity: Q_c = {self.cycle_capacity:g} mAh/cm² exceeds the reservoir "
                                 f"Q_T = {self.reservoir_capacity:g} mAh/cm²; cycle less than the reservoir holds "
                                 "(the papers use Q_c = Q_T/5)")

    def analyzer_settings(self) -> dict[str, Any]:
        return {"cutoff_V": self.cutoff, "lower_V": self.lower_limit}

    def estimated_duration_s(self) -> float:
        total = 2 * self.formation_capacity + 2 * self.reservoir_capacity + 2 * self.cycles * self.cycle_capacity
        return self.hours(total)

    def execute(self) -> None:
        steps = [
            lambda: self.plate(self.formation_capacity, 0, "formation plating"),
            lambda: self.strip(self.cutoff, 0, "formation stripping", expected_mAh_cm2=self.formation_capacity),
            lambda: self.plate(self.reservoir_capacity, 1, "reservoir plating"),
        ]
        for n in range(1, self.cycles + 1):
            steps += [
                lambda n=n: self.strip(self.cutoff, n, "cycle stripping", capacity_mAh_cm2=self.cycle_capacity,
                                       expected_mAh_cm2=self.cycle_capacity),
                lambda n=n: self.plate(self.cycle_capacity, n, "cycle plating"),
            ]
        steps.append(lambda: self.strip(self.cutoff, self.cycles + 1, "final stripping",
                                        expected_mAh_cm2=self.reservoir_capacity + self.formation_capacity))
        for step in steps:
            if self.ended:
                break
            step()
        self.report()


class CyclingCEProcedure(CycleEIS, HalfCellCE):
    """Long galvanostatic cycling: plate a fixed capacity, strip to the anodic cutoff, per-cycle CE."""

    NAME = "ce-cycling"
    VARIANT = "cycling"
    ROLES = RolesWithEIS("cycler")

    capacity = FloatParameter("Plating capacity", units="mAh/cm²", minimum=0.001, maximum=100, default=1.0)
    cycles = IntegerParameter("Cycles", minimum=1, maximum=100000, default=300)
    anodic_cutoff = FloatParameter("Anodic cutoff", units="V", minimum=0.01, maximum=5, default=0.2,
                                   description="Stripping ends here (Sandoval: 0.5)")
    time_cutoff = FloatParameter("Half-cycle time cutoff", units="h", minimum=0, maximum=10000, default=0.0,
                                 description="0 = none (Sandoval: 4); a half-cycle ended by it gives a lower bound")

    def check(self) -> None:
        self.check_eis()

    def analyzer_settings(self) -> dict[str, Any]:
        return {"cutoff_V": self.anodic_cutoff, "lower_V": self.lower_limit,
                "time_limit_s": self.time_cutoff * SECONDS_PER_HOUR or None, "capacity_mAh_cm2": self.capacity}

    def estimated_duration_s(self) -> float:
        return self.hours(2 * self.capacity * self.cycles)

    def startup(self) -> None:
        super().startup()
        self.start_eis()

    @property
    def ended(self) -> bool:
        return super().ended or self.eis_short is not None

    def execute(self) -> None:
        time_cutoff = self.time_cutoff * SECONDS_PER_HOUR or None
        for n in range(1, self.cycles + 1):
            if self.ended:
                break
            self.plate(self.capacity, n, "plating", time_cutoff)
            if self.ended:
                break
            self.strip(self.anodic_cutoff, n, "stripping", expected_mAh_cm2=self.capacity, time_cutoff_s=time_cutoff)
            if self.eis_due(n) and not self.ended:
                self.cycle_spectrum(n, f"after cycle {n}")
        if self.eis and self.analyzer.failure is not None and not self.should_stop():
            self.cycle_spectrum(self.analyzer.failure.cycle, "after the short")  # science.md §1.3 F: confirm it
        self.report()

    def result(self) -> dict[str, Any]:
        result = super().result()
        eis = self.eis_result()
        if eis is not None:
            result["eis"] = eis
            result["headline"] += eis_headline(eis)
        return result


def eis_headline(eis: dict[str, Any]) -> str:
    """What the spectra add to the CE headline: their number, R_b first → last, the short signal."""
    fitted = [s for s in eis["spectra"] if s.get("R_b_ohm") is not None]
    text = f"; {len(eis['spectra'])} spectra"
    if fitted:
        text += f", R_b {fitted[0]['R_b_ohm']:.4g} → {fitted[-1]['R_b_ohm']:.4g} Ω"
    if eis["short"]:
        text += f"; EIS short signal after cycle {eis['short']['cycle']} (R_HF {eis['short']['R_HF_ohm']:.3g} Ω)"
    return text
