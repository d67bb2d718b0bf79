"""`labctl analyze eis` over every spectrum of a run: the fitted series against test time, cycle and step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from labctl.analysis.circuits import parse_circuit
from labctl.analysis.eis_series import analyze_series
from labctl.cli import app
from labctl.store.folder import EVENTS, SPECTRA, RunFolder

cli = CliRunner()


CIRCUIT = "R0-p(R1,CPE1)-W1"
AREA = 1.131  # cm²
R1_GROWTH = (10.0, 20.0, 40.0)  # ohm: an interface losing contact, spectrum by spectrum
R0 = 30.0  # ohm


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> Path:
    """A run folder as the store writes it: three spectra of a cell whose interfacial arc grows, with their test
    time, cycle, step and the moment each was taken."""
    folder = RunFolder(tmp_path_factory.mktemp("store") / "run", ["Test Time / s"])
    f = np.logspace(6, 0, 37)
    for index, r1 in enumerate(R1_GROWTH, start=1):
        z = parse_circuit(CIRCUIT).impedance(f, [R0, r1, 2e-6, 0.9, 20.0])
        folder.add_spectrum(index, 3600.0 * index, index, 2 * index, list(zip(f.tolist(), z.tolist(), strict=True)))
        folder.event("spectrum", index=index, when=f"after cycle {index}")
    folder.write_metadata({"cell": {"area_cm2": AREA}, "parameters": {"circuit": {"value": CIRCUIT},
                                                                     "thickness": {"value": 0.0}}})
    folder.close()
    return folder.path


@pytest.fixture(scope="module")
def insitu_run(tmp_path_factory) -> Path:
    """An in-situ EIS run on the simulated bench: a spectrum every hour of current and one at the end of the cycle."""
    store = tmp_path_factory.mktemp("store")
    result = cli.invoke(app, ["run", "insitu-eis", "--bench", "sim", "-p", "cycles=1", "-p", "eis_interval=60",
                              "-p", "points_per_decade=5", "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["folder"])


def analyze(*args: str) -> dict:
    result = cli.invoke(app, ["analyze", "eis", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def live_spectra(folder: Path) -> list[dict]:
    events = [json.loads(line) for line in (folder / EVENTS).read_text().splitlines()]
    return [e for e in events if e["kind"] == "spectrum"]


def test_a_run_folder_gives_every_spectrum_fitted_against_time_cycle_and_step(synthetic_run):
    out = analyze(str(synthetic_run))  # area and circuit from the run's metadata
    rows = out["spectra"]
    assert [r["spectrum"] for r in rows] == [1, 2, 3]
    assert [r["test_time_h"] for r in rows] == pytest.approx([1.0, 2.0, 3.0])
    assert [(r["cycle"], r["step"], r["when"]) for r in rows] == [(1, 2, "after cycle 1"), (2, 4, "after cycle 2"),
                                                                 (3, 6, "after cycle 3")]
    for row, r1 in zip(rows, R1_GROWTH, strict=True):
        assert row["R_b_ohm"] == pytest.approx(R0, rel=1e-3)
        assert row["R_tot_ohm"] == pytest.approx(R0 + r1, rel=1e-3)
        assert row["fitted_ohm"] == pytest.approx({"R0": R0, "R1": r1}, rel=1e-3)
        assert row["kk_pass"] is True
    assert out["headline"].startswith("3 spectra over 2 h; R_b 30 Ω → 30 Ω, R_tot 40 Ω → 70 Ω; KK pass 3/3")


def test_the_series_of_a_simulated_run_is_its_live_fit(insitu_run):
    out = analyze(str(insitu_run))
    rows, live = out["spectra"], live_spectra(insitu_run)
    assert len(rows) == len(live) >= 5
    stored = pd.read_csv(insitu_run / SPECTRA).groupby("Spectrum Index / 1").first()
    for row, event in zip(rows, live, strict=True):
        assert row["spectrum"] == event["index"]
        assert row["when"] == event["when"]
        assert row["test_time_h"] == pytest.approx(stored.loc[row["spectrum"], "Test Time / s"] / 3600)
        assert row["cycle"] == stored.loc[row["spectrum"], "Cycle Count / 1"]
        assert row["step"] == stored.loc[row["spectrum"], "Step Count / 1"]
        # the offline fit of each stored spectrum is the live one
        assert row["R_tot_ohm"] == pytest.approx(event["R_tot_ohm"], rel=1e-6)
        assert row["R_b_ohm"] == pytest.approx(event["R_b_ohm"], rel=1e-6)
        assert set(row["fitted_ohm"]) == {"R0", "R1", "R2"}  # the run's two-arc circuit
        assert row["kk_pass"] is True
    assert f"{len(rows)} spectra" in out["headline"]


def test_the_csv_with_an_area_gives_the_same_series_and_a_table(synthetic_run, tmp_path):
    (tmp_path / "z.csv").write_text((synthetic_run / SPECTRA).read_text())  # outside its run: no metadata
    from_file = analyze(str(tmp_path / "z.csv"), "--area", str(AREA), "--circuit", CIRCUIT)
    assert [r["R_tot_ohm"] for r in from_file["spectra"]] == [r["R_tot_ohm"] for r in analyze(str(synthetic_run))["spectra"]]
    assert {r["when"] for r in from_file["spectra"]} == {None}
    table = cli.invoke(app, ["analyze", "eis", str(synthetic_run)], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "R_tot / Ω" in table.output and "after cycle 3" in table.output and "70" in table.output


def test_one_spectrum_of_several_keeps_the_single_spectrum_result(synthetic_run):
    out = analyze(str(synthetic_run), "--spectrum", "3")
    assert out["spectrum"] == 3 and "fit" in out and "spectra" not in out


def test_a_spectrum_cut_short_is_reported_and_the_others_still_fitted(synthetic_run):
    df = pd.read_csv(synthetic_run / SPECTRA)
    cut = df[(df["Spectrum Index / 1"] != 2) | (df["Frequency / Hz"] > 1e5)]  # spectrum 2 stopped after 6 points
    rows = analyze_series(cut, AREA, circuit=CIRCUIT)
    assert rows[1].spectrum == 2 and rows[1].error and rows[1].R_tot_ohm is None
    assert all(r.error is None and r.R_tot_ohm for r in rows if r.spectrum != 2)


def test_a_csv_without_a_run_needs_the_area(tmp_path, synthetic_run):
    (tmp_path / "z.csv").write_text((synthetic_run / SPECTRA).read_text())
    result = cli.invoke(app, ["analyze", "eis", str(tmp_path / "z.csv")])
    assert result.exit_code == 2
    assert "--area" in result.output and "cm²" in result.output
