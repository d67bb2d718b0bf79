"""Client of Arbin's Console TCP/IP Interface (CTI): a pure-Python socket driver, no ArbinCTI.dll.

MITS Pro / MITS 10 is the TCP server (port 9031 for control and channel info); this client logs in on
connect and then sends one request at a time and waits for its feedback (ArbinCTI_Protocol v1.1).
Frame layouts live in :mod:`labctl.drivers.arbin.messages`.

Channels: the public API takes **physical channel numbers, 1-based**, as MITS shows them; the wire is
0-indexed, and the client converts (physical channel 1 is wire index 0).

Supervisory use of a schedule made in MITS Pro's Schedule Editor needs no adapter::

    with CTIClient("192.168.1.20", username="admin", password="...") as arbin:
        arbin.run_schedule(3, "Formation.sdx", "cell-42 formation")    # assign + start
        info = arbin.channel_info(3)       # monitor: info.status_word, info.voltage_V, info.running
        arbin.stop(3)
"""

from __future__ import annotations

import logging
import math
import socket
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

from labctl.drivers.arbin import messages as m
from labctl.drivers.arbin.messages import ChannelStatus, Command

log = logging.getLogger(__name__)

DEFAULT_PORT = 9031
FEEDBACK_TIMEOUT_S = 10.0  # the protocol document's recommended feedback timeout
CONNECT_TIMEOUT_S = 30.0  # the CTI Instructions' connection timeout
MAX_FRAME_BYTES = 16 * 2**20  # far above any real feedback; a larger dwLen means a corrupt stream
MAX_F32 = 3.4028234663852886e38
MV_INDICES = range(1, 17)  # MV_UD1..MV_UD16
# Sends of one command before its last error is raised: the first, a reconnect, a re-read. A lost, late or
# garbled feedback (a 1 % frame-error rate) is then survived, while a cycler that is gone still ends the run
# within ATTEMPTS * the feedback timeout.
ATTEMPTS = 3

# A test is in progress on the channel in every status except these.
STOPPED_STATUSES = frozenset({
    ChannelStatus.IDLE, ChannelStatus.CALIBRATION, ChannelStatus.UNSAFE, ChannelStatus.ERROR,
    ChannelStatus.FINISHED, ChannelStatus.VOLT_METER, ChannelStatus.EMPTY, ChannelStatus.IDLE_FROM_MCU,
    ChannelStatus.DAQ_MEMORY_UNSAFE,
})  # fmt: skip
_ACRONYMS = {"AC", "ACI", "ACS", "ACR", "DAQ", "MCU"}
_START_CHANNELS_OFFSET = m.START_SCHEDULE["channel_count"].offset + 4  # u16 channel list after the count
_RESULTS = {
    Command.ASSIGN_SCHEDULE: m.ASSIGN_RESULTS, Command.START_SCHEDULE: m.START_RESULTS,
    Command.STOP_SCHEDULE: m.STOP_RESULTS, Command.SET_MV: m.SET_MV_RESULTS,
}  # fmt: skip


class CTIError(Exception):
    """Anything that went wrong talking to an Arbin over CTI."""


class CTIConnectionError(CTIError):
    """The TCP connection could not be made, was dropped, or timed out; the message names host:port."""


class CTITimeoutError(CTIConnectionError):
    """No complete feedback arrived within the feedback timeout."""


class _Dropped(CTIConnectionError):
    """The connection closed or failed mid-exchange (the command is sent again on a new connection)."""


class CTIProtocolError(CTIError):
    """A reply that breaks the protocol: bad token, length or checksum, or feedback for another command."""


class CTIResultError(CTIError):
    """The cycler answered but refused: the message names the command, the channel and the result code."""

    def __init__(self, message: str, *, command: str, code: int, meaning: str) -> None:
        super().__init__(message)
        self.command, self.code, self.meaning = command, code, meaning


class CTILoginError(CTIResultError):
    """USER_LOGIN was refused: wrong user name or password, or the user is not registered for CTI."""


