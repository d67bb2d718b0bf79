"""Test helpers for the Arbin CTI driver: a transcript-replaying server at the socket seam, and frames.

Tests reach these through the ``cti`` fixture (the suite runs with --import-mode=importlib, so a test
module cannot import a sibling helper module by name).

Request frames are written by hand from ArbinCTI_Protocol v1.1 (token ``DD DD DD DD DD DD DD 11``,
little-endian dwLen = total - 12, command code, extended command 0, arguments at the documented offsets,
then a u16 plain byte sum), never with labctl's own ``messages`` packing. Replies are built with
``struct`` at the documented offsets.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

TOKEN = bytes.fromhex("DD DD DD DD DD DD DD 11")
DROP = "drop"  # reply: close the connection instead of answering
SILENT = "silent"  # reply: read the request and never answer

# Command codes as wire bytes (ArbinCTI_Protocol v1.1 command table).
LOGIN, LOGIN_FB = "01 00 AB EE", "01 00 BA EE"
CHANNELS_INFO, CHANNELS_INFO_FB = "03 00 AB EE", "03 00 BA EE"
ASSIGN, ASSIGN_FB = "01 00 21 BB", "01 00 12 BB"
START, START_FB = "04 00 32 BB", "04 00 23 BB"
STOP, STOP_FB = "01 00 31 BB", "01 00 13 BB"
SET_MV, SET_MV_FB = "01 00 15 BB", "01 00 51 BB"


def with_checksum(data: bytes) -> bytes:
    """Append the protocol's checksum: the plain sum of every preceding byte, low 16 bits, little-endian."""
    return data + (sum(data) & 0xFFFF).to_bytes(2, "little")


def f32(x: float) -> bytes:
    return struct.pack("<f", x)


def request(dw_len: str, command: str, args: bytes) -> bytes:
    """A client request: token, dwLen (hex, = total - 12), command, extended command 0, args, checksum."""
    return with_checksum(TOKEN + bytes.fromhex(dw_len) + bytes.fromhex(command) + bytes(4) + args)


def login_request(user: bytes = b"admin", password: bytes = b"000000") -> bytes:
    """USER_LOGIN, 86 bytes: char[32] user at 20, char[32] password at 52."""
    return request("4A 00 00 00", LOGIN, user.ljust(32, b"\0") + password.ljust(32, b"\0"))


def channel_info_request(only_channel: str) -> bytes:
    """GET_CHANNELS_INFO, 62 bytes: i16 OnlyChannel at 20, i16 InfoType 1 at 22, u32 NeedTypeSet 0, 32 reserved."""
    return request("32 00 00 00", CHANNELS_INFO, bytes.fromhex(only_channel) + bytes.fromhex("01 00") + bytes(4 + 32))


def assign_request(channel: str, schedule: str, barcode: str = "", capacity: float = 0.0,
                   user_variables: Sequence[float] = ()) -> bytes:
    """ASSIGN_SCHEDULE, 671 bytes: i32 channel, u8 all, wchar[200] schedule, f32 Ah, wchar[72] barcode, 16 f32."""
    mvs = b"".join(f32(v) for v in user_variables).ljust(64, b"\0")
    args = (bytes.fromhex(channel) + b"\0" + schedule.encode("utf-16-le").ljust(400, b"\0") + f32(capacity)
            + barcode.encode("utf-16-le").ljust(144, b"\0") + mvs + bytes(32))
    return request("93 02 00 00", ASSIGN, args)


def start_request(test_name: str, channels: Sequence[str]) -> bytes:
    """START_SCHEDULE: wchar[72] test name at 20, u32 count at 164, u16 channels from 168."""
    dw_len = (20 + 144 + 4 + 2 * len(channels) + 2 - 12).to_bytes(4, "little").hex(" ")
    args = (test_name.encode("utf-16-le").ljust(144, b"\0") + len(channels).to_bytes(4, "little")
            + b"".join(bytes.fromhex(c) for c in channels))
    return request(dw_len, START, args)


def stop_request(channel: str) -> bytes:
    """STOP_SCHEDULE, 128 bytes: u32 channel at 20, u8 stop_all 0 at 24, 101 reserved."""
    return request("74 00 00 00", STOP, bytes.fromhex(channel) + b"\0" + bytes(101))


def set_mv_request(channel: str, meta_code: str, value: bytes) -> bytes:
    """SET_MV_VALUE, 74 bytes: u32 channel, i32 MV type 1, i32 meta code, 16 reserved, i32 value type 1, f32, 16."""
    args = (bytes.fromhex(channel) + bytes.fromhex("01 00 00 00") + bytes.fromhex(meta_code) + bytes(16)
            + bytes.fromhex("01 00 00 00") + value + bytes(16))
    return request("3E 00 00 00", SET_MV, args)


