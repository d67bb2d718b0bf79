"""VersaStudio's .par reader: a real EIS file (fixtures/versastudio/README.md) against impedance.py's reader (the
oracle); a file with a DC segment written here to the documented layout (none is public), its expectations taken
from what is written; damaged and foreign files refused by name."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from impedance.preprocessing import readVersaStudio
from numpy.testing import assert_allclose

from labctl.imports.formats import format_of
from labctl.imports.imported import FormatError
from labctl.imports.versastudio import read_par

REAL = Path(__file__).parent / "fixtures" / "versastudio" / "exampleDataVersaStudio.par"
T, V, A, UNIX = "Test Time / s", "Voltage / V", "Current / A", "Unix Time / s"
DEFINITION = ("Definition=Segment #, Point #, E(V), I(A), Elapsed Time(s), ADC Sync Input(V), Current Range, Status, "
              "E Applied(V), Frequency(Hz), E Real, E Imag, I Real, I Imag, Z Real, Z Imag, E2 Status, E2(V), "
              "E2 Real, E2 Imag, Z2 Real, Z2 Imag, ActionId, AC Amplitude, 0")  # the real file's, final 0 and all


def test_the_real_file_is_impedance_pys_and_its_arc_is_capacitive():
    frequency, z = readVersaStudio(str(REAL))
    imported = read_par(REAL)
    assert imported.format == "versastudio-par" == format_of(REAL).name
    assert imported.series is None and len(imported.spectra) == 1
    spectrum = imported.spectra[0]
    assert_allclose([f for f, _ in spectrum.points], frequency)
    assert_allclose([v for _, v in spectrum.points], z)
    low = np.array([v.imag for f, v in spectrum.points if f < 100])
    assert (low < 0).all()  # Z'' < 0 below 100 Hz: capacitive
    assert spectrum.step == 1 and spectrum.test_time_s == pytest.approx(1.812)
    assert imported.started_at.replace(tzinfo=None) == datetime(2018, 7, 19, 9, 40, 30)
    assert imported.area_cm2 == 1.0
    assert imported.instrument == {"make": "Princeton Applied Research", "model": "VersaSTAT4", "variant": "-400",
                                   "serial": "16334007", "firmware": "2.52,2.52,2.52",
                                   "software": "VersaStudio 2.52.3.0"}
    assert imported.header["Action1"]["Name"] == "Potentiostatic EIS" and "DockingLayout" not in imported.header


def row(segment: int, point: int, e: float, i: float, t: float, f: float = 0.0, zr: float = 0.0, zi: float = 0.0) -> str:
    return f"{segment},{point},{e},{i},{t},0,5,53,0,{f},0,0,0,0,{zr},{zi},0,0,0,0,0,0,{segment + 1},0"


DC = [row(0, k, 3.70 + 0.01 * k, -2.5e-4, 10.0 * k) for k in range(4)]
EIS = [row(1, k, 3.74, 0.0, 40.0 + k, f, zr, zi)
       for k, (f, zr, zi) in enumerate([(1e5, 20.0, 1.5), (1e3, 25.0, -8.0), (10.0, 60.0, -30.0)])]


def par(segments: list[list[str]], definition: str = DEFINITION, end: bool = True) -> str:
    """A VersaStudio file laid out as the real one: application, a Common action with the area, instrument,
    experiment, then the segments."""
    head = ("<Application>\nName=VersaStudio\nVersion=2.60.3.0\n</Application>\n\n<Action0>\n"
            "Working Electrode Area (cm2)=0.785\nName=Common\n</Action0>\n\n<Instrument>\nType=PARSTAT4000A\n"
            "SN=123\n</Instrument>\n\n<Experiment>\nTimeAcquired=2:05:00 PM\nDateAcquired=Monday, March 4, 2024\n"
            "</Experiment>\n")
    body = "".join(f"\n<Segment{k}>\nType=2\nVersion=3\n{definition}\n" + "\n".join(rows) + f"\n</Segment{k}>\n"
                   for k, rows in enumerate(segments, start=1))
    return head + (body if end else body.rsplit("</Segment", 1)[0])


def written(tmp_path: Path, text: str, name: str = "cell.par") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_dc_segment_is_the_series_and_an_eis_segment_a_spectrum(tmp_path):
    imported = read_par(written(tmp_path, par([DC, EIS])))
    series = imported.series
    assert list(series[T]) == [0, 10, 20, 30] and list(series[A]) == [-2.5e-4] * 4
    assert_allclose(series[V], [3.70, 3.71, 3.72, 3.73])
    start = datetime(2024, 3, 4, 14, 5).astimezone()
    assert imported.started_at == start and imported.area_cm2 == 0.785
    assert_allclose(series[UNIX], start.timestamp() + series[T])
    (spectrum,) = imported.spectra
    assert spectrum.step == 2 and spectrum.test_time_s == 40.0
    assert spectrum.points == [(1e5, 20 + 1.5j), (1e3, 25 - 8j), (10.0, 60 - 30j)]
    assert imported.instrument["model"] == "PARSTAT4000A" and any("sign" in n for n in imported.notes)


def test_damaged_and_foreign_files_are_refused_naming_what_was_expected(tmp_path):
    kiloamps = DEFINITION.replace("I(A)", "I(kA)")
    cases = [
        (par([DC, EIS], end=False), r"<Segment2> \(line \d+\) is never closed: truncated"),
        (par([[*DC, "\x00\x13\x9a\x7f"]]), r"line \d+ \(Segment1\) has 1 values for its 24 columns; VersaStudio can "
                                           r"save data in binary form"),
        (par([DC], definition=kiloamps), r"column 'I\(kA\)': unit 'kA' is not one labctl knows for a current"),
        (par([]), r"cell\.par: no <SegmentN> with data rows"),
        ("Segment #, Point #\n0,0\n", r"cell\.par: line 1 \('Segment #, Point #'\) is outside a <Section>"),
    ]
    for text, message in cases:
        with pytest.raises(FormatError, match=message):
            read_par(written(tmp_path, text))
    with pytest.raises(FormatError, match=r"cell\.txt: expected a VersaStudio \.par file \(\.par\), not a \.txt"):
        read_par(written(tmp_path, par([DC]), "cell.txt"))
    with pytest.raises(FormatError, match=r"empty\.par: empty file"):
        read_par(written(tmp_path, "", "empty.par"))
