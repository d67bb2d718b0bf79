"""BioLogic EC-Lab (and BT-Lab) files read into labctl's BDF series and impedance spectra: the binary ``.mpr`` the
instrument's software writes while it measures (:func:`read_mpr`) and its text export ``.mpt`` (:func:`read_mpt`).

Facts from public sources (the tables below hold every one; confirmed on the fixtures in
``tests/imports/fixtures/eclab`` unless marked "unconfirmed"):

- .mpr layout (galvani ``galvani/BioLogic.py`` 0.5.0; yadg ``src/yadg/extractors/eclab/mpr.py`` and
  ``mpr_columns.py``; the research notes' instruments.md §4.8): ``BIO-LOGIC MODULAR FILE\\x1a`` padded to 48 bytes
  and 4 zero bytes, then modules, each ``MODULE`` and a header (short name 10 bytes, long name 25, data length u32,
  version u32, date 8 ASCII) before its data. EC-Lab ≥ 11.50 writes a maximum length ``ff ff ff ff`` after the long
  name and one more u32 after the version. Modules ``VMP Set`` (settings), ``VMP data`` (the records), ``VMP LOG``,
  ``VMP loop``.
- The data module: the number of records (u32), of columns (u8), their IDs and, from an offset that depends on the
  module's version and header (DATA_LAYOUTS; version 0 with the old header unconfirmed), packed little-endian
  records laid out by the IDs. IDs 1, 2, 3, 21, 31, 65 are flags packed into one byte where the first of them
  stands; its two low bits are the mode.
- Column IDs (COLUMNS): galvani's and yadg's tables by their full 16-bit ID; an ID not in the table is its low
  byte's column (yadg reads every ID modulo 256: EC-Lab ≥ 11.50 sets the high byte of some, e.g. 0x0127 for
  ``I Range``). Where galvani and yadg disagree, the .mpt export of the same file decided: ``Q charge/discharge``
  (211) is in mA·h (galvani), not C (yadg); unconfirmed, for want of a file: 242 ``|Ece h2|`` (yadg; galvani
  ``|E2|``), 441 ``<Ecv>`` (galvani; its low byte is yadg's ``<Ece>``). None of them is a column labctl imports.
- Settings: technique ID at byte 0 (TECHNIQUES, yadg), comments at 0x07 (a Pascal string), the electrode area at
  0x211 (f4, cm², as the .mpt export's ``Electrode surface area``). LOG: channel (u8, counted from 0) at 0x09,
  EC-Lab version at 0x3B7 and device serial at 0x3CF (Pascal strings; yadg), the acquisition start as an OLE date at
  465, 469, 473 or 585 (galvani; 585 in every fixture) in the instrument PC's local time.
- .mpt (galvani ``MPTfile``, impedance.py ``readBioLogic``, batterydf ``biologic_mpt``): first line ``EC-Lab ASCII
  FILE`` or ``BT-Lab ASCII FILE``, second ``Nb header lines : N`` (N counts every line up to and including the column
  names), tab-separated values under headers that carry their unit (``time/s``, ``<I>/mA``, ``(Q-Qo)/mA.h``; OCV
  and CP write ``<Ewe/V>``), decimal commas in some locales, Windows-1252 text (``µF``, ``cm²``), the 4th line names
  the technique, ``Acquisition started on : mm/dd/yyyy hh:mm:ss.fff``.
- EC-Lab's own export rules, confirmed on the fixtures' .mpr/.mpt pairs: a record without a current column is
  exported with ``<I>`` = dq over the time since the previous record (0 for the first); ``Q charge`` and
  ``Q discharge`` are ``Q charge/discharge`` where it is positive and negative; rests are mode 3 without current;
  Re(Z) and −Im(Z) of a record with only |Z| and Phase(Z) (a Modulo Bat's impedance) are |Z|·e^(j·phase) (confirmed
  on galvani's ``v1150_MB.mpt``, not kept: 686 kB; the tests check the .mpr against galvani's |Z| and phase).

Choices:

- Current: EC-Lab's sign is kept. Positive is anodic (oxidation) at the working electrode, which charges a cell
  whose positive electrode is the WE (the usual wiring), i.e. BDF's sign for it; a Li|SE|Li symmetric cell has no
  charge or discharge and the sign says which electrode strips. ``labctl import --invert-current`` flips it.
- The time series holds the rows that are not impedance points, with TIME, VOLTAGE, CURRENT and what the file gives
  of CYCLE (``cycle number``), STEP (``Ns``, the technique's sequence), the capacities (made cumulative, as BDF
  counts them: see :func:`cumulative`) and UNIX_TIME (the start plus ``time/s``).
- Impedance points are the rows with ``freq/Hz`` > 0, Z'' = −(−Im(Z)). A spectrum is a run of consecutive such rows
  of one ``cycle number`` and ``Ns`` whose frequency keeps going one way: a new one starts after other rows, where
  either changes, or where the frequency turns back (``z cycle`` is no guide: a Modulo Bat fixture resets it in the
  middle of a sweep).
- Times without a zone (the OLE start, the .mpt's start) are local time of this computer, as elsewhere in labctl.
- An unknown column ID whose low byte is unknown too is skipped when it is the only one, its size being what the
  record has left; more than one, and the records cannot be decoded: refused by ID.

The helpers every reader shares (``expect_file``, ``decoded``, ``ole_datetime``, ``counts``, ``cumulative``) are in
:mod:`labctl.imports.imported`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labctl.bdf_columns import CHARGE_CAPACITY, CURRENT, CYCLE, DISCHARGE_CAPACITY, STEP, TIME, UNIX_TIME, VOLTAGE
from labctl.imports.imported import (
    FormatError,
    Imported,
    ImportedSpectrum,
    check_series,
    counts,
    cumulative,
    decoded,
    expect_file,
    ole_datetime,
    split_unit,
    to_si,
)

MAGIC = b"BIO-LOGIC MODULAR FILE\x1a".ljust(48) + b"\0" * 4
MODULE = b"MODULE"
HEADER_V1 = np.dtype([("short", "S10"), ("long", "S25"), ("length", "<u4"), ("version", "<u4"), ("date", "S8")])
HEADER_V2 = np.dtype([("short", "S10"), ("long", "S25"), ("max_length", "<u4"), ("length", "<u4"),
                      ("version", "<u4"), ("kind", "<u4"), ("date", "S8")])
NEW_HEADER_MARK = b"\xff" * 4  # the maximum length EC-Lab >= 11.50 writes where the old header has the length
SETTINGS, DATA, LOG = "VMP Set", "VMP data", "VMP LOG"
# (EC-Lab >= 11.50 header, data module version) -> type of the column IDs, offset of the first record
DATA_LAYOUTS = {(False, 0): ("u1", 100), (False, 2): ("<u2", 405), (False, 3): ("<u2", 406), (True, 0): (">u2", 1007)}
FLAG_IDS = frozenset({1, 2, 3, 21, 31, 65})
FLAGS, MODE_MASK, REST_MODE = "flags", 0x03, 3
# column ID -> the header EC-Lab's export writes for it, its type in the .mpr record
COLUMNS: dict[int, tuple[str, str]] = {
    4: ("time/s", "<f8"), 5: ("control/V/mA", "<f4"), 6: ("Ewe/V", "<f4"), 7: ("dq/mA.h", "<f8"),
    8: ("I/mA", "<f4"), 9: ("Ece/V", "<f4"), 11: ("<I>/mA", "<f8"), 13: ("(Q-Qo)/mA.h", "<f8"),
    15: ("Phase(Z1)/deg", "<f4"), 16: ("Analog IN 1/V", "<f4"), 17: ("Analog IN 2/V", "<f4"),
    19: ("control/V", "<f4"), 20: ("control/mA", "<f4"), 23: ("dQ/mA.h", "<f8"), 24: ("cycle number", "<f8"),
    26: ("Rapp/Ohm", "<f4"), 27: ("Ewe-Ece/V", "<f4"), 32: ("freq/Hz", "<f4"), 33: ("|Ewe|/V", "<f4"),
    34: ("|I|/A", "<f4"), 35: ("Phase(Z)/deg", "<f4"), 36: ("|Z|/Ohm", "<f4"), 37: ("Re(Z)/Ohm", "<f4"),
    38: ("-Im(Z)/Ohm", "<f4"), 39: ("I Range", "<u2"), 45: ("|Z1|/Ohm", "<f4"), 46: ("|Z2|/Ohm", "<f4"),
    69: ("R/Ohm", "<f4"), 70: ("P/W", "<f4"), 74: ("|Energy|/W.h", "<f8"), 75: ("Analog OUT/V", "<f4"),
    76: ("<I>/mA", "<f4"), 77: ("<Ewe>/V", "<f4"), 78: ("Cs-2/µF-2", "<f4"), 96: ("|Ece|/V", "<f4"),
    98: ("Phase(Zce)/deg", "<f4"), 99: ("|Zce|/Ohm", "<f4"), 100: ("Re(Zce)/Ohm", "<f4"),
    101: ("-Im(Zce)/Ohm", "<f4"), 105: ("-Im(Z1)/Ohm", "<f4"), 106: ("-Im(Z2)/Ohm", "<f4"),
    110: ("Energy ce/W.h", "<f8"), 112: ("Energy we/W.h", "<f8"), 115: ("Energy ce charge/W.h", "<f8"),
    116: ("Energy ce discharge/W.h", "<f8"), 123: ("Energy charge/W.h", "<f8"), 124: ("Energy discharge/W.h", "<f8"),
    125: ("Capacitance charge/µF", "<f8"), 126: ("Capacitance discharge/µF", "<f8"), 131: ("Ns", "<u2"),
    135: ("<E1>/V", "<f4"), 136: ("<E2>/V", "<f4"), 163: ("|Estack|/V", "<f4"), 166: ("Phase(Zstack)/deg", "<f4"),
    167: ("|Zstack|/Ohm", "<f4"), 168: ("Rcmp/Ohm", "<f4"), 169: ("Cs/µF", "<f4"), 172: ("Cp/µF", "<f4"),
    173: ("Cp-2/µF-2", "<f4"), 174: ("<Ewe>/V", "<f4"), 175: ("|Zwe-ce|/Ohm", "<f4"), 176: ("Re(Zwe-ce)/Ohm", "<f4"),
    177: ("-Im(Zwe-ce)/Ohm", "<f4"), 178: ("(Q-Qo)/C", "<f4"), 179: ("dQ/C", "<f4"), 182: ("step time/s", "<f8"),
    185: ("<Ece>/V", "<f4"), 206: ("Temperature/°C", "<f4"), 211: ("Q charge/discharge/mA.h", "<f8"),
    212: ("half cycle", "<u4"), 213: ("z cycle", "<u4"), 215: ("<Ece>/V", "<f4"), 217: ("THD Ewe/%", "<f4"),
    218: ("THD I/%", "<f4"), 219: ("THD Ece/%", "<f4"), 220: ("NSD Ewe/%", "<f4"), 221: ("NSD I/%", "<f4"),
    222: ("NSD Ece/%", "<f4"), 223: ("NSR Ewe/%", "<f4"), 224: ("NSR I/%", "<f4"), 225: ("NSR Ece/%", "<f4"),
    230: ("|Ewe h2|/V", "<f4"), 231: ("|Ewe h3|/V", "<f4"), 232: ("|Ewe h4|/V", "<f4"), 233: ("|Ewe h5|/V", "<f4"),
    234: ("|Ewe h6|/V", "<f4"), 235: ("|Ewe h7|/V", "<f4"), 236: ("|I h2|/A", "<f4"), 237: ("|I h3|/A", "<f4"),
    238: ("|I h4|/A", "<f4"), 239: ("|I h5|/A", "<f4"), 240: ("|I h6|/A", "<f4"), 241: ("|I h7|/A", "<f4"),
    242: ("|Ece h2|/V", "<f4"), 243: ("|Ece h3|/V", "<f4"), 244: ("|Ece h4|/V", "<f4"), 245: ("|Ece h5|/V", "<f4"),
    246: ("|Ece h6|/V", "<f4"), 247: ("|Ece h7|/V", "<f4"), 248: ("Rac/Ohm", "<f4"), 249: ("Rdc/Ohm", "<f4"),
    253: ("Acir/Dcir Control", "u1"),
    # IDs >= 256 that are not their low byte's column (galvani)
    272: ("Phase(Z2)/deg", "<f4"), 331: ("Re(Z1)/Ohm", "<f4"), 332: ("Re(Z2)/Ohm", "<f4"),
    424: ("Re(Zstack)/Ohm", "<f4"), 425: ("-Im(Zstack)/Ohm", "<f4"), 426: ("<Estack>/V", "<f4"),
    430: ("Phase(Zwe-ce)/deg", "<f4"), 441: ("<Ecv>/V", "<f4"), 498: ("Q charge/mA.h", "<f8"),
    499: ("Q discharge/mA.h", "<f8"), 500: ("step time/s", "<f8"), 501: ("Efficiency/%", "<f8"),
    502: ("Capacity/mA.h", "<f8"),
}  # fmt: skip
TECHNIQUES = {4: "GCPL", 6: "CV", 11: "OCV", 22: "MP", 24: "CA", 25: "CP", 28: "WAIT", 29: "PEIS", 30: "GEIS",
              48: "CV", 50: "ZIR", 51: "CVA", 108: "LSV", 117: "coV", 118: "coC", 119: "GCPL", 127: "MB", 136: "BCD"}
SETTINGS_FIELDS = {"technique": 0x00, "comments": 0x07, "electrode_area": 0x211}
LOG_FIELDS = {"channel": 0x09, "ec_lab_version": 0x3B7, "device_serial": 0x3CF}
OLE_OFFSETS = (465, 469, 473, 585)
PLAUSIBLE_OLE_DAYS = (35_000.0, 73_051.0)  # 1995-10 .. 2100: what a LOG offset holds when it holds the start

MPT_MAGIC = ("EC-Lab ASCII FILE", "BT-Lab ASCII FILE")
HEADER_COUNT = re.compile(r"^Nb header lines\s*:\s*(\d+)\s*$")
FIELD = re.compile(r"^(?P<key>[^\t:]*?\S)\s+:\s?(?P<value>.*?)\s*$")  # "Key : value"; settings tables have no " : "
HEADER_SPELLINGS = {"<Ewe/V>": "<Ewe>/V"}  # a unit inside the brackets (OCV, CP exports) -> the usual spelling
STARTED, AREA, DEVICE, CHANNEL = "Acquisition started on", "Electrode surface area", "Device", "Run on channel"
MPT_TIME_FORMATS = ("%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S")
SOFTWARE = re.compile(r"^(?P<name>[\w-]+) for windows v(?P<version>\S+) \(software\)")
DEVICE_SERIAL = re.compile(r"^(?P<model>.*?)\s*\(SN (?P<serial>[^)]*)\)")
AREA_VALUE = re.compile(r"^(?P<value>[-+\d.,Ee]+)\s*cm(?:²|2)$")

# BDF column <- the names (headers without their unit) that carry it, the first found taken; its dimension
SERIES: dict[str, tuple[tuple[str, ...], str | None]] = {
    TIME: (("time",), "time"), VOLTAGE: (("Ewe", "<Ewe>", "Ecell"), "voltage"), CURRENT: (("I", "<I>"), "current"),
    CYCLE: (("cycle number",), None), STEP: (("Ns",), None),
    CHARGE_CAPACITY: (("Q charge",), "charge"), DISCHARGE_CAPACITY: (("Q discharge",), "charge"),
}  # fmt: skip
DQ, Q_BOTH, MODE = "dq", "Q charge/discharge", "mode"
FREQUENCY, RE_Z, MINUS_IM_Z, ABS_Z, PHASE_Z = "freq", "Re(Z)", "-Im(Z)", "|Z|", "Phase(Z)"
SPECTRUM_KEYS = ("cycle number", "Ns")  # a new spectrum where one of them changes
SECONDS_PER_HOUR = 3600.0
SIGN_NOTE = ("current as EC-Lab writes it: positive is anodic at the working electrode (charging when the cell's "
             "positive electrode is the WE); --invert-current flips it")


@dataclass(frozen=True)
class _Module:
    name: str
    version: int
    new_header: bool  # EC-Lab >= 11.50
    date: str
    data: bytes


def read_mpr(path: Path | str) -> Imported:
    """An EC-Lab ``.mpr`` file (module docstring); FormatError naming the file and what was expected."""
    path = expect_file(path, (".mpr",), "an EC-Lab .mpr file")
    raw = path.read_bytes()
    if not raw.startswith(MAGIC):
        raise FormatError(f"{path}: not an EC-Lab .mpr file: it does not start with 'BIO-LOGIC MODULAR FILE'")
    modules = _modules(raw, path)
    settings, data = _module(modules, SETTINGS, path), _module(modules, DATA, path)
    log = next((m for m in modules if m.name == LOG), None)
    notes: list[str] = []
    table, ids = _records(data, path, notes)
    header = {"modules": [{"name": m.name, "version": m.version, "date": m.date} for m in modules],
              "column_ids": ids, "columns": list(table), **_settings(settings.data, path)}
    area = header.pop("electrode_area")
    instrument = {"make": "BioLogic"}
    started = None
    if log is not None:
        fields = _log(log.data)
        header.update(fields)
        instrument.update(_instrument_of_log(fields))
        started = _log_start(log.data)
    return _imported(table, path, "eclab-mpr", instrument=instrument, header=header, started_at=started,
                     area_cm2=area if area and area > 0 else None, notes=notes)


def read_mpt(path: Path | str) -> Imported:
    """An EC-Lab ``.mpt`` text export (module docstring); FormatError naming the file and what was expected."""
    path = expect_file(path, (".mpt", ".txt"), "an EC-Lab text export (.mpt)")
    lines = decoded(path.read_bytes()).splitlines()
    if lines[0].strip() not in MPT_MAGIC:
        raise FormatError(f"{path}: not an EC-Lab text export: its first line is {lines[0][:40]!r}, not "
                          f"{MPT_MAGIC[0]!r}")
    m = HEADER_COUNT.match(lines[1]) if len(lines) > 1 else None
    if m is None:
        raise FormatError(f"{path}: no 'Nb header lines : N' on its second line, as EC-Lab writes it")
    count = int(m[1])
    if not 3 <= count <= len(lines):
        raise FormatError(f"{path}: it says {count} header lines but has {len(lines)} lines (truncated?)")
    header_lines = lines[: count - 1]
    headers = [HEADER_SPELLINGS.get(h.strip(), h.strip()) for h in lines[count - 1].rstrip("\t").split("\t")]
    table = _text_columns(lines[count:], headers, path, first_line=count + 1)
    fields = _fields(header_lines)
    notes: list[str] = []
    header = {"technique": header_lines[3].strip() if len(header_lines) > 3 else None, "fields": fields,
              "lines": header_lines, "columns": headers}
    return _imported(table, path, "eclab-mpt", instrument=_instrument_of_fields(fields, header_lines), header=header,
                     started_at=_mpt_start(fields, notes), area_cm2=_mpt_area(fields, notes), notes=notes)


def _modules(raw: bytes, source: Path) -> list[_Module]:
    modules = []
    position = len(MAGIC)
    while position < len(raw):
        if raw[position:position + len(MODULE)] != MODULE:
            raise FormatError(f"{source}: corrupt .mpr: expected a module at byte {position}")
        position += len(MODULE)
        new_header = raw[position + 35:position + 39] == NEW_HEADER_MARK
        dtype = HEADER_V2 if new_header else HEADER_V1
        if position + dtype.itemsize > len(raw):
            raise FormatError(f"{source}: truncated .mpr: it ends inside a module header")
        fields = np.frombuffer(raw, dtype, count=1, offset=position)[0]
        position += dtype.itemsize
        end = position + int(fields["length"])
        name = _text(fields["short"]).strip()
        if end > len(raw):
            raise FormatError(f"{source}: truncated .mpr: module {name!r} has {len(raw) - position} of its "
                              f"{end - position} bytes")
        modules.append(_Module(name, int(fields["version"]), new_header, _text(fields["date"]), raw[position:end]))
        position = end
    return modules


def _module(modules: list[_Module], name: str, source: Path) -> _Module:
    found = [m for m in modules if m.name == name]
    if len(found) != 1:
        raise FormatError(f"{source}: an .mpr has one {name!r} module; this one has {len(found)}")
    return found[0]


def _records(module: _Module, source: Path, notes: list[str]) -> tuple[dict[str, np.ndarray], list[int]]:
    """The data module's columns by their export header (flags as ``mode``), and the column IDs."""
    layout = DATA_LAYOUTS.get((module.new_header, module.version))
    if layout is None:
        raise FormatError(f"{source}: data module version {module.version} is not one labctl reads (0, 2, 3)")
    id_type, offset = layout
    data = module.data
    try:
        count, n_columns = struct.unpack_from("<IB", data)
        ids = [int(i) for i in np.frombuffer(data, id_type, count=n_columns, offset=5)]
    except (struct.error, ValueError):
        raise FormatError(f"{source}: truncated .mpr: its data module ends inside its column list") from None
    if count == 0:
        raise FormatError(f"{source}: no data rows")
    record_size, left = divmod(len(data) - offset, count)
    if left or record_size <= 0:
        raise FormatError(f"{source}: its data module holds {len(data) - offset} bytes of records, not {count} "
                          "records of one size (truncated or corrupt)")
    fields = _fields_of(ids, record_size, source, notes)
    records = np.frombuffer(data, np.dtype([(f"c{i}", t) for i, (_, t) in enumerate(fields)]), count=count,
                            offset=offset)
    table: dict[str, np.ndarray] = {}
    for i, (header, _) in enumerate(fields):
        if header == FLAGS:
            table[MODE] = records[f"c{i}"] & MODE_MASK
        elif header is not None:
            table.setdefault(header, records[f"c{i}"])
    return table, ids


