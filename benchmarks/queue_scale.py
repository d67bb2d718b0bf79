"""How the run queue scales over agents: claims by 1–16 agents on PostgreSQL against SQLite, and add-to-start time.

Both parts run on a throwaway PostgreSQL server (tests/postgres.py, the Debian package's server) against the store's
own SQLite file as the peer, in this session one after the other. The server syncs each commit, as a lab's does and
as the SQLite peer does (WAL, synchronous=FULL); ``--pg-no-sync`` runs it as the tests do (fsync and
synchronous_commit off), which flatters PostgreSQL against a peer that still syncs.

1. Claims. ``--entries`` queued entries, each with an instrument of its own (``cycler@bench#N``), are claimed by
   ``--agents`` agent processes on PostgreSQL (and ``--sqlite-agents`` on SQLite, whose writers take turns: 1 is the
   peer, 4 for reference). Each agent has its own connection (and, on PostgreSQL, a LISTEN connection, as a real
   agent has) and loops as ``Daemon.step`` does: read the live queue (``QueueDB.live_entries``), ``due(...)``, then
   ``claim_start`` each candidate and ``end`` it at once, so its instrument is free again; it stops when nothing it
   hosts is queued. Every agent hosts every bench (``labctl serve`` without ``--bench``), and once more, with the
   most agents, each hosts a bench of its own (each PC serving its own ``--bench``: disjoint entries). Printed per
   configuration: entries claimed per second (all agents, from the common start to the last agent's end), median
   and p95 time of one successful ``claim_start`` call, the failed claim attempts (an entry another agent claimed
   first or holds locked), how many queue reads the agents made and their share of the agents' time, and whether
   every entry was claimed exactly once (by the agents' own tallies, and in the database: every entry ended by the
   agent that claimed it, no claim left). Then what one queue read costs per backend at the table's final size:
   a step reads the live entries only (waiting, running, and the ended ones a waiting entry follows), however many
   ended entries the table keeps.
2. Add to start. A real ``labctl serve`` (its own ``--store``, default poll of 1 s, so on PostgreSQL it is
   LISTEN/NOTIFY that wakes it) idles; ``--repeats`` times, the entry that ``labctl queue add ccd --bench sim --cell
   "Ag|Mg" -p stop_density=0.5`` builds is added in this process (``plan`` then ``QueueDB.add``, as the command
   does) at a random moment, and timed from the moment ``add`` returns (the row is committed) until the entry is
   ``running`` (claimed, its run forked) and until the run's registry row appears (the run has started), polling
   the database every few ms; the run then finishes before the next add. The first entry after the daemon starts
   also starts its fork server: it is shown apart. Then the same on PostgreSQL with ``--history`` ended entries in
   the queue table first, as a lab's table holds after some months. Goal: <= 1 s with LISTEN/NOTIFY.

Needs the ``postgresql`` Debian package (``.ci/run`` installs it) and psycopg. A full run takes ~2-3 min on 2 cores.

    python benchmarks/queue_scale.py [--entries 1000] [--agents 1 4 16] [--sqlite-agents 1 4] [--repeats 5]
                                     [--history 5000] [--part claims|serve] [--pg-no-sync]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import multiprocessing
import os
import queue as queue_module
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.queue.db import ENDED, Entry, QueueDB, utc_now
from labctl.queue.schedule import due
from labctl.store.db import Database, open_database
from labctl.store.schema import prepare

ROOT = Path(__file__).resolve().parents[1]
BENCH = "bench"  # the claim entries' benches are bench0, bench1, …; their instruments cycler@bench#N
LEASE_S = 30.0  # the lab's default lease (labctl.lab.config.DEFAULT_LEASE_S)
GOAL_S = 1.0
POLL_S = 0.003  # how often part 2 looks at the database
SERVE_AGENT = "queue-scale"
ADD = ("ccd", "sim", ["stop_density=0.5"], "Ag|Mg")  # procedure, --bench, -p, --cell of `labctl queue add`
RUN_TIMEOUT_S = 120.0
DURABLE = "-c listen_addresses=127.0.0.1"  # PostgreSQL's own defaults otherwise: each commit synced, as a lab's server


def _load_postgres() -> Any:
    spec = importlib.util.spec_from_file_location("postgres", ROOT / "tests" / "postgres.py")
    module = sys.modules.setdefault("postgres", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (``q`` in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


# -- part 1: claims -------------------------------------------------------------------------------------------------


def bench_of(k: int, benches: int) -> str:
    return f"{BENCH}{k % benches}"


def claim_entries(n: int, benches: int) -> list[Entry]:
    """``n`` entries over ``benches`` benches, each holding a cycler channel of its own."""
    return [Entry(procedure="ccd", bench=bench_of(k, benches), params={"cell_id": f"cell-{k}"},
                  claims=[f"cycler@{BENCH}#{k}"], channel=k) for k in range(1, n + 1)]  # fmt: skip


def agent(url: str, name: str, bench: str | None, barrier: Any, results: Any) -> None:
    """One agent process hosting ``bench`` (None: every bench): its own connection, then ``Daemon.step``'s loop
    until nothing it hosts is queued."""
    db = open_database(url)
    queue = QueueDB(db)
    listener = db.waiter()  # PostgreSQL delivers each NOTIFY to it, as to a real agent (which reads them between steps)
    hosted: Callable[[str], bool] = lambda b: bench is None or b == bench  # noqa: E731
    claimed: list[int] = []
    ok_s: list[float] = []
    failed_s: list[float] = []
    read_s, reads = 0.0, 0
    barrier.wait(timeout=120)
    start = time.perf_counter()
    while True:
        t = time.perf_counter()
        entries = queue.live_entries()
        candidates = due(entries, utc_now(), hosted)
        read_s, reads = read_s + time.perf_counter() - t, reads + 1
        if not any(e.state == "queued" and hosted(e.bench) for e in entries):
            break
        for entry in candidates:
            t = time.perf_counter()
            took = queue.claim_start(entry.id, utc_now(), name, LEASE_S)
            (ok_s if took else failed_s).append(time.perf_counter() - t)
            if took:
                queue.end(entry.id, "finished", {}, utc_now())
                claimed.append(entry.id)
    stop = time.perf_counter()
    listener.close()
    db.close()
    results.put({"name": name, "claimed": claimed, "ok_s": ok_s, "failed_s": failed_s, "read_s": read_s,
                 "reads": reads, "start": start, "stop": stop})  # fmt: skip


@dataclass
class ClaimResult:
    backend: str
    agents: int
    split: bool  # each agent hosts a bench of its own (else every agent hosts every bench)
    entries: int
    wall_s: float
    ok_s: list[float]
    failed: int
    reads: int
    read_share: float
    problems: list[str]
    read_once_s: float  # one queue read (live_entries() + due()) at the table's final size, by one idle process

    @property
    def rate(self) -> float:
        return self.entries / self.wall_s


def claim_run(backend: str, url: str, n_agents: int, n_entries: int, split: bool = False) -> ClaimResult:
    db = open_database(url)
    prepare(db)
    ids = QueueDB(db).add(claim_entries(n_entries, n_agents if split else 1))
    db.close()  # no connection of ours crosses the fork
    context = multiprocessing.get_context("fork")  # quick to start; each agent opens its own connection
    barrier, results = context.Barrier(n_agents), context.Queue()
    procs = [context.Process(target=agent, args=(url, f"agent-{k}", bench_of(k, n_agents) if split else None, barrier,
                                                 results)) for k in range(n_agents)]  # fmt: skip
    for p in procs:
        p.start()
    tallies = []
    while len(tallies) < n_agents:
        try:
            tallies.append(results.get(timeout=1))
        except queue_module.Empty:
            if all(p.exitcode is not None for p in procs) and results.empty():
                raise RuntimeError(f"{n_agents - len(tallies)} agent(s) died; see the traceback above") from None
    for p in procs:
        p.join(timeout=60)
    problems = [f"agent process exited with {p.exitcode}" for p in procs if p.exitcode]
    claimer = {entry_id: t["name"] for t in tallies for entry_id in t["claimed"]}
    counts = Counter(entry_id for t in tallies for entry_id in t["claimed"])
    if twice := sorted(i for i, c in counts.items() if c > 1):
        problems.append(f"{len(twice)} entries claimed more than once (e.g. {twice[:5]})")
    if never := sorted(set(ids) - set(counts)):
        problems.append(f"{len(never)} entries never claimed (e.g. {never[:5]})")
    db = open_database(url)
    queue = QueueDB(db)
    entries = queue.entries()
    if wrong := [e.id for e in entries if e.state != "finished" or e.agent != claimer.get(e.id)]:
        problems.append(f"{len(wrong)} entries not finished by the agent that claimed them (e.g. {wrong[:5]})")
    if held := queue.held_claims():
        problems.append(f"{len(held)} claims left held")
    read_once = []
    for _ in range(5):
        t = time.perf_counter()
        due(queue.live_entries(), utc_now())
        read_once.append(time.perf_counter() - t)
    db.close()
    busy = sum(t["stop"] - t["start"] for t in tallies)
    return ClaimResult(
        backend, n_agents, split, n_entries, max(t["stop"] for t in tallies) - min(t["start"] for t in tallies),
        [s for t in tallies for s in t["ok_s"]], sum(len(t["failed_s"]) for t in tallies),
        sum(t["reads"] for t in tallies), sum(t["read_s"] for t in tallies) / busy if busy else 0.0, problems,
        statistics.median(read_once),
    )  # fmt: skip


def print_claims(results: list[ClaimResult]) -> None:
    print(f"\n1. Claims: {results[0].entries} queued entries, an instrument each, claimed and ended at once")
    print(f"{'backend':10} {'agents':>6} {'hosting':>7} {'wall s':>7} {'claims/s':>8} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'failed':>6} {'reads':>5} {'read %':>6}  exactly once")  # fmt: skip
    for r in results:
        once = "yes" if not r.problems else "NO: " + "; ".join(r.problems)
        print(f"{r.backend:10} {r.agents:6d} {'own' if r.split else 'all':>7} {r.wall_s:7.2f} {r.rate:8.0f} "
              f"{ms(statistics.median(r.ok_s)):>7} {ms(percentile(r.ok_s, 0.95)):>7} {r.failed:6d} {r.reads:5d} "
              f"{r.read_share * 100:6.1f}  {once}")  # fmt: skip
    print("(p50, p95: one successful claim_start; failed: claim attempts refused, the entry already taken or locked; "
          "read %: the agents' time in live_entries() + due())")  # fmt: skip
    by = {(r.backend, r.agents): r for r in results if not r.split}
    pg = sorted((r for r in results if r.backend == "postgresql" and not r.split), key=lambda r: r.agents)
    if pg and (peer := by.get(("sqlite", 1))):
        print(f"claims/s, PostgreSQL / SQLite with 1 agent: {pg[0].rate / peer.rate:.2f} ({pg[0].agents} agent)"
              + "".join(f"; {r.agents} agents {r.rate / peer.rate:.2f}" for r in pg[1:]))  # fmt: skip
    if len(pg) > 1:
        print(f"PostgreSQL claims/s against its own {pg[0].agents} agent: "
              + ", ".join(f"{r.agents} agents x{r.rate / pg[0].rate:.2f}" for r in pg[1:])
              + "".join(f", {r.agents} agents each hosting its own bench x{r.rate / pg[0].rate:.2f}"
                        for r in results if r.split))  # fmt: skip
        print("(hosting all: every agent tries every due entry, in queue order, so each entry costs agents - 1 failed "
              "claims; own: the agents' entries are disjoint, as when each PC serves its own --bench)")  # fmt: skip
    for backend in ("postgresql", "sqlite"):
        if rows := [r for r in results if r.backend == backend]:
            once = statistics.median(r.read_once_s for r in rows)
            print(f"one queue read (live_entries() + due()) with {rows[0].entries} ended rows in the table, {backend}: "
                  f"{once * 1000:.1f} ms")  # fmt: skip
    worst = max(results, key=lambda r: r.read_share)
    verdict = "dominates" if worst.read_share > 0.5 else "does not dominate"
    print(f"reading the queue each step {verdict} this burst: at most {worst.read_share * 100:.0f}% of the "
          f"agents' time ({worst.backend}, {worst.agents} agents)")  # fmt: skip


# -- part 2: add to start -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def lab_database(url: str | None) -> Iterator[None]:
    """LABCTL_DB set to ``url`` (unset for None) in this process, as the desk's `labctl queue add` would see it."""
    before = os.environ.pop("LABCTL_DB", None)
    if url:
        os.environ["LABCTL_DB"] = url
    try:
        yield
    finally:
        os.environ.pop("LABCTL_DB", None)
        if before is not None:
            os.environ["LABCTL_DB"] = before


