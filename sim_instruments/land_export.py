"""LAND-shaped export files from a virtual cell's data, for tests of the LAND reader (``labctl.imports.land``).

LAND cyclers have no public control interface, so the simulated LAND is its exports: given a labctl time series in
BDF columns (a run's ``timeseries.bdf.csv``, or :func:`cycling_series` driving a ``SymmetricCell``), the writers
below produce the files LANDdt writes. Like the other emulators, this module spells the format out itself, apart
from the reader's tables, so that reading its files back checks the reader against a second description.

Modelled on public examples (sources in ``labctl.imports.land``'s docstring):
- one record sheet ``Record`` (Chinese: 记录) with ``Record``, ``Cycle``, ``StepNo``, ``TestTime/Sec`` or hh:mm:ss,
  ``StepTime``, ``Current/mA`` or ``Current/uA``, ``Voltage/V``, ``Capacity/mAh`` or ``/uAh`` (per step),
  ``StepStatus`` (``C_CC``, ``D_CC``, ``R``: the step's, so a step's last reading taken as the current stopped keeps
  it), ``SysTime``; discharge current negative; a ``Cycle`` sheet
  (``CapC/mAh``, ``CapD/mAh``; 循环 with 充电容量/mAh, 放电容量/mAh) and a ``Test information`` sheet (a header
  row over a value row);
- continuation sheets ``Record(2)``, … (记录(2)) once a sheet is full, with or without their header row;
- the per-cycle layout: cycles side by side under a two-row header (the cycle label over each group), ``EnergyD``
  only in the last group;
- text exports with Chinese names in GBK;
- SINTEF's CSV (Zenodo 18986774): six preamble lines, snake_case headers carrying their unit, a trailing comma.

Choices: the Chinese column and state names but 循环序号, 电流/mA, 电压/V, 容量/mAh, 测试时间, 系统时间 (see the
reader); ``Cycle-N`` as the group label; the rounding (V to 0.1 mV, mA to 4 decimals, µA to 2); StepTime from the
previous step's last row; ``EnergyD`` as capacity × |V| (a placeholder number); a Cycle section after the records in
a text export (LAND's mixed CSV holds Cycle, Step and Record sections in either order); the growing export
(:class:`GrowingExport`), since whether LANDMon auto-exports on a schedule is not documented publicly.

``.xls`` is written with xlwt (unmaintained, 2017; a test dependency only): without it :func:`write_xls` raises
ModuleNotFoundError, and the reader still reads .xls through xlrd.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
from labctl.sim_instruments.cells import SymmetricCell

# column -> (English name, Chinese name); a unit follows "/" where the layout gives one
NAMES = {
    "record": ("Record", "记录序号"), "cycle": ("Cycle", "循环序号"), "step": ("StepNo", "工步序号"),
    "time": ("TestTime", "测试时间"), "step_time": ("StepTime", "步骤时间"), "current": ("Current", "电流"),
    "voltage": ("Voltage/V", "电压/V"), "capacity": ("Capacity", "容量"), "state": ("StepStatus", "工步状态"),
    "systime": ("SysTime", "系统时间"),
}  # fmt: skip
STATES = {1: ("C_CC", "恒流充电"), -1: ("D_CC", "恒流放电"), 0: ("R", "搁置")}
SHEETS = {"record": ("Record", "记录"), "cycle": ("Cycle", "循环")}
CYCLE_COLUMNS = (("Cycle", "CapC/mAh", "CapD/mAh"), ("循环序号", "充电容量/mAh", "放电容量/mAh"))
CURRENT_SCALE = {"mA": 1e3, "uA": 1e6, "µA": 1e6}  # A -> the unit
DECIMALS = {"mA": 4, "uA": 2, "µA": 2, "V": 4, "s": 3, "h": 7}
XLS_ROWS = 65536  # an .xls sheet's row limit
SINTEF_PREAMBLE = ("cell model:", "cell id: ", "test: ", "checkpoint: ", "Nominal capacity used to define the C rate:Ah",
                   "Nominal energy used to define the E rate: Wh")
SINTEF_COLUMNS = ("channel_index", "cycle_index", "step_index", "date_time_iso_string", "test_time_s", "step_time_s",
                  "current_A", "voltage_V", "discharge_capacity_Ah", "charge_capacity_Ah", "discharge_energy_Wh",
                  "charge_energy_Wh", "Pressure_Psi", "temperature_1_C", "temperature_2_C", "temperature_3_C",
                  "step_name")
SINTEF_STEPS = {1: "charge CC", -1: "discharge CC", 0: "rest"}
SINTEF_TEXT_COLUMNS = ("Rec#", "Cyc#", "Step", "Test(Sec)", "Step(Sec)", "Amp-hr", "Watt-hr", "Amps", "Volts",
                       "DPt-Time")


@dataclass(frozen=True)
class Layout:
    """How LANDdt was set to write: the language of the names, the current's unit (capacity follows: mAh, uAh),
    whether current is signed (else |I| with the state column giving the direction), the test time's unit
    (``Sec``, ``h``) or ``hh:mm:ss`` text."""

    chinese: bool = False
    current_unit: str = "mA"
    signed: bool = True
    time: str = "Sec"


def cycling_series(*, cycles: int = 2, current_A: float = 1e-4, half_cycle_s: float = 600.0, rest_s: float = 120.0,
                   interval_s: float = 10.0, seed: int = 0, start_unix: float = 1.7e9) -> pd.DataFrame:
    """A SymmetricCell cycled galvanostatically as a labctl run stores it: per cycle rest, +I, rest, -I, sampled
    every ``interval_s``, with BDF's cumulative capacity counters and a step per segment."""
    cell = SymmetricCell(seed=seed)
    rows: list[dict[str, float]] = []
    t = charged = discharged = 0.0
    step = 0
    for cycle in range(1, cycles + 1):
        for current, duration in ((0.0, rest_s), (current_A, half_cycle_s), (0.0, rest_s), (-current_A, half_cycle_s)):
            step += 1
            for _ in range(round(duration / interval_s)):
                cell.advance(current, interval_s)
                t += interval_s
                charged += max(current, 0.0) * interval_s / 3600
                discharged += max(-current, 0.0) * interval_s / 3600
                rows.append({TIME: t, VOLTAGE: cell.measured_voltage(current), CURRENT: current,
                             UNIX_TIME: start_unix + t, CYCLE: cycle, STEP: step, CHARGE_CAPACITY: charged,
                             DISCHARGE_CAPACITY: discharged})
    return pd.DataFrame(rows)


