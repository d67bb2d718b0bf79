"""An imported file becomes an ordinary run in the store: a BDF time series, a spectra table, metadata naming the
source (its name, SHA-256, instrument and every header field) and a registry row with status ``imported``, so
``labctl runs``, ``labctl analyze`` and the GUI's browser treat it as one of labctl's own runs.

Nothing is left behind by a failure: the file is read and checked before anything is created, and a write that
fails removes the run's folder and registry row again.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from labctl.imports.imported import Imported
from labctl.store import RunFolder, Store
from labctl.store.folder import time_series_metadata
from labctl.store.registry import now_iso

IMPORTED = "imported"  # the registry status of an imported run
PROCEDURE = "import"


@dataclass(frozen=True)
class StoredImport:
    run_id: str
    folder: Path
    rows: int
    spectra: int


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def store_import(store: Store, imported: Imported, *, cell_id: str, area_cm2: float | None,
                 inverted_current: bool = False) -> StoredImport:
    """Write ``imported`` into ``store`` as a run (see the module docstring)."""
    run_id = store.new_run_id(PROCEDURE)
    path = store.folder_of(run_id)
    columns = list(imported.series.columns) if imported.series is not None else []
    try:
        folder = RunFolder(path, columns)
        try:
            _write(folder, imported)
            folder.write_metadata(_metadata(run_id, imported, cell_id, area_cm2, inverted_current, columns))
        finally:
            folder.close()
        store.registry.add(run_id, procedure=PROCEDURE, bench=imported.format, cell_id=cell_id or None, folder=path,
                           status=IMPORTED)
        store.registry.finish(run_id, IMPORTED, {"headline": headline(imported), "brief": headline(imported)})
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        store.registry.forget(run_id)
        raise
    rows = len(imported.series) if imported.series is not None else 0
    return StoredImport(run_id, path, rows, len(imported.spectra))


def headline(imported: Imported) -> str:
    parts = [f"imported {imported.source.name} ({imported.format})"]
    if imported.series is not None:
        parts.append(f"{len(imported.series)} rows")
    if imported.spectra:
        parts.append(f"{len(imported.spectra)} spectra")
    return ", ".join(parts)


def _write(folder: RunFolder, imported: Imported) -> None:
    if imported.series is not None:
        for row in imported.series.to_dict("records"):
            folder.append(row)
    for spectrum in imported.spectra:
        folder.add_spectrum(spectrum.index, spectrum.test_time_s, spectrum.cycle, spectrum.step, spectrum.points)


def _metadata(run_id: str, imported: Imported, cell_id: str, area_cm2: float | None, inverted_current: bool,
              columns: list[str]) -> dict[str, Any]:
    source = imported.source
    return {
        "run_id": run_id,
        "status": IMPORTED,
        "started_at": imported.started_at.isoformat() if imported.started_at else None,
        "imported_at": now_iso(),
        "procedure": {"name": PROCEDURE, "description": f"{imported.format} file imported into the store"},
        "parameters": {},
        "cell": {"id": cell_id, "area_cm2": area_cm2},
        "instruments": {"source": imported.instrument},
        "imported": {
            "file": source.name, "path": str(source.resolve()), "sha256": sha256(source),
            "size_bytes": source.stat().st_size, "format": imported.format, "inverted_current": inverted_current,
            "header": jsonable(imported.header), "notes": imported.notes,
        },
        "software": {"labctl": version("labctl"), "python": platform.python_version()},
        "time_series": time_series_metadata(columns) if columns else None,
    }  # fmt: skip


def jsonable(value: Any) -> Any:
    """``value`` as JSON would keep it (dates as text, numpy numbers as numbers)."""
    return json.loads(json.dumps(value, default=str))
