"""Issue 16's hostile sweep, counted: bad inputs, killed processes and wire faults on simulated benches.

    python benchmarks/hostile_sweep.py [--quick] [--seed N] [--keep]

Needs only ``pip install -e '.[test]'``; everything listens on 127.0.0.1. Four parts:

1. Bad inputs: every parameter of every procedure, the bad values of its kind (tests/hostile_values.py: NaN, ±inf,
   out of range, huge, empty, text, markup, emoji codes, control characters, long text; TOML's own values and
   non-UTF-8 bytes in run files), through `labctl run -p`, `labctl queue add -p` and run files in-process, plus a few
   real `labctl` processes (non-UTF-8 argv included). *Refused cleanly*: exit 2, the parameter (for undecodable
   files: the file) named, no traceback, no run folder, no store created by `run`, nothing queued. A value accepted
   by mistake may start a run: each procedure gets a few valid settings that keep such a run short (never the
   parameter under test).
2. kill -9 of a standalone `labctl run` (long CCD) at a random moment, on a `labctl sim serve` bench.
3. kill -9 of a run under a live `labctl serve`, then kill -9 of the daemon with its other run; restart it.
4. Every fault-proxy mode (drop, delay past the feedback timeout, cut, garble, scale ×100 with a valid checksum,
   silent) on the Arbin CTI path during a CCD and a CE run (`labctl run` processes), once (a transient, at a random
   reply) and for good (every channel-info reply from a random one on).

Counts: *survived* = no traceback, the run ended as a clean instrument fault (exit 1 naming it) or went on (exit
0) or, for kills, its record says interrupted (or it was resumed and ended); its channel at rest after. *Channels
left running* = channels still passing current after 1000 s of bench time past the case (the cycler's own 900 s lease
must have ended any segment by then). Reported beside it: killed standalone runs' channels that ran until that lease
(by design: nobody is left to rest them), and daemon-case or wire-fault channels that labctl should have rested at once
but only the lease ended (these fail their case).
*Rows lost* = rows a killed run published on its live feed (it publishes a row only after writing it) that are not
complete lines of its CSV afterwards, plus half-written lines. *Instrument faults reported as cell failures* = fault
runs whose results or events name a short or contact loss that the same run without faults (same seed) does not.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / f"{name}.py")
    module = sys.modules.setdefault(name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


hv, fp = _load("hostile_values"), _load("fault_proxy")
PY = [sys.executable, "-m", "labctl"]
CHANNELS_INFO_FB = bytes.fromhex("03 00 BA EE")
CURRENT_AT = 24 + 1681  # frame offset of the first channel record's f32 current (tests/procedures/test_instrument_...)
FEEDBACK_TIMEOUT_S = 2.0  # the fault bench's CTI feedback timeout (a bench option), so 'delay' and 'silent' are quick
LEASE_S = 1000.0  # bench time past the cycler's 900 s lease (drivers/arbin/universal.py UNWATCHED_LIMIT_S)
SHORT = {  # valid settings that keep a run a mistakenly accepted value starts short
    "ccd": {"stop_density": "0.2"}, "ce-cycling": {"cycles": "2"}, "ce-reservoir": {"cycles": "1"},
    "insitu-eis": {"cycles": "1", "half_cycle_capacity": "0.25"}, "fullcell": {"cycles": "1"},
    "fullcell-doc": {"cycles": "1"}, "rate": {"cycles_per_rate": "1", "rates": "1"},
    "fullcell-ccd": {"cycles_after": "0", "charge_densities": "0.6"}, "hold": {"duration": "20", "readout_times": "10"},
    "activation": {"cycles": "1"}, "eis": {"points_per_decade": "2"},
}  # fmt: skip
DETECTIONS = ("short", "contact")  # words of event kinds and result keys that say the cell failed


@dataclass
class Part:
    """One part's counts and its failures, each a line that reproduces it."""

    tried: int = 0
    passed: int = 0
    tracebacks: int = 0
    failures: list[str] = field(default_factory=list)

    def count(self, problems: list[str], what: str) -> None:
        self.tried += 1
        if problems:
            self.failures.append(f"{what}: {'; '.join(problems)}")
            self.tracebacks += any("traceback" in p for p in problems)
        else:
            self.passed += 1


