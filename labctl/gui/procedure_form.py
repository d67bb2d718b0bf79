"""The form that queues a run: a procedure's parameters as fields (units in every label, defaults from the
procedure), the cell, and the queue entry (channel, count, sim cell, seed, hold).

Fields are generated from the PyMeasure parameters rather than with pymeasure.display's InputsWidget: its
spin boxes clamp an out-of-range number silently, where labctl names the field and the accepted range. The form
describes a ``RunRequest`` and goes through the same ``labctl.queue.entries.plan`` as ``labctl queue add``, so it
refuses exactly what the command line refuses; each error names its fields, and shows under their labels.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymeasure.experiment import BooleanParameter, ListParameter, Parameter
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from labctl.bench import BenchError, load_config
from labctl.procedures import PROCEDURES, LabProcedure, ParameterError
from labctl.procedures.base import set_parameters
from labctl.queue.db import QueueDB
from labctl.queue.entries import plan
from labctl.request import RequestError, RunRequest

ERROR_STYLE = "color: #c62828;"


def ordered_parameters(cls: type[LabProcedure]) -> dict[str, Parameter]:
    """A procedure's parameters in declaration order, base class first (PyMeasure sorts them by name)."""
    found: dict[str, Parameter] = {}
    for klass in reversed(cls.__mro__):
        found |= {name: value for name, value in vars(klass).items() if isinstance(value, Parameter)}
    return found


CELL_PARAMETERS = tuple(ordered_parameters(LabProcedure))


def default_text(p: Parameter) -> str:
    value = p.default
    if isinstance(value, float):
        return f"{value:.12g}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def label_text(p: Parameter) -> str:
    units = getattr(p, "units", None)
    return f"{p.name} ({units})" if units else p.name


RUN_LABELS = {"channel": "Cycler channel", "count": "Cells (one per channel)", "cell": "Sim cell preset",
              "seed": "Sim seed"}  # fmt: skip
CARRIED = (*CELL_PARAMETERS, *RUN_LABELS)  # the same cell and channel whatever the procedure: kept on a change


def in_form_words(message: str, labels: dict[str, str]) -> str:
    """An error as the form words it: the parameters it names by their labels ("Stop current density", not
    stop_density). The names it starts with (``a/b: why``) are replaced whatever they are; in the rest only names
    that cannot be plain words (with an underscore), so that "cycles" in a sentence stays a word."""
    head, sep, rest = message.partition(": ")
    names = head.split("/")
    if sep and all(n in labels for n in names):
        message = "/".join(labels[n] for n in names) + sep + rest
    for name, label in labels.items():
        if "_" in name:
            message = re.sub(rf"\b{name}\b", label, message)
    return message


def parameter_errors(procedure: str, values: dict[str, str]) -> dict[str, str]:
    """Every field ``set_parameters`` refuses, keyed by field name ("" for an error naming no single field).

    ``set_parameters`` stops at the first bad value, so this drops the fields each error names and asks again
    until the rest pass; the procedure's cross-checks then see only values that parse."""
    parameters = ordered_parameters(PROCEDURES[procedure])
    errors: dict[str, str] = {}
    remaining = dict(values)
    while True:
        try:
            set_parameters(PROCEDURES[procedure](), remaining)
            return errors
        except ParameterError as e:
            named = [n for n in e.fields if n in parameters]
            for name in named or [""]:
                errors.setdefault(name, str(e))
            dropped = [n for n in named if n in remaining]
            if not dropped:  # a cross-check against values left at their defaults: nothing more to drop
                return errors
            for name in dropped:
                del remaining[name]


def request_errors(error: RequestError | ParameterError | BenchError) -> dict[str, str]:
    """A refused request's message under each field it names ("" for the form as a whole): a request field
    gets the reason alone, beside its label; a parameter its whole message, which names it."""
    if isinstance(error, RequestError):
        return dict.fromkeys(error.fields, error.detail)
    if isinstance(error, ParameterError):
        return dict.fromkeys(error.fields, str(error))
    return {"": f"Bench: {str(error).removeprefix('--bench: ')}"}  # the bench panel's, not an option's


