"""Exports of a stored run for other programs: the time series as BDF parquet, each spectrum as a ZView ``.z`` file,
and PNG pictures of a run view's plots.

Time series and spectra come from the run's files (the store is the record; a view holds only what it plots); the
``.z`` text is written by :func:`labctl.analysis.zview.write_z`, the writer ``eis`` runs use.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from labctl.analysis.zview import write_z
from labctl.gui.run_view import RunView
from labctl.store.folder import METADATA, PLAIN_TIMESERIES, SPECTRA, TIMESERIES, read_json

SPECTRUM, TEST_TIME = "Spectrum Index / 1", "Test Time / s"
FREQUENCY, REAL, IMAGINARY = "Frequency / Hz", "Real Impedance / ohm", "Imaginary Impedance / ohm"


def export_parquet(folder: Path, dest: Path) -> Path:
    """The run's time series as ``<run>.bdf.parquet`` (``<run>.parquet`` for a series that is not BDF, such as a
    deposition log) in ``dest``, same columns and rows as the CSV."""
    for name, suffix in ((TIMESERIES, ".bdf.parquet"), (PLAIN_TIMESERIES, ".parquet")):
        if (folder / name).is_file():
            path = dest / f"{folder.name}{suffix}"
            pd.read_csv(folder / name).to_parquet(path, index=False)
            return path
    raise ValueError(f"{folder.name} has no time series ({TIMESERIES}) to export: the run recorded no samples")


def export_z(folder: Path, dest: Path) -> list[Path]:
    """Each spectrum of the run as ``<run>-spectrum-NNN.z`` in ``dest``, with the run's AC amplitude, the cell's
    area and the time the spectrum started in the header."""
    if not (folder / SPECTRA).is_file():
        raise ValueError(f"{folder.name} has no spectra ({SPECTRA}) to export: the run measured no impedance")
    metadata = read_json(folder / METADATA) if (folder / METADATA).is_file() else {}
    header = _z_header(metadata)
    started = _started(metadata)
    paths = []
    for index, spectrum in pd.read_csv(folder / SPECTRA).groupby(SPECTRUM, sort=True):
        points = list(zip(spectrum[FREQUENCY], spectrum[REAL] + 1j * spectrum[IMAGINARY], strict=True))
        when = started + timedelta(seconds=float(spectrum[TEST_TIME].iloc[0])) if started else None
        paths.append(write_z(dest / f"{folder.name}-spectrum-{int(index):03d}.z", points, started=when, **header))
    return paths


def export_png(view: RunView, dest: Path) -> list[Path]:
    """Each tab of ``view`` that has data as ``<run>-<tab>.png`` in ``dest``, drawn at the size of the view's tab area
    (a tab not on show is laid out at that size first). The view must have been shown, on screen or off."""
    size = view.tabs.currentWidget().size()
    paths = []
    for title, page in view.pages_with_data().items():
        path = dest / f"{view.state.run_id}-{_slug(title)}.png"
        page.resize(size)
        if not page.grab().save(str(path), "PNG"):
            raise OSError(f"could not write {path}; check that the folder exists and is writable")
        paths.append(path)
    return paths


def _z_header(metadata: dict[str, Any]) -> dict[str, Any]:
    params = metadata.get("parameters", {})
    header: dict[str, Any] = {}
    if "amplitude" in params:
        header["amplitude_V"] = params["amplitude"]["value"] / 1000  # the parameter is in mV rms
    if (area := (metadata.get("cell") or {}).get("area_cm2")) is not None:
        header["area_cm2"] = area
    return header


def _started(metadata: dict[str, Any]) -> datetime | None:
    """When the run started, in local time (ZPlot writes local dates), if the metadata says."""
    text = metadata.get("started_at")
    return datetime.fromisoformat(text).astimezone().replace(tzinfo=None) if text else None


def _slug(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title).strip("-").lower().replace("--", "-")
