"""The window's periodic looks at the store's database ride out an outage (a lab's PostgreSQL restarting, the network
down, an SQLite file locked for long): a look that fails says so and the next one tries again (the database
reconnects), instead of an exception leaving a Qt slot, which ends the process under PyQt6."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from PyQt6.QtWidgets import QMainWindow, QWidget

from labctl.store.db import unavailable

log = logging.getLogger(__name__)
SHOWN_MS = 5000  # the status bar's message lasts past the next look, which renews it while the outage goes on


def riding_out(look: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a widget's (or a QObject's) periodic look, a method: connected as a bound method, Qt still drops the
    connection when the object goes."""

    @functools.wraps(look)
    def method(self: Any, *args: Any) -> Any:
        try:
            return look(self, *args)
        except Exception as e:
            if not unavailable(e):
                raise
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            text = f"The store's database does not answer ({detail}); looking again shortly. Runs go on."
            log.warning(text)
            window = self.window() if isinstance(self, QWidget) else None
            if isinstance(window, QMainWindow):
                window.statusBar().showMessage(text, SHOWN_MS)
            return None

    return method