@dataclass
class Field:
    """One input with the label under it that shows its error."""

    name: str
    widget: QLineEdit | QComboBox | QCheckBox | QSpinBox
    error: QLabel
    default: str

    def text(self) -> str:
        if isinstance(self.widget, QLineEdit):
            return self.widget.text().strip()
        if isinstance(self.widget, QComboBox):
            return self.widget.currentText()
        if isinstance(self.widget, QSpinBox):
            return str(self.widget.value())
        return "true" if self.widget.isChecked() else "false"

    def set_text(self, text: str) -> None:
        if isinstance(self.widget, QLineEdit):
            self.widget.setText(text)
        elif isinstance(self.widget, QComboBox):
            self.widget.setCurrentText(text)
        elif isinstance(self.widget, QSpinBox):
            self.widget.setValue(int(text))
        else:
            self.widget.setChecked(text.lower() in ("1", "true", "yes"))

    def show_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))


def _form(box: QGroupBox) -> QFormLayout:
    form = QFormLayout(box)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # a narrow dock puts the field under its label
    return form


def _error_label() -> QLabel:
    label = QLabel()
    label.setStyleSheet(ERROR_STYLE)
    label.setWordWrap(True)
    label.setVisible(False)
    return label


def _input(p: Parameter) -> QLineEdit | QComboBox | QCheckBox:
    if isinstance(p, BooleanParameter):
        widget: QLineEdit | QComboBox | QCheckBox = QCheckBox()
    elif isinstance(p, ListParameter):
        widget = QComboBox()
        widget.addItems([str(c) for c in p.choices])
    else:
        widget = QLineEdit()
        widget.setPlaceholderText(default_text(p))
    widget.setToolTip(p.description or "")
    return widget


