"""The full-cell model: Wang's anode-free NMC811 cells (first cycle, rate capability, lithium inventory, fade,
50 % depth of charge) and the patent's LCO|garnet|interlayer|Li charging CCD, driven straight on the model.

The protocol helpers here are also what benchmarks/calibrate_full_cell.py runs, so calibration and acceptance
run the very same protocols.
"""

from __future__ import annotations

import itertools
import math
import statistics

import pytest

from labctl.sim_instruments.full_cell import PRESETS, FullCell, get_preset

AREA_CM2 = 1.131  # Wang's 12 mm cells
SUBSTEP_S = 10.0
NMC = ("NMC|Cu", "NMC|W-Cu", "NMC|Mg-Cu", "NMC|Mg/W-Cu")
LCO = ("LCO|Ag|Mg|Li", "LCO|Ag|Li", "LCO|Au|Mg|Li", "LCO|Au|Li")


def run_cc(
    cell: FullCell,
    current_A: float,
    *,
    v_max: float,
    v_min: float,
    charge_Ah: float | None = None,
    max_s: float,
    dt_s: float = SUBSTEP_S,
) -> float:
    """Constant current until the voltage leaves [v_min, v_max], ``charge_Ah`` has passed, ``max_s`` is up or the
    cell shorts, as a cycler channel does it (limits checked on the voltage after each substep). Returns |Ah|."""
    passed = t = 0.0
    while t < max_s:
        h = min(dt_s, max_s - t)
        if charge_Ah is not None:
            h = min(h, (charge_Ah - passed) / abs(current_A) * 3600)
            if h <= 1e-9:
                break
        cell.advance(current_A, h)
        t += h
        passed += abs(current_A) * h / 3600
        v = cell.voltage(current_A)
        if cell.shorted or (current_A > 0 and v >= v_max) or (current_A < 0 and v <= v_min):
            break
    return passed


def run_cv(cell: FullCell, voltage_V: float, *, until_A: float, max_s: float, dt_s: float = SUBSTEP_S) -> list[float]:
    """Constant voltage as a cycler channel holds it: each substep passes current_at(V); ends when |I| falls to
    ``until_A`` or at ``max_s``. Returns the current of each substep, A."""
    currents, t = [], 0.0
    while t < max_s:
        current = cell.current_at(voltage_V)
        currents.append(current)
        if abs(current) <= until_A:
            break
        cell.advance(current, dt_s)
        t += dt_s
    return currents


def cycle(cell: FullCell, c_rate: float, *, depth: float | None = None, dt_s: float = SUBSTEP_S) -> tuple[float, float]:
    """One Wang cycle at ``c_rate`` both ways in 2.8-4.3 V, the charge capped at ``depth`` × the 1C capacity if
    given; returns (charge, discharge) in mAh/g of cathode."""
    current = c_rate * cell.nominal_capacity_Ah
    guard = 1.5 * 3600 / c_rate
    limit = None if depth is None else depth * cell.nominal_capacity_Ah
    q_charge = run_cc(cell, current, v_max=4.3, v_min=0.0, charge_Ah=limit, max_s=guard, dt_s=dt_s)
    q_discharge = run_cc(cell, -current, v_max=5.0, v_min=2.8, max_s=guard, dt_s=dt_s)
    return q_charge * 1e6 / cell.cathode_mass_mg, q_discharge * 1e6 / cell.cathode_mass_mg


def activated(name: str, *, seed: int = 0) -> tuple[FullCell, list[tuple[float, float]]]:
    """A fresh cell after Wang's activation: 3 cycles at 0.1C (Fig. 6b)."""
    cell = FullCell(name, area_cm2=AREA_CM2, seed=seed)
    return cell, [cycle(cell, 0.1) for _ in range(3)]


def rate_capability(name: str, rates=(0.1, 0.2, 0.3, 0.5, 1.0, 2.0), per_rate: int = 3) -> list[float]:
    """Mean discharge capacity (mAh/g) at each C-rate after activation, charge and discharge at the same rate."""
    cell, _ = activated(name)
    return [statistics.mean(cycle(cell, rate)[1] for _ in range(per_rate)) for rate in rates]


def fade_onset(discharges: list[float], *, rate: float = 0.003, window: int = 5) -> int | None:
    """First cycle (1-based) of the first ``window`` cycles that lose more than ``rate`` of the first capacity each."""
    for n in range(window, len(discharges)):
        if (discharges[n - window] - discharges[n]) / discharges[0] / window > rate:
            return n - window + 1
    return None


