"""Cathode materials and full-cell presets for the simulated full cell (sim_instruments/full_cell.py).

Sources: Wang et al., Adv. Mater. 2024 (seed 001: NMC811|Li6PS5Cl|collector, Fig. 6, S31-S35) for the anode-free
NMC811 cells, and the Corning patent US 2025/0266506 (seed 000, Example 2, [0101]-[0110]) for the LCO|garnet|
interlayer|Li cells. ``benchmarks/calibrate_full_cell.py`` calibrates the numbers marked as calibrated.
"""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass

from labctl.sim_instruments.cell import find_preset

__all__ = ["CATHODES", "PRESETS", "CathodeMaterial", "FullCellPreset", "Table", "get_preset"]


@dataclass(frozen=True)
class Table:
    """Piecewise-linear y(x) on ascending knots, constant beyond the ends."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]

    def __post_init__(self) -> None:
        if (
            len(self.xs) != len(self.ys)
            or len(self.xs) < 2
            or any(b <= a for a, b in zip(self.xs, self.xs[1:], strict=False))
        ):
            raise ValueError("Table needs at least two ascending knots and one value per knot")

    def at(self, x: float) -> float:
        xs, ys = self.xs, self.ys
        if x <= xs[0]:
            return ys[0]
        if x >= xs[-1]:
            return ys[-1]
        k = bisect.bisect_right(xs, x)
        return ys[k - 1] + (ys[k] - ys[k - 1]) * (x - xs[k - 1]) / (xs[k] - xs[k - 1])

    def slope(self, x: float) -> float:
        """dy/dx of the segment holding ``x`` (the end segments beyond the knots)."""
        xs, ys = self.xs, self.ys
        k = min(max(bisect.bisect_right(xs, x), 1), len(xs) - 1)
        return (ys[k] - ys[k - 1]) / (xs[k] - xs[k - 1])


@dataclass(frozen=True)
class CathodeMaterial:
    """An intercalation cathode: capacities per g, OCV and solid-diffusion time against lithium fraction x."""

    name: str
    capacity_mAh_g: float  # full scale Q_C: x from 1 to 0
    nominal_mAh_g: float  # the capacity 1C refers to
    ocv_V: Table  # U(x), x ascending
    log10_diffusion_time_h: Table  # log10 τ_D(x), τ_D = R²/D in hours, interpolated in the logarithm
    high_voltage_V: float  # U_hv: above it κ of the charge goes into the cathode interphase
    capacitance_uF_cm2: float  # double layer of the cathode/SE interface (CPE, per cm² of cell)
    source: str


# fmt: off
# NMC811-like: the shape of Chen et al.'s NMC811 OCP (J. Electrochem. Soc. 167 (2020) 080534; 4.3-3.5 V over
# x ≈ 0.26-0.9) moved so that 4.3 V falls at x ≈ 0.2 (≈220 mAh/g, as NMC811 half cells charged to 4.3 V), with the
# H2-H3 plateau at 4.15-4.2 V and a steep end as the lattice fills.
_NMC811_OCV = Table(
    (0.0,  0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90,
     0.94, 0.97, 0.99, 1.0),
    (4.70, 4.48, 4.36, 4.26, 4.20, 4.17, 4.13, 4.08, 4.03, 3.97, 3.91, 3.85, 3.80, 3.75, 3.71, 3.67, 3.63, 3.58,
     3.50, 3.35, 3.05, 2.70),
)
# LixCoO2 after Reimers & Dahn (J. Electrochem. Soc. 139 (1992) 2091): two-phase plateau ≈3.93 V for 0.75 < x < 0.93,
# ≈4.05-4.2 V through the order-disorder region near x = 0.5, 4.2 V at x ≈ 0.45.
_LCO_OCV = Table(
    (0.0,  0.30, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75,  0.85,  0.93, 0.96, 0.98, 0.99, 1.0),
    (4.80, 4.50, 4.30, 4.20, 4.13, 4.07, 4.03, 3.99, 3.96, 3.935, 3.925, 3.91, 3.86, 3.75, 3.55, 3.00),
)
# fmt: on

CATHODES: dict[str, CathodeMaterial] = {
    "NMC811": CathodeMaterial(
        "NMC811",
        capacity_mAh_g=275.0,
        nominal_mAh_g=200.0,
        ocv_V=_NMC811_OCV,
        # Calibrated (benchmarks/calibrate_full_cell.py) to Wang's rate capability (Fig. 6c) and first cycle: D falls
        # 25-fold from x = 0.5 to 0.9.
        log10_diffusion_time_h=Table((0.5, 0.75, 0.9), (0.0, 0.54, 1.40)),
        high_voltage_V=4.10,
        capacitance_uF_cm2=100.0,
        source="capacity 275 mAh/g (theoretical LiNi0.8Mn0.1Co0.1O2), 1C = 200 mA/g (Wang); OCV after Chen 2020; "
        "U_hv at the onset of the H2-H3 region of Ni-rich NMC; τ_D(x) and U_hv: calibrated",
    ),
    "LCO": CathodeMaterial(
        "LCO",
        capacity_mAh_g=274.0,
        nominal_mAh_g=140.0,
        ocv_V=_LCO_OCV,
        # Catholyte-infiltrated LCO (patent [0095]) is not diffusion-limited at these rates: a model choice.
        log10_diffusion_time_h=Table((0.5, 1.0), (-0.5, 0.5)),
        high_voltage_V=4.4,
        capacitance_uF_cm2=50.0,
        source="capacity 274 mAh/g (theoretical LiCoO2), 140 mAh/g to 4.2 V; OCV after Reimers & Dahn 1992; "
        "τ_D and the double layer: model choices",
    ),
}


@dataclass(frozen=True)
class FullCellPreset:
    """One full cell: cathode, SE and negative electrode. Areal quantities per cm² of cell."""

    name: str
    cathode: str  # key of CATHODES
    areal_loading_mAh_cm2: float  # nominal (1C) capacity per cm²: sets the active mass when none is given
    bulk_asr_ohm_cm2: float  # SE separator (+ composite ionic path), R_b·A
    cathode_asr_ohm_cm2: float  # cathode charge transfer, j0 = RT/(F·ASR)
    anode_asr_ohm_cm2: float  # negative-electrode charge transfer
    lithium_foil_mAh_cm2: float = 0.0  # Li at the negative electrode before the first charge; 0 = anode-free
    anode_ce: float = 1.0  # share of each plated dq that stays active; the rest becomes dead Li
    nucleation_V: float = 0.0  # η_n: nucleation overpotential on a bare collector
    se_oxidation_mAh_g: float = 0.0  # Q_ox: argyrodite of the composite oxidised on the first charges, per g NMC
    se_oxidation_share: float = 0.0  # f_ox: share of the charging current it takes while the pool is full
    interphase_loss: float = 0.0  # κ: share of the charge lost to the cathode interphase above U_hv
    cathode_loss_per_cycle: float = 0.0  # active material lost per nominal cycle of throughput (fraction)
    short_current_mA_cm2: float = 0.0  # j_c of the charging-short hazard (0: the cell never shorts)
    hazard_per_mAh_cm2: float = 0.0  # λ0: hazard per mAh/cm² plated on the Li anode at j = j_c
    hazard_exponent: float = 8.0  # m in λ = λ0·(j/j_c)^m
    anode_capacitance_uF_cm2: float = 5.0  # Q of the negative interface's CPE (science.md §4.5: 1-10 µF/cm²)
    source: str = ""

    def __post_init__(self) -> None:
        if self.cathode not in CATHODES:
            raise ValueError(
                f"FullCellPreset {self.name!r}: unknown cathode {self.cathode!r}; known: {', '.join(CATHODES)}"
            )
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float | int) and not value >= 0:
                raise ValueError(f"FullCellPreset.{field.name} must be >= 0, got {value}")
        for name in ("areal_loading_mAh_cm2", "bulk_asr_ohm_cm2", "cathode_asr_ohm_cm2", "anode_asr_ohm_cm2"):
            if getattr(self, name) == 0:
                raise ValueError(f"FullCellPreset.{name} must be > 0")
        for name in ("anode_ce", "se_oxidation_share", "interphase_loss", "cathode_loss_per_cycle"):
            if getattr(self, name) > 1:
                raise ValueError(f"FullCellPreset.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.hazard_per_mAh_cm2 > 0 and self.short_current_mA_cm2 == 0:
            raise ValueError(f"FullCellPreset {self.name!r}: a short hazard needs short_current_mA_cm2 > 0")

    @property
    def material(self) -> CathodeMaterial:
        return CATHODES[self.cathode]


_WANG = "Wang et al., Adv. Mater. 2024 (seed 001)"
_PATENT = "US 2025/0266506 (seed 000), Example 2"
# Wang's cells: 150 mg Li6PS5Cl in a 12 mm die is ≈0.81 mm at 1.64 g/cm³; σ = 0.8 mS/cm (Methods, Fig. S36b).
_WANG_BULK_ASR = 100.0
# The patent's garnet pellets as in the symmetric cells (sim_instruments/cells.py: 50 ohm across 0.785 cm²).
_GARNET_BULK_ASR = 39.25
# 20 µm Li foil (patent [0095]): 20e-4 cm · 0.534 g/cm³ / 6.94 g/mol · 26.8 Ah/mol.
_LI_FOIL_mAh_cm2 = 4.12


def _nmc(name: str, *, ce: float, nucleation_V: float, anode_asr: float, note: str) -> FullCellPreset:
    """Wang's anode-free NMC811 cell on one collector; only the collector's numbers differ.

    Calibrated together with τ_D(x) (benchmarks/calibrate_full_cell.py): the cathode's charge-transfer ASR (a
    carbon-free composite, Wang Methods: Tafel-like, j0 ≈ 0.03 mA/cm²) to the rate capability (Fig. 6c); the SE
    oxidation pool to the first charge (Fig. 6b); the active-material loss to the slow fade before the onset and the
    50 % test's CE (Figs. 6a, S33); κ to Mg/W-Cu's onset and late fade (Fig. 6a).
    """
    return FullCellPreset(
        f"NMC|{name}",
        "NMC811",
        1.0,
        _WANG_BULK_ASR,
        cathode_asr_ohm_cm2=940.0,
        anode_asr_ohm_cm2=anode_asr,
        anode_ce=ce,
        nucleation_V=nucleation_V,
        se_oxidation_mAh_g=66.0,
        se_oxidation_share=0.5,
        interphase_loss=0.04,
        cathode_loss_per_cycle=0.0011,
        source=(
            f"{_WANG}: NMC811 ≈1 mAh/cm², 1C = 200 mA/g, 2.8-4.3 V; {note}. SE oxidation pool, κ, active-material "
            f"loss and CE: calibrated to Fig. 6a-c and S33 with benchmarks/calibrate_full_cell.py"
        ),
    )


def _lco(name: str, *, anode_asr: float, j_c: float, hazard: float, m: float, note: str) -> FullCellPreset:
    """The patent's LCO|garnet|interlayer|Li cell (3.3 mAh/cm², cycled at 3 mAh/cm²)."""
    return FullCellPreset(
        f"LCO|{name}|Li",
        "LCO",
        3.3,
        _GARNET_BULK_ASR,
        cathode_asr_ohm_cm2=5.0,
        anode_asr_ohm_cm2=anode_asr,
        lithium_foil_mAh_cm2=_LI_FOIL_mAh_cm2,
        short_current_mA_cm2=j_c,
        hazard_per_mAh_cm2=hazard,
        hazard_exponent=m,
        source=(
            f"{_PATENT}: LCO|SE|{name}|Li, 3 mAh/cm² per charge; {note}. Loading 3.3 mAh/cm² (model choice: "
            f"holds the 3 mAh/cm² charges); λ0, m: benchmarks/calibrate_full_cell.py"
        ),
    )