@dataclass
class Tally:
    inputs: Part = field(default_factory=Part)
    kills: Part = field(default_factory=Part)
    daemon: Part = field(default_factory=Part)
    proxy: Part = field(default_factory=Part)
    left_running: list[str] = field(default_factory=list)
    running_after_kill: int = 0
    until_lease: list[str] = field(default_factory=list)  # channels nobody rested where labctl should have
    killed_runs: int = 0
    rows_lost: int = 0
    misreported: list[str] = field(default_factory=list)
    known: dict[str, int] = field(default_factory=dict)  # known-bug reason -> failures it explains


def env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "LABCTL_HOME": str(tmp / "home"), "LABCTL_LOCK_DIR": str(tmp / "locks"), "COLUMNS": "400"}


def traceback_in(text: str) -> list[str]:
    return ["a traceback"] if "Traceback" in text else []


# --- 1. bad inputs ---

def random_bad(rng: random.Random, name: str, p: Any, n: int) -> list[str]:
    """``n`` more bad values of ``name``'s kind, drawn from ``rng``."""
    k, found = hv.kind(name, p), []
    while len(found) < n:
        poison = rng.choice(["[", "[/x]", ":100:", "\x00", "\x1b[1m", "💯", "\x7f"])
        if k == "float":
            pick = rng.choice([repr(p.minimum - rng.expovariate(1e-2) - 1e-9),
                               repr(p.maximum + rng.expovariate(1e-2) + 1e-9), f"{p.default}{poison}"])
        elif k == "int":
            pick = rng.choice([str(p.minimum - rng.randint(1, 10**6)), str(p.maximum + rng.randint(1, 10**6)),
                               f"{rng.randint(0, 99)}.{rng.randint(1, 9)}"])
        elif k == "bool":
            pick = rng.choice([str(rng.randint(2, 99)), f"true{poison}", "t", "f"])
        elif k == "choice":
            pick = rng.choice([str(rng.choice(p.choices)).upper() + "x", poison, f"{p.choices[0]}{poison}"])
        elif k == "text":
            pick = f"{p.default}{poison}{rng.randint(0, 9)}"
        else:
            pick = f"cell{chr(rng.choice([*range(0, 9), *range(14, 32), 127]))}{rng.randint(0, 9)}"
        if hv.is_bad(name, p, pick):
            found.append(pick)
    return found


def bad_input_cases(rng: random.Random, quick: bool) -> list[tuple[str, str, str, str | bytes]]:
    """(procedure, parameter, entry, value) for the sweep."""
    entries, cases = ("run", "queue", "file"), []
    for i, (proc, name, p) in enumerate(hv.parameters()):
        values = hv.canonical_bad(name, p) + random_bad(rng, name, p, 2 if quick else 8)
        if quick:
            values = rng.sample(values, 3)
        cases += [(proc, name, entries[(i + j) % 3], v) for j, v in enumerate(values)]
        cases.append((proc, name, "file", str(p.default).encode() + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])))
    return cases


def invoke(args: list[str]) -> tuple[int, str]:
    from typer.testing import CliRunner

    from labctl.cli import app

    logging.getLogger().handlers.clear()  # labctl's basicConfig binds to this invocation's stderr, not a closed one
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        text += f"\nTraceback (raised in labctl): {result.exception!r}"
    return result.exit_code, text


def queue_of(store: Path) -> Callable[[], list[Any]]:
    from labctl.queue import QueueDB
    from labctl.store import registry_path

    return lambda: QueueDB(registry_path(store)).entries() if registry_path(store).exists() else []


