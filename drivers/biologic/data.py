"""BL_GetData blocks -> rows in SI units, by technique ID and process index (SP-200, VMP-300 family layouts).

One BL_GetData call fills at most 1000 32-bit words: NbRows rows of NbCols words. A float is an IEEE-754 single
whose bits are the word (what BL_ConvertNumericIntoSingle undoes); a time is two words counting the channel's
time base (``TCurrentValues.TimeBase``, s) from the technique's ``TDataInfos.StartTime`` (s):
``time = StartTime + TimeBase·(t_high·2^32 + t_low)``.

Columns (VMP-300 family, no ``xctr`` extras):

- OCV: t_high, t_low, Ewe
- CPLIMIT, CALIMIT: t_high, t_low, Ewe, I, cycle
- PEIS/GEIS process 0 (the DC step before the sweep): t_high, t_low, Ewe, I
- PEIS/GEIS process 1, a row per frequency: freq, |Ewe|, |I|, Phase_Zwe, Ewe, I, -, |Ece|, |Ice|, Phase_Zce, Ece,
  -, -, t (the VMP3 family adds I_Range: 15 columns, not parsed here)
- LOOP: no rows

Units: V, A, Hz, s; Z = |Ewe|/|I|·e^(jφ) in Ω.

Unconfirmed (BioLogic's own kbio layer shows only the OCV and CP layouts and the counter time):

- The CPLIMIT/CALIMIT rows being CP's, and both PEIS/GEIS layouts (easy-biologic, ISIS EPICS-ECLab and NRCan's
  wrapper agree); StartTime being added to the counter time (BioLogic's C++ example, a copy not traced to a
  repository, and the wrappers do).
- Phase_Zwe is in radians (public wrappers feed it to cos/sin as is; the manual's unit was not seen), and
  Z = |Z|·e^(+jφ), so a capacitive point has φ < 0 and Im Z < 0.
- Process 1's ``t`` is a single in s on the same clock as StartTime + TimeBase·count (ISIS EPICS-ECLab and the
  NRCan wrapper use it so); it is not offset by StartTime here.
- SP-200 channels report IEEE floats (``TChannelInfos.FloatFormat`` = 1 in the 2013 C header); for a channel that
  does not, pass ``single=EClib.convert_numeric_into_single`` so the DLL converts.
- ``cycle`` is an unsigned count; easy-biologic reads a NaN StartTime as 0, which labctl does not.
"""

from __future__ import annotations

import cmath
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from labctl.drivers.biologic.techniques import CALIMIT, CPLIMIT, GEIS, LOOP, OCV, PEIS, TECHNIQUES

BUFFER_WORDS = 1000  # TDataBuffer: uint32[1000]
_U32 = struct.Struct("<I")
_F32 = struct.Struct("<f")


def bit_cast(word: int) -> float:
    """The IEEE-754 single whose bits are ``word`` (0x3F800000 -> 1.0)."""
    return _F32.unpack(_U32.pack(word))[0]


def counter_time(t_high: int, t_low: int, start_time_s: float, time_base_s: float) -> float:
    """Seconds of a row's 64-bit counter: start + time base · (t_high·2^32 + t_low)."""
    return start_time_s + time_base_s * (t_high << 32 | t_low)


@dataclass(frozen=True)
class DataBlock:
    """What one BL_GetData call returned: the ``rows``·``cols`` words and what ``TDataInfos`` and
    ``TCurrentValues`` say about them."""

    technique_id: int
    process_index: int
    rows: int
    cols: int
    words: tuple[int, ...]
    start_time_s: float
    time_base_s: float
    technique_index: int = 0  # which of the loaded techniques, in load order
    loop: int = 0


@dataclass(frozen=True)
class OCVRow:
    time_s: float
    ewe_V: float


@dataclass(frozen=True)
class StepRow:
    """A CPLIMIT/CALIMIT row."""

    time_s: float
    ewe_V: float
    i_A: float
    cycle: int


@dataclass(frozen=True)
class BiasRow:
    """A PEIS/GEIS process-0 row: the DC step before the sweep."""

    time_s: float
    ewe_V: float
    i_A: float


