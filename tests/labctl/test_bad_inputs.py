"""Bad input is refused cleanly: exit 2, the field named on stderr, no traceback, nothing started, no run folder."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labctl.cli import app
from labctl.queue import QueueDB
from labctl.store import Store, registry_path


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store"


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def refused(result, *names: str) -> None:
    """Exit 2 naming every one of ``names``, with no traceback."""
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == 2, text
    assert result.exception is None or isinstance(result.exception, SystemExit), text
    assert "Traceback" not in text
    flat = re.sub(r"[\s│╭╮╰╯─]+", "", text)  # rich wraps long lines in boxes
    for name in names:
        assert re.sub(r"\s+", "", name) in flat, text


def no_run_folder(store) -> None:
    assert not (store / "runs").exists() or not any((store / "runs").iterdir())


def write(tmp_path, name: str, data: str | bytes):
    path = tmp_path / name
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return path


@pytest.mark.parametrize(("bench", "names"), [
    ('[sim]\narea_cm2 = inf\n', ["sim.area_cm2", "finite"]),
    ('[sim]\narea_cm2 = -inf\n', ["sim.area_cm2"]),
    ('[sim]\nseed = -1\n', ["sim.seed"]),
    ('[sim]\nchannels = true\n', ["sim.channels", "integer"]),
    ('[roles.cycler]\ndriver = "arbin-cti"\nresource = "127.0.0.1:9"\nchannel = true\n',
     ["roles.cycler.channel", "integer"]),
])  # fmt: skip
def test_bad_bench_values_are_refused_naming_the_field(tmp_path, store, bench, names):
    path = write(tmp_path, "bench.toml", bench)
    refused(invoke("run", "ccd", "--bench", path, "--store", store), *names)
    no_run_folder(store)


def test_a_non_utf8_bench_file_is_refused(tmp_path, store):
    path = write(tmp_path, "bench.toml", b'name = "bay\xff"\n')
    refused(invoke("run", "ccd", "--bench", path, "--store", store), "bench.toml", "UTF-8")
    no_run_folder(store)


def test_a_non_utf8_run_file_is_refused(tmp_path, store):
    path = write(tmp_path, "ccd.toml", b'procedure = "ccd"\ncell = "\xff"\n')
    refused(invoke("run", path, "--store", store), "ccd.toml", "UTF-8")
    no_run_folder(store)


@pytest.mark.parametrize("run_file", ['procedure = "ccd"\nseed = -3\n', 'procedure = "ccd"\nchannel = 0\n'])
def test_bad_numbers_in_a_run_file_are_refused(tmp_path, store, run_file):
    path = write(tmp_path, "ccd.toml", run_file)
    refused(invoke("run", path, "--store", store), "ccd.toml", "seed" if "seed" in run_file else "channel")
    no_run_folder(store)


def test_a_negative_seed_is_refused_by_run(store):
    refused(invoke("run", "ccd", "--seed", "-1", "--store", store), "--seed", "0 or more")
    no_run_folder(store)


def test_a_negative_seed_is_not_queued(store):
    refused(invoke("queue", "add", "ccd", "--seed", "-1", "--store", store), "--seed")
    Store(store).close()
    assert QueueDB(registry_path(store)).entries() == []


@pytest.mark.parametrize("command", [("runs", "list"), ("runs", "show", "x"), ("run", "ccd"), ("queue", "list")])
def test_a_file_given_as_store_is_refused(tmp_path, command):
    not_a_folder = write(tmp_path, "notes.txt", "not a store\n")
    refused(invoke(*command, "--store", not_a_folder), "--store", "notes.txt", "folder")
    assert not_a_folder.read_text() == "not a store\n"


@pytest.mark.parametrize("command", [("runs", "list"), ("run", "ccd"), ("queue", "list")])
def test_a_corrupt_registry_is_refused_naming_the_file_and_the_fix(store, command):
    store.mkdir()
    (store / "registry.sqlite").write_bytes(b"this is no SQLite database, it was overwritten" * 100)
    refused(invoke(*command, "--store", store), "registry.sqlite", "move it aside")
    no_run_folder(store)


def test_procedure_defaults_are_shown_as_written_not_as_emoji_or_markup():
    result = CliRunner().invoke(app, ["procedures", "deposition"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "W:19.3:0.163:100:30:200" in result.output
    assert "💯" not in result.output


MARKUP = "Ag-[bold]7[/bold]:100:"


def registered_run(store) -> str:
    """A run whose cell id and error are text a user typed that looks like rich markup and emoji codes."""
    from labctl.store.folder import METADATA, write_json_atomic

    folder = store / "runs" / "r1"
    folder.mkdir(parents=True)
    write_json_atomic(folder / METADATA, {"parameters": {"cell_id": {"value": MARKUP, "units": None}},
                                          "cell": {"cell_id": MARKUP}})
    registry = Store(store).registry
    registry.add("r1", procedure="ccd", bench="sim", cell_id=MARKUP, folder=folder)
    registry.finish("r1", "failed", {"error": f"cell {MARKUP} [/x]"})
    return "r1"


@pytest.mark.parametrize("command", [("runs", "list"), ("runs", "show", "r1")])
def test_user_text_in_runs_is_shown_as_written(store, command):
    registered_run(store)
    result = CliRunner().invoke(app, [*command, "--store", str(store)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert MARKUP in result.output
    assert "💯" not in result.output


def test_an_all_zero_spectrum_is_refused(tmp_path):
    rows = "".join(f"{10.0 ** (6 - k / 4)},0,0\n" for k in range(30))
    path = write(tmp_path, "zero.csv", "Frequency / Hz,Real Impedance / ohm,Imaginary Impedance / ohm\n" + rows)
    refused(invoke("analyze", "eis", path, "--area", "1"), "0 Ω", "re-measure")


def full_cell_csv(tmp_path, cycles: int = 3):
    """Full-cell cycles at 1 mA on 1 cm²: a 1 h charge 3.6 → 4.3 V and a 0.95 h discharge 4.1 → 2.8 V, a minute
    apart, a row a minute."""
    lines, t, step = ["Test Time / s,Voltage / V,Current / A,Cycle Count / 1,Step Count / 1"], 0.0, 0
    for cycle in range(1, cycles + 1):
        for current_A, minutes, start_V, end_V in ((1e-3, 60, 3.6, 4.3), (-1e-3, 57, 4.1, 2.8)):
            step += 1
            for k in range(minutes + 1):
                lines.append(f"{t + 60 * k},{start_V + (end_V - start_V) * k / minutes},{current_A},{cycle},{step}")
            t += 60 * (minutes + 1)
            step += 1
            lines.append(f"{t},{end_V},0,{cycle},{step}")
            t += 60
    return write(tmp_path, "fullcell.csv", "\n".join(lines) + "\n")


def analyze_full_cell(path, *options: str):
    return invoke("analyze", "ce", path, "--area", "1", "--protocol", "fullcell", "--upper", "4.3", "--lower", "2.8",
                  *options)


def test_a_reference_cycle_the_data_holds_gives_retention(tmp_path):
    result = analyze_full_cell(full_cell_csv(tmp_path), "--reference-cycle", "2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["reference_cycle"] == 2


def test_a_reference_cycle_beyond_the_data_is_refused(tmp_path):
    refused(analyze_full_cell(full_cell_csv(tmp_path), "--reference-cycle", "99999"), "--reference-cycle", "99999")


def test_a_truncated_last_row_is_refused(tmp_path):
    whole = full_cell_csv(tmp_path).read_text()
    cut = write(tmp_path, "cut.csv", whole[: whole.rstrip("\n").rfind(",") - 3])  # in the middle of the last row
    refused(analyze_full_cell(cut), "cut.csv", "last row", "cut short")


@pytest.mark.parametrize("film", ['"x"', "0", "100", "true", "1.5"])
def test_a_bad_rate_monitor_film_option_is_refused(tmp_path, store, film):
    bench = write(tmp_path, "bench.toml", '[roles.rate_monitor]\ndriver = "inficon-sqm160"\n'
                  f'resource = "ASRL/dev/ttyUSB9::INSTR"\n[roles.rate_monitor.options]\nfilm = {film}\n')
    refused(invoke("run", "deposition", "--bench", bench, "--store", store), "roles.rate_monitor.options.film", "1..99")
    no_run_folder(store)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_dead_runs_metadata_says_interrupted_as_the_registry_does(store):
    from labctl.store.folder import METADATA, read_json, write_json_atomic

    folder = store / "runs" / "r1"
    folder.mkdir(parents=True)
    write_json_atomic(folder / METADATA, {"run_id": "r1", "status": "running"})
    registry = Store(store).registry
    registry.add("r1", procedure="ccd", bench="sim", cell_id=None, folder=folder)
    registry._db.execute("UPDATE runs SET pid = ? WHERE id = 'r1'", (dead_pid(),))  # killed with -9: no end written
    result = invoke("runs", "show", "r1", "--store", store, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["run"]["status"] == shown["metadata"]["status"] == "interrupted"
    assert read_json(folder / METADATA)["ended_at"] == shown["run"]["ended_at"]


def test_a_detached_daemon_runs_the_installed_labctl_not_one_in_the_working_directory(tmp_path, store):
    """`labctl serve --detach` starts the daemon (whose fork server starts every run) with -P: a ``labctl/`` folder
    in the operator's working directory is never imported."""
    import os
    import signal

    from labctl.queue.daemon import daemon_pid

    rogue = tmp_path / "work" / "labctl"
    rogue.mkdir(parents=True)
    marker = tmp_path / "rogue-ran"
    for name in ("__init__.py", "__main__.py"):
        (rogue / name).write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit(3)\n")
    labctl = Path(sys.executable).with_name("labctl")
    started = subprocess.run([labctl, "serve", "--detach", "--store", store, "--poll", "0.2"], cwd=rogue.parent,
                             capture_output=True, text=True, timeout=120)
    pid = daemon_pid(store.resolve())
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert not marker.exists()
    finally:
        if pid:
            os.kill(pid, signal.SIGTERM)