def sweep_inputs(rng: random.Random, quick: bool, tmp: Path, tally: Tally) -> None:
    for n, (proc, name, entry, value) in enumerate(bad_input_cases(rng, quick)):
        folder = tmp / f"in-{n}"
        folder.mkdir()
        store = folder / "store"
        short = [a for k, v in SHORT.get(proc, {}).items() if k != name for a in ("-p", f"{k}={v}")]
        names: tuple[str, ...] = (name,)
        if entry == "file":
            path = hv.run_file(folder, proc, name, value)
            code, text = invoke(["run", str(path), *short, "--store", str(store)])
            names = (path.name, "UTF-8") if isinstance(value, bytes) else names
        elif entry == "run":
            code, text = invoke(["run", proc, "--bench", "sim", *short, "-p", f"{name}={value}", "--store", str(store)])
        else:
            code, text = invoke(["queue", "add", proc, *short, "-p", f"{name}={value}", "--store", str(store)])
        problems = hv.refusal_problems(code, text, names, store, store_may_exist=entry == "queue",
                                       queued=queue_of(store))
        shown = f"labctl {'queue add' if entry == 'queue' else 'run'} {proc} -p {name}={value!r}" + \
            (" (in a run file)" if entry == "file" else "")
        tally.inputs.count(problems, shown)
        if problems:
            why = hv.known_bug(proc, name, value, entry) if isinstance(value, str) else None
            tally.known[why or "NEW"] = tally.known.get(why or "NEW", 0) + 1
    real_processes(tmp, tally)


REAL = [  # (argv after `labctl`, the names a refusal must give, store may exist (queue))
    (["run", "ccd", "-p", "stop_density=nan"], ("stop_density",), False),
    (["run", "eis", "-p", "points_per_decade=1.5"], ("points_per_decade",), False),
    (["queue", "add", "ccd", "-p", "variant=[/x]"], ("variant",), True),
    (["run", "ccd", "-p", "stop_density=0.2", "-p", b"cell_id=Ag\xff"], ("cell_id",), False),
    (["queue", "add", "ccd", "-p", b"cell_id=Ag\xff"], ("cell_id",), True),
    (["run", "hold", "-p", "readout_times=nan", "-p", "duration=20"], ("readout_times",), False),
]


def real_processes(tmp: Path, tally: Tally) -> None:
    for n, (args, names, queue) in enumerate(REAL):
        store = tmp / f"real-{n}"
        done = subprocess.run([*PY, *map(os.fsencode, args), "--store", str(store)], capture_output=True, env=env(tmp),
                              timeout=300)  # fmt: skip
        text = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
        problems = hv.refusal_problems(done.returncode, text, names, store, store_may_exist=queue,
                                       queued=queue_of(store))
        tally.inputs.count(problems, "real process: labctl " + " ".join(
            a.decode(errors="backslashreplace") if isinstance(a, bytes) else a for a in args))


# --- benches, channels and feeds ---

