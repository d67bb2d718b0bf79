"""Re-run a stored run's analysis from its files, as ``labctl analyze ccd|ce|eis`` does, with the run's own settings.

The run's procedure is rebuilt from ``metadata.json`` (parameters with their values), so the area, limits and circuit
are the ones the live run used: a cycling procedure declares its analysis once (``procedure.analysis()``: analyzer
and settings), which its live run, this module and the equivalent ``labctl analyze`` command share; its time series
is replayed through it (:func:`labctl.analysis.replay.replay`). Spectra go through the CLI's EIS analysis. No Qt: the
run browser calls it, a script may too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.analysis.replay import Analysis
from labctl.analysis.timeseries import load_bdf_csv
from labctl.procedures import PROCEDURES, LabProcedure
from labctl.procedures.eis import SpectrumParameters
from labctl.store.folder import METADATA, RESULTS, SPECTRA, TIMESERIES, read_json


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
    declared = getattr(procedure, "analysis", None)
    if declared is not None:
        analysis, result, command = _time_series(folder, declared())
    elif isinstance(procedure, SpectrumParameters):
        analysis, result, command = _eis(folder, procedure)
    else:
        raise ValueError(f"{procedure.NAME} runs have no offline analysis; `labctl analyze` covers CCD, CE "
                         "(ce-*, fullcell*, rate) and EIS (eis, insitu-eis) runs")
    return Reanalysis(analysis, result, command, stored)


def rebuilt_procedure(metadata: dict[str, Any]) -> LabProcedure:
    """The run's procedure with the parameter values its metadata records."""
    name = metadata.get("procedure", {}).get("name")
    if name not in PROCEDURES:
        raise ValueError(f"metadata names procedure {name!r}, which this labctl does not have; known: "
                         f"{', '.join(PROCEDURES)}")
    values = {key: p["value"] for key, p in metadata.get("parameters", {}).items()}
    return PROCEDURES[name](**values)


def _time_series(folder: Path, declared: Analysis) -> tuple[str, dict[str, Any], str]:
    """Replay the run's time series through the analysis its procedure declares."""
    path = _file(folder, TIMESERIES)
    outcome = declared.replay(load_bdf_csv(path))
    return declared.kind, outcome.to_dict() | {"headline": outcome.headline()}, declared.command(path)


def _eis(folder: Path, p: SpectrumParameters) -> tuple[str, dict[str, Any], str]:
    from labctl.analysis.eis import analyze_eis, load_spectrum_csv

    area, thickness = p.area_cm2, p.thickness or None  # type: ignore[attr-defined]
    outcome = analyze_eis(load_spectrum_csv(_file(folder, SPECTRA)), area, thickness_cm=thickness, circuit=p.circuit)
    result = outcome.to_dict() | {"headline": outcome.headline()}
    command = f"labctl analyze eis {folder / SPECTRA} --area {area:.6g} --circuit '{p.circuit}'"
    if result["spectrum"] is not None:  # the last of several: without --spectrum the command fits them all
        command += f" --spectrum {result['spectrum']}"
    return "eis", result, command + (f" --thickness {thickness:g}" if thickness else "")


def _file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise ValueError(f"{folder.name} has no {name} yet (no data recorded); nothing to analyse")
    return path
