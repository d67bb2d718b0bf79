"""Bench configuration: every mistake gets one message naming the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.bench import BenchError, load_config, open_bench


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bench.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


GOOD = """
name = "bay-2"
[roles.cycler]
driver = "arbin-cti"
resource = "192.168.1.20:9031"
channel = 3
[roles.cycler.options]
username = "admin"
"""


def test_good_file_loads_roles_with_driver_resource_channel(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.name == "bay-2"
    assert config.roles["cycler"].driver == "arbin-cti"
    assert config.roles["cycler"].channel == 3
    assert config.clock.kind == "wall"


def test_builtin_sim_bench_needs_no_file():
    config = load_config("sim")
    assert config.sim is not None and config.roles == {}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (GOOD.replace("arbin-cti", "arbin-dll"), ["roles.cycler.driver", "arbin-dll", "arbin-cti"]),
        (GOOD.replace("[roles.cycler]", "[roles.cyclr]").replace("roles.cycler.options", "roles.cyclr.options"),
         ["roles.cyclr: unknown role", "cycler, impedance, rate_monitor"]),
        (GOOD.replace('resource = "192.168.1.20:9031"', 'resource = "192.168.1.20"'),
         ["roles.cycler.resource", "host:port"]),
        (GOOD.replace('resource = "192.168.1.20:9031"\n', ""), ["roles.cycler.resource", "missing"]),
        (GOOD.replace("channel = 3", "channel = 0"), ["roles.cycler.channel"]),
        ("colour = 'red'\n" + GOOD, ["colour", "spelling"]),
        ('[roles.cycler\ndriver = "x"', ["not valid TOML"]),
        ('[clock]\nkind = "sim"\n', ["clock.resource", "missing"]),
    ],
    ids=["unknown-driver", "unknown-role", "malformed-resource", "missing-field", "bad-channel", "unknown-key",
         "bad-toml", "sim-clock-without-resource"],
)
def test_bad_config_names_the_field(tmp_path, text, names):
    with pytest.raises(BenchError) as e:
        load_config(write(tmp_path, text))
    for name in names:
        assert name in str(e.value)


def test_missing_file_says_what_to_give():
    with pytest.raises(BenchError, match="no bench file 'nowhere.toml'.*simulated benches sim, "):
        load_config("nowhere.toml")


def test_unreachable_instrument_names_resource(tmp_path, free_port):
    text = GOOD.replace("192.168.1.20:9031", f"127.0.0.1:{free_port}")
    with pytest.raises(BenchError, match=rf"roles.cycler.resource: cannot reach Arbin CTI at 127.0.0.1:{free_port}"):
        open_bench(write(tmp_path, text))


def test_sim_options_on_a_real_bench_are_refused(tmp_path):
    with pytest.raises(BenchError, match="not simulated"):
        open_bench(write(tmp_path, GOOD), sim_overrides={"cell": "Ag"})


def test_unknown_sim_cell_lists_presets():
    with pytest.raises(BenchError, match="sim.cell.*Ag\\|Mg"):
        open_bench("sim", sim_overrides={"cell": "unobtainium"})
