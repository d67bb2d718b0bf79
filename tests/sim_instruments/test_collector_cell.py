"""The collector|SE|collector model: Wang's 4.2 V corrosion hold, its consistency and its blocking impedance.

``hold`` is also what benchmarks/calibrate_full_cell.py runs for the hold currents.
"""

from __future__ import annotations

import itertools
import statistics

import pytest

from labctl.sim_instruments.collector_cell import PRESETS, WANG_AREA_CM2, CollectorCell, get_preset

SUBSTEP_S = 10.0
PUBLISHED_uA = {  # Wang Fig. S26: after 10, 50, 90 h at 4.2 V, 12 mm collectors
    "Cu|Cu": (39, 35, 16),
    "W-Cu|W-Cu": (3, 3, 2),
    "Mg-Cu|Mg-Cu": (3, 2, 1),
    "Mg/W-Cu|Mg/W-Cu": (4, 2, 1),
}


def hold(
    cell: CollectorCell,
    voltage_V: float,
    readouts_h: tuple[float, ...],
    *,
    max_current_A: float = 1e-3,
    dt_s: float = SUBSTEP_S,
) -> list[float]:
    """Constant voltage as a cycler channel holds it (each substep passes current_at(V), clamped), reading the
    current at ``readouts_h``; returns the currents, A."""
    readings, t = [], 0.0
    for target in readouts_h:
        while t < target * 3600 - 1e-9:
            h = min(dt_s, target * 3600 - t)
            current = max(-max_current_A, min(max_current_A, cell.current_at(voltage_V)))
            cell.advance(current, h)
            t += h
        readings.append(cell.current_at(voltage_V))
    return readings


def test_presets_are_wangs_cells() -> None:
    assert set(PRESETS) == set(PUBLISHED_uA)
    assert get_preset("mg/w-cu|mg/w-cu") is PRESETS["Mg/W-Cu|Mg/W-Cu"]
    with pytest.raises(ValueError, match="Cu\\|Cu"):
        CollectorCell("Ag|Ag", area_cm2=1.0)
    with pytest.raises(ValueError, match="area_cm2"):
        CollectorCell("Cu|Cu", area_cm2=-1.0)
    assert PRESETS["Cu|Cu"].corrosion_uA_cm2[0] == pytest.approx(39 / 1.131, rel=1e-3)  # stored per cm²


@pytest.mark.parametrize("name", PUBLISHED_uA)
def test_hold_currents_at_10_50_90_h(name: str) -> None:
    cell = CollectorCell(name, area_cm2=WANG_AREA_CM2)
    start, *published = hold(cell, 4.2, (0.0, 10.0, 50.0, 90.0))
    for got, want in zip(published, PUBLISHED_uA[name], strict=True):
        assert got * 1e6 == pytest.approx(want, rel=0.1)
    assert start > 3 * published[0]  # the rapid initial drop
    assert cell.corrosion_age_h == pytest.approx(90, rel=0.02)


def test_currents_scale_with_area() -> None:
    small, large = CollectorCell("Cu|Cu", area_cm2=WANG_AREA_CM2), CollectorCell("Cu|Cu", area_cm2=2 * WANG_AREA_CM2)
    assert hold(large, 4.2, (10.0,))[0] == pytest.approx(2 * hold(small, 4.2, (10.0,))[0], rel=1e-3)


def test_corrosion_is_zero_at_0_V_and_falls_steeply_below_4p2_V() -> None:
    fresh = CollectorCell("Cu|Cu", area_cm2=WANG_AREA_CM2)
    assert fresh.current_at(0.0) == 0.0
    assert fresh.current_at(-1.0) == pytest.approx(-fresh.current_at(1.0))  # either collector corrodes
    at_4p2, at_3p5 = CollectorCell("Cu|Cu", area_cm2=WANG_AREA_CM2), CollectorCell("Cu|Cu", area_cm2=WANG_AREA_CM2)
    high, low = hold(at_4p2, 4.2, (10.0,))[0], hold(at_3p5, 3.5, (10.0,))[0]
    assert low < high / 10
    assert at_3p5.corrosion_age_h < 1  # corrosion ages with its own rate, not with the clock
    assert at_3p5.corrosion_charge_C < at_4p2.corrosion_charge_C / 10


@pytest.mark.parametrize("hours", [0.0, 0.2, 20.0])
def test_current_at_inverts_voltage(hours: float) -> None:
    cell = CollectorCell("Mg/W-Cu|Mg/W-Cu", area_cm2=WANG_AREA_CM2)
    hold(cell, 4.2, (hours,))
    for current in (-1e-3, -3e-5, -1e-7, 0.0, 1e-7, 2e-6, 5e-5, 1e-3):
        v = cell.voltage(current)
        assert cell.current_at(v) == pytest.approx(current, rel=1e-6, abs=1e-13)
    volts = [cell.voltage(i) for i in (-1e-5, 0.0, 1e-5)]
    assert volts == sorted(volts)


def test_constant_current_charges_it_like_a_capacitor() -> None:
    """While the SE passivates, V climbs by b per q_0 of charge: a pseudo-capacitance q_0/b."""
    cell = CollectorCell("W-Cu|W-Cu", area_cm2=WANG_AREA_CM2)
    current, volts = 1e-6, []
    for _ in range(30):
        cell.advance(current, 60.0)
        volts.append(cell.voltage(current))
    steps = [b - a for a, b in itertools.pairwise(volts)]
    assert all(s > 0 for s in steps)
    capacitance = current * 60.0 / statistics.mean(steps[:10])  # passivation still carries most of I
    assert capacitance == pytest.approx(1e-3 * WANG_AREA_CM2 / 0.25, rel=0.1)
    assert cell.passivation_charge_C + cell.corrosion_charge_C == pytest.approx(current * 1800, rel=1e-9)
    assert cell.passivation_charge_C > 0.9 * current * 1800


def test_impedance_is_blocking() -> None:
    cell = CollectorCell("Cu|Cu", area_cm2=WANG_AREA_CM2)
    for _hours in (0, 20):
        assert cell.impedance(1e6).real == pytest.approx(cell.bulk_resistance_ohm, rel=0.01)
        reactances = [-cell.impedance(f).imag for f in (1e3, 1.0, 1e-2, 1e-3)]
        assert reactances == sorted(reactances) and reactances[-1] > 1e6  # capacitive, growing as f falls
        hold(cell, 4.2, (20.0,))


def test_measurement_noise_never_changes_the_cell() -> None:
    quiet, noisy = (
        CollectorCell("Cu|Cu", area_cm2=WANG_AREA_CM2, seed=2),
        CollectorCell("Cu|Cu", area_cm2=WANG_AREA_CM2, seed=2),
    )
    for _ in range(50):
        quiet.advance(1e-6, 60.0)
        noisy.advance(1e-6, 60.0)
        readings = [noisy.measured_voltage(1e-6) for _ in range(3)] + [noisy.measured_impedance(1.0).real]
    assert quiet.voltage(1e-6) == noisy.voltage(1e-6)
    assert readings[0] != readings[1] and abs(readings[0] - noisy.voltage(1e-6)) < 0.05
