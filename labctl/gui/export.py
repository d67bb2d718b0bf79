"""Exports of a stored run for other programs: the time series as BDF parquet, each spectrum as a ZView ``.z`` file,
and PNG pictures of a run view's plots.

Time series and spectra come from the run's files (the store is the record; a view holds only what it plots); the
``.z`` text is written by :func:`labctl.analysis.zview.write_z`, the writer ``eis`` runs use.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from labctl.analysis.zview import write_z
from labctl.gui.run_view import RunView
from labctl.store.folder import SPECTRA, TIMESERIES
from labctl.store.reader import RunReader


def export_parquet(folder: Path, dest: Path) -> Path:
    """The run's time series as ``<run>.bdf.parquet`` (``<run>.parquet`` for a series that is not BDF, such as a
    deposition log) in ``dest``, same columns and rows as the CSV (its complete rows, for a running run)."""
    run = RunReader(folder)
    rows = run.rows()
    if rows is None:
        raise ValueError(f"{folder.name} has no time series ({TIMESERIES}) to export: the run recorded no samples")
    suffix = ".bdf.parquet" if run.timeseries.name == TIMESERIES else ".parquet"
    path = dest / f"{folder.name}{suffix}"
    rows.to_parquet(path, index=False)
    return path


def export_z(folder: Path, dest: Path) -> list[Path]:
    """Each spectrum of the run as ``<run>-spectrum-NNN.z`` in ``dest``, with the run's AC amplitude, the cell's
    area and the time the spectrum started in the header."""
    run = RunReader(folder)
    spectra = sorted(run.spectra(), key=lambda s: s.index)
    if not spectra:
        raise ValueError(f"{folder.name} has no spectra ({SPECTRA}) to export: the run measured no impedance")
    metadata = run.metadata()
    header = _z_header(metadata)
    started = _started(metadata)
    paths = []
    for spectrum in spectra:
        points = list(zip(spectrum.freq, spectrum.z_real + 1j * spectrum.z_imag, strict=True))
        when = started + timedelta(seconds=spectrum.test_time_s) if started else None
        paths.append(write_z(dest / f"{folder.name}-spectrum-{spectrum.index:03d}.z", points, started=when, **header))
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
