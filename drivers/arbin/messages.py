"""Arbin CTI frames: layouts as data, and the framing both ends of a connection share.

A frame is little-endian and packed (``Pack=1``)::

    0   u64  token 0x11DDDDDDDDDDDDDD
    8   u32  dwLen   requests: total - 12; feedback: total
    12  u32  command code
    16  u32  extended command code (0)
    20  ...  arguments (fixed size; strings zero-padded, "wchar" fields UTF-16LE)
    end u16  checksum = sum of all preceding bytes & 0xFFFF

Layouts follow ArbinCTI_Protocol v1.1 (offsets from the frame start). The client packs requests and
parses feedback; the emulator in ``labctl.sim_instruments`` does the reverse with the same tables.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

TOKEN = 0x11DDDDDDDDDDDDDD
HEADER = struct.Struct("<QIII")  # token, dwLen, command, extended command
HEADER_SIZE = HEADER.size  # 20
PREFIX_SIZE = 12  # token + dwLen: what a reader needs before it knows the frame length
CHECKSUM = struct.Struct("<H")


class Command(IntEnum):
    """Request and feedback command codes (ArbinCTI_Protocol v1.1)."""

    LOGIN = 0xEEAB0001
    LOGIN_FEEDBACK = 0xEEBA0001
    CONNECT = 0xEEAB0002
    CONNECT_FEEDBACK = 0xEEBA0002
    CHANNELS_INFO = 0xEEAB0003
    CHANNELS_INFO_FEEDBACK = 0xEEBA0003
    ASSIGN_SCHEDULE = 0xBB210001
    ASSIGN_SCHEDULE_FEEDBACK = 0xBB120001
    START_SCHEDULE = 0xBB320004
    START_SCHEDULE_FEEDBACK = 0xBB230004
    STOP_SCHEDULE = 0xBB310001
    STOP_SCHEDULE_FEEDBACK = 0xBB130001
    SET_MV = 0xBB150001
    SET_MV_FEEDBACK = 0xBB510001
    GET_SERIAL = 0xBB340001
    GET_SERIAL_FEEDBACK = 0xBB430001


FEEDBACK_OF = {
    Command.LOGIN: Command.LOGIN_FEEDBACK,
    Command.CHANNELS_INFO: Command.CHANNELS_INFO_FEEDBACK,
    Command.ASSIGN_SCHEDULE: Command.ASSIGN_SCHEDULE_FEEDBACK,
    Command.START_SCHEDULE: Command.START_SCHEDULE_FEEDBACK,
    Command.STOP_SCHEDULE: Command.STOP_SCHEDULE_FEEDBACK,
    Command.SET_MV: Command.SET_MV_FEEDBACK,
}


@dataclass(frozen=True)
class Field:
    """One argument: byte offset (from the frame start, or from a record start), struct format, text codec."""

    offset: int
    fmt: str
    codec: str | None = None  # "utf-16-le" for wchar fields, "ascii" for char fields

    @property
    def size(self) -> int:
        return struct.calcsize("<" + self.fmt)


Layout = dict[str, Field]


def _wchar(offset: int, chars: int) -> Field:
    return Field(offset, f"{2 * chars}s", "utf-16-le")


def _char(offset: int, chars: int) -> Field:
    return Field(offset, f"{chars}s", "ascii")


# --- requests (client -> server) ---
LOGIN = {"username": _char(20, 32), "password": _char(52, 32)}  # 86 bytes
CHANNELS_INFO = {  # 62 bytes
    "only_channel": Field(20, "h"),  # -1 = all channels
    "info_type": Field(22, "h"),
    "need_type_set": Field(24, "I"),  # 0x100 CANBMS, 0x200 SMB, 0x400 AUX
    "reserved": Field(28, "32s"),
}
ASSIGN_SCHEDULE = {  # 671 bytes
    "channel": Field(20, "i"),
    "assign_all": Field(24, "B"),
    "schedule": _wchar(25, 200),
    "test_capacity_ah": Field(425, "f"),
    "barcode": _wchar(429, 72),
    **{f"user_variable_{k}": Field(573 + 4 * (k - 1), "f") for k in range(1, 17)},
    "reserved": Field(637, "32s"),
}
START_SCHEDULE = {"test_name": _wchar(20, 72), "channel_count": Field(164, "I")}  # + u16 per channel at 168
STOP_SCHEDULE = {"channel": Field(20, "I"), "stop_all": Field(24, "B"), "reserved": Field(25, "101s")}  # 128
SET_MV = {  # 74 bytes
    "channel": Field(20, "I"),
    "mv_type": Field(24, "i"),  # 1 for CTI
    "meta_code": Field(28, "i"),
    "reserved_1": Field(32, "16s"),
    "value_type": Field(48, "i"),  # 1 = float
    "value": Field(52, "f"),
    "reserved_2": Field(56, "16s"),
}

# --- feedback (server -> client) ---
LOGIN_FEEDBACK = {  # 8678 bytes without a picture
    "result": Field(20, "I"),
    "ip_address": Field(24, "4s"),
    "serial_number": _char(28, 16),
    "note": _char(44, 256),
    "nickname": _wchar(300, 1024),
    "location": _wchar(2348, 1024),
    "emergency_contact": _wchar(4396, 1024),
    "comments": _wchar(6444, 1024),
    "email": _wchar(8492, 64),
    "call": _wchar(8620, 16),
    "itac": Field(8652, "I"),
    "version": Field(8656, "I"),
    "allow_control": Field(8660, "I"),
    "channel_count": Field(8664, "I"),
    "user_type": Field(8668, "I"),
    "picture_length": Field(8672, "I"),
}
RESULT_FEEDBACK = {"channel": Field(20, "I"), "result": Field(24, "B"), "reserved": Field(25, "101s")}  # 128

# Channel info feedback: u32 channel count at 20, then one record per channel from offset 24.
CHANNEL_COUNT = Field(20, "I")
RECORDS_OFFSET = 24
CHANNEL_RECORD = {  # offsets from the record start; 1753 bytes plus the aux/BMS/SMB tail
    "channel": Field(0, "I"),
    "status": Field(4, "h"),
    "comm_failure": Field(6, "B"),
    "schedule": _wchar(7, 200),
    "test_name": _wchar(407, 72),
    "exit_condition": _char(551, 100),
    "step_and_cycle": _char(651, 64),
    "barcode": _wchar(715, 72),
    "can_config": _wchar(859, 200),
    "smb_config": _wchar(1259, 200),
    "master_channel": Field(1659, "H"),
    "test_time_s": Field(1661, "d"),
    "step_time_s": Field(1669, "d"),
    "voltage_v": Field(1677, "f"),
    "current_a": Field(1681, "f"),
    "power_w": Field(1685, "f"),
    "charge_capacity_ah": Field(1689, "f"),
    "discharge_capacity_ah": Field(1693, "f"),
    "charge_energy_wh": Field(1697, "f"),
    "discharge_energy_wh": Field(1701, "f"),
    "internal_resistance_ohm": Field(1705, "f"),
    "dv_dt_v_per_s": Field(1709, "f"),
    "acr_ohm": Field(1713, "f"),
    "aci_ohm": Field(1717, "f"),
    "aci_phase_deg": Field(1721, "f"),
}
AUX_COUNT_NAMES = (
    "voltage", "temperature", "pressure", "external", "flow", "ao",
    "di", "do", "humidity", "safety", "ph", "density", "bms", "smb",
)  # fmt: skip
AUX_COUNTS_OFFSET = 1725  # u16 per name above
RECORD_FIXED_SIZE = AUX_COUNTS_OFFSET + 2 * len(AUX_COUNT_NAMES)  # 1753
AUX_READING_SIZE = 8  # f32 value, f32 dt
BMS_ITEM_SIZE = 12  # u32 index, f64 value
SMB_ITEM_SIZE = 8  # u32 index, u32 type

# Meta-variable codes: MV_UD1..4 = 52..55, MV_UD5..16 = 105..116.
META_CODES = {k: 51 + k for k in range(1, 5)} | {k: 100 + k for k in range(5, 17)}


class ChannelStatus(IntEnum):
    """The i16 channel status of a channel info record."""

    IDLE = 0
    TRANSITION = 1
    CHARGE = 2
    DISCHARGE = 3
    REST = 4
    WAIT = 5
    EXTERNAL_CHARGE = 6
    CALIBRATION = 7
    UNSAFE = 8
    PULSE = 9
    INTERNAL_RESISTANCE = 10
    AC_IMPEDANCE = 11
    ACI_CELL = 12
    TEST_SETTINGS = 13
    ERROR = 14
    FINISHED = 15
    VOLT_METER = 16
    WAITING_FOR_ACS = 17
    PAUSE = 18
    EMPTY = 19
    IDLE_FROM_MCU = 20
    START = 21
    RUNNING = 22
    STEP_TRANSFER = 23
    RESUME = 24
    GO_PAUSE = 25
    GO_STOP = 26
    GO_NEXT_STEP = 27
    ONLINE_UPDATE = 28
    DAQ_MEMORY_UNSAFE = 29
    ACR = 30


LOGIN_RESULTS = {1: "success", 2: "fail", 3: "already logged in"}
ASSIGN_RESULTS = {
    0x00: "success", 0x10: "channel does not exist", 0x11: "monitor window in use",
    0x12: "schedule name empty", 0x13: "schedule not found", 0x14: "channel running",
    0x15: "downloading another schedule", 0x16: "batch file open", 0x17: "assign failed",
}  # fmt: skip
START_RESULTS = {
    0x00: "success", 0x10: "invalid channel index", 0x11: "someone controls the monitor window",
    0x12: "channel running or unsafe", 0x13: "channel not connected to DAQ",
    0x14: "schedule not compatible", 0x15: "no schedule assigned", 0x16: "schedule version mismatch",
    0x19: "invalid step number", 0x1B: "invalid aux count in schedule", 0x1C: "invalid built-in aux count",
    0x1E: "check aux test setting", 0x1F: "no selected channels", 0x21: "DAQ still downloading",
    0x22: "database query error", 0x23: "test name exists or is empty", 0x24: "invalid step",
    0x25: "invalid parallel channel", 0x26: "schedule safety precheck failed", 0x28: "battery simulation error",
}  # fmt: skip
STOP_RESULTS = {0x00: "success", 0x10: "channel does not exist", 0x11: "someone controls the monitor window"}
SET_MV_RESULTS = {  # the protocol PDF's order (pycti-arbin swaps 0x11 and 0x12)
    0x00: "success", 0x10: "set MV failed", 0x11: "meta code does not exist",
    0x12: "channel not running", 0x13: "meta code not in MITS Pro 7",
}  # fmt: skip


def checksum(data: bytes) -> int:
    return sum(data) & 0xFFFF


def frame(command: int, body: bytes, *, feedback: bool) -> bytes:
    """Wrap arguments ``body`` (bytes from offset 20 on) into a complete frame with length and checksum."""
    total = HEADER_SIZE + len(body) + CHECKSUM.size
    length = total if feedback else total - PREFIX_SIZE
    data = HEADER.pack(TOKEN, length, command, 0) + body
    return data + CHECKSUM.pack(checksum(data))


def frame_length(prefix: bytes, *, feedback: bool) -> int:
    """Total frame length announced by the first 12 bytes; ValueError on a bad token."""
    token, length = struct.unpack_from("<QI", prefix)
    if token != TOKEN:
        raise ValueError(f"bad CTI token {token:#018x} (expected {TOKEN:#018x})")
    return length if feedback else length + PREFIX_SIZE


def split(data: bytes) -> tuple[int, bytes]:
    """Check a complete frame's checksum and return (command, frame); ValueError if it does not match."""
    if len(data) < HEADER_SIZE + CHECKSUM.size:
        raise ValueError(f"CTI frame of {len(data)} bytes is shorter than a header and checksum")
    (expected,) = CHECKSUM.unpack_from(data, len(data) - CHECKSUM.size)
    if checksum(data[: -CHECKSUM.size]) != expected:
        raise ValueError(f"CTI checksum mismatch: frame says {expected:#06x}, bytes sum to {checksum(data[:-2]):#06x}")
    _token, _length, command, _ext = HEADER.unpack_from(data)
    return command, data


