"""Re-run a stored run's analysis from its files, as ``labctl analyze ccd|ce|eis`` does, with the run's own settings.

The run's procedure is rebuilt from ``metadata.json`` (parameters with their values), so the area, limits and circuit
are the ones the live run used: a procedure declares its analysis once (``procedure.analysis()``: what it reads,
how, with which settings), which its live run, this module and the equivalent ``labctl analyze`` command share: a
time series is replayed through its analyzer (:func:`labctl.analysis.replay.replay`), a spectrum fitted
(:class:`labctl.analysis.eis.SpectrumAnalysis`). No Qt: the run browser calls it, a script may too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.procedures import PROCEDURES, LabProcedure
from labctl.store.folder import METADATA, RESULTS, read_json


@dataclass(frozen=True)
class Reanalysis:
    """What re-running gave: the analysis (``ccd``, ``ce`` or ``eis``), its result with a ``headline``, the
    equivalent command line, and the headline the run stored when it ended (None if it stored none)."""

    analysis: str
    result: dict[str, Any]
    command: str
    stored_headline: str | None


def reanalyze(folder: Path) -> Reanalysis:
    """Analyse the run in ``folder`` again. Raises ValueError (naming what is missing) when it cannot."""
    metadata = read_json(folder / METADATA)
    procedure = rebuilt_procedure(metadata)
    stored = read_json(folder / RESULTS).get("headline") if (folder / RESULTS).exists() else None
    declare = getattr(procedure, "analysis", None)
    if declare is None:
        raise ValueError(f"{procedure.NAME} runs have no offline analysis; `labctl analyze` covers CCD, CE "
                         "(ce-*, fullcell*, rate) and EIS (eis, insitu-eis) runs")
    declared = declare()
    path = _file(folder, declared.source)
    outcome = declared.analyze(path)
    result = outcome.to_dict() | {"headline": outcome.headline()}
    return Reanalysis(declared.kind, result, declared.command(path, outcome), stored)


def rebuilt_procedure(metadata: dict[str, Any]) -> LabProcedure:
    """The run's procedure with the parameter values its metadata records."""
    name = metadata.get("procedure", {}).get("name")
    if name not in PROCEDURES:
        raise ValueError(f"metadata names procedure {name!r}, which this labctl does not have; known: "
                         f"{', '.join(PROCEDURES)}")
    values = {key: p["value"] for key, p in metadata.get("parameters", {}).items()}
    return PROCEDURES[name](**values)


def _file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise ValueError(f"{folder.name} has no {name} yet (no data recorded); nothing to analyse")
    return path
