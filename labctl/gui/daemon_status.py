"""The status-bar widget for the queue daemon: whether ``labctl serve`` serves this store, and a button that
starts it as ``labctl serve --detach`` would (its own session, output to its log), so closing the window leaves
it and its runs going."""

from __future__ import annotations

import subprocess
from pathlib import Path

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from labctl.queue.daemon import LOGS, SERVE_LOG, daemon_pid, labctl_command


def start_daemon(root: Path) -> subprocess.Popen[bytes]:
    """Start ``labctl serve`` on ``root`` in its own session without waiting for it (the caller watches the lock)."""
    (root / LOGS).mkdir(parents=True, exist_ok=True)
    cmd = labctl_command("serve", "--store", str(root), "--detached")
    with (root / LOGS / SERVE_LOG).open("ab") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


class DaemonStatus(QWidget):
    """The daemon's state ("running, pid N" or "not running") and a Start button; looks again every ``poll_ms``."""

    def __init__(self, root: Path, poll_ms: int = 1000, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.root = root
        self.process: subprocess.Popen[bytes] | None = None  # the daemon this window started, if any
        self.label = QLabel()
        self.start_button = QPushButton("Start daemon")
        self.start_button.setToolTip(f"labctl serve --store {root} --detach: runs the queue, also after this window closes")
        self.start_button.clicked.connect(self.start)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.start_button)
        self._timer = QTimer(self, interval=poll_ms)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def pid(self) -> int | None:
        return daemon_pid(self.root)

    def start(self) -> None:
        if self.pid() is None and not self._starting():
            self.process = start_daemon(self.root)
        self.refresh()

    def _starting(self) -> bool:
        return self.process is not None and self.process.poll() is None and self.pid() != self.process.pid

    def refresh(self) -> None:
        pid = self.pid()
        if pid is not None:
            text = f"labctl serve: running, pid {pid}"
        elif self._starting():
            text = "labctl serve: starting…"
        elif self.process is not None and self.process.returncode not in (None, 0):
            text = f"labctl serve: exited with {self.process.returncode}; see {self.root / LOGS / SERVE_LOG}"
        else:
            text = "labctl serve: not running (queued runs wait)"
        self.label.setText(text)
        self.start_button.setEnabled(pid is None and not self._starting())
