"""LAND (Wuhan LAND / LANHE CT2001A, CT3001A, CT3002A) exports read into labctl's BDF series.

LAND cyclers have no public control interface; their data leave LANDdt as Excel (.xlsx/.xls) or text (.csv/.txt)
exports, and :func:`read_land` reads them, also while LANDdt is still writing them (``labctl follow``).

Confirmed from public sources (the tables below hold every name; nothing else in labctl spells them):
- navani (`BenSmithGreyGroup/navani`, MIT; its `landt_file_loader` successors): the record sheet is the one whose name
  contains "record"; older .xls exports continue it on further "Record…" sheets (without their header row) and use
  an ``Index`` column; a per-cycle layout puts cycles side by side under a two-row header whose first cell names the
  cycle, with ``EnergyD`` only in the last group; CSV exports start with ``Record``; columns ``Current/mA``,
  ``Capacity/mAh``, ``SpeCap/mAh/g``, ``Voltage/V``, ``State`` with ``C_CV``/``D_CV``.
- LANDT-py (`toby-hayhurst/LANDT-py`): LANDdt's sub-tables ``Record-Tab``, ``Step-Tab``, ``Cycle-Tab``; "Second" as
  time unit writes ``TestTime/Sec`` and ``StepTime/Sec``; ``SysTime``, ``StepNo``, ``StepStatus``; step modes ``CCC``,
  ``CV``, ``CCCV``, ``CCD``, ``Rest``, ``CCCV_C``/``CCVC_C``.
- BatteryML (`microsoft/BatteryML`, MIT, ZN-coin preprocessor): Chinese exports name the sheets 记录, 记录(2), 循环 and the
  columns 循环序号, 电流/mA, 电压/V, 容量/mAh, 测试时间 (hh:mm:ss, hours past 24), 系统时间 (``%Y-%m-%d %H:%M:%S.%f``);
  English ones ``Record…``/``Cycle`` sheets, ``Cycle``, ``TestTime``, ``Current/mA``, ``Capacity/mAh``; file names
  ``<name>_<YYYYMMDDhhmmss>_<unit>_<channel>`` (LANDT-py: ``<name>_<YYMMDD>_<unit>_<channel>``).
- echemistpy (`liuchzzyy/echemistpy`, LANHE reader): ``Current/uA``, ``Capacity/uAh``, a ``Test information`` sheet
  (a header row over a value row: Test name, Start time, Active material, Operator), ``D HH:MM:SS.mmm`` durations.
- A LAND CSV workbench (Chinese, public): text exports decode as UTF-8, GB18030/GBK or UTF-16; one CSV may hold Cycle,
  Step and Record sections one after another; record columns ``CycleNo``, ``StepNo``, ``StepStatus``,
  ``TestTime`` (``d-hh:mm:ss``/``d.hh:mm:ss``), and LAND's ``Capacity`` resets at every step.
- SINTEF's LAND data on Zenodo (record 18986774), as batterydf's ``landt_csv``/``landt_txt`` read them: a CSV with
  snake_case headers carrying their unit (``test_time_s``, ``current_A``, ``charge_capacity_Ah``,
  ``date_time_iso_string`` as ``%m/%d/%Y %H:%M:%S``) and a text file headed ``Rec#``, ``Cyc#``, ``Step``,
  ``Test(Sec)``, ``Amps``, ``Volts``, ``Amp-hr``, ``DPt-Time`` (Maccor writes the same vocabulary: such a file reads
  the same whoever wrote it).

Choices (not seen in a public file): the Chinese names 记录序号, 工步序号, 工步状态, 状态 and the step words
恒流充电, 恒流放电, 恒压充电, 搁置, 静置; ``Sec`` as the only spelled-out time unit; SysTime read as local time of this
computer (LAND writes no zone).

What the series holds:
- Current: BDF sign (positive charges). LAND writes discharge current negative; an export with |I| only (no value
  below zero) takes its sign from the state column: charge words (``C_…``, ``…_C``, ``CCC``, 充电) +, discharge
  words −, rest (``R``, 搁置) 0; an unknown state word is refused by name. Without a state column such a file is read as
  written. Either way ``Imported.notes`` says so.
- Capacity: BDF's cumulative counters CHARGE_CAPACITY/DISCHARGE_CAPACITY (Ah since the file's first record, as labctl's
  own runs and its CE analyzer read them), summed from LAND's per-step ``Capacity`` (a charge step's to one counter, a
  discharge step's to the other, by the sign of the step's current): where a step ends (the step number changes, or
  the value falls) its final value is added to the counter.
- CYCLE and STEP are LAND's own numbers when the file has them (STEP: LAND's step index); the per-cycle layout's
  cycle comes from its group labels. UNIX_TIME comes from the system-time column.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labctl.bdf_columns import (
    CHARGE_CAPACITY,
    CURRENT,
    CYCLE,
    DISCHARGE_CAPACITY,
    STEP,
    TIME,
    UNIX_TIME,
    VOLTAGE,
)
from labctl.imports.imported import UNITS, FormatError, Imported, check_series, duration_s, split_unit, to_si

# role -> the names LAND (and the public LAND data above) give the column, the unit left out; matched exactly
COLUMNS: dict[str, tuple[str, ...]] = {
    "record": ("Record", "Index", "Rec#", "channel_index", "记录序号"),
    "cycle": ("Cycle", "CycleNo", "Cycle-Index", "cycle_index", "Cyc#", "循环序号"),
    "step": ("StepNo", "Step", "Step-Index", "step_index", "工步序号"),
    "time": ("TestTime", "Test", "test_time", "测试时间"),
    "current": ("Current", "Amps", "current", "电流"),
    "voltage": ("Voltage", "Volts", "voltage", "电压"),
    "capacity": ("Capacity", "Amp-hr", "容量"),  # per step; the state or the current's sign says which way
    "charge_capacity": ("charge_capacity",),  # per step, SINTEF's CSV
    "discharge_capacity": ("discharge_capacity",),
    "state": ("State", "StepStatus", "Step-State", "step_name", "工步状态", "状态"),
    "systime": ("SysTime", "DPt-Time", "date_time_iso_string", "系统时间"),
}
ROLE_OF_NAME = {name: role for role, names in COLUMNS.items() for name in names}
REQUIRED_ROLES = {"time", "current", "voltage"}
INDEX_ROLES = {"record", "cycle", "step"}  # a header with a unit is never one of these ("Step(Sec)" is a step time)
UNIT_OF_NAME = {"Amps": "A", "Volts": "V", "Amp-hr": "Ah"}  # SINTEF's text headers carry no unit
UNIT_SPELLINGS = {"Sec": "s"}  # LANDdt's spelling -> labctl's
DIMENSION = {"time": "time", "current": "current", "voltage": "voltage", "capacity": "charge",
             "charge_capacity": "charge", "discharge_capacity": "charge"}
# step state -> direction: exact words first, then patterns
STATE_WORDS = {"R": 0, "Rest": 0, "REST": 0, "rest": 0, "搁置": 0, "静置": 0, "CCC": 1, "CV": 1, "CCCV": 1,
               "RateC": 1, "C": 1, "CCD": -1, "RateD": -1, "D": -1}
STATE_PATTERNS = ((re.compile(r"^C_|_C$|充电"), 1), (re.compile(r"^D_|_D$|放电"), -1))
SYSTIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S",
                   "%m/%d/%Y %H:%M:%S")
DAYS_IN_DURATION = re.compile(r"^\s*(\d+)[ .](\d+:\d{1,2}:\d{1,2}(?:\.\d*)?)\s*$")  # "1 02:00:00", "1.02:00:00"
RECORD_SHEET_WORDS = ("record", "记录")
FILE_NAME = re.compile(r"_(?:\d{6}|\d{14})_(?P<unit>\d+)_(?P<channel>\d+)$")
INSTRUMENT_FIELDS = {"channel": ("Channel", "Chl", "通道", "通道号"), "model": ("Model", "Device", "设备型号")}
TEXT_ENCODINGS = ("utf-8", "gb18030")  # after a BOM: UTF-8, UTF-16
DELIMITERS = ("\t", ",", ";")
HEADER_SCAN_ROWS = 100  # the record header lies within this many rows of a sheet or text file
EXCEL_ENGINES = {".xlsx": "calamine", ".xls": "calamine"}  # python-calamine reads both; pandas deprecates xlrd
SUFFIXES = (*EXCEL_ENGINES, ".csv", ".txt")
EXPECTED = "a LANDdt record table: TestTime, Current/<unit> and Voltage/<unit> columns (or their Chinese names)"


@dataclass
class _Block:
    """Record rows under one header: a sheet, a continuation sheet, or one cycle group of the per-cycle layout."""

    where: str  # "sheet 'Record'", "line 7"
    headers: list[str]
    rows: list[list[Any]]
    cycle: int | None = None  # the group label's cycle number


@dataclass
class _Found:
    blocks: list[_Block]
    header: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def read_land(path: Path) -> Imported:
    """The LAND export ``path`` (.xlsx, .xls, .csv, .txt) as an :class:`Imported` (module docstring); FormatError
    naming the file and what was expected for anything else.

    Following a growing export (``labctl follow``) re-reads it whole (counters and signs need every row; ≈0.3 s per
    25,000 text rows, ≈2 s per 20,000 .xlsx rows): a text export's last line counts once LANDdt has ended it, and an
    .xlsx caught while LANDdt rewrites it raises FormatError, to be read again."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise FormatError(f"{path}: a {suffix or 'suffix-less'} file is not a LAND export; expected a LANDdt export "
                          f"({', '.join(SUFFIXES)})")
    found = _excel(path, EXCEL_ENGINES[suffix]) if suffix in EXCEL_ENGINES else _text(path)
    raw = pd.concat([_raw(block, path) for block in found.blocks], ignore_index=True)
    series, notes = _finish(raw, path, found)
    return Imported(source=path, format="land", instrument=_instrument(path, found.header), header=found.header,
                    series=check_series(series, path), started_at=_started_at(series), notes=found.notes + notes)