def charging_ccd_ladder(
    cell: FullCell, *, cycles_after: int = 30, dt_s: float = SUBSTEP_S
) -> list[tuple[float, float]]:
    """Patent Example 2: 3 mAh/cm² per charge (4.2 V cap); 2 cycles at 0.3 mA/cm² both ways; then charge at 0.6,
    1.0 and 1.5 mA/cm² three times each, then ``cycles_after`` at 1.5, discharging at 0.6 mA/cm² to 3 V. Returns
    (charge density mA/cm², mAh/cm² charged) per charge, ending with the charge in which the cell shorted."""
    area = cell.area_cm2
    plan = [(0.3, 0.3)] * 2 + [(j, 0.6) for j in (0.6, 1.0, 1.5) for _ in range(3)] + [(1.5, 0.6)] * cycles_after
    charges = []
    for j_charge, j_discharge in plan:
        q = run_cc(cell, j_charge * 1e-3 * area, v_max=4.2, v_min=0.0, charge_Ah=3e-3 * area,
                   max_s=1.5 * 3 / j_charge * 3600, dt_s=dt_s)  # fmt: skip
        charges.append((j_charge, q * 1e3 / area))
        if cell.shorted:
            break
        run_cc(cell, -j_discharge * 1e-3 * area, v_max=5.0, v_min=3.0, max_s=1.5 * 3 / j_discharge * 3600, dt_s=dt_s)
    return charges


# -- presets and construction ------------------------------------------------------------------------------------
def test_presets_are_the_published_cells() -> None:
    assert set(PRESETS) == set(NMC) | set(LCO)
    assert get_preset("nmc|mg/w-cu") is PRESETS["NMC|Mg/W-Cu"]
    with pytest.raises(ValueError, match="NMC\\|Mg/W-Cu"):
        FullCell("NMC|Ag", area_cm2=1.0)
    with pytest.raises(ValueError, match="area_cm2"):
        FullCell("NMC|Cu", area_cm2=0.0)
    with pytest.raises(ValueError, match="cathode_mass_mg"):
        FullCell("NMC|Cu", area_cm2=1.0, cathode_mass_mg=-1.0)


def test_cathode_mass_defaults_to_the_areal_loading() -> None:
    nmc = FullCell("NMC|Cu", area_cm2=AREA_CM2)
    assert nmc.cathode_mass_mg == pytest.approx(AREA_CM2 / 200 * 1000)  # 1 mAh/cm² at 200 mAh/g
    assert nmc.nominal_capacity_Ah == pytest.approx(1e-3 * AREA_CM2)
    heavy = FullCell("NMC|Cu", area_cm2=AREA_CM2, cathode_mass_mg=2 * nmc.cathode_mass_mg)
    assert heavy.nominal_capacity_Ah == pytest.approx(2 * nmc.nominal_capacity_Ah)
    lco = FullCell("LCO|Ag|Mg|Li", area_cm2=1.0)
    assert lco.nominal_capacity_Ah == pytest.approx(3.3e-3)
    assert lco.cathode_lithium_fraction == 1.0 and lco.plated_li_Ah > 4e-3  # 20 µm Li foil


# -- voltage, current_at, impedance -------------------------------------------------------------------------------
def _state(name: str) -> FullCell:
    """A cell fresh, charged, with its collector emptied, or a Li-anode cell part charged."""
    if name == "fresh":
        return FullCell("NMC|Mg/W-Cu", area_cm2=AREA_CM2)
    if name == "charged":
        cell = FullCell("NMC|Mg/W-Cu", area_cm2=AREA_CM2)
        run_cc(cell, 0.1 * cell.nominal_capacity_Ah, v_max=4.3, v_min=0, max_s=15 * 3600)
        return cell
    if name == "emptied":
        cell = FullCell("NMC|Cu", area_cm2=AREA_CM2)
        cycle(cell, 0.33)
        run_cc(cell, -0.01 * cell.nominal_capacity_Ah, v_max=5, v_min=1.0, max_s=50 * 3600)
        return cell
    cell = FullCell("LCO|Ag|Li", area_cm2=1.0)
    run_cc(cell, 1e-3, v_max=4.2, v_min=0, charge_Ah=1e-3, max_s=2 * 3600)
    return cell


@pytest.mark.parametrize("state", ["fresh", "charged", "emptied", "lco"])
def test_current_at_inverts_voltage(state: str) -> None:
    cell = _state(state)
    currents = [c * cell.nominal_capacity_Ah for c in (-3, -1, -0.33, -0.1, -0.01, 0.0, 0.01, 0.1, 0.33, 1, 3)]
    volts = [cell.voltage(i) for i in currents]
    assert volts == sorted(volts) and len(set(volts)) == len(volts)  # V(I) rises with I
    for i, v in zip(currents, volts, strict=True):
        assert cell.current_at(v) == pytest.approx(i, rel=1e-6, abs=1e-12)


