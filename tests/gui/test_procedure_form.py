from __future__ import annotations

import pytest
from PyQt6.QtWidgets import QLabel

from labctl.bench import BenchError
from labctl.gui.procedure_form import ProcedureForm, in_form_words, parameter_errors, request_errors
from labctl.procedures import ParameterError
from labctl.request import RequestError


@pytest.fixture
def form(qtbot, queue):
    widget = ProcedureForm(queue, lambda: "sim")
    qtbot.addWidget(widget)
    return widget


def choose(form: ProcedureForm, procedure: str) -> None:
    form.procedure.setCurrentText(procedure)


def test_fields_come_from_the_procedure_with_units_and_defaults(form):
    choose(form, "ccd")
    labels = [w.text() for w in form.findChildren(QLabel)]
    assert "Start current density (mA/cm²)" in labels and "Electrode diameter (mm)" in labels
    assert form.fields["start_density"].text() == "0.1"
    assert form.fields["variant"].text() == "fixed-time"
    assert form.fields["channel"].widget.isEnabled() and form.fields["cell"].widget.isEnabled()
    choose(form, "eis")
    assert "start_frequency" in form.fields and "start_density" not in form.fields
    assert not form.fields["channel"].widget.isEnabled()  # EIS alone uses no cycler


def test_bad_values_are_shown_beside_their_fields_and_nothing_is_queued(form, queue):
    choose(form, "ccd")
    form.fields["start_density"].set_text("fast")
    form.fields["cycles_per_step"].set_text("0")
    assert form.submit() == []
    assert queue.entries() == []
    assert "Start current density: 'fast' is not accepted" in form.fields["start_density"].error.text()
    assert "from 1 to 1000" in form.fields["cycles_per_step"].error.text()
    assert not form.fields["stop_density"].error.isVisibleTo(form)
    assert form.message.text() == "Fix the fields marked in red"


def test_a_cross_check_names_the_field_to_fix(form):
    choose(form, "ccd")
    form.fields["stop_density"].set_text("0.05")
    assert not form.validate()
    # in the form's words: the fields' labels, never the parameters' names
    assert form.fields["stop_density"].error.text() == ("Stop current density: 0.05 mA/cm² is below Start current "
                                                        "density 0.1 mA/cm²; raise it or lower Start current density")


def test_queue_errors_land_on_the_run_field(form, queue):
    choose(form, "ccd")
    form.fields["channel"].set_text("9")
    assert form.submit() == []
    assert "channels 1..8" in form.fields["channel"].error.text()
    form.fields["channel"].set_text("two")
    assert form.submit() == []
    assert "'two' is not a whole number" in form.fields["channel"].error.text()
    assert queue.entries() == []


def test_a_good_form_queues_one_entry_per_cell(form, queue, qtbot):
    choose(form, "ccd")
    form.fields["stop_density"].set_text("1.0")
    form.fields["cell_id"].set_text("LLZTO")
    form.fields["channel"].set_text("3")
    form.fields["count"].set_text("2")
    form.fields["cell"].set_text("Ag")
    form.fields["seed"].set_text("5")
    with qtbot.waitSignal(form.queued) as signal:
        ids = form.submit()
    assert signal.args == [ids] and len(ids) == 2
    entries = queue.entries()
    assert [(e.channel, e.params, e.cell, e.seed) for e in entries] == [
        (3, {"stop_density": "1.0", "cell_id": "LLZTO-1"}, "Ag", 5),
        (4, {"stop_density": "1.0", "cell_id": "LLZTO-2"}, "Ag", 5),
    ]
    assert form.message.text() == "Queued entries 1, 2"


def test_hold_queues_held(form, queue):
    choose(form, "insitu-eis")
    form.fields["cycles"].set_text("1")
    form.hold.setChecked(True)
    assert form.submit()
    (entry,) = queue.entries()
    assert entry.state == "held" and entry.params == {"cycles": "1", "cell_id": "cell-1"}
    assert entry.claims == ["cycler@sim#1", "impedance@sim"]


def test_sim_fields_are_off_for_a_real_bench(qtbot, queue, tmp_path):
    bench = tmp_path / "bay.toml"
    bench.write_text('[roles.cycler]\ndriver = "arbin-cti"\nresource = "127.0.0.1:1"\nchannel = 2\n')
    form = ProcedureForm(queue, lambda: str(bench))
    qtbot.addWidget(form)
    assert not form.fields["cell"].widget.isEnabled() and not form.fields["seed"].widget.isEnabled()
    form.fields["channel"].set_text("")
    assert form.submit()
    assert queue.entries()[0].channel == 2 and queue.entries()[0].claims == ["cycler@127.0.0.1:1#2"]


