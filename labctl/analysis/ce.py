"""Coulombic efficiency (CE) of lithium plating and stripping (half cells) and of full cells, live and offline.

One streaming analyzer per CE variant serves the live CE procedures (sample by sample) and ``labctl analyze ce``
(:func:`analyze_ce`, which replays a BDF time series through it), so both give the same answer. :func:`CEAnalyzer`
makes the analyzer of a variant: :class:`~labctl.analysis.ce_halfcell.CyclingAnalyzer`,
:class:`~labctl.analysis.ce_reservoir.ReservoirAnalyzer` or :class:`~labctl.analysis.ce_fullcell.FullCellAnalyzer`,
over the stream of half-cycles they share (:mod:`labctl.analysis.ce_stream`). Users name the variant ``protocol``
(``labctl analyze ce --protocol``, a run's results).

Variants (PROTOCOLS.md §2, science.md §2.1-2.2):

- ``cycling``: Li|SE|Cu half cell; each cycle plates a fixed capacity and strips to the anodic cutoff;
  CE_i = Q_strip,i / Q_plate,i with plating, stripping and nucleation overpotentials.
- ``reservoir``: Adams et al. 2018 as run by Wang et al. 2024: [formation plate, formation strip to the cutoff,
  reservoir plate Q_T, n × (strip Q_c, plate Q_c), final strip Q_S to the cutoff];
  CE = (Σ strips of the n cycles + Q_S) / (Σ plates of the n cycles + Q_T), which is (n·Q_c + Q_S)/(n·Q_c + Q_T).
- ``fullcell``: cathode|SE|collector; CE = Q_discharge / Q_charge, retention against a reference cycle, fade.

Conventions.

- Sign (BDF): positive current strips lithium from the working electrode of a half cell and charges a full cell.
- A *half-cycle* is one run of samples with the same ``Step Count`` and current of one sign. Samples with
  |j| < 0.001 mA/cm² are rest and belong to no half-cycle, except that a step's own reading at rest (the one a
  live procedure takes after the instrument ended the step) closes it and carries its last charge.
- Capacity of a half-cycle: the increase of the instrument's cumulative counters (``Charging Capacity / Ah`` for
  positive, ``Discharging Capacity / Ah`` for negative half-cycles) over its rows; a counter that falls was reset
  and counts from zero. The counters are taken to start at zero with the test when the first row's values fit
  that. Without counters: the charge rule of :mod:`labctl.analysis.segments`, shared with CCD (trapezoids of
  |I| between samples, the current held over the interval before the first sample and up to the step's reading at
  rest).
- Cycles come from the order of half-cycles, not from ``Cycle Count`` (which only labels the rows): a cycle opens
  with a plating (half cells) or a charge (full cells) that follows a half-cycle of the other sign. The reservoir
  phases are the runs of same-sign half-cycles, in the protocol's order; the last lone strip is the final strip.
  Rows of files without ``Cycle Count`` are numbered as the ``ce-reservoir`` procedure numbers them:
  formation = cycle 0, the reservoir plate = cycle 1 (it opens the first of the n cycles), cycle k = the k-th
  strip of Q_c and the plate after it, the final strip = cycle n + 1. Cycling and full cells count from 1.
- Overpotentials (mV): plating, |median V| over the second half of the plating's charge (past the nucleation
  dip and any alloying); stripping, |median V| over the strip without the part of its second half that rises above
  3 × the first half's median (de-alloying plateaus, the end-of-strip spike); nucleation, the depth of the dip in
  the first 20 % of the plating's charge, from its tip to the level the voltage recovers to after it (the Li
  plating plateau on bare Cu, the alloying plateau on an alloying film), 0 when there is no dip.
- What ended a half-cycle (``plate_end``, ``strip_end``, ``charge_end``, ``discharge_end``) is read off the data
  and the protocol's limits, in this order: ``voltage`` when its last voltage (carried to the end of the current
  along the last two samples) is at or beyond its voltage limit within 5 mV, or, for a strip, when the reading at
  rest after it is above a quarter of the cutoff (no Li metal left, which would rest at 0 V); ``capacity`` when
  its charge is within 1 % of ``capacity_mAh_cm2`` (for half-cycles that pass a planned charge: platings,
  full-cell charges, the reservoir's cycle strips); ``time`` when its time under current (charge / current) is
  within 1 % of ``time_limit_s``; ``stopped`` when the data end (or a short ended the test) before the
  instrument ended it. A half-cycle the instrument ended at none of the limits it was told about ended at one it
  was not told: ``capacity`` for one that passes a planned charge; for a strip to the cutoff ``voltage`` (the end
  spike fell between samples) unless it passed more lithium than was plated, then ``time`` (a time guard);
  ``voltage`` for a full-cell discharge.
- Short (ends the test; the first one is reported with its cycle, time and evidence):
  half cells: ``collapse``, |V| below half of the plateau |V| of the last 5 half-cycles of the same direction for
  ≥ 3 samples spanning ≥ 5 s (science.md §1.3), once the half-cycle has reached that level; ``overrun``, a strip
  passing more than 110 % of the charge plated in its cycle (reservoir: more than Q_T plus the formation
  lithium) below the cutoff; ``time_end``, a strip ended by the time limit having passed at least the charge
  plated (it could not polarise). Full cells: ``voltage_drop``, V more than 0.1 V below the running maximum of a
  constant-current charge for ≥ 3 samples spanning ≥ 5 s; ``charge_overrun``, a charge passing more than 120 %
  of ``capacity_mAh_cm2`` below the upper voltage. CE > 100 % alone is a flag (``ce_above_100``: suspect short
  or reservoir artefact), a strip ended by time a ``ce_lower_bound`` (science.md §2.2).

Memory stays flat over any number of cycles: samples are kept for the half-cycle in progress only; finished
half-cycles are reduced to a few numbers and finished cycles to their table row.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from labctl.analysis.ce_fullcell import FullCellAnalyzer
from labctl.analysis.ce_halfcell import CyclingAnalyzer
from labctl.analysis.ce_reservoir import ReservoirAnalyzer
from labctl.analysis.ce_results import (
    CEFinding,
    CEResult,
    CEVariant,
    FullCellCycle,
    HalfCellCycle,
    ReservoirCE,
    brief,
    headline,
    table,
)
from labctl.analysis.ce_stream import CEStream
from labctl.analysis.checks import SettingError
from labctl.analysis.replay import replay
from labctl.analysis.timeseries import load_bdf_csv

__all__ = [
    "VARIANTS",
    "CEAnalyzer",
    "CEFinding",
    "CEResult",
    "CEStream",
    "CEVariant",
    "FullCellCycle",
    "HalfCellCycle",
    "ReservoirCE",
    "analyze_ce",
    "brief",
    "headline",
    "load_bdf_csv",
    "table",
]

VARIANTS: dict[str, type[CEStream]] = {
    cls.variant: cls for cls in (ReservoirAnalyzer, CyclingAnalyzer, FullCellAnalyzer)
}  # in the order `--protocol` lists them


def CEAnalyzer(area_cm2: float, *, protocol: CEVariant, **settings: Any) -> CEStream:
    """The streaming analyzer of the CE variant ``protocol`` (``reservoir``, ``cycling`` or ``fullcell``) with
    ``settings`` (:class:`~labctl.analysis.ce_stream.CEStream`; the ones another variant uses are ignored). The
    factory a procedure's analysis declares, named as the one class it replaces."""
    if protocol not in VARIANTS:
        raise SettingError("protocol", f"protocol must be one of {', '.join(VARIANTS)}, got {protocol!r}")
    return VARIANTS[protocol](area_cm2, **settings)


def analyze_ce(df: pd.DataFrame, area_cm2: float, **options: Any) -> CEResult:
    """The CE result of a test recorded as a BDF time series, computed by :func:`CEAnalyzer` with ``options``
    (``protocol``, ``cutoff_V``, ...) through :func:`~labctl.analysis.replay.replay`, row by row as a live run feeds
    it: steps from ``Step Count / 1`` (else from changes of the current's sign or rest), cycle labels from
    ``Cycle Count / 1``, capacities from the capacity counters when present, else integrated."""
    return replay(df, CEAnalyzer(area_cm2, **options))
