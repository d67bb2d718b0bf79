"""Deposition on the simulated bench: procedure → SQM-160 driver → PyVISA serial → pty → emulator → store.

What it must do (PROTOCOLS.md §4, issue "Sputter-rate monitor and interlayer deposition"): a W/Mg stack to its
targets with the log in the store, a crystal failing mid-layer handled, the operator asked where the shutter is
worked by hand, low crystal life warned, rate calibration, tooling calibration, and cells naming their film.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from labctl.bench import open_bench
from labctl.cli import app
from labctl.engine.runner import Listeners, Runner
from labctl.procedures.base import ParameterError, set_parameters
from labctl.procedures.deposition import DepositionProcedure, parse_stack
from labctl.sim_instruments.bench import SimBench
from labctl.sim_instruments.cells import SymmetricCell
from labctl.sim_instruments.sqm160 import MonitorSetup
from labctl.store import Store
from labctl.store.folder import EVENTS, METADATA, PLAIN_TIMESERIES, RESULTS, TIMESERIES, read_json

cli = CliRunner()
FAST = ["-p", "sample_interval=5"]
COLUMNS = ["Test Time / s", "Layer / 1", "Rate / A/s", "Thickness / nm", "Frequency / Hz", "Crystal Life / %"]


def run_json(*args: str, code: int = 0) -> dict:
    result = cli.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def events(folder: str | Path) -> list[dict]:
    return [json.loads(line) for line in (Path(folder) / EVENTS).read_text().splitlines()]


@pytest.fixture
def bench_file(tmp_path):
    """``bench_file(**monitor_setup)``: a simulated bench with that SQM-160 setup, as (SimBench, bench file)."""
    benches = []

    def make(**setup):
        sim = SimBench(
            lambda n: SymmetricCell("bare", area_cm2=1.13), channels=1, speed=None, rate_monitor=MonitorSetup(**setup)
        )
        benches.append(sim)
        path = tmp_path / f"bench-{len(benches)}.toml"
        path.write_text(sim.config_toml())
        return sim, str(path)

    yield make
    for sim in benches:
        sim.close()


def run_procedure(bench: str, listeners: Listeners | None = None, **params: str):
    procedure = DepositionProcedure()
    set_parameters(procedure, {"sample_interval": "5", **params})
    with open_bench(bench) as opened:
        return Runner(Store(), listeners or Listeners()).run(procedure, opened)


# --- the stack, end to end ---


def test_the_wang_stack_from_the_cli_reaches_its_targets_with_the_log_in_the_store():
    out = run_json("run", "deposition", "--bench", "sim", *FAST)
    assert out["status"] == "finished"
    layers = out["result"]["film"]["layers"]
    assert [(x["material"], x["target_nm"], x["power_W"]) for x in layers] == [("W", 30, 200), ("Mg", 140, 150)]
    for layer in layers:
        assert layer["monitor_nm"] == pytest.approx(layer["target_nm"], abs=0.1)
        assert layer["ended_by"] == "target" and layer["mean_rate_A_s"] == pytest.approx(1.0, rel=0.05)
        assert layer["end_frequency_Hz"] < layer["start_frequency_Hz"]
    assert out["result"]["film"]["stack"] == "W 30.0 nm | Mg 140.0 nm"
    folder = Path(out["folder"])
    series = pd.read_csv(folder / PLAIN_TIMESERIES)
    assert list(series.columns) == COLUMNS
    assert not (folder / TIMESERIES).exists()  # not BDF: no voltage, no current
    assert read_json(folder / METADATA)["time_series"]["file"] == PLAIN_TIMESERIES
    assert series["Test Time / s"].is_monotonic_increasing and set(series["Layer / 1"]) == {1, 2}
    by_layer = series.groupby("Layer / 1")["Thickness / nm"].max()
    assert by_layer[1] == pytest.approx(30.0, abs=0.1) and by_layer[2] == pytest.approx(140.0, abs=0.1)
    assert series["Frequency / Hz"].is_monotonic_decreasing or series["Frequency / Hz"].diff().max() < 1.0
    kinds = [e["kind"] for e in events(folder)]
    assert kinds == ["layer_started", "layer_ended", "layer_started", "layer_ended"]


def test_the_substrate_gets_the_stack(bench_file):
    sim, bench = bench_file(seed=2)
    outcome = run_procedure(bench)
    assert outcome.status == "finished"
    assert sim.rate_monitor.substrate_thickness_nm == pytest.approx(170.0, abs=0.2)
    assert not sim.rate_monitor.shutter_open


# --- the crystal ---


def test_a_crystal_failing_mid_layer_stops_the_layer_and_fails_the_run_with_its_data(bench_file):
    sim, bench = bench_file(fail_at_s=150.0)
    out = run_json("run", "deposition", "--bench", bench, *FAST, code=1)
    assert out["status"] == "failed"
    assert "crystal failed in layer 1 (W)" in out["error"] and "shutter closed" in out["error"]
    assert not sim.rate_monitor.shutter_open
    film = out["result"]["film"]["layers"]
    assert len(film) == 1 and film[0]["ended_by"] == "crystal_failure" and 10 < film[0]["monitor_nm"] < 25
    folder = Path(out["folder"])
    series = pd.read_csv(folder / PLAIN_TIMESERIES)
    assert series["Frequency / Hz"].iloc[-1] == 0 and series["Frequency / Hz"].iloc[-2] > 5e6
    assert read_json(folder / RESULTS)["headline"].startswith("crystal failed in layer 1")
    assert [e["kind"] for e in events(folder)][-2:] == ["crystal_failure", "fault"]
    listed = run_json("runs", "show", out["run_id"])
    assert listed["run"]["status"] == "failed"


def test_low_crystal_life_is_warned_once(bench_file):
    _, bench = bench_file(crystal_life_pct=5.0)
    outcome = run_procedure(bench, stack="W:19.3:0.163:100:5;Mg:1.74:1.61:100:5")
    assert outcome.status == "finished"
    warnings = [e for e in events(outcome.folder) if e["kind"] == "crystal_life_low"]
    assert len(warnings) == 1 and warnings[0]["crystal_life_pct"] == pytest.approx(5.0, abs=0.01)


# --- a shutter worked by hand ---


def test_the_operator_is_asked_to_open_and_close_a_hand_worked_shutter(bench_file):
    sim, bench = bench_file(shutter_wired=False)
    asked = []

    def operator(event):
        if event["kind"] == "operator_action":
            asked.append(event["action"])
            sim.rate_monitor.operate_shutter(event["action"] == "open_shutter")

    outcome = run_procedure(bench, Listeners(event=operator), stack="W:19.3:0.163:100:10;Mg:1.74:1.61:100:20")
    assert outcome.status == "finished"
    assert asked == ["open_shutter", "close_shutter"] * 2
    for layer, target in zip(outcome.result["film"]["layers"], (10, 20), strict=True):
        assert target <= layer["monitor_nm"] <= target + 0.6  # overshoot: one sample at 1 Å/s at most
    assert sim.rate_monitor.substrate_thickness_nm == pytest.approx(30.0, abs=1.0)


def test_an_operator_who_never_comes_fails_the_run(bench_file):
    _, bench = bench_file(shutter_wired=False)
    outcome = run_procedure(bench, operator_timeout="20")
    assert outcome.status == "failed" and "nobody did 'open the shutter' within 20 s" in outcome.error


# --- calibration ---


def test_rate_calibration_reports_mean_rate_and_spread_at_the_power(bench_file):
    _, bench = bench_file(rate_A_s=1.5)
    outcome = run_procedure(bench, mode="calibrate", sample_interval="1", calibration_time="120")
    assert outcome.status == "finished"
    w, mg = outcome.result["calibration"]
    assert (w["material"], w["power_W"], mg["power_W"]) == ("W", 200, 150)
    assert w["mean_rate_A_s"] == pytest.approx(1.5, rel=0.05) and 0 < w["rate_sd_A_s"] < 0.15
    assert w["samples"] >= 100 and w["time_to_target_s"] == pytest.approx(300 / w["mean_rate_A_s"])
    assert "W 1." in outcome.result["headline"] and "at 200 W" in outcome.result["headline"]


def test_tooling_calibrated_from_a_measured_film_brings_the_next_film_to_target(bench_file):
    sim, bench = bench_file(geometry_tooling_pct=112.0)
    assert run_procedure(bench, stack="W:19.3:0.163:100:30").status == "finished"
    measured = sim.rate_monitor.substrate_thickness_nm  # what FIB-SEM would find
    out = run_json(
        "deposition", "calibrate-tooling", "--tooling", "100", "--measured", f"{measured:.2f}", "--monitor", "30"
    )
    assert out["tooling_new_pct"] == pytest.approx(112.0, abs=0.1)
    before = sim.rate_monitor.substrate_thickness_nm
    assert run_procedure(bench, stack=f"W:19.3:0.163:{out['tooling_new_pct']}:30").status == "finished"
    assert sim.rate_monitor.substrate_thickness_nm - before == pytest.approx(30.0, abs=0.1)


@pytest.mark.parametrize(("args", "tooling", "code"), [
    (["--tooling", "100", "--measured", "33", "--monitor", "30"], 110.0, 0),
    (["--tooling", "90", "--measured", "31", "--monitor", "30", "--measured", "29.4", "--monitor", "30"], 90.6, 0),
    (["--tooling", "300", "--measured", "60", "--monitor", "30"], 600.0, 2),
])  # fmt: skip
def test_calibrate_tooling(args, tooling, code):
    out = run_json("deposition", "calibrate-tooling", *args, code=code)
    assert out["tooling_new_pct"] == tooling and out["in_monitor_range"] == (code == 0)


def test_calibrate_tooling_needs_a_monitor_thickness_per_measurement():
    result = cli.invoke(
        app,
        [
            "deposition",
            "calibrate-tooling",
            "--tooling",
            "100",
            "--measured",
            "33",
            "--measured",
            "32",
            "--monitor",
            "30",
        ],
    )
    assert result.exit_code == 2 and "one --monitor thickness for each --measured" in result.output


# --- bad film parameters ---


@pytest.mark.parametrize(("stack", "message"), [
    ("W:19.3:0.163:100", "layer 1 (W): 'W:19.3:0.163:100' has 4 fields"),
    ("W:19.3:0.163:100:30;Mg:0.1:1.61:100:140", "layer 2 (Mg): density '0.1' is not a number from 0.5"),
    ("W:19.3:abc:100:30", "layer 1 (W): Z-ratio 'abc'"),
    ("W:19.3:0.163:500:30", "layer 1 (W): tooling '500' is not a number from 10 to 399 %"),
    ("W:19.3:0.163:100:0", "layer 1 (W): target '0'"),
    ("W:19.3:0.163:100:30:-5", "layer 1 (W): power '-5'"),
    ("Tungsten99:19.3:0.163:100:30", "material 'Tungsten99' must be 1-8"),
    (" ; ", "stack: empty"),
])  # fmt: skip
def test_bad_film_parameters_are_refused_naming_layer_and_field(stack, message):
    with pytest.raises(ParameterError, match="^stack: ") as caught:
        parse_stack(stack)
    assert message in str(caught.value)
    result = cli.invoke(app, ["run", "deposition", "--bench", "sim", "-p", f"stack={stack}"])
    assert result.exit_code == 2 and "stack:" in result.output


def test_a_stack_with_spaces_and_without_power():
    layers = parse_stack(" Ag : 10.5 : 0.529 : 95.5 : 100 ")
    assert [(x.material, x.density_g_cm3, x.z_ratio, x.tooling_pct, x.target_nm, x.power_W) for x in layers] == [
        ("Ag", 10.5, 0.529, 95.5, 100.0, None)
    ]


# --- provenance ---


def test_a_ccd_run_names_its_film_and_runs_show_prints_the_stack():
    film = run_json("run", "deposition", "--bench", "sim", *FAST)
    ccd = run_json("run", "ccd", "--bench", "sim", "-p", "stop_density=0.2", "-p", f"film_run={film['run_id']}")
    metadata = read_json(Path(ccd["folder"]) / METADATA)
    assert metadata["cell"]["film_run"] == film["run_id"]
    shown = cli.invoke(app, ["runs", "show", ccd["run_id"]])
    assert shown.exit_code == 0
    film_line = f"Film: {film['run_id']} (deposition, finished): W 30.0 nm | Mg 140.0 nm by monitor"
    assert film_line in " ".join(shown.output.split())  # the console wraps long lines
    for bad, why in ((film["run_id"] + "x", "no such run"), (ccd["run_id"], "is a ccd run, not a deposition run")):
        refused = cli.invoke(app, ["run", "ccd", "--bench", "sim", "-p", f"film_run={bad}"])
        assert refused.exit_code == 2 and why in " ".join(refused.output.split())
    assert len(Store().registry.list()) == 2  # nothing ran for the refused film


def test_a_stop_mid_layer_closes_the_shutter_and_keeps_the_data(bench_file):
    sim, bench = bench_file()
    procedure = DepositionProcedure()
    set_parameters(procedure, {"sample_interval": "5"})
    with open_bench(bench) as opened:
        runner = Runner(Store())
        rows = []

        def sample(row):
            rows.append(row)
            if len(rows) == 10:
                runner.request_stop()

        runner.listeners = Listeners(sample=sample)
        outcome = runner.run(procedure, opened)
    assert outcome.status == "aborted" and not sim.rate_monitor.shutter_open
    assert outcome.result["headline"].startswith("stopped after 1 of 2 layers: W ")
    assert len(pd.read_csv(outcome.folder / PLAIN_TIMESERIES)) == len(rows) >= 10
