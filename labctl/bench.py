"""Bench configuration: which instrument plays which role, read from TOML.

A bench file maps roles to instruments::

    name = "arbin-bay-2"
    [clock]
    kind = "wall"                      # "sim" on a simulated bench, with resource = its control channel
    [roles.cycler]
    driver = "arbin-cti"
    resource = "192.168.1.20:9031"     # host:port, or a PyVISA resource string for VISA instruments
    channel = 3                        # physical channel, 1-based
    [roles.cycler.options]
    username = "admin"
    password = "000000"
    current_range_A = 0.5              # the channel's full scale, A and ±V: CTI does not report them
    voltage_range_V = 10.0
    [roles.cycler.limits]              # safety limits of this channel (labctl/safety.py); [limits]: of the bench
    voltage_max_V = 5.0

The built-in bench ``sim`` needs no file: labctl starts emulators of every instrument on 127.0.0.1 and
points the same drivers at them. A file with a ``[sim]`` table does the same with its own settings.
Every problem is reported as a :class:`BenchError` naming the field and the fix.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Callable, Collection
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labctl.drivers.biologic import MIN_TOKEN_CHARS
from labctl.films import FILM_NUMBERS
from labctl.request import SIM_LAYOUTS
from labctl.roles import Clock, CyclerChannel
from labctl.safety import ChannelRange, Limits, tightest
from labctl.units import area_from_diameter_cm2

log = logging.getLogger(__name__)

ROLES = ("cycler", "impedance", "rate_monitor")
SECRET_OPTIONS = ("password", "token")  # instrument options kept out of run metadata
M = TypeVar("M", bound=BaseModel)
HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})$")


class BenchError(Exception):
    """A bench that cannot be used as configured; the message names the field and the fix."""


class _Strict(BaseModel):
    # strict: a TOML true is no channel number; no inf or NaN in any number
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class InstrumentConfig(_Strict):
    driver: str
    resource: str
    channel: int | None = Field(default=None, ge=1)
    options: dict[str, Any] = {}
    limits: Limits = Limits()  # the cycler channel's own safety limits


class ClockConfig(_Strict):
    kind: Literal["wall", "sim"] = "wall"
    resource: str | None = None


class SimConfig(_Strict):
    """Settings of a simulated bench: the virtual cell in every cycler channel."""

    cell: str = "bare"
    seed: int = Field(default=0, ge=0)  # numpy seeds its generators from non-negative integers only
    channels: int = Field(default=8, ge=1, le=64)
    area_cm2: float = Field(default=round(area_from_diameter_cm2(12.0), 4), gt=0)  # the procedures' default electrode
    cathode_mass_mg: float | None = Field(default=None, gt=0)  # full cells: active cathode mass (None: the preset's)
    # the SP-200's part: "none" (Arbin cycles, the 1260 measures), "alone" (it cycles and measures), "impedance"
    # (the Arbin cycles, it measures: Sandoval et al.'s bench)
    sp200: Literal["none", "alone", "impedance"] = "none"


class BenchConfig(_Strict):
    name: str = "bench"
    clock: ClockConfig = ClockConfig()
    roles: dict[str, InstrumentConfig] = {}
    sim: SimConfig | None = None
    limits: Limits = Limits()  # safety limits of every channel of the bench


def parse_host_port(resource: str, where: str) -> tuple[str, int]:
    m = HOST_PORT.match(resource.strip())
    if not m or not 0 < int(m["port"]) < 65536:
        raise BenchError(f"{where}: {resource!r} is not host:port; write it like 192.168.1.20:9031")
    return m["host"].strip("[]"), int(m["port"])


def _open_arbin(cfg: InstrumentConfig, where: str) -> CyclerChannel:
    from labctl.drivers.arbin.cti import CTIClient, CTIError
    from labctl.drivers.arbin.universal import UniversalScheduleChannel

    host, port = parse_host_port(cfg.resource, f"{where}.resource")
    channel_range, opts = cycler_options(cfg.options, where)
    schedule = opts.pop("schedule", None)
    try:
        client = CTIClient(host, port, **opts)
    except (TypeError, ValueError) as e:
        raise BenchError(f"{where}.options: {e}; options are username, password, timeout_s, connect_timeout_s, "
                         "schedule, current_range_A, voltage_range_V") from e
    except (CTIError, OSError) as e:
        raise BenchError(f"{where}.resource: cannot reach Arbin CTI at {host}:{port}: {e}. Check that MITS Pro's "
                         "Monitor & Control window is open, CTI is enabled and the address is right") from e
    channel = cfg.channel or 1
    if channel > client.channel_count:
        client.close()
        raise BenchError(f"{where}.channel: {channel} but the cycler at {host}:{port} has "
                         f"{client.channel_count} channels; use 1..{client.channel_count}")
    extra = {"schedule": schedule} if schedule else {}
    return UniversalScheduleChannel(client, channel, **extra, **channel_range.model_dump(exclude_none=True))


def cycler_options(options: dict[str, Any], where: str) -> tuple[ChannelRange, dict[str, Any]]:
    """A cycler channel's range from its options (CTI does not report it), checked, and the other options;
    BenchError naming a bad one."""
    return own_options(ChannelRange, options, where, "give the channel's full-scale current in A (current_range_A) "
                       "and voltage in ±V (voltage_range_V)")


def own_options(model: type[M], options: dict[str, Any], where: str, hint: str) -> tuple[M, dict[str, Any]]:
    """The options ``model`` (labctl's own settings of an instrument) names, checked, and the rest (the driver's);
    BenchError naming a bad one, then ``hint``."""
    own = {k: v for k, v in options.items() if k in model.model_fields}
    try:
        checked = model.model_validate(own)
    except ValidationError as e:
        problem = e.errors()[0]
        raise BenchError(f"{where}.options.{problem['loc'][0]}: {problem['input']!r}: {problem['msg'].lower()}; "
                         f"{hint}") from None
    return checked, {k: v for k, v in options.items() if k not in own}


VISA_RESOURCE = re.compile(r"^(GPIB\d*::\d+(::\d+)?(::INSTR)?|TCPIP\d*::[^:]+::(\d+::SOCKET|[^:]+::INSTR|INSTR)|"
                           r"ASRL[^:]+::INSTR|USB\d*::.+::INSTR)$", re.IGNORECASE)


def check_visa_resource(resource: str, where: str) -> str:
    if not VISA_RESOURCE.match(resource.strip()):
        raise BenchError(f"{where}: {resource!r} is not a VISA resource string; write it like GPIB0::4::INSTR "
                         "or TCPIP::192.168.1.30::1234::SOCKET (a GPIB-Ethernet gateway)")
    return resource.strip()


def _open_solartron(cfg: InstrumentConfig, where: str) -> Any:
    from labctl.drivers.solartron.si1260 import Solartron1260

    resource = check_visa_resource(cfg.resource, f"{where}.resource")
    try:
        return Solartron1260(resource, **cfg.options).analyzer()
    except (TypeError, ValueError) as e:
        raise BenchError(f"{where}.options: {e}; options are PyVISA settings such as visa_library, timeout") from e
    except Exception as e:  # PyVISA raises many kinds of errors for an absent instrument
        raise BenchError(f"{where}.resource: cannot reach the Solartron 1260 at {resource}: {e}. Check the GPIB "
                         "address, cable or gateway") from e


SERIAL_RESOURCE = re.compile(r"^ASRL[^:\s]+::INSTR$", re.IGNORECASE)


def check_serial_resource(resource: str, where: str) -> str:
    if not SERIAL_RESOURCE.match(resource.strip()):
        raise BenchError(f"{where}: {resource!r} is not a VISA serial resource; write it like "
                         "ASRL/dev/ttyUSB0::INSTR (Linux) or ASRL3::INSTR (COM3)")
    return resource.strip()


class MonitorOptions(_Strict):
    """The rate-monitor options labctl reads itself; the others are PyVISA settings."""

    shutter_control: bool = True  # false: the shutter is worked by hand
    film: int = Field(default=1, ge=FILM_NUMBERS[0], le=FILM_NUMBERS[1])  # the film slot labctl programs


def monitor_options(options: dict[str, Any], where: str) -> tuple[MonitorOptions, dict[str, Any]]:
    """A rate monitor's options, checked, and the rest (PyVISA settings); BenchError naming a bad one."""
    return own_options(MonitorOptions, options, where, f"film is the monitor's film slot {FILM_NUMBERS[0]}.."
                       f"{FILM_NUMBERS[1]}, shutter_control true or false")


