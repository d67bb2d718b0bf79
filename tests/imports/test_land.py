"""The LAND reader: every layout the simulated exporter writes reads back to the series it was written from; it agrees
with batterydf's LAND readers on the same files; a real public export reads with its signs and counters; files that
are not LAND exports are refused by name."""

from __future__ import annotations

import warnings
import zipfile
from datetime import datetime
from itertools import groupby
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labctl.analysis.replay import rows_of
from labctl.analysis.segments import Split
from labctl.imports.imported import FormatError
from labctl.imports.land import read_land
from labctl.sim_instruments import land_export as export
from labctl.sim_instruments.land_export import Layout

T, V, AMPS, UNIX = "Test Time / s", "Voltage / V", "Current / A", "Unix Time / s"
CYC, STEP, QC, QD = "Cycle Count / 1", "Step Count / 1", "Charging Capacity / Ah", "Discharging Capacity / Ah"
FIXTURE = Path(__file__).parent / "fixtures" / "land" / "SINTEF__LiGrR2032__2024-04-30__25degC__Landt.excerpt.csv"
RUN = Path(__file__).parent / "fixtures" / "land" / "ccd_sim_run.bdf.csv"
STEPS = 8  # segments in cycling_series(cycles=2): each carries one rounded capacity into the counters


@pytest.fixture(scope="module")
def series() -> pd.DataFrame:
    return export.cycling_series(cycles=2)


def assert_reads_back(path: Path, series: pd.DataFrame, *, current_A: float, capacity_Ah: float,
                      time_s: float = 5e-4, steps: int = STEPS) -> None:
    """``path`` read is ``series`` within the export's rounding (``current_A``, ``capacity_Ah`` per value)."""
    got = read_land(path).series
    assert list(got.columns[:3]) == [T, V, AMPS] and len(got) == len(series)
    np.testing.assert_allclose(got[T], series[T], atol=time_s)
    np.testing.assert_allclose(got[V], series[V], atol=5.1e-5)
    np.testing.assert_allclose(got[AMPS], series[AMPS], atol=current_A)
    assert (np.sign(got[AMPS]) == np.sign(series[AMPS])).all()
    assert (got[CYC] == series[CYC]).all() and (got[STEP] == series[STEP]).all()
    np.testing.assert_allclose(got[UNIX], series[UNIX], atol=1e-3)
    for counter in (QC, QD):  # cumulative again: each step's rounding carried once
        np.testing.assert_allclose(got[counter], series[counter], atol=capacity_Ah * steps)


