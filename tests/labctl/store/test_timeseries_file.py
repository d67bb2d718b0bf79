"""A run's time series is named BDF only when its rows can be BDF (voltage, current and test time)."""

from __future__ import annotations

from labctl.store.folder import PLAIN_TIMESERIES, TIMESERIES, RunFolder, time_series_metadata


def test_cycler_rows_go_to_the_bdf_file_and_a_deposition_log_to_plain_csv(tmp_path):
    bdf = RunFolder(tmp_path / "ccd", ["Test Time / s", "Voltage / V", "Current / A", "Cycle Count / 1"])
    log = RunFolder(tmp_path / "dep", ["Test Time / s", "Layer / 1", "Rate / A/s", "Thickness / nm"])
    bdf.append({"Test Time / s": 0.0, "Voltage / V": 0.01, "Current / A": 1e-4, "Cycle Count / 1": 1})
    log.append({"Test Time / s": 0.0, "Layer / 1": 1, "Rate / A/s": 1.0, "Thickness / nm": 0.1})
    for folder in (bdf, log):
        folder.close()
    assert (tmp_path / "ccd" / TIMESERIES).read_text().startswith("Test Time / s,Voltage / V,Current / A")
    assert (tmp_path / "dep" / PLAIN_TIMESERIES).read_text() == (
        "Test Time / s,Layer / 1,Rate / A/s,Thickness / nm\n0,1,1,0.1\n"
    )
    assert not (tmp_path / "dep" / TIMESERIES).exists()
    assert time_series_metadata(bdf.columns)["format"] == "Battery Data Format (BDF) CSV"
    assert time_series_metadata(log.columns)["file"] == PLAIN_TIMESERIES
