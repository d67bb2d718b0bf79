"""Technique builders and their checks, against labels, types and values written out by hand.

Labels and types as the public wrappers send them (docs/instruments/biologic-eclib.md): EClib types are 0 int32,
1 boolean, 2 single. A limit's config word is worked out from its bits: 1 active, +2 AND, +4 above, +96 for I.
"""

from __future__ import annotations

import math
import re

import pytest

from labctl.drivers.biologic import techniques as t
from labctl.drivers.biologic.techniques import (
    Comparison,
    ERange,
    Exit,
    IRange,
    Limit,
    Logic,
    Param,
    ParamType,
    Step,
    Sweep,
    Variable,
)

INT, BOOL, SGL = 0, 1, 2


def as_tuples(params: list[Param]) -> list[tuple[str, int, object, int]]:
    return [(p.label, int(p.type), p.value, p.index) for p in params]


def by_label(params: list[Param]) -> dict[tuple[str, int], object]:
    return {(p.label, p.index): p.value for p in params}


def test_technique_ids_and_vmp300_ecc_files():
    """IDs from BLStructs.h's TTechniqueIdentifier_e; the SP-200's family loads the *4.ecc files."""
    assert [(x.name, x.tech_id, x.ecc_file) for x in (t.OCV, t.CPLIMIT, t.CALIMIT, t.PEIS, t.GEIS, t.LOOP)] == [
        ("OCV", 100, "ocv4.ecc"), ("CPLIMIT", 155, "cplimit4.ecc"), ("CALIMIT", 157, "calimit4.ecc"),
        ("PEIS", 104, "peis4.ecc"), ("GEIS", 107, "geis4.ecc"), ("LOOP", 150, "loop4.ecc"),
    ]  # fmt: skip


def test_ocv_parameters():
    params = t.ocv(600.0, record_dt_s=1.0, record_dE_V=0.005, e_range=ERange.V10, bandwidth=5)
    assert as_tuples(params) == [
        ("Rest_time_T", SGL, 600.0, 0), ("Record_every_dE", SGL, 0.005, 0), ("Record_every_dT", SGL, 1.0, 0),
        ("E_Range", INT, 2, 0), ("Bandwidth", INT, 5, 0),
    ]  # fmt: skip


def test_limit_config_words():
    """Bit 0 active, bit 1 AND, bits 2-4 comparison (1 = above), bits 5+ variable (Ewe 0, I 3)."""
    assert Limit(Variable.EWE, Comparison.ABOVE, 4.2).config == 1 + 4
    assert Limit(Variable.EWE, Comparison.BELOW, 3.0).config == 1
    assert Limit(Variable.CURRENT, Comparison.BELOW, 1e-4, Logic.AND).config == 1 + 2 + 96
    assert Limit(Variable.CURRENT, Comparison.ABOVE, 1e-4).config == 1 + 4 + 96


def test_cplimit_charge_then_discharge_steps():
    """Two half-cycles, each ended by a voltage limit; unused tests are inactive (config 0, value 0)."""
    charge = Step(1e-3, 3600.0, (Limit(Variable.EWE, Comparison.ABOVE, 4.2),), Exit.NEXT_STEP)
    discharge = Step(-1e-3, 3600.0, (Limit(Variable.EWE, Comparison.BELOW, 3.0),), Exit.NEXT_TECHNIQUE)
    params = t.cplimit([charge, discharge], i_range=IRange.I_10mA, record_dt_s=10.0, record_dE_V=0.01, n_cycles=4)
    values = by_label(params)
    assert values[("Step_number", 0)] == 1
    assert [values[("Current_step", i)] for i in (0, 1)] == [1e-3, -1e-3]
    assert [values[("Duration_step", i)] for i in (0, 1)] == [3600.0, 3600.0]
    assert [values[("vs_initial", i)] for i in (0, 1)] == [False, False]
    assert [values[("Exit_Cond", i)] for i in (0, 1)] == [0, 1]
    assert [values[("Test1_Config", i)] for i in (0, 1)] == [5, 1]
    assert [values[("Test1_Value", i)] for i in (0, 1)] == [4.2, 3.0]
    assert [values[(f"Test{k}_{w}", i)] for k in (2, 3) for w in ("Config", "Value") for i in (0, 1)] == [0] * 8
    assert (values[("Record_every_dT", 0)], values[("Record_every_dE", 0)], values[("N_Cycles", 0)]) == (10.0, 0.01, 4)
    assert (values[("I_Range", 0)], values[("E_Range", 0)], values[("Bandwidth", 0)]) == (8, 2, 5)
    types = {p.label: int(p.type) for p in params}
    assert types["Current_step"] == SGL and types["vs_initial"] == BOOL and types["Test1_Config"] == INT
    assert len(params) == 1 + 2 * (4 + 6) + 3 + 3


