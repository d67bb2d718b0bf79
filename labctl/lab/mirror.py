"""A desk's view of runs on other PCs: a local copy of their folders, and a relay of their live feeds.

``Mirror.sync(run_id, address)`` brings ``<cache>/<run_id>/`` up to date from the run's agent, so that
``RunReader(mirror.folder(run_id))`` reads it as it reads a local run. Files a run appends to are fetched from the
copy's size on, whole lines only; files it rewrites whole (metadata, results, exports) are fetched whole when their
size or time changed and renamed into place, so a reader never sees half of one. ``Mirror.relay(run_id, address)``
serves the run's feed on its usual Unix socket (``feed_path``), so a viewer follows a remote run as a local one: for
each viewer it opens the agent's feed, reads the hello, syncs the copy (the run stored those records before it
published them) and then forwards the hello and the rest. No Qt.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
from pathlib import Path
from typing import BinaryIO

from labctl.lab.link import (
    TIMEOUT_S,
    Connections,
    LinkError,
    cut,
    fetch,
    is_plain_name,
    listing,
    open_feed,
    read_line,
    splice,
)
from labctl.live.feed import feed_path
from labctl.store.folder import EVENTS, PLAIN_TIMESERIES, SPECTRA, TIMESERIES, make_folder, open_private

log = logging.getLogger(__name__)

APPENDED = frozenset({TIMESERIES, PLAIN_TIMESERIES, EVENTS, SPECTRA})  # the files a run only appends lines to
MAX_VIEWERS = 16  # viewers of one relayed run at once (each holds a thread and a connection to the agent)
MAX_HELLO_BYTES = 1 << 16
TAIL_BYTES = 1 << 16  # what a relay keeps of a stream's end to see its end record


class Mirror:
    """Local copies of remote run folders under ``cache``, and relays of their feeds."""

    def __init__(self, cache: Path, token: str) -> None:
        self.cache = Path(cache)
        self._token = token
        self._lock = threading.Lock()
        self._run_locks: dict[str, threading.Lock] = {}
        self._relays: dict[str, _Relay] = {}

    def folder(self, run_id: str) -> Path:
        if not is_plain_name(run_id):
            raise ValueError(f"{run_id!r} is not a run id")
        return self.cache / run_id

    def sync(self, run_id: str, address: str) -> Path:
        """Bring the copy of the run's folder up to date from its agent at ``address``; its path. LinkError if the
        agent cannot be asked (the copy keeps what it had)."""
        folder = self.folder(run_id)
        with self._lock:
            run_lock = self._run_locks.setdefault(run_id, threading.Lock())
        with run_lock:
            files = listing(address, self._token, run_id)
            make_folder(folder)
            for name, (size, mtime_ns) in files.items():
                if is_plain_name(name):  # what an agent names must not lead out of the copy
                    self._update(run_id, address, folder / name, size, mtime_ns)
        return folder

    def relay(self, run_id: str, address: str) -> bool:
        """Serve the run's feed from its agent at ``address`` on ``feed_path(run_id)``; False when a live socket is
        there already (the run is local, or relayed by another process). Idempotent."""
        with self._lock:
            current = self._relays.get(run_id)
            if current is not None and current.serving:
                return True
            listener = _listen(feed_path(run_id))
            if listener is None:
                return False
            self._relays[run_id] = _Relay(self, run_id, address, listener)
            return True

    def close(self) -> None:
        """Stop every relay, removing its socket and cutting its viewers."""
        with self._lock:
            relays, self._relays = list(self._relays.values()), {}
        for relay in relays:
            relay.close()

    def _update(self, run_id: str, address: str, path: Path, size: int, mtime_ns: int) -> None:
        try:
            local = path.stat()
        except FileNotFoundError:
            local = None
        appended = path.name in APPENDED
        if appended and local is not None and local.st_size <= size:  # grown: the new whole lines
            if local.st_size == size:
                return
            with open_private(path, "ab") as f:
                self._copy(run_id, address, path.name, f, local.st_size, size, lines=True)
        elif local is None or (local.st_size, local.st_mtime_ns) != (size, mtime_ns):  # new, rewritten, shrunk
            part = path.with_name(f".{path.name}.part")
            try:
                with open_private(part, "wb") as f:
                    self._copy(run_id, address, path.name, f, 0, size, lines=appended)
                os.replace(part, path)
            finally:
                part.unlink(missing_ok=True)
        else:
            return
        os.utime(path, ns=(mtime_ns, mtime_ns))  # the agent's time: what ``_update`` compares, and last_written

    def _copy(self, run_id: str, address: str, name: str, f: BinaryIO, offset: int, size: int, lines: bool) -> None:
        """Write the remote file's bytes from ``offset`` up to ``size`` (up to its last newline when ``lines``)."""
        while offset < size:
            data = fetch(address, self._token, run_id, name, offset)
            if lines:
                data = data[: data.rfind(b"\n") + 1]  # a line being written is fetched again next time
            if not data:
                return
            f.write(data)
            offset += len(data)


