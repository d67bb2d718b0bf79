"""Finished runs are copied to the lab's archive whole, never half; an unwritable archive never fails a run."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from labctl.cli import app
from labctl.store.archive import archive
from labctl.store.folder import METADATA


def test_a_folder_is_copied_whole_and_a_second_copy_replaces_the_first(tmp_path):
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "a.csv").write_text("1\n")
    assert archive(run, tmp_path / "archive") == tmp_path / "archive" / "r1"
    (run / "a.csv").write_text("1\n2\n")
    archive(run, tmp_path / "archive")
    assert (tmp_path / "archive" / "r1" / "a.csv").read_text() == "1\n2\n"
    assert [p.name for p in (tmp_path / "archive").iterdir()] == ["r1"]  # no partial copy left


def test_an_archive_that_cannot_be_written_leaves_nothing_and_returns_none(tmp_path):
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (tmp_path / "file").write_text("")
    assert archive(run, tmp_path / "file" / "archive") is None


def test_a_finished_run_is_archived_when_the_lab_config_names_an_archive(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "lab.toml").write_text(f'[lab]\narchive = "{tmp_path / "shared"}"\n')
    result = CliRunner().invoke(app, ["run", "ccd", "--bench", "sim", "--cell", "bare", "-p", "stop_density=0.3",
                                      "--store", str(store)])  # fmt: skip
    assert result.exit_code == 0, result.output
    (copy,) = (tmp_path / "shared").iterdir()
    assert json.loads((copy / METADATA).read_text())["status"] == "finished"
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in (store / "runs" / copy.name).iterdir())
