"""Runs forked from the daemon's warm fork server: exactly a `labctl run`, sharing the imported modules' pages."""

from __future__ import annotations

import importlib.util
import os
import signal
import time
from pathlib import Path

from labctl.queue.spawn import RUN_MODULES, start_run

SHORT_CCD = ("ccd", "--bench", "sim", "--cell", "Ag|Mg", "-p", "stop_density=0.5")
LONG_CCD = ("ccd", "--bench", "sim", "--cell", "Ag|Mg", "-p", "sample_interval=1")
FRESH_RUN_PRIVATE_MB = 110  # what a `python -m labctl run` process imports privately (numpy, scipy, pandas, ...)


def private_mb(pid: int) -> float:
    """Pages only this process holds (its unique set size), MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    return sum(int(fields[k].split()[0]) for k in ("Private_Clean", "Private_Dirty")) / 1024


def wait_for(check, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_forked_run_is_a_labctl_run_with_its_output_in_the_log(tmp_path):
    log = tmp_path / "run.log"
    run = start_run(["run", *SHORT_CCD, "--store", str(tmp_path)], log)
    assert run.wait() == 0 and run.poll() == 0
    assert "finished" in log.read_text()


def test_a_forked_run_exits_as_labctl_run_does_on_bad_input(tmp_path):
    log = tmp_path / "run.log"
    run = start_run(["run", "ccd", "--bench", "sim", "-p", "stop_density=-1", "--store", str(tmp_path)], log)
    assert run.wait() == 2
    assert "stop_density" in log.read_text()


def test_a_forked_run_in_its_own_session_shares_the_warm_modules_and_stops_in_order_on_sigint(tmp_path):
    log = tmp_path / "run.log"
    run = start_run(["run", *LONG_CCD, "--store", str(tmp_path)], log)
    wait_for(lambda: log.exists() and "cycle" in log.read_text())
    assert os.getsid(run.pid) == run.pid  # its own session, as start_new_session gave a Popen child
    assert private_mb(run.pid) < FRESH_RUN_PRIVATE_MB / 2  # numpy, scipy, pymeasure ... are the server's pages
    run.send_signal(signal.SIGINT)
    assert run.wait() == 130
    assert "aborted" in log.read_text()


def test_every_module_the_fork_server_preloads_exists():
    """A renamed module would silently leave each run to import it (and its memory) itself."""
    for name in RUN_MODULES:
        assert importlib.util.find_spec(name) is not None, name
