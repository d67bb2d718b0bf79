"""SQM-160 and SQC-310 drivers against the manuals' byte examples (``pymeasure.test.expected_protocol``).

Golden bytes: research/instruments.md §6.2 (the SQC-310 manual's §4.3 examples, e.g. ``!$L1(102)(50)`` answered
``!)A 0.00(87)(100)``, and PyMeasure's SQM-160 transcripts of a real unit, e.g. ``!0AMON Ver 4.13Uw``). Packets the
manuals do not show are framed here with PyMeasure's CRC, which the golden bytes pin down.
"""

from __future__ import annotations

import logging

import pytest
from pymeasure.instruments.inficon.sqm160 import calculate_checksum
from pymeasure.test import expected_protocol

from labctl.drivers.inficon.sqc310 import SQC310
from labctl.drivers.inficon.sqm160 import (
    SQM160,
    Film,
    ShutterNotControlled,
    SQMChecksumError,
    SQMFramingError,
    SQMStatusError,
)
from labctl.roles import RateMonitor


def command(message: str) -> bytes:
    body = bytes([len(message) + 34]) + message.encode()
    return b"!" + body + calculate_checksum(body)


def reply(status_and_message: str) -> bytes:
    body = bytes([len(status_and_message) + 35]) + status_and_message.encode()
    return b"!" + body + calculate_checksum(body)


ACK = reply("A")


# --- framing: the manual's bytes ---


def test_commands_carry_the_manuals_length_and_crc_characters():
    assert command("@") == b"!#@O7"
    assert command("L1") == bytes([0x21, 0x24, 0x4C, 0x31, 102, 50])
    assert command("PA1") == b"!%PA1" + bytes([74, 147])
    assert reply("A 0.00") == b"!)A 0.00" + bytes([87, 100])
    assert reply("A0 5950000.00 95.00") == b"!6A0 5950000.00 95.00" + bytes([70, 99])


def test_firmware_channels_and_a_real_units_frequency():
    pairs = [(b"!#@O7", b"!0AMON Ver 4.13Uw"), (b"!#JO8", b"!%A6v\x86"), (b"!$P1Z\x91", b"!/A5875830.230:X")]
    with expected_protocol(SQM160, pairs) as sqm:
        assert sqm.firmware_version == "MON Ver 4.13"
        assert sqm.number_of_channels == 6
        assert sqm.sensor_1.frequency == pytest.approx(5875830.23)


def test_rate_and_thickness_replies_of_the_manual():
    pairs = [
        (b"!%L1?\x85{", b"!)A 0.00" + bytes([87, 100])),
        (b"!$N1" + bytes([93, 81]), b"!*A 0.000" + bytes([90, 92])),
    ]
    with expected_protocol(SQM160, pairs) as sqm:
        assert sqm.sensor_1.rate == 0.0
        assert sqm.sensor_1.thickness == 0.0


# --- status characters and broken replies, each read to its end ---


@pytest.mark.parametrize(
    ("status", "meaning"),
    [("C", "invalid command"), ("D", "problem with the data"), ("E", "wrong mode"), ("F", "invalid CRC"), ("G", "221")],
)
def test_an_error_status_raises_naming_it_and_leaves_nothing_unread(status, meaning):
    with expected_protocol(SQM160, [(b"!#@O7", reply(status))]) as sqm, pytest.raises(SQMStatusError) as caught:
        sqm.firmware_version  # noqa: B018 (the query is the test)
    assert caught.value.status == status and caught.value.command == "@"
    assert meaning in str(caught.value)


def test_status_b_is_ok_but_logged_as_a_reset(caplog):
    with expected_protocol(SQM160, [(b"!#JO8", reply("B2"))]) as sqm, caplog.at_level(logging.WARNING):
        assert sqm.number_of_channels == 2
    assert "reset" in caplog.text


def test_a_reply_with_a_wrong_crc_is_refused():
    good = reply("A 1.23")
    with expected_protocol(SQM160, [(command("L1?"), good[:-1] + bytes([good[-1] ^ 1]))]) as sqm:
        with pytest.raises(SQMChecksumError, match="CRC"):
            sqm.sensor_1.rate  # noqa: B018


def test_a_reply_without_sync_is_refused():
    with expected_protocol(SQM160, [(b"!#@O7", b"X0")], connection_methods={"flush": None}) as sqm:
        with pytest.raises(SQMFramingError, match="sync"):
            sqm.firmware_version  # noqa: B018


# --- what labctl adds: films, active film, zero, shutter ---


