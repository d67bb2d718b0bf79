"""The lab config: what the PCs of one lab share, read from ``<store>/lab.toml`` and the environment.

```toml
[database]
url = "postgresql://labctl@db-pc/labctl"   # LABCTL_DB overrides; absent: the store's own SQLite file

[link]
token = "…"                 # LABCTL_TOKEN overrides; needed by every PC that serves or reads another's runs
listen = "0.0.0.0:8741"     # LABCTL_LISTEN: where `labctl serve` serves its runs' feeds and folders (default
                            # 127.0.0.1, any port: this PC only)

[lab]
lease_s = 30                # a run or agent not heard of for this long is shown unreachable (LABCTL_LEASE_S)
archive = "/mnt/lab/runs"   # finished run folders are copied here (optional)
```
The PC's name in the lab is ``LABCTL_HOST`` or its host name.
"""

from __future__ import annotations

import os
import socket
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

LAB_FILE = "lab.toml"
DEFAULT_LEASE_S = 30.0
LOOPBACK = "127.0.0.1"


class LabConfigError(ValueError):
    """A lab config that cannot be used; the message names the file or variable, the field and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Strict):
    url: str | None = None


class LinkConfig(_Strict):
    token: str | None = None
    listen: str = f"{LOOPBACK}:0"

    @field_validator("listen")
    @classmethod
    def _host_port(cls, listen: str) -> str:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"{listen!r} is not HOST:PORT; write it like 0.0.0.0:8741 (every interface) or "
                             "127.0.0.1:0 (this PC only, any port)")
        return listen

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class LabSection(_Strict):
    lease_s: float = Field(DEFAULT_LEASE_S, gt=0, allow_inf_nan=False)
    archive: Path | None = None


class LabConfig(_Strict):
    database: DatabaseConfig = DatabaseConfig()
    link: LinkConfig = LinkConfig()
    lab: LabSection = LabSection()

    @property
    def shared(self) -> bool:
        """Whether the store's database is a lab's (PostgreSQL) rather than this PC's own file."""
        return bool(self.database.url)


def this_host() -> str:
    """This PC's name in the lab: ``LABCTL_HOST`` (two agents on one PC, or a test) or the host name."""
    return os.environ.get("LABCTL_HOST") or socket.gethostname()


def load_lab_config(root: Path) -> LabConfig:
    """``<root>/lab.toml`` (if any) with the environment's overrides; LabConfigError naming the field and fix."""
    path = root / LAB_FILE
    data: dict = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise LabConfigError(f"{path}: not a valid UTF-8 TOML file ({e}); fix or remove it") from None
    for section, key, variable in (("database", "url", "LABCTL_DB"), ("link", "token", "LABCTL_TOKEN"),
                                   ("link", "listen", "LABCTL_LISTEN"), ("lab", "lease_s", "LABCTL_LEASE_S")):  # fmt: skip
        if os.environ.get(variable):
            data.setdefault(section, {})[key] = os.environ[variable]
    try:
        return LabConfig.model_validate(data)
    except ValidationError as e:
        error = e.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise LabConfigError(f"{path} (or its LABCTL_* variable): {field}: {message}") from None
