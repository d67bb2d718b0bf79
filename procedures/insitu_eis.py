"""In-situ EIS during galvanostatic plating and stripping (Sandoval et al., PROTOCOLS.md §2b and §3).

Each cycle plates then strips ``half_cycle_capacity`` at ``current_density`` within the voltage
limits, a half-cycle ending on its charge, on a limit, or after ``half_cycle_time_limit`` of current
(then flagged: its capacity is a lower bound). Every ``eis_interval`` of current the current is
interrupted (channel at rest) for a spectrum on the impedance role, and the half-cycle then resumes
with its remaining charge: spectrum time does not count towards it (science notes §6.3). A spectrum
is taken before the first cycle (cycle 0, the pristine cell) and at the end of every cycle. Every spectrum
is fitted as it arrives: R_b, R_tot and R_int against test time, and each cycle's Coulombic efficiency
Q_strip/Q_plate. Each spectrum is biased at the voltage the cycler reads right after the interruption (the 1260
holds its own DC bias); one whose bias ± AC peak would leave the EIS voltage limits (Sandoval: -1…1 V) is skipped
with a ``spectrum_refused`` event and the cycling goes on.
Defaults: 0.25 mA/cm², 1 mAh/cm², −0.5…0.5 V, 4 h cutoff, a spectrum every 10 min, 2 MHz → 2 Hz, fitted
with two arcs and a Warburg tail (one interface loses contact while the other plates, so their arcs part).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pymeasure.experiment import FloatParameter, IntegerParameter, Parameter

from labctl.analysis.eis import SpectrumAnalysis
from labctl.procedures.base import ParameterError
from labctl.procedures.cycling import CyclingProcedure
from labctl.procedures.eis import SpectrumParameters
from labctl.procedures.spectrum import Point
from labctl.roles import CyclerReading
from labctl.units import SECONDS_PER_HOUR, areal_mAh_cm2, charge_Ah, counted, current_A

VOLTAGE_ENDS = ("voltage_high", "voltage_low")


@dataclass
class HalfCycle:
    cycle: int
    kind: str  # "plating" or "stripping"
    sign: int
    charge_Ah: float = 0.0
    current_s: float = 0.0
    ended_by: str = ""
    spectra: list[dict] = field(default_factory=list)


class InSituEISProcedure(SpectrumParameters, CyclingProcedure):
    """Galvanostatic plating/stripping with a spectrum every few minutes and at the end of each cycle."""

    NAME = "insitu-eis"
    ROLES = ("cycler", "impedance")
    SIM_CELL = "LPSCl"  # on a simulated bench: a sulfide cell whose stripping opens voids at these currents

    current_density = FloatParameter("Current density", units="mA/cm²", minimum=0.001, maximum=100, default=0.25)
    half_cycle_capacity = FloatParameter("Half-cycle capacity", units="mAh/cm²", minimum=0.001, maximum=100,
                                         default=1.0)
    upper_voltage = FloatParameter("Upper voltage limit", units="V", minimum=-5, maximum=5, default=0.5)
    lower_voltage = FloatParameter("Lower voltage limit", units="V", minimum=-5, maximum=5, default=-0.5)
    half_cycle_time_limit = FloatParameter("Half-cycle time limit", units="h", minimum=0.01, maximum=1000,
                                           default=4.0, description="Current time after which a half-cycle ends")
    cycles = IntegerParameter("Cycles", minimum=1, maximum=10000, default=5)
    eis_interval = FloatParameter("EIS interval", units="min", minimum=0.1, maximum=10000, default=10.0,
                                  description="Current time between spectra during each half-cycle")
    start_frequency = FloatParameter("Start frequency", units="Hz", minimum=1e-5, maximum=3.2e7, default=2e6)
    stop_frequency = FloatParameter("Stop frequency", units="Hz", minimum=1e-5, maximum=3.2e7, default=2.0)
    sample_interval = FloatParameter("Sample interval", units="s", minimum=0.1, maximum=600, default=10.0)
    # two arcs: stripping opens voids on one electrode only, so the interfaces (and the constriction) part
    circuit = Parameter("Equivalent circuit", default="R0-p(R1,CPE1)-p(R2,CPE2)-W1",
                        description="Circuit to fit, in impedance.py's syntax")

    def check(self) -> None:
        self.check_frequencies()
        self.check_voltage_limits()
        if self.lower_voltage >= self.upper_voltage:
            raise ParameterError(f"lower_voltage: {self.lower_voltage:g} V must be below upper_voltage "
                                 f"{self.upper_voltage:g} V")

    def analysis(self) -> SpectrumAnalysis:
        """The analysis of this run's last spectrum from its files (the live run fits every spectrum the same way)."""
        return self.spectrum_analysis()

    def estimated_duration_s(self) -> float:
        return 2 * self.cycles * self.half_cycle_capacity / self.current_density * SECONDS_PER_HOUR

    def startup(self) -> None:
        self.analyzer = self.bench.role("impedance")
        self.begin_cycling()
        self._step = self._spectra = 0
        self._halves: list[HalfCycle] = []
        self._last = self.cycler.read()

    def execute(self) -> None:
        self._before = self._spectrum(0, "before cycling")
        for cycle in range(1, self.cycles + 1):
            for kind, sign in (("plating", -1), ("stripping", 1)):
                half = HalfCycle(cycle, kind, sign)
                self._halves.append(half)
                self._run_half_cycle(half)
                if self.should_stop():
                    return self._report()
            self._halves[-1].spectra.append(self._spectrum(cycle, "end of cycle"))
        self._report()

    def _run_half_cycle(self, half: HalfCycle) -> None:
        target_Ah = charge_Ah(self.half_cycle_capacity, self.area_cm2)
        limit_s = self.half_cycle_time_limit * SECONDS_PER_HOUR
        while not self.should_stop():
            start = self._last
            segment_s = min(self.eis_interval * 60, limit_s - half.current_s)
            self._segment(half, until_time_s=segment_s, until_charge_Ah=target_Ah - half.charge_Ah)
            half.charge_Ah += _passed_Ah(start, self._last)
            half.current_s += self._last.test_time_s - start.test_time_s
            half.ended_by = _ended_by(self._last.end_reason, half, target_Ah, limit_s)
            if half.ended_by:
                self.emit("event", {"kind": "half_cycle_ended", "cycle": half.cycle, "half": half.kind,
                                    "ended_by": half.ended_by, "capacity_mAh_cm2": self._areal(half.charge_Ah)})
                return
            half.spectra.append(self._spectrum(half.cycle, f"during {half.kind}"))

    def _segment(self, half: HalfCycle, *, until_time_s: float, until_charge_Ah: float) -> None:
        self._step += 1
        current = current_A(half.sign * self.current_density, self.area_cm2)
        self.cycler.apply_current(current, max_voltage_V=self.upper_voltage, min_voltage_V=self.lower_voltage,
                                  until_time_s=until_time_s, until_charge_Ah=until_charge_Ah)
        while not self.should_stop():
            self.clock.wait(self.sample_interval)
            self._last = self.cycler.read()
            self.record(self._last, cycle=half.cycle, step=self._step,
                        density_mA_cm2=half.sign * self.current_density)
            if not self._last.segment_active:
                return

    def _spectrum(self, cycle: int, when: str) -> dict:
        """Rest the channel, then measure, store and fit a spectrum at the voltage of the interruption (or refuse
        one whose bias would leave the EIS voltage limits); the caller decides what follows."""
        self.cycler.rest()
        interrupted = self.cycler.read()
        t, bias = interrupted.test_time_s, interrupted.voltage_V
        summary = {"test_time_h": t / SECONDS_PER_HOUR, "cycle": cycle, "when": when, "dc_bias_V": bias}
        refusal = self.bias_refusal(bias)
        if refusal:
            self.emit("event", {"kind": "spectrum_refused", "message": refusal, **summary})
            return summary
        self.configure_analyzer(bias)
        taken = self.take_spectrum(self.analyzer, lambda sweep: self._store(sweep.points, t, cycle))
        self._last = self.cycler.read()
        summary = {"index": taken.index, **summary, **taken.quality()}
        if taken.fit is not None:
            summary |= {k: taken.fit[k] for k in ("R_b_ohm", "R_tot_ohm", "R_int_ohm", "kk_pass")}
            summary["fit"] = taken.fit["fit"]
        self.emit("event", {"kind": "spectrum", **summary})
        return summary

    def _store(self, points: list[Point], test_time_s: float, cycle: int) -> int:
        """Store a spectrum taken at the interruption at ``test_time_s``; its index."""
        self._spectra += 1
        self.emit("spectrum", {"index": self._spectra, "test_time_s": test_time_s, "cycle": cycle, "step": self._step,
                               "points": points})
        return self._spectra

    def _areal(self, charge: float) -> float:
        return areal_mAh_cm2(charge, self.area_cm2)

    def _report(self) -> None:
        cycles = []
        for plate, strip in zip(self._halves[::2], self._halves[1::2], strict=False):
            cycles.append({
                "cycle": plate.cycle, "plating_mAh_cm2": self._areal(plate.charge_Ah),
                "stripping_mAh_cm2": self._areal(strip.charge_Ah),
                "ce": strip.charge_Ah / plate.charge_Ah if plate.charge_Ah else None,
                "plating_ended_by": plate.ended_by, "stripping_ended_by": strip.ended_by,
                "lower_bound": "time limit" in (plate.ended_by, strip.ended_by),
                "R_tot_stripping_ohm": [s.get("R_tot_ohm") for s in strip.spectra],
            })  # fmt: skip
        taken = [self._before, *(s for half in self._halves for s in half.spectra)]
        result = {"cycles": cycles, "spectra": self._spectra, "before": self._before,
                  "kk_failed_spectra": [s["index"] for s in taken if s.get("kk_pass") is False],
                  "flagged_points": sum(len(s.get("flagged_points_Hz", ())) for s in taken)}
        result["headline"] = headline(result)
        self.emit("result", result)


