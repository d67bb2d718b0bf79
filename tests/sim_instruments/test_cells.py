"""The Li|SE|Li cell model: magnitudes, signs, voids, shorts, determinism, and calibration to patent Table 1."""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from collections.abc import Callable

import pytest

from labctl.sim_instruments.cells import SymmetricCell
from labctl.sim_instruments.presets import PRESETS, InterlayerPreset, get_preset

AREA_CM2 = 0.785
CALIBRATION_SEEDS = range(15)


def amps(density_mA_cm2: float, area_cm2: float = AREA_CM2) -> float:
    return density_mA_cm2 * area_cm2 / 1000


def without_shorts(name: str, **changes: float) -> InterlayerPreset:
    return dataclasses.replace(PRESETS[name], hazard_per_mAh_cm2=0.0, **changes)


def run_fixed_time_ccd(
    cell: SymmetricCell,
    substep_s: float = 30.0,
    *,
    read: Callable[[float], float] | None = None,
    limit_V: float = 1.0,
) -> tuple[int | None, str | None, float]:
    """The fixed-time CCD protocol run straight on the model (no instrument in between).

    0.1 → 3.0 mA/cm² in 0.1 steps, 2 cycles per step, 0.5 h per half-cycle, positive half first. Returns the
    failing step (1 = 0.1 mA/cm²) or None, the failure ("short" for a permanent short, "contact loss" for
    |V| >= ``limit_V``) and the test time at failure, s. Soft shorts that heal are not failures.
    """
    read = read or cell.voltage
    t = 0.0
    for step in range(1, 31):
        current = amps(step / 10, cell.area_cm2)
        for _half in range(4):
            for _ in range(round(1800 / substep_s)):
                cell.advance(current, substep_s)
                t += substep_s
                if cell.hard_shorted:
                    return step, "short", t
                if abs(read(current)) >= limit_V:
                    return step, "contact loss", t
            current = -current
    return None, None, t


def median_failing_step(name: str, seeds=CALIBRATION_SEEDS) -> float:
    return statistics.median(run_fixed_time_ccd(SymmetricCell(name, seed=s))[0] or 31 for s in seeds)


# -- presets -------------------------------------------------------------------------------------------------
def test_presets_hold_patent_table_1():
    table = {name: (p.interface_asr_ohm_cm2, p.patent_ccd_mA_cm2) for name, p in PRESETS.items()}
    assert table == {"bare": (10.6, 0.6), "Ag": (4.3, 0.9), "Mg": (114.0, 0.4), "Ag|Mg": (0.19, 2.4),
                     "Mg|Ag": (99.5, 0.4)}


def test_preset_lookup_ignores_case():
    assert get_preset("ag|mg") is PRESETS["Ag|Mg"]
    assert SymmetricCell("BARE").preset is PRESETS["bare"]


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ValueError, match=r"'Au'.*bare, Ag, Mg, Ag\|Mg, Mg\|Ag"):
        SymmetricCell("Au")


def test_negative_preset_parameter_is_rejected():
    with pytest.raises(ValueError, match="creep_rate_per_s"):
        dataclasses.replace(PRESETS["bare"], creep_rate_per_s=-1.0)


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="area_cm2"):
        SymmetricCell(area_cm2=0)
    with pytest.raises(ValueError, match="dt_s"):
        SymmetricCell().advance(1e-4, -1.0)


def test_default_bulk_resistance_scales_with_area():
    assert SymmetricCell().bulk_resistance_ohm == pytest.approx(50.0)
    assert SymmetricCell(area_cm2=1.131).bulk_resistance_ohm == pytest.approx(50.0 * 0.785 / 1.131)
    assert SymmetricCell(bulk_resistance_ohm=80.0).bulk_resistance_ohm == 80.0


# -- voltage ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("density", "expected_V"), [(0.1, 0.006), (0.5, 0.033)])
def test_bare_cell_magnitudes_match_science_notes(density, expected_V):
    """science.md §4.2: A = 0.785 cm², R_b = 50 ohm, ASR 10.6 ohm·cm²: ≈6 mV at 0.1, ≈33 mV at 0.5 mA/cm²."""
    cell = SymmetricCell("bare", seed=3)
    cell.advance(amps(density), 1800.0)  # a whole half-cycle: past the nucleation dip
    assert cell.voltage(amps(density)) == pytest.approx(expected_V, rel=0.1)


