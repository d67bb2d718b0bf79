"""The lab link: an agent serves its runs' folders and live feeds over TCP to the other PCs of the lab.

One request per connection. The client sends one JSON line, ``{"token": T, "op": OP, "run": RUN_ID, ...}``; the
agent answers one JSON header line, ``{"ok": true, ...}`` or ``{"ok": false, "error": "<the problem and the fix>"}``,
then the payload:

- ``file`` (``name``, ``offset``): header ``{"size": bytes in the file, "length": n}``, then the file's n bytes from
  ``offset`` (at most ``MAX_FETCH_BYTES``; none past the end). Only plain files directly in the run's folder.
- ``list``: header ``{"files": {name: [size, mtime_ns]}}``, no payload.
- ``feed``: header only, then the run's live feed (:mod:`labctl.live.feed`'s JSON lines) until either side closes.

Nothing is encrypted: the token keeps other hosts out of a lab network, not eavesdroppers. No Qt.
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import json
import logging
import os
import selectors
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labctl.live.feed import feed_path

log = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 16
MAX_REQUEST_BYTES = 4096  # a request line is ~150 bytes; anything longer is not a client of ours
MAX_HEADER_BYTES = 1 << 20  # a listing of a folder with many exports
MAX_FETCH_BYTES = 8 << 20  # one file request's payload at most, so neither side holds a long run's file at once
MAX_CONNECTIONS = 64  # served at once; more are refused (each holds a thread)
REQUEST_TIMEOUT_S = 5.0  # the whole request line must come within this
TIMEOUT_S = 10.0  # a client's wait for the agent; an agent's wait on a client that stopped reading
CHUNK = 1 << 16
WRONG_TOKEN = "the lab token differs from the agent's: give this PC the lab's token ([link] token in lab.toml or LABCTL_TOKEN)"


class LinkError(Exception):
    """The agent could not be reached or refused the request; the message names the agent and what to do."""


class _Refused(Exception):
    """A request the agent answers with an error header."""


class Connections:
    """Serves each connection ``listener`` accepts in a daemon thread of its own, at most ``limit`` at once (one beyond
    that is given to ``refuse``, then closed), and cuts the ones being served on ``cut_all``."""

    def __init__(self, listener: socket.socket, serve: Callable[[socket.socket], None], limit: int, name: str,
                 refuse: Callable[[socket.socket], None] = lambda sock: None) -> None:  # fmt: skip
        self._listener, self._serve, self._refuse, self._name = listener, serve, refuse, name
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, name=name, daemon=True).start()

    def track(self, sock: socket.socket) -> None:
        """Cut ``sock`` too on ``cut_all`` (a connection a served one opened), until ``untrack``."""
        with self._lock:
            self._open.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)

    def cut_all(self) -> None:
        with self._lock:
            for sock in self._open:
                cut(sock)

    def _accept(self) -> None:
        while True:
            try:
                sock, _address = self._listener.accept()
            except OSError:
                return  # closed
            if not self._slots.acquire(blocking=False):
                self._refuse(sock)
                sock.close()
                continue
            threading.Thread(target=self._run, args=(sock,), name=f"{self._name}-connection", daemon=True).start()

    def _run(self, sock: socket.socket) -> None:
        self.track(sock)
        try:
            self._serve(sock)
        finally:
            self.untrack(sock)
            sock.close()
            self._slots.release()


class LinkServer:
    """Serves, for each run ``folder_of(run_id)`` knows (None: not a run of this agent), its folder and live feed."""

    def __init__(self, folder_of: Callable[[str], Path | None], token: str, host: str = "127.0.0.1", port: int = 0) -> None:
        if not is_loopback(host) and len(token) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"[link] listen: serving runs on {host}, beyond this PC, needs a lab token of at least "
                f"{MIN_TOKEN_CHARS} characters: set [link] token in lab.toml (or LABCTL_TOKEN), or "
                "listen on 127.0.0.1"
            )
        self._folder_of = folder_of
        self._token = token.encode()
        self._listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._connections = Connections(self._listener, self._handle, MAX_CONNECTIONS, "labctl-link", refuse=lambda sock:
                                        _send_header(sock, {"ok": False, "error": "the agent serves too many "
                                                            "connections: try again shortly"}))  # fmt: skip

    @property
    def address(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def close(self) -> None:
        """Stop listening and cut the connections being served (feeds included)."""
        cut(self._listener)  # wakes the accepting thread
        self._listener.close()
        self._connections.cut_all()

    def _handle(self, sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # a desk that vanished is noticed
            line, rest = _request_line(sock)
            self._serve(sock, self._checked(line), rest)
        except _Refused as e:
            _send_header(sock, {"ok": False, "error": str(e)})
        except OSError:
            pass  # the client went away or stalled
        except Exception:
            log.exception("lab link: a request failed")

    def _checked(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            request = None
        if not isinstance(request, dict):
            raise _Refused('the request is not one JSON object in UTF-8: send {"token": …, "op": …, "run": …} and a newline')
        token = request.get("token")
        if self._token and not (isinstance(token, str) and hmac.compare_digest(token.encode(), self._token)):
            raise _Refused(WRONG_TOKEN)
        return request

    def _serve(self, sock: socket.socket, request: dict[str, Any], rest: bytes) -> None:
        op, run = request.get("op"), request.get("run")
        if op not in ("file", "list", "feed"):
            raise _Refused(f"unknown op {op!r}: use file, list or feed")
        folder = self._folder_of(run) if is_plain_name(run) else None
        if folder is None:
            raise _Refused(f"run {run!r} is not served by this agent: ask the agent of the PC that runs it")
        sock.settimeout(TIMEOUT_S)
        if op == "file":
            _send_file(sock, folder, request.get("name"), request.get("offset", 0))
        elif op == "list":
            _send_header(sock, {"ok": True, "files": _listing(folder, run)})
        else:
            _send_feed(sock, run, rest)


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the link on this PC."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_plain_name(name: object) -> bool:
    """A file or run name that cannot leave its folder: no separator, not hidden (nor ``.``/``..``), no NUL."""
    return isinstance(name, str) and bool(name) and not name.startswith(".") and not any(c in name for c in ("/", "\\", "\0"))


def _request_line(sock: socket.socket) -> tuple[bytes, bytes]:
    """The request line and any bytes after it, within ``REQUEST_TIMEOUT_S`` and ``MAX_REQUEST_BYTES``."""
    deadline = time.monotonic() + REQUEST_TIMEOUT_S
    data = b""
    while b"\n" not in data:
        if len(data) > MAX_REQUEST_BYTES:
            raise _Refused(f"the request line is longer than {MAX_REQUEST_BYTES} bytes: send one short JSON line")
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            chunk = sock.recv(MAX_REQUEST_BYTES + 1 - len(data))
        except TimeoutError:
            raise _Refused(f"no whole request line within {REQUEST_TIMEOUT_S:g} s: send it at once after connecting") from None
        if not chunk:
            raise OSError("the client closed before a whole request line")
        data += chunk
    line, _, rest = data.partition(b"\n")
    if len(line) > MAX_REQUEST_BYTES:
        raise _Refused(f"the request line is longer than {MAX_REQUEST_BYTES} bytes: send one short JSON line")
    return line, rest


def _send_header(sock: socket.socket, header: dict[str, Any]) -> None:
    try:
        sock.sendall((json.dumps(header) + "\n").encode())
    except OSError:
        pass  # the client went away; nothing to tell


def _send_file(sock: socket.socket, folder: Path, name: object, offset: object) -> None:
    if not is_plain_name(name):
        raise _Refused(f"{name!r} is not a file of the run's folder: give a plain file name in it (no path, not hidden)")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise _Refused(f"offset {offset!r}: give a whole number of bytes, 0 or more")
    try:  # no symlink is followed out of the folder, no FIFO blocks the thread
        fd = os.open(folder / str(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        problem = "is a link, not a file," if e.errno == errno.ELOOP else f"cannot be read ({e.strerror or e})"
        raise _Refused(f"{name!r} {problem} in the run's folder: list the folder for its files") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _Refused(f"{name!r} is not a plain file of the run's folder: list the folder for its files")
    with os.fdopen(fd, "rb") as f:
        length = max(0, min(st.st_size - offset, MAX_FETCH_BYTES))
        _send_header(sock, {"ok": True, "size": st.st_size, "length": length})
        if length:
            sock.sendfile(f, offset, length)


def _listing(folder: Path, run: str) -> dict[str, list[int]]:
    """The folder's plain files as [size, mtime_ns]; not the ``.tmp`` files a writer is about to rename."""
    files = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if is_plain_name(entry.name) and not entry.name.endswith(".tmp") and entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    files[entry.name] = [st.st_size, st.st_mtime_ns]
    except OSError as e:
        raise _Refused(
            f"run {run}'s folder cannot be read on this agent ({e.strerror or e}): check the agent's store"
        ) from None
    return files


