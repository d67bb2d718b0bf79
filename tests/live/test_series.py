"""Series: a growing columnar buffer whose views keep every extreme in a bounded number of points."""

from __future__ import annotations

import numpy as np
import pytest

from labctl.live.series import Series

X = "Test Time / s"


def filled(n: int, seed: int = 0) -> tuple[Series, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, y = np.arange(n, dtype=float), rng.normal(size=n)
    series = Series(X)
    series.extend({X: x, "v": y})
    return series, x, y


def test_rows_and_columns_grow_and_missing_values_read_nan():
    series = Series(X, ["Voltage / V"], capacity=2)
    series.append({X: 0.0, "Voltage / V": 1.0})
    series.append({X: 1.0, "Voltage / V": 2.0, "Current / A": 0.5})
    series.extend({X: np.array([2.0, 3.0]), "Current / A": np.array([0.1, 0.2])})
    series.append({X: 4.0, "Voltage / V": None})
    assert len(series) == 5
    assert series.columns == ("Voltage / V", "Current / A")
    np.testing.assert_array_equal(series.x, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(series.column(X), series.x)
    np.testing.assert_array_equal(series.column("Voltage / V"), [1, 2, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(series.column("Current / A"), [np.nan, 0.5, 0.1, 0.2, np.nan])


def test_a_row_without_the_x_column_is_refused_by_name():
    with pytest.raises(KeyError, match="Test Time"):
        Series(X).append({"Voltage / V": 1.0})


def test_a_small_window_is_returned_whole_with_a_sample_either_side():
    series, x, y = filled(1000)
    xs, ys = series.view("v", 100, 199, width_px=100)
    np.testing.assert_array_equal(xs, x[99:201])
    np.testing.assert_array_equal(ys, y[99:201])


@pytest.mark.parametrize("width", [2, 7, 100, 640])
def test_a_view_is_bounded_ordered_real_samples_that_keep_every_spike(width):
    series, x, y = filled(200_003, seed=width)
    spikes = np.arange(40) * 5000 + np.random.default_rng(1).integers(0, 1000, 40)  # ≥ 4000 samples apart
    y[spikes[::2]] = 50.0 + np.arange(20)  # single-sample spikes up and down
    y[spikes[1::2]] = -50.0 - np.arange(20)
    series = Series(X)
    series.extend({X: x, "v": y})
    xs, ys = series.view("v", -1.0, 1e9, width)
    assert len(xs) <= 4 * width + 4
    assert np.all(np.diff(xs) >= 0)
    np.testing.assert_array_equal(ys, y[xs.astype(int)])  # real samples, at their own x
    if width >= 100:  # enough pixels that no two spikes share one (a pixel holds ≤ 2000 samples)
        assert set(xs.astype(int)) >= set(spikes)
    assert ys.max() == y.max() and ys.min() == y.min()


def test_each_pixel_column_keeps_its_extremes_within_a_pixel():
    rng = np.random.default_rng(5)
    series, x, y = filled(50_000, seed=5)
    for _ in range(30):
        x0, x1 = np.sort(rng.uniform(-100, 50_100, 2))
        width = int(rng.integers(2, 400))
        xs, ys = series.view("v", x0, x1, width)
        assert len(xs) <= 4 * width + 4
        edges = np.linspace(x0, x1, width + 1)
        for k in range(width):
            inside = (x >= edges[k]) & (x < edges[k + 1])
            if inside.any():
                near = (xs >= edges[max(k - 1, 0)]) & (xs < edges[min(k + 2, width)])
                assert ys[near].max() >= y[inside].max() and ys[near].min() <= y[inside].min()


def test_growing_row_by_row_between_views_gives_the_views_of_a_series_filled_at_once():
    _whole, x, y = filled(30_000, seed=2)
    grown = Series(X)
    grown.extend({X: x[:1000], "v": y[:1000]})
    for i in range(1000, len(x)):
        grown.append({X: x[i], "v": y[i]})
        if i % 1777 == 0:
            grown.view("v", 0, i, 300)  # brings the pyramid up to date part-way
    whole = Series(X)
    whole.extend({X: x, "v": y})
    for x0, x1, width in [(0, 30_000, 300), (1234.5, 25_000, 97), (29_000, 29_999, 10)]:
        for a, b in zip(grown.view("v", x0, x1, width), whole.view("v", x0, x1, width), strict=True):
            np.testing.assert_array_equal(a, b)


def test_missing_values_do_not_hide_extremes():
    series, x, y = filled(100_000, seed=3)
    y[::3] = np.nan
    y[50_001] = 99.0
    series = Series(X)
    series.extend({X: x, "v": y})
    _xs, ys = series.view("v", 0, 1e6, 200)
    assert np.nanmax(ys) == 99.0 and np.nanmin(ys) == np.nanmin(y)


class Touch(np.ndarray):
    """An array that counts the elements read out of it (every item or slice taken, as an upper bound)."""

    read = 0

    def __getitem__(self, key):
        out = super().__getitem__(key)
        Touch.read += np.size(out)
        return out


def elements_read_by_a_view(n: int, width: int) -> int:
    series, _x, _y = filled(n)
    series.view("v", 0, n, width)  # builds the pyramid: work proportional to the rows appended, done once
    series._x = series._x.view(Touch)
    series._y = {name: y.view(Touch) for name, y in series._y.items()}
    for pyramid in series._pyramids.values():
        pyramid.mins = [level.view(Touch) for level in pyramid.mins]
        pyramid.maxs = [level.view(Touch) for level in pyramid.maxs]
    Touch.read = 0
    xs, _ys = series.view("v", n * 0.1, n * 0.9, width)
    assert len(xs) > 2 * width  # it did decimate
    return Touch.read


def test_the_work_of_a_view_does_not_grow_with_the_samples_stored():
    width = 500
    # windows (80 % of n) of 2**k samples per pixel: the same number of whole blocks, so only the edges' log terms
    # may differ; any other n reads between half and the same again as these
    reads = {n: elements_read_by_a_view(n, width) for n in (625 * 2**4, 625 * 2**7, 625 * 2**11)}
    assert max(reads.values()) - min(reads.values()) <= 100, reads
    assert max(reads.values()) <= 8 * width, reads
    assert elements_read_by_a_view(3_000_000, width) <= 12 * width + 200
