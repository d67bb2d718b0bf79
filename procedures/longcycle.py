"""Long constant-current cycling of the same cell after a CCD ladder (Wan et al., Nature 2023, Fig. 2).

Wan et al. step the current of a Li|Mg16Bi84-LPSCl-Mg16Bi84|Li cell for 12 cycles, then cycle it at 1.2 mA/cm² in 1 h
half-cycles for more than 2700 h at 25 °C (Fig. 2a), and at 6.0 mA/cm² (1 h, 6.0 mAh/cm²) for 1798 h at 80 °C after
a ladder to 6.0 mA/cm² (Fig. 2b-c). With ``then_density`` > 0 a ladder that ended without failure goes on at that
current density in half-cycles of ``then_half_cycle_time`` for ``then_hours`` (any number of cycles), sampled every
``then_sample_interval`` (a sample a minute keeps 2700 h to 162 000 rows), under the same short detector. The CCD
result stays the ladder's; the long phase is reported beside it (``long_cycling``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from labctl.units import SECONDS_PER_HOUR


class LongCycling:
    """Plan and result of the long phase, mixed into the CCD procedure, which declares the ``then_*``
    parameters after its ladder's (so forms list them in that order)."""

    def long_half_cycles(self, first_cycle: int) -> Iterator[tuple[float, int, float]]:
        """(signed current density mA/cm², cycle, duration s) of each half-cycle of the long phase, in order."""
        cycles = math.ceil(self.then_hours / (2 * self.then_half_cycle_time) - 1e-9)
        for k in range(cycles):
            for sign in (1, -1):
                yield sign * self.then_density, first_cycle + k, self.then_half_cycle_time * SECONDS_PER_HOUR

    def long_duration_s(self) -> float:
        return self.then_hours * SECONDS_PER_HOUR if self.then_density else 0.0

    def long_result(self, start_s: float, end_s: float, cycles: int, failure: dict | None, stopped: bool,
                    soft_shorts: list[dict]) -> dict:
        """What the long phase did: hours and cycles completed, how it ended, the soft-short events in it."""
        ended_by = failure["kind"] if failure else "stopped" if stopped else "completed"
        return {"density_mA_cm2": self.then_density, "half_cycle_h": self.then_half_cycle_time,
                "planned_h": self.then_hours, "hours": (end_s - start_s) / SECONDS_PER_HOUR, "cycles": cycles,
                "ended_by": ended_by, "failure": failure, "soft_shorts": soft_shorts}


def long_headline(long: dict | None) -> str:
    """What the long phase adds to the CCD headline ('' when it did not run)."""
    if long is None:
        return ""
    text = (f"; then {long['density_mA_cm2']:g} mA/cm² in {long['half_cycle_h']:g} h half-cycles: "
            f"{long['hours']:.1f} h, {long['cycles']} cycles")
    if long["failure"]:
        failed_h = long["failure"]["t_s"] / SECONDS_PER_HOUR
        return text + f", {long['ended_by'].replace('_', ' ')} at test time {failed_h:.1f} h"
    return text + (" (stopped)" if long["ended_by"] == "stopped" else ", no failure")
