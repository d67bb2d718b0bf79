"""What every plot page of a run view shares: the :class:`Page` (a control bar over pyqtgraph plots, with a cursor
read-out), axis labels with units, log axes labelled at decades, SI-prefixed frequencies, colour scales and the
run's safety limits drawn on voltage plots.

A page's plots share its height, with no fixed minimum heights: plots stack while each gets :data:`ROW_PX`, and on a
lower page (four run views tiled on a 1600 × 1000 screen) one shows at a time, chosen in the page's bar, rather
than several too low to read or a scroll bar. Legends and colour bars sit beside the plots, in the layout, sized to
their text. The read-out shows as many of its parts as its width holds, never a clipped one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import pyqtgraph as pg
from PyQt6.QtCore import QEvent, QObject, QPointF, Qt
from PyQt6.QtGui import QResizeEvent
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from labctl.live.state import RunState

BACKGROUND, FOREGROUND = "w", "k"
TRACE = pg.mkPen("#1f77b4", width=1)
LATEST = pg.mkPen("#d62728", width=2.5)
STEP = pg.mkPen((110, 110, 110), width=1, style=Qt.PenStyle.DashLine)
FAILURE = pg.mkPen("#d62728", width=2)
LIMIT = pg.mkPen("#ff7f0e", width=1.5, style=Qt.PenStyle.DashLine)
FIT = pg.mkPen("k", width=1.5, style=Qt.PenStyle.DashLine)
SCALE = pg.colormap.get("viridis").getSubset(0.0, 0.85)  # its last, pale yellow, is lost on white
QWIDGETSIZE_MAX = (1 << 24) - 1  # Qt's "no maximum size"
LIMITS = (("voltage_max_V", "V max"), ("voltage_min_V", "V min"))  # metadata `limits` drawn on voltage plots
SI_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))
ROW_PX = 150  # the least height of a stacked plot: 120 px of data and room for an x axis
PART_SEPARATOR = " · "
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def si(value: float, unit: str, digits: int = 3) -> str:
    """``value`` with an SI prefix and ``digits`` significant digits: 2e6, "Hz" → "2 MHz"; 0.1 → "100 mHz"."""
    if not math.isfinite(value) or value == 0:
        return f"{value:g} {unit}"
    rounded = float(f"{value:.{digits}g}")
    scale, prefix = next(((s, p) for s, p in SI_PREFIXES if abs(rounded) >= s), SI_PREFIXES[-1])
    return f"{rounded / scale:.{digits}g} {prefix}{unit}"


def format_frequency(f_Hz: float) -> str:
    """A frequency as people write it: 2 MHz, 100 kHz, 10 Hz, 100 mHz."""
    return si(f_Hz, "Hz")


def plain_number(value: float) -> str:
    """A tick of a log axis of a plain quantity: 0.01 … 1000 as written, beyond that as a power of ten."""
    exponent = round(math.log10(value))
    if -2 <= exponent <= 3 and math.isclose(value, 10.0**exponent):
        return f"{value:g}"
    if math.isclose(value, 10.0**exponent):
        return "10" + str(exponent).translate(SUPERSCRIPT)
    return f"{value:.3g}"


class LogAxis(pg.AxisItem):
    """A log axis labelled at decades only, the ticks 2…9 × 10ⁿ unlabelled; where that labels fewer than two ticks
    (less than a decade in view, e.g. |Z| of 35-80 Ω), at 1, 2 and 5 × 10ⁿ, or else at each n × 10ⁿ. ``text``
    writes a tick's value."""

    def __init__(self, orientation: str, text: Callable[[float], str] = plain_number, **options: Any) -> None:
        super().__init__(orientation, **options)
        self.text = text
        self._labelled: set[float] = set()

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float | None, list[float]]]:
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        lo, hi = sorted((minVal, maxVal))
        decades = range(math.floor(lo), math.ceil(hi) + 1)
        minor = [d + math.log10(m) for d in decades for m in range(1, 10)]
        minor = [v for v in minor if lo <= v <= hi]
        for mantissas in ((1,), (1, 2, 5), range(1, 10)):  # the first that labels two ticks or more
            labelled = [v for v in minor if round(10 ** (v % 1)) in mantissas]
            if len(labelled) >= 2:
                break
        self._labelled = {round(v, 9) for v in labelled}
        return [(1.0, labelled), (None, [v for v in minor if round(v, 9) not in self._labelled])]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if not self.logMode:
            return super().tickStrings(values, scale, spacing)
        return [self.text(10**v) if round(v, 9) in self._labelled else "" for v in values]