def pack_fields(buffer: bytearray, layout: Layout, values: dict[str, object], base: int = 0) -> None:
    """Write ``values`` into ``buffer`` at the layout's offsets (plus ``base``); strings are encoded and padded."""
    for name, value in values.items():
        f = layout[name]
        if f.codec is not None and isinstance(value, str):
            value = value.encode(f.codec)
        struct.pack_into("<" + f.fmt, buffer, base + f.offset, value)


def unpack_fields(data: bytes, layout: Layout, base: int = 0) -> dict[str, object]:
    """Read every field of ``layout`` from ``data`` (at ``base``); strings are decoded up to the first NUL."""
    out: dict[str, object] = {}
    for name, f in layout.items():
        (value,) = struct.unpack_from("<" + f.fmt, data, base + f.offset)
        if f.codec is not None:
            value = _decode(value, f.codec)
        out[name] = value
    return out


def _decode(raw: bytes, codec: str) -> str:
    if codec == "utf-16-le":
        end = raw.find(b"\0\0")
        while end != -1 and end % 2:  # a NUL wchar starts at an even offset
            end = raw.find(b"\0\0", end + 1)
        return (raw if end == -1 else raw[:end]).decode(codec, errors="replace")
    return raw.split(b"\0", 1)[0].decode(codec, errors="replace")


