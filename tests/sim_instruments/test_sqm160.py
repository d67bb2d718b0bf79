"""The SQM-160 emulator through a real pseudo-terminal, as pyserial and PyVISA see a serial port.

Wire bytes are the manuals' examples (research/instruments.md §6.2); packets the manuals do not show are framed with
PyMeasure's CRC, which those examples pin down. Physics is checked against the Z-match equation written out here
and against itself: what lands must not depend on how the clock was stepped.
"""

from __future__ import annotations

import math

import pytest
import serial
from pymeasure.instruments.inficon.sqm160 import calculate_checksum

from labctl.drivers.inficon.sqm160 import SQM160
from labctl.sim_instruments.clock import VirtualClock
from labctl.sim_instruments.sqm160 import MonitorSetup, SQM160Emulator

N_AT_HZ_A, RHO_QUARTZ = 1.668e13, 2.648  # AT-cut quartz (Lu & Lewis 1972)
W = "W 19.30 100.0 0.163 0.000 0.000 0 1"


def command(message: str) -> bytes:
    body = bytes([len(message) + 34]) + message.encode()
    return b"!" + body + calculate_checksum(body)


def reply(status_and_message: str) -> bytes:
    body = bytes([len(status_and_message) + 35]) + status_and_message.encode()
    return b"!" + body + calculate_checksum(body)


def read_packet(port: serial.Serial) -> bytes:
    head = port.read(2)
    assert head[:1] == b"!", head
    return head + port.read(head[1] - 35 + 2)


def payload(packet: bytes) -> str:
    assert packet[-2:] == calculate_checksum(packet[1:-2]), packet
    return packet[2:-2].decode()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def emulator(clock):
    made = []

    def make(**setup):
        made.append(SQM160Emulator(clock, MonitorSetup(**setup)))
        return made[-1]

    yield make
    for emulator in made:
        emulator.close()


@pytest.fixture
def port(emulator):
    opened = []

    def connect(emu):
        opened.append(serial.Serial(emu.port, 19200, timeout=2))
        return opened[-1]

    yield connect
    for p in opened:
        p.close()


def ask(port: serial.Serial, message: str) -> str:
    port.write(command(message))
    return payload(read_packet(port))


# --- bytes on the wire ---


def test_manual_examples_byte_for_byte(emulator, port):
    sqm = port(emulator())
    for sent, expected in ((b"!#@O7", b"!0AMON Ver 4.13Uw"),
                           (b"!$L1" + bytes([102, 50]), b"!)A 0.00" + bytes([87, 100])),
                           (b"!$N1" + bytes([93, 81]), b"!*A 0.000" + bytes([90, 92]))):  # fmt: skip
        sqm.write(sent)
        assert read_packet(sqm) == expected


def test_crc_off_with_two_nuls_and_a_bad_crc_answered_f(emulator, port):
    sqm = port(emulator())
    sqm.write(b"!#J\0\0")
    assert read_packet(sqm) == reply("A2")
    sqm.write(b"!#JO9")  # the right CRC is O8
    assert read_packet(sqm) == reply("F")


def test_unknown_commands_and_bad_data(emulator, port):
    sqm = port(emulator())
    assert ask(sqm, "Q") == "C"
    assert ask(sqm, "L7") == "D"  # two sensors installed
    assert ask(sqm, "A1 W 19.30") == "D"  # a film takes eight fields
    assert ask(sqm, "A1 W 0.10 100.0 0.163 0 0 0 1") == "D"  # density below 0.5 g/cm³
    assert ask(sqm, "U1") == "A"
    assert ask(sqm, "D2") == "E"  # no film change while the shutter is open


def test_sync_restarts_a_packet_and_a_packet_may_arrive_in_pieces(emulator, port):
    sqm = port(emulator())
    sqm.write(b"\x05garbage!$L")  # an interrupted packet
    packet = command("J")
    sqm.write(packet[:2])
    sqm.write(packet[2:])
    assert read_packet(sqm) == reply("A2")


def test_films_are_stored_and_the_power_up_flag_reads_once(emulator, port):
    sqm = port(emulator())
    assert ask(sqm, f"A5 {W}") == "A"
    assert ask(sqm, "A5?") == "A" + W
    assert [ask(sqm, "Y"), ask(sqm, "Y")] == ["A1", "A0"]
    assert ask(sqm, "Z") == "A" and ask(sqm, "A5?") == "AFILM5 1.00 100.0 1.000 0.000 0.000 0 1"


def test_pyvisa_reaches_it_as_a_serial_port(emulator):
    emu = emulator()
    sqm = SQM160(f"ASRL{emu.port}::INSTR", visa_library="@py")
    try:
        assert sqm.firmware_version == "MON Ver 4.13"
        assert sqm.number_of_channels == 2
    finally:
        sqm.adapter.close()


# --- physics on the clock ---


def zmatch_A(f_Hz: float, density: float, z: float, f_new: float = 6.0e6) -> float:
    return (
        N_AT_HZ_A
        * RHO_QUARTZ
        / (math.pi * density * f_Hz * z)
        * math.atan(z * math.tan(math.pi * (f_new - f_Hz) / f_new))
    )


