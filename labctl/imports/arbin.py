"""Arbin MITS Pro files read into labctl's BDF series: the ``.res`` results database of MITS Pro 7 and earlier
(:func:`read_res`) and the Excel export of MITS Pro 8 / MITS 10 Data Watcher (:func:`read_arbin_excel`).

Facts from public sources (research notes instruments.md §3.8; confirmed on the fixtures in
``tests/imports/fixtures/arbin`` unless marked "unconfirmed"):

- ``.res`` is a Microsoft Access (Jet 4) database, ``Standard Jet DB`` at byte 4 (galvani ``res2sqlite.py``, cellpy
  ``arbin_res``, battery-data-format's ``arbin_res``). ``Global_Table`` has a row per test (``Test_ID``,
  ``Test_Name``, ``Channel_Index``, ``Start_DateTime``, ``Schedule_File_Name``, ``Software_Version``,
  ``Serial_Number`` …); ``Channel_Normal_Table`` a row per record (``Test_ID``, ``Data_Point``, ``Test_Time``,
  ``DateTime``, ``Step_Index``, ``Cycle_Index``, ``Current``, ``Voltage``, ``Charge_Capacity``,
  ``Discharge_Capacity`` …), not necessarily in ``Data_Point`` order (battery-data-format PR #60). Values are in s,
  A, V, Ah (battery-data-format's tests read them unscaled); dates are OLE dates (days since 1899-12-30) in the
  Arbin PC's local time. Linux reads it with mdbtools (``mdb-tables``, ``mdb-export``; Debian package
  ``mdbtools``), as galvani does.
- Arbin's current is positive while charging (BDF's sign: battery-data-format maps ``Current`` to BDF unchanged;
  the fixture is a rest, unconfirmed here); ``Charge_Capacity``/``Discharge_Capacity`` restart at zero in each cycle
  (seen in cellpy's MIT ``20160805_test001_45_cc_01.res``, not kept: 1.6 MB).
- The Data Watcher export ``*_Wb_1.xlsx`` keeps records on sheets whose name contains "Channel" (cellpy
  ``arbin_sql_xlsx``; one export spreads a long test over several, ``Channel-1_1``, ``Channel-1_2``; unconfirmed on a
  real export, none is public), a header row naming each column with its unit: ``Data_Point``, ``Date_Time``,
  ``Test_Time(s)``, ``Step_Time(s)``, ``Cycle_Index``, ``Step_Index``, ``Current(A)``, ``Voltage(V)``,
  ``Charge_Capacity(Ah)``, ``Discharge_Capacity(Ah)`` …; ``Date_Time`` an Excel date or ``mm/dd/yyyy hh:mm:ss.fff``
  text (battery-data-format's ``arbin`` plugin).

Choices:

- The series: TIME, VOLTAGE, CURRENT, CYCLE (``Cycle_Index``), STEP (``Step_Index``, the schedule's step), the
  capacities made cumulative as BDF counts them (:func:`labctl.imports.eclab.cumulative`) and UNIX_TIME from each
  record's date, read as local time of this computer (as elsewhere in labctl).
- A ``.res`` with several tests is refused (labctl imports one test per run); so is one mdbtools reads with
  complaints (a truncated or damaged database), with what it said.
- The Excel export's start is its first record's date less that record's test time.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labctl.bdf_columns import CHARGE_CAPACITY, CURRENT, CYCLE, DISCHARGE_CAPACITY, STEP, TIME, UNIX_TIME, VOLTAGE
from labctl.imports.imported import (
    OLE_EPOCH,
    FormatError,
    Imported,
    check_series,
    counts,
    cumulative,
    expect_file,
    ole_datetime,
    split_unit,
    to_si,
)

# Arbin's column name -> BDF column, dimension (None: a count). The .res holds the values in RES_UNITS; the Excel
# export names the unit after the name: Test_Time(s).
COLUMNS: dict[str, tuple[str, str | None]] = {
    "Test_Time": (TIME, "time"), "Voltage": (VOLTAGE, "voltage"), "Current": (CURRENT, "current"),
    "Cycle_Index": (CYCLE, None), "Step_Index": (STEP, None),
    "Charge_Capacity": (CHARGE_CAPACITY, "charge"), "Discharge_Capacity": (DISCHARGE_CAPACITY, "charge"),
}  # fmt: skip
RES_UNITS = {"time": "s", "voltage": "V", "current": "A", "charge": "Ah"}
RECORD, TEST_ID, RES_DATE, EXCEL_DATE, START = "Data_Point", "Test_ID", "DateTime", "Date_Time", "Start_DateTime"
GLOBAL, NORMAL = "Global_Table", "Channel_Normal_Table"
INSTRUMENT_FIELDS = {"channel": "Channel_Index", "serial": "Serial_Number", "software": "Software_Version"}
JET_MAGIC, JET_MAGIC_AT = b"Standard Jet DB", 4
INSTALL_MDBTOOLS = "install mdbtools (Debian/Ubuntu: apt-get install mdbtools; macOS: brew install mdbtools)"
DATA_SHEET_WORD = "channel"
EXCEL_DATE_FORMATS = ("%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S")
UNIX_EPOCH = datetime(1970, 1, 1)
OLE_DAYS_TO_UNIX_EPOCH = (UNIX_EPOCH - OLE_EPOCH).days
SECONDS_PER_DAY = 86_400.0
SIGN_NOTE = "current as Arbin writes it: positive charges (BDF's sign)"


class ToolMissing(FormatError):
    """A tool a reader needs is not installed; the message names it and how to install it."""


def read_res(path: Path | str) -> Imported:
    """An Arbin ``.res`` database (module docstring), read with mdbtools; FormatError naming the file and what was
    expected, ToolMissing without mdbtools."""
    path = expect_file(path, (".res",), "an Arbin .res database")
    with path.open("rb") as f:
        head = f.read(JET_MAGIC_AT + len(JET_MAGIC))
    if head[JET_MAGIC_AT:] != JET_MAGIC:
        raise FormatError(f"{path}: not an Arbin .res: it is not an Access database ('Standard Jet DB')")
    tables = _mdb(path, ["mdb-tables", "-1", str(path)]).splitlines()
    missing = [t for t in (GLOBAL, NORMAL) if t not in tables]
    if missing:
        raise FormatError(f"{path}: an Access database without {', '.join(missing)}: not an Arbin .res")
    test, records = _test(path), _records(path)
    columns = {name: (f"{name}({RES_UNITS[dim]})" if dim else name, records[name].to_numpy())
               for name, (_, dim) in COLUMNS.items() if name in records}
    wall = (records[RES_DATE].to_numpy(dtype=float) - OLE_DAYS_TO_UNIX_EPOCH) * SECONDS_PER_DAY
    instrument = {"make": "Arbin", **{k: str(test[f]) for k, f in INSTRUMENT_FIELDS.items() if test.get(f) is not None}}
    start = test.get(START)
    return Imported(source=path, format="arbin-res", instrument=instrument, header={"tables": tables, **test},
                    series=_series(columns, wall, path), started_at=ole_datetime(start) if start else None,
                    notes=[SIGN_NOTE])


def read_arbin_excel(path: Path | str) -> Imported:
    """An Arbin Data Watcher Excel export (module docstring): its Channel sheets, in order, as one series;
    FormatError naming the file and what was expected."""
    path = expect_file(path, (".xlsx", ".xls"), "an Arbin Data Watcher export (.xlsx)")
    try:
        book = pd.ExcelFile(path, engine="calamine")
    except Exception as e:  # calamine's errors have no common base: any failure to open is the file's
        raise FormatError(f"{path}: not an Excel workbook ({type(e).__name__}: {e})") from None
    with book:
        sheets = [s for s in book.sheet_names if DATA_SHEET_WORD in s.lower()]
        if not sheets:
            raise FormatError(f"{path}: no sheet whose name holds 'Channel' (where Data Watcher writes the records); "
                              f"sheets: {', '.join(book.sheet_names)}")
        frames = [pd.read_excel(book, sheet_name=s) for s in sheets]
        others = {s: _rows(pd.read_excel(book, sheet_name=s, header=None)) for s in book.sheet_names
                  if s not in sheets}
    records = pd.concat(frames, ignore_index=True)
    by_name = {split_unit(str(h))[0]: str(h) for h in reversed(list(records.columns))}
    columns = {name: (by_name[name], records[by_name[name]].to_numpy()) for name in COLUMNS if name in by_name}
    if EXCEL_DATE not in records:
        raise FormatError(f"{path}: no {EXCEL_DATE} column in sheet {sheets[0]!r}")
    series = _series(columns, _excel_wall(records[EXCEL_DATE], path), path)
    started = datetime.fromtimestamp(series[UNIX_TIME].iloc[0] - series[TIME].iloc[0]).astimezone()
    return Imported(source=path, format="arbin-xlsx", instrument={"make": "Arbin"},
                    header={"sheets": book.sheet_names, "data_sheets": sheets, "other_sheets": others}, series=series,
                    started_at=started, notes=[SIGN_NOTE])


def _unix_of_wall(wall_s: np.ndarray) -> np.ndarray:
    """Clock readings of this computer's zone (s since 1970-01-01 as that clock shows it) as Unix times; each hour's
    offset, daylight saving included, is looked up once."""
    hours = np.floor(wall_s / 3600.0)
    unique, inverse = np.unique(hours, return_inverse=True)
    offsets = np.array([_utc_offset_s(h * 3600.0) for h in unique])
    return wall_s - offsets[inverse]


def _utc_offset_s(wall_s: float) -> float:
    offset = (UNIX_EPOCH + timedelta(seconds=wall_s)).astimezone().utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def _series(columns: dict[str, tuple[str, np.ndarray]], wall_s: np.ndarray, source: Path) -> pd.DataFrame:
    """BDF columns from Arbin's (name -> (header with its unit, values)) and the records' clock readings."""
    frame = {}
    for name, (column, dimension) in COLUMNS.items():
        if name in columns:
            header, values = columns[name]
            frame[column] = to_si(values, header, dimension, source=source) if dimension else \
                counts(values, header, source)
    for counter in (CHARGE_CAPACITY, DISCHARGE_CAPACITY):
        if counter in frame:
            frame[counter] = cumulative(frame[counter])
    if not np.isfinite(wall_s).all():
        raise FormatError(f"{source}: a record without a date (row {np.flatnonzero(~np.isfinite(wall_s))[0] + 1})")
    frame[UNIX_TIME] = _unix_of_wall(wall_s)
    return check_series(pd.DataFrame(frame), source)


def _mdb(path: Path, command: list[str]) -> str:
    """What an mdbtools command prints; ToolMissing without it, FormatError when it fails or complains."""
    tool = command[0]
    if shutil.which(tool) is None:
        raise ToolMissing(f"{path}: reading an Arbin .res needs {tool} from mdbtools, which is not installed; "
                          f"{INSTALL_MDBTOOLS}")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode or done.stderr.strip():
        said = done.stderr.strip().splitlines()
        raise FormatError(f"{path}: a damaged or truncated .res: {tool} says {said[-1] if said else 'nothing'!r}")
    return done.stdout


def _test(path: Path) -> dict[str, Any]:
    """The one test's row of Global_Table."""
    tests = _table(path, GLOBAL)
    if len(tests) != 1:
        raise FormatError(f"{path}: holds {len(tests)} tests (Test_ID {', '.join(map(str, tests[TEST_ID]))}); "
                          "labctl imports one test per file")
    return {k: _plain(v) for k, v in tests.iloc[0].items()}


