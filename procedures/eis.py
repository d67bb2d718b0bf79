"""Electrochemical impedance spectrum at open circuit, fitted and validated.

Defaults follow the patent (US 2025/0266506 A1: Solartron 1260A, 1 MHz to 0.1 Hz) with 10 points per
decade and a 10 mV rms amplitude (PROTOCOLS.md §3). The analyzer is reset and configured before the
spectrum. A 1260 without a potentiostat holds the cell at its own DC bias, so the spectrum is taken at the cell's
open-circuit voltage, read from the cycler channel at rest (``bias_from = cycler``), or at ``dc_bias`` (``bias_from =
dc_bias``, for a bench without a cycler); a bias that, with the amplitude's peak, would leave the EIS voltage limits
(Sandoval et al.: -1 to 1 V on the cell) refuses the spectrum with an event. Results: the spectrum table
(``spectra.csv``, and ``spectrum-001.z`` for ZView), an equivalent-circuit fit, R_b (high-frequency intercept), R_tot
(real-axis width before the low-frequency tail), R_int = R_tot − R_b, the area-specific resistance per interface of a
symmetric cell (R_int·A/2), the ionic conductivity σ = L/(R_b·A) when the pellet thickness is given, and a
Kramers–Kronig (Lin-KK) check with pass/fail.

Every EIS procedure takes its spectra through :meth:`SpectrumParameters.take_spectrum`: points that disagree with
their neighbours are measured again (``point_remeasured`` events; :mod:`labctl.procedures.spectrum`), and a
spectrum that fails Lin-KK is measured once more, stored under the next index and kept in its place (a
``spectrum_remeasured`` event): a passing re-measure means the first was disturbed (a drifting cell, a bad read);
a second failure is the spectrum's own, and the result and headline say so (``kk_pass`` false, "failed KK twice").
Both spectra stay in ``spectra.csv``; the kept one is the last, which re-analysis reads. Points whose two reads
disagreed are listed in the result (``flagged_points_Hz``), as are the re-measured points.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pymeasure.experiment import FloatParameter, IntegerParameter, ListParameter, Parameter

from labctl.analysis.circuits import parse_circuit
from labctl.analysis.eis import SpectrumAnalysis, analyze_spectrum, brief, headline
from labctl.analysis.zview import format_z
from labctl.bench import BenchError
from labctl.procedures.base import LabProcedure, ParameterError
from labctl.procedures.spectrum import Sweep, log_frequencies, measure_spectrum
from labctl.roles import CyclerChannel, CyclerReading, ImpedanceAnalyzer
from labctl.units import percent_done

BIAS_RANGE_V = (-40.95, 40.95)  # the 1260's VB range
EIS_VOLTAGE_LIMITS_V = (-1.0, 1.0)  # Sandoval et al.'s EIS voltage limits (cell voltage, V)
CYCLER, FIXED = "cycler", "dc_bias"
POTENTIOSTATIC, GALVANOSTATIC = "potentiostatic", "galvanostatic"


@dataclass(frozen=True)
class TakenSpectrum:
    """A spectrum measured, stored and fitted by :meth:`SpectrumParameters.take_spectrum`: its index in
    ``spectra.csv``, its sweep, its fit (None when the sweep was stopped) and the index of the spectrum it
    re-measured after a Lin-KK failure (None if it did not)."""

    index: int
    sweep: Sweep
    fit: dict[str, Any] | None
    remeasured_from: int | None = None

    def quality(self) -> dict[str, Any]:
        """What the result says about the measurement, beside the fit: re-measured points and spectrum, flags."""
        notes: dict[str, Any] = {}
        if self.sweep.rereads:
            notes["points_remeasured_Hz"] = [r.frequency_Hz for r in self.sweep.rereads]
        if self.sweep.flagged_Hz:
            notes["flagged_points_Hz"] = self.sweep.flagged_Hz
        if self.remeasured_from is not None:
            notes["remeasured_from_spectrum"] = self.remeasured_from
        return notes


class SpectrumParameters:
    """Parameters of a spectrum shared by the EIS procedures (mixed into a LabProcedure)."""

    amplitude = FloatParameter("AC amplitude", units="mV rms", minimum=0.1, maximum=3000, default=10.0)
    eis_control = ListParameter("EIS control", choices=[POTENTIOSTATIC, GALVANOSTATIC], default=POTENTIOSTATIC,
                                description="galvanostatic: at zero DC current with the AC current amplitude (a "
                                            "potentiostat such as the SP-200; a 1260 alone is potentiostatic only)")
    current_amplitude = FloatParameter("AC current amplitude", units="µA rms", minimum=0.001, maximum=100000,
                                       default=10.0, description="The AC current of a galvanostatic spectrum")
    integration_time = FloatParameter("Integration time", units="s", minimum=0.01, maximum=100, default=0.2)
    points_per_decade = IntegerParameter("Points per decade", minimum=1, maximum=100, default=10)
    circuit = Parameter("Equivalent circuit", default="R0-p(R1,CPE1)-W1",
                        description="Circuit to fit, in impedance.py's syntax")
    thickness = FloatParameter("Pellet thickness", units="cm", minimum=0, maximum=10, default=0.0,
                               description="Electrolyte thickness for the conductivity; 0 if unknown")
    eis_lower_voltage = FloatParameter(
        "EIS lower voltage limit", units="V", minimum=BIAS_RANGE_V[0], maximum=BIAS_RANGE_V[1],
        default=EIS_VOLTAGE_LIMITS_V[0], description="Lowest cell voltage a spectrum may reach (bias minus AC peak)")
    eis_upper_voltage = FloatParameter(
        "EIS upper voltage limit", units="V", minimum=BIAS_RANGE_V[0], maximum=BIAS_RANGE_V[1],
        default=EIS_VOLTAGE_LIMITS_V[1], description="Highest cell voltage a spectrum may reach (bias plus AC peak)")

    def spectrum_analysis(self) -> SpectrumAnalysis:
        """How a spectrum of this run is analysed (the EIS procedures declare it as their analysis; procedures that
        mix these parameters in for occasional spectra keep their own)."""
        return SpectrumAnalysis(self.area_cm2, self.thickness or None, self.circuit)  # type: ignore[attr-defined]

    def frequencies(self) -> list[float]:
        return log_frequencies(self.start_frequency, self.stop_frequency, self.points_per_decade)

    def configure_analyzer(self, bias_V: float, *, at_open_circuit: bool = True) -> None:
        """Set the analyzer up for the next spectra at ``bias_V``, the cell's open-circuit voltage unless
        ``at_open_circuit`` is False (a fixed bias a potentiostat must hold as given)."""
        galvanostatic = self.eis_control == GALVANOSTATIC
        self.analyzer.configure(amplitude_V=self.amplitude / 1000, dc_bias_V=bias_V,
                                integration_time_s=self.integration_time, at_open_circuit=at_open_circuit,
                                current_amplitude_A=self.current_amplitude * 1e-6 if galvanostatic else None)

    def check_bench(self, bench: Any) -> None:
        """What the spectra need of the bench's analyzer, checked before the run starts (BenchError)."""
        for role, fix in self.roles_needed().items():  # type: ignore[attr-defined]
            if role not in bench.roles:
                raise BenchError(f"bench {bench.name!r} has no {role} role. {fix}")
        if "impedance" in self.ROLES:  # type: ignore[attr-defined]
            self.check_analyzer(bench.role("impedance"))

    def check_analyzer(self, analyzer: ImpedanceAnalyzer) -> None:
        """The bench's analyzer can take these spectra (BenchError naming the parameter, before the run starts)."""
        highest = max(self.start_frequency, self.stop_frequency)
        if highest > analyzer.max_frequency_Hz:
            raise BenchError(f"start_frequency/stop_frequency: {highest:g} Hz is above the {_model(analyzer)}'s "
                             f"{analyzer.max_frequency_Hz:g} Hz; give at most -p start_frequency="
                             f"{analyzer.max_frequency_Hz:g}")
        if self.eis_control == GALVANOSTATIC and not analyzer.galvanostatic:
            raise BenchError(f"eis_control: the {_model(analyzer)} measures potentiostatically only; use "
                             "eis_control=potentiostatic, or a bench whose impedance role is a potentiostat (SP-200)")

    def bias_refusal(self, bias_V: float) -> str | None:
        """Why a spectrum at ``bias_V`` must not be taken (its bias ± the AC peak leaves the EIS voltage limits,
        or the analyzer cannot set it), or None."""
        peak = math.sqrt(2) * self.amplitude / 1000
        low, high = bias_V - peak, bias_V + peak
        if low < self.eis_lower_voltage or high > self.eis_upper_voltage:
            return (f"DC bias {bias_V:+.4f} V ± {peak * 1000:.1f} mV peak would take the cell to {low:+.4f} .. "
                    f"{high:+.4f} V, outside the EIS voltage limits {self.eis_lower_voltage:+g} .. "
                    f"{self.eis_upper_voltage:+g} V; widen eis_lower_voltage/eis_upper_voltage only if the cell "
                    "may go there")
        if not BIAS_RANGE_V[0] <= bias_V <= BIAS_RANGE_V[1]:
            return f"DC bias {bias_V:+.4f} V is beyond the analyzer's {BIAS_RANGE_V[0]:g} .. {BIAS_RANGE_V[1]:g} V"
        return None

    def check_voltage_limits(self) -> None:
        if self.eis_lower_voltage >= self.eis_upper_voltage:
            raise ParameterError(f"eis_lower_voltage: {self.eis_lower_voltage:g} V must be below eis_upper_voltage "
                                 f"{self.eis_upper_voltage:g} V")

    def analyze(self, points: list[tuple[float, complex]]) -> dict:
        freqs, z = zip(*points, strict=True)
        return analyze_spectrum(list(freqs), list(z), area_cm2=self.area_cm2, thickness_cm=self.thickness or None,
                                circuit=self.circuit).to_dict()

    def take_spectrum(self, analyzer: ImpedanceAnalyzer, store: Callable[[Sweep], int],
                      on_point: Callable[[int, int], None] = lambda done, total: None) -> TakenSpectrum:
        """Measure a spectrum on the configured ``analyzer`` (suspect points re-measured), hand it to ``store``
        (which stores it and returns its index) and fit it; one that fails Lin-KK is measured and stored once more,
        and the second is kept (see the module docstring)."""
        first = self._sweep(analyzer, on_point)
        taken = TakenSpectrum(store(first), first, self.analyze(first.points) if first.complete else None)
        if taken.fit is None or taken.fit["kk_pass"] or self.should_stop():
            return taken
        again = self._sweep(analyzer, on_point)
        index = store(again)
        if not again.complete:
            return taken
        retaken = TakenSpectrum(index, again, self.analyze(again.points), remeasured_from=taken.index)
        passed = retaken.fit["kk_pass"]
        self.emit("event", {
            "kind": "spectrum_remeasured", "spectrum": taken.index, "remeasured_as": index, "kk_pass": passed,
            "message": f"spectrum {taken.index} failed the Kramers–Kronig check; measured again as spectrum {index}, "
                       f"which {'passes: it' if passed else 'fails too; it'} is kept and analysed",
        })  # fmt: skip
        return retaken

    def _sweep(self, analyzer: ImpedanceAnalyzer, on_point: Callable[[int, int], None]) -> Sweep:
        return measure_spectrum(analyzer, self.clock, self.frequencies(), self.should_stop, on_point,
                                on_reread=lambda reread: self.emit("event", reread.event()))

    def check_frequencies(self) -> None:
        """The sweep's frequencies and the circuit to fit, checked before the run (ParameterError naming them)."""
        try:
            self.frequencies()
        except ValueError as e:
            raise ParameterError(f"start_frequency/stop_frequency: {e}") from None
        try:
            parse_circuit(self.circuit)  # type: ignore[attr-defined]
        except ValueError as e:
            raise ParameterError(f"circuit: {e}; write it in impedance.py's syntax, e.g. R0-p(R1,CPE1)-W1") from None