def _fields_of(ids: list[int], record_size: int, source: Path, notes: list[str]) -> list[tuple[str | None, str]]:
    """(header, numpy type) of each field of a record; an unknown column's size is what the record leaves."""
    fields: list[tuple[str | None, str | None]] = []
    unknown = []
    for cid in ids:
        if cid in FLAG_IDS:
            if (FLAGS, "u1") not in fields:
                fields.append((FLAGS, "u1"))
        elif cid in COLUMNS or cid & 0xFF in COLUMNS:
            fields.append(COLUMNS.get(cid) or COLUMNS[cid & 0xFF])
        else:
            unknown.append(cid)
            fields.append((None, None))
    left = record_size - sum(np.dtype(t).itemsize for _, t in fields if t)
    if not unknown and left:
        raise FormatError(f"{source}: its records are {record_size} bytes but its columns (IDs {ids}) make "
                          f"{record_size - left}: corrupt, or a column labctl knows at another size")
    if len(unknown) > 1 or (unknown and left <= 0):
        raise FormatError(f"{source}: column IDs {unknown} are unknown to labctl and the size of their values cannot "
                          "be told, so its records cannot be decoded; export it as .mpt in EC-Lab and import that")
    if unknown:
        notes.append(f"column ID {unknown[0]} is unknown to labctl: its {left} bytes per record were skipped")
    return [(h, t or f"V{left}") for h, t in fields]


