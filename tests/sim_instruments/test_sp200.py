"""The SP-200 channel emulator runs EClib techniques on the shared virtual cells and clock.

Expected values come from the cells' own physics (an identical twin cell driven by hand), from the documented
technique semantics and data layouts (research/instruments.md §4: words per row, technique ids, error codes), and
from the emulator's stated EIS timing model, written out here.
"""

from __future__ import annotations

import cmath
import math

import pytest

from labctl.sim_instruments.arbin_channel import ArbinChannel
from labctl.sim_instruments.arbin_schedules import PremadeSchedule
from labctl.sim_instruments.catalog import make_cell
from labctl.sim_instruments.clock import VirtualClock
from labctl.sim_instruments.sp200 import RUN, STOP, DataChunk, SP200Channel
from labctl.sim_instruments.sp200_techniques import CellHeld, TechniqueRefused

AREA = 0.785
I_SET = 1e-4  # A: 0.13 mA/cm² on a Ø 10 mm pellet
E_BELOW, I_ABOVE = 0b00001, 0b1100101  # Test config: active, "<", Ewe / active, ">", |I|
NOISE_V = 2e-4  # the cells' voltage noise floor (measurement.py), V


def ocv(rest_s: float, every_s: float = 1.0) -> dict[str, object]:
    return {"Rest_time_T": rest_s, "Record_every_dE": 0.0, "Record_every_dT": every_s}


def cplimit(currents: list[float], durations: list[float], configs: list[int], values: list[float],
            exits: list[int]) -> dict[str, object]:
    return {"Current_step": currents, "vs_initial": [False] * len(currents), "Duration_step": durations,
            "Step_number": len(currents) - 1, "Record_every_dT": 10.0, "Record_every_dE": 0.0, "N_Cycles": 0,
            "I_Range": 7, "Test1_Config": configs, "Test1_Value": values, "Exit_Cond": exits}  # fmt: skip


def eis(name: str, initial_Hz: float = 1e5, final_Hz: float = 1.0, points: int = 11, **extra: object) -> dict:
    if name == "PEIS":
        level = {"vs_initial": True, "vs_final": True, "Initial_Voltage_step": 0.0, "Final_Voltage_step": 0.0,
                 "Record_every_dI": 0.0, "Amplitude_Voltage": 0.01}  # fmt: skip
    else:
        level = {"vs_initial": False, "vs_final": False, "Initial_Current_step": 0.0, "Final_Current_step": 0.0,
                 "Record_every_dE": 0.0, "Amplitude_Current": 1e-5, "I_Range": 7}  # fmt: skip
    return {**level, "Duration_step": 5.0, "Step_number": 0, "Record_every_dT": 1.0, "Final_frequency": final_Hz,
            "Initial_frequency": initial_Hz, "sweep": False, "Frequency_number": points, "Average_N_times": 2,
            "Correction": False, "Wait_for_steady": 0.1, **extra}  # fmt: skip


def channel(preset: str = "bare", seed: int = 0) -> tuple[VirtualClock, SP200Channel]:
    clock = VirtualClock()
    return clock, SP200Channel(clock, make_cell(preset, area_cm2=AREA, seed=seed))


def drain(ch: SP200Channel, max_words: int = 1000) -> list[DataChunk]:
    chunks = []
    while (chunk := ch.get_data(max_words)) is not None:
        chunks.append(chunk)
    return chunks


def rows_of(chunks: list[DataChunk], process: int = 0) -> list[tuple[float, ...]]:
    return [row for c in chunks if c.process_index == process for row in c.rows]


