"""Interlayer presets for the simulated Li|SE|Li cell: per-interface physics in users' units (per cm²).

The interfacial ASR and the critical current density (CCD) of each preset are patent Table 1 (heat-treated,
25 °C; design/PROTOCOLS.md §3). The other numbers are model parameters (research/science.md §4.2, §4.5):
the critical stripping current and the void rates set when and how fast contact is lost, and the short hazard
λ = λ0·(j_loc/j_CCD)^m per mAh/cm² plated was tuned with ``benchmarks/calibrate_cells.py`` so that the fixed-time
CCD protocol fails, in the median over seeds, in the patent's CCD step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

_PATENT = "ASR and CCD: patent Table 1, heat-treated, 25 °C (PROTOCOLS.md §3)"
_MODEL = "j_csc, void rates, nucleation: model choices (science.md §4.2/§4.5); λ0, m: benchmarks/calibrate_cells.py"


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
    source: str = f"{_PATENT}; {_MODEL}"

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float | int) and value < 0:
                raise ValueError(f"InterlayerPreset.{field.name} must be >= 0, got {value}")
        for name in ("interface_asr_ohm_cm2", "patent_ccd_mA_cm2", "critical_stripping_current_mA_cm2",
                     "nucleation_charge_mAh_cm2", "refill_charge_mAh_cm2"):
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
        InterlayerPreset("Ag", 4.3, 0.9, 0.7, 0.5, 8, 0.3, 0.004),
        # Mg alloys with Li and suppresses voids: high ASR, yet failure by dendrites (science.md §5 note).
        InterlayerPreset("Mg", 114.0, 0.4, 1.0, 3.7, 8, 0.2, 0.006),
        # Steeper hazard (m = 12) keeps the spread of a 2.4 mA/cm² CCD near the others' in relative terms.
        InterlayerPreset("Ag|Mg", 0.19, 2.4, 2.0, 0.097, 12, 0.3, 0.003),
        # Mg|Ag: Ag (not Mg) meets the Li, so voids are not suppressed; they open in the failing step.
        InterlayerPreset("Mg|Ag", 99.5, 0.4, 0.35, 3.5, 8, 0.2, 0.006),
    )
}


def get_preset(name: str) -> InterlayerPreset:
    """The preset called ``name``, matched case-insensitively ("ag|mg" finds "Ag|Mg")."""
    for key, preset in PRESETS.items():
        if key.lower() == name.strip().lower():
            return preset
    raise ValueError(f"unknown interlayer preset {name!r}; valid names: {', '.join(PRESETS)}")
