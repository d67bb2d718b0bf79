"""Activation of a Li|SE|collector half cell at a low current (Wang et al., Adv. Mater. 2024, Fig. S7).

Each of ``cycles`` (1) cycles lithiates the collector at ``density`` (0.05 mA/cm²) down to ``lower_cutoff`` (0 V:
alloying only, no lithium metal plates above it) and delithiates it up to ``upper_cutoff`` (1 V). Each half-cycle
has a time guard, ``time_limit`` (20 h, i.e. 1 mAh/cm² at 0.05 mA/cm²); one that reaches it instead of its cutoff
is flagged ``time``. Reported per cycle, from the cycler's capacity counters: the lithiation and delithiation
capacities (mAh/cm²), the irreversible capacity (their difference) and the CE (delithiation/lithiation); the first
cycle's delithiation capacity is the reversible capacity and its CE the initial CE (ICE). Wang: Cu and W-Cu show
negligible capacity (inert with Li), Mg/W-Cu 0.23 mAh/cm² reversible with an ICE of 72 %, Mg-Cu 0.17 mAh/cm² and
66 %. Lithiation is negative current (BDF: positive current strips the working electrode).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pymeasure.experiment import FloatParameter, IntegerParameter

from labctl.procedures.base import ParameterError
from labctl.procedures.cycling import CyclingProcedure
from labctl.roles import CyclerReading
from labctl.units import SECONDS_PER_HOUR, areal_mAh_cm2, current_A

SAFETY_MARGIN_V = 0.5  # the limit on the side a half-cycle moves away from, beyond the window
NEGLIGIBLE_mAh_cm2 = 0.001  # below this a lithiation stored nothing worth a CE (an inert collector)
END_REASONS = {"voltage_low": "voltage", "voltage_high": "voltage", "time": "time"}


@dataclass(frozen=True)
class ActivationCycle:
    cycle: int
    lithiation_mAh_cm2: float
    delithiation_mAh_cm2: float | None
    lithiation_end: str | None  # voltage, time, or stopped
    delithiation_end: str | None

    @property
    def ce_percent(self) -> float | None:
        if self.delithiation_mAh_cm2 is None or self.lithiation_mAh_cm2 < NEGLIGIBLE_mAh_cm2:
            return None
        return 100 * self.delithiation_mAh_cm2 / self.lithiation_mAh_cm2

    def to_dict(self) -> dict:
        irreversible = None if self.delithiation_mAh_cm2 is None else self.lithiation_mAh_cm2 - self.delithiation_mAh_cm2
        return asdict(self) | {"irreversible_mAh_cm2": irreversible, "ce_percent": self.ce_percent}


class ActivationProcedure(CyclingProcedure):
    """Low-current lithiation/delithiation of a collector between two voltages: reversible capacity and ICE."""

    NAME = "activation"
    ROLES = ("cycler",)
    SIM_CELL = "Mg/W-Cu"

    density = FloatParameter("Current density", units="mA/cm²", minimum=0.001, maximum=100, default=0.05)
    lower_cutoff = FloatParameter("Lower cutoff", units="V", minimum=-1, maximum=4, default=0.0,
                                  description="Lithiation ends here (0 V: no lithium metal plates)")
    upper_cutoff = FloatParameter("Upper cutoff", units="V", minimum=-1, maximum=5, default=1.0,
                                  description="Delithiation ends here")
    cycles = IntegerParameter("Cycles", minimum=1, maximum=1000, default=1)
    time_limit = FloatParameter("Half-cycle time limit", units="h", minimum=0.01, maximum=10000, default=20.0,
                                description="Guard: a half-cycle not at its cutoff by then ends, flagged 'time'")
    sample_interval = FloatParameter("Sample interval", units="s", minimum=0.1, maximum=600, default=60.0,
                                     description="Time between stored samples after each segment's first 16 s")

    def check(self) -> None:
        if self.lower_cutoff >= self.upper_cutoff:
            raise ParameterError(f"lower_cutoff: {self.lower_cutoff:g} V must be below upper_cutoff "
                                 f"{self.upper_cutoff:g} V")

    def estimated_duration_s(self) -> float:
        return 2 * self.cycles * self.time_limit * SECONDS_PER_HOUR

    def startup(self) -> None:
        self.begin_cycling()
        self.done: list[ActivationCycle] = []

    def execute(self) -> None:
        for n in range(1, self.cycles + 1):
            lithiated, lith_end = self._half_cycle(n, -1)
            delithiated, delith_end = (None, None) if self.should_stop() else self._half_cycle(n, 1)
            self.done.append(ActivationCycle(n, lithiated, delithiated, lith_end, delith_end))
            if self.should_stop():
                break
        self.cycler.rest()
        self.emit("result", self.result())

    def _half_cycle(self, cycle: int, sign: int) -> tuple[float, str]:
        """Lithiate (sign −1) to the lower cutoff or delithiate (+1) to the upper one; (capacity mAh/cm², what
        ended it)."""
        before = self.cycler.read()
        low, high = self.lower_cutoff, self.upper_cutoff
        if sign < 0:
            high += SAFETY_MARGIN_V
        else:
            low -= SAFETY_MARGIN_V
        after = self.run_segment(lambda: self.cycler.apply_current(
            current_A(sign * self.density, self.area_cm2), max_voltage_V=high, min_voltage_V=low,
            until_time_s=self.time_limit * SECONDS_PER_HOUR),
            cycle=cycle, density_mA_cm2=sign * self.density, label="lithiation" if sign < 0 else "delithiation")  # fmt: skip
        ended = "stopped" if after.segment_active else END_REASONS.get(after.end_reason or "", after.end_reason)
        return areal_mAh_cm2(_passed_Ah(before, after, sign), self.area_cm2), ended

    def result(self) -> dict:
        rows = [c.to_dict() for c in self.done]
        first = rows[0] if rows else None
        result = {"cycles": rows, "density_mA_cm2": self.density, "window_V": [self.lower_cutoff, self.upper_cutoff],
                  "reversible_mAh_cm2": first and first["delithiation_mAh_cm2"],
                  "irreversible_mAh_cm2": first and first["irreversible_mAh_cm2"],
                  "ice_percent": first and first["ce_percent"]}
        result["headline"] = headline(result)
        return result


def _passed_Ah(before: CyclerReading, after: CyclerReading, sign: int) -> float:
    """Charge passed in one direction between two readings, from the instrument's cumulative counters."""
    if sign > 0:
        return after.charge_capacity_Ah - before.charge_capacity_Ah
    return after.discharge_capacity_Ah - before.discharge_capacity_Ah


def headline(result: dict) -> str:
    window = f"at {result['density_mA_cm2']:g} mA/cm² between {result['window_V'][0]:g} and {result['window_V'][1]:g} V"
    if not result["cycles"]:
        return f"Activation {window}: no cycle ran"
    first = result["cycles"][0]
    if first["lithiation_mAh_cm2"] < NEGLIGIBLE_mAh_cm2:
        return (f"Activation {window}: negligible capacity ({first['lithiation_mAh_cm2']:.2g} mAh/cm² lithiated): "
                "the collector does not alloy with Li")
    if result["ice_percent"] is None:
        return f"Activation {window}: {first['lithiation_mAh_cm2']:.3g} mAh/cm² lithiated; delithiation did not run"
    flags = [f"{k.split('_')[0]} ended by its time limit" for k in ("lithiation_end", "delithiation_end")
             if first[k] == "time"]
    return (f"Activation {window}: reversible {result['reversible_mAh_cm2']:.3g} mAh/cm², irreversible "
            f"{result['irreversible_mAh_cm2']:.3g} mAh/cm², ICE {result['ice_percent']:.1f} %"
            + "".join(f"; {f}" for f in flags))
