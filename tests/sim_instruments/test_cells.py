"""The Li|SE|Li cell model: magnitudes, signs, voids, shorts, impedance, determinism, and calibration to patent Table 1."""

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
    table = {name: (p.interface_asr_ohm_cm2, p.patent_ccd_mA_cm2) for name, p in PRESETS.items() if name != "LPSCl"}
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


# -- constant voltage: current_at --------------------------------------------------------------------------
HOLD_VOLTAGES_V = (0.012, 0.03, 0.1, 0.5, 1.5, 4.2)


def cells_in_states(name: str) -> dict[str, SymmetricCell]:
    """Cells of preset ``name`` fresh, with voids opened by stripping, and just after a reversal."""
    fresh = SymmetricCell(without_shorts(name))
    voided = SymmetricCell(without_shorts(name))
    voided.advance(amps(1.5 * voided.preset.critical_stripping_current_mA_cm2), 1800.0)
    reversed_ = SymmetricCell(without_shorts(name))
    reversed_.advance(amps(0.5), 1800.0)
    reversed_.advance(-amps(0.5), 20.0)
    return {"fresh": fresh, "voided": voided, "reversed": reversed_}


@pytest.mark.parametrize("name", list(PRESETS))
def test_current_at_inverts_voltage(name):
    """voltage(current_at(V)) = V in both directions, with voids and mid-nucleation, on every preset."""
    for state, cell in cells_in_states(name).items():
        assert max(cell.void_fraction) > 0 or state != "voided"
        for v in HOLD_VOLTAGES_V + tuple(-v for v in HOLD_VOLTAGES_V):
            current = cell.current_at(v)
            assert math.copysign(1, current) == math.copysign(1, v), (state, v)
            assert cell.voltage(current) == pytest.approx(v, rel=1e-9), (state, v)


def test_current_at_rises_with_voltage():
    cell = cells_in_states("bare")["voided"]
    currents = [cell.current_at(v / 100) for v in range(-300, 301, 7)]
    assert all(b > a for a, b in itertools.pairwise(currents))


def test_no_current_flows_inside_the_nucleation_overpotential():
    """|V| below the nucleation overpotential (10 mV for bare, fresh) cannot be reached with any current."""
    cell = SymmetricCell("bare")
    assert cell.current_at(0.0) == 0.0
    assert cell.current_at(0.009) == 0.0 and cell.current_at(-0.009) == 0.0
    # just above it, the small-signal resistance R_b + 2·ASR/A (two interfaces) passes the excess
    small_signal_ohm = cell.bulk_resistance_ohm + 2 * cell.interface_asr_ohm_cm2 / AREA_CM2
    assert cell.current_at(0.0101) == pytest.approx(0.0001 / small_signal_ohm, rel=1e-3)


def test_current_at_on_shorted_cells():
    hard = short_quickly(0.0)
    assert hard.current_at(0.01) == pytest.approx(0.01 / hard.short_resistance_ohm)
    soft = short_quickly(1.0)
    for v in (0.001, 0.01, -0.2, 1.0):
        current = soft.current_at(v)
        assert soft.voltage(current) == pytest.approx(v, rel=1e-9)
        assert abs(current) > abs(v) / soft.bulk_resistance_ohm  # the filament carries most of it


def test_current_at_leaves_the_cell_and_its_noise_alone():
    cell, twin = SymmetricCell("Ag", seed=4), SymmetricCell("Ag", seed=4)
    for v in HOLD_VOLTAGES_V:
        cell.current_at(v)
    assert cell.measured_voltage(amps(0.3)) == twin.measured_voltage(amps(0.3))
    assert cell.void_fraction == twin.void_fraction and cell.cumulative_hazard == twin.cumulative_hazard


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


# -- impedance (science.md §4.4) ------------------------------------------------------------------------------
EIS_AREA_CM2 = 1.131  # the procedures' 12 mm electrode
WINDOWS = {"standalone": (1e6, 0.1), "in-situ": (2e6, 2.0)}
TAIL_RISE = {"standalone": 5.0, "in-situ": 2.0}  # −Z'' at the lowest frequency over its minimum


def spectrum(cell: SymmetricCell, high: float, low: float, per_decade: int = 10) -> list[tuple[float, complex]]:
    n = round(per_decade * math.log10(high / low))
    return [(f, cell.impedance(f)) for f in (high * (low / high) ** (k / n) for k in range(n + 1))]


def interior_extrema(values: list[float]) -> list[tuple[str, int]]:
    out = []
    for k in range(1, len(values) - 1):
        if values[k - 1] < values[k] > values[k + 1]:
            out.append(("max", k))
        elif values[k - 1] > values[k] < values[k + 1]:
            out.append(("min", k))
    return out


def cell_with_voids(name: str = "bare", density: float = 0.8, seconds: float = 900.0, **changes: float) -> SymmetricCell:
    """A cell whose electrode 1 has lost contact by stripping above its critical stripping current."""
    cell = SymmetricCell(without_shorts(name, **changes), area_cm2=EIS_AREA_CM2)
    cell.advance(amps(density, EIS_AREA_CM2), seconds)
    assert cell.void_fraction[0] > 0.05 and cell.void_fraction[1] == 0.0
    return cell