def _send_feed(sock: socket.socket, run: str, rest: bytes) -> None:
    feed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with feed:
        try:
            feed.connect(str(feed_path(run)))
        except OSError:
            raise _Refused(
                f"run {run} has no live feed on this agent (it has ended, or not started yet): read its folder"
            ) from None
        _send_header(sock, {"ok": True})
        if rest:
            feed.sendall(rest)
        splice(feed, sock)


def splice(a: socket.socket, b: socket.socket, seen: Callable[[bytes], None] = lambda data: None) -> None:
    """Copy bytes both ways until either side closes or stalls ``TIMEOUT_S`` on a send; ``seen`` gets what ``a``
    sent. Waits without limit for data: a feed may be quiet for hours."""
    peer = {a: b, b: a}
    for sock in peer:
        sock.settimeout(TIMEOUT_S)
    with selectors.DefaultSelector() as selector:
        for sock in peer:
            selector.register(sock, selectors.EVENT_READ)
        while True:
            for key, _events in selector.select():
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(CHUNK)
                    if not data:
                        return
                    peer[source].sendall(data)
                except OSError:
                    return
                if source is a:
                    seen(data)


def cut(sock: socket.socket) -> None:
    """Shut a socket down both ways, waking the thread blocked on it; quiet if it is gone already."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# The client side: one connection per call.


def fetch(address: str, token: str, run_id: str, name: str, offset: int = 0) -> bytes:
    """The run's file ``name`` from byte ``offset`` to its end as it is now, at most ``MAX_FETCH_BYTES`` of it (ask
    again from where it stopped); b"" at or past the end."""
    sock, header = _ask(address, token, {"op": "file", "run": run_id, "name": name, "offset": offset})
    with sock, _worded(address):
        data = bytearray()
        while len(data) < header["length"]:
            chunk = sock.recv(min(CHUNK, header["length"] - len(data)))
            if not chunk:
                raise LinkError(f"the lab agent at {address} closed the connection in the middle of {name}: try again")
            data += chunk
        return bytes(data)


def listing(address: str, token: str, run_id: str) -> dict[str, tuple[int, int]]:
    """The run folder's plain files: name → (size in bytes, modification time in ns)."""
    sock, header = _ask(address, token, {"op": "list", "run": run_id})
    sock.close()
    return {name: (size, mtime_ns) for name, (size, mtime_ns) in header["files"].items()}