# fmt: off
PRESETS: dict[str, FullCellPreset] = {
    p.name: p
    for p in (
        # Negative-side ASR: Wang's half cells at 1 mA/cm² (Fig. 2, Tables S1-S2): ≈15 ohm·cm² with grain growth on
        # Cu and W-Cu, ≈3 on the Mg coatings. Nucleation: Wang Fig. 2a-b. CE: calibrated to the fade onsets.
        _nmc("Cu", ce=0.9712, nucleation_V=0.055, anode_asr=15.0,
             note="bare Cu: rapid fade after 15 cycles at 0.33C, nucleation 55 mV"),
        _nmc("W-Cu", ce=0.9768, nucleation_V=0.047, anode_asr=15.0,
             note="30 nm W: rapid fade after 21 cycles, nucleation 47 mV"),
        _nmc("Mg-Cu", ce=0.9898, nucleation_V=0.028, anode_asr=3.0,
             note="140 nm Mg: decline from cycle 50, nucleation 28 mV"),
        _nmc("Mg/W-Cu", ce=0.9965, nucleation_V=0.027, anode_asr=3.0,
             note="140 nm Mg on 30 nm W: 122 mAh/g at cycle 120, 76 % after 150 cycles, nucleation 27 mV"),
        # Li-side ASR: patent Table 1 (heat treated) for Ag|Mg and Ag; the Au ones are model choices. j_c: the
        # symmetric CCDs of Table 1 (2.4 Ag|Mg, 0.9 Ag) where known.
        _lco("Ag|Mg", anode_asr=0.19, j_c=2.4, hazard=0.1, m=12,
             note="charging CCD 1.5 mA/cm², cycled > 30 times at 1.5 mA/cm² ([0109])"),
        _lco("Ag", anode_asr=4.3, j_c=0.85, hazard=0.2, m=8,
             note="charging CCD 0.6 mA/cm², shorted at the 6th cycle ([0109])"),
        _lco("Au|Mg", anode_asr=0.5, j_c=2.2, hazard=0.1, m=12, note="charging CCD 1.5 mA/cm² ([0110])"),
        _lco("Au", anode_asr=5.0, j_c=0.85, hazard=0.2, m=8, note="shorted at 1.0 mA/cm² ([0110])"),
    )
}
# fmt: on


def get_preset(name: str) -> FullCellPreset:
    """The preset called ``name``, matched case-insensitively ("nmc|mg/w-cu" finds "NMC|Mg/W-Cu")."""
    return find_preset(PRESETS, name, "full-cell preset")
