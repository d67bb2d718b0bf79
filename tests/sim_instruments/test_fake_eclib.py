"""The fake EClib64.dll through labctl's EClib layer: real C function pointers, SP-200 error codes, parsed data.

Every call goes through ``EClib(FakeEClib(...))``: labctl's prototypes on the fake's ctypes function pointers,
structures filled across the C boundary. Expected codes are BLStructs.h's (docs/instruments/biologic-eclib.md);
expected data are what the SP-200 emulator itself recorded (a channel that keeps its chunks), so a parsed row is
checked against the emulator's value rounded to float32, and a time against the 24 µs counter. The buffer words
of a few rows are worked by hand.
"""

from __future__ import annotations

import cmath
import ctypes
import logging
import struct
import threading
from ctypes import pointer
from dataclasses import dataclass

import pytest

from labctl.drivers.biologic import techniques as tech
from labctl.drivers.biologic.data import BiasRow, DataBlock, ImpedanceRow, OCVRow, StepRow, parse
from labctl.drivers.biologic.eclib import PROTOTYPES, EClib, EClibError, State, TChannelInfos
from labctl.drivers.biologic.techniques import IRange, Param, ParamType, Step, Sweep
from labctl.sim_instruments.arbin_channel import ArbinChannel
from labctl.sim_instruments.arbin_schedules import PremadeSchedule
from labctl.sim_instruments.catalog import make_cell
from labctl.sim_instruments.clock import VirtualClock
from labctl.sim_instruments.fake_eclib import LIB_DIR, TIME_BASE_S, FakeEClib
from labctl.sim_instruments.sp200 import DataChunk, SP200Channel

AREA = 0.785
I_SET = 1e-4  # A
HALF_COUNT_S = TIME_BASE_S / 2 + 1e-9  # a time is rounded to the nearest count


def f32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


class RecordingChannel(SP200Channel):
    """An SP-200 channel that keeps every chunk it hands over, to compare parsed rows with the emulator's own."""

    def __init__(self, clock: VirtualClock, cell: object) -> None:
        super().__init__(clock, cell)  # type: ignore[arg-type]
        self.chunks: list[DataChunk] = []

    def get_data(self, max_words: int = 1000) -> DataChunk | None:
        chunk = super().get_data(max_words)
        if chunk is not None:
            self.chunks.append(chunk)
        return chunk


@dataclass
class Bench:
    clock: VirtualClock
    channel: RecordingChannel
    fake: FakeEClib
    lib: EClib
    id: int

    def load(self, technique: tech.Technique, params: list[Param], *, first: bool = True, last: bool = True) -> None:
        self.lib.load_technique(self.id, 0, f"{LIB_DIR}/{technique.ecc_file}", params, first=first, last=last)

    def drain(self) -> list[DataBlock]:
        blocks = []
        while (block := self.lib.get_data(self.id, 0)[0]).rows:
            blocks.append(block)
        return blocks

    def emulated(self, process: int = 0) -> list[tuple[float, ...]]:
        return [row for c in self.channel.chunks if c.process_index == process for row in c.rows]


def bench(preset: str = "bare", *, firmware: bool = True, holds: tuple[int, ...] = (),
          clock: VirtualClock | None = None) -> Bench:
    clock = clock or VirtualClock()
    channel = RecordingChannel(clock, make_cell(preset, area_cm2=AREA))
    fake = FakeEClib({0: channel}, eclab_holds=holds)
    lib = EClib(fake)
    device_id, _ = lib.connect("USB0")
    if firmware:
        lib.load_firmware(device_id, [0])
    return Bench(clock, channel, fake, lib, device_id)


def code(call: object, *args: object, **kwargs: object) -> int:
    with pytest.raises(EClibError) as refused:
        call(*args, **kwargs)  # type: ignore[operator]
    return refused.value.code


def ocv(seconds: float, every_s: float = 1.0) -> list[Param]:
    return tech.ocv(seconds, record_dt_s=every_s)


def test_every_bl_call_is_a_c_function_pointer_with_labctls_prototype():
    fake = FakeEClib({0: SP200Channel(VirtualClock(), make_cell("bare", area_cm2=AREA))})
    EClib(fake)
    for name, (restype, argtypes) in PROTOTYPES.items():
        function = getattr(fake, name)
        assert isinstance(function, ctypes._CFuncPtr) and ctypes.cast(function, ctypes.c_void_p).value
        assert (function.restype, list(function.argtypes)) == (restype, argtypes)


