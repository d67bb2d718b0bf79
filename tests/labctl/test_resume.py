"""A run killed at any moment goes on where it stopped: `labctl run --resume RUN_ID` and `labctl serve`.

Real processes throughout: a `labctl sim serve` bench outlives the run processes (as a cycler outlives its PC), the
run is killed with SIGKILL once it has stored a given number of rows, and the resumed run must report what the
uninterrupted run with the same seed reports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from labctl.bdf_columns import STEP, TIME
from labctl.drivers.arbin.cti import CTIClient
from labctl.queue import QueueDB
from labctl.store import Store
from labctl.store.registry import process_alive

SEED = 3
CCD = ["-p", "stop_density=1.5"]  # Li|LLZO|Li, seed 3: a hard short at 0.5 mA/cm², 9.38 h, about row 3380
INTERVAL_S = 10.0  # the CCD's default sample interval


def said(result: subprocess.CompletedProcess) -> str:
    """What a command printed, its lines joined (the console wraps long messages)."""
    return " ".join((result.stdout + result.stderr).split())


def labctl(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labctl", *args], capture_output=True, text=True, timeout=600,
                          **kwargs)  # fmt: skip


@pytest.fixture(autouse=True)
def _own_locks(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCTL_LOCK_DIR", str(tmp_path / "locks"))


@pytest.fixture
def served(tmp_path):
    """A simulated bench served by its own process (seed 3), as a bench file; its emulators outlive every run."""
    proc = subprocess.Popen([sys.executable, "-m", "labctl", "sim", "serve", "--seed", str(SEED)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines: list[str] = []
    while not lines or not lines[-1].startswith("shutter_control"):
        line = proc.stdout.readline()
        assert line, f"sim serve ended early: {proc.stderr.read()}"
        lines.append(line)
    bench = tmp_path / "served.toml"
    bench.write_text("".join(lines), encoding="utf-8")
    yield bench
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


def channel_1(bench: Path):
    """Channel 1 of the served cycler, as its own CTI client sees it."""
    host, port = tomllib.loads(bench.read_text())["roles"]["cycler"]["resource"].rsplit(":", 1)
    with CTIClient(host, int(port)) as client:
        return client.channel_info(1)


def run_killed_after(bench: Path, store: Path, rows: int, *extra: str) -> str:
    """Start a CCD on ``bench``, SIGKILL it once it has stored ``rows`` rows; its run id."""
    proc = subprocess.Popen([sys.executable, "-m", "labctl", "run", "ccd", "--bench", str(bench), "--store",
                             str(store), *CCD, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while proc.poll() is None:
            folders = list((store / "runs").glob("*")) if (store / "runs").exists() else []
            csv = folders[0] / "timeseries.bdf.csv" if folders else None
            if csv and csv.exists() and csv.read_bytes().count(b"\n") > rows:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    return folders[0].name


@pytest.fixture(scope="module")
def uninterrupted() -> dict:
    """The same CCD, run without a break (seed 3, on a bench of its own process)."""
    result = labctl("run", "ccd", "--bench", "sim", "--seed", str(SEED), *CCD, "--json",
                    "--store", os.environ.get("TMPDIR", "/tmp") + f"/labctl-resume-ref-{os.getpid()}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["result"]


@pytest.mark.parametrize("rows", [30, 1500, 3300, 3400])  # the first level, mid-ladder, just before and after onset
def test_a_ccd_killed_at_any_moment_and_resumed_reports_what_the_uninterrupted_run_does(served, tmp_path, rows,
                                                                                        uninterrupted):
    store = tmp_path / "store"
    run_id = run_killed_after(served, store, rows)
    resumed = labctl("run", "--resume", run_id, "--store", str(store), "--json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    result = json.loads(resumed.stdout)["result"]
    assert result["ccd_mA_cm2"] == uninterrupted["ccd_mA_cm2"]
    assert result["failure_mode"] == uninterrupted["failure_mode"]
    assert abs(result["failure_time_h"] - uninterrupted["failure_time_h"]) * 3600 <= INTERVAL_S + 1e-3
    folder = store / "runs" / run_id
    rows_stored = pd.read_csv(folder / "timeseries.bdf.csv")
    assert rows_stored[TIME].is_monotonic_increasing and rows_stored[TIME].is_unique  # one series, nothing twice
    assert rows_stored[STEP].is_monotonic_increasing
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    (event,) = [e for e in events if e["kind"] == "resumed"]
    assert event["gap_s"] >= 0 and event["test_time_gap_s"] >= 0
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["status"] == "finished" and len(metadata["resumed"]) == 1
    assert Store(store).registry.get(run_id).status == "finished"


def test_the_resumed_rest_of_a_half_cycle_keeps_its_step_and_the_planned_time(served, tmp_path):
    store = tmp_path / "store"
    run_id = run_killed_after(served, store, 150)
    assert labctl("run", "--resume", run_id, "--store", str(store)).returncode == 0
    rows = pd.read_csv(store / "runs" / run_id / "timeseries.bdf.csv")
    per_step = rows.groupby(STEP)[TIME].agg(lambda t: t.max() - t.min())
    # every completed fixed-time half-cycle spans its 0.5 h (less its first sample interval), the resumed one too
    # within a sample on either side (its rest is sampled on a new grid): not restarted whole, not skipped
    complete = per_step.iloc[:-1]
    assert ((complete >= 1800 - 2 * INTERVAL_S) & (complete <= 1800 + INTERVAL_S)).all(), per_step.to_dict()


def test_a_run_on_a_bench_served_in_its_own_process_is_refused_with_why(tmp_path):
    store = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-m", "labctl", "run", "ccd", "--bench", "sim", "--store", str(store),
                             *CCD, "-p", "sample_interval=1"], stdout=subprocess.DEVNULL)  # fmt: skip
    while not list((store / "runs").glob("*/timeseries.bdf.csv")) if (store / "runs").exists() else True:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_id = next((store / "runs").iterdir()).name
    before = sorted((p.name, p.stat().st_size) for p in (store / "runs" / run_id).iterdir() if p.name != "metadata.json")
    result = labctl("run", "--resume", run_id, "--store", str(store))
    assert result.returncode == 2
    assert "simulated bench ran inside its process" in said(result) and "Traceback" not in result.stderr
    after = sorted((p.name, p.stat().st_size) for p in (store / "runs" / run_id).iterdir() if p.name != "metadata.json")
    assert after == before  # nothing written
    assert Store(store).registry.get(run_id).status == "interrupted"


def test_a_channel_used_meanwhile_is_refused_and_the_run_stays_interrupted(served, tmp_path):
    store = tmp_path / "store"
    run_id = run_killed_after(served, store, 40)
    other = labctl("run", "ccd", "--bench", str(served), "--store", str(tmp_path / "other"), "-p", "stop_density=0.1",
                   "-p", "cycles_per_step=1", "-p", "half_cycle_time=0.01")  # takes the dead test over, ends it
    assert other.returncode == 0, other.stderr
    result = labctl("run", "--resume", run_id, "--store", str(store))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "runs no test" in said(result)
    assert Store(store).registry.get(run_id).status == "interrupted"
    events = (store / "runs" / run_id / "events.jsonl").read_text()
    assert '"resume_refused"' in events and '"resumed"' not in events


@pytest.mark.parametrize(("args", "why"), [
    (["--resume", "nope"], "no run 'nope'"),
    (["ccd", "--resume", "x"], "PROCEDURE"),
    (["--resume", "x", "--seed", "2"], "--seed"),
])  # fmt: skip
def test_bad_resume_requests_are_refused_naming_the_field(tmp_path, args, why):
    result = labctl("run", *args, "--store", str(tmp_path / "store"))
    assert result.returncode == 2 and why in said(result) and "Traceback" not in result.stderr


def test_a_finished_run_or_a_procedure_that_cannot_resume_is_refused(served, tmp_path):
    store = tmp_path / "store"
    done = labctl("run", "ccd", "--bench", str(served), "--store", str(store), "-p", "stop_density=0.1",
                  "-p", "cycles_per_step=1", "-p", "half_cycle_time=0.01", "--json")  # fmt: skip
    run_id = json.loads(done.stdout)["run_id"]
    result = labctl("run", "--resume", run_id, "--store", str(store))
    assert result.returncode == 2 and "ended finished" in said(result)
    Store(store).registry.finish(run_id, "interrupted")
    (store / "runs" / run_id / "metadata.json").write_text(json.dumps(
        json.loads((store / "runs" / run_id / "metadata.json").read_text())
        | {"request": {"procedure": "ce-cycling", "bench": str(served)}}))  # fmt: skip
    result = labctl("run", "--resume", run_id, "--store", str(store))
    assert result.returncode == 2 and "ce-cycling runs cannot be resumed" in said(result)


def test_a_run_told_to_terminate_keeps_its_test_at_rest_and_resumes(served, tmp_path):
    store = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-m", "labctl", "run", "ccd", "--bench", str(served), "--store",
                             str(store), *CCD], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    while not list((store / "runs").glob("*/timeseries.bdf.csv")) if (store / "runs").exists() else True:
        time.sleep(0.01)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    run_id = next((store / "runs").iterdir()).name
    assert Store(store).registry.get(run_id).status == "interrupted"
    channel = channel_1(served)
    assert channel.running and channel.status_word == "Rest" and channel.current_A == 0  # at rest, its test kept
    resumed = labctl("run", "--resume", run_id, "--store", str(store), "--json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads(resumed.stdout)["result"]["ccd_mA_cm2"] == 0.5


def serve(store: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "labctl", "serve", "--store", str(store), "--poll", "0.2"],
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def wait_for(what: str, check, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def queued_ccd(served: Path, store: Path) -> None:
    added = labctl("queue", "add", "ccd", *CCD, "--bench", str(served), "--store", str(store))
    assert added.returncode == 0, added.stderr


def entry_1(store: Path):
    return QueueDB(store / "registry.sqlite").entries()[0]


def sampled(store: Path, rows: int) -> bool:
    return any(csv.read_bytes().count(b"\n") > rows for csv in store.glob("runs/*/timeseries.bdf.csv"))


def finished_as_uninterrupted(store: Path, uninterrupted: dict, *, same_time: bool = True):
    """The queue's entry, which must have finished with the uninterrupted run's CCD (and failure time, unless its
    channel rested a while in between: that rest is test time too)."""
    entry = entry_1(store)
    assert entry.state == "finished", (store / "logs" / "serve.log").read_text()
    result = json.loads((store / "runs" / entry.run_id / "results.json").read_text())
    assert result["ccd_mA_cm2"] == uninterrupted["ccd_mA_cm2"]
    assert not same_time or abs(result["failure_time_h"] - uninterrupted["failure_time_h"]) * 3600 <= INTERVAL_S + 1e-3
    return entry


def test_the_daemon_resumes_a_queued_run_killed_with_sigkill(served, tmp_path, uninterrupted):
    store = tmp_path / "store"
    queued_ccd(served, store)
    daemon = serve(store, tmp_path / "serve.out")
    try:
        wait_for("the run to take samples", lambda: sampled(store, 500))
        os.kill(entry_1(store).pid, signal.SIGKILL)
        wait_for("the entry to end", lambda: entry_1(store).ended_at)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    entry = finished_as_uninterrupted(store, uninterrupted)
    assert f"run {entry.run_id} was interrupted; resuming it" in (store / "logs" / "serve.log").read_text()
    assert not channel_1(served).running  # the resumed run ended its test


def test_a_new_daemon_resumes_the_run_its_dead_predecessor_left(served, tmp_path, uninterrupted):
    store = tmp_path / "store"
    queued_ccd(served, store)
    daemon = serve(store, tmp_path / "serve.out")
    wait_for("the run to take samples", lambda: sampled(store, 500))
    daemon.send_signal(signal.SIGKILL)  # its run is told to terminate: it rests its channel and keeps its test
    daemon.wait(timeout=30)
    wait_for("the run to stop", lambda: not process_alive(entry_1(store).pid))
    assert channel_1(served).running and channel_1(served).current_A == 0
    daemon = serve(store, tmp_path / "serve.out")
    try:
        wait_for("the entry to end", lambda: entry_1(store).ended_at)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    finished_as_uninterrupted(store, uninterrupted, same_time=False)