def test_a_layer_grows_at_the_source_rate_and_the_frequency_follows_the_zmatch_equation(clock, emulator, port):
    emu = emulator(rate_A_s=2.0, fluctuation=0.0, drift_per_h=0.0)
    sqm = port(emu)
    ask(sqm, f"A1 {W}")
    start_f = float(ask(sqm, "P1")[1:])
    ask(sqm, "S")
    ask(sqm, "U1")
    clock.advance(150.0)
    thickness_A = 1000 * float(ask(sqm, "N1")[1:])
    f = float(ask(sqm, "P1")[1:])
    assert thickness_A == pytest.approx(300.0, abs=1.0)  # 2 Å/s for 150 s, 1 Å display steps
    assert float(ask(sqm, "L1")[1:]) == pytest.approx(2.0, abs=0.02)
    assert zmatch_A(f, 19.3, 0.163) - zmatch_A(start_f, 19.3, 0.163) == pytest.approx(300.0, abs=0.1)
    assert 4000 < start_f - f < 5500  # 30 nm of W: ~4.7 kHz off a 6 MHz crystal
    assert float(ask(sqm, "R1")[1:]) == pytest.approx(100 * (f - 5.0e6) / 1.0e6, abs=0.01)


def test_what_lands_does_not_depend_on_how_the_clock_is_stepped():
    results = []
    for steps in (1, 7, 300):
        bench_clock = VirtualClock()
        with SQM160Emulator(bench_clock, MonitorSetup(seed=3)) as emu:
            emu.operate_shutter(True)
            for _ in range(steps):
                bench_clock.advance(300.0 / steps)
            results.append(emu.substrate_thickness_nm)
    assert results[0] == pytest.approx(results[1], rel=1e-9) == pytest.approx(results[2], rel=1e-9)
    assert results[0] != pytest.approx(30.0, rel=1e-4)  # the rate fluctuates and drifts: not exactly 1 Å/s


def test_the_relay_closes_at_the_final_thickness_as_a_clock_event(clock, emulator, port):
    emu = emulator(seed=5)
    sqm = port(emu)
    ask(sqm, "A1 W 19.30 100.0 0.163 0.200 0.000 0 1")  # final 0.200 kÅ = 20 nm
    ask(sqm, "S")
    ask(sqm, "U1")
    t, event = clock.advance(10_000.0)
    assert event and 150 < t < 250 and not emu.shutter_open
    assert ask(sqm, "N1") == "A 0.200"
    clock.advance(100.0)
    assert ask(sqm, "N1") == "A 0.200" and emu.substrate_thickness_nm == pytest.approx(20.0, abs=0.01)


def test_tooling_scales_the_display_not_the_substrate(clock, emulator, port):
    emu = emulator(fluctuation=0.0, drift_per_h=0.0, geometry_tooling_pct=110.0)
    sqm = port(emu)
    ask(sqm, "A1 W 19.30 120.0 0.163 0.000 0.000 0 1")
    ask(sqm, "S")
    ask(sqm, "U1")
    clock.advance(100.0)
    assert 1000 * float(ask(sqm, "N1")[1:]) == pytest.approx(120.0, abs=1.0)  # 100 Å at the crystal × 120 %
    assert emu.substrate_thickness_nm == pytest.approx(11.0, abs=0.01)  # × the chamber's 110 %


def test_a_scheduled_crystal_failure_stops_the_clock_and_the_readings(clock, emulator, port):
    emu = emulator(fail_at_s=80.0)
    sqm = port(emu)
    ask(sqm, f"A1 {W}")
    ask(sqm, "U1")
    t, event = clock.advance(500.0)
    assert event and t == pytest.approx(80.0)
    thickness = ask(sqm, "N1")
    assert [ask(sqm, "P1"), ask(sqm, "L1"), ask(sqm, "R1")] == ["A0.000", "A 0.00", "A0.00"]
    clock.advance(100.0)
    assert ask(sqm, "N1") == thickness != "A 0.000"


def test_a_worn_crystal_fails_when_its_life_runs_out(clock, emulator, port):
    emu = emulator(crystal_life_pct=0.05, rate_A_s=5.0)
    sqm = port(emu)
    ask(sqm, "A1 Mg 1.74 100.0 1.610 0.000 0.000 0 1")
    assert float(ask(sqm, "R1")[1:]) == pytest.approx(0.05, abs=0.01)
    ask(sqm, "U1")
    t, event = clock.advance(100_000.0)
    assert event and emu.crystal_failed and t < 100_000.0


def test_a_hand_worked_shutter_ignores_the_relay(clock, emulator, port):
    emu = emulator(shutter_wired=False)
    sqm = port(emu)
    ask(sqm, "U1")
    clock.advance(50.0)
    assert emu.substrate_thickness_nm == 0.0
    emu.operate_shutter(True)
    clock.advance(50.0)
    assert emu.substrate_thickness_nm == pytest.approx(5.0, rel=0.1)
