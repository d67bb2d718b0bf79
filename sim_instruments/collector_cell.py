"""A 0-D collector|SE|collector cell without lithium: the blocking cell of Wang's 4.2 V corrosion hold.

Wang et al., Adv. Mater. 2024 (seed 001, the paragraph on Fig. S26) hold Cu|SE|Cu, W-Cu|SE|W-Cu, Mg-Cu|SE|Mg-Cu
and Mg/W-Cu|SE|Mg/W-Cu (Li6PS5Cl, 12 mm collectors) at 4.2 V for up to 100 h: the anodic current drops fast, then
settles at 39, 3, 3, 4 µA after 10 h, 35, 3, 2, 2 µA after 50 h and 16, 2, 1, 1 µA after 90 h.

Model, per cell: R_b in series with the interfaces at voltage v, across which only faradaic current flows:
- passivation, i_p = i_p0·exp(-q_p/q_0)·s(v): the SE decomposes against the polarised collectors until its products
  block it, q_p the charge passed so far. Under a hold i_p ≈ q_0/t after the first ≈10 s: the rapid initial drop.
  Under constant current v rises as q_p grows, so the cell charges like a (pseudo)capacitor of ≈q_0/b.
- corrosion, i_corr = i_ref(τ)·s(v). i_ref passes through Wang's currents at 10, 50 and 90 h, interpolated linearly
  in (log t, log i) and constant outside; τ is the corrosion age, which advances as |s(v)|, so it equals the hold
  time at 4.2 V and moves slower at lower voltage.
- s(v) = sinh(v/b)/sinh(4.2 V/b): Tafel-like at high voltage, 0 at 0 V, odd in v (either collector corrodes,
  depending on the polarity).
So V(I) = I·R_b + b·asinh(I·sinh(4.2 V/b)/(i_p + i_ref)); ``current_at`` solves it for I (safeguarded Newton).

Impedance at open circuit: R_b + [CPE ‖ 1/(di/dv at v = 0)], the double layer charging in microseconds and the
faradaic paths nearly closed at 0 V, so the cell blocks at low frequency. Measurement noise from separate streams
as in sim_instruments/cells.py (voltage: seed + 1, impedance: seed + 2), the voltage's sized for a cycler channel
reading volts (full_cell.py: 0.2 mV + 0.01 % of reading) rather than the millivolts of a symmetric cell.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass

from labctl.sim_instruments.cell import SimulatedCell, find_preset
from labctl.sim_instruments.measurement import VOLTS_NOISE_FRACTION

__all__ = ["PRESETS", "CollectorCell", "CollectorPreset", "get_preset"]

WANG_AREA_CM2 = math.pi * 0.6**2  # 12 mm Ø collectors (Wang, Methods): 1.131 cm²
REFERENCE_VOLTAGE_V = 4.2  # Wang's hold voltage, at which the corrosion currents were measured
READOUT_TIMES_H = (10.0, 50.0, 90.0)
# 150 mg Li6PS5Cl pressed in a 12 mm die is ≈0.81 mm at 1.64 g/cm³; σ = 0.8 mS/cm (Wang, Methods, Fig. S36b).
BULK_ASR_OHM_CM2 = 100.0
# Passivation (model choices): 100 µA/cm² at the start of a 4.2 V hold, blocked after q_0 = 1 mC/cm² (≈0.3 µAh/cm²,
# nanometres of decomposition products), so it adds ≈q_0/t ≈ 0.03 µA/cm² at the first readout (10 h).
PASSIVATION_uA_cm2 = 100.0
PASSIVATION_mC_cm2 = 1.0
TAFEL_VOLTAGE_V = 0.25  # b: an e-fold of corrosion current per 0.25 V (film-limited corrosion, model choice)
DOUBLE_LAYER_F_CM2 = 5e-6  # science.md §4.5: 1-10 µF/cm²
CPE_EXPONENT = 0.9
_SINH_MAX = 700.0  # keep sinh finite for absurd voltages
_MAX_SUBSTEP_S = 60.0  # i_ref(τ) changes slowly; passivation bounds the substep by its own charge
_PASSIVATION_STEP = 0.1  # at most this share of q_0 per internal substep
_NEWTON_ITERATIONS = 100
_SOLVE_TOLERANCE = 1e-12  # relative to |I| + 1 µA
_BRACKET_STEP_A = 1e-9


@dataclass(frozen=True)
class CollectorPreset:
    """One collector on both sides of the SE; corrosion current densities at Wang's readout times."""

    name: str
    corrosion_uA_cm2: tuple[float, float, float]  # at 10, 50, 90 h of a 4.2 V hold
    source: str

    def __post_init__(self) -> None:
        if len(self.corrosion_uA_cm2) != len(READOUT_TIMES_H) or not all(i > 0 for i in self.corrosion_uA_cm2):
            raise ValueError(
                f"CollectorPreset {self.name!r}: corrosion_uA_cm2 needs {len(READOUT_TIMES_H)} "
                "values > 0 (10, 50, 90 h)"
            )


