"""What a view needs to know about one run, built only from what the run emits (feed records) or wrote (its folder).

``RunState.apply(topic, record)`` takes feed records (labctl.live.feed's wire format); ``RunState.load(folder)``
reads the history from a run folder, up to the counts a feed's hello says were already sent, so that history
plus live records with ``seq`` at or above ``counts()`` is every record exactly once. Nothing here is analysis:
markers, cycles and R_tot are read off the events the run itself emitted. No Qt.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labctl.live.series import Series
from labctl.store import Registry, registry_path, store_of
from labctl.store.folder import EVENTS, METADATA, PLAIN_TIMESERIES, RESULTS, SPECTRA, TIMESERIES, read_json
from labctl.units import SECONDS_PER_HOUR

TIME = "Test Time / s"
VOLTAGE = "Voltage / V"
CURRENT = "Current / A"
STEP = "Step Count / 1"
CYCLE = "Cycle Count / 1"
FAILURE_KINDS = frozenset({"hard_short", "soft_short", "contact_loss", "fault", "crystal_failure"})


@dataclass(frozen=True)
class Marker:
    """A vertical line on time plots: ``kind`` "step" (a new current level, a new layer) or "failure"."""

    t_s: float
    label: str
    kind: str


@dataclass(frozen=True)
class Spectrum:
    index: int
    test_time_s: float
    cycle: int
    freq: np.ndarray  # Hz
    z_real: np.ndarray  # Ω
    z_imag: np.ndarray  # Ω (negative for capacitive arcs; plots show −Z'')


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
        metadata = read_json(folder / METADATA) if (folder / METADATA).exists() else {}
        self.metadata = metadata
        self.run_id = metadata.get("run_id") or folder.name
        self.procedure = (metadata.get("procedure") or {}).get("name", "")
        if self.status == "running":
            self.status = registry_status(folder, self.run_id) or metadata.get("status", "running")
        if (folder / RESULTS).exists():
            self.result = read_json(folder / RESULTS)
        columns = _read_timeseries(folder, limits.get("sample"))
        if columns and len(columns[TIME]) > have["sample"]:
            self.samples.extend({name: values[have["sample"] :] for name, values in columns.items()})
            self.status_line = self._last_status()
        self.spectra += _read_spectra(folder / SPECTRA, limits.get("spectrum"))[have["spectrum"] :]
        for event in _read_events(folder / EVENTS, limits.get("event"))[have["event"] :]:
            self._on_event(event)
        self.progress = self._progress_of_history()
        self.version += 1

    # -- feed topics

    def _on_hello(self, record: dict[str, Any]) -> None:
        self.run_id = record.get("run_id", self.run_id)

    def _on_sample(self, row: dict[str, Any]) -> None:
        self.samples.append(row)

    def _on_status(self, record: dict[str, Any]) -> None:
        self.status_line = record

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
        area = (self.metadata.get("cell") or {}).get("area_cm2")
        if "current_A" in line and area:
            line["density_mA_cm2"] = 1000 * line["current_A"] / area
        return line

    def _progress_of_history(self) -> float:
        total = self.metadata.get("estimated_duration_s")
        t = self._last_time()
        if t is None or not isinstance(total, int | float) or not 0 < total < math.inf:
            return self.progress
        return min(100.0, 100.0 * t / total)


def _failure_label(event: dict[str, Any]) -> str:
    label = str(event["kind"]).replace("_", " ")
    density = event.get("current_density_mA_cm2")
    return f"{label} at {density:g} mA/cm²" if isinstance(density, int | float) else label


def registry_status(folder: Path, run_id: str) -> str | None:
    """The run's status in its store's registry (a run whose process is gone reads ``interrupted``); None if the
    folder is not in a store."""
    path = registry_path(store_of(folder))
    if not path.exists():
        return None
    registry = Registry(path)
    try:
        record = registry.get(run_id)
    finally:
        registry.close()
    return record.status if record else None


def _complete(path: Path) -> bool:
    """Whether a file ends with a newline (a writer may be part-way through its last line)."""
    with path.open("rb") as f:
        f.seek(0, 2)
        if f.tell() == 0:
            return True
        f.seek(-1, 2)
        return f.read(1) == b"\n"


def _read_csv(path: Path, nrows: int | None) -> pd.DataFrame | None:
    if not path.exists() or nrows == 0:
        return None
    complete = _complete(path)
    try:
        frame = pd.read_csv(path, nrows=nrows)
    except pd.errors.EmptyDataError:
        return None
    if not complete and (nrows is None or len(frame) < nrows):
        frame = frame.iloc[:-1]  # the last line was still being written
    return frame


def _read_timeseries(folder: Path, nrows: int | None) -> dict[str, np.ndarray]:
    path = folder / TIMESERIES if (folder / TIMESERIES).exists() else folder / PLAIN_TIMESERIES
    frame = _read_csv(path, nrows)
    if frame is None or frame.empty:
        return {}
    return {str(c): pd.to_numeric(frame[c], errors="coerce").to_numpy(float) for c in frame.columns}


def _read_spectra(path: Path, limit: int | None) -> list[Spectrum]:
    frame = _read_csv(path, None)
    if frame is None or frame.empty:
        return []
    spectra = []
    for index, rows in frame.groupby("Spectrum Index / 1", sort=False):
        if limit is not None and len(spectra) == limit:
            break
        spectra.append(Spectrum(
            int(index), float(rows["Test Time / s"].iloc[0]), int(rows["Cycle Count / 1"].iloc[0]),
            rows["Frequency / Hz"].to_numpy(float), rows["Real Impedance / ohm"].to_numpy(float),
            rows["Imaginary Impedance / ohm"].to_numpy(float),
        ))  # fmt: skip
    return spectra


def _read_events(path: Path, limit: int | None) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    events = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if (limit is not None and len(events) == limit) or not line.endswith("\n"):
                break
            events.append(json.loads(line))
    return events