def _open_inficon(model: str) -> Callable[[InstrumentConfig, str], Any]:
    """Opener of an INFICON rate monitor (``model`` "sqm160" or "sqc310"); options: ``shutter_control``
    (false: the shutter is worked by hand), ``film`` (the film slot labctl programs) and PyVISA settings."""

    def open_monitor(cfg: InstrumentConfig, where: str) -> Any:
        from labctl.drivers.inficon.sqc310 import SQC310
        from labctl.drivers.inficon.sqm160 import SQM160

        resource = check_serial_resource(cfg.resource, f"{where}.resource")
        role, opts = monitor_options(cfg.options, where)
        cls = {"sqm160": SQM160, "sqc310": SQC310}[model]
        try:
            monitor = cls(resource, **opts).monitor(sensor=cfg.channel or 1, **role.model_dump())
        except (TypeError, ValueError) as e:
            raise BenchError(f"{where}: {e}; options are shutter_control, film and PyVISA settings such as "
                             "visa_library, baud_rate") from e
        except Exception as e:  # PyVISA raises many kinds of errors for an absent port
            raise BenchError(f"{where}.resource: cannot open {resource}: {e}. Check the port and cable") from e
        try:
            monitor.identity()  # a serial port opens with nothing behind it: ask the monitor itself
        except Exception as e:
            monitor.close()
            raise BenchError(f"{where}.resource: no {cls.MODEL} answers on {resource}: {e}. Check that it is on, "
                             "the cable, and the baud rate (19200 unless changed in its System menu)") from e
        return monitor

    return open_monitor


