"""What the CE analysis reports: finished cycles, shorts, the reservoir CE, and how people read them (the
headline, the brief and the per-cycle table). The analyzers are in :mod:`labctl.analysis.ce`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from labctl.units import SECONDS_PER_HOUR, counted

CEVariant = Literal["reservoir", "cycling", "fullcell"]  # the CE protocols (`labctl analyze ce --protocol`)
EndReason = Literal["capacity", "voltage", "time", "stopped"]
Phase = Literal["formation", "reservoir", "cycle", "final"]
FORMULA = "CE = (Σ strips of the n cycles + Q_S) / (Σ plates of the n cycles + Q_T) = (n·Q_c + Q_S)/(n·Q_c + Q_T)"


@dataclass(frozen=True)
class CEFinding:
    """What the analyzer found: a finished cycle (``kind`` ``cycle_completed``, with its table ``row``) or a short
    (``kind`` ``hard_short``, ``ends_test``: the procedure stops). ``t_s`` is the test time (s) of the row that
    completed the cycle, or of the short's onset; ``criterion`` says how the short showed (``collapse``,
    ``overrun``, ``time_end``, ``voltage_drop``, ``charge_overrun``) and ``detail`` gives the evidence."""

    kind: Literal["cycle_completed", "hard_short"]
    t_s: float
    cycle: int
    step: int
    detail: str
    ends_test: bool = False
    criterion: str | None = None
    row: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HalfCellCycle:
    """One row of a half cell's table. Reservoir phases are rows too; CE is given for cycling cycles and the
    formation (the initial CE), the reservoir CE in :class:`ReservoirCE`. Overpotentials are |median V| over the
    plateaus, in mV, and the nucleation overpotential the depth of the dip at the start of the plating (module
    docstring)."""

    cycle: int
    phase: Phase
    plate_mAh_cm2: float | None
    strip_mAh_cm2: float | None
    ce_percent: float | None
    plating_overpotential_mV: float | None
    stripping_overpotential_mV: float | None
    nucleation_overpotential_mV: float | None
    plate_end: EndReason | None
    strip_end: EndReason | None
    flags: tuple[str, ...]  # ce_lower_bound, ce_above_100, incomplete
    end_time_h: float

    def to_dict(self) -> dict:
        return _plain(asdict(self))


@dataclass(frozen=True)
class FullCellCycle:
    """One row of a full cell's table: charge and discharge per area (and per gram of cathode when its mass is
    known), CE = discharge/charge, mean voltages (charge-weighted), retention of the discharge capacity against the
    reference cycle and its fade since the previous cycle (percentage points of the reference per cycle)."""

    cycle: int
    charge_mAh_cm2: float | None
    discharge_mAh_cm2: float | None
    charge_mAh_g: float | None
    discharge_mAh_g: float | None
    ce_percent: float | None
    mean_charge_V: float | None
    mean_discharge_V: float | None
    charge_end: EndReason | None
    discharge_end: EndReason | None
    retention_percent: float | None
    fade_percent_per_cycle: float | None
    flags: tuple[str, ...]
    end_time_h: float

    def to_dict(self) -> dict:
        return _plain(asdict(self))


@dataclass(frozen=True)
class ReservoirCE:
    """The reservoir CE with every input of its formula, from the measured charges (mAh/cm²). ``ce_percent`` is
    None until the final strip is in the data. Flags: ``lower_bound`` (the final strip ended by time),
    ``suspect_short`` (it never reached the cutoff and passed more than Q_T plus the formation lithium)."""

    ce_percent: float | None
    n: int
    Q_c_mAh_cm2: float | None  # mean plating of the n cycles
    Q_T_mAh_cm2: float | None
    Q_S_mAh_cm2: float | None
    cycled_strip_mAh_cm2: float  # Σ of the n strips
    cycled_plate_mAh_cm2: float  # Σ of the n platings
    formation_plate_mAh_cm2: float | None
    formation_strip_mAh_cm2: float | None
    initial_ce_percent: float | None
    final_strip_end: EndReason | None
    flags: tuple[str, ...]
    formula: str = FORMULA


@dataclass(frozen=True)
class CEResult:
    """The CE analysis of one test. ``to_dict()`` gives plain JSON types and the ``headline`` (the variant under its
    stored name, ``protocol``)."""

    variant: CEVariant
    area_cm2: float
    cycles: tuple[HalfCellCycle | FullCellCycle, ...]
    cycles_completed: int  # rows with a CE and no half-cycle cut short
    mean_ce_percent: float | None  # over those rows
    last_ce_percent: float | None
    reservoir: ReservoirCE | None
    short: CEFinding | None
    reference_cycle: int | None  # full cells: retention is relative to this cycle's discharge
    retention_percent: float | None  # of the last cycle
    fade_percent_per_cycle: float | None  # minus the least-squares slope of retention from the reference on
    test_time_h: float
    limits: dict[str, float | None]  # the protocol limits the analysis used

    def to_dict(self) -> dict:
        d = _plain({
            "protocol": self.variant, "area_cm2": self.area_cm2, "cycles": [c.to_dict() for c in self.cycles],
            "cycles_completed": self.cycles_completed, "mean_ce_percent": self.mean_ce_percent,
            "last_ce_percent": self.last_ce_percent,
            "reservoir": asdict(self.reservoir) if self.reservoir else None,
            "short": self.short.to_dict() if self.short else None, "reference_cycle": self.reference_cycle,
            "retention_percent": self.retention_percent, "fade_percent_per_cycle": self.fade_percent_per_cycle,
            "test_time_h": self.test_time_h, "limits": dict(self.limits),
        })  # fmt: skip
        d["headline"] = headline(d)
        return d

    def headline(self) -> str:
        """One line for people (:func:`headline`)."""
        return self.to_dict()["headline"]

    def brief(self) -> str:
        """A few words for run lists (:func:`brief`)."""
        return brief(self.to_dict())


def headline(result: dict) -> str:
    """One line for people, from :meth:`CEResult.to_dict` (without its headline)."""
    short = result.get("short")
    lead = ""
    if short:
        hours = short["t_s"] / SECONDS_PER_HOUR
        lead = f"Short at cycle {short['cycle']} ({short['criterion'].replace('_', ' ')} at {hours:.4g} h: "
        lead += f"{short['detail']}); "
    if result["protocol"] == "reservoir":
        return lead + _reservoir_headline(result["reservoir"])
    rows = [r for r in result["cycles"] if r.get("ce_percent") is not None and "incomplete" not in r["flags"]]
    if not rows:
        return lead + "No complete cycle in the data" + ("" if short else " (no short)")
    body = _full_cell_headline(result, rows) if result["protocol"] == "fullcell" else _cycling_headline(result, rows)
    return lead + body + ("" if short else "; no short")


def brief(result: dict) -> str:
    """A few words for run lists, from :meth:`CEResult.to_dict`: 'reservoir CE 98.93 %', 'mean CE 99.12 % over 25
    cycles', 'retention 95.1 % at cycle 100', with ', short at cycle 7' when a short ended the test."""
    short = result.get("short")
    tail = f", short at cycle {short['cycle']}" if short else ""
    if result["protocol"] == "reservoir":
        r = result.get("reservoir")
        ce = None if not r else r["ce_percent"]
        return (f"reservoir CE {ce:.2f} %" if ce is not None else "reservoir CE incomplete") + tail
    rows = [r for r in result["cycles"] if r.get("ce_percent") is not None and "incomplete" not in r["flags"]]
    if not rows:
        return "no complete cycle" + tail
    if result["protocol"] == "fullcell" and result["retention_percent"] is not None:
        return f"retention {result['retention_percent']:.3g} % at cycle {rows[-1]['cycle']}" + tail
    return f"mean CE {result['mean_ce_percent']:.2f} % over {counted(len(rows), 'cycle')}" + tail


