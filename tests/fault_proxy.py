"""A TCP proxy on 127.0.0.1 between a driver and an emulator that injects wire faults into the replies.

The client side is copied through untouched; the server side is cut into replies (CTI feedback frames, or
lines for a line-based instrument such as the 1260) and each reply that matches a queued fault gets it:

- ``drop``: close the connection instead of forwarding the reply;
- ``delay``: forward it ``seconds`` late;
- ``cut``: forward its first half, then close;
- ``garble``: flip one bit (the CTI checksum then disagrees; a 1260 line has none);
- ``scale``: multiply a little-endian f32 at ``offset`` by ``factor`` and re-compute the CTI checksum, so the
  frame is valid and only the value is wrong;
- ``silent``: swallow the reply and every later one on that connection (the instrument stops answering).

Faults are consumed in order, each by the first reply whose 4-byte CTI command code (bytes 12..16) equals its
``command`` (None: any reply). The suite imports tests by path (--import-mode=importlib), so tests load this
module from its file with :func:`importlib.util.spec_from_file_location`.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass

CTI_TOKEN = bytes.fromhex("DD DD DD DD DD DD DD 11")
CTI_PREFIX = 12  # token + u32 total length of a feedback frame
POLL_S = 0.05


@dataclass
class Fault:
    kind: str  # drop, delay, cut, garble, scale, silent
    command: bytes | None = None  # a CTI feedback command code as wire bytes, None for any reply
    seconds: float = 0.0  # delay
    offset: int = 0  # scale: frame offset of the f32; garble: the byte to flip (0: the middle one)
    factor: float = 1.0  # scale
    count: int = 1  # replies it applies to; -1 for all of them


def cti_checksum(data: bytes) -> bytes:
    """The CTI checksum of ``data``: the plain byte sum, low 16 bits, little-endian."""
    return (sum(data) & 0xFFFF).to_bytes(2, "little")


class FaultProxy:
    """Listens on 127.0.0.1 (``port``) and forwards every connection to ``upstream`` (host, port)."""

    def __init__(self, upstream: tuple[str, int], *, framing: str = "cti") -> None:
        if framing not in ("cti", "line"):
            raise ValueError(f"framing = {framing!r}: give 'cti' or 'line'")
        self.upstream, self.framing = upstream, framing
        self.faults: list[Fault] = []
        self.injected: list[str] = []  # kinds of the faults applied, in order
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL_S)
        self.port = self._listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def inject(self, kind: str, **options: object) -> FaultProxy:
        """Queue one fault (see the module docstring); returns self for chaining."""
        with self._lock:
            self.faults.append(Fault(kind, **options))  # type: ignore[arg-type]
        return self

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ---

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            server = socket.create_connection(self.upstream)
            for target in (self._upstream_pump, self._reply_pump):
                thread = threading.Thread(target=target, args=(client, server), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _upstream_pump(self, client: socket.socket, server: socket.socket) -> None:
        client.settimeout(POLL_S)
        while not self._stop.is_set():
            try:
                data = client.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                server.sendall(data)
            except OSError:
                break
        _close(client, server)

    def _reply_pump(self, client: socket.socket, server: socket.socket) -> None:
        server.settimeout(POLL_S)
        buffer = bytearray()
        silent = False
        while not self._stop.is_set():
            reply = self._next_reply(server, buffer)
            if reply is None:
                break
            fault = None if silent else self._take(reply)
            if silent or (fault is not None and fault.kind == "silent"):
                silent = True
                continue
            if not self._forward(client, reply, fault):
                break
        _close(client, server)

    def _next_reply(self, server: socket.socket, buffer: bytearray) -> bytes | None:
        while (size := self._reply_size(buffer)) is None or len(buffer) < size:
            if self._stop.is_set():
                return None
            try:
                data = server.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return None
            if not data:
                return None
            buffer += data
        reply = bytes(buffer[:size])
        del buffer[:size]
        return reply

    def _reply_size(self, buffer: bytearray) -> int | None:
        if self.framing == "line":
            end = buffer.find(b"\n")
            return None if end < 0 else end + 1
        if len(buffer) < CTI_PREFIX:
            return None
        return int.from_bytes(buffer[8:12], "little")  # feedback dwLen is the total length

    def _take(self, reply: bytes) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.command is None or reply[12:16] == fault.command:
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                    self.injected.append(fault.kind)
                    return fault
        return None

    def _forward(self, client: socket.socket, reply: bytes, fault: Fault | None) -> bool:
        """Send ``reply`` (faulted); False once the connection is to be closed."""
        kind = fault.kind if fault else None
        if kind == "drop":
            return False
        if kind == "delay":
            time.sleep(fault.seconds)
        elif kind == "cut":
            reply = reply[: len(reply) // 2]
        elif kind == "garble":
            at = fault.offset or len(reply) // 2
            reply = reply[:at] + bytes([reply[at] ^ 0x01]) + reply[at + 1:]
        elif kind == "scale":
            body = bytearray(reply[:-2])
            (value,) = struct.unpack_from("<f", body, fault.offset)
            struct.pack_into("<f", body, fault.offset, value * fault.factor)
            reply = bytes(body) + cti_checksum(body)
        try:
            client.sendall(reply)
        except OSError:
            return False
        return kind != "cut"


def _close(*sockets: socket.socket) -> None:
    for s in sockets:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
