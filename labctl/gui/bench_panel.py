"""The bench panel: which bench new runs are queued on (``sim`` or a bench file), and a connection check that
shows each role's instrument and its state. Opening a bench can take seconds (a simulated bench starts its
emulators; a real instrument may time out), so it runs in a worker thread. Runs open their own connections:
this one is only for looking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labctl.bench import Bench, open_bench
from labctl.gui.worker import Worker


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


def describe(bench: Bench) -> list[tuple[str, str, str]]:
    """(role, identity, state) for each role of an opened bench."""
    rows = []
    for role, instrument in bench.roles.items():
        identity = " ".join(str(v) for k, v in instrument.identity().items() if v and k != "channel")
        channel = instrument.identity().get("channel")
        rows.append((role + (f" (channel {channel})" if channel else ""), identity, role_state(role, instrument)))
    return rows


class BenchPanel(QGroupBox):
    """Choose the bench; Connect opens it in a worker thread and lists its roles; Disconnect closes it."""

    changed = pyqtSignal(str)  # the bench spec new runs use
    connected = pyqtSignal()

    def __init__(self, spec: str = "sim", parent: QWidget | None = None) -> None:
        super().__init__("Bench", parent)
        self.bench: Bench | None = None
        self.path = QLineEdit(spec)
        self.path.setToolTip("'sim' (simulated bench on 127.0.0.1) or a bench TOML file")
        self.path.editingFinished.connect(lambda: self.changed.emit(self.spec()))
        browse = QPushButton("File…")
        browse.clicked.connect(self._browse)
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(self.open)
        self.disconnect_button = QPushButton("Disconnect", enabled=False)
        self.disconnect_button.clicked.connect(self.close_bench)
        self.state = QLabel("Not connected", wordWrap=True)
        self.roles = QTreeWidget()
        self.roles.setHeaderLabels(["role", "instrument; state"])
        self.roles.setRootIsDecorated(False)
        self.roles.setMaximumHeight(140)
        layout = QVBoxLayout(self)
        for widgets in ((self.path, browse), (self.connect_button, self.disconnect_button)):
            row = QHBoxLayout()
            for w in widgets:
                row.addWidget(w)
            layout.addLayout(row)
        layout.addWidget(self.state)
        layout.addWidget(self.roles)

    def spec(self) -> str:
        return self.path.text().strip() or "sim"

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Bench file", "", "Bench files (*.toml);;All files (*)")
        if path:
            self.path.setText(path)
            self.changed.emit(self.spec())

    def open(self) -> None:
        """Open the bench and read its roles in a worker thread; the UI stays live meanwhile."""
        self._release()
        spec = self.spec()
        self.connect_button.setEnabled(False)
        self.state.setText(f"Connecting to {spec}…")

        def connect() -> tuple[Bench, list[tuple[str, str, str]]]:
            bench = open_bench(spec)
            try:
                return bench, describe(bench)
            except BaseException:
                bench.close()
                raise

        Worker.run(connect, self._opened, self._failed)

    def _opened(self, result: tuple[Bench, list[tuple[str, str, str]]]) -> None:
        self.bench, rows = result
        self.roles.clear()
        for role, identity, state in rows:
            item = QTreeWidgetItem([role, f"{identity}\n{state}"])
            item.setToolTip(1, f"{identity}\n{state}")
            self.roles.addTopLevelItem(item)
        self.roles.resizeColumnToContents(0)
        self.state.setText(f"Connected to {self.bench.name} ({len(rows)} roles)")
        self.connect_button.setEnabled(True)
        self.disconnect_button.setEnabled(True)
        self.connected.emit()

    def _failed(self, message: str) -> None:
        self.state.setText(f"Not connected: {message}")
        self.connect_button.setEnabled(True)

    def close_bench(self) -> None:
        """Disconnect (in a worker thread: a real instrument may be slow to log out)."""
        if self.bench is not None:
            self.state.setText("Disconnecting…")
            self._release(lambda _: self.state.setText("Disconnected"))

    def _release(self, done: Callable[[Any], None] = lambda _: None) -> None:
        bench, self.bench = self.bench, None
        self.roles.clear()
        self.disconnect_button.setEnabled(False)
        if bench is not None:
            Worker.run(bench.close, done, self._failed)
