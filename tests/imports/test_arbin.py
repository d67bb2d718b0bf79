"""Arbin's .res (through mdbtools) and Data Watcher .xlsx readers: a real MITS Pro 7 .res (fixtures/arbin/README.md)
against access-parser, an independent pure-Python reader of Access databases (a test-only oracle); workbooks written
here to the documented export layout (no real export is public), one of them from the .res's own records; a fake
mdbtools for the orders and tests a real file does not show; damaged and foreign files refused by name."""

from __future__ import annotations

import gzip
import os
from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from access_parser import AccessParser
from numpy.testing import assert_allclose

from labctl.imports.arbin import ToolMissing, read_arbin_excel, read_res
from labctl.imports.formats import format_of
from labctl.imports.imported import FormatError

FIXTURES = Path(__file__).parent / "fixtures" / "arbin"
T, V, A, UNIX = "Test Time / s", "Voltage / V", "Current / A", "Unix Time / s"
CYCLE, STEP, QC, QD = "Cycle Count / 1", "Step Count / 1", "Charging Capacity / Ah", "Discharging Capacity / Ah"
BDF_OF_ARBIN = {"Test_Time": T, "Voltage": V, "Current": A, "Cycle_Index": CYCLE, "Step_Index": STEP,
                "Charge_Capacity": QC, "Discharge_Capacity": QD}
EXPORT_HEADERS = {"Data_Point": "Data_Point", "DateTime": "Date_Time", "Test_Time": "Test_Time(s)",
                  "Step_Time": "Step_Time(s)", "Cycle_Index": "Cycle_Index", "Step_Index": "Step_Index",
                  "Current": "Current(A)", "Voltage": "Voltage(V)", "Charge_Capacity": "Charge_Capacity(Ah)",
                  "Discharge_Capacity": "Discharge_Capacity(Ah)"}  # the .res column -> the Data Watcher header
JET_HEAD = b"\0\x01\0\0Standard Jet DB\0".ljust(4096, b"\0")


