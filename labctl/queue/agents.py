"""The lab's agents: each ``labctl serve`` names itself, the benches its PC hosts and where it serves its runs'
feeds and folders (the link), and renews a lease; an agent whose lease lapsed is shown unreachable."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from labctl.lab.config import this_host
from labctl.queue.db import QueueError, iso, utc_now
from labctl.store.db import Database
from labctl.store.registry import process_alive


@dataclass(frozen=True)
class Agent:
    name: str
    host: str
    pid: int
    benches: dict[str, str | None] | None  # each bench it hosts → its file's text (None: simulated); None: all
    address: str | None  # the link's host:port, None if it serves no link
    started_at: str
    reachable: bool

    def hosts(self, bench: str) -> bool:
        return self.benches is None or bench in self.benches


class Agents:
    def __init__(self, db: Database) -> None:
        self._db = db

    def register(self, name: str, benches: dict[str, str | None] | None, lease_s: float) -> None:
        """Enter this process as agent ``name``; QueueError if another live process is that agent (one of this PC
        that died, killed, is replaced at once; one of another PC once its lease lapsed)."""
        with self._db.transaction():
            other = self.get(name)
            if other and other.reachable and not (other.host == this_host() and not process_alive(other.pid)):
                raise QueueError(f"agent {name!r} already serves (pid {other.pid} on {other.host}); give this one "
                                 "another --agent name, or stop that one first")
            self._db.execute("DELETE FROM agents WHERE name = ?", (name,))
            self._db.execute(f"INSERT INTO agents (name, host, pid, benches, address, started_at, lease_until) VALUES "
                             f"(?, ?, ?, ?, NULL, ?, {self._db.now_s} + ?)",
                             (name, this_host(), os.getpid(), json.dumps(benches), iso(utc_now()), lease_s))  # fmt: skip

    def set_address(self, name: str, address: str | None) -> None:
        self._db.execute("UPDATE agents SET address = ? WHERE name = ?", (address, name))

    def renew(self, name: str, lease_s: float) -> None:
        self._db.execute(f"UPDATE agents SET lease_until = {self._db.now_s} + ? WHERE name = ? AND pid = ?",
                         (lease_s, name, os.getpid()))  # fmt: skip

    def leave(self, name: str) -> None:
        """A clean stop: the agent is gone, not unreachable."""
        self._db.execute("DELETE FROM agents WHERE name = ? AND pid = ?", (name, os.getpid()))

    def get(self, name: str) -> Agent | None:
        return next((a for a in self.list() if a.name == name), None)

    def list(self) -> list[Agent]:
        rows = self._db.execute(f"SELECT *, NOT {self._db.lapsed} AS reachable FROM agents ORDER BY name")
        return [Agent(name=r["name"], host=r["host"], pid=r["pid"], benches=json.loads(r["benches"]),
                      address=r["address"], started_at=r["started_at"], reachable=bool(r["reachable"]))
                for r in rows.fetchall()]  # fmt: skip


def agents_text(agents: list[Agent]) -> str:
    """The lab's agents in a line: which benches each serves, and whether it is heard from."""
    if not agents:
        return "agents: none (`labctl serve --bench BENCH` on each PC with instruments)"
    return "agents: " + "; ".join(f"{a.name} ({_benches(a)})" + ("" if a.reachable else " UNREACHABLE") for a in agents)


def _benches(agent: Agent) -> str:
    if agent.benches is None:
        return "every bench"
    return ", ".join(Path(bench).stem if "/" in bench else bench for bench in agent.benches)
