"""Shared pieces of the emulator tests: a linear test cell and a raw CTI client.

The CTI client builds requests and reads replies with offsets written out here from ArbinCTI_Protocol v1.1
(instruments.md section 3.4), not with ``labctl.drivers.arbin.messages``, so the emulator is checked against
the protocol document rather than against the tables it is built on.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from labctl.sim_instruments.arbin_server import ArbinEmulator
from labctl.sim_instruments.clock import VirtualClock

TOKEN = bytes.fromhex("DDDDDDDDDDDDDD11")  # 0x11DDDDDDDDDDDDDD little-endian
LOGIN, CHANNELS_INFO = 0xEEAB0001, 0xEEAB0003
ASSIGN, START, STOP, SET_MV = 0xBB210001, 0xBB320004, 0xBB310001, 0xBB150001
LOGIN_FB, CHANNELS_INFO_FB = 0xEEBA0001, 0xEEBA0003
ASSIGN_FB, START_FB, STOP_FB, SET_MV_FB = 0xBB120001, 0xBB230004, 0xBB130001, 0xBB510001
MV_UD = {1: 52, 2: 53, 3: 54, 4: 55, 5: 105, 6: 106}
RECORD_SIZE = 1753  # one channel record without aux readings


class LinearCell:
    """V = E + slope * q + I * R, with q the charge passed (Ah); the "measured" voltage reads 1 mV high, so a
    test can tell which of the two a reading reports."""

    OFFSET_V = 0.001

    def __init__(self, e: float = 0.0, r: float = 0.1, slope: float = 0.0) -> None:
        self.e, self.r, self.slope = e, r, slope
        self.q_Ah = 0.0
        self.rest_s = 0.0  # open-circuit time integrated

    def advance(self, current_A: float, dt_s: float) -> None:
        self.q_Ah += current_A * dt_s / 3600.0
        if current_A == 0:
            self.rest_s += dt_s

    def voltage(self, current_A: float) -> float:
        return self.e + self.slope * self.q_Ah + current_A * self.r

    def measured_voltage(self, current_A: float) -> float:
        return self.voltage(current_A) + self.OFFSET_V


def _char(text: str, chars: int) -> bytes:
    return text.encode("ascii").ljust(chars, b"\0")


def _wchar(text: str, chars: int) -> bytes:
    return text.encode("utf-16-le").ljust(2 * chars, b"\0")


def request(command: int, args: bytes, *, checksum_delta: int = 0, token: bytes = TOKEN) -> bytes:
    """A complete request: dwLen = total - 12, checksum = byte sum & 0xFFFF (plus ``checksum_delta``)."""
    total = 20 + len(args) + 2
    data = token + struct.pack("<III", total - 12, command, 0) + args
    return data + struct.pack("<H", (sum(data) + checksum_delta) & 0xFFFF)


class RawCTI:
    """A CTI client made of struct calls, one socket."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=5)

    def close(self) -> None:
        self.sock.close()

    def send(self, frame: bytes) -> None:
        self.sock.sendall(frame)

    def receive(self) -> bytes:
        """One feedback frame (dwLen = total length)."""
        data = self._exactly(12)
        (total,) = struct.unpack_from("<I", data, 8)
        return data + self._exactly(total - 12)

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:  # closed with our unread bytes still in its buffer
            return True

    def ask(self, command: int, args: bytes) -> bytes:
        self.send(request(command, args))
        return self.receive()

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            assert chunk, "server closed the connection"
            data += chunk
        return data

    # --- requests ---

    @staticmethod
    def login_args(username: str = "admin", password: str = "000000") -> bytes:
        return _char(username, 32) + _char(password, 32)

    @staticmethod
    def info_args(channel: int) -> bytes:
        return struct.pack("<hhI", channel, 1, 0) + bytes(32)

    @staticmethod
    def assign_args(channel: int, schedule: str, *, assign_all: bool = False, barcode: str = "",
                    user_variables: tuple[float, ...] = (0.0,) * 16) -> bytes:
        return (struct.pack("<iB", channel, assign_all) + _wchar(schedule, 200) + struct.pack("<f", 0.0)
                + _wchar(barcode, 72) + struct.pack("<16f", *user_variables) + bytes(32))

    @staticmethod
    def start_args(test_name: str, channels: list[int]) -> bytes:
        return _wchar(test_name, 72) + struct.pack(f"<I{len(channels)}H", len(channels), *channels)

    @staticmethod
    def stop_args(channel: int, stop_all: bool = False) -> bytes:
        return struct.pack("<IB", channel, stop_all) + bytes(101)

    @staticmethod
    def set_mv_args(channel: int, meta_code: int, value: float, mv_type: int = 1, value_type: int = 1) -> bytes:
        return struct.pack("<Iii", channel, mv_type, meta_code) + bytes(16) + struct.pack("<if", value_type, value) + bytes(16)

    def login(self, username: str = "admin", password: str = "000000") -> int:
        reply = self.ask(LOGIN, self.login_args(username, password))
        return struct.unpack_from("<I", reply, 20)[0]

    def info(self, channel: int) -> list[dict[str, object]]:
        return self.records(self.ask(CHANNELS_INFO, self.info_args(channel)))

    def assign(self, channel: int, schedule: str, **kwargs: object) -> int:
        return self.result(self.ask(ASSIGN, self.assign_args(channel, schedule, **kwargs)), ASSIGN_FB)  # type: ignore[arg-type]

    def start(self, test_name: str, channels: list[int]) -> int:
        return self.result(self.ask(START, self.start_args(test_name, channels)), START_FB)

    def stop(self, channel: int, stop_all: bool = False) -> int:
        return self.result(self.ask(STOP, self.stop_args(channel, stop_all)), STOP_FB)

    def set_mv(self, channel: int, mv: int, value: float) -> int:
        return self.result(self.ask(SET_MV, self.set_mv_args(channel, MV_UD[mv], value)), SET_MV_FB)

    def segment(self, channel: int, current_A: float, *, v_high: float = 4.0, v_low: float = -4.0,
                time_s: float = 0.0, charge_Ah: float = 0.0) -> None:
        """The adapter's order for a new segment: MV_UD1 = 0, MV_UD2..6, then MV_UD1 = 1."""
        for mv, value in ((1, 0), (2, current_A), (3, v_high), (4, v_low), (5, time_s), (6, charge_Ah), (1, 1)):
            assert self.set_mv(channel, mv, value) == 0

    # --- replies ---

    @staticmethod
    def result(reply: bytes, command: int) -> int:
        """The u8 result of a 128-byte result feedback, after checking its header and checksum."""
        assert struct.unpack_from("<QII", reply) == (0x11DDDDDDDDDDDDDD, 128, command)
        assert struct.unpack_from("<H", reply, 126)[0] == sum(reply[:126]) & 0xFFFF
        return reply[24]

    @staticmethod
    def records(reply: bytes) -> list[dict[str, object]]:
        assert struct.unpack_from("<QII", reply) == (0x11DDDDDDDDDDDDDD, len(reply), CHANNELS_INFO_FB)
        assert struct.unpack_from("<H", reply, len(reply) - 2)[0] == sum(reply[:-2]) & 0xFFFF
        (count,) = struct.unpack_from("<I", reply, 20)
        assert len(reply) == 24 + count * RECORD_SIZE + 2
        out = []
        for k in range(count):
            b = 24 + k * RECORD_SIZE

            def text(offset: int, size: int, codec: str, b: int = b) -> str:
                raw = reply[b + offset : b + offset + size]
                return raw.decode(codec).split("\0", 1)[0]

            floats = struct.unpack_from("<9f", reply, b + 1677)
            out.append({
                "channel": struct.unpack_from("<I", reply, b)[0],
                "status": struct.unpack_from("<h", reply, b + 4)[0],
                "comm_failure": reply[b + 6],
                "schedule": text(7, 400, "utf-16-le"),
                "test_name": text(407, 144, "utf-16-le"),
                "exit_condition": text(551, 100, "ascii"),
                "step_and_cycle": text(651, 64, "ascii"),
                "barcode": text(715, 144, "utf-16-le"),
                "test_time": struct.unpack_from("<d", reply, b + 1661)[0],
                "step_time": struct.unpack_from("<d", reply, b + 1669)[0],
                "voltage": floats[0], "current": floats[1], "power": floats[2],
                "charge_ah": floats[3], "discharge_ah": floats[4], "charge_wh": floats[5],
                "discharge_wh": floats[6], "dv_dt": floats[8],
                "aux_counts": struct.unpack_from("<14H", reply, b + 1725),
            })  # fmt: skip
        return out


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def make_emulator(clock: VirtualClock) -> Iterator[object]:
    """``make_emulator(cells, **options)``: an ArbinEmulator on the ``clock`` fixture, closed after the test."""
    made: list[ArbinEmulator] = []

    def make(cells: dict[int, object] | None = None, **options: object) -> ArbinEmulator:
        emulator = ArbinEmulator(clock, cells if cells is not None else {1: LinearCell()}, **options)  # type: ignore[arg-type]
        made.append(emulator)
        return emulator

    yield make
    for emulator in made:
        emulator.close()


@pytest.fixture
def connect() -> Iterator[object]:
    """``connect(address)``: a RawCTI client, closed after the test."""
    clients: list[RawCTI] = []

    def make(address: tuple[str, int]) -> RawCTI:
        clients.append(RawCTI(address))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def linear_cell() -> type[LinearCell]:
    return LinearCell


@pytest.fixture
def raw_request() -> object:
    return request