class EISProcedure(SpectrumParameters, LabProcedure):
    """One impedance spectrum at the cell's open-circuit voltage, with fit, R_tot, ASR, conductivity and a KK check."""

    NAME = "eis"
    ROLES = ("impedance",)
    DATA_COLUMNS: ClassVar[list[str]] = ["Frequency / Hz", "Real Impedance / ohm", "Imaginary Impedance / ohm"]

    start_frequency = FloatParameter("Start frequency", units="Hz", minimum=1e-5, maximum=3.2e7, default=1e6)
    stop_frequency = FloatParameter("Stop frequency", units="Hz", minimum=1e-5, maximum=3.2e7, default=0.1)
    bias_from = ListParameter(
        "DC bias from", choices=[CYCLER, FIXED], default=CYCLER,
        description="cycler: the open-circuit voltage the bench's cycler channel reads at rest (the cell on the "
                    "analyzer); dc_bias: the DC bias parameter, for a bench without a cycler")
    dc_bias = FloatParameter("DC bias", units="V", minimum=BIAS_RANGE_V[0], maximum=BIAS_RANGE_V[1], default=0.0,
                             description="With bias_from = dc_bias: the cell's open-circuit voltage (0 V for Li|SE|Li)")

    def check(self) -> None:
        self.check_frequencies()
        self.check_voltage_limits()

    def analysis(self) -> SpectrumAnalysis:
        """The analysis of this run's spectrum, live and from its files."""
        return self.spectrum_analysis()

    def startup(self) -> None:
        self.analyzer = self.bench.role("impedance")
        self.clock = self.bench.clock
        self.bias_V = self.dc_bias if self.bias_from == FIXED else open_circuit_voltage(self._cycler().read())

    def roles_needed(self) -> dict[str, str]:
        if self.bias_from != CYCLER:
            return {}
        return {"cycler": "bias_from: the open-circuit voltage is read from the bench's cycler; give -p bias_from=dc_bias "
                          "-p dc_bias=V (the cell's open-circuit voltage)"}

    def _cycler(self) -> CyclerChannel:
        return self.bench.role("cycler")

    def execute(self) -> None:
        refusal = self.bias_refusal(self.bias_V)
        self.emit("event", {"kind": "spectrum_refused" if refusal else "dc_bias", "dc_bias_V": self.bias_V,
                            "bias_from": self.bias_from} | ({"message": refusal} if refusal else {}))
        if refusal:
            self.emit("result", {"spectrum_refused": refusal, "dc_bias_V": self.bias_V,
                                 "headline": f"no spectrum: {refusal}"})
            return
        self.configure_analyzer(self.bias_V, at_open_circuit=self.bias_from == CYCLER)
        self._start_s, self._stored = self.clock.now(), 0
        taken = self.take_spectrum(self.analyzer, self._store,
                                   lambda done, total: self.emit("progress", percent_done(done, total)))
        if taken.fit is None:
            return
        result = taken.fit | taken.quality() | {"dc_bias_V": self.bias_V}
        self.emit("export", {"name": f"spectrum-{taken.index:03d}.z",
                             "text": format_z(taken.sweep.points, amplitude_V=self.amplitude / 1000)})
        result["headline"], result["brief"] = checked_headline(result), checked_brief(result)
        self.emit("result", result)

    def _store(self, sweep: Sweep) -> int:
        """Store a spectrum (test time from the start of the first); its index."""
        self._stored += 1
        self.emit("spectrum", {"index": self._stored, "test_time_s": sweep.started_s - self._start_s, "cycle": 0,
                               "step": 0, "points": sweep.points})
        return self._stored