def open_feed(address: str, token: str, run_id: str) -> socket.socket:
    """A connection to the run's live feed, past the header: read its JSON lines (hello first) until it closes."""
    sock, _header = _ask(address, token, {"op": "feed", "run": run_id})
    sock.settimeout(None)  # a feed may be quiet for hours
    return sock


def read_line(sock: socket.socket, limit: int) -> bytes:
    """One line with its newline, read byte by byte so that nothing after it leaves the socket; b"" on a close
    before the newline."""
    line = bytearray()
    while len(line) < limit and not line.endswith(b"\n"):
        byte = sock.recv(1)
        if not byte:
            return b""
        line += byte
    return bytes(line) if line.endswith(b"\n") else b""


def _ask(address: str, token: str, request: dict[str, Any]) -> tuple[socket.socket, dict[str, Any]]:
    """Send the request; the connection and the agent's header (LinkError if it refused)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise LinkError(f"{address!r} is not a lab agent's address: give it as host:port")
    with _worded(address):
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=TIMEOUT_S)
    try:
        with _worded(address):
            sock.sendall((json.dumps({"token": token, **request}) + "\n").encode())
            header = json.loads(read_line(sock, MAX_HEADER_BYTES) or b"null")
    except BaseException:
        sock.close()
        raise
    if not isinstance(header, dict) or not header.get("ok"):
        sock.close()
        if not isinstance(header, dict):
            raise LinkError(f"the lab agent at {address} closed the connection without an answer: check its log")
        raise LinkError(f"the lab agent at {address} refused: {header.get('error')}")
    return sock, header


@contextmanager
def _worded(address: str) -> Iterator[None]:
    """Turns socket errors into a LinkError naming the agent and what to check."""
    try:
        yield
    except ConnectionRefusedError as e:
        raise LinkError(
            f"the lab agent at {address} refused the connection: check that its `labctl serve` runs and listens on that port"
        ) from e
    except TimeoutError as e:
        raise LinkError(
            f"the lab agent at {address} did not answer within {TIMEOUT_S:g} s: check that its PC is up and the network between"
        ) from e
    except ValueError as e:
        raise LinkError(f"{address} answered something that is not the lab link: check the agent's address") from e
    except OSError as e:
        raise LinkError(
            f"the lab agent at {address} could not be reached ({e.strerror or e}): check the address and the network"
        ) from e
