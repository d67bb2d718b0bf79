"""INFICON SQC-310/310C deposition controller: the SQM-160's framing, its own command set.

From the SQC-310 manual's communications chapter (research/instruments.md §6.4): sensors 1-4 read with ``L``, ``N``,
``P`` (no ``?``) and ``PA{s}`` (status, frequency, crystal life); the controller runs layers itself (``U2`` start
layer, ``U3`` stop layer, which open and close its shutter), zeroes with ``U32`` (thickness) and ``U33`` (time);
films are ``A1`` (name) and ``A2`` (parameter 4 material, 6 tooling), materials ``F{m}`` (1 name, 2 density,
3 Z-factor). Film and material numbers go over the wire as integers scaled by the digits the front panel shows
(manual §5.3.2 note): here 1 decimal for tooling, 2 for density, 3 for the Z-factor, as displayed (to check on a
unit: docs/instruments/sqm-160.md).
"""

from __future__ import annotations

from pymeasure.instruments import Channel
from pymeasure.instruments.validators import strict_range

from labctl.drivers.inficon.sqm160 import FILM_NUMBERS, SQM160, Film


class SQCSensorChannel(Channel):
    """One SQC-310 sensor."""

    rate = Channel.measurement("L{ch}", """Get the sensor's rate (Å/s).""", cast=float)
    thickness = Channel.measurement("N{ch}", """Get the sensor's thickness (kÅ).""", cast=float)
    frequency = Channel.measurement("P{ch}", """Get the crystal's frequency (Hz).""", cast=float)
    crystal_life = Channel.measurement(
        "PA{ch}", """Get the crystal life (%), the last of PA's status, frequency and life.""",
        preprocess_reply=lambda reply: reply.split()[2], cast=float,
    )  # fmt: skip


class SQC310(SQM160):
    """INFICON SQC-310 (2 sensors) or SQC-310C (4 sensors) on a serial port."""

    MODEL = "SQC-310"

    sensor_1 = SQM160.ChannelCreator(SQCSensorChannel, 1)
    sensor_2 = SQM160.ChannelCreator(SQCSensorChannel, 2)
    sensor_3 = SQM160.ChannelCreator(SQCSensorChannel, 3)
    sensor_4 = SQM160.ChannelCreator(SQCSensorChannel, 4)
    sensor_5 = sensor_6 = None

    shutter = SQM160.setting(
        "U%d", """Start ("open") or stop ("closed") the layer: the controller works its shutter.""",
        values={"open": 2, "closed": 3}, map_values=True, check_set_errors=True,
    )  # fmt: skip

    def select_film(self, number: int, film: Film) -> None:
        """Store ``film`` as film ``number`` with material ``number`` (name, density, Z-factor); the running process
        decides which film a layer uses, so nothing is made active here."""
        strict_range(number, FILM_NUMBERS)
        for command in (
            f"A1 {number} {film.name}",
            f"A2 {number} 4,{number} 6,{round(film.tooling_pct * 10)}",
            f"F{number} 1 {film.name}",
            f"F{number} 2 {round(film.density_g_cm3 * 100)}",
            f"F{number} 3 {round(film.z_ratio * 1000)}",
        ):
            self.write(command)
            self.check_set_errors()

    def zero(self) -> None:
        """Zero thickness (U32) and time (U33)."""
        for command in ("U32", "U33"):
            self.write(command)
            self.check_set_errors()
