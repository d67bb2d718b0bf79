"""FeedClient: a view that follows a real `labctl run` ends with exactly what the run stored, however it ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labctl.gui.feed_client import FeedClient
from labctl.live.feed import feed_path
from labctl.live.state import TIME, RunState
from labctl.store import Store
from labctl.store.folder import EVENTS, TIMESERIES


def start_run(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "LABCTL_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "labctl", "run", "ccd", "--bench", "sim", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def registered(home: Path, rows: int = 0, timeout_s: float = 60.0) -> tuple[str, Path]:
    """The run's id and folder once the registry lists it (and its file holds more than ``rows`` samples)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (home / "registry.sqlite").exists():
            store = Store(home)
            records = store.registry.list()
            store.close()
            if records:
                folder = Path(records[0].folder)
                series = folder / TIMESERIES
                if rows == 0 or (series.exists() and series.read_text().count("\n") > rows):
                    return records[0].id, folder
        time.sleep(0.02)
    raise AssertionError("no run was registered")


def assert_holds_the_folder(state: RunState, folder: Path) -> None:
    rows = pd.read_csv(folder / TIMESERIES)
    assert state.counts() == {"sample": len(rows), "event": len((folder / EVENTS).read_text().splitlines()),
                              "spectrum": 0}
    np.testing.assert_allclose(state.samples.column(TIME), rows[TIME].to_numpy())
    np.testing.assert_allclose(state.samples.column("Voltage / V"), rows["Voltage / V"].to_numpy(), rtol=1e-9)
    assert state.markers == RunState.from_folder(folder).markers


def test_following_a_run_from_its_start_ends_with_its_data_and_status(qtbot, tmp_path):
    proc = start_run(tmp_path)
    try:
        run_id, folder = registered(tmp_path)  # as the GUI sees it: running, maybe before its feed is open
        state = RunState(run_id, "ccd")
        client = FeedClient(run_id, folder, state)
        with qtbot.waitSignal(client.ended, timeout=180_000) as ended:
            pass
        assert proc.wait(60) == 0
    finally:
        proc.kill()
    assert ended.args == ["finished"] and state.status == "finished"
    assert state.result["failure_mode"] == "hard_short"
    assert_holds_the_folder(state, folder)


def test_a_run_killed_mid_way_ends_interrupted_with_what_it_stored(qtbot, tmp_path):
    proc = start_run(tmp_path, "--cell", "Ag|Mg", "-p", "sample_interval=1")  # a long run
    try:
        run_id, folder = registered(tmp_path, rows=100)
        state = RunState(run_id, "ccd")
        client = FeedClient(run_id, folder, state)
        qtbot.waitUntil(lambda: client.live and len(state.samples) > 200, timeout=60_000)
        with qtbot.waitSignal(client.ended, timeout=60_000) as ended:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
    finally:
        proc.kill()
        feed_path(run_id).unlink(missing_ok=True)  # a killed run cannot remove its socket
    assert ended.args == ["interrupted"] and state.status == "interrupted"
    assert_holds_the_folder(state, folder)


@pytest.mark.parametrize("procedure", ["ccd", "insitu-eis"])
def test_a_finished_run_is_read_from_its_folder(qtbot, sim_runs, procedure):
    folder = sim_runs[procedure]
    state = RunState(folder.name, procedure)
    client = FeedClient(folder.name, folder, state)
    with qtbot.waitSignal(client.ended, timeout=10_000) as ended:
        pass
    assert ended.args == ["finished"]
    assert state.counts() == RunState.from_folder(folder).counts()
