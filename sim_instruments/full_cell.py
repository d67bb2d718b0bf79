"""0-D full cells: cathode|SE|collector (anode-free) or cathode|SE|interlayer|Li, and their impedance.

Sources: Wang et al., Adv. Mater. 2024 (seed 001: NMC811|Li6PS5Cl|collector, 1C = 200 mA/g, ≈1 mAh/cm², 2.8-4.3 V;
§2 "As proof of concept" and Fig. 6, S31-S35), the Corning patent US 2025/0266506 (seed 000, Example 2 and
Comparative Examples 5-6, [0101]-[0110]: LCO|garnet|interlayer|Li, 3 mAh/cm² per charge) and research/science.md
§2.2 (anode-free: capacity retention ≈ CE^(n-1)).

Sign: positive current charges the cell (Li leaves the cathode and is plated on the negative side).

Cathode, lithium fraction x of its active material (1 = fully lithiated, full scale Q_C):
- Open-circuit potential U(x) from the material's table, evaluated at the particle *surface* x_s.
- Solid diffusion: Subramanian's three-parameter polynomial approximation for a sphere (Subramanian et al.,
  J. Electrochem. Soc. 152 (2005) A2002): x_s = x + δ_q + δ_i, with δ_i = -r·τ_D/105 following the current at
  once and δ_q relaxing to -6·r·τ_D/105 with time constant τ_D/30 (r = I/Q_C, τ_D = R²/D). D falls steeply as
  the material fills with lithium (τ_D(x) table), so the surface saturates before the bulk at the end of
  discharge: that sets the rate capability and most of the first-cycle loss of Ni-rich NMC (its "kinetic"
  first-cycle loss).
- Charge transfer: symmetric Butler-Volmer, η_c = (2RT/F)·asinh(j/2j0), j0 = RT/(F·ASR_c).
- Argyrodite in the composite cathode oxidises on the first charges: a pool Q_ox (per g of NMC) takes the share
  Q_ox,left/Q_ox,0 · f_ox of the charging current; its lithium is plated like the cathode's, so the first charge
  delivers more than the cathode holds (Wang Fig. 6b: 265-270 mAh/g against ≈220 mAh/g of NMC811 to 4.3 V).
- While the surface OCV is above U_hv (≈4.1 V, where Ni-rich NMC enters its H2-H3 region) a fraction κ of the
  charge goes into the cathode interphase instead of plating: cyclable lithium lost at 100 % depth of charge but
  not at 50 %, which is what lets Wang's 50 % cell keep CE 99.96 % while the 100 % cells fade (Fig. S33 vs 6a).
- Active material is lost (contact loss in the composite) at a fraction per nominal cycle of throughput; it takes
  its lithium with it.

Negative electrode, inventory per cell: active Li q_Li (a Li foil's charge at the start, or 0 for an anode-free
collector), dead Li. Plating keeps a fraction CE of each plated dq active; (1 - CE) becomes dead Li (science.md
§2.2), so an anode-free cell whose discharge is limited by its plated lithium loses capacity as CE^(n-1). Li
stripped beyond the plated stock would have to come from corroding the collector: the anode potential rises as
V_e·q_e/(q_Li + q_e), so every discharge cutoff is met as the last Li goes. Plating onto a bare collector costs a
nucleation overpotential η_n·exp(-q_Li/q_n)·tanh(I/I_n) (Wang Fig. 2a-b, Fig. S32: higher on Cu and W-Cu than on
Mg; the tanh keeps V(I) continuous at I = 0).

Lithium reservoir and fade: the first charge plates more lithium (SE oxidation) than the cathode takes back at 0.1C
(its kinetic loss), and a 0.33C discharge stops earlier still, so after activation the collector keeps a reservoir.
While it lasts, discharges are limited by the cathode and CE ≈ 100 %; the collector's (1 - CE) and κ eat it, and
once it is gone the discharge is limited by the plated lithium and capacity falls as CE^(n-1): the fade onsets of
Wang Fig. 6a (Cu 15, W-Cu 21, Mg-Cu 50, Mg/W-Cu ≈120 cycles at 0.33C).

Terminal voltage: V = U(x_s) - U_a(q_Li) + I·R_b + η_c + η_a (+ nucleation while plating), R_b the SE bulk.

Li-anode cells short under charge: a hazard λ = λ0·(j/j_c)^m per mAh/cm² plated on the Li anode, summed until it
reaches a threshold E ~ Exp(1) drawn from the seed, so the short time does not depend on the step size. A hard
short puts R_short (0.5-5 ohm, log-uniform) across the cell: V = (OCV/R_int + I)·(R_int‖R_short), i.e.
≈ I·R_short plus a small remnant of the open-circuit voltage, and the cell no longer changes.

Impedance at open circuit: R_b + R_a‖CPE_a + R_c‖CPE_c + W_o, the last a bounded reflective Warburg for the
cathode's solid diffusion with the same τ_D as the voltage model (low-frequency limit R_W/3 + 1/(jωC_int),
C_int = Q_C/|dU/dx|). Temperature is fixed at 25 °C.
"""