def records(series: pd.DataFrame, layout: Layout = Layout()) -> pd.DataFrame:
    """The LAND record table of ``series`` (BDF columns) as ``layout`` writes it: header names and rounded values."""
    lang = int(layout.chinese)
    unit = layout.current_unit
    sign = _step_sign(series)
    current = series[CURRENT].to_numpy() * CURRENT_SCALE[unit]
    time_name, times = _times(series[TIME].to_numpy(), layout.time, NAMES["time"][lang])
    table = {
        NAMES["record"][lang]: np.arange(1, len(series) + 1),
        NAMES["cycle"][lang]: series[CYCLE].to_numpy() if CYCLE in series else np.ones(len(series), dtype=int),
        NAMES["step"][lang]: series[STEP].to_numpy(),
        time_name: times,
        f"{NAMES['step_time'][lang]}/Sec": np.round(_step_time(series), DECIMALS["s"]),
        f"{NAMES['current'][lang]}/{unit}": np.round(current if layout.signed else np.abs(current), DECIMALS[unit]),
        NAMES["voltage"][lang]: np.round(series[VOLTAGE].to_numpy(), DECIMALS["V"]),
    }
    if CHARGE_CAPACITY in series and DISCHARGE_CAPACITY in series:
        per_step = _per_step_capacity(series, sign) * CURRENT_SCALE[unit]
        table[f"{NAMES['capacity'][lang]}/{unit}h"] = np.round(per_step, DECIMALS[unit])
    table[NAMES["state"][lang]] = [STATES[int(s)][lang] for s in sign]
    if UNIX_TIME in series:
        table[NAMES["systime"][lang]] = [_systime(u) for u in series[UNIX_TIME]]
    return pd.DataFrame(table)


def _times(seconds: np.ndarray, unit: str, name: str) -> tuple[str, Any]:
    if unit == "hh:mm:ss":
        return name, [_hms(s) for s in seconds]
    divisor = {"Sec": 1.0, "h": 3600.0}[unit]
    return f"{name}/{unit}", np.round(seconds / divisor, DECIMALS["h" if unit == "h" else "s"])


def _hms(seconds: float) -> str:
    """LAND's duration text: hours past 24 kept in the hours (BatteryML's exports)."""
    hours, rest = divmod(round(seconds, 3), 3600)
    return f"{int(hours):02d}:{int(rest // 60):02d}:{rest % 60:06.3f}"


