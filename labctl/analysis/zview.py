"""Spectra as ZPlot/ZView ``.z`` text files (Scribner's ZPlot "ZPLOT2 ASCII" layout), written and read.

The file labctl writes::

    ZPLOT2 ASCII
      Measured Data, labctl:      0.1.0
      Experiment Type:            Sweep Frequency, Control Voltage
      Date:                       11-22-2026            (MM-DD-YYYY, as ZPlot writes it)
      Time:                       14:05:09
      ...                         (DC and AC potential in mV, sweep limits, electrode area in cm²)
      Data Points:                61
      Freq(Hz)<TAB>Ampl<TAB>Bias<TAB>Time(Sec)<TAB>Z'(a)<TAB>Z''(b)<TAB>GD<TAB>Err<TAB>Range
    End Comments
    1.000000E+06<TAB>1.0000E-02<TAB>0.0000E+00<TAB>0.000000E+00<TAB>5.0250324E+01<TAB>-1.2183436E+00<TAB>...

One tab-separated row per point after the ``End Comments`` line, in the order measured, with the nine columns
ZPlot writes: frequency (Hz), AC amplitude (V rms), DC bias (V), time since the sweep started (s), Z' and Z''
(ohm, Z'' negative for capacitive arcs), GD (group delay, written 0), Err (error flag, 0) and Range (current
range, 0). Z' and Z'' carry eight significant digits where ZPlot writes five, so a round trip keeps the values.
:func:`write_z` uses CR LF line ends as the Windows programs do; the reader takes either line end, and also the
older comma-separated ZPlot layout whose data start after the quoted ``Freq(Hz) …`` header.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from labctl import __version__
from labctl.bdf_columns import FREQUENCY
from labctl.bdf_columns import IMAGINARY_IMPEDANCE as IMAGINARY
from labctl.bdf_columns import REAL_IMPEDANCE as REAL

__all__ = ["format_z", "parse_z", "read_z", "write_z"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

AMPLITUDE, BIAS, SWEEP_TIME = "AC Amplitude / V", "DC Bias / V", "Sweep Time / s"
COLUMNS = ("Freq(Hz)", "Ampl", "Bias", "Time(Sec)", "Z'(a)", "Z''(b)", "GD", "Err", "Range")
_SPLIT = re.compile(r"\t|,\s*")


def format_z(points: Iterable[tuple[float, complex]], *, amplitude_V: float = 0.01, bias_V: float = 0.0,
             times_s: Sequence[float] | None = None, area_cm2: float | None = None,
             started: datetime | None = None) -> str:
    """The ``.z`` text of a spectrum: ``points`` are (frequency Hz, Z ohm) in the order measured, the amplitude
    in V rms, the DC bias in V, ``times_s`` the time of each point since the sweep started (0 when not given),
    ``started`` the date and time for the header (now when not given)."""
    points = [(float(f), complex(z)) for f, z in points]
    if not points:
        raise ValueError("no points to write; a .z file needs at least one (frequency, impedance) point")
    times = [0.0] * len(points) if times_s is None else [float(t) for t in times_s]
    if len(times) != len(points):
        raise ValueError(f"times_s has {len(times)} values for {len(points)} points; give one time per point")
    started = started or datetime.now()
    header = [
        "ZPLOT2 ASCII",
        f"  Measured Data, labctl:      {__version__}",
        "  Experiment Type:            Sweep Frequency, Control Voltage",
        f"  Date:                       {started:%m-%d-%Y}",
        f"  Time:                       {started:%H:%M:%S}",
        "  Begin Experiment:           0",
        f"    Potential-DC:             {1000 * bias_V:g}",
        f"    Potential-AC:             {1000 * amplitude_V:g}",
        f"    vs Freq-Initial:          {points[0][0]:g}",
        f"    vs Freq-Final:            {points[-1][0]:g}",
        "  End Experiment:             0",
        "  Begin Information:          Cell Information",
        f"    Surface Area:             {area_cm2 if area_cm2 is not None else 1:g}",
        "  End Information:            Cell Information",
        f"  Data Points:                {len(points)}",
        "  " + "\t".join(COLUMNS),
        "End Comments",
    ]  # fmt: skip
    rows = [f"{f:.6E}\t{amplitude_V:.4E}\t{bias_V:.4E}\t{t:.6E}\t{z.real:.7E}\t{z.imag:.7E}\t{0:.4E}\t0\t0"
            for (f, z), t in zip(points, times, strict=True)]
    return "\n".join(header + rows) + "\n"


def write_z(path: str | Path, points: Iterable[tuple[float, complex]], **header) -> Path:
    """Write :func:`format_z` of ``points`` to ``path`` with CR LF line ends; returns the path."""
    path = Path(path)
    with path.open("w", encoding="ascii", newline="\r\n") as out:
        out.write(format_z(points, **header))
    log.info("wrote %s", path)
    return path


def read_z(path: str | Path) -> pd.DataFrame:
    """Read a ZPlot/ZView ``.z`` file: see :func:`parse_z`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give the path of a ZPlot/ZView .z file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")  # older ZPlot files carry Windows-1252 comments
    return parse_z(text, str(path))


def parse_z(text: str, source: str = "the .z text") -> pd.DataFrame:
    """The spectrum in ``.z`` text as a table with BDF columns ``Frequency / Hz``, ``Real Impedance / ohm``,
    ``Imaginary Impedance / ohm`` and also ``AC Amplitude / V``, ``DC Bias / V``, ``Sweep Time / s``, one row
    per point in file order. Raises ValueError naming the line of a malformed row."""
    lines = text.splitlines()
    start = _data_start(lines, source)
    rows = []
    for number, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        cells = _SPLIT.split(line.strip())
        try:
            values = [float(c) for c in cells[:6]]
        except ValueError:
            values = []
        if len(values) < 6:
            raise ValueError(f"{source} line {number}: expected at least six numbers (Freq(Hz), Ampl, Bias, "
                             f"Time(Sec), Z'(a), Z''(b)), got {line.strip()[:80]!r}")
        rows.append(values)
    if not rows:
        raise ValueError(f"{source} has a header but no data rows")
    data = np.array(rows)
    return pd.DataFrame({FREQUENCY: data[:, 0], REAL: data[:, 4], IMAGINARY: data[:, 5],
                         AMPLITUDE: data[:, 1], BIAS: data[:, 2], SWEEP_TIME: data[:, 3]})


def _data_start(lines: list[str], source: str) -> int:
    """Index of the first data line: after ``End Comments``, else after the ``Freq(Hz)`` column header."""
    for marker in ("End Comments", "Freq(Hz)"):
        for i, line in enumerate(lines):
            if marker in line:
                return i + 1
    raise ValueError(f"{source} is not a ZPlot/ZView .z file: it has neither an 'End Comments' line nor a "
                     "'Freq(Hz)' column header")
