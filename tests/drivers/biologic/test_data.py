"""BL_GetData blocks worked out by hand from the documented SP-200 (VMP-300 family) column layouts.

Singles are written as their IEEE-754 bits, each decoded in its comment (sign | exponent - 127 | 1.mantissa):
0x3F800000 = +2^0·1.0 = 1.0, 0x40200000 = 2^1·1.25 = 2.5, 0x40600000 = 2^1·1.75 = 3.5,
0x41480000 = 2^3·1.5625 = 12.5, 0x447A0000 = 2^9·1.953125 = 1000, 0x3C000000 = 2^-7 = 0.0078125,
0x3A800000 = 2^-10 = 0.0009765625, 0xBF000000 = -2^-1 = -0.5, 0xBA800000 = -2^-10, 0x3F000000 = 0.5.
Times: StartTime + TimeBase·(t_high·2^32 + t_low).
"""

from __future__ import annotations

import cmath
import math

import pytest

from labctl.drivers.biologic.data import (
    BiasRow,
    DataBlock,
    ImpedanceRow,
    OCVRow,
    StepRow,
    bit_cast,
    counter_time,
    parse,
)

OCV, PEIS, GEIS, LOOP, CPLIMIT, CALIMIT = 100, 104, 107, 150, 155, 157
TB = 2.0**-15  # a time base exact in binary: 32768 counts = 1 s


def block(technique_id: int, process: int, cols: int, *rows: list[int], start: float = 100.0) -> DataBlock:
    words = tuple(w for row in rows for w in row)
    return DataBlock(technique_id, process, len(rows), cols, words, start_time_s=start, time_base_s=TB)


@pytest.mark.parametrize(("word", "value"), [
    (0x3F800000, 1.0), (0x40200000, 2.5), (0x447A0000, 1000.0), (0xBF000000, -0.5), (0x00000000, 0.0),
    (0x80000000, -0.0), (0x3C000000, 0.0078125),
])  # fmt: skip
def test_bit_cast(word, value):
    assert bit_cast(word) == value and math.copysign(1.0, bit_cast(word)) == math.copysign(1.0, value)


def test_bit_cast_nan_and_infinity():
    assert math.isnan(bit_cast(0x7FC00000)) and bit_cast(0x7F800000) == math.inf


def test_64_bit_counter_time():
    """t_high carries the counter past 2^32: 24 µs · (2^32 + 16) = 103079.215488 s after a 10 s start."""
    assert counter_time(1, 16, 10.0, 24e-6) == pytest.approx(10.0 + 24e-6 * 4294967312, rel=1e-15)
    assert counter_time(1, 16, 10.0, 24e-6) == pytest.approx(103089.215488, rel=1e-12)
    assert counter_time(0, 0x8000, 100.0, TB) == 101.0
    assert counter_time(0xFFFFFFFF, 0xFFFFFFFF, 0.0, 1.0) == 2.0**64 - 1


def test_ocv_rows():
    rows = parse(block(OCV, 0, 3, [0, 0x8000, 0x40600000], [0, 0x10000, 0x40200000]))
    assert rows == [OCVRow(101.0, 3.5), OCVRow(102.0, 2.5)]


@pytest.mark.parametrize("technique", [CPLIMIT, CALIMIT])
def test_step_rows(technique):
    """t_high, t_low, Ewe, I, cycle: 3.5 V at +2^-10 A in cycle 0, then 2.5 V at -2^-10 A in cycle 2."""
    rows = parse(block(technique, 0, 5, [0, 0, 0x40600000, 0x3A800000, 0], [1, 0, 0x40200000, 0xBA800000, 2]))
    assert rows == [StepRow(100.0, 3.5, 2.0**-10, 0), StepRow(100.0 + TB * 2**32, 2.5, -(2.0**-10), 2)]


@pytest.mark.parametrize("technique", [PEIS, GEIS])
def test_eis_process_0_rows(technique):
    """The DC step before the sweep: t_high, t_low, Ewe, I."""
    assert parse(block(technique, 0, 4, [0, 0x18000, 0x3F800000, 0x00000000])) == [BiasRow(103.0, 1.0, 0.0)]


