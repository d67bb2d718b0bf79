"""A 0-D anode-free Li|SE|collector half cell (research/science.md §4.3) and its impedance.

The working electrode (WE) is a bare or coated Cu collector, the counter electrode a Li foil treated as ideal.
Positive current strips Li from the WE and raises the voltage; plating onto the WE is negative current.

Inventory of the WE, per cm²: alloy Li x_a ∈ [0, Q_alloy] in the outer film, active metallic Li q_Li, dead Li.
- Plating fills the alloy first, then grows Li metal. A fraction (1 - CE) of every plated dq becomes dead Li,
  alloy filling included (science.md §2.1). Filling the alloy above its high-water mark for the first time loses
  (1 - ICE) instead (Wang Fig. S7b: Mg). CE is drawn per plating half-cycle from the seed; above 1 it reconnects
  dead Li.
- Stripping takes Li metal first, then the alloy.
- Equilibrium potential U_WE: 0 V while Li metal is present; else the film's lithiation table while plating and
  its delithiation table otherwise (hysteresis), plus the end-of-strip term V_e·q_e/(s + q_e) on the stripping
  side, s = q_Li + x_a: dV/dq grows without bound as the last Li goes, so every anodic cutoff is reached, and an
  empty collector rests near V_e. Alloy Li that de-alloys above a cutoff stays parked.

Terminal voltage, j = |I|/A:
  stripping  V = U_strip + j·R_b + (2RT/F)·asinh(j/2j0)
  plating    V = U_plate - j·(R_b + R_growth) - (2RT/F)·asinh(j/2j0) - η_n·(j/j_ref)^0.8·exp(-q/q_n)
with j0 = RT/(F·R_int) and q the charge plated in this plating half-cycle. R_b and R_int drift with the plating
count (see anode_free_presets). The nucleation dip η_n is the preset's first-plating value at the first plating
and its later value afterwards, given at Wang's j_ref = 1 mA/cm²; the 0.8 power puts bare Cu at 18 mV at
0.25 mA/cm² (Sandoval Fig. 1b) from 55 mV at 1 mA/cm² (Wang Fig. 2a).

Short: the cell shorts in plating half-cycle N = median·exp(0.15·z) (z ~ N(0, 1) from the seed), after a seeded
fraction of the previous plating's charge (1 mAh/cm² for the first), or when that plating ends if sooner. It is
hard: V = I·R_short, R_short log-uniform in 0.5-5 ohm, so no strip reaches its cutoff and CE looks > 100 %.

Impedance at open circuit: R_b + R_int‖CPE + finite Warburg, from the same R_b, R_int as the voltage; after the
short R_short + jωL. Measurement noise uses separate streams (voltage: seed + 1, impedance: seed + 2), so reading
never changes the cell's fate. Temperature is fixed at 25 °C.
"""

from __future__ import annotations

import cmath
import logging
import math

from labctl.sim_instruments.anode_free_presets import PRESETS, AnodeFreePreset, get_preset
from labctl.sim_instruments.cell import (
    CPE_EXPONENT,
    THERMAL_VOLTAGE_V,
    WARBURG_TIME_S,
    SimulatedCell,
    short_impedance,
)

