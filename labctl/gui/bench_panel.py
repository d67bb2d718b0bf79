"""The bench panel: which bench new runs are queued on (``sim`` or a bench file), every role of that bench and who
holds it, and a connection check of the roles nobody holds.

A running run owns its instruments (the SQM-160's serial port, the 1260's single output queue, the cycler's CTI
login): a second process on one of them can garble both. So the panel looks each second at what running runs hold
(``labctl.live.holders``: the queue's claims and the registry's running runs), shows the holder and its latest
reading instead of opening a held role, opens only the free ones, and lets go of any that a run takes while the
panel has it open. Opening can take seconds (a simulated bench starts its emulators; a real instrument may time
out), so it runs in a worker thread. The connection is only for looking: runs open their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QResizeEvent
from PyQt6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from labctl.bench import Bench, BenchConfig, BenchError, load_config, open_bench
from labctl.gui.outage import riding_out
from labctl.gui.run_view import status_text
from labctl.gui.worker import Worker
from labctl.live.holders import Holder, bench_instruments, bench_roles, holders, reading_of
from labctl.queue.db import QueueDB
from labctl.store import Registry

FREE = "free: not opened (Connect opens it)"
ABSENT = "not on this bench (the simulated cell has no such instrument)"
ROLES_HEIGHT_PX = 320  # the role list scrolls beyond this, leaving the procedure form its room


def role_state(role: str, instrument: Any) -> str:
    """One line on what an instrument is doing now, in units."""
    if role == "cycler":
        r = instrument.read()
        return f"{r.status}; {r.voltage_V:+.4f} V, {1000 * r.current_A:+.4g} mA, test time {r.test_time_s:.0f} s"
    if role == "rate_monitor":
        r = instrument.read()
        if r.crystal_failed:
            return "crystal failed: replace it"
        return f"{r.rate_A_s:.2f} Å/s, {r.thickness_nm:.1f} nm, crystal life {r.crystal_life_pct:.0f} %"
    return "connected"


def describe(bench: Bench) -> dict[str, str]:
    """Role -> its instrument (make, model, serial) and state, for each role the bench opened."""
    shown = {}
    for role, instrument in bench.roles.items():
        identity = " ".join(str(v) for k, v in instrument.identity().items() if v and k != "channel")
        shown[role] = f"{identity}\n{role_state(role, instrument)}"
    return shown


def role_label(config: BenchConfig, role: str) -> str:
    """The role as listed, with the cycler's channel (a simulated bench opens channel 1)."""
    if role != "cycler":
        return role
    channel = config.roles["cycler"].channel if "cycler" in config.roles else None
    return f"cycler (channel {channel or 1})"


def reading_text(values: dict[str, Any]) -> str:
    """A holder's latest values with units: time, V, I, density and cycle, or a rate monitor's rate and thickness."""
    parts = [text] if (text := status_text(values)) else []
    if isinstance(values.get("rate_A_s"), int | float):
        parts.append(f"{values['rate_A_s']:.2f} Å/s")
    if isinstance(values.get("thickness_nm"), int | float):
        parts.append(f"{values['thickness_nm']:.1f} nm")
    return "   ".join(parts) or "no reading yet"


def held_text(held: list[Holder], live: Callable[[str], dict[str, Any] | None]) -> str:
    """Who holds a role, each holder on two lines: the run, then its latest reading."""
    return "\n".join(
        f"held by {h.describe()}:\n{reading_text(reading_of(h, live(h.run_id) if h.run_id else None))}" for h in held
    )


class RoleList(QScrollArea):
    """The roles' lines: as tall as they need at the panel's width (the form below takes the rest), scrolling
    beyond ROLES_HEIGHT_PX."""

    def sizeHint(self) -> QSize:
        content, viewport = self.widget(), self.viewport()
        layout = content.layout() if content is not None else None
        if layout is None or viewport is None:
            return super().sizeHint()
        width = viewport.width()
        height = layout.heightForWidth(width) if layout.hasHeightForWidth() else layout.sizeHint().height()
        return QSize(super().sizeHint().width(), min(height + 2 * self.frameWidth(), ROLES_HEIGHT_PX))

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        self.updateGeometry()  # wrapped lines need another height at another width


