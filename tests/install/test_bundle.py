"""The offline bundle, as a technician uses it: built for this machine, installed into a
scratch root with no network (pip --no-index, proxies pointing at a closed port), then
``check-config`` and ``demo`` run from the installed copy; an upgrade keeps the previous
version, ``rollback`` returns to it, ``uninstall`` keeps the config and the data, and a
damaged bundle is refused. Marked ``bundle`` (about 40 s; the pip cache makes the build
offline after the first run)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.bundle, pytest.mark.timeout(300)]


def _offline_env() -> dict[str, str]:
    """No way out: every proxy points at a closed local port, no repository on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    closed = "http://127.0.0.1:9"
    env.update(http_proxy=closed, https_proxy=closed, HTTP_PROXY=closed, HTTPS_PROXY=closed)
    return env


def _run(cmd: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=_offline_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The host bundle, unpacked; its folder."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, str(ROOT / "bundle" / "build_bundle.py"),
                           "--platform", "host", "--out", str(out)],
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    archive = next(out.glob("alarm-gateway-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    return next(p for p in out.iterdir() if p.is_dir())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _bumped(bundle: Path, dest: Path, new: str) -> Path:
    """A copy of the bundle whose project wheel says version ``new`` (a next release)."""
    shutil.copytree(bundle, dest)
    old = (dest / "VERSION").read_text().strip()
    wheel = next((dest / "wheels").glob(f"ward_alarm_gateway-{old}-*.whl"))
    target = wheel.with_name(wheel.name.replace(f"-{old}-", f"-{new}-"))
    info_old, info_new = f"ward_alarm_gateway-{old}.dist-info", f"ward_alarm_gateway-{new}.dist-info"
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == f"{info_old}/METADATA":
                data = data.replace(f"Version: {old}\n".encode(), f"Version: {new}\n".encode())
            if item.filename == f"{info_old}/RECORD":
                data = data.replace(info_old.encode(), info_new.encode())
            dst.writestr(item.filename.replace(info_old, info_new), data)
    wheel.unlink()
    (dest / "VERSION").write_text(new + "\n")
    sums = [f"{hashlib.sha256(w.read_bytes()).hexdigest()}  wheels/{w.name}\n"
            for w in sorted((dest / "wheels").glob("*.whl"))]
    (dest / "SHA256SUMS").write_text("".join(sums))
    return dest


def test_install_offline_run_upgrade_rollback_uninstall(bundle: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    version = (bundle / "VERSION").read_text().strip()
    done = _run([str(bundle / "install.sh"), "--root", str(root)], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    site = root / "etc" / "alarm-gateway" / "site.toml"
    assert f"{site}: OK (2 wards, 5 devices)" in done.stdout
    prefix = root / "opt" / "alarm-gateway"
    assert os.readlink(prefix / "current") == f"releases/{version}"
    assert (root / "etc" / "systemd" / "system" / "alarm-gateway.service").exists()
    assert _mode(root / "var" / "lib" / "alarm-gateway") == 0o700
    assert _mode(root / "etc" / "alarm-gateway" / "secrets") == 0o700
    assert _mode(site) == 0o640
    assert f'path = "{root}/var/lib/alarm-gateway"' in site.read_text()

    cli = root / "usr" / "local" / "bin" / "alarm-gateway"
    checked = _run([str(cli), "check-config", "-c", str(site)], cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    demo = _run([str(cli), "demo", "--fast"], cwd=tmp_path, timeout=90)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "Demo finished" in demo.stdout
    assert str(ROOT) not in demo.stdout + demo.stderr  # it ran from the installed copy

    again = _run([str(bundle / "install.sh"), "--root", str(root)], cwd=tmp_path)
    assert again.returncode == 1 and "use ./install.sh upgrade" in again.stderr

    newer = _bumped(bundle, tmp_path / "newer", f"{version}.post1")
    up = _run([str(newer / "install.sh"), "upgrade", "--root", str(root)], cwd=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"upgraded {version} -> {version}.post1" in up.stdout
    assert os.readlink(prefix / "current") == f"releases/{version}.post1"
    assert os.readlink(prefix / "previous") == f"releases/{version}"

    back = _run([str(prefix / "install.sh"), "rollback", "--root", str(root)], cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    assert os.readlink(prefix / "current") == f"releases/{version}"
    assert _run([str(cli), "check-config", "-c", str(site)], cwd=tmp_path).returncode == 0

    gone = _run([str(prefix / "install.sh"), "uninstall", "--root", str(root)], cwd=tmp_path)
    assert gone.returncode == 0, gone.stderr
    assert not prefix.exists() and not cli.is_symlink()
    assert site.exists() and (root / "var" / "lib" / "alarm-gateway").is_dir()
    assert "kept" in gone.stdout


def test_a_damaged_bundle_is_refused(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    wheel = next((copy / "wheels").glob("pip-*.whl"))
    wheel.write_bytes(wheel.read_bytes()[:-10])  # a truncated copy from a USB stick
    done = _run([str(copy / "install.sh"), "--root", str(tmp_path / "root")], cwd=tmp_path)
    assert done.returncode == 1
    assert "the bundle is damaged (checksums differ): copy it again" in done.stderr
    assert not (tmp_path / "root" / "opt" / "alarm-gateway" / "current").exists()
