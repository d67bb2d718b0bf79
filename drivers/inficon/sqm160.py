"""INFICON SQM-160 quartz-crystal rate/thickness monitor: PyMeasure's ``SQM160`` with what a deposition needs,
and labctl's rate-monitor role.

PyMeasure frames commands (research/instruments.md §6.2: sync ``!``, a length character = message length + 34,
the message, a 14-bit CRC in two characters + 34) and reads each sensor's rate, thickness, frequency and crystal
life. This driver adds:

- replies read whole before they are judged, so a refused command never leaves the rest of its packet in the
  buffer to be misread as the next reply (PyMeasure's ``read`` stops at a bad status character), and typed
  errors: :class:`SQMStatusError` names the status character (§6.2: ``C`` invalid command, ``D`` problem with
  data, ``E`` wrong mode, ``F`` invalid CRC, ``G`` reply too long), :class:`SQMChecksumError` a reply whose
  CRC is wrong, :class:`SQMFramingError` bytes that are not a reply packet;
- film parameters (``A{film}?`` / ``A{film} …``), the active film (``D{film}``), zeroing (``S`` thickness and
  rate, ``T`` timer) and the shutter relay (``U1`` open, ``U0`` close);
- a reply that does not come (:class:`SQMTimeout`) or comes corrupted is refused by the instrument class and tried
  again by the role (:class:`SQM160Monitor`): each of its operations is sent again, up to ``ATTEMPTS`` (3) times
  in all, with what was left unread dropped first, so a corrupted byte never ends a deposition while a monitor that
  stopped answering still does, within three timeouts. Every operation of the role is safe to repeat (programming
  a film, zeroing, opening or closing the shutter, reading).

The field order of ``A`` and the letters ``D`` and ``U`` are not confirmed from the SQM-160 manual's §5.4
(research/instruments.md §6.3 marks them unverified): they live in :data:`FILM_FIELDS`, :attr:`SQM160.active_film`
and :attr:`SQM160.shutter` only, to be checked on a real unit (docs/instruments/sqm-160.md).

Thickness comes from the monitor in kÅ (the SQM/SQC display convention, §6.3), rates in Å/s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pymeasure.instruments.inficon.sqm160 import SQM160 as PyMeasureSQM160
from pymeasure.instruments.inficon.sqm160 import calculate_checksum
from pymeasure.instruments.validators import strict_discrete_set, strict_range
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError

from labctl.films import (
    DENSITY_G_CM3,
    FILM_NAME,
    FILM_NUMBERS,
    NM_PER_KA,
    SENSOR_MASK,
    THICKNESS_KA,
    TIME_SETPOINT_S,
    TOOLING_PCT,
    Z_RATIO,
)
from labctl.roles import RateReading

log = logging.getLogger(__name__)

SYNC = b"!"
REPLY_LENGTH_OFFSET = 35  # a reply's length character = len(status + message) + 35 (§6.2)
OK_STATUSES = {"A": "ok", "B": "ok, but the instrument was reset since (power cycle)"}
ERROR_STATUSES = {
    "C": "invalid command",
    "D": "problem with the data of the command",
    "E": "wrong mode for this command",
    "F": "invalid CRC",
    "G": "reply longer than 221 characters",
}
ATTEMPTS = 3  # sends of a role operation whose reply is lost or corrupted, before the error is raised
NO_OSCILLATION_HZ = 1000.0  # a failed crystal reads 0 Hz; nothing between this and the 4-6 MHz band is a crystal

# Film parameters in the order of ``A{film}`` (unconfirmed, see the module docstring); their ranges: labctl/films.py.
FILM_FIELDS = (
    "name",
    "density_g_cm3",
    "tooling_pct",
    "z_ratio",
    "final_thickness_kA",
    "thickness_setpoint_kA",
    "time_setpoint_s",
    "sensor_mask",
)


class SQMError(ConnectionError):
    """The monitor refused a command or sent what is not a valid reply. A ConnectionError, as PyMeasure's SQM160
    raises, so code written for it still catches these."""


class SQMFramingError(SQMError):
    """Bytes that are not a reply packet (no sync character, impossible length)."""


class SQMChecksumError(SQMError):
    """A reply whose CRC does not match its bytes: corrupted on the line."""


class SQMTimeout(SQMError):
    """No reply (or not all of it) within the read timeout."""


RETRIED = (SQMFramingError, SQMChecksumError, SQMTimeout)  # the line's faults, not the monitor's answer
T = TypeVar("T")


class SQMStatusError(SQMError):
    """The monitor answered a command with an error status character."""

    def __init__(self, status: str, command: str) -> None:
        self.status, self.command = status, command
        meaning = ERROR_STATUSES.get(status, "unknown status character")
        super().__init__(f"the monitor answered {command!r} with status {status!r} ({meaning})")


def _check(name: str, value: float, limits: tuple[float, float], unit: str) -> float:
    low, high = limits
    if not low <= value <= high:
        raise ValueError(f"{name} = {value!r} is outside {low:g} .. {high:g} {unit}")
    return value


@dataclass(frozen=True)
class Film:
    """One film's parameters as the monitor stores them (thicknesses in kÅ)."""

    name: str
    density_g_cm3: float
    tooling_pct: float
    z_ratio: float
    final_thickness_kA: float = 0.0  # the monitor closes its shutter relay here; 0: never
    thickness_setpoint_kA: float = 0.0
    time_setpoint_s: int = 0
    sensor_mask: int = 1

    def __post_init__(self) -> None:
        if not FILM_NAME.match(self.name):
            raise ValueError(f"film name {self.name!r} must be 1-8 letters, digits, '_' or '-'")
        _check("density", self.density_g_cm3, DENSITY_G_CM3, "g/cm³")
        _check("tooling", self.tooling_pct, TOOLING_PCT, "%")
        _check("Z-ratio", self.z_ratio, Z_RATIO, "")
        _check("final thickness", self.final_thickness_kA, THICKNESS_KA, "kÅ")
        _check("thickness setpoint", self.thickness_setpoint_kA, THICKNESS_KA, "kÅ")
        _check("time setpoint", self.time_setpoint_s, TIME_SETPOINT_S, "s")
        _check("sensor mask", self.sensor_mask, SENSOR_MASK, "")

    def command_fields(self) -> str:
        """The values as ``A{film}`` sets them, in :data:`FILM_FIELDS` order."""
        return (
            f"{self.name} {self.density_g_cm3:.2f} {self.tooling_pct:.1f} {self.z_ratio:.3f} "
            f"{self.final_thickness_kA:.3f} {self.thickness_setpoint_kA:.3f} {self.time_setpoint_s:d} "
            f"{self.sensor_mask:d}"
        )

    @classmethod
    def parse(cls, reply: str) -> Film:
        """A film from the reply to ``A{film}?``."""
        fields = reply.split()
        if len(fields) != len(FILM_FIELDS):
            raise SQMFramingError(
                f"film parameters {reply!r}: expected {len(FILM_FIELDS)} fields ({', '.join(FILM_FIELDS)})"
            )
        name, *numbers = fields
        try:
            density, tooling, z, final, setpoint = (float(x) for x in numbers[:5])
            time_s, mask = int(numbers[5]), int(numbers[6])
        except ValueError as e:
            raise SQMFramingError(f"film parameters {reply!r}: {e}") from None
        return cls(name, density, tooling, z, final, setpoint, time_s, mask)


