"""Alerts: what a researcher wants to hear of without watching the window. A short or contact loss that ended a
test, a run that failed, a run that finished: each once per run, as a desktop notification (through the system
tray, when the desktop has one) and as ``alerted`` text for the status bar, and through the operator's hook
(``CMD RUN_ID WHAT``, as ``labctl serve --notify`` and ``labctl follow --notify`` run it: WHAT is the short's kind,
``hard_short`` or ``contact_loss``, or the run's status, ``failed`` or ``finished``).

Never a modal dialog: a night's alerts must not stack up in front of the window, nor stop it from updating.
Alerts watch the event log's stream (:class:`labctl.gui.event_log.EventLog`), so they come for every run in the
store, also for those the window does not show.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from PyQt6.QtCore import QObject, QTimer, pyqtSignal
from PyQt6.QtWidgets import QApplication, QStyle, QSystemTrayIcon

from labctl.gui.event_log import RUN_ENDED, EventLog, LogEvent
from labctl.notify import start_hook
from labctl.queue.daemon import LOGS

log = logging.getLogger(__name__)

NOTIFY_LOG = "gui-notify.log"  # the hook's output, in the store's logs folder
SHOWN_MS = 30_000  # how long a desktop notification stays (where the desktop honours it)
ENDS_ALERTED = ("failed", "finished")  # aborted is the operator's own doing; interrupted runs are mostly resumed
Icon = QSystemTrayIcon.MessageIcon


@dataclass(frozen=True)
class Alert:
    run_id: str
    what: str  # the hook's WHAT: the short's kind or the run's status
    title: str
    text: str
    icon: QSystemTrayIcon.MessageIcon


def alert_of(event: LogEvent) -> Alert | None:
    """The alert an event calls for, if any."""
    where = f"Run {event.run_id}" + (f" on channel {event.channel}" if event.channel else "")
    record = event.record
    if record.get("ends_test") is True:
        name = event.kind.replace("_", " ")
        density = record.get("current_density_mA_cm2")
        at = f" at {density:g} mA/cm²" if isinstance(density, int | float) else ""
        return Alert(event.run_id, event.kind, f"Cell failed: {name}", f"{where}: {name}{at}; the test has ended",
                     Icon.Critical)  # fmt: skip
    status = record.get("status")
    if event.kind != RUN_ENDED or status not in ENDS_ALERTED:
        return None
    said = record.get("error") or record.get("brief") or record.get("headline")
    text = f"{where} {status}" + (f": {said}" if said else "")
    return Alert(event.run_id, status, f"Run {status}", text, Icon.Critical if status == "failed" else Icon.Information)


class Alerts(QObject):
    """Alerts from ``event_log``'s new events; ``notify`` is the operator's hook command (None: none), run with its output
    in the store ``root``'s logs. ``tray`` shows desktop notifications; by default the desktop's system tray, when
    there is one. Without a ``parent`` the alerts belong to the log: they go with it."""

    alerted = pyqtSignal(str)  # the text of each alert, for the status bar

    def __init__(self, event_log: EventLog, root: Path, notify: str | None = None, tray: QSystemTrayIcon | None = None,
                 parent: QObject | None = None) -> None:  # fmt: skip
        super().__init__(parent if parent is not None else event_log)
        self.notify = notify
        self.hook_log = root / LOGS / NOTIFY_LOG
        self.tray = tray if tray is not None else desktop_tray(self)
        self.sent: set[tuple[str, str]] = set()  # (run, what): each alert once
        self.hooks: list[subprocess.Popen[bytes]] = []
        self._reaper = QTimer(self, interval=1000)  # the hooks' processes are this one's children until they end
        self._reaper.timeout.connect(self._reap)
        event_log.arrived.connect(self.take)

    def take(self, events: list[LogEvent]) -> None:
        for event in events:
            alert = alert_of(event)
            if alert is not None and (alert.run_id, alert.what) not in self.sent:
                self.sent.add((alert.run_id, alert.what))
                self.raise_alert(alert)

    def raise_alert(self, alert: Alert) -> None:
        if self.tray is not None:
            self.tray.showMessage(alert.title, alert.text, alert.icon, SHOWN_MS)
        self.alerted.emit(alert.text)
        if self.notify:
            self._run_hook(alert)

    def _run_hook(self, alert: Alert) -> None:
        self.hook_log.parent.mkdir(parents=True, exist_ok=True)
        if hook := start_hook(self.notify or "", alert.run_id, alert.what, self.hook_log):
            self.hooks.append(hook)
            self._reaper.start()

    def _reap(self) -> None:
        for hook in [h for h in self.hooks if h.poll() is not None]:
            self.hooks.remove(hook)
            if hook.returncode:
                log.error("notify: %r exited with %d (its output is in %s)", hook.args, hook.returncode, self.hook_log)
        if not self.hooks:
            self._reaper.stop()

    def close(self) -> None:
        """Take the tray icon away (hooks still running go on: they are in sessions of their own)."""
        if self.tray is not None:
            self.tray.hide()


def desktop_tray(parent: QObject) -> QSystemTrayIcon | None:
    """An icon in the desktop's system tray, to show notifications from; None where the desktop has no tray."""
    if not QSystemTrayIcon.isSystemTrayAvailable():
        return None
    style = QApplication.style()
    icon = style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning) if style is not None else None
    tray = QSystemTrayIcon(parent) if icon is None else QSystemTrayIcon(icon, parent)
    tray.setToolTip("labctl: alerts of shorts, failed and finished runs")
    tray.show()
    return tray
