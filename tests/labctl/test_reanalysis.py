"""Each procedure declares its offline analysis once; re-analysis picks it by that declaration alone."""

from __future__ import annotations

import pytest

from labctl.analysis.eis import SpectrumAnalysis
from labctl.analysis.replay import Analysis
from labctl.engine.reanalysis import reanalyze
from labctl.procedures import PROCEDURES
from labctl.store.folder import SPECTRA, TIMESERIES


@pytest.mark.parametrize(("name", "kind", "source"), [
    ("ccd", "ccd", TIMESERIES), ("ce-reservoir", "ce", TIMESERIES), ("fullcell", "ce", TIMESERIES),
    ("ce-cycling", "ce", TIMESERIES),  # takes occasional spectra, but its analysis is CE's
    ("eis", "eis", SPECTRA), ("insitu-eis", "eis", SPECTRA),
])  # fmt: skip
def test_a_procedure_declares_what_its_analysis_reads(name, kind, source):
    declared = PROCEDURES[name]().analysis()
    assert isinstance(declared, Analysis | SpectrumAnalysis)
    assert (declared.kind, declared.source) == (kind, source)


def test_a_spectrum_analysis_command_names_the_spectrum_of_several(tmp_path):
    declared = PROCEDURES["insitu-eis"](thickness=0.1).analysis()

    class Result:
        spectrum = 7

    command = declared.command(tmp_path / SPECTRA, Result())
    assert "--spectrum 7" in command and "--thickness 0.1" in command and declared.circuit in command


def test_a_run_without_an_offline_analysis_says_so(tmp_path):
    (tmp_path / "metadata.json").write_text('{"procedure": {"name": "hold"}, "parameters": {}}')
    with pytest.raises(ValueError, match="hold runs have no offline analysis"):
        reanalyze(tmp_path)