def test_connect_reports_an_sp200_and_each_connection_gets_its_id():
    b = bench(firmware=False)
    second, infos = b.lib.connect("192.168.0.10")
    assert (infos.DeviceCode, infos.NumberOfChannels, infos.NbOfConnectedPC) == (21, 1, 2)
    assert second != b.id
    assert code(b.lib.connect, "COM3") == code(b.lib.connect, "192.168.0") == -203
    assert code(b.lib.connect, "USB1") == -201
    b.lib.disconnect(second)
    assert code(b.lib.test_connection, second) == -1
    b.lib.test_connection(b.id)


@pytest.mark.parametrize("call", [
    lambda lib: lib.test_connection(99), lambda lib: lib.disconnect(99), lambda lib: lib.channels_plugged(99),
    lambda lib: lib.load_firmware(99, [0]), lambda lib: lib.start_channel(99, 0), lambda lib: lib.get_data(99, 0),
    lambda lib: lib.current_values(99, 0), lambda lib: lib.message(99, 0),
    lambda lib: lib.load_technique(99, 0, "ocv4.ecc", ocv(1.0)),
])  # fmt: skip
def test_an_unknown_device_id_gives_minus_1(call):
    b = bench()
    assert code(call, b.lib) == -1
    assert b.lib.is_channel_plugged(99, 0) is False and b.lib.is_channel_plugged(b.id, 0) is True
    assert b.lib.message(b.id, 0) == ""  # the refusal is not queued for the connected client


def test_the_channel_needs_the_librarys_firmware():
    b = bench(firmware=False)
    assert code(b.load, tech.OCV, ocv(1.0)) == -308
    assert code(b.lib.start_channel, b.id, 0) == -308
    infos = TChannelInfos()
    assert b.fake.BL_GetChannelInfos(b.id, 0, pointer(infos)) == -308  # filled all the same, as kbio reads it
    assert (infos.FirmwareCode, infos.FloatFormat, infos.Channel) == (0, 1, 0)
    for kernel, fpga, expected in [("kernel.bin", "Vmp_ii_0437_a6.xlx", -309), ("kernel9.bin", None, -300),
                                   (None, "other.xlx", -304)]:
        assert code(b.lib.load_firmware, b.id, [0], kernel, fpga) == expected
    assert code(b.lib.load_firmware, b.id, [1]) == -3
    b.lib.load_firmware(b.id, [0], r"C:\EC-Lab Development Package\KERNEL4.BIN", None)
    assert b.lib.channel_infos(b.id, 0).FirmwareCode == 5
    b.load(tech.OCV, ocv(1.0))


def test_a_channel_eclab_holds_refuses_until_a_forced_firmware_load():
    b = bench(firmware=False, holds=(0,))
    assert b.lib.channel_infos(b.id, 0).FirmwareCode == 1  # EC-Lab's firmware
    assert code(b.load, tech.OCV, ocv(1.0)) == -9
    assert code(b.lib.start_channel, b.id, 0) == -9
    with pytest.raises(EClibError) as kept:
        b.lib.load_firmware(b.id, [0], force=False)
    assert (kept.value.call, kept.value.code) == ("BL_LoadFirmware (channel 0)", -9)
    b.lib.load_firmware(b.id, [0], force=True)
    b.load(tech.OCV, ocv(1.0))
    b.lib.start_channel(b.id, 0)


@pytest.mark.parametrize(("path", "expected"), [
    ("ocv.ecc", -401), (r"C:\EC-Lab Development Package\peis.ecc", -401), ("ocv5.ecc", -401),
    ("gcpl4.ecc", -400), ("ocv4.txt", -400), ("", -400),
])  # fmt: skip
def test_the_ecc_basename_picks_the_technique(path, expected):
    b = bench()
    assert code(b.lib.load_technique, b.id, 0, path, ocv(1.0)) == expected
    b.lib.load_technique(b.id, 0, r"C:\EClib\OCV4.ECC", ocv(1.0))
    b.lib.load_technique(b.id, 0, "/opt/eclib/ocv4.ecc", ocv(1.0))


