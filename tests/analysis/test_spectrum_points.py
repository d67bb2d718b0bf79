"""The neighbour check of a measured sweep: a changed digit of a 1260 result line is suspected, a real spectrum
(the simulated presets, sharp real-looking features) is not.

Spectra are written as the 1260 sends them (``%+.4E``: five significant digits) and read back, and digits are
changed in that text, as a line corrupted on the way would be."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from labctl.analysis.circuits import parse_circuit
from labctl.analysis.spectrum_points import RESOLUTION, check_points
from labctl.procedures.spectrum import log_frequencies
from labctl.sim_instruments.catalog import KINDS, make_cell

AREA_CM2 = 1.13
SWEEPS = {"1 MHz-0.1 Hz, 10/decade": (1e6, 0.1, 10), "2 MHz-2 Hz, 10/decade": (2e6, 2.0, 10),
          "1 MHz-0.1 Hz, 5/decade": (1e6, 0.1, 5)}
# Real-looking spectra with sharp features (circuit, parameters): ideal (α = 1) arcs are the narrowest relaxations
SHARP = {
    "ideal RC arc behind lead inductance": ("L0-R0-p(R1,C1)", (1e-6, 10.0, 100.0, 1e-6)),
    "two ideal arcs and a Warburg tail": ("R0-p(R1,C1)-p(R2,C2)-W1", (20.0, 50.0, 1e-9, 200.0, 1e-5, 20.0)),
    "blocking electrode, CPE α 0.98": ("R0-CPE1", (30.0, 1e-5, 0.98)),
    "series resonance of leads and a capacitor": ("L0-R0-C1", (1e-6, 2.0, 1e-6)),
}


def as_sent(z: complex) -> tuple[str, str]:
    return f"{z.real:+.4E}", f"{z.imag:+.4E}"


def read(texts: tuple[str, str]) -> complex:
    return complex(float(texts[0]), float(texts[1]))


def preset_sweep(name: str, seed: int, sweep: str) -> tuple[list[float], list[complex]]:
    high, low, per_decade = SWEEPS[sweep]
    f = log_frequencies(high, low, per_decade)
    cell = make_cell(name, area_cm2=AREA_CM2, seed=seed)
    return f, [read(as_sent(cell.measured_impedance(x))) for x in f]


def changed_digit(text: str, rng: random.Random) -> str:
    at = rng.choice([k for k, c in enumerate(text) if c.isdigit()])
    return text[:at] + rng.choice([d for d in "0123456789" if d != text[at]]) + text[at + 1:]


def noisy(z: np.ndarray, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return z * (1 + noise / math.sqrt(2) * (rng.standard_normal(z.size) + 1j * rng.standard_normal(z.size)))


@pytest.mark.parametrize("sweep", SWEEPS)
def test_no_point_of_a_simulated_preset_is_suspected(sweep):
    suspected = {(name, seed): check_points(*preset_sweep(name, seed, sweep)).suspects
                 for name in KINDS for seed in range(5)}
    assert not {key: s for key, s in suspected.items() if s}


@pytest.mark.parametrize("noise", [0.0, 0.001, 0.005])
@pytest.mark.parametrize("name", SHARP)
def test_sharp_real_features_are_not_suspected(name, noise):
    circuit, parameters = SHARP[name]
    f = np.logspace(6, -1, 71)
    z = noisy(parse_circuit(circuit).impedance(f, parameters), noise, seed=1)
    assert check_points(f, z).suspects == ()


def test_the_noise_scale_is_local_so_a_noisier_end_of_the_sweep_is_not_suspected():
    """Real sweeps are noisier at their ends; six times the noise over the last 21 points raises no suspect (one
    noise scale for the whole sweep suspects about two points per spectrum here)."""
    circuit, parameters = SHARP["two ideal arcs and a Warburg tail"]
    f = np.logspace(6, -1, 71)
    clean = parse_circuit(circuit).impedance(f, parameters)
    sigma = np.where(np.arange(f.size) >= 50, 0.006, 0.001)
    suspects = [check_points(f, clean * (1 + (noisy(np.ones(f.size), 1.0, seed) - 1) * sigma)).suspects
                for seed in range(10)]
    assert sum(map(len, suspects)) <= 1


def test_a_changed_leading_digit_is_the_only_suspect_and_its_true_value_fits():
    f, z = preset_sweep("bare", 0, "1 MHz-0.1 Hz, 10/decade")
    real, imag = as_sent(z[30])
    garbled = list(z)
    garbled[30] = read((real[0] + str((int(real[1]) + 5) % 10) + real[2:], imag))
    check = check_points(f, garbled)
    assert check.suspects == (30,)
    assert check.fits(30, z[30]) and not check.fits(30, garbled[30])
    assert check.same(30, z[30], z[30] * (1 + 1e-4)) and not check.same(30, z[30], garbled[30])


def test_every_changed_digit_beyond_the_resolution_is_suspected():
    """Figures: one random digit of Z' or Z'' changed in 4 points of every preset's sweep (10 per decade, two
    seeds), one at a time. Every change that moves ln|Z| or the phase by more than twice the resolution (2 %) is
    suspected, and so is most of what moves it by 1-2 %; smaller changes are within what a fit and Lin-KK
    tolerate anyway."""
    rng = random.Random(7)
    caught, missed = [], []
    for name in KINDS:
        for seed in (0, 1):
            f, z = preset_sweep(name, seed, "1 MHz-0.1 Hz, 10/decade")
            for i in rng.sample(range(len(f)), 4):
                texts = list(as_sent(z[i]))
                part = rng.randrange(2)
                texts[part] = changed_digit(texts[part], rng)
                garbled = list(z)
                garbled[i] = read(tuple(texts))
                change = np.log(garbled[i] / z[i])
                size = max(abs(change.real), abs(math.remainder(change.imag, 2 * math.pi)))
                (caught if i in check_points(f, garbled).suspects else missed).append(size)
    assert len(caught) + len(missed) == len(KINDS) * 2 * 4
    assert max(missed) < 2 * RESOLUTION
    assert np.mean([s > RESOLUTION for s in missed]) < 0.5


def test_a_sweep_too_short_to_judge_is_not_checked():
    f = [1e3, 1e2, 10.0, 1.0, 0.1, 0.01]
    assert check_points(f, [1.0, 1.0, 100.0, 1.0, 1.0, 1.0]).suspects == ()


def test_an_unusable_point_is_suspected_outright():
    f, z = preset_sweep("Ag", 0, "2 MHz-2 Hz, 10/decade")
    z[12] = 0j
    assert 12 in check_points(f, z).suspects