def _cycling_headline(result: dict, rows: list[dict]) -> str:
    first = rows[0]
    text = (f"{counted(len(rows), 'cycle')}: mean CE {result['mean_ce_percent']:.2f} %, "
            f"last CE {result['last_ce_percent']:.2f} %")
    plating, stripping = first["plating_overpotential_mV"], first["stripping_overpotential_mV"]
    if plating is not None and stripping is not None:
        text += f"; plating/stripping overpotential {plating:.3g}/{stripping:.3g} mV at cycle {first['cycle']}"
    lower = sum("ce_lower_bound" in r["flags"] for r in rows)
    above = sum("ce_above_100" in r["flags"] for r in rows)
    if lower:
        text += f"; {lower} cycles ended by time (CE lower bound)"
    if above:
        text += f"; {above} cycles above 100 %"
    return text


def _full_cell_headline(result: dict, rows: list[dict]) -> str:
    last = rows[-1]
    grams = last.get("discharge_mAh_g")
    capacity = f"{grams:.4g} mAh/g" if grams is not None else f"{last['discharge_mAh_cm2']:.4g} mAh/cm²"
    text = f"{len(rows)} cycles: discharge {capacity} at cycle {last['cycle']}"
    if result["retention_percent"] is not None:
        text += f", retention {result['retention_percent']:.3g} % of cycle {result['reference_cycle']}"
        if result["fade_percent_per_cycle"] is not None:
            text += f" ({result['fade_percent_per_cycle']:.3g} %/cycle)"
    return text + f"; mean CE {result['mean_ce_percent']:.2f} %"


