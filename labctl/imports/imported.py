"""What a reader of another instrument's file returns, and the one boundary where its units become labctl's.

Every reader (LAND, EC-Lab, Arbin, VersaStudio) turns its file into an :class:`Imported`: a time series in labctl's
BDF columns (SI units, positive current charges), impedance spectra, and what the file says of itself. Units come
from the file's own column headers (``Current/mA``, ``Test_Time(s)``, ``<I>/mA``, ``-Im(Z)/Ohm``) through
:func:`scale` / :func:`to_si`; a column whose unit cannot be established is refused by name (:class:`FormatError`),
never copied 1000× off.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labctl.bdf_columns import CHARGE_CAPACITY, CURRENT, DISCHARGE_CAPACITY, REQUIRED, TIME

# unit -> (dimension, factor to SI); the spellings instruments write, µ as "u", "µ" (micro) or "μ" (mu)
UNITS: dict[str, tuple[str, float]] = {
    "A": ("current", 1.0), "mA": ("current", 1e-3), "uA": ("current", 1e-6), "nA": ("current", 1e-9),
    "V": ("voltage", 1.0), "mV": ("voltage", 1e-3),
    "Ah": ("charge", 1.0), "mAh": ("charge", 1e-3), "uAh": ("charge", 1e-6), "A.h": ("charge", 1.0),
    "mA.h": ("charge", 1e-3), "uA.h": ("charge", 1e-6), "C": ("charge", 1 / 3600), "mC": ("charge", 1e-3 / 3600),
    "s": ("time", 1.0), "min": ("time", 60.0), "h": ("time", 3600.0), "ms": ("time", 1e-3),
    "Hz": ("frequency", 1.0), "kHz": ("frequency", 1e3), "mHz": ("frequency", 1e-3), "MHz": ("frequency", 1e6),
    "Ohm": ("impedance", 1.0), "ohm": ("impedance", 1.0), "Ω": ("impedance", 1.0), "kOhm": ("impedance", 1e3),
    "mOhm": ("impedance", 1e-3), "deg": ("angle", math.pi / 180), "rad": ("angle", 1.0),
    "Wh": ("energy", 1.0), "mWh": ("energy", 1e-3), "W": ("power", 1.0), "mW": ("power", 1e-3),
}  # fmt: skip
OLE_EPOCH = datetime(1899, 12, 30)
WINDOWS_TEXT = ("utf-8-sig", "cp1252")  # Windows instrument software writes Windows-1252; else latin-1
MICRO = ("µ", "μ")  # U+00B5 micro sign, U+03BC Greek mu: both are written for "micro"
UNIT_IN_HEADER = re.compile(r"^(?P<name>.*?)\s*(?:/\s*(?P<slash>[^/()]+?)|\((?P<paren>[^()]+)\))\s*$")


class FormatError(ValueError):
    """A file that is not what it claims to be, or a column whose meaning or unit cannot be established; the
    message names the file, the column and what was expected."""


@dataclass(frozen=True)
class ImportedSpectrum:
    """One impedance spectrum of an imported file: points (Hz, ohm with Z = Z' + jZ'', Z'' < 0 capacitive)."""

    index: int  # 1, 2, … in the file's order
    test_time_s: float
    points: list[tuple[float, complex]]
    cycle: int = 0
    step: int = 0


@dataclass
class Imported:
    """Another instrument's file, read.

    ``series`` has labctl's BDF columns (``labctl.bdf_columns``): at least TIME, VOLTAGE and CURRENT, in s, V and A,
    positive current charging (BDF), plus any of CYCLE, STEP, CHARGE_CAPACITY, DISCHARGE_CAPACITY (Ah) and UNIX_TIME
    the file gives; None for a file with spectra only. ``header`` holds every header field the format carries
    (JSON-able values), ``instrument`` what the file says of the instrument (make, model, serial, channel …)."""

    source: Path
    format: str  # "land", "eclab-mpr", "eclab-mpt", "arbin-res", "arbin-xlsx", "versastudio-par"
    instrument: dict[str, str]
    header: dict[str, Any] = field(default_factory=dict)
    series: pd.DataFrame | None = None
    spectra: list[ImportedSpectrum] = field(default_factory=list)
    started_at: datetime | None = None  # the test's start, when the file records it
    area_cm2: float | None = None  # the electrode area, when the file records it
    notes: list[str] = field(default_factory=list)  # what the reader decided (a sign inferred, columns dropped)


def split_unit(header: str) -> tuple[str, str | None]:
    """A column header's name and unit: ``Current/mA`` → ("Current", "mA"), ``Test_Time(s)`` → ("Test_Time", "s"),
    ``<I>/mA`` → ("<I>", "mA"), ``Record`` → ("Record", None)."""
    m = UNIT_IN_HEADER.match(header.strip())
    if not m or not m["name"]:
        return header.strip(), None
    return m["name"].strip(), (m["slash"] or m["paren"]).strip()


def scale(unit: str | None, dimension: str, *, column: str, source: Path | str) -> float:
    """The factor that takes ``column``'s values in ``unit`` to SI; FormatError naming the column when its unit is
    missing, unknown, or not a ``dimension``."""
    if unit is None:
        raise FormatError(f"{source}: column {column!r} has no unit in its header; labctl needs it to convert the "
                          f"{dimension} (e.g. {column}/{_example(dimension)})")
    for micro in MICRO:
        unit = unit.replace(micro, "u")
    known = UNITS.get(unit.strip())
    if known is None:
        units = ", ".join(u for u, (d, _) in UNITS.items() if d == dimension)
        raise FormatError(f"{source}: column {column!r}: unit {unit!r} is not one labctl knows for a {dimension}; "
                          f"known: {units}")
    if known[0] != dimension:
        raise FormatError(f"{source}: column {column!r}: {unit!r} is a {known[0]} unit, but the column should hold a "
                          f"{dimension}")
    return known[1]


def to_si(values: Sequence[float] | pd.Series | np.ndarray, header: str, dimension: str, *,
          source: Path | str) -> np.ndarray:
    """``values`` of the column ``header`` (its unit in the header) in SI units, as floats; FormatError naming the
    column for an unknown unit or a value that is not a number."""
    _, unit = split_unit(header)
    factor = scale(unit, dimension, column=header, source=source)
    numbers = pd.to_numeric(pd.Series(values), errors="coerce")
    bad = numbers.isna() & pd.Series(values).notna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise FormatError(f"{source}: column {header!r}, row {first + 1}: {pd.Series(values).iloc[first]!r} is not a "
                          "number")
    return numbers.to_numpy(dtype=float) * factor


def duration_s(text: str, *, column: str, source: Path | str) -> float:
    """A duration written ``[d-]hh:mm:ss[.fff]`` or ``d day(s) hh:mm:ss`` (LAND's times) in s."""
    m = re.fullmatch(r"\s*(?:(\d+)\s*(?:-|d|days?)\s*)?(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)\s*", str(text))
    if not m:
        raise FormatError(f"{source}: column {column!r}: {text!r} is not a duration (hh:mm:ss)")
    days, hours, minutes, seconds = m.groups()
    return ((int(days or 0) * 24 + int(hours)) * 60 + int(minutes)) * 60 + float(seconds)


def check_series(series: pd.DataFrame, source: Path | str) -> pd.DataFrame:
    """``series`` if it has the columns BDF requires, finite times, voltages and currents, and times that never go
    back; FormatError naming the problem otherwise."""
    missing = [c for c in REQUIRED if c not in series.columns]
    if missing:
        raise FormatError(f"{source}: no {', '.join(missing)} after reading it; the file holds no cycling data labctl "
                          "can use")
    if series.empty:
        raise FormatError(f"{source}: no data rows")
    for column in REQUIRED:
        values = series[column].to_numpy(dtype=float)
        if not np.isfinite(values).all():
            row = int(np.flatnonzero(~np.isfinite(values))[0])
            raise FormatError(f"{source}: {column} is not a finite number in data row {row + 1}")
    if (np.diff(series[TIME].to_numpy(dtype=float)) < 0).any():
        raise FormatError(f"{source}: the test time goes back in it; give the export of one test, in record order")
    return series


def inverted(series: pd.DataFrame) -> pd.DataFrame:
    """``series`` with its current's sign flipped (a file written with discharge positive), its charge and discharge
    capacities swapped with it."""
    flipped = series.assign(**{CURRENT: -series[CURRENT]})
    if CHARGE_CAPACITY in series and DISCHARGE_CAPACITY in series:
        flipped[CHARGE_CAPACITY], flipped[DISCHARGE_CAPACITY] = series[DISCHARGE_CAPACITY], series[CHARGE_CAPACITY]
    return flipped


def _example(dimension: str) -> str:
    return next(u for u, (d, _) in UNITS.items() if d == dimension)


def expect_file(path: Path | str, suffixes: Sequence[str], what: str) -> Path:
    """``path`` if its extension is one of ``suffixes`` and it is not empty; FormatError naming ``what`` otherwise."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise FormatError(f"{path}: expected {what} ({', '.join(suffixes)}), not a "
                          f"{suffix or 'file without extension'}")
    if path.stat().st_size == 0:
        raise FormatError(f"{path}: empty file; expected {what}")
    return path


def decoded(raw: bytes) -> str:
    """A text file's bytes as text: UTF-8 (a BOM or not), else Windows-1252, else latin-1."""
    for encoding in WINDOWS_TEXT:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")  # takes any byte


def ole_datetime(days: float) -> datetime:
    """An OLE automation date (days since 1899-12-30, a Windows PC's local time) in this computer's zone."""
    return (OLE_EPOCH + timedelta(days=days)).astimezone()


def counts(values: Sequence[Any] | np.ndarray, header: str, source: Path) -> np.ndarray:
    """A column of counts (cycle, step, mode) as integers; FormatError naming the column and row of a non-number."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(numbers))
    if bad.size:
        raise FormatError(f"{source}: column {header!r}, row {bad[0] + 1}: {values[bad[0]]!r} is not a number")
    return np.rint(numbers).astype(np.int64)


def cumulative(q: np.ndarray) -> np.ndarray:
    """An instrument's capacity counter as BDF counts it, never falling: where it falls to half its previous value
    or less it was reset (a new cycle or half-cycle), and the value before carries into the rest; a smaller fall is
    noise, held at the value before."""
    previous = np.concatenate(([0.0], q[:-1]))
    carried = q + np.cumsum(np.where(q <= previous / 2, previous, 0.0))
    return np.maximum.accumulate(carried)