# -- finding the record table ---------------------------------------------------------------------------------------
def _excel(path: Path, engine: str) -> _Found:
    try:
        sheets = pd.read_excel(path, sheet_name=None, header=None, engine=engine)
    except Exception as e:  # any failure to open is the file's: truncated zip, not a workbook, corrupt records
        raise FormatError(f"{path}: not a readable {path.suffix} workbook ({type(e).__name__}: {e}); expected a "
                          "LANDdt Excel export") from e
    grids = {str(name): [_cells(row) for row in frame.itertuples(index=False)] for name, frame in sheets.items()}
    named = [n for n in grids if any(w in n.casefold() for w in RECORD_SHEET_WORDS)]
    first = next((n for n in named if _header_row(grids[n]) is not None), None)
    family = named[named.index(first):] if first else []  # the record sheet and the ones continuing it
    if first is None:  # no sheet named for records holds them: the first sheet that does
        first = next((n for n in grids if _header_row(grids[n]) is not None), None)
        family = [first] if first else []
    if first is None:
        empty = [n for n, g in grids.items() if not any(any(c is not None for c in row) for row in g)]
        partial = next((m for n, g in grids.items() if (m := _lacking(g, f"sheet {n!r}"))), "")
        raise FormatError(f"{path}: no sheet holds {EXPECTED}; sheets: {list(grids)}"
                          + (f" (empty: {empty})" if empty else "") + (f"; {partial}" if partial else ""))
    blocks = _sheet_blocks(first, grids[first])
    for name in family[1:]:
        blocks += _continuation(name, grids[name], blocks[0].headers)
    info = {name: fields for name, grid in grids.items() if name not in family and (fields := _info(grid))}
    return _Found(blocks, header=info)


