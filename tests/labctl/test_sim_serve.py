"""`labctl sim serve` runs a simulated bench as its own process that a second labctl drives like hardware."""

from __future__ import annotations

import signal
import subprocess
import sys

from typer.testing import CliRunner

from labctl.cli import app


def test_a_second_labctl_runs_a_ccd_on_a_served_bench(tmp_path):
    serve = subprocess.Popen([sys.executable, "-m", "labctl", "sim", "serve", "--cell", "Mg", "--seed", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("password"):
            line = serve.stdout.readline()
            assert line, f"sim serve ended early: {serve.stderr.read()}"
            lines.append(line)
        assert any(line.startswith("# cycler: 127.0.0.1:") for line in lines)
        bench = tmp_path / "served.toml"
        bench.write_text("".join(lines), encoding="utf-8")
        result = CliRunner().invoke(app, ["run", "ccd", "--bench", str(bench), "-p", "stop_density=0.3"])
        assert result.exit_code == 0, result.output
        assert "finished" in result.output
    finally:
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=30) == 0
