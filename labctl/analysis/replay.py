"""Feed a recorded BDF time series through any streaming analyzer, row by row as a live run feeds it.

One function serves ``labctl analyze``, the run browser's re-analysis (:mod:`labctl.engine.reanalysis`) and a run
resumed after a crash: whatever the analyzer, the file is read the same way (:mod:`labctl.analysis.segments`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from labctl.analysis.segments import Row, Split, frame_rows
from labctl.analysis.timeseries import checked_series, load_bdf_csv, numbers
from labctl.bdf_columns import (
    CHARGE_CAPACITY,
    COUNTER_MACHINE_LABELS,
    CURRENT,
    CYCLE,
    DISCHARGE_CAPACITY,
    STEP,
    TIME,
    VOLTAGE,
)
from labctl.store.folder import TIMESERIES
from labctl.units import SECONDS_PER_HOUR

# analyzer setting → `labctl analyze` option and the divisor from the setting's unit to the option's
OPTIONS: dict[str, tuple[str, float]] = {
    "area_cm2": ("--area", 1), "protocol": ("--protocol", 1),
    "voltage_limit_V": ("--voltage-limit", 1), "ohmic_floor_ohm": ("--bulk-resistance", 1),
    "cutoff_V": ("--cutoff", 1), "lower_V": ("--lower", 1), "upper_V": ("--upper", 1),
    "time_limit_s": ("--time-limit", SECONDS_PER_HOUR), "capacity_mAh_cm2": ("--capacity", 1),
    "cathode_mass_mg": ("--cathode-mass", 1), "reference_cycle": ("--reference-cycle", 1),
}  # fmt: skip


class Analyzer(Protocol):
    """What :func:`replay` needs of an analyzer: how it splits a file, a row at a time, the end of the data, and its
    result."""

    split: Split

    def feed(self, row: Row) -> list[Any]: ...

    def finish(self) -> list[Any]: ...

    def result(self) -> Any: ...


@dataclass(frozen=True)
class Analysis:
    """A procedure's analysis, declared once (``procedure.analysis()``) and used by its live run, by re-analysis of its
    files and for the equivalent ``labctl analyze <kind>`` command: the analyzer class and the settings the
    procedure's parameters give."""

    kind: str  # the `labctl analyze` command: ccd, ce
    factory: Callable[..., Analyzer]
    area_cm2: float
    settings: dict[str, Any]

    def analyzer(self) -> Analyzer:
        return self.factory(self.area_cm2, **self.settings)

    def replay(self, frame: pd.DataFrame) -> Any:
        """The result of a fresh analyzer over a recorded time series."""
        return replay(frame, self.analyzer())

    source = TIMESERIES  # the run-folder file it reads

    def analyze(self, path: Path) -> Any:
        """The result over a recorded time series file."""
        return self.replay(load_bdf_csv(path))

    def command(self, file: Path, result: Any = None) -> str:
        """The ``labctl analyze`` command line that gives the same result for ``file``."""
        words = [f"labctl analyze {self.kind} {file} --area {self.area_cm2:.6g}"]
        for name, value in self.settings.items():
            option, divisor = OPTIONS[name]
            if isinstance(value, str):
                words.append(f"{option} {value}")
            elif value is not None:
                words.append(f"{option} {value / divisor:g}")
        return " ".join(words)


def replay(frame: pd.DataFrame, analyzer: Analyzer) -> Any:
    """``analyzer``'s result over ``frame``, a BDF time series (human or machine column labels).

    Steps come from ``Step Count / 1`` when present, else are derived by the analyzer's :class:`Split`; cycles from
    ``Cycle Count / 1`` when present; the capacity counters when both are present (cells that are not finite
    numbers are None)."""
    for row in rows_of(frame, analyzer.split):
        analyzer.feed(row)
    analyzer.finish()
    return analyzer.result()


def rows_of(frame: pd.DataFrame, split: Split) -> Iterator[Row]:
    """``frame``'s rows as an analyzer reads them (see :func:`replay`), for a caller that feeds them itself (a resumed
    run rebuilding its analyzer's state)."""
    return frame_rows(_columns(frame), split)


def _columns(frame: pd.DataFrame) -> dict[str, list]:
    df = checked_series(frame).rename(columns=COUNTER_MACHINE_LABELS)
    columns: dict[str, list] = {key: numbers(df, name).tolist() for key, name in
                                (("t", TIME), ("v", VOLTAGE), ("i", CURRENT))}
    for key, name in (("step", STEP), ("cycle", CYCLE)):
        if name in df:
            columns[key] = numbers(df, name).astype(int).tolist()
    if CHARGE_CAPACITY in df and DISCHARGE_CAPACITY in df:
        for key, name in (("charge", CHARGE_CAPACITY), ("discharge", DISCHARGE_CAPACITY)):
            columns[key] = [x if math.isfinite(x) else None for x in pd.to_numeric(df[name], errors="coerce").tolist()]
    return columns