def test_film_parameters_set_and_read_back_in_field_order():
    film = Film("W", 19.3, 100.0, 0.163, final_thickness_kA=0.3)
    text = "W 19.30 100.0 0.163 0.300 0.000 0 1"
    with expected_protocol(SQM160, [(command(f"A1 {text}"), ACK), (command("A1?"), reply(f"A{text}"))]) as sqm:
        sqm.set_film(1, film)
        assert sqm.film(1) == film


@pytest.mark.parametrize(("field", "value", "message"), [
    ("density_g_cm3", 0.1, "density"), ("tooling_pct", 500.0, "tooling"), ("z_ratio", 12.0, "Z-ratio"),
    ("name", "TUNGSTEN99", "film name"), ("name", "W Cu", "film name"),
])  # fmt: skip
def test_bad_film_parameters_are_refused_before_anything_is_sent(field, value, message):
    values = {"name": "W", "density_g_cm3": 19.3, "tooling_pct": 100.0, "z_ratio": 0.163, field: value}
    with pytest.raises(ValueError, match=message):
        Film(**values)


def test_zero_active_film_and_shutter():
    pairs = [(b"!#S\x8e\x8f", ACK), (b"!#TO5", ACK), (command("D3"), ACK), (command("U1"), ACK), (command("U0"), ACK)]
    with expected_protocol(SQM160, pairs) as sqm:
        sqm.zero()
        sqm.active_film = 3
        sqm.shutter = "open"
        sqm.shutter = "closed"


def test_a_refused_setting_raises():
    with expected_protocol(SQM160, [(command("U1"), reply("E"))]) as sqm, pytest.raises(SQMStatusError) as caught:
        sqm.shutter = "open"
    assert caught.value.status == "E"


# --- the rate-monitor role ---


def test_the_role_reads_the_sensor_in_nm_and_sees_a_dead_crystal():
    readings = [(command("P1"), reply("A5995284.523")), (command("L1?"), reply("A 0.97")),
                (command("N1"), reply("A 0.300")), (command("R1"), reply("A99.53")),
                (command("P1"), reply("A0.000")), (command("L1?"), reply("A 0.00")),
                (command("N1"), reply("A 0.187")), (command("R1"), reply("A0.00"))]  # fmt: skip
    with expected_protocol(SQM160, readings) as sqm:
        monitor = sqm.monitor(sensor=1)
        assert isinstance(monitor, RateMonitor)
        first = monitor.read()
        assert (first.rate_A_s, first.thickness_nm, first.frequency_Hz, first.crystal_life_pct) == (
            0.97,
            30.0,
            5995284.523,
            99.53,
        )
        assert not first.crystal_failed
        dead = monitor.read()
        assert dead.crystal_failed and dead.thickness_nm == 18.7


def test_the_role_programs_the_film_with_its_target_and_makes_it_active():
    text = "Mg 1.74 100.0 1.610 1.400 0.000 0 1"
    with expected_protocol(SQM160, [(command(f"A2 {text}"), ACK), (command("D2"), ACK)]) as sqm:
        sqm.monitor(film=2).set_film(
            name="Mg", density_g_cm3=1.74, z_ratio=1.61, tooling_pct=100, final_thickness_nm=140
        )


def test_a_hand_worked_shutter_is_never_commanded():
    with expected_protocol(SQM160, []) as sqm, pytest.raises(ShutterNotControlled, match="operator"):
        sqm.monitor(shutter_control=False).open_shutter()


# --- SQC-310: same framing, its own commands ---


def test_sqc310_rate_and_crystal_life_from_the_manual():
    pairs = [(b"!$L1" + bytes([102, 50]), b"!)A 0.00" + bytes([87, 100])),
             (b"!%PA1" + bytes([74, 147]), b"!6A0 5950000.00 95.00" + bytes([70, 99])),
             (b"!$P1" + bytes([90, 145]), b"!.A5950000.00" + bytes([93, 84]))]  # fmt: skip
    with expected_protocol(SQC310, pairs) as sqc:
        assert sqc.sensor_1.rate == 0.0
        assert sqc.sensor_1.crystal_life == 95.0
        assert sqc.sensor_1.frequency == 5950000.0


def test_sqc310_zeroes_layers_and_films_with_its_own_commands():
    pairs = [(command("U32"), ACK), (command("U33"), ACK), (command("U2"), ACK), (command("U3"), ACK),
             (command("A1 4 W"), ACK), (command("A2 4 4,4 6,1125"), ACK), (command("F4 1 W"), ACK),
             (command("F4 2 1930"), ACK), (command("F4 3 163"), ACK)]  # fmt: skip
    with expected_protocol(SQC310, pairs) as sqc:
        sqc.zero()
        sqc.shutter = "open"
        sqc.shutter = "closed"
        sqc.select_film(4, Film("W", 19.3, 112.5, 0.163))
    assert SQC310.sensor_5 is None
