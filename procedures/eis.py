"""Electrochemical impedance spectrum at open circuit, fitted and validated.

Defaults follow the patent (US 2025/0266506 A1: Solartron 1260A, 1 MHz to 0.1 Hz) with 10 points per
decade and a 10 mV rms amplitude (PROTOCOLS.md §3). The analyzer is reset and configured before the
spectrum. Results: the spectrum table (``spectra.csv``, and ``spectrum-001.z`` for ZView), an
equivalent-circuit fit, R_b (high-frequency intercept), R_tot (real-axis width before the
low-frequency tail), R_int = R_tot − R_b, the area-specific resistance per interface of a symmetric
cell (R_int·A/2), the ionic conductivity σ = L/(R_b·A) when the pellet thickness is given, and a
Kramers–Kronig (Lin-KK) check with pass/fail.
"""

from __future__ import annotations

from typing import ClassVar

from pymeasure.experiment import FloatParameter, IntegerParameter, Parameter

from labctl.analysis.eis import analyze_spectrum
from labctl.analysis.zview import format_z
from labctl.procedures.base import LabProcedure, ParameterError
from labctl.procedures.spectrum import log_frequencies, measure_spectrum


class SpectrumParameters:
    """Parameters of a spectrum shared by the EIS procedures (mixed into a LabProcedure)."""

    amplitude = FloatParameter("AC amplitude", units="mV rms", minimum=0.1, maximum=3000, default=10.0)
    integration_time = FloatParameter("Integration time", units="s", minimum=0.01, maximum=100, default=0.2)
    points_per_decade = IntegerParameter("Points per decade", minimum=1, maximum=100, default=10)
    circuit = Parameter("Equivalent circuit", default="R0-p(R1,CPE1)-W1",
                        description="Circuit to fit, in impedance.py's syntax")
    thickness = FloatParameter("Pellet thickness", units="cm", minimum=0, maximum=10, default=0.0,
                               description="Electrolyte thickness for the conductivity; 0 if unknown")

    def frequencies(self) -> list[float]:
        return log_frequencies(self.start_frequency, self.stop_frequency, self.points_per_decade)

    def configure_analyzer(self) -> None:
        self.analyzer.configure(amplitude_V=self.amplitude / 1000, dc_bias_V=0.0,
                                integration_time_s=self.integration_time)

    def analyze(self, points: list[tuple[float, complex]]) -> dict:
        freqs, z = zip(*points, strict=True)
        return analyze_spectrum(list(freqs), list(z), area_cm2=self.area_cm2, thickness_cm=self.thickness or None,
                                circuit=self.circuit).to_dict()

    def check_frequencies(self) -> None:
        try:
            self.frequencies()
        except ValueError as e:
            raise ParameterError(f"start_frequency/stop_frequency: {e}") from None


class EISProcedure(SpectrumParameters, LabProcedure):
    """One impedance spectrum at open circuit, with fit, R_tot, ASR, conductivity and a KK check."""

    NAME = "eis"
    ROLES = ("impedance",)
    DATA_COLUMNS: ClassVar[list[str]] = ["Frequency / Hz", "Real Impedance / ohm", "Imaginary Impedance / ohm"]

    start_frequency = FloatParameter("Start frequency", units="Hz", minimum=1e-5, maximum=3.2e7, default=1e6)
    stop_frequency = FloatParameter("Stop frequency", units="Hz", minimum=1e-5, maximum=3.2e7, default=0.1)

    def check(self) -> None:
        self.check_frequencies()

    def startup(self) -> None:
        self.analyzer = self.bench.role("impedance")
        self.clock = self.bench.clock
        self.configure_analyzer()

    def execute(self) -> None:
        freqs = self.frequencies()
        points = measure_spectrum(self.analyzer, self.clock, freqs, self.should_stop,
                                  on_point=lambda done, total: self.emit("progress", 100.0 * done / total))
        self.emit("spectrum", {"index": 1, "test_time_s": 0.0, "cycle": 0, "step": 0, "points": points})
        if len(points) < len(freqs):
            return
        result = self.analyze(points)
        self.emit("export", {"name": "spectrum-001.z", "text": format_z(points, amplitude_V=self.amplitude / 1000)})
        result["headline"] = headline(result)
        self.emit("result", result)


def headline(result: dict) -> str:
    def ohms(key: str, unit: str = "Ω") -> str:
        value = result.get(key)
        return "not found" if value is None else f"{value:.4g} {unit}"

    parts = [f"R_b = {ohms('R_b_ohm')}", f"R_tot = {ohms('R_tot_ohm')}",
             f"ASR = {ohms('asr_per_interface_ohm_cm2', 'Ω·cm²')} per interface"]
    if result.get("conductivity_mS_cm") is not None:
        parts.append(f"σ = {result['conductivity_mS_cm']:.3g} mS/cm")
    parts.append("KK " + ("pass" if result["kk_pass"] else "FAIL"))
    return "; ".join(parts)
