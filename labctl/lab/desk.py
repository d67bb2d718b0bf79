"""What a desk shows of the lab's runs that live on other PCs.

The lab's registry lists every run, but a run's folder and live feed are on the PC that runs it. ``DeskRegistry``
answers as the registry does, with each remote run's folder replaced by its copy under ``<store>/remote/<run_id>``,
which a thread keeps up to date through the run's agent (``link.py``, ``mirror.py``) while the run goes on, and
with its feed relayed to the socket a local run's would have: so ``RunReader``, the GUI's views and ``labctl runs
show`` read a remote run as a local one.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path

from labctl.lab.config import this_host
from labctl.lab.link import LinkError
from labctl.lab.mirror import Mirror
from labctl.queue.agents import Agent, Agents
from labctl.store.db import Database
from labctl.store.folder import METADATA
from labctl.store.registry import Registry, RunRecord

log = logging.getLogger(__name__)

REMOTE = "remote"  # <store>/remote/<run_id>: the copies of other PCs' runs
SYNC_S = 1.0  # how often running remote runs are brought up to date
AGENTS_S = 5.0  # how long the agents' addresses are trusted before they are read again


class DeskRegistry(Registry):
    def __init__(self, db: Database, lease_s: float, root: Path, token: str) -> None:
        super().__init__(db, lease_s)
        self.mirror = Mirror(root / REMOTE, token)
        self._agents = Agents(db)
        self._addresses: tuple[float, list[Agent]] = (-AGENTS_S, [])
        self._followed: dict[str, tuple[str, str]] = {}  # run id → (its agent's address, the status last synced)
        self._failing: set[str] = set()  # runs whose agent did not answer at the last try (said once, not each time)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, run_id: str) -> RunRecord | None:
        record = super().get(run_id)
        return self._local(record, now=True) if record else None

    def list(self) -> list[RunRecord]:
        return [self._local(record) for record in super().list()]

    def close(self) -> None:
        self._closed.set()
        self.mirror.close()

    def _local(self, record: RunRecord, now: bool = False) -> RunRecord:
        """``record`` with its folder on this PC: a remote run's copy (synced at once if ``now`` and never synced;
        the recorded folder until a first copy exists). A run no reachable agent serves keeps the copy it has."""
        if record.host == this_host():
            return record
        if (address := self._address(record)) is not None:
            self._follow(record, address, now)
        copy = self.mirror.folder(record.id)
        return dataclasses.replace(record, folder=str(copy)) if (copy / METADATA).is_file() else record

    def _follow(self, record: RunRecord, address: str, now: bool) -> None:
        with self._lock:
            new = record.id not in self._followed
            if new or record.status == "running":
                self._followed[record.id] = (address, "" if new else self._followed[record.id][1])
        if new and now:
            self._sync(record.id, address, record.status)
        self._start()

    def _address(self, record: RunRecord) -> str | None:
        """The link of the agent serving ``record``'s folder: its own agent, else one on its PC."""
        stamp, agents = self._addresses
        if time.monotonic() - stamp > AGENTS_S:
            agents = self._agents.list()
            self._addresses = (time.monotonic(), agents)
        serving = [a for a in agents if a.address and a.reachable and (a.name == record.agent or a.host == record.host)]
        serving.sort(key=lambda a: a.name != record.agent)
        return serving[0].address if serving else None

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._keep_up, name="labctl-desk", daemon=True)
            self._thread.start()

    def _keep_up(self) -> None:
        """Sync each followed run until it has been synced in its final state; relay the feeds of running ones."""
        while not self._closed.wait(SYNC_S):
            with self._lock:
                followed = dict(self._followed)
            for run_id, (address, synced) in followed.items():
                if synced and synced != "running":
                    continue
                status = self._status(run_id)
                if status is not None:
                    self._sync(run_id, address, status)

    def _status(self, run_id: str) -> str | None:
        try:
            record = Registry.get(self, run_id)
        except Exception:  # the database is unreachable now: try again at the next pass
            return None
        return record.status if record else None

    def _sync(self, run_id: str, address: str, status: str) -> None:
        try:
            self.mirror.sync(run_id, address)
            if status == "running":
                self.mirror.relay(run_id, address)
        except (LinkError, OSError) as e:
            if run_id not in self._failing:
                log.warning("run %s: its agent at %s does not answer (%s); showing the copy as it is", run_id, address,
                            e)  # fmt: skip
            self._failing.add(run_id)
            return
        self._failing.discard(run_id)
        with self._lock:
            self._followed[run_id] = (address, status)
