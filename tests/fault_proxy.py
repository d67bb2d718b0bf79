"""A TCP proxy on 127.0.0.1 between a driver and an emulator that injects wire faults into the replies.

The client side is copied through untouched; the server side is cut into replies (CTI feedback frames, or
lines for a line-based instrument such as the 1260) and each reply that matches a queued fault gets it:

- ``drop``: close the connection instead of forwarding the reply;
- ``delay``: forward it ``seconds`` late;
- ``cut``: forward its first half, then close;
- ``garble``: flip one bit (the CTI checksum then disagrees; a 1260 line has none);
- ``scale``: multiply a little-endian f32 at ``offset`` by ``factor`` and re-compute the CTI checksum, so the
  frame is valid and only the value is wrong;
- ``silent``: swallow the reply and every later one on that connection (the instrument stops answering);
- ``digit`` (line framing): change one digit of a line to another digit, ``field`` (comma-separated, from 0) and
  ``offset`` (the field's digits counted from 0, the leading one first), by ``shift`` (new = (old + shift) mod 10).
  The line stays well-formed; only its value is wrong, which an instrument without a checksum cannot tell.

Faults are consumed in order, each by the first reply whose 4-byte CTI command code (bytes 12..16) equals its
``command`` (None: any reply) and matches its ``pattern`` (a regular expression, bytes, for lines; None: any
reply). :meth:`FaultProxy.sever` closes every connection at once (a gateway that reboots, a pulled cable).

:class:`SerialFaultRelay` does the same for a serial instrument on a pseudo-terminal (the SQM-160 emulator): a
pseudo-terminal of its own in front, replies cut into SQM-160 packets, faults ``drop``, ``garble`` (the packet's
CRC then disagrees) and ``silent`` (any other kind, e.g. ``delay`` with a ``count``, lets replies through as they
are: a way to skip the first ones). The suite imports tests by path (--import-mode=importlib), so tests load this
module from its file with :func:`importlib.util.spec_from_file_location`.
"""

from __future__ import annotations

import os
import re
import select
import socket
import struct
import threading
import time
import tty
from dataclasses import dataclass

CTI_TOKEN = bytes.fromhex("DD DD DD DD DD DD DD 11")
CTI_PREFIX = 12  # token + u32 total length of a feedback frame
POLL_S = 0.05


@dataclass
class Fault:
    kind: str  # drop, delay, cut, garble, scale, silent, digit
    command: bytes | None = None  # a CTI feedback command code as wire bytes, None for any reply
    seconds: float = 0.0  # delay
    offset: int = 0  # scale: frame offset of the f32; garble: the byte to flip (0: the middle one); digit: which one
    factor: float = 1.0  # scale
    count: int = 1  # replies it applies to; -1 for all of them
    pattern: bytes | None = None  # lines it applies to (re.search), None for any
    field: int = 1  # digit: the comma-separated field
    shift: int = 5  # digit: added to the digit, modulo 10


