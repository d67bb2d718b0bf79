"""Princeton Applied Research VersaStudio ``.par`` files (VersaSTAT, PARSTAT, PMC) read into labctl's BDF series and
impedance spectra (:func:`read_par`).

Facts from public sources (confirmed on the fixture ``tests/imports/fixtures/versastudio/exampleDataVersaStudio.par``,
impedance.py's example written by VersaStudio 2.52.3.0, unless marked "unconfirmed"):

- Text in sections: a line ``<Name>`` opens one and ``</Name>`` closes it; inside are ``key=value`` lines
  (impedance.py ``preprocessing.readVersaStudio``, ECSHackWeek/impedance.py PR #57; NasuPanda/python-automations
  ``par-parser``: its README, citing the VersaStudio manual, and ``src/models/parser.py``). ``<Application>``
  (Name, Version), ``<Instrument>`` (Type, Model, SN, Firmware), ``<Experiment>``
  (``DateAcquired=Thursday, July 19, 2018``, ``TimeAcquired=9:40:30 AM``), ``<ActionN>`` the experiment's steps
  (Action0, ``Common``, holds ``Working Electrode Area (cm2)``), ``<SegmentN>`` the data: Type, Version,
  ``Definition=`` the columns, then a line of comma-separated values per point. Window-layout sections follow
  (DataView, Graph…, DockingLayout with XML).
- ``Definition=Segment #, Point #, E(V), I(A), Elapsed Time(s), ADC Sync Input(V), Current Range, Status,
  E Applied(V), Frequency(Hz), E Real, E Imag, I Real, I Imag, Z Real, Z Imag, …, AC Amplitude, 0``: units in
  parentheses; the final ``0`` is no column (the rows have one value less); ``Z Real`` and ``Z Imag`` are Z' and Z''
  in ohm (impedance.py), Z'' negative for a capacitive arc.
- VersaStudio can save the data in binary form instead ("Save New Data to Binary File", VersaStudio manual): not
  read; such a segment is refused.

Choices:

- Rows with ``Frequency(Hz)`` > 0 are impedance points, one spectrum per segment (``step`` = the segment's number);
  the other rows, segment after segment, make the series: TIME from ``Elapsed Time``, VOLTAGE from ``E``, CURRENT
  from ``I``. A DC segment (the same Definition, Frequency 0: par-parser's example rows) is unconfirmed on a real
  file; the tests write one.
- Current: as VersaStudio writes it (its sign convention is unconfirmed); ``--invert-current`` flips it.
- The start: DateAcquired and TimeAcquired (English names of day and month), read as local time of this computer;
  UNIX_TIME is the start plus Elapsed Time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labctl.bdf_columns import CURRENT, TIME, UNIX_TIME, VOLTAGE
from labctl.imports.imported import (
    FormatError,
    Imported,
    ImportedSpectrum,
    check_series,
    decoded,
    expect_file,
    split_unit,
    to_si,
)

OPENING = re.compile(r"^<(?P<name>[A-Za-z]\w*)>$")
SEGMENT = re.compile(r"^Segment(?P<number>\d+)$")
HEADER_SECTIONS = ("Application", "Instrument", "Experiment", "Action", "Segment")  # the rest is window layout
DEFINITION = "Definition"
NOT_A_COLUMN = re.compile(r"^\d+$")  # the number that ends a Definition
# BDF column <- VersaStudio's column name, its dimension
SERIES = {TIME: ("Elapsed Time", "time"), VOLTAGE: ("E", "voltage"), CURRENT: ("I", "current")}
FREQUENCY, Z_REAL, Z_IMAG = "Frequency", "Z Real", "Z Imag"
UNWRITTEN_UNITS = {Z_REAL: "Ohm", Z_IMAG: "Ohm"}  # columns VersaStudio names without a unit
APPLICATION, INSTRUMENT, EXPERIMENT = "Application", "Instrument", "Experiment"
INSTRUMENT_FIELDS = {"model": "Type", "variant": "Model", "serial": "SN", "firmware": "Firmware"}
AREA = "Working Electrode Area (cm2)"
DATE, TIME_OF_DAY, START_FORMAT = "DateAcquired", "TimeAcquired", "%A, %B %d, %Y %I:%M:%S %p"
SIGN_NOTE = "current as VersaStudio writes it (its sign convention is unconfirmed); --invert-current flips it"
BINARY_HINT = ("VersaStudio can save data in binary form ('Save New Data to Binary File'); labctl reads the text "
               "form: save the experiment again without that option")


@dataclass
class _Section:
    name: str
    line: int
    fields: dict[str, str] = field(default_factory=dict)
    rows: list[tuple[int, str]] = field(default_factory=list)  # (line number, text) of the lines that are not fields


@dataclass(frozen=True)
class _Segment:
    number: int
    columns: dict[str, tuple[str, np.ndarray]]  # name -> (header with its unit, values as text)


def read_par(path: Path | str) -> Imported:
    """A VersaStudio ``.par`` file (module docstring); FormatError naming the file and what was expected."""
    path = expect_file(path, (".par",), "a VersaStudio .par file")
    sections = _sections(decoded(path.read_bytes()).splitlines(), path)
    segments = [_segment(s, path) for s in sections if SEGMENT.match(s.name) and s.rows]
    if not segments:
        raise FormatError(f"{path}: no <SegmentN> with data rows: a VersaStudio .par holds its data there")
    by_name = {s.name: s.fields for s in sections}
    started = _started(by_name.get(EXPERIMENT, {}))
    notes: list[str] = []
    impedance = [_impedance_rows(s, path) for s in segments]
    series = _series(segments, impedance, started, path) if not all(rows.all() for rows in impedance) else None
    if series is not None:
        notes.append(SIGN_NOTE)
    spectra = [_spectrum(s, rows, k, path) for k, (s, rows) in enumerate(
        ((s, r) for s, r in zip(segments, impedance, strict=True) if r.any()), start=1)]
    header = {s.name: s.fields for s in sections if s.name.startswith(HEADER_SECTIONS)}
    return Imported(source=path, format="versastudio-par", instrument=_instrument(by_name), header=header,
                    series=series, spectra=spectra, started_at=started, area_cm2=_area(sections), notes=notes)


def _sections(lines: list[str], source: Path) -> list[_Section]:
    sections: list[_Section] = []
    current: _Section | None = None
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if current is None:
            if not text:
                continue
            m = OPENING.match(text)
            if m is None:
                raise FormatError(f"{source}: line {number} ({text[:40]!r}) is outside a <Section>: not a "
                                  "VersaStudio .par")
            current = _Section(m["name"], number)
        elif text == f"</{current.name}>":
            sections.append(current)
            current = None
        elif "=" in text and not text.startswith("<"):
            key, value = text.split("=", 1)
            current.fields.setdefault(key, value)
        elif text:
            current.rows.append((number, text))
    if current is not None:
        raise FormatError(f"{source}: <{current.name}> (line {current.line}) is never closed: truncated")
    return sections


def _segment(section: _Section, source: Path) -> _Segment:
    definition = section.fields.get(DEFINITION)
    if definition is None:
        raise FormatError(f"{source}: <{section.name}> has data but no Definition= line naming its columns")
    headers = [h.strip() for h in definition.split(",")]
    if NOT_A_COLUMN.match(headers[-1]):
        headers.pop()
    cells = []
    for number, text in section.rows:
        row = [c.strip() for c in text.split(",")]
        if len(row) != len(headers):
            raise FormatError(f"{source}: line {number} ({section.name}) has {len(row)} values for its "
                              f"{len(headers)} columns; {BINARY_HINT}")
        cells.append(row)
    values = np.array(cells, dtype=object)
    columns: dict[str, tuple[str, np.ndarray]] = {}
    for i, header in enumerate(headers):
        name, unit = split_unit(header)
        if unit is None and name in UNWRITTEN_UNITS:
            header = f"{name}({UNWRITTEN_UNITS[name]})"
        columns.setdefault(name, (header, values[:, i]))
    return _Segment(int(SEGMENT.match(section.name)["number"]), columns)  # type: ignore[index]


def _si(segment: _Segment, name: str, dimension: str, source: Path) -> np.ndarray:
    header, values = segment.columns[name]
    return to_si(values, header, dimension, source=source)


def _impedance_rows(segment: _Segment, source: Path) -> np.ndarray:
    if FREQUENCY not in segment.columns:
        return np.zeros(len(next(iter(segment.columns.values()))[1]), dtype=bool)
    return _si(segment, FREQUENCY, "frequency", source) > 0


def _series(segments: list[_Segment], impedance: list[np.ndarray], started: datetime | None,
            source: Path) -> pd.DataFrame:
    parts = []
    for segment, rows in zip(segments, impedance, strict=True):
        parts.append(pd.DataFrame({column: _si(segment, name, dimension, source)[~rows]
                                   for column, (name, dimension) in SERIES.items() if name in segment.columns}))
    frame = pd.concat(parts, ignore_index=True)
    if started is not None and TIME in frame:
        frame[UNIX_TIME] = started.timestamp() + frame[TIME]
    return check_series(frame, source)


def _spectrum(segment: _Segment, rows: np.ndarray, index: int, source: Path) -> ImportedSpectrum:
    for name in (Z_REAL, Z_IMAG):
        if name not in segment.columns:
            raise FormatError(f"{source}: Segment{segment.number} has frequencies but no {name!r} column")
    frequency = _si(segment, FREQUENCY, "frequency", source)[rows]
    z = (_si(segment, Z_REAL, "impedance", source) + 1j * _si(segment, Z_IMAG, "impedance", source))[rows]
    time_s = _si(segment, SERIES[TIME][0], "time", source)[rows] if SERIES[TIME][0] in segment.columns else [0.0]
    return ImportedSpectrum(index=index, test_time_s=float(time_s[0]), step=segment.number,
                            points=[(float(f), complex(v)) for f, v in zip(frequency, z, strict=True)])


def _started(experiment: dict[str, str]) -> datetime | None:
    if DATE not in experiment or TIME_OF_DAY not in experiment:
        return None
    try:
        return datetime.strptime(f"{experiment[DATE]} {experiment[TIME_OF_DAY]}", START_FORMAT).astimezone()
    except ValueError:
        return None


def _area(sections: list[_Section]) -> float | None:
    text = next((s.fields[AREA] for s in sections if AREA in s.fields), None)
    try:
        area = float(text) if text is not None else 0.0
    except ValueError:
        return None
    return area if area > 0 else None


def _instrument(by_name: dict[str, dict[str, str]]) -> dict[str, Any]:
    fields = by_name.get(INSTRUMENT, {})
    instrument = {"make": "Princeton Applied Research",
                  **{key: fields[name] for key, name in INSTRUMENT_FIELDS.items() if fields.get(name)}}
    application = by_name.get(APPLICATION, {})
    if application.get("Name"):
        instrument["software"] = f"{application['Name']} {application.get('Version', '')}".strip()
    return instrument
