"""The window as a researcher sees it at 1600 × 1000 with four finished runs tiled: no text is cut (a label, a button,
a check box, a progress bar, a tab or a column heading narrower than its text; a wrapped label shorter than its
lines) and every plot on show keeps a readable height. Offscreen in CI; the picture is saved beside the test's
files, to look at."""

from __future__ import annotations

import pyqtgraph as pg
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QFontMetrics, QTextDocument
from PyQt6.QtWidgets import QAbstractButton, QCheckBox, QHeaderView, QLabel, QProgressBar, QStyle, QTabBar, QWidget

from labctl.gui.run_view import ElidedLabel
from labctl.live.state import RunState
from labctl.queue.entries import plan
from labctl.request import RunRequest

SCREEN = (1600, 1000)
MIN_PLOT_PX = 120  # the least height of a plot's data area, on screen (not under a scroll bar), with four tiles


@pytest.fixture
def window(qtbot, store_root, sim_runs, queue):
    from labctl.gui.app import MainWindow

    queue.add(plan(RunRequest(procedure="ccd", channel=2), queue, hold=True))  # rows in the queue panel
    queue.add(plan(RunRequest(procedure="insitu-eis", channel=3), queue))
    w = MainWindow(store_root, poll_ms=60_000)
    qtbot.addWidget(w)
    w.resize(*SCREEN)
    w.show()
    qtbot.waitExposed(w)
    for folder in sim_runs.values():
        w.show_state(RunState.from_folder(folder))
    w.form.procedure.setCurrentText("ccd")
    w.form.fields["stop_density"].set_text("0.05")  # a field error, two lines under its field
    w.form.validate()
    qtbot.waitUntil(lambda: len(w.runs.subWindowList()) == 4)
    qtbot.wait(300)  # the tiles are laid out after the pending layout work
    yield w
    w.close()


def test_four_tiles_at_1600_by_1000_cut_no_text_and_keep_their_plots_readable(qtbot, window, tmp_path):
    shot = tmp_path / "window-1600x1000.png"
    assert window.grab().save(str(shot))
    problems = [*cut_texts(window), *short_plots(window)]
    assert not problems, f"see {shot}:\n" + "\n".join(problems)


# -- text --------------------------------------------------------------------------------------------------------


def cut_texts(root: QWidget) -> list[str]:
    """Every visible text under ``root`` that does not fit the room its widget has."""
    problems = []
    for widget in root.findChildren(QWidget):
        if not widget.isVisible():
            continue
        if isinstance(widget, QLabel):
            problems += label_problems(widget)
        elif isinstance(widget, QAbstractButton) and widget.text():
            problems += button_problems(widget)
        elif isinstance(widget, QProgressBar) and widget.isTextVisible():
            problems += bar_problems(widget)
        elif isinstance(widget, QTabBar):
            problems += tab_problems(widget)
        elif isinstance(widget, QHeaderView):
            problems += heading_problems(widget)
    return problems


def name(widget: QWidget, text: str) -> str:
    return f"{type(widget).__name__} {text[:80]!r}"


def label_problems(label: QLabel) -> list[str]:
    if isinstance(label, ElidedLabel):
        # only a label made to open on a click (the headline) may be cut; its whole text is in its tooltip
        return [] if not label.elided() or label.expandable else [f"{name(label, label.full_text())} elided"]
    text = label.text()
    if not text:
        return []
    room = label.contentsRect().adjusted(label.margin(), label.margin(), -label.margin(), -label.margin())
    if label.wordWrap():
        need = label.heightForWidth(label.width())
        return [f"{name(label, text)}: {label.height()} px high, its lines need {need}"] if label.height() < need else []
    width, height = text_size(label, text)
    if width > room.width() + 1 or height > room.height() + 1:
        return [f"{name(label, text)}: {room.width()} × {room.height()} px for {width} × {height}"]
    return []


