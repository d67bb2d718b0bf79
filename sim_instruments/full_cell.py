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

import bisect
import cmath
import dataclasses
import logging
import math
import random
from dataclasses import dataclass

from labctl.sim_instruments.cells import HARD_SHORT_OHM, SHORT_INDUCTANCE_H, TEMPERATURE_K
from labctl.sim_instruments.dc_bias import BiasTerminals
from labctl.sim_instruments.measurement import Measured

__all__ = ["CATHODES", "PRESETS", "CathodeMaterial", "FullCell", "FullCellPreset", "get_preset"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

_THERMAL_VOLTAGE_V = 8.314462618 * TEMPERATURE_K / 96485.33212  # RT/F
_C_PER_mAh = 3.6
_S_PER_H = 3600.0

# A cycler's voltage channel: ±0.02 % of a 10 V range class, so 0.2 mV plus 0.01 % of reading (Arbin MITS Pro).
VOLTS_NOISE_FRACTION = 1e-4  # with Measured's 0.2 mV floor
EMPTY_COLLECTOR_V = 2.0  # V_e: a collector with no Li left rests far above any discharge cutoff (model choice)
END_OF_STRIP_mAh_cm2 = 3e-5  # q_e: the last ≈1e-4 mAh/cm² of Li sets the end-of-discharge rise (model choice)
NUCLEATION_mAh_cm2 = 0.005  # q_n: the nucleation overpotential is gone within ≈0.02 mAh/cm² (Wang Fig. 2a)
NUCLEATION_CURRENT_mA_cm2 = 0.01  # below this the nucleation term fades to 0, so V(I) is continuous at I = 0
_MAX_DX = 0.005  # largest change of the cathode's lithium fraction per internal substep
_NEWTON_ITERATIONS = 30
_NEWTON_TOLERANCE_V = 1e-9
_CPE_EXPONENT = 0.85  # both interfaces (science.md §4.5: 0.8-0.9)


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
    for key, preset in PRESETS.items():
        if key.lower() == name.strip().lower():
            return preset
    raise ValueError(f"unknown full-cell preset {name!r}; valid names: {', '.join(PRESETS)}")


class FullCell(BiasTerminals, Measured):
    """A simulated full cell ``preset`` (see ``PRESETS``) of ``area_cm2``.

    ``cathode_mass_mg`` is the cathode's active mass; None gives the preset's areal loading (nominal capacity per
    cm²) over the area. ``seed`` fixes when a Li-anode cell shorts; measurement noise comes from separate streams
    (voltage: seed + 1, impedance: seed + 2), so reading the cell never changes its fate.
    """

    NOISE_FRACTION = VOLTS_NOISE_FRACTION

    def __init__(
        self,
        preset: str | FullCellPreset,
        *,
        area_cm2: float,
        seed: int = 0,
        cathode_mass_mg: float | None = None,
    ) -> None:
        if not area_cm2 > 0:
            raise ValueError(f"area_cm2 must be > 0, got {area_cm2}")
        if cathode_mass_mg is not None and not cathode_mass_mg > 0:
            raise ValueError(f"cathode_mass_mg must be > 0 (or None for the preset's loading), got {cathode_mass_mg}")
        p = preset if isinstance(preset, FullCellPreset) else get_preset(preset)
        m = p.material
        self._preset, self._material, self._area = p, m, area_cm2
        self._mass_g = (
            p.areal_loading_mAh_cm2 * area_cm2 / m.nominal_mAh_g if cathode_mass_mg is None else cathode_mass_mg / 1000
        )
        self._events = random.Random(seed)
        self._seed_noise(seed)

        # Resistances in ohm, charges in C, rates per s.
        self._r_b = p.bulk_asr_ohm_cm2 / area_cm2
        self._r_c = p.cathode_asr_ohm_cm2 / area_cm2
        self._r_a = p.anode_asr_ohm_cm2 / area_cm2
        self._two_i0_c = 2 * _THERMAL_VOLTAGE_V / self._r_c  # A
        self._two_i0_a = 2 * _THERMAL_VOLTAGE_V / self._r_a
        self._q_nominal = m.nominal_mAh_g * self._mass_g * _C_PER_mAh
        self._q_full0 = m.capacity_mAh_g * self._mass_g * _C_PER_mAh
        self._q_e = END_OF_STRIP_mAh_cm2 * _C_PER_mAh * area_cm2
        self._q_n = NUCLEATION_mAh_cm2 * _C_PER_mAh * area_cm2
        self._i_n = NUCLEATION_CURRENT_mA_cm2 * 1e-3 * area_cm2
        self._pool0 = p.se_oxidation_mAh_g * self._mass_g * _C_PER_mAh
        self._lambda0 = p.hazard_per_mAh_cm2 / _C_PER_mAh  # per C/cm²
        self._j_c = p.short_current_mA_cm2 / 1000  # A/cm²

        self._q_full = self._q_full0  # active material left, as its full-scale charge
        self._x = 1.0  # pristine cathode, fully lithiated
        self._tau = self._diffusion_time_s()  # τ_D at x, kept current as x moves
        self._delta_q = 0.0  # relaxing part of the surface deviation x_s - x
        self._pool = self._pool0
        self._li = p.lithium_foil_mAh_cm2 * _C_PER_mAh * area_cm2  # active Li on the negative side
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
    def preset(self) -> FullCellPreset:
        return self._preset

    @property
    def area_cm2(self) -> float:
        return self._area

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
        eta = i * self._r_b + _THERMAL_VOLTAGE_V * 2 * (math.asinh(i / self._two_i0_c) + math.asinh(i / self._two_i0_a))
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
    def impedance(self, frequency_Hz: float) -> complex:
        """Noise-free small-signal impedance at open circuit now, ohm (Z'' < 0 for capacitive arcs)."""
        if not (math.isfinite(frequency_Hz) and frequency_Hz > 0):
            raise ValueError(f"frequency_Hz must be a finite frequency > 0, got {frequency_Hz!r}")
        omega = 2 * math.pi * frequency_Hz
        cpe = (1j * omega) ** _CPE_EXPONENT
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
            short = complex(self._r_short, omega * SHORT_INDUCTANCE_H)
            return z * short / (z + short)
        return z


    # -- time evolution --------------------------------------------------------------------------------------
    def _integrate(self, current_A: float, dt_s: float) -> None:
        """Let ``current_A`` flow for ``dt_s`` seconds."""
        if dt_s < 0:
            raise ValueError(f"dt_s must be >= 0, got {dt_s}")
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
        low, high = HARD_SHORT_OHM
        self._r_short = math.exp(self._events.uniform(math.log(low), math.log(high)))
        log.debug("hard short, R_short = %.2f ohm, hazard %.3f", self._r_short, self._hazard)
