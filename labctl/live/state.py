"""What a view needs to know about one run, built only from what the run emits (feed records) or wrote (its folder).

``RunState.apply(topic, record)`` takes feed records (labctl.live.feed's wire format); ``RunState.load(folder)``
reads the history from a run folder, up to the counts a feed's hello says were already sent, so that history
plus live records with ``seq`` at or above ``counts()`` is every record exactly once. Nothing here is analysis:
markers, cycles and R_tot are read off the events the run itself emitted. No Qt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labctl.bdf_columns import CURRENT, CYCLE, STEP, TIME, VOLTAGE
from labctl.live.series import Series
from labctl.store import Store, store_of
from labctl.store.reader import RunReader, Spectrum
from labctl.units import SECONDS_PER_HOUR, percent_done

FAILURE_KINDS = frozenset({"hard_short", "soft_short", "contact_loss", "fault", "crystal_failure"})


@dataclass(frozen=True)
class Marker:
    """A vertical line on time plots: ``kind`` "step" (a new current level, a new layer) or "failure"."""

    t_s: float
    label: str
    kind: str


@dataclass
class RunState:
    run_id: str = ""
    procedure: str = ""
    status: str = "running"  # the run's status; "status_line" holds the topic "status" (live values)
    metadata: dict[str, Any] = field(default_factory=dict)
    samples: Series = field(default_factory=lambda: Series(TIME))
    events: list[dict[str, Any]] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    cycles: list[dict[str, Any]] = field(default_factory=list)
    spectra: list[Spectrum] = field(default_factory=list)
    r_tot: list[tuple[float, float]] = field(default_factory=list)  # (test time h, R_tot Ω)
    progress: float = 0.0  # %
    status_line: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    version: int = 0  # bumped on every change: views redraw only when it moved
    _level: float | None = field(default=None, repr=False)  # |current density| of the last step marker

    @classmethod
    def from_folder(cls, folder: Path) -> RunState:
        """The whole history of a run folder (a running run's too: only complete lines are read)."""
        state = cls()
        state.load(folder)
        return state

    def counts(self) -> dict[str, int]:
        """How many samples, events and spectra this state holds: the next ``seq`` it needs of each."""
        return {"sample": len(self.samples), "event": len(self.events), "spectrum": len(self.spectra)}

    def apply(self, topic: str, record: Any) -> None:
        """Take one feed record; unknown topics are ignored (a newer run may send more)."""
        handler = getattr(self, f"_on_{topic}", None)
        if handler is not None:
            handler(record)
            self.version += 1

    def load(self, folder: Path, limits: dict[str, int] | None = None) -> None:
        """Bring the state up to a run folder: its metadata and results, and the samples, events and spectra after
        those it already holds, up to ``limits`` of each (what a feed's hello says it had sent: all of that is on
        disk, complete)."""
        limits = limits or {}
        have = self.counts()
        run = RunReader(folder)
        metadata = run.metadata()
        self.metadata = metadata
        self.run_id = metadata.get("run_id") or folder.name
        self.procedure = (metadata.get("procedure") or {}).get("name", "")
        if self.status == "running":
            self.status = registry_status(folder, self.run_id) or metadata.get("status", "running")
        if (result := run.results()) is not None:
            self.result = result
        columns = _numeric_columns(run.rows(limits.get("sample")))
        if columns and len(columns[TIME]) > have["sample"]:
            self.samples.extend({name: values[have["sample"] :] for name, values in columns.items()})
            self.status_line = self._last_status()
        self.spectra += run.spectra(limits.get("spectrum"))[have["spectrum"] :]
        for event in run.events(limits.get("event"))[have["event"] :]:
            self._on_event(event)
        self.progress = self._progress_of_history()
        self.version += 1

    # -- feed topics

    def _on_hello(self, record: dict[str, Any]) -> None:
        self.run_id = record.get("run_id", self.run_id)

    def _on_sample(self, row: dict[str, Any]) -> None:
        self.samples.append(row)

    def _on_status(self, record: dict[str, Any]) -> None:
        self.status_line = self._measured_density(record)

    def _on_progress(self, percent: float) -> None:
        self.progress = float(percent)

    def _on_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        kind = event.get("kind")
        if kind == "cycle_completed" and event.get("row"):
            self.cycles.append(event["row"])
        elif kind == "spectrum" and event.get("R_tot_ohm") is not None:
            self.r_tot.append((float(event["test_time_h"]), float(event["R_tot_ohm"])))
        elif kind == "segment_started" and event.get("current_density_mA_cm2") is not None:
            self._level_marker(event)
        elif kind == "layer_started":
            self.markers.append(Marker(self._event_time(event), str(event.get("material", "layer")), "step"))
        if kind in FAILURE_KINDS:
            self.markers.append(Marker(self._event_time(event), _failure_label(event), "failure"))

    def _on_spectrum(self, record: dict[str, Any]) -> None:
        self.spectra.append(Spectrum(
            int(record["index"]), float(record["test_time_s"]), int(record.get("cycle", 0)),
            np.asarray(record["freq_Hz"], float), np.asarray(record["z_real_ohm"], float),
            np.asarray(record["z_imag_ohm"], float),
        ))  # fmt: skip

    def _on_result(self, result: dict[str, Any]) -> None:
        self.result = result

    def _on_end(self, record: dict[str, Any]) -> None:
        self.status = record.get("status", self.status)
        self.error = record.get("error")

    # -- helpers

    def _level_marker(self, event: dict[str, Any]) -> None:
        """A step marker where the current level changes, at the segment's start: the last sample before its step
        (the event carries no time; it comes after the previous segment's samples, live and in the file)."""
        level = abs(float(event["current_density_mA_cm2"]))
        if level == self._level:
            return
        self._level = level
        step = event.get("step")
        if step is not None and STEP in self.samples.columns:
            i = int(np.searchsorted(self.samples.column(STEP), step, "left"))  # steps only go up
            t = float(self.samples.x[i - 1]) if i else 0.0
        else:
            t = self._last_time() or 0.0
        self.markers.append(Marker(t, f"{level:g} mA/cm²", "step"))

    def _event_time(self, event: dict[str, Any]) -> float:
        for key, scale in (("t_s", 1.0), ("test_time_s", 1.0), ("test_time_h", SECONDS_PER_HOUR)):
            if event.get(key) is not None:
                return float(event[key]) * scale
        return self._last_time() or 0.0

    def _last_time(self) -> float | None:
        return float(self.samples.x[-1]) if len(self.samples) else None

    def _last_status(self) -> dict[str, Any]:
        """The live values of the last stored sample, in the keys of the runs' ``status`` records."""
        line: dict[str, Any] = {"test_time_s": self._last_time()}
        for key, column in (("voltage_V", VOLTAGE), ("current_A", CURRENT), ("cycle", CYCLE)):
            if column in self.samples.columns:
                line[key] = float(self.samples.column(column)[-1])
        return self._measured_density(line)

    def _measured_density(self, line: dict[str, Any]) -> dict[str, Any]:
        """``line`` with the current density of its measured current (none without the electrode area). A run's
        status record carries its set point's, which beside zero current (during a spectrum, after an abort) reads
        as a current that is not flowing."""
        line = {k: v for k, v in line.items() if k != "density_mA_cm2"}
        area = (self.metadata.get("cell") or {}).get("area_cm2")
        if isinstance(line.get("current_A"), int | float) and area:
            line["density_mA_cm2"] = 1000 * line["current_A"] / area
        return line

    @property
    def planned(self) -> bool:
        """The run has a planned duration (an imported or followed test has none)."""
        total = self.metadata.get("estimated_duration_s")
        return isinstance(total, int | float) and 0 < total < math.inf

    def _progress_of_history(self) -> float:
        t = self._last_time()
        if t is None or not self.planned:
            return self.progress
        return percent_done(t, self.metadata["estimated_duration_s"])


def _failure_label(event: dict[str, Any]) -> str:
    """A CE short in the words of its headline ("short (collapse) at cycle 30"); other failures by their kind, with
    the current density they happened at (a CCD's criterion is a letter, not a word)."""
    criterion = event.get("criterion")
    if isinstance(criterion, str) and len(criterion) > 1:
        return f"short ({criterion.replace('_', ' ')})" + (f" at cycle {event['cycle']}" if "cycle" in event else "")
    label = str(event["kind"]).replace("_", " ")
    density = event.get("current_density_mA_cm2")
    return f"{label} at {density:g} mA/cm²" if isinstance(density, int | float) else label


def registry_status(folder: Path, run_id: str) -> str | None:
    """The run's status in its store's registry (a run whose process is gone reads ``interrupted``); None if the
    folder is not in a store."""
    store = Store(store_of(folder))
    if not store.has_registry():
        return None
    try:
        record = store.registry.get(run_id)
    finally:
        store.close()
    return record.status if record else None


def _numeric_columns(rows: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """Each column of the stored rows as floats (an empty cell is NaN); {} without rows."""
    if rows is None or rows.empty:
        return {}
    return {str(c): pd.to_numeric(rows[c], errors="coerce").to_numpy(float) for c in rows.columns}