def test_parameter_errors_collects_every_bad_field():
    errors = parameter_errors("ccd", {"start_density": "x", "voltage_limit": "99", "half_cycle_time": "0.25"})
    assert set(errors) == {"start_density", "voltage_limit"}
    assert parameter_errors("ccd", {"nope": "1"}).keys() == {""}  # not a parameter: a form-level error
    assert parameter_errors("ccd", {"stop_density": "2"}) == {}


def test_request_errors_land_on_the_fields_they_carry():
    # the fields come with the error, not from its wording: nothing names an option or parses a message
    assert request_errors(RequestError("channel", "9 not on bench")) == {"channel": "9 not on bench"}
    assert request_errors(RequestError(("cell", "seed"), "not simulated")) == {"cell": "not simulated",
                                                                                "seed": "not simulated"}
    sweep = ParameterError("start_frequency/stop_frequency: the sweep")
    assert request_errors(sweep).keys() == {"start_frequency", "stop_frequency"}
    assert request_errors(ParameterError("why, in any words", ("stop_density",))).keys() == {"stop_density"}
    assert request_errors(BenchError("--bench: no bench file 'x'")) == {"": "Bench: no bench file 'x'"}


def test_a_request_error_shows_its_reason_under_the_label_without_the_option(form):
    choose(form, "ccd")
    form.fields["channel"].set_text("6")
    form.fields["count"].set_text("4")
    assert form.submit() == []
    for name in ("channel", "count"):
        text = form.fields[name].error.text()
        assert text.startswith("channels 6..9 not on bench") and "--" not in text


def test_an_error_of_no_field_is_shown_under_the_form(qtbot, queue, tmp_path):
    form = ProcedureForm(queue, lambda: str(tmp_path / "gone.toml"))
    qtbot.addWidget(form)
    assert form.submit() == []
    assert form.message.text().startswith("Bench: no bench file") and queue.entries() == []


def test_errors_name_fields_by_their_labels_and_leave_words_alone():
    labels = {"cycles": "Cycles", "lower_voltage": "Lower voltage", "upper_voltage": "Upper voltage"}
    assert in_form_words("lower_voltage: 2 V must be below upper_voltage (1 V)", labels) == (
        "Lower voltage: 2 V must be below Upper voltage (1 V)")
    assert in_form_words("cycles: 0 cycles is too few", labels) == "Cycles: 0 cycles is too few"


def test_the_cell_and_the_queue_entry_stay_when_the_procedure_changes(form):
    choose(form, "ccd")
    for name, text in (("channel", "3"), ("count", "2"), ("cell_id", "LLZTO-17"), ("electrode_diameter", "10"),
                       ("seed", "4"), ("cell", "Ag")):  # fmt: skip
        form.fields[name].set_text(text)
    form.hold.setChecked(True)
    choose(form, "insitu-eis")
    kept = {name: form.fields[name].text() for name in ("channel", "count", "cell_id", "electrode_diameter", "seed",
                                                          "cell")}  # fmt: skip
    assert kept == {"channel": "3", "count": "2", "cell_id": "LLZTO-17", "electrode_diameter": "10", "seed": "4",
                    "cell": "Ag"}  # fmt: skip
    assert form.hold.isChecked() and form.fields["cycles"].text() == "5"  # the procedure's own: its defaults


@pytest.mark.parametrize("width", [300, 420])
def test_an_error_shows_all_its_lines_at_the_width_of_the_form(qtbot, form, width):
    choose(form, "ccd")
    form.fields["start_density"].set_text("fast")
    form.fields["stop_density"].set_text("0.05")
    form.resize(width, 900)
    form.show()
    qtbot.waitExposed(form)
    assert form.submit() == []
    qtbot.wait(50)  # the layout settles
    shown = [f.error for f in form.fields.values() if f.error.isVisible()]
    assert len(shown) == 2
    for label in shown:
        assert label.height() >= label.heightForWidth(label.width()), label.text()  # no first or last line cut
        assert label.width() > 0.8 * label.parentWidget().width()  # under the field across the form, not beside it
