"""Agents of one lab sharing a PostgreSQL database, each a real `labctl serve` with its own store folder and
LABCTL_HOST (as on its own PC), all on 127.0.0.1: every entry runs once, on the agent hosting its bench; a killed
agent's entries are shown unreachable to the other, which never takes them nor their instruments, and its restart
takes them back; one analyzer that both agents' bench files name is used by one run at a time; a third process (the
CLI and the GUI at a desk) sees every agent's runs."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.drivers.arbin.cti import CTIClient
from labctl.queue import Entry, QueueDB
from labctl.store.db import open_database
from labctl.store.folder import EVENTS, METADATA, TIMESERIES
from labctl.store.reader import RunReader
from labctl.store.registry import Registry, RunRecord, process_alive
from labctl.store.schema import prepare

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt makes the QApplication (the GUI test)

LEASE_S = 2.0
AG_MG = ("--cell", "Ag|Mg")  # no short below 2.4 mA/cm²
TINY_CCD = ("-p", "stop_density=0.1", "-p", "cycles_per_step=1", "-p", "half_cycle_time=0.05", "-p",
            "sample_interval=60")  # one level, one cycle: a run of well under a second once forked  # fmt: skip
SHORT_CCD = ("-p", "stop_density=0.3")  # on the served Ag|Mg bench: a few seconds
LONG_CCD = ("-p", "sample_interval=1")  # about 60 h of test: runs until stopped
AGENTS = {"agent-a": "pc-a", "agent-b": "pc-b"}  # agent name → its PC (LABCTL_HOST): two different words on purpose


def wait_until(what: str, check: Callable[[], object], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


class Lab:
    """PCs of one lab on this machine: each a store folder and an environment (its LABCTL_HOST, the lab's
    LABCTL_DB, a short lease, channel locks of its own); the test looks at the lab database as a desk would."""

    def __init__(self, root: Path, url: str) -> None:
        self.root, self.url = root, url
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self._queue: QueueDB | None = None

    def store(self, host: str) -> Path:
        return self.root / host

    def env(self, host: str) -> dict[str, str]:
        return {**os.environ, "LABCTL_DB": self.url, "LABCTL_HOST": host, "LABCTL_LEASE_S": str(LEASE_S),
                "LABCTL_LOCK_DIR": str(self.root / f"{host}-locks")}  # fmt: skip

    def labctl(self, host: str, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "labctl", *args, "--store", str(self.store(host))],
                                env=self.env(host), capture_output=True, text=True, timeout=120)  # fmt: skip
        assert result.returncode == 0, f"labctl {' '.join(args)} on {host}: {result.stderr}"
        return result

    def add(self, *args: str | Path) -> list[int]:
        """Queue from the desk, as an operator would; the new entries' ids."""
        result = self.labctl("desk", "queue", "add", *map(str, args), "--json")
        return [entry["id"] for entry in json.loads(result.stdout)]

    def serve(self, agent: str, *benches: str | Path) -> subprocess.Popen[bytes]:
        host = AGENTS[agent]
        self.store(host).mkdir(parents=True, exist_ok=True)
        with (self.store(host) / "serve.out").open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "labctl", "serve", "--store", str(self.store(host)),
                                     "--agent", agent, "--poll", "0.2", *(a for b in benches for a in ("--bench", str(b)))],
                                    env=self.env(host), stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        self.agents[agent] = proc
        return proc

    def stop(self, agent: str) -> None:
        """SIGTERM: the agent stops its runs in order and leaves."""
        proc = self.agents.pop(agent)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0, self.log(AGENTS[agent])[-3000:]

    def kill(self, agent: str) -> None:
        proc = self.agents.pop(agent)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def close(self) -> None:
        for proc in self.agents.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.agents.values():
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._queue is not None:
            self._queue.close()

    # -- the lab database, as the desk sees it (LABCTL_HOST=desk in this process)

    @property
    def queue(self) -> QueueDB:
        if self._queue is None:
            self._queue = QueueDB(open_database(self.url))  # after the first `queue add` made its tables
        return self._queue

    def entries(self) -> dict[int, Entry]:
        return {e.id: e for e in self.queue.entries()}

    def runs(self) -> dict[str, RunRecord]:
        return {r.id: r for r in Registry(self.queue.database, LEASE_S).list()}

    def run_of(self, entry_id: int) -> RunRecord | None:
        run_id = self.entries()[entry_id].run_id
        return self.runs().get(run_id) if run_id else None

    def sampling(self, entry_id: int, more_than: int = 2) -> bool:
        """Whether the entry's run has stored more than ``more_than`` lines of its time series."""
        run = self.run_of(entry_id)
        series = Path(run.folder) / TIMESERIES if run else None
        return series is not None and series.exists() and len(series.read_text().splitlines()) > more_than

    def ended(self, ids: list[int]) -> bool:
        entries = self.entries()
        return all(entries[i].ended_at for i in ids)

    def reachable(self, agent: str) -> bool:
        return any(row["name"] == agent and row["reachable"] for row in self.queue.database.execute(
            f"SELECT name, lease_until >= {self.queue.database.now_s} AS reachable FROM agents"))  # fmt: skip

    # -- an agent's own record of what it did

    def log(self, host: str) -> str:
        path = self.store(host) / "logs" / "serve.log"
        return path.read_text() if path.exists() else ""

    def started_by(self, host: str) -> list[int]:
        """The entries this PC's agent started a run for (a resume is not a start), as often as it did."""
        return [int(n) for n in re.findall(r"entry (\d+): started ", self.log(host))]