def _settings(data: bytes, source: Path) -> dict[str, Any]:
    if len(data) < SETTINGS_FIELDS["electrode_area"] + 4:
        raise FormatError(f"{source}: corrupt .mpr: its settings module has only {len(data)} bytes")
    technique = data[SETTINGS_FIELDS["technique"]]
    (area,) = struct.unpack_from("<f", data, SETTINGS_FIELDS["electrode_area"])
    return {"technique": TECHNIQUES.get(technique, technique), "comments": _pascal(data, SETTINGS_FIELDS["comments"]),
            "electrode_area": float(area)}


def _log(data: bytes) -> dict[str, Any]:
    if len(data) <= LOG_FIELDS["device_serial"]:
        return {}
    return {"channel": data[LOG_FIELDS["channel"]] + 1, "ec_lab_version": _pascal(data, LOG_FIELDS["ec_lab_version"]),
            "device_serial": _pascal(data, LOG_FIELDS["device_serial"])}


def _instrument_of_log(fields: dict[str, Any]) -> dict[str, str]:
    instrument = {"serial": fields.get("device_serial"), "channel": str(fields.get("channel", "")),
                  "software_version": fields.get("ec_lab_version")}  # EC-Lab's or BT-Lab's: the LOG does not say
    return {k: v for k, v in instrument.items() if v}