def _cells(row: Iterable[Any]) -> list[Any]:
    return [None if (isinstance(c, float) and math.isnan(c)) or (isinstance(c, str) and not c.strip()) else c
            for c in row]


def _sheet_blocks(name: str, grid: list[list[Any]]) -> list[_Block]:
    r = _header_row(grid)
    assert r is not None
    headers = [str(c).strip() if c is not None else "" for c in grid[r]]
    rows = _section(grid[r + 1:], headers)
    starts = _group_starts(headers)
    if len(starts) < 2:
        return [_Block(f"sheet {name!r}", headers, rows)]
    labels = grid[r - 1] if r > 0 else [None] * len(headers)
    bounds = [*starts, len(headers)]
    return [_Block(f"sheet {name!r}, cycle group {k + 1}", headers[a:b], [row[a:b] for row in rows],
                   _label_cycle(labels[a], k + 1)) for k, (a, b) in enumerate(pairwise(bounds))]


def _continuation(name: str, grid: list[list[Any]], headers: list[str]) -> list[_Block]:
    """A further record sheet: with its own header row, or (older .xls exports) data rows under the first's."""
    if _header_row(grid) is not None:
        return _sheet_blocks(name, grid)
    rows = [row for row in grid if any(c is not None for c in row)]
    return [_Block(f"sheet {name!r}", headers, _section(rows, headers))] if rows else []


