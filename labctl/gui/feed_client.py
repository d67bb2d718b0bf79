"""Follow one run into a :class:`~labctl.live.state.RunState`: history from its folder, then its live feed.

On the feed's hello the client reads the folder up to the counts the hello says were sent (all of it is on disk by
then), then applies the live records, which start at those counts: each sample, event and spectrum exactly once.
Without a feed (the run has ended, its process died, or it has not opened its feed yet) it asks the store's
registry: a run still running is retried shortly; any other is read whole from its folder and reported ended with
the registry's status. A feed that stops without its end message (a viewer too slow was dropped, or the process
died) is reconnected the same way, reading only what the state does not hold yet.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from PyQt6.QtCore import QObject, QTimer, pyqtSignal
from PyQt6.QtNetwork import QLocalSocket

from labctl.gui.outage import riding_out
from labctl.live.feed import FILE_TOPICS, feed_path
from labctl.live.state import RunState, registry_status

log = logging.getLogger(__name__)

RETRY_MS = 250  # a running run whose feed is not there yet is retried this often


class FeedClient(QObject):
    ended = pyqtSignal(str)  # the run's final status

    def __init__(self, run_id: str, folder: Path, state: RunState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.run_id = run_id
        self.folder = folder
        self.state = state
        self.live = False  # between a hello and the end of that connection
        self._done = False
        self._buffer = b""
        self._socket = QLocalSocket(self)
        self._socket.readyRead.connect(self._read)
        self._socket.errorOccurred.connect(self._unreachable)
        self._socket.disconnected.connect(self._disconnected)
        self._retry = QTimer(self, singleShot=True, interval=RETRY_MS)
        self._retry.timeout.connect(self._connect)
        QTimer.singleShot(0, self._connect)  # once the caller has connected to ``ended``: a failure is immediate

    def close(self) -> None:
        """Stop following (the run goes on)."""
        self._done = True
        self._retry.stop()
        self._socket.abort()

    @riding_out
    def _connect(self) -> None:
        if not self._done:
            self._buffer = b""
            self._socket.connectToServer(str(feed_path(self.run_id)))

    def _read(self) -> None:
        self._buffer += bytes(self._socket.readAll().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            self._take(message["topic"], message["seq"], message["record"])
            if self._done:
                return

    def _take(self, topic: str, seq: int, record: object) -> None:
        if topic == "hello":
            self.live = True
            self.state.apply("hello", record)
            self.state.load(self.folder, limits=record["sent"])  # type: ignore[index]
        elif topic in FILE_TOPICS and seq < self.state.counts()[topic]:
            return  # already read from the folder
        else:
            self.state.apply(topic, record)
            if topic == "end":
                self._finish(self.state.status)

    def _unreachable(self, error: QLocalSocket.LocalSocketError) -> None:
        if error == QLocalSocket.LocalSocketError.PeerClosedError:
            return  # handled as a disconnection
        if not self._done and not self.live:
            self._without_feed()

    def _disconnected(self) -> None:
        if not self._done:
            self._read()  # whole lines that came before the stream stopped
        self.live = False
        if not self._done:
            self._without_feed()

    def _without_feed(self) -> None:
        if registry_status(self.folder, self.run_id) == "running":
            self._retry.start()
            return
        self.state.load(self.folder)  # what the state does not hold yet; the status as the registry has it
        self._finish(self.state.status)

    def _finish(self, status: str) -> None:
        self._done = True
        self._retry.stop()
        self._socket.abort()
        self.ended.emit(status)