@pytest.fixture
def lab(tmp_path, pg_url, monkeypatch) -> Iterator[Lab]:
    monkeypatch.setenv("LABCTL_HOST", "desk")
    lab = Lab(tmp_path, pg_url)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def served(tmp_path) -> Iterator[str]:
    """The bench config printed by `labctl sim serve` (Ag|Mg cells, seed 3), served on 127.0.0.1 until the test
    ends: one set of instruments, outliving every run as hardware does, that two PCs' bench files can name."""
    out, err = tmp_path / "sim-serve.out", tmp_path / "sim-serve.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "labctl", "sim", "serve", "--cell", "Ag|Mg", "--seed", "3"],
                                stdout=stdout, stderr=stderr)  # fmt: skip
    try:
        wait_until("the bench to be served", lambda: proc.poll() is not None or "Serving on" in err.read_text(), 60)
        assert proc.poll() is None, err.read_text()
        yield out.read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def bench_file(served: str, path: Path, name: str, roles: tuple[str, ...]) -> Path:
    """A bench file named ``name`` whose ``roles`` are the served instruments (with the served clock)."""
    data = tomllib.loads(served)
    data = {"name": name, "clock": data["clock"], "roles": {role: data["roles"][role] for role in roles}}
    path.write_text("\n".join(_toml(data)) + "\n", encoding="utf-8")
    assert tomllib.loads(path.read_text()) == data
    return path


def _toml(table: dict[str, Any], prefix: str = "") -> list[str]:
    lines = [f"{key} = {json.dumps(value)}" for key, value in table.items() if not isinstance(value, dict)]
    for key, value in table.items():
        if isinstance(value, dict):
            lines += ["", f"[{prefix}{key}]", *_toml(value, f"{prefix}{key}.")]
    return lines


def events(run: RunRecord) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (Path(run.folder) / EVENTS).read_text().splitlines()]


def active_span(run: RunRecord) -> tuple[float, float]:
    """Wall times of a run's first and last events: it used its instruments within this span."""
    times = [event["wall_time"] for event in events(run)]
    return min(times), max(times)


def cycler_current_A(bench: Path, channel: int) -> float:
    """The served cycler's current on ``channel``, as a CTI client of its own reads it."""
    host, port = tomllib.loads(bench.read_text())["roles"]["cycler"]["resource"].rsplit(":", 1)
    with CTIClient(host, int(port)) as client:
        return client.channel_info(channel).current_A


