"""An Arbin cycler's Console TCP/IP Interface (CTI), emulated on 127.0.0.1.

:class:`ArbinEmulator` reads real CTI frames (ArbinCTI_Protocol v1.1, see ``labctl.drivers.arbin.messages``)
and answers with real feedback frames, driving one :class:`~labctl.sim_instruments.arbin_channel.ArbinChannel`
per channel on the bench's virtual clock. Implemented: login, channel info, assign/start/stop schedule and
set meta-variable. What a real server would not answer is not answered: a frame with a bad checksum, an
unknown command or a wrong length is logged and dropped; a bad token closes the connection, because the
stream cannot be resynchronised after it.
"""

from __future__ import annotations

import logging
import math
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from labctl.drivers.arbin import messages as m
from labctl.drivers.arbin.messages import Command
from labctl.sim_instruments.arbin_channel import CURRENT_RANGE_A, VOLTAGE_RANGE_V, ArbinChannel
from labctl.sim_instruments.arbin_schedules import DEFAULT_CATALOGUE, UNIVERSAL_NAME, PremadeSchedule, find_schedule
from labctl.sim_instruments.cell import ChannelCell
from labctl.sim_instruments.clock import VirtualClock
from labctl.sim_instruments.tcp import TcpServer, recv_exact

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

MAX_REQUEST_BYTES = 65536  # larger than any request; a longer announced frame means a corrupt stream
START_CHANNELS_OFFSET = 168  # u16 channel list of START_SCHEDULE
KNOWN_META_CODES = frozenset(m.META_CODES.values())
ASSIGNED_USER_VARIABLES = 4  # ArbinCTI's PostAssignSchedule names the first four MV_UD1..MV_UD4

# result codes (ArbinCTI_Protocol v1.1)
OK = 0x00
LOGIN_OK, LOGIN_FAIL, LOGIN_AGAIN = 1, 2, 3
ASSIGN_NO_CHANNEL, ASSIGN_EMPTY_NAME, ASSIGN_NOT_FOUND, ASSIGN_RUNNING, ASSIGN_FAILED = 0x10, 0x12, 0x13, 0x14, 0x17
START_BAD_CHANNEL, START_NOT_IN_CONTROL, START_RUNNING, START_NOT_CONNECTED = 0x10, 0x11, 0x12, 0x13
START_NO_SCHEDULE, START_NO_CHANNELS, START_BAD_TEST_NAME = 0x15, 0x1F, 0x23
STOP_NO_CHANNEL, STOP_NOT_IN_CONTROL = 0x10, 0x11
MV_FAILED, MV_UNKNOWN_META_CODE, MV_NOT_RUNNING = 0x10, 0x11, 0x12


def _frame_size(layout: m.Layout) -> int:
    return max(f.offset + f.size for f in layout.values()) + m.CHECKSUM.size


class _RecordPacker:
    """Packs a channel record in one struct call (it is polled often); same bytes as ``m.pack_fields``."""

    def __init__(self, layout: m.Layout) -> None:
        fields = sorted(layout.items(), key=lambda item: item[1].offset)
        end = 0
        for name, f in fields:
            if f.offset != end:
                raise ValueError(f"record field {name} at {f.offset} does not follow the previous field (ends {end})")
            end += f.size
        self._struct = struct.Struct("<" + "".join(f.fmt for _, f in fields))
        self._defaults = [(name, b"" if f.fmt.endswith("s") else 0) for name, f in fields]
        self._texts = [(k, f.codec or "ascii") for k, (_, f) in enumerate(fields) if f.fmt.endswith("s")]

    def pack_into(self, buffer: bytearray, offset: int, values: Mapping[str, object]) -> None:
        args = [values.get(name, default) for name, default in self._defaults]
        for k, codec in self._texts:
            if isinstance(text := args[k], str):
                args[k] = text.encode(codec)
        self._struct.pack_into(buffer, offset, *args)


_RECORD = _RecordPacker(m.CHANNEL_RECORD)