def _wang(name: str, currents_uA: tuple[float, float, float]) -> CollectorPreset:
    at_10h, at_50h, at_90h = (i / WANG_AREA_CM2 for i in currents_uA)
    return CollectorPreset(
        f"{name}|{name}",
        (at_10h, at_50h, at_90h),
        f"Wang et al., Adv. Mater. 2024 (seed 001), Fig. S26: {name}|SE|{name} at 4.2 V, "
        f"{', '.join(f'{i:g}' for i in currents_uA)} µA after 10, 50, 90 h on 12 mm collectors",
    )


PRESETS: dict[str, CollectorPreset] = {
    p.name: p
    for p in (
        _wang("Cu", (39.0, 35.0, 16.0)),
        _wang("W-Cu", (3.0, 3.0, 2.0)),
        _wang("Mg-Cu", (3.0, 2.0, 1.0)),
        _wang("Mg/W-Cu", (4.0, 2.0, 1.0)),
    )
}


def get_preset(name: str) -> CollectorPreset:
    """The preset called ``name``, matched case-insensitively ("cu|cu" finds "Cu|Cu")."""
    return find_preset(PRESETS, name, "collector-cell preset")


def _sinh(x: float) -> float:
    return math.sinh(min(max(x, -_SINH_MAX), _SINH_MAX))