def test_cplimit_passes_the_set_current_at_the_cells_voltage_and_ends_on_its_ewe_limit():
    clock, ch = channel()
    twin = make_cell("bare", area_cm2=AREA)
    limit = 0.012  # below the start (ohmic + charge transfer + nucleation), above the end of the nucleation decay
    ch.load_technique("CPLIMIT", cplimit([I_SET, -I_SET], [1000.0, 20.0], [E_BELOW, 0], [limit, 0.0], [0, 0]),
                      first=True, last=True)
    ch.start()
    clock.advance(2000.0, stop_on_event=False)
    chunks = drain(ch)
    assert {(c.technique_id, c.process_index, c.words // len(c.rows)) for c in chunks} == {(155, 0, 5)}
    rows = rows_of(chunks)
    first = [r for r in rows if r[2] == I_SET]
    second = [r for r in rows if r[2] == -I_SET]
    assert first[0][1] == pytest.approx(twin.voltage(I_SET), abs=5 * NOISE_V)  # the cell's own voltage at I
    assert twin.voltage(I_SET) > I_SET * twin.bulk_resistance_ohm  # ... which includes the ohmic drop
    t_limit = first[-1][0]
    assert t_limit < 1000.0 and second[0][0] == t_limit  # the limit, not the duration, ended step 1
    assert ch.current_values().elapsed_s == pytest.approx(t_limit + 20.0)
    for _ in range(round(t_limit) - 1):  # 1 s substeps, as the clock took them
        twin.advance(I_SET, 1.0)
    assert twin.voltage(I_SET) > limit
    twin.advance(I_SET, 1.0)
    assert twin.voltage(I_SET) < limit


@pytest.mark.parametrize(("exit_cond", "ocv_rows"), [(1, [4]), (2, [])])
def test_exit_cond_goes_to_the_next_technique_or_stops(exit_cond, ocv_rows):
    clock, ch = channel()
    ch.load_technique("CPLIMIT", cplimit([I_SET, -I_SET], [1000.0, 20.0], [E_BELOW, 0], [0.012, 0.0],
                                         [exit_cond, 0]), first=True, last=False)
    ch.load_technique("OCV", ocv(3.0), first=False, last=True)
    ch.start()
    clock.advance(2000.0, stop_on_event=False)
    chunks = drain(ch)
    assert all(row[2] == I_SET for row in rows_of([c for c in chunks if c.technique_id == 155]))
    assert [len(c.rows) for c in chunks if c.technique_id == 100] == ocv_rows
    assert ch.state == STOP


def test_the_sequence_is_built_with_first_and_last_and_runs_from_stop():
    clock, ch = channel()
    with pytest.raises(TechniqueRefused) as nothing:
        ch.load_technique("OCV", ocv(1.0), first=False, last=True)
    assert nothing.value.code == -4
    with pytest.raises(TechniqueRefused) as loop_first:
        ch.load_technique("LOOP", {"loop_N_times": 1, "protocol_number": 0}, first=True, last=True)
    assert loop_first.value.code == -4
    ch.load_technique("OCV", ocv(10.0), first=True, last=False)
    with pytest.raises(TechniqueRefused) as open_sequence:
        ch.start()
    assert open_sequence.value.code == -6
    ch.load_technique("OCV", ocv(10.0), first=False, last=True)
    ch.start()
    assert ch.current_values().state == RUN
    with pytest.raises(TechniqueRefused) as running:
        ch.load_technique("OCV", ocv(1.0), first=True, last=True)
    assert running.value.code == -13
    clock.advance(30.0, stop_on_event=False)
    assert ch.current_values().state == STOP and ch.current_values().elapsed_s == pytest.approx(20.0)


def test_calimit_holds_the_voltage_and_ends_on_its_current_limit():
    clock, ch = channel()
    twin = make_cell("bare", area_cm2=AREA)
    hold, start_A = 0.02, twin.current_at(0.02)  # the current grows as the nucleation overpotential decays
    params = {"Voltage_step": [hold], "vs_initial": [False], "Duration_step": [1000.0], "Step_number": 0,
              "Record_every_dT": 5.0, "Record_every_dI": 0.0, "N_Cycles": 0, "Test1_Config": [I_ABOVE],
              "Test1_Value": [1.2 * start_A]}  # fmt: skip
    ch.load_technique("CALIMIT", params, first=True, last=True)
    ch.start()
    clock.advance(2000.0, stop_on_event=False)
    rows = rows_of(drain(ch))
    assert rows[0][2] == pytest.approx(start_A, rel=1e-9)
    assert all(r[1] == pytest.approx(hold, abs=5 * NOISE_V + 0.002 * hold) for r in rows)
    assert rows[-1][0] < 1000.0 and rows[-1][2] > 1.2 * start_A > rows[-2][2]
    assert ch.state == STOP and ch.current_values().i_A == 0.0 and ch.cell.bias_V is None


def test_ocv_records_every_dT_at_the_cells_open_circuit_voltage():
    clock, ch = channel("LCO|Ag|Li")
    ch.load_technique("OCV", ocv(10.0), first=True, last=True)
    ch.start()
    clock.advance(30.0, stop_on_event=False)
    chunks = drain(ch)
    assert [(c.technique_id, c.words // len(c.rows)) for c in chunks] == [(100, 3)]
    rows = rows_of(chunks)
    assert [r[0] for r in rows] == pytest.approx([float(t) for t in range(11)])
    ocv_V = ch.cell.voltage(0.0)
    assert all(r[1] == pytest.approx(ocv_V, abs=5 * (NOISE_V + 1e-4 * ocv_V)) for r in rows)


@pytest.mark.parametrize("name", ["PEIS", "GEIS"])
def test_eis_gives_the_cells_own_impedance_at_the_swept_frequencies_in_bench_time(name):
    clock, ch = channel("Ag")
    ch.load_technique(name, eis(name), first=True, last=True)
    ch.start()
    clock.advance(1000.0, stop_on_event=False)
    chunks = drain(ch)
    assert {(c.technique_id, c.process_index, c.words // len(c.rows)) for c in chunks} == {
        (104 if name == "PEIS" else 107, 0, 4), (104 if name == "PEIS" else 107, 1, 14)}
    assert [r[0] for r in rows_of(chunks, 0)] == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])  # every dT while waiting
    sweep = rows_of(chunks, 1)
    expected_f = [1e5 * 10 ** (-k / 2) for k in range(11)]  # 11 points, 1e5 -> 1 Hz, log spaced
    assert [r[0] for r in sweep] == pytest.approx(expected_f, rel=1e-9)
    t = 5.0  # each point: 0.1 period of wait, then 2 measures of whole periods lasting >= 0.1 s
    for row, f in zip(sweep, expected_f, strict=True):
        t += (0.1 + 2 * max(1, math.ceil(0.1 * f - 1e-6))) / f
        assert row[13] == pytest.approx(t, rel=1e-9)
        z = row[1] / row[2] * cmath.exp(1j * row[3])  # |Ewe| / |I|, phase in radians
        assert z == pytest.approx(ch.cell.impedance(f), rel=0.01)
    assert ch.current_values().elapsed_s == pytest.approx(t, rel=1e-9)


def test_frequencies_above_2_mhz_are_refused():
    _, ch = channel()
    with pytest.raises(TechniqueRefused) as refused:
        ch.load_technique("PEIS", eis("PEIS", initial_Hz=2.1e6), first=True, last=True)
    assert refused.value.code == -4 and "Initial_frequency" in refused.value.message
    ch.load_technique("PEIS", eis("PEIS", initial_Hz=2e6), first=True, last=True)


@pytest.mark.parametrize(("params", "why"), [
    ({"rest_time_T": 10.0, "Record_every_dE": 0.0, "Record_every_dT": 1.0}, "case-sensitive: 'Rest_time_T'"),
    ({"Rest_time_T": 10.0, "Record_every_dE": 0.0}, "missing Record_every_dT"),
    ({"Rest_time_T": 10, "Record_every_dE": 0.0, "Record_every_dT": 1.0}, "Rest_time_T is float"),
    ({**ocv(10.0), "E_Range": 7}, "E_Range is 0..3"),
])  # fmt: skip
def test_wrong_labels_are_refused_with_code_minus_4(params, why):
    _, ch = channel()
    with pytest.raises(TechniqueRefused, match=why) as refused:
        ch.load_technique("OCV", params, first=True, last=True)
    assert refused.value.code == -4
    with pytest.raises(TechniqueRefused) as unknown:
        ch.load_technique("GCPL", ocv(1.0), first=True, last=True)
    assert unknown.value.code == -400


def test_loop_repeats_the_techniques_it_goes_back_to():
    clock, ch = channel()
    ch.load_technique("OCV", ocv(2.0), first=True, last=False)
    ch.load_technique("LOOP", {"loop_N_times": 2, "protocol_number": 0}, first=False, last=True)
    ch.start()
    clock.advance(100.0, stop_on_event=False)
    chunks = drain(ch)
    assert [(c.loop, c.start_time_s, [r[0] for r in c.rows]) for c in chunks] == [
        (0, 0.0, [0.0, 1.0, 2.0]), (1, 2.0, [2.0, 3.0, 4.0]), (2, 4.0, [4.0, 5.0, 6.0])]
    assert ch.current_values().elapsed_s == pytest.approx(6.0)


@pytest.mark.parametrize("max_words", [1000, 100, 14])
def test_chunks_never_exceed_max_words_and_concatenate_to_all_rows(max_words):
    clock, ch = channel()
    ch.load_technique("OCV", ocv(600.0), first=True, last=False)
    ch.load_technique("PEIS", eis("PEIS", initial_Hz=1e5, final_Hz=1e3, points=90), first=False, last=True)
    ch.start()
    chunks = []
    for _ in range(40):  # read while it runs, as a client polls
        clock.advance(20.0, stop_on_event=False)
        chunks += drain(ch, max_words)
    assert ch.state == STOP
    assert all(0 < c.words <= max_words for c in chunks)
    assert [r[0] for c in chunks if c.technique_id == 100 for r in c.rows] == pytest.approx(
        [float(t) for t in range(601)])
    assert len(rows_of([c for c in chunks if c.technique_id == 104], 1)) == 90


def test_stop_mid_technique_leaves_zero_current():
    clock, ch = channel()
    ch.load_technique("CPLIMIT", cplimit([I_SET], [1000.0], [0], [0.0], [0]), first=True, last=True)
    ch.start()
    clock.advance(50.0, stop_on_event=False)
    assert ch.current_values().i_A == I_SET and ch.cell.bias_V is not None and ch.state == RUN
    ch.stop()
    plated = ch.cell.plated_charge_Ah
    values = ch.current_values()
    assert (values.state, values.i_A, ch.cell.bias_V) == (STOP, 0.0, None)
    clock.advance(100.0, stop_on_event=False)
    assert ch.cell.plated_charge_Ah == plated == pytest.approx(I_SET * 50.0 / 3600, rel=1e-9)


def arbin(clock: VirtualClock, cell: object, schedule: PremadeSchedule) -> ArbinChannel:
    cycler = ArbinChannel(1, cell, clock)  # type: ignore[arg-type]
    cycler.assign("test.sdx", schedule.schedule(), "", [])
    cycler.start("test")
    return cycler


def test_a_cell_a_cycler_drives_refuses_current_control_but_lets_ocv_and_open_circuit_eis_measure():
    clock, ch = channel()
    arbin(clock, ch.cell, PremadeSchedule(rest_s=3600.0))  # running, resting at open circuit
    ch.load_technique("CPLIMIT", cplimit([I_SET], [10.0], [0], [0.0], [0]), first=True, last=True)
    with pytest.raises(CellHeld) as held:
        ch.start()
    assert held.value.code == -9
    ch.load_technique("PEIS", eis("PEIS", vs_initial=False, Initial_Voltage_step=0.1), first=True, last=True)
    with pytest.raises(CellHeld):
        ch.start()
    ch.load_technique("OCV", ocv(2.0), first=True, last=False)
    ch.load_technique("PEIS", eis("PEIS"), first=False, last=True)
    ch.start()
    clock.advance(500.0, stop_on_event=False)
    assert {c.technique_id for c in drain(ch)} == {100, 104}


def test_a_shared_cell_lives_each_second_once():
    """The SP-200 measuring while a cycler passes current, then driving the cell while the cycler idles (which
    integrates its rest lazily when read), moves the cell as a single instrument would."""
    current = 0.5e-3 * AREA  # LPSCl opens voids above 0.2 mA/cm²
    cc = PremadeSchedule(rest_s=1.0, current_A=current, current_s=300.0)  # ends at t = 301 s
    clock, ch = channel("LPSCl")
    cycler = arbin(clock, ch.cell, cc)
    ch.load_technique("OCV", ocv(200.0, 10.0), first=True, last=True)
    ch.start()
    clock.advance(400.0, stop_on_event=False)
    twin_clock, twin = VirtualClock(), make_cell("LPSCl", area_cm2=AREA)
    arbin(twin_clock, twin, cc)
    twin_clock.advance(400.0, stop_on_event=False)
    assert ch.cell.void_fraction == twin.void_fraction and twin.void_fraction[0] > 0
    assert all(row[1] > 0.02 for row in rows_of(drain(ch))[1:])  # read under the cycler's current

    ch.load_technique("CPLIMIT", cplimit([current], [300.0], [0], [0.0], [0]), first=True, last=True)
    ch.start()
    clock.advance(600.0, stop_on_event=False)
    cycler.record()  # idle since 301 s: integrates 699 s, less the 300 s the SP-200 integrated
    for _ in range(300):
        twin.advance(current, 1.0)
    for _ in range(399):
        twin.advance(0.0, 1.0)
    assert ch.cell.void_fraction == pytest.approx(twin.void_fraction, rel=1e-9)