def body(size: int, layout: Layout, values: dict[str, object]) -> bytes:
    """Arguments of a frame whose total length is ``size``: a zeroed buffer with ``values`` packed in."""
    buffer = bytearray(size - HEADER_SIZE - CHECKSUM.size)
    pack_fields(buffer, layout, values, base=-HEADER_SIZE)
    return bytes(buffer)


def record_size(data: bytes, base: int) -> int:
    """Length of the channel record at ``base``: the fixed part plus its aux, BMS and SMB tail."""
    counts = struct.unpack_from(f"<{len(AUX_COUNT_NAMES)}H", data, base + AUX_COUNTS_OFFSET)
    *aux, bms, smb = counts
    return RECORD_FIXED_SIZE + AUX_READING_SIZE * sum(aux) + BMS_ITEM_SIZE * bms + SMB_ITEM_SIZE * smb


def parse_channel_records(data: bytes) -> list[dict[str, object]]:
    """Every channel record of a channel info feedback frame (MITS 10 answers with all channels at once)."""
    (count,) = struct.unpack_from("<" + CHANNEL_COUNT.fmt, data, CHANNEL_COUNT.offset)
    records, base = [], RECORDS_OFFSET
    end = len(data) - CHECKSUM.size
    for _ in range(count):
        if base + RECORD_FIXED_SIZE > end:
            raise ValueError(f"channel info frame announces {count} records but ends after {len(records)}")
        records.append(unpack_fields(data, CHANNEL_RECORD, base))
        base += record_size(data, base)
    return records
