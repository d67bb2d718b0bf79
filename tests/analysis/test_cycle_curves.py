"""Per-cycle capacities, voltage-capacity curves and dQ/dV (labctl.analysis.cycle_curves) against computations made
here: charges of constant currents, the segments module's own rules applied row by row, a curve whose dQ/dV is
known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labctl.analysis.cycle_curves import (
    CycleRows,
    HalfCycleCurve,
    Samples,
    capacities_from_rows,
    capacities_from_samples,
    capacity_basis,
    default_cycles,
    dq_dv,
    half_cycle_curves,
    parse_cycle_choice,
    run_basis,
)
from labctl.analysis.segments import Charge, Split

AREA = 0.5  # cm²
I_A = 5e-4  # 1 mA/cm²
DT = 10.0  # s between samples
HALF_S = 1800.0  # each half-cycle: 0.5 mAh/cm² at 1 mA/cm²
BIN = 0.005  # V, the default bin of dQ/dV


def cycling(cycles: int = 3, *, plate_first: bool = False, returned: float = 0.9) -> Samples:
    """``cycles`` cycles of a constant-current half-cycle of HALF_S and one of ``returned`` × HALF_S the other way,
    sampled every DT from DT after each step starts, each step closed by a reading at rest at its end; the voltage
    rises linearly under positive current and falls under negative current; counters as an instrument keeps them."""
    first = -1.0 if plate_first else 1.0
    t, v, i, step, cycle = [0.0], [3.0], [0.0], [0], [1]
    number = 0
    for c in range(1, cycles + 1):
        for sign, duration in ((first, HALF_S), (-first, returned * HALF_S)):
            number += 1
            start = t[-1]
            times = start + np.arange(DT, duration - DT / 2, DT)
            t += list(times)
            v += list(3.5 + sign * 0.5 * (times - start) / duration)
            i += [sign * I_A] * len(times)
            step += [number] * len(times)
            cycle += [c] * len(times)
            t.append(start + duration)  # the step's reading at rest, when it ended
            v.append(3.5)
            i.append(0.0)
            step.append(number)
            cycle.append(c)
    t, i = np.array(t), np.array(i)
    # counters: charge passed so far under each sign, the current held over the interval before each reading
    held = np.r_[0.0, np.where(i[1:] != 0, i[1:], i[:-1]) * np.diff(t) / 3600]
    charge, discharge = np.cumsum(np.clip(held, 0, None)), np.cumsum(np.clip(-held, 0, None))
    return Samples(t, np.array(v), i, np.array(step, float), np.array(cycle, float), charge, discharge)


def without(samples: Samples, *names: str) -> Samples:
    return Samples(*(None if name in names else getattr(samples, name) for name in
                     ("t_s", "voltage_V", "current_A", "step", "cycle", "charge_Ah", "discharge_Ah")))  # fmt: skip


AREAL = capacity_basis(AREA, None)
HALF_mAh_cm2 = I_A * HALF_S / 3600 * 1000 / AREA  # 0.5


@pytest.mark.parametrize("drop", [(), ("charge_Ah", "discharge_Ah"), ("step",), ("cycle",), ("step", "cycle")])
def test_capacities_per_cycle_from_samples_are_the_charges_passed(drop):
    c = capacities_from_samples(without(cycling(), *drop), AREAL)
    assert list(c.cycle) == [1, 2, 3] and c.unit == "mAh/cm²" and c.names == ("charge", "discharge")
    assert c.stored == pytest.approx([HALF_mAh_cm2] * 3, rel=1e-9)
    assert c.returned == pytest.approx([0.9 * HALF_mAh_cm2] * 3, rel=1e-9)
    assert c.ce_percent == pytest.approx([90.0] * 3)
    assert c.retention(2) == pytest.approx([100.0] * 3)


def test_the_first_half_cycle_s_direction_stores_charge():
    # a half cell plates first (negative current): plating is stored, stripping returned
    c = capacities_from_samples(cycling(plate_first=True, returned=0.98), capacity_basis(AREA, 2.0))
    assert c.names == ("discharge", "charge") and c.unit == "mAh/g"
    assert c.stored == pytest.approx([I_A * HALF_S / 3600 * 1e6 / 2.0] * 3)
    assert c.ce_percent == pytest.approx([98.0] * 3)


def test_the_vectorised_charge_rule_is_the_segments_rule_row_by_row():
    rng = np.random.default_rng(1)
    n = 400
    t = np.cumsum(rng.uniform(0.5, 30, n))
    i = rng.choice([0.0, 2e-4, -3e-4], n) * rng.uniform(0.5, 1.5, n)
    step = np.cumsum(rng.random(n) < 0.1).astype(float)
    samples = Samples(t, np.zeros(n), i, step)
    rule, dq = Charge(Split(AREA)), samples.charges_Ah(AREAL.rest_A)
    expected = [abs(rule.add(0.0, i[0], int(step[0])))] + [rule.add(t[k] - t[k - 1], i[k], int(step[k]))
                                                           for k in range(1, n)]
    assert np.abs(dq) == pytest.approx(expected, abs=1e-15)


def test_counted_cycles_are_the_segments_rule():
    samples = without(cycling(4), "cycle", "step")
    rest_A = AREAL.rest_A
    split = Split(AREA, count_cycles=True)
    amps = list(samples.current_A)
    assert list(samples.cycles(rest_A)) == [c or 1 for c in split.cycles(split.steps(amps), amps)]


def test_half_cycle_curves_reach_the_charge_of_the_step_s_reading_at_rest():
    samples = cycling()
    rows = CycleRows()
    rows.update(samples, AREAL.rest_A)
    charge, discharge = half_cycle_curves(samples, rows.rows(2), 2, AREAL)
    assert (charge.sign, discharge.sign) == (1, -1)
    assert charge.capacity[-1] == pytest.approx(HALF_mAh_cm2) and discharge.capacity[-1] == pytest.approx(
        0.9 * HALF_mAh_cm2)
    assert charge.capacity[0] == pytest.approx(HALF_mAh_cm2 * DT / HALF_S)  # the first interval's charge
    assert charge.voltage_V[-1] == charge.voltage_V[-2] == pytest.approx(4.0 - 0.5 * DT / HALF_S)  # held
    assert np.all(np.diff(charge.capacity) > 0) and np.all(np.diff(discharge.voltage_V) <= 0)


def test_cycle_rows_grow_with_the_series_as_a_whole_scan_finds_them():
    samples = cycling(3)
    rows = CycleRows()
    for stop in (5, 200, 201, 550, len(samples)):
        rows.update(samples.rows(slice(0, stop)), AREAL.rest_A)
    whole = CycleRows()
    whole.update(samples, AREAL.rest_A)
    assert rows.bounds == whole.bounds and rows.cycles == [1, 2, 3]
    first = whole.rows(2).start
    assert samples.cycle[first] == 2 and samples.cycle[first - 1] == 1


def logistic(v: np.ndarray, q_max: float, v0: float, w: float) -> tuple[np.ndarray, np.ndarray]:
    """Q(V) of one plateau and its dQ/dV in closed form."""
    x = (v - v0) / w
    return q_max / (1 + np.exp(-x)), q_max / (4 * w) / np.cosh(x / 2) ** 2


def test_dq_dv_of_a_known_curve():
    v = np.linspace(3.4, 4.2, 801)  # 1 mV steps
    q, expected = logistic(v, 150.0, 3.8, 0.04)
    centres, dqdv = dq_dv(HalfCycleCurve(1, 1, q, v))
    assert np.sum(dqdv) * (centres[1] - centres[0]) == pytest.approx(q[-1] - q[0], rel=1e-9)  # no charge lost
    peak = np.argmax(dqdv)
    assert centres[peak] == pytest.approx(3.8, abs=0.003)
    # the 10 mV smoothing of a plateau 40 mV wide lowers its peak by a few per cent at most
    inside = (centres > 3.5) & (centres < 4.1)
    truth = np.interp(centres[inside], v, expected)
    assert np.max(np.abs(dqdv[inside] - truth)) < 0.03 * np.max(expected)


def test_a_discharge_is_negative_and_noise_does_not_make_spikes():
    rng = np.random.default_rng(0)
    v = np.linspace(4.2, 3.4, 3000)
    q, expected = logistic(-v, 150.0, -3.8, 0.04)
    noisy = v + rng.normal(0, 0.002, v.size)  # V going back and forth between samples
    _, dqdv = dq_dv(HalfCycleCurve(1, -1, q, noisy))
    assert np.all(dqdv <= 0)
    assert -np.min(dqdv) == pytest.approx(np.max(expected), rel=0.08)


def test_a_flat_plateau_puts_its_charge_at_its_voltage():
    q = np.array([0.0, 1.0, 2.0, 3.0])
    centres, dqdv = dq_dv(HalfCycleCurve(1, 1, q, np.array([3.7, 3.7, 3.7, 3.7])), smooth_V=0)
    assert centres[np.argmax(dqdv)] == pytest.approx(3.7, abs=0.0026)
    assert np.sum(dqdv) * BIN == pytest.approx(3.0)


def test_capacities_from_an_analysis_table_in_its_basis():
    rows = [{"cycle": 1, "charge_mAh_cm2": 1.2, "discharge_mAh_cm2": 1.0, "ce_percent": 83.3},
            {"cycle": 2, "charge_mAh_cm2": 1.0, "discharge_mAh_cm2": 0.99, "ce_percent": 99.0},
            {"cycle": 3, "charge_mAh_cm2": None, "discharge_mAh_cm2": None, "ce_percent": None}]
    metadata = {"cell": {"area_cm2": 1.13}, "parameters": {"cathode_mass": {"value": 5.655}}}
    assert run_basis(metadata, {"limits": {"cathode_mass_mg": None}}) == capacity_basis(1.13, None)  # as analysed
    basis = run_basis(metadata, None)
    c = capacities_from_rows(rows, basis)
    assert c.unit == "mAh/g" and c.names == ("charge", "discharge")
    assert c.returned[:2] == pytest.approx([1.0 * 1.13 / 5.655e-3, 0.99 * 1.13 / 5.655e-3])
    assert math.isnan(c.returned[2]) and math.isnan(c.ce_percent[2])
    assert c.retention(2)[:2] == pytest.approx([100 / 0.99, 100.0])
    assert capacities_from_rows([{"cycle": 1, "plating_mAh_cm2": 0.25}], basis) is None  # a table it cannot read


def test_chosen_cycles():
    assert default_cycles(list(range(1, 151))) == [1, 50, 100, 150]
    assert default_cycles(list(range(1, 31))) == [1, 10, 20, 30]
    assert default_cycles([1, 2, 3]) == [1, 2, 3]
    assert default_cycles(list(range(0, 12))) == [0, 5, 10, 11]
    cycles = list(range(1, 41))
    assert parse_cycle_choice("1, 10-12; last", cycles) == [1, 10, 11, 12, 40]
    assert parse_cycle_choice(" ", cycles) == default_cycles(cycles)
    assert parse_cycle_choice("1-1000000000", [1, 2]) == [1, 2]
    with pytest.raises(ValueError, match="'first' is not a cycle"):
        parse_cycle_choice("first", cycles)


def test_missing_values_pass_no_charge_and_draw_no_point():
    samples = Samples(np.arange(6.0), np.full(6, 3.7), np.array([0.0, I_A, np.nan, I_A, -I_A, 0.0]))
    assert np.isfinite(samples.charges_Ah(AREAL.rest_A)).all()
    curve = HalfCycleCurve(1, 1, np.array([0.0, 1.0, 2.0, np.nan, 3.0]), np.array([3.6, np.nan, 3.7, 3.8, 3.9]))
    _, dqdv = dq_dv(curve, smooth_V=0)
    assert np.sum(dqdv) * BIN == pytest.approx(3.0) and np.isfinite(dqdv).all()  # between the points it has