def _systime(unix: float) -> str:
    return datetime.fromtimestamp(unix).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _step_sign(series: pd.DataFrame) -> np.ndarray:
    """Each row's step direction (LAND's state is the step's): the sign of the step's summed current, so a step's
    last reading, taken as the current stopped, still belongs to it."""
    step = series[STEP].to_numpy()
    runs = np.cumsum(np.diff(step, prepend=step[:1]) != 0)
    return np.sign(series[CURRENT].groupby(runs).transform("sum").to_numpy()).astype(int)


def _step_starts(series: pd.DataFrame) -> np.ndarray:
    """For each row, the index of its step's first row."""
    step = series[STEP].to_numpy()
    new = np.r_[True, step[1:] != step[:-1]]
    return np.maximum.accumulate(np.where(new, np.arange(len(step)), 0))


def _step_time(series: pd.DataFrame) -> np.ndarray:
    """Time since the step began: since the previous step's last row (0 at the file's start)."""
    t = series[TIME].to_numpy()
    first = _step_starts(series)
    began = np.where(first > 0, t[np.maximum(first - 1, 0)], 0.0)
    return t - began


def _per_step_capacity(series: pd.DataFrame, sign: np.ndarray) -> np.ndarray:
    """LAND's Capacity (Ah): what the counter of the row's step direction gained since its step began."""
    first = _step_starts(series)
    out = np.zeros(len(series))
    for column, direction in ((CHARGE_CAPACITY, 1), (DISCHARGE_CAPACITY, -1)):
        counter = series[column].to_numpy()
        before = np.where(first > 0, counter[np.maximum(first - 1, 0)], 0.0)
        out = np.where(sign == direction, counter - before, out)
    return out


def cycle_table(series: pd.DataFrame, layout: Layout = Layout()) -> pd.DataFrame:
    """The Cycle sheet: each cycle's charge and discharge capacity, mAh."""
    names = CYCLE_COLUMNS[int(layout.chinese)]
    last = series.groupby(CYCLE)[[CHARGE_CAPACITY, DISCHARGE_CAPACITY]].last()
    gained = last.diff().fillna(last) * 1e3
    return pd.DataFrame({names[0]: last.index, names[1]: np.round(gained[CHARGE_CAPACITY].to_numpy(), 4),
                         names[2]: np.round(gained[DISCHARGE_CAPACITY].to_numpy(), 4)})


def information(series: pd.DataFrame, *, name: str = "labctl virtual cell", channel: int = 1) -> dict[str, Any]:
    """The Test information sheet's fields."""
    start = _systime(float(series[UNIX_TIME].iloc[0] - series[TIME].iloc[0])) if UNIX_TIME in series else ""
    return {"Test name": name, "Start time": start, "Active material": "1.0 mg", "Operator": "labctl",
            "Channel": channel}


# -- Excel ----------------------------------------------------------------------------------------------------------
def write_xlsx(series: pd.DataFrame, path: Path, layout: Layout = Layout(), *, rows_per_sheet: int | None = None,
               continuation_header: bool = True) -> Path:
    """One workbook: the record sheet (continued on ``Record(2)``, … past ``rows_per_sheet`` rows), the Cycle sheet
    and the Test information sheet."""
    return _xlsx(records(series, layout), series, Path(path), layout, rows_per_sheet, continuation_header)


def _xlsx(table: pd.DataFrame, series: pd.DataFrame, path: Path, layout: Layout, rows_per_sheet: int | None,
          continuation_header: bool) -> Path:
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, part, header in _record_sheets(table, layout, rows_per_sheet, continuation_header):
            part.to_excel(writer, sheet_name=name, index=False, header=header)
        cycles = cycle_table(series, layout) if CHARGE_CAPACITY in series else None
        if cycles is not None:
            cycles.to_excel(writer, sheet_name=SHEETS["cycle"][int(layout.chinese)], index=False)
        pd.DataFrame([information(series)]).to_excel(writer, sheet_name="Test information", index=False)
    return path


def _record_sheets(table: pd.DataFrame, layout: Layout, rows_per_sheet: int | None,
                   continuation_header: bool) -> list[tuple[str, pd.DataFrame, bool]]:
    base = SHEETS["record"][int(layout.chinese)]
    size = rows_per_sheet or max(len(table), 1)
    parts = [table.iloc[i:i + size] for i in range(0, max(len(table), 1), size)]
    return [(base if k == 0 else f"{base}({k + 1})", part, k == 0 or continuation_header)
            for k, part in enumerate(parts)]