class BenchPanel(QGroupBox):
    """Choose the bench; every role is listed with who holds it; Connect opens the free roles in a worker thread;
    Disconnect closes them. ``live(run_id)`` gives a followed run's latest live status (the window's feeds)."""

    changed = pyqtSignal(str)  # the bench spec new runs use
    connected = pyqtSignal()

    def __init__(
        self,
        spec: str,
        queue: QueueDB,
        registry: Registry,
        poll_ms: int = 1000,
        live: Callable[[str], dict[str, Any] | None] = lambda _: None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Bench", parent)
        self.queue, self.registry, self.live = queue, registry, live
        self.bench: Bench | None = None
        self.config: BenchConfig | None = None
        self._loaded_spec = spec
        self.held: dict[str, list[Holder]] = {}  # instrument -> the running runs that hold it
        self._shown: dict[str, str] = {}  # role -> identity and state of what this panel opened
        self._rows: list[tuple[str, str]] = []
        self._details: list[QLabel] = []  # each role's details, in the order of _rows
        self.path = QLineEdit(spec)
        self.path.setToolTip("'sim' (simulated bench on 127.0.0.1) or a bench TOML file")
        self.path.editingFinished.connect(self._spec_edited)
        browse = QPushButton("File…")
        browse.clicked.connect(self._browse)
        self.connect_button = QPushButton("Connect")
        self.connect_button.setToolTip("Open the roles no running run holds, to see their instruments and state")
        self.connect_button.clicked.connect(self.open)
        self.disconnect_button = QPushButton("Disconnect", enabled=False)
        self.disconnect_button.clicked.connect(self.close_bench)
        self.state = QLabel("Not connected", wordWrap=True)
        self.roles = QWidget()  # a bold role name over what is known of it, wrapped to the panel's width
        self._role_lines = QVBoxLayout(self.roles)
        self._role_lines.setContentsMargins(0, 0, 0, 0)
        self._scroll = RoleList(widgetResizable=True)
        self._scroll.setWidget(self.roles)
        layout = QVBoxLayout(self)
        for widgets in ((self.path, browse), (self.connect_button, self.disconnect_button)):
            row = QHBoxLayout()
            for w in widgets:
                row.addWidget(w)
            layout.addLayout(row)
        layout.addWidget(self.state)
        layout.addWidget(self._scroll)
        self._load_config()
        self._timer = QTimer(self, interval=poll_ms)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def spec(self) -> str:
        return self.path.text().strip() or "sim"

    def stop_watching(self) -> None:
        """Stop looking at the queue and the registry (before they close)."""
        self._timer.stop()

    def rows(self) -> list[tuple[str, str]]:
        """(role, what the panel shows of it), as listed."""
        return list(self._rows)

    @riding_out
    def refresh(self) -> None:
        """Look again at who holds what; let go of the bench if a run has taken a role the panel opened."""
        self.held = holders(self.queue.entries(), self.registry.list())
        taken = [role for role in self._shown if self._holders_of(role)]
        if self.bench is not None and taken:
            self._release()
            self.state.setText(
                f"Disconnected: a run took {', '.join(taken)}, so the panel let go of the bench; "
                "Connect opens the roles still free"
            )
        self._show()

    def open(self) -> None:
        """Open the roles no run holds and read them in a worker thread; the UI stays live meanwhile."""
        self._release()
        config = self._load_config()
        if config is None:
            return
        self.refresh()
        free = [role for role in bench_roles(config) if not self._holders_of(role)]
        if not free:
            self.state.setText(f"Nothing opened: every role of {config.name} is held by a running run")
            return
        spec = self.spec()
        self.connect_button.setEnabled(False)
        self.state.setText(f"Connecting to {', '.join(free)} of {spec}…")

        def connect() -> tuple[Bench, dict[str, str]]:
            bench = open_bench(spec, roles=free)
            try:
                return bench, describe(bench)
            except BaseException:
                bench.close()
                raise

        Worker.run(connect, self._opened, self._failed)

    def close_bench(self) -> None:
        """Disconnect (in a worker thread: a real instrument may be slow to log out)."""
        if self.bench is not None:
            self.state.setText("Disconnecting…")
            self._release(lambda _: self.state.setText("Disconnected"))

    def _opened(self, result: tuple[Bench, dict[str, str]]) -> None:
        self.bench, self._shown = result
        held = [role for role in bench_roles(self.bench.config) if self._holders_of(role)]
        note = f"; {', '.join(held)} held by a run, not opened" if held else ""
        self.state.setText(f"Connected to {self.bench.name}: opened {', '.join(self._shown) or 'nothing'}{note}")
        self.connect_button.setEnabled(True)
        self.disconnect_button.setEnabled(True)
        self.refresh()  # a run may have taken a role while it opened
        self.connected.emit()

    def _failed(self, message: str) -> None:
        self.state.setText(f"Not connected: {message}")
        self.connect_button.setEnabled(True)

    def _release(self, done: Callable[[Any], None] = lambda _: None) -> None:
        bench, self.bench, self._shown = self.bench, None, {}
        self.disconnect_button.setEnabled(False)
        self._show()
        if bench is not None:
            Worker.run(bench.close, done, self._failed)

    def _load_config(self) -> BenchConfig | None:
        """Read the bench's roles from its spec; a bad bench file is named with the fix (and lists no roles)."""
        self._loaded_spec = self.spec()
        try:
            self.config = load_config(self.spec())
        except BenchError as e:
            self.config = None
            self._failed(str(e))
            self._show()
        return self.config

    def _spec_edited(self) -> None:
        if self.spec() != self._loaded_spec:
            self._release()
            self._load_config()
            self._show()
        self.changed.emit(self.spec())

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Bench file", "", "Bench files (*.toml);;All files (*)")
        if path:
            self.path.setText(path)
            self._spec_edited()

    def _holders_of(self, role: str) -> list[Holder]:
        if self.config is None:
            return []
        return self.held.get(bench_instruments(self.config)[role], [])

    def _show(self) -> None:
        """List every role: what the panel opened, who holds it, or that it is free; redrawn only on a change."""
        config = self.config
        rows = [(role_label(config, role), self._role_text(role)) for role in bench_roles(config)] if config else []
        if rows == self._rows:
            return
        if [role for role, _ in rows] == [role for role, _ in self._rows]:
            for label, (_, text) in zip(self._details, rows, strict=True):
                label.setText(text)  # new readings: the same lines, new text
        else:
            self._rebuild(rows)
        self._rows = rows
        self._scroll.updateGeometry()

    def _role_text(self, role: str) -> str:
        if held := self._holders_of(role):
            return held_text(held, self.live)
        if role in self._shown:
            return self._shown[role]
        if self.bench is not None and role not in self.bench.config.roles:
            return ABSENT
        return FREE  # also a role that was held when the panel connected

    def _rebuild(self, rows: list[tuple[str, str]]) -> None:
        while (old := self._role_lines.takeAt(0)) is not None:
            if (widget := old.widget()) is not None:
                widget.hide()  # gone now, not at the next turn of the event loop
                widget.deleteLater()
        self._details = []
        for role, text in rows:
            name = QLabel(role)
            name.setStyleSheet("font-weight: bold")
            details = QLabel(text, wordWrap=True)
            details.setIndent(12)
            details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # run ids can be copied
            self._role_lines.addWidget(name)
            self._role_lines.addWidget(details)
            self._details.append(details)
        self._role_lines.addStretch(1)