BIOLOGIC_ADDRESS = re.compile(r"^(USB\d+|\d{1,3}(\.\d{1,3}){3})$")


def check_biologic_address(resource: str, where: str) -> str:
    if not BIOLOGIC_ADDRESS.match(resource.strip()):
        raise BenchError(f"{where}: {resource!r} is not an EClib address; write USB0 (the first USB instrument) or the "
                         "SP-200's IP address, e.g. 192.168.1.40")
    return resource.strip()


class SP200Options(_Strict):
    """The options of a BioLogic SP-200 (both roles); ``current_range_A``/``voltage_range_V`` are the cycler's."""

    eclib: str = "C:/EC-Lab Development Package/lib"  # the development package's lib folder, on the PC running EClib
    bridge: str | None = None  # host:port of `labctl biologic-bridge` on that PC; None: load EClib in this process
    token: str | None = Field(default=None, min_length=MIN_TOKEN_CHARS)  # the bridge's shared token
    timeout_s: int = Field(default=5, ge=1, le=255)  # BL_Connect's timeout, whole seconds
    record_dt_s: float = Field(default=10.0, gt=0, le=3600)  # how often a cycling segment records a row


def sp200_options(options: dict[str, Any], where: str) -> SP200Options:
    """An SP-200's options, checked (BenchError naming a bad one)."""
    known = set(SP200Options.model_fields) | set(ChannelRange.model_fields)
    unknown = sorted(set(options) - known)
    if unknown:
        raise BenchError(f"{where}.options.{unknown[0]}: not an SP-200 option; options are {', '.join(sorted(known))}")
    checked, _ = own_options(SP200Options, options, where, "eclib is the EC-Lab Development Package's lib folder, "
                             "bridge host:port of `labctl biologic-bridge`, token its shared token "
                             f"({MIN_TOKEN_CHARS}+ characters)")
    if checked.bridge is not None:
        parse_host_port(checked.bridge, f"{where}.options.bridge")
        if checked.token is None:
            raise BenchError(f"{where}.options.token: missing; the bridge refuses clients without its token: give the "
                             "token the bridge was started with")
    return checked


