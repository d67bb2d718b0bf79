"""Re-run a stored run's analysis from its files, as ``labctl analyze ccd|ce|eis`` does, with the run's own settings.

The run's procedure is rebuilt from ``metadata.json`` (parameters with their values), so the area, limits and circuit
are the ones the live run used and the procedure decides which analyzer settings apply (``analyzer_settings``). The
analysis functions are the CLI's; nothing is recomputed here. No Qt: the run browser calls it, a script may too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.procedures import PROCEDURES, LabProcedure
from labctl.procedures.ccd import CCDProcedure
from labctl.procedures.ce import CEProcedure
from labctl.procedures.eis import SpectrumParameters
from labctl.store.folder import METADATA, RESULTS, SPECTRA, TIMESERIES, read_json
from labctl.units import SECONDS_PER_HOUR

# CEAnalyzer settings → `labctl analyze ce` option and the divisor from the setting's unit to the option's
CE_OPTIONS = {
    "cutoff_V": ("--cutoff", 1), "lower_V": ("--lower", 1), "upper_V": ("--upper", 1),
    "time_limit_s": ("--time-limit", SECONDS_PER_HOUR), "capacity_mAh_cm2": ("--capacity", 1),
    "cathode_mass_mg": ("--cathode-mass", 1), "reference_cycle": ("--reference-cycle", 1),
}  # fmt: skip


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
    if isinstance(procedure, CCDProcedure):
        analysis, result, command = _ccd(folder, procedure)
    elif isinstance(procedure, CEProcedure):
        analysis, result, command = _ce(folder, procedure)
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


def _ccd(folder: Path, p: CCDProcedure) -> tuple[str, dict[str, Any], str]:
    from labctl.analysis.ccd import analyze_ccd, load_bdf_csv
    from labctl.procedures.ccd import headline

    result = analyze_ccd(load_bdf_csv(_file(folder, TIMESERIES)), p.area_cm2, voltage_limit_V=p.voltage_limit,
                         ohmic_floor_ohm=p.bulk_resistance or None).to_dict()
    result["headline"] = headline(result)
    command = (f"labctl analyze ccd {folder / TIMESERIES} --area {p.area_cm2:.6g} --voltage-limit {p.voltage_limit:g}"
               f" --bulk-resistance {p.bulk_resistance:g}")
    return "ccd", result, command


def _ce(folder: Path, p: CEProcedure) -> tuple[str, dict[str, Any], str]:
    from labctl.analysis.ce import analyze_ce, load_bdf_csv

    settings = p.analyzer_settings()
    result = analyze_ce(load_bdf_csv(_file(folder, TIMESERIES)), p.area_cm2, protocol=p.PROTOCOL, **settings).to_dict()
    options = [f"{CE_OPTIONS[key][0]} {value / CE_OPTIONS[key][1]:g}" for key, value in settings.items() if value is not None]
    command = f"labctl analyze ce {folder / TIMESERIES} --area {p.area_cm2:.6g} --protocol {p.PROTOCOL}"
    return "ce", result, " ".join([command, *options])


def _eis(folder: Path, p: SpectrumParameters) -> tuple[str, dict[str, Any], str]:
    from labctl.analysis.eis import analyze_eis, load_spectrum_csv
    from labctl.procedures.eis import headline

    area, thickness = p.area_cm2, p.thickness or None  # type: ignore[attr-defined]
    result = analyze_eis(load_spectrum_csv(_file(folder, SPECTRA)), area, thickness_cm=thickness,
                         circuit=p.circuit).to_dict()
    result["headline"] = headline(result)
    command = f"labctl analyze eis {folder / SPECTRA} --area {area:.6g} --circuit '{p.circuit}'"
    if result["spectrum"] is not None:  # the last of several: without --spectrum the command fits them all
        command += f" --spectrum {result['spectrum']}"
    return "eis", result, command + (f" --thickness {thickness:g}" if thickness else "")


def _file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise ValueError(f"{folder.name} has no {name} yet (no data recorded); nothing to analyse")
    return path
