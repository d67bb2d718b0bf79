"""The channel grid: every cycler channel of the bench as a tile, coloured by what it is doing (running, finished,
failed, short, waiting, …), with its cell, procedure, latest values, time in test and time left, and its last
event; looked at again every poll. Clicking a tile with a run asks for that run's view (``open_run``).

Tiles have one fixed size, wide enough for the widest value line at the widget's font (measured, not guessed), so
numbers are never cut; free text that can be long (cell ids, error messages) is shortened with "…" and shown in
full in the tile's tooltip. The grid wraps to the widget's width and scrolls. What a channel is doing comes from
:mod:`labctl.live.channels`.
"""

from __future__ import annotations

import html
import textwrap
from datetime import UTC, datetime

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QFont, QFontMetrics, QKeyEvent, QMouseEvent, QResizeEvent, QShowEvent
from PyQt6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from labctl.bench import BenchError
from labctl.gui.outage import riding_out
from labctl.live.channels import STATES, STICKY, ChannelBoard, ChannelStatus, Live
from labctl.queue.db import QueueDB
from labctl.store import Registry
from labctl.units import SECONDS_PER_HOUR

# state -> (strong colour: border and badge, tint: background); each state also says its name on the badge
COLOURS = {
    "running": ("#2e7d32", "#e8f5e9"),
    "unreachable": ("#6a1b9a", "#f3e5f5"),
    "short": ("#c62828", "#ffcdd2"),
    "failed": ("#d84315", "#fbe9e7"),
    "interrupted": ("#6d4c41", "#efebe9"),
    "waiting": ("#f9a825", "#fff8e1"),
    "finished": ("#1565c0", "#e3f2fd"),
    "aborted": ("#546e7a", "#eceff1"),
    "idle": ("#9e9e9e", "#fafafa"),
}
LINES = 6  # text lines under the title row
# the widest value lines a tile must show whole (digits are equally wide in common fonts)
TEMPLATES = (
    "+10.0000 V   +0.0000 mA",
    "j +0.000 mA/cm²   cycle 0000 · step 0000",
    "in test 000.0 h   left 000.0 h",
    "in test 000.0 h   ended 00 Mmm 00:00",
    "00:00 hard short at 0.00 mA/cm²",
    "00:00 segment started +0.00 mA/cm²",
)
MARGIN = 8  # px between a tile's border and its text
BORDER = 3  # px, at its thickest (a short's)
SPACING = 8  # px between tiles


def sig(value: float, digits: int, max_decimals: int) -> str:
    """``value`` signed, with ``digits`` significant digits but no exponent and at most ``max_decimals``."""
    decimals = digits - 1 if value == 0 else digits - 1 - int(f"{abs(value):e}".split("e")[1])
    return f"{value:+.{max(0, min(decimals, max_decimals))}f}"


