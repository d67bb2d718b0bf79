"""A growing time series for live plots: columnar float64 buffers plus a min/max pyramid per plotted column.

``view(column, x0, x1, width_px)`` returns at most ``4·width_px + 4`` real samples that keep every extreme of the x
window, at a cost that does not depend on how many points the series holds: two binary searches on x, then
O(width) reads of the pyramid (plus the rows appended since the previous view, which bring the pyramid up to date).

Written here because the libraries recompute from all points on every update: pyqtgraph's ``downsample``/"peak"
mode and ``clipToView`` slice and reduce the whole visible array each redraw, and tsdownsample (MinMax/M4/LTTB)
walks every point of the window each call. On a week-long run that is 10⁶–10⁷ points per redraw.

The pyramid: level k holds, for every complete aligned block of 2**k samples, the indices of its minimum and its
maximum (so the points returned are real samples, in order, and a peak keeps its exact x). Levels start at
``BASE`` samples per block; a window's edges are covered by smaller aligned blocks and at most ``BASE - 1`` raw
samples each. x must be non-decreasing (test time).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

import numpy as np

BASE_LEVEL = 3
BASE = 1 << BASE_LEVEL  # samples per block of the finest stored level


class _Pyramid:
    """Min/max indices of aligned blocks of one column, levels BASE_LEVEL, BASE_LEVEL+1, …, kept up to date."""

    def __init__(self) -> None:
        self.mins: list[np.ndarray] = []  # mins[i]: level BASE_LEVEL + i, buffers with spare capacity
        self.maxs: list[np.ndarray] = []
        self.sizes: list[int] = []  # complete blocks stored per level

    def sync(self, y: np.ndarray, n: int) -> None:
        """Extend every level to cover the first ``n`` samples of ``y``: only blocks completed since are computed."""
        first, stop = (self.sizes[0] if self.sizes else 0), n // BASE
        if stop <= first:
            return
        lo = hi = np.arange(first * BASE, stop * BASE, dtype=np.int64)
        for _ in range(BASE_LEVEL):  # raw samples → blocks of BASE
            lo, hi = _pair(y, lo, np.less), _pair(y, hi, np.greater)
        self._store(0, first, lo, hi)
        for level in itertools.count():  # each level pairs the blocks of the one below that it lacks
            first = self.sizes[level + 1] if level + 1 < len(self.sizes) else 0
            stop = self.sizes[level] // 2
            if stop <= first:
                return
            lo = self.mins[level][2 * first : 2 * stop]
            hi = self.maxs[level][2 * first : 2 * stop]
            self._store(level + 1, first, _pair(y, lo, np.less), _pair(y, hi, np.greater))

    def _store(self, level: int, first: int, lo: np.ndarray, hi: np.ndarray) -> None:
        if level == len(self.mins):
            self.mins.append(np.empty(0, np.int64))
            self.maxs.append(np.empty(0, np.int64))
            self.sizes.append(0)
        end = first + lo.size
        if end > self.mins[level].size:
            capacity = max(16, 2 * end)
            self.mins[level] = _grown(self.mins[level], capacity, 0)
            self.maxs[level] = _grown(self.maxs[level], capacity, 0)
        self.mins[level][first:end] = lo
        self.maxs[level][first:end] = hi
        self.sizes[level] = end


def _pair(y: np.ndarray, idx: np.ndarray, better: np.ufunc) -> np.ndarray:
    """Of each pair (idx[2i], idx[2i+1]) the index whose value is better; NaN never wins over a number."""
    a, b = idx[0::2], idx[1::2]
    ya, yb = y[a], y[b]
    return np.where(better(yb, ya) | np.isnan(ya), b, a)


def _grown(buffer: np.ndarray, capacity: int, fill: float) -> np.ndarray:
    bigger = np.full(capacity, fill, dtype=buffer.dtype)
    bigger[: buffer.size] = buffer
    return bigger


class Series:
    """Columns of float64 sharing one x column; append rows or whole columns, read views of the data.

    Columns appear when a row first names them (earlier rows read NaN there); a missing value is NaN. Arrays from
    ``column`` and ``x`` are views into the buffers, valid until the next append.
    """

    def __init__(self, x: str, columns: Iterable[str] = (), capacity: int = 1024) -> None:
        self.x_name = x
        self._n = 0
        self._capacity = max(16, capacity)
        self._x = np.full(self._capacity, np.inf)  # +inf past the end, so searchsorted may run on the whole buffer
        self._y: dict[str, np.ndarray] = {}
        self._pyramids: dict[str, _Pyramid] = {}
        for name in columns:
            self._add_column(name)

    def __len__(self) -> int:
        return self._n

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self._y)

    @property
    def x(self) -> np.ndarray:
        return self._x[: self._n]

    def column(self, name: str) -> np.ndarray:
        if name == self.x_name:
            return self.x
        return self._y[name][: self._n]

    def append(self, row: Mapping[str, float | int | None]) -> None:
        """Add one sample; ``row`` must hold the x column."""
        if self._n == self._capacity:
            self._grow(self._n + 1)
        n = self._n
        self._x[n] = _number(row[self.x_name])
        for name, value in row.items():
            if name != self.x_name:
                if name not in self._y:
                    self._add_column(name)
                self._y[name][n] = _number(value)
        for name, y in self._y.items():
            if name not in row:
                y[n] = np.nan
        self._n = n + 1

    def extend(self, columns: Mapping[str, np.ndarray]) -> None:
        """Add many samples at once: equal-length arrays, the x column among them."""
        x = np.asarray(columns[self.x_name], dtype=float)
        m = x.size
        self._grow(self._n + m)
        n = self._n
        self._x[n : n + m] = x
        for name, values in columns.items():
            if name != self.x_name:
                if name not in self._y:
                    self._add_column(name)
                self._y[name][n : n + m] = np.asarray(values, dtype=float)
        for name, y in self._y.items():
            if name not in columns:
                y[n : n + m] = np.nan
        self._n = n + m

    def view(self, column: str, x0: float, x1: float, width_px: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples to draw ``column`` over x in [x0, x1] at ``width_px`` pixels: at most 4·width_px + 4 of them, in
        order: the minimum and maximum of every aligned block of at most a pixel's worth of samples, and one sample
        either side of the window (so the line reaches its edges)."""
        y = self._y[column]
        i0, i1 = self._window(x0, x1)
        idx = self._indices(column, y, i0, i1, max(2, int(width_px)))
        return self._x[idx], y[idx]

    def _window(self, x0: float, x1: float) -> tuple[int, int]:
        """Index range [i0, i1) of the samples to draw: those in [x0, x1] and one beyond each side."""
        n = self._n
        i0 = int(self._x.searchsorted(x0, "left"))
        i1 = int(self._x.searchsorted(x1, "right"))
        return max(0, min(i0, n) - 1), min(n, i1 + 1)

    def _indices(self, column: str, y: np.ndarray, i0: int, i1: int, width: int) -> np.ndarray:
        if i1 - i0 <= 4 * width:
            return np.arange(i0, i1)
        # keep the outer samples; between them, aligned blocks of at most a pixel's worth of samples (more than half
        # of it, so fewer than 2·width blocks) and a partial block at each edge, two samples each
        s, e = i0 + 1, i1 - 1
        level = ((e - s) // width).bit_length() - 1
        a, b = -(-s >> level), e >> level  # whole blocks [a, b) of this level
        if level < BASE_LEVEL:  # a window of under 8·width samples: reduce them directly
            lo = hi = np.arange(a << level, b << level)
            for _ in range(level):
                lo, hi = _pair(y, lo, np.less), _pair(y, hi, np.greater)
        else:
            pyramid = self._pyramids.setdefault(column, _Pyramid())
            pyramid.sync(y, self._n)
            lo = pyramid.mins[level - BASE_LEVEL][a:b]
            hi = pyramid.maxs[level - BASE_LEVEL][a:b]
        middle = np.column_stack((np.minimum(lo, hi), np.maximum(lo, hi))).ravel()
        pyramid = self._pyramids.get(column)
        head, tail = _extrema(pyramid, y, s, a << level), _extrema(pyramid, y, b << level, e)
        return np.concatenate(([i0], head, middle, tail, [i1 - 1]))

    def _add_column(self, name: str) -> None:
        if name == self.x_name:
            raise ValueError(f"{name!r} is the x column of this series; it cannot also be a y column")
        self._y[name] = np.full(self._capacity, np.nan)

    def _grow(self, needed: int) -> None:
        if needed <= self._capacity:
            return
        capacity = max(needed, 2 * self._capacity)
        self._x = _grown(self._x, capacity, np.inf)
        self._y = {name: _grown(y, capacity, np.nan) for name, y in self._y.items()}
        self._capacity = capacity


def _extrema(pyramid: _Pyramid | None, y: np.ndarray, s: int, e: int) -> np.ndarray:
    """Indices of the minimum and maximum of y[s:e], in order, from O(log(e - s)) aligned blocks of the pyramid and
    at most 2·(BASE - 1) raw samples (only raw ones when ``pyramid`` is None: then e - s < 4); empty if s >= e."""
    candidates: list[int] = []
    while s < e:
        level = _largest_block(s, e, len(pyramid.sizes) if pyramid else 0)
        if level < BASE_LEVEL:
            candidates.append(s)
            s += 1
            continue
        j = s >> level
        candidates += [int(pyramid.mins[level - BASE_LEVEL][j]), int(pyramid.maxs[level - BASE_LEVEL][j])]
        s += 1 << level
    if not candidates:
        return np.empty(0, np.int64)
    idx = np.array(candidates, dtype=np.int64)
    values = y[idx]
    if np.isnan(values).all():
        return idx[:1]
    lo, hi = idx[np.nanargmin(values)], idx[np.nanargmax(values)]
    return np.array(sorted((lo, hi)), dtype=np.int64)


def _largest_block(s: int, e: int, levels: int) -> int:
    """The largest stored level whose block starting at ``s`` is aligned and fits in [s, e); below BASE_LEVEL if
    none."""
    aligned = (s & -s).bit_length() - 1 if s else 62
    return min(aligned, (e - s).bit_length() - 1, BASE_LEVEL + levels - 1)


def _number(value: float | int | None) -> float:
    return np.nan if value is None else float(value)
