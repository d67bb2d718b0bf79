"""Synthetic CCD traces: a Li|SE|Li cell under stepped galvanostatic cycling, with failures drawn in.

Tests reach these through the ``traces`` fixture (the suite runs with --import-mode=importlib, so a test module
cannot import a sibling helper module by name).

The intact cell follows science.md §4.2: V = sign·(|I|·R_b + 2·(2RT/F)·asinh(|j|/(2 j0)) + nucleation), with
j0 = RT/(F·ASR) per interface. Each half-cycle is one BDF step; samples fall every ``dt_s`` from ``dt_s`` after
the step starts up to its end (so the step end is logged), positive (stripping the working electrode) first.
Failures are edits of the voltage array: a short, a dip, glitches, noise, growth to the voltage limit.

Synthetic impedance spectra for the EIS tests come through the ``spectra`` fixture (class ``Spectra``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from labctl.analysis.ccd import CCDAnalyzer
from labctl.analysis.circuits import parse_circuit
from labctl.analysis.shorts import Finding

AREA_CM2 = 0.785
R_BULK_OHM = 50.0
ASR_BARE_OHM_CM2 = 10.6  # per interface (patent Table 1)
ASR_MG_OHM_CM2 = 114.0
TWO_RT_F_V = 2 * 8.314462618 * 298.15 / 96485.33212
HALF_CYCLE_S = 1800.0


@dataclass(frozen=True)
class Trace:
    t: np.ndarray  # s
    voltage: np.ndarray  # V
    current: np.ndarray  # A
    step: np.ndarray
    cycle: np.ndarray
    density: np.ndarray  # commanded j, mA/cm2 (0 at rest)

    def frame(self, counts: bool = True) -> pd.DataFrame:
        df = pd.DataFrame({"Test Time / s": self.t, "Voltage / V": self.voltage, "Current / A": self.current})
        if counts:
            df["Step Count / 1"] = self.step
            df["Cycle Count / 1"] = self.cycle
        return df

    def stream(self, analyzer: CCDAnalyzer, reason: str = "time", last_reason: str | None = None,
               stop_at_failure: bool = True) -> list[Finding]:
        """Feed the analyzer as the live procedure does: every sample until a failure is confirmed (all of them
        unless ``stop_at_failure``), and end_segment at each step end (``reason`` for half-cycles, None for rest,
        ``last_reason`` for the last step when given)."""
        found: list[Finding] = []
        n = len(self.t)
        for i in range(n):
            found += analyzer.add(float(self.t[i]), float(self.voltage[i]), float(self.current[i]),
                                  int(self.step[i]), int(self.cycle[i]))
            if stop_at_failure and analyzer.failure is not None:
                break
            if i == n - 1 and last_reason is not None:
                found += analyzer.end_segment(last_reason)
            elif i == n - 1 or self.step[i + 1] != self.step[i]:
                found += analyzer.end_segment(reason if self.density[i] else None)
        return found

    def where(self, mask: np.ndarray, voltage: np.ndarray) -> Trace:
        return replace(self, voltage=np.where(mask, voltage, self.voltage))

    def until(self, t_s: float) -> Trace:
        """The trace up to and including ``t_s`` (the instrument stopped there)."""
        keep = self.t <= t_s
        return Trace(*(a[keep] for a in (self.t, self.voltage, self.current, self.step, self.cycle, self.density)))


def intact_voltage(density_mA_cm2: float, asr_ohm_cm2: float = ASR_BARE_OHM_CM2,
                   r_bulk_ohm: float = R_BULK_OHM, area_cm2: float = AREA_CM2) -> float:
    """|V| of an intact cell at |j|, without nucleation."""
    j0 = 25.69 / asr_ohm_cm2  # mA/cm2
    current_A = density_mA_cm2 * area_cm2 / 1000
    return current_A * r_bulk_ohm + 2 * TWO_RT_F_V * math.asinh(density_mA_cm2 / (2 * j0))


def fixed_time_ccd(top: float = 0.5, *, dt_s: float = 10.0, start: float = 0.1, step: float = 0.1,
                   cycles_per_level: int = 2, half_cycle_s: float = HALF_CYCLE_S,
                   half_cycle_mAh_cm2: float | None = None, asr_ohm_cm2: float = ASR_BARE_OHM_CM2,
                   nucleation_V: float = 0.0, rest_s: float = 0.0, initial_rest_s: float = 0.0,
                   area_cm2: float = AREA_CM2) -> Trace:
    """Levels ``start``..``top`` mA/cm2; fixed-time half-cycles, or fixed-capacity ones when
    ``half_cycle_mAh_cm2`` is given; ``rest_s`` of rest (its own step) after every half-cycle; ``initial_rest_s``
    of open-circuit rest (step 1, cycle 0, V = 0 but for 50 µV of offset) before the first half-cycle."""
    levels = [round(start + k * step, 6) for k in range(round((top - start) / step) + 1)]
    cols: dict[str, list] = {k: [] for k in ("t", "v", "i", "step", "cycle", "j")}
    t0, step_no, cycle = 0.0, 0, 0
    if initial_rest_s:
        step_no += 1
        _extend(cols, np.arange(0, int(initial_rest_s // dt_s) + 1) * dt_s, 50e-6, 0.0, step_no, cycle, 0.0)
        t0 = initial_rest_s
    for j in levels:
        duration = half_cycle_mAh_cm2 / j * 3600 if half_cycle_mAh_cm2 else half_cycle_s
        for _ in range(cycles_per_level):
            cycle += 1
            for sign in (1, -1):
                step_no += 1
                offsets = np.arange(1, round(duration / dt_s) + 1) * dt_s
                plated = j * offsets / 3600  # mAh/cm2 since the step began
                v = intact_voltage(j, asr_ohm_cm2, area_cm2=area_cm2) + nucleation_V * np.exp(-plated / 0.01)
                _extend(cols, t0 + offsets, sign * v, sign * j * area_cm2 / 1000, step_no, cycle, sign * j)
                t0 += duration
                if rest_s:
                    step_no += 1
                    _extend(cols, t0 + np.arange(1, int(rest_s // dt_s) + 1) * dt_s, 0.0, 0.0, step_no, cycle, 0.0)
                    t0 += rest_s
    return Trace(np.array(cols["t"]), np.array(cols["v"]), np.array(cols["i"]), np.array(cols["step"]),
                 np.array(cols["cycle"]), np.array(cols["j"]))


def _extend(cols: dict[str, list], t: np.ndarray, v, i: float, step: int, cycle: int, j: float) -> None:
    n = len(t)
    cols["t"] += t.tolist()
    cols["v"] += np.broadcast_to(v, (n,)).tolist()
    cols["i"] += [i] * n
    cols["step"] += [step] * n
    cols["cycle"] += [cycle] * n
    cols["j"] += [j] * n


def level_start_s(j: float, start: float = 0.1, step: float = 0.1, cycles_per_level: int = 2,
                  half_cycle_s: float = HALF_CYCLE_S, initial_rest_s: float = 0.0) -> float:
    """Test time at which level ``j`` begins in a fixed-time trace without rest between half-cycles."""
    return initial_rest_s + round((j - start) / step) * cycles_per_level * 2 * half_cycle_s


def short(trace: Trace, from_s: float, r_short_ohm: float = 2.0, until_s: float = math.inf) -> Trace:
    """From ``from_s`` the cell is a resistor: V = I·R_short (a partial short with a larger R)."""
    return trace.where((trace.t >= from_s) & (trace.t < until_s), trace.current * r_short_ohm)


def dip(trace: Trace, from_s: float, until_s: float, factor: float) -> Trace:
    """|V| multiplied by ``factor`` in [from_s, until_s)."""
    return trace.where((trace.t >= from_s) & (trace.t < until_s), trace.voltage * factor)


def glitch(trace: Trace, at_s: float, samples: int, factor: float = 0.02) -> Trace:
    """``samples`` consecutive readings from ``at_s`` on collapse to ``factor`` x |V|."""
    first = int(np.searchsorted(trace.t, at_s))
    mask = np.zeros(len(trace.t), bool)
    mask[first:first + samples] = True
    return trace.where(mask, trace.voltage * factor)


def noise(trace: Trace, relative: float, absolute_V: float, seed: int = 1) -> Trace:
    """Gaussian voltage noise (relative and absolute) on samples with current."""
    rng = np.random.default_rng(seed)
    noisy = trace.voltage * (1 + relative * rng.standard_normal(len(trace.t))) + \
        absolute_V * rng.standard_normal(len(trace.t))
    return trace.where(trace.current != 0, noisy)


def spiky(trace: Trace, from_s: float, until_s: float, depth: float, seed: int = 2) -> Trace:
    """Soft-short noise: every other sample in [from_s, until_s) dips by a random fraction up to ``depth``."""
    rng = np.random.default_rng(seed)
    factors = 1 - depth * rng.uniform(0.5, 1.0, len(trace.t)) * (np.arange(len(trace.t)) % 2)
    return trace.where((trace.t >= from_s) & (trace.t < until_s), trace.voltage * factors)


def grow(trace: Trace, from_s: float, until_s: float, tau_s: float) -> Trace:
    """|V| grows as exp((t - from_s)/tau) in [from_s, until_s): voids at the stripping electrode."""
    window = (trace.t >= from_s) & (trace.t < until_s)
    return trace.where(window, trace.voltage * np.exp(np.clip(trace.t - from_s, 0, None) / tau_s))


@pytest.fixture
def traces():
    """This module: trace builders and the cell's constants."""
    return sys.modules[__name__]


