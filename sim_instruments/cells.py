"""A 0-D Li|SE|Li symmetric cell under galvanostatic control, and its impedance (research/science.md §4.2, §4.4).

The simulated cycler calls ``advance`` and ``voltage`` once per sample (≈216,000 times in a 60 h CCD test), so
both are plain scalar arithmetic.

Model, per electrode k (1 = working electrode, 2 = counter electrode):
- Terminal voltage, intact: V = sign(I)·(|I|·R_b·(1 + Σ θ_k/(1-θ_k)) + η_strip + η_plate + η_nuc), with
  η_k = (2RT/F)·asinh(j_loc,k / 2j0), j0 = RT/(F·ASR), j_loc,k = |j|/(1-θ_k). The θ/(1-θ) terms are the current
  constriction at voids (science.md §4.4), which makes the stripping voltage bend upward as contact is lost.
- Nucleation: η_nuc = η_n0·exp(-q/q_n) with q the charge passed since the current last changed sign.
- Voids θ_k ∈ [0, 0.95]: the stripping electrode opens voids while j_loc > j_csc; creep closes voids on both
  electrodes; plating refills the plating electrode.
- Shorts: hazard λ = λ0·(j_loc/j_CCD)^m per mAh/cm² plated (j_loc of the plating electrode). The cell shorts when
  the cumulative hazard reaches a threshold E ~ Exp(1) drawn from the seed, so the short time does not depend on
  how finely the caller steps time. A soft short (probability p_soft) dissolves as charge strips the electrode
  the filament grew from: R_short = R0·exp(q/q_s) until the cell is intact again, with a new threshold. A hard
  short is permanent: V = I·R_short, R_short in 0.5-5 ohm.

Impedance (small signal at open circuit, the cell's state now):
  Z = R_b + Σ_k [R_int,k ‖ CPE_k] + Σ_k [R_cstr,k ‖ CPE_cstr] + Σ_k Ws_k,
  R_int,k = ASR/(A·(1-θ_k)), Q_k = Q_dl·A·(1-θ_k) (exponent 0.85), R_cstr,k = R_b·θ_k/(1-θ_k) (the voltage
  model's constriction term, so Z at the end of the arcs is the cell's small-signal DC resistance), a
  finite-length Warburg σ_W = W/(A·(1-θ_k)) with a 100 s diffusion time (indistinguishable from a semi-infinite
  Warburg above 0.1 Hz, finite at DC). A soft short shunts Z with R_short + jωL; a hard short is R_short + jωL.
  The tail is an EIS-only feature: the voltage model has no diffusion polarisation.

Sign: positive current strips Li from electrode 1 and plates it on electrode 2, and gives positive voltage.
Temperature is fixed at 25 °C: no Arrhenius terms yet.
"""

from __future__ import annotations

import cmath
import logging
import math

from labctl.sim_instruments.cell import (
    CPE_EXPONENT,
    THERMAL_VOLTAGE_V,
    WARBURG_TIME_S,
    C_PER_mAh,
    SimulatedCell,
    short_impedance,
)
from labctl.sim_instruments.presets import InterlayerPreset, get_preset

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

__all__ = ["SymmetricCell"]

DEFAULT_AREA_CM2 = 0.785  # Ø 10 mm pellet
BULK_ASR_OHM_CM2 = 50.0 * DEFAULT_AREA_CM2  # 50 ohm across a 0.785 cm² pellet (science.md §4.5)
MAX_VOID_FRACTION = 0.95
SOFT_SHORT_OPEN_OHM = 1e5  # a dissolving filament this resistive no longer matters: the cell is intact again
SOFT_SHORT_DISSOLVE_mAh_cm2 = 0.002  # stripped charge per e-fold of R_short (≈0.02 mAh/cm² to recover)
# Impedance (science.md §4.4). Time constants: bulk ≈ 3e-8 s (LLZO, 5.5 MHz), so the high-frequency intercept is
# R_b; constriction 1e-6 s (160 kHz), between bulk and charge transfer (Eckhardt 2023); charge transfer ≥ 2e-6 s.
CONSTRICTION_TIME_S = 1e-6
CONSTRICTION_EXPONENT = 0.9
# Void growth feeds back on itself through j_loc; substeps this short keep its Heun integration step-size
# independent. Everything else is integrated exactly or over substeps bounded by the refill rate.
_VOID_SUBSTEP_S = 5.0
_REFILL_SUBSTEP = 0.1  # at most this many e-folds of refill per substep while the plating side has voids
_VOID_NEGLIGIBLE = 1e-4
_CV_RTOL = 1e-12  # current_at solves voltage(I) = V to this relative error in V
_CV_MAX_ITERATIONS = 40  # Newton needs <= 5 (presets, 10 mV-4.2 V, voids to 0.9, soft shorts); bisection: fallback