def test_two_agents_run_sixteen_entries_once_each_on_the_agent_that_hosts_their_bench(lab):
    hosted = {"sim": "agent-a", "sim-sp200": "agent-b"}
    ids: dict[str, list[int]] = {}
    for bench in hosted:
        for _ in range(2):  # channels 1-4 twice: the second four wait for the first four's channels
            ids.setdefault(bench, []).extend(lab.add("ccd", "--bench", bench, *AG_MG, *TINY_CCD, "--channel", "1",
                                                     "--count", "4"))  # fmt: skip
    lab.serve("agent-a", "sim")
    lab.serve("agent-b", "sim-sp200")
    every = [n for bench_ids in ids.values() for n in bench_ids]
    assert len(every) == 16
    wait_until("all 16 entries to end", lambda: lab.ended(every), 150)
    lab.stop("agent-a")
    lab.stop("agent-b")

    entries, runs = lab.entries(), lab.runs()
    assert sorted(entries) == sorted(every)
    assert {e.state for e in entries.values()} == {"finished"}
    assert sorted(runs) == sorted(e.run_id for e in entries.values())  # one run per entry, and no other run
    assert len(lab.queue.database.execute("SELECT id FROM runs").fetchall()) == 16
    for bench, agent in hosted.items():
        host = AGENTS[agent]
        for n in ids[bench]:
            entry, run = entries[n], runs[str(entries[n].run_id)]
            assert entry.agent == agent and run.agent == agent and run.host == host
            assert run.status == "finished" and run.bench == bench
            assert Path(run.folder).parent.parent == lab.store(host).resolve()  # written on its agent's PC
        assert sorted(lab.started_by(host)) == sorted(ids[bench])  # started there once each, and nothing else
    assert lab.queue.held_claims() == {}
    assert lab.queue.database.execute("SELECT name FROM agents").fetchall() == []  # both left when stopped