__all__ = ["PRESETS", "AnodeFreeCell", "AnodeFreePreset"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

_BV_V = 2 * THERMAL_VOLTAGE_V  # 2RT/F

EMPTY_ELECTRODE_V = 2.0  # model choice: an empty collector rests above every cutoff in use (≤ 1 V, PROTOCOLS §2)
END_OF_STRIP_mAh_cm2 = 3e-5  # q_e: a 0.2 V cutoff strands ≈3e-4 mAh/cm², a 0.17 V rise takes ≈0.006 mAh/cm²
NUCLEATION_mAh_cm2 = 0.005  # q_n: the dip is gone within ≈0.02 mAh/cm² (model choice; "sharp", Wang Fig. 2a)
NUCLEATION_REFERENCE_A_cm2 = 1e-3  # Wang's dips are at 1 mA/cm²
NUCLEATION_EXPONENT = 0.8
SHORT_SPREAD = 0.15  # log-normal spread of the short cycle
FIRST_PLATING_mAh_cm2 = 1.0  # charge scale of the short point in a first plating (1 mAh/cm² in Wang, Sandoval)
INTERFACE_CAPACITANCE_F_cm2 = 5e-6  # Q_dl, 1-10 µF/cm² (science.md §4.5)
WARBURG_OHM_CM2_SQRT_S = 10.0  # σ_W·A, model choice as in presets.py
_NEWTON_TOLERANCE = 1e-12


class AnodeFreeCell(SimulatedCell[AnodeFreePreset]):
    """A simulated Li|SE|collector half cell with the collector ``preset`` (see ``PRESETS``).

    ``area_cm2`` is the WE area. ``seed`` fixes the cell's fate (short cycle and point, R_short, per-plating CE);
    measurement noise comes from separate streams (voltage: seed + 1, impedance: seed + 2).
    """

    get_preset = staticmethod(get_preset)

    def __init__(self, preset: str | AnodeFreePreset, *, area_cm2: float, seed: int = 0) -> None:
        super().__init__(preset, area_cm2=area_cm2, seed=seed)
        p = self._preset
        film = p.alloy_film if p.alloy_capacity_mAh_cm2 > 0 else None
        self._q_alloy = p.alloy_capacity_mAh_cm2
        self._lith = film.lithiation if film else None
        self._delith = film.delithiation if film else None
        self._r_growth = p.growth_asr_ohm_cm2

        self._short_cycle = max(1, round(p.short_median_cycles * math.exp(SHORT_SPREAD * self._events.gauss(0, 1))))
        self._short_fraction = self._events.random()
        self._r_short = self._draw_short_resistance()
        self._short_charge = math.inf  # mAh/cm² into the short's plating half-cycle
        self._shorted = False

        self._x = 0.0  # alloy Li, mAh/cm²
        self._x_high = 0.0  # the alloy's high-water mark
        self._q_li = 0.0
        self._dead = 0.0
        self._plating_count = 0
        self._last_sign = 0
        self._q_half = 0.0  # charge plated in the present (or last) plating half-cycle
        self._ce_now = p.ce
        self._nucleation_now = 0.0
        self._nucleation_next = p.first_nucleation_V
        self._set_resistances(1)

    # -- read-only state -------------------------------------------------------------------------------------
    @property
    def alloy_capacity_Ah(self) -> float:
        """Q_alloy of the outer film over the electrode, Ah."""
        return self._ah(self._q_alloy)

    @property
    def alloy_charge_Ah(self) -> float:
        """Li held in the alloy film now (x_a), Ah."""
        return self._ah(self._x)

    @property
    def active_li_Ah(self) -> float:
        """Metallic Li that can still be stripped (q_Li), Ah."""
        return self._ah(self._q_li)

    @property
    def dead_li_Ah(self) -> float:
        """Li lost to SEI and dead metal so far, Ah."""
        return self._ah(self._dead)

    @property
    def plating_count(self) -> int:
        """Plating half-cycles begun so far (a rest does not end one; a strip does)."""
        return self._plating_count

    @property
    def shorted(self) -> bool:
        return self._shorted

    @property
    def short_cycle(self) -> int:
        """The plating half-cycle in which this cell shorts (drawn from the seed)."""
        return self._short_cycle

    @property
    def short_resistance_ohm(self) -> float:
        """Resistance of the short once formed (drawn from the seed), ohm; inf while the cell is intact."""
        return self._r_short if self._shorted else math.inf

    @property
    def bulk_resistance_ohm(self) -> float:
        """R_b now, ohm: the EIS high-frequency intercept."""
        return self._r_b / self._area

    @property
    def interface_resistance_ohm(self) -> float:
        """R_int of the WE now (charge transfer and SEI), ohm."""
        return self._r_int / self._area

    # -- terminal voltage ------------------------------------------------------------------------------------
    def voltage(self, current_A: float) -> float:
        """Noise-free terminal voltage, V, with ``current_A`` flowing now (positive strips the WE)."""
        if self._shorted:
            return current_A * self._r_short
        if current_A > 0:
            j = current_A / self._area
            return self._stripping_potential() + j * self._r_b + _BV_V * math.asinh(j / self._two_j0)
        if current_A < 0:
            j = -current_A / self._area
            eta = j * (self._r_b + self._r_growth) + _BV_V * math.asinh(j / self._two_j0)
            amplitude = self._nucleation_amplitude()
            if amplitude:
                eta += amplitude * (j / NUCLEATION_REFERENCE_A_cm2) ** NUCLEATION_EXPONENT
            return self._plating_potential() - eta
        return self._plating_potential() if self._last_sign < 0 else self._stripping_potential()


    def current_at(self, voltage_V: float) -> float:
        """Noise-free current, A, that holds the terminal voltage at ``voltage_V`` now; 0 inside the hysteresis gap
        between the plating and stripping potentials."""
        if self._shorted:
            return voltage_V / self._r_short
        top = self._stripping_potential()
        if voltage_V > top:
            return self._area * self._density_for(voltage_V - top, self._r_b, 0.0)
        bottom = self._plating_potential()
        if voltage_V < bottom:
            a = self._nucleation_amplitude() / NUCLEATION_REFERENCE_A_cm2**NUCLEATION_EXPONENT
            return -self._area * self._density_for(bottom - voltage_V, self._r_b + self._r_growth, a)
        return 0.0

    def _stripping_potential(self) -> float:
        s = self._q_li + self._x
        u = self._delith.at(self._x / self._q_alloy) if self._q_li <= 0 and self._delith else 0.0
        return u + EMPTY_ELECTRODE_V * END_OF_STRIP_mAh_cm2 / (s + END_OF_STRIP_mAh_cm2)

    def _plating_potential(self) -> float:
        if self._x >= self._q_alloy or not self._lith:
            return 0.0
        return self._lith.at(self._x / self._q_alloy)

    def _nucleation_amplitude(self) -> float:
        """η_n·exp(-q/q_n) of the plating under way, or of the next one if the WE is not plating now, V."""
        if self._last_sign < 0:
            return self._nucleation_now * math.exp(-self._q_half / NUCLEATION_mAh_cm2) if self._nucleation_now else 0
        return self._nucleation_next

    def _density_for(self, dv: float, r: float, a: float) -> float:
        """j ≥ 0 (A/cm²) with r·j + (2RT/F)·asinh(j/2j0) + a·j^0.8 = dv. The left side is concave, so Newton from
        the upper bound dv/r jumps below the root once and then climbs to it monotonically."""
        j = dv / r
        for _ in range(50):
            f = r * j + _BV_V * math.asinh(j / self._two_j0) - dv
            slope = r + _BV_V / math.hypot(self._two_j0, j)
            if a:
                f += a * j**NUCLEATION_EXPONENT
                slope += a * NUCLEATION_EXPONENT * j ** (NUCLEATION_EXPONENT - 1)
            step = f / slope
            j_next = j - step if step < j else j * 1e-3  # stay in j > 0, where the power term is defined
            if abs(j_next - j) <= _NEWTON_TOLERANCE * j:
                return j_next
            j = j_next
        return j

    # -- impedance ------------------------------------------------------------------------------------------
    def _impedance(self, omega: float) -> complex:
        if self._shorted:
            return short_impedance(self._r_short, omega)
        jw = 1j * omega
        r_int = self._r_int / self._area
        x = cmath.sqrt(jw * WARBURG_TIME_S)
        warburg = WARBURG_OHM_CM2_SQRT_S / self._area * math.sqrt(2 * WARBURG_TIME_S) * cmath.tanh(x) / x
        arc = r_int / (1 + r_int * INTERFACE_CAPACITANCE_F_cm2 * self._area * jw**CPE_EXPONENT)
        return self._r_b / self._area + arc + warburg


    # -- time evolution --------------------------------------------------------------------------------------
    def _integrate(self, current_A: float, dt_s: float) -> None:
        """Let ``current_A`` flow for ``dt_s`` seconds: plate or strip, count platings, form the short."""
        if current_A == 0 or dt_s == 0:
            return
        sign = 1 if current_A > 0 else -1
        if sign != self._last_sign:
            self._reverse(sign)
        if self._shorted:
            return
        dq = abs(current_A) / self._area * dt_s / 3.6  # mAh/cm²
        if sign > 0:
            self._strip(dq)
            return
        shorts = self._plating_count == self._short_cycle and self._q_half + dq >= self._short_charge
        if shorts:
            dq = max(0.0, self._short_charge - self._q_half)
        self._plate(dq)
        self._q_half += dq
        if shorts:
            self._form_short()

    def _reverse(self, sign: int) -> None:
        if sign < 0:  # a plating half-cycle begins
            q_previous = self._q_half if self._plating_count else FIRST_PLATING_mAh_cm2
            self._plating_count += 1
            n = self._plating_count
            self._q_half = 0.0
            if n == self._short_cycle:
                self._short_charge = self._short_fraction * q_previous
            self._ce_now = self._draw_ce(n)
            self._nucleation_now = self._nucleation_next
            self._nucleation_next = self._preset.nucleation_V
            self._set_resistances(n)
        elif self._plating_count == self._short_cycle and not self._shorted:
            self._form_short()  # that plating ended before its short point
        self._last_sign = sign

    def _draw_ce(self, n: int) -> float:
        p = self._preset
        first = p.ce if p.first_ce is None else p.first_ce
        mean = p.ce + (first - p.ce) * math.exp(-(n - 1) / p.ce_settling_cycles)
        fluctuating = self._short_cycle - p.fluctuation_cycles <= n < self._short_cycle
        return mean + (p.fluctuation_spread if fluctuating else p.ce_spread) * self._events.gauss(0.0, 1.0)

    def _set_resistances(self, n: int) -> None:
        p = self._preset
        self._r_b = max(0.01, p.bulk_asr_ohm_cm2 + p.bulk_asr_change_ohm_cm2_per_cycle * (min(n, p.turn_cycle) - 1))
        self._r_int = max(
            0.01, p.interface_asr_ohm_cm2 + p.interface_asr_change_ohm_cm2_per_cycle * max(0, n - p.turn_cycle)
        )
        self._two_j0 = _BV_V / self._r_int  # 2·j0 = 2RT/(F·R_int), A/cm²

    def _plate(self, dq: float) -> None:
        ce = self._ce_now
        if ce > 1 and dq > 0:  # reconnect no more dead Li than there is
            ce = 1 + min(ce - 1, self._dead / dq)
        if self._x < self._q_alloy:
            first = self._preset.first_alloying_efficiency or ce
            for ceiling, efficiency in ((self._x_high, ce), (self._q_alloy, first)):
                if dq > 0 and self._x < ceiling:
                    used = min(dq, (ceiling - self._x) / efficiency)
                    self._x = min(ceiling, self._x + used * efficiency)
                    self._dead += used * (1 - efficiency)
                    dq -= used
            self._x_high = max(self._x_high, self._x)
        self._q_li += dq * ce
        self._dead = max(0.0, self._dead + dq * (1 - ce))

    def _strip(self, dq: float) -> None:
        taken = min(dq, self._q_li)
        self._q_li -= taken
        self._x = max(0.0, self._x - (dq - taken))  # beyond the inventory the charge feeds side reactions

    def _form_short(self) -> None:
        self._shorted = True
        log.debug("hard short in plating %d, R_short = %.2f ohm", self._plating_count, self._r_short)

    def _ah(self, q_mAh_cm2: float) -> float:
        return q_mAh_cm2 * self._area / 1000