@contextlib.contextmanager
def serving(root: Path, url: str | None) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``labctl serve`` on ``root`` (LABCTL_DB ``url``, or the store's SQLite file), stopped at the end."""
    env = {k: v for k, v in os.environ.items() if k != "LABCTL_DB"} | ({"LABCTL_DB": url} if url else {})
    log = (root / "serve-stderr.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "labctl", "serve", "--store", str(root), "--agent", SERVE_AGENT],
                            env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def wait_for(what: str, check: Callable[[], bool], timeout_s: float, every_s: float, proc: subprocess.Popen[bytes],
             root: Path) -> float:  # fmt: skip
    """Poll ``check`` until it holds; the perf_counter time it first held. RuntimeError if the daemon died."""
    deadline = time.perf_counter() + timeout_s
    while True:
        if check():
            return time.perf_counter()
        if proc.poll() is not None:
            raise RuntimeError(f"labctl serve exited with {proc.returncode} before {what}; see {root}/logs/serve.log")
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:g} s; see {root}/logs/serve.log")
        time.sleep(every_s)


@dataclass
class StartTimes:
    running_s: float
    registered_s: float
    state: str  # how the entry ended


def add_and_time(queue: QueueDB, db: Database, proc: subprocess.Popen[bytes], root: Path) -> StartTimes:
    """Add one entry as `labctl queue add` does; the time from its commit to running, and to its run's registry row."""
    from labctl.cli.options import cli_request
    from labctl.queue.entries import plan

    procedure, bench, params, cell = ADD
    request = cli_request(procedure, bench=bench, params=params, cell=cell, seed=None, channel=None)
    entries = plan(request, queue)
    runs_before = db.execute("SELECT COUNT(*) AS n FROM runs").fetchone()["n"]
    (entry_id,) = queue.add(entries)
    committed = time.perf_counter()
    running = registered = None
    state = "queued"

    def started() -> bool:  # each time taken once its query has answered: never early
        nonlocal running, registered, state
        if running is None:
            state = db.execute("SELECT state FROM queue WHERE id = ?", (entry_id,)).fetchone()["state"]
            running = time.perf_counter() if state != "queued" else None
        if registered is None and db.execute("SELECT COUNT(*) AS n FROM runs").fetchone()["n"] > runs_before:
            registered = time.perf_counter()
        return running is not None and registered is not None

    wait_for(f"entry {entry_id} to start", started, RUN_TIMEOUT_S, POLL_S, proc, root)

    def ended() -> bool:
        nonlocal state
        state = db.execute("SELECT state FROM queue WHERE id = ?", (entry_id,)).fetchone()["state"]
        return state in ENDED

    wait_for(f"entry {entry_id} to end", ended, RUN_TIMEOUT_S, 0.1, proc, root)
    assert running is not None and registered is not None
    return StartTimes(running - committed, registered - committed, state)


def add_history(queue: QueueDB, n: int) -> None:
    """``n`` entries that ran and finished, as a lab's queue table keeps them (it keeps every entry)."""
    if n <= 0:
        return
    queue.add([Entry(procedure="ccd", bench="sim", params={"cell_id": f"old-{k}", "stop_density": "0.5"}, cell="Ag|Mg",
                     claims=[f"cycler@sim#{k % 16 + 1}"], channel=k % 16 + 1) for k in range(n)])  # fmt: skip
    outcome = json.dumps({"exit_code": 0, "folder": "/lab/runs/20261201-120000-ccd-0000",
                          "headline": "No failure: the cell passed every step (the last at 0.5 mA/cm²)"})  # fmt: skip
    queue.database.execute("UPDATE queue SET state = 'finished', started_at = added_at, ended_at = added_at, "
                           "agent = ?, run_id = 'old', outcome = ? WHERE state = 'queued'", (SERVE_AGENT, outcome))  # fmt: skip


def serve_latency(url: str | None, root: Path, repeats: int, rng: random.Random, history: int = 0) -> list[StartTimes]:
    """The first entry's times (cold: it starts the fork server), then ``repeats`` more on the idle daemon; the
    queue holds ``history`` ended entries first."""
    from labctl.store import Store

    root.mkdir(parents=True)
    with lab_database(url):
        store = Store(root)
        queue = store.queue  # created (and migrated) before the daemon opens it
        add_history(queue, history)
        db = open_database(url or root / "registry.sqlite")  # the poller's own connection
        try:
            with serving(root, url) as proc:
                wait_for("labctl serve to register its agent", lambda: bool(db.execute(
                    "SELECT COUNT(*) AS n FROM agents WHERE name = ?", (SERVE_AGENT,)).fetchone()["n"]), 60, 0.05,
                    proc, root)  # fmt: skip
                times = []
                for _ in range(repeats + 1):
                    time.sleep(rng.uniform(0.3, 1.3))  # idle again, at any moment of the daemon's poll
                    times.append(add_and_time(queue, db, proc, root))
        finally:
            db.close()
            store.close()
    return times


def print_serve(results: dict[str, list[StartTimes]], repeats: int) -> None:
    print(f"\n2. Add to start on an idle labctl serve (poll 1 s): ms from the add's commit, median and max of {repeats}")
    print(f"{'queue':32} {'to running':>10} {'max':>7} {'to registry row':>15} {'max':>7} {'cold: run / reg':>16}  ended")
    for label, (cold, *warm) in results.items():
        run_s, reg_s = [t.running_s for t in warm], [t.registered_s for t in warm]
        ended = ", ".join(f"{s} {n}" for s, n in Counter(t.state for t in (cold, *warm)).items())
        cold_text = f"{ms(cold.running_s)} / {ms(cold.registered_s)}"
        print(f"{label:32} {ms(statistics.median(run_s)):>10} {ms(max(run_s)):>7} {ms(statistics.median(reg_s)):>15} "
              f"{ms(max(reg_s)):>7} {cold_text:>16}  {ended}")  # fmt: skip
    print("(cold: the first entry after the daemon started, which also starts its fork server)")
    if (pg := results.get("postgresql")) and (lite := results.get("sqlite")):
        ratio = statistics.median(t.running_s for t in pg[1:]) / statistics.median(t.running_s for t in lite[1:])
        print(f"to running, PostgreSQL (LISTEN/NOTIFY) / SQLite (poll): {ratio:.3f}")
    for label, times in results.items():
        if not label.startswith("postgresql"):
            continue
        for what, values in (("running", [t.running_s for t in times[1:]]),
                             ("registry row", [t.registered_s for t in times[1:]])):  # fmt: skip
            median = statistics.median(values)
            met = "met" if max(values) <= GOAL_S else "met by the median only" if median <= GOAL_S else "NOT met"
            print(
                f"goal <= {GOAL_S:g} s from add to {what} ({label}): {met} (median {median * 1000:.0f} ms, "
                f"max {max(values) * 1000:.0f} ms)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--agents", type=int, nargs="+", default=[1, 4, 16], help="agent counts on PostgreSQL")
    parser.add_argument("--sqlite-agents", type=int, nargs="*", default=[1, 4], help="agent counts on SQLite")
    parser.add_argument("--repeats", type=int, default=5, help="adds timed on each idle daemon (part 2)")
    parser.add_argument(
        "--history",
        type=int,
        default=5000,
        help="part 2 once more on PostgreSQL with this many ended entries in the queue table (0: not)",
    )
    parser.add_argument("--part", choices=["claims", "serve"], help="run only this part")
    parser.add_argument(
        "--pg-no-sync",
        action="store_true",
        help="run PostgreSQL as tests do: fsync and synchronous_commit off (the SQLite peer still syncs each commit)",
    )
    parser.add_argument("--seed", type=int, default=0, help="of the random moments of the adds")
    args = parser.parse_args()
    pg = _load_postgres()
    if not args.pg_no_sync:
        pg.SETTINGS = DURABLE  # read when the server starts
    if reason := pg.unavailable():
        raise SystemExit(f"no PostgreSQL server here: {reason}")
    started = time.perf_counter()
    with pg.PostgresServer.start() as server, tempfile.TemporaryDirectory(prefix="queue-scale.") as tmp:
        if args.part in (None, "claims"):
            claims = [claim_run("postgresql", server.create_database(f"claims_{n}"), n, args.entries)
                      for n in args.agents]  # fmt: skip
            if max(args.agents) > 1:
                claims.append(claim_run("postgresql", server.create_database("claims_split"), max(args.agents),
                                        args.entries, split=True))  # fmt: skip
            claims += [claim_run("sqlite", str(Path(tmp) / f"claims-{n}" / "registry.sqlite"), n, args.entries)
                       for n in args.sqlite_agents]  # fmt: skip
            print_claims(claims)
        if args.part in (None, "serve"):
            rng, tmp_path = random.Random(args.seed), Path(tmp)
            serve = {"postgresql": serve_latency(server.create_database("serve"), tmp_path / "pg", args.repeats, rng),
                     "sqlite": serve_latency(None, tmp_path / "sqlite", args.repeats, rng)}  # fmt: skip
            if args.history:
                serve[f"postgresql, {args.history} ended before"] = serve_latency(
                    server.create_database("history"), tmp_path / "pg-history", args.repeats, rng, args.history
                )
            print_serve(serve, args.repeats)
    print(f"\n({time.perf_counter() - started:.0f} s in all, on {os.cpu_count()} CPUs; other load makes figures noisy)")


if __name__ == "__main__":
    main()
