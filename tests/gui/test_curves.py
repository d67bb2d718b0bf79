"""DecimatedCurve: what reaches pyqtgraph is a bounded view of the visible window that keeps its extremes."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest

from labctl.gui.curves import DecimatedCurve
from labctl.live.series import Series

X, V = "Test Time / s", "Voltage / V"


@pytest.fixture
def plot(qtbot):
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(800, 400)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def series_of(n: int, seed: int = 0) -> tuple[Series, np.ndarray]:
    y = np.random.default_rng(seed).normal(size=n)
    y[n // 3] = 40.0  # one-sample spikes
    y[2 * n // 3] = -40.0
    series = Series(X)
    series.extend({X: np.arange(n, dtype=float), V: y})
    return series, y


def width_of(curve: DecimatedCurve) -> int:
    return int(curve.view_box.width())


@pytest.mark.parametrize("n", [10_000, 1_000_000])
def test_the_whole_run_is_drawn_in_a_few_points_per_pixel_with_its_spikes(plot, n):
    series, _y = series_of(n)
    curve = DecimatedCurve(plot.getPlotItem(), series, V)
    curve.refresh()
    xs, ys = curve.item.getData()
    assert len(xs) <= 4 * width_of(curve) + 4 < n
    assert xs[0] == 0 and xs[-1] == n - 1
    assert ys.max() == 40.0 and ys.min() == -40.0
    plot.grab()  # paints
    (_x0, _x1), (y0, y1) = curve.view_box.viewRange()
    assert y0 < -40 and y1 > 40  # the auto-range sees the spikes


def test_zooming_redraws_the_window_only_with_its_own_extremes(plot):
    series, y = series_of(500_000)
    curve = DecimatedCurve(plot.getPlotItem(), series, V)
    curve.refresh()
    plot.setXRange(100_000, 200_000, padding=0)  # the view-range change redraws
    xs, ys = curve.item.getData()
    assert xs[0] >= 99_000 and xs[-1] <= 201_000 and len(xs) <= 4 * width_of(curve) + 4
    assert ys.max() == y[100_000:200_001].max() and ys.min() == y[100_000:200_001].min()
    plot.setXRange(150_000, 150_100, padding=0)  # fewer samples than pixels: all of them
    xs, _ys = curve.item.getData()
    np.testing.assert_array_equal(xs, np.arange(149_999, 150_102))


def test_a_live_run_is_followed_as_it_grows(plot):
    series = Series(X)
    curve = DecimatedCurve(plot.getPlotItem(), series, V)
    curve.refresh()  # nothing yet: nothing drawn
    assert curve.item.getData()[0] is None or len(curve.item.getData()[0]) == 0
    for i in range(3):
        series.extend({X: np.arange(i * 1000, (i + 1) * 1000, dtype=float), V: np.full(1000, float(i))})
        curve.refresh()
        xs, ys = curve.item.getData()
        assert xs[-1] == (i + 1) * 1000 - 1 and ys[-1] == i
        plot.grab()


def test_a_column_the_run_has_not_sent_yet_draws_nothing(plot):
    series, _y = series_of(1000)
    curve = DecimatedCurve(plot.getPlotItem(), series, "Current / A")
    curve.refresh()
    assert curve.item.getData()[0] is None or len(curve.item.getData()[0]) == 0
    series.append({X: 1000.0, "Current / A": 0.001})
    curve.refresh()
    xs, ys = curve.item.getData()
    assert xs[-1] == 1000.0 and ys[-1] == 0.001
