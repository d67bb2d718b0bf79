"""The SQM-160 emulator's firmware language: film records, the checks on a command's data, the display formats.

Status ``A`` ok; ``C`` unknown command; ``D`` bad data (:class:`DataError`: a sensor, film or value out of range,
wrong field count); ``E`` wrong mode (:class:`ModeError`: changing the film while the shutter relay is open). The
film-parameter ranges are the driver's and the procedure's (labctl/films.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from labctl.films import DENSITY_G_CM3, FILM_NUMBERS, SENSOR_MASK, THICKNESS_KA, TIME_SETPOINT_S, TOOLING_PCT, Z_RATIO

FIRMWARE = "MON Ver 4.13"  # a real SQM-160's reply to @ (research/instruments.md §6.2, PyMeasure's test)


def _closed(limits: tuple[int, int]) -> range:
    """The integers from ``limits[0]`` to ``limits[1]``, both included."""
    return range(limits[0], limits[1] + 1)


FILMS = _closed(FILM_NUMBERS)


@dataclass
class Film:
    name: str = "FILM"
    density_g_cm3: float = 1.0
    tooling_pct: float = 100.0
    z_ratio: float = 1.0
    final_kA: float = 0.0
    setpoint_kA: float = 0.0
    time_setpoint_s: int = 0
    sensor_mask: int = 1

    def fields(self) -> str:
        return (
            f"{self.name} {self.density_g_cm3:.2f} {self.tooling_pct:.1f} {self.z_ratio:.3f} {self.final_kA:.3f} "
            f"{self.setpoint_kA:.3f} {self.time_setpoint_s:d} {self.sensor_mask:d}"
        )


class DataError(ValueError):
    """Status D: the command's data is wrong."""


class ModeError(RuntimeError):
    """Status E: the command cannot be done in this state."""


def display_text(value: float, width: int, decimals: int) -> str:
    """``value`` as the display shows it: fixed decimals, right-aligned in ``width``, never "-0.00"."""
    shown = round(value, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{shown:{width}.{decimals}f}"


def integer_in(text: str, allowed: range, what: str) -> int:
    if not text.isdigit() or int(text) not in allowed:
        raise DataError(f"{what} {text!r} is not one of {allowed.start}..{allowed.stop - 1}")
    return int(text)


def number_in(text: str, limits: tuple[float, float], what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{what} {text!r} is not a number") from None
    if not limits[0] <= value <= limits[1]:
        raise DataError(f"{what} {value:g} is outside {limits[0]:g}..{limits[1]:g}")
    return value


def parse_film(text: str) -> Film:
    fields = text.split()
    if len(fields) != 8:
        raise DataError(f"a film takes 8 fields (name density tooling Z final setpoint time mask), got {len(fields)}")
    name, density, tooling, z, final, setpoint, time_s, mask = fields
    if not 1 <= len(name) <= 8:
        raise DataError(f"film name {name!r} is not 1-8 characters")
    return Film(
        name,
        number_in(density, DENSITY_G_CM3, "density"),
        number_in(tooling, TOOLING_PCT, "tooling"),
        number_in(z, Z_RATIO, "Z-ratio"),
        number_in(final, THICKNESS_KA, "final thickness"),
        number_in(setpoint, THICKNESS_KA, "thickness setpoint"),
        integer_in(time_s, _closed(TIME_SETPOINT_S), "time setpoint"),
        integer_in(mask, _closed(SENSOR_MASK), "sensor mask"),
    )
