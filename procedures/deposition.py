"""Deposit a stack of thin films under a quartz-crystal rate monitor, or calibrate the source's rate.

Each layer: the monitor is programmed with the film (density, Z-ratio, tooling, and the target as its final
thickness, so the monitor closes its shutter there by itself), zeroed, the shutter opened, rate, thickness, crystal
frequency and life logged every sample interval, and the layer ended at its target by closing the shutter. Where
the bench's shutter is worked by hand, the operator is told (an ``operator_action`` event, shown on the terminal)
and the monitor is watched: the layer starts when thickness grows and ends when the rate falls. A crystal whose life
is below the warning level raises a ``crystal_life_low`` event; a crystal that fails mid-layer stops the layer
(shutter closed) and the run ends as failed, with the data and what was deposited so far recorded.

Calibrate mode opens the shutter on each layer's source for the calibration time and reports the mean rate and its
standard deviation at the power written in the stack, and the time each target would take at that rate.

Defaults (PROTOCOLS.md §4; Wang et al., Adv. Mater. 2024, Experimental Section): 30 nm W on the Cu foil, then
140 nm Mg, RF magnetron sputtered (AJA Orion-8, Ar 32 sccm, target 22 cm from the substrate) at 200 W for W and
150 W for Mg, the rate calibrated with a quartz crystal monitor. Film constants are INFICON's material table:
W 19.3 g/cm³ and Z-ratio 0.163, Mg 1.74 g/cm³ and 1.61. Tooling 100 % until calibrated against a measured film
(``labctl deposition calibrate-tooling``).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from pymeasure.experiment import FloatParameter, ListParameter, Parameter

from labctl.bdf_columns import CRYSTAL_LIFE, FREQUENCY, LAYER, RATE, THICKNESS, TIME
from labctl.films import DENSITY_G_CM3, FILM_NAME, NM_PER_KA, THICKNESS_KA, TOOLING_PCT, Z_RATIO
from labctl.procedures.base import LabProcedure, ParameterError
from labctl.roles import Clock, RateMonitor, RateReading
from labctl.units import percent_done

DEFAULT_STACK = "W:19.3:0.163:100:30:200; Mg:1.74:1.61:100:140:150"
STACK_SYNTAX = "material:density g/cm³:Z-ratio:tooling %:target nm[:power W], layers bottom first, ';' between"
RESOLUTION_NM = 0.1  # the monitor shows thickness in kÅ with 3 decimals
# The monitor's film-parameter ranges (labctl/films.py); a target up to the largest thickness it shows.
FIELDS = (
    ("density", "density_g_cm3", DENSITY_G_CM3, "g/cm³"),
    ("Z-ratio", "z_ratio", Z_RATIO, ""),
    ("tooling", "tooling_pct", TOOLING_PCT, "%"),
    ("target", "target_nm", (RESOLUTION_NM, THICKNESS_KA[1] * NM_PER_KA), "nm"),
    ("power", "power_W", (0.1, 100_000.0), "W"),
)
STARTED_NM = 0.1  # one display step of growth: the operator has opened the shutter
STOPPED_RATE_FRACTION = 0.1  # a rate below a tenth of the layer's mean: the operator has closed the shutter
SETTLE_S = 5.0  # calibration ignores rates read this soon after opening (the monitor's rate filter fills)
MIN_WAIT_S = 0.1


class CrystalFailed(RuntimeError):
    """The monitor's crystal stopped oscillating during a layer."""


class OperatorTimeout(RuntimeError):
    """The operator did not open or close the shutter in time."""


@dataclass(frozen=True)
class Layer:
    material: str
    density_g_cm3: float
    z_ratio: float
    tooling_pct: float
    target_nm: float
    power_W: float | None = None

    def label(self, index: int) -> str:
        return f"layer {index} ({self.material})"


def parse_stack(text: str) -> list[Layer]:
    """The layers of ``text`` (:data:`STACK_SYNTAX`); a ParameterError names the layer and the field."""
    parts = [p.strip() for p in text.split(";")]
    if not any(parts):
        raise ParameterError(f"stack: empty; write layers as {STACK_SYNTAX}")
    return [_parse_layer(part, index) for index, part in enumerate(parts, 1)]


def _parse_layer(text: str, index: int) -> Layer:
    fields = [f.strip() for f in text.split(":")]
    where = f"stack: layer {index}" + (f" ({fields[0]})" if fields[0] else "")
    if len(fields) not in (5, 6):
        raise ParameterError(f"{where}: {text!r} has {len(fields)} fields; write {STACK_SYNTAX}")
    if not FILM_NAME.match(fields[0]):
        raise ParameterError(
            f"{where}: material {fields[0]!r} must be 1-8 letters, digits, '_' or '-' "
            "(the monitor stores it as the film name)"
        )
    values: dict[str, Any] = {"material": fields[0]}
    for text_value, (name, key, (low, high), unit) in zip(fields[1:], FIELDS, strict=False):
        try:
            value = float(text_value)
        except ValueError:
            value = math.nan
        if not low <= value <= high:
            raise ParameterError(
                f"{where}: {name} {text_value!r} is not a number from {low:g} to {high:g} {unit}".rstrip()
            )
        values[key] = value
    return Layer(**values)


