"""Memory of concurrent runs: PSS of each of 8 ``labctl run`` processes on simulated benches (goal: <= 40 MB each).

Two ways of starting the same 8 CCD runs (one simulated cell per channel, sampling every second until stopped),
measured in this session one after the other:

- ``labctl serve``: the queue's daemon forks each run from its warm fork server (labctl/queue/spawn.py), so the
  imported modules' pages are shared;
- ``python -m labctl run``: each run a fresh interpreter that imports everything itself (the previous way, the peer).

Each run's PSS (proportional set size: its private pages plus its share of pages it shares) is read from
/proc/PID/smaps_rollup once all 8 are sampling and have run ``--settle`` s more; a bare ``python -c "import numpy"``
is measured beside them for scale. Linux only.

    python benchmarks/run_memory.py [--runs 8] [--settle 10]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from labctl.queue import QueueDB
from labctl.store import Store

GOAL_MB = 40.0
LONG_CCD = ("ccd", "--bench", "sim", "--cell", "Ag|Mg", "-p", "sample_interval=1")  # ~60 h of test: runs until stopped
START_TIMEOUT_S = 180.0
LABCTL = (sys.executable, "-m", "labctl")


def memory_mb(pid: int) -> tuple[float, float]:
    """PSS (private pages plus a share of shared ones) and USS (private pages only: what one more run adds) of a
    process, MB, from /proc/PID/smaps_rollup."""
    fields = {name: int(value.split()[0]) / 1024 for name, _, value in
              (line.partition(":") for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])}
    return fields["Pss"], fields["Private_Clean"] + fields["Private_Dirty"]


def pss_mb(pid: int) -> float:
    return memory_mb(pid)[0]


def sampling_runs(store: Path) -> int:
    """How many runs of the store have written samples (more than the header and one row)."""
    return sum(1 for record in Store(store).registry.list()
               if (series := Path(record.folder) / "timeseries.bdf.csv").exists()
               and len(series.read_text().splitlines()) > 2)  # fmt: skip


def wait_until(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {START_TIMEOUT_S:g} s")
        time.sleep(0.2)


def measure(pids: Callable[[], list[int]], store: Path, runs: int, settle_s: float) -> list[tuple[float, float]]:
    wait_until(f"{runs} runs sampling", lambda: sampling_runs(store) >= runs)
    time.sleep(settle_s)
    return [memory_mb(pid) for pid in pids()]


def served(runs: int, settle_s: float) -> tuple[list[tuple[float, float]], float]:
    """PSS of each run forked by ``labctl serve``, and of its fork server."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        for channel in range(1, runs + 1):
            subprocess.run([*LABCTL, "queue", "add", *LONG_CCD, "--channel", str(channel), "--store", tmp],
                           check=True, capture_output=True)  # fmt: skip
        daemon = subprocess.Popen([*LABCTL, "serve", "--store", tmp, "--poll", "0.2"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            queue = QueueDB(store / "registry.sqlite")
            pids = lambda: [e.pid for e in queue.entries() if e.pid]  # noqa: E731
            per_run = measure(pids, store, runs, settle_s)
            server = {int(p) for pid in pids() for p in [Path(f"/proc/{pid}/stat").read_text().split()[3]]}
            server_mb = sum(pss_mb(p) for p in server)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=120)
    return per_run, server_mb


def fresh(runs: int, settle_s: float) -> list[tuple[float, float]]:
    """PSS of each run started as its own ``python -m labctl run`` (the previous way)."""
    with tempfile.TemporaryDirectory() as tmp:
        procs = [subprocess.Popen([*LABCTL, "run", *LONG_CCD, "--channel", str(channel), "--store", tmp],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for channel in range(1, runs + 1)]  # fmt: skip
        try:
            return measure(lambda: [p.pid for p in procs], Path(tmp), runs, settle_s)
        finally:
            for p in procs:
                p.send_signal(signal.SIGINT)
            for p in procs:
                p.wait(timeout=120)


def bare_numpy() -> float:
    proc = subprocess.Popen([sys.executable, "-c", "import numpy, sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    time.sleep(1.0)
    try:
        return pss_mb(proc.pid)
    finally:
        proc.communicate(b"")


def summary(label: str, values: list[tuple[float, float]]) -> str:
    pss, uss = ([v[i] for v in values] for i in (0, 1))
    return (f"{label}: PSS per run {sum(pss) / len(pss):.1f} MB mean, {max(pss):.1f} MB max; private (USS) "
            f"{sum(uss) / len(uss):.1f} MB mean ({len(values)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to let the runs go on before measuring")
    args = parser.parse_args()
    per_run, server_mb = served(args.runs, args.settle)
    peer = fresh(args.runs, args.settle)
    print(summary("labctl serve (forked from a warm server)", per_run) + f"; the fork server {server_mb:.1f} MB")
    print(summary("python -m labctl run (the previous way)", peer))
    print(f"python -c 'import numpy': {bare_numpy():.1f} MB; goal <= {GOAL_MB:g} MB per run")


if __name__ == "__main__":
    main()
