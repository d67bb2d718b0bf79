"""A BioLogic SP-200 channel in labctl's roles, through EClib (in-process on Windows, or a bridge from any host).

:class:`SP200` is one channel of one instrument: connected, the library's firmware loaded, running one technique
sequence at a time. It plays two roles, which share it when one SP-200 does both:

- :class:`SP200Cycler` (cycler role): a constant-current segment is one CPLIMIT step whose Test1/Test2 end it at the
  voltage limits and whose duration ends it on time or charge (charge = |I|·t at constant current); a voltage hold
  is one CALIMIT step ended by time or by |I| falling below a limit. Every segment goes on into an OCV rest in the
  same sequence, and rest is OCV, so the channel is measured (and its clock runs) for the whole test. Charge and
  discharge capacities are integrated from the recorded rows (trapezoids; exact at constant current).
- :class:`SP200Impedance` (impedance role): a spectrum is one PEIS technique (GEIS at 0 A DC when asked), at
  0 V vs. the cell's own rest voltage when the bias is the open-circuit voltage; its rows are handed over as they
  arrive. A channel with a test running goes back to its OCV rest afterwards.

Test time is the channel's elapsed time summed over the sequences of the test: EClib restarts it at each start, and
the few milliseconds a stop/load/start takes on hardware are not counted. Signs: labctl's (positive current
charges) is the SP-200's (positive current is anodic on the working electrode); Ewe is the cell voltage.

Not done: a CCD killed mid-test cannot be resumed on an SP-200 (EClib has no named test to take over); LOOP-based
sequences are not used (each segment is loaded when the procedure asks for it).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from labctl.drivers.biologic import techniques as tech
from labctl.drivers.biologic.data import DataBlock, ImpedanceRow, Row, StepRow, parse
from labctl.drivers.biologic.eclib import DEVICE_SP200, FIRMWARE_VMP300, EClibError, State, TCurrentValues
from labctl.roles import Clock, CyclerReading, ResumeRefused

log = logging.getLogger(__name__)

NO_END_S = 1e7  # a step or rest "without" an end: 116 days, within a single's range
RECORD_DT_S = 10.0  # rows of a cycling segment: enough for the capacities (the ends are always recorded)
RMS_TO_PEAK = math.sqrt(2)  # EClib's amplitudes are the sine's peak (EC-Lab's "Va"), labctl's are rms
MAX_POLL_S = 5.0  # the longest a sweep waits between reads of its data


class EClibCalls(Protocol):
    """What the driver calls: ``EClib`` in-process, or the bridge's client."""

    def connect(self, address: str, timeout_s: int = 5) -> tuple[int, Any]: ...
    def disconnect(self, device_id: int) -> None: ...
    def load_firmware(self, device_id: int, channels: Sequence[int], kernel: str | None, fpga: str | None, *,
                      force: bool = True, show_gauge: bool = False) -> None: ...
    def channel_infos(self, device_id: int, channel: int) -> Any: ...
    def load_technique(self, device_id: int, channel: int, ecc_path: str, params: Sequence[tech.Param], *,
                       first: bool = True, last: bool = True, display: bool = False) -> None: ...
    def start_channel(self, device_id: int, channel: int) -> None: ...
    def stop_channel(self, device_id: int, channel: int) -> None: ...
    def current_values(self, device_id: int, channel: int) -> TCurrentValues: ...
    def get_data(self, device_id: int, channel: int) -> tuple[DataBlock, TCurrentValues]: ...


Loaded = tuple[tech.Technique, list[tech.Param]]
Owner = Callable[[DataBlock, list[Row]], None]