class SQM160(PyMeasureSQM160):
    """INFICON SQM-160 on a serial port (PyVISA ``ASRL…::INSTR``; 19200 baud 8N1 by default, §6.2)."""

    MODEL = "SQM-160"

    active_film = PyMeasureSQM160.setting(
        "D%d", """Set the active film (1-99): the one whose parameters turn frequency into thickness.""",
        validator=strict_range, values=FILM_NUMBERS, check_set_errors=True,
    )  # fmt: skip

    shutter = PyMeasureSQM160.setting(
        "U%d", """Set the shutter relay: "open" or "closed".""",
        validator=strict_discrete_set, values={"open": 1, "closed": 0}, map_values=True, check_set_errors=True,
    )  # fmt: skip

    def __init__(self, adapter, name: str | None = None, baud_rate: int = 19200, timeout: int = 3000,
                 **kwargs) -> None:
        """``timeout``: how long a read waits for a reply, ms (PyMeasure's SQM160 fixes 3000)."""
        super().__init__(adapter, name or f"INFICON {self.MODEL}", baud_rate=baud_rate, **kwargs)
        self.adapter.connection.timeout = timeout
        self.last_command = ""

    def write(self, command: str) -> None:
        """Frame and send ``command`` (PyMeasure's framing), remembering it for error messages."""
        self.last_command = command
        super().write(command)

    def read(self) -> str:
        """The message of one reply packet, read to its end before its status and CRC are judged."""
        try:
            return self._read_packet()
        except VisaIOError as e:
            if e.error_code != StatusCode.error_timeout:
                raise SQMError(f"the serial port failed while reading the reply to {self.last_command!r}: "
                               f"{e.description}") from e
            self._resynchronise()
            raise SQMTimeout(f"no reply (or not all of it) to {self.last_command!r} within the read timeout; check "
                             "the monitor's power, cable and baud rate") from e

    def _read_packet(self) -> str:
        header = self.read_bytes(2)
        if header[:1] != SYNC:
            self._resynchronise()
            raise SQMFramingError(f"reply to {self.last_command!r} starts with {header!r}, not the sync '!'")
        size = header[1] - REPLY_LENGTH_OFFSET
        if size < 1:
            self._resynchronise()
            raise SQMFramingError(
                f"reply to {self.last_command!r} has length character {header[1]}, "
                f"below the smallest reply ({REPLY_LENGTH_OFFSET + 1})"
            )
        body = self.read_bytes(size)
        crc = self.read_bytes(2)
        expected = calculate_checksum(header[1:2] + body)
        if crc != expected:
            raise SQMChecksumError(
                f"reply {header + body + crc!r} to {self.last_command!r} carries CRC {crc!r}, "
                f"its bytes give {expected!r}"
            )
        status, message = chr(body[0]), body[1:].decode("latin-1")
        if status not in OK_STATUSES:
            raise SQMStatusError(status, self.last_command)
        if status == "B":
            log.warning("%s: %s (reply to %r)", self.name, OK_STATUSES["B"], self.last_command)
        return message

    def film(self, number: int) -> Film:
        """The parameters of film ``number`` (1-99)."""
        strict_range(number, FILM_NUMBERS)
        return Film.parse(self.ask(f"A{number}?"))

    def set_film(self, number: int, film: Film) -> None:
        """Store ``film`` as film ``number`` (1-99)."""
        strict_range(number, FILM_NUMBERS)
        self.write(f"A{number} {film.command_fields()}")
        self.check_set_errors()

    def select_film(self, number: int, film: Film) -> None:
        """Store ``film`` as film ``number`` and make it the active film."""
        self.set_film(number, film)
        self.active_film = number

    def zero(self) -> None:
        """Zero thickness and rate of every sensor, and the deposition timer."""
        self.reset_thickness_rate()
        self.reset_time()

    def monitor(self, *, sensor: int = 1, film: int = 1, shutter_control: bool = True) -> SQM160Monitor:
        """This instrument in labctl's RateMonitor role, reading ``sensor`` and programming ``film``."""
        return SQM160Monitor(self, sensor=sensor, film=film, shutter_control=shutter_control)

    def _resynchronise(self) -> None:
        """Drop what is buffered: the next reply starts clean."""
        try:
            self.adapter.flush_read_buffer()
        except (AttributeError, NotImplementedError):
            log.debug("%s: the adapter cannot flush its read buffer", self.name)