def _open_sp200(cfg: InstrumentConfig, where: str, role: str, sessions: dict[tuple, Any]) -> Any:
    """The SP-200 channel of ``cfg`` in ``role``; the roles of one channel share one connection (``sessions``)."""
    from labctl.drivers.biologic.sp200 import SP200Cycler, SP200Impedance

    options = sp200_options(cfg.options, where)
    key = (cfg.resource, cfg.channel or 1, options.bridge, options.eclib)
    if key not in sessions:
        sessions[key] = _connect_sp200(cfg, options, where)
    sp200 = sessions[key]
    return SP200Cycler(sp200, record_dt_s=options.record_dt_s) if role == "cycler" else SP200Impedance(sp200)


def _connect_sp200(cfg: InstrumentConfig, options: SP200Options, where: str) -> Any:
    from labctl.drivers.biologic.eclib import EClibError
    from labctl.drivers.biologic.sp200 import SP200

    library, close = _eclib(options, where)
    try:
        return SP200(library, cfg.resource, cfg.channel or 1, options.eclib, close_library=close,
                     timeout_s=options.timeout_s)
    except (EClibError, OSError) as e:
        close()
        raise BenchError(f"{where}.resource: cannot reach the SP-200 at {cfg.resource}: {e}. Check that it is on and "
                         "connected to the PC running EClib, and that EC-Lab is closed") from e
    except ValueError as e:
        close()
        raise BenchError(f"{where}: {e}") from e


def _eclib(options: SP200Options, where: str) -> tuple[Any, Callable[[], None]]:
    """EClib through the bridge, or loaded in this process (Windows only), and what closes it."""
    import sys

    if options.bridge is not None:
        from labctl.drivers.biologic.bridge import BridgeError, EClibBridge

        host, port = parse_host_port(options.bridge, f"{where}.options.bridge")
        try:
            client = EClibBridge(host, port, options.token or "")
        except BridgeError as e:
            raise BenchError(f"{where}.options.bridge: {e}") from e
        return client, client.close
    if sys.platform != "win32":
        raise BenchError(f"{where}.options: EClib is a Windows DLL, so on this host the SP-200 is reached through a "
                         "bridge: run `labctl biologic-bridge` on the Windows PC beside it and give bridge = "
                         "\"host:port\" and its token (docs/instruments/biologic-sp200.md)")
    import ctypes
    import os

    from labctl.drivers.biologic.eclib import EClib

    path = os.path.join(options.eclib, "EClib64.dll")
    try:
        return EClib(ctypes.WinDLL(path)), lambda: None  # type: ignore[attr-defined]
    except OSError as e:
        raise BenchError(f"{where}.options.eclib: cannot load {path}: {e}; give the EC-Lab Development Package's lib "
                         "folder") from e


@dataclass(frozen=True)
class Driver:
    roles: tuple[str, ...]
    check_resource: Callable[[str, str], object]  # (resource, where) -> raises BenchError
    open: Callable[..., Any]  # (config, where), or with ``shared`` (config, where, role, sessions)
    shared: bool = False  # one instrument channel plays several roles through one connection


DRIVERS: dict[str, Driver] = {
    "arbin-cti": Driver(("cycler",), parse_host_port, _open_arbin),
    "solartron-1260": Driver(("impedance",), check_visa_resource, _open_solartron),
    "biologic-sp200": Driver(("cycler", "impedance"), check_biologic_address, _open_sp200, shared=True),
    "inficon-sqm160": Driver(("rate_monitor",), check_serial_resource, _open_inficon("sqm160")),
    "inficon-sqc310": Driver(("rate_monitor",), check_serial_resource, _open_inficon("sqc310")),
}