def feedback(command: str, args: bytes, *, token: bytes = TOKEN) -> bytes:
    """A server feedback frame: dwLen is the TOTAL length for feedback."""
    total = 20 + len(args) + 2
    return with_checksum(token + total.to_bytes(4, "little") + bytes.fromhex(command) + bytes(4) + args)


def fields_at(size: int, *fields: tuple[int, str, object]) -> bytes:
    """``size`` argument bytes (from frame offset 20) with (frame offset, struct format, value) written in."""
    buf = bytearray(size)
    for offset, fmt, value in fields:
        struct.pack_into("<" + fmt, buf, offset - 20, value)
    return bytes(buf)


def login_feedback(result: int = 1, serial: bytes = b"ARB-0042", channels: int = 8) -> bytes:
    """LOGIN_FEEDBACK, 8678 bytes: u32 result at 20, char[16] serial at 28, u32 channel count at 8664."""
    return feedback(LOGIN_FB, fields_at(8656, (20, "I", result), (28, "16s", serial), (8664, "I", channels)))


def result_feedback(command: str, channel: int, result: int) -> bytes:
    """ASSIGN/START/STOP/SET_MV feedback, 128 bytes: u32 channel at 20, u8 result at 24."""
    return feedback(command, fields_at(106, (20, "I", channel), (24, "B", result)))


def channel_record(channel: int, status: int, *, test_time: float = 0.0, step_time: float = 0.0,
                   voltage: float = 0.0, current: float = 0.0, charge: float = 0.0, discharge: float = 0.0,
                   exit_condition: bytes = b"", schedule: str = "", aux_voltages: Sequence[float] = ()) -> bytes:
    """One channel record (offsets from the record start): 1753 fixed bytes, then 8 bytes per aux reading."""
    rec = bytearray(1753)
    for offset, fmt, value in ((0, "I", channel), (4, "h", status), (7, "400s", schedule.encode("utf-16-le")),
                               (551, "100s", exit_condition), (1661, "d", test_time), (1669, "d", step_time),
                               (1677, "f", voltage), (1681, "f", current), (1689, "f", charge),
                               (1693, "f", discharge), (1725, "H", len(aux_voltages))):
        struct.pack_into("<" + fmt, rec, offset, value)
    return bytes(rec) + b"".join(f32(v) + f32(0.0) for v in aux_voltages)


def channels_feedback(*records: bytes) -> bytes:
    """CHANNELS_INFO_FEEDBACK: u32 record count at 20, records from 24."""
    return feedback(CHANNELS_INFO_FB, len(records).to_bytes(4, "little") + b"".join(records))


class TranscriptServer:
    """A CTI server on 127.0.0.1 that replays (expected request, reply) pairs across successive connections.

    Records any request that differs from the transcript, or that arrives after it is used up; ``check``
    also fails on entries left unconsumed.
    """

    def __init__(self, transcript: Sequence[tuple[bytes, bytes | str]]) -> None:
        self.entries = list(transcript)
        self.errors: list[str] = []
        self._served = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(0.05)
                if not self.errors:
                    self._converse(conn)

    def _converse(self, conn: socket.socket) -> None:
        while (prefix := self._read(conn, 12)) is not None:
            rest = self._read(conn, int.from_bytes(prefix[8:12], "little"))  # request dwLen = total - 12
            if rest is None:
                return
            got = prefix + rest
            if not self.entries:
                self.errors.append(f"unexpected request after the transcript ended: {got[:24].hex(' ')}…")
                return
            expected, reply = self.entries.pop(0)
            self._served += 1
            if got != expected:
                at = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
                          min(len(got), len(expected)))
                self.errors.append(f"request {self._served} differs from the transcript at byte {at} "
                                   f"(got {len(got)} bytes {got[at:at + 8].hex(' ')}, expected {len(expected)} "
                                   f"bytes {expected[at:at + 8].hex(' ')})")
                return
            if reply == DROP:
                return
            if reply != SILENT:
                conn.sendall(reply)

    def _read(self, conn: socket.socket, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            if self._stop.is_set():
                return None
            try:
                chunk = conn.recv(n - len(data))
            except TimeoutError:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            data += chunk
        return data

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


@contextmanager
def replay(transcript: Sequence[tuple[bytes, bytes | str]]) -> Iterator[TranscriptServer]:
    """Serve ``transcript``; on leaving, fail on wrong or unexpected requests and on unconsumed entries."""
    server = TranscriptServer(transcript)
    try:
        yield server
    finally:
        server.close()
        assert not server.errors, "; ".join(server.errors)
    assert not server.entries, f"{len(server.entries)} transcript entries were never requested"


@pytest.fixture
def cti():
    """This module: frame builders, DROP/SILENT and ``replay``."""
    return sys.modules[__name__]
