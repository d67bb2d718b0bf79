"""Run lists show a result's brief: CE and EIS runs store the one their result type gives."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from labctl.cli import app


def run(*args: str) -> dict:
    result = CliRunner().invoke(app, ["run", *args, "--bench", "sim", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["result"]


def test_a_ce_cycling_run_stores_its_brief():
    result = run("ce-cycling", "-p", "cycles=2")
    assert result["brief"] == f"mean CE {result['mean_ce_percent']:.2f} % over 2 cycles"


def test_an_eis_run_stores_its_brief():
    result = run("eis", "-p", "points_per_decade=3", "-p", "stop_frequency=10")
    assert result["brief"].startswith("R_b ") and result["brief"].endswith(("KK pass", "KK FAIL"))
    assert result["headline"].startswith(f"R_b = {result['R_b_ohm']:.4g} Ω")