def test_constant_voltage_charge_tapers() -> None:
    """CC to 4.3 V at 0.33C, then CV at 4.3 V to C/20: the current decays smoothly and the CV step adds capacity."""
    cell, _ = activated("NMC|Mg/W-Cu")
    one_c = cell.nominal_capacity_Ah
    run_cc(cell, 0.33 * one_c, v_max=4.3, v_min=0.0, max_s=4 * 3600)
    x_after_cc = cell.cathode_lithium_fraction
    currents = run_cv(cell, 4.3, until_A=0.05 * one_c, max_s=10 * 3600)
    assert currents[0] == pytest.approx(0.33 * one_c, rel=0.05)  # continuous with the CC step
    assert all(b < a for a, b in itertools.pairwise(currents))
    assert currents[-1] <= 0.05 * one_c
    assert cell.voltage(currents[-1]) == pytest.approx(4.3, abs=1e-6)
    assert cell.cathode_lithium_fraction < x_after_cc - 0.05  # the taper delithiates further


def test_open_circuit_voltage_follows_the_cathode() -> None:
    cell = FullCell("NMC|Mg/W-Cu", area_cm2=AREA_CM2)
    assert cell.voltage(0.0) < 1.5  # nothing plated yet: the collector rests far above lithium
    run_cc(cell, 0.1 * cell.nominal_capacity_Ah, v_max=4.3, v_min=0, max_s=15 * 3600)
    cell.advance(0.0, 10 * 3600)  # rest: the surface relaxes to the bulk
    assert cell.surface_lithium_fraction == pytest.approx(cell.cathode_lithium_fraction, abs=1e-3)
    assert 4.0 < cell.voltage(0.0) < 4.3


def test_impedance_is_bulk_then_arcs_then_diffusion() -> None:
    cell = FullCell("NMC|Mg/W-Cu", area_cm2=AREA_CM2)
    cycle(cell, 0.1)
    high, mid, low = cell.impedance(1e6), cell.impedance(10.0), cell.impedance(1e-3)
    assert high.real == pytest.approx(100.0 / AREA_CM2, rel=0.05)  # R_b of 100 ohm·cm²
    assert high.real < mid.real < low.real
    assert mid.imag < 0 and low.imag < 0
    assert -low.imag > -cell.impedance(1e-2).imag  # the diffusion tail keeps rising
    with pytest.raises(ValueError):
        cell.impedance(0.0)


def test_measurement_noise_never_changes_the_cell() -> None:
    quiet, noisy = FullCell("LCO|Ag|Li", area_cm2=1.0, seed=4), FullCell("LCO|Ag|Li", area_cm2=1.0, seed=4)
    for _ in range(200):
        quiet.advance(5e-4, 60.0)
        noisy.advance(5e-4, 60.0)
        readings = [noisy.measured_voltage(5e-4) for _ in range(3)] + [noisy.measured_impedance(1e3).real]
    assert quiet.voltage(5e-4) == noisy.voltage(5e-4) and quiet.cumulative_hazard == noisy.cumulative_hazard
    assert readings[0] != readings[1] and abs(readings[0] - noisy.voltage(5e-4)) < 0.01


# -- first cycle, rate capability, lithium inventory (Wang Fig. 6b-c) --------------------------------------------
@pytest.mark.parametrize(("name", "published"), [("NMC|Cu", (265, 192)), ("NMC|W-Cu", (265, 189)),
                                                 ("NMC|Mg-Cu", (270, 191)), ("NMC|Mg/W-Cu", (269, 192))])  # fmt: skip
def test_first_cycle_at_0p1C(name: str, published: tuple[float, float]) -> None:
    cell = FullCell(name, area_cm2=AREA_CM2)
    charge, discharge = cycle(cell, 0.1)
    assert charge == pytest.approx(published[0], rel=0.1)
    assert discharge == pytest.approx(published[1], rel=0.1)
    assert discharge / charge == pytest.approx(0.71, abs=0.05)  # ICE ≈ 71 %


def test_rate_capability_of_mg_w_cu() -> None:
    simulated = rate_capability("NMC|Mg/W-Cu")
    for got, published in zip(simulated, (183, 155, 138, 115, 74, 30), strict=True):
        assert got == pytest.approx(published, rel=0.1)


