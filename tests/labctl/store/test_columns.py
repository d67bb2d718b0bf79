"""labctl's time-series column names are the Battery Data Format's, as the batterydf spec has them."""

from __future__ import annotations

import pytest
from bdf.normalize import spec

from labctl import bdf_columns
from labctl.store.folder import RunFolder, timeseries_name

TIME_SERIES = ["TIME", "VOLTAGE", "CURRENT", "UNIX_TIME", "CYCLE", "STEP", "CHARGE_CAPACITY", "DISCHARGE_CAPACITY"]


def bdf_label(machine: str) -> str:
    return spec.COLUMNS[machine]["label_template"].format(unit=spec.unit_for(machine))


def test_required_columns_are_bdfs():
    assert bdf_columns.REQUIRED == spec.required_labels()


@pytest.mark.parametrize("name", TIME_SERIES)
def test_each_time_series_name_is_a_bdf_label(name):
    assert getattr(bdf_columns, name) in spec.required_labels() + spec.optional_labels()


@pytest.mark.parametrize(("machine", "human"), bdf_columns.MACHINE_LABELS.items())
def test_machine_labels_name_the_same_quantity(machine, human):
    assert bdf_label(machine) == human


def test_a_run_folder_is_named_bdf_by_the_required_columns(tmp_path):
    folder = RunFolder(tmp_path / "run", [*spec.required_labels(), "Cycle Count / 1"])
    assert folder.timeseries.name == timeseries_name(list(spec.required_labels())) == "timeseries.bdf.csv"