class ShutterNotControlled(RuntimeError):
    """The bench says the shutter is opened and closed by hand, not by the monitor."""


class SQM160Monitor:
    """An SQM-160 (or SQC-310) in labctl's RateMonitor role (``labctl.roles``).

    A separate class, because the role's ``read() -> RateReading`` would replace ``Instrument.read() -> str``,
    through which every query of the driver goes.
    """

    def __init__(self, instrument: SQM160, *, sensor: int = 1, film: int = 1, shutter_control: bool = True) -> None:
        self.instrument = instrument
        self.sensor = sensor
        self.film_number = film
        self.shutter_control = shutter_control
        self._channel = getattr(instrument, f"sensor_{sensor}", None)
        if self._channel is None:
            raise ValueError(f"sensor {sensor}: the {instrument.MODEL} has sensors 1..{_sensor_count(instrument)}")

    def _retried(self, what: str, operation: Callable[[], T]) -> T:
        """``operation``, done again when its reply was lost or corrupted, up to ATTEMPTS times in all."""
        for attempt in range(1, ATTEMPTS):
            try:
                return operation()
            except RETRIED as e:
                log.warning("%s: %s (attempt %d of %d); trying again", what, e, attempt, ATTEMPTS)
                self.instrument._resynchronise()
        try:
            return operation()
        except RETRIED as e:
            raise type(e)(f"{what} failed {ATTEMPTS} times; the last time: {e}") from e

    def identity(self) -> dict[str, str]:
        return {
            "make": "INFICON",
            "model": self.instrument.MODEL,
            "firmware": self.instrument.firmware_version,
            "sensor": str(self.sensor),
            "film": str(self.film_number),
            "shutter": "monitor relay" if self.shutter_control else "by hand",
        }

    def set_film(
        self, *, name: str, density_g_cm3: float, z_ratio: float, tooling_pct: float, final_thickness_nm: float
    ) -> None:
        film = Film(
            name,
            density_g_cm3,
            tooling_pct,
            z_ratio,
            final_thickness_kA=final_thickness_nm / NM_PER_KA,
            sensor_mask=1 << (self.sensor - 1),
        )
        self._retried("programming the film", lambda: self.instrument.select_film(self.film_number, film))

    def zero(self) -> None:
        self._retried("zeroing", self.instrument.zero)

    def open_shutter(self) -> None:
        self._shutter("open")

    def close_shutter(self) -> None:
        self._shutter("closed")

    def read(self) -> RateReading:
        return self._retried("reading the sensor", self._reading)

    def _reading(self) -> RateReading:
        channel = self._channel
        frequency_Hz = channel.frequency
        return RateReading(
            rate_A_s=channel.rate,
            thickness_nm=round(channel.thickness * NM_PER_KA, 4),
            frequency_Hz=frequency_Hz,
            crystal_life_pct=channel.crystal_life,
            crystal_failed=frequency_Hz < NO_OSCILLATION_HZ,
        )

    def close(self) -> None:
        """Close the serial port (the monitor keeps its films and shutter state)."""
        self.instrument.adapter.close()

    def _shutter(self, state: str) -> None:
        if not self.shutter_control:
            raise ShutterNotControlled(
                f"the shutter of this bench is worked by hand, not by the {self.instrument.MODEL}; ask the operator"
            )
        self._retried(f"setting the shutter {state}", lambda: setattr(self.instrument, "shutter", state))


def _sensor_count(instrument: SQM160) -> int:
    return sum(1 for n in range(1, 7) if getattr(instrument, f"sensor_{n}", None) is not None)
