"""Run one procedure on an opened bench: store first, then tell the displays; always leave instruments safe.

The engine owns the run's life: it registers the run before the first sample, routes what the
procedure emits (rows to the run folder before any display sees them), turns a stop request into an
orderly stop, calls ``shutdown`` in every case (which rests the channel), and records how the run
ended: ``finished`` (it ran to its end; a cell that failed is a result), ``failed`` (an instrument or
software fault stopped it) or ``aborted`` (an operator stopped it). No Qt here.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from importlib.metadata import version
from pathlib import Path
from typing import Any

from labctl.bench import SECRET_OPTIONS, Bench
from labctl.engine.supervisor import supervised
from labctl.procedures.base import LabProcedure
from labctl.roles import ResumeRefused
from labctl.safety import SafetyLimitBreach
from labctl.store import RunFolder, Store
from labctl.store.archive import ARCHIVED, archive
from labctl.store.folder import time_series_metadata
from labctl.store.reader import RunReader
from labctl.store.registry import RunRecord, now_iso

log = logging.getLogger(__name__)

# SIGTERM that reached a forked run before its Runner could take it (labctl/queue/spawn.py): the run stops at once
TERMINATED_EARLY = threading.Event()
EXIT_CODES = {"finished": 0, "failed": 1, "aborted": 130, "interrupted": 143}
STOP_MESSAGES = {
    "aborted": "stopped by the operator; channel at rest",
    "interrupted": "the process was told to terminate (e.g. its daemon died); channel at rest",
}


@dataclass
class RunOutcome:
    run_id: str
    status: str
    folder: Path
    result: dict[str, Any] | None = None
    error: str | None = None
    refused: bool = False  # a resume its instrument refused (the run is as the crash left it)

    @property
    def exit_code(self) -> int:
        return 2 if self.refused else EXIT_CODES[self.status]


@dataclass
class Listeners:
    """Displays, loggers and live feeds that follow a run; each gets what was already stored. ``started`` comes
    once the run is registered (run id, folder), before the procedure starts; ``ended`` once it is recorded as
    ended."""

    sample: Callable[[dict[str, Any]], None] = lambda row: None
    status: Callable[[dict[str, Any]], None] = lambda status: None
    progress: Callable[[float], None] = lambda percent: None
    event: Callable[[dict[str, Any]], None] = lambda event: None
    spectrum: Callable[[dict[str, Any]], None] = lambda spectrum: None
    result: Callable[[dict[str, Any]], None] = lambda result: None
    started: Callable[[str, Path], None] = lambda run_id, folder: None
    ended: Callable[[RunOutcome], None] = lambda outcome: None

    @classmethod
    def merged(cls, *listeners: Listeners) -> Listeners:
        """One set of listeners that calls each of ``listeners`` in turn."""
        return cls(**{f.name: _fan_out([getattr(one, f.name) for one in listeners]) for f in fields(cls)})


def _fan_out(callbacks: list[Callable[..., None]]) -> Callable[..., None]:
    def call(*args: Any) -> None:
        for callback in callbacks:
            callback(*args)

    return call


@dataclass
class Runner:
    store: Store
    listeners: Listeners = field(default_factory=Listeners)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    stop_status: str = "aborted"

    def request_stop(self, status: str = "aborted") -> None:
        """Ask the running procedure to stop at its next sample: ``aborted`` by a person (Ctrl-C, the GUI's abort)
        or ``interrupted`` (SIGTERM: the system or a dying daemon ends the process). Either way the channel rests."""
        self.stop_status = status
        self.stop_requested.set()

    def run(self, procedure: LabProcedure, bench: Bench, request: dict[str, Any] | None = None) -> RunOutcome:
        """Run ``procedure`` on ``bench`` in a new run; ``request`` (the run request, recorded in the metadata) lets
        ``labctl run --resume`` rebuild it after a crash."""
        for role in procedure.ROLES:
            bench.role(role)  # raises BenchError before anything is created
        procedure.check_bench(bench)
        bench = supervised(bench, request)  # the procedure reaches the cycler only through the safety supervisor
        run_id = self.store.new_run_id(procedure.NAME)
        folder = RunFolder(self.store.folder_of(run_id), list(procedure.DATA_COLUMNS))
        metadata = _metadata(run_id, procedure, bench) | {"request": request}
        folder.write_metadata(metadata)
        self.store.registry.add(run_id, procedure=procedure.NAME, bench=bench.name, cell_id=procedure.cell_id,
                                folder=folder.path)
        return self._go(run_id, procedure, bench, folder, metadata)

    def resume(self, procedure: LabProcedure, bench: Bench, record: RunRecord) -> RunOutcome:
        """Go on with an interrupted run (``record``) in its own folder: ``procedure`` (built from its recorded
        request) rebuilds its state from the stored rows and events, then its ``startup`` takes the channel's test
        over. ResumeRefused, with nothing changed, if the procedure cannot; a run whose instrument refuses ends
        ``interrupted`` again with a ``resume_refused`` event (exit 2)."""
        for role in procedure.ROLES:
            bench.role(role)
        procedure.check_bench(bench)
        reader = RunReader(Path(record.folder))
        bench = supervised(bench, reader.metadata().get("request"))
        procedure.resume_from(reader.rows(), reader.events(), reader.last_written())
        if not self.store.registry.reclaim(record.id):
            raise ResumeRefused(f"run {record.id} is no longer interrupted: another process resumed it first")
        folder = RunFolder(Path(record.folder), list(procedure.DATA_COLUMNS), resume=True)
        metadata = reader.metadata()
        resumes = [*metadata.get("resumed", []), {"at": now_iso(), "pid": os.getpid()}]
        metadata.update(status="running", ended_at=None, error=None, resumed=resumes)
        folder.write_metadata(metadata)
        return self._go(record.id, procedure, bench, folder, metadata)

    def _go(self, run_id: str, procedure: LabProcedure, bench: Bench, folder: RunFolder,
            metadata: dict[str, Any]) -> RunOutcome:
        self.listeners.started(run_id, folder.path)
        outcome = RunOutcome(run_id, "running", folder.path)
        procedure.bench = bench
        procedure.emit = lambda topic, record: self._route(folder, outcome, topic, record)
        procedure.should_stop = self.stop_requested.is_set
        leased = self.store.registry.keep_leased(run_id)  # other PCs see the run reachable while this process lives
        try:
            self._execute(procedure, folder, outcome)
        finally:
            leased.set()
            metadata.update(status=outcome.status, ended_at=now_iso(), error=outcome.error)
            folder.write_metadata(metadata)
            folder.close()
            self.store.registry.finish(run_id, outcome.status, _summary(outcome))
            self.listeners.ended(outcome)
            if (shared := self.store.config.lab.archive) is not None and outcome.status in ARCHIVED:
                archive(folder.path, shared)  # last: viewers already know the run has ended
        return outcome

    def _execute(self, procedure: LabProcedure, folder: RunFolder, outcome: RunOutcome) -> None:
        try:
            procedure.startup()
            procedure.execute()
            outcome.status = self.stop_status if self.stop_requested.is_set() else "finished"
        except KeyboardInterrupt:
            outcome.status = "aborted"
        except SafetyLimitBreach as e:  # the supervisor rested the channel
            outcome.status, outcome.error = "failed", f"{type(e).__name__}: {e}"
            self._event(folder, "safety_limit", **e.event())
            log.error("run %s failed: %s", outcome.run_id, outcome.error)
        except ResumeRefused as e:  # its instrument cannot go on with it: the run stays as the crash left it
            outcome.status, outcome.error, outcome.refused = "interrupted", f"not resumed: {e}", True
            self._event(folder, "resume_refused", message=str(e))
        except Exception as e:  # any fault ends the run as failed, with the channel made safe below
            outcome.status, outcome.error = "failed", f"{type(e).__name__}: {e}"
            self._event(folder, "fault", message=outcome.error, traceback=traceback.format_exc())
            log.error("run %s failed: %s", outcome.run_id, outcome.error)
        finally:
            self._shutdown(procedure, folder, outcome)
        if outcome.status in STOP_MESSAGES and not outcome.refused:
            self._event(folder, outcome.status, message=STOP_MESSAGES[outcome.status])

    def _shutdown(self, procedure: LabProcedure, folder: RunFolder, outcome: RunOutcome) -> None:
        try:
            if outcome.status == "interrupted":  # told to terminate: a resumable run keeps its test, at rest
                procedure.suspend()
            else:
                procedure.shutdown()
        except Exception as e:
            message = f"could not leave the instruments safe: {type(e).__name__}: {e}"
            self._event(folder, "fault", message=message)
            log.critical("run %s: %s", outcome.run_id, message)
            outcome.status, outcome.error = "failed", outcome.error or message

    def _route(self, folder: RunFolder, outcome: RunOutcome, topic: str, record: Any) -> None:
        if topic == "results":
            folder.append(record)
            self.listeners.sample(record)
        elif topic == "event":
            self._event(folder, **record)
        elif topic == "spectrum":
            folder.add_spectrum(**record)
            self.listeners.spectrum(record)
        elif topic == "export":
            folder.write_export(record["name"], record["text"])
        elif topic == "status":
            self.listeners.status(record)
        elif topic == "progress":
            self.listeners.progress(float(record))
        elif topic == "result":
            outcome.result = record
            folder.write_results(record)
            self.listeners.result(record)

    def _event(self, folder: RunFolder, kind: str, **data: Any) -> None:
        """Every line of events.jsonl goes to the listeners too, so a feed's event count is the file's line count."""
        self.listeners.event(folder.event(kind, **data))


def _metadata(run_id: str, procedure: LabProcedure, bench: Bench) -> dict[str, Any]:
    config = bench.config.model_dump()
    for inst in config["roles"].values():
        for secret in SECRET_OPTIONS:  # never written to a run folder
            inst["options"].pop(secret, None)
    return {
        "run_id": run_id,
        "status": "running",
        "started_at": now_iso(),
        "procedure": {"name": procedure.NAME, "class": type(procedure).__qualname__,
                      "description": (type(procedure).__doc__ or "").strip()},
        "parameters": procedure.describe_parameters(),
        "cell": procedure.cell(),
        "bench": {"name": bench.name, "config": config},
        "instruments": {role: who for role, who in bench.identities().items() if role in procedure.ROLES},
        "software": {"labctl": version("labctl"), "pymeasure": version("pymeasure"),
                     "python": platform.python_version()},
        "estimated_duration_s": procedure.estimated_duration_s(),
        "limits": bench.limits.given(),  # safety limits: the tightest of the bench's, the channel's and the run's
        "time_series": time_series_metadata(list(procedure.DATA_COLUMNS)),
    }


def _summary(outcome: RunOutcome) -> dict[str, Any]:
    result = outcome.result or {}
    headline = result.get("headline")
    summary: dict[str, Any] = {"headline": headline, "brief": result.get("brief") or headline}
    if outcome.error:
        summary["error"] = outcome.error
    return summary
