"""RunReader: the one reader of a run folder, safe while the run still writes it (only complete lines are read)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from labctl.store.folder import EVENTS, METADATA, PLAIN_TIMESERIES, RESULTS, SPECTRA, TIMESERIES, RunFolder
from labctl.store.reader import RunReader

COLUMNS = ["Test Time / s", "Voltage / V", "Current / A", "Cycle Count / 1"]


@pytest.fixture
def written(tmp_path):
    """A run folder with three samples, two events, two spectra, metadata and results, its writer closed."""
    folder = RunFolder(tmp_path / "run", COLUMNS)
    for i in range(3):
        folder.append({"Test Time / s": float(i), "Voltage / V": 0.01 * i, "Current / A": 1e-5, "Cycle Count / 1": 1})
    folder.event("segment_started", step=1)
    folder.event("spectrum", index=0, when="before cycling")
    folder.add_spectrum(0, 0.0, 0, 0, [(1e5, complex(10, -1)), (1e3, complex(20, -8))])
    folder.add_spectrum(1, 3600.0, 2, 5, [(1e5, complex(11, -1)), (1e3, complex(22, -9)), (1.0, complex(30, -2))])
    folder.write_metadata({"run_id": "r", "estimated_duration_s": 10.0})
    folder.write_results({"headline": "CCD = 0.6 mA/cm²"})
    folder.close()
    return tmp_path / "run"


def cut_last_line(path, keep: int) -> None:
    """Leave the file as a writer part-way through its last line would: ``keep`` bytes of that line."""
    text = path.read_bytes()
    start = text.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(text[: start + keep])


def test_metadata_and_results_are_what_the_writer_wrote(written):
    reader = RunReader(written)
    assert reader.metadata() == {"run_id": "r", "estimated_duration_s": 10.0}
    assert reader.results() == {"headline": "CCD = 0.6 mA/cm²"}


def test_a_folder_before_its_first_write_reads_empty(tmp_path):
    reader = RunReader(tmp_path)
    assert reader.metadata() == {} and reader.results() is None
    assert reader.rows() is None and reader.last_row() is None
    assert reader.spectra() == [] and reader.events() == []


def test_rows_are_the_samples_with_their_columns(written):
    rows = RunReader(written).rows()
    assert list(rows.columns) == COLUMNS
    assert rows["Test Time / s"].tolist() == [0.0, 1.0, 2.0]
    assert rows["Voltage / V"].tolist() == pytest.approx([0.0, 0.01, 0.02])
    assert len(RunReader(written).rows(limit=2)) == 2


def test_a_truncated_last_row_is_skipped_not_parsed(written):
    cut_last_line(written / TIMESERIES, keep=10)  # "2,0.02,1e-" of "2,0.02,1e-05,1": a number cut short
    reader = RunReader(written)
    rows = reader.rows()
    assert rows["Test Time / s"].tolist() == [0.0, 1.0]
    assert all(dtype.kind in "fi" for dtype in rows.dtypes)  # the fragment did not turn a column to text
    assert reader.last_row() == {"Test Time / s": "1", "Voltage / V": "0.01", "Current / A": "1e-05",
                                 "Cycle Count / 1": "1"}


def test_the_last_row_of_a_long_file_is_read_from_its_tail(tmp_path):
    folder = RunFolder(tmp_path / "run", COLUMNS)
    for i in range(2000):  # far more than the tail read
        folder.append({"Test Time / s": float(i), "Voltage / V": 0.5, "Current / A": 1e-3, "Cycle Count / 1": i})
    folder.close()
    cut_last_line(tmp_path / "run" / TIMESERIES, keep=3)
    assert RunReader(tmp_path / "run").last_row()["Cycle Count / 1"] == "1998"


def test_a_series_without_voltage_and_current_is_read_from_the_plain_file(tmp_path):
    folder = RunFolder(tmp_path / "dep", ["Test Time / s", "Thickness / nm"])
    folder.append({"Test Time / s": 0.0, "Thickness / nm": 0.5})
    folder.close()
    reader = RunReader(tmp_path / "dep")
    assert reader.timeseries == tmp_path / "dep" / PLAIN_TIMESERIES
    assert reader.rows()["Thickness / nm"].tolist() == [0.5]
    assert reader.last_row() == {"Test Time / s": "0", "Thickness / nm": "0.5"}


def test_spectra_come_back_with_their_place_in_the_test(written):
    first, second = RunReader(written).spectra()
    assert (first.index, first.test_time_s, first.cycle) == (0, 0.0, 0)
    assert (second.index, second.test_time_s, second.cycle) == (1, 3600.0, 2)
    np.testing.assert_array_equal(second.freq, [1e5, 1e3, 1.0])
    np.testing.assert_array_equal(second.z_real, [11, 22, 30])
    np.testing.assert_array_equal(second.z_imag, [-1, -9, -2])
    assert [s.index for s in RunReader(written).spectra(limit=1)] == [0]


def test_a_spectrum_row_cut_short_is_not_read(written):
    cut_last_line(written / SPECTRA, keep=4)
    spectra = RunReader(written).spectra()
    assert len(spectra[-1].freq) == 2 and np.isfinite(spectra[-1].z_imag).all()


def test_events_stop_before_a_line_still_being_written(written):
    with (written / EVENTS).open("a", encoding="utf-8") as f:
        f.write('{"kind": "faul')
    reader = RunReader(written)
    assert [e["kind"] for e in reader.events()] == ["segment_started", "spectrum"]
    assert [e["kind"] for e in reader.events(limit=1)] == ["segment_started"]


def test_damaged_metadata_is_an_error_not_an_empty_run(written):
    (written / METADATA).write_text("{", encoding="utf-8")
    with pytest.raises(json.JSONDecodeError):
        RunReader(written).metadata()
    assert (written / RESULTS).exists()


def test_a_running_runs_parquet_export_holds_its_complete_rows(written, tmp_path):
    from labctl.gui.export import export_parquet

    cut_last_line(written / TIMESERIES, keep=10)
    exported = pd.read_parquet(export_parquet(written, tmp_path))
    assert exported["Test Time / s"].tolist() == [0.0, 1.0]
    assert exported["Current / A"].tolist() == [1e-5, 1e-5]  # numbers, not the text the cut line would make
