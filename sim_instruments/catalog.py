"""Every simulated cell a bench can hold, by preset name: symmetric Li|SE|Li cells, anode-free Li|SE|collector
half cells, full cells and collector|SE|collector cells."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labctl.sim_instruments import anode_free, cells, collector_cell, full_cell, presets
from labctl.sim_instruments.cell import SimulatedCell


@dataclass(frozen=True)
class CellKind:
    kind: str  # what the cell is, for people
    cls: type[SimulatedCell[Any]]
    preset: Any  # the preset dataclass, with its ``source``


KINDS: dict[str, CellKind] = {
    name: CellKind(kind, cls, preset)
    for kind, cls, table in (
        ("Li|SE|Li symmetric", cells.SymmetricCell, presets.PRESETS),
        ("Li|SE|collector half cell", anode_free.AnodeFreeCell, anode_free.PRESETS),
        ("full cell", full_cell.FullCell, full_cell.PRESETS),
        ("collector|SE|collector", collector_cell.CollectorCell, collector_cell.PRESETS),
    )
    for name, preset in table.items()
}


def make_cell(name: str, *, area_cm2: float, seed: int = 0, cathode_mass_mg: float | None = None) -> SimulatedCell[Any]:
    """A new simulated cell of preset ``name``; ValueError naming the presets for an unknown one."""
    if name not in KINDS:
        raise ValueError(f"unknown cell {name!r}; the simulated cells are {', '.join(KINDS)}")
    cls = KINDS[name].cls
    extra = {"cathode_mass_mg": cathode_mass_mg} if cls is full_cell.FullCell else {}
    return cls(name, area_cm2=area_cm2, seed=seed, **extra)
