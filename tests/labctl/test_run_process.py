"""`labctl run` as a real process: Ctrl-C and kill -9 leave the data intact and the run honestly marked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import bdf
import pandas as pd

from labctl.store import Store
from labctl.store.folder import METADATA, TIMESERIES


def start_run(home, *params: str) -> subprocess.Popen:
    """Start a long CCD and return once it has taken its first samples (it prints a line per level)."""
    env = {**os.environ, "LABCTL_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "labctl", "run", "ccd", "--cell", "Ag|Mg", *params],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first = proc.stderr.readline()
    assert "j +0.1 mA/cm²" in first, first + proc.stderr.read()
    return proc


def only_run(home):
    (record,) = Store(home).registry.list()
    return record


def test_ctrl_c_rests_the_channel_and_marks_the_run_aborted(tmp_path):
    proc = start_run(tmp_path, "-p", "sample_interval=1")
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    record = only_run(tmp_path)
    assert record.status == "aborted"
    assert json.loads((tmp_path / "runs" / record.id / METADATA).read_text())["status"] == "aborted"
    events = (tmp_path / "runs" / record.id / "events.jsonl").read_text()
    assert '"kind": "aborted"' in events
    assert len(pd.read_csv(tmp_path / "runs" / record.id / TIMESERIES)) > 0


def test_kill_9_leaves_valid_data_and_an_interrupted_run(tmp_path):
    proc = start_run(tmp_path, "-p", "sample_interval=1")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    record = only_run(tmp_path)
    assert record.status == "interrupted"  # never "running", never "finished"
    series = tmp_path / "runs" / record.id / TIMESERIES
    df = pd.read_csv(series)
    assert len(df) > 0 and bdf.validate(series)["ok"]
    metadata = json.loads((tmp_path / "runs" / record.id / METADATA).read_text())
    assert (metadata["status"], metadata["ended_at"]) == ("interrupted", record.ended_at)  # as the registry says