class SP200:
    """Channel ``channel`` (1-based, as on the front panel; EClib's is one less) of the SP-200 at ``address``
    ("USB0" or its IP address), its technique files in ``ecc_dir`` (the development package's lib folder on the PC
    that runs EClib). Connecting checks the device is an SP-200 and loads the library's firmware on the channel."""

    def __init__(self, eclib: EClibCalls, address: str, channel: int, ecc_dir: str, *, close_library: Callable[[], None]
                 = lambda: None, timeout_s: int = 5) -> None:
        self.eclib, self.address, self.ecc_dir = eclib, address, ecc_dir
        self.ch = channel - 1
        self._close_library = close_library
        self.device_id, infos = eclib.connect(address, timeout_s)
        try:
            if infos.DeviceCode != DEVICE_SP200:
                raise ValueError(f"the instrument at {address} is not an SP-200 (EClib device code {infos.DeviceCode}, "
                                 f"an SP-200 is {DEVICE_SP200}); check the address")
            if not 0 <= self.ch < infos.NumberOfChannels:
                raise ValueError(f"channel {channel}: the SP-200 at {address} has channel(s) 1.."
                                 f"{infos.NumberOfChannels}")
            eclib.load_firmware(self.device_id, [self.ch], *FIRMWARE_VMP300, force=True)
            self._infos = eclib.channel_infos(self.device_id, self.ch)
        except BaseException:
            eclib.disconnect(self.device_id)
            raise
        self.firmware = infos.FirmwareVersion
        self._offset_s = 0.0  # elapsed time of the test's earlier sequences
        self._elapsed_s = 0.0  # of the present one
        self._owner: Owner | None = None
        self._started = False  # labctl started a sequence on the channel in this session
        self.on_idle: Callable[[], None] | None = None  # what a finished measurement leaves the channel to (a rest)

    def identity(self) -> dict[str, str]:
        return {"make": "BioLogic", "model": "SP-200", "serial": str(self._infos.BoardSerialNumber),
                "channel": str(self.ch + 1), "firmware": str(self.firmware), "address": self.address}

    @property
    def test_time_s(self) -> float:
        return self._offset_s + self._elapsed_s

    def start(self, sequence: Sequence[Loaded], owner: Owner) -> None:
        """Stop what runs (its last rows go to its owner), load ``sequence`` and start it; its rows go to ``owner``."""
        self.stop()
        for k, (technique, params) in enumerate(sequence):
            self.eclib.load_technique(self.device_id, self.ch, self.ecc(technique), params, first=k == 0,
                                      last=k == len(sequence) - 1)
        self.eclib.start_channel(self.device_id, self.ch)
        self._owner, self._started = owner, True

    def poll(self) -> TCurrentValues:
        """Hand every recorded row to the owner of the sequence; the channel's present values."""
        while True:
            block, values = self.eclib.get_data(self.device_id, self.ch)
            if block.rows and self._owner is not None:
                self._owner(block, parse(block))
            if not block.rows:
                break
        self._account(values)
        return values

    def stop(self) -> None:
        """Stop the channel (open circuit); the sequence's rows recorded so far still go to its owner."""
        if self._owner is None:
            return
        self.eclib.stop_channel(self.device_id, self.ch)
        self.poll()

    def idle(self) -> None:
        """A measurement is over: leave the channel to whoever rests it (a cycler test), else stopped."""
        if self.on_idle is not None:
            self.on_idle()
        else:
            self.stop()

    def ecc(self, technique: tech.Technique) -> str:
        separator = "\\" if "\\" in self.ecc_dir else "/"
        return self.ecc_dir.rstrip("/\\") + separator + technique.ecc_file

    def close(self) -> None:
        """Stop the channel if labctl started something on it (stopped by itself or not), then disconnect. Never
        raises: it is logged."""
        try:
            if self._started:
                self.eclib.stop_channel(self.device_id, self.ch)
        except (EClibError, OSError) as e:
            log.error("could not stop SP-200 channel %d (%s); stop it in EC-Lab or on the instrument", self.ch + 1, e)
        try:
            self.eclib.disconnect(self.device_id)
        except (EClibError, OSError) as e:
            log.warning("could not disconnect from the SP-200 at %s: %s", self.address, e)
        finally:
            self._close_library()

    def _account(self, values: TCurrentValues) -> None:
        """Follow the channel's clock; a sequence that has stopped adds its time to the test's."""
        if values.State == State.RUN:
            self._elapsed_s = max(self._elapsed_s, float(values.ElapsedTime))
        elif self._owner is not None:  # stopped since the last poll: by itself, or told to
            self._offset_s += max(self._elapsed_s, float(values.ElapsedTime))
            self._elapsed_s, self._owner = 0.0, None