def _records(path: Path) -> pd.DataFrame:
    """Channel_Normal_Table in Data_Point order."""
    records = _table(path, NORMAL)
    missing = [c for c in (RECORD, RES_DATE) if c not in records]
    if missing:
        raise FormatError(f"{path}: its {NORMAL} has no {', '.join(missing)}: not an Arbin .res")
    return records.sort_values(RECORD, kind="stable")


def _table(path: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(_mdb(path, ["mdb-export", str(path), table])), low_memory=False)


def _excel_wall(dates: pd.Series, source: Path) -> np.ndarray:
    """Data Watcher's dates (Excel dates or text) as clock readings (s since 1970-01-01 as the clock shows them)."""
    if pd.api.types.is_datetime64_any_dtype(dates):
        stamps = dates
    else:
        stamps = next((s for fmt in EXCEL_DATE_FORMATS if (s := _parsed(dates, fmt)) is not None), None)
        if stamps is None:
            raise FormatError(f"{source}: column {EXCEL_DATE!r} holds {dates.iloc[0]!r}, not a date "
                              f"({' or '.join(EXCEL_DATE_FORMATS)})")
    return (stamps - pd.Timestamp(UNIX_EPOCH)).dt.total_seconds().to_numpy(dtype=float)


def _parsed(dates: pd.Series, fmt: str) -> pd.Series | None:
    try:
        return pd.to_datetime(dates.astype(str).str.strip(), format=fmt)
    except ValueError:
        return None


def _rows(sheet: pd.DataFrame) -> list[list[Any]]:
    """A sheet that is not a record sheet (Global_Info …), as rows of its non-empty cells."""
    return [row for row in ([_plain(v) for v in r if pd.notna(v)] for r in sheet.itertuples(index=False)) if row]


def _plain(value: Any) -> Any:
    """A cell as JSON takes it."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    return None if isinstance(value, float) and np.isnan(value) else value