class ServedBench:
    """`labctl sim serve` as a process: its bench file, its emulated channels seen through a second CTI client."""

    def __init__(self, tmp: Path, seed: int) -> None:
        self.process = subprocess.Popen([*PY, "sim", "serve", "--cell", "Ag|Mg", "--seed", str(seed)], env=env(tmp),
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        lines: list[str] = []
        while not lines or not lines[-1].startswith("password"):
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("labctl sim serve ended early")
            lines.append(line)
        self.file = tmp / "served.toml"
        self.file.write_text("".join(lines), encoding="utf-8")
        address = {k: v for k, _, v in (line[2:].strip().partition(": ") for line in lines if line.startswith("# "))}
        self.cycler = _host_port(address["cycler"])
        self.clock = _host_port(address["clock"])

    def channel(self, channel: int) -> Any:
        return channel_info(self.cycler, channel)

    def pass_lease(self) -> None:
        """Move the bench's time past the cycler's lease (the control channel, never the instrument protocol)."""
        with socket.create_connection(self.clock, timeout=60) as s:
            s.sendall(json.dumps({"op": "advance", "dt": LEASE_S, "stop_on_event": False}).encode() + b"\n")
            reply = json.loads(s.makefile().readline())
        if not reply.get("ok"):
            raise RuntimeError(f"advancing the served bench failed: {reply}")

    def close(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)


def _host_port(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def channel_info(address: tuple[str, int], channel: int) -> Any:
    from labctl.drivers.arbin.cti import CTIClient

    with CTIClient(*address) as client:
        return client.channel_info(channel)


def passing_current(info: Any) -> bool:
    return abs(info.current_A) > 1e-12 or info.status_word in ("Charge", "Discharge")


class FeedWatch(threading.Thread):
    """Follows run ``run_id`` (None: the first that appears in ``store``): how many rows its live feed published."""

    def __init__(self, store: Path, run_id: str | None = None) -> None:
        super().__init__(daemon=True)
        self.store, self.published, self.run_id = store, 0, run_id
        self.stop = threading.Event()
        self.start()

    def run(self) -> None:
        from labctl.live.feed import feed_path

        while not self.stop.is_set() and self.run_id is None:
            found = sorted((self.store / "runs").glob("*")) if (self.store / "runs").exists() else []
            self.run_id = found[0].name if found else None
            time.sleep(0.01)
        path = feed_path(str(self.run_id))
        while not self.stop.is_set():
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(path))
                    for line in s.makefile("rb"):
                        record = json.loads(line)
                        if record["topic"] == "hello":
                            self.published = max(self.published, record["record"]["sent"]["sample"])
                        elif record["topic"] == "sample":
                            self.published = max(self.published, record["seq"] + 1)
                return
            except (OSError, ValueError):
                time.sleep(0.01)


def rows_lost(watch: FeedWatch, store: Path) -> tuple[int, list[str]]:
    """Rows the run published but its CSV lacks as whole lines, plus broken lines; and the problem, if any. The line
    after the last newline is not counted (readers skip it: the row being written)."""
    watch.stop.set()
    watch.join(timeout=10)
    if watch.run_id is None:
        return 0, []
    series = store / "runs" / watch.run_id / "timeseries.bdf.csv"
    text = series.read_text(encoding="utf-8") if series.exists() else ""
    lines = text.split("\n")
    complete = lines[:-1]
    header = complete[0].count(",") if complete else 0
    broken = [n for n, line in enumerate(complete[1:], 2) if line.count(",") != header]
    stored = max(0, len(complete) - 1) - len(broken)
    lost = max(0, watch.published - stored) + len(broken)
    problems = [f"{lost} rows lost ({watch.published} published, {stored} whole rows stored)"] if lost else []
    return lost, problems


def wait_until(check: Callable[[], object], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def sampling(store: Path) -> bool:
    return any(len(p.read_text().splitlines()) > 2 for p in store.glob("runs/*/timeseries.bdf.csv"))


def run_status(store: Path, tmp: Path) -> tuple[str | None, str]:
    """The run's status as `labctl runs list --json` (which marks dead runs interrupted) gives it."""
    done = subprocess.run([*PY, "runs", "list", "--json", "--store", str(store)], capture_output=True, text=True,
                          env=env(tmp), timeout=120)  # fmt: skip
    if done.returncode != 0:
        return None, done.stdout + done.stderr
    runs = json.loads(done.stdout)
    return (runs[-1]["status"] if runs else None), done.stderr


# --- 2. kill -9 of a standalone run ---

def kill_runs(rng: random.Random, cases: int, served: ServedBench, tmp: Path, tally: Tally) -> None:
    for n in range(cases):
        channel, store = n % 6 + 1, tmp / f"kill-{n}"
        log = (tmp / f"kill-{n}.log").open("wb")
        run = subprocess.Popen([*PY, "run", "ccd", "--bench", str(served.file), "--channel", str(channel), "-p",
                                "sample_interval=1", "--store", str(store)], env=env(tmp), stdout=log, stderr=log)
        watch = FeedWatch(store)
        moment = rng.uniform(0.0, 6.0) if n % 2 else None  # half at a random moment, half once sampling, then random
        if moment is None:
            wait_until(lambda s=store: sampling(s), 60)
            moment = rng.uniform(0.0, 2.0)
        time.sleep(moment)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
        log.close()
        lost, problems = rows_lost(watch, store)
        tally.killed_runs += 1
        tally.rows_lost += lost
        problems += traceback_in((tmp / f"kill-{n}.log").read_text(errors="replace"))
        at_once = served.channel(channel)
        tally.running_after_kill += passing_current(at_once)
        served.pass_lease()
        after = served.channel(channel)
        if passing_current(after):
            problems.append(f"channel {channel} still passes {after.current_A:g} A {LEASE_S:g} s after the kill")
            tally.left_running.append(f"kill -9 run #{n}, channel {channel}")
        if watch.run_id is not None:
            status, text = run_status(store, tmp)
            problems += [f"status {status!r}, not interrupted"] if status not in (None, "interrupted") else []
            problems += traceback_in(text)
        tally.kills.count(problems, f"kill -9 of `labctl run ccd --bench {served.file.name} --channel {channel}` "
                                   f"{moment:.2f} s {'after its start' if n % 2 else 'into sampling'}")
        print(f"  kill #{n} at {moment:.2f} s {'after start' if n % 2 else 'into sampling'}: {watch.published} rows "
              f"published, {lost} lost; channel {channel} {'passing current' if passing_current(at_once) else 'at rest'}"
              f" at once, {'passing current' if passing_current(after) else 'at rest'} after the lease", flush=True)


# --- 3. kill -9 under and of the daemon ---

ENDED = ("finished", "interrupted", "aborted")  # honest ends of an entry whose run was killed (resumed, or not)


def kill_daemon(rng: random.Random, cases: int, served: ServedBench, tmp: Path, tally: Tally) -> None:
    """Two long CCDs under `labctl serve`: kill -9 of run 1 (the daemon resumes it or ends it interrupted, and rests
    a channel no run holds), then kill -9 of the daemon (its runs are told to terminate: channel at rest), then a
    restart that resumes or ends them. Each case injects two faults; both survive only if the case is clean."""
    for n in range(cases):
        daemon_case(n, rng, served, tmp, tally)


def daemon_case(n: int, rng: random.Random, served: ServedBench, tmp: Path, tally: Tally) -> None:
    from labctl.queue import QueueDB
    from labctl.store.registry import process_alive

    store, problems = tmp / f"serve-{n}", []
    for channel in (7, 8):
        subprocess.run([*PY, "queue", "add", "ccd", "--bench", str(served.file), "--channel", str(channel), "-p",
                        "sample_interval=1", "--store", str(store)], env=env(tmp), check=True, capture_output=True)

    def entries(s: Path = store) -> dict[int, Any]:
        return {e.id: e for e in QueueDB(s / "registry.sqlite").entries()}

    def serve() -> subprocess.Popen[bytes]:
        with (tmp / f"serve-{n}.log").open("ab") as log:
            return subprocess.Popen([*PY, "serve", "--store", str(store), "--poll", "0.2"], env=env(tmp),
                                    stdout=log, stderr=log)  # fmt: skip

    daemon = serve()
    if not wait_until(lambda: all(x.run_id for x in entries().values()), 60):
        problems.append("the daemon did not start both runs")
    runs = entries()
    watches = {i: FeedWatch(store, str(e.run_id)) for i, e in runs.items()}
    wait_until(lambda: sampling(store), 60)
    time.sleep(rng.uniform(0.0, 2.0))
    os.kill(int(runs[1].pid), signal.SIGKILL)  # a run dies under a live daemon
    if not wait_until(lambda: (e := entries()[1]).state != "running" or (e.pid != runs[1].pid and e.pid and
                                                                        process_alive(int(e.pid))), 30):
        problems.append("the daemon neither resumed nor ended entry 1 within 30 s of its run's kill -9")
    time.sleep(rng.uniform(0.0, 2.0) if n % 2 else 0.0)  # even cases: the daemon dies as it resumes run 1
    children = [int(e.pid) for e in entries().values() if e.pid and e.state == "running"]
    daemon.send_signal(signal.SIGKILL)  # the daemon dies: its runs are told to terminate (pidfd)
    daemon.wait(timeout=30)
    if not wait_until(lambda: not any(process_alive(pid) for pid in children), 60):
        problems.append(f"runs {children} outlived their daemon by 60 s")
    for channel in (7, 8):
        problems += _channel_check(served, channel, "its run's daemon was killed", tally, f"serve #{n}")
    for i in runs:
        lost, lost_problems = rows_lost(watches[i], store)
        tally.killed_runs += 1
        tally.rows_lost += lost
        problems += lost_problems
    daemon = serve()  # restarted: resumes the interrupted runs (or ends them interrupted with --no-resume)
    if not wait_until(lambda: all(x.state in ENDED for x in entries().values()), 180):
        problems.append(f"180 s after a restart the entries are {[x.state for x in entries().values()]}")
    daemon.send_signal(signal.SIGTERM)
    if daemon.wait(timeout=60) != 0:
        problems.append(f"the restarted daemon exited {daemon.returncode} on SIGTERM")
    problems += [f"entry {i} ended {e.state}" for i, e in entries().items() if e.state not in ENDED]
    for channel in (7, 8):
        problems += _channel_check(served, channel, "after the restarted daemon stopped", tally, f"serve #{n}")
    problems += traceback_in(_read(tmp / f"serve-{n}.log"))
    problems += [p for i in runs for p in traceback_in(_read(store / "logs" / f"queue-{i}.log"))]
    tally.daemon.count(problems, f"serve #{n}: kill -9 of run 1 under `labctl serve --store {store}`, then "
                                 "kill -9 of the daemon with its runs, then a restart")
    tally.daemon.tried += 1  # two faults per case
    tally.daemon.passed += not problems
    print(f"  serve #{n}: entries {[(i, e.state) for i, e in entries().items()]}", flush=True)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _channel_check(served: ServedBench, channel: int, what: str, tally: Tally, label: str) -> list[str]:
    """Problems if ``channel`` still passes current 30 s after ``what``: it ran until the cycler's lease (nobody rested
    it) or, worse, past it."""
    if wait_until(lambda: not passing_current(served.channel(channel)), 30):
        return []
    served.pass_lease()
    if passing_current(served.channel(channel)):
        tally.left_running.append(f"{label}, channel {channel}")
        return [f"channel {channel} ({what}) passes current even past the cycler's lease"]
    tally.until_lease.append(f"{label}, channel {channel}")
    return [f"channel {channel} ({what}) was left passing current until the cycler's lease ended it"]


# --- 4. wire faults on the CTI path ---

FAULT_RUNS = {  # procedure, its settings, the simulated cell: no failure within these settings
    "ccd": (["-p", "stop_density=0.5", "-p", "sample_interval=5"], "Ag|Mg"),
    "ce-cycling": (["-p", "cycles=5"], "Mg/W-Cu"),
}
MODES = {  # fault-proxy options of each mode; persistent ones hit every channel-info reply from a random one on
    "drop": {}, "delay": {"seconds": FEEDBACK_TIMEOUT_S + 1.0}, "cut": {}, "garble": {},
    "scale": {"offset": CURRENT_AT, "factor": 100.0}, "silent": {},
}  # fmt: skip


def fault_run(proc: str, mode: str | None, persistent: bool, skip: int, seed: int, tmp: Path, label: str) -> dict:
    """Run ``proc`` through a fault proxy on its own simulated bench; what happened."""
    from labctl.sim_instruments.bench import SimBench
    from labctl.sim_instruments.catalog import make_cell

    args, cell = FAULT_RUNS[proc]
    folder = tmp / label
    folder.mkdir()
    with SimBench(lambda n: make_cell(cell, area_cm2=1.131, seed=seed), channels=1, speed=None,
                  impedance_channel=None) as sim, fp.FaultProxy(sim.cycler.address) as proxy:  # fmt: skip
        if mode is not None:
            command = CHANNELS_INFO_FB if persistent or mode == "scale" else None
            proxy.inject("delay", command=command, seconds=0.0, count=skip)  # pass the first replies untouched
            proxy.inject(mode, command=command, count=-1 if persistent else 1, **MODES[mode])
        bench = folder / "bench.toml"
        bench.write_text(sim.config_toml().replace(sim.addresses()["cycler"], f"127.0.0.1:{proxy.port}").replace(
            'password = "000000"', f'password = "000000"\ntimeout_s = {FEEDBACK_TIMEOUT_S}'), encoding="utf-8")
        done = subprocess.run([*PY, "run", proc, "--bench", str(bench), *args, "--store", str(folder / "store")],
                              capture_output=True, text=True, env=env(tmp), timeout=600)  # fmt: skip
        at_once = channel_info(sim.cycler.address, 1)
        sim.clock.advance(LEASE_S, stop_on_event=False)
        after = channel_info(sim.cycler.address, 1)
        injected = proxy.injected[min(skip, len(proxy.injected)):] if mode else []  # less the untouched replies
    run = next((folder / "store" / "runs").glob("*"), None)
    results = json.loads((run / "results.json").read_text()) if run and (run / "results.json").exists() else {}
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()] if run else []
    said = {e["kind"] for e in events if any(w in e["kind"] for w in DETECTIONS)}
    said |= {k for k in ("failure_mode", "short") if results.get(k)}
    return {"code": done.returncode, "text": done.stdout + done.stderr, "said": said, "injected": injected,
            "at_once": passing_current(at_once), "after": passing_current(after), "bench": bench}


def wire_faults(rng: random.Random, quick: bool, seed: int, tmp: Path, tally: Tally) -> None:
    for proc in FAULT_RUNS:
        base = fault_run(proc, None, False, 0, seed, tmp, f"{proc}-baseline")
        print(f"  {proc} baseline: exit {base['code']}, cell failures named {sorted(base['said']) or 'none'}", flush=True)
        if base["code"] != 0 or base["at_once"]:
            tally.proxy.failures.append(f"{proc} baseline without faults: exit {base['code']}: {base['text'][-300:]}")
        plans = [(m, p) for m in MODES for p in (False, True)]
        if quick:
            plans = [(m, (i + (proc == "ccd")) % 2 == 0) for i, m in enumerate(MODES)]
        for mode, persistent in plans:
            skip = rng.randint(5, 60)
            label = f"{proc}-{mode}-{'persistent' if persistent else 'once'}"
            got = fault_run(proc, mode, persistent, skip, seed, tmp, label)
            problems = traceback_in(got["text"])
            if not got["injected"]:
                problems.append("the fault was never injected (the run ended first)")
            if got["code"] not in (0, 1) or (got["code"] == 1 and "fault" not in got["text"].lower()):
                problems.append(f"exit {got['code']}: {got['text'][-200:]!r}")
            if got["said"] - base["said"]:
                problems.append(f"reported as a cell failure: {sorted(got['said'] - base['said'])}")
                tally.misreported.append(label)
            if got["after"]:
                problems.append("channel passes current after the run and the cycler's lease")
                tally.left_running.append(label)
            elif got["at_once"]:
                problems.append("channel left passing current until the cycler's lease ended it")
            ended = "went on (exit 0)" if got["code"] == 0 else f"exit {got['code']}"
            print(f"  {label} after {skip} replies: {ended}, {len(got['injected'])} injected, cell failures named "
                  f"{sorted(got['said']) or 'none'}, channel {'passing current' if got['at_once'] else 'at rest'}; "
                  + (got["text"].strip().splitlines() or [""])[-1][:160], flush=True)
            tally.proxy.count(problems, f"{label} (after {skip} replies; {ended}): labctl run {proc} --bench "
                                        f"{got['bench']} {' '.join(FAULT_RUNS[proc][0])} with the proxy's "
                                        f"{mode} {'on every channel-info reply' if persistent else 'once'}")


# --- report ---

def report(tally: Tally, seed: int, quick: bool, seconds: dict[str, float]) -> int:
    i, k, d, x = tally.inputs, tally.kills, tally.daemon, tally.proxy
    faults, survived = k.tried + d.tried + x.tried, k.passed + d.passed + x.passed
    rows = [
        ("bad inputs tried / refused cleanly", f"{i.tried} / {i.passed}", f"tracebacks {i.tracebacks}"),
        ("faults injected / survived", f"{faults} / {survived}",
         f"kill -9 run {k.passed}/{k.tried}, daemon {d.passed}/{d.tried}, wire {x.passed}/{x.tried}"),
        ("channels left running (past the 900 s lease)", str(len(tally.left_running)),
         f"until the lease: {tally.running_after_kill} of {k.tried} killed standalone runs (by design), "
         f"{len(tally.until_lease)} daemon-case channels ({', '.join(tally.until_lease) or 'none'})"),
        ("rows lost", str(tally.rows_lost), f"over {tally.killed_runs} killed runs"),
        ("instrument faults reported as cell failures", str(len(tally.misreported)), ", ".join(tally.misreported)),
    ]
    print(f"\nhostile sweep, seed {seed}, {'quick' if quick else 'full'}; "
          + ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items()))
    for label, count, note in rows:
        print(f"  {label:<46} {count:>12}   {note}")
    if tally.known:
        print("\nbad inputs not refused cleanly, by known bug (tests/hostile_values.py; NEW: none known):")
        for why, n in sorted(tally.known.items(), key=lambda kv: -kv[1]):
            print(f"  {n:5d}  {why}")
    for part_name, part in (("bad inputs", i), ("kill -9 run", k), ("daemon", d), ("wire faults", x)):
        if part.failures:
            print(f"\n{part_name}: {len(part.failures)} failures")
            for line in part.failures:
                print("  " + line.replace("\n", "\\n")[:600])
    clean = not (i.tried - i.passed or faults - survived or tally.left_running or tally.rows_lost or tally.misreported)
    return 0 if clean else 1


