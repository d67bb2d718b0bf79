"""An imported file is an ordinary run of the store, and a followed export is a live run with its detector: checked
with the time series of labctl's own simulated CCD run, handed over as another instrument's file would be."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import bdf
import pandas as pd
import pytest
from typer.testing import CliRunner

from labctl.analysis.replay import Analysis
from labctl.cli import app
from labctl.imports.follow import Follower
from labctl.imports.imported import FormatError, Imported, ImportedSpectrum
from labctl.imports.land import read_land
from labctl.imports.store import store_import
from labctl.procedures.ccd import CCDProcedure
from labctl.sim_instruments.land_export import GrowingExport, write_xlsx
from labctl.store import Store
from labctl.store.folder import EVENTS, METADATA, SPECTRA, TIMESERIES, read_json

cli = CliRunner()


@pytest.fixture(scope="module")
def ccd_run(tmp_path_factory) -> dict:
    """A simulated CCD run of the bare cell: its result and time series (the 'other instrument's' data)."""
    store = tmp_path_factory.mktemp("own")
    result = cli.invoke(app, ["run", "ccd", "--bench", "sim", "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    return out | {"series": pd.read_csv(Path(out["folder"]) / TIMESERIES),
                  "area": read_json(Path(out["folder"]) / METADATA)["cell"]["area_cm2"]}


def imported(path: Path, series: pd.DataFrame | None, spectra=()) -> Imported:
    return Imported(path, "land", {"make": "LAND", "channel": "3"}, {"barcode": "LLZTO-17", "mass_mg": 1.5},
                    series, list(spectra))


def test_an_imported_file_is_a_run_that_analyze_and_runs_list_read(tmp_path, ccd_run):
    source = tmp_path / "export.xlsx"
    source.write_bytes(b"the vendor's bytes")
    store = Store(tmp_path / "store")
    stored = store_import(store, imported(source, ccd_run["series"]), cell_id="LLZTO-17", area_cm2=ccd_run["area"])
    assert bdf.validate(stored.folder / TIMESERIES)["ok"]
    metadata = read_json(stored.folder / METADATA)
    assert metadata["status"] == "imported" and metadata["imported"]["file"] == "export.xlsx"
    assert metadata["imported"]["sha256"] == hashlib.sha256(b"the vendor's bytes").hexdigest()
    assert metadata["imported"]["header"] == {"barcode": "LLZTO-17", "mass_mg": 1.5}
    assert store.registry.get(stored.run_id).status == "imported"
    analysed = cli.invoke(app, ["analyze", "ccd", str(stored.folder / TIMESERIES), "--area", str(ccd_run["area"]),
                                "--json"])
    assert analysed.exit_code == 0, analysed.output
    ccd = json.loads(analysed.stdout)
    for key in ("ccd_mA_cm2", "failure_mode", "failure_cycle"):
        assert ccd[key] == ccd_run["result"][key]
    listed = cli.invoke(app, ["runs", "list", "--store", str(tmp_path / "store"), "--json"])
    assert [r["status"] for r in json.loads(listed.stdout)] == ["imported"]


def test_spectra_of_an_imported_file_go_to_the_spectra_table(tmp_path):
    source = tmp_path / "peis.mpr"
    source.write_bytes(b"x")
    spectrum = ImportedSpectrum(1, 0.0, [(1e5, complex(30, -1)), (1e3, complex(45, -12)), (10.0, complex(60, -3))])
    stored = store_import(Store(tmp_path / "store"), imported(source, None, [spectrum]), cell_id="c", area_cm2=1.0)
    table = pd.read_csv(stored.folder / SPECTRA)
    assert table["Imaginary Impedance / ohm"].tolist() == [-1, -12, -3]
    assert not (stored.folder / TIMESERIES).exists()


def test_a_failed_write_leaves_nothing_in_the_store(tmp_path, monkeypatch, ccd_run):
    source = tmp_path / "export.csv"
    source.write_text("x")
    store = Store(tmp_path / "store")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("labctl.store.RunFolder.add_spectrum", broken)
    spectrum = ImportedSpectrum(1, 0.0, [(1e3, complex(1, -1))])
    with pytest.raises(OSError, match="disk full"):
        store_import(store, imported(source, ccd_run["series"], [spectrum]), cell_id="c", area_cm2=1.0)
    assert store.registry.list() == [] and not any((tmp_path / "store" / "runs").iterdir())


class Export:
    """A LANDdt export of a recorded series that gains ``chunk`` records each time the follower sleeps."""

    def __init__(self, path: Path, series: pd.DataFrame, chunk: int, partial: bool = False) -> None:
        self.growing, self.chunk, self.partial, self.total = GrowingExport(series, path), chunk, partial, len(series)
        self.path = path
        self.growing.append(chunk, partial=partial)

    @property
    def rows(self) -> int:
        return self.growing.written

    def grow(self, _seconds: float) -> None:
        if self.rows < self.total:
            self.growing.append(self.chunk, partial=self.partial)


def ccd_analysis(area_cm2: float) -> Analysis:
    return CCDProcedure(electrode_area=area_cm2).analysis()


@pytest.mark.parametrize("name", ["land.csv", "land.xlsx"])
def test_following_a_growing_land_export_stores_every_row_and_finds_the_short_within_one_export(tmp_path, ccd_run,
                                                                                                name):
    series, area = ccd_run["series"], ccd_run["area"]
    chunk = 200 if name.endswith(".csv") else 1000  # LANDdt rewrites a whole workbook: fewer, larger exports
    export = Export(tmp_path / name, series, chunk, partial=name.endswith(".csv"))
    rows_at_event: list[int] = []
    follower = Follower(Store(tmp_path / "store"), export.path, read_land, "LLZTO-17", area, ccd_analysis(area),
                        procedure="follow-ccd", idle_s=1e9, poll_s=1.0, sleep=export.grow)
    follower.should_stop = lambda: export.rows == export.total and follower._stored == export.total
    original_event = follower._event

    def event(folder, record):
        if record["kind"] == "hard_short":
            rows_at_event.append(follower._stored)
        original_event(folder, record)

    follower._event = event
    outcome = follower.run()
    stored = pd.read_csv(outcome.folder / TIMESERIES)
    assert len(stored) == len(series)
    for column, rounding in (("Test Time / s", 1e-3), ("Voltage / V", 5e-5), ("Current / A", 5e-8)):  # LANDdt's digits
        assert stored[column].to_numpy() == pytest.approx(series[column].to_numpy(), abs=rounding * 1.001)
    assert outcome.result["ccd_mA_cm2"] == ccd_run["result"]["ccd_mA_cm2"]
    events = [json.loads(line) for line in (outcome.folder / EVENTS).read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "following" and "cannot stop the instrument's channel" in events[0]["message"]
    assert kinds.count("hard_short") == 1 and "test_failed" in kinds
    # the short is reported with the export that holds its confirmation, not later
    confirmed_row = int((series["Test Time / s"] >= ccd_run["result"]["failure_confirmed_time_h"] * 3600 - 1e-6).idxmax())
    assert rows_at_event[0] - confirmed_row <= chunk


def test_following_ends_when_the_export_stops_growing(tmp_path, ccd_run):
    export = Export(tmp_path / "land.csv", ccd_run["series"].iloc[:500], chunk=100)
    follower = Follower(Store(tmp_path / "store"), export.path, read_land, "c", None, poll_s=60.0, idle_s=0.0,
                        sleep=export.grow)
    outcome = follower.run()
    assert outcome.status == "finished" and len(pd.read_csv(outcome.folder / TIMESERIES)) == 100
    assert Store(tmp_path / "store").registry.get(outcome.run_id).status == "finished"


def test_an_export_written_over_by_a_new_test_ends_the_run(tmp_path, ccd_run):
    export = Export(tmp_path / "land.csv", ccd_run["series"], chunk=300)

    def new_test(_seconds: float) -> None:
        export.path.unlink()
        GrowingExport(ccd_run["series"], export.path).append(10)

    follower = Follower(Store(tmp_path / "store"), export.path, read_land, "c", None, poll_s=1.0, sleep=new_test)
    outcome = follower.run()
    kinds = [json.loads(line)["kind"] for line in (outcome.folder / EVENTS).read_text().splitlines()]
    assert outcome.status == "finished" and kinds[-1] == "export_restarted"


def test_a_file_that_is_not_an_export_starts_nothing(tmp_path):
    path = tmp_path / "land.csv"
    path.write_text("not, an, export")

    def read(p: Path) -> Imported:
        raise FormatError(f"{p}: not a LAND export")

    store = Store(tmp_path / "store")
    with pytest.raises(FormatError):
        Follower(store, path, read, "c", None).run()
    assert not (tmp_path / "store" / "runs").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["nowhere.xlsx"], "nowhere.xlsx: no such file"),
    (["--area", "1", "--diameter", "12", "x.csv"], "give one of them, not both"),
    (["--area", "nan", "x.csv"], "--area: nan cm²"),
    (["--format", "neware", "x.csv"], "'neware' is not a format labctl imports"),
    (["x.bin"], "does not recognise .bin"),
    (["--cell-id", "bad\x07id", "x.csv"], "--cell-id: 'bad\\x07id' is empty or holds control characters"),
    (["--cell-id", " ", "x.csv"], "--cell-id: ' ' is empty"),
])
def test_import_refuses_bad_input_and_stores_nothing(tmp_path, args, message):
    for name in ("x.csv", "x.bin"):
        (tmp_path / name).write_text("a,b\n1,2\n")
    args = [str(tmp_path / a) if a.startswith(("x.", "nowhere")) else a for a in args]
    result = cli.invoke(app, ["import", *args, "--store", str(tmp_path / "store")])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert not (tmp_path / "store" / "runs").exists()


