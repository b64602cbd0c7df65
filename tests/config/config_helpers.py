"""A minimal valid site (two buttons in one ward) and the refusal lines of a config text,
for tests of ``check-config``'s checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.schema import load_config
from gateway.core.errors import ConfigError

BASE = """
[site]
id = "bv"
name = "Bệnh viện"

[[wards]]
id = "cap-cuu"
name = "Khoa Cấp cứu"

[[devices]]
id = "b1"
ward = "cap-cuu"
room = "P1"
pin = 17

[[devices]]
id = "b2"
ward = "cap-cuu"
room = "P2"
pin = 27
"""


def refusals(path: Path) -> list[str]:
    """The lines ``load_config`` refuses the file at ``path`` with (it must refuse it)."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.lines()


def errors_of(tmp_path: Path, text: str) -> list[str]:
    """:func:`refusals` of ``text`` written as ``site.toml``."""
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return refusals(path)
