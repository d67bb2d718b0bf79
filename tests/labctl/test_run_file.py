"""Run files: read, checked with the field named, and overridden by command-line options."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from labctl.cli import app
from labctl.cli.run_file import RunFileError, load_run_file, request_of
from labctl.queue import QueueDB
from labctl.request import RunRequest
from labctl.store import Store

CCD = """
procedure = "ccd"
channel = 3
cell = "Ag"
seed = 5
[params]
cell_id = "Ag-7"
stop_density = 1.0
"""


def write(tmp_path, text: str, name: str = "ccd.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_procedure_name_is_a_request_of_its_own():
    assert request_of("ccd") == RunRequest(procedure="ccd")


def test_a_run_file_gives_procedure_cell_channel_and_parameters_as_text(tmp_path):
    p = request_of(str(write(tmp_path, CCD)))
    assert p == RunRequest(procedure="ccd", params={"cell_id": "Ag-7", "stop_density": "1.0"}, cell="Ag", seed=5,
                           channel=3)


def test_a_bench_file_is_found_beside_the_run_file(tmp_path):
    (tmp_path / "benches").mkdir()
    p = load_run_file(write(tmp_path, 'procedure = "eis"\nbench = "benches/bay.toml"\n'))
    assert p.bench == str((tmp_path / "benches" / "bay.toml").resolve())
    assert load_run_file(write(tmp_path, 'procedure = "eis"\nbench = "sim"\n')).bench == "sim"


def test_command_line_options_win_over_the_file(tmp_path):
    p = load_run_file(write(tmp_path, CCD)).with_options(params={"stop_density": "0.5"}, seed=9)
    assert (p.cell, p.seed, p.channel) == ("Ag", 9, 3)
    assert p.params == {"cell_id": "Ag-7", "stop_density": "0.5"}  # the command line's parameter wins


@pytest.mark.parametrize(("text", "names"), [
    ('procedure = "ccd"\nchanel = 2\n', ["unknown field 'chanel'", "channel"]),
    ('procedure = "ccd"\nchannel = "two"\n', ["channel = 'two'", "int"]),
    ('procedure = "ccd"\nseed = true\n', ["seed = True", "int"]),
    ('[params]\ncell_id = "x"\n', ["no procedure", 'procedure = "ccd"']),
    ('procedure = "ccd\n', ["not a readable TOML file"]),
])  # fmt: skip
def test_a_bad_run_file_is_refused_naming_the_field(tmp_path, text, names):
    with pytest.raises(RunFileError) as e:
        load_run_file(write(tmp_path, text))
    assert str(tmp_path) in str(e.value)
    for name in names:
        assert name in str(e.value)


def test_queue_add_takes_a_run_file_and_its_options_win(tmp_path):
    path = write(tmp_path, CCD)
    result = CliRunner().invoke(app, ["queue", "add", str(path), "--count", "2", "-p", "stop_density=0.6",
                                      "--store", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    Store(tmp_path).close()
    entries = QueueDB(tmp_path / "registry.sqlite").entries()
    assert [e.channel for e in entries] == [3, 4]
    assert [e.params["cell_id"] for e in entries] == ["Ag-7-1", "Ag-7-2"]
    assert all(e.params["stop_density"] == "0.6" and e.cell == "Ag" and e.seed == 5 for e in entries)


def test_queue_add_refuses_a_missing_run_file_and_queues_nothing(tmp_path):
    result = CliRunner().invoke(app, ["queue", "add", str(tmp_path / "nope.toml"), "--store", str(tmp_path)])
    assert result.exit_code == 2
    assert "no such protocol file" in result.output
    Store(tmp_path).close()
    assert QueueDB(tmp_path / "registry.sqlite").entries() == []


def test_run_takes_a_run_file(tmp_path):
    path = write(tmp_path, 'procedure = "eis"\n[params]\ncell_id = "from-file"\n', "eis.toml")
    result = CliRunner().invoke(app, ["run", str(path), "--store", str(tmp_path / "store"), "--json"])
    assert result.exit_code == 0, result.output
    store = Store(tmp_path / "store")
    (record,) = store.registry.list()
    assert (record.procedure, record.cell_id, record.status) == ("eis", "from-file", "finished")


def test_run_refuses_a_bad_run_file_before_any_bench_opens(tmp_path):
    path = write(tmp_path, 'procedure = "ccd"\nchanel = 2\n')
    result = CliRunner().invoke(app, ["run", str(path), "--store", str(tmp_path / "store")])
    assert result.exit_code == 2
    assert "unknown field 'chanel'" in result.output
    assert not (tmp_path / "store").exists()
