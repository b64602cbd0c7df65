"""Helpers for the simulator tests: the shipped example site, moved into a test's folder."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Any

from gateway.config.schema import SiteConfig, validate_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SIM_SITE = EXAMPLES / "sim-site.toml"
SCENARIOS = sorted((EXAMPLES / "scenarios").glob("*.toml"))


def sim_raw(tmp_path: Path) -> dict[str, Any]:
    """The example site's TOML document, its storage in ``tmp_path``."""
    raw = tomllib.loads(SIM_SITE.read_text(encoding="utf-8"))
    raw["storage"]["path"] = str(tmp_path / "var")
    return raw


def sim_config(tmp_path: Path, **changes: Any) -> SiteConfig:
    """The example site (secrets read from examples/secrets), storage in ``tmp_path``;
    ``changes`` replace top-level sections."""
    for secret in (EXAMPLES / "secrets").iterdir():
        secret.chmod(0o600)  # git does not keep modes
    raw = {**sim_raw(tmp_path), **changes}
    return validate_config(raw, base_dir=EXAMPLES)


def copy_site(tmp_path: Path, broker_port: int) -> Path:
    """A copy of the example site file and its secrets in ``tmp_path`` (secrets 0644, as a
    fresh checkout leaves them), pointing at the test broker."""
    shutil.copytree(EXAMPLES / "secrets", tmp_path / "secrets")
    for secret in (tmp_path / "secrets").iterdir():
        secret.chmod(0o644)
    text = SIM_SITE.read_text(encoding="utf-8")
    text = text.replace('path = "var/sim-site"', f'path = "{tmp_path / "var"}"')
    text = text.replace('url = "mqtt://127.0.0.1:1883"', f'url = "mqtt://127.0.0.1:{broker_port}"')
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path
