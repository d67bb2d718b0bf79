"""Every spectrum of a run, fitted: R_b, R_tot and the fitted resistances against test time, cycle and step.

A run's ``spectra.csv`` keys each spectrum by ``Spectrum Index / 1`` with its ``Test Time / s``, ``Cycle Count / 1``
and ``Step Count / 1`` (:mod:`labctl.store.folder`). :func:`analyze_series` fits each one with
:func:`labctl.analysis.eis.analyze_eis` (the fit, R_b, R_tot and Lin-KK of ``labctl analyze eis``) and returns one
row per spectrum, in the order they were measured. A spectrum that cannot be analysed (e.g. one cut short when a run
was stopped) gets a row with its error instead of ending the series. ``when`` (e.g. "during stripping") comes from
the run's ``spectrum`` events when the run folder is given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from labctl.analysis.circuits import parse_circuit
from labctl.analysis.eis import DEFAULT_CIRCUIT, SPECTRUM_KEYS, analyze_eis
from labctl.bdf_columns import CYCLE, STEP, TIME
from labctl.store.folder import SPECTRA
from labctl.store.reader import RunReader
from labctl.units import SECONDS_PER_HOUR

LABELS = {"test_time_h": TIME, "cycle": CYCLE, "step": STEP}
RESISTANCE_SUFFIX = "_ohm"  # fitted parameters in ohm (R0_ohm, R1_ohm …), as FitResult names them


@dataclass(frozen=True)
class SeriesRow:
    """One spectrum of a run: where it sits in the test and what its fit gave (ohm); ``error`` when it could not be
    analysed."""

    spectrum: int
    test_time_h: float | None
    cycle: int | None
    step: int | None
    when: str | None
    R_HF_ohm: float | None = None
    R_b_ohm: float | None = None
    R_tot_ohm: float | None = None
    R_int_ohm: float | None = None
    fitted_ohm: dict[str, float] | None = None  # every fitted resistance (R0, R1, …) by element name
    kk_pass: bool | None = None
    relative_rmse: float | None = None
    warnings: tuple[str, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d


def spectrum_indices(df: pd.DataFrame) -> list[int]:
    """The spectrum numbers of a table, in the order they appear; [] for a table of one unkeyed spectrum."""
    key = next((k for k in SPECTRUM_KEYS if k in df.columns), None)
    if key is None:
        return []
    return [int(k) for k in pd.unique(pd.to_numeric(df[key], errors="coerce").dropna())]


def analyze_series(df: pd.DataFrame, area_cm2: float, thickness_cm: float | None = None, circuit: str | None = None,
                   *, when: dict[int, str] | None = None) -> list[SeriesRow]:
    """Fit every spectrum of a table keyed by ``Spectrum Index / 1`` (the store's ``spectra.csv``); ``when`` names
    the moment of each spectrum by index (see :func:`spectrum_moments`). Raises ValueError for a bad area, thickness
    or circuit, or a table without a spectrum column."""
    indices = spectrum_indices(df)
    if not indices:
        raise ValueError(f"the table has no {SPECTRUM_KEYS[0]!r} column, so it holds one spectrum; analyse it with "
                         "`labctl analyze eis FILE --area CM2` (no series)")
    _check_settings(area_cm2, thickness_cm, circuit)
    key = next(k for k in SPECTRUM_KEYS if k in df.columns)
    keys = pd.to_numeric(df[key], errors="coerce")
    return [_row(df[keys == index], index, area_cm2, thickness_cm, circuit, (when or {}).get(index))
            for index in indices]


def _row(rows: pd.DataFrame, index: int, area_cm2: float, thickness_cm: float | None, circuit: str | None,
         when: str | None) -> SeriesRow:
    place = _place(rows)
    try:
        result = analyze_eis(rows, area_cm2, thickness_cm, circuit, spectrum=index).to_dict()
    except ValueError as e:  # this spectrum's data: the settings were checked once for all
        return SeriesRow(index, **place, when=when, error=str(e))
    fitted = {k.removesuffix(RESISTANCE_SUFFIX): v for k, v in result["fit"]["parameters"].items()
              if k.endswith(RESISTANCE_SUFFIX)}
    return SeriesRow(index, **place, when=when, R_HF_ohm=result["R_HF_ohm"], R_b_ohm=result["R_b_ohm"],
                     R_tot_ohm=result["R_tot_ohm"], R_int_ohm=result["R_int_ohm"], fitted_ohm=fitted,
                     kk_pass=result["kk_pass"], relative_rmse=result["fit"]["relative_rmse"],
                     warnings=tuple(result["warnings"]))


def _check_settings(area_cm2: float, thickness_cm: float | None, circuit: str | None) -> None:
    """Settings wrong for every spectrum are refused once, before any fit."""
    if not area_cm2 > 0:
        raise ValueError(f"area_cm2 must be a positive electrode area in cm², got {area_cm2!r}")
    if thickness_cm is not None and not thickness_cm > 0:
        raise ValueError(f"thickness_cm must be a positive thickness in cm (or None), got {thickness_cm!r}")
    parse_circuit(circuit or DEFAULT_CIRCUIT)


def _place(rows: pd.DataFrame) -> dict:
    """Test time (h), cycle and step of one spectrum: its first row's, None when the table lacks the column."""
    place: dict = {}
    for name, column in LABELS.items():
        value = pd.to_numeric(rows[column], errors="coerce").iloc[0] if column in rows.columns else None
        if value is None or pd.isna(value):
            place[name] = None
        elif name == "test_time_h":
            place[name] = float(value) / SECONDS_PER_HOUR
        else:
            place[name] = int(value)
    return place


def spectrum_moments(path: Path) -> dict[int, str]:
    """The ``when`` of each spectrum of a run (e.g. "during stripping", "cycle 10"), by index, from the events of
    the run folder given (or holding the file given)."""
    moments = {}
    for event in RunReader(_folder(path)).events():
        if event.get("kind") == "spectrum" and event.get("index") is not None and event.get("when"):
            moments[int(event["index"])] = str(event["when"])
    return moments


def spectra_file(path: Path) -> Path:
    """A run folder's ``spectra.csv``, or the file given."""
    return path / SPECTRA if path.is_dir() else path


def headline(rows: list[SeriesRow]) -> str:
    """One line: how many spectra, R_b and R_tot from the first to the last fitted one, the KK verdicts."""
    fitted = [r for r in rows if r.error is None]
    text = f"{len(rows)} spectra"
    if len(fitted) < len(rows):
        text += f" ({len(rows) - len(fitted)} not analysable)"
    if not fitted:
        return text
    first, last = fitted[0], fitted[-1]
    if first.test_time_h is not None and last.test_time_h is not None:
        text += f" over {last.test_time_h - first.test_time_h:.3g} h"
    text += f"; R_b {_ohm(first.R_b_ohm)} → {_ohm(last.R_b_ohm)}, R_tot {_ohm(first.R_tot_ohm)} → {_ohm(last.R_tot_ohm)}"
    passed = sum(bool(r.kk_pass) for r in fitted)
    return text + f"; KK pass {passed}/{len(fitted)}"


def table(rows: list[SeriesRow]) -> tuple[list[str], list[list[str]]]:
    """Headers (with units) and text rows for a terminal table: one column per fitted resistance."""
    names = list(dict.fromkeys(name for r in rows for name in (r.fitted_ohm or {})))
    headers = ["#", "t / h", "cycle", "step", "when", "R_b / Ω", "R_tot / Ω", *(f"{n} / Ω" for n in names), "KK"]
    lines = []
    for r in rows:
        place = [str(r.spectrum), _g(r.test_time_h), _g(r.cycle), _g(r.step), r.when or ""]
        if r.error is not None:
            lines.append([*place, r.error, *[""] * (len(names) + 2)])
            continue
        fitted = [_g((r.fitted_ohm or {}).get(n)) for n in names]
        lines.append([*place, _g(r.R_b_ohm), _g(r.R_tot_ohm), *fitted, "pass" if r.kk_pass else "FAIL"])
    return headers, lines


def _ohm(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g} Ω"


def _g(value: float | int | None) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def run_settings(path: Path) -> dict:
    """Area (cm²), circuit and thickness (cm) the metadata of a run folder (or of the folder holding the file given)
    records, for what the caller leaves out; {} without metadata."""
    metadata = RunReader(_folder(path)).metadata()
    if not metadata:
        return {}
    params = {k: p.get("value") for k, p in metadata.get("parameters", {}).items()}
    return {"area_cm2": (metadata.get("cell") or {}).get("area_cm2"), "circuit": params.get("circuit"),
            "thickness_cm": params.get("thickness") or None}


def _folder(path: Path) -> Path:
    return path if path.is_dir() else path.parent
