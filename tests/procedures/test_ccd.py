"""The whole CCD on the simulated bench: procedure → Arbin driver → TCP → emulator → cell model → store."""

from __future__ import annotations

import json
from contextlib import contextmanager

import bdf
import pandas as pd
import pytest
from typer.testing import CliRunner

from labctl.analysis.ccd import analyze_ccd, load_bdf_csv
from labctl.bench import open_bench
from labctl.cli import app
from labctl.engine.runner import Listeners, Runner
from labctl.procedures.ccd import CCDProcedure
from labctl.sim_instruments.bench import SimBench
from labctl.sim_instruments.cells import SymmetricCell
from labctl.sim_instruments.presets import PRESETS
from labctl.store import Store
from labctl.store.folder import EVENTS, METADATA, TIMESERIES, read_json

cli = CliRunner()


def run_cli(*args: str):
    result = cli.invoke(app, list(args))
    return result, (json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None)


def run_ccd(tmp_path, preset="bare", seed=0, listeners=None, **params):
    procedure = CCDProcedure(**params)
    store = Store(tmp_path / "store")
    with open_bench("sim", sim_overrides={"cell": preset, "seed": seed}, sim_defaults=procedure.sim_defaults()) as bench:
        runner = Runner(store, listeners or Listeners())
        return runner, runner.run(procedure, bench), store


def test_default_run_from_the_cli_reports_ccd_and_leaves_a_valid_bdf_folder():
    result, out = run_cli("run", "ccd", "--bench", "sim", "--json")
    assert result.exit_code == 0, result.output
    assert out["status"] == "finished"
    ccd = out["result"]
    assert ccd["failure_mode"] == "hard_short"
    assert ccd["ccd_mA_cm2"] == pytest.approx(0.6, abs=0.1 + 1e-9)
    assert ccd["j_last_pass_mA_cm2"] == pytest.approx(ccd["ccd_mA_cm2"] - 0.1)
    folder = out["folder"]
    series = f"{folder}/{TIMESERIES}"
    assert bdf.validate(series)["ok"]
    metadata = read_json(__import__("pathlib").Path(folder) / METADATA)
    assert metadata["status"] == "finished"
    assert metadata["instruments"]["cycler"]["make"] == "Arbin"
    assert metadata["parameters"]["start_density"] == {"label": "Start current density", "value": 0.1,
                                                       "units": "mA/cm²"}
    # the offline analysis of the stored file gives the live answer
    offline = analyze_ccd(load_bdf_csv(series), metadata["cell"]["area_cm2"]).to_dict()
    for key in ("ccd_mA_cm2", "failure_mode", "j_last_pass_mA_cm2", "failure_cycle", "failure_time_h"):
        assert offline[key] == ccd[key]
    _listed, runs = run_cli("runs", "list", "--json")
    assert [r["status"] for r in runs] == ["finished"]
    _shown, run = run_cli("runs", "show", out["run_id"], "--json")
    assert run["results"]["ccd_mA_cm2"] == ccd["ccd_mA_cm2"]


@contextmanager
def served_bench(tmp_path, cell_for):
    """A simulated bench started by the test, so the test can see the cells; labctl opens it from a file."""
    with SimBench(cell_for, speed=None) as sim:
        path = tmp_path / "bench.toml"
        path.write_text(sim.config_toml(), encoding="utf-8")
        yield sim, str(path)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_each_interlayer_is_caught_at_the_step_its_cell_shorts(tmp_path, preset):
    procedure = CCDProcedure()
    cells = {}
    shorted_at = []  # current density of each sample at which the virtual cell was hard-shorted

    def cell_for(channel):
        cells[channel] = SymmetricCell(preset, area_cm2=procedure.area_cm2, seed=channel)
        return cells[channel]

    def on_sample(row):
        if cells[1].hard_shorted:
            shorted_at.append(abs(row["Current / A"]) * 1000 / procedure.area_cm2)

    with served_bench(tmp_path, cell_for) as (_, path), open_bench(path) as bench:
        outcome = Runner(Store(tmp_path / "store"), Listeners(sample=on_sample)).run(procedure, bench)
    result = outcome.result
    assert outcome.status == "finished"
    assert result["failure_mode"] == "hard_short"
    assert shorted_at, "the detector fired although the virtual cell never shorted"
    # the physics says where the cell failed; the detector, through driver and socket, must agree
    assert result["ccd_mA_cm2"] == pytest.approx(shorted_at[0], abs=1e-6)
    assert abs(result["ccd_mA_cm2"] - PRESETS[preset].patent_ccd_mA_cm2) <= 0.4 + 1e-9
    series = pd.read_csv(outcome.folder / TIMESERIES)
    assert series["Test Time / s"].is_monotonic_increasing  # the instrument's test time
    # the run stops once the short is confirmed (issue 14), which is after its onset
    assert series["Test Time / s"].iloc[-1] / 3600 == pytest.approx(result["failure_confirmed_time_h"], abs=0.01)
    assert result["failure_time_h"] < result["failure_confirmed_time_h"]


def test_same_seed_gives_the_same_run(tmp_path):
    a = pd.read_csv(run_ccd(tmp_path / "a", stop_density=0.4)[1].folder / TIMESERIES)
    b = pd.read_csv(run_ccd(tmp_path / "b", stop_density=0.4)[1].folder / TIMESERIES)
    pd.testing.assert_frame_equal(a.drop(columns="Unix Time / s"), b.drop(columns="Unix Time / s"))


