"""One folder per run, readable without labctl.

- ``timeseries.bdf.csv``: samples with Battery Data Format column names, appended as they arrive (runs whose rows
  have no voltage and current, such as a deposition log, write ``timeseries.csv`` with the same kind of header);
- ``spectra.csv``: impedance spectra, a row per point with BDF impedance columns, keyed by spectrum index,
  test time, cycle and step (written only by runs that measure spectra);
- ``events.jsonl``: one JSON object per line (segments, detections, faults, operator actions);
- ``metadata.json``: protocol, parameters with units, cell, bench, instruments, software, status;
- ``results.json``: the results summary.

:class:`labctl.store.reader.RunReader` reads a folder back, a running run's too.

Durability: rows reach the operating system at once and the disk at least once a second
(``flush_interval_s``), events and status changes at once, so a crash loses at most about a second of
samples. JSON files are replaced atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

from labctl.bdf_columns import (
    CYCLE,
    FREQUENCY,
    IMAGINARY_IMPEDANCE,
    REAL_IMPEDANCE,
    REQUIRED,
    SPECTRUM_INDEX,
    STEP,
    TIME,
)

TIMESERIES = "timeseries.bdf.csv"
PLAIN_TIMESERIES = "timeseries.csv"
EVENTS = "events.jsonl"
METADATA = "metadata.json"
RESULTS = "results.json"
SPECTRA = "spectra.csv"
PRIVATE_FOLDER = 0o700  # a store's folders: only their user reads them (cells, results and names are private)
STORE_MODE_VARIABLE = "LABCTL_STORE_MODE"
SPECTRUM_COLUMNS = [SPECTRUM_INDEX, TIME, CYCLE, STEP, FREQUENCY, REAL_IMPEDANCE, IMAGINARY_IMPEDANCE]


def store_modes() -> tuple[int, int]:
    """(folder mode, file mode) of what labctl writes in a store: private to the user (700 and 600), unless
    ``$LABCTL_STORE_MODE`` gives another folder mode in octal (e.g. 750 lets the group read the runs)."""
    text = os.environ.get(STORE_MODE_VARIABLE, "").strip()
    try:
        folder = int(text, 8) if text else PRIVATE_FOLDER
    except ValueError:
        raise ValueError(f"${STORE_MODE_VARIABLE}: {text!r} is not an octal folder mode; write it like 750, or "
                         "unset it for private folders (700)") from None
    return folder, folder & ~0o111  # files: the folder's read and write bits


def make_folder(path: Path) -> None:
    """Create ``path`` and its missing parents with the store's folder mode."""
    for folder in reversed([path, *path.parents]):
        if not folder.exists():
            folder.mkdir(mode=store_modes()[0], exist_ok=True)  # another run may make it in between