def write_xls(series: pd.DataFrame, path: Path, layout: Layout = Layout(), *, rows_per_sheet: int = XLS_ROWS - 1,
              continuation_header: bool = False) -> Path:
    """The record sheets as an Excel 97 .xls (xlwt); older LANDdt exports continue them without a header row."""
    import xlwt  # a test dependency only (module docstring)

    book = xlwt.Workbook(encoding="utf-8")
    for name, part, header in _record_sheets(records(series, layout), layout, rows_per_sheet, continuation_header):
        sheet = book.add_sheet(name)
        rows = ([list(part.columns)] if header else []) + part.to_numpy().tolist()
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                sheet.write(i, j, value.item() if isinstance(value, np.generic) else value)
    book.save(str(path))
    return Path(path)


def write_per_cycle_xlsx(series: pd.DataFrame, path: Path, layout: Layout = Layout()) -> Path:
    """The per-cycle layout: one sheet, each cycle's records in its own group of columns under a two-row header
    (``Cycle-N`` over the column names), ``EnergyD/mWh`` in the last group only."""
    from openpyxl import Workbook

    table = records(series, layout).drop(columns=NAMES["cycle"][int(layout.chinese)])
    cycles = series[CYCLE].to_numpy() if CYCLE in series else np.ones(len(series), dtype=int)
    book = Workbook()
    sheet = book.active
    sheet.title = SHEETS["record"][int(layout.chinese)]
    column = 1
    for k, cycle in enumerate(dict.fromkeys(cycles)):
        group = table[cycles == cycle]
        if k == len(set(cycles)) - 1:
            group = group.assign(**{"EnergyD/mWh": _energy(group, layout)})
        sheet.cell(row=1, column=column, value=f"Cycle-{cycle}")
        sheet.merge_cells(start_row=1, start_column=column, end_row=1, end_column=column + group.shape[1] - 1)
        for j, name in enumerate(group.columns):
            sheet.cell(row=2, column=column + j, value=name)
            for i, value in enumerate(group[name].tolist()):
                sheet.cell(row=3 + i, column=column + j, value=value)
        column += group.shape[1]
    book.save(path)
    return Path(path)


def _energy(group: pd.DataFrame, layout: Layout) -> np.ndarray:
    lang = int(layout.chinese)
    capacity = next(c for c in group.columns if c.startswith(NAMES["capacity"][lang]))
    scale = CURRENT_SCALE[layout.current_unit] / 1e3  # capacity unit -> mAh
    return np.round(group[capacity].to_numpy() / scale * np.abs(group[NAMES["voltage"][lang]].to_numpy()), 4)


# -- text -----------------------------------------------------------------------------------------------------------
def write_text(series: pd.DataFrame, path: Path, layout: Layout = Layout(), *, delimiter: str | None = None,
               encoding: str = "utf-8", preamble: dict[str, Any] | None = None, cycle_section: bool = False) -> Path:
    """A .csv (comma) or .txt (tab) export: ``key<delimiter>value`` preamble lines, the record table and, with
    ``cycle_section``, the Cycle table after it (LAND's mixed CSV)."""
    path = Path(path)
    delimiter = delimiter or ("\t" if path.suffix.lower() == ".txt" else ",")
    table = records(series, layout)
    lines = [f"{k}{delimiter}{v}" for k, v in (preamble or {}).items()] + _lines(table, delimiter, header=True)
    if cycle_section:
        lines += ["", *_lines(cycle_table(series, layout), delimiter, header=True)]
    path.write_bytes("".join(line + "\r\n" for line in lines).encode(encoding))
    return path


def _lines(table: pd.DataFrame, delimiter: str, *, header: bool) -> list[str]:
    rows = [delimiter.join(map(str, row)) for row in table.itertuples(index=False)]
    return [delimiter.join(table.columns), *rows] if header else rows