def _log_start(data: bytes) -> datetime | None:
    for offset in OLE_OFFSETS:
        if offset + 8 <= len(data):
            (days,) = struct.unpack_from("<d", data, offset)
            if PLAUSIBLE_OLE_DAYS[0] < days < PLAUSIBLE_OLE_DAYS[1]:
                return ole_datetime(days)
    return None


def _pascal(data: bytes, offset: int) -> str:
    return _text(data[offset + 1:offset + 1 + data[offset]])


def _text(raw: bytes) -> str:
    return raw.decode("cp1252", errors="replace").rstrip("\0")


def _text_columns(lines: list[str], headers: list[str], source: Path, first_line: int) -> dict[str, Sequence[str]]:
    rows = []
    for number, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        cells = line.rstrip("\t").replace(",", ".").split("\t")  # decimal commas: EC-Lab separates by tabs
        if len(cells) != len(headers):
            raise FormatError(f"{source}: line {number} has {len(cells)} values for its {len(headers)} columns "
                              "(truncated or edited?)")
        rows.append(cells)
    if not rows:
        raise FormatError(f"{source}: no data rows")
    table: dict[str, Sequence[str]] = {}
    for header, column in zip(headers, zip(*rows, strict=True), strict=True):
        table.setdefault(header, column)
    return table


