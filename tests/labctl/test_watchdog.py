"""A channel is never left running: kill -9 of a run, with its daemon alive or standalone, on a bench served by
`labctl sim serve` (real processes, real CTI); the emulated channel is checked through a second CTI client."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labctl.cli import app
from labctl.drivers.arbin.cti import CTIClient
from labctl.queue import Entry, QueueDB
from labctl.queue.watchdog import needs_rest
from labctl.store.folder import TIMESERIES
from labctl.store.registry import RunRecord, process_alive

LONG_CCD = ("ccd", "-p", "sample_interval=1")  # on Ag|Mg: about 60 h of test, runs until stopped
SHORT_CCD = ("ccd", "-p", "stop_density=0.3")  # a few seconds


@pytest.fixture(autouse=True)
def private_locks(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCTL_LOCK_DIR", str(tmp_path / "locks"))  # inherited by every labctl started here


@pytest.fixture
def served(tmp_path) -> Iterator[Path]:
    """A bench file for a `labctl sim serve` process (Ag|Mg cells), served until the test ends."""
    server = subprocess.Popen([sys.executable, "-m", "labctl", "sim", "serve", "--cell", "Ag|Mg", "--seed", "3"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("password"):
            line = server.stdout.readline()
            assert line, "sim serve ended early"
            lines.append(line)
        bench = tmp_path / "served.toml"
        bench.write_text("".join(lines), encoding="utf-8")
        yield bench
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def labctl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl", *map(str, args)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def channel_running(bench: Path, channel: int = 1) -> bool:
    """Whether a test runs on the emulated channel, as a second CTI client sees it."""
    address = next(line for line in bench.read_text().splitlines() if line.startswith("# cycler: "))
    host, port = address.removeprefix("# cycler: ").rsplit(":", 1)
    with CTIClient(host, int(port)) as client:
        return client.channel_info(channel).running


def wait_until(what: str, check: Callable[[], object], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def sampling(store: Path) -> bool:
    return any(len(series.read_text().splitlines()) > 2 for series in store.glob(f"runs/*/{TIMESERIES}"))


def entries(store: Path) -> dict[int, Entry]:
    return {e.id: e for e in QueueDB(store / "registry.sqlite").entries()}


def start_run(bench: Path, store: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "labctl", "run", *args, "--bench", str(bench), "--store",
                             str(store)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def kill_9_while_sampling(run: subprocess.Popen[bytes], store: Path) -> None:
    wait_until("the run to take samples", lambda: sampling(store))
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)


def test_kill_9_of_a_queued_run_while_its_daemon_lives_rests_the_channel(tmp_path, served):
    store = tmp_path / "store"
    added = labctl("queue", "add", *LONG_CCD, "--bench", served, "--store", store)
    assert added.returncode == 0, added.stderr
    with (tmp_path / "serve.out").open("ab") as out:
        daemon = subprocess.Popen([sys.executable, "-m", "labctl", "serve", "--store", str(store), "--poll", "0.2",
                                   "--no-resume"], stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_until("the run to take samples", lambda: sampling(store))
        assert channel_running(served)
        pid = entries(store)[1].pid
        assert pid
        subprocess.run(["kill", "-9", str(pid)], check=True)
        wait_until("the daemon to end the entry", lambda: entries(store)[1].state == "interrupted")
        assert not channel_running(served)  # before: the channel kept charging
        log = (store / "logs" / "serve.log").read_text()
        assert "channel 1 was left running by its run: put at rest and its test ended" in log
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    assert not process_alive(pid)


def test_the_operator_rests_a_channel_a_killed_standalone_run_left_charging(tmp_path, served):
    kill_9_while_sampling(start_run(served, tmp_path, *LONG_CCD), tmp_path)
    assert channel_running(served)  # nobody is left to rest it but the cycler's own time limit
    rested = labctl("channel", "rest", served, "1")
    assert rested.returncode == 0, rested.stderr
    assert f"channel 1 of {served}: at rest (0 A), its test ended" in rested.stdout
    assert not channel_running(served)
    again = labctl("channel", "rest", served, "1")
    assert again.returncode == 0 and "runs no test; nothing to rest" in again.stdout


def test_the_next_run_takes_over_and_rests_a_channel_a_killed_standalone_run_left_charging(tmp_path, served):
    kill_9_while_sampling(start_run(served, tmp_path, *LONG_CCD), tmp_path)
    assert channel_running(served)
    result = labctl("run", *SHORT_CCD, "--bench", served, "--store", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr  # before: 0x14 channel running, exit 1
    assert "was still running" in result.stderr and "resting and ending it before starting" in result.stderr
    assert not channel_running(served)


def test_a_run_refuses_a_channel_whose_run_lives_and_leaves_that_run_alone(tmp_path, served):
    live = start_run(served, tmp_path / "first", *LONG_CCD)
    try:
        wait_until("the first run to take samples", lambda: sampling(tmp_path / "first"))
        second = labctl("run", *SHORT_CCD, "--bench", served, "--store", tmp_path / "second")
        assert second.returncode == 1
        assert f"a live labctl process (pid {live.pid}) runs a test on this channel" in second.stdout + second.stderr
        assert live.poll() is None and channel_running(served)
    finally:
        live.send_signal(signal.SIGINT)
        assert live.wait(timeout=60) == 130
    assert not channel_running(served)


def test_channel_rest_on_an_in_process_sim_bench_says_nothing_can_be_left_running():
    result = CliRunner().invoke(app, ["channel", "rest", "sim", "1"])
    assert result.exit_code == 0, result.output
    assert "channel 1 of sim: a simulated bench ends with its run; nothing is left running" in result.output


def test_channel_rest_refuses_a_missing_bench_naming_it(tmp_path):
    result = CliRunner().invoke(app, ["channel", "rest", str(tmp_path / "nope.toml"), "1"])
    assert result.exit_code == 2 and "nope.toml" in result.output and "Traceback" not in result.output


def test_only_runs_that_did_not_rest_their_channel_need_the_daemon_to():
    record = RunRecord(id="r", procedure="ccd", status="failed", started_at="", ended_at=None, bench="b",
                       cell_id=None, folder="", host="", pid=1, summary=None)  # fmt: skip
    assert [needs_rest(code, record) for code in (0, 130, 143, 1, -9)] == [False, False, False, True, True]
    assert not needs_rest(2, None)  # refused before its run began: nothing was started