def test_early_charge_overpotential_is_higher_on_cu_and_w_cu() -> None:
    """Nucleation on a bare collector (Wang Fig. 6b inset, Fig. S32): the first minutes of the first charge."""
    early = {}
    for name in NMC:
        cell = FullCell(name, area_cm2=AREA_CM2)
        current = 0.1 * cell.nominal_capacity_Ah
        cell.advance(current, 30.0)
        early[name] = cell.voltage(current)
    assert min(early["NMC|Cu"], early["NMC|W-Cu"]) > max(early["NMC|Mg-Cu"], early["NMC|Mg/W-Cu"]) + 0.01


def test_lithium_inventory_is_conserved_and_dead_li_is_the_ce_loss() -> None:
    cell = FullCell("NMC|Cu", area_cm2=AREA_CM2)
    start = cell.cathode_lithium_Ah + cell.plated_li_Ah
    run_cc(cell, 0.1 * cell.nominal_capacity_Ah, v_max=4.3, v_min=0, max_s=15 * 3600)
    plated = cell.plated_li_Ah + cell.dead_li_Ah
    assert cell.dead_li_Ah == pytest.approx((1 - cell.preset.anode_ce) * plated, rel=1e-9)
    assert cell.oxidised_se_Ah > 0  # the first charge oxidises some argyrodite, whose Li is plated too
    for _ in range(5):
        cycle(cell, 0.33)
    held = (cell.cathode_lithium_Ah + cell.plated_li_Ah + cell.dead_li_Ah + cell.interphase_li_Ah
            + cell.trapped_li_Ah)  # fmt: skip
    assert held == pytest.approx(start + cell.oxidised_se_Ah + cell.corroded_Ah, rel=1e-9)
    assert cell.cathode_lithium_fraction < 1  # the cathode is never fully relithiated again


def test_capacity_does_not_depend_on_the_substep() -> None:
    results = []
    for dt_s in (2.0, 10.0):
        cell = FullCell("NMC|Mg/W-Cu", area_cm2=AREA_CM2)
        results.append([cycle(cell, 0.1, dt_s=dt_s), cycle(cell, 1.0, dt_s=dt_s)])
    for (a, b), (c, d) in zip(*results, strict=True):
        assert a == pytest.approx(c, rel=0.01) and b == pytest.approx(d, rel=0.01)


# -- fade at 0.33C after activation (Wang Fig. 6a) and 50 % depth of charge (Fig. S33) ----------------------------
def test_anode_free_retention_follows_ce_once_the_reservoir_is_gone() -> None:
    """Past its fade onset the Cu cell's discharge is limited by plated Li: retention ≈ CE^(n-1) (science.md §2.2);
    before, the Li left on the collector by activation hides the loss."""
    cell, _ = activated("NMC|Cu")
    runs = [cycle(cell, 0.33) for _ in range(35)]
    ce = [d / c for c, d in runs]
    discharges = [d for _c, d in runs]
    onset = fade_onset(discharges)
    assert onset is not None and onset + 13 < len(runs)
    start, end = onset + 5, onset + 13  # 0-based indices well into the limited regime
    retention = discharges[end] / discharges[start]
    assert retention == pytest.approx(math.prod(ce[start + 1 : end + 1]), rel=0.01)
    mean_ce = statistics.mean(ce[start + 1 : end + 1])
    assert retention == pytest.approx(mean_ce ** (end - start), rel=0.01)
    assert mean_ce == pytest.approx(cell.preset.anode_ce, abs=0.005)  # the collector's CE is what is measured
    hidden = cell.preset.anode_ce ** (onset - 2)  # what the collector alone would have left by then
    assert discharges[onset - 2] / discharges[0] > hidden + 0.2  # the reservoir at work before the onset


def test_fade_onsets_follow_the_collectors() -> None:
    onsets, curves = {}, {}
    for name, cycles in (("NMC|Cu", 30), ("NMC|W-Cu", 35), ("NMC|Mg-Cu", 70), ("NMC|Mg/W-Cu", 150)):
        cell, _ = activated(name)
        curves[name] = [cycle(cell, 0.33)[1] for _ in range(cycles)]
        onsets[name] = fade_onset(curves[name])
    assert onsets["NMC|Cu"] < onsets["NMC|W-Cu"] < onsets["NMC|Mg-Cu"] < onsets["NMC|Mg/W-Cu"]
    for name, published in (("NMC|Cu", 15), ("NMC|W-Cu", 21), ("NMC|Mg-Cu", 50), ("NMC|Mg/W-Cu", 120)):
        assert onsets[name] == pytest.approx(published, rel=0.2)
        assert 135 * 0.95 < curves[name][0] < 139 * 1.05  # all start at 135-139 mAh/g
    mg_w = curves["NMC|Mg/W-Cu"]
    assert mg_w[119] == pytest.approx(122, rel=0.05)
    assert mg_w[149] / mg_w[0] == pytest.approx(0.76, abs=0.05)
    assert (mg_w[129] - mg_w[149]) / mg_w[0] / 20 == pytest.approx(0.0058, rel=0.25)  # %/cycle over 130-150


