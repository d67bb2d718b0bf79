"""Half-cell activation at 0.05 mA/cm² between 0 and 1 V (Wang et al., Fig. S7) on the simulated bench."""

from __future__ import annotations

import json

import bdf
import pandas as pd
import pytest
from typer.testing import CliRunner

from labctl.cli import app
from labctl.store.folder import TIMESERIES

cli = CliRunner()


def run(*args: str) -> dict:
    result = cli.invoke(app, ["run", "activation", "--bench", "sim", *args, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["status"] == "finished"
    return out


@pytest.mark.parametrize(("cell", "reversible", "ice"), [("Mg/W-Cu", 0.23, 72), ("Mg-Cu", 0.17, 66)])
def test_an_alloying_film_gives_the_papers_reversible_capacity_and_ice(cell, reversible, ice):
    out = run("--cell", cell)
    r = out["result"]
    assert r["reversible_mAh_cm2"] == pytest.approx(reversible, abs=0.01)
    assert r["ice_percent"] == pytest.approx(ice, abs=1.5)
    first = r["cycles"][0]
    assert first["lithiation_end"] == first["delithiation_end"] == "voltage"
    assert first["irreversible_mAh_cm2"] == pytest.approx(first["lithiation_mAh_cm2"] - reversible, abs=0.01)
    series = pd.read_csv(f"{out['folder']}/{TIMESERIES}")
    assert bdf.validate(f"{out['folder']}/{TIMESERIES}")["ok"]
    lithiating = series[series["Current / A"] < 0]
    # 0.05 mA/cm², and lithiation stops at 0 V: no lithium metal was plated
    assert (lithiating["Current / A"] * 1000 / 1.131).abs().median() == pytest.approx(0.05, rel=0.01)
    assert lithiating["Voltage / V"].min() > -0.01
    assert series[series["Current / A"] > 0]["Voltage / V"].max() < 1.01  # delithiation stops at 1 V
    assert "ICE" in r["headline"] and "mAh/cm²" in r["headline"]


def test_an_inert_collector_shows_negligible_capacity():
    r = run("--cell", "Cu")["result"]
    assert r["cycles"][0]["lithiation_mAh_cm2"] < 0.001
    assert r["ice_percent"] is None
    assert "negligible" in r["headline"]


def test_a_half_cycle_that_reaches_its_time_limit_is_flagged():
    r = run("-p", "time_limit=2")["result"]  # 2 h at 0.05 mA/cm² lithiate 0.1 of ≈0.31 mAh/cm²
    first = r["cycles"][0]
    assert first["lithiation_end"] == "time"
    assert first["lithiation_mAh_cm2"] == pytest.approx(0.1, rel=0.01)
    assert "lithiation ended by its time limit" in r["headline"]


def test_a_window_upside_down_is_refused(tmp_path):
    result = cli.invoke(app, ["run", "activation", "-p", "lower_cutoff=1.2", "--store", str(tmp_path)])
    assert result.exit_code == 2
    assert "lower_cutoff" in result.output and "upper_cutoff" in result.output