def change_digit(line: bytes, field: int, offset: int, shift: int) -> bytes:
    """``line`` with digit ``offset`` of comma-separated ``field`` changed by ``shift`` (mod 10)."""
    fields = line.split(b",")
    digits = [k for k, c in enumerate(fields[field]) if chr(c).isdigit()]
    at = digits[offset]
    text = bytearray(fields[field])
    text[at] = ord(str((int(chr(text[at])) + shift) % 10))
    fields[field] = bytes(text)
    return b",".join(fields)


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
        self._forwarding = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL_S)
        self.port = self._listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()
        self._sockets: list[socket.socket] = []

    def inject(self, kind: str, **options: object) -> FaultProxy:
        """Queue one fault (see the module docstring); returns self for chaining."""
        with self._lock:
            self.faults.append(Fault(kind, **options))  # type: ignore[arg-type]
        return self

    def settle(self) -> None:
        """Return once every byte the clients sent has been forwarded upstream. A test on a stepped virtual clock
        calls it before it moves the clock, so that the emulator has a command (an SI) before the time it takes
        passes, as it would without the proxy in between."""
        while True:
            with self._forwarding:
                with self._lock:
                    clients = [s for s in self._sockets[::2] if s.fileno() >= 0]
                if not clients or not select.select(clients, [], [], 0)[0]:
                    return
            time.sleep(0.001)

    def sever(self) -> None:
        """Close every connection now, client and server side, as a rebooting gateway would."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        _close(*sockets)

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
            with self._lock:
                self._sockets += [client, server]
            for target in (self._upstream_pump, self._reply_pump):
                thread = threading.Thread(target=target, args=(client, server), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _upstream_pump(self, client: socket.socket, server: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                if not select.select([client], [], [], POLL_S)[0]:
                    continue
                with self._forwarding:  # settle() waits while bytes are between the two sockets
                    data = client.recv(65536)
                    if data:
                        server.sendall(data)
            except (OSError, ValueError):  # ValueError: select on a socket closed meanwhile
                break
            if not data:
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
            return _take(self.faults, self.injected, reply)

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
            reply = _flip(reply, fault.offset)
        elif kind == "scale":
            body = bytearray(reply[:-2])
            (value,) = struct.unpack_from("<f", body, fault.offset)
            struct.pack_into("<f", body, fault.offset, value * fault.factor)
            reply = bytes(body) + cti_checksum(body)
        elif kind == "digit":
            reply = change_digit(reply, fault.field, fault.offset, fault.shift)
        try:
            client.sendall(reply)
        except OSError:
            return False
        return kind != "cut"


class SerialFaultRelay:
    """A pseudo-terminal (``port``) between a serial driver and an instrument on the pseudo-terminal ``upstream`` (its
    path): commands pass untouched, each reply packet gets the first matching fault queued with :meth:`inject`."""

    def __init__(self, upstream: str) -> None:
        self.faults: list[Fault] = []
        self.injected: list[str] = []
        self._lock = threading.Lock()
        self._master, self._slave = os.openpty()  # the slave is held open: the master never sees a hang-up
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._device = os.open(upstream, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self._device)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def inject(self, kind: str, **options: object) -> SerialFaultRelay:
        """Queue one fault (``drop``, ``garble``, ``silent``); returns self for chaining."""
        with self._lock:
            self.faults.append(Fault(kind, **options))  # type: ignore[arg-type]
        return self

    def close(self) -> None:
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        for fd in (self._master, self._slave, self._device, self._wake_r, self._wake_w):
            os.close(fd)

    def __enter__(self) -> SerialFaultRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _relay(self) -> None:
        replies, silent = bytearray(), False
        while True:
            ready = select.select([self._master, self._device, self._wake_r], [], [])[0]
            if self._wake_r in ready:
                return
            if self._master in ready:
                os.write(self._device, os.read(self._master, 4096))
            if self._device in ready:
                replies += os.read(self._device, 4096)
                while (packet := _sqm_packet(replies)) is not None:
                    with self._lock:
                        fault = None if silent else _take(self.faults, self.injected, packet)
                    kind = fault.kind if fault else None
                    silent = silent or kind == "silent"
                    if not silent and kind != "drop":
                        os.write(self._master, _flip(packet, fault.offset) if kind == "garble" else packet)


def _sqm_packet(buffer: bytearray) -> bytes | None:
    """The first whole SQM-160 reply packet in ``buffer`` (``!``, length + 35, status and message, two CRC
    characters), taken out of it; None until one has arrived. Bytes before a ``!`` are dropped."""
    start = buffer.find(b"!")
    del buffer[:start if start >= 0 else len(buffer)]
    if len(buffer) < 2 or len(buffer) < (size := 2 + max(buffer[1] - 35, 1) + 2):
        return None
    packet = bytes(buffer[:size])
    del buffer[:size]
    return packet


def _take(faults: list[Fault], injected: list[str], reply: bytes) -> Fault | None:
    """The first queued fault that matches ``reply``, counted down (and dropped when used up); the caller holds the
    lock that guards ``faults``."""
    for fault in faults:
        if ((fault.command is None or reply[12:16] == fault.command)
                and (fault.pattern is None or re.search(fault.pattern, reply) is not None)):
            fault.count -= 1
            if fault.count == 0:
                faults.remove(fault)
            injected.append(fault.kind)
            return fault
    return None


def _flip(reply: bytes, offset: int) -> bytes:
    """``reply`` with the low bit of byte ``offset`` (0: the middle one) flipped."""
    at = offset or len(reply) // 2
    return reply[:at] + bytes([reply[at] ^ 0x01]) + reply[at + 1:]


def _close(*sockets: socket.socket) -> None:
    for s in sockets:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