def test_labctl_import_of_a_land_export_analyses_like_the_run_it_came_from(tmp_path, ccd_run):
    path = tmp_path / "LLZTO-17_20261207_113-1_3.xlsx"
    write_xlsx(ccd_run["series"], path)
    store = str(tmp_path / "store")
    result = cli.invoke(app, ["import", str(path), "--diameter", "12", "--store", store, "--json"])
    assert result.exit_code == 0, result.output
    [stored] = json.loads(result.stdout)
    folder = Path(stored["folder"])
    assert stored["rows"] == len(ccd_run["series"]) and bdf.validate(folder / TIMESERIES)["ok"]
    metadata = read_json(folder / METADATA)
    assert metadata["cell"] == {"id": path.stem, "area_cm2": pytest.approx(ccd_run["area"])}
    assert metadata["instruments"]["source"]["make"] == "LAND"
    analysed = cli.invoke(app, ["analyze", "ccd", str(folder / TIMESERIES), "--area", str(ccd_run["area"]), "--json"])
    ccd = json.loads(analysed.stdout)
    for key in ("ccd_mA_cm2", "failure_mode", "failure_cycle", "j_last_pass_mA_cm2"):
        assert ccd[key] == ccd_run["result"][key]


def test_labctl_follow_land_runs_the_detector_and_ends_when_the_export_is_idle(tmp_path, ccd_run):
    path = tmp_path / "export.csv"
    GrowingExport(ccd_run["series"], path).append(len(ccd_run["series"]))
    result = cli.invoke(app, ["follow", "land", str(tmp_path), "--procedure", "ccd", "--diameter", "12", "--idle",
                              "0.005", "--poll", "0.05", "--store", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    assert "finished" in result.output and "hard short" in result.output
    [record] = Store(tmp_path / "store").registry.list()
    assert record.procedure == "follow-ccd" and record.status == "finished" and record.cell_id == "export"


@pytest.mark.parametrize(("args", "message"), [
    (["--procedure", "eis", "--area", "1"], "--procedure: 'eis' cannot be followed"),
    (["--procedure", "ccd"], "--area: give the electrode area"),
    (["--procedure", "ccd", "--area", "1", "-p", "stop_density=-1"], "--param stop_density"),
    (["--idle", "0"], "--idle: 0.0 min"),
])
def test_labctl_follow_refuses_bad_options_and_starts_nothing(tmp_path, ccd_run, args, message):
    GrowingExport(ccd_run["series"].iloc[:10], tmp_path / "export.csv").append(10)
    result = cli.invoke(app, ["follow", "land", str(tmp_path / "export.csv"), *args, "--store", str(tmp_path / "s")])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert not (tmp_path / "s" / "runs").exists()


def test_a_folder_given_as_a_file_is_named_as_such(tmp_path):
    result = cli.invoke(app, ["import", str(tmp_path), "--store", str(tmp_path / "store")])
    assert result.exit_code == 2 and "a folder, not a file" in " ".join(result.output.split())