@pytest.mark.parametrize("technique", [PEIS, GEIS])
def test_eis_process_1_rows_give_impedance(technique):
    """freq 1000 Hz, |Ewe| 2^-7 V, |I| 2^-10 A, phase -0.5 rad -> |Z| = 8 Ω at -0.5 rad; Ewe 3.5 V, I 0, t 12.5 s.
    Columns 6, 11 and 12 are unused; 7..10 (|Ece|, |Ice|, Phase_Zce, Ece) are not read."""
    row = [0x447A0000, 0x3C000000, 0x3A800000, 0xBF000000, 0x40600000, 0, 0, 0x3F000000, 0x3A800000, 0, 0x3F000000,
           0, 0, 0x41480000]  # fmt: skip
    (r,) = parse(block(technique, 1, 14, row))
    assert isinstance(r, ImpedanceRow)
    assert (r.freq_Hz, r.ewe_amplitude_V, r.i_amplitude_A, r.phase_rad) == (1000.0, 0.0078125, 2.0**-10, -0.5)
    assert (r.ewe_V, r.i_A, r.time_s) == (3.5, 0.0, 12.5)
    assert r.z_ohm == pytest.approx(complex(8 * math.cos(0.5), -8 * math.sin(0.5)), rel=1e-15)
    assert abs(r.z_ohm) == pytest.approx(8.0) and cmath.phase(r.z_ohm) == pytest.approx(-0.5)


def test_zero_current_amplitude_gives_no_impedance():
    row = [0x447A0000, 0x3C000000, 0, 0xBF000000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x41480000]
    (r,) = parse(block(PEIS, 1, 14, row))
    assert math.isnan(r.z_ohm.real) and math.isnan(r.z_ohm.imag)


def test_a_full_buffer_of_rows():
    """200 CPLIMIT rows of 5 words fill the 1000-word buffer; row n at n seconds."""
    rows = parse(block(CPLIMIT, 0, 5, *([0, 0x8000 * n, 0x40600000, 0x3A800000, 1] for n in range(200)), start=0.0))
    assert len(rows) == 200 and rows[199] == StepRow(199.0, 3.5, 2.0**-10, 1)


def test_empty_blocks_and_loop():
    assert parse(DataBlock(LOOP, 0, 0, 0, (), 0.0, TB)) == []
    assert parse(DataBlock(OCV, 0, 0, 3, (), 0.0, TB)) == []


def test_the_dll_conversion_can_be_passed():
    seen = []

    def single(word: int) -> float:
        seen.append(word)
        return 42.0

    assert parse(block(OCV, 0, 3, [0, 0, 0x12345678]), single=single) == [OCVRow(100.0, 42.0)]
    assert seen == [0x12345678]


def test_vmp3_ocv_layout_is_refused():
    """The VMP3 family adds Ece (4 columns); the SP-200 has 3."""
    expected = r"OCV \(100\), process 0: rows of 4 words, the SP-200 layout has 3 \(t_high, t_low, Ewe\)"
    with pytest.raises(ValueError, match=expected):
        parse(block(OCV, 0, 4, [0, 0, 0x3F800000, 0x3F800000]))


def test_vmp3_peis_layout_is_refused():
    with pytest.raises(ValueError, match="PEIS .*rows of 15 words, the SP-200 layout has 14"):
        parse(block(PEIS, 1, 15, [0] * 15))


def test_blocks_that_cannot_be_parsed():
    with pytest.raises(ValueError, match="201 rows × 5 columns do not fit the 1000-word buffer"):
        parse(DataBlock(CPLIMIT, 0, 201, 5, (0,) * 1005, 0.0, TB))
    with pytest.raises(ValueError, match="-1 rows"):
        parse(DataBlock(CPLIMIT, 0, -1, 5, (), 0.0, TB))
    with pytest.raises(ValueError, match="4 words for 1 rows × 5 columns"):
        parse(DataBlock(CPLIMIT, 0, 1, 5, (0, 0, 0, 0), 0.0, TB))
    with pytest.raises(ValueError, match=r"technique ID \(103\), process 0: no layout"):
        parse(block(103, 0, 5, [0] * 5))  # CV: not built by labctl
    with pytest.raises(ValueError, match=r"PEIS \(104\), process 2: no layout"):
        parse(block(PEIS, 2, 4, [0] * 4))
    with pytest.raises(ValueError, match="LOOP .*no layout.*LOOP has no rows"):
        parse(block(LOOP, 0, 1, [0]))
    with pytest.raises(ValueError, match="a word outside 0..2"):
        parse(block(OCV, 0, 3, [0, 0, 2**32]))