@dataclass(frozen=True)
class ImpedanceRow:
    """A PEIS/GEIS process-1 row: one frequency of the sweep. ``z_ohm`` is nan+nanj when |I| is 0."""

    freq_Hz: float
    ewe_amplitude_V: float
    i_amplitude_A: float
    phase_rad: float
    ewe_V: float
    i_A: float
    time_s: float
    z_ohm: complex


Row = OCVRow | StepRow | BiasRow | ImpedanceRow
Single = Callable[[int], float]


def _ocv(b: DataBlock, w: Sequence[int], single: Single) -> OCVRow:
    return OCVRow(counter_time(w[0], w[1], b.start_time_s, b.time_base_s), single(w[2]))


def _step(b: DataBlock, w: Sequence[int], single: Single) -> StepRow:
    return StepRow(counter_time(w[0], w[1], b.start_time_s, b.time_base_s), single(w[2]), single(w[3]), w[4])


def _bias(b: DataBlock, w: Sequence[int], single: Single) -> BiasRow:
    return BiasRow(counter_time(w[0], w[1], b.start_time_s, b.time_base_s), single(w[2]), single(w[3]))


def _impedance(_b: DataBlock, w: Sequence[int], single: Single) -> ImpedanceRow:
    freq, ewe_amp, i_amp, phase = (single(x) for x in w[:4])
    z = ewe_amp / i_amp * cmath.exp(1j * phase) if i_amp else complex(math.nan, math.nan)
    return ImpedanceRow(freq, ewe_amp, i_amp, phase, single(w[4]), single(w[5]), single(w[13]), z)


# (technique ID, process index) -> (columns, their names for messages, row maker)
_LAYOUTS: dict[tuple[int, int], tuple[int, str, Callable[[DataBlock, Sequence[int], Single], Row]]] = {
    (OCV.tech_id, 0): (3, "t_high, t_low, Ewe", _ocv),
    (CPLIMIT.tech_id, 0): (5, "t_high, t_low, Ewe, I, cycle", _step),
    (CALIMIT.tech_id, 0): (5, "t_high, t_low, Ewe, I, cycle", _step),
    **{(t.tech_id, 0): (4, "t_high, t_low, Ewe, I", _bias) for t in (PEIS, GEIS)},
    **{(t.tech_id, 1): (14, "freq, |Ewe|, |I|, Phase_Zwe, Ewe, I, -, |Ece|, |Ice|, Phase_Zce, Ece, -, -, t",
                        _impedance) for t in (PEIS, GEIS)},
}  # fmt: skip


def parse(block: DataBlock, single: Single = bit_cast) -> list[Row]:
    """The rows of one BL_GetData block, in SI units; ValueError if the block does not have its technique's
    SP-200 layout. ``single`` turns a float's word into its value (the DLL's own conversion may be passed)."""
    technique = TECHNIQUES.get(block.technique_id)
    what = f"BL_GetData block of {technique.name if technique else 'technique ID'} ({block.technique_id}), " \
           f"process {block.process_index}"
    if not (0 <= block.rows and 0 <= block.cols and block.rows * block.cols <= BUFFER_WORDS):
        raise ValueError(f"{what}: {block.rows} rows × {block.cols} columns do not fit the {BUFFER_WORDS}-word buffer; "
                         f"the data are corrupt")
    if len(block.words) != block.rows * block.cols:
        raise ValueError(f"{what}: {len(block.words)} words for {block.rows} rows × {block.cols} columns")
    if any(not 0 <= w < 2**32 for w in block.words):
        raise ValueError(f"{what}: a word outside 0..2^32-1; give the buffer's uint32 words")
    if block.rows == 0:
        return []
    layout = _LAYOUTS.get((block.technique_id, block.process_index))
    if layout is None:
        known = ", ".join(t.name for t in TECHNIQUES.values() if t is not LOOP)
        raise ValueError(f"{what}: no layout for it; labctl parses {known} (PEIS/GEIS processes 0 and 1), "
                         f"and LOOP has no rows")
    cols, names, row = layout
    if block.cols != cols:
        raise ValueError(f"{what}: rows of {block.cols} words, the SP-200 layout has {cols} ({names}); "
                         f"xctr extra columns and VMP3-family layouts are not parsed")
    w = block.words
    return [row(block, w[r * cols:(r + 1) * cols], single) for r in range(block.rows)]
