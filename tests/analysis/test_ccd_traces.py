"""Issue 14: the CCD detector on stepped traces as other labs record them.

Sampling every 1-30 s, an open-circuit rest of 5-10 min before the first step, electrode areas of 0.785 and
1.131 cm², soft shorts that recover, one-sample glitches, cells that fail in the first level. Protocol as in
test_ccd.py: 0.1 mA/cm2 steps, 2 cycles of 0.5 h half-cycles per step, R_b = 50 Ω plus a Butler-Volmer interface.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from labctl.analysis.ccd import CCDAnalyzer, analyze_ccd, brief, headline
from labctl.analysis.shorts import CONFIRM_S
from labctl.bench import open_bench
from labctl.cli import app
from labctl.engine.runner import Listeners, Runner
from labctl.procedures.ccd import CCDProcedure
from labctl.store import Store

HALF_CYCLE_S = 1800.0
SOFT_R_OHM = 2.0  # a filament: V = I·R_short while it lasts, far below the 50 Ω ohmic floor
CASES = [  # (sampling interval s, electrode area cm², initial open-circuit rest s)
    (1.0, 0.785, 0.0), (10.0, 1.131, 600.0), (30.0, 0.785, 300.0), (30.0, 1.131, 0.0),
]


def soft_then_hard(traces, dt_s: float, area: float, rest_s: float):
    """Soft shorts at 0.4 mA/cm2 (two levels below the hard short): 5 min mid-half-cycle, and one that begins
    10 min before a half-cycle ends and dissolves 30 s into the next; then a hard short mid-half-cycle at 0.6."""
    trace = traces.fixed_time_ccd(0.8, dt_s=dt_s, area_cm2=area, initial_rest_s=rest_s)
    level_04, level_06 = (traces.level_start_s(j, initial_rest_s=rest_s) for j in (0.4, 0.6))
    soft = [(level_04 + 600, level_04 + 900), (level_04 + 2 * HALF_CYCLE_S - 600, level_04 + 2 * HALF_CYCLE_S + 30)]
    for start, end in soft:
        trace = traces.short(trace, start, SOFT_R_OHM, until_s=end)
    hard_at = level_06 + HALF_CYCLE_S + 900
    return traces.short(trace, hard_at, SOFT_R_OHM), soft, hard_at


def first_at_or_after(trace, t_s: float) -> float:
    return float(trace.t[np.searchsorted(trace.t, t_s)])


@pytest.mark.parametrize("floor", [None, 50.0])
@pytest.mark.parametrize("dt_s, area, rest_s", CASES)
def test_soft_shorts_that_recover_are_events_and_the_test_goes_on_to_the_hard_short(traces, dt_s, area, rest_s,
                                                                                  floor):
    trace, soft, hard_at = soft_then_hard(traces, dt_s, area, rest_s)
    result = analyze_ccd(trace.frame(), area, ohmic_floor_ohm=floor)
    assert [(f.kind, f.t_s, f.current_density_mA_cm2) for f in result.soft_shorts] == [
        ("soft_short", first_at_or_after(trace, soft[0][0]), 0.4),
        ("soft_short", first_at_or_after(trace, soft[1][0]), -0.4)]
    assert all(not f.ends_test for f in result.soft_shorts)
    assert result.soft_short_onset_mA_cm2 == 0.4
    assert (result.ccd_mA_cm2, result.j_last_pass_mA_cm2, result.failure_mode) == (0.6, 0.5, "hard_short")
    assert result.criterion == "A"
    assert result.failure_time_h * 3600 == pytest.approx(first_at_or_after(trace, hard_at))
    half_cycle_end = hard_at + HALF_CYCLE_S / 2
    assert half_cycle_end + CONFIRM_S < result.failure_confirmed_time_h * 3600 <= half_cycle_end + CONFIRM_S + 3 * dt_s
    assert result.capacity_per_half_cycle_mAh_cm2 == pytest.approx(0.6 * 0.5)
    # Li plated per electrode to the onset: 0.1 + ... + 0.5, one half-cycle and a half at 0.6 (0.15 + 0.075)
    assert result.capacity_to_failure_mAh_cm2 == pytest.approx(1.725, abs=dt_s * 0.1 / 3600)
    assert result.cumulative_capacity_mAh_cm2 == pytest.approx(3.6, abs=dt_s * 0.1 / 3600)  # the whole trace
    line = headline(result.to_dict())
    assert "last passed 0.5 mA/cm²" in line and line.endswith("; 2 soft-short events, the first at 0.4 mA/cm²")


def test_the_live_procedure_would_stop_only_once_the_hard_short_is_confirmed(traces):
    trace, _, hard_at = soft_then_hard(traces, 10.0, 0.785, 600.0)
    analyzer = CCDAnalyzer(0.785)
    found = trace.stream(analyzer)  # stops feeding at the first failure, as the procedure does
    assert [f.kind for f in found] == ["soft_short", "soft_short", "hard_short"]
    assert analyzer.failure is found[-1] and analyzer.failure.t_s == hard_at
    assert analyzer.result().test_time_h * 3600 == analyzer.failure.confirmed_t_s


@pytest.mark.parametrize("dt_s", [1.0, 10.0, 30.0])
def test_a_long_soft_short_does_not_drag_a_level_below_half_of_the_previous_one(traces, dt_s):
    """20 of the first half-cycle's 30 min at 0.4 mA/cm2 collapsed, then recovered: no step inconsistency (C)."""
    at = traces.level_start_s(0.4) + 60
    trace = traces.short(traces.fixed_time_ccd(0.5, dt_s=dt_s), at, SOFT_R_OHM, until_s=at + 1200)
    result = analyze_ccd(trace.frame(), 0.785, ohmic_floor_ohm=50.0)
    assert result.failure is None and result.j_last_pass_mA_cm2 == 0.5
    assert [f.kind for f in result.soft_shorts] == ["soft_short"]
    assert result.soft_shorts[0].duration_s == pytest.approx(1200, abs=dt_s)


