"""Configuration errors that name file, line and key path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file. ``line`` is 1-based; 0 when unknown."""

    file: Path
    line: int
    key_path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else f"{self.file}"
        return f"{where}: {self.key_path}: {self.message}" if self.key_path else f"{where}: {self.message}"


class ConfigError(Exception):
    """A configuration could not be loaded; carries every issue found."""

    def __init__(self, issues: list[ConfigIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def format_key_path(path: tuple[str | int, ...]) -> str:
    """``('nodes', 2, 'load', 'annual_kwh')`` -> ``nodes[2].load.annual_kwh``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