def test_half_depth_of_charge_keeps_a_reservoir() -> None:
    """Wang Fig. S33: 100 mAh/g per charge at 0.33C after activation: first CE 84 %, then 100 ± 0.5 mAh/g with
    a mean CE of 99.96 % over 256 cycles."""
    cell, _ = activated("NMC|Mg/W-Cu")
    runs = [cycle(cell, 0.33, depth=0.5) for _ in range(256)]
    assert all(c == pytest.approx(100, rel=1e-6) for c, _d in runs)
    assert runs[0][1] / runs[0][0] == pytest.approx(0.84, abs=0.04)
    assert all(abs(d - 100) <= 0.5 for _c, d in runs[1:])
    assert statistics.mean(d / c for c, d in runs[1:]) == pytest.approx(0.9996, abs=2e-4)
    assert cell.plated_li_Ah > 0  # the collector never ran dry


# -- charging CCD of the LCO|garnet|interlayer|Li cells (patent Example 2) ----------------------------------------
def test_lco_cells_hold_3_mAh_cm2() -> None:
    cell = FullCell("LCO|Ag|Mg|Li", area_cm2=1.0)
    charges = charging_ccd_ladder(cell, cycles_after=0)
    assert [q for _j, q in charges] == pytest.approx([3.0] * 11, rel=1e-6)  # every charge reaches 3 mAh/cm²


@pytest.mark.parametrize(("name", "short_density"), [("LCO|Ag|Mg|Li", None), ("LCO|Ag|Li", 1.0),
                                                     ("LCO|Au|Mg|Li", None), ("LCO|Au|Li", 1.0)])  # fmt: skip
def test_charging_ccd(name: str, short_density: float | None) -> None:
    cell = FullCell(name, area_cm2=1.0, seed=0)
    charges = charging_ccd_ladder(cell)
    if short_density is None:  # charging CCD 1.5 mA/cm² and > 30 cycles at it
        assert not cell.shorted and len(charges) == 41
    else:
        assert cell.shorted and charges[-1][0] == short_density
    if name == "LCO|Ag|Li":
        assert len(charges) == 6  # "prematurely shorted at 6th cycle"


def test_ag_li_shorts_at_1_mA_cm2_for_most_seeds() -> None:
    densities = []
    for seed in range(5):
        cell = FullCell("LCO|Ag|Li", area_cm2=1.0, seed=seed)
        last_density, _q = charging_ccd_ladder(cell, cycles_after=0)[-1]
        densities.append(last_density if cell.shorted else None)
    assert statistics.mode(densities) == 1.0


def test_charging_short_collapses_the_voltage_and_is_reproducible() -> None:
    shorts = []
    for dt_s in (5.0, 10.0):
        cell = FullCell("LCO|Ag|Li", area_cm2=1.0, seed=3)
        run_cc(cell, 3e-4, v_max=4.2, v_min=0.0, charge_Ah=1e-3, max_s=4 * 3600)
        before = cell.voltage(1.5e-3)
        run_cc(cell, 1.5e-3, v_max=4.2, v_min=0.0, max_s=3 * 3600, dt_s=dt_s)
        assert cell.shorted
        shorts.append(cell.plated_li_Ah)  # the cell stops changing at the instant it shorts
        assert before > 3.9 and cell.voltage(1.5e-3) < 0.5  # V ≈ I·R_short + a small OCV remnant
        r_short = cell.short_resistance_ohm
        assert 0.5 <= r_short <= 5.0
        assert cell.voltage(2.5e-3) - cell.voltage(1.5e-3) == pytest.approx(1e-3 * r_short, rel=0.05)
        state = cell.cumulative_hazard
        cell.advance(1.5e-3, 3600)  # a shorted cell no longer changes
        assert cell.cumulative_hazard == state
    assert shorts[0] == pytest.approx(shorts[1], rel=1e-12)  # the hazard threshold, not the step, sets it
    other = FullCell("LCO|Ag|Li", area_cm2=1.0, seed=4)
    run_cc(other, 3e-4, v_max=4.2, v_min=0.0, charge_Ah=1e-3, max_s=4 * 3600)
    run_cc(other, 1.5e-3, v_max=4.2, v_min=0.0, max_s=3 * 3600)
    assert other.plated_li_Ah != pytest.approx(shorts[0], rel=1e-6)