def _fields(lines: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in lines:
        m = FIELD.match(line)
        if m:
            fields.setdefault(m["key"].strip(), m["value"])
    return fields


def _instrument_of_fields(fields: dict[str, str], lines: list[str]) -> dict[str, str]:
    instrument = {"make": "BioLogic"}
    device = DEVICE_SERIAL.match(fields.get(DEVICE, ""))
    if device:
        instrument.update(model=device["model"], serial=device["serial"])
    elif fields.get(DEVICE):
        instrument["model"] = fields[DEVICE]
    if fields.get(CHANNEL):
        instrument["channel"] = fields[CHANNEL].split()[0]
    software = next((m for m in map(SOFTWARE.match, lines) if m), None)
    if software:
        instrument["software"] = f"{software['name']} {software['version']}"
    return instrument


def _mpt_start(fields: dict[str, str], notes: list[str]) -> datetime | None:
    text = fields.get(STARTED)
    if not text:
        return None
    for fmt in MPT_TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).astimezone()
        except ValueError:
            continue
    notes.append(f"start time {text!r} not understood (expected mm/dd/yyyy hh:mm:ss); no Unix times")
    return None


def _mpt_area(fields: dict[str, str], notes: list[str]) -> float | None:
    text = fields.get(AREA)
    if not text:
        return None
    m = AREA_VALUE.match(text)
    if m is None:
        notes.append(f"electrode area {text!r} not understood (expected a number in cm²); not taken")
        return None
    area = float(m["value"].replace(",", "."))
    return area if area > 0 else None


