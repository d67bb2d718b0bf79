"""The run request: one shape for a run file, a queue row, the daemon's child and the GUI form; errors that
carry the field to fix; a queue store written by the previous version still opens."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from labctl.cli.options import error_text
from labctl.procedures import ParameterError
from labctl.queue import Entry, QueueDB, plan
from labctl.request import RequestError, RunRequest, Schedule

# the queue table as the previous version (issue 14) created it, with one entry in its columns
PREVIOUS_SCHEMA = """
CREATE TABLE queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT, position INTEGER NOT NULL, procedure TEXT NOT NULL, bench TEXT NOT NULL,
    params TEXT NOT NULL, cell TEXT, seed INTEGER, channel INTEGER, claims TEXT NOT NULL, state TEXT NOT NULL,
    not_before TEXT, after INTEGER, rest_s REAL NOT NULL DEFAULT 0, run_id TEXT, pid INTEGER, added_at TEXT NOT NULL,
    started_at TEXT, ended_at TEXT, outcome TEXT, stop_requested INTEGER NOT NULL DEFAULT 0
)
"""
PREVIOUS_ROW = ("INSERT INTO queue VALUES (1, 1, 'ccd', 'sim', '{\"cell_id\": \"Ag-1\"}', 'Ag', 5, 3, "
                "'[\"cycler@sim#3\"]', 'held', '2026-11-22T21:00:00+00:00', NULL, 1800.0, NULL, NULL, "
                "'2026-11-22T18:00:00+00:00', NULL, NULL, NULL, 0)")


def test_options_win_over_the_request_and_parameters_merge_by_name():
    base = RunRequest(procedure="ccd", params={"cell_id": "a", "stop_density": "1"}, cell="Ag", channel=2)
    mixed = base.with_options(params={"stop_density": "0.5"}, seed=4, bench=None, channel=None)
    assert mixed == RunRequest(procedure="ccd", params={"cell_id": "a", "stop_density": "0.5"}, cell="Ag", seed=4,
                               channel=2)
    assert base.params["stop_density"] == "1"  # the original is left as it was


def test_a_request_builds_its_procedure_with_the_parameters_set():
    procedure = RunRequest(procedure="ccd", params={"stop_density": "1.5", "cell_id": "x"}).build()
    assert (procedure.stop_density, procedure.cell_id) == (1.5, "x")


def test_an_unknown_procedure_is_a_request_error_on_the_procedure_field():
    with pytest.raises(RequestError) as e:
        RunRequest(procedure="nope").build()
    assert e.value.fields == ("procedure",) and "'nope'" in e.value.detail and "ccd" in e.value.detail


def test_a_bad_parameter_carries_its_field():
    with pytest.raises(ParameterError) as e:
        RunRequest(procedure="ccd", params={"start_density": "fast"}).build()
    assert e.value.fields == ("start_density",)
    with pytest.raises(ParameterError) as e:
        RunRequest(procedure="ccd", params={"stop_density": "0.01"}).build()  # the procedure's cross-check
    assert e.value.fields == ("stop_density",)
    assert ParameterError("'x': write it as name=value").fields == ("",)  # names no parameter


def test_the_command_line_words_each_error_with_its_option():
    assert error_text(RequestError(("channel", "count"), "too many")) == "--channel/--count: too many"
    assert error_text(RequestError("rest_s", "-3 s")) == "--rest: -3 s"
    assert error_text(ParameterError("stop_density: too low")) == "--param stop_density: too low"


def test_the_daemon_child_gets_the_request_as_an_operator_types_it():
    request = RunRequest(procedure="ccd", bench="/b.toml", params={"cell_id": "a b"}, seed=3, channel=2)
    assert request.run_arguments() == ["ccd", "--bench", "/b.toml", "-p", "cell_id=a b", "--seed", "3",
                                       "--channel", "2"]


def test_a_request_round_trips_through_json():
    request = RunRequest(procedure="ccd", params={"cell_id": "a"}, cell="Ag", channel=2,
                         schedule=Schedule(not_before=datetime(2026, 11, 22, 21, tzinfo=UTC), after=4, rest_s=60))
    assert RunRequest.model_validate_json(request.model_dump_json()) == request


def test_a_queue_entry_is_its_request_as_planned(tmp_path):
    queue = QueueDB(tmp_path / "registry.sqlite")
    request = RunRequest(procedure="ccd", params={"cell_id": "a"}, cell="Ag", seed=5, channel=3,
                         schedule=Schedule(rest_s=90))
    (entry_id,) = queue.add(plan(request, queue))
    entry = queue.require(entry_id)
    assert RunRequest.model_validate(entry.model_dump(include=set(RunRequest.model_fields))) == request
    assert entry.to_dict()["rest_s"] == 90 and "schedule" not in entry.to_dict()  # `queue list --json` as before


def test_a_queue_store_of_the_previous_version_still_opens(tmp_path):
    path = tmp_path / "registry.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(PREVIOUS_SCHEMA)
        db.execute(PREVIOUS_ROW)
    db.close()
    queue = QueueDB(path)
    (entry,) = queue.entries()
    assert entry == Entry(procedure="ccd", params={"cell_id": "Ag-1"}, cell="Ag", seed=5, channel=3,
                          claims=["cycler@sim#3"], state="held", id=1, position=1,
                          schedule=Schedule(not_before=datetime(2026, 11, 22, 21, tzinfo=UTC), rest_s=1800),
                          added_at="2026-11-22T18:00:00+00:00")
    (new_id,) = queue.add([entry.model_copy(update={"state": "queued"})])
    assert queue.require(new_id).schedule == entry.schedule