def _header_row(grid: Sequence[Sequence[Any]]) -> int | None:
    return next((i for i, row in enumerate(grid[:HEADER_SCAN_ROWS]) if REQUIRED_ROLES <= set(_roles(row))), None)


def _lacking(rows: Sequence[Sequence[Any]], where: str) -> str | None:
    """What the row naming most record columns (at least two) lacks, for the refusal's message."""
    scored = [(len(REQUIRED_ROLES & set(_roles(row))), i) for i, row in enumerate(rows[:HEADER_SCAN_ROWS])]
    found, i = max(scored, default=(0, 0))
    if found < 2:
        return None
    lacking = sorted(REQUIRED_ROLES - set(_roles(rows[i])))
    expected = "; ".join(f"{', '.join(COLUMNS[role])} with a unit" for role in lacking)
    return f"{where}, row {i + 1} has no {' or '.join(lacking)} column ({expected})"


def _roles(headers: Sequence[Any]) -> dict[str, int]:
    """role -> the index of the first header that names it."""
    found: dict[str, int] = {}
    for j, header in enumerate(headers):
        if not isinstance(header, str):
            continue
        name, unit = _name_unit(header)
        role = ROLE_OF_NAME.get(name)
        if role and not (role in INDEX_ROLES and unit is not None):
            found.setdefault(role, j)
    return found


def _name_unit(header: str) -> tuple[str, str | None]:
    """A header's name and unit in labctl's spelling: ``TestTime/Sec`` → (TestTime, s), ``current_A`` → (current, A),
    ``Amps`` → (Amps, A)."""
    name, unit = split_unit(header)
    if unit is None:
        head, _, tail = name.rpartition("_")
        name, unit = (head, tail) if head and tail in UNITS else (name, UNIT_OF_NAME.get(name))
    return name, UNIT_SPELLINGS.get(unit, unit) if unit else None


def _group_starts(headers: list[str]) -> list[int]:
    """Where the cycle groups of the per-cycle layout start: each repeat of the first header."""
    return [j for j, h in enumerate(headers) if h and h == headers[0]]


def _label_cycle(label: Any, default: int) -> int:
    m = re.search(r"\d+", str(label)) if label is not None else None
    return int(m.group()) if m else default


