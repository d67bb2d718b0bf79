"""The SQM-160 emulator's parts on their own: the pseudo-terminal transport and the firmware's film checks, which
share their ranges with the driver and the deposition procedure (labctl/films.py)."""

from __future__ import annotations

import pytest
import serial
from pymeasure.instruments.inficon.sqm160 import calculate_checksum

from labctl.drivers.inficon.sqm160 import Film
from labctl.films import DENSITY_G_CM3, TOOLING_PCT, Z_RATIO
from labctl.procedures.deposition import FIELDS
from labctl.sim_instruments.sqm160_firmware import DataError, parse_film
from labctl.sim_instruments.sqm160_pty import PtyPort, frame_reply


def test_the_port_answers_each_packet_and_flags_a_bad_crc():
    heard: list[tuple[str, bool]] = []

    def answer(message: str, crc_ok: bool) -> str:
        heard.append((message, crc_ok))
        return "A" + message

    port = PtyPort(answer)
    try:
        with serial.Serial(port.port, timeout=2) as client:
            body = bytes([1 + 34]) + b"@"
            client.write(b"!" + body + calculate_checksum(body) + b"!" + body + b"xx")
            assert client.read(len(frame_reply("A@")) * 2) == frame_reply("A@") * 2
    finally:
        port.close()
    assert heard == [("@", True), ("@", False)]


def test_the_procedure_checks_film_parameters_against_the_same_ranges():
    ranges = {field: limits for _, field, limits, _ in FIELDS}
    assert ranges["density_g_cm3"] == DENSITY_G_CM3
    assert ranges["z_ratio"] == Z_RATIO
    assert ranges["tooling_pct"] == TOOLING_PCT


@pytest.mark.parametrize("density", [DENSITY_G_CM3[0], DENSITY_G_CM3[1]])
def test_the_emulator_and_the_driver_accept_the_range_ends(density):
    film = Film("W", density, 100.0, 0.163)
    assert parse_film(film.command_fields()).density_g_cm3 == pytest.approx(density)


def test_the_emulator_and_the_driver_refuse_a_density_beyond_the_range():
    with pytest.raises(ValueError, match="density"):
        Film("W", 100.0, 100.0, 0.163)
    with pytest.raises(DataError, match="density"):
        parse_film("W 100.00 100.0 0.163 0.000 0.000 0 1")
