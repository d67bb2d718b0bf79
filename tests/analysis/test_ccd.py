"""CCD failure detection and result (science.md §1.3) on synthetic fixed-time CCD traces.

Protocol in every trace: 0.1 mA/cm2 steps, 2 cycles of 0.5 h half-cycles per step, A = 0.785 cm2,
R_b = 50 Ω plus a Butler-Volmer interface; level j starts at (j - 0.1)/0.1 x 2 h.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from labctl.analysis.ccd import CCDAnalyzer, analyze_ccd, load_bdf_csv
from labctl.analysis.shorts import CONFIRM_S

AREA_CM2 = 0.785  # the traces' cell (10 mm)
SHORT_AT_S = 36000 + 1800 + 900  # mid second half-cycle (plating) of the first cycle at 0.6 mA/cm2
SHORT_HALF_CYCLE_END_S = 36000 + 3600  # a hard short is confirmed CONFIRM_S into the next half-cycle


def cac_tolerance(dt_s: float) -> float:
    """The first sample has no interval before it: at most one interval at 0.1 mA/cm2 is not counted."""
    return 0.1 * dt_s / 3600 / 2 + 1e-5  # plus the rounding to 6 significant digits


def findings_of(trace, **options) -> list:
    return trace.stream(CCDAnalyzer(AREA_CM2, **options))


# -- a cell that never fails


def test_intact_cell_to_3_mA_cm2_never_fails_and_passes_every_level(traces):
    trace = traces.fixed_time_ccd(3.0, dt_s=30, nucleation_V=0.015)
    result = analyze_ccd(trace.frame(), AREA_CM2)
    assert result.ccd_mA_cm2 is None and result.failure_mode is None and result.failure is None
    assert result.j_last_pass_mA_cm2 == 3.0
    assert [lv.current_density_mA_cm2 for lv in result.levels] == pytest.approx([0.1 * k for k in range(1, 31)])
    assert all(lv.passed and lv.half_cycles == lv.half_cycles_completed == 4 for lv in result.levels)
    assert result.soft_shorts == () and result.contact_warnings == ()
    assert result.cumulative_capacity_mAh_cm2 == pytest.approx(sum(0.1 * k for k in range(1, 31)),
                                                               abs=cac_tolerance(30))
    assert result.test_time_h == pytest.approx(60.0)
    assert result.ohmic_floor_source == "estimated"
    assert result.capacity_per_half_cycle_mAh_cm2 is None and result.failure_time_h is None


def test_strongly_nonlinear_interface_does_not_trip_the_estimated_floor(traces):
    """Mg interlayer (114 Ω cm2 per interface): |V|/|I| falls by half between 0.1 and 3 mA/cm2."""
    mg = traces.ASR_MG_OHM_CM2
    assert traces.intact_voltage(3.0, mg) / 3.0 < 0.5 * traces.intact_voltage(0.1, mg) / 0.1
    result = analyze_ccd(traces.fixed_time_ccd(3.0, dt_s=60, asr_ohm_cm2=mg).frame(), AREA_CM2)
    assert result.failure is None and result.j_last_pass_mA_cm2 == 3.0


def test_noisy_but_intact_cell_gives_no_failure_and_no_events(traces):
    trace = traces.noise(traces.fixed_time_ccd(1.0, dt_s=10), relative=0.02, absolute_V=0.3e-3)
    found = findings_of(trace)
    assert found == []
    assert analyze_ccd(trace.frame(), AREA_CM2).j_last_pass_mA_cm2 == 1.0


# -- hard shorts


@pytest.mark.parametrize("dt_s", [1, 10, 30, 60])
def test_hard_short_at_0_6_gives_ccd_0_6_at_any_sampling_interval(traces, dt_s):
    trace = traces.short(traces.fixed_time_ccd(0.8, dt_s=dt_s), SHORT_AT_S, r_short_ohm=2.0)
    result = analyze_ccd(trace.frame(), AREA_CM2)
    assert result.ccd_mA_cm2 == 0.6
    assert result.failure_mode == "hard_short" and result.criterion == "A"
    assert result.j_last_pass_mA_cm2 == 0.5
    assert result.failure_time_h == pytest.approx(SHORT_AT_S / 3600)
    assert result.failure_cycle == 11
    # confirmed once the collapse lasted through its half-cycle's end and CONFIRM_S (>= 3 samples) of the next
    confirmed_s = result.failure_confirmed_time_h * 3600
    assert SHORT_HALF_CYCLE_END_S + CONFIRM_S < confirmed_s <= SHORT_HALF_CYCLE_END_S + CONFIRM_S + 3 * dt_s
    # 0.1 + ... + 0.5 for the passed levels, 0.3/2 for the completed half-cycle at 0.6, 0.15/2 for half of the next
    assert result.capacity_to_failure_mAh_cm2 == pytest.approx(1.5 + 0.15 + 0.075, abs=cac_tolerance(dt_s))
    # the whole trace (it runs on to 0.8 mA/cm2): 0.1 + ... + 0.8
    assert result.cumulative_capacity_mAh_cm2 == pytest.approx(3.6, abs=cac_tolerance(dt_s))
    assert result.capacity_per_half_cycle_mAh_cm2 == pytest.approx(0.3)
    assert [lv.passed for lv in result.levels] == [True] * 5 + [False]
    # the half-cycle it began in completed; the next (still 0.6 mA/cm2) confirmed it
    assert result.levels[5].half_cycles == 3 and result.levels[5].half_cycles_completed == 2


def test_partial_short_above_the_floor_is_found_by_the_sudden_drop_and_confirmed_in_the_next_half_cycle(traces):
    trace = traces.short(traces.fixed_time_ccd(0.8, dt_s=10), SHORT_AT_S, r_short_ohm=30.0)  # above 0.5 x 50 Ω
    analyzer = CCDAnalyzer(AREA_CM2, ohmic_floor_ohm=50.0)
    trace.stream(analyzer)
    failure = analyzer.failure
    assert failure is not None and failure.kind == "hard_short" and failure.criterion == "B"
    assert failure.t_s == SHORT_AT_S and failure.depth_fraction == pytest.approx(1 - 30 / 76.96, abs=0.01)
    assert analyzer.result().ccd_mA_cm2 == 0.6
    # the next half-cycle's first sample is at 39610 s, its first tested one (after 2 s settling) at 39620 s
    assert failure.confirmed_t_s == 39620 + CONFIRM_S and "confirmed at 39680 s" in failure.detail


def test_short_beginning_at_the_end_of_a_level_is_charged_to_that_level(traces):
    trace = traces.short(traces.fixed_time_ccd(0.8, dt_s=10), traces.level_start_s(0.7) - 15)
    result = analyze_ccd(trace.frame(), AREA_CM2)
    assert result.ccd_mA_cm2 == 0.6 and result.j_last_pass_mA_cm2 == 0.5
    assert result.failure_time_h == pytest.approx((traces.level_start_s(0.7) - 10) / 3600)


def test_step_inconsistency_is_a_hard_short_by_criterion_c(traces):
    """Mg cell with R_b = 50 Ω from EIS: from 0.4 mA/cm2 on a leak holds |V|/|I| at 100 Ω, above the
    ohmic floor (25 Ω) and reached between two steps, so only the step comparison can see it."""
    start = traces.level_start_s(0.4)
    trace = traces.short(traces.fixed_time_ccd(0.6, dt_s=10, asr_ohm_cm2=traces.ASR_MG_OHM_CM2), start + 1,
                         r_short_ohm=100.0)  # start + 1: the sample at ``start`` ends the previous level
    result = analyze_ccd(trace.frame(), AREA_CM2, ohmic_floor_ohm=50.0)
    assert result.failure_mode == "hard_short" and result.criterion == "C"
    assert result.ccd_mA_cm2 == 0.4 and result.j_last_pass_mA_cm2 == 0.3
    assert result.failure_time_h == pytest.approx((start + 20) / 3600)  # first sample after settling


def test_hard_short_in_the_first_half_cycle_of_a_level_reports_the_planned_capacity(traces):
    trace = traces.short(traces.fixed_time_ccd(0.8, dt_s=10), traces.level_start_s(0.6) + 600)
    assert analyze_ccd(trace.frame(), AREA_CM2).capacity_per_half_cycle_mAh_cm2 == pytest.approx(0.6 * 0.5)


def test_fixed_capacity_protocol_reports_the_fixed_capacity_at_failure(traces):
    trace = traces.fixed_time_ccd(0.5, dt_s=10, half_cycle_mAh_cm2=0.1)  # half-cycles of 1 h, 30, 20, 15, 12 min
    start_04 = float(trace.t[np.flatnonzero(trace.density == 0.4)[0]]) - 10
    result = analyze_ccd(traces.short(trace, start_04 + 300).frame(), AREA_CM2)
    assert result.ccd_mA_cm2 == 0.4
    assert result.capacity_per_half_cycle_mAh_cm2 == pytest.approx(0.1)


# -- soft shorts, noise and glitches


def test_soft_short_that_recovers_is_an_event_and_a_later_hard_short_ends_the_test(traces):
    trace = traces.fixed_time_ccd(0.8, dt_s=10)
    soft_at = traces.level_start_s(0.3) + 600
    trace = traces.short(traces.dip(trace, soft_at, soft_at + 40, 0.4), traces.level_start_s(0.7) + 900)
    analyzer = CCDAnalyzer(AREA_CM2, ohmic_floor_ohm=50.0)
    found = trace.stream(analyzer)
    soft = found[0]
    assert soft.kind == "soft_short" and soft.criterion == "B" and not soft.ends_test
    assert soft.t_s == soft_at and soft.current_density_mA_cm2 == 0.3
    assert soft.depth_fraction == pytest.approx(0.6)
    result = analyzer.result()
    assert result.soft_shorts == (soft,) and result.soft_short_onset_mA_cm2 == 0.3
    assert result.ccd_mA_cm2 == 0.7 and result.criterion == "A" and result.j_last_pass_mA_cm2 == 0.6


def test_without_eis_a_deep_dip_that_recovers_is_a_soft_short_not_a_failure(traces):
    """The estimated floor is half the cell's own |V|/|I|: a 60 % collapse for 40 s falls below it, but it
    recovers within its half-cycle (this was a hard short at 0.3 mA/cm2 before issue 14)."""
    soft_at = traces.level_start_s(0.3) + 600
    trace = traces.dip(traces.fixed_time_ccd(0.8, dt_s=10), soft_at, soft_at + 40, 0.4)
    result = analyze_ccd(trace.frame(), AREA_CM2)
    assert result.failure is None and result.j_last_pass_mA_cm2 == 0.8
    assert [(f.kind, f.t_s, f.confirmed_t_s) for f in result.soft_shorts] == [("soft_short", soft_at, soft_at + 40)]


def test_strong_noise_with_dips_is_a_noise_event_not_a_failure(traces):
    noisy_from = traces.level_start_s(0.4) + 300
    trace = traces.spiky(traces.fixed_time_ccd(0.6, dt_s=10), noisy_from, noisy_from + 600, depth=0.35)
    found = findings_of(trace)
    assert [(f.kind, f.criterion, f.ends_test) for f in found] == [("noise", "D", False)]
    assert noisy_from <= found[0].t_s < noisy_from + 600
    result = analyze_ccd(trace.frame(), AREA_CM2)
    assert result.failure is None and result.soft_short_onset_mA_cm2 == 0.4


@pytest.mark.parametrize("dt_s", [1, 10, 30, 60])
@pytest.mark.parametrize("samples", [1, 2])
@pytest.mark.parametrize("where", ["mid half-cycle", "across a step change"])
def test_one_or_two_sample_glitches_fire_nothing(traces, dt_s, samples, where):
    # across a step change: the last samples of one half-cycle, then the next half-cycle at a new level
    start = traces.level_start_s(0.2)
    at = start + 600 if where == "mid half-cycle" else start - (samples - 1) * dt_s
    intact = traces.fixed_time_ccd(0.2, dt_s=dt_s).until(at + 600)
    trace = traces.glitch(intact, at, samples)
    assert np.count_nonzero(trace.voltage != intact.voltage) == samples
    for floor in (None, 50.0):
        result = analyze_ccd(trace.frame(), AREA_CM2, ohmic_floor_ohm=floor)
        assert result.failure is None and result.soft_shorts == () and result.contact_warnings == ()


@pytest.mark.parametrize("dt_s", [1, 10])
def test_three_low_samples_are_not_a_glitch(traces, dt_s):
    """Three collapsed samples that recover are a soft short at any sampling interval (at 10 s this was a hard
    short by A before issue 14: it spans 20 s below the floor, but it recovers)."""
    at = traces.level_start_s(0.2) + 600
    trace = traces.glitch(traces.fixed_time_ccd(0.2, dt_s=dt_s).until(at + 600), at, 3)
    [found] = findings_of(trace)
    assert (found.kind, found.criterion, found.t_s, found.ends_test) == ("soft_short", "B", at, False)


# -- contact loss


def test_voltage_rising_to_the_limit_while_stripping_is_contact_loss_not_a_short(traces):
    start = traces.level_start_s(0.7)  # first half-cycle: positive current strips the working electrode
    grown = traces.grow(traces.fixed_time_ccd(0.8, dt_s=10), start + 300, start + 1800, tau_s=300.0)
    hit = float(grown.t[np.flatnonzero(np.abs(grown.voltage) >= 1.0)[0]])
    trace = grown.until(hit)  # the instrument stops at its limit
    result = analyze_ccd(trace.frame(), AREA_CM2, voltage_limit_V=1.0)
    assert result.failure_mode == "contact_loss" and result.criterion == "E"
    assert result.ccd_mA_cm2 == 0.7 and result.j_last_pass_mA_cm2 == 0.6
    assert result.failure_time_h == pytest.approx(hit / 3600)
    assert result.failure.current_density_mA_cm2 == 0.7


def test_segment_ended_by_the_voltage_limit_is_contact_loss(traces):
    start = traces.level_start_s(0.7)
    grown = traces.grow(traces.fixed_time_ccd(0.8, dt_s=10), start + 300, start + 1800, tau_s=300.0)
    below = grown.until(float(grown.t[np.flatnonzero(np.abs(grown.voltage) >= 0.95)[0]]) - 1)
    analyzer = CCDAnalyzer(AREA_CM2)
    found = below.stream(analyzer, last_reason="voltage_high")  # the instrument ended the last segment
    assert [(f.kind, f.criterion, f.ends_test) for f in found] == [("contact_loss", "E", True)]
    assert "voltage_high" in found[0].detail and analyzer.failure == found[0]
    assert analyzer.result().ccd_mA_cm2 == 0.7


def test_voltage_limit_before_any_sample_with_current_is_contact_loss_at_an_unknown_current(traces):
    analyzer = CCDAnalyzer(AREA_CM2)
    trace = traces.fixed_time_ccd(0.2, dt_s=60)
    trace.stream(analyzer)
    # the next segment's first reading is already at rest: it hit the limit at once
    assert analyzer.add(float(trace.t[-1]) + 60, 0.0, 0.0, 9, 5) == []
    [loss] = analyzer.end_segment("voltage_high")
    assert loss.kind == "contact_loss" and loss.current_density_mA_cm2 is None and loss.segment == 9
    result = analyzer.result()
    assert result.failure_mode == "contact_loss" and result.ccd_mA_cm2 is None
    assert result.j_last_pass_mA_cm2 == 0.2


def test_voltage_growth_within_a_half_cycle_is_a_warning_and_the_test_goes_on(traces):
    start = traces.level_start_s(0.4) + 1800  # the plating half-cycle of the first cycle at 0.4
    trace = traces.grow(traces.fixed_time_ccd(0.6, dt_s=10), start + 600, start + 1801, tau_s=1000.0)
    found = findings_of(trace)
    assert [(f.kind, f.criterion, f.ends_test) for f in found] == [("contact_loss", "E", False)]
    result = analyze_ccd(trace.frame(), AREA_CM2)
    assert result.failure is None and len(result.contact_warnings) == 1
    assert result.j_last_pass_mA_cm2 == 0.6


# -- streaming vs offline, with and without step columns


def soft_then_hard(traces):
    soft_at = traces.level_start_s(0.3) + 600
    dipped = traces.dip(traces.fixed_time_ccd(0.8, dt_s=10), soft_at, soft_at + 40, 0.4)
    return traces.short(dipped, traces.level_start_s(0.7) + 900)


def test_streaming_analyzer_and_analyze_ccd_agree(traces):
    analyzer = CCDAnalyzer(AREA_CM2, ohmic_floor_ohm=50.0)
    soft_then_hard(traces).stream(analyzer, stop_at_failure=False)
    offline = analyze_ccd(soft_then_hard(traces).frame(), AREA_CM2, ohmic_floor_ohm=50.0)
    assert analyzer.result() == offline


@pytest.mark.parametrize("case", ["hard short", "soft then hard", "intact"])
def test_analyze_ccd_without_step_and_cycle_columns_gives_the_same_result(traces, case):
    trace = {"hard short": lambda: traces.short(traces.fixed_time_ccd(0.8, dt_s=10), SHORT_AT_S),
             "soft then hard": lambda: soft_then_hard(traces),
             "intact": lambda: traces.fixed_time_ccd(0.5, dt_s=30)}[case]()
    with_counts = analyze_ccd(trace.frame(counts=True), AREA_CM2, ohmic_floor_ohm=50.0)
    assert analyze_ccd(trace.frame(counts=False), AREA_CM2, ohmic_floor_ohm=50.0) == with_counts


def test_rest_between_half_cycles_is_ignored_and_derived_segments_match(traces):
    rested = traces.fixed_time_ccd(0.8, dt_s=10, rest_s=300)
    level_06 = float(rested.t[np.flatnonzero(rested.density == 0.6)[0]])
    trace = traces.short(rested, level_06 + 900)
    with_counts = analyze_ccd(trace.frame(counts=True), AREA_CM2)
    without = analyze_ccd(trace.frame(counts=False), AREA_CM2)
    assert with_counts.ccd_mA_cm2 == without.ccd_mA_cm2 == 0.6
    assert with_counts.failure_time_h == without.failure_time_h == pytest.approx((level_06 + 900) / 3600)
    assert with_counts.failure_cycle == without.failure_cycle == 11
    assert with_counts.cumulative_capacity_mAh_cm2 == without.cumulative_capacity_mAh_cm2
    assert [lv.half_cycles for lv in without.levels] == [4] * 5 + [2]  # the second one confirmed it


def test_a_rest_reading_in_the_open_segment_closes_its_charge_interval():
    """The live procedure's first reading after the instrument ended a segment is at rest, same step."""
    analyzer = CCDAnalyzer(AREA_CM2)
    analyzer.add(0.0, 0.0, 0.0, 0, 0)
    current = 0.5 * AREA_CM2 / 1000
    for t in range(10, 1800, 10):
        analyzer.add(float(t), 0.03, current, 1, 1)
    analyzer.add(1800.0, 0.0, 0.0, 1, 1)
    analyzer.end_segment("time")
    assert analyzer.result().cumulative_capacity_mAh_cm2 == pytest.approx(0.5 * 0.5 / 2)
    assert analyzer.result().levels[0].capacity_per_half_cycle_mAh_cm2 == pytest.approx(0.25)