class CycleAxis(pg.AxisItem):
    """An axis of cycle numbers: ticks at whole cycles only."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:
        return [(max(spacing, 1.0), offset) for spacing, offset in super().tickSpacing(minVal, maxVal, size)]


def frequency_axis() -> LogAxis:
    return LogAxis("bottom", text=format_frequency)


def labelled(plot: pg.PlotItem, x: str, y: str) -> pg.PlotItem:
    """``plot`` with axis labels as given (``Quantity / unit``, never an automatic SI prefix), a grid, dark ink."""
    for side, text in (("bottom", x), ("left", y)):
        style_axis(plot.getAxis(side), text)
    plot.showGrid(x=True, y=True, alpha=0.2)
    return plot


def style_axis(axis: pg.AxisItem, text: str) -> None:
    axis.enableAutoSIPrefix(False)
    axis.setLabel(text)
    axis.setPen(FOREGROUND)
    axis.setTextPen(FOREGROUND)
    axis.setStyle(maxTickLevel=1)  # major and minor grid lines only: the third level doubled a redraw's cost


def axis_value(axis: pg.AxisItem, value: float) -> str:
    """``value`` (view coordinates of ``axis``) as "Quantity = value unit", in the units the axis shows."""
    if axis.logMode:
        value = 10**value
    value *= axis.scale
    quantity, _, unit = str(axis.labelText).partition(" / ")
    if isinstance(axis, LogAxis) and axis.text is format_frequency:
        return f"{quantity} = {format_frequency(value)}"
    return f"{quantity} = {value:.4g}" + (f" {unit}" if unit else "")


def scale_colours(values: Iterable[float], lo: float, hi: float) -> list[Any]:
    """Colours of ``values`` on :data:`SCALE` from ``lo`` to ``hi``."""
    span = hi - lo or 1.0
    return [SCALE.map(min(1.0, max(0.0, (v - lo) / span)), mode="qcolor") for v in values]


def colour_bar(label: str) -> pg.ColorBarItem:
    """A vertical colour bar of :data:`SCALE`, read-only, its axis as wide as its text."""
    bar = pg.ColorBarItem(values=(0, 1), colorMap=SCALE, interactive=False, width=12, colorMapMenu=False)
    style_axis(bar.axis, label)
    bar.axis.setWidth(None)  # the bar fixes 45 px, which clips longer tick labels
    bar.axis.setStyle(autoExpandTextSpace=True)
    return bar


def side_legend() -> pg.LegendItem:
    """A legend for a cell of its own beside a plot (:meth:`PlotPanel.stack`): it covers no data and takes the size
    its text needs."""
    legend = pg.LegendItem(labelTextColor=FOREGROUND, verSpacing=-4)
    legend.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)  # its text's size, not the row's
    return legend


def draw_limits(plot: pg.PlotItem, metadata: dict[str, Any], angle: int = 0) -> None:
    """The run's safety limits on voltage (metadata ``limits``) as dashed labelled lines, horizontal on a plot with
    voltage up (``angle`` 90 when voltage is across); they do not change the plot's range (a limit far from the data
    would flatten it)."""
    for key, name in LIMITS:
        value = (metadata.get("limits") or {}).get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            line = pg.InfiniteLine(value, angle=angle, pen=LIMIT, label=f"{name} {value:g} V",
                                   labelOpts={"position": 0.98 if angle == 0 else 0.9, "color": "#c05a00",
                                              "anchors": [(1, 0), (1, 0)] if angle == 0 else [(1, 1), (1, 1)],
                                              "fill": (255, 255, 255, 200)})
            line.setToolTip(f"safety limit: {name} {value:g} V")
            plot.addItem(line, ignoreBounds=True)


class ReadoutLabel(QLabel):
    """A line of parts ("Z′ = 51 Ω", "−Z″ = 14 Ω", …) showing as many of them, from the first, as its width holds;
    all of them in its tooltip. It asks for no width: the bar's controls come first."""

    def __init__(self) -> None:
        super().__init__(textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.parts: list[str] = []

    def set_parts(self, parts: list[str]) -> None:
        self.parts = parts
        self.setToolTip(PART_SEPARATOR.join(parts))
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        width, metrics = self.contentsRect().width(), self.fontMetrics()
        shown = (PART_SEPARATOR.join(self.parts[:n]) for n in range(len(self.parts), 0, -1))
        self.setText(next((text for text in shown if metrics.horizontalAdvance(text) <= width), ""))


class PlotPanel(QWidget):
    """A bar (controls, then the cursor read-out or, away from the plots, the panel's ``summary``) over a pyqtgraph
    layout. Plots added with :meth:`stack` are stacked in rows while each gets :data:`ROW_PX`; on a lower panel
    (four run views tiled) one of them shows at a time, chosen in the bar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(BACKGROUND)
        self.graphics.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)  # takes what is left
        self.graphics.installEventFilter(self)
        self.layout_ = self.graphics.ci
        self.rows: list[tuple[pg.PlotItem, tuple[pg.GraphicsWidget, ...]]] = []  # stacked plots, their side items
        self._leader: pg.PlotItem | None = None  # the plot on show whose x range the others follow
        self.row_choice = QComboBox(toolTip="The plot on show: the page is too low to stack them all")
        self.row_choice.currentIndexChanged.connect(self._arrange)
        self.readout = ReadoutLabel()
        self.readout.setMinimumHeight(self.row_choice.sizeHint().height())  # the bar's height stays put
        self.summary: list[str] = []
        self.bar = QHBoxLayout()
        self.bar.setContentsMargins(4, 0, 4, 0)
        self.bar.addWidget(self.row_choice)
        self.bar.addWidget(self.readout, stretch=1)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 2, 0, 0)
        column.setSpacing(2)
        column.addLayout(self.bar)
        column.addWidget(self.graphics, stretch=1)
        self.graphics.scene().sigMouseMoved.connect(self._moved)

    def stack(self, x: str, y: str, *side: pg.GraphicsWidget, **options: Any) -> pg.PlotItem:
        """A new plot labelled ``x`` and ``y`` (:func:`labelled`) in the next row, x linked to those above (which
        give it their x axis), with ``side`` items (a legend) beside it; ``options`` go to ``addPlot``
        (``axisItems``)."""
        row = len(self.rows)
        plot = labelled(self.graphics.addPlot(row=row, col=0, **options), x, y)
        for item in side:
            self.add_side(item, row)
        self.rows.append((plot, side))
        self.row_choice.addItem("")
        self._arrange()
        return plot

    def add_side(self, item: pg.GraphicsWidget, row: int, rowspan: int = 1) -> None:
        """``item`` (a legend, a colour bar) beside the plots of ``row`` …, at the top of its cell."""
        self.layout_.addItem(item, row=row, col=1, rowspan=rowspan)
        self.layout_.layout.setAlignment(item, Qt.AlignmentFlag.AlignTop)

    def clear_plots(self) -> None:
        self.layout_.clear()
        self.rows = []
        self._leader = None
        self.row_choice.clear()

    def add_control(self, *widgets: QWidget) -> None:
        """Put ``widgets`` in the bar, before the read-out."""
        for widget in widgets:
            self.bar.insertWidget(self.bar.count() - 1, widget)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.graphics and event.type() == QEvent.Type.Resize:
            self._arrange()
        return False

    def _arrange(self) -> None:
        """All rows while each gets ROW_PX, else the chosen one alone; the x axis under the lowest on show, whose x
        range the others follow (a hidden plot ranges over nothing)."""
        for k, (plot, _) in enumerate(self.rows):
            self.row_choice.setItemText(k, str(plot.getAxis("left").labelText).partition(" / ")[0])
        stacked = self.graphics.height() >= ROW_PX * len(self.rows)
        self.row_choice.setVisible(not stacked)
        chosen = self.row_choice.currentIndex()
        lowest = len(self.rows) - 1 if stacked else chosen
        for k, (plot, side) in enumerate(self.rows):
            for item in (plot, *side):
                item.setVisible(stacked or k == chosen)
                item.setMaximumHeight(QWIDGETSIZE_MAX if stacked or k == chosen else 0)
            plot.getAxis("bottom").setStyle(showValues=k == lowest)
            plot.getAxis("bottom").showLabel(k == lowest)
        if self.rows and self.rows[lowest][0] is not self._leader:
            self._lead(self.rows[lowest][0])

    def _lead(self, leader: pg.PlotItem) -> None:
        """Make ``leader`` the plot whose x range the others follow, taking over its predecessor's: auto-ranging, or
        the range the operator zoomed to (following a plot turned a plot's own auto-range off)."""
        before = self._leader.getViewBox() if self._leader is not None else None
        leader.setXLink(None)
        if before is not None and before.autoRangeEnabled()[0]:
            leader.enableAutoRange(x=True)
        elif before is not None:
            leader.setXRange(*before.viewRange()[0], padding=0)
        for plot, _ in self.rows:
            if plot is not leader:
                plot.setXLink(leader)
        self._leader = leader

    def plot_items(self) -> list[pg.PlotItem]:
        """The plots on show (not colour bars, which are plots to pyqtgraph)."""
        return [item for item in self.layout_.items
                if isinstance(item, pg.PlotItem) and not isinstance(item, pg.ColorBarItem) and item.isVisible()]

    def set_summary(self, *parts: str) -> None:
        self.summary = list(parts)
        self.readout.set_parts(self.summary)

    def readout_parts(self, plot: pg.PlotItem, scene_pos: QPointF) -> list[str]:
        """What the read-out says with the mouse at ``scene_pos`` over ``plot``: x and y in the axes' units."""
        point = plot.getViewBox().mapSceneToView(scene_pos)
        return [axis_value(plot.getAxis("bottom"), point.x()), axis_value(plot.getAxis("left"), point.y())]

    def _moved(self, scene_pos: QPointF) -> None:
        plot = next((p for p in self.plot_items() if p.getViewBox().sceneBoundingRect().contains(scene_pos)), None)
        self.readout.set_parts(self.readout_parts(plot, scene_pos) if plot else self.summary)


class Page(PlotPanel):
    """A tab of the run view."""

    title = ""

    def has_data(self, state: RunState) -> bool:
        raise NotImplementedError

    def draw(self, state: RunState) -> None:
        raise NotImplementedError

