"""The one reader of a run folder (:mod:`labctl.store.folder` writes it): metadata, results, time-series rows,
spectra and events.

A run may be writing the folder while it is read: only complete lines count. A CSV or event line after the last
newline is still being written, so it is skipped, never parsed (a number cut short would turn its column to text).
JSON files are replaced whole by the writer, so they are read as they are.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labctl.bdf_columns import CYCLE, FREQUENCY, IMAGINARY_IMPEDANCE, REAL_IMPEDANCE, SPECTRUM_INDEX, TIME
from labctl.store.folder import EVENTS, METADATA, PLAIN_TIMESERIES, RESULTS, SPECTRA, TIMESERIES, read_json

TAIL_BYTES = 4096  # the last row is looked for in this much of the file's end (rows are ~100 bytes)


@dataclass(frozen=True)
class Spectrum:
    """One impedance spectrum of a run, with where it sits in the test."""

    index: int
    test_time_s: float
    cycle: int
    freq: np.ndarray  # Hz
    z_real: np.ndarray  # Ω
    z_imag: np.ndarray  # Ω (negative for capacitive arcs; plots show −Z'')


class RunReader:
    """Reads one run's folder; every method reads the files afresh, so a running run's reader sees it grow."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def timeseries(self) -> Path:
        """The time-series file: the BDF one when the run wrote it, else the plain one (e.g. a deposition log)."""
        bdf = self.path / TIMESERIES
        return bdf if bdf.exists() else self.path / PLAIN_TIMESERIES

    def metadata(self) -> dict[str, Any]:
        """``metadata.json``; {} before the run wrote it."""
        path = self.path / METADATA
        return read_json(path) if path.exists() else {}

    def results(self) -> dict[str, Any] | None:
        """``results.json``; None until the run ends with results."""
        path = self.path / RESULTS
        return read_json(path) if path.exists() else None

    def rows(self, limit: int | None = None) -> pd.DataFrame | None:
        """The time series' complete rows (the first ``limit`` of them), as written; None before the first sample."""
        return complete_csv(self.timeseries, limit)

    def last_row(self) -> dict[str, str] | None:
        """The time series' last complete row as text by column, read from the file's end (cheap on a long run)."""
        return last_row(self.timeseries)

    def spectra(self, limit: int | None = None) -> list[Spectrum]:
        """The spectra in the order measured (the first ``limit`` of them)."""
        table = complete_csv(self.path / SPECTRA, None)
        if table is None or table.empty:
            return []
        spectra = []
        for index, rows in table.groupby(SPECTRUM_INDEX, sort=False):
            if limit is not None and len(spectra) == limit:
                break
            spectra.append(Spectrum(
                int(index), float(rows[TIME].iloc[0]), int(rows[CYCLE].iloc[0]), rows[FREQUENCY].to_numpy(float),
                rows[REAL_IMPEDANCE].to_numpy(float), rows[IMAGINARY_IMPEDANCE].to_numpy(float),
            ))  # fmt: skip
        return spectra

    def last_written(self) -> float:
        """Unix time of the last write to the run's data files (a run that crashed: about when it died)."""
        return max((path.stat().st_mtime for path in self.path.iterdir() if path.name != METADATA), default=0.0)

    def events(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The complete event records, in order (the first ``limit`` of them)."""
        path = self.path / EVENTS
        if not path.exists():
            return []
        events = []
        with path.open(encoding="utf-8") as f:
            for line in f:
                if (limit is not None and len(events) == limit) or not line.endswith("\n"):
                    break
                events.append(json.loads(line))
        return events


def complete_csv(path: Path, limit: int | None) -> pd.DataFrame | None:
    """The rows of a CSV up to its last newline (the first ``limit`` of them); None without a complete header."""
    if not path.exists() or limit == 0:
        return None
    data = path.read_bytes()
    try:
        return pd.read_csv(io.BytesIO(data[: data.rfind(b"\n") + 1]), nrows=limit)
    except pd.errors.EmptyDataError:
        return None


def last_row(path: Path) -> dict[str, str] | None:
    """The header and last complete line of a CSV that is being appended to, without reading it whole."""
    try:
        with path.open("rb") as f:
            header = f.readline().decode("utf-8").strip()
            header_end = f.tell()
            start = max(header_end, f.seek(0, io.SEEK_END) - TAIL_BYTES)
            f.seek(start)
            chunks = f.read().decode("utf-8", errors="replace").split("\n")
    except OSError:
        return None
    complete = chunks[:-1]  # after the last newline: a line still being written
    if start > header_end:
        complete = complete[1:]  # the first chunk may start mid-line
    complete = [line for line in complete if line.strip()]
    if not header or not complete:
        return None
    return dict(zip(next(csv.reader([header])), next(csv.reader([complete[-1]])), strict=False))