class CollectorCell(SimulatedCell[CollectorPreset]):
    """A simulated collector|SE|collector cell ``preset`` (see ``PRESETS``) of ``area_cm2`` per collector.

    Nothing in it is random but the measurement noise (voltage: seed + 1, impedance: seed + 2, as the other cells).
    """

    NOISE_FRACTION = VOLTS_NOISE_FRACTION
    get_preset = staticmethod(get_preset)

    def __init__(self, preset: str | CollectorPreset, *, area_cm2: float, seed: int = 0) -> None:
        super().__init__(preset, area_cm2=area_cm2, seed=seed)
        self._r_b = BULK_ASR_OHM_CM2 / area_cm2
        self._i_p0 = PASSIVATION_uA_cm2 * 1e-6 * area_cm2
        self._q_0 = PASSIVATION_mC_cm2 * 1e-3 * area_cm2
        self._log_t = tuple(math.log(t * 3600) for t in READOUT_TIMES_H)
        self._log_i = tuple(math.log(i * 1e-6 * area_cm2) for i in self._preset.corrosion_uA_cm2)
        self._scale = math.sinh(REFERENCE_VOLTAGE_V / TAFEL_VOLTAGE_V)  # s(v) = sinh(v/b)/scale
        self._passivation_C = 0.0
        self._age_s = 0.0  # τ: corrosion age, hold time at 4.2 V equivalent
        self._corrosion_C = 0.0

    # -- read-only state -------------------------------------------------------------------------------------
    @property
    def bulk_resistance_ohm(self) -> float:
        return self._r_b

    @property
    def corrosion_age_h(self) -> float:
        """τ: how long the cell has corroded, counted as hours at 4.2 V."""
        return self._age_s / 3600

    @property
    def corrosion_charge_C(self) -> float:
        """Charge passed by corrosion so far (both polarities counted), C."""
        return self._corrosion_C

    @property
    def passivation_charge_C(self) -> float:
        """q_p: charge that went into decomposing the SE so far, C."""
        return self._passivation_C

    def _passivation_current(self) -> float:
        """i_p at 4.2 V now, A."""
        return self._i_p0 * math.exp(-self._passivation_C / self._q_0)

    def _reference_current(self) -> float:
        """i_ref(τ): Wang's current at 4.2 V after τ, A; log-log interpolation, constant outside the readouts."""
        xs, ys = self._log_t, self._log_i
        t = math.log(max(self._age_s, 1.0))
        if t <= xs[0]:
            return math.exp(ys[0])
        if t >= xs[-1]:
            return math.exp(ys[-1])
        k = bisect.bisect_right(xs, t)
        return math.exp(ys[k - 1] + (ys[k] - ys[k - 1]) * (t - xs[k - 1]) / (xs[k] - xs[k - 1]))

    # -- voltage and current ---------------------------------------------------------------------------------
    def voltage(self, current_A: float) -> float:
        """Noise-free terminal voltage, V, with ``current_A`` flowing now."""
        return current_A * self._r_b + self._interface_voltage(current_A)


    def current_at(self, voltage_V: float) -> float:
        """Noise-free current, A, that holds the terminal voltage at ``voltage_V`` now."""
        r_b, b, k = self._r_b, TAFEL_VOLTAGE_V, self._scale / (self._passivation_current() + self._reference_current())
        return self._solve(
            lambda i: i * r_b + b * math.asinh(i * k) - voltage_V,
            lambda i: r_b + b * k / math.sqrt(1 + (i * k) ** 2),
            _sinh(voltage_V / b) / k,  # the current without the R_b drop
        )

    def _interface_voltage(self, current_A: float) -> float:
        """v where the faradaic paths pass ``current_A``."""
        total = self._passivation_current() + self._reference_current()
        return TAFEL_VOLTAGE_V * math.asinh(current_A * self._scale / total)

    @staticmethod
    def _solve(f: Callable[[float], float], df: Callable[[float], float], guess: float) -> float:
        """Root of an increasing f: bracket it by doubling steps from ``guess``, then Newton kept inside the
        bracket, bisecting whenever Newton would leave it or stall (asinh makes f flat far from the root)."""
        a, fa = guess, f(guess)
        if fa == 0:
            return a
        direction = -1.0 if fa > 0 else 1.0
        step = _BRACKET_STEP_A + 1e-3 * abs(guess)
        b, fb = a + direction * step, f(a + direction * step)
        while (fb > 0) == (fa > 0) and fb != 0:
            a, fa = b, fb
            step *= 2
            b, fb = a + direction * step, f(a + direction * step)
        low, high = min(a, b), max(a, b)
        u = b if fb == 0 else (low + high) / 2
        for _ in range(_NEWTON_ITERATIONS):
            value = f(u)
            if value == 0 or high - low <= _SOLVE_TOLERANCE * (1e-6 + abs(u)):
                break
            if value > 0:
                high = u
            else:
                low = u
            newton = u - value / df(u)
            if abs(newton - u) <= _SOLVE_TOLERANCE * (1e-6 + abs(u)):
                return newton
            u = newton if low < newton < high and abs(newton - u) < (high - low) / 2 else (low + high) / 2
        return u

    # -- impedance ------------------------------------------------------------------------------------------
    def _impedance(self, omega: float) -> complex:
        """Blocking: |Z| grows as the frequency falls."""
        jw = 1j * omega
        conductance = (self._passivation_current() + self._reference_current()) / (TAFEL_VOLTAGE_V * self._scale)
        return self._r_b + 1 / (DOUBLE_LAYER_F_CM2 * self._area * jw**CPE_EXPONENT + conductance)


    # -- time evolution --------------------------------------------------------------------------------------
    def _integrate(self, current_A: float, dt_s: float) -> None:
        """Let ``current_A`` flow for ``dt_s`` seconds: passivate, corrode, age."""
        remaining = dt_s
        while remaining > 0 and current_A != 0:
            i_p, i_ref = self._passivation_current(), self._reference_current()
            passivating = abs(current_A) * i_p / (i_p + i_ref)  # both paths see the same v: they share I
            h = min(remaining, _MAX_SUBSTEP_S, _PASSIVATION_STEP * self._q_0 / passivating if passivating else math.inf)
            s = _sinh(self._interface_voltage(current_A) / TAFEL_VOLTAGE_V) / self._scale
            self._passivation_C += passivating * h
            self._corrosion_C += (abs(current_A) - passivating) * h
            self._age_s += abs(s) * h
            remaining -= h