from __future__ import annotations

import cmath
import logging
import math

from labctl.sim_instruments.cell import (
    CPE_EXPONENT,
    THERMAL_VOLTAGE_V,
    C_PER_mAh,
    SimulatedCell,
    short_impedance,
)
from labctl.sim_instruments.full_cell_presets import CATHODES, PRESETS, CathodeMaterial, FullCellPreset, get_preset
from labctl.sim_instruments.measurement import VOLTS_NOISE_FRACTION

__all__ = ["CATHODES", "PRESETS", "CathodeMaterial", "FullCell", "FullCellPreset", "get_preset"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

_S_PER_H = 3600.0

EMPTY_COLLECTOR_V = 2.0  # V_e: a collector with no Li left rests far above any discharge cutoff (model choice)
END_OF_STRIP_mAh_cm2 = 3e-5  # q_e: the last ≈1e-4 mAh/cm² of Li sets the end-of-discharge rise (model choice)
NUCLEATION_mAh_cm2 = 0.005  # q_n: the nucleation overpotential is gone within ≈0.02 mAh/cm² (Wang Fig. 2a)
NUCLEATION_CURRENT_mA_cm2 = 0.01  # below this the nucleation term fades to 0, so V(I) is continuous at I = 0
_MAX_DX = 0.005  # largest change of the cathode's lithium fraction per internal substep
_NEWTON_ITERATIONS = 30
_NEWTON_TOLERANCE_V = 1e-9


class FullCell(SimulatedCell[FullCellPreset]):
    """A simulated full cell ``preset`` (see ``PRESETS``) of ``area_cm2``.

    ``cathode_mass_mg`` is the cathode's active mass; None gives the preset's areal loading (nominal capacity per
    cm²) over the area. ``seed`` fixes when a Li-anode cell shorts; measurement noise comes from separate streams
    (voltage: seed + 1, impedance: seed + 2), so reading the cell never changes its fate.
    """

    NOISE_FRACTION = VOLTS_NOISE_FRACTION
    get_preset = staticmethod(get_preset)

    def __init__(
        self,
        preset: str | FullCellPreset,
        *,
        area_cm2: float,
        seed: int = 0,
        cathode_mass_mg: float | None = None,
    ) -> None:
        super().__init__(preset, area_cm2=area_cm2, seed=seed)
        if cathode_mass_mg is not None and not cathode_mass_mg > 0:
            raise ValueError(f"cathode_mass_mg must be > 0 (or None for the preset's loading), got {cathode_mass_mg}")
        p = self._preset
        m = p.material
        self._material = m
        self._mass_g = (
            p.areal_loading_mAh_cm2 * area_cm2 / m.nominal_mAh_g if cathode_mass_mg is None else cathode_mass_mg / 1000
        )

        # Resistances in ohm, charges in C, rates per s.
        self._r_b = p.bulk_asr_ohm_cm2 / area_cm2
        self._r_c = p.cathode_asr_ohm_cm2 / area_cm2
        self._r_a = p.anode_asr_ohm_cm2 / area_cm2
        self._two_i0_c = 2 * THERMAL_VOLTAGE_V / self._r_c  # A
        self._two_i0_a = 2 * THERMAL_VOLTAGE_V / self._r_a
        self._q_nominal = m.nominal_mAh_g * self._mass_g * C_PER_mAh
        self._q_full0 = m.capacity_mAh_g * self._mass_g * C_PER_mAh
        self._q_e = END_OF_STRIP_mAh_cm2 * C_PER_mAh * area_cm2
        self._q_n = NUCLEATION_mAh_cm2 * C_PER_mAh * area_cm2
        self._i_n = NUCLEATION_CURRENT_mA_cm2 * 1e-3 * area_cm2
        self._pool0 = p.se_oxidation_mAh_g * self._mass_g * C_PER_mAh
        self._lambda0 = p.hazard_per_mAh_cm2 / C_PER_mAh  # per C/cm²
        self._j_c = p.short_current_mA_cm2 / 1000  # A/cm²

        self._q_full = self._q_full0  # active material left, as its full-scale charge
        self._x = 1.0  # pristine cathode, fully lithiated
        self._tau = self._diffusion_time_s()  # τ_D at x, kept current as x moves
        self._delta_q = 0.0  # relaxing part of the surface deviation x_s - x
        self._pool = self._pool0
        self._li = p.lithium_foil_mAh_cm2 * C_PER_mAh * area_cm2  # active Li on the negative side
        self._dead = 0.0
        self._interphase = 0.0  # Li held by the cathode interphase (κ)
        self._trapped = 0.0  # Li in lost cathode material
        self._oxidised = 0.0  # SE oxidation charge so far (its Li was plated)
        self._corroded = 0.0  # discharge charge drawn with no Li left (collector and SE oxidised instead)
        self._hazard = 0.0
        self._threshold = self._events.expovariate(1.0)
        self._r_short = math.inf

    # -- read-only state -------------------------------------------------------------------------------------
    @property
    def cathode_mass_mg(self) -> float:
        return self._mass_g * 1000

    @property
    def nominal_capacity_Ah(self) -> float:
        """The cathode's 1C capacity (nominal specific capacity × mass), Ah."""
        return self._q_nominal / 3600

    @property
    def cathode_lithium_fraction(self) -> float:
        """x: lithium per site of the cathode's remaining active material (1 = fully lithiated), bulk average."""
        return self._x

    @property
    def surface_lithium_fraction(self) -> float:
        """x_s at open circuit now (the particle surface, which sets the OCV)."""
        return self._surface(0.0)

    @property
    def cathode_capacity_Ah(self) -> float:
        """Full-scale charge of the active material left (x from 1 to 0), Ah."""
        return self._q_full / 3600

    @property
    def cathode_lithium_Ah(self) -> float:
        return self._x * self._q_full / 3600

    @property
    def plated_li_Ah(self) -> float:
        """Active lithium on the negative side (plated, or the Li foil), Ah."""
        return self._li / 3600

    @property
    def dead_li_Ah(self) -> float:
        """Lithium plated and lost as dead Li (1 - CE of each plating), Ah."""
        return self._dead / 3600

    @property
    def interphase_li_Ah(self) -> float:
        """Lithium lost to the cathode interphase above U_hv, Ah."""
        return self._interphase / 3600

    @property
    def trapped_li_Ah(self) -> float:
        """Lithium locked in cathode material that lost contact, Ah."""
        return self._trapped / 3600

    @property
    def oxidised_se_Ah(self) -> float:
        """Charge that oxidised the composite's argyrodite (its lithium was plated), Ah."""
        return self._oxidised / 3600

    @property
    def corroded_Ah(self) -> float:
        """Discharge drawn after the negative side ran out of lithium, Ah."""
        return self._corroded / 3600

    @property
    def cumulative_hazard(self) -> float:
        return self._hazard

    @property
    def shorted(self) -> bool:
        return self._r_short < math.inf

    @property
    def short_resistance_ohm(self) -> float:
        """Resistance of the short, ohm; inf while the cell is intact."""
        return self._r_short

    @property
    def open_circuit_voltage(self) -> float:
        """U(x_s) - U_a now, V (intact cell)."""
        return self._material.ocv_V.at(self._surface(0.0)) - self._anode_potential()

    @property
    def internal_resistance_ohm(self) -> float:
        """R_b + R_a + R_c: the small-signal DC resistance of the intact cell without diffusion, ohm."""
        return self._r_b + self._r_a + self._r_c

    # -- terminal voltage ------------------------------------------------------------------------------------
    def voltage(self, current_A: float) -> float:
        """Noise-free terminal voltage, V, with ``current_A`` flowing now (positive charges)."""
        if self.shorted:
            r_int = self.internal_resistance_ohm
            r_par = r_int * self._r_short / (r_int + self._r_short)
            return (self.open_circuit_voltage / r_int + current_A) * r_par
        return self._intact_voltage(current_A)


    def current_at(self, voltage_V: float) -> float:
        """Noise-free current, A, that holds the terminal voltage at ``voltage_V`` now (V(I) is increasing)."""
        if self.shorted:
            r_int = self.internal_resistance_ohm
            r_par = r_int * self._r_short / (r_int + self._r_short)
            return voltage_V / r_par - self.open_circuit_voltage / r_int
        r = self.internal_resistance_ohm + self._diffusion_resistance()
        current = (voltage_V - self._intact_voltage(0.0)) / r
        low, high = -math.inf, math.inf
        for _ in range(_NEWTON_ITERATIONS):
            error = self._intact_voltage(current) - voltage_V
            if abs(error) < _NEWTON_TOLERANCE_V:
                break
            if error > 0:
                high = current
            else:
                low = current
            step = 1e-9 + 1e-6 * abs(current)
            slope = (self._intact_voltage(current + step) - self._intact_voltage(current)) / step
            guess = current - error / slope if slope > 0 else math.nan
            if not low < guess < high:  # outside the bracket: bisect, or widen it
                guess = (low + high) / 2 if math.isfinite(low + high) else current - 2 * error / r
            current = guess
        return current

    def _intact_voltage(self, current_A: float) -> float:
        i = current_A
        eta = i * self._r_b + THERMAL_VOLTAGE_V * 2 * (math.asinh(i / self._two_i0_c) + math.asinh(i / self._two_i0_a))
        if i > 0 and self._preset.nucleation_V:
            eta += self._preset.nucleation_V * math.exp(-self._li / self._q_n) * math.tanh(i / self._i_n)
        return self._material.ocv_V.at(self._surface(i)) - self._anode_potential() + eta

    def _surface(self, current_A: float) -> float:
        rate = current_A / self._q_full
        x_s = self._x + self._delta_q - rate * self._tau / 105
        return min(max(x_s, 0.0), 1.0)

    def _diffusion_time_s(self) -> float:
        return 10 ** self._material.log10_diffusion_time_h.at(self._x) * _S_PER_H

    def _anode_potential(self) -> float:
        return EMPTY_COLLECTOR_V * self._q_e / (self._li + self._q_e)

    def _diffusion_resistance(self) -> float:
        """Steady solid-diffusion resistance |dU/dx|·τ_D/(15·Q_C), ohm."""
        return abs(self._material.ocv_V.slope(self._x)) * self._tau / (15 * self._q_full)

    # -- impedance ------------------------------------------------------------------------------------------
    def _impedance(self, omega: float) -> complex:
        cpe = (1j * omega) ** CPE_EXPONENT
        q_a = self._preset.anode_capacitance_uF_cm2 * 1e-6 * self._area
        q_c = self._material.capacitance_uF_cm2 * 1e-6 * self._area
        r_w = 3 * self._diffusion_resistance()
        tau_w = self._tau / 5
        s = cmath.sqrt(1j * omega * tau_w)
        z = (
            self._r_b
            + self._r_a / (1 + self._r_a * q_a * cpe)
            + self._r_c / (1 + self._r_c * q_c * cpe)
            + (r_w / (s * cmath.tanh(s)) if r_w > 0 else 0)
        )
        if self.shorted:
            short = short_impedance(self._r_short, omega)
            return z * short / (z + short)
        return z


    # -- time evolution --------------------------------------------------------------------------------------
    def _integrate(self, current_A: float, dt_s: float) -> None:
        """Let ``current_A`` flow for ``dt_s`` seconds."""
        remaining = dt_s
        while remaining > 0 and not self.shorted:
            remaining -= self._step(current_A, remaining)

    def _step(self, i: float, max_dt_s: float) -> float:
        """Evolve by up to ``max_dt_s`` at current ``i``; stop early where the cell shorts. Returns the time used."""
        p = self._preset
        h = max_dt_s if i == 0 else min(max_dt_s, _MAX_DX * self._q_full / abs(i))
        shorts = False
        if i > 0 and self._lambda0 > 0:
            j = i / self._area
            d_hazard = self._lambda0 * j * (j / self._j_c) ** p.hazard_exponent * h
            if self._hazard + d_hazard >= self._threshold:
                h *= (self._threshold - self._hazard) / d_hazard
                shorts = True
            self._hazard = min(self._hazard + d_hazard, self._threshold)
        charge = i * h

        # Negative side first: it needs the cathode's surface state at the start of the substep.
        if i > 0:
            high = p.interphase_loss and self._material.ocv_V.at(self._surface(i)) >= self._material.high_voltage_V
            lost = p.interphase_loss * charge if high else 0.0
            plated = charge - lost
            self._interphase += lost
            self._dead += (1 - p.anode_ce) * plated
            self._li += p.anode_ce * plated
        elif i < 0:
            stripped = min(self._li, -charge)
            self._li -= stripped
            self._corroded += -charge - stripped

        # Cathode: the SE pool takes its share of a charge; active material is lost with throughput.
        oxidised = (
            min(self._pool, p.se_oxidation_share * self._pool / self._pool0 * charge) if i > 0 and self._pool else 0.0
        )
        self._pool -= oxidised
        self._oxidised += oxidised
        tau = self._tau
        target = -6 * i / self._q_full * tau / 105
        self._delta_q = target + (self._delta_q - target) * math.exp(-30 * h / tau)
        self._x = min(max(self._x - (charge - oxidised) / self._q_full, 0.0), 1.0)
        self._tau = self._diffusion_time_s()
        if p.cathode_loss_per_cycle and i:
            lost_full = self._q_full * p.cathode_loss_per_cycle * abs(charge) / (2 * self._q_nominal)
            self._trapped += self._x * lost_full
            self._q_full -= lost_full
        if shorts:
            self._form_short()
        return h

    def _form_short(self) -> None:
        self._r_short = self._draw_short_resistance()
        log.debug("hard short, R_short = %.2f ohm, hazard %.3f", self._r_short, self._hazard)
