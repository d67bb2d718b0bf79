"""Follow a running test of an instrument labctl cannot drive (a LAND cycler) through the export file its own
software rewrites or appends to: a live run in the store, its detector run on every new row.

Each time the file changes it is read whole (an export is rewritten whole as often as appended to), the rows beyond
those stored are appended to the run (durable before any display sees them, as in a run labctl drives), and the
procedure's analysis (``--procedure``: the CCD short detector, CE's analyzer) is replayed over the whole series: a
finding it did not report before becomes an event, and one that ends a test (a hard short) also runs the
``--notify`` hook. labctl cannot stop the instrument's channel, and says so in an event. The run ends ``finished``
when the file has not grown for ``idle_s`` or its rows go back (a new test written over it), ``aborted`` when the
operator stops following (Ctrl-C); the instrument's test goes on either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from labctl.analysis.replay import Analysis, rows_of
from labctl.engine.runner import Listeners, RunOutcome
from labctl.imports.imported import FormatError, Imported
from labctl.imports.store import jsonable, sha256
from labctl.notify import start_hook
from labctl.store import RunFolder, Store
from labctl.store.folder import time_series_metadata
from labctl.store.registry import now_iso

log = logging.getLogger(__name__)

CANNOT_STOP = ("labctl follows this test through its export file and cannot stop the instrument's channel: stop it in "
               "the instrument's own software (LANDMon) if the cell has failed")


@dataclass
class Follower:
    """Follows ``path`` (read by ``read``) into a new run of ``store``, polling every ``poll_s``."""

    store: Store
    path: Path
    read: Callable[[Path], Imported]
    cell_id: str
    area_cm2: float | None
    analysis: Analysis | None = None
    procedure: str = "follow"
    idle_s: float = 1800.0
    poll_s: float = 5.0
    notify: str | None = None
    listeners: Listeners = field(default_factory=Listeners)
    sleep: Callable[[float], None] = time.sleep
    should_stop: Callable[[], bool] = lambda: False
    _stored: int = 0  # rows stored
    _reported: set[tuple[str, float]] = field(default_factory=set)  # findings already made events (kind, onset)
    _seen: tuple[int, int] = (0, -1)  # the file's (mtime, size) at the last read

    def run(self) -> RunOutcome:
        """Follow until the export stops growing or the operator stops; FormatError (nothing created) if the file
        is not such an export to begin with."""
        stat = self.path.stat()
        first = self.read(self.path)
        self._seen = (stat.st_mtime_ns, stat.st_size)
        columns = list(first.series.columns) if first.series is not None else []
        if not columns:
            raise FormatError(f"{self.path}: no time series to follow (a file of spectra only)")
        run_id = self.store.new_run_id(self.procedure)
        folder = RunFolder(self.store.folder_of(run_id), columns)
        outcome = RunOutcome(run_id, "running", folder.path)
        metadata = self._metadata(run_id, first, columns)
        folder.write_metadata(metadata)
        self.store.registry.add(run_id, procedure=self.procedure, bench=first.format, cell_id=self.cell_id or None,
                                folder=folder.path)
        self.listeners.started(run_id, folder.path)
        try:
            self._event(folder, {"kind": "following", "file": str(self.path), "message": CANNOT_STOP})
            outcome.status = self._loop(folder, outcome, first)
        except Exception as e:  # a fault of labctl's, not the cell's: the run says so and ends failed
            outcome.status, outcome.error = "failed", f"{type(e).__name__}: {e}"
            self._event(folder, {"kind": "fault", "message": outcome.error})
        finally:
            metadata.update(status=outcome.status, ended_at=now_iso(), error=outcome.error)
            folder.write_metadata(metadata)
            if outcome.result is not None:
                folder.write_results(outcome.result)
            folder.close()
            self.store.registry.finish(run_id, outcome.status, _summary(outcome))
            self.listeners.ended(outcome)
            self._notify(run_id, outcome.status)
        return outcome

    def _loop(self, folder: RunFolder, outcome: RunOutcome, imported: Imported | None) -> str:
        grew_at = time.monotonic()
        while True:
            if imported is not None:
                grown = self._take(folder, outcome, imported)
                if grown is None:
                    return "finished"
                grew_at = time.monotonic() if grown else grew_at
            if self.should_stop():
                self._event(folder, {"kind": "aborted", "message": "the operator stopped following; the instrument's "
                                     "test goes on"})
                return "aborted"
            if time.monotonic() - grew_at >= self.idle_s:
                self._event(folder, {"kind": "export_idle", "message": f"the export has not grown for "
                                     f"{self.idle_s:g} s: the test is taken as ended"})
                return "finished"
            self.sleep(self.poll_s)
            imported = self._reread()

    def _reread(self) -> Imported | None:
        """The export again if it changed since the last read; None if not, or if it is caught mid-write."""
        try:
            stat = self.path.stat()
        except OSError:
            return None
        if (stat.st_mtime_ns, stat.st_size) == self._seen:
            return None
        try:
            imported = self.read(self.path)
        except (FormatError, OSError) as e:  # an export half-written: the next poll reads it whole
            log.info("%s not readable yet (%s); trying again", self.path, e)
            return None
        self._seen = (stat.st_mtime_ns, stat.st_size)
        return imported

    def _take(self, folder: RunFolder, outcome: RunOutcome, imported: Imported) -> bool | None:
        """Store the rows beyond those stored and run the analysis; whether there were new rows, None when the
        file's rows went back."""
        series = imported.series
        if series is None or len(series) < self._stored:
            self._event(folder, {"kind": "export_restarted", "message": f"{self.path} now holds "
                                 f"{0 if series is None else len(series)} rows, fewer than the {self._stored} "
                                 "stored: a new test was written over it; follow that one as a new run"})
            return None
        grown = len(series) > self._stored
        for row in series.iloc[self._stored:].to_dict("records"):
            folder.append(row)
            self.listeners.sample(row)
        self._stored = len(series)
        if grown and self.analysis is not None:
            self._analyse(folder, outcome, series)
        return grown

    def _analyse(self, folder: RunFolder, outcome: RunOutcome, series: pd.DataFrame) -> None:
        """Replay the whole series through a fresh analyzer; report the findings not reported before."""
        analyzer = self.analysis.analyzer()  # type: ignore[union-attr]
        findings = [f for row in rows_of(series, analyzer.split) for f in analyzer.feed(row)] + analyzer.finish()
        for finding in findings:
            key = (finding.kind, finding.t_s)
            if key in self._reported:
                continue
            self._reported.add(key)
            self._event(folder, {"kind": finding.kind, **finding.to_dict()})
            if getattr(finding, "ends_test", False):
                self._event(folder, {"kind": "test_failed", "message": f"{finding.kind} in the data; {CANNOT_STOP}"})
                self._notify(outcome.run_id, finding.kind)
        result = analyzer.result()
        outcome.result = result.to_dict() | {"headline": result.headline()}
        self.listeners.result(outcome.result)

    def _event(self, folder: RunFolder, event: dict[str, Any]) -> None:
        record = folder.event(**event)
        self.listeners.event(record)

    def _notify(self, run_id: str, what: str) -> None:
        if self.notify:
            start_hook(self.notify, run_id, what, self.store.root / "follow.log")

    def _metadata(self, run_id: str, imported: Imported, columns: list[str]) -> dict[str, Any]:
        return {
            "run_id": run_id, "status": "running", "started_at": now_iso(),
            "procedure": {"name": self.procedure, "description": f"a {imported.format} test followed through its export"},
            "parameters": {}, "cell": {"id": self.cell_id, "area_cm2": self.area_cm2},
            "instruments": {"source": imported.instrument},
            "followed": {"file": str(self.path.resolve()), "format": imported.format, "sha256_at_start": sha256(self.path),
                         "header": jsonable(imported.header), "analysis": self.analysis.kind if self.analysis else None},
            "time_series": time_series_metadata(columns),
        }  # fmt: skip


def _summary(outcome: RunOutcome) -> dict[str, Any]:
    result = outcome.result or {}
    summary: dict[str, Any] = {"headline": result.get("headline"), "brief": result.get("headline")}
    if outcome.error:
        summary["error"] = outcome.error
    return summary