def _ended_by(reason: str | None, half: HalfCycle, target_Ah: float, limit_s: float) -> str:
    """Why a half-cycle is over ("" if it goes on): its charge passed (within 0.1 %), a voltage limit, or
    its time limit (then its capacity is a lower bound)."""
    if half.charge_Ah >= target_Ah * (1 - 1e-3):
        return "charge"
    if reason in VOLTAGE_ENDS:
        return reason
    return "time limit" if half.current_s >= limit_s - 1e-6 else ""


def _passed_Ah(before: CyclerReading, after: CyclerReading) -> float:
    """Charge passed between two readings, from the instrument's cumulative counters."""
    return (after.charge_capacity_Ah - before.charge_capacity_Ah) + (
        after.discharge_capacity_Ah - before.discharge_capacity_Ah)


def headline(result: dict) -> str:
    """One line: cycles, spectra, mean CE, R_tot through the first stripping, then what makes fits doubtful."""
    cycles, spectra, doubts = result["cycles"], result["spectra"], _doubts(result)
    if not cycles:
        return f"{spectra} spectra; no complete cycle" + doubts
    ce = [c["ce"] for c in cycles if c["ce"] is not None]
    text = f"{counted(len(cycles), 'cycle')}, {spectra} spectra; mean CE {100 * sum(ce) / len(ce):.2f} %"
    r = [x for x in cycles[0]["R_tot_stripping_ohm"] if x is not None]
    if len(r) >= 2:
        text += f"; R_tot during the first stripping {r[0]:.4g} → {r[-1]:.4g} Ω at its end"
    return text + doubts


def _doubts(result: dict) -> str:
    """What the headline must not hide: spectra that failed Lin-KK after a re-measure, flagged points."""
    failed, flagged = result.get("kk_failed_spectra", ()), result.get("flagged_points", 0)
    text = f"; spectra {', '.join(map(str, failed))} FAILED Kramers–Kronig (fits not clean)" if failed else ""
    return text + (f"; {flagged} points flagged (two reads disagree)" if flagged else "")