@dataclass
class Bench:
    """An opened bench: a clock and one connected instrument per role. Close it when done."""

    name: str
    config: BenchConfig
    clock: Clock
    roles: dict[str, Any]
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)
    run_limits: Limits = field(default_factory=Limits)  # the safety limits of the run it is handed to

    @property
    def limits(self) -> Limits:
        """The tightest of the bench's, its cycler channel's and the run's safety limits (LimitError if they leave
        no voltage window)."""
        cycler = self.config.roles.get("cycler")
        return tightest(self.config.limits, cycler.limits if cycler else Limits(), self.run_limits)

    def role(self, role: str) -> Any:
        try:
            return self.roles[role]
        except KeyError:
            raise BenchError(f"bench {self.name!r} has no {role} role; add a [roles.{role}] table") from None

    @property
    def cycler(self) -> CyclerChannel:
        return self.role("cycler")

    def identities(self) -> dict[str, dict[str, str]]:
        return {role: inst.identity() for role, inst in self.roles.items()}

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_config(spec: str) -> BenchConfig:
    """A built-in simulated bench (``sim``, ``sim-sp200``, ``sim-arbin-sp200``), or a TOML bench file."""
    if spec in SIM_LAYOUTS:
        return BenchConfig(name=spec, sim=SimConfig(sp200=SIM_LAYOUTS[spec]))
    path = Path(spec)
    if not path.is_file():
        raise BenchError(f"--bench: no bench file {spec!r}; give a TOML bench file or one of the simulated benches "
                         f"{', '.join(SIM_LAYOUTS)}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise BenchError(f"{path}: not UTF-8 text ({e}); save the bench file as UTF-8") from None
    return config_from_text(text, str(path), path.stem)


def config_from_text(text: str, source: str, name: str) -> BenchConfig:
    """A bench file's text (``source`` names it in errors; ``name`` unless it names itself)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BenchError(f"{source}: not valid TOML: {e}") from e
    data.setdefault("name", name)
    return validate_config(data, source)


def validate_config(data: dict[str, Any], source: str) -> BenchConfig:
    try:
        config = BenchConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "missing; every role needs driver and resource"
        elif err["type"] == "extra_forbidden":
            msg = "is not a bench setting; check the spelling"
        raise BenchError(f"{source}: {where}: {msg}") from e
    for role, inst in config.roles.items():
        _check_role(role, inst, source)
    if config.clock.kind == "sim" and not config.clock.resource:
        raise BenchError(f"{source}: clock.resource: missing; a sim clock needs the bench's control channel host:port")
    return config


def _check_role(role: str, inst: InstrumentConfig, source: str) -> None:
    where = f"{source}: roles.{role}"
    if role not in ROLES:
        raise BenchError(f"{where}: unknown role; roles are {', '.join(ROLES)}")
    driver = DRIVERS.get(inst.driver)
    if driver is None:
        choices = ", ".join(name for name, d in DRIVERS.items() if role in d.roles) or "none yet"
        raise BenchError(f"{where}.driver: unknown driver {inst.driver!r}; drivers for {role}: {choices}")
    if role not in driver.roles:
        raise BenchError(f"{where}.driver: {inst.driver!r} plays the {' and '.join(driver.roles)} role, not {role}")
    driver.check_resource(inst.resource, f"{where}.resource")
    if role == "rate_monitor":
        monitor_options(inst.options, where)
    if inst.driver == "biologic-sp200":
        sp200_options(inst.options, where)
    if role == "cycler":
        cycler_options(inst.options, where)
    elif inst.limits.given():
        raise BenchError(f"{where}.limits: only the cycler role takes safety limits; move them to "
                         "[roles.cycler.limits], or to the top-level [limits] table for the whole bench")


def open_bench(spec: str, *, sim_overrides: dict[str, Any] | None = None,
               sim_defaults: dict[str, Any] | None = None, cycler_channel: int | None = None,
               roles: Collection[str] | None = None) -> Bench:
    """Open a bench by name or file. On a simulated bench, start its emulators first: its ``[sim]`` table
    is updated with ``sim_defaults`` (what the procedure describes: the electrode area, a suitable cell
    preset), then with ``sim_overrides`` (what the user asked for: cell preset, seed). ``cycler_channel``
    replaces the bench's cycler channel (on a simulated bench the analyzer then measures that channel's cell).
    ``roles`` opens only those of the bench's roles (None: all), leaving the others to whoever holds them."""
    config = load_config(spec)
    stack = ExitStack()
    try:
        if config.sim is not None:
            sim = sim_settings(config.sim, {**(sim_defaults or {}), **(sim_overrides or {})})
            check_channel(cycler_channel, sim.channels)
            served = stack.enter_context(start_sim_bench(sim, impedance_channel=cycler_channel or 1)).config(
                cycler_channel=cycler_channel or 1)
            config = validate_config({**served, "name": config.name, "sim": sim.model_dump(),
                                      "limits": config.limits.given()}, config.name)  # fmt: skip
        elif sim_overrides:
            raise BenchError(f"--cell/--seed: bench {config.name!r} is not simulated; these options apply to sim benches")
        elif cycler_channel is not None:
            cycler = config.roles.get("cycler")
            if cycler is None:
                raise BenchError(f"--channel: bench {config.name!r} has no cycler role; add a [roles.cycler] table")
            check_channel(cycler_channel, None)
            config.roles["cycler"] = cycler.model_copy(update={"channel": cycler_channel})
        clock = stack.enter_context(closing(_open_clock(config)))
        sessions = _Sessions(stack)
        opened = {role: stack.enter_context(closing(_open_role(role, inst, sessions)))
                  for role, inst in config.roles.items() if roles is None or role in roles}
    except BaseException:
        stack.close()
        raise
    return Bench(config.name, config, clock, opened, stack)