def _section(rows: list[list[Any]], headers: list[str]) -> list[list[Any]]:
    """The record rows up to the next section of a mixed export (a row whose record cell is not a number)."""
    j = _roles(headers).get("record")
    out = []
    for row in rows:
        cell = row[j] if j is not None and j < len(row) else None
        if isinstance(cell, str) and not _is_number(cell):
            break
        out.append(row)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _info(grid: list[list[Any]]) -> dict[str, Any]:
    """The fields of an information sheet or a text export's preamble: a header row over one value row, else its
    key/value rows (``key,value``, ``key: value``); tables (rows of more cells, numbered rows) carry none."""
    rows = [[c for c in row if c is not None] for row in grid]
    rows = [row for row in rows if row]
    if len(rows) == 2 and len(rows[0]) == len(rows[1]) > 2:
        return {str(k): _jsonable(v) for k, v in zip(rows[0], rows[1], strict=True)}
    fields: dict[str, Any] = {}
    for row in rows:
        if len(row) == 1 and ":" in str(row[0]):
            row = str(row[0]).split(":", 1)
        if len(row) <= 2 and isinstance(row[0], str) and not _is_number(row[0]):
            value = row[1] if len(row) == 2 else None
            fields[row[0].strip().rstrip(":：")] = _jsonable(value.strip() if isinstance(value, str) else value)
    return fields


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, time | timedelta):
        return str(value)
    return value


def _text(path: Path) -> _Found:
    text = _decode(path)
    lines = text.splitlines()
    delimiter, r, headers = _text_header(path, lines)
    notes = []
    if r < len(lines) - 1 and not text.endswith(("\n", "\r")):  # LANDdt is writing it: a field may be cut short
        lines = lines[:-1]
        notes.append("the last line is not ended (the export is being written): left out")
    rows = [_cells(fields) for fields in csv.reader(lines[r + 1:], delimiter=delimiter)]
    rows = [row for row in rows if any(c is not None for c in row)]
    preamble = [_cells(f) for f in csv.reader(lines[:r], delimiter=delimiter)]
    return _Found([_Block(f"the table headed at line {r + 1}", headers, _section(rows, headers))], _info(preamble), notes)


def _decode(path: Path) -> str:
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    for encoding in TEXT_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FormatError(f"{path}: not UTF-8, UTF-16 or GBK (GB18030) text; expected a LANDdt text export")


def _text_header(path: Path, lines: list[str]) -> tuple[str, int, list[str]]:
    split = {d: [[f.strip() for f in fields] for fields in csv.reader(lines[:HEADER_SCAN_ROWS], delimiter=d)]
             for d in DELIMITERS}
    for r in range(min(len(lines), HEADER_SCAN_ROWS)):
        for delimiter, rows in split.items():
            if REQUIRED_ROLES <= set(_roles(rows[r])):
                return delimiter, r, rows[r]
    partial = next((m for rows in split.values() if (m := _lacking(rows, "line"))), "")
    raise FormatError(f"{path}: no line in its first {HEADER_SCAN_ROWS} is the header of {EXPECTED}"
                      + (f"; {partial}" if partial else "") + ("" if lines else " (the file is empty)"))


# -- from cells to SI -----------------------------------------------------------------------------------------------
def _raw(block: _Block, source: Path) -> pd.DataFrame:
    """One block's rows: SI numbers for the quantities, LAND's own numbers, state words and system times."""
    roles = _roles(block.headers)
    width = len(block.headers)
    cells = pd.DataFrame([(row + [None] * width)[:width] for row in block.rows], columns=range(width), dtype=object)
    cells = cells[cells[[roles[r] for r in REQUIRED_ROLES]].notna().any(axis=1)]
    where = f"{source} ({block.where})"
    out = pd.DataFrame(index=range(len(cells)))
    for role, j in roles.items():
        values, header = cells[j].tolist(), block.headers[j]
        if role == "time":
            out[role] = _seconds(values, header, where)
        elif role in DIMENSION:
            out[role] = _si(values, header, DIMENSION[role], where)
        elif role in INDEX_ROLES:
            out[role] = _integers(values, header, where)
        else:
            out[role] = values
    if block.cycle is not None and "cycle" not in roles:
        out["cycle"] = block.cycle
    return out