def test_derived_segments_split_on_magnitude_and_sign_and_count_cycles():
    i1, i2 = 0.1 * AREA_CM2 / 1000, 0.2 * AREA_CM2 / 1000
    currents = [i1] * 10 + [-i1] * 10 + [i2] * 10 + [0.0] * 5 + [-i2] * 10
    volts = [c * 77.0 for c in currents]
    df = pd.DataFrame({"Test Time / s": np.arange(len(currents)) * 10.0, "Voltage / V": volts,
                       "Current / A": currents})
    result = analyze_ccd(df, AREA_CM2)
    assert [(lv.current_density_mA_cm2, lv.half_cycles) for lv in result.levels] == [(0.1, 2), (0.2, 2)]
    assert result.failure is None and result.j_last_pass_mA_cm2 == 0.2


def test_after_a_failure_further_data_only_adds_to_the_whole_test_capacity(traces):
    """Before issue 14 the cumulative capacity stopped at the failure; now it covers the whole test and the
    capacity to failure is its own field."""
    trace = traces.short(traces.fixed_time_ccd(0.8, dt_s=10), SHORT_AT_S)
    analyzer = CCDAnalyzer(AREA_CM2)
    trace.stream(analyzer)
    before = analyzer.result()
    assert analyzer.add(before.test_time_h * 3600 + 3600, 0.0001, 1e-3, 999, 99) == []
    assert analyzer.end_segment("voltage_high") == []
    after = analyzer.result()
    assert after.failure == before.failure and after.capacity_to_failure_mAh_cm2 == before.capacity_to_failure_mAh_cm2
    assert after.cumulative_capacity_mAh_cm2 == pytest.approx(
        before.cumulative_capacity_mAh_cm2 + 1.0 / AREA_CM2 / 2, abs=1e-5)  # 1 mA for 1 h more
    assert after.test_time_h == pytest.approx(before.test_time_h + 1)