def status_word(status: int) -> str:
    """The protocol document's word for a channel status code, e.g. 4 -> "Rest", 29 -> "DAQ Memory Unsafe"."""
    try:
        name = ChannelStatus(status).name
    except ValueError:
        return f"Status {status}"
    words = (w if w in _ACRONYMS else w.lower() if w in ("FOR", "FROM") else w.capitalize() for w in name.split("_"))
    return " ".join(words)


@dataclass(frozen=True)
class ChannelInfo:
    """One channel's record of a GET_CHANNELS_INFO feedback, in SI units (Arbin's sign: positive current charges)."""

    channel: int  # physical channel, 1-based
    status: int  # ChannelStatus code
    status_word: str
    comm_failure: bool
    schedule: str
    test_name: str
    exit_condition: str  # why the last step ended, in MITS's own words
    step_and_cycle: str
    barcode: str
    test_time_s: float
    step_time_s: float
    voltage_V: float
    current_A: float
    power_W: float
    charge_capacity_Ah: float
    discharge_capacity_Ah: float
    charge_energy_Wh: float
    discharge_energy_Wh: float
    internal_resistance_ohm: float
    dv_dt_V_per_s: float

    @property
    def running(self) -> bool:
        """True while a test is in progress on the channel (any status but Idle, Finished, Unsafe, Error, ...)."""
        return self.status not in STOPPED_STATUSES

    @classmethod
    def from_record(cls, r: dict[str, object]) -> ChannelInfo:
        """From a record of messages.parse_channel_records (whose keys are these names in lower case)."""
        values = {f.name: r[f.name.lower()] for f in fields(cls) if f.name.lower() in r}
        values.update(channel=int(r["channel"]) + 1, comm_failure=bool(r["comm_failure"]),
                      status_word=status_word(int(r["status"])))
        return cls(**values)


def check_text(name: str, value: object, max_chars: int, *, codec: str = "utf-16-le", empty_ok: bool = False) -> str:
    """ValueError unless ``value`` is a string that fits its fixed-size CTI field."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {type(value).__name__}")
    if not value and not empty_ok:
        raise ValueError(f"{name} is empty; give a name")
    try:
        units = len(value.encode(codec)) // (2 if codec == "utf-16-le" else 1)
    except UnicodeEncodeError:
        raise ValueError(f"{name} {value!r} has characters the field cannot hold; use plain ASCII") from None
    if units > max_chars:
        raise ValueError(f"{name} {value!r} is {units} characters long; CTI allows at most {max_chars}, shorten it")
    return value


def check_float(name: str, value: object) -> float:
    """ValueError unless ``value`` is a finite number that fits a 32-bit float."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(x) or abs(x) > MAX_F32:
        raise ValueError(f"{name} = {value!r} is not a finite 32-bit float; give a finite number")
    return x


def _final(error: CTIError, command: Command) -> CTIError:
    """The error to raise once every send of ``command`` failed: the last one's kind, saying so."""
    kind = CTIConnectionError if isinstance(error, _Dropped) else type(error)
    return kind(f"{command.name} failed {ATTEMPTS} times, also after reconnecting: {error}")


def _layout_size(layout: m.Layout) -> int:
    """Total frame size of a fixed-size request: its last argument's end plus the checksum."""
    return max(f.offset + f.size for f in layout.values()) + m.CHECKSUM.size


