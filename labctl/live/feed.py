"""A run's live feed: each ``labctl run`` serves what its run emits on a Unix socket, for any number of viewers.

Wire format: one JSON object per line, UTF-8, ``{"topic": T, "seq": N, "record": R}``. A client first gets
``{"topic": "hello", "seq": 0, "record": {"run_id": …, "sent": {"sample": n, "event": n, "spectrum": n}}}``, then
every record published after it connected, and last ``{"topic": "end", "record": {"status": …, "error": …}}``.
``seq`` numbers each topic from 0: a sample's is its row in the time-series file, an event's its line in
events.jsonl, a spectrum's its order in spectra.csv. The run stores everything before publishing it, so a client
that reads the first ``sent`` records of each file and then applies the live records (which start at ``sent``)
sees each record exactly once.

Publishing never blocks the run: each client has a bounded queue and its own sending thread; a client that falls
``QUEUE_LINES`` behind is dropped: its stream stops, perhaps mid-line, without the end message (it can reconnect
and read the files again). The socket file is removed when the
feed closes, so its absence means the run has ended (or its process died). No Qt.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from labctl.engine.runner import Listeners, RunOutcome
from labctl.store.reader import RunReader

log = logging.getLogger(__name__)

FILE_TOPICS = ("sample", "event", "spectrum")  # the topics whose records are also lines of the run's files
QUEUE_LINES = 20_000  # lines a client may fall behind before it is dropped
CLOSE_WAIT_S = 2.0  # how long closing waits for clients to take their last lines


def feed_path(run_id: str) -> Path:
    """``<XDG_RUNTIME_DIR or the temp dir>/labctl-<uid>/<run_id>.sock``: short enough for AF_UNIX, private."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"labctl-{os.getuid()}" / f"{run_id}.sock"


def encode(topic: str, seq: int, record: Any) -> bytes:
    return (json.dumps({"topic": topic, "seq": seq, "record": record}, default=_plain) + "\n").encode()


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    return str(value)


class _Client:
    """One connected viewer: a bounded queue of lines and a thread that sends them."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.alive = True  # until its sending thread stops (the viewer went away)
        self.lines: queue.Queue[bytes | None] = queue.Queue(QUEUE_LINES)
        self.thread = threading.Thread(target=self._send, name="labctl-feed-client", daemon=True)

    def offer(self, line: bytes | None) -> bool:
        try:
            self.lines.put_nowait(line)
        except queue.Full:
            return False
        return True

    def drop(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a sendall blocked on a client that does not read
        except OSError:
            pass

    def finish(self, deadline: float) -> None:
        """Send what is queued (the end message last), waiting until ``deadline`` at most, then disconnect."""
        if not self.offer(None):
            self.drop()
        self.thread.join(max(0.0, deadline - time.monotonic()))
        self.drop()

    def _send(self) -> None:
        try:
            while (line := self.lines.get()) is not None:
                batch = [line]
                while len(batch) < 1000 and not self.lines.empty():
                    if (more := self.lines.get_nowait()) is None:
                        self.sock.sendall(b"".join(batch))
                        return
                    batch.append(more)
                self.sock.sendall(b"".join(batch))
        except OSError:
            pass  # the client went away or was dropped
        finally:
            self.alive = False
            self.sock.close()


class FeedServer:
    """Serve one run's records on ``feed_path(run_id)``; accept clients in a daemon thread."""

    def __init__(self, run_id: str, path: Path | None = None, stored: dict[str, int] | None = None) -> None:
        """``stored``: the records of each file topic already in the run's files (a resumed run's), which the
        feed's numbering goes on from."""
        self.run_id = run_id
        self.path = path or feed_path(run_id)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)  # only this user's viewers may connect
        self.path.unlink(missing_ok=True)  # a dead process's socket of the same run id
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(16)
        self._lock = threading.Lock()
        self._clients: list[_Client] = []
        self._seq: dict[str, int] = dict.fromkeys(FILE_TOPICS, 0) | (stored or {})
        self._closed = False
        threading.Thread(target=self._accept, name="labctl-feed", daemon=True).start()

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def publish(self, topic: str, record: Any) -> None:
        """Queue a record for every client; never blocks. A client whose queue is full is dropped."""
        with self._lock:
            seq = self._seq.get(topic, 0)
            self._seq[topic] = seq + 1
            if not self._clients:
                return
            line = encode(topic, seq, record)
            for client in [c for c in self._clients if not (c.alive and c.offer(line))]:
                if client.alive:
                    log.warning("live feed of %s: a viewer fell %d records behind and was dropped", self.run_id,
                                QUEUE_LINES)
                self._clients.remove(client)
                client.drop()

    def close(self, status: str, error: str | None = None) -> None:
        """Remove the socket file, send the end message, give clients a moment to take it, disconnect them."""
        if self._closed:
            return
        self.path.unlink(missing_ok=True)
        self.publish("end", {"status": status, "error": error})
        with self._lock:
            self._closed, clients, self._clients = True, self._clients, []
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self._listener.close()
        deadline = time.monotonic() + CLOSE_WAIT_S
        for client in clients:
            client.finish(deadline)

    def _accept(self) -> None:
        while True:
            try:
                sock, _address = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                if self._closed:
                    sock.close()
                    return
                client = _Client(sock)
                hello = {"run_id": self.run_id, "sent": {t: self._seq[t] for t in FILE_TOPICS}}
                client.offer(encode("hello", 0, hello))
                self._clients.append(client)
                client.thread.start()


class RunFeed:
    """Listeners that serve a run's records on its feed; a feed that cannot start never stops the run."""

    def __init__(self) -> None:
        self.server: FeedServer | None = None

    def listeners(self) -> Listeners:
        return Listeners(
            sample=partial(self._publish, "sample"), status=partial(self._publish, "status"),
            progress=partial(self._publish, "progress"), event=partial(self._publish, "event"),
            spectrum=self._spectrum, result=partial(self._publish, "result"), started=self._start, ended=self._end,
        )  # fmt: skip

    def _start(self, run_id: str, folder: Path) -> None:
        try:
            self.server = FeedServer(run_id, stored=stored_records(folder))
        except OSError as e:
            log.warning("run %s has no live feed (viewers will read its files): %s", run_id, e)

    def _publish(self, topic: str, record: Any) -> None:
        if self.server is not None:
            self.server.publish(topic, record)

    def _spectrum(self, spectrum: dict[str, Any]) -> None:
        points = spectrum["points"]
        self._publish("spectrum", {
            "index": spectrum["index"], "test_time_s": spectrum["test_time_s"], "cycle": spectrum["cycle"],
            "step": spectrum["step"], "freq_Hz": [float(f) for f, _z in points],
            "z_real_ohm": [float(z.real) for _f, z in points], "z_imag_ohm": [float(z.imag) for _f, z in points],
        })  # fmt: skip

    def _end(self, outcome: RunOutcome) -> None:
        if self.server is not None:
            try:
                self.server.close(outcome.status, outcome.error)
            except OSError as e:  # the run is over and stored; its viewers will read the registry
                log.warning("run %s: could not close its live feed: %s", outcome.run_id, e)
            self.server = None


def stored_records(folder: Path) -> dict[str, int]:
    """How many records of each file topic a run's folder holds (none for a new run; a resumed run's so far)."""
    reader = RunReader(folder)
    rows = reader.rows()
    return {"sample": 0 if rows is None else len(rows), "event": len(reader.events()), "spectrum": len(reader.spectra())}