def current_range(current_A: float) -> tech.IRange:
    """The smallest fixed I range whose full scale holds ``current_A``."""
    for i_range, scale in sorted(tech.FULL_SCALE_A.items(), key=lambda item: item[1]):
        if abs(current_A) <= scale:
            return i_range
    raise ValueError(f"{abs(current_A):g} A is beyond the SP-200's largest range (1 A)")


@dataclass
class _Segment:
    """A constant-current or constant-voltage segment: what ends it and what the rows said."""

    control: str  # "I" or "V"
    duration_s: float
    by_time: str  # why it ends when its duration is over: "time" or "charge"
    limits: tuple[float, float] = (math.inf, -math.inf)  # CC voltage window
    started_s: float = 0.0  # test time of its start
    last_row_s: float = 0.0  # technique time of its last row
    last_ewe_V: float = math.nan
    end_reason: str | None = None
    ended: bool = False


class SP200Cycler:
    """The cycler role on an SP-200 channel (see the module docstring)."""

    def __init__(self, sp200: SP200, *, record_dt_s: float = RECORD_DT_S) -> None:
        self.sp200, self.record_dt_s = sp200, record_dt_s
        self._segment: _Segment | None = None
        self._test: str | None = None
        self._step_started_s = 0.0
        self._charge_Ah = self._discharge_Ah = 0.0
        self._previous: StepRow | None = None
        self._mode = "Idle"

    def identity(self) -> dict[str, str]:
        return self.sp200.identity()

    def begin(self, test_name: str) -> None:
        self._test = test_name
        self._charge_Ah = self._discharge_Ah = 0.0
        self.sp200.on_idle = self.rest
        self.rest()

    def apply_current(self, current_A: float, *, max_voltage_V: float, min_voltage_V: float,
                      until_time_s: float | None = None, until_charge_Ah: float | None = None) -> None:
        by_charge = until_charge_Ah / abs(current_A) * 3600 if until_charge_Ah and current_A else math.inf
        duration = min(until_time_s or math.inf, by_charge, NO_END_S)
        limits = (tech.Limit(tech.Variable.EWE, tech.Comparison.ABOVE, max_voltage_V),
                  tech.Limit(tech.Variable.EWE, tech.Comparison.BELOW, min_voltage_V))
        step = tech.Step(current_A, duration, limits, exit=tech.Exit.NEXT_TECHNIQUE)
        params = tech.cplimit([step], i_range=current_range(current_A), record_dt_s=self.record_dt_s)
        self._run(tech.CPLIMIT, params, _Segment("I", duration, "charge" if by_charge <= duration else "time",
                                                   (max_voltage_V, min_voltage_V)))
        self._mode = "Charge" if current_A > 0 else "Discharge" if current_A < 0 else "Rest"

    def apply_voltage(self, voltage_V: float, *, max_current_A: float, until_time_s: float | None = None,
                      until_current_A: float | None = None) -> None:
        # CALIMIT has no current compliance: the I range's full scale (the smallest holding max_current_A) clamps it
        duration = min(until_time_s or math.inf, NO_END_S)
        limits = (tech.Limit(tech.Variable.CURRENT, tech.Comparison.BELOW, until_current_A),) if until_current_A else ()
        step = tech.Step(voltage_V, duration, limits, exit=tech.Exit.NEXT_TECHNIQUE)
        params = tech.calimit([step], record_dt_s=self.record_dt_s, i_range=current_range(max_current_A))
        self._run(tech.CALIMIT, params, _Segment("V", duration, "time"))
        self._mode = "CV"

    def resume(self, test_name: str, after_test_time_s: float) -> CyclerReading:
        raise ResumeRefused("an SP-200 keeps no named test that a new process could take over; start a new run")

    def rest(self) -> None:
        self._step_started_s, self._segment, self._mode = self.sp200.test_time_s, None, "Rest"
        self.sp200.start([(tech.OCV, self._rest_params())], self._take)

    def read(self) -> CyclerReading:
        """The channel now; EClibError if it stopped by itself during a test (every sequence of a test ends in an
        endless rest, so only the instrument stops one: a fault of the instrument, not of the cell)."""
        values = self.sp200.poll()
        if self._test is not None and values.State != State.RUN:
            raise EClibError("BL_GetCurrentValues", -6, f"SP-200 channel {self.sp200.ch + 1} stopped by itself during "
                             "the test (an instrument fault, not the cell: check EC-Lab or the instrument's display)")
        segment = self._segment
        active = segment is not None and not segment.ended and values.State == State.RUN
        resting = self._mode == "Rest" or (segment is not None and segment.ended)
        return CyclerReading(
            test_time_s=self.sp200.test_time_s, step_time_s=self.sp200.test_time_s - self._step_started_s,
            voltage_V=float(values.Ewe), current_A=0.0 if resting or values.State != State.RUN else float(values.I),
            charge_capacity_Ah=self._charge_Ah, discharge_capacity_Ah=self._discharge_Ah,
            status="Rest" if resting and values.State == State.RUN else self._mode if active else "Idle",
            segment_active=active, end_reason=segment.end_reason if segment is not None else None,
        )  # fmt: skip

    def end(self) -> None:
        self.sp200.on_idle = None
        self._test, self._mode = None, "Idle"
        self.sp200.stop()

    def close(self) -> None:
        """The bench closes the SP-200 itself (channel stopped, then disconnected)."""

    def _run(self, technique: tech.Technique, params: list[tech.Param], segment: _Segment) -> None:
        segment.started_s = self._step_started_s = self.sp200.test_time_s
        self._segment, self._previous = segment, None
        self.sp200.start([(technique, params), (tech.OCV, self._rest_params())], self._take)

    def _rest_params(self) -> list[tech.Param]:
        return tech.ocv(NO_END_S, record_dt_s=self.record_dt_s)

    def _take(self, block: DataBlock, rows: list[Row]) -> None:
        """Rows of the running sequence: a segment's integrate its charge; the rest after it means it ended."""
        segment = self._segment
        if segment is None or segment.ended:
            return
        if block.technique_index > 0:  # the OCV after the segment has begun
            self._ended(segment)
            return
        for row in rows:
            if isinstance(row, StepRow):
                self._integrate(row)
                segment.last_row_s, segment.last_ewe_V = row.time_s, row.ewe_V

    def _integrate(self, row: StepRow) -> None:
        previous, self._previous = self._previous, row
        if previous is None:
            return
        charge = (previous.i_A + row.i_A) / 2 * (row.time_s - previous.time_s) / 3600
        if charge > 0:
            self._charge_Ah += charge
        else:
            self._discharge_Ah -= charge

    def _ended(self, segment: _Segment) -> None:
        segment.ended = True
        if segment.last_row_s >= segment.duration_s * (1 - 1e-6) - 1e-3:
            segment.end_reason = segment.by_time
        elif segment.control == "V":
            segment.end_reason = "current_low"
        else:
            high, low = segment.limits
            segment.end_reason = "voltage_high" if segment.last_ewe_V >= (high + low) / 2 else "voltage_low"