@pytest.mark.parametrize("floor", [None, 50.0])
@pytest.mark.parametrize("dt_s, area, rest_s", CASES)
@pytest.mark.parametrize("factor", [0.0, 0.3, 1.6, 3.0], ids=["dropout", "dip", "overshoot", "spike"])
@pytest.mark.parametrize("where", ["mid half-cycle", "second tested sample", "first sample after the rest"])
def test_a_one_sample_glitch_fires_nothing(traces, dt_s, area, rest_s, floor, factor, where):
    intact = traces.fixed_time_ccd(0.3, dt_s=dt_s, area_cm2=area, initial_rest_s=rest_s)
    start = traces.level_start_s(0.2, initial_rest_s=rest_s)
    at = {"mid half-cycle": start + 600, "second tested sample": start + 2 * dt_s + 2,
          "first sample after the rest": rest_s + 3}[where]
    trace = traces.glitch(intact, at, 1, factor)
    assert np.count_nonzero(trace.voltage != intact.voltage) == 1
    result = analyze_ccd(trace.frame(), area, ohmic_floor_ohm=floor)
    assert result.failure is None and result.soft_shorts == () and result.contact_warnings == ()
    assert result.j_last_pass_mA_cm2 == 0.3


@pytest.mark.parametrize("dt_s, area, rest_s", CASES)
def test_an_initial_open_circuit_rest_changes_nothing_but_the_times(traces, dt_s, area, rest_s):
    plain = analyze_ccd(traces.fixed_time_ccd(0.3, dt_s=dt_s, area_cm2=area).frame(), area)
    rested = analyze_ccd(traces.fixed_time_ccd(0.3, dt_s=dt_s, area_cm2=area, initial_rest_s=rest_s).frame(), area)
    assert rested.failure is None and rested.soft_shorts == () and rested.levels == plain.levels
    # without a rest the first sample has no interval before it: one interval at 0.1 mA/cm2 less
    missed = 0.1 * dt_s / 3600 / 2 if rest_s else 0.0
    assert rested.cumulative_capacity_mAh_cm2 == pytest.approx(plain.cumulative_capacity_mAh_cm2 + missed, abs=1e-5)
    assert rested.test_time_h == pytest.approx(plain.test_time_h + rest_s / 3600)


# -- failure in the first current level


def first_level_short(traces, dt_s: float = 10.0, area: float = 0.785, rest_s: float = 600.0):
    """A bare cell that shorts 10 min into its first half-cycle, at 0.1 mA/cm2."""
    trace = traces.fixed_time_ccd(0.3, dt_s=dt_s, area_cm2=area, initial_rest_s=rest_s)
    return traces.short(trace, rest_s + 600, SOFT_R_OHM), rest_s + 600


@pytest.mark.parametrize("floor", [None, 50.0])
@pytest.mark.parametrize("dt_s, area, rest_s", CASES)
def test_failure_in_the_first_level_gives_ccd_of_that_level_and_no_level_passed(traces, dt_s, area, rest_s, floor):
    trace, at = first_level_short(traces, dt_s, area, rest_s)
    result = analyze_ccd(trace.frame(), area, ohmic_floor_ohm=floor)
    assert (result.ccd_mA_cm2, result.failure_mode, result.j_last_pass_mA_cm2) == (0.1, "hard_short", None)
    assert result.failure_time_h * 3600 == pytest.approx(first_at_or_after(trace, at))
    # without a rest the first sample has no interval before it
    missed = 0.1 * dt_s / 3600 + 1e-6
    assert result.failure_cycle == 1 and result.capacity_per_half_cycle_mAh_cm2 == pytest.approx(0.05, abs=missed)
    line = headline(result.to_dict())
    assert line.startswith("CCD = 0.1 mA/cm² (hard short) at ") and " per half-cycle; no level passed; " in line
    assert brief(result.to_dict()) == "CCD 0.1 mA/cm² (hard short)"