def _model(analyzer: ImpedanceAnalyzer) -> str:
    identity = analyzer.identity()
    return f"{identity.get('make', '')} {identity.get('model', 'analyzer')}".strip()


def checked_headline(result: dict[str, Any]) -> str:
    """The EIS headline, led by what makes the fit untrustworthy: a spectrum that failed Lin-KK (twice, when it was
    re-measured), points whose two reads disagreed."""
    return "; ".join([*_doubts(result), headline(result)])


def checked_brief(result: dict[str, Any]) -> str:
    flagged = len(result.get("flagged_points_Hz", ()))
    return brief(result) + (f", {flagged} point{'s' * (flagged > 1)} flagged" if flagged else "")


def _doubts(result: dict[str, Any]) -> list[str]:
    doubts = []
    if not result["kk_pass"]:
        twice = " twice (re-measured)" if result.get("remeasured_from_spectrum") is not None else ""
        doubts.append(f"spectrum FAILED the Kramers–Kronig check{twice}: the fit below is not a clean result")
    flagged = result.get("flagged_points_Hz", ())
    if flagged:
        doubts.append(f"{len(flagged)} point{'s' * (len(flagged) > 1)} flagged (two reads disagree): "
                      + ", ".join(f"{f:.4g} Hz" for f in flagged))
    return doubts


def open_circuit_voltage(reading: CyclerReading) -> float:
    """The cell's open-circuit voltage from a reading of its cycler channel, which must be at rest, V."""
    if reading.current_A != 0 or reading.segment_active:
        raise RuntimeError(f"the cycler channel passes {reading.current_A * 1000:+.4g} mA ({reading.status}), so its "
                           f"{reading.voltage_V:+.4f} V is not the open-circuit voltage; rest it, or give "
                           "-p bias_from=dc_bias -p dc_bias=V")
    return reading.voltage_V
