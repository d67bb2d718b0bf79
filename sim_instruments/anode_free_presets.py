"""Current-collector presets for the simulated anode-free Li|SE|collector half cell (research/science.md §4.3).

Resistances are area-specific (ohm·cm²), so a preset holds at any electrode area. Wang et al. (Adv. Mater. 2024,
seed 001) quote EIS resistances in ohm for an 8 mm Li counter electrode (0.503 cm², its Methods); with that area
Mg/W-Cu's R_b = 54.0 ohm and R_SEI + R_ct = 6.2 ohm give 27.2 + 3.1 ohm·cm², i.e. the 30 mV it polarises at
1 mA/cm², so that is the area used to convert them. Where Wang's EIS and overpotentials disagree (W-Cu: 89 + 28.2
ohm would polarise 59 mV, measured 41/35 mV), the overpotentials are the target and R_b is set from them.

Per-cycle resistance drift (Wang §2, Fig. 2i): until ``turn_cycle`` the bulk/contact ASR changes linearly
(densification and better contact lower it), afterwards the interface ASR grows linearly (corrosion of the
interphases). Plating adds a growth term j·R_growth that stripping lacks (Wang: the plating plateau is set by
grain growth), which makes the plating overpotential the larger one on non-alloying collectors.

``benchmarks/calibrate_anode_free.py`` prints what the defaults give beside the published numbers.
"""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass

from labctl.sim_instruments.cell import find_preset

FARADAY_mAh_PER_MOL = 96485.33212 / 3.6  # 26.8 Ah/mol (science.md §4.3)
WANG = "Wang et al., Adv. Mater. 2024 (seed 001)"
SANDOVAL = "Sandoval et al., Ag/Au on Cu (seed 004)"


@dataclass(frozen=True)
class OcvTable:
    """Piecewise-linear equilibrium potential, V, against the filled fraction of the alloy film (0 = empty)."""

    fractions: tuple[float, ...]  # ascending, 0 … 1
    potentials_V: tuple[float, ...]

    def at(self, fraction: float) -> float:
        f, u = self.fractions, self.potentials_V
        if fraction <= 0.0:
            return u[0]
        if fraction >= 1.0:
            return u[-1]
        k = bisect.bisect_right(f, fraction)
        return u[k - 1] + (u[k] - u[k - 1]) * (fraction - f[k - 1]) / (f[k] - f[k - 1])


@dataclass(frozen=True)
class AlloyFilm:
    """A Li-alloying film: bulk density and molar mass (CRC handbook) and its (de)lithiation potentials."""

    density_g_cm3: float
    molar_mass_g_mol: float
    lithiation: OcvTable  # while plating fills the film
    delithiation: OcvTable  # while stripping empties it; never below ``lithiation`` (hysteresis)
    source: str


ALLOY_FILMS: dict[str, AlloyFilm] = {
    # Sloping solid solution of a few tens of mV both ways (science.md §4.3; Wang: α/β Li-Mg solid solutions).
    "Mg": AlloyFilm(
        1.738,
        24.305,
        OcvTable((0.0, 0.3, 0.6, 0.95, 1.0), (0.030, 0.027, 0.015, 0.004, 0.0)),
        OcvTable((0.0, 0.05, 0.2, 0.5, 1.0), (0.100, 0.070, 0.040, 0.020, 0.005)),
        "Li-Mg: sloping solid solution, tens of mV (science.md §4.3); table shape: model choice",
    ),
    # Lithiation plateau near 0 V (Sandoval Fig. 1b); de-alloying from 0.05 V (Sandoval, Fig. 6) in plateaus at
    # ≈0.1, 0.15 and 0.25-0.3 V (science.md §4.3), so a 0.2 V cutoff parks the last ≈30 %.
    "Ag": AlloyFilm(
        10.49,
        107.868,
        OcvTable((0.0, 0.05, 0.5, 1.0), (0.060, 0.030, 0.015, 0.0)),
        OcvTable(
            (0.0, 0.05, 0.28, 0.32, 0.6, 0.65, 0.95, 1.0), (0.320, 0.290, 0.250, 0.150, 0.140, 0.110, 0.090, 0.050)
        ),
        "Li-Ag: Sandoval Fig. 1b-c and §Modeling; science.md §4.3",
    ),
    # Lithiation plateau expected at 80 mV, de-alloying plateaus at ≈70 and ≈160 mV (Sandoval Fig. 1c).
    "Au": AlloyFilm(
        19.32,
        196.967,
        OcvTable((0.0, 0.05, 0.5, 0.55, 0.95, 1.0), (0.090, 0.075, 0.070, 0.030, 0.010, 0.0)),
        OcvTable((0.0, 0.05, 0.5, 0.55, 0.95, 1.0), (0.250, 0.170, 0.155, 0.080, 0.070, 0.060)),
        "Li-Au: Sandoval Fig. 1c (plateaus ≈70 and ≈160 mV on stripping, ≈80 mV on plating)",
    ),
}