@pytest.mark.parametrize(("params", "why"), [
    ([Param("rest_time_T", ParamType.SINGLE, 10.0), Param("Record_every_dE", ParamType.SINGLE, 0.0),
      Param("Record_every_dT", ParamType.SINGLE, 1.0)], "case-sensitive: 'Rest_time_T'"),
    ([Param("Rest_time_T", ParamType.SINGLE, 10.0), Param("Record_every_dE", ParamType.SINGLE, 0.0)],
     "missing Record_every_dT"),
    ([Param("Rest_time_T", ParamType.INT32, 10), Param("Record_every_dE", ParamType.SINGLE, 0.0),
      Param("Record_every_dT", ParamType.SINGLE, 1.0)], "Rest_time_T is float"),
    ([Param("Rest_time_T", ParamType.SINGLE, 10.0, 1), Param("Record_every_dE", ParamType.SINGLE, 0.0),
      Param("Record_every_dT", ParamType.SINGLE, 1.0)], "Rest_time_T has indices [1]"),
])  # fmt: skip
def test_a_wrong_or_missing_label_gives_minus_4_and_the_reason_as_a_message(params, why):
    b = bench()
    assert code(b.load, tech.OCV, params) == -4
    assert why in b.lib.message(b.id, 0)
    assert b.lib.message(b.id, 0) == ""


def test_run_then_stop_as_the_clock_advances_and_no_loading_while_running():
    b = bench()
    b.load(tech.OCV, ocv(10.0))
    b.lib.start_channel(b.id, 0)
    assert b.lib.current_values(b.id, 0).State == State.RUN
    assert code(b.load, tech.OCV, ocv(1.0)) == -13
    assert code(b.lib.start_channel, b.id, 0) == -13
    b.clock.advance(5.0, stop_on_event=False)
    values = b.lib.current_values(b.id, 0)
    assert (values.State, values.ElapsedTime, values.TimeBase) == (State.RUN, 5.0, TIME_BASE_S)
    b.clock.advance(10.0, stop_on_event=False)
    values = b.lib.current_values(b.id, 0)
    assert (values.State, values.ElapsedTime, values.I) == (State.STOP, 10.0, 0.0)
    assert values.MemFilled == 11 * 3 * 4  # 11 rows of 3 words, unread
    b.lib.stop_channel(b.id, 0)


def test_an_ocv_comes_back_in_chunks_of_at_most_1000_words_with_the_emulators_values():
    b = bench("LCO|Ag|Li")
    b.load(tech.OCV, ocv(1000.0))
    b.lib.start_channel(b.id, 0)
    b.clock.advance(1100.0, stop_on_event=False)
    blocks = b.drain()
    assert [(blk.technique_id, blk.rows, blk.cols) for blk in blocks] == [(100, 333, 3)] * 3 + [(100, 2, 3)]
    rows = [row for blk in blocks for row in parse(blk)]
    emulated = b.emulated()
    assert len(rows) == len(emulated) == 1001 and all(isinstance(r, OCVRow) for r in rows)
    for row, (t, ewe) in zip(rows, emulated, strict=True):
        assert row.time_s == pytest.approx(t, abs=HALF_COUNT_S) and row.ewe_V == f32(ewe)
    assert blocks[0].words[3:5] == (0, 41667)  # 1 s / 24.000000849 µs = 41666.67 counts, as a VSP-300 records it
    assert b.lib.get_data(b.id, 0)[1].State == State.STOP


