"""Reading Battery Data Format (BDF) time series for offline analysis, with errors that say what to fix."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd

from labctl.bdf_columns import CURRENT, CYCLE, MACHINE_LABELS, REQUIRED, STEP, TIME, VOLTAGE

TAIL_BYTES = 4096  # the last row is looked for in this much of the file's end (rows are ~100 bytes)
NEEDS = (f"a BDF time series with columns {TIME!r}, {VOLTAGE!r} and {CURRENT!r} "
         f"(and, when available, {STEP!r} and {CYCLE!r})")


def load_bdf_csv(path: str | Path) -> pd.DataFrame:
    """Read a BDF CSV time series (human labels such as ``Voltage / V`` or machine labels such as
    ``voltage_volt``; returned with human labels) and check it has time, voltage and current columns."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give the path of {NEEDS}")
    try:
        df = pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"{path} is not a readable CSV file ({e}); export the test as {NEEDS}") from None
    _require_whole_last_row(path, len(df.columns))
    df = human_labels(df)
    require_columns(df)
    return df


def _require_whole_last_row(path: Path, columns: int) -> None:
    """A last row with fewer fields than the header was cut short (a copy taken while the test wrote it, a full
    disk): pandas would fill it with blanks, and the analysis would take the cut number as data."""
    with path.open("rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES))
        lines = f.read().decode("utf-8", errors="replace").splitlines()
    last = next((line for line in reversed(lines) if line.strip()), "")
    fields = len(next(csv.reader([last]), []))
    if 0 < fields < columns:
        raise ValueError(f"{path}: the last row holds {fields} of the header's {columns} fields, so it was cut "
                         f"short: {last!r}; remove that row (or copy the file again once the test has ended)")


def checked_series(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with human labels, after checking it has rows, the required columns, and time never going back."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"need a pandas DataFrame holding {NEEDS}, got {type(df).__name__}")
    df = human_labels(df)
    require_columns(df)
    if df.empty:
        raise ValueError(f"the data has no rows; give {NEEDS}")
    t = numbers(df, TIME)
    back = np.flatnonzero(np.diff(t) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise ValueError(f"{TIME!r} goes backwards at row {i} ({t[i]:g} s after {t[i - 1]:g} s); sort the data "
                         "by time or split it into separate tests")
    return df


def human_labels(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns={c: MACHINE_LABELS.get(str(c).strip(), str(c).strip()) for c in df.columns})


def require_columns(df: pd.DataFrame, columns: tuple[str, ...] = REQUIRED) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        found = ", ".join(repr(c) for c in list(df.columns)[:8]) or "none"
        raise ValueError(f"missing column {missing[0]!r}; the analysis needs {NEEDS}; found: {found}")


def numbers(df: pd.DataFrame, name: str) -> np.ndarray:
    """Column ``name`` as floats; every cell must hold a finite number."""
    raw = df[name]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"column {name!r} row {i} holds {raw.iloc[i]!r}, not a finite number; "
                         "fix or remove that row")
    return values