@dataclass(frozen=True)
class AnodeFreePreset:
    """One collector (bare or coated Cu) against a Li foil counter electrode.

    Areal charges in mAh/cm², ASRs in ohm·cm², overpotentials in V at Wang's 1 mA/cm². CEs are fractions.
    """

    name: str
    films: tuple[tuple[str, float], ...]  # (metal, thickness nm), collector side first; the outer one meets the SE
    ce: float  # Coulombic efficiency of each plated dq once settled: (1 - ce) of it becomes dead Li
    short_median_cycles: float  # plating half-cycles until the hard short, median over seeds
    bulk_asr_ohm_cm2: float  # R_b·A at cycle 1
    interface_asr_ohm_cm2: float  # R_int·A at cycle 1, charge transfer (+SEI) of the collector, j0 = RT/(F·ASR)
    source: str
    first_ce: float | None = None  # ce of the first plating (None: ``ce``); relaxes to ``ce`` ...
    ce_settling_cycles: float = 1.0  # ... as exp(-(n - 1)/this)
    ce_spread: float = 0.0005  # rms scatter of each plating's ce (model choice)
    alloy_x_max: float = 0.0  # Li per host atom the outer film stores reversibly; 0 for inert films
    first_alloying_efficiency: float | None = None  # of the first filling of the alloy (None: the plating ce)
    turn_cycle: int = 1
    bulk_asr_change_ohm_cm2_per_cycle: float = 0.0  # up to turn_cycle
    interface_asr_change_ohm_cm2_per_cycle: float = 0.0  # after turn_cycle
    growth_asr_ohm_cm2: float = 0.0  # plating only
    first_nucleation_V: float = 0.0  # dip at the very first plating
    nucleation_V: float = 0.0  # dip at every later plating
    fluctuation_cycles: int = 0  # platings before the short whose ce scatters by ...
    fluctuation_spread: float = 0.0  # ... this rms instead of ce_spread

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name.endswith("per_cycle") or not isinstance(value, float | int):
                continue
            if value < 0:
                raise ValueError(f"AnodeFreePreset.{field.name} must be >= 0, got {value}")
        for name in (
            "ce",
            "short_median_cycles",
            "bulk_asr_ohm_cm2",
            "interface_asr_ohm_cm2",
            "ce_settling_cycles",
            "turn_cycle",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"AnodeFreePreset.{name} must be > 0")
        if self.alloy_x_max > 0 and self.alloy_film is None:
            raise ValueError(
                f"AnodeFreePreset {self.name!r}: alloy_x_max needs an alloying outer film ({', '.join(ALLOY_FILMS)})"
            )

    @property
    def alloy_film(self) -> AlloyFilm | None:
        """The outer film if it alloys with Li (it meets the SE and the plated Li)."""
        return ALLOY_FILMS.get(self.films[-1][0]) if self.films else None

    @property
    def alloy_capacity_mAh_cm2(self) -> float:
        """Q_alloy = (ρ·t/M)·x_max·26.8 Ah/mol (science.md §4.3)."""
        film = self.alloy_film
        if film is None or self.alloy_x_max == 0:
            return 0.0
        moles_cm2 = film.density_g_cm3 * self.films[-1][1] * 1e-7 / film.molar_mass_g_mol
        return moles_cm2 * self.alloy_x_max * FARADAY_mAh_PER_MOL


_WANG_CE = f"{WANG}: reservoir CE (Adams-type, 1 mA/cm², 0.2 V cutoff), Fig. 2c"
_WANG_SHORT = f"{WANG}: long cycling 1 mA/cm², 1 mAh/cm², strip to 0.2 V, Fig. 2d-i"
_WANG_EIS = f"{WANG}: EIS (Tables S1-S2) converted at 0.503 cm²"