def test_a_killed_agents_entries_are_unreachable_never_taken_over_and_its_restart_takes_them_back(lab, served):
    # Two PCs' bench files naming one served cycler: an entry of either claims the same cycler channels. (One run at
    # a time on it: runs of a served bench all step its one virtual clock, so a fast run would carry another's
    # segment past its unwatched limit.) A also hosts a bench simulated inside its runs, whose runs cannot resume.
    bench_a = bench_file(served, lab.root / "bench-a.toml", "bench-a", ("cycler",))
    bench_b = bench_file(served, lab.root / "bench-b.toml", "bench-b", ("cycler",))
    mine = [*lab.add("ccd", "--bench", bench_a, *LONG_CCD, "--channel", "1"),
            *lab.add("ccd", "--bench", "sim", *AG_MG, *LONG_CCD, "--channel", "1")]  # fmt: skip
    on_served, on_sim = mine
    lab.serve("agent-a", bench_a, "sim")
    lab.serve("agent-b", bench_b)
    wait_until("agent A's runs to take samples", lambda: all(lab.sampling(n) for n in mine))
    wait_until("agent B to serve", lambda: lab.reachable("agent-b"))
    theirs = lab.add("ccd", "--bench", bench_b, *SHORT_CCD, "--channel", "1")  # the channel A's run holds
    before = lab.entries()
    run_ids = {n: str(before[n].run_id) for n in mine}

    lab.kill("agent-a")
    wait_until("A's runs to stop with their agent", lambda: not any(process_alive(int(before[n].pid)) for n in mine))
    wait_until("A's entries to be shown unreachable", lambda: all(lab.entries()[n].state == "unreachable" for n in mine))
    for n in mine:  # each run got SIGTERM from its dying agent and rested its channel itself
        run = lab.runs()[run_ids[n]]
        assert run.status == "interrupted" and run.agent == "agent-a" and run.host == "pc-a"
        assert "interrupted" in [e["kind"] for e in events(run)]
        assert json.loads((Path(run.folder) / METADATA).read_text())["status"] == "interrupted"
    assert cycler_current_A(bench_a, 1) == 0
    other = lab.add("ccd", "--bench", bench_b, *SHORT_CCD, "--channel", "3")  # B goes on with what is free
    wait_until("B's entry on a free channel to finish", lambda: lab.ended(other), 90)

    seen_by_b = {e["id"]: e for e in json.loads(lab.labctl("pc-b", "queue", "list", "--json").stdout)}
    for n in mine:
        assert seen_by_b[n]["state"] == "unreachable" and seen_by_b[n]["agent"] == "agent-a"
        assert "agent agent-a not heard from" in seen_by_b[n]["status"]
    # waiting for the instrument A's unreachable entry holds
    assert seen_by_b[theirs[0]]["state"] == "queued" and seen_by_b[theirs[0]]["status"].startswith("waits for cycler@")
    assert seen_by_b[other[0]]["state"] == "finished" and seen_by_b[other[0]]["agent"] == "agent-b"
    claims = lab.queue.held_claims()
    assert claims == {claim: n for n in mine for claim in before[n].claims}
    assert before[theirs[0]].claims == before[on_served].claims

    lab.serve("agent-a", bench_a, "sim")  # the same agent back on its PC: it resumes what can go on, ends the rest
    wait_until("A to take its entries back", lambda: lab.entries()[on_served].state == "running"
               and lab.runs()[run_ids[on_served]].status == "running" and lab.ended([on_sim]))  # fmt: skip
    rows = len((Path(lab.runs()[run_ids[on_served]].folder) / TIMESERIES).read_text().splitlines())
    wait_until("the resumed run to take samples", lambda: lab.sampling(on_served, rows))
    time.sleep(1.5 * LEASE_S)  # longer than a lease: still reachable only if the leases are renewed
    entries, runs = lab.entries(), lab.runs()  # as any other PC sees them (this process is the desk)
    assert entries[on_served].state == "running" and entries[on_served].agent == "agent-a"
    assert runs[run_ids[on_served]].status == "running" and runs[run_ids[on_served]].host == "pc-a"
    assert entries[on_sim].state == "interrupted" and runs[run_ids[on_sim]].status == "interrupted"
    assert entries[theirs[0]].state == "queued"

    lab.labctl("desk", "queue", "cancel", str(on_served))
    wait_until("A's run to stop and B's waiting entry to finish", lambda: lab.ended([on_served, *theirs]), 120)
    lab.stop("agent-a")
    lab.stop("agent-b")

    entries, runs = lab.entries(), lab.runs()
    assert all(entries[n].agent == "agent-a" and entries[n].run_id == run_ids[n] for n in mine)
    resumed = runs[run_ids[on_served]]
    assert entries[on_served].state == "aborted" and resumed.status == "aborted"
    kinds = [e["kind"] for e in events(resumed)]
    assert kinds.index("interrupted") < kinds.index("resumed") < kinds.index("aborted")
    assert len(json.loads((Path(resumed.folder) / METADATA).read_text())["resumed"]) == 1
    assert entries[on_sim].state == "interrupted" and runs[run_ids[on_sim]].status == "interrupted"
    for n in mine:
        assert f"entry {n}: run {run_ids[n]} was interrupted; resuming it" in lab.log("pc-a")
    for n in [*theirs, *other]:
        assert entries[n].state == "finished" and entries[n].agent == "agent-b"
        assert runs[str(entries[n].run_id)].host == "pc-b"
    # the same channel: B's run began after A's had ended
    assert active_span(resumed)[1] < active_span(runs[str(entries[theirs[0]].run_id)])[0]
    assert sorted(lab.started_by("pc-a")) == sorted(mine)  # started once each; the restart never started them anew
    assert sorted(lab.started_by("pc-b")) == sorted(theirs + other)
    assert lab.queue.held_claims() == {}