def test_cplimit_refuses_auto_range_and_a_current_beyond_its_range():
    step = [Step(2e-3, 60.0)]
    with pytest.raises(ValueError, match="AUTO is not allowed"):
        t.cplimit(step, i_range=IRange.AUTO, record_dt_s=1.0)
    with pytest.raises(ValueError, match=re.escape("|Current_step| = 0.002 A is beyond I_Range I_1mA (±0.001 A)")):
        t.cplimit(step, i_range=IRange.I_1mA, record_dt_s=1.0)
    assert t.cplimit([Step(1e-3, 60.0)], i_range=IRange.I_1mA, record_dt_s=1.0)  # exactly full scale


def test_cplimit_step_count_and_limit_count():
    with pytest.raises(ValueError, match="0 steps; give 1 to 99"):
        t.cplimit([], i_range=IRange.I_1mA, record_dt_s=1.0)
    with pytest.raises(ValueError, match="100 steps"):
        t.cplimit([Step(1e-4, 1.0)] * 100, i_range=IRange.I_1mA, record_dt_s=1.0)
    four = tuple(Limit(Variable.EWE, Comparison.ABOVE, v) for v in (1.0, 2.0, 3.0, 4.0))
    with pytest.raises(ValueError, match="step 0 has 4 limits; EClib tests at most 3"):
        t.cplimit([Step(1e-4, 1.0, four)], i_range=IRange.I_1mA, record_dt_s=1.0)
    assert t.cplimit([Step(1e-4, 1.0)] * 99, i_range=IRange.I_1mA, record_dt_s=1.0)