class SymmetricCell(SimulatedCell[InterlayerPreset]):
    """A simulated Li|SE|Li symmetric cell with the interlayer ``preset`` on both interfaces.

    ``area_cm2`` is the electrode area; ``bulk_resistance_ohm`` defaults to 50 ohm scaled to that area (same
    pellet thickness and conductivity as a 0.785 cm² pellet). ``seed`` fixes when the cell shorts; measurement
    noise comes from separate streams (voltage: seed + 1, impedance: seed + 2), so reading the voltage or
    measuring a spectrum never changes the cell's fate or the other instrument's noise.
    """

    get_preset = staticmethod(get_preset)

    def __init__(
        self,
        preset: str | InterlayerPreset = "bare",
        *,
        area_cm2: float = DEFAULT_AREA_CM2,
        seed: int = 0,
        bulk_resistance_ohm: float | None = None,
    ) -> None:
        super().__init__(preset, area_cm2=area_cm2, seed=seed)
        if bulk_resistance_ohm is not None and bulk_resistance_ohm <= 0:
            raise ValueError(f"bulk_resistance_ohm must be > 0 (or None for the default), got {bulk_resistance_ohm}")
        p = self._preset
        self._r_b = BULK_ASR_OHM_CM2 / area_cm2 if bulk_resistance_ohm is None else bulk_resistance_ohm

        # Parameters in A/cm², C/cm², 1/s.
        self._two_j0 = 2 * THERMAL_VOLTAGE_V / p.interface_asr_ohm_cm2
        self._bv_V = 2 * THERMAL_VOLTAGE_V
        self._j_csc = p.critical_stripping_current_mA_cm2 / 1000
        self._j_c = p.patent_ccd_mA_cm2 / 1000
        self._lambda0 = p.hazard_per_mAh_cm2 / C_PER_mAh
        self._q_n = p.nucleation_charge_mAh_cm2 * C_PER_mAh
        self._q_refill = p.refill_charge_mAh_cm2 * C_PER_mAh
        self._q_soft = SOFT_SHORT_DISSOLVE_mAh_cm2 * C_PER_mAh
        # Impedance parameters in ohm and F·s^(n-1) at full contact; contact loss divides and multiplies them.
        self._r_ct = p.interface_asr_ohm_cm2 / area_cm2
        self._q_dl = p.interface_capacitance_uF_cm2 * 1e-6 * area_cm2
        self._r_warburg = p.warburg_ohm_cm2_per_sqrt_s / area_cm2 * math.sqrt(2 * WARBURG_TIME_S)

        self._theta = [0.0, 0.0]
        self._last_sign = 0  # sign of the last non-zero current; nucleation restarts when it flips
        self._q_since_reversal = 0.0  # C/cm²
        self._hazard = 0.0
        self._threshold = self._events.expovariate(1.0)
        self._plated_C = 0.0
        # Short state: None (intact), "soft" or "hard".
        self._short: str | None = None
        self._r0_short = math.inf
        self._filament_sign = 0  # the current sign that grew the filament; the opposite sign dissolves it
        self._dissolved = 0.0  # C/cm² stripped from the filament's electrode since the soft short
        self._soft_shorts_healed = 0

    # -- read-only state -------------------------------------------------------------------------------------
    @property
    def bulk_resistance_ohm(self) -> float:
        """Pristine bulk (plus grain-boundary) resistance R_b, ohm: the EIS high-frequency intercept."""
        return self._r_b

    @property
    def interface_asr_ohm_cm2(self) -> float:
        """Charge-transfer ASR of each interface at full contact, ohm·cm² (the preset's)."""
        return self._preset.interface_asr_ohm_cm2

    @property
    def void_fraction(self) -> tuple[float, float]:
        """Fraction of lost contact (θ) at electrode 1 (working) and electrode 2 (counter)."""
        return self._theta[0], self._theta[1]

    @property
    def interface_resistance_ohm(self) -> tuple[float, float]:
        """Charge-transfer resistance of electrode 1 and electrode 2 now, ASR/(A·(1-θ_k)), ohm."""
        return self._r_ct / (1 - self._theta[0]), self._r_ct / (1 - self._theta[1])

    @property
    def total_resistance_ohm(self) -> float:
        """R_tot, ohm: the real-axis width of the spectrum before the diffusion tail (science.md §3.5), i.e.
        R_b + constriction + both interfaces; for a shorted cell, what the short leaves of it."""
        if self._short == "hard":
            return self._r0_short
        r = self._r_b + self.constriction_resistance_ohm + sum(self.interface_resistance_ohm)
        if self._short == "soft":
            r_short = self.short_resistance_ohm
            return r * r_short / (r + r_short)
        return r

    @property
    def constriction_resistance_ohm(self) -> float:
        """Extra series resistance from current constriction at the voids of both electrodes, ohm."""
        return self._r_b * sum(t / (1 - t) for t in self._theta)

    @property
    def plated_charge_Ah(self) -> float:
        """Li plated ionically so far, summed over both electrodes, Ah."""
        return self._plated_C * self._area / 3600

    @property
    def cumulative_hazard(self) -> float:
        """Short hazard integrated since the cell was made (or last healed); it shorts when this reaches E."""
        return self._hazard

    @property
    def shorted(self) -> bool:
        return self._short is not None

    @property
    def hard_shorted(self) -> bool:
        """True once a permanent short has formed."""
        return self._short == "hard"

    @property
    def soft_short_count(self) -> int:
        """Soft shorts that have formed and healed so far."""
        return self._soft_shorts_healed

    @property
    def short_resistance_ohm(self) -> float:
        """Resistance of the electronic path through the electrolyte, ohm; inf while the cell is intact."""
        if self._short is None:
            return math.inf
        return self._r0_short * math.exp(self._dissolved / self._q_soft) if self._short == "soft" else self._r0_short

    # -- terminal voltage ------------------------------------------------------------------------------------
    def voltage(self, current_A: float) -> float:
        """Noise-free terminal voltage, V, with ``current_A`` flowing now (positive strips electrode 1)."""
        if current_A == 0:
            return 0.0
        if self._short == "hard":
            return current_A * self._r0_short
        v = self._intact_voltage(current_A)
        if self._short == "soft":  # filament in parallel with the ionic path (chord resistance |V/I|)
            r_abs = self.short_resistance_ohm * abs(current_A)
            return v * r_abs / (r_abs + abs(v))
        return v


    def current_at(self, voltage_V: float) -> float:
        """Noise-free current, A, whose terminal voltage (:meth:`voltage`) is ``voltage_V`` now: what a channel
        holding that voltage passes. Zero inside the nucleation overpotential, which |V| jumps to as |I| leaves 0.

        In each direction |V| rises with |I| and is concave (ohmic + asinh + a constant; a soft short's parallel
        sum keeps both), so Newton's method from a point below the root climbs to it without overshooting, in
        3-5 steps; the bracket [0, |V|·(1/R_b + 1/R_short)] (|V| >= |I|·R_b ‖ R_short) guards against rounding.
        """
        if self._short == "hard":
            return voltage_V / self._r0_short
        if voltage_V == 0:
            return 0.0
        sign = 1 if voltage_V > 0 else -1
        target = abs(voltage_V)
        r_short = self.short_resistance_ohm
        branch = self._branch(sign)
        low, high = 0.0, target * (1 / self._r_b + 1 / r_short)
        if self._short is None:
            v0, slope0 = self._magnitude_and_slope(0.0, branch, r_short)
            if v0 >= target:
                return 0.0
            x = (target - v0) / slope0  # the tangent at I = 0 lies above the concave |V|(|I|)
        else:
            x = target / r_short  # |V| <= |I|·R_short
        for _ in range(_CV_MAX_ITERATIONS):
            v, slope = self._magnitude_and_slope(x, branch, r_short)
            error = v - target
            if abs(error) <= _CV_RTOL * target:
                break
            if error > 0:
                high = x
            else:
                low = x
            x -= error / slope
            if not low < x < high:
                x = 0.5 * (low + high)
        return sign * x

    def _branch(self, sign: int) -> tuple[float, float, float, float]:
        """What :meth:`_intact_voltage` holds fixed for current of sign ``sign`` now: series resistance (ohm), the
        stripping and plating sides' 2·j0·(1-θ) (A/cm²) and the nucleation overpotential (V)."""
        th_strip, th_plate = (self._theta[0], self._theta[1]) if sign > 0 else (self._theta[1], self._theta[0])
        q = self._q_since_reversal if sign == self._last_sign else 0.0
        return (self._r_b * (1 + th_strip / (1 - th_strip) + th_plate / (1 - th_plate)),
                (1 - th_strip) * self._two_j0, (1 - th_plate) * self._two_j0,
                self._preset.nucleation_overpotential_V * math.exp(-q / self._q_n))

    def _magnitude_and_slope(self, x: float, branch: tuple[float, float, float, float],
                             r_short: float) -> tuple[float, float]:
        """|V| and d|V|/d|I| (ohm) at |I| = ``x`` A on ``branch``: :meth:`voltage`'s model, differentiated."""
        r, a_strip, a_plate, eta_nucleation = branch
        j = x / self._area
        f = x * r + self._bv_V * (math.asinh(j / a_strip) + math.asinh(j / a_plate)) + eta_nucleation
        df = r + self._bv_V / self._area * (1 / math.hypot(j, a_strip) + 1 / math.hypot(j, a_plate))
        if self._short != "soft":
            return f, df
        v = 1 / (1 / f + 1 / (r_short * x))  # the chord-resistance parallel sum of voltage()
        return v, v * v * (df / (f * f) + 1 / (r_short * x * x))

    # -- impedance ------------------------------------------------------------------------------------------
    def _impedance(self, omega: float) -> complex:
        if self._short == "hard":
            return short_impedance(self._r0_short, omega)
        z = self._ionic_impedance(omega)
        if self._short == "soft":  # the filament shunts the ionic path
            filament = short_impedance(self.short_resistance_ohm, omega)
            return z * filament / (z + filament)
        return z


    def _ionic_impedance(self, omega: float) -> complex:
        jw = 1j * omega
        cpe = jw**CPE_EXPONENT
        constriction = 1 + (jw * CONSTRICTION_TIME_S) ** CONSTRICTION_EXPONENT
        x = cmath.sqrt(jw * WARBURG_TIME_S)
        warburg = self._r_warburg * cmath.tanh(x) / x
        z = complex(self._r_b)
        for theta in self._theta:
            contact = 1 - theta
            r_ct = self._r_ct / contact
            z += r_ct / (1 + r_ct * self._q_dl * contact * cpe) + warburg / contact
            if theta > 0:
                z += self._r_b * theta / contact / constriction
        return z

    def _intact_voltage(self, current_A: float) -> float:
        sign = 1 if current_A > 0 else -1
        j = abs(current_A) / self._area
        th_strip, th_plate = (self._theta[0], self._theta[1]) if sign > 0 else (self._theta[1], self._theta[0])
        r = self._r_b * (1 + th_strip / (1 - th_strip) + th_plate / (1 - th_plate))
        q = self._q_since_reversal if sign == self._last_sign else 0.0
        eta = self._bv_V * (
            math.asinh(j / ((1 - th_strip) * self._two_j0)) + math.asinh(j / ((1 - th_plate) * self._two_j0))
        ) + self._preset.nucleation_overpotential_V * math.exp(-q / self._q_n)
        return sign * (abs(current_A) * r + eta)

    # -- time evolution --------------------------------------------------------------------------------------
    def _integrate(self, current_A: float, dt_s: float) -> None:
        """Let ``current_A`` flow for ``dt_s`` seconds and update voids, nucleation, hazard and shorts."""
        if self._short == "hard" or dt_s == 0:
            return
        if current_A == 0:
            self._creep(dt_s)
            return
        sign = 1 if current_A > 0 else -1
        if sign != self._last_sign:
            self._last_sign = sign
            self._q_since_reversal = 0.0
        j = abs(current_A) / self._area
        remaining = dt_s
        while remaining > 0 and self._short != "hard":
            if self._short == "soft":
                remaining -= self._dissolve(sign, j, remaining)
            else:
                remaining -= self._step(sign, j, remaining)

    def _creep(self, dt_s: float) -> None:
        decay = math.exp(-self._preset.creep_rate_per_s * dt_s)
        self._theta[0] *= decay
        self._theta[1] *= decay

    def _step(self, sign: int, j: float, max_dt_s: float) -> float:
        """Evolve the intact cell by up to ``max_dt_s``; stop early where it shorts. Returns the time used."""
        p = self._preset
        i_strip, i_plate = (0, 1) if sign > 0 else (1, 0)
        th_s, th_p = self._theta[i_strip], self._theta[i_plate]
        opening = j > self._j_csc * (1 - th_s)
        refill_rate = j / self._q_refill + p.creep_rate_per_s
        h = max_dt_s
        if opening:
            h = min(h, _VOID_SUBSTEP_S)
        if th_p > _VOID_NEGLIGIBLE:
            h = min(h, _REFILL_SUBSTEP / refill_rate)

        # Hazard over h (Simpson on the exactly decaying plating-side voids); shorten h to the crossing.
        m = p.hazard_exponent
        rate0 = self._lambda0 * j * (j / self._j_c) ** m  # per s at full contact
        if th_p > 0:
            mid = th_p * math.exp(-refill_rate * h / 2)
            end = th_p * math.exp(-refill_rate * h)
            d_hazard = rate0 * h * ((1 - th_p) ** -m + 4 * (1 - mid) ** -m + (1 - end) ** -m) / 6
        else:
            d_hazard = rate0 * h
        shorts = d_hazard > 0 and self._hazard + d_hazard >= self._threshold
        if shorts:
            h *= (self._threshold - self._hazard) / d_hazard
            self._hazard = self._threshold
        else:
            self._hazard += d_hazard

        self._theta[i_plate] = th_p * math.exp(-refill_rate * h)
        self._theta[i_strip] = self._open_voids(th_s, j, h) if opening else th_s * math.exp(-p.creep_rate_per_s * h)
        self._q_since_reversal += j * h
        self._plated_C += j * h
        if shorts:
            self._form_short(sign)
        return h

    def _open_voids(self, theta: float, j: float, h: float) -> float:
        """Heun step of dθ/dt = k_v·max(0, j/(1-θ) - j_csc)/j_csc - r·θ on the stripping electrode."""
        k_v, r, j_csc = self._preset.void_growth_rate_per_s, self._preset.creep_rate_per_s, self._j_csc

        def rate(t: float) -> float:
            return k_v * max(0.0, j / (1 - t) - j_csc) / j_csc - r * t

        k1 = rate(theta)
        k2 = rate(min(max(theta + h * k1, 0.0), MAX_VOID_FRACTION))
        return min(max(theta + h * (k1 + k2) / 2, 0.0), MAX_VOID_FRACTION)

    def _form_short(self, sign: int) -> None:
        self._r0_short = self._draw_short_resistance()
        soft = self._events.random() < self._preset.soft_short_probability
        self._short = "soft" if soft else "hard"
        self._filament_sign = sign
        self._dissolved = 0.0
        log.debug("%s short, R_short = %.2f ohm, after %.4f Ah plated", self._short, self._r0_short,
                  self.plated_charge_Ah)

    def _dissolve(self, sign: int, j: float, max_dt_s: float) -> float:
        """Soft short: current that strips the filament's electrode dissolves it. Returns the time used."""
        if sign == self._filament_sign:  # still feeding the filament: nothing changes but creep
            h = max_dt_s
        else:
            to_open = self._q_soft * math.log(SOFT_SHORT_OPEN_OHM / self._r0_short) - self._dissolved
            h = min(max_dt_s, max(0.0, to_open / j))
            self._dissolved += j * h
        self._q_since_reversal += j * h
        self._creep(h)
        if h < max_dt_s:
            self._heal()
        return h

    def _heal(self) -> None:
        self._short = None
        self._r0_short = math.inf
        self._hazard = 0.0
        self._threshold = self._events.expovariate(1.0)
        self._soft_shorts_healed += 1
        log.debug("soft short healed (%d so far)", self._soft_shorts_healed)