def test_contact_loss_in_the_first_half_cycle_has_a_headline_without_a_capacity(traces):
    trace = traces.grow(traces.fixed_time_ccd(0.2, dt_s=10), 300, 1800, tau_s=200.0)
    result = analyze_ccd(trace.frame(), 0.785)
    assert (result.ccd_mA_cm2, result.failure_mode, result.capacity_per_half_cycle_mAh_cm2) == (0.1, "contact_loss",
                                                                                              None)
    line = headline(result.to_dict())
    assert "CCD = 0.1 mA/cm² (contact loss)" in line and "no level passed" in line
    assert "no half-cycle completed" in line


cli = CliRunner()


def test_analyze_ccd_command_prints_a_first_level_failure(traces, tmp_path):
    trace, _ = first_level_short(traces)
    path = tmp_path / "first.csv"
    trace.frame().to_csv(path, index=False)
    printed = cli.invoke(app, ["analyze", "ccd", str(path), "--area", "0.785", "--bulk-resistance", "50"])
    assert printed.exit_code == 0, printed.output
    assert "CCD = 0.1 mA/cm²" in printed.stdout and "no level passed" in printed.stdout
    as_json = cli.invoke(app, ["analyze", "ccd", str(path), "--area", "0.785", "--bulk-resistance", "50", "--json"])
    result = json.loads(as_json.stdout)
    assert result["ohmic_floor_source"] == "given" and result["ohmic_floor_ohm"] == 50.0
    assert result["failure_confirmed_time_h"] > result["failure_time_h"]
    assert result["capacity_to_failure_mAh_cm2"] < result["cumulative_capacity_mAh_cm2"]


@pytest.mark.parametrize("option, value", [
    ("--bulk-resistance", "-5"), ("--bulk-resistance", "nan"), ("--bulk-resistance", "inf"),
    ("--area", "0"), ("--area", "nan"), ("--voltage-limit", "-1"),
])
def test_analyze_ccd_command_refuses_bad_numbers_naming_the_option(traces, tmp_path, option, value):
    path = tmp_path / "good.csv"
    traces.fixed_time_ccd(0.2, dt_s=60).frame().to_csv(path, index=False)
    args = {"--area": "0.785", "--bulk-resistance": "0", "--voltage-limit": "1", option: value}
    printed = cli.invoke(app, ["analyze", "ccd", str(path), *[x for pair in args.items() for x in pair]])
    assert printed.exit_code == 2
    assert option in printed.stderr


def test_a_live_run_that_fails_in_its_first_level_ends_with_its_result(tmp_path):
    """A bare simulated cell (CCD ≈ 0.6 mA/cm2) started at 2 mA/cm2 shorts at once. R_b from a pre-test EIS
    (35 Ω for its 12 mm electrodes; 30 Ω given) is what lets the detector see a cell shorted from its first sample."""
    procedure = CCDProcedure(start_density=2.0, stop_density=2.2, sample_interval=30, bulk_resistance=30)
    with open_bench("sim", sim_overrides={"cell": "bare", "seed": 0}, sim_defaults=procedure.sim_defaults()) as bench:
        outcome = Runner(Store(tmp_path / "store"), Listeners()).run(procedure, bench)
    assert outcome.status == "finished"
    assert outcome.result["ccd_mA_cm2"] == pytest.approx(2.0) and outcome.result["j_last_pass_mA_cm2"] is None
    assert "no level passed" in outcome.result["headline"]


# -- capacity per half-cycle at the failing level


def test_contact_loss_in_the_first_half_cycle_of_a_high_level_reports_that_levels_capacity(traces):
    """Fixed-time half-cycles at 2.0 and 2.1 mA/cm2 pass 1.0 and 1.05 mAh/cm2, within 5 % of each other: that is
    not a fixed-capacity protocol, so the failing 2.2 mA/cm2 level's half-cycle is 2.2 × 0.5 h = 1.1 mAh/cm2."""
    start = traces.level_start_s(2.2)
    grown = traces.grow(traces.fixed_time_ccd(2.2, dt_s=60), start + 300, start + 1800, tau_s=60.0)
    result = analyze_ccd(grown.frame(), 0.785)
    assert (result.ccd_mA_cm2, result.failure_mode, result.j_last_pass_mA_cm2) == (2.2, "contact_loss", 2.1)
    assert result.capacity_per_half_cycle_mAh_cm2 == pytest.approx(1.1)


# -- the end of the data


@pytest.mark.parametrize("lasted_s, kind", [(CONFIRM_S + 30, "hard_short"), (CONFIRM_S - 30, None)])
def test_data_ending_inside_a_collapse_is_a_hard_short_once_it_has_lasted_the_confirmation_time(traces, lasted_s,
                                                                                              kind):
    at = traces.level_start_s(0.3) + 600
    trace = traces.short(traces.fixed_time_ccd(0.3, dt_s=10), at, SOFT_R_OHM).until(at + lasted_s)
    analyzer = CCDAnalyzer(0.785)
    trace.stream(analyzer)
    result = analyzer.result()
    assert result.failure_mode == kind and analyzer.failure is None  # asking does not end the test
    if kind:
        assert result.failure_time_h * 3600 == pytest.approx(at)
        assert result.failure_confirmed_time_h * 3600 == pytest.approx(at + lasted_s)
        assert result.ccd_mA_cm2 == 0.3 and result.j_last_pass_mA_cm2 == 0.2