def test_fixed_capacity_half_cycles_end_on_charge(tmp_path):
    _, outcome, _ = run_ccd(tmp_path, variant="fixed-capacity", half_cycle_capacity=0.2, stop_density=0.3,
                            preset="Ag|Mg")
    ended = [json.loads(line) for line in (outcome.folder / EVENTS).read_text().splitlines()]
    reasons = {e["reason"] for e in ended if e["kind"] == "segment_ended"}
    assert reasons == {"charge"}
    assert outcome.result["ccd_mA_cm2"] is None  # Ag|Mg survives 0.3 mA/cm²
    assert outcome.result["j_last_pass_mA_cm2"] == pytest.approx(0.3)


def test_stop_request_rests_the_channel_and_marks_the_run_aborted_with_data(tmp_path):
    samples = []

    def on_sample(row):
        samples.append(row)
        if len(samples) == 50:
            runner.request_stop()

    runner = Runner(Store(tmp_path / "store"), Listeners(sample=on_sample))
    procedure = CCDProcedure()
    with open_bench("sim", sim_defaults=procedure.sim_defaults()) as bench:
        outcome = runner.run(procedure, bench)
        reading = bench.cycler.read()
    assert outcome.status == "aborted" and outcome.exit_code == 130
    assert reading.current_A == 0.0 and reading.status in ("Idle", "Finished")
    assert len(pd.read_csv(outcome.folder / TIMESERIES)) == 50
    assert read_json(outcome.folder / METADATA)["status"] == "aborted"
    assert Store(tmp_path / "store").registry.get(outcome.run_id).status == "aborted"


def test_instrument_lost_mid_run_fails_the_run_with_exit_1(tmp_path):
    with served_bench(tmp_path, lambda n: SymmetricCell("bare", area_cm2=1.131, seed=n)) as (sim, path):
        seen = []

        def on_sample(row):
            seen.append(row)
            if len(seen) == 20:
                sim.cycler.close()  # the cycler PC goes away

        runner = Runner(Store(tmp_path / "store"), Listeners(sample=on_sample))
        with open_bench(path) as bench:
            outcome = runner.run(CCDProcedure(), bench)
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert "127.0.0.1" in outcome.error
    assert len(pd.read_csv(outcome.folder / TIMESERIES)) == 20
    faults = [json.loads(x) for x in (outcome.folder / EVENTS).read_text().splitlines() if '"fault"' in x]
    assert faults


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "stop_density=abc"], "stop_density"),
        (["-p", "start_density=-1"], "start_density"),
        (["-p", "stop_density=0.05"], "stop_density"),
        (["-p", "colour=red"], "colour: not a parameter"),
        (["-p", "variant=fixed-ish"], "fixed-time, fixed-capacity"),
        (["-p", "novalue"], "name=value"),
        (["--cell", "unobtainium"], "sim.cell"),
        (["--bench", "nowhere.toml"], "no bench file"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(args, message):
    result, _ = run_cli("run", "ccd", *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_long_cycling_after_a_passed_ladder_runs_past_a_thousand_cycles_at_its_own_sampling(tmp_path):
    # Wan et al.: the ladder, then the same cell at one current for thousands of hours; here 1001 short cycles
    _, outcome, _ = run_ccd(tmp_path, preset="Ag|Mg", stop_density=0.2, then_density=0.2,
                            then_half_cycle_time=0.005, then_hours=10.01, then_sample_interval=6)
    long = outcome.result["long_cycling"]
    assert outcome.status == "finished"
    assert long["ended_by"] == "completed" and long["cycles"] == 1001 and long["soft_shorts"] == []
    assert long["hours"] == pytest.approx(10.01, rel=1e-3)
    assert outcome.result["ccd_mA_cm2"] is None and outcome.result["j_last_pass_mA_cm2"] == pytest.approx(0.2)
    series = pd.read_csv(outcome.folder / TIMESERIES)
    ladder_cycles = 2 * 2  # two levels, two cycles each
    assert series["Cycle Count / 1"].max() == ladder_cycles + 1001
    in_long = series[series["Cycle Count / 1"] > ladder_cycles]
    assert in_long["Test Time / s"].diff().dropna().median() == pytest.approx(6.0)
    assert "then 0.2 mA/cm² in 0.005 h half-cycles" in outcome.result["headline"]
    assert outcome.result["headline"].endswith("no failure")


def test_a_short_in_the_long_phase_is_caught_with_the_channel_at_rest_and_the_ccd_stays_the_ladders(tmp_path):
    procedure = CCDProcedure(stop_density=0.3, then_density=1.0, then_hours=50)
    with open_bench("sim", sim_overrides={"cell": "bare"}, sim_defaults=procedure.sim_defaults()) as bench:
        outcome = Runner(Store(tmp_path / "store"), Listeners()).run(procedure, bench)
        reading = bench.cycler.read()
    long = outcome.result["long_cycling"]
    assert long["ended_by"] == "hard_short" and long["failure"]["current_density_mA_cm2"] == pytest.approx(1.0)
    assert long["hours"] < 50
    assert reading.current_A == 0.0
    assert outcome.result["ccd_mA_cm2"] is None and outcome.result["j_last_pass_mA_cm2"] == pytest.approx(0.3)
    assert "hard short at test time" in outcome.result["headline"]


def test_a_ladder_that_fails_does_not_go_on_to_long_cycling(tmp_path):
    _, outcome, _ = run_ccd(tmp_path, stop_density=1.0, then_density=0.2, then_hours=100)
    assert outcome.result["failure_mode"] == "hard_short"
    assert outcome.result["long_cycling"] is None
    assert "then" not in outcome.result["headline"]