@pytest.mark.parametrize("name", list(PRESETS))
def test_voltage_is_odd_in_current_and_butler_volmer_shaped(name):
    cell = SymmetricCell(name)
    currents = [amps(d) for d in (0.05, 0.5, 2.0, 5.0)]
    for current in currents:
        assert cell.voltage(-current) == -cell.voltage(current)
    assert cell.voltage(0.0) == 0.0
    # asinh kinetics: the overpotential beyond the ohmic drop grows sublinearly with current.
    eta = [cell.voltage(i) - i * cell.bulk_resistance_ohm for i in currents]
    ratios = zip(itertools.pairwise(eta), itertools.pairwise(currents), strict=True)
    assert all(e2 / e1 < i2 / i1 for (e1, e2), (i1, i2) in ratios)


def test_low_current_overpotential_is_two_interface_asrs():
    """Linear Butler-Volmer: η → 2·ASR·j for small j (two interfaces)."""
    p = dataclasses.replace(PRESETS["Mg"], nucleation_overpotential_V=0.0)
    cell = SymmetricCell(p)
    current = amps(0.001)
    eta = cell.voltage(current) - current * cell.bulk_resistance_ohm
    assert eta == pytest.approx(2 * 114.0 * 0.001e-3, rel=1e-3)


def test_nucleation_dip_at_start_of_each_plating_half_cycle():
    cell = SymmetricCell("bare", seed=1)
    current = amps(0.2)
    eta_n0 = cell.preset.nucleation_overpotential_V
    first = cell.voltage(current)
    cell.advance(current, 1800.0)
    settled = cell.voltage(current)
    assert first - settled == pytest.approx(eta_n0, rel=0.01)
    # Reversal: the other electrode starts plating and nucleates again.
    assert cell.voltage(-current) == pytest.approx(-(settled + eta_n0), rel=0.01)
    cell.advance(-current, 30.0)  # 0.0017 mAh/cm² into the dip (q_n = 0.01)
    assert -cell.voltage(-current) - settled > 0.5 * eta_n0
    cell.advance(-current, 1770.0)
    assert cell.voltage(-current) == pytest.approx(-settled, rel=0.01)


def test_rest_does_not_restart_nucleation():
    """An interrupted half-cycle (e.g. for EIS) resumes without a new dip: the current did not change sign."""
    cell = SymmetricCell("bare")
    current = amps(0.2)
    cell.advance(current, 900.0)
    before = cell.voltage(current)
    cell.advance(0.0, 300.0)
    assert cell.voltage(current) == pytest.approx(before, rel=1e-6)


# -- voids --------------------------------------------------------------------------------------------------
def strip_trace(preset: InterlayerPreset, density: float) -> list[float]:
    cell = SymmetricCell(preset)
    trace = []
    for _ in range(180):
        cell.advance(amps(density), 10.0)
        trace.append(cell.voltage(amps(density)))
    return trace


def test_voids_raise_stripping_voltage_above_critical_stripping_current():
    p = without_shorts("bare")
    j_csc = p.critical_stripping_current_mA_cm2
    above = strip_trace(p, 1.4 * j_csc)
    below = strip_trace(p, 0.8 * j_csc)
    assert above[-1] > 1.05 * above[90]  # keeps rising after the nucleation dip has gone
    assert all(b >= a for a, b in itertools.pairwise(above[90:]))
    assert below[-1] == pytest.approx(below[90], rel=1e-4)


def test_voids_open_on_stripping_side_and_refill_on_plating():
    cell = SymmetricCell(without_shorts("bare"))
    current = amps(0.8)
    cell.advance(current, 1800.0)
    opened = cell.void_fraction[0]
    assert opened > 0.01 and cell.void_fraction[1] == 0.0
    assert cell.constriction_resistance_ohm > 0
    cell.advance(-current, 600.0)  # electrode 1 now plates
    assert cell.void_fraction[0] < 0.5 * opened
    resting = cell.void_fraction[1]
    cell.advance(0.0, 3600.0)  # creep closes voids at rest
    assert cell.void_fraction[1] < resting


def test_contact_loss_drives_stripping_voltage_to_the_safety_limit():
    cell = SymmetricCell(without_shorts("bare"))
    current = amps(1.2)
    peak = 0.0
    for _ in range(180):
        cell.advance(current, 10.0)
        peak = max(peak, cell.voltage(current))
    assert peak >= 1.0
    assert not cell.shorted
    assert max(cell.void_fraction) == pytest.approx(0.95)


# -- shorts -------------------------------------------------------------------------------------------------
def short_quickly(soft_probability: float) -> SymmetricCell:
    """A bare cell shorted by a burst at 3 mA/cm², where its hazard is ~4e5 per mAh/cm² (1.5e-4 at 0.2)."""
    cell = SymmetricCell(dataclasses.replace(PRESETS["bare"], soft_short_probability=soft_probability))
    cell.advance(amps(3.0), 60.0)
    assert cell.shorted
    return cell


