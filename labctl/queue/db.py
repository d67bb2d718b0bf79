"""The run queue: a table beside the run registry in the store's database (the store's SQLite file, which the
daemon and ``labctl queue`` in other shells read and write at once, or the lab's PostgreSQL database, which the
agents of several PCs share).

An entry is ``queued`` or ``held`` until an agent (``labctl serve``) claims it (``running``), then ends as the run
ended (``finished``, ``failed``, ``aborted``, ``interrupted``); an entry cancelled before it started is
``cancelled``. A running entry whose agent has stopped renewing its lease is shown ``unreachable`` (never stored):
it is never started elsewhere, and its agent, when back, resumes it or rests its channel.

Claiming is one transaction: the entry's row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two agents never wait
on each other), still ``queued``, and one row per instrument it holds in ``claims``, whose primary key refuses an
instrument already held: two agents can never drive one channel or one analyzer at once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labctl.lab.config import this_host
from labctl.request import RunRequest, Schedule
from labctl.store.db import Database
from labctl.store.registry import UNREACHABLE  # an entry's too: running, but its agent's lease lapsed

WAITING = ("queued", "held")
ENDED = ("finished", "failed", "aborted", "interrupted", "cancelled")
STATES = (*WAITING, "running", *ENDED)

class QueueError(Exception):
    """A queue request that cannot be done; the message names the field (or entry) and the fix."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