def _reservoir_headline(r: dict | None) -> str:
    if not r or r["ce_percent"] is None:
        done = r["n"] if r else 0
        return f"Reservoir CE incomplete: no final strip in the data ({done} cycles done)"
    text = (
        f"Reservoir CE = {r['ce_percent']:.2f} % (n = {r['n']}, Q_c = {_g(r['Q_c_mAh_cm2'])} mAh/cm², "
        f"Q_T = {_g(r['Q_T_mAh_cm2'])} mAh/cm², Q_S = {_g(r['Q_S_mAh_cm2'])} mAh/cm²)"
    )
    if r["initial_ce_percent"] is not None:
        text += f"; initial CE {r['initial_ce_percent']:.3g} %"
    if "lower_bound" in r["flags"]:
        text += "; a lower bound: the final strip ended by time"
    if "suspect_short" in r["flags"]:
        text += (
            "; suspect short: the final strip never reached the cutoff and passed more than Q_T plus the "
            "formation lithium"
        )
    return text


_HALF_COLUMNS = [
    ("cycle", "cycle"),
    ("phase", "phase"),
    ("plate_mAh_cm2", "plated (mAh/cm²)"),
    ("strip_mAh_cm2", "stripped (mAh/cm²)"),
    ("ce_percent", "CE (%)"),
    ("plating_overpotential_mV", "plating η (mV)"),
    ("stripping_overpotential_mV", "stripping η (mV)"),
    ("nucleation_overpotential_mV", "nucleation η (mV)"),
    ("plate_end", "plate end"),
    ("strip_end", "strip end"),
    ("flags", "flags"),
]
_FULL_COLUMNS = [
    ("cycle", "cycle"),
    ("charge_mAh_cm2", "charge (mAh/cm²)"),
    ("discharge_mAh_cm2", "discharge (mAh/cm²)"),
    ("charge_mAh_g", "charge (mAh/g)"),
    ("discharge_mAh_g", "discharge (mAh/g)"),
    ("ce_percent", "CE (%)"),
    ("mean_charge_V", "mean charge V (V)"),
    ("mean_discharge_V", "mean discharge V (V)"),
    ("retention_percent", "retention (%)"),
    ("fade_percent_per_cycle", "fade (%/cycle)"),
    ("charge_end", "charge end"),
    ("discharge_end", "discharge end"),
    ("flags", "flags"),
]
_FORMATS = {
    "ce_percent": ".2f",
    "retention_percent": ".2f",
    "fade_percent_per_cycle": ".3g",
    "mean_charge_V": ".4g",
    "mean_discharge_V": ".4g",
}
SHOWN_ROWS = 10  # a long table shows its first and last 10 rows


def table(result: dict, *, all_rows: bool = False) -> tuple[list[str], list[list[str]]]:
    """Column headers (with units) and text cells of the per-cycle table of a :meth:`CEResult.to_dict`; a long
    table keeps its first and last rows around an ellipsis row unless ``all_rows``."""
    columns = _FULL_COLUMNS if result["protocol"] == "fullcell" else _HALF_COLUMNS
    if result["protocol"] == "cycling":
        columns = [c for c in columns if c[0] != "phase"]
    if result["protocol"] == "fullcell" and not result["limits"]["cathode_mass_mg"]:
        columns = [c for c in columns if not c[0].endswith("_mAh_g")]
    rows = result["cycles"]
    cells = [[_cell(key, row.get(key)) for key, _ in columns] for row in rows]
    if not all_rows and len(cells) > 2 * SHOWN_ROWS + 1:
        cells = [*cells[:SHOWN_ROWS], ["…"] * len(columns), *cells[-SHOWN_ROWS:]]
    return [header for _, header in columns], cells


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(value)
    if isinstance(value, float):
        return format(value, _FORMATS.get(key, ".4g"))
    return str(value)


def _g(x: float | None) -> str:
    return "?" if x is None else f"{x:.3g}"


def _plain(obj: Any) -> Any:
    """Tuples as lists, recursively, for JSON."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