def _imported(table: dict[str, Any], source: Path, fmt: str, *, instrument: dict[str, str], header: dict[str, Any],
              started_at: datetime | None, area_cm2: float | None, notes: list[str]) -> Imported:
    names = {split_unit(h)[0]: h for h in reversed(list(table))}  # a name's first column wins
    impedance = _impedance_rows(table, names, source)
    series = None
    if not impedance.all():
        series = _series(table, names, ~impedance, started_at, source, notes)
        notes.append(SIGN_NOTE)
    spectra = _spectra(table, names, impedance, source) if impedance.any() else []
    return Imported(source=source, format=fmt, instrument=instrument, header=header, series=series, spectra=spectra,
                    started_at=started_at, area_cm2=area_cm2, notes=notes)


def _impedance_rows(table: dict[str, Any], names: dict[str, str], source: Path) -> np.ndarray:
    rows = len(next(iter(table.values())))
    if FREQUENCY not in names:
        return np.zeros(rows, dtype=bool)
    return _si(table, names, FREQUENCY, "frequency", source) > 0


def _si(table: dict[str, Any], names: dict[str, str], name: str, dimension: str, source: Path) -> np.ndarray:
    return to_si(np.asarray(table[names[name]]), names[name], dimension, source=source)


def _series(table: dict[str, Any], names: dict[str, str], rows: np.ndarray, started_at: datetime | None,
            source: Path, notes: list[str]) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {}
    for column, (candidates, dimension) in SERIES.items():
        name = next((n for n in candidates if n in names), None)
        if name is None:
            continue
        columns[column] = (_si(table, names, name, dimension, source) if dimension else
                           counts(table[names[name]], names[name], source))
    if CURRENT not in columns and TIME in columns:
        current = _current_without_column(table, names, columns[TIME], rows, source, notes)
        if current is not None:
            columns[CURRENT] = current
    if CHARGE_CAPACITY not in columns and Q_BOTH in names:
        q = _si(table, names, Q_BOTH, "charge", source)
        columns[CHARGE_CAPACITY], columns[DISCHARGE_CAPACITY] = np.maximum(q, 0.0), np.maximum(-q, 0.0)
    frame = pd.DataFrame({c: columns[c][rows] for c in SERIES if c in columns})
    for counter in (CHARGE_CAPACITY, DISCHARGE_CAPACITY):
        if counter in frame:
            frame[counter] = cumulative(frame[counter].to_numpy())
    if started_at is not None and TIME in frame:
        frame[UNIX_TIME] = started_at.timestamp() + frame[TIME]
    return check_series(frame, source)