def modes(root) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mode & 0o777 for p in [root, *root.rglob("*")]}


def store_with_a_run(store):
    from labctl.store import RunFolder

    opened = Store(store)
    folder = RunFolder(opened.folder_of("r1"), ["Test Time / s", "Voltage / V", "Current / A"])
    opened.registry.add("r1", procedure="ccd", bench="sim", cell_id="c", folder=folder.path)
    folder.append({"Test Time / s": 0.0, "Voltage / V": 0.1, "Current / A": 0.0})
    folder.event("note", message="x")
    folder.write_metadata({"status": "running"})
    folder.add_spectrum(0, 0.0, 1, 1, [(1e3, 1 + 1j)] * 3)
    folder.write_export("spectrum.z", "z\n")
    folder.close()
    found = modes(store)
    opened.close()
    return found


def test_store_folders_and_files_are_private_to_the_user(store):
    found = store_with_a_run(store)
    assert {name: mode for name, mode in found.items() if mode not in (0o700, 0o600)} == {}
    assert found["."] == found["runs"] == found["runs/r1"] == 0o700
    assert found["registry.sqlite"] == found["runs/r1/metadata.json"] == found["runs/r1/events.jsonl"] == 0o600


def test_the_store_mode_can_let_the_group_read(store, monkeypatch):
    monkeypatch.setenv("LABCTL_STORE_MODE", "750")
    found = store_with_a_run(store)
    assert found["runs/r1"] == 0o750 and found["runs/r1/timeseries.bdf.csv"] == 0o640


def test_a_bad_store_mode_is_refused(store, monkeypatch):
    monkeypatch.setenv("LABCTL_STORE_MODE", "rw-r")
    refused(invoke("runs", "list", "--store", store), "LABCTL_STORE_MODE", "750")


def test_a_queued_cell_id_is_shown_as_written(store):
    added = CliRunner().invoke(app, ["queue", "add", "ccd", "-p", f"cell_id={MARKUP}", "--store", str(store)],
                               env={"COLUMNS": "400"})
    listed = CliRunner().invoke(app, ["queue", "list", "--store", str(store)], env={"COLUMNS": "400"})
    for result in (added, listed):
        assert result.exit_code == 0, result.output
        assert MARKUP in result.output and "💯" not in result.output


def test_an_error_shows_the_users_text_as_written(store):
    refused(invoke("run", "W:19.3:0.163:100:30:200", "--store", store), "W:19.3:0.163:100:30:200")
