"""`labctl serve` as a real process on simulated benches: concurrent runs and a shared analyzer, kill -9 of the
daemon and its restart, cancelling a running entry, and SIGTERM stopping every run in order."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import bdf
import pandas as pd

from labctl.queue import Entry, QueueDB
from labctl.store import Store
from labctl.store.folder import METADATA, RESULTS, SPECTRA, TIMESERIES
from labctl.store.registry import process_alive

LONG_CCD = ("--cell", "Ag|Mg", "-p", "sample_interval=1")  # about 60 h of test: runs until stopped
SHORT_CCD = ("--cell", "Ag|Mg", "-p", "stop_density=0.5")  # no short below 2.4 mA/cm²: a few seconds


def labctl(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl", *args, "--store", str(home)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def serve(home: Path, *args: str) -> subprocess.Popen[bytes]:
    with (home / "serve.out").open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "labctl", "serve", "--store", str(home), "--poll", "0.2",
                                 *args], stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def entries(home: Path) -> dict[int, Entry]:
    return {e.id: e for e in QueueDB(home / "registry.sqlite").entries()}


def wait_until(what: str, check: Callable[[], object], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def add(home: Path, *args: str) -> None:
    result = labctl(home, "queue", "add", *args)
    assert result.returncode == 0, result.stderr


def sampling(home: Path, entry_id: int) -> bool:
    run_id = entries(home)[entry_id].run_id
    series = home / "runs" / str(run_id) / TIMESERIES
    return run_id is not None and series.exists() and len(series.read_text().splitlines()) > 2


def active_span(folder: Path) -> tuple[float, float]:
    """Wall times of a run's first and last events: it used its instruments within this span."""
    times = [json.loads(line)["wall_time"] for line in (folder / "events.jsonl").read_text().splitlines()]
    return min(times), max(times)


def stop(daemon: subprocess.Popen[bytes]) -> None:
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0


def test_four_ccds_in_parallel_and_two_insitu_eis_taking_turns_on_the_analyzer(tmp_path):
    hook_file = tmp_path / "notified.txt"
    add(tmp_path, "ccd", *SHORT_CCD, "--channel", "1", "--count", "4")
    for cell, channel in (("eis-a", "5"), ("eis-b", "6")):
        add(tmp_path, "insitu-eis", "-p", "cycles=1", "-p", "half_cycle_capacity=0.25", "-p", "eis_interval=60",
            "-p", f"cell_id={cell}", "--channel", channel)  # fmt: skip
    daemon = serve(tmp_path, "--notify", f"printf '%s %s\\n' >> {hook_file}")
    wait_until("every entry to end", lambda: all(e.ended_at for e in entries(tmp_path).values()), 120)
    stop(daemon)

    queue = entries(tmp_path)
    assert [e.state for e in queue.values()] == ["finished"] * 6
    runs = {r.id: r for r in Store(tmp_path).registry.list()}
    assert sorted(runs) == sorted(e.run_id for e in queue.values())
    for e in queue.values():
        folder = tmp_path / "runs" / str(e.run_id)
        assert runs[e.run_id].status == "finished" and bdf.validate(folder / TIMESERIES)["ok"]
        metadata = json.loads((folder / METADATA).read_text())
        assert metadata["bench"]["config"]["roles"]["cycler"]["channel"] == e.channel
        assert metadata["cell"]["id"] == e.params["cell_id"]
        assert json.loads((folder / RESULTS).read_text())["headline"]
        assert (tmp_path / "logs" / f"queue-{e.id}.log").exists()
    eis_a, eis_b = (active_span(tmp_path / "runs" / str(queue[n].run_id)) for n in (5, 6))
    assert eis_a[1] < eis_b[0] and queue[6].started_at >= queue[5].ended_at  # one analyzer: one after the other
    assert all((tmp_path / "runs" / str(queue[n].run_id) / SPECTRA).exists() for n in (5, 6))
    ccds = [active_span(tmp_path / "runs" / str(queue[n].run_id)) for n in range(1, 5)]
    assert max(start for start, _ in ccds) < min(end for _, end in ccds)  # all four ran at once
    notified = sorted(hook_file.read_text().splitlines())
    assert notified == sorted(f"{e.run_id} finished" for e in queue.values())
    assert "finished" in (tmp_path / "logs" / "serve.log").read_text()


def test_kill_9_of_the_daemon_then_restart_interrupts_the_run_and_the_queue_moves_on(tmp_path):
    add(tmp_path, "ccd", *LONG_CCD, "--channel", "1")
    add(tmp_path, "ccd", *SHORT_CCD, "--channel", "1", "-p", "cell_id=next")  # waits for channel 1
    daemon = serve(tmp_path)
    wait_until("the first run to take samples", lambda: sampling(tmp_path, 1))
    second = labctl(tmp_path, "serve")
    assert second.returncode == 2 and "already runs" in second.stderr
    child = entries(tmp_path)[1].pid
    assert child and entries(tmp_path)[2].state == "queued"
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(timeout=30)
    wait_until("the run to stop with its daemon", lambda: not process_alive(child), 30)
    run_id = str(entries(tmp_path)[1].run_id)
    assert Store(tmp_path).registry.get(run_id).status == "interrupted"
    events = (tmp_path / "runs" / run_id / "events.jsonl").read_text()
    assert '"kind": "interrupted"' in events  # the run rested its channel itself on the daemon's death

    daemon = serve(tmp_path, "--no-resume")  # its bench ran in-process: nothing to resume (tests/labctl/test_resume.py)
    wait_until("the next entry to finish", lambda: entries(tmp_path)[2].state == "finished")
    stop(daemon)
    first = entries(tmp_path)[1]
    assert first.state == "interrupted" and first.outcome["recovered"] is True
    assert Store(tmp_path).registry.get(run_id).status == "interrupted"  # never finished
    series = tmp_path / "runs" / run_id / TIMESERIES
    assert len(pd.read_csv(series)) > 1 and bdf.validate(series)["ok"]
    log = (tmp_path / "logs" / "serve.log").read_text()
    assert f"entry 1 (run {run_id}) was running when the daemon stopped: now interrupted" in log
    assert "nothing is left running" in log


def test_cancel_stops_a_running_entry_and_sigterm_stops_the_rest_in_order(tmp_path):
    add(tmp_path, "ccd", *LONG_CCD, "--channel", "1")
    add(tmp_path, "ccd", *LONG_CCD, "--channel", "2")
    add(tmp_path, "ccd", *SHORT_CCD, "--channel", "3", "--hold")
    daemon = serve(tmp_path)
    wait_until("both runs to take samples", lambda: sampling(tmp_path, 1) and sampling(tmp_path, 2))
    result = labctl(tmp_path, "queue", "cancel", "1")
    assert result.returncode == 0, result.stderr
    wait_until("the cancelled run to end", lambda: entries(tmp_path)[1].state != "running")
    listing = labctl(tmp_path, "queue", "list", "--json")
    status = {e["id"]: e["status"] for e in json.loads(listing.stdout)}
    assert "cycle" in status[2] and status[3].startswith("held")
    stop(daemon)

    queue = entries(tmp_path)
    assert [queue[n].state for n in (1, 2, 3)] == ["aborted", "aborted", "held"]
    for n in (1, 2):
        folder = tmp_path / "runs" / str(queue[n].run_id)
        assert Store(tmp_path).registry.get(str(queue[n].run_id)).status == "aborted"
        assert '"kind": "aborted"' in (folder / "events.jsonl").read_text()
        assert queue[n].outcome["exit_code"] == 130
    assert not any(process_alive(int(e.pid)) for e in queue.values() if e.pid)