def write_sintef_csv(series: pd.DataFrame, path: Path) -> Path:
    """SINTEF's LAND CSV (Zenodo 18986774): preamble, snake_case headers with units, per-step capacities (Ah), the
    system time as %m/%d/%Y %H:%M:%S, a trailing comma on each row."""
    sign = _step_sign(series)
    per_step = _per_step_capacity(series, sign)
    values = {
        "channel_index": np.arange(1, len(series) + 1), "cycle_index": series[CYCLE].to_numpy(),
        "step_index": series[STEP].to_numpy(),
        "date_time_iso_string": [datetime.fromtimestamp(u).strftime("%m/%d/%Y %H:%M:%S") for u in series[UNIX_TIME]],
        "test_time_s": np.round(series[TIME].to_numpy(), 3), "step_time_s": np.round(_step_time(series), 3),
        "current_A": np.round(series[CURRENT].to_numpy(), 7), "voltage_V": np.round(series[VOLTAGE].to_numpy(), 4),
        "discharge_capacity_Ah": np.round(np.where(sign < 0, per_step, 0.0), 9),
        "charge_capacity_Ah": np.round(np.where(sign > 0, per_step, 0.0), 9),
        "step_name": [SINTEF_STEPS[s] for s in sign],
    }  # fmt: skip
    table = pd.DataFrame({c: values.get(c, 0) for c in SINTEF_COLUMNS})
    width = len(SINTEF_COLUMNS) - 1
    lines = [line + "," * width for line in SINTEF_PREAMBLE] + [",".join(SINTEF_COLUMNS)]
    lines += [row + "," for row in _lines(table, ",", header=False)]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


def write_sintef_txt(series: pd.DataFrame, path: Path, *, title: str = "labctl virtual cell") -> Path:
    """SINTEF's LAND text export (Zenodo 18986774) as batterydf reads it: one line before the tab-separated header
    ``Rec#``, ``Cyc#``, ``Step``, ``Test(Sec)``, ``Step(Sec)``, ``Amp-hr`` (per step), ``Watt-hr``, ``Amps``,
    ``Volts``, ``DPt-Time`` (%Y-%m-%d %H:%M:%S). Choices: that line's text, signed Amps, the number formats."""
    sign = _step_sign(series)
    values = [np.arange(1, len(series) + 1), series[CYCLE].to_numpy(), series[STEP].to_numpy(),
              np.round(series[TIME].to_numpy(), 3), np.round(_step_time(series), 3),
              np.round(_per_step_capacity(series, sign), 9), np.zeros(len(series)),
              np.round(series[CURRENT].to_numpy(), 7), np.round(series[VOLTAGE].to_numpy(), 4),
              [datetime.fromtimestamp(u).strftime("%Y-%m-%d %H:%M:%S") for u in series[UNIX_TIME]]]
    table = pd.DataFrame(dict(zip(SINTEF_TEXT_COLUMNS, values, strict=True)))
    Path(path).write_text("\n".join([title, *_lines(table, "\t", header=True)]) + "\n", encoding="utf-8")
    return Path(path)


# -- a growing export -----------------------------------------------------------------------------------------------
class GrowingExport:
    """An export that grows as LANDdt would write it during a test, chunk by chunk: a .csv/.txt gets its records
    appended (``partial`` leaves the next one half written, as a reader may catch it), an .xlsx is rewritten whole
    with every record so far."""

    def __init__(self, series: pd.DataFrame, path: Path, layout: Layout = Layout(), *, encoding: str = "utf-8") -> None:
        self.series, self.path, self.layout, self.encoding = series, Path(path), layout, encoding
        self.table = records(series, layout)
        self.written = 0  # complete records in the file
        self._pending = ""  # the part of the next record's line already in the file
        self._started = False  # the header line is written
        self._excel = self.path.suffix.lower() == ".xlsx"
        self._delimiter = "\t" if self.path.suffix.lower() == ".txt" else ","

    def append(self, rows: int, *, partial: bool = False) -> int:
        """Add the next ``rows`` records (fewer at the end of the series); returns the records now complete."""
        end = min(self.written + rows, len(self.table))
        if self._excel:
            part = self.series.iloc[:end]
            _xlsx(self.table.iloc[:end], part, self.path, self.layout, None, True)
        else:
            self._append_text(end, partial)
        self.written = end
        return end

    def _append_text(self, end: int, partial: bool) -> None:
        lines = _lines(self.table.iloc[self.written:end], self._delimiter, header=not self._started)
        self._started = True
        text = "".join(line + "\r\n" for line in lines)
        text = text[len(self._pending):] if self._pending else text
        nxt = _lines(self.table.iloc[end:end + 1], self._delimiter, header=False)
        self._pending = nxt[0][: len(nxt[0]) // 2] if partial and nxt else ""
        with self.path.open("ab") as f:
            f.write((text + self._pending).encode(self.encoding))