def test_result_to_dict_is_plain_json(traces):
    result = analyze_ccd(soft_then_hard(traces).frame(), AREA_CM2, ohmic_floor_ohm=50.0)
    d = json.loads(json.dumps(result.to_dict()))
    assert d["ccd_mA_cm2"] == 0.7 and d["failure_mode"] == "hard_short" and d["criterion"] == "A"
    assert d["soft_shorts"][0]["kind"] == "soft_short" and d["levels"][0]["passed"] is True
    assert "j_fail" in d["convention"] and "Lu" in d["convention"]
    assert d["ohmic_floor_source"] == "given" and d["ohmic_floor_ohm"] == 50.0


# -- files and bad input


def test_load_bdf_csv_reads_human_and_machine_labels(traces, tmp_path):
    frame = traces.short(traces.fixed_time_ccd(0.8, dt_s=60), SHORT_AT_S).frame()
    human, machine = tmp_path / "human.csv", tmp_path / "machine.csv"
    frame.to_csv(human, index=False)
    frame.rename(columns={"Test Time / s": "test_time_second", "Voltage / V": "voltage_volt",
                          "Current / A": "current_ampere", "Step Count / 1": "step_count",
                          "Cycle Count / 1": "cycle_count"}).to_csv(machine, index=False)
    expected = analyze_ccd(frame, AREA_CM2)
    assert analyze_ccd(load_bdf_csv(human), AREA_CM2) == expected
    assert analyze_ccd(load_bdf_csv(machine), AREA_CM2) == expected
    assert expected.ccd_mA_cm2 == 0.6