@pytest.mark.parametrize("name", list(PRESETS))
def test_high_frequency_limit_is_the_bulk_resistance(name):
    cell = SymmetricCell(name, area_cm2=EIS_AREA_CM2)
    z = cell.impedance(1e10)
    assert z.real == pytest.approx(cell.bulk_resistance_ohm, rel=1e-4) and abs(z.imag) < 1e-3


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("window", list(WINDOWS))
def test_spectrum_has_bulk_intercept_one_arc_and_a_tail(name, window):
    cell = SymmetricCell(name, area_cm2=EIS_AREA_CM2)
    points = spectrum(cell, *WINDOWS[window])
    minus_z2 = [-z.imag for _, z in points]
    # bulk intercept: the highest frequency is within 1.5 % of R_b on the real axis
    assert points[0][1].real == pytest.approx(cell.bulk_resistance_ohm, rel=0.015)
    # one capacitive arc (Z'' < 0), then the minimum between arc and tail, then the tail to the lowest frequency
    assert all(v > 0 for v in minus_z2)
    assert [kind for kind, _ in interior_extrema(minus_z2)] == ["max", "min"]
    _, (_, valley) = interior_extrema(minus_z2)
    assert minus_z2[-1] > TAIL_RISE[window] * minus_z2[valley]
    # the arc spans R_b → R_tot: the real part at the valley is R_tot (biased high by the tail's real part)
    assert points[valley][1].real == pytest.approx(cell.total_resistance_ohm, rel=0.03)
    assert points[valley][1].real >= cell.total_resistance_ohm
    # the tail is a diffusion line: about 45° in the Nyquist plot
    (_, z_a), (_, z_b) = points[-2], points[-1]
    assert 0.7 < (z_a.imag - z_b.imag) / (z_b.real - z_a.real) < 1.5


@pytest.mark.parametrize("name", list(PRESETS))
def test_the_interfacial_arc_stands_above_the_measurement_noise(name):
    """Even Ag|Mg's 0.34 ohm arc (0.19 ohm·cm² per interface) is several noise sigmas high."""
    cell = SymmetricCell(name, area_cm2=EIS_AREA_CM2)
    points = spectrum(cell, *WINDOWS["standalone"])
    (_, apex), _ = interior_extrema([-z.imag for _, z in points])
    z_apex = points[apex][1]
    sigma = 0.002 / math.sqrt(2) * abs(z_apex)  # per component
    assert -z_apex.imag > 2.5 * sigma
    assert sum(cell.interface_resistance_ohm) > 6 * sigma


def test_resistances_at_full_contact():
    cell = SymmetricCell("bare", area_cm2=EIS_AREA_CM2)
    r_int = 10.6 / EIS_AREA_CM2
    assert cell.interface_resistance_ohm == pytest.approx((r_int, r_int))
    assert cell.constriction_resistance_ohm == 0.0
    assert cell.total_resistance_ohm == pytest.approx(cell.bulk_resistance_ohm + 2 * r_int)


def test_low_frequency_limit_without_diffusion_is_the_total_resistance():
    cell = SymmetricCell(dataclasses.replace(PRESETS["Mg"], warburg_ohm_cm2_per_sqrt_s=0.0), area_cm2=EIS_AREA_CM2)
    z = cell.impedance(1e-6)
    assert z.real == pytest.approx(cell.total_resistance_ohm, rel=1e-4) and abs(z.imag) < 1e-2


@pytest.mark.parametrize("name", ["bare", "Mg|Ag", "LPSCl"])
def test_total_resistance_is_the_cells_small_signal_dc_resistance(name):
    """R_tot from the impedance model and dV/dI of the voltage model agree, with voids too."""
    cell = cell_with_voids(name, density=1.0, seconds=600.0, nucleation_overpotential_V=0.0)
    current = 1e-7
    assert cell.voltage(current) / current == pytest.approx(cell.total_resistance_ohm, rel=1e-4)
    assert cell.voltage(-current) / -current == pytest.approx(cell.total_resistance_ohm, rel=1e-4)


def test_contact_loss_on_the_stripped_electrode_raises_its_arc_and_r_tot():
    cell = SymmetricCell(without_shorts("bare"), area_cm2=EIS_AREA_CM2)
    current = amps(0.8, EIS_AREA_CM2)
    history = []
    for _ in range(6):
        cell.advance(current, 300.0)
        history.append((cell.void_fraction[0], cell.total_resistance_ohm, cell.impedance(0.5).real))
    thetas, r_tots, z_lows = zip(*history, strict=True)
    assert all(b > a for a, b in itertools.pairwise(thetas))
    assert all(b > a for a, b in itertools.pairwise(r_tots))
    assert all(b > a for a, b in itertools.pairwise(z_lows))
    r1, r2 = cell.interface_resistance_ohm
    assert r1 == pytest.approx(10.6 / EIS_AREA_CM2 / (1 - thetas[-1])) and r2 == pytest.approx(10.6 / EIS_AREA_CM2)
    assert cell.constriction_resistance_ohm == pytest.approx(cell.bulk_resistance_ohm * thetas[-1] / (1 - thetas[-1]))
    # the high-frequency intercept stays the bulk: contact loss widens the arcs
    assert cell.impedance(1e10).real == pytest.approx(cell.bulk_resistance_ohm, rel=1e-4)


