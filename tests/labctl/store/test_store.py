"""Run folders and the registry: durable, readable without labctl, never falsely finished."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from labctl.store import RunFolder, Store
from labctl.store.folder import EVENTS, METADATA, TIMESERIES
from labctl.store.reader import RunReader

COLUMNS = ["Test Time / s", "Voltage / V", "Current / A"]
on_both_databases = pytest.mark.usefixtures("store_db")


def test_rows_are_on_disk_as_soon_as_appended(tmp_path):
    folder = RunFolder(tmp_path / "run", COLUMNS)
    folder.append({"Test Time / s": 1.0, "Voltage / V": 0.01, "Current / A": 1e-4})
    # read while the writer is still open, as a crash would leave it
    df = pd.read_csv(tmp_path / "run" / TIMESERIES)
    assert list(df.columns) == COLUMNS
    assert df.iloc[0].tolist() == [1.0, 0.01, 1e-4]


def test_events_are_json_lines(tmp_path):
    folder = RunFolder(tmp_path / "run", COLUMNS)
    folder.event("segment_started", step=1)
    line = (tmp_path / "run" / EVENTS).read_text().splitlines()[0]
    assert json.loads(line)["kind"] == "segment_started"
    assert json.loads(line)["step"] == 1


def test_metadata_is_replaced_whole(tmp_path):
    folder = RunFolder(tmp_path / "run", COLUMNS)
    folder.write_metadata({"status": "running"})
    folder.write_metadata({"status": "finished"})
    assert json.loads((tmp_path / "run" / METADATA).read_text()) == {"status": "finished"}
    assert not list((tmp_path / "run").glob("*.tmp"))


@on_both_databases
def test_a_run_whose_process_died_is_interrupted_not_running(tmp_path):
    store = Store(tmp_path)
    code = (
        "import sys; from pathlib import Path; from labctl.store import Store;"
        "s = Store(Path(sys.argv[1])); s.registry.add('r1', procedure='ccd', bench='sim', cell_id='c',"
        " folder=Path(sys.argv[1]) / 'runs' / 'r1'); import os; os._exit(9)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    (record,) = store.registry.list()
    assert record.status == "interrupted"
    assert record.ended_at is not None


@on_both_databases
def test_a_live_run_stays_running(tmp_path):
    store = Store(tmp_path)
    store.registry.add("r2", procedure="ccd", bench="sim", cell_id=None, folder=tmp_path / "r2")
    assert store.registry.get("r2").status == "running"
    assert store.registry.get("r2").pid == os.getpid()
    store.registry.finish("r2", "finished", {"headline": "CCD = 0.6 mA/cm²"})
    assert store.registry.get("r2").summary == {"headline": "CCD = 0.6 mA/cm²"}


def test_a_resumed_folder_cuts_the_lines_a_killed_writer_left_half_written_and_appends(tmp_path):
    folder = RunFolder(tmp_path / "run", COLUMNS)
    folder.append(dict.fromkeys(COLUMNS, 1.0))
    folder.event("segment_started", step=1)
    folder.close()
    complete = folder.timeseries.read_text()
    with folder.timeseries.open("a") as f:
        f.write("2.0,0.4")  # killed mid-row
    with (tmp_path / "run" / EVENTS).open("a") as f:
        f.write('{"kind": "segm')  # and mid-event
    resumed = RunFolder(tmp_path / "run", COLUMNS, resume=True)
    resumed.append(dict.fromkeys(COLUMNS, 3.0))
    resumed.event("resumed", step=1)
    resumed.close()
    assert folder.timeseries.read_text() == complete + ",".join(["3"] * len(COLUMNS)) + "\n"
    assert [e["kind"] for e in RunReader(tmp_path / "run").events()] == ["segment_started", "resumed"]