def _current_without_column(table: dict[str, Any], names: dict[str, str], time_s: np.ndarray, rows: np.ndarray,
                            source: Path, notes: list[str]) -> np.ndarray | None:
    """EC-Lab's export rules for a record without current (module docstring), None where neither applies."""
    if DQ in names:
        dq = _si(table, names, DQ, "charge", source) * SECONDS_PER_HOUR
        dt = np.diff(time_s, prepend=time_s[0])
        notes.append("no current column: the current is dq over each record's interval, as EC-Lab's export has it")
        return np.divide(dq, dt, out=np.zeros_like(dq), where=dt > 0)
    if MODE in names and (counts(table[names[MODE]], names[MODE], source)[rows] == REST_MODE).all():
        notes.append("no current column and every record at rest (mode 3): current 0")
        return np.zeros(len(time_s))
    return None


def _impedance(table: dict[str, Any], names: dict[str, str], source: Path) -> np.ndarray:
    """Z = Re(Z) − j·(−Im(Z)); from |Z| and Phase(Z) where a record has only those, as EC-Lab's export does."""
    if RE_Z in names and MINUS_IM_Z in names:
        return _si(table, names, RE_Z, "impedance", source) - 1j * _si(table, names, MINUS_IM_Z, "impedance", source)
    if ABS_Z in names and PHASE_Z in names:
        return _si(table, names, ABS_Z, "impedance", source) * np.exp(1j * _si(table, names, PHASE_Z, "angle", source))
    raise FormatError(f"{source}: impedance rows (freq/Hz > 0) but neither Re(Z) and -Im(Z) nor |Z| and Phase(Z)")