def test_lpscl_r_tot_rises_through_stripping_and_recovers_on_plating():
    """The in-situ EIS protocol (0.25 mA/cm², 1 mAh/cm² halves) on LPSCl: voids open on the stripped electrode."""
    cell = SymmetricCell("LPSCl", area_cm2=EIS_AREA_CM2)
    current = amps(0.25, EIS_AREA_CM2)
    for sign in (-1, 1):  # plate on the working electrode (strip the counter electrode), then strip it
        r_tot = []
        for _ in range(24):  # 24 × 10 min = 1 mAh/cm²
            cell.advance(sign * current, 600.0)
            cell.advance(0.0, 60.0)  # the current interrupted for a spectrum
            r_tot.append(cell.total_resistance_ohm)
        assert r_tot[-1] > 1.2 * r_tot[0]
        assert r_tot[-1] > 1.2 * min(r_tot)
        assert abs(cell.voltage(sign * current)) < 0.1
    assert not cell.shorted


def test_a_hard_short_is_flat_at_r_short():
    cell = short_quickly(0.0)
    r_short = cell.short_resistance_ohm
    assert cell.total_resistance_ohm == r_short
    for f in (0.1, 10.0, 1e3, 1e5, 1e6):
        z = cell.impedance(f)
        assert z.real == r_short
        assert 0 < z.imag < 2 * math.pi * f * 1e-7  # a small series inductance, nothing capacitive
    assert abs(cell.impedance(1e3) - r_short) < 1e-3 * r_short


def test_a_soft_short_shunts_the_spectrum_until_it_heals():
    cell = short_quickly(1.0)
    intact = SymmetricCell(cell.preset)
    r_short = cell.short_resistance_ohm
    assert cell.total_resistance_ohm < min(r_short, intact.total_resistance_ohm)
    assert abs(cell.impedance(1.0)) < r_short
    cell.advance(-amps(0.2), 1800.0)  # strips the filament away
    assert not cell.shorted
    assert cell.total_resistance_ohm > intact.total_resistance_ohm * 0.99


def test_measured_impedance_noise_is_two_permille_of_z():
    cell = SymmetricCell("bare", area_cm2=EIS_AREA_CM2, seed=4)
    z = cell.impedance(1e3)
    errors = [(cell.measured_impedance(1e3) - z) / abs(z) for _ in range(4000)]
    assert abs(statistics.mean(e.real for e in errors)) < 1e-4 and abs(statistics.mean(e.imag for e in errors)) < 1e-4
    assert math.sqrt(statistics.mean(abs(e) ** 2 for e in errors)) == pytest.approx(0.002, rel=0.05)
    assert statistics.stdev(e.real for e in errors) == pytest.approx(statistics.stdev(e.imag for e in errors), rel=0.1)


def test_impedance_measurements_never_change_the_cell_or_the_cyclers_noise():
    def run(with_eis: bool) -> tuple[object, list[float]]:
        cell = SymmetricCell("Ag", seed=5)
        readings = []

        def read(current: float) -> float:
            if with_eis:
                cell.measured_impedance(1e3)
                cell.impedance(0.1)
            readings.append(cell.measured_voltage(current))
            return cell.voltage(current)

        return run_fixed_time_ccd(cell, read=read), readings

    assert run(True) == run(False)
    a, b = SymmetricCell("bare", seed=5), SymmetricCell("bare", seed=5)
    assert [a.measured_impedance(10.0) for _ in range(5)] == [b.measured_impedance(10.0) for _ in range(5)]


@pytest.mark.parametrize("frequency", [0.0, -1.0, math.inf, math.nan])
def test_impedance_needs_a_positive_frequency(frequency):
    with pytest.raises(ValueError, match="frequency_Hz"):
        SymmetricCell().impedance(frequency)


def test_interface_capacitance_must_be_positive():
    with pytest.raises(ValueError, match="interface_capacitance_uF_cm2"):
        dataclasses.replace(PRESETS["bare"], interface_capacitance_uF_cm2=0.0)


# -- calibration (the acceptance criterion) ---------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PRESETS))
def test_median_ccd_matches_patent_within_one_step(name):
    """Fixed-time CCD protocol over 15 seeds: the median failing step is the patent CCD ± 0.1 mA/cm²."""
    target_step = round(PRESETS[name].patent_ccd_mA_cm2 * 10)
    assert abs(median_failing_step(name) - target_step) <= 1