class Spectra:
    """Synthetic impedance spectra for the EIS tests (``spectra`` fixture): 61 points per sweep, log-spaced from
    high to low frequency, Z from labctl's circuit model (itself checked against impedance.py in
    test_circuits.py). Noise follows science.md §3.2: Gaussian, 0.5 % of Re and of Im."""

    AREA_CM2 = 0.785
    WINDOWS: ClassVar[dict[str, tuple[float, float]]] = {"1MHz-0.1Hz": (1e6, 0.1), "2MHz-2Hz": (2e6, 2.0)}
    CIRCUITS: ClassVar[dict[str, tuple[str, tuple[float, ...]]]] = {  # name: (circuit, true parameters)
        "one arc": ("R0-p(R1,CPE1)-W1", (50.0, 27.0, 2e-6, 0.85, 5.0)),
        # grain boundary near 100 kHz, interface near 1 kHz
        "two arcs": ("R0-p(R1,CPE1)-p(R2,CPE2)-W1", (50.0, 30.0, 2e-7, 0.9, 27.0, 2.2e-5, 0.85, 5.0)),
        "inductance": ("L0-R0-p(R1,CPE1)-W1", (2e-7, 50.0, 27.0, 2e-6, 0.85, 5.0)),
    }

    @staticmethod
    def frequencies(window: str = "1MHz-0.1Hz", points: int = 61) -> np.ndarray:
        high, low = Spectra.WINDOWS[window]
        return np.logspace(np.log10(high), np.log10(low), points)

    @staticmethod
    def spectrum(circuit: str, parameters, window: str = "1MHz-0.1Hz", noise: float = 0.0,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        f = Spectra.frequencies(window)
        return f, Spectra.noisy(parse_circuit(circuit).impedance(f, parameters), noise, seed)

    @staticmethod
    def named(name: str, window: str = "1MHz-0.1Hz", noise: float = 0.0, seed: int = 0):
        circuit, parameters = Spectra.CIRCUITS[name]
        return Spectra.spectrum(circuit, parameters, window, noise, seed)

    @staticmethod
    def drifting(growth: float, window: str = "1MHz-0.1Hz", noise: float = 0.0,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The one-arc cell losing contact while it is measured: R1 grows and Q1 falls by the factor
        1 + growth·t/T over the sweep, where each point takes max(3 periods, 0.2 s) as on the Solartron."""
        circuit, (r0, r1, q1, alpha, a_w) = Spectra.CIRCUITS["one arc"]
        model = parse_circuit(circuit)
        f = Spectra.frequencies(window)
        elapsed = np.cumsum(np.maximum(3 / f, 0.2))
        loss = 1 + growth * elapsed / elapsed[-1]
        z = np.array([model.impedance([fk], [r0, r1 * k, q1 / k, alpha, a_w])[0] for fk, k in zip(f, loss, strict=True)])
        return f, Spectra.noisy(z, noise, seed)

    @staticmethod
    def noisy(z: np.ndarray, noise: float, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        real = z.real * (1 + noise * rng.standard_normal(z.size))
        return real + 1j * z.imag * (1 + noise * rng.standard_normal(z.size))


@pytest.fixture
def spectra() -> type[Spectra]:
    """Synthetic impedance spectra: see :class:`Spectra`."""
    return Spectra
