"""The lab config: lab.toml with the environment's overrides; a bad one is refused naming the field and the fix."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from labctl.cli import app
from labctl.lab.config import LabConfigError, load_lab_config, this_host


def test_no_file_is_a_one_pc_store(tmp_path):
    config = load_lab_config(tmp_path)
    assert not config.shared and config.link.host_port == ("127.0.0.1", 0) and config.lab.lease_s == 30


def test_the_environment_overrides_the_file(tmp_path, monkeypatch):
    (tmp_path / "lab.toml").write_text('[database]\nurl = "postgresql://a@db/lab"\n[link]\nlisten = "[::]:8741"\n'
                                       '[lab]\nlease_s = 10\narchive = "/mnt/runs"\n')  # fmt: skip
    monkeypatch.setenv("LABCTL_TOKEN", "t" * 20)
    monkeypatch.setenv("LABCTL_LEASE_S", "5")
    monkeypatch.setenv("LABCTL_HOST", "pc-a")
    config = load_lab_config(tmp_path)
    assert config.shared and config.database.url == "postgresql://a@db/lab" and config.link.token == "t" * 20
    assert config.link.host_port == ("::", 8741) and config.lab.lease_s == 5 and str(config.lab.archive) == "/mnt/runs"
    assert this_host() == "pc-a"


@pytest.mark.parametrize(("text", "words"), [
    ("[database\n", ["lab.toml", "TOML"]),
    ("[lab]\nlease_s = -1\n", ["lab.lease_s", "greater than 0"]),
    ("[lab]\nlease_s = nan\n", ["lab.lease_s"]),
    ('[link]\nlisten = "everywhere"\n', ["link.listen", "HOST:PORT", "0.0.0.0:8741"]),
    ('[link]\nlisten = "0.0.0.0:99999"\n', ["link.listen"]),
    ('[lab]\nspeed = 3\n', ["lab.speed"]),
])  # fmt: skip
def test_a_bad_lab_config_is_refused_naming_the_field(tmp_path, text, words):
    (tmp_path / "lab.toml").write_text(text)
    with pytest.raises(LabConfigError) as refused:
        load_lab_config(tmp_path)
    for word in words:
        assert word in str(refused.value)
    result = CliRunner().invoke(app, ["runs", "list", "--store", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_an_unknown_database_and_an_unreachable_one_exit_2_naming_the_variable(tmp_path, monkeypatch, free_port):
    for url, words in ((f"mysql://x@127.0.0.1:{free_port}/lab", "unknown database"),
                       (f"postgresql://x:secret@127.0.0.1:{free_port}/lab", "cannot reach the lab database")):  # fmt: skip
        monkeypatch.setenv("LABCTL_DB", url)
        result = CliRunner().invoke(app, ["queue", "list", "--store", str(tmp_path)])
        text = " ".join(result.output.replace("│", " ").split())
        assert result.exit_code == 2 and words in text and "Traceback" not in text, result.output
        assert "secret" not in text  # the password is never shown