def open_private(path: Path, mode: str, **kwargs: Any) -> Any:
    """``path.open(mode)``, a new file getting the store's file mode."""
    return open(path, mode, opener=lambda name, flags: os.open(name, flags, store_modes()[1]), **kwargs)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open_private(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def timeseries_name(columns: list[str]) -> str:
    """The BDF file name only for rows that can be BDF: a time series without voltage and current must not claim
    to be one."""
    return TIMESERIES if all(c in columns for c in REQUIRED) else PLAIN_TIMESERIES


def time_series_metadata(columns: list[str]) -> dict[str, Any]:
    """How a run's metadata describes its time series file."""
    if timeseries_name(columns) == TIMESERIES:
        return {"file": TIMESERIES, "format": "Battery Data Format (BDF) CSV",
                "sign_convention": "positive current charges (strips the working electrode)"}
    return {"file": PLAIN_TIMESERIES, "format": "CSV with 'Quantity / unit' column names", "columns": columns}


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


class RunFolder:
    """Writer for one run's folder. Create it with the time-series columns, then append."""

    def __init__(self, path: Path, columns: list[str], *, flush_interval_s: float = 1.0, resume: bool = False) -> None:
        """A new folder at ``path`` (an existing one is an error), or with ``resume`` the existing folder of a run
        that is resumed: its files are appended to, after cutting any line a killed process left half-written."""
        self.path = path
        self.columns = columns
        self.timeseries = path / timeseries_name(columns)
        self._csv_file: Any = None  # the time series starts with the first sample (a lone spectrum has none)
        if resume:
            for name in (self.timeseries.name, EVENTS, SPECTRA):
                cut_partial_line(path / name)
            if self.timeseries.exists():
                self._csv_file = open_private(self.timeseries, "a", encoding="utf-8", newline="")
                self._csv = csv.writer(self._csv_file, lineterminator="\n")
        else:
            make_folder(path.parent)
            path.mkdir(mode=store_modes()[0])
        self._events = open_private(path / EVENTS, "a", encoding="utf-8")
        self._flush_interval_s = flush_interval_s
        self._synced_at = 0.0

    def append(self, row: dict[str, float | int]) -> None:
        """Write one sample; missing columns are left empty."""
        if self._csv_file is None:
            self._csv_file = open_private(self.timeseries, "w", encoding="utf-8", newline="")
            self._csv = csv.writer(self._csv_file, lineterminator="\n")
            self._csv.writerow(self.columns)
        self._csv.writerow([_cell(row.get(c)) for c in self.columns])
        self._csv_file.flush()
        if time.monotonic() - self._synced_at >= self._flush_interval_s:
            self._sync(self._csv_file)

    def event(self, kind: str, **data: Any) -> dict[str, Any]:
        """Write one event line, durable at once; returns the record written."""
        record = {"kind": kind, "wall_time": time.time(), **data}
        self._events.write(json.dumps(record, default=str) + "\n")
        self._sync(self._events)
        if self._csv_file is not None:
            self._sync(self._csv_file)
        return record

    def add_spectrum(self, index: int, test_time_s: float, cycle: int, step: int,
                     points: list[tuple[float, complex]]) -> None:
        """Write one whole spectrum to ``spectra.csv`` (points as (frequency Hz, Z ohm)); durable at once."""
        path = self.path / SPECTRA
        new = not path.exists()
        with open_private(path, "a", encoding="utf-8", newline="") as f:
            rows = csv.writer(f, lineterminator="\n")
            if new:
                rows.writerow(SPECTRUM_COLUMNS)
            for freq, z in points:
                rows.writerow([index, _cell(test_time_s), cycle, step, _cell(freq), _cell(z.real), _cell(z.imag)])
            self._sync(f)

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        write_json_atomic(self.path / METADATA, metadata)

    def write_results(self, results: dict[str, Any]) -> None:
        write_json_atomic(self.path / RESULTS, results)

    def write_export(self, name: str, text: str) -> None:
        """A file for other programs (e.g. a ZView ``.z`` spectrum), written whole."""
        tmp = self.path / (name + ".tmp")
        with open_private(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.path / name)

    def close(self) -> None:
        for f in (self._csv_file, self._events):
            if f is not None and not f.closed:
                self._sync(f)
                f.close()

    def _sync(self, f: Any) -> None:
        f.flush()
        os.fsync(f.fileno())
        self._synced_at = time.monotonic()


def cut_partial_line(path: Path) -> None:
    """Cut what follows the last newline of ``path`` (a line a killed writer left half-written), if it exists."""
    try:
        with path.open("rb+") as f:
            size = f.seek(0, os.SEEK_END)
            keep = size
            while keep > 0:
                f.seek(max(0, keep - 4096))
                block = f.read(keep - max(0, keep - 4096))
                newline = block.rfind(b"\n")
                if newline >= 0:
                    keep = keep - len(block) + newline + 1
                    break
                keep = max(0, keep - 4096)
            if keep < size:
                f.truncate(keep)
    except FileNotFoundError:
        return


def _cell(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, ".10g")
    return str(value)