def test_a_cplimit_comes_back_with_its_current_and_cycle_words():
    b = bench()
    steps = [Step(I_SET, 300.0), Step(-I_SET, 300.0)]
    b.load(tech.CPLIMIT, tech.cplimit(steps, i_range=IRange.I_1mA, record_dt_s=2.0, n_cycles=1))
    b.lib.start_channel(b.id, 0)
    b.clock.advance(1300.0, stop_on_event=False)
    blocks = b.drain()
    assert all(blk.technique_id == 155 and blk.cols == 5 and blk.rows * blk.cols <= 1000 for blk in blocks)
    assert len(blocks) > 2
    rows = [row for blk in blocks for row in parse(blk)]
    emulated = b.emulated()
    assert len(rows) == len(emulated) and all(isinstance(r, StepRow) for r in rows)
    for row, (t, ewe, i, cycle) in zip(rows, emulated, strict=True):
        assert row.time_s == pytest.approx(t, abs=HALF_COUNT_S)
        assert (row.ewe_V, row.i_A, row.cycle) == (f32(ewe), f32(i), cycle)
    assert {r.cycle for r in rows} == {0, 1} and rows[-1].time_s == pytest.approx(1200.0, abs=HALF_COUNT_S)
    first = blocks[0].words[:5]
    assert first[:2] == (0, 0) and first[3:] == (0x38D1B717, 0)  # t = 0; 1e-4 A as a float32; cycle 0
    assert b.lib.convert_numeric_into_single(0x38D1B717) == f32(1e-4)
    assert b.lib.convert_numeric_into_single(0x3F800000) == 1.0


def test_a_time_beyond_32_bits_of_counts_carries_into_t_high():
    b = bench(clock=VirtualClock(max_substep_s=1e4))
    b.load(tech.OCV, ocv(1.1e5, every_s=1e5))
    b.lib.start_channel(b.id, 0)
    b.clock.advance(2e5, stop_on_event=False)
    (block,) = b.drain()
    times = [block.words[3 * r:3 * r + 2] for r in range(block.rows)]
    # 1e5 s / 24.000000849 µs = 4 166 666 519.3 counts; 1.1e5 s: 4 583 333 171.2 = 1·2^32 + 288 365 875
    assert times == [(0, 0), (0, 4166666519), (1, 288365875)]
    assert [r.time_s for r in parse(block)] == pytest.approx([0.0, 1e5, 1.1e5], abs=HALF_COUNT_S)


def test_a_peis_parses_to_the_impedances_the_emulator_measured():
    b = bench("Ag")
    sweep = Sweep(1e5, 1.0, 11, average_n=2, wait_periods=0.1)
    b.load(tech.PEIS, tech.peis(0.0, amplitude_V=0.01, sweep=sweep, vs_initial=True, duration_s=5.0, record_dt_s=1.0))
    b.lib.start_channel(b.id, 0)
    b.clock.advance(1000.0, stop_on_event=False)
    blocks = b.drain()
    assert {(blk.technique_id, blk.process_index, blk.cols) for blk in blocks} == {(104, 0, 4), (104, 1, 14)}
    bias = [row for blk in blocks if blk.process_index == 0 for row in parse(blk)]
    assert all(isinstance(r, BiasRow) for r in bias)
    assert [r.time_s for r in bias] == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0], abs=HALF_COUNT_S)
    sweep_rows = [row for blk in blocks if blk.process_index == 1 for row in parse(blk)]
    emulated = b.emulated(1)
    assert len(sweep_rows) == len(emulated) == 11 and all(isinstance(r, ImpedanceRow) for r in sweep_rows)
    for row, measured in zip(sweep_rows, emulated, strict=True):
        freq, abs_e, abs_i, phase, t = measured[0], measured[1], measured[2], measured[3], measured[13]
        assert (row.freq_Hz, row.time_s) == (f32(freq), f32(t))
        assert row.z_ohm == pytest.approx(abs_e / abs_i * cmath.exp(1j * phase), rel=1e-6)
        assert row.z_ohm == pytest.approx(b.channel.cell.impedance(freq), rel=0.01)


def test_a_loop_reports_its_pass_in_the_data_infos():
    b = bench()
    b.load(tech.OCV, ocv(2.0), last=False)
    b.load(tech.LOOP, tech.loop(2, back_to=0), first=False)
    assert b.lib.channel_infos(b.id, 0).NbOfTechniques == 2
    b.lib.start_channel(b.id, 0)
    b.clock.advance(100.0, stop_on_event=False)
    assert [(blk.loop, blk.start_time_s, blk.technique_index) for blk in b.drain()] == [
        (0, 0.0, 0), (1, 2.0, 0), (2, 4.0, 0)]


def arbin_on(clock: VirtualClock, cell: object) -> ArbinChannel:
    cycler = ArbinChannel(1, cell, clock)  # type: ignore[arg-type]
    cycler.assign("test.sdx", PremadeSchedule(rest_s=3600.0).schedule(), "", [])
    cycler.start("test")
    return cycler