def _spectra(table: dict[str, Any], names: dict[str, str], rows: np.ndarray, source: Path) -> list[ImportedSpectrum]:
    frequency = _si(table, names, FREQUENCY, "frequency", source)
    z = _impedance(table, names, source)
    time_s = _si(table, names, "time", "time", source) if "time" in names else np.zeros(len(frequency))
    keys = {k: counts(table[names[k]], names[k], source) for k in SPECTRUM_KEYS if k in names}
    index = np.flatnonzero(rows)
    bounds = [*np.flatnonzero(_sweep_starts(index, frequency, keys.values())), len(index)]
    spectra = []
    for number, (start, end) in enumerate(pairwise(bounds), start=1):
        points = index[start:end]
        first = points[0]
        spectra.append(ImportedSpectrum(
            index=number, test_time_s=float(time_s[first]),
            points=[(float(frequency[i]), complex(z[i])) for i in points],
            cycle=int(keys["cycle number"][first]) if "cycle number" in keys else 0,
            step=int(keys["Ns"][first]) if "Ns" in keys else 0))
    return spectra


def _sweep_starts(index: np.ndarray, frequency: np.ndarray, keys: Iterable[np.ndarray]) -> np.ndarray:
    """Which impedance rows (``index``) start a spectrum: after other rows, where a key changes, where the frequency
    turns back."""
    new = np.ones(len(index), dtype=bool)
    new[1:] = np.diff(index) > 1
    for key in keys:
        new[1:] |= key[index[1:]] != key[index[:-1]]
    direction = 0.0
    for k in range(1, len(index)):
        step = np.sign(frequency[index[k]] - frequency[index[k - 1]])
        if new[k]:
            direction = 0.0
        elif direction == 0.0:
            direction = step
        elif step == -direction:
            new[k], direction = True, 0.0
    return new