def test_hard_short_is_ohmic_and_permanent():
    cell = short_quickly(0.0)
    current = amps(0.2)
    assert cell.hard_shorted
    assert 0.5 <= cell.short_resistance_ohm <= 5.0
    assert abs(cell.voltage(current)) < 0.5 * current * cell.bulk_resistance_ohm
    assert cell.voltage(2 * current) == pytest.approx(2 * cell.voltage(current))
    assert cell.voltage(-current) == pytest.approx(-cell.voltage(current))
    cell.advance(-current, 7200.0)
    assert cell.hard_shorted
    assert cell.voltage(current) == pytest.approx(current * cell.short_resistance_ohm)


def test_soft_short_collapses_then_recovers_when_its_filament_is_stripped():
    cell = short_quickly(1.0)
    current = amps(0.2)
    assert not cell.hard_shorted
    assert abs(cell.voltage(current)) < 0.5 * current * cell.bulk_resistance_ohm
    cell.advance(current, 600.0)  # same direction: the filament keeps carrying the current
    assert cell.shorted
    collapsed = cell.voltage(-current)
    cell.advance(-current, 60.0)  # reversal strips the filament's electrode: partial recovery
    assert cell.shorted and abs(cell.voltage(-current)) > abs(collapsed)
    cell.advance(-current, 1740.0)
    assert not cell.shorted and cell.soft_short_count == 1
    assert math.isinf(cell.short_resistance_ohm)
    twin = SymmetricCell(cell.preset)
    twin.advance(-current, 1800.0)
    assert cell.voltage(-current) == pytest.approx(twin.voltage(-current), rel=1e-3)


def test_a_healed_cell_can_short_again():
    cell = short_quickly(1.0)
    cell.advance(-amps(0.2), 1800.0)
    assert not cell.shorted
    cell.advance(amps(3.0), 60.0)  # a new threshold, crossed again at once
    assert cell.shorted and cell.soft_short_count == 1


# -- determinism and step-size independence -------------------------------------------------------------------
def test_same_seed_same_cell():
    def trace(seed: int) -> list[float]:
        cell = SymmetricCell("bare", seed=seed)
        out = []
        for step in range(1, 9):
            for sign in (1, -1, 1, -1):
                for _ in range(60):
                    cell.advance(sign * amps(step / 10), 30.0)
                    out.append(cell.measured_voltage(sign * amps(step / 10)))
        return out

    assert trace(7) == trace(7)
    assert trace(7) != trace(8)


def test_seeds_spread_the_failure():
    assert len({run_fixed_time_ccd(SymmetricCell("bare", seed=s))[0] for s in range(10)}) >= 2


@pytest.mark.parametrize("seed", range(3))
def test_short_does_not_depend_on_the_substep(seed):
    coarse_cell, fine_cell = SymmetricCell("bare", seed=seed), SymmetricCell("bare", seed=seed)
    coarse = run_fixed_time_ccd(coarse_cell, 10.0)
    fine = run_fixed_time_ccd(fine_cell, 1.0)
    assert coarse[:2] == fine[:2]
    assert coarse[2] == pytest.approx(fine[2], abs=10.0)
    if coarse[1] == "short":  # the short forms at the same plated charge, not at a substep boundary
        assert coarse_cell.plated_charge_Ah == pytest.approx(fine_cell.plated_charge_Ah, rel=1e-4)


def test_noise_is_small_and_never_changes_the_failure():
    cell = SymmetricCell("bare", seed=2)
    current = amps(0.5)
    cell.advance(current, 600.0)
    true_V = cell.voltage(current)
    readings = [cell.measured_voltage(current) for _ in range(2000)]
    sigma = 2e-4 + 2e-3 * abs(true_V)
    assert statistics.mean(readings) == pytest.approx(true_V, abs=4 * sigma / math.sqrt(2000))
    assert statistics.stdev(readings) == pytest.approx(sigma, rel=0.1)
    for seed in range(4):
        noisy = SymmetricCell("Ag", seed=seed)
        quiet = SymmetricCell("Ag", seed=seed)
        assert run_fixed_time_ccd(noisy, read=noisy.measured_voltage) == run_fixed_time_ccd(quiet)


# -- calibration (the acceptance criterion) ---------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PRESETS))
def test_median_ccd_matches_patent_within_one_step(name):
    """Fixed-time CCD protocol over 15 seeds: the median failing step is the patent CCD ± 0.1 mA/cm²."""
    target_step = round(PRESETS[name].patent_ccd_mA_cm2 * 10)
    assert abs(median_failing_step(name) - target_step) <= 1
