"""Exports of a stored run for other programs: the time series as BDF parquet, each spectrum as a ZView ``.z`` file,
and PNG pictures of a run view's plots.

Time series and spectra come from the run's files (the store is the record; a view holds only what it plots); the
``.z`` text is written by :func:`labctl.analysis.zview.write_z`, the writer ``eis`` runs use.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QRect, Qt
from PyQt6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter
from PyQt6.QtWidgets import QWidget

from labctl.analysis.zview import write_z
from labctl.gui.run_view import RunView, title_text
from labctl.store.folder import SPECTRA, TIMESERIES
from labctl.store.reader import RunReader, last_row

PNG_SIZE = (1400, 900)  # px of each exported picture, its title included
TITLE_PAD = 10  # px around the title of a picture


def missing(folder: Path, export: str) -> str | None:
    """Why the run has nothing for ``export`` ("parquet", "z" or "png"), or None; from the files' last lines, so
    that the window can say so before it asks for a folder."""
    samples = RunReader(folder).last_row() is not None
    spectra = last_row(folder / SPECTRA) is not None
    if export == "parquet" and not samples:
        return _no_samples(folder)
    if export == "z" and not spectra:
        return _no_spectra(folder)
    if export == "png" and not (samples or spectra):
        return f"{folder.name} has no samples or spectra to draw"
    return None


def _no_samples(folder: Path) -> str:
    return f"{folder.name} has no time series ({TIMESERIES}) to export: the run recorded no samples"


def _no_spectra(folder: Path) -> str:
    return f"{folder.name} has no spectra ({SPECTRA}) to export: the run measured no impedance"


def export_parquet(folder: Path, dest: Path) -> Path:
    """The run's time series as ``<run>.bdf.parquet`` (``<run>.parquet`` for a series that is not BDF, such as a
    deposition log) in ``dest``, same columns and rows as the CSV (its complete rows, for a running run)."""
    run = RunReader(folder)
    rows = run.rows()
    if rows is None:
        raise ValueError(_no_samples(folder))
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
        raise ValueError(_no_spectra(folder))
    metadata = run.metadata()
    header = _z_header(metadata)
    started = _started(metadata)
    paths = []
    for spectrum in spectra:
        points = list(zip(spectrum.freq, spectrum.z_real + 1j * spectrum.z_imag, strict=True))
        when = started + timedelta(seconds=spectrum.test_time_s) if started else None
        paths.append(write_z(dest / f"{folder.name}-spectrum-{spectrum.index:03d}.z", points, started=when, **header))
    return paths


def export_png(view: RunView, dest: Path, size: tuple[int, int] = PNG_SIZE) -> list[Path]:
    """Each tab of ``view`` that has data as ``<run>-<tab>.png`` in ``dest``: ``size`` pixels, the run (id,
    procedure, cell, channel) and the tab named above the plots. The view must have been shown, on screen or off."""
    paths = []
    for title, page in view.pages_with_data().items():
        path = dest / f"{view.state.run_id}-{_slug(title)}.png"
        if not picture(page, f"{title_text(view.state)} — {title}", size).save(str(path), "PNG"):
            raise OSError(f"could not write {path}; check that the folder exists and is writable")
        paths.append(path)
    return paths


def picture(page: QWidget, title: str, size: tuple[int, int]) -> QImage:
    """``page`` drawn under ``title`` on a white picture of ``size`` pixels (the page laid out to fit)."""
    width, height = size
    font = QFont(page.font())
    font.setPointSizeF(font.pointSizeF() * 1.3)
    band = QFontMetrics(font).height() + 2 * TITLE_PAD
    page.resize(width, height - band)  # a tab not on show is laid out at that size too
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    try:
        painter.setFont(font)
        painter.setPen(QColor("black"))
        text = QFontMetrics(font).elidedText(title, Qt.TextElideMode.ElideRight, width - 2 * TITLE_PAD)
        painter.drawText(QRect(TITLE_PAD, 0, width - 2 * TITLE_PAD, band), Qt.AlignmentFlag.AlignVCenter, text)
        painter.drawPixmap(0, band, page.grab())
    finally:
        painter.end()
    return image


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
