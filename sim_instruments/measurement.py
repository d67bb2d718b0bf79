"""How instruments see a simulated cell: its noise-free voltage and impedance plus Gaussian measurement noise.

Each cell draws the noise from streams of its own (seed + 1 for voltage, seed + 2 for impedance), separate from
the stream that decides its fate, so reading a cell or measuring its spectrum never changes what happens to it.
"""

from __future__ import annotations

import math
import random

# A cycler's voltage channel: ±0.02 % of a 10 V range class, so 0.2 mV plus 0.01 % of reading (Arbin MITS Pro);
# cells read in volts (full and collector cells) use it instead of the millivolt-cell default.
VOLTS_NOISE_FRACTION = 1e-4  # with Measured's 0.2 mV floor


class Measured:
    """Adds ``measured_voltage`` and ``measured_impedance`` to a cell that has ``voltage`` and ``impedance``."""

    NOISE_FLOOR_V = 2e-4
    NOISE_FRACTION = 2e-3  # of |V|
    IMPEDANCE_NOISE_FRACTION = 2e-3  # rms of the complex error, relative to |Z|

    def _seed_noise(self, seed: int) -> None:
        self._noise = random.Random(seed + 1)
        self._eis_noise = random.Random(seed + 2)

    def measured_voltage(self, current_A: float) -> float:
        """Terminal voltage with measurement noise (floor + fraction of |V|, Gaussian), V."""
        v = self.voltage(current_A)  # type: ignore[attr-defined]
        return v + self._noise.gauss(0.0, self.NOISE_FLOOR_V + self.NOISE_FRACTION * abs(v))

    def measured_impedance(self, frequency_Hz: float) -> complex:
        """The impedance as an analyzer measures it: plus complex Gaussian noise of rms a fraction of |Z|."""
        z = self.impedance(frequency_Hz)  # type: ignore[attr-defined]
        sigma = self.IMPEDANCE_NOISE_FRACTION / math.sqrt(2) * abs(z)  # per component
        return z + complex(self._eis_noise.gauss(0.0, sigma), self._eis_noise.gauss(0.0, sigma))
