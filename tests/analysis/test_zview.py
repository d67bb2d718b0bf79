"""ZPlot/ZView .z export and import: layout, round trip, and impedance.py's ``readZPlot`` as a second reader."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from impedance.preprocessing import readZPlot

from labctl.analysis.zview import COLUMNS, format_z, parse_z, read_z, write_z

STARTED = datetime(2026, 3, 14, 15, 9, 26)


def points_of(spectra):
    f, z = spectra.named("inductance", noise=0.005)
    return list(zip(f.tolist(), z.tolist(), strict=True))


def test_header_and_rows_as_zplot_writes_them(spectra):
    points = points_of(spectra)
    lines = format_z(points, amplitude_V=0.01, bias_V=0.0, area_cm2=0.785, started=STARTED).splitlines()
    assert lines[0] == "ZPLOT2 ASCII"
    assert "  Date:                       03-14-2026" in lines
    assert "  Time:                       15:09:26" in lines
    assert "    Potential-AC:             10" in lines  # mV
    assert "    Surface Area:             0.785" in lines
    assert "  Data Points:                61" in lines
    end = lines.index("End Comments")
    assert lines[end - 1] == "  Freq(Hz)\tAmpl\tBias\tTime(Sec)\tZ'(a)\tZ''(b)\tGD\tErr\tRange"
    rows = lines[end + 1:]
    assert len(rows) == 61
    cells = rows[0].split("\t")
    assert len(cells) == len(COLUMNS) == 9
    assert cells[0] == "1.000000E+06" and cells[1] == "1.0000E-02" and cells[7:] == ["0", "0"]
    assert float(cells[4]) == pytest.approx(points[0][1].real, rel=1e-7)
    assert float(cells[5]) == pytest.approx(points[0][1].imag, rel=1e-7)


def test_round_trip(spectra, tmp_path):
    points = points_of(spectra)
    times = np.cumsum(np.maximum(3 / np.array([f for f, _ in points]), 0.2)).tolist()
    path = write_z(tmp_path / "spectrum-001.z", points, amplitude_V=0.02, bias_V=0.1, times_s=times,
                   started=STARTED)
    assert path.read_bytes().count(b"\r\n") == len(path.read_bytes().splitlines())  # CR LF throughout
    table = read_z(path)
    f, z = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    np.testing.assert_allclose(table["Frequency / Hz"], f, rtol=1e-6)  # seven significant digits
    np.testing.assert_allclose(table["Real Impedance / ohm"], z.real, rtol=1e-7)
    np.testing.assert_allclose(table["Imaginary Impedance / ohm"], z.imag, rtol=1e-7)
    np.testing.assert_allclose(table["Sweep Time / s"], times, rtol=1e-6)
    assert (table["AC Amplitude / V"] == 0.02).all() and (table["DC Bias / V"] == 0.1).all()


def test_impedance_py_reads_the_export(spectra, tmp_path):
    points = points_of(spectra)
    f, z = readZPlot(str(write_z(tmp_path / "s.z", points)))
    np.testing.assert_allclose(f, [p[0] for p in points], rtol=1e-6)
    np.testing.assert_allclose(z, [p[1] for p in points], rtol=1e-7)


def test_reads_the_older_comma_separated_layout():
    text = ('"ZPlotW Data File: Version 3.2c"\n"Raw Data"\n"Sweep Frequency: Control Voltage"\n'
            '"  Freq(Hz)    Ampl     Bias   Time(Sec)   Z\'(a)    Z\'\'(b)    GD   Err   Range"\n'
            "3.000000E+05, 1.0000E-02, 0.0000E+00, 2.580000E+00, 6.4262E+02, -8.5821E+01, 0.0000E+00, 0, 5\n"
            "2.382985E+05, 1.0000E-02, 0.0000E+00, 3.280000E+00, 6.7477E+02, -1.1931E+02, 0.0000E+00, 0, 5\n")
    table = parse_z(text)
    assert table["Frequency / Hz"].tolist() == [3e5, 2.382985e5]
    assert table["Imaginary Impedance / ohm"].tolist() == [-85.821, -119.31]
    assert table["Sweep Time / s"].tolist() == [2.58, 3.28]


def test_malformed_files(tmp_path):
    with pytest.raises(ValueError, match="not a ZPlot/ZView .z file"):
        parse_z("Frequency,Z'\n1,2\n")
    with pytest.raises(ValueError, match="line 3: expected at least six numbers"):
        parse_z("ZPLOT2 ASCII\nEnd Comments\n1.0\t0.01\t0\t0\tOVERLOAD\t-1\t0\t0\t0\n")
    with pytest.raises(ValueError, match="has a header but no data rows"):
        parse_z("ZPLOT2 ASCII\nEnd Comments\n")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_z(tmp_path / "missing.z")


def test_bad_export_arguments(spectra):
    with pytest.raises(ValueError, match="no points to write"):
        format_z([])
    with pytest.raises(ValueError, match="times_s has 2 values for 61 points"):
        format_z(points_of(spectra), times_s=[0.0, 1.0])
