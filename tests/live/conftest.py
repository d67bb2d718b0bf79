"""Runs recorded twice: as the feed sent them (a client connected before the first record) and as stored."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from labctl.bench import open_bench
from labctl.engine.runner import Listeners, Runner, RunOutcome
from labctl.live.feed import RunFeed, feed_path
from labctl.procedures import PROCEDURES
from labctl.store import Store


@dataclass
class Recorded:
    outcome: RunOutcome
    hello: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)  # every feed line after the hello, in order

    @property
    def folder(self) -> Path:
        return self.outcome.folder


def read_feed(sock: socket.socket, into: list[dict[str, Any]]) -> None:
    with sock.makefile("rb") as lines:
        for line in lines:
            into.append(json.loads(line))


def record_run(root: Path, name: str, sim: dict[str, Any] | None = None, **params: Any) -> Recorded:
    """Run a procedure in-process on a sim bench with its feed, reading the feed from before the first record."""
    procedure = PROCEDURES[name](**params)
    messages: list[dict[str, Any]] = []
    reader: list[threading.Thread] = []

    def connect(run_id: str, _folder: Path) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(feed_path(run_id)))
        reader.append(threading.Thread(target=read_feed, args=(sock, messages)))
        reader[0].start()

    with open_bench("sim", sim_overrides=sim or {}, sim_defaults=procedure.sim_defaults()) as bench:
        listeners = Listeners.merged(RunFeed().listeners(), Listeners(started=connect))
        outcome = Runner(Store(root), listeners).run(procedure, bench)
    reader[0].join(30)
    assert messages[0]["topic"] == "hello" and messages[-1]["topic"] == "end"
    return Recorded(outcome, messages[0], messages[1:])


@pytest.fixture(scope="session")
def ccd_run(tmp_path_factory) -> Recorded:
    """The default CCD on a bare cell: level steps, then a hard short at 0.6 mA/cm²."""
    return record_run(tmp_path_factory.mktemp("ccd"), "ccd")


@pytest.fixture(scope="session")
def insitu_run(tmp_path_factory) -> Recorded:
    """A short in-situ EIS: spectra (with fits, so R_tot) between plating and stripping segments."""
    return record_run(tmp_path_factory.mktemp("insitu"), "insitu-eis", cycles=1, eis_interval=120, points_per_decade=3)


@pytest.fixture(scope="session")
def ce_run(tmp_path_factory) -> Recorded:
    """Three CE cycles: cycle_completed events with their rows."""
    return record_run(tmp_path_factory.mktemp("ce"), "ce-cycling", cycles=3)
