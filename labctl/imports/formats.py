"""The file formats labctl imports, how each is recognised, and its reader.

A format is named on the command line (``--format``) or recognised from the file: its extension, then its first
bytes or sheet names where one extension serves several instruments (``.xlsx``: LAND or Arbin; ``.txt``: LAND or an
EC-Lab export). A file whose content contradicts its extension is refused by its reader, naming what was expected.
"""

from __future__ import annotations

import importlib
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labctl.imports.imported import FormatError, Imported


@dataclass(frozen=True)
class Format:
    name: str
    what: str  # for messages and --help
    extensions: tuple[str, ...]
    reader: str  # "module:function" under labctl.imports, imported when used (Excel and Access readers are heavy)

    def read(self, path: Path) -> Imported:
        module, function = self.reader.split(":")
        read: Callable[[Path], Imported] = getattr(importlib.import_module(f"labctl.imports.{module}"), function)
        return read(path)


FORMATS = {f.name: f for f in (
    Format("land", "LAND / LANDdt export", (".xlsx", ".xls", ".csv", ".txt"), "land:read_land"),
    Format("eclab-mpr", "EC-Lab binary data file", (".mpr",), "eclab:read_mpr"),
    Format("eclab-mpt", "EC-Lab text export", (".mpt", ".txt"), "eclab:read_mpt"),
    Format("arbin-res", "Arbin MITS Pro results database", (".res",), "arbin:read_res"),
    Format("arbin-xlsx", "Arbin MITS Pro / Data Watcher Excel export", (".xlsx", ".xls"), "arbin:read_arbin_excel"),
    Format("versastudio-par", "Princeton Applied Research VersaStudio file", (".par",), "versastudio:read_par"),
)}  # fmt: skip
EC_LAB_TEXT = (b"EC-Lab ASCII FILE", b"BT-Lab ASCII FILE")


def format_of(path: Path, name: str | None = None) -> Format:
    """The format ``name``, or the one ``path`` is recognised as; FormatError naming the choices."""
    if name is not None:
        if name not in FORMATS:
            raise FormatError(f"--format: {name!r} is not a format labctl imports; formats: {', '.join(FORMATS)}")
        return FORMATS[name]
    suffix = path.suffix.lower()
    candidates = [f for f in FORMATS.values() if suffix in f.extensions]
    if not candidates:
        known = sorted({e for f in FORMATS.values() for e in f.extensions})
        raise FormatError(f"{path}: labctl does not recognise {suffix or 'a file without extension'}; it imports "
                          f"{', '.join(known)} files (give --format if the extension is wrong)")
    if len(candidates) == 1:
        return candidates[0]
    if suffix in (".xlsx",) and _workbook_has(path, "channel"):
        return FORMATS["arbin-xlsx"]
    if suffix == ".txt" and _starts_with(path, EC_LAB_TEXT):
        return FORMATS["eclab-mpt"]
    return FORMATS["land"]


def _starts_with(path: Path, prefixes: tuple[bytes, ...]) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return head.lstrip(b"\xef\xbb\xbf").startswith(prefixes)


def _workbook_has(path: Path, word: str) -> bool:
    """Whether an .xlsx workbook has a sheet whose name holds ``word`` (read from its zip directory, not loaded)."""
    try:
        with zipfile.ZipFile(path) as z:
            workbook = z.read("xl/workbook.xml").decode("utf-8", errors="replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    return any(word in name.lower() for name in re.findall(r'<sheet\b[^>]*\bname="([^"]*)"', workbook))
