"""EC-Lab's .mpr and .mpt readers on real files (fixtures/eclab/README.md): each reads; an .mpr and EC-Lab's export of
it give the same rows; galvani, batterydf and impedance.py, read the same values (independent readers used as
oracles, in the tests only: galvani is GPL); damaged and foreign files are refused by name."""

from __future__ import annotations

import struct
from datetime import datetime
from pathlib import Path

import bdf
import numpy as np
import pytest
from galvani import BioLogic
from impedance.preprocessing import readBioLogic
from numpy.testing import assert_allclose

from labctl.imports.eclab import read_mpr, read_mpt
from labctl.imports.formats import format_of
from labctl.imports.imported import FormatError, Imported

FIXTURES = Path(__file__).parent / "fixtures" / "eclab"
MPR = sorted(FIXTURES.glob("*.mpr"))
MPT = sorted(FIXTURES.glob("*.mpt"))
PAIRS = sorted(p.stem for p in MPT)  # every .mpt kept is EC-Lab's export of the .mpr beside it
T, V, A, UNIX = "Test Time / s", "Voltage / V", "Current / A", "Unix Time / s"
CYCLE, QC, QD = "Cycle Count / 1", "Charging Capacity / Ah", "Discharging Capacity / Ah"
FLOAT32 = {"rtol": 2e-7, "atol": 1e-12}  # an .mpr keeps most values as float32; its export prints 8 digits


def read(path: Path) -> Imported:
    return read_mpr(path) if path.suffix == ".mpr" else read_mpt(path)