def test_load_bdf_csv_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_bdf_csv(tmp_path / "absent.csv")
    binary = tmp_path / "data.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="not a readable CSV"):
        load_bdf_csv(binary)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("Test Time / s,Volts\n0,0.1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"missing column 'Voltage / V'.*'Current / A'"):
        load_bdf_csv(wrong)


def good_frame(traces) -> pd.DataFrame:
    return traces.fixed_time_ccd(0.2, dt_s=60).frame()


@pytest.mark.parametrize("edit, message", [
    (lambda df: df.drop(columns=["Voltage / V"]), r"missing column 'Voltage / V'; .*needs a BDF time series"),
    (lambda df: df.drop(columns=["Test Time / s"]), r"missing column 'Test Time / s'"),
    (lambda df: df.iloc[0:0], "no rows"),
    (lambda df: df.astype({"Voltage / V": object}).assign(**{"Voltage / V": ["x"] + [0.01] * (len(df) - 1)}),
     r"'Voltage / V' row 0 holds 'x'"),
    (lambda df: df.assign(**{"Current / A": [math.nan] + [1e-4] * (len(df) - 1)}), r"'Current / A' row 0"),
    (lambda df: df.assign(**{"Test Time / s": df["Test Time / s"][::-1].to_numpy()}),
     r"'Test Time / s' goes backwards at row 1"),
])
def test_analyze_ccd_rejects_bad_data_naming_the_problem(traces, edit, message):
    with pytest.raises(ValueError, match=message):
        analyze_ccd(edit(good_frame(traces)), AREA_CM2)


def test_analyze_ccd_rejects_non_frames():
    with pytest.raises(TypeError, match="DataFrame"):
        analyze_ccd([[0, 0, 0]], AREA_CM2)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs, name", [
    ({"area_cm2": 0.0}, "area_cm2"), ({"area_cm2": -1.0}, "area_cm2"), ({"area_cm2": math.nan}, "area_cm2"),
    ({"voltage_limit_V": 0.0}, "voltage_limit_V"), ({"ohmic_floor_ohm": -5.0}, "ohmic_floor_ohm"),
    ({"settle_s": -1.0}, "settle_s"), ({"current_tolerance": 0.7}, "current_tolerance"),
    ({"rest_density_mA_cm2": -1.0}, "rest_density_mA_cm2"),
])
def test_bad_options_raise_naming_the_parameter(traces, kwargs, name):
    options = {"area_cm2": AREA_CM2, **kwargs}
    with pytest.raises(ValueError, match=name):
        CCDAnalyzer(**options)
    with pytest.raises(ValueError, match=name):
        analyze_ccd(good_frame(traces), **options)


def test_bad_samples_raise_naming_the_field():
    analyzer = CCDAnalyzer(AREA_CM2)
    with pytest.raises(ValueError, match="voltage_V"):
        analyzer.add(0.0, math.nan, 1e-4, 1, 1)
    analyzer.add(10.0, 0.01, 1e-4, 1, 1)
    with pytest.raises(ValueError, match="went backwards"):
        analyzer.add(5.0, 0.01, 1e-4, 1, 1)
    with pytest.raises(ValueError, match="reason"):
        analyzer.end_segment("stopped")