class _Relay:
    """Serves one remote run's feed on its local socket: an agent connection per viewer, in bounded daemon threads."""

    def __init__(self, mirror: Mirror, run_id: str, address: str, listener: socket.socket) -> None:
        self.serving = True
        self._mirror, self._run_id, self._address = mirror, run_id, address
        self._listener = listener
        self._path = Path(listener.getsockname())
        self._inode = self._path.stat().st_ino  # a local run that took the path over keeps its socket
        self._lock = threading.Lock()
        self._connections = Connections(listener, self._serve, MAX_VIEWERS, "labctl-relay")

    def stop(self) -> None:
        """Remove the socket (the run's feed has ended here too); viewers being served go on to their end."""
        with self._lock:
            if not self.serving:
                return
            self.serving = False
        try:
            if self._path.stat().st_ino == self._inode:
                self._path.unlink()
        except FileNotFoundError:
            pass
        cut(self._listener)
        self._listener.close()

    def close(self) -> None:
        self.stop()
        self._connections.cut_all()

    def _serve(self, viewer: socket.socket) -> None:
        """One viewer (one beyond ``MAX_VIEWERS`` is closed: it reads the folder and retries, as after any drop)."""
        try:
            self._forward(viewer)
        except (LinkError, OSError) as e:
            log.info("relay of run %s from %s: %s", self._run_id, self._address, e)

    def _forward(self, viewer: socket.socket) -> None:
        try:
            agent = open_feed(self._address, self._mirror._token, self._run_id)
        except LinkError:
            self._mirror.sync(self._run_id, self._address)  # no feed there: the viewer will read the whole folder
            raise
        tail = _Tail()
        with agent:
            self._connections.track(agent)
            try:
                agent.settimeout(TIMEOUT_S)  # the hello comes at once from a feed that is there
                hello = read_line(agent, MAX_HELLO_BYTES)
                if not hello:
                    return
                self._mirror.sync(self._run_id, self._address)  # holds at least the records the hello says were sent
                viewer.sendall(hello)
                splice(agent, viewer, tail.see)
            finally:
                self._connections.untrack(agent)
        if tail.ended():
            self.stop()

class _Tail:
    """The last bytes of a feed stream: whether it stopped after its end record (a dropped viewer's does not)."""

    def __init__(self) -> None:
        self.data = b""

    def see(self, data: bytes) -> None:
        self.data = (self.data + data)[-TAIL_BYTES:]

    def ended(self) -> bool:
        if not self.data.endswith(b"\n"):
            return False
        try:
            record = json.loads(self.data[:-1].rpartition(b"\n")[2])
        except ValueError:
            return False
        return isinstance(record, dict) and record.get("topic") == "end"


def _listen(path: Path) -> socket.socket | None:
    """A listener on ``path``, or None when a live socket is there (a socket nobody listens on is a dead process's)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)  # as the feed's: only this user's viewers may connect
    if os.path.lexists(path):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
                return None
            except ConnectionRefusedError:
                path.unlink(missing_ok=True)
            except OSError:
                return None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
    except OSError as e:
        listener.close()
        if e.errno == errno.EADDRINUSE:
            return None  # another process bound it first
        raise
    listener.listen(16)
    return listener