PARTS = ("inputs", "kills", "daemon", "wire")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small sample (a few minutes)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts to run: {', '.join(PARTS)}")
    parser.add_argument("--daemon-cases", type=int, help="kill -9 daemon cases (default: 1 quick, 3 full)")
    parser.add_argument("--keep", action="store_true", help="keep the stores and logs (their folder is printed)")
    opts = parser.parse_args()
    parts = set(opts.only.split(","))
    rng, tally, seconds = random.Random(opts.seed), Tally(), {}
    tmp = Path(tempfile.mkdtemp(prefix="hostile-sweep-"))
    os.environ.update(LABCTL_HOME=str(tmp / "home"), LABCTL_LOCK_DIR=str(tmp / "locks"))  # never the user's own
    print(f"work folder {tmp}", flush=True)
    started = time.monotonic()
    if "inputs" in parts:
        sweep_inputs(rng, opts.quick, tmp, tally)
        seconds["inputs"] = time.monotonic() - started
        print(f"bad inputs: {tally.inputs.passed}/{tally.inputs.tried} refused cleanly", flush=True)
    if parts & {"kills", "daemon"}:
        served = ServedBench(tmp, opts.seed)
        try:
            started = time.monotonic()
            if "kills" in parts:
                kill_runs(rng, 4 if opts.quick else 12, served, tmp, tally)
            if "daemon" in parts:
                kill_daemon(rng, opts.daemon_cases or (1 if opts.quick else 3), served, tmp, tally)
            seconds["kills"] = time.monotonic() - started
            print(f"kills: {tally.kills.passed}/{tally.kills.tried}, daemon {tally.daemon.passed}/"
                  f"{tally.daemon.tried}", flush=True)
        finally:
            served.close()
    if "wire" in parts:
        started = time.monotonic()
        wire_faults(rng, opts.quick, opts.seed, tmp, tally)
        seconds["wire faults"] = time.monotonic() - started
    code = report(tally, opts.seed, opts.quick, seconds)
    if not opts.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