class CTIClient:
    """A logged-in connection to one Arbin cycler's CTI server.

    ``timeout_s`` bounds the wait for each feedback (the protocol document recommends 10 s);
    ``connect_timeout_s`` bounds the TCP connect. The constructor connects and logs in, so
    :attr:`channel_count` and :attr:`serial_number` are known before any command. A dropped
    connection, a feedback that does not come within the timeout and a garbled feedback (bad token, length,
    checksum or command) all end that connection; the command is then sent again on a new one (connect +
    login), up to :data:`ATTEMPTS` times in all, before the last error is raised. A START retried may be
    refused with "channel running" if the first one reached the cycler. Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, username: str = "admin", password: str = "000000",
                 timeout_s: float = FEEDBACK_TIMEOUT_S, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        check_text("username", username, 32, codec="ascii")
        check_text("password", password, 32, codec="ascii", empty_ok=True)
        for name, value in (("timeout_s", timeout_s), ("connect_timeout_s", connect_timeout_s)):
            if not check_float(name, value) > 0:
                raise ValueError(f"{name} = {value!r} must be > 0 seconds")
        self.host, self.port = host, int(port)
        self.where = f"{host}:{self.port}"  # for messages
        self._username, self._password = username, password
        self._timeout_s, self._connect_timeout_s = float(timeout_s), float(connect_timeout_s)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._channel_count = 0
        self._serial_number = ""
        with self._lock:
            self._open()

    @property
    def channel_count(self) -> int:
        """Get the number of channels the cycler reported at login."""
        return self._channel_count

    @property
    def serial_number(self) -> str:
        """Get the cycler's serial number as reported at login."""
        return self._serial_number

    def __enter__(self) -> CTIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the cycler keeps running whatever tests it runs)."""
        with self._lock:
            self._discard()

    # --- commands ---

    def channel_info(self, channel: int) -> ChannelInfo:
        """Measure one physical channel (1-based): status, readings, schedule, test and step times.

        Sends OnlyChannel = channel - 1 and picks that channel's record from the reply, because MITS 10
        answers with every channel even when asked for one.
        """
        wire = self._wire(channel)
        for info in self._channels_info(wire):
            if info.channel == channel:
                return info
        raise CTIProtocolError(f"GET_CHANNELS_INFO for channel {channel}: the reply from {self.where} "
                               "has no record for it")

    def channels_info(self) -> list[ChannelInfo]:
        """Measure every channel (OnlyChannel = -1); records in the cycler's order."""
        return self._channels_info(-1)

    def assign_schedule(self, channel: int, schedule: str, barcode: str = "", test_capacity_Ah: float = 0.0,
                        user_variables: Sequence[float] = ()) -> None:
        """Assign a schedule file (e.g. "labctl_universal.sdx", <= 200 characters) to a physical channel.

        ``test_capacity_Ah`` is the cell capacity in Ah that C-rate steps refer to; ``user_variables``
        are up to 16 initial values of MV_UD1..MV_UD16 (the rest are 0).
        """
        wire = self._wire(channel)
        check_text("schedule", schedule, 200)
        check_text("barcode", barcode, 72, empty_ok=True)
        capacity = check_float("test_capacity_Ah", test_capacity_Ah)
        if capacity < 0:
            raise ValueError(f"test_capacity_Ah = {test_capacity_Ah!r} must be >= 0 Ah")
        values = list(user_variables)
        if len(values) > 16:
            raise ValueError(f"user_variables has {len(values)} values; CTI carries at most 16 (MV_UD1..MV_UD16)")
        args: dict[str, object] = {"channel": wire, "assign_all": 0, "schedule": schedule,
                                   "test_capacity_ah": capacity, "barcode": barcode}
        for k, v in enumerate(values, start=1):
            args[f"user_variable_{k}"] = check_float(f"user_variables[{k - 1}]", v)
        body = m.body(_layout_size(m.ASSIGN_SCHEDULE), m.ASSIGN_SCHEDULE, args)
        self._command(Command.ASSIGN_SCHEDULE, body, f"on channel {channel}")

    def start(self, channels: int | Iterable[int], test_name: str) -> None:
        """Start the assigned schedule on one or more physical channels under ``test_name`` (<= 72 characters)."""
        chans = [channels] if isinstance(channels, int) else list(channels)
        if not chans:
            raise ValueError("channels is empty; give at least one physical channel number")
        wires = [self._wire(c) for c in chans]
        check_text("test_name", test_name, 72)
        size = _START_CHANNELS_OFFSET + 2 * len(wires) + m.CHECKSUM.size
        body = bytearray(m.body(size, m.START_SCHEDULE, {"test_name": test_name, "channel_count": len(wires)}))
        struct.pack_into(f"<{len(wires)}H", body, _START_CHANNELS_OFFSET - m.HEADER_SIZE, *wires)
        where = f"on channel {chans[0]}" if len(chans) == 1 else f"on channels {', '.join(map(str, chans))}"
        self._command(Command.START_SCHEDULE, bytes(body), where)

    def stop(self, channel: int) -> None:
        """Stop the test on one physical channel."""
        body = m.body(_layout_size(m.STOP_SCHEDULE), m.STOP_SCHEDULE, {"channel": self._wire(channel), "stop_all": 0})
        self._command(Command.STOP_SCHEDULE, body, f"on channel {channel}")

    def set_meta_variable(self, channel: int, index: int, value: float) -> None:
        """Set MV_UD<index> (index 1..16) of a running test on a physical channel to a float ``value``."""
        wire = self._wire(channel)
        if isinstance(index, bool) or not isinstance(index, int) or index not in MV_INDICES:
            raise ValueError(f"index = {index!r}: meta-variables are MV_UD1..MV_UD16; give 1..16")
        args = {"channel": wire, "mv_type": 1, "meta_code": m.META_CODES[index], "value_type": 1,
                "value": check_float(f"MV_UD{index} value", value)}
        body = m.body(_layout_size(m.SET_MV), m.SET_MV, args)
        self._command(Command.SET_MV, body, f"MV_UD{index} on channel {channel}")

    def run_schedule(self, channel: int, schedule: str, test_name: str, **assign: object) -> None:
        """Supervisory start of a schedule made in MITS Pro: assign it, then start it.

        ``assign`` takes the optional arguments of :meth:`assign_schedule`. Monitor with :meth:`channel_info`
        (``running``, ``status_word``, readings) and end with :meth:`stop`.
        """
        check_text("test_name", test_name, 72)
        self.assign_schedule(channel, schedule, **assign)
        self.start(channel, test_name)

    # --- internals ---

    def _wire(self, channel: object) -> int:
        if isinstance(channel, bool) or not isinstance(channel, int):
            raise ValueError(f"channel = {channel!r} must be a physical channel number (int, 1-based)")
        if not 1 <= channel <= self._channel_count:
            raise ValueError(f"channel = {channel} is out of range; the cycler at {self.where} has channels "
                             f"1..{self._channel_count} (physical numbering, 1-based)")
        return channel - 1

    def _channels_info(self, only_channel: int) -> list[ChannelInfo]:
        body = m.body(_layout_size(m.CHANNELS_INFO), m.CHANNELS_INFO, {"only_channel": only_channel, "info_type": 1})
        reply = self._exchange(Command.CHANNELS_INFO, body)
        try:
            return [ChannelInfo.from_record(r) for r in m.parse_channel_records(reply)]
        except (ValueError, struct.error) as e:
            raise CTIProtocolError(f"GET_CHANNELS_INFO reply from {self.where} is malformed: {e}") from e

    def _command(self, command: Command, body: bytes, where: str) -> None:
        """Send a control command and raise CTIResultError unless its feedback says success (0)."""
        reply = self._exchange(command, body)
        code = self._unpack(reply, m.RESULT_FEEDBACK, command)["result"]
        if code != 0:
            meaning = _RESULTS[command].get(code, "unknown result code")
            raise CTIResultError(f"{command.name} {where} failed: {code:#04x} {meaning}",
                                 command=command.name, code=code, meaning=meaning)

    def _unpack(self, reply: bytes, layout: m.Layout, command: Command) -> dict[str, object]:
        try:
            return m.unpack_fields(reply, layout)
        except struct.error as e:
            raise CTIProtocolError(f"{command.name} feedback from {self.where} is too short "
                                   f"({len(reply)} bytes)") from e

    def _exchange(self, command: Command, body: bytes) -> bytes:
        """Send one request, return its feedback frame; on a lost, late or garbled feedback, reconnect and send it
        again, up to ATTEMPTS sends in all."""
        request = m.frame(command, body, feedback=False)
        with self._lock:
            for attempt in range(1, ATTEMPTS):
                try:
                    return self._attempt(command, request)
                except (CTIConnectionError, CTIProtocolError) as e:
                    log.warning("%s (send %d of %d of %s); reconnecting and sending it again",
                                e, attempt, ATTEMPTS, command.name)
            try:
                return self._attempt(command, request)
            except (CTIConnectionError, CTIProtocolError) as e:
                raise _final(e, command) from e

    def _attempt(self, command: Command, request: bytes) -> bytes:
        if self._sock is None:
            self._open()
        try:
            return self._round_trip(command, request)
        except CTIError:
            self._discard()  # a dropped or garbled stream cannot be trusted for the next frame
            raise

    def _open(self) -> None:
        """Connect and log in (called with the lock held)."""
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self._connect_timeout_s)
        except OSError as e:
            raise CTIConnectionError(f"cannot connect to Arbin CTI at {self.where}: {e}") from e
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = m.body(_layout_size(m.LOGIN), m.LOGIN, {"username": self._username, "password": self._password})
        try:
            reply = self._round_trip(Command.LOGIN, m.frame(Command.LOGIN, body, feedback=False))
            login = self._unpack(reply, m.LOGIN_FEEDBACK, Command.LOGIN)
        except CTIError:
            self._discard()
            raise
        result = login["result"]
        if result not in (1, 3):  # 3: this connection was already logged in
            self._discard()
            meaning = m.LOGIN_RESULTS.get(result, "unknown result code")
            raise CTILoginError(f"USER_LOGIN as {self._username!r} at {self.where} failed: {result:#04x} {meaning}; "
                                "check the user name and password, and that the user is registered in MITS's "
                                "CTI user management",
                                command="USER_LOGIN", code=result, meaning=meaning)
        self._channel_count, self._serial_number = login["channel_count"], login["serial_number"]
        log.info("logged in to Arbin CTI at %s as %r: serial %s, %d channels",
                 self.where, self._username, self._serial_number, self._channel_count)

    def _discard(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def _round_trip(self, command: Command, request: bytes) -> bytes:
        """Send ``request`` and read one feedback frame, checking token, length, checksum and command."""
        assert self._sock is not None
        try:
            self._sock.settimeout(self._timeout_s)
            self._sock.sendall(request)
        except OSError as e:
            raise _Dropped(f"sending to {self.where} failed: {e}") from e
        deadline = time.monotonic() + self._timeout_s
        prefix = self._receive(m.PREFIX_SIZE, deadline, command)
        try:
            total = m.frame_length(prefix, feedback=True)
        except ValueError as e:
            raise CTIProtocolError(f"{command.name} feedback from {self.where}: {e}") from e
        if not m.HEADER_SIZE + m.CHECKSUM.size <= total <= MAX_FRAME_BYTES:
            raise CTIProtocolError(f"{command.name} feedback from {self.where} announces an impossible length {total}")
        try:
            code, reply = m.split(prefix + self._receive(total - m.PREFIX_SIZE, deadline, command))
        except ValueError as e:
            raise CTIProtocolError(f"{command.name} feedback from {self.where}: {e}") from e
        expected = m.FEEDBACK_OF[command]
        if code != expected:
            got = Command(code).name if code in Command._value2member_map_ else "an unknown command"
            raise CTIProtocolError(f"sent {command.name} to {self.where} but got feedback {code:#010x} ({got}); "
                                   f"expected {expected.name} ({expected.value:#010x})")
        return reply

    def _receive(self, n: int, deadline: float, command: Command) -> bytes:
        assert self._sock is not None
        data = bytearray()
        while len(data) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CTITimeoutError(f"{command.name}: no complete feedback from {self.where} "
                                      f"within {self._timeout_s:g} s")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(n - len(data))
            except TimeoutError:
                continue  # the deadline check above raises
            except OSError as e:
                raise _Dropped(f"receiving from {self.where} failed: {e}") from e
            if not chunk:
                raise _Dropped(f"{self.where} closed the connection")
            data += chunk
        return bytes(data)