def test_a_cell_another_instrument_drives_gives_minus_9_on_start():
    b = bench()
    arbin_on(b.clock, b.channel.cell)
    b.load(tech.CPLIMIT, tech.cplimit([Step(I_SET, 10.0)], i_range=IRange.I_1mA, record_dt_s=1.0))
    assert code(b.lib.start_channel, b.id, 0) == -9
    assert "another instrument" in b.lib.message(b.id, 0)


def test_the_plural_calls_give_a_result_per_channel():
    clock = VirtualClock()
    channels = {ch: SP200Channel(clock, make_cell("bare", area_cm2=AREA, seed=ch)) for ch in (0, 1)}
    lib = EClib(FakeEClib(channels))
    device_id, _ = lib.connect("USB0")
    assert lib.channels_plugged(device_id) == [0, 1]
    lib.load_firmware(device_id, [0, 1])
    lib.load_technique(device_id, 0, "ocv4.ecc", ocv(10.0))
    with pytest.raises(EClibError) as refused:
        lib.start_channels(device_id, [0, 1])
    assert (refused.value.call, refused.value.code) == ("BL_StartChannels (channel 1)", -6)  # nothing loaded
    assert channels[0].running
    assert code(lib.stop_channels, device_id, [0, 2]) == -3
    lib.stop_channels(device_id, [0, 1])
    assert not channels[0].running


def test_the_small_calls():
    b = bench()
    assert "fake" in b.lib.lib_version() and b.lib.error_message(-401).startswith("ECC file not compatible")
    assert code(b.lib.error_message, 12345) == -4
    assert b.lib.message(b.id, 0) == ""
    conf = b.lib.hard_conf(b.id, 0)
    assert (conf.Conn, conf.Ground) == (0, 0)
    b.lib.set_hard_conf(b.id, 0, 1, 1)
    conf = b.lib.hard_conf(b.id, 0)
    assert (conf.Conn, conf.Ground) == (1, 1)
    assert code(b.lib.set_hard_conf, b.id, 0, 5, 0) == -4
    assert b.lib.opt_err(b.id, 0) == (0, 0)
    param = b.lib.define_single("Rest_time_T", 1.0, 2)
    assert (param.ParamStr, param.ParamType, param.ParamVal, param.ParamIndex) == (b"Rest_time_T", 2, 0x3F800000, 2)
    assert b.lib.define_int("N_Cycles", -1).ParamVal == -1 and b.lib.define_bool("sweep", True).ParamVal == 1
    assert code(b.lib.update_parameters, b.id, 0, 0, ocv(1.0), "ocv4.ecc") == -6
    values = b.lib.get_data(b.id, 0)[1]
    assert (values.State, values.EweRangeMax, values.TimeBase) == (State.STOP, 10.0, TIME_BASE_S)


def test_an_exception_inside_a_call_gives_minus_6_and_is_logged(monkeypatch, caplog):
    b = bench()

    def broken() -> None:
        raise RuntimeError("the cell fell off the bench")

    monkeypatch.setattr(b.channel, "current_values", broken)
    with caplog.at_level(logging.ERROR, logger="labctl.sim_instruments.fake_eclib"):
        assert code(b.lib.current_values, b.id, 0) == -6
    assert "BL_GetCurrentValues" in caplog.text and "the cell fell off the bench" in caplog.text


def test_calls_from_several_threads_lose_no_row():
    b = bench()
    b.load(tech.OCV, ocv(200.0))
    b.lib.start_channel(b.id, 0)
    blocks: list[DataBlock] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def poll() -> None:
        try:
            while not done.is_set():
                block, _ = b.lib.get_data(b.id, 0)
                if block.rows:
                    blocks.append(block)
        except BaseException as e:  # handed to the test thread
            errors.append(e)

    threads = [threading.Thread(target=poll) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(220):
        b.clock.advance(1.0, stop_on_event=False)
    done.set()
    for thread in threads:
        thread.join()
    blocks += b.drain()
    assert not errors
    times = sorted(row.time_s for blk in blocks for row in parse(blk))
    assert times == pytest.approx([t for t, _ in b.emulated()], abs=HALF_COUNT_S) and len(times) == 201