PRESETS: dict[str, AnodeFreePreset] = {
    p.name: p
    for p in (
        # Plating/stripping 57/45 mV at cycle 1, 58/54 at cycle 25: strip 47 → 52 mV, plating 8 mV above it.
        # R_int·A = 13.6 ohm × 0.503 cm². Sandoval's bare Cu shorts within 5 cycles at 0.25 mA/cm²; this preset
        # follows Wang (26 cycles at 1 mA/cm²).
        AnodeFreePreset(
            "Cu",
            (),
            ce=0.9832,
            short_median_cycles=26,
            bulk_asr_ohm_cm2=40.2,
            interface_asr_ohm_cm2=6.84,
            interface_asr_change_ohm_cm2_per_cycle=0.21,
            growth_asr_ohm_cm2=8.0,
            first_nucleation_V=0.055,
            nucleation_V=0.041,
            source=(
                f"bare Cu foil. CE 98.32 %: {_WANG_CE}; short at cycle 26, overpotentials 57/45 mV (cycle 1) "
                f"and 58/54 mV (cycle 25): {_WANG_SHORT}; nucleation 55 mV (1st plating), 41 mV (2nd): Wang "
                f"Fig. 2a-b; R_int: {_WANG_EIS} (13.6 ohm at cycle 1). Sandoval's bare Cu shorts within 5 "
                f"cycles at 0.25 mA/cm²; this preset follows Wang at 1 mA/cm²."
            ),
        ),
        # 41/35 mV at cycle 1, 28/24 at cycle 25: strip 35.5 → 23.5 mV (R_b falls 0.5 ohm·cm² a cycle; Wang's
        # R_b falls 89 → 57 ohm by cycle 30), plating 5 mV above. R_int·A = 28.2 ohm × 0.503 cm².
        AnodeFreePreset(
            "W-Cu",
            (("W", 30.0),),
            ce=0.9873,
            short_median_cycles=25,
            bulk_asr_ohm_cm2=21.5,
            interface_asr_ohm_cm2=14.2,
            turn_cycle=30,
            bulk_asr_change_ohm_cm2_per_cycle=-0.5,
            interface_asr_change_ohm_cm2_per_cycle=0.02,
            growth_asr_ohm_cm2=5.0,
            first_nucleation_V=0.047,
            nucleation_V=0.049,
            source=(
                f"30 nm W on Cu. CE 98.73 %: {_WANG_CE}; short at cycle 25, overpotentials 41/35 mV (cycle 1) "
                f"and 28/24 mV (cycle 25): {_WANG_SHORT}; nucleation 47 mV (1st), 49 mV (2nd): Wang Fig. "
                f"2a-b; R_int: {_WANG_EIS} (28.2 ohm); R_b from the overpotentials (EIS's 89 ohm would give "
                f"59 mV)."
            ),
        ),
        # 33/34 mV at cycle 1, falling to ≈29 mV at cycle 30, then +0.1 mV/cycle to 46/45 at 193.
        # 0.17 mAh/cm² reversible from 140 nm Mg (x = 6.34 by the Q_alloy formula), ICE 66 % (Wang Fig. S7b).
        AnodeFreePreset(
            "Mg-Cu",
            (("Mg", 140.0),),
            ce=0.9875,
            short_median_cycles=193,
            bulk_asr_ohm_cm2=30.6,
            interface_asr_ohm_cm2=2.92,
            turn_cycle=30,
            bulk_asr_change_ohm_cm2_per_cycle=-0.148,
            interface_asr_change_ohm_cm2_per_cycle=0.1,
            alloy_x_max=6.34,
            first_alloying_efficiency=0.66,
            first_nucleation_V=0.028,
            fluctuation_cycles=3,
            fluctuation_spread=0.01,
            source=(
                f"140 nm Mg on Cu. CE 98.75 %: {_WANG_CE}; short at cycle 193 with fluctuating CE, "
                f"overpotentials 33/34 mV (cycle 1), +0.1 mV/cycle after ≈30 to 46/45 mV: {_WANG_SHORT}; "
                f"nucleation 28 mV at the first plating only: Wang Fig. 2a-b; 0.17 mAh/cm² reversible, ICE "
                f"66 %: Wang Fig. S7b; R_b, R_int: {_WANG_EIS} (60.6 ohm at cycle 40, 5.8 ohm at cycle 1). "
                f"CE scatter before the short (3 cycles, 1 %): model choice."
            ),
        ),
        # 32/30 mV at cycle 1, falling to ≈24/23 at cycle 50, then +0.02 mV/cycle to 29/28 at 300.
        # 0.23 mAh/cm² reversible from 140 nm Mg (x = 8.57 by the formula; Wang quotes Li3.9Mg), ICE 72 %.
        AnodeFreePreset(
            "Mg/W-Cu",
            (("W", 30.0), ("Mg", 140.0)),
            ce=0.9883,
            short_median_cycles=600,
            bulk_asr_ohm_cm2=27.1,
            interface_asr_ohm_cm2=3.12,
            turn_cycle=50,
            bulk_asr_change_ohm_cm2_per_cycle=-0.153,
            interface_asr_change_ohm_cm2_per_cycle=0.02,
            growth_asr_ohm_cm2=1.5,
            alloy_x_max=8.57,
            first_alloying_efficiency=0.72,
            first_nucleation_V=0.027,
            source=(
                f"140 nm Mg on 30 nm W on Cu. CE 98.83 %: {_WANG_CE}; no short within 300 cycles (median "
                f"set to 600), overpotentials 32/30 mV (cycle 1), 29/28 mV (cycle 300): {_WANG_SHORT}; "
                f"nucleation 27 mV at the first plating only: Wang Fig. 2a-b; 0.23 mAh/cm² reversible, ICE "
                f"72 %: Wang Fig. S7b; R_b 54.0 ohm, R_SEI + R_ct 6.2 ohm at cycle 1: {_WANG_EIS}."
            ),
        ),
        # Deposition 8-10 mV at 0.25 mA/cm²; R_int ≈1.5 ohm·cm², growing < 1 ohm·cm² a cycle (Sandoval Figs. 4-5).
        # CE 99.78 % first, 99.06 % over 10 cycles: ce relaxes from 99.78 % to 98.69 % with a 3-cycle constant.
        AnodeFreePreset(
            "Ag-Cu",
            (("Ag", 100.0),),
            ce=0.9869,
            first_ce=0.9978,
            ce_settling_cycles=3.0,
            short_median_cycles=30,
            bulk_asr_ohm_cm2=34.0,
            interface_asr_ohm_cm2=1.5,
            interface_asr_change_ohm_cm2_per_cycle=0.15,
            alloy_x_max=2.25,
            source=(
                f"100 nm Ag on Cu, 0.25 mA/cm², 1 mAh/cm², -0.5…0.5 V. CE 99.78 % (1st), 99.06 % (mean of "
                f"10), short ≈ cycle 30, deposition 8-10 mV, minimal nucleation: {SANDOVAL}, Fig. 1; R_int: "
                f"Sandoval Fig. 5. Q_alloy with x_max 2.25 (Li9Ag4, science.md §4.3) = 0.059 mAh/cm², which "
                f"fits the ≈0.05 mAh/cm² slope at the end of Sandoval's Fig. 1c; Sandoval's text estimates "
                f"26 µAh/cm²."
            ),
        ),
        # Au: R_int ≈5 ohm·cm² pristine, ≈8 by the 5th strip. CE 99.98 % first, 99.12 % over 10 cycles.
        AnodeFreePreset(
            "Au-Cu",
            (("Au", 100.0),),
            ce=0.9868,
            first_ce=0.9998,
            ce_settling_cycles=3.0,
            short_median_cycles=15,
            bulk_asr_ohm_cm2=30.0,
            interface_asr_ohm_cm2=5.0,
            interface_asr_change_ohm_cm2_per_cycle=0.75,
            alloy_x_max=3.0,
            source=(
                f"100 nm Au on Cu, 0.25 mA/cm², 1 mAh/cm², -0.5…0.5 V. CE 99.98 % (1st), 99.12 % (mean of "
                f"10), short ≈ cycle 15, deposition 8-10 mV, minimal nucleation: {SANDOVAL}, Fig. 1; R_int: "
                f"Sandoval Fig. 5. Q_alloy with x_max 3 (Li3Au) = 0.079 mAh/cm², Sandoval: 78 µAh/cm²."
            ),
        ),
    )
}


def get_preset(name: str) -> AnodeFreePreset:
    """The preset called ``name``, matched case-insensitively ("mg/w-cu" finds "Mg/W-Cu")."""
    return find_preset(PRESETS, name, "anode-free preset")
