"""One call in a background thread, its result or error handed back to the UI thread: for work that may take
seconds (opening a bench, analysing a long run) and must not freeze the window."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar

from PyQt6.QtCore import QObject, pyqtSignal


class Worker(QObject):
    """Runs one call in a thread and hands its result or error to the UI thread (queued signals)."""

    done = pyqtSignal(object)
    failed = pyqtSignal(str)
    _running: ClassVar[set[Worker]] = set()  # kept alive until their call returns

    @classmethod
    def run(cls, call: Callable[[], Any], done: Callable[[Any], None], failed: Callable[[str], None]) -> None:
        worker = cls()
        worker.done.connect(done)
        worker.failed.connect(failed)
        cls._running.add(worker)
        threading.Thread(target=worker._call, args=(call,), daemon=True, name="labctl-gui-worker").start()

    def _call(self, call: Callable[[], Any]) -> None:
        try:
            self.done.emit(call())
        except Exception as e:  # shown to the operator, never raised into Qt
            self.failed.emit(str(e))
        finally:
            Worker._running.discard(self)