def hours(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    h = seconds / SECONDS_PER_HOUR
    return f"{h:.2f} h" if h < 10 else f"{h:.1f} h" if h < 1000 else f"{h:.0f} h"


def clock(unix: float | None) -> str:
    return datetime.fromtimestamp(unix).strftime("%H:%M") if unix is not None else ""


def ended(iso: str | None) -> str:
    """When a run ended, local time: the time of day today, else the day too."""
    if not iso:
        return "—"
    at = datetime.fromisoformat(iso)
    at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone()
    return at.strftime("%H:%M") if at.date() == datetime.now().date() else at.strftime("%d %b %H:%M")


def tile_lines(s: ChannelStatus) -> list[str]:
    """The LINES text lines of a channel's tile, with units."""
    if s.state == "idle":
        return ["no run", *[""] * (LINES - 1)]
    lines = [" · ".join(p for p in (s.procedure, s.cell_id) if p)]
    if s.run_id is None:  # a waiting entry, or one the daemon is starting
        lines += [f"entry {s.entry_id} {s.entry_state}", "", "", s.event]
    else:
        v = f"{s.voltage_V:+.4f} V" if s.voltage_V is not None else "— V"
        i = f"{sig(1000 * s.current_A, 4, 4)} mA" if s.current_A is not None else "— mA"
        j = f"j {sig(s.density_mA_cm2, 3, 3)} mA/cm²" if s.density_mA_cm2 is not None else "j — mA/cm²"
        counts = " · ".join(f"{name} {n}" for name, n in (("cycle", s.cycle), ("step", s.step)) if n is not None)
        lines += [f"{v}   {i}", f"{j}   {counts}".rstrip()]
        event = f"{clock(s.event_at)} {s.event}".strip()
        if s.ended_at is None:
            lines += [f"in test {hours(s.test_time_s)}   left {hours(s.left_s)}", event]
        else:  # a failed run's alert says in a few words what its error says at length (in the tooltip)
            outcome = event if s.state == "failed" and s.event else s.result or event
            lines += [f"in test {hours(s.test_time_s)}   ended {ended(s.ended_at)}", outcome]
    others = s.waiting - 1 if s.state == "waiting" else s.waiting  # a waiting tile shows the first entry itself
    lines.append(f"{'+' if s.state == 'waiting' else ''}{others} waiting in the queue" if others > 0 else "")
    return lines


def tooltip(s: ChannelStatus) -> str:
    """Everything a tile shows, in full, and what the event and the result say at length (wrapped)."""
    head = f"Channel {s.channel}: {s.state}"
    if s.run_id:
        head += f"\nrun {s.run_id}" + (f" (queue entry {s.entry_id})" if s.entry_id else "")
    lines = [line for line in tile_lines(s) if line]
    if s.event and not any(line.endswith(s.event) for line in lines):
        lines.append(f"last event {clock(s.event_at)}: {s.event}".replace("  ", " "))
    lines += [s.event_detail] if s.event_detail else []
    lines += [f"result: {s.result}"] if s.result and s.result not in lines else []
    lines += ["Click to open the run's view"] if s.run_id else []
    return "\n".join([head, *(textwrap.fill(line, 80) for line in lines)])


class ChannelTile(QFrame):
    """One channel: a title row (channel and state) over LINES lines, at a fixed size."""

    clicked = pyqtSignal(str)  # the run id

    def __init__(self, width: int) -> None:
        super().__init__()
        self.setObjectName("tile")
        self.status: ChannelStatus | None = None
        self.title = QLabel()
        self.title.setFont(_font(self, bold=True, larger=2))
        self.badge = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, objectName="badge")
        self.badge.setFont(_font(self, bold=True))
        self.lines = [QLabel() for _ in range(LINES)]
        layout = QVBoxLayout(self)
        layout.setContentsMargins(MARGIN, MARGIN, MARGIN, MARGIN)
        layout.setSpacing(1)
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addStretch(1)
        top.addWidget(self.badge)
        layout.addLayout(top)
        for label in self.lines:
            label.setFixedWidth(width - 2 * (MARGIN + BORDER))
            layout.addWidget(label)
        self.setFixedWidth(width)
        self.setFixedHeight(layout.sizeHint().height())
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # Enter or Space opens the run, as a click does

    def show_status(self, s: ChannelStatus) -> None:
        if s == self.status:
            return
        if self.status is None or s.state != self.status.state:
            self._colour(s.state)
        self.status = s
        self.title.setText(f"Ch {s.channel}")
        self.badge.setText(f" {s.state.upper()} ")
        for label, text in zip(self.lines, tile_lines(s), strict=True):
            label.setText(label.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, label.width()))
        self.setToolTip(tooltip(s))
        self.setCursor(Qt.CursorShape.PointingHandCursor if s.run_id else Qt.CursorShape.ArrowCursor)

    def _colour(self, state: str) -> None:
        strong, tint = COLOURS[state]
        border = BORDER if state == "short" else BORDER - 1
        badge_text = "#202020" if state == "waiting" else "white"
        self.setStyleSheet(
            f"QFrame#tile {{ background: {tint}; border: {border}px solid {strong}; border-radius: 6px; }}"
            f"QLabel {{ color: #202020; background: transparent; border: none; }}"
            f"QLabel#badge {{ color: {badge_text}; background: {strong}; border-radius: 3px; }}"
        )

    def mouseReleaseEvent(self, event: QMouseEvent | None) -> None:
        super().mouseReleaseEvent(event)
        if event is not None and event.button() == Qt.MouseButton.LeftButton and self.rect().contains(event.pos()):
            self._open()

    def keyPressEvent(self, event: QKeyEvent | None) -> None:
        if event is not None and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self._open()
        else:
            super().keyPressEvent(event)

    def _open(self) -> None:
        if self.status is not None and self.status.run_id:
            self.clicked.emit(self.status.run_id)


