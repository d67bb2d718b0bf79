"""``labctl serve``: run the queue unattended, one ``labctl run`` child process per entry: the PC's agent. No Qt here.

- An agent claims only the entries of the benches its PC hosts (``--bench``; all, by default), each with its
  instruments (``QueueDB.claim_start``), so agents on several PCs sharing a lab database never start an entry
  twice nor drive one instrument at once. It is woken by the database when the queue changes (PostgreSQL's
  LISTEN/NOTIFY; an SQLite store is looked at every ``poll_s``), and renews the leases of its entries: an agent
  that stops renewing them has its entries shown ``unreachable`` to the others, which never take them over.
- One daemon per store: it holds an exclusive lock on ``<store>/serve.lock`` (which holds its pid); the
  lock goes with the process, so a daemon killed with kill -9 leaves no stale lock.
- Each run is exactly a ``labctl run`` (``labctl run … --store``) in its own session, forked from a warm fork
  server so runs share the imported modules (``spawn.py``), its output in ``<store>/logs/queue-<entry>.log``;
  the daemon's own log is ``<store>/logs/serve.log``. A run gets SIGTERM if the daemon dies, so no run goes on
  unwatched.
- SIGTERM or Ctrl-C to the daemon sends SIGINT to every child: each rests its channel and ends ``aborted``.
- A run that dies (kill -9, a crash) or is told to terminate is resumed: the daemon starts ``labctl run --resume
  RUN_ID``, which goes on in the same folder where the run stopped (up to ``MAX_RESUMES`` times in a row); on start
  it does the same for the runs a dead daemon left interrupted. ``--no-resume`` ends them ``interrupted`` instead.
- A run that ends without having rested its channel itself (killed and not resumed, a resume refused, or failed
  with the cycler unreachable) has its channel put at rest at once, before anything else starts (``watchdog.py``).
- ``--notify CMD`` runs ``CMD RUN_ID OUTCOME`` in a shell at the end of each run.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from labctl import pidlock
from labctl.lab.config import this_host
from labctl.lab.link import LinkServer
from labctl.notify import start_hook
from labctl.queue.agents import Agents
from labctl.queue.db import ENDED, Entry, QueueError, iso, utc_now
from labctl.queue.schedule import due
from labctl.queue.spawn import RunProcess, start_run
from labctl.queue.watchdog import needs_rest, rest_entry_channel
from labctl.request import SIM_LAYOUTS
from labctl.store import Store
from labctl.store.db import Waiter
from labctl.store.registry import AGENT_VARIABLE, process_alive

log = logging.getLogger("labctl.serve")

LOCK = "serve.lock"
MAX_RESUMES = 3  # resumes of one run in a row: a run that keeps dying has a fault that resuming will not mend
LOGS = "logs"
SERVE_LOG = "serve.log"


def entry_log(root: Path, entry_id: int) -> Path:
    return root / LOGS / f"queue-{entry_id}.log"


def labctl_command(*arguments: str) -> list[str]:
    """``python -P -m labctl ARGUMENTS``: -P keeps the working directory off ``sys.path``, so a ``labctl/`` folder
    there is never run instead of the installed labctl (by this process, nor by the runs it forks)."""
    return [sys.executable, "-P", "-m", "labctl", *arguments]


def run_command(entry: Entry, root: Path) -> list[str]:
    """The ``labctl run`` command line of an entry: its request as an operator would type it."""
    return [sys.executable, "-m", "labctl", *run_arguments(entry, root)]


def run_arguments(entry: Entry, root: Path) -> list[str]:
    """The arguments of ``labctl`` that run an entry (what the forked run executes)."""
    return ["run", *entry.run_arguments(), "--store", str(root)]


def daemon_pid(root: Path) -> int | None:
    """The pid of the daemon serving this store, or None if none is."""
    path = root / LOCK
    if not path.exists():
        return None
    with path.open("r") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = f.read().strip()
            return int(text) if text.isdigit() else -1
        return None


def _take_lock(root: Path) -> IO[str]:
    root.mkdir(parents=True, exist_ok=True)
    try:
        return pidlock.hold(root / LOCK)
    except pidlock.LockHeld as e:
        raise QueueError(f"labctl serve already runs for the store {root} (pid {e.pid}); stop it with "
                         f"`kill {e.pid}` first, or give another --store") from None


@dataclass
class Child:
    entry: Entry
    proc: RunProcess
    since: str  # wall time at start, to find the run it registers
    run_id: str | None = None
    stopping: bool = False
    resumes: int = 0  # how many times this entry's run was resumed


@dataclass
class Daemon:
    root: Path
    agent: str = field(default_factory=this_host)
    benches: list[str] | None = None  # the benches this PC hosts (as entries name them); None: every bench
    notify: str | None = None
    resume: bool = True  # go on with runs that died, where they stopped
    poll_s: float = 1.0
    stop_grace_s: float = 300.0
    clock: Callable[[], datetime] = utc_now
    children: dict[int, Child] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    _hooks: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.store = Store(self.root)
        self.queue = self.store.queue
        self.agents = Agents(self.store.database)
        self.lease_s = self.store.config.lab.lease_s
        self._renewed = -math.inf
        self._waiter = Waiter()  # the database's (serve() opens it): a stop request wakes it
        (self.root / LOGS).mkdir(parents=True, exist_ok=True)

    def serve(self) -> None:
        """Recover, then start due entries and watch their runs until asked to stop; then stop every run."""
        lock = _take_lock(self.root)
        self.agents.register(self.agent, self._bench_texts(), self.lease_s)
        try:
            link = self._open_link()
        except BaseException:
            self.agents.leave(self.agent)
            lock.close()
            raise
        self._waiter = waiter = self.store.database.waiter()
        if self.stopping.is_set():
            waiter.close()
        log.info("agent %s serving the queue of %s in %s for %s (pid %d)", self.agent, self.root,
                 self.store.database.dialect, ", ".join(self.benches) if self.benches else "every bench",
                 os.getpid())  # fmt: skip
        try:
            self.recover()
            while not self.stopping.is_set():
                try:
                    self.step()
                except self.store.database.unavailable_errors as e:  # its runs go on; the queue waits
                    log.error("the database does not answer (%s); runs go on, nothing new starts until it does", e)
                waiter.wait(self.poll_s)
            self._stop_children()
        finally:
            self._wait_hooks()
            waiter.close()
            if link is not None:
                link.close()
            self.agents.leave(self.agent)
            log.info("stopped")
            lock.close()

    def request_stop(self, *_: Any) -> None:
        self.stopping.set()
        self._waiter.close()

    def _bench_texts(self) -> dict[str, str | None] | None:
        """The hosted benches' files as text, so that any PC can check an entry against them (None: simulated)."""
        if self.benches is None:
            return None
        return {key: None if key in SIM_LAYOUTS else Path(key).read_text(encoding="utf-8") for key in self.benches}

    def _open_link(self) -> LinkServer | None:
        """In a lab, serve this store's run folders and feeds to other PCs (``[link]`` of the lab config)."""
        config = self.store.config
        if not config.shared:
            return None
        host, port = config.link.host_port
        try:
            link = LinkServer(self._folder_of, config.link.token or "", host, port)
        except ValueError as e:
            raise QueueError(f"[link] listen {config.link.listen!r}: {e}") from None
        except OSError as e:
            raise QueueError(f"[link] listen {config.link.listen!r}: cannot listen there ({e}); name a free port or "
                             "leave it out (127.0.0.1, any port)") from None
        wildcard = host in ("0.0.0.0", "::")
        address = f"{socket.getfqdn()}:{link.address.rpartition(':')[2]}" if wildcard else link.address
        self.agents.set_address(self.agent, address)
        log.info("serving this store's run folders and live feeds to the lab at %s", address)
        return link

    def _folder_of(self, run_id: str) -> Path | None:
        folder = self.store.folder_of(run_id)
        return folder if folder.is_dir() else None

    def _mine(self, entry: Entry) -> bool:
        """Whether this agent ran ``entry`` (in a one-PC store every entry is the daemon's)."""
        return not self.store.config.shared or entry.agent in (self.agent, None)

    def hosts(self, bench: str) -> bool:
        return self.benches is None or bench in self.benches

    def step(self) -> None:
        self._reap()
        self._renew()
        entries = self.queue.live_entries()
        self._forward_stops(entries)
        for entry in due(entries, self.clock(), self.hosts):
            self._start(entry)
        self._find_runs()
        self._hooks = [h for h in self._hooks if not _hook_done(h)]

    def _renew(self) -> None:
        """Renew this agent's lease and its entries', three times a lease."""
        if time.monotonic() - self._renewed >= self.lease_s / 3:
            self.agents.renew(self.agent, self.lease_s)
            self.queue.renew(self.agent, self.lease_s)
            self._renewed = time.monotonic()

    def recover(self) -> None:
        """Resume the runs a dead daemon left interrupted; end its other entries honestly, and rest the channels of
        interrupted runs that are not resumed."""
        self.store.registry.mark_interrupted()
        for entry in self.queue.entries():
            if not entry.active or entry.id in self.children or not self._mine(entry):
                continue
            if entry.pid and _is_labctl(entry.pid):
                self._stop_orphan(entry)
            run_id = entry.run_id or (self.queue.run_of_process(entry.pid, entry.started_at or "", this_host())
                                      if entry.pid else None)  # fmt: skip
            record = self.store.registry.get(run_id) if run_id else None
            if record and record.status == "interrupted" and self._resume(entry, record.id, 0):
                continue
            state = record.status if record and record.status in ENDED else "interrupted"
            if run_id:
                self.queue.set_run(entry.id, run_id)
            self.queue.end(entry.id, state, {"recovered": True, **((record.summary or {}) if record else {})},
                           self.clock())  # fmt: skip
            log.warning("entry %d (run %s) was running when the daemon stopped: now %s", entry.id, run_id, state)
            if state == "interrupted":
                rest_entry_channel(entry.id, entry.bench, entry.channel)
            self._notify(run_id or f"entry-{entry.id}", state)

    def _start(self, entry: Entry) -> None:
        if not self.queue.claim_start(entry.id, self.clock(), self.agent, self.lease_s):
            return  # claimed by another agent, held or cancelled since the queue was read, or an instrument is held
        since = iso(utc_now())
        path = entry_log(self.root, entry.id)
        try:
            proc = start_run(run_arguments(entry, self.root), path, self._run_env)  # forked warm (spawn.py)
        except OSError as e:
            self.queue.end(entry.id, "failed", {"error": f"could not start labctl run: {e}"}, self.clock())
            log.error("entry %d: could not start labctl run: %s", entry.id, e)
            return
        self.queue.set_process(entry.id, proc.pid)
        self.children[entry.id] = Child(entry, proc, since)
        log.info("entry %d: started %s on %s (pid %d, claims %s), log %s", entry.id, entry.procedure,
                 entry.bench, proc.pid, ", ".join(entry.claims), path)  # fmt: skip

    def _find_runs(self) -> None:
        for entry_id, child in self.children.items():
            if child.run_id is None:
                child.run_id = self.queue.run_of_process(child.proc.pid, child.since, this_host())
                if child.run_id:
                    self.queue.set_run(entry_id, child.run_id)
                    log.info("entry %d: run %s", entry_id, child.run_id)

    def _forward_stops(self, entries: list[Entry]) -> None:
        for entry in entries:
            child = self.children.get(entry.id)
            if entry.active and entry.stop_requested and child and not child.stopping:
                child.stopping = True
                child.proc.send_signal(signal.SIGINT)
                log.info("entry %d: cancelled while running; stopping its run (the channel rests)", entry.id)

    def _reap(self) -> None:
        for entry_id, child in list(self.children.items()):
            code = child.proc.poll()
            if code is not None:
                del self.children[entry_id]
                self._ended(entry_id, child, code)

    def _resume(self, entry: Entry, run_id: str, resumes: int) -> bool:
        """Start ``labctl run --resume`` for ``entry``, whose run ``run_id`` was interrupted (and resumed ``resumes``
        times so far); False if resuming is off, was tried ``MAX_RESUMES`` times, or cannot start."""
        if not self.resume or resumes >= MAX_RESUMES:
            return False
        path = entry_log(self.root, entry.id)
        try:
            proc = start_run(["run", "--resume", run_id, "--store", str(self.root)], path, self._run_env)
        except OSError as e:
            log.error("entry %d: could not resume run %s: %s", entry.id, run_id, e)
            return False
        self.queue.set_run(entry.id, run_id)
        self.queue.set_process(entry.id, proc.pid)
        self.children[entry.id] = Child(entry, proc, iso(utc_now()), run_id, resumes=resumes + 1)
        log.warning("entry %d: run %s was interrupted; resuming it (pid %d, resume %d of at most %d), log %s",
                    entry.id, run_id, proc.pid, resumes + 1, MAX_RESUMES, path)  # fmt: skip
        return True

    def _ended(self, entry_id: int, child: Child, code: int) -> None:
        run_id = child.run_id or self.queue.run_of_process(child.proc.pid, child.since, this_host())
        record = self.store.registry.get(run_id) if run_id else None
        refused = child.resumes and code == 2  # its resume was refused: the reason is in its log and events
        if record and record.status == "interrupted" and not refused and not child.stopping:
            if self._resume(child.entry, record.id, child.resumes):
                return
        if record is not None:
            state = record.status if record.status in ENDED else "interrupted"
            outcome = {"exit_code": code, "folder": record.folder, **(record.summary or {})}
            self.queue.set_run(entry_id, record.id)
        else:  # refused before it began (e.g. a bench that went away): the log says why
            state = "failed"
            outcome = {"exit_code": code, "error": _last_line(entry_log(self.root, entry_id))
                       or f"labctl run exited with {code} before starting a run"}  # fmt: skip
        log.info("entry %d: run %s %s (exit %d)%s", entry_id, run_id, state, code,
                 f": {outcome['error']}" if outcome.get("error") else "")  # fmt: skip
        if needs_rest(code, record):  # before the entry's claims are freed: nothing new starts there meanwhile
            rest_entry_channel(entry_id, child.entry.bench, child.entry.channel)
        self.queue.end(entry_id, state, outcome, self.clock())
        self._notify(run_id or f"entry-{entry_id}", state)

    @property
    def _run_env(self) -> dict[str, str]:
        return {AGENT_VARIABLE: self.agent}

    def _stop_children(self) -> None:
        if self.children:
            log.info("stopping %d run(s); each rests its channel", len(self.children))
        for child in self.children.values():
            child.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + self.stop_grace_s
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.1)
        for child in self.children.values():
            log.critical("entry %d: run did not stop within %.0f s; killing it", child.entry.id, self.stop_grace_s)
            child.proc.kill()
            child.proc.wait()
        self._reap()

    def _stop_orphan(self, entry: Entry) -> None:
        """A run of a dead daemon still going (no parent-death signal on this system): stop it in order, as
        interrupted (SIGTERM) when it is to be resumed, else aborted."""
        assert entry.pid is not None
        log.warning("entry %d: its run (pid %d) outlived the daemon; stopping it", entry.id, entry.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(entry.pid, signal.SIGTERM if self.resume else signal.SIGINT)
        deadline = time.monotonic() + self.stop_grace_s
        while _is_labctl(entry.pid) and time.monotonic() < deadline:
            time.sleep(0.1)

    def _notify(self, run_id: str, outcome: str) -> None:
        if self.notify and (hook := start_hook(self.notify, run_id, outcome, self.root / LOGS / SERVE_LOG)):
            self._hooks.append(hook)

    def _wait_hooks(self) -> None:
        for hook in self._hooks:
            try:
                hook.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log.error("notify: %r still runs after 30 s; leaving it", hook.args)
        self._hooks = [h for h in self._hooks if not _hook_done(h)]


def _hook_done(hook: subprocess.Popen[bytes]) -> bool:
    code = hook.poll()
    if code not in (None, 0):
        log.error("notify: %r exited with %d", hook.args, code)
    return code is not None


def _is_labctl(pid: int) -> bool:
    """Whether ``pid`` is a live labctl process (not another process that reused the number)."""
    if not process_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or b"labctl" in cmdline.read_bytes()


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""