def test_cplimit_bad_exit_and_negative_duration_name_the_label():
    with pytest.raises(ValueError, match=r"CPLIMIT: Exit_Cond\[0\] = 7 is outside \[0, 2\]"):
        t.cplimit([Step(1e-4, 1.0, exit=7)], i_range=IRange.I_1mA, record_dt_s=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Duration_step\[1\] = -1 s is outside \[0, \+inf\]"):
        t.cplimit([Step(1e-4, 1.0), Step(1e-4, -1.0)], i_range=IRange.I_1mA, record_dt_s=1.0)


def test_calimit_hold_until_current_decays():
    hold = Step(4.2, 7200.0, (Limit(Variable.CURRENT, Comparison.BELOW, 5e-5),), Exit.NEXT_TECHNIQUE)
    values = by_label(t.calimit([hold], record_dt_s=5.0, record_dI_A=1e-5))
    assert values[("Voltage_step", 0)] == 4.2
    assert values[("Test1_Config", 0)] == 1 + 96
    assert values[("Record_every_dI", 0)] == 1e-5
    assert values[("I_Range", 0)] == 12  # AUTO is allowed under potential control


def test_peis_parameters():
    sweep = Sweep(1e6, 0.1, 61, average_n=2, wait_periods=0.1)
    params = t.peis(0.0, amplitude_V=0.01, sweep=sweep, vs_initial=True, duration_s=5.0)
    assert as_tuples(params) == [
        ("vs_initial", BOOL, True, 0), ("vs_final", BOOL, True, 0),
        ("Initial_Voltage_step", SGL, 0.0, 0), ("Final_Voltage_step", SGL, 0.0, 0),
        ("Duration_step", SGL, 5.0, 0), ("Step_number", INT, 0, 0),
        ("Record_every_dT", SGL, 0.0, 0), ("Record_every_dI", SGL, 0.0, 0),
        ("Final_frequency", SGL, 0.1, 0), ("Initial_frequency", SGL, 1e6, 0),
        ("sweep", BOOL, False, 0), ("Amplitude_Voltage", SGL, 0.01, 0),
        ("Frequency_number", INT, 61, 0), ("Average_N_times", INT, 2, 0),
        ("Correction", BOOL, False, 0), ("Wait_for_steady", SGL, 0.1, 0),
        ("I_Range", INT, 12, 0), ("E_Range", INT, 2, 0), ("Bandwidth", INT, 5, 0),
    ]  # fmt: skip


def test_peis_frequency_limits_of_the_sp200():
    assert t.peis(0.0, amplitude_V=0.01, sweep=Sweep(2e6, 1.0, 10))
    with pytest.raises(ValueError, match=r"Initial_frequency = 2\.1e\+06 Hz .*SP-200 .*2e\+06 Hz"):
        t.peis(0.0, amplitude_V=0.01, sweep=Sweep(2.1e6, 1.0, 10))
    with pytest.raises(ValueError, match=r"Final_frequency = 0 Hz is outside \(0, 2e\+06\]"):
        t.peis(0.0, amplitude_V=0.01, sweep=Sweep(1e5, 0.0, 10))
    with pytest.raises(ValueError, match="Frequency_number = 0"):
        t.peis(0.0, amplitude_V=0.01, sweep=Sweep(1e5, 1.0, 0))
    with pytest.raises(ValueError, match="Amplitude_Voltage = 0 V"):
        t.peis(0.0, amplitude_V=0.0, sweep=Sweep(1e5, 1.0, 10))


def test_peis_duration_bounded_by_its_time_base():
    """Duration_step ≤ 24 µs · 2^31 = 51539.6 s (manual §7.11)."""
    assert t.peis(0.0, amplitude_V=0.01, sweep=Sweep(1e5, 1.0, 10), duration_s=51539.0)
    with pytest.raises(ValueError, match="Duration_step = 51540 s"):
        t.peis(0.0, amplitude_V=0.01, sweep=Sweep(1e5, 1.0, 10), duration_s=51540.0)


def test_geis_needs_a_fixed_range_that_holds_bias_plus_amplitude():
    sweep = Sweep(1e5, 1.0, 10)
    values = by_label(t.geis(5e-4, amplitude_A=1e-4, i_range=IRange.I_1mA, sweep=sweep, record_dE_V=0.001))
    assert values[("Initial_Current_step", 0)] == values[("Final_Current_step", 0)] == 5e-4
    assert values[("Amplitude_Current", 0)] == 1e-4 and values[("Record_every_dE", 0)] == 0.001
    assert values[("I_Range", 0)] == 7
    with pytest.raises(ValueError, match="GEIS: I_Range AUTO is not allowed"):
        t.geis(0.0, amplitude_A=1e-4, i_range=IRange.AUTO, sweep=sweep)
    with pytest.raises(ValueError, match=r"0\.0011 A is beyond I_Range I_1mA"):
        t.geis(1e-3, amplitude_A=1e-4, i_range=IRange.I_1mA, sweep=sweep)


def test_loop():
    assert as_tuples(t.loop(9, back_to=0)) == [("loop_N_times", INT, 9, 0), ("protocol_number", INT, 0, 0)]
    with pytest.raises(ValueError, match="protocol_number = -1"):
        t.loop(1, back_to=-1)


def ok_ocv() -> list[Param]:
    return t.ocv(10.0, record_dt_s=1.0)


def replaced(params: list[Param], which: str, **change) -> list[Param]:
    """``params`` with the fields of the parameter(s) labelled ``which`` changed."""
    return [Param(**{**p.__dict__, **change}) if p.label == which else p for p in params]


def test_label_case_and_typos_are_named_with_the_fix():
    with pytest.raises(ValueError, match="OCV has no parameter 'rest_time_T'; labels are case-sensitive: write 'Rest_time_T'"):
        t.validate(t.OCV, replaced(ok_ocv(), "Rest_time_T", label="rest_time_T"))
    steps = t.cplimit([Step(1e-4, 1.0)], i_range=IRange.I_1mA, record_dt_s=1.0)
    with pytest.raises(ValueError, match="CPLIMIT has no parameter 'Step_nuber'; did you mean 'Step_number'"):
        t.validate(t.CPLIMIT, replaced(steps, "Step_number", label="Step_nuber"))
    with pytest.raises(ValueError, match="LOOP has no parameter 'N_Cycles'; its labels are loop_N_times, protocol_number"):
        t.validate(t.LOOP, [Param("N_Cycles", ParamType.INT32, 1)])


def test_wrong_types_are_refused():
    with pytest.raises(ValueError, match="Rest_time_T is SINGLE in EClib, not INT32"):
        t.validate(t.OCV, replaced(ok_ocv(), "Rest_time_T", type=ParamType.INT32, value=10))
    with pytest.raises(ValueError, match="Rest_time_T must be a number, not True"):
        t.validate(t.OCV, replaced(ok_ocv(), "Rest_time_T", value=True))
    with pytest.raises(ValueError, match="Rest_time_T must be a number, not '10'"):
        t.validate(t.OCV, replaced(ok_ocv(), "Rest_time_T", value="10"))
    with pytest.raises(ValueError, match="Bandwidth = 5.0 must be a whole number"):
        t.validate(t.OCV, replaced(ok_ocv(), "Bandwidth", value=5.0))
    with pytest.raises(ValueError, match="vs_initial must be True or False, not 1"):
        t.peis(0.0, amplitude_V=0.01, sweep=Sweep(1e5, 1.0, 10), vs_initial=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 3.5e38])
