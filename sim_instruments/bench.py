"""One simulated bench: a virtual clock with its control channel, an emulated Arbin cycler, an emulated
Solartron 1260 impedance analyzer on the cell of one cycler channel, optionally an emulated BioLogic SP-200 on that
cell too, and an emulated INFICON SQM-160 rate monitor watching a deposition.

Everything listens on 127.0.0.1 (free ports), the rate monitor on a pseudo-terminal, the SP-200 behind a fake EClib
served by labctl's EClib bridge (with a token, as on a lab network); :meth:`SimBench.config` is the bench config that
points labctl's real drivers at the emulators, so a simulated run exercises the same code path as a run in the lab.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from labctl.drivers.biologic.bridge import serve
from labctl.drivers.biologic.eclib import EClib
from labctl.sim_instruments.arbin_server import ArbinEmulator
from labctl.sim_instruments.cell import ChannelCell, ImpedanceCell
from labctl.sim_instruments.clock import ClockServer, VirtualClock
from labctl.sim_instruments.fake_eclib import FakeEClib
from labctl.sim_instruments.si1260_server import Si1260Emulator
from labctl.sim_instruments.sp200 import SP200Channel
from labctl.sim_instruments.sp200_techniques import MAX_CURRENT_A
from labctl.sim_instruments.sqm160 import MonitorSetup, SQM160Emulator

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


class SimBench:
    """Start a simulated bench: ``channels`` cycler channels, channel ``n`` (1-based) holding
    ``cell_factory(n)``.

    While nobody steps the clock it runs free at wall time x ``speed`` (None: time moves only when stepped).
    ``username``/``password`` are the cycler's CTI credentials. The impedance analyzer measures the cell of
    cycler channel ``impedance_channel`` (two instruments on one cell, as in in-situ EIS); None leaves it out.
    ``rate_monitor`` sets up an SQM-160 rate monitor's source and crystal; None (the default) leaves it out.
    ``sp200`` puts an SP-200 on the analyzer's cell and says what the config makes of it: "alone" (it plays the
    cycler and impedance roles), "impedance" (the Arbin cycles, the SP-200 measures) or "none" (no SP-200).
    The servers start here; use the bench as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        cell_factory: Callable[[int], ChannelCell],
        *,
        channels: int = 8,
        speed: float | None = 1.0,
        max_substep_s: float = 1.0,
        username: str = "admin",
        password: str = "000000",
        impedance_channel: int | None = 1,
        rate_monitor: MonitorSetup | None = None,
        sp200: str = "none",
    ) -> None:
        if channels < 1:
            raise ValueError(f"channels must be at least 1, not {channels}")
        if impedance_channel is not None and not 1 <= impedance_channel <= channels:
            raise ValueError(f"impedance_channel must be a cycler channel 1..{channels} (or None for no analyzer), "
                             f"not {impedance_channel}")
        self.clock = VirtualClock(max_substep_s)
        self.username, self.password = username, password
        cells = {n: cell_factory(n) for n in range(1, channels + 1)}
        measured = cells[impedance_channel] if impedance_channel is not None else None
        if measured is not None and not isinstance(measured, ImpedanceCell):
            raise ValueError(f"the cell of channel {impedance_channel} ({type(measured).__name__}) has no impedance "
                             "model (measured_impedance); pass impedance_channel=None for a bench without analyzer")
        self.impedance_channel = impedance_channel
        if sp200 not in ("none", "alone", "impedance") or (sp200 != "none" and measured is None):
            raise ValueError(f"sp200 {sp200!r}: give 'none', or 'alone'/'impedance' with an impedance channel")
        self.sp200_layout = sp200
        self.sp200: SP200Server | None = None
        started: list[Any] = []
        try:
            self.cycler = ArbinEmulator(self.clock, cells, channels=channels, username=username, password=password)
            started.append(self.cycler)
            self.impedance = Si1260Emulator(self.clock, measured) if measured is not None else None
            if self.impedance is not None:
                started.append(self.impedance)
            self.rate_monitor = SQM160Emulator(self.clock, rate_monitor) if rate_monitor is not None else None
            if self.rate_monitor is not None:
                started.append(self.rate_monitor)
            if sp200 != "none":
                self.sp200 = SP200Server(self.clock, measured)
                started.append(self.sp200)
            self.clock_server = ClockServer(self.clock)
        except BaseException:
            for server in started:
                server.close()
            raise
        if speed is not None:
            self.clock.run_free(speed)
        log.info("simulated bench: %s", ", ".join(f"{role} {a}" for role, a in self.addresses().items()))

    def addresses(self) -> dict[str, str]:
        """host:port of each server, by role: ``clock`` (control channel), ``cycler`` (Arbin CTI) and
        ``impedance`` (Solartron 1260, raw socket) unless the bench has no analyzer."""
        addresses = {"clock": _host_port(self.clock_server.address), "cycler": _host_port(self.cycler.address)}
        if self.impedance is not None:
            addresses["impedance"] = _host_port(self.impedance.address)
        if self.sp200 is not None:
            addresses["sp200"] = _host_port(self.sp200.address)
        return addresses

    def config(self, cycler_channel: int = 1) -> dict[str, Any]:
        """The bench config (as parsed from TOML) that reaches these emulators; the cycler role is channel
        ``cycler_channel``, the impedance role (if any) a PyVISA socket resource opened with pyvisa-py, the rate
        monitor (if any) sensor 1 on its pseudo-terminal as a PyVISA serial resource. With an SP-200, its roles are
        its channel 1 through the EClib bridge."""
        addresses = self.addresses()
        roles: dict[str, Any] = {
            "cycler": {
                "driver": "arbin-cti",
                "resource": addresses["cycler"],
                "channel": cycler_channel,
                "options": {"username": self.username, "password": self.password,
                            "current_range_A": self.cycler.current_range_A, "voltage_range_V": self.cycler.voltage_range_V},
            },
        }
        if self.impedance is not None:
            host, port = self.impedance.address
            roles["impedance"] = {
                "driver": "solartron-1260",
                "resource": f"TCPIP::{host}::{port}::SOCKET",
                "options": {"visa_library": "@py"},
            }
        if self.sp200 is not None:
            sp200 = self.sp200.role_config()
            roles["impedance"] = sp200
            if self.sp200_layout == "alone":
                roles["cycler"] = sp200 | {"options": sp200["options"] | self.sp200.channel_range()}
        if self.rate_monitor is not None:
            roles["rate_monitor"] = {
                "driver": "inficon-sqm160",
                "resource": f"ASRL{self.rate_monitor.port}::INSTR",
                "channel": 1,
                "options": {"visa_library": "@py", "shutter_control": self.rate_monitor.setup.shutter_wired},
            }
        return {"name": "sim", "clock": {"kind": "sim", "resource": addresses["clock"]}, "roles": roles}

    def config_toml(self) -> str:
        """:meth:`config` as TOML text, ready to save as a bench file."""
        return _toml(self.config())

    def close(self) -> None:
        """Stop the clock and every server."""
        self.clock.stop()
        self.clock_server.close()
        if self.impedance is not None:
            self.impedance.close()
        if self.rate_monitor is not None:
            self.rate_monitor.close()
        if self.sp200 is not None:
            self.sp200.close()
        self.cycler.close()

    def __enter__(self) -> SimBench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SP200Server:
    """An SP-200 with one channel on ``cell``, behind a fake EClib served by the EClib bridge on 127.0.0.1."""

    ECC_DIR = "C:/EC-Lab Development Package/lib"  # the fake reads only the technique file's name

    def __init__(self, clock: VirtualClock, cell: Any) -> None:
        self.channel = SP200Channel(clock, cell)
        self.token = secrets.token_hex(16)
        self.bridge = serve(EClib(FakeEClib({0: self.channel})), "127.0.0.1", 0, self.token)

    @property
    def address(self) -> tuple[str, int]:
        return self.bridge.address

    def role_config(self) -> dict[str, Any]:
        return {"driver": "biologic-sp200", "resource": "USB0", "channel": 1,
                "options": {"bridge": _host_port(self.address), "token": self.token, "eclib": self.ECC_DIR}}

    @staticmethod
    def channel_range() -> dict[str, float]:
        return {"current_range_A": MAX_CURRENT_A, "voltage_range_V": 10.0}  # the emulator's ±10 V E range

    def close(self) -> None:
        self.bridge.close()  # stops what its clients started
        self.channel.stop()


def _host_port(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def _toml_string(value: str) -> str:
    # JSON escapes quotes, backslashes and control characters as TOML basic strings do; TOML also bans raw DEL
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml(table: dict[str, Any], path: str = "") -> str:
    """TOML for nested tables of strings, numbers and booleans (all a bench config holds)."""
    lines, subtables = [], []
    for key, value in table.items():
        if isinstance(value, dict):
            subtables.append((key, value))
        elif isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int | float):
            lines.append(f"{key} = {value!r}")
        elif isinstance(value, str):
            lines.append(f"{key} = {_toml_string(value)}")
        else:
            raise TypeError(f"{path}{key}: cannot write {type(value).__name__} as TOML")
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, sub in subtables:
        name = f"{path}{key}"
        body = _toml(sub, f"{name}.")
        has_values = any(not isinstance(v, dict) for v in sub.values())
        text += (f"\n[{name}]\n" if has_values else "") + body
    return text
