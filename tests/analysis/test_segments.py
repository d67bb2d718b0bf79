"""The shared half-cycle stream (segments.py), the replay seam (replay.py), the debounce (shorts.py) and the setting
errors (checks.py) on their own."""

from __future__ import annotations

import pandas as pd
import pytest

from labctl.analysis.ccd import CCDAnalyzer
from labctl.analysis.ce import CEAnalyzer
from labctl.analysis.checks import SettingError
from labctl.analysis.replay import Analysis, replay
from labctl.analysis.segments import Charge, Row, Split
from labctl.analysis.shorts import Debounce

AREA_CM2 = 1.0  # 1 mA ↔ 1 mA/cm²


def test_split_derives_steps_from_rest_sign_and_a_current_tolerance():
    amps = [0.0, 1e-3, 1e-3, 1.2e-3, -1e-3, 0.0]
    assert Split(AREA_CM2).steps(amps) == [1, 2, 2, 2, 3, 4]
    assert Split(AREA_CM2, current_tolerance=0.01).steps(amps) == [1, 2, 2, 3, 4, 5]


def test_split_counts_cycles_from_the_first_half_cycles_sign_only_when_asked():
    amps = [1e-3, -1e-3, 0.0, 1e-3, -1e-3]
    steps = Split(AREA_CM2).steps(amps)
    assert Split(AREA_CM2, count_cycles=True).cycles(steps, amps) == [1, 1, 1, 2, 2]
    assert Split(AREA_CM2).cycles(steps, amps) == [None] * 5


def test_charge_holds_the_current_at_a_half_cycles_ends_and_takes_trapezoids_between():
    charge = Charge(Split(AREA_CM2))
    assert charge.add(0.0, 0.0, 1) == 0.0
    assert charge.add(3600.0, 1e-3, 2) == pytest.approx(1e-3)  # began at the previous row, at this current
    assert charge.add(3600.0, 3e-3, 2) == pytest.approx(2e-3)  # trapezoid
    assert charge.add(3600.0, 0.0, 2) == pytest.approx(3e-3)  # ran at its last current until its reading at rest
    assert charge.add(3600.0, 0.0, 2) == 0.0  # rest after rest
    assert charge.add(3600.0, -1e-3, 2) == pytest.approx(1e-3)  # another sign: a new half-cycle


def test_debounce_counts_a_run_of_samples_spanning_its_time_from_the_onset():
    debounce = Debounce(min_samples=3, min_span_s=5.0)
    assert debounce.update(0.0, True, 0.1) is None
    assert debounce.update(2.0, True, 0.2) is None
    assert debounce.update(3.0, True, 0.3) is None  # 3 samples but only 3 s
    assert debounce.update(6.0, True, 0.4) == (0.0, 0.1)
    assert debounce.update(7.0, False, 0.5) is None
    assert debounce.update(8.0, True, 0.6) is None  # a new run starts over


def _frame(rows: list[Row]) -> pd.DataFrame:
    return pd.DataFrame({"Test Time / s": [r.t_s for r in rows], "Voltage / V": [r.voltage_V for r in rows],
                         "Current / A": [r.current_A for r in rows], "Step Count / 1": [r.step for r in rows]})


class _Recorder:
    """An analyzer that only records what replay feeds it."""

    split = Split(AREA_CM2)

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.finished = False

    def feed(self, row: Row) -> list:
        self.rows.append(row)
        return []

    def finish(self) -> list:
        self.finished = True
        return []

    def result(self) -> list[Row]:
        return self.rows


def test_replay_feeds_every_row_in_order_then_finishes():
    rows = [Row(0.0, 0.0, 0.0, 1), Row(60.0, 0.01, 1e-3, 2), Row(120.0, -0.01, -1e-3, 3)]
    recorder = _Recorder()
    assert replay(_frame(rows), recorder) == [r._replace(cycle=None) for r in rows] and recorder.finished


def test_replay_derives_steps_by_the_analyzers_split_when_the_file_has_none():
    frame = _frame([Row(0.0, 0.0, 0.0, 0), Row(60.0, 0.01, 1e-3, 0), Row(120.0, -0.01, -1e-3, 0)])
    assert [r.step for r in replay(frame.drop(columns="Step Count / 1"), _Recorder())] == [1, 2, 3]


def test_an_analysis_declaration_builds_its_analyzer_and_its_command():
    declared = Analysis("ce", CEAnalyzer, 1.131, {"protocol": "cycling", "cutoff_V": 0.5, "time_limit_s": 14400.0,
                                                  "capacity_mAh_cm2": None})
    assert declared.analyzer().cutoff_V == 0.5
    assert declared.command("t.csv") == ("labctl analyze ce t.csv --area 1.131 --protocol cycling --cutoff 0.5 "
                                         "--time-limit 4")


@pytest.mark.parametrize(("factory", "settings", "setting"), [
    (CCDAnalyzer, {"voltage_limit_V": -1.0}, "voltage_limit_V"),
    (CEAnalyzer, {"protocol": "aurbach"}, "protocol"),
    (CEAnalyzer, {"protocol": "cycling", "lower_V": 0.1}, "lower_V"),
    (CEAnalyzer, {"protocol": "fullcell", "upper_V": 2.5, "lower_V": 2.8}, "upper_V"),
])  # fmt: skip
def test_a_bad_setting_names_itself(factory, settings, setting):
    with pytest.raises(SettingError) as error:
        factory(1.0, **settings)
    assert error.value.setting == setting and setting in str(error.value)