def test_singles_must_fit_float32(value):
    with pytest.raises(ValueError, match="Rest_time_T = .* must be a finite 32-bit float"):
        t.ocv(value, record_dt_s=1.0)


def test_int32_overflow_and_ranges():
    with pytest.raises(ValueError, match="N_Cycles = 2147483648 must be a whole number that fits 32 bits"):
        t.cplimit([Step(1e-4, 1.0)], i_range=IRange.I_1mA, record_dt_s=1.0, n_cycles=2**31)
    with pytest.raises(ValueError, match=r"Bandwidth = 10 is outside \[1, 9\]; give a value in that range"):
        t.ocv(10.0, record_dt_s=1.0, bandwidth=10)
    with pytest.raises(ValueError, match="E_Range = 4"):
        t.ocv(10.0, record_dt_s=1.0, e_range=4)  # type: ignore[arg-type]


def test_missing_duplicate_and_misindexed_labels():
    with pytest.raises(ValueError, match="OCV: Bandwidth is missing; give it"):
        t.validate(t.OCV, ok_ocv()[:-1])
    with pytest.raises(ValueError, match="Bandwidth index 0 is given twice"):
        t.validate(t.OCV, [*ok_ocv(), ok_ocv()[-1]])
    with pytest.raises(ValueError, match="Bandwidth takes one value, not one per step; give it index 0, not 1"):
        t.validate(t.OCV, replaced(ok_ocv(), "Bandwidth", index=1))
    steps = t.cplimit([Step(1e-4, 1.0), Step(-1e-4, 1.0)], i_range=IRange.I_1mA, record_dt_s=1.0)
    dropped = [p for p in steps if (p.label, p.index) != ("Test2_Value", 1)]
    with pytest.raises(ValueError, match="CPLIMIT: Test2_Value is missing for step 1"):
        t.validate(t.CPLIMIT, dropped)
    fewer = replaced(steps, "Step_number", value=0)
    with pytest.raises(ValueError, match="index 1 is beyond Step_number = 0"):
        t.validate(t.CPLIMIT, fewer)


def test_peis_final_values_must_equal_initial_ones():
    params = t.peis(0.1, amplitude_V=0.01, sweep=Sweep(1e5, 1.0, 10))
    with pytest.raises(ValueError, match=r"Final_Voltage_step must equal Initial_Voltage_step \(0\.1\)"):
        t.validate(t.PEIS, replaced(params, "Final_Voltage_step", value=0.2))
    with pytest.raises(ValueError, match="vs_final must equal vs_initial"):
        t.validate(t.PEIS, replaced(params, "vs_final", value=True))
    with pytest.raises(ValueError, match=r"Step_number = 1 is outside \[0, 0\]"):
        t.validate(t.PEIS, replaced(params, "Step_number", value=1))