class Entry(RunRequest):
    """One queued run: its request, the instruments it holds while it runs (``claims``, e.g. ``cycler@sim#3``,
    ``impedance@GPIB0::4::INSTR``) and its place and progress in the queue."""

    claims: list[str]
    state: str = "queued"
    id: int = 0
    position: int = 0
    run_id: str | None = None
    pid: int | None = None
    added_at: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    outcome: dict[str, Any] | None = None
    stop_requested: bool = False
    agent: str | None = None  # the agent that claimed it

    @property
    def active(self) -> bool:
        """Whether its run holds its instruments: running, or unreachable (which may still be running)."""
        return self.state in ("running", UNREACHABLE)

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data, its schedule's fields beside the others (as ``queue list --json`` has
        always shown them)."""
        data = self.model_dump(mode="json", exclude={"schedule"})
        return data | {"not_before": _iso_or_none(self.schedule.not_before), "after": self.schedule.after,
                       "rest_s": self.schedule.rest_s}  # fmt: skip


_JSON = ("params", "claims", "outcome", "limits")
_SCHEDULE = ("not_before", "after", "rest_s")


def _iso_or_none(t: datetime | None) -> str | None:
    return iso(t) if t is not None else None


def _entry(row: dict[str, Any]) -> Entry:
    data = dict(row)
    lapsed = data.pop("lapsed")
    data.pop("lease_until")
    if data["state"] == "running" and lapsed:
        data["state"] = UNREACHABLE
    for key in _JSON:
        data[key] = json.loads(data[key]) if data[key] is not None else None
    data["stop_requested"] = bool(data["stop_requested"])
    data["limits"] = data["limits"] or {}
    data["schedule"] = Schedule(**{key: data.pop(key) for key in _SCHEDULE})
    return Entry(**data)


class QueueDB:
    """The queue table of a store's database (a Path: that SQLite file)."""

    def __init__(self, db: Database | Path) -> None:
        from labctl.store import open_prepared  # here: the store package imports the queue lazily too

        self._db = open_prepared(db) if isinstance(db, Path) else db

    def add(self, entries: list[Entry]) -> list[int]:
        """Append entries at the end of the queue, all or none."""
        ids = []
        with self._db.transaction():
            last = self._db.execute("SELECT COALESCE(MAX(position), 0) AS top FROM queue").fetchone()["top"]
            for n, e in enumerate(entries, start=1):
                row = self._db.execute(
                    "INSERT INTO queue (position, procedure, bench, params, cell, seed, channel, claims, state,"
                    " not_before, after, rest_s, added_at, limits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " RETURNING id",
                    (last + n, e.procedure, e.bench, json.dumps(e.params), e.cell, e.seed, e.channel,
                     json.dumps(e.claims), e.state, _iso_or_none(e.schedule.not_before), e.schedule.after,
                     e.schedule.rest_s, iso(utc_now()), json.dumps(e.limits.given())),
                ).fetchone()  # fmt: skip
                ids.append(int(row["id"]))
            self._db.notify()
        return ids

    def get(self, entry_id: int) -> Entry | None:
        row = self._db.execute(f"SELECT *, {self._db.lapsed} AS lapsed FROM queue WHERE id = ?", (entry_id,)).fetchone()
        return _entry(row) if row else None

    def entries(self) -> list[Entry]:
        rows = self._db.execute(f"SELECT *, {self._db.lapsed} AS lapsed FROM queue ORDER BY position, id").fetchall()
        return [_entry(r) for r in rows]

    def live_entries(self) -> list[Entry]:
        """The entries an agent's look needs: waiting and running ones, and the ended ones a waiting entry waits
        after (a queue keeps every ended entry: reading them all each second would grow with the lab's history)."""
        rows = self._db.execute(
            f"SELECT *, {self._db.lapsed} AS lapsed FROM queue WHERE state IN ('queued', 'held', 'running') OR id IN "
            "(SELECT after FROM queue WHERE state IN ('queued', 'held') AND after IS NOT NULL) ORDER BY position, id"
        ).fetchall()  # fmt: skip
        return [_entry(r) for r in rows]

    def require(self, entry_id: int) -> Entry:
        entry = self.get(entry_id)
        if entry is None:
            raise QueueError(f"no queue entry {entry_id}; `labctl queue list` shows the entries")
        return entry

    def move(self, entry_id: int, position: int) -> None:
        """Put a waiting entry at ``position`` (1 = first) among the waiting entries."""
        with self._db.transaction():
            entry = self.require(entry_id)
            if entry.state not in WAITING:
                raise QueueError(f"entry {entry_id} is {entry.state}; only queued or held entries can move")
            waiting = [e.id for e in self.entries() if e.state in WAITING and e.id != entry_id]
            waiting.insert(max(0, min(position - 1, len(waiting))), entry_id)
            top = self._db.execute("SELECT COALESCE(MAX(position), 0) AS top FROM queue").fetchone()["top"]
            for n, wid in enumerate(waiting, start=1):  # after everything that has started, in their new order
                self._db.execute("UPDATE queue SET position = ? WHERE id = ? AND state IN ('queued', 'held')",
                                 (top + n, wid))  # fmt: skip
            self._db.notify()

    def set_waiting_state(self, entry_id: int, state: str) -> Entry:
        """Hold (``held``), release (``queued``) or cancel (``cancelled``) an entry that has not started."""
        with self._db.transaction():
            entry = self.require(entry_id)
            if entry.state not in WAITING:
                raise QueueError(f"entry {entry_id} is {entry.state}; only queued or held entries can be "
                                 f"{'cancelled' if state == 'cancelled' else 'held or released'}")
            ended = iso(utc_now()) if state == "cancelled" else None
            changed = self._db.execute("UPDATE queue SET state = ?, ended_at = ? WHERE id = ? AND state IN ('queued', "
                                       "'held')", (state, ended, entry_id)).rowcount  # fmt: skip
            if not changed:  # an agent claimed it since it was read (PostgreSQL lets a claim commit in between)
                raise QueueError(f"entry {entry_id} has just started; `labctl queue cancel {entry_id}` stops its run")
            self._db.notify()
        return self.require(entry_id)

    def request_stop(self, entry_id: int) -> None:
        """Ask the entry's agent to stop its running run (it rests the channel; the run ends aborted)."""
        self._db.execute("UPDATE queue SET stop_requested = 1 WHERE id = ? AND state = 'running'", (entry_id,))
        self._db.notify()

    def claim_start(self, entry_id: int, started_at: datetime, agent: str | None = None, lease_s: float = 0) -> bool:
        """Claim a queued entry and its instruments for ``agent`` (default: this PC's) and mark it running (with a
        lease of ``lease_s``, 0 for none); False if another agent claimed it, it changed meanwhile (held or
        cancelled from another shell), or one of its instruments is held."""
        agent = agent or this_host()
        try:
            with self._db.transaction():
                row = self._db.execute(f"SELECT claims FROM queue WHERE id = ? AND state = 'queued'"
                                       f"{self._db.skip_locked}", (entry_id,)).fetchone()  # fmt: skip
                if row is None:
                    return False
                for claim in json.loads(row["claims"]):
                    self._db.execute("INSERT INTO claims (claim, entry_id, agent) VALUES (?, ?, ?)",
                                     (claim, entry_id, agent))  # fmt: skip
                lease = f"{self._db.now_s} + ?" if lease_s else "NULL"
                self._db.execute(f"UPDATE queue SET state = 'running', started_at = ?, agent = ?, lease_until = "
                                 f"{lease} WHERE id = ?", (iso(started_at), agent,
                                                           *((lease_s,) if lease_s else ()), entry_id))  # fmt: skip
        except self._db.integrity_errors:
            return False  # an instrument it needs is held (by another agent's run)
        return True

    def renew(self, agent: str, lease_s: float) -> None:
        """Extend the leases of ``agent``'s running entries: it is alive and reaches the database."""
        self._db.execute(f"UPDATE queue SET lease_until = {self._db.now_s} + ? WHERE agent = ? AND state = 'running'",
                         (lease_s, agent))  # fmt: skip

    def held_claims(self) -> dict[str, int]:
        """Every instrument held now, and the entry holding it."""
        return {row["claim"]: row["entry_id"] for row in self._db.execute("SELECT claim, entry_id FROM claims")}

    def set_process(self, entry_id: int, pid: int) -> None:
        self._db.execute("UPDATE queue SET pid = ? WHERE id = ?", (pid, entry_id))

    def set_run(self, entry_id: int, run_id: str) -> None:
        self._db.execute("UPDATE queue SET run_id = ? WHERE id = ?", (run_id, entry_id))

    def end(self, entry_id: int, state: str, outcome: dict[str, Any], ended_at: datetime) -> None:
        """Record how an entry ended and free its instruments, at once (its channel rested first, by the caller)."""
        if state not in ENDED:
            raise ValueError(f"unknown end state {state!r}; use one of {', '.join(ENDED)}")
        with self._db.transaction():
            self._db.execute("UPDATE queue SET state = ?, outcome = ?, ended_at = ?, lease_until = NULL WHERE id = ?",
                             (state, json.dumps(outcome, default=str), iso(ended_at), entry_id))  # fmt: skip
            self._db.execute("DELETE FROM claims WHERE entry_id = ?", (entry_id,))
            self._db.notify()

    def run_of_process(self, pid: int, since: str, host: str) -> str | None:
        """The run a queue child registered (the registry records each run's host and pid)."""
        row = self._db.execute("SELECT id FROM runs WHERE pid = ? AND host = ? AND started_at >= ? ORDER BY "
                               "started_at DESC", (pid, host, since)).fetchone()  # fmt: skip
        return row["id"] if row else None

    @property
    def database(self) -> Database:
        return self._db

    def close(self) -> None:
        self._db.close()