@dataclass
class _Session:
    logged_in: bool = False


Handler = Callable[[bytes, _Session], bytes]


class ArbinEmulator(TcpServer):
    """A CTI server with ``channels`` channels, each driving ``cells[number]`` (channel numbers are 1-based).

    Channels without a cell are present but not connected (starting them fails with 0x13). Known schedules:
    ``labctl_universal.sdx`` and the names in ``catalogue``. ``all_channels_reply`` mimics MITS 10, which
    answers every channel info request with all channels. Every channel passes at most ``current_range_A`` and
    measures ±``voltage_range_V``. Listens on 127.0.0.1:``port`` (0 = a free port).
    """

    def __init__(
        self,
        clock: VirtualClock,
        cells: Mapping[int, ChannelCell],
        *,
        channels: int | None = None,
        port: int = 0,
        username: str = "admin",
        password: str = "000000",
        serial_number: str = "SIM-ARBIN-0001",
        version: int = 8,
        catalogue: Mapping[str, PremadeSchedule] = DEFAULT_CATALOGUE,
        all_channels_reply: bool = False,
        current_range_A: float = CURRENT_RANGE_A,
        voltage_range_V: float = VOLTAGE_RANGE_V,
    ) -> None:
        count = channels if channels is not None else max(cells, default=1)
        if count < 1:
            raise ValueError(f"channels must be at least 1, not {count}")
        outside = sorted(n for n in cells if not 1 <= n <= count)
        if outside:
            raise ValueError(f"cells for channels {outside}, but the cycler has channels 1..{count}; "
                             "raise channels or renumber the cells")
        self.clock = clock
        self.username, self.password = username, password
        self.serial_number, self.version = serial_number, version
        self.catalogue = catalogue
        self.all_channels_reply = all_channels_reply
        self.current_range_A, self.voltage_range_V = current_range_A, voltage_range_V
        self.channels = [ArbinChannel(n, cells.get(n), clock, current_range_A=current_range_A)
                         for n in range(1, count + 1)]
        self._handlers: dict[int, tuple[Callable[[bytes], bool], Handler]] = {
            Command.LOGIN: (self._size_is(m.LOGIN), self._login),
            Command.CHANNELS_INFO: (self._size_is(m.CHANNELS_INFO), self._channels_info),
            Command.ASSIGN_SCHEDULE: (self._size_is(m.ASSIGN_SCHEDULE), self._assign),
            Command.START_SCHEDULE: (_start_size_ok, self._start),
            Command.STOP_SCHEDULE: (self._size_is(m.STOP_SCHEDULE), self._stop),
            Command.SET_MV: (self._size_is(m.SET_MV), self._set_mv),
        }
        super().__init__(port, name="arbin-cti")

    def close(self) -> None:
        super().close()
        for channel in self.channels:
            channel.detach()

    # --- framing ---

    def handle(self, conn: socket.socket) -> None:
        session = _Session()
        while prefix := recv_exact(conn, m.PREFIX_SIZE):
            try:
                size = m.frame_length(prefix, feedback=False)
            except ValueError as e:
                log.warning("%s; closing the connection, the stream cannot be resynchronised", e)
                return
            if not m.HEADER_SIZE + m.CHECKSUM.size <= size <= MAX_REQUEST_BYTES:
                log.warning("CTI frame announces %d bytes; closing the connection, the stream cannot be "
                            "resynchronised", size)
                return
            rest = recv_exact(conn, size - m.PREFIX_SIZE)
            if rest is None:
                return
            reply = self._dispatch(prefix + rest, session)
            if reply is not None:
                conn.sendall(reply)

    def _dispatch(self, data: bytes, session: _Session) -> bytes | None:
        try:
            command, _ = m.split(data)
        except ValueError as e:
            log.warning("dropped a CTI frame without reply: %s", e)
            return None
        entry = self._handlers.get(command)
        if entry is None:
            log.warning("ignored CTI command %#010x (%d bytes): not implemented by the emulator", command, len(data))
            return None
        size_ok, handler = entry
        if not size_ok(data):
            log.warning("dropped CTI command %s: %d bytes do not fit its layout", Command(command).name, len(data))
            return None
        with self.clock.lock:
            return handler(data, session)

    @staticmethod
    def _size_is(layout: m.Layout) -> Callable[[bytes], bool]:
        size = _frame_size(layout)
        return lambda data: len(data) == size

    # --- commands ---

    def _login(self, data: bytes, session: _Session) -> bytes:
        request = m.unpack_fields(data, m.LOGIN)
        if session.logged_in:
            result = LOGIN_AGAIN
        elif request["username"] == self.username and request["password"] == self.password:
            result, session.logged_in = LOGIN_OK, True
            log.info("CTI user %r logged in", request["username"])
        else:
            result = LOGIN_FAIL
            log.warning("CTI login refused for user %r: wrong username or password", request["username"])
        values = {
            "result": result, "ip_address": bytes((127, 0, 0, 1)), "serial_number": self.serial_number,
            "version": self.version, "allow_control": 1, "channel_count": len(self.channels), "user_type": 1,
        }  # fmt: skip
        return m.frame(Command.LOGIN_FEEDBACK, m.body(_frame_size(m.LOGIN_FEEDBACK), m.LOGIN_FEEDBACK, values),
                       feedback=True)

    def _channels_info(self, data: bytes, session: _Session) -> bytes:
        only = m.unpack_fields(data, m.CHANNELS_INFO)["only_channel"]
        chosen: list[ArbinChannel] = []
        if not session.logged_in:
            log.warning("channel info requested before login: answering with no channels")
        elif only == -1 or self.all_channels_reply:
            chosen = self.channels
        elif (channel := self._channel(only)) is not None:  # type: ignore[arg-type]
            chosen = [channel]
        buffer = bytearray(m.RECORDS_OFFSET + m.RECORD_FIXED_SIZE * len(chosen) - m.HEADER_SIZE)
        m.pack_fields(buffer, {"count": m.CHANNEL_COUNT}, {"count": len(chosen)}, base=-m.HEADER_SIZE)
        for k, channel in enumerate(chosen):
            _RECORD.pack_into(buffer, m.RECORDS_OFFSET + k * m.RECORD_FIXED_SIZE - m.HEADER_SIZE, channel.record())
        return m.frame(Command.CHANNELS_INFO_FEEDBACK, bytes(buffer), feedback=True)

    def _assign(self, data: bytes, session: _Session) -> bytes:
        request = m.unpack_fields(data, m.ASSIGN_SCHEDULE)
        index: int = request["channel"]  # type: ignore[assignment]
        name: str = request["schedule"]  # type: ignore[assignment]
        channel = self._channel(index)
        targets = self.channels if request["assign_all"] else [channel] if channel is not None else []
        schedule = find_schedule(name, self.catalogue)
        if not session.logged_in:
            result = ASSIGN_FAILED
        elif not targets:
            result = ASSIGN_NO_CHANNEL
        elif not name.strip():
            result = ASSIGN_EMPTY_NAME
        elif schedule is None:
            result = ASSIGN_NOT_FOUND
            log.warning("assign: no schedule %r; known: %s", name, ", ".join(self.known_schedules()))
        elif any(t.running for t in targets):
            result = ASSIGN_RUNNING
        else:
            variables = [request[f"user_variable_{k}"] for k in range(1, ASSIGNED_USER_VARIABLES + 1)]
            for target in targets:
                target.assign(name, schedule, request["barcode"], variables)  # type: ignore[arg-type]
            result = OK
        return _result(Command.ASSIGN_SCHEDULE_FEEDBACK, index, result)

    def _start(self, data: bytes, session: _Session) -> bytes:
        request = m.unpack_fields(data, m.START_SCHEDULE)
        indices = list(dict.fromkeys(struct.unpack_from(f"<{request['channel_count']}H", data, START_CHANNELS_OFFSET)))
        test_name: str = request["test_name"]  # type: ignore[assignment]
        if not session.logged_in:
            return _result(Command.START_SCHEDULE_FEEDBACK, indices[0] if indices else 0, START_NOT_IN_CONTROL)
        if not indices:
            return _result(Command.START_SCHEDULE_FEEDBACK, 0, START_NO_CHANNELS)
        if not test_name.strip():
            return _result(Command.START_SCHEDULE_FEEDBACK, indices[0], START_BAD_TEST_NAME)
        for index in indices:
            result = self._start_refusal(self._channel(index))
            if result != OK:
                return _result(Command.START_SCHEDULE_FEEDBACK, index, result)
        for index in indices:
            self.channels[index].start(test_name)
        return _result(Command.START_SCHEDULE_FEEDBACK, indices[0], OK)

    @staticmethod
    def _start_refusal(channel: ArbinChannel | None) -> int:
        if channel is None:
            return START_BAD_CHANNEL
        if not channel.connected:
            return START_NOT_CONNECTED
        if channel.running or channel.status == m.ChannelStatus.UNSAFE:
            return START_RUNNING
        if channel.schedule is None:
            return START_NO_SCHEDULE
        return OK

    def _stop(self, data: bytes, session: _Session) -> bytes:
        request = m.unpack_fields(data, m.STOP_SCHEDULE)
        index: int = request["channel"]  # type: ignore[assignment]
        channel = self._channel(index)
        if not session.logged_in:
            result = STOP_NOT_IN_CONTROL
        elif request["stop_all"]:
            for target in self.channels:
                target.stop()
            result = OK
        elif channel is None:
            result = STOP_NO_CHANNEL
        else:
            channel.stop()
            result = OK
        return _result(Command.STOP_SCHEDULE_FEEDBACK, index, result)

    def _set_mv(self, data: bytes, session: _Session) -> bytes:
        request = m.unpack_fields(data, m.SET_MV)
        index: int = request["channel"]  # type: ignore[assignment]
        code: int = request["meta_code"]  # type: ignore[assignment]
        value: float = request["value"]  # type: ignore[assignment]
        channel = self._channel(index)
        if not session.logged_in or channel is None:
            result = MV_FAILED
        elif request["mv_type"] != 1 or request["value_type"] != 1 or not math.isfinite(value):
            log.warning("set MV: only MV type 1 with a finite float value (type 1) can be set over CTI; got "
                        "MV type %s, value type %s, value %r", request["mv_type"], request["value_type"], value)
            result = MV_FAILED
        elif code not in KNOWN_META_CODES:
            result = MV_UNKNOWN_META_CODE
        elif not channel.running:
            result = MV_NOT_RUNNING
        else:
            channel.set_mv(code, value)
            result = OK
        return _result(Command.SET_MV_FEEDBACK, index, result)

    # --- helpers ---

    def _channel(self, index: int) -> ArbinChannel | None:
        """The channel at wire index ``index`` (0-based), or None."""
        return self.channels[index] if 0 <= index < len(self.channels) else None

    def known_schedules(self) -> list[str]:
        """Schedule file names this cycler can assign."""
        return [UNIVERSAL_NAME, *self.catalogue]


def _start_size_ok(data: bytes) -> bool:
    if len(data) < START_CHANNELS_OFFSET + m.CHECKSUM.size:
        return False
    (count,) = struct.unpack_from("<I", data, m.START_SCHEDULE["channel_count"].offset)
    return len(data) == START_CHANNELS_OFFSET + 2 * count + m.CHECKSUM.size


def _result(command: int, channel: int, result: int) -> bytes:
    values = {"channel": channel & 0xFFFFFFFF, "result": result}
    return m.frame(command, m.body(_frame_size(m.RESULT_FEEDBACK), m.RESULT_FEEDBACK, values), feedback=True)