@pytest.fixture(scope="module")
def res(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("arbin") / "mits7-0.res"
    path.write_bytes(gzip.decompress((FIXTURES / "mits7-0.res.gz").read_bytes()))
    return path


@pytest.fixture(scope="module")
def oracle(res) -> pd.DataFrame:
    """The .res's records as access-parser reads them, in Data_Point order."""
    return pd.DataFrame(AccessParser(str(res)).parse_table("Channel_Normal_Table")).sort_values("Data_Point")


def local(ole_days: float) -> datetime:
    return datetime(1899, 12, 30) + timedelta(days=ole_days)


def test_res_reads_as_access_parser_reads_it(res, oracle):
    imported = read_res(res)
    assert imported.format == "arbin-res" == format_of(res).name and len(imported.series) == len(oracle) == 8
    for arbin, column in BDF_OF_ARBIN.items():
        assert_allclose(imported.series[column], oracle[arbin], rtol=1e-7, err_msg=column)
    unix = [local(d).astimezone().timestamp() for d in oracle["DateTime"]]
    assert_allclose(imported.series[UNIX], unix, rtol=0, atol=1e-3)
    test = AccessParser(str(res)).parse_table("Global_Table")
    assert imported.header["Test_Name"] == test["Test_Name"][0] == "kigr_pouch1-01-001"
    assert imported.started_at.replace(tzinfo=None) == local(test["Start_DateTime"][0]).replace(microsecond=0)
    assert imported.instrument == {"make": "Arbin", "channel": "1", "serial": "203439",
                                   "software": "PV7.0 Build: 180508USB"}


def fake_mdbtools(tmp_path: Path, monkeypatch, tables: dict[str, str]) -> Path:
    """mdb-tables and mdb-export that print ``tables`` (name -> CSV), first on PATH; a file that looks like Jet."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mdb-tables").write_text("#!/bin/sh\nprintf '%s\\n' " + " ".join(tables) + "\n")
    cases = "".join(f"  {name}) cat <<'EOF'\n{csv}EOF\n  ;;\n" for name, csv in tables.items())
    (bin_dir / "mdb-export").write_text(f'#!/bin/sh\ncase "$2" in\n{cases}esac\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    path = tmp_path / "fake.res"
    path.write_bytes(JET_HEAD)
    return path


GLOBAL = "Test_ID,Test_Name,Channel_Index,Start_DateTime,Serial_Number\n1,\"t\",4,45000.5,\"SN\"\n"
NORMAL = ("Test_ID,Data_Point,Test_Time,DateTime,Step_Index,Cycle_Index,Current,Voltage,Charge_Capacity,"
          "Discharge_Capacity\n"
          "1,3,20,45000.50023148148,2,1,-0.001,3.5,0.002,0.0005\n"
          "1,1,0,45000.5,1,1,0.001,3.6,0,0\n"
          "1,2,10,45000.50011574074,1,1,0.001,3.7,0.002,0\n"
          "1,4,30,45000.50034722222,1,2,0.001,3.6,0.001,0\n")


def test_records_come_in_data_point_order_and_counters_never_fall(tmp_path, monkeypatch):
    path = fake_mdbtools(tmp_path, monkeypatch, {"Global_Table": GLOBAL, "Channel_Normal_Table": NORMAL})
    series = read_res(path).series
    assert list(series[T]) == [0, 10, 20, 30] and list(series[A]) == [0.001, 0.001, -0.001, 0.001]
    assert list(series[QC]) == [0, 0.002, 0.002, 0.003]  # cycle 2 restarts Arbin's counter at 0
    assert list(series[CYCLE]) == [1, 1, 1, 2] and list(series[STEP]) == [1, 1, 2, 1]
    assert_allclose(series[UNIX] - series[T], local(45000.5).astimezone().timestamp(), atol=1e-3)


def test_a_res_with_two_tests_is_refused(tmp_path, monkeypatch):
    two = GLOBAL + "2,\"u\",4,45001.5,\"SN\"\n"
    path = fake_mdbtools(tmp_path, monkeypatch, {"Global_Table": two, "Channel_Normal_Table": NORMAL})
    with pytest.raises(FormatError, match=r"fake\.res: holds 2 tests \(Test_ID 1, 2\)"):
        read_res(path)


def test_without_mdbtools_the_error_says_how_to_install_it(res, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing, match=r"needs mdb-tables from mdbtools.*apt-get install mdbtools"):
        read_res(res)


def test_damaged_and_foreign_res_files_are_refused(res, tmp_path):
    cases = [("cut.res", res.read_bytes()[:200_000], r"cut\.res: a damaged or truncated \.res: mdb-\w+ says"),
             ("text.res", b"Test_ID,Data_Point\n1,1\n", r"text\.res: not an Arbin \.res: it is not an Access database"),
             ("empty.res", b"", r"empty\.res: empty file; expected an Arbin \.res database"),
             ("data.mdb", res.read_bytes(), r"data\.mdb: expected an Arbin \.res database \(\.res\), not a \.mdb")]
    for name, content, message in cases:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(FormatError, match=message):
            read_res(path)


def workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


HEADERS = ["Data_Point", "Date_Time", "Test_Time(s)", "Step_Time(s)", "Cycle_Index", "Step_Index", "Current(A)",
           "Voltage(V)", "Charge_Capacity(Ah)", "Discharge_Capacity(Ah)", "dV/dt(V/s)"]
START = datetime(2024, 3, 5, 9, 0, 0)


def records(first: int, count: int, dates=lambda t: START + timedelta(seconds=t)) -> list[list]:
    return [[k, dates(10.0 * k), 10.0 * k, 10.0 * k, 1, 1, 0.002, 3.5 + 0.01 * k, 0.002 * 10 * k / 3600, 0, 0]
            for k in range(first, first + count)]


def test_an_export_reads_its_channel_sheets_in_order(tmp_path):
    path = workbook(tmp_path / "cell_Channel_1_Wb_1.xlsx", {
        "Global_Info": [["TEST REPORT"], ["Schedule", "li_li.sdx"], ["Channel", 1]],
        "Channel-1_1": [HEADERS, *records(0, 3)], "Channel-1_2": [HEADERS, *records(3, 2)],
        "Statistics-1_1": [["Cycle_Index", "Charge_Capacity(Ah)"], [1, 0.001]]})
    imported = read_arbin_excel(path)
    assert imported.format == "arbin-xlsx" == format_of(path).name and list(imported.series[T]) == [0, 10, 20, 30, 40]
    assert_allclose(imported.series[V], [3.5, 3.51, 3.52, 3.53, 3.54])
    assert_allclose(imported.series[UNIX], [(START + timedelta(seconds=t)).astimezone().timestamp()
                                            for t in (0, 10, 20, 30, 40)])
    assert imported.started_at == START.astimezone()
    assert imported.header["data_sheets"] == ["Channel-1_1", "Channel-1_2"]
    assert imported.header["other_sheets"]["Global_Info"][1] == ["Schedule", "li_li.sdx"]


def test_dates_written_as_text_read_as_dates_do(tmp_path):
    as_text = records(0, 3, dates=lambda t: (START + timedelta(seconds=t)).strftime("%m/%d/%Y %H:%M:%S.%f")[:-3])
    text = read_arbin_excel(workbook(tmp_path / "text.xlsx", {"Channel-1_1": [HEADERS, *as_text]}))
    dates = read_arbin_excel(workbook(tmp_path / "dates.xlsx", {"Channel-1_1": [HEADERS, *records(0, 3)]}))
    pd.testing.assert_frame_equal(text.series, dates.series)


def test_the_res_written_as_an_export_reads_the_same(res, oracle, tmp_path):
    rows = [[local(v) if column == "DateTime" else v for column, v in zip(EXPORT_HEADERS, row, strict=True)]
            for row in oracle[list(EXPORT_HEADERS)].itertuples(index=False)]
    export = read_arbin_excel(workbook(tmp_path / "res_Wb_1.xlsx",
                                       {"Channel-1_1": [list(EXPORT_HEADERS.values()), *rows]}))
    pd.testing.assert_frame_equal(export.series, read_res(res).series, check_dtype=False, atol=1e-3)


def test_damaged_and_foreign_workbooks_are_refused(tmp_path):
    kiloamps = [[h.replace("Current(A)", "Current(kA)") for h in HEADERS], *records(0, 2)]
    cases = [(workbook(tmp_path / "sheets.xlsx", {"Record": [HEADERS, *records(0, 2)]}),
              r"sheets\.xlsx: no sheet whose name holds 'Channel'.*sheets: Record"),
             (workbook(tmp_path / "kA.xlsx", {"Channel-1_1": kiloamps}),
              r"kA\.xlsx: column 'Current\(kA\)': unit 'kA' is not one labctl knows for a current")]
    for name, content, message in [("zip.xlsx", b"not a zip", r"zip\.xlsx: not an Excel workbook"),
                                   ("empty.xlsx", b"", r"empty\.xlsx: empty file"),
                                   ("old.xls", b"\xd0\xcf\x11\xe0", r"old\.xls: not an Excel workbook")]:
        (tmp_path / name).write_bytes(content)
        cases.append((tmp_path / name, message))
    for path, message in cases:
        with pytest.raises(FormatError, match=message):
            read_arbin_excel(path)