def text_size(label: QLabel, text: str) -> tuple[int, int]:
    rich = label.textFormat() == Qt.TextFormat.RichText or (
        label.textFormat() == Qt.TextFormat.AutoText and Qt.mightBeRichText(text))
    if rich:
        document = QTextDocument()
        document.setDefaultFont(label.font())
        document.setDocumentMargin(0)
        document.setHtml(text)
        return round(document.idealWidth()), round(document.size().height())
    metrics = label.fontMetrics()
    lines = text.split("\n")
    return max(metrics.horizontalAdvance(line) for line in lines), metrics.height() * len(lines)


def button_problems(button: QAbstractButton) -> list[str]:
    style, metrics = button.style(), button.fontMetrics()
    text = button.text().replace("&&", "\0").replace("&", "").replace("\0", "&")
    need = metrics.horizontalAdvance(text)
    if isinstance(button, QCheckBox):
        need += style.pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth) + style.pixelMetric(
            QStyle.PixelMetric.PM_CheckBoxLabelSpacing)
    else:
        need += 2 * style.pixelMetric(QStyle.PixelMetric.PM_ButtonMargin)
    if not button.icon().isNull():
        need += button.iconSize().width() + 4
    return [f"{name(button, text)}: {button.width()} px for {need}"] if button.width() < need else []


def bar_problems(bar: QProgressBar) -> list[str]:
    need = bar.fontMetrics().horizontalAdvance(bar.text()) + 8  # its text is drawn inside the bar, with some air
    return [f"{name(bar, bar.text())}: {bar.contentsRect().width()} px for {need}"] if bar.contentsRect().width() < need \
        else []  # fmt: skip


def tab_problems(bar: QTabBar) -> list[str]:
    problems = []
    padding = bar.style().pixelMetric(QStyle.PixelMetric.PM_TabBarTabHSpace, None, bar)
    for i in range(bar.count()):
        if not bar.isTabVisible(i):
            continue
        rect, text = bar.tabRect(i), bar.tabText(i)
        need = QFontMetrics(bar.font()).horizontalAdvance(text) + padding
        if rect.width() < need or rect.right() > bar.width():  # elided, or behind the scroll arrows
            problems.append(f"tab {text!r}: {rect.width()} px at x {rect.x()} of {bar.width()} for {need}")
    return problems


def heading_problems(header: QHeaderView) -> list[str]:
    problems = []
    style, model = header.style(), header.model()
    margin = style.pixelMetric(QStyle.PixelMetric.PM_HeaderMargin, None, header)
    arrow = style.pixelMetric(QStyle.PixelMetric.PM_HeaderMarkSize, None, header)
    for i in range(header.count()):
        if header.isSectionHidden(i) or model is None:
            continue
        text = str(model.headerData(i, header.orientation(), Qt.ItemDataRole.DisplayRole) or "")
        sorted_by = header.isSortIndicatorShown() and header.sortIndicatorSection() == i
        need = header.fontMetrics().horizontalAdvance(text) + 2 * margin + (arrow + margin if sorted_by else 0)
        if text and header.sectionSize(i) < need:
            problems.append(f"heading {text!r}: {header.sectionSize(i)} px for {need}")
    return problems


# -- plots -------------------------------------------------------------------------------------------------------


def short_plots(window) -> list[str]:
    """Every plot on show in a run view whose data area is less than MIN_PLOT_PX high where it can be seen (a tile
    that scrolls hides part of it)."""
    problems = []
    for run_id, tile in window.views.items():
        if not tile.view().isVisible():
            problems.append(f"{run_id}: its view is not on show")
            continue
        tabs = tile.view().tabs
        page = tabs.currentWidget()
        for view in [page] * isinstance(page, pg.GraphicsView) + page.findChildren(pg.GraphicsView):
            seen = view.viewport().visibleRegion().boundingRect()  # the part no scroll area hides
            for box in view.scene().items():
                if isinstance(box, pg.ViewBox) and box.isVisible():
                    area = view.mapFromScene(box.sceneBoundingRect()).boundingRect().intersected(seen)
                    if area.height() < MIN_PLOT_PX:
                        problems.append(f"{run_id} {tabs.tabText(tabs.currentIndex())}: "
                                        f"a plot {area.height()} px high on screen, below {MIN_PLOT_PX}")
    return problems
