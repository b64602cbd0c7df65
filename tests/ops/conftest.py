"""Fixtures for the operations tests (systemd, health limits, HA discovery, bridges, secrets)."""

from __future__ import annotations

import shutil
import subprocess

import pytest


@pytest.fixture
def systemd_analyze() -> str:
    """The ``systemd-analyze`` binary (Debian package ``systemd``), or a skip saying so."""
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    try:
        subprocess.run([path, "--version"], capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"systemd-analyze does not run here: {exc}")
    return path
