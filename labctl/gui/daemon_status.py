"""The status-bar widget for the queue daemon: its state, a button that starts it as ``labctl serve --detach``
would (its own session, output to its log, so closing the window leaves it and its runs going), and a button that
stops it as the command line does (SIGTERM: the daemon stops its runs in order, each putting its channel at rest).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from labctl.gui.outage import riding_out
from labctl.queue.agents import Agents, agents_text
from labctl.queue.daemon import LOGS, SERVE_LOG, daemon_pid, labctl_command
from labctl.store import Store

# What the window adds to the form's "Queued entry N" while no daemon runs, and takes away once one does
WAITS_FOR_DAEMON = "; it starts once the daemon runs: press Start daemon (bottom right)"


def start_daemon(root: Path) -> subprocess.Popen[bytes]:
    """Start ``labctl serve`` on ``root`` in its own session without waiting for it (the caller watches the lock)."""
    (root / LOGS).mkdir(parents=True, exist_ok=True)
    cmd = labctl_command("serve", "--store", str(root), "--detached")
    with (root / LOGS / SERVE_LOG).open("ab") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def running_channels(root: Path) -> list[str]:
    """The channels of the queue's running entries (what a stop of the daemon puts at rest)."""
    store = Store(root)
    try:
        return [str(e.channel or "?") for e in store.queue.entries() if e.active]
    finally:
        store.close()


def stop_question(channels: list[str]) -> str:
    if not channels:
        return "Stop the daemon? No run is going; queued runs wait until the daemon is started again."
    if len(channels) == 1:
        runs = f"its run (channel {channels[0]})"
    else:
        runs = f"its {len(channels)} runs (channels {', '.join(channels)})"
    return (f"Stop the daemon? It stops {runs} now: each puts its channel at rest and ends aborted, its data kept. "
            "This can take a minute. Queued runs wait until the daemon is started again.")  # fmt: skip


class DaemonStatus(QWidget):
    """The daemon's state (running, starting…, stopping…, not running, or stopped with an error and where its log
    is), Start and Stop buttons, and the same two as menu actions; looks again every ``poll_ms``. The daemon it
    stops need not be the one it started: it is whichever serves the store."""

    state_changed = pyqtSignal(bool)  # whether a daemon serves the store (a stopping one still does)

    def __init__(self, root: Path, poll_ms: int = 1000, parent: QWidget | None = None,
                 agents: Agents | None = None) -> None:
        """``agents``: in a lab, the lab's agents, named after this PC's daemon."""
        super().__init__(parent)
        self.root = root
        self.agents = agents
        self.process: subprocess.Popen[bytes] | None = None  # the daemon this window started, if any
        self.stopping: int | None = None  # the pid this window told to stop, until it has gone
        self.running = daemon_pid(root) is not None
        self.label = QLabel(toolTip=f"The daemon's log: {root / LOGS / SERVE_LOG}")
        self.start_button = QPushButton("Start daemon")
        self.start_button.setToolTip("Runs the queue in the background; it and its runs go on after this window "
                                     "closes")  # fmt: skip
        self.stop_button = QPushButton("Stop daemon…")
        self.stop_button.setToolTip("Stops the running runs in order (each channel put at rest); queued runs wait")
        self.start_action = QAction("Start daemon", self, triggered=self.start)
        self.stop_action = QAction("Stop daemon…", self, triggered=self.ask_stop)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.ask_stop)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.label, self.start_button, self.stop_button):
            layout.addWidget(widget)
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

    def ask_stop(self) -> None:
        """Stop the daemon once the researcher has agreed to what that does to the running runs."""
        if self.pid() is None or self.stopping is not None:
            return
        answer = QMessageBox.question(self, "Stop daemon", stop_question(running_channels(self.root)),
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)  # fmt: skip
        if answer == QMessageBox.StandardButton.Yes:
            self.stop()

    def stop(self) -> None:
        """SIGTERM to the daemon, as ``kill PID`` from a shell: it stops its runs in order, then itself."""
        pid = self.pid()
        if pid is None or pid <= 0:  # gone meanwhile, or the lock not yet written
            self.refresh()
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # it ended meanwhile
        except PermissionError:
            QMessageBox.warning(self, "Stop daemon", f"The daemon (pid {pid}) runs as another user: stop it as that "
                                "user.")  # fmt: skip
            return
        self.stopping = pid
        self.refresh()

    def _starting(self) -> bool:
        return self.process is not None and self.process.poll() is None and self.pid() != self.process.pid

    @riding_out
    def refresh(self) -> None:
        pid = self.pid()
        if pid != self.stopping:
            self.stopping = None  # it has gone (or another daemon serves the store now)
        starting = pid is None and self._starting()
        lab = f"  ·  lab {agents_text(self.agents.list())}" if self.agents is not None else ""
        self.label.setText(self._text(pid, starting) + lab)
        can_start, can_stop = pid is None and not starting, pid is not None and self.stopping is None
        for widget, enabled in ((self.start_button, can_start), (self.start_action, can_start),
                                (self.stop_button, can_stop), (self.stop_action, can_stop)):  # fmt: skip
            widget.setEnabled(enabled)
        if self.running != (pid is not None):
            self.running = pid is not None
            self.state_changed.emit(self.running)

    def _text(self, pid: int | None, starting: bool) -> str:
        if self.stopping is not None:
            return "Daemon: stopping… (its runs put their channels at rest)"
        if pid is not None:
            return f"Daemon: running, pid {pid}" if pid > 0 else "Daemon: running"
        if starting:
            return "Daemon: starting…"
        if self.process is not None and self.process.returncode not in (None, 0):
            return (f"Daemon: stopped with an error (exit code {self.process.returncode}); see its log "
                    f"{self.root / LOGS / SERVE_LOG}")  # fmt: skip
        return "Daemon: not running (queued runs wait)"
