"""A cell's terminals shared by a cycler channel and an impedance analyzer that holds a DC bias on them.

A Solartron 1260 without a potentiostat holds the cell at its generator's DC bias (``VB``) while it measures, so the
cell carries the DC current ``current_at(V_bias)``: none at the cell's open-circuit voltage, a large one on a half or
full cell biased at 0 V. The generator is a voltage source: while it holds the terminals it sets the cell's current,
whatever a cycler channel on the same cell is told to pass (procedures rest the channel first).

Both instruments live on the bench clock, and each second of the cell's life must be integrated once. A running
channel integrates every substep (at the bias current while the bias is held); the analyzer integrates only the
time no channel has integrated meanwhile, and a channel that catches up later (an idle channel integrates its rest
lazily, when it is next read) skips the time the analyzer already integrated. Each side counts how far it is ahead.
"""

from __future__ import annotations


class BiasTerminals:
    """Mixin for a cell with ``current_at(voltage_V)`` and ``_integrate(current_A, dt_s)`` (its physics): gives it
    ``advance`` (what a cycler channel calls) and ``hold_bias``/``pass_bias`` (what an impedance analyzer calls)."""

    _bias_V: float | None = None
    _analyzer_ahead_s = 0.0  # integrated at the bias by the analyzer, not yet by a channel
    _channel_ahead_s = 0.0  # integrated at the bias by a channel, not yet by the analyzer

    @property
    def bias_V(self) -> float | None:
        """The DC bias an analyzer holds the terminals at now, V; None when none does."""
        return self._bias_V

    def bias_current_A(self) -> float:
        """The DC current the held bias drives through the cell now, A (positive charges); 0 without a bias."""
        return 0.0 if self._bias_V is None else self.current_at(self._bias_V)  # type: ignore[attr-defined]

    def hold_bias(self, voltage_V: float | None) -> float:
        """An analyzer holds the terminals at ``voltage_V`` (None: lets go); returns the DC current this drives, A."""
        self._bias_V = voltage_V
        self._channel_ahead_s = 0.0
        return self.bias_current_A()

    def pass_bias(self, dt_s: float) -> None:
        """``dt_s`` seconds of the analyzer's measurement at the held bias, less what a channel integrated meanwhile."""
        _require_time(dt_s)
        covered = min(dt_s, self._channel_ahead_s)
        self._channel_ahead_s -= covered
        self._analyzer_ahead_s += dt_s - covered
        self._integrate(self.bias_current_A(), dt_s - covered)  # type: ignore[attr-defined]

    def advance(self, current_A: float, dt_s: float) -> None:
        """Let ``current_A`` flow for ``dt_s`` seconds (a cycler channel's substep); while an analyzer holds a bias,
        the bias current flows instead. Time the analyzer has already integrated is skipped."""
        _require_time(dt_s)
        skipped = min(dt_s, self._analyzer_ahead_s)
        self._analyzer_ahead_s -= skipped
        dt_s -= skipped
        if self._bias_V is not None:
            self._channel_ahead_s += dt_s
            current_A = self.bias_current_A()
        self._integrate(current_A, dt_s)  # type: ignore[attr-defined]


def _require_time(dt_s: float) -> None:
    """Negative time would run the ahead-counters backwards: refuse it before they move."""
    if not dt_s >= 0:
        raise ValueError(f"dt_s must be >= 0, got {dt_s}")
