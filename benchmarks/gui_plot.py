"""Time per plot update of one long trace: labctl's DecimatedCurve against PyMeasure's ResultsCurve, in one run.

Both draw into a 1000 × 500 pyqtgraph PlotWidget offscreen (``QT_QPA_PLATFORM=offscreen``), pen width 1, no
antialiasing, the same random-walk voltage trace with one-sample spikes. An update is: new data arrive, the curve
takes them, the widget is painted (``grab()``). PyMeasure's curve is fed as its ``PlotFrame`` timer feeds it:
``ResultsCurve.update_data()`` reads ``results.data`` (here an in-memory DataFrame that grows the way
``Results.data`` grows it, by ``pd.concat`` of the new rows; its CSV reading is left out) and hands every point to
pyqtgraph. labctl's: ``Series.extend`` then ``DecimatedCurve.refresh()``.

- "redraw": at N points, one new sample per update (both curves must redraw), mean of several updates;
- "live": 1 s of new samples per update at ``--rate`` samples/s, starting from N points;
- "first": labctl's first draw at N points (it builds the min/max pyramid of the column once).

Goal: flat in N, under 20 ms per update at 2·10⁶ points.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_plot.py [--sizes 1e4 1e5 1e6 2e6] [--rate 1000] [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from types import SimpleNamespace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pandas as pd
import pyqtgraph as pg
from pymeasure.display.curves import ResultsCurve
from PyQt6.QtWidgets import QApplication

from labctl.gui.curves import DecimatedCurve
from labctl.live.series import Series

X, V = "Test Time / s", "Voltage / V"
SIZE = (1000, 500)


def trace(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = np.cumsum(rng.normal(0, 1e-4, n))
    v[rng.integers(0, n, 20)] += 0.05
    return np.arange(n, dtype=float), v


def widget() -> pg.PlotWidget:
    w = pg.PlotWidget(background="w")
    w.resize(*SIZE)
    w.show()
    QApplication.processEvents()
    return w


class Labctl:
    name = "labctl DecimatedCurve"

    def __init__(self, x: np.ndarray, v: np.ndarray) -> None:
        self.widget = widget()
        self.series = Series(X)
        self.series.extend({X: x, V: v})
        self.curve = DecimatedCurve(self.widget.getPlotItem(), self.series, V, pen=pg.mkPen("b", width=1),
                                    antialias=False)

    def update(self, x: np.ndarray, v: np.ndarray) -> None:
        self.series.extend({X: x, V: v})
        self.curve.refresh()
        self.widget.grab()

    def first(self) -> None:
        self.curve.refresh()
        self.widget.grab()


class PyMeasure:
    name = "PyMeasure ResultsCurve"

    def __init__(self, x: np.ndarray, v: np.ndarray) -> None:
        self.widget = widget()
        self.results = SimpleNamespace(data=pd.DataFrame({X: x, V: v}))
        self.curve = ResultsCurve(self.results, X, V, pen=pg.mkPen("b", width=1), antialias=False)
        self.widget.getPlotItem().addItem(self.curve)

    def update(self, x: np.ndarray, v: np.ndarray) -> None:
        self.results.data = pd.concat([self.results.data, pd.DataFrame({X: x, V: v})], ignore_index=True)
        self.curve.update_data()
        self.widget.grab()

    def first(self) -> None:
        self.curve.update_data()
        self.widget.grab()


def timed(action: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    action()
    return 1000 * (time.perf_counter() - t0)


def measure(kind: type, n: int, rate: int, repeats: int) -> dict[str, float]:
    """ms per update: first draw, redraw (1 new sample), live (``rate`` new samples)."""
    x, v = trace(n + repeats * (rate + 1) + 2)
    plot = kind(x[:n], v[:n])
    first = timed(plot.first)
    at = n

    def feed(m: int) -> Callable[[], None]:
        nonlocal at
        start, at = at, at + m
        return lambda: plot.update(x[start:at], v[start:at])

    plot.update(*(a[at : at + 1] for a in (x, v)))  # warm up
    at += 1
    redraw = np.median([timed(feed(1)) for _ in range(repeats)])
    live = np.median([timed(feed(rate)) for _ in range(repeats)])
    plot.widget.close()
    return {"first": first, "redraw": float(redraw), "live": float(live)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e4, 1e5, 1e6, 2e6])
    parser.add_argument("--rate", type=int, default=1000, help="samples per second in the live loop")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    print(f"ms per update, median of {args.repeats}; widget {SIZE[0]}×{SIZE[1]} px offscreen; live: "
          f"{args.rate} new samples per update")
    print(f"{'points':>9}  {'labctl first':>12} {'redraw':>8} {'live':>8}   {'PyMeasure redraw':>16} {'live':>8}   "
          f"{'ratio redraw':>12} {'live':>6}")
    for size in args.sizes:
        n = int(size)
        ours = measure(Labctl, n, args.rate, args.repeats)
        theirs = measure(PyMeasure, n, args.rate, args.repeats)
        print(f"{n:>9}  {ours['first']:>12.1f} {ours['redraw']:>8.2f} {ours['live']:>8.2f}   "
              f"{theirs['redraw']:>16.1f} {theirs['live']:>8.1f}   {theirs['redraw'] / ours['redraw']:>11.1f}× "
              f"{theirs['live'] / ours['live']:>5.1f}×")
    app.quit()


if __name__ == "__main__":
    main()