class TileArea(QScrollArea):
    """The tiles in rows as wide as the viewport, scrolling down."""

    def __init__(self) -> None:
        super().__init__(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        self.tiles: list[ChannelTile] = []
        self._columns = 0
        content = QWidget()
        self._grid = QGridLayout(content)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(SPACING)
        self._grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setWidget(content)

    def set_tiles(self, tiles: list[ChannelTile]) -> None:
        for old in self.tiles:
            old.hide()
            old.deleteLater()
        self.tiles = tiles
        self._columns = 0
        self._place()

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        self._place()

    def _place(self) -> None:
        if not self.tiles:
            return
        width = self.viewport().width()  # type: ignore[union-attr]
        columns = max(1, (width + SPACING) // (self.tiles[0].width() + SPACING))
        if columns == self._columns:
            return
        self._columns = columns
        for n, tile in enumerate(self.tiles):
            self._grid.addWidget(tile, n // columns, n % columns)  # re-adding moves a tile


class ChannelGrid(QWidget):
    """Every cycler channel of the bench ``spec`` (``sim`` or a bench file) from the store's ``registry`` and
    ``queue``, looked at every ``poll_ms``; ``live(run_id)`` gives a followed run's latest live values (the window's
    feeds); ``channels`` is how many channels a real cycler has (unknown without it: see labctl.live.channels)."""

    open_run = pyqtSignal(str)  # the run id of a clicked tile

    def __init__(self, spec: str, queue: QueueDB, registry: Registry, poll_ms: int = 1000,
                 live: Live = lambda _: None, channels: int | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue, self.registry, self.live, self.channels = queue, registry, live, channels
        self.board: ChannelBoard | None = None
        self.header = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText)
        self.area = TileArea()
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addWidget(self.area, stretch=1)
        self.tile_width = tile_width(self)
        self._timer = QTimer(self, interval=poll_ms)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.set_bench(spec)

    def set_bench(self, spec: str) -> None:
        """Show the channels of another bench (the bench panel's ``changed``)."""
        self.area.set_tiles([])
        try:
            self.board = ChannelBoard(spec, self.queue, self.registry, self.channels)
        except BenchError as e:
            self.board = None
            self.header.setText(html.escape(f"No channels to show: {e}"))
            return
        self.refresh()

    def stop_watching(self) -> None:
        """Stop looking at the queue and the registry (before they close)."""
        self._timer.stop()

    def tiles(self) -> dict[int, ChannelTile]:
        return {tile.status.channel: tile for tile in self.area.tiles if tile.status is not None}

    @riding_out
    def refresh(self) -> None:
        if self.board is None or not self.isVisible():
            return  # a hidden grid costs nothing; showing it looks again
        statuses = self.board.statuses(self.live)
        if [s.channel for s in statuses] != list(self.tiles()):
            self._make_tiles(len(statuses))
        for tile, status in zip(self.area.tiles, statuses, strict=True):
            tile.show_status(status)
        self.header.setText(header_text(self.board, statuses))

    def showEvent(self, event: QShowEvent | None) -> None:
        super().showEvent(event)
        self.refresh()

    def _make_tiles(self, count: int) -> None:
        tiles = [ChannelTile(self.tile_width) for _ in range(count)]
        for tile in tiles:
            tile.clicked.connect(self.open_run)
        self.area.set_tiles(tiles)


def header_text(board: ChannelBoard, statuses: list[ChannelStatus]) -> str:
    """``bench: N channels — 3 running, 1 short, …``, in the order of STATES."""
    if board.cycler is None:
        return html.escape(f"{board.name}: no cycler on this bench, so no channels")
    counts = [(state, sum(s.state == state for s in statuses)) for state in STATES]
    shown = ", ".join(_count(n, state) for state, n in counts if n)
    known = "" if board.count else " (those the bench file and the store name; the cycler may have more)"
    return f"<b>{html.escape(board.name)}</b>: {len(statuses)} channels{known} — {shown}"


def _count(n: int, state: str) -> str:
    """``n state``; in the state's colour when the cells need a hand."""
    text = f"{n} {state}"
    return f"<b style='color: {COLOURS[state][0]}'>{text}</b>" if state in STICKY else text


def tile_width(widget: QWidget) -> int:
    """A tile's width at the widget's font: the widest template line, or the title row at its widest."""
    lines = QFontMetrics(widget.font())
    title = QFontMetrics(_font(widget, bold=True, larger=2)).horizontalAdvance("Ch 64")
    badge = QFontMetrics(_font(widget, bold=True)).horizontalAdvance(" INTERRUPTED ")
    text = max(max(lines.horizontalAdvance(t) for t in TEMPLATES), title + badge + 2 * SPACING)
    return text + 2 * (MARGIN + BORDER)


def _font(widget: QWidget, bold: bool = False, larger: int = 0) -> QFont:
    font = QFont(widget.font())
    font.setBold(bold)
    if larger:
        font.setPointSizeF(font.pointSizeF() + larger)
    return font