def _si(values: list[Any], header: str, dimension: str, where: str) -> np.ndarray:
    """``values`` in SI through :func:`to_si`, the unit as labctl spells it (``TestTime/Sec`` as ``TestTime/s``)."""
    name, unit = _name_unit(header)
    written = header if unit is None or unit == split_unit(header)[1] else f"{name}/{unit}"
    return to_si(values, written, dimension, source=where)


def _seconds(values: list[Any], header: str, where: str) -> np.ndarray:
    """A test-time column: numbers with a unit in the header, or durations (hh:mm:ss text, Excel times)."""
    first = next((v for v in values if v is not None), None)
    if _name_unit(header)[1] is not None or not (isinstance(first, time | timedelta) or ":" in str(first)):
        return _si(values, header, "time", where)
    return np.array([_duration(v, header, where) for v in values], dtype=float)


def _duration(value: Any, header: str, where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, time):
        return value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
    m = DAYS_IN_DURATION.match(str(value))
    return duration_s(f"{m[1]}-{m[2]}" if m else str(value), column=header, source=where)


def _integers(values: list[Any], header: str, where: str) -> np.ndarray:
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    bad = numbers.isna() | (numbers % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise FormatError(f"{where}: column {header!r}, row {row + 1}: {values[row]!r} is not a whole number")
    return numbers.to_numpy(dtype=np.int64)


def _finish(raw: pd.DataFrame, source: Path, found: _Found) -> tuple[pd.DataFrame, list[str]]:
    """The BDF series of the blocks' rows, and notes."""
    first = found.blocks[0].headers
    names = {role: first[j] for role, j in _roles(first).items()}  # role -> the file's header, for messages
    current, notes = _signed(raw, source, names)
    series = pd.DataFrame({TIME: raw["time"].to_numpy(), VOLTAGE: raw["voltage"].to_numpy(), CURRENT: current})
    if "systime" in raw:
        series[UNIX_TIME] = _unix(raw["systime"].tolist(), names["systime"], source)
        notes.append("Unix Time from the system-time column, read as this computer's local time (LAND writes no zone)")
    for role, column in (("cycle", CYCLE), ("step", STEP)):
        if role in raw:
            series[column] = raw[role].to_numpy(dtype=np.int64)
    return series.join(_counters(raw, current)), notes


def _signed(raw: pd.DataFrame, source: Path, names: dict[str, str]) -> tuple[np.ndarray, list[str]]:
    """The current with BDF's sign (module docstring) and a note on how it was decided."""
    current = raw["current"].to_numpy(dtype=float)
    if (current < 0).any() or not (current > 0).any():
        return current, []
    if "state" not in raw:
        return current, ["the current is never negative and there is no state column: read as written (charging)"]
    signs = _state_signs(raw["state"].tolist(), names["state"], source)
    return np.abs(current) * signs, [f"the current is written as |I|: its sign is the state column {names['state']!r}'s "
                                     "(charge +, discharge −, rest 0)"]


def _state_signs(states: list[Any], header: str, source: Path) -> np.ndarray:
    signs = {}
    for word in dict.fromkeys(states):
        text = str(word).strip() if word is not None else ""
        sign = STATE_WORDS.get(text)
        if sign is None:
            sign = next((s for pattern, s in STATE_PATTERNS if pattern.search(text)), None)
        if sign is None:
            raise FormatError(f"{source}: state {word!r} in column {header!r} is not one labctl knows (charge: C_…, "
                              "…_C, CCC, 充电; discharge: D_…, …_D, CCD, 放电; rest: R, Rest, 搁置), so the unsigned "
                              "current's direction is unknown")
        signs[word] = sign
    return np.array([signs[w] for w in states], dtype=float)


def _counters(raw: pd.DataFrame, current: np.ndarray) -> pd.DataFrame:
    """BDF's cumulative charge and discharge counters (module docstring), or no columns without capacities."""
    if "capacity" in raw:
        q, direction = np.abs(raw["capacity"].to_numpy(dtype=float)), _directions(raw, current)
        per_step = {CHARGE_CAPACITY: np.where(direction > 0, q, 0.0),
                    DISCHARGE_CAPACITY: np.where(direction < 0, q, 0.0)}
    elif "charge_capacity" in raw and "discharge_capacity" in raw:
        per_step = {CHARGE_CAPACITY: np.abs(raw["charge_capacity"].to_numpy(dtype=float)),
                    DISCHARGE_CAPACITY: np.abs(raw["discharge_capacity"].to_numpy(dtype=float))}
    else:
        return pd.DataFrame(index=raw.index)
    new_step = np.zeros(len(raw), dtype=bool)
    if "step" in raw:
        step = raw["step"].to_numpy()
        new_step[1:] = step[1:] != step[:-1]
    return pd.DataFrame({name: _cumulative(q, new_step) for name, q in per_step.items()}, index=raw.index)


def _directions(raw: pd.DataFrame, current: np.ndarray) -> np.ndarray:
    """Which counter each row's capacity goes to: its step's direction (the sign of the step's summed current), so a
    step's last reading, taken as the current stopped, still counts to it; the row's own sign without step numbers."""
    if "step" not in raw:
        return np.sign(current)
    step = raw["step"].to_numpy()
    runs = np.cumsum(np.diff(step, prepend=step[:1]) != 0)
    return np.sign(pd.Series(current).groupby(runs).transform("sum").to_numpy())


def _cumulative(q: np.ndarray, new_step: np.ndarray) -> np.ndarray:
    """A per-step counter made cumulative: where a step ends, its final value is carried into the rest."""
    previous = np.concatenate(([0.0], q))[:-1]
    return q + np.cumsum(np.where((q < previous) | new_step, previous, 0.0))


def _unix(values: list[Any], header: str, source: Path) -> np.ndarray:
    """System times (datetimes, or text in one of SYSTIME_FORMATS) as Unix time, read as local time."""
    if all(isinstance(v, datetime) for v in values):
        stamps = pd.to_datetime(pd.Series(values))
    else:
        stamps = next((s for fmt in SYSTIME_FORMATS if (s := _parsed(values, fmt)) is not None), None)
        if stamps is None:
            raise FormatError(f"{source}: column {header!r} holds {values[0]!r}, not a date and time "
                              f"({', '.join(SYSTIME_FORMATS)})")
    return np.array([t.to_pydatetime().timestamp() for t in stamps], dtype=float)


def _parsed(values: list[Any], fmt: str) -> pd.Series | None:
    try:
        return pd.to_datetime(pd.Series([str(v).strip() for v in values]), format=fmt)
    except ValueError:
        return None


def _started_at(series: pd.DataFrame) -> datetime | None:
    if UNIX_TIME not in series or series.empty:
        return None
    return datetime.fromtimestamp(float(series[UNIX_TIME].iloc[0] - series[TIME].iloc[0])).astimezone()


def _instrument(path: Path, header: dict[str, Any]) -> dict[str, str]:
    """make LAND; model and channel from the information fields, else unit and channel from LANDdt's file name."""
    instrument = {"make": "LAND"}
    fields = {k: v for section in header.values() if isinstance(section, dict) for k, v in section.items()}
    fields.update({k: v for k, v in header.items() if not isinstance(v, dict)})
    for key, names in INSTRUMENT_FIELDS.items():
        value = next((fields[n] for n in names if fields.get(n) not in (None, "")), None)
        if value is not None:
            instrument[key] = str(value)
    m = FILE_NAME.search(path.stem)
    if m:
        instrument.setdefault("unit", m["unit"])
        instrument.setdefault("channel", m["channel"])
    return instrument