def test_an_analyzer_both_agents_benches_name_is_used_by_one_run_at_a_time(lab, served):
    bench_a = bench_file(served, lab.root / "bench-a.toml", "bench-a", ("cycler", "impedance"))
    bench_b = bench_file(served, lab.root / "bench-b.toml", "bench-b", ("cycler", "impedance"))
    eis = ("eis", "-p", "points_per_decade=5", "--count", "3")
    ids = {"agent-a": lab.add(*eis, "--bench", bench_a, "-p", "cell_id=from-a"),
           "agent-b": lab.add(*eis, "--bench", bench_b, "-p", "cell_id=from-b")}  # fmt: skip
    claims = {claim for e in lab.entries().values() for claim in e.claims}
    assert len(claims) == 1 and claims.pop().startswith("impedance@TCPIP::127.0.0.1::")  # one analyzer, six entries
    lab.serve("agent-a", bench_a)  # both start on a full queue: each wants the analyzer at once
    lab.serve("agent-b", bench_b)
    every = ids["agent-a"] + ids["agent-b"]
    wait_until("all six spectra", lambda: lab.ended(every), 150)
    lab.stop("agent-a")
    lab.stop("agent-b")

    entries, runs = lab.entries(), lab.runs()
    uses = []
    for agent, agent_ids in ids.items():
        for n in agent_ids:
            run = runs[str(entries[n].run_id)]
            assert entries[n].state == "finished" and entries[n].agent == agent and run.host == AGENTS[agent]
            uses.append((active_span(run), entries[n]))
    uses.sort(key=lambda use: use[0])
    for (first, entry), (then, next_entry) in itertools.pairwise(uses):
        assert first[1] < then[0], f"entries {entry.id} and {next_entry.id} used the analyzer at once"
        assert str(entry.ended_at) <= str(next_entry.started_at)
    assert {entry.agent for _, entry in uses} == set(ids)  # both agents had turns
    assert lab.queue.held_claims() == {}


@pytest.fixture
def desk_window(lab, qtbot, monkeypatch, tmp_path_factory) -> Iterator[Callable[[], Any]]:
    """Makes the GUI at the desk: the main window on the desk's store, in this process with the lab's LABCTL_DB and
    LABCTL_HOST=desk, as tests/gui/test_app.py builds it. Each is closed, its looking stopped, before the lab (and its
    database) goes away."""
    from PyQt6.QtCore import QSettings, QTimer

    from labctl.gui.app import MainWindow

    settings = tmp_path_factory.mktemp("settings")
    for form in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(form, QSettings.Scope.UserScope, str(settings))  # never the user's remembered choices
    for name, value in lab.env("desk").items():
        if name.startswith("LABCTL_"):
            monkeypatch.setenv(name, value)
    windows = []

    def make() -> Any:
        window = MainWindow(lab.store("desk"), poll_ms=250)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        for timer in window.findChildren(QTimer):
            timer.stop()


def shown_by(window: Any) -> tuple[dict[str, tuple[str, str | None]], dict[str, tuple[str, str | None]]]:
    """run id → (status, agent) as the window's run browser shows them, and → (state, agent) as its queue panel does,
    each looked at again now."""
    window.queue_panel.refresh()
    window.browser.refresh()
    model, records = window.browser.model, window.browser.records
    column = {model.horizontalHeaderItem(n).text(): n for n in range(model.columnCount())}
    shown = [(model.item(row, column["Run"]).text(), model.item(row, column["Status"]).text())
             for row in range(model.rowCount())]  # fmt: skip
    browser = {run_id: (status, records[run_id].agent) for run_id, status in shown}
    panel = {row.entry.run_id: (row.entry.state, row.entry.agent) for row in window.queue_panel.rows if row.entry}
    return browser, panel


