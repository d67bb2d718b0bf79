"""The SP-200 benches end to end: procedure → SP-200 driver → EClib bridge (a socket, a token) → EClib layer → fake
DLL → SP-200 emulator → the cell, alone or beside an Arbin; and what they refuse before anything runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import bdf
import pytest
from typer.testing import CliRunner

from labctl.bench import BenchError, load_config
from labctl.cli import app
from labctl.store.folder import METADATA, TIMESERIES, read_json

cli = CliRunner()


def run(*args: str, store: Path) -> tuple[int, dict | None, str]:
    result = cli.invoke(app, [*args, "--store", str(store), "--json"])
    out = json.loads(result.stdout) if result.exit_code in (0, 1) and result.stdout.strip() else None
    return result.exit_code, out, result.output


def test_a_ccd_on_the_sp200_alone_finds_what_the_arbin_finds(tmp_path):
    _, arbin, _ = run("run", "ccd", "--bench", "sim", store=tmp_path)
    code, sp200, output = run("run", "ccd", "--bench", "sim-sp200", store=tmp_path)
    assert code == 0, output
    for key in ("ccd_mA_cm2", "failure_mode", "j_last_pass_mA_cm2", "failure_cycle"):
        assert sp200["result"][key] == arbin["result"][key]
    # the same cell, sampled at the same times: the failure time within one sample interval (10 s)
    assert sp200["result"]["failure_time_h"] == pytest.approx(arbin["result"]["failure_time_h"], abs=10 / 3600)
    folder = Path(sp200["folder"])
    assert bdf.validate(folder / TIMESERIES)["ok"]
    metadata = read_json(folder / METADATA)
    assert metadata["instruments"]["cycler"]["model"] == "SP-200"
    # the bridge's token is a secret: never in the run's files
    options = metadata["bench"]["config"]["roles"]["cycler"]["options"]
    assert "bridge" in options and "token" not in options
    assert all("token" not in path.read_text(errors="replace") for path in folder.iterdir() if path.is_file())


def test_ce_cycling_with_spectra_at_chosen_cycles_on_the_sp200_alone(tmp_path):
    code, out, output = run("run", "ce-cycling", "--bench", "sim-sp200", "-p", "eis=true", "-p", "cycles=12",
                            "-p", "eis_cycles=1,10", store=tmp_path)
    assert code == 0, output
    eis = out["result"]["eis"]
    assert [s["cycle"] for s in eis["spectra"]] == [1, 10] and all(s["kk_pass"] for s in eis["spectra"])


def test_a_galvanostatic_spectrum_on_the_sp200_fits_like_a_potentiostatic_one(tmp_path):
    _, potentio, _ = run("run", "eis", "--bench", "sim-sp200", store=tmp_path)
    code, galvano, output = run("run", "eis", "--bench", "sim-sp200", "-p", "eis_control=galvanostatic",
                                "-p", "current_amplitude=100", store=tmp_path)
    assert code == 0, output
    for key in ("R_b_ohm", "R_tot_ohm"):
        assert galvano["result"][key] == pytest.approx(potentio["result"][key], rel=0.02)


@pytest.mark.parametrize(("bench", "params", "message"), [
    ("sim-sp200", ["-p", "start_frequency=3e6"], "3e+06 Hz is above the BioLogic SP-200's 2e+06 Hz"),
    ("sim-arbin-sp200", ["-p", "start_frequency=2.5e6"], "above the BioLogic SP-200's 2e+06 Hz"),
    ("sim", ["-p", "eis_control=galvanostatic"], "measures potentiostatically only"),
])
def test_what_the_analyzer_cannot_do_is_refused_before_the_run(tmp_path, bench, params, message):
    code, _, output = run("run", "eis", "--bench", bench, *params, store=tmp_path)
    assert code == 2 and message in " ".join(output.split())
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def write_bench(tmp_path: Path, options: str) -> str:
    path = tmp_path / "sp200.toml"
    path.write_text(f'[roles.impedance]\ndriver = "biologic-sp200"\nresource = "USB0"\n'
                    f"[roles.impedance.options]\n{options}\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("options", "message"), [
    ('bridge = "10.0.0.5:5710"', "options.token: missing"),
    ('bridge = "10.0.0.5"', "is not host:port"),
    ('bridge = "10.0.0.5:5710"\ntoken = "short"', "options.token"),
    ('eclib_dir = "C:/x"', "options.eclib_dir: not an SP-200 option"),
])
def test_bad_sp200_options_name_the_field(tmp_path, options, message):
    with pytest.raises(BenchError, match=message):
        load_config(write_bench(tmp_path, options))


def test_a_bad_address_names_what_eclib_takes(tmp_path):
    path = tmp_path / "sp200.toml"
    path.write_text('[roles.cycler]\ndriver = "biologic-sp200"\nresource = "COM3"\n', encoding="utf-8")
    with pytest.raises(BenchError, match="roles.cycler.resource: 'COM3' is not an EClib address; write USB0"):
        load_config(str(path))


@pytest.mark.skipif(sys.platform == "win32", reason="EClib loads in-process on Windows")
def test_without_a_bridge_a_posix_host_is_told_to_run_one(tmp_path):
    code, _, output = run("run", "eis", "--bench", write_bench(tmp_path, 'eclib = "C:/lib"'), "-p", "bias_from=dc_bias",
                          store=tmp_path)
    assert code == 2 and "run `labctl biologic-bridge` on the Windows PC" in " ".join(output.split())


def test_a_wrong_token_is_a_bench_error_naming_the_bridge(tmp_path):
    from labctl.bench import open_bench

    with open_bench("sim-sp200") as bench:
        bridge = bench.config.roles["impedance"].options["bridge"]
        bad = write_bench(tmp_path, f'bridge = "{bridge}"\ntoken = "not-the-token"')
        with pytest.raises(BenchError, match="roles.impedance.options.bridge: .*token"):
            open_bench(bad)


def test_a_second_labctl_runs_insitu_eis_on_a_served_sp200_bench(tmp_path):
    """`labctl sim serve sim-arbin-sp200`: the bridge and emulators in one process, the run in another."""
    serve = subprocess.Popen([sys.executable, "-m", "labctl", "sim", "serve", "sim-arbin-sp200"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("shutter_control"):
            line = serve.stdout.readline()
            assert line, f"sim serve ended early: {serve.stderr.read()}"
            lines.append(line)
        assert any(line.startswith("# sp200: 127.0.0.1:") for line in lines)
        bench = tmp_path / "served.toml"
        bench.write_text("".join(lines), encoding="utf-8")
        code, out, output = run("run", "insitu-eis", "--bench", str(bench), "-p", "cycles=1", "-p", "eis_interval=60",
                                store=tmp_path)
        assert code == 0, output
        assert out["result"]["spectra"] >= 4 and out["result"]["kk_failed_spectra"] == []
    finally:
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=30) == 0


@pytest.mark.parametrize("sp200_layout", ["alone", "impedance"])
def test_a_bridge_that_goes_away_mid_run_fails_the_run_as_an_instrument_fault_with_the_channel_stopped(
        tmp_path, sp200_layout):
    from labctl.bench import open_bench
    from labctl.engine.runner import Listeners, Runner
    from labctl.procedures.insitu_eis import InSituEISProcedure
    from labctl.sim_instruments.bench import SimBench
    from labctl.sim_instruments.cells import SymmetricCell
    from labctl.store import Store

    procedure = InSituEISProcedure(cycles=1, eis_interval=30.0)
    with SimBench(lambda n: SymmetricCell("LPSCl", area_cm2=procedure.area_cm2, seed=n), channels=1, speed=None,
                  sp200=sp200_layout) as sim:
        path = tmp_path / "bench.toml"
        path.write_text(sim.config_toml(), encoding="utf-8")
        seen: list[dict] = []

        def on_sample(row: dict) -> None:
            seen.append(row)
            if len(seen) == 200:
                sim.sp200.bridge.close()  # the Windows PC's bridge goes away: it stops what it started

        with open_bench(str(path)) as bench:
            outcome = Runner(Store(tmp_path / "store"), Listeners(sample=on_sample)).run(procedure, bench)
        assert outcome.status == "failed" and outcome.exit_code == 1
        assert "BridgeError" in outcome.error and "127.0.0.1:" in outcome.error
        assert not sim.sp200.channel.running and sim.sp200.channel.current_A == 0.0
        if sp200_layout == "impedance":  # the Arbin, which cycles, was rested by the run
            assert sim.cycler.channels[0].current_A == 0.0
