"""Interlayer presets for the simulated Li|SE|Li cell: per-interface physics in users' units (per cm²).

The interfacial ASR and the critical current density (CCD) of each interlayer preset are patent Table 1
(heat-treated, 25 °C; design/PROTOCOLS.md §3); "LPSCl" is a bare Li|argyrodite cell from the literature whose
stripping opens voids at the in-situ EIS current (0.25 mA/cm²). The other numbers are model parameters
(research/science.md §4.2, §4.5): the critical stripping current and the void rates set when and how fast contact
is lost, and the short hazard λ = λ0·(j_loc/j_CCD)^m per mAh/cm² plated was tuned with
``benchmarks/calibrate_cells.py`` so that the fixed-time CCD protocol fails, in the median over seeds, in the
preset's CCD step.

The impedance parameters (research/science.md §4.4-4.5) place each interface's arc inside the 2 MHz-0.1 Hz
windows of standalone and in-situ EIS: every interface is R_int‖CPE with R_int·Q_dl (hence its apex frequency)
set by the preset, plus a diffusion (Warburg) tail. Q_dl is 1-10 µF/cm² for most interfaces (science.md §4.5);
Ag|Mg, whose tiny ASR points to a large real contact area, gets an interphase-like 80 µF/cm² (Eckhardt's
example interphase: 88 µF/cm²), which puts its arc at ≈70 kHz instead of ≈2 MHz. The Warburg coefficients
are model choices that keep the tail visible down to 2 Hz yet start it ≥1.5 decades below the arc.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from labctl.sim_instruments.cell import find_preset

_PATENT = "ASR and CCD: patent Table 1, heat-treated, 25 °C (PROTOCOLS.md §3)"
_MODEL = ("j_csc, void rates, nucleation, Q_dl, Warburg: model choices (science.md §4.2/§4.4/§4.5); "
          "λ0, m: benchmarks/calibrate_cells.py")
_LPSCL = ("CCD 0.7 mA/cm²: within 0.4-0.9 for LPSCl (Singh, science.md §5); j_csc ≈ 0.2 mA/cm²: Kasemchainan 2019; "
          "ASR 20 ohm·cm² (Li|LPSCl interphase), void rates, Q_dl, Warburg: model choices; λ0: "
          "benchmarks/calibrate_cells.py")


@dataclass(frozen=True)
class InterlayerPreset:
    """How one Li|interlayer|SE interface behaves; a symmetric cell has two of them.

    Current densities in mA/cm², areal charges in mAh/cm², resistances in ohm·cm² per interface.
    """

    name: str
    interface_asr_ohm_cm2: float  # charge-transfer ASR of one interface; j0 = RT/(F·ASR)
    patent_ccd_mA_cm2: float  # the CCD this preset reproduces; also j_c in the short hazard
    critical_stripping_current_mA_cm2: float  # j_csc: above it (local) stripping opens voids
    hazard_per_mAh_cm2: float  # λ0: short hazard per mAh/cm² plated at j_loc = patent CCD
    hazard_exponent: float  # m in λ = λ0·(j_loc/j_c)^m
    soft_short_probability: float  # chance that a short is a soft (self-healing) one
    nucleation_overpotential_V: float  # η_n0 of the dip at the start of each plating half-cycle
    nucleation_charge_mAh_cm2: float = 0.01  # q_n: the dip decays as exp(-q/q_n)
    void_growth_rate_per_s: float = 2e-4  # k_v: dθ/dt = k_v·(j_loc - j_csc)/j_csc while stripping
    creep_rate_per_s: float = 1e-4  # Li creep closes voids: dθ/dt = -r·θ, always
    refill_charge_mAh_cm2: float = 0.2  # plating refills voids: dθ/dq = -θ/q_refill
    interface_capacitance_uF_cm2: float = 5.0  # Q_dl of each interface's CPE, µF·s^(n-1)/cm² of contact
    warburg_ohm_cm2_per_sqrt_s: float = 10.0  # each interface's diffusion tail, σ_W·A (Z_W = σ_W(1-j)/√ω)
    source: str = f"{_PATENT}; {_MODEL}"

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float | int) and value < 0:
                raise ValueError(f"InterlayerPreset.{field.name} must be >= 0, got {value}")
        for name in ("interface_asr_ohm_cm2", "patent_ccd_mA_cm2", "critical_stripping_current_mA_cm2",
                     "nucleation_charge_mAh_cm2", "refill_charge_mAh_cm2",
                     "interface_capacitance_uF_cm2"):
            if getattr(self, name) == 0:
                raise ValueError(f"InterlayerPreset.{name} must be > 0")
        if self.soft_short_probability > 1:
            raise ValueError(f"InterlayerPreset.soft_short_probability must be in [0, 1], "
                             f"got {self.soft_short_probability}")


PRESETS: dict[str, InterlayerPreset] = {
    p.name: p
    for p in (
        # Bare: voids open a little below the CCD and feed the dendrites (Kasemchainan 2019).
        InterlayerPreset("bare", 10.6, 0.6, 0.5, 1.4, 8, 0.3, 0.010),
        InterlayerPreset("Ag", 4.3, 0.9, 0.7, 0.5, 8, 0.3, 0.004, warburg_ohm_cm2_per_sqrt_s=6.0),
        # Mg alloys with Li and suppresses voids: high ASR, yet failure by dendrites (science.md §5 note).
        InterlayerPreset("Mg", 114.0, 0.4, 1.0, 3.7, 8, 0.2, 0.006, interface_capacitance_uF_cm2=2.0,
                         warburg_ohm_cm2_per_sqrt_s=35.0),
        # Steeper hazard (m = 12) keeps the spread of a 2.4 mA/cm² CCD near the others' in relative terms.
        InterlayerPreset("Ag|Mg", 0.19, 2.4, 2.0, 0.097, 12, 0.3, 0.003, interface_capacitance_uF_cm2=80.0,
                         warburg_ohm_cm2_per_sqrt_s=1.2),
        # Mg|Ag: Ag (not Mg) meets the Li, so voids are not suppressed; they open in the failing step.
        InterlayerPreset("Mg|Ag", 99.5, 0.4, 0.35, 3.5, 8, 0.2, 0.006, interface_capacitance_uF_cm2=2.0,
                         warburg_ohm_cm2_per_sqrt_s=35.0),
        # Li|Li6PS5Cl|Li without interlayer: voids open above ≈0.2 mA/cm² (Kasemchainan 2019, low stack pressure),
        # so a 1 mAh/cm² half-cycle at 0.25 mA/cm² (in-situ EIS) ends with θ ≈ 0.33 on the stripped electrode and
        # R_tot ≈ 1.3× its start; plating refills voids fast (q_refill 0.02), so R_tot recovers on the reverse half.
        InterlayerPreset("LPSCl", 20.0, 0.7, 0.2, 0.55, 8, 0.3, 0.005, void_growth_rate_per_s=8e-5,
                         refill_charge_mAh_cm2=0.02, interface_capacitance_uF_cm2=10.0,
                         warburg_ohm_cm2_per_sqrt_s=13.0, source=_LPSCL),
    )
}


def get_preset(name: str) -> InterlayerPreset:
    """The preset called ``name``, matched case-insensitively ("ag|mg" finds "Ag|Mg")."""
    return find_preset(PRESETS, name, "interlayer preset")
