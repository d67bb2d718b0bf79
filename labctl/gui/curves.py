"""A pyqtgraph curve of one column of a growing :class:`~labctl.live.series.Series`, drawn decimated.

Each refresh hands pyqtgraph only ``Series.view`` of the visible x window at the plot's width in pixels (at most
about 4 points per pixel, every extreme kept), so its cost does not grow with the run: pyqtgraph's own
``autoDownsample``/``clipToView`` stay off, since they reduce every stored point on each update.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg

from labctl.live.series import Series

MIN_WIDTH_PX = 100  # a plot not laid out yet still gets a sensible number of points


class DecimatedCurve:
    """``series[column]`` against ``series.x`` on ``plot``; redraws on ``refresh()`` and when the x range or the
    plot's size changes. With x auto-range on, the window is all the data (so the plot follows a live run)."""

    def __init__(self, plot: pg.PlotItem, series: Series, column: str, **options: Any) -> None:
        self.series = series
        self.column = column
        self.item = pg.PlotDataItem(**({"connect": "finite"} | options))  # NaN (a missing value) breaks the line
        self.view_box: pg.ViewBox = plot.getViewBox()
        plot.addItem(self.item)
        self._drawn: tuple[int, float, float, int] | None = None
        self.view_box.sigXRangeChanged.connect(self.refresh)
        self.view_box.sigResized.connect(self.refresh)

    def refresh(self, *_signal_args: Any) -> None:
        """Draw the visible window if the data, the window or the width moved since the last draw."""
        n = len(self.series)
        if not n or self.column not in self.series.columns:
            if self._drawn is not None:
                self.item.setData([], [])
                self._drawn = None
            return
        if self.view_box.autoRangeEnabled()[0]:
            x = self.series.x
            x0, x1 = float(x[0]), float(x[-1])
        else:
            x0, x1 = self.view_box.viewRange()[0]
        width = max(MIN_WIDTH_PX, int(self.view_box.width()))
        if (n, x0, x1, width) == self._drawn:
            return
        self._drawn = (n, x0, x1, width)
        xs, ys = self.series.view(self.column, x0, x1, width)
        self.item.setData(xs, ys)