def stack_text(layers: list[dict[str, Any]]) -> str:
    """'W 30.0 nm | Mg 140.0 nm': a film as its monitor thicknesses."""
    return " | ".join(f"{layer['material']} {layer['monitor_nm']:.1f} nm" for layer in layers)


def _stopwatch(clock: Clock) -> Callable[[], float]:
    """Seconds since now: the bench's virtual time on a simulated bench (its clock tells it), wall time otherwise."""
    now = getattr(clock, "now", time.monotonic)
    start = now()
    return lambda: now() - start


class DepositionProcedure(LabProcedure):
    """Deposit a film stack to target thicknesses under a quartz-crystal monitor, or calibrate source rates."""

    NAME = "deposition"
    ROLES = ("rate_monitor",)
    DATA_COLUMNS: ClassVar[list[str]] = [TIME, LAYER, RATE, THICKNESS, FREQUENCY, CRYSTAL_LIFE]

    stack = Parameter("Film stack", default=DEFAULT_STACK, description=f"Layers: {STACK_SYNTAX}")
    mode = ListParameter(
        "Mode",
        choices=["deposit", "calibrate"],
        default="deposit",
        description="deposit each layer to its target, or measure each source's rate",
    )
    sample_interval = FloatParameter("Sample interval", units="s", minimum=0.25, maximum=60, default=1.0)
    calibration_time = FloatParameter(
        "Calibration time",
        units="s",
        minimum=10,
        maximum=3600,
        default=60.0,
        description="Calibrate mode: how long each source deposits",
    )
    crystal_life_warning = FloatParameter(
        "Crystal life warning",
        units="%",
        minimum=0,
        maximum=100,
        default=10.0,
        description="Warn when the crystal's life is below this",
    )
    operator_timeout = FloatParameter(
        "Operator timeout",
        units="s",
        minimum=10,
        maximum=3600,
        default=300.0,
        description="Hand-worked shutters: how long to wait for the operator",
    )

    monitor: RateMonitor

    def check(self) -> None:
        parse_stack(self.stack)

    def startup(self) -> None:
        self.monitor = self.bench.role("rate_monitor")
        self.clock = self.bench.clock
        self.layers = parse_stack(self.stack)
        self.elapsed = _stopwatch(self.clock)
        self._warned_life = False
        self._shutter_may_be_open = False

    def execute(self) -> None:
        done: list[dict[str, Any]] = []
        for index, layer in enumerate(self.layers, 1):
            if self.should_stop():
                break
            record = self._calibrate(index, layer) if self.mode == "calibrate" else self._deposit(index, layer)
            done.append(record)
            if record["ended_by"] == "crystal_failure":
                self._report(done)
                shutter = "shutter closed" if self.monitor.shutter_control else "operator told to close the shutter"
                raise CrystalFailed(
                    f"the crystal failed in {layer.label(index)} at {record['monitor_nm']:.1f} of "
                    f"{layer.target_nm:g} nm: layer stopped, {shutter}, data kept; replace "
                    "the crystal, then deposit what is missing"
                )
            if record["ended_by"] == "stopped":
                break
        self._report(done)

    def shutdown(self) -> None:
        monitor = getattr(self, "monitor", None)
        if monitor is not None and self._shutter_may_be_open:
            try:
                self._shut(0, None, "the run ends")
            except Exception as e:  # a monitor that no longer answers cannot be trusted to have closed it
                raise RuntimeError(f"the rate monitor did not confirm the shutter closed ({e}); close the source's "
                                   "shutter by hand now") from e

    # --- one layer ---

    def _deposit(self, index: int, layer: Layer) -> dict[str, Any]:
        first = self._start(index, layer, final_nm=layer.target_nm)
        opened_s = self.elapsed()

        def done(r: RateReading, open_s: float) -> bool:
            return r.thickness_nm >= layer.target_nm - RESOLUTION_NM / 2

        readings, ended_by = self._grow(index, layer, done)
        last = self._end(index, layer, readings, ended_by)
        open_s = self.elapsed() - opened_s
        return {
            "layer": index,
            **asdict(layer),
            "monitor_nm": last.thickness_nm,
            "ended_by": ended_by,
            "deposition_time_s": open_s,
            "mean_rate_A_s": 10 * last.thickness_nm / open_s if open_s > 0 else None,
            "start_frequency_Hz": first.frequency_Hz,
            "end_frequency_Hz": last.frequency_Hz,
            "crystal_life_pct": last.crystal_life_pct,
        }

    def _calibrate(self, index: int, layer: Layer) -> dict[str, Any]:
        self._start(index, layer, final_nm=0.0)
        readings, ended_by = self._grow(index, layer, lambda r, open_s: open_s >= self.calibration_time)
        last = self._end(index, layer, readings, ended_by)
        rates = [r.rate_A_s for t, r in readings if t >= SETTLE_S]
        mean = statistics.fmean(rates) if rates else None
        return {
            "layer": index,
            "material": layer.material,
            "power_W": layer.power_W,
            "ended_by": ended_by,
            "mean_rate_A_s": mean,
            "rate_sd_A_s": statistics.stdev(rates) if len(rates) > 1 else None,
            "samples": len(rates),
            "monitor_nm": last.thickness_nm,
            "target_nm": layer.target_nm,
            "time_to_target_s": 10 * layer.target_nm / mean if mean else None,
        }

    def _start(self, index: int, layer: Layer, *, final_nm: float) -> RateReading:
        """Program the film, zero, warn on a worn crystal, open the shutter (or have it opened)."""
        self.monitor.set_film(
            name=layer.material,
            density_g_cm3=layer.density_g_cm3,
            z_ratio=layer.z_ratio,
            tooling_pct=layer.tooling_pct,
            final_thickness_nm=final_nm,
        )
        self.monitor.zero()
        reading = self.monitor.read()
        self._check_life(index, layer, reading)
        self.emit(
            "event",
            {
                "kind": "layer_started",
                "layer": index,
                "material": layer.material,
                "target_nm": layer.target_nm,
                "power_W": layer.power_W,
                "test_time_s": self.elapsed(),
            },
        )
        self._shutter_may_be_open = True
        if self.monitor.shutter_control:
            self.monitor.open_shutter()
        else:
            self._ask_operator(
                index,
                layer,
                "open_shutter",
                f"open the shutter of the {layer.material} source now ({layer.label(index)} of {len(self.layers)})",
            )
            self._await(index, lambda r: r.crystal_failed or r.thickness_nm >= STARTED_NM, "open the shutter")
        return reading

    def _grow(
        self, index: int, layer: Layer, done: Callable[[RateReading, float], bool]
    ) -> tuple[list[tuple[float, RateReading]], str]:
        """Sample while the layer grows, until ``done(reading, seconds open)``, a failed crystal or a stop."""
        opened_s = self.elapsed()
        readings: list[tuple[float, RateReading]] = []
        while True:
            reading = self._sample(index, layer)
            open_s = self.elapsed() - opened_s
            readings.append((open_s, reading))
            if reading.crystal_failed:
                return readings, "crystal_failure"
            if done(reading, open_s):
                return readings, "target"
            if self.should_stop():
                return readings, "stopped"
            self.clock.wait(self._next_wait(reading, layer))

    def _next_wait(self, reading: RateReading, layer: Layer) -> float:
        """The sample interval, or less when the target is due sooner (for monitors that do not stop there)."""
        if self.mode == "deposit" and reading.rate_A_s > 0:
            due_s = 10 * (layer.target_nm - reading.thickness_nm) / reading.rate_A_s
            return max(min(self.sample_interval, due_s), MIN_WAIT_S)
        return self.sample_interval

    def _end(self, index: int, layer: Layer, readings: list[tuple[float, RateReading]], ended_by: str) -> RateReading:
        """Close the shutter (or have it closed) and take the layer's last reading."""
        last = readings[-1][1]
        reason = {
            "target": f"{last.thickness_nm:.1f} nm reached",
            "stopped": "the run was stopped",
            "crystal_failure": "the crystal failed",
        }.get(ended_by, ended_by)
        self._shut(index, layer, reason)
        if ended_by == "crystal_failure":
            self.emit(
                "event",
                {
                    "kind": "crystal_failure",
                    "layer": index,
                    "material": layer.material,
                    "thickness_nm": last.thickness_nm,
                    "test_time_s": self.elapsed(),
                    "message": f"crystal failed in {layer.label(index)}; layer stopped",
                },
            )
            return last
        if not self.monitor.shutter_control and ended_by == "target":
            mean_rate = 10 * last.thickness_nm / max(readings[-1][0], MIN_WAIT_S)
            last = self._await(
                index, lambda r: r.crystal_failed or r.rate_A_s < STOPPED_RATE_FRACTION * mean_rate, "close the shutter"
            )
        else:
            last = self._sample(index, layer)
        self.emit(
            "event",
            {
                "kind": "layer_ended",
                "layer": index,
                "material": layer.material,
                "ended_by": ended_by,
                "thickness_nm": last.thickness_nm,
                "test_time_s": self.elapsed(),
            },
        )
        return last

    def _shut(self, index: int, layer: Layer | None, reason: str) -> None:
        self._shutter_may_be_open = False
        if self.monitor.shutter_control:
            self.monitor.close_shutter()
            return
        what = f"the {layer.material} source" if layer else "the source"
        self._ask_operator(index, layer, "close_shutter", f"close the shutter of {what} now: {reason}")

    # --- readings, warnings, the operator ---

    def _sample(self, index: int, layer: Layer | None = None) -> RateReading:
        r = self.monitor.read()
        self.emit(
            "results",
            {
                TIME: self.elapsed(),
                LAYER: index,
                RATE: r.rate_A_s,
                THICKNESS: r.thickness_nm,
                FREQUENCY: r.frequency_Hz,
                CRYSTAL_LIFE: r.crystal_life_pct,
            },
        )
        if layer is not None:
            self._progress(index, layer, r)
        return r

    def _progress(self, index: int, layer: Layer, r: RateReading) -> None:
        if self.mode == "calibrate":
            self.emit("progress", percent_done(index - 1, len(self.layers)))
            return
        total = sum(x.target_nm for x in self.layers)
        before = sum(x.target_nm for x in self.layers[: index - 1])
        self.emit("progress", percent_done(before + min(r.thickness_nm, layer.target_nm), total))

    def _check_life(self, index: int, layer: Layer, r: RateReading) -> None:
        if self._warned_life or r.crystal_failed or r.crystal_life_pct >= self.crystal_life_warning:
            return
        self._warned_life = True
        self.emit(
            "event",
            {
                "kind": "crystal_life_low",
                "layer": index,
                "crystal_life_pct": r.crystal_life_pct,
                "message": f"crystal life {r.crystal_life_pct:.1f} % before {layer.label(index)} "
                f"(warning below {self.crystal_life_warning:g} %): a worn crystal may fail "
                "mid-layer; change it between runs",
            },
        )

    def _ask_operator(self, index: int, layer: Layer | None, action: str, message: str) -> None:
        self.emit(
            "event",
            {
                "kind": "operator_action",
                "action": action,
                "layer": index,
                "material": layer.material if layer else None,
                "message": message,
                "test_time_s": self.elapsed(),
            },
        )

    def _await(self, index: int, seen: Callable[[RateReading], bool], what: str) -> RateReading:
        """Sample until ``seen`` is true of a reading or a stop is requested; OperatorTimeout after the operator
        timeout."""
        deadline = self.elapsed() + self.operator_timeout
        while True:
            self.clock.wait(self.sample_interval)
            reading = self._sample(index)
            if seen(reading) or self.should_stop():
                return reading
            if self.elapsed() >= deadline:
                raise OperatorTimeout(
                    f"nobody did '{what}' within {self.operator_timeout:g} s; the monitor "
                    f"reads {reading.rate_A_s:.2f} Å/s, {reading.thickness_nm:.1f} nm"
                )

    # --- results ---

    def _report(self, done: list[dict[str, Any]]) -> None:
        if self.mode == "calibrate":
            result: dict[str, Any] = {"mode": "calibrate", "calibration": done}
            result["headline"] = "; ".join(_calibration_text(c) for c in done) or "no source calibrated"
        else:
            film = {"stack": stack_text(done), "layers": done}
            result = {
                "mode": "deposit",
                "film": film,
                "headline": _deposit_headline(done, len(self.layers)),
                "brief": film["stack"],
            }
        self.emit("result", result)


def _calibration_text(c: dict[str, Any]) -> str:
    if c["mean_rate_A_s"] is None:
        return f"{c['material']}: no steady rate ({c['ended_by'].replace('_', ' ')})"
    spread = f" ± {c['rate_sd_A_s']:.2f}" if c["rate_sd_A_s"] is not None else ""
    power = f" at {c['power_W']:g} W" if c["power_W"] else ""
    return (
        f"{c['material']} {c['mean_rate_A_s']:.2f}{spread} Å/s{power} "
        f"({c['target_nm']:g} nm in {c['time_to_target_s']:.0f} s)"
    )


def _deposit_headline(done: list[dict[str, Any]], planned: int) -> str:
    parts = [f"{d['material']} {d['monitor_nm']:.1f} nm (target {d['target_nm']:g})" for d in done]
    text = ", then ".join(parts) or "nothing deposited"
    if done and done[-1]["ended_by"] == "crystal_failure":
        return f"crystal failed in layer {len(done)}: {text}"
    if len(done) < planned or (done and done[-1]["ended_by"] != "target"):
        return f"stopped after {len(done)} of {planned} layers: {text}"
    return f"{text}; crystal life {done[-1]['crystal_life_pct']:.1f} %"