class ProcedureForm(QWidget):
    """Pick a procedure, fill its fields, queue it. ``queued`` carries the new entry ids."""

    queued = pyqtSignal(list)

    def __init__(self, queue: QueueDB, bench_spec: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self._bench_spec = bench_spec
        self.fields: dict[str, Field] = {}
        self.procedure = QComboBox()
        self.procedure.addItems(list(PROCEDURES))
        self.summary = QLabel(wordWrap=True)
        self.message = _error_label()
        self.queue_button = QPushButton("Queue")
        self.queue_button.clicked.connect(self.submit)
        self._groups = QWidget()
        self._groups_layout = QVBoxLayout(self._groups)
        self._groups_layout.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # long labels wrap instead
        scroll.setWidget(self._groups)
        layout = QVBoxLayout(self)
        layout.addWidget(self.procedure)
        layout.addWidget(self.summary)
        layout.addWidget(scroll, stretch=1)
        layout.addWidget(self.message)
        layout.addWidget(self.queue_button)
        self.procedure.currentTextChanged.connect(self._build)
        self._build(self.procedure.currentText())

    # -- building --------------------------------------------------------------------------------------------

    def _build(self, name: str) -> None:
        kept = {key: field.text() for key, field in self.fields.items() if key in CARRIED}
        hold = self.hold.isChecked() if self.fields else False
        while (item := self._groups_layout.takeAt(0)) is not None:
            if item.widget():
                item.widget().deleteLater()
        self.fields = {}
        cls = PROCEDURES[name]
        self.summary.setText((cls.__doc__ or "").strip().splitlines()[0])
        parameters = ordered_parameters(cls)
        own = {k: p for k, p in parameters.items() if k not in CELL_PARAMETERS}
        self._groups_layout.addWidget(self._parameter_group(f"{name} parameters", own))
        self._groups_layout.addWidget(self._parameter_group("Cell", {k: parameters[k] for k in CELL_PARAMETERS}))
        self._groups_layout.addWidget(self._run_group(cls))
        self._groups_layout.addStretch(1)
        for key, text in kept.items():
            self.fields[key].set_text(text)
        self.hold.setChecked(hold)
        self.set_bench(self._bench_spec())
        self.message.setVisible(False)

    def _parameter_group(self, title: str, parameters: dict[str, Parameter]) -> QGroupBox:
        box = QGroupBox(title)
        form = _form(box)
        for key, p in parameters.items():
            widget = _input(p)
            self._add(form, key, label_text(p), widget, default_text(p))
            if isinstance(widget, QLineEdit):
                widget.editingFinished.connect(self.validate)
            elif isinstance(widget, QComboBox):
                widget.currentTextChanged.connect(self.validate)
            else:
                widget.toggled.connect(self.validate)
            self.fields[key].set_text(default_text(p))
        return box

    def _run_group(self, cls: type[LabProcedure]) -> QGroupBox:
        box = QGroupBox("Queue entry")
        form = _form(box)
        channel = QLineEdit(placeholderText="bench's (sim: 1)")
        channel.setEnabled("cycler" in cls.ROLES)
        self._add(form, "channel", RUN_LABELS["channel"], channel, "")
        count = QSpinBox(minimum=1, maximum=64)
        count.setToolTip("The same test on this many cells, one per channel from the first; cell ids get -1, -2, …")
        self._add(form, "count", RUN_LABELS["count"], count, "1")
        cell = QComboBox()
        cell.addItem("")
        from labctl.sim_instruments.catalog import KINDS

        cell.addItems(list(KINDS))
        cell.setItemText(0, f"procedure's ({cls().sim_defaults().get('cell', 'bare')})")
        self._add(form, "cell", RUN_LABELS["cell"], cell, "")
        self._add(form, "seed", RUN_LABELS["seed"], QLineEdit(placeholderText="0"), "")
        self.hold = QCheckBox("Hold (starts only when released)")
        form.addRow("", self.hold)
        return box

    def _add(self, form: QFormLayout, key: str, label: str, widget: Any, default: str) -> None:
        field = Field(key, widget, _error_label(), default)
        self.fields[key] = field
        form.addRow(label, widget)
        form.addRow(field.error)  # the whole width under the field: a long reason takes few lines

    def set_bench(self, spec: str) -> None:
        """Enable the sim-only fields on a simulated bench (a bench file that cannot be read counts as real;
        queueing then names its problem)."""
        try:
            simulated = load_config(spec).sim is not None
        except BenchError:
            simulated = False
        for key in ("cell", "seed"):
            if key in self.fields:
                self.fields[key].widget.setEnabled(simulated)

    # -- values ----------------------------------------------------------------------------------------------

    def parameter_values(self) -> dict[str, str]:
        """The parameters changed from their defaults, as text (what ``-p name=value`` would give)."""
        parameters = ordered_parameters(PROCEDURES[self.procedure.currentText()])
        return {k: self.fields[k].text() for k in parameters if self.fields[k].text() != self.fields[k].default}

    def request(self) -> RunRequest:
        """The run the form describes; RequestError naming the run field that does not parse."""
        channel, seed = self.fields["channel"].text(), self.fields["seed"].text()
        simulated = self.fields["cell"].widget.isEnabled()
        cell = self.fields["cell"].text() if simulated and self.fields["cell"].widget.currentIndex() > 0 else None
        return RunRequest(
            procedure=self.procedure.currentText(), bench=self._bench_spec(), params=self.parameter_values(),
            cell=cell, seed=_whole(seed, "seed", "e.g. 3, or leave it empty for 0") if seed and simulated else None,
            channel=_whole(channel, "channel", "from 1, or leave it empty for the bench's")
            if channel and self.fields["channel"].widget.isEnabled() else None,
        )  # fmt: skip

    def validate(self) -> bool:
        """Show each parameter error beside its field; True when there are none."""
        errors = parameter_errors(self.procedure.currentText(), self.parameter_values())
        self._show(errors)
        return not errors

    def submit(self) -> list[int]:
        """Queue the entries the form describes, or show why not (nothing is queued then)."""
        if not self.validate():
            return []
        try:
            entries = plan(self.request(), self._queue, count=int(self.fields["count"].text()),
                           hold=self.hold.isChecked())  # fmt: skip
        except (RequestError, ParameterError, BenchError) as e:
            self._show(request_errors(e))
            return []
        ids = self._queue.add(entries)
        self._show({})
        self.message.setStyleSheet("")
        self.message.setText(f"Queued entr{'y' if len(ids) == 1 else 'ies'} {', '.join(map(str, ids))}")
        self.message.setVisible(True)
        self.queued.emit(ids)
        return ids

    def labels(self) -> dict[str, str]:
        """Field name → its label without units, as errors name it."""
        parameters = ordered_parameters(PROCEDURES[self.procedure.currentText()])
        return {key: p.name for key, p in parameters.items()} | RUN_LABELS

    def _show(self, errors: dict[str, str]) -> None:
        labels = self.labels()
        errors = {key: in_form_words(text, labels) for key, text in errors.items()}
        for key, field in self.fields.items():
            field.show_error(errors.get(key))
        unplaced = [text for key, text in errors.items() if key not in self.fields]  # e.g. the bench file's
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.setText("\n".join(unplaced) or ("Fix the fields marked in red" if errors else ""))
        self.message.setVisible(bool(errors))


def _whole(text: str, field: str, hint: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RequestError(field, f"{text!r} is not a whole number; give one {hint}") from None
