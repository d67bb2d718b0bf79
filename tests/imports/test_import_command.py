"""`labctl import` on every kind of file it takes: each real vendor fixture becomes a run of the store that BDF
validates and `labctl analyze` reads, and another instrument's layout of labctl's own simulated CCD analyses to
labctl's own result."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import bdf
import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from labctl.cli import app
from labctl.store.folder import METADATA, SPECTRA, TIMESERIES, read_json

cli = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures"


def imported(tmp_path: Path, path: Path, *options: str) -> tuple[dict, Path]:
    result = cli.invoke(app, ["import", str(path), *options, "--store", str(tmp_path / "store"), "--json"])
    assert result.exit_code == 0, result.output
    [stored] = json.loads(result.stdout)
    return stored, Path(stored["folder"])


@pytest.fixture
def res(tmp_path) -> Path:
    path = tmp_path / "mits7-0.res"
    with gzip.open(FIXTURES / "arbin" / "mits7-0.res.gz") as packed, path.open("wb") as out:
        shutil.copyfileobj(packed, out)
    return path


@pytest.mark.parametrize("name", ["eclab/v1150_GCPL.mpr", "eclab/v1150_GCPL.mpt", "eclab/v1150_CA.mpr",
                                  "eclab/v1150_OCV.mpt", "land/SINTEF__LiGrR2032__2024-04-30__25degC__Landt.excerpt.csv"])
def test_a_time_series_file_becomes_a_valid_bdf_run(tmp_path, name):
    stored, folder = imported(tmp_path, FIXTURES / name, "--area", "1.131")
    assert stored["rows"] > 0 and bdf.validate(folder / TIMESERIES)["ok"]
    metadata = read_json(folder / METADATA)
    assert metadata["imported"]["file"] == Path(name).name and len(metadata["imported"]["sha256"]) == 64


def test_an_arbin_res_becomes_a_valid_bdf_run(tmp_path, res):
    stored, folder = imported(tmp_path, res, "--diameter", "12")
    assert stored["rows"] > 0 and bdf.validate(folder / TIMESERIES)["ok"]
    assert read_json(folder / METADATA)["instruments"]["source"]["make"] == "Arbin"


@pytest.mark.parametrize("name", ["eclab/v1150_PEIS.mpr", "eclab/exampleDataBioLogic.mpt",
                                  "versastudio/exampleDataVersaStudio.par"])
def test_an_impedance_file_fills_the_spectra_table_that_labctl_analyze_eis_fits(tmp_path, name):
    stored, folder = imported(tmp_path, FIXTURES / name, "--area", "1.0")
    assert stored["spectra"] >= 1
    spectra = pd.read_csv(folder / SPECTRA)
    assert (spectra["Imaginary Impedance / ohm"] < 0).mean() > 0.5  # capacitive arcs below the real axis
    fitted = cli.invoke(app, ["analyze", "eis", str(folder), "--spectrum", "1", "--json"])
    assert fitted.exit_code == 0, fitted.output
    assert json.loads(fitted.stdout)["R_b_ohm"] > 0


def test_an_arbin_excel_export_of_labctls_own_ccd_analyses_to_labctls_result(tmp_path):
    own = cli.invoke(app, ["run", "ccd", "--bench", "sim", "--store", str(tmp_path / "own"), "--json"])
    out = json.loads(own.stdout)
    series = pd.read_csv(Path(out["folder"]) / TIMESERIES)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Channel-1_1"  # Data Watcher's sheet naming
    sheet.append(["Data_Point", "Date_Time", "Test_Time(s)", "Cycle_Index", "Step_Index", "Current(A)", "Voltage(V)"])
    start = datetime(2026, 12, 7, 9, 0, 0)
    columns = ["Test Time / s", "Cycle Count / 1", "Step Count / 1", "Current / A", "Voltage / V"]
    for n, (t, cycle, step, current, voltage) in enumerate(series[columns].itertuples(index=False), start=1):
        sheet.append([n, start + timedelta(seconds=t), t, int(cycle), int(step), current, voltage])
    path = tmp_path / "ccd_Wb_1.xlsx"
    book.save(path)
    _, folder = imported(tmp_path, path, "--diameter", "12")
    area = read_json(Path(out["folder"]) / METADATA)["cell"]["area_cm2"]
    analysed = cli.invoke(app, ["analyze", "ccd", str(folder / TIMESERIES), "--area", str(area), "--json"])
    ccd = json.loads(analysed.stdout)
    for key in ("ccd_mA_cm2", "failure_mode", "failure_cycle", "j_last_pass_mA_cm2", "failure_time_h"):
        assert ccd[key] == out["result"][key]


def test_several_files_are_all_checked_before_any_is_stored(tmp_path):
    bad = tmp_path / "bad.mpr"
    bad.write_bytes(b"BIO-LOGIC MODULAR FILE truncated")
    result = cli.invoke(app, ["import", str(FIXTURES / "eclab" / "v1150_OCV.mpt"), str(bad), "--store",
                              str(tmp_path / "store")])
    assert result.exit_code == 2 and "bad.mpr" in result.output and "nothing was imported" in result.output
    assert not (tmp_path / "store" / "runs").exists()


def test_invert_current_flips_the_sign_and_swaps_the_capacities(tmp_path):
    _, plain = imported(tmp_path, FIXTURES / "eclab" / "v1150_GCPL.mpt", "--area", "1")
    _, flipped = imported(tmp_path, FIXTURES / "eclab" / "v1150_GCPL.mpt", "--area", "1", "--invert-current")
    a, b = pd.read_csv(plain / TIMESERIES), pd.read_csv(flipped / TIMESERIES)
    assert (b["Current / A"] == -a["Current / A"]).all()
    assert (b["Charging Capacity / Ah"] == a["Discharging Capacity / Ah"]).all()
    assert read_json(flipped / METADATA)["imported"]["inverted_current"] is True