MA, UA = 5.1e-8, 5.1e-9  # A: half the last digit LAND writes in mA (4 decimals) and µA (2)
LAYOUTS = {
    "xlsx": (lambda s, p: export.write_xlsx(s, p / "cell.xlsx"), MA, MA),
    "xlsx, Chinese, µA, |I| and state, hh:mm:ss": (
        lambda s, p: export.write_xlsx(s, p / "cell.xlsx", Layout(chinese=True, current_unit="uA", signed=False,
                                                                 time="hh:mm:ss")), UA, UA),
    "xlsx, continued on Record(2) with headers": (
        lambda s, p: export.write_xlsx(s, p / "cell.xlsx", rows_per_sheet=100), MA, MA),
    "xlsx, continued without headers, time in h": (
        lambda s, p: export.write_xlsx(s, p / "cell.xlsx", Layout(time="h"), rows_per_sheet=100,
                                       continuation_header=False), MA, MA),
    "xlsx, per-cycle groups": (lambda s, p: export.write_per_cycle_xlsx(s, p / "cell.xlsx"), MA, MA),
    "csv with preamble and a Cycle section": (
        lambda s, p: export.write_text(s, p / "cell.csv", preamble={"Test name": "x"}, cycle_section=True), MA, MA),
    "txt, Chinese, GBK": (
        lambda s, p: export.write_text(s, p / "cell.txt", Layout(chinese=True), encoding="gbk"), MA, MA),
    "txt, µ sign, |I|": (
        lambda s, p: export.write_text(s, p / "cell.txt", Layout(current_unit="µA", signed=False)), UA, UA),
    "SINTEF csv": (lambda s, p: export.write_sintef_csv(s, p / "cell.csv"), 5.1e-8, 5.1e-10),
    "SINTEF txt": (lambda s, p: export.write_sintef_txt(s, p / "cell.txt"), 5.1e-8, 5.1e-10),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_reads_back_to_the_series_it_was_written_from(layout, series, tmp_path):
    write, current_A, capacity_Ah = LAYOUTS[layout]
    assert_reads_back(write(series, tmp_path), series, current_A=current_A, capacity_Ah=capacity_Ah)


def test_xls_reads_back(series, tmp_path):
    pytest.importorskip("xlwt")
    path = export.write_xls(series, tmp_path / "cell.xls", rows_per_sheet=120)
    assert_reads_back(path, series, current_A=MA, capacity_Ah=MA)


@pytest.mark.parametrize("write", [
    lambda s, p: export.write_xlsx(s, p / "run.xlsx"),
    lambda s, p: export.write_text(s, p / "run.txt", Layout(chinese=True, current_unit="uA", signed=False)),
], ids=["xlsx", "txt, Chinese, µA, |I|"])
def test_a_run_of_the_simulated_bench_reads_back(write, tmp_path):
    """The writer's input as labctl stores it: the first steps of `labctl run ccd --bench sim` (fixtures/README)."""
    run = pd.read_csv(RUN)
    assert_reads_back(write(run, tmp_path), run, current_A=MA, capacity_Ah=MA, steps=4)


def test_an_unsigned_current_takes_its_sign_from_the_state_and_says_so(series, tmp_path):
    imported = read_land(export.write_xlsx(series, tmp_path / "cell.xlsx", Layout(signed=False)))
    assert (np.sign(imported.series[AMPS]) == np.sign(series[AMPS])).all()
    assert any("|I|" in note and "state" in note for note in imported.notes)
    signed = read_land(export.write_xlsx(series, tmp_path / "signed.xlsx"))
    assert not any("|I|" in note for note in signed.notes)


def test_an_unsigned_current_without_a_state_column_is_read_as_written_and_noted(series, tmp_path):
    table = export.records(series, Layout(signed=False)).drop(columns=["StepStatus"])
    path = tmp_path / "cell.csv"
    table.to_csv(path, index=False)
    imported = read_land(path)
    assert (imported.series[AMPS] >= 0).all()
    assert any("never negative" in note for note in imported.notes)


def test_the_information_sheet_and_file_name_fill_header_and_instrument(series, tmp_path):
    imported = read_land(export.write_xlsx(series, tmp_path / "cell.xlsx"))
    assert imported.header["Test information"]["Test name"] == "labctl virtual cell"
    assert imported.instrument == {"make": "LAND", "channel": "1"}
    assert imported.started_at is not None
    assert imported.started_at.timestamp() == pytest.approx(series[UNIX].iloc[0] - series[T].iloc[0], abs=1e-3)
    named = read_land(export.write_text(series, tmp_path / "LLZO-7_20240501093000_02_5.csv",
                                        preamble={"Barcode": "A17", "Mass/mg": 1.2}))
    assert named.instrument == {"make": "LAND", "unit": "02", "channel": "5"}
    assert named.header == {"Barcode": "A17", "Mass/mg": "1.2"}


def test_the_public_sintef_export_reads_with_its_signs_and_counters():
    imported = read_land(FIXTURE)
    s = imported.series
    assert len(s) == 108 and imported.instrument == {"make": "LAND"}
    assert imported.header["cell model"] == ""
    assert s[UNIX].iloc[0] == datetime(2024, 4, 30, 14, 33, 19).timestamp()
    assert set(s[CYC]) == {1, 2} and [k for k, _ in groupby(s[STEP])] == [1, 2, 3, 2]
    discharging = s[STEP].isin([2])
    assert (s.loc[discharging, AMPS] < 0).all() and (s.loc[s[STEP] == 3, AMPS] > 0).all()
    # per-step capacities 0.0063 Ah (cycle 1 discharge), 0.0032 (charge), 0.0013 (cycle 2 discharge) accumulate
    assert s[QD].iloc[-1] == pytest.approx(0.0063 + 0.0013) and s[QC].iloc[-1] == pytest.approx(0.0032)
    assert s[QC].is_monotonic_increasing and s[QD].is_monotonic_increasing


def bdf_read(path: Path, plugin: str) -> pd.DataFrame:
    bdf = pytest.importorskip("bdf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bdf.read(path, plugin=plugin)


@pytest.mark.parametrize("source, plugin", [
    ("fixture", "landt-csv"), ("sintef csv", "landt-csv"), ("sintef txt", "landt-txt")])
def test_agrees_with_batterydf_on_the_same_file(source, plugin, series, tmp_path):
    path = {"fixture": lambda: FIXTURE, "sintef csv": lambda: export.write_sintef_csv(series, tmp_path / "c.csv"),
            "sintef txt": lambda: export.write_sintef_txt(series, tmp_path / "c.txt")}[source]()
    ours, theirs = read_land(path).series, bdf_read(path, plugin)
    assert len(ours) == len(theirs)
    for column in (T, V, AMPS):
        np.testing.assert_array_equal(ours[column].to_numpy(), theirs[column].astype(float).to_numpy())


def test_the_analyzers_read_an_imported_series_with_its_counters(series, tmp_path):
    imported = read_land(export.write_xlsx(series, tmp_path / "cell.xlsx")).series
    rows = list(rows_of(imported, Split(area_cm2=0.785)))
    assert [r.step for r in rows] == series[STEP].tolist()
    assert rows[-1].charge_Ah == pytest.approx(series[QC].iloc[-1], abs=1e-6)


# -- a growing export, as labctl follow reads it ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cell.csv", "cell.txt"])
def test_a_growing_text_export_reads_its_complete_records_each_time(name, series, tmp_path):
    growing = export.GrowingExport(series, tmp_path / name, Layout(chinese=name.endswith(".txt")), encoding="gbk")
    growing.append(1, partial=True)  # the header, one record and half the next
    for chunk in (50, 7, 100, 200):
        imported = read_land(growing.path)
        assert len(imported.series) == growing.written  # the half-written record is not read yet
        assert any("not ended" in note for note in imported.notes)
        np.testing.assert_allclose(imported.series[T], series[T].iloc[: growing.written])
        growing.append(chunk, partial=True)
    final = read_land(growing.path)  # the last chunk ended the series and its line
    assert len(final.series) == len(series) and not any("not ended" in n for n in final.notes)
    np.testing.assert_allclose(final.series[QD], series[QD], atol=MA * STEPS)


def test_a_growing_export_holding_only_its_header_has_no_rows_yet(series, tmp_path):
    growing = export.GrowingExport(series, tmp_path / "cell.csv")
    growing.append(0, partial=True)
    refused(growing.path, "no data rows")


def test_an_xlsx_export_rewritten_with_more_records_reads_them_all(series, tmp_path):
    growing = export.GrowingExport(series, tmp_path / "cell.xlsx")
    for written in (40, 100):
        growing.append(written - growing.written)
        got = read_land(growing.path).series
        assert len(got) == written
        np.testing.assert_allclose(got[T], series[T].iloc[:written])


# -- refusals ---------------------------------------------------------------------------------------------------
def refused(path: Path, *words: str) -> str:
    with pytest.raises(FormatError) as e:
        read_land(path)
    message = str(e.value)
    assert str(path) in message and all(w in message for w in words), message
    return message


def test_an_unknown_current_unit_is_refused_by_name(series, tmp_path):
    path = export.write_text(series, tmp_path / "cell.csv")
    path.write_text(path.read_text().replace("Current/mA", "Current/kA"))
    refused(path, "'Current/kA'", "'kA'")


def test_a_current_without_a_unit_is_refused_by_name(series, tmp_path):
    path = export.write_text(series, tmp_path / "cell.csv")
    path.write_text(path.read_text().replace("Current/mA", "Current"))
    refused(path, "'Current'", "no unit")


def test_a_table_without_a_current_column_is_refused(series, tmp_path):
    path = tmp_path / "cell.xlsx"
    export.records(series).drop(columns=["Current/mA"]).to_excel(path, sheet_name="Record", index=False)
    refused(path, "sheet 'Record'", "no current column", "Current")


def test_an_empty_sheet_is_refused(tmp_path):
    path = tmp_path / "cell.xlsx"
    pd.DataFrame().to_excel(path, sheet_name="Record")
    refused(path, "Record", "empty")


def test_a_truncated_xlsx_is_refused(series, tmp_path):
    path = export.write_xlsx(series, tmp_path / "cell.xlsx")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert not zipfile.is_zipfile(path)
    refused(path, "workbook")


@pytest.mark.parametrize("name", ["cell.mpr", "cell.json", "cell"])
def test_a_wrong_extension_is_refused(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(b"Record,TestTime/Sec,Current/mA,Voltage/V\n1,0,1,3\n")
    refused(path, "not a LAND export")


OTHER_EXPORTS = {
    "eclab.txt": "mode\tox/red\ttime/s\tEwe/V\t<I>/mA\n1\t1\t0.5\t3.1\t1.0\n",
    "arbin.csv": "Data_Point,Test_Time(s),Step_Index,Current(A),Voltage(V)\n1,0.5,1,0.001,3.1\n",
    "neware.csv": "Record ID,Realtime,Time(h:min:s.ms),Current(mA),Voltage(V)\n1,2024-01-01 00:00:00,0:00:01,1,3\n",
}


@pytest.mark.parametrize("name", OTHER_EXPORTS)
def test_another_instruments_export_is_refused(name, tmp_path):
    path = tmp_path / name
    path.write_text(OTHER_EXPORTS[name])
    refused(path, "TestTime")


def test_text_that_is_neither_utf8_nor_gbk_is_refused(tmp_path):
    path = tmp_path / "cell.txt"
    path.write_bytes(b"Record\tTestTime/Sec\tCurrent/mA\tVoltage/V\n1\t0\t1\t3\xff\xff\n")
    refused(path, "GBK")


def test_an_unknown_state_word_with_an_unsigned_current_is_refused_by_name(series, tmp_path):
    path = export.write_text(series, tmp_path / "cell.csv", Layout(signed=False))
    path.write_text(path.read_text().replace("D_CC", "Pulse"))
    refused(path, "'Pulse'", "'StepStatus'")


def test_a_value_that_is_not_a_number_is_refused_with_its_column_and_row(series, tmp_path):
    path = export.write_text(series, tmp_path / "cell.csv")
    lines = path.read_text().splitlines()
    fields = lines[3].split(",")
    fields[6] = "n/a"  # Voltage/V of the third record
    lines[3] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    refused(path, "'Voltage/V'", "row 3")