def sim_settings(sim: SimConfig, overrides: dict[str, Any]) -> SimConfig:
    """``sim`` with some fields replaced, validated like a bench file's ``[sim]`` table."""
    try:
        return SimConfig.model_validate({**sim.model_dump(), **overrides})
    except ValidationError as e:
        err = e.errors()[0]
        raise BenchError(f"sim.{'.'.join(map(str, err['loc']))}: {err['msg']}") from e


def check_channel(channel: int | None, channels: int | None) -> None:
    """A cycler channel the bench has (``channels`` None: a real cycler, whose count is known only once
    connected)."""
    if channel is not None and not (1 <= channel <= (channels or channel)):
        limit = f"use 1..{channels}" if channels else "channels count from 1"
        raise BenchError(f"--channel: {channel} is not a channel of this bench; {limit}")


def start_sim_bench(sim: SimConfig, *, free_running: bool = False, impedance_channel: int = 1) -> Any:
    """The emulators of a simulated bench, started; close them (or use it as a context manager) when done.

    A bench labctl steps itself keeps its clock still between steps, so runs are deterministic for a
    seed; a ``free_running`` one (for other programs) follows wall time until someone steps it."""
    from labctl.sim_instruments.bench import SimBench
    from labctl.sim_instruments.catalog import make_cell
    from labctl.sim_instruments.sqm160 import MonitorSetup

    def cell_for(channel: int) -> Any:
        # every channel gets its own seed so cells on one bench differ
        return make_cell(sim.cell, area_cm2=sim.area_cm2, seed=sim.seed + channel - 1,
                         cathode_mass_mg=sim.cathode_mass_mg)

    try:
        cell_for(1)
    except ValueError as e:
        raise BenchError(f"sim.cell: {e}") from e

    return SimBench(cell_for, channels=sim.channels, speed=1.0 if free_running else None,
                    rate_monitor=MonitorSetup(seed=sim.seed), impedance_channel=impedance_channel, sp200=sim.sp200)


def _open_clock(config: BenchConfig) -> Clock:
    from labctl.clock import SimClock, WallClock

    if config.clock.kind == "wall":
        return WallClock()
    host, port = parse_host_port(config.clock.resource or "", "clock.resource")
    try:
        return SimClock(host, port)
    except OSError as e:
        raise BenchError(f"clock.resource: cannot reach the simulated bench's clock at {host}:{port}: {e}") from e


class _Sessions(dict):
    """Connections shared by the roles of one instrument channel, closed after the roles (the bench's stack)."""

    def __init__(self, stack: ExitStack) -> None:
        super().__init__()
        self._stack = stack

    def __setitem__(self, key: Any, session: Any) -> None:
        super().__setitem__(key, session)
        self._stack.callback(session.close)


def _open_role(role: str, inst: InstrumentConfig, sessions: dict[tuple, Any]) -> Any:
    driver = DRIVERS[inst.driver]
    if driver.shared:
        return driver.open(inst, f"roles.{role}", role, sessions)
    return driver.open(inst, f"roles.{role}")