def points(imported: Imported) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and impedances of all its spectra, in order."""
    pairs = [p for s in imported.spectra for p in s.points]
    return np.array([f for f, _ in pairs]), np.array([z for _, z in pairs])


@pytest.mark.parametrize("path", MPR + MPT, ids=lambda p: p.name)
def test_every_fixture_reads(path):
    imported = read(path)
    assert imported.format == f"eclab-{path.suffix[1:]}" == format_of(path).name
    assert imported.instrument["make"] == "BioLogic"
    assert imported.series is not None or imported.spectra
    if imported.series is not None:
        assert list(imported.series.columns[:3]) == [T, V, A]
        assert_allclose(imported.series[UNIX], imported.started_at.timestamp() + imported.series[T])


@pytest.mark.parametrize("stem", PAIRS)
def test_an_mpr_and_its_export_give_the_same_rows(stem):
    binary, text = read_mpr(FIXTURES / f"{stem}.mpr"), read_mpt(FIXTURES / f"{stem}.mpt")
    assert binary.started_at == text.started_at and binary.area_cm2 == pytest.approx(text.area_cm2)
    if text.series is not None:
        shared = [c for c in text.series.columns if c in binary.series.columns]
        assert {T, V, A} <= set(shared)
        for column in shared:
            assert_allclose(binary.series[column], text.series[column], **FLOAT32, err_msg=column)
    assert [(s.cycle, s.step, len(s.points)) for s in binary.spectra] == \
        [(s.cycle, s.step, len(s.points)) for s in text.spectra]
    for a, b in zip(points(binary), points(text), strict=True):
        assert_allclose(a, b, **FLOAT32)


@pytest.mark.parametrize("path", MPR, ids=lambda p: p.name)
def test_mpr_values_are_galvanis(path):
    mpr = BioLogic.MPRfile(str(path))
    data, names = mpr.data, mpr.data.dtype.names
    imported = read_mpr(path)
    assert imported.started_at.replace(tzinfo=None) == mpr.timestamp
    impedance = data["freq/Hz"] > 0 if "freq/Hz" in names else np.zeros(len(data), dtype=bool)
    if imported.series is not None:
        rows = data[~impedance]
        assert_allclose(imported.series[T], rows["time/s"])
        assert_allclose(imported.series[V], rows[next(n for n in ("Ewe/V", "<Ewe>/V") if n in names)])
        for current in ("I/mA", "<I>/mA"):
            if current in names:
                assert_allclose(imported.series[A], rows[current] / 1000)
                break
    if not impedance.any():
        return
    frequency, z = points(imported)
    rows = data[impedance]
    assert_allclose(frequency, rows["freq/Hz"])
    if "Re(Z)/Ohm" in names:
        assert_allclose(z.real, rows["Re(Z)/Ohm"], **FLOAT32)
        assert_allclose(z.imag, -rows["-Im(Z)/Ohm"], **FLOAT32)
    else:  # a Modulo Bat records |Z| and its phase only
        assert_allclose(abs(z), rows["|Z|/Ohm"], **FLOAT32)
        assert_allclose(np.degrees(np.angle(z)), rows["Phase(Z)/deg"], rtol=1e-5)


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # batterydf's, under pandas 3
@pytest.mark.parametrize("stem", ["v1150_GCPL", "v1150_CA"])
def test_mpt_values_are_batterydfs(stem):
    path = FIXTURES / f"{stem}.mpt"
    theirs, ours = bdf.read(path), read_mpt(path).series
    for column in (T, V, A, CYCLE):
        assert_allclose(ours[column], theirs[column], rtol=1e-12, err_msg=column)


def test_peis_is_impedance_pys_and_its_capacitive_arc_is_below_zero():
    frequency, z = readBioLogic(str(FIXTURES / "exampleDataBioLogic.mpt"))
    for imported in (read_mpt(FIXTURES / "exampleDataBioLogic.mpt"), read_mpr(FIXTURES / "exampleDataBioLogic.mpr")):
        ours_f, ours_z = points(imported)
        assert_allclose(ours_f, frequency, **FLOAT32)
        assert_allclose(ours_z, z, **FLOAT32)
        assert imported.series is None and len(imported.spectra) == 1
        assert (ours_z.imag[ours_f < 10] < 0).all()  # the arc below 10 Hz: capacitive, Z'' < 0


def test_spectra_split_by_cycle_and_sweep_not_by_z_cycle():
    peis = read_mpr(FIXTURES / "v1150_PEIS.mpr")
    assert [(s.index, s.cycle, len(s.points)) for s in peis.spectra] == [(k, k, 21) for k in (1, 2, 3, 4)]
    assert all(np.median([z.imag for _, z in s.points]) < 0 for s in peis.spectra)
    modulo_bat = read_mpr(FIXTURES / "v1150_MB.mpr")  # its z cycle falls back to 0 in the 4th sweep
    assert [len(s.points) for s in modulo_bat.spectra] == [13] * 16
    assert len(modulo_bat.series) + 16 * 13 == len(BioLogic.MPRfile(str(FIXTURES / "v1150_MB.mpr")).data)
    assert all(s.points[0][0] > s.points[-1][0] for s in modulo_bat.spectra)  # each sweep from high to low


def test_ec_labs_export_rules_give_current_and_counters_where_the_mpr_has_none():
    gcpl = read_mpr(FIXTURES / "v1150_GCPL.mpr")  # dq but no current column; Q charge/discharge, no Q charge
    assert any("dq" in note for note in gcpl.notes)
    assert set(np.round(gcpl.series[A].to_numpy() * 1e6)) >= {-30.0, 0.0, 30.0}  # ±30 µA and rests
    for counter in (QC, QD):
        assert (np.diff(gcpl.series[counter]) >= 0).all()  # cumulative, as BDF counts
    assert gcpl.series[QC].iloc[-1] == pytest.approx(4 * 0.030e-3 * 10 / 3600, rel=0.02)  # 4 charges of 30 µA, 10 s
    ocv = read_mpr(FIXTURES / "v1150_OCV.mpr")  # neither current nor dq: at rest (mode 3)
    assert (ocv.series[A] == 0).all()


def test_start_area_and_what_the_file_says_of_itself():
    gcpl = read_mpt(FIXTURES / "v1150_GCPL.mpt")
    assert gcpl.started_at.replace(tzinfo=None) == datetime(2024, 1, 10, 11, 2, 29, 886000)
    assert gcpl.area_cm2 is None  # "0,000 cm²": not set
    assert gcpl.instrument == {"make": "BioLogic", "model": "SP-300", "serial": "1854", "channel": "1",
                               "software": "EC-Lab 11.50"}
    assert gcpl.header["technique"] == "Galvanostatic Cycling with Potential Limitation"
    peis = read_mpr(FIXTURES / "PEIS-0.mpr")
    assert peis.area_cm2 == pytest.approx(1.539, rel=1e-6)
    assert peis.header["technique"] == "PEIS" and peis.header["comments"].startswith("coin cell")
    windows_1252 = read_mpt(FIXTURES / "exampleDataBioLogic.mpt")
    assert windows_1252.area_cm2 == pytest.approx(0.001) and "Cs/µF" in windows_1252.header["columns"]


def rewritten_data_module(path: Path, out: Path, version: int, id_type: str, offset: int) -> Path:
    """``path`` (old header, data module version 2) with its data module laid out as ``version`` is."""
    raw = path.read_bytes()
    start = raw.index(b"MODULEVMP data")
    length, _ = struct.unpack_from("<II", raw, start + 6 + 35)
    data = raw[start + 6 + 51:start + 6 + 51 + length]
    n = data[4]
    ids = np.frombuffer(data, "<u2", count=n, offset=5).astype(id_type).tobytes()
    head = (data[:5] + ids).ljust(offset, b"\0")
    new = head + data[405:]
    header = raw[start:start + 6 + 35] + struct.pack("<II", len(new), version) + raw[start + 6 + 43:start + 6 + 51]
    out.write_bytes(raw[:start] + header + new + raw[start + 6 + 51 + length:])
    return out


@pytest.mark.parametrize(("version", "id_type", "offset"), [(0, "u1", 100), (3, "<u2", 406)])
def test_data_module_versions_0_and_3_read_as_2_does(tmp_path, version, id_type, offset):
    source = FIXTURES / "exampleDataBioLogic.mpr"
    other = read_mpr(rewritten_data_module(source, tmp_path / "other.mpr", version, id_type, offset))
    assert other.header["modules"][1] == {"name": "VMP data", "version": version, "date": "02/04/18"}
    for a, b in zip(points(other), points(read_mpr(source)), strict=True):
        assert_allclose(a, b)


def with_column_ids(path: Path, out: Path, ids: dict[int, int]) -> Path:
    """``path`` (data module version 2) with some column IDs replaced: old ID -> new."""
    raw = bytearray(path.read_bytes())
    start = raw.index(b"MODULEVMP data") + 6 + 51
    n = raw[start + 4]
    for k in range(n):
        at = start + 5 + 2 * k
        (cid,) = struct.unpack_from("<H", raw, at)
        struct.pack_into("<H", raw, at, ids.get(cid, cid))
    out.write_bytes(bytes(raw))
    return out


def test_one_unknown_column_is_skipped_by_its_size_two_are_refused_by_id(tmp_path):
    source = FIXTURES / "exampleDataBioLogic.mpr"
    one = read_mpr(with_column_ids(source, tmp_path / "one.mpr", {169: 250}))  # Cs/µF, 4 bytes
    assert any("column ID 250" in note for note in one.notes)
    assert_allclose(points(one)[1], points(read_mpr(source))[1])
    two = with_column_ids(source, tmp_path / "two.mpr", {169: 250, 172: 251})
    with pytest.raises(FormatError, match=r"two\.mpr: column IDs \[250, 251\] are unknown"):
        read_mpr(two)


def damaged(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_damaged_and_foreign_files_are_refused_naming_what_was_expected(tmp_path):
    mpr = (FIXTURES / "v1150_CA.mpr").read_bytes()
    mpt = (FIXTURES / "v1150_CA.mpt").read_bytes()
    cases = [
        (read_mpr, "cut.mpr", mpr[: len(mpr) // 2], r"cut\.mpr: truncated \.mpr: module 'VMP data' has"),
        (read_mpr, "tail.mpr", mpr[:-7], r"tail\.mpr: truncated \.mpr: module 'VMP loop'"),
        (read_mpr, "magic.mpr", b"X" + mpr[1:], r"magic\.mpr: not an EC-Lab \.mpr file"),
        (read_mpr, "module.mpr", mpr.replace(b"MODULEVMP LOG", b"MODULXVMP LOG"), r"expected a module at byte"),
        (read_mpr, "ca.csv", mpr, r"ca\.csv: expected an EC-Lab \.mpr file \(\.mpr\), not a \.csv"),
        (read_mpr, "empty.mpr", b"", r"empty\.mpr: empty file; expected an EC-Lab \.mpr file"),
        (read_mpt, "empty.mpt", b"", r"empty\.mpt: empty file"),
        (read_mpt, "kA.mpt", mpt.replace(b"\t<I>/mA\t", b"\t<I>/kA\t"),
         r"kA\.mpt: column '<I>/kA': unit 'kA' is not one labctl knows for a current"),
        (read_mpt, "cut.mpt", mpt[: len(mpt) - 40], r"cut\.mpt: line 152 has \d+ values for its 27 columns"),
        (read_mpt, "short.mpt", b"\r\n".join(mpt.split(b"\r\n")[:30]), r"it says 72 header lines but has 30"),
        (read_mpt, "other.mpt", b"Record\tTime\n1\t2\n", r"other\.mpt: not an EC-Lab text export"),
        (read_mpt, "ca.mpr", mpt, r"ca\.mpr: expected an EC-Lab text export"),
    ]
    for reader, name, content, message in cases:
        with pytest.raises(FormatError, match=message):
            reader(damaged(tmp_path, name, content))