def test_a_desk_sees_every_agents_runs_in_the_cli_and_in_the_gui(lab, qtbot, desk_window):
    def add(bench: str, channel: str, cell: str, *ccd: str) -> list[int]:
        return lab.add("ccd", "--bench", bench, *AG_MG, *ccd, "--channel", channel, "-p", f"cell_id={cell}")

    short = {"agent-a": add("sim", "1", "a-short", *TINY_CCD), "agent-b": add("sim-sp200", "1", "b-short", *TINY_CCD)}
    long = {"agent-a": add("sim", "2", "a-long", *LONG_CCD), "agent-b": add("sim-sp200", "2", "b-long", *LONG_CCD)}
    lab.serve("agent-a", "sim")
    lab.serve("agent-b", "sim-sp200")
    wait_until("the short runs to finish and the long ones to take samples",
               lambda: lab.ended([n for ids in short.values() for n in ids])
               and all(lab.sampling(n) for ids in long.values() for n in ids))  # fmt: skip
    entries = lab.entries()
    expected = {str(entries[n].run_id): (state, agent) for state, by_agent in (("finished", short), ("running", long))
                for agent, ids in by_agent.items() for n in ids}  # fmt: skip
    assert len(expected) == 4

    def desk_cli() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        runs = json.loads(lab.labctl("desk", "runs", "list", "--json").stdout)
        return runs, json.loads(lab.labctl("desk", "queue", "list", "--json").stdout)

    runs, queue = desk_cli()
    assert {r["id"]: (r["status"], r["agent"]) for r in runs} == expected
    assert {r["id"]: r["host"] for r in runs} == {run_id: AGENTS[agent] for run_id, (_, agent) in expected.items()}
    assert {e["run_id"]: (e["state"], e["agent"]) for e in queue} == expected

    window = desk_window()  # the GUI at the desk: the same lab database, read by this process
    assert shown_by(window) == (expected, expected)
    for run_id in expected:  # each run's data, copied from its agent over the lab link
        copy = Path(window.store.registry.get(run_id).folder)
        assert copy == lab.store("desk") / "remote" / run_id
        assert len(RunReader(copy).rows()) > 0 and RunReader(copy).metadata()["run_id"] == run_id
    lab.stop("agent-a")  # the long runs rest their channels and end aborted
    lab.stop("agent-b")
    stopped = {run_id: ("aborted" if state == "running" else state, agent) for run_id, (state, agent) in expected.items()}
    qtbot.waitUntil(lambda: shown_by(window) == (stopped, stopped), timeout=30_000)
    runs, queue = desk_cli()
    assert {r["id"]: (r["status"], r["agent"]) for r in runs} == stopped
    assert {e["run_id"]: (e["state"], e["agent"]) for e in queue} == stopped


# What these tests once found: PCs opening a new lab database at once, runs making a new store's folders at once, the
# window meeting a dropped database connection.


def test_pcs_opening_a_new_lab_database_at_once_all_open_it(postgres):
    """Several PCs' first `labctl serve` or `labctl queue add` on an empty lab database, all at once: each brings it up
    or finds it up. Every store opens its database so: open_database, then prepare."""
    failures: list[str] = []

    def open_it(db: Any, together: threading.Barrier) -> None:
        together.wait()
        try:
            prepare(db)
        except Exception as e:
            failures.append(f"{type(e).__name__}: {str(e).splitlines()[0]}")

    for attempt in range(20):
        url = postgres.create_database(f"new_lab_{attempt}")
        databases = [open_database(url) for _ in range(4)]
        together = threading.Barrier(len(databases))
        threads = [threading.Thread(target=open_it, args=(db, together)) for db in databases]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for db in databases:
            db.close()
    assert failures == []


def test_runs_starting_at_once_in_a_new_store_both_make_their_folders(tmp_path):
    """A new PC's agent starts several entries at once; each run makes ``<store>/runs`` if it is missing. Here the
    other run makes it just after this one looked (what test_two_agents_… meets now and then with real processes)."""
    from labctl.store.folder import make_folder

    class RunsMadeJustAfterTheLook(type(tmp_path)):
        def exists(self, *args: Any, **kwargs: Any) -> bool:
            found = super().exists(*args, **kwargs)
            if not found and self.name == "runs":
                os.mkdir(self)  # the other run, in between
            return found

    folder = RunsMadeJustAfterTheLook(tmp_path / "store" / "runs" / "20260101-120000-ccd-ab12")
    make_folder(folder.parent)
    assert (tmp_path / "store" / "runs").is_dir()


def test_the_desk_gui_rides_out_the_lab_database_dropping_its_connection(lab, qtbot, desk_window):
    lab.add("ccd", "--bench", "sim", *AG_MG, *TINY_CCD, "--channel", "1")
    window = desk_window()
    qtbot.waitUntil(lambda: len(window.queue_panel.rows) == 1, timeout=10_000)
    dropped = lab.queue.database.execute("SELECT pg_terminate_backend(pid) AS gone FROM pg_stat_activity WHERE "
                                         "datname = current_database() AND pid <> pg_backend_pid()").fetchall()  # fmt: skip
    assert dropped and all(row["gone"] for row in dropped)  # as a server restart or a network cut does
    lab.add("ccd", "--bench", "sim", *AG_MG, *TINY_CCD, "--channel", "2")  # its next looks reconnect and see it
    qtbot.waitUntil(lambda: len(window.queue_panel.rows) == 2, timeout=10_000)
