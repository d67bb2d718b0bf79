"""The run registry: a table of every run, its folder and its status (the store's SQLite file, or the lab's
PostgreSQL database that several PCs share).

A run is registered as ``running`` before its first sample and marked ``finished``, ``failed`` or
``aborted`` only when it ends. A run of this PC still marked ``running`` whose process is gone is reported (and
recorded) as ``interrupted``, so a crash never leaves a run looking finished. A run of another PC holds a lease
that its process renews; once the lease has lapsed it is shown ``unreachable`` (never recorded so: only its own PC
knows whether it still runs).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labctl.lab.config import this_host
from labctl.store.db import Database
from labctl.store.folder import METADATA, read_json, write_json_atomic

STATUSES = ("running", "finished", "failed", "aborted", "interrupted", "imported")  # imported: another instrument's file
UNREACHABLE = "unreachable"  # shown, never stored: a run of another PC whose lease lapsed


@dataclass(frozen=True)
class RunRecord:
    id: str
    procedure: str
    status: str
    started_at: str
    ended_at: str | None
    bench: str
    cell_id: str | None
    folder: str
    host: str
    pid: int
    summary: dict[str, Any] | None
    agent: str | None = None  # the labctl serve that started it, or None (started by hand)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


AGENT_VARIABLE = "LABCTL_AGENT"  # set by `labctl serve` for the runs it starts: which agent a run belongs to


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Registry:
    def __init__(self, db: Database, lease_s: float) -> None:
        self._db = db
        self.lease_s = lease_s

    def add(self, run_id: str, *, procedure: str, bench: str, cell_id: str | None, folder: Path,
            status: str = "running") -> None:
        self._db.execute(
            "INSERT INTO runs (id, procedure, status, started_at, bench, cell_id, folder, host, pid, agent, lease_until)"
            f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {self._db.now_s} + ?)",
            (run_id, procedure, status, now_iso(), bench, cell_id, str(folder), this_host(), os.getpid(),
             os.environ.get(AGENT_VARIABLE), self.lease_s),
        )  # fmt: skip

    def forget(self, run_id: str) -> None:
        """Remove a run's row (one whose folder could not be written)."""
        self._db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def finish(self, run_id: str, status: str, summary: dict[str, Any] | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}; use one of {', '.join(STATUSES)}")
        self._db.execute(
            "UPDATE runs SET status = ?, ended_at = ?, summary = ? WHERE id = ?",
            (status, now_iso(), json.dumps(summary, default=str) if summary is not None else None, run_id),
        )

    def renew(self, run_id: str) -> None:
        """Extend a running run's lease: its process is alive and reaches the database."""
        self._db.execute(f"UPDATE runs SET lease_until = {self._db.now_s} + ? WHERE id = ? AND status = 'running'",
                         (self.lease_s, run_id))  # fmt: skip

    def keep_leased(self, run_id: str) -> threading.Event:
        """Renew ``run_id``'s lease from a thread, three times a lease, until the returned event is set."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.lease_s / 3):
                try:
                    self.renew(run_id)
                except Exception:  # the database is unreachable now: the run goes on, its lease may lapse
                    continue

        threading.Thread(target=renew, name="labctl-lease", daemon=True).start()
        return done

    def reclaim(self, run_id: str) -> bool:
        """Mark an ``interrupted`` run ``running`` again, by this process (it is resumed); False if it is not
        interrupted (another process resumed it first, or it ended)."""
        return bool(self._db.execute(
            "UPDATE runs SET status = 'running', ended_at = NULL, summary = NULL, host = ?, pid = ?, "
            f"lease_until = {self._db.now_s} + ? WHERE id = ? AND status = 'interrupted'",
            (this_host(), os.getpid(), self.lease_s, run_id)).rowcount)  # fmt: skip

    def get(self, run_id: str) -> RunRecord | None:
        self.mark_interrupted()
        row = self._db.execute(f"SELECT *, {self._db.lapsed} AS lapsed FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _record(row) if row else None

    def list(self) -> list[RunRecord]:
        self.mark_interrupted()
        rows = self._db.execute(f"SELECT *, {self._db.lapsed} AS lapsed FROM runs ORDER BY started_at, id").fetchall()
        return [_record(r) for r in rows]

    def close(self) -> None:
        """Stop what the registry does in the background (a desk's copying); the database is the store's to close."""

    def mark_interrupted(self) -> list[str]:
        """Record as ``interrupted`` every run of this host still ``running`` whose process is gone."""
        rows = self._db.execute("SELECT id, pid, folder FROM runs WHERE status = 'running' AND host = ?",
                                (this_host(),)).fetchall()  # fmt: skip
        dead = [row for row in rows if not process_alive(row["pid"])]
        for row in dead:
            ended_at = now_iso()
            marked = self._db.execute(
                "UPDATE runs SET status = 'interrupted', ended_at = ? WHERE id = ? AND status = 'running'",
                (ended_at, row["id"]),
            ).rowcount
            if marked:  # only the process that recorded it: the folder then tells the same as the registry
                _mark_folder_interrupted(Path(row["folder"]), ended_at)
        return [row["id"] for row in dead]

def _mark_folder_interrupted(folder: Path, ended_at: str) -> None:
    """A dead run's ``metadata.json`` still says ``running``: make it say ``interrupted``, as the registry does."""
    path = folder / METADATA
    try:
        metadata = read_json(path)
    except (OSError, ValueError):
        return  # no metadata yet (the run died before writing it) or unreadable: nothing claims it is running
    if metadata.get("status") == "running":
        write_json_atomic(path, metadata | {"status": "interrupted", "ended_at": ended_at})


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A process that has ended but was never reaped (an orphan where init does not reap, as in some containers)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def _record(row: dict[str, Any]) -> RunRecord:
    """A row as a record; a running run of another PC whose lease lapsed is shown unreachable."""
    data = {name: row[name] for name in RunRecord.__dataclass_fields__}
    data["summary"] = json.loads(row["summary"]) if row["summary"] else None
    if data["status"] == "running" and row["lapsed"] and row["host"] != this_host():
        data["status"] = UNREACHABLE
    return RunRecord(**data)