class SP200Impedance:
    """The impedance role on an SP-200 channel: PEIS (or GEIS at 0 A) over the asked frequencies."""

    max_frequency_Hz = tech.SP200_MAX_FREQUENCY_HZ
    galvanostatic = True

    def __init__(self, sp200: SP200) -> None:
        self.sp200 = sp200
        self._settings: dict[str, Any] | None = None
        self._points: list[tuple[float, complex]] = []

    def identity(self) -> dict[str, str]:
        return self.sp200.identity()

    def configure(self, *, amplitude_V: float, dc_bias_V: float = 0.0, integration_time_s: float = 0.1,
                  delay_s: float = 0.0, at_open_circuit: bool = False, current_amplitude_A: float | None = None) -> None:
        """Remember the spectrum's settings (the technique is loaded with its frequencies). Each point averages as
        many measures as fit ``integration_time_s`` at 1 kHz, at least one; ``delay_s`` is waited in periods."""
        if not math.isfinite(amplitude_V) or amplitude_V <= 0:
            raise ValueError(f"amplitude_V = {amplitude_V!r}: give the AC amplitude in V rms, e.g. 0.01")
        if current_amplitude_A is not None and not (math.isfinite(current_amplitude_A) and current_amplitude_A > 0):
            raise ValueError(f"current_amplitude_A = {current_amplitude_A!r}: give the AC current in A rms, e.g. 1e-5")
        self._settings = {"amplitude_V": amplitude_V, "dc_bias_V": dc_bias_V, "at_open_circuit": at_open_circuit,
                          "current_amplitude_A": current_amplitude_A, "average": 1, "wait_periods": 0.1}

    def sweep(self, frequencies: Sequence[float], clock: Clock) -> Iterator[tuple[float, complex]]:
        """One PEIS/GEIS technique over ``frequencies`` (log-spaced, as the technique spaces them); each point as the
        SP-200 reports it (its frequency may differ from the asked one in the last digits)."""
        loaded = self._technique(frequencies)
        self._points = []
        self.sp200.start([loaded], self._take)
        done = 0
        try:
            while done < len(frequencies):
                values = self.sp200.poll()
                while done < len(self._points):
                    done += 1
                    yield self._points[done - 1]
                if done == len(frequencies):
                    break
                if values.State != State.RUN:
                    raise EClibError("BL_GetData", -6, f"the {loaded[0].name} technique stopped after {done} of "
                                     f"{len(frequencies)} frequencies (an instrument fault, not the cell)")
                clock.wait(min(MAX_POLL_S, max(0.2, 2 / frequencies[done])))
        finally:
            self.sp200.idle()

    def close(self) -> None:
        """The bench closes the SP-200 itself."""

    def _technique(self, frequencies: Sequence[float]) -> Loaded:
        if self._settings is None:
            raise RuntimeError("configure() the SP-200's spectrum before a sweep")
        s = self._settings
        sweep = tech.Sweep(frequencies[0], frequencies[-1], len(frequencies), average_n=s["average"],
                           wait_periods=s["wait_periods"])
        _check_log_spaced(frequencies)
        if s["current_amplitude_A"] is not None:
            amplitude = s["current_amplitude_A"] * RMS_TO_PEAK
            return tech.GEIS, tech.geis(0.0, amplitude_A=amplitude, i_range=current_range(2 * amplitude), sweep=sweep)
        at_rest = s["at_open_circuit"]
        return tech.PEIS, tech.peis(0.0 if at_rest else s["dc_bias_V"], vs_initial=at_rest,
                                    amplitude_V=s["amplitude_V"] * RMS_TO_PEAK, sweep=sweep)

    def _take(self, block: DataBlock, rows: list[Row]) -> None:
        self._points += [(row.freq_Hz, row.z_ohm) for row in rows if isinstance(row, ImpedanceRow)]


def _check_log_spaced(frequencies: Sequence[float]) -> None:
    """A PEIS sweeps log-spaced frequencies from the first to the last: refuse a list it would not measure."""
    if len(frequencies) < 2:
        return
    ratios = [b / a for a, b in itertools.pairwise(frequencies)]
    if any(not math.isclose(r, ratios[0], rel_tol=1e-6) for r in ratios):
        raise ValueError("the SP-200 sweeps log-spaced frequencies; give them evenly spaced in log f")
