"""Build the offline install bundle: ``dist/alarm-gateway-<version>-<platform>.tar.gz``.

A hospital's Pi often has no internet. The bundle holds the wheels of the project and of
every dependency for one target, ``install.sh`` (installs with ``pip --no-index`` from those
wheels only), the systemd unit, the operations guide and the examples. Targets:

* ``host``: the build machine itself (its Python, its architecture); used by the tests;
* ``arm64`` and ``armhf``: Raspberry Pi OS bookworm (Python 3.11, glibc 2.36), from PyPI's
  ``manylinux``/``linux_armv7l`` wheels (``pip download --platform ... --only-binary=:all:``;
  piwheels is not reachable from the build machines). A dependency with no wheel for the
  target is written to ``MISSING-WHEELS.txt`` in the bundle and printed; ``install.sh``
  names it again on the Pi. ``--extra-wheels DIR`` adds wheels built elsewhere (on a Pi).

Run it as ``make bundle`` (all three) or ``python bundle/build_bundle.py --platform host``.
Details: ``docs/install.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST_NAME = "ward-alarm-gateway"
EXTRAS = "sim"
BOOKWORM_GLIBC = 36  # glibc 2.36
DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "armv6l": "armhf"}


@dataclass(frozen=True, slots=True)
class Target:
    """What the wheels are for: ``name`` is the Debian architecture in the file name,
    ``machine`` the wheel tag's architecture; ``python`` is ``3.11`` style."""

    name: str
    machine: str
    python: str
    cross: bool

    def platform_args(self) -> list[str]:
        """``--platform`` for every wheel tag glibc 2.36 on this machine accepts."""
        tags = [f"manylinux_2_{v}_{self.machine}" for v in range(BOOKWORM_GLIBC, 16, -1)]
        tags += [f"manylinux2014_{self.machine}", f"linux_{self.machine}"]
        out = []
        for tag in tags:
            out += ["--platform", tag]
        abi = "cp" + self.python.replace(".", "")
        return [*out, "--python-version", self.python, "--implementation", "cp",
                "--abi", abi, "--abi", "abi3", "--abi", "none", "--only-binary=:all:"]


def target(name: str) -> Target:
    if name == "host":
        machine = platform.machine()
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        return Target(DEBIAN_ARCH.get(machine, machine), machine, py, cross=False)
    if name == "arm64":
        return Target("arm64", "aarch64", "3.11", cross=True)
    if name == "armhf":
        return Target("armhf", "armv7l", "3.11", cross=True)
    raise SystemExit(f"build_bundle: unknown platform {name!r}; use host, arm64 or armhf")


def pip(*args: str, quiet: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", *(["-q"] if quiet else []), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def version() -> str:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


def build_project_wheel(work: Path) -> Path:
    out = work / "project"
    done = pip("wheel", "--no-deps", "-w", str(out), str(ROOT))
    if done.returncode != 0:
        raise SystemExit(f"build_bundle: building the project wheel failed:\n{done.stderr}")
    return next(out.glob("*.whl"))


def collect_wheels(tgt: Target, project: Path, wheels: Path, extra: Path | None) -> list[str]:
    """Fill ``wheels`` with the project and its dependencies; return the pins that have
    no wheel for the target (empty when complete)."""
    wheels.mkdir(parents=True)
    shutil.copy2(project, wheels)
    if extra is not None:
        for whl in extra.glob("*.whl"):
            shutil.copy2(whl, wheels)
    spec = f"{project}[{EXTRAS}]"
    if not tgt.cross:
        done = pip("wheel", "-w", str(wheels), "--find-links", str(wheels), spec, "pip")
        if done.returncode != 0:
            raise SystemExit(f"build_bundle: collecting wheels failed:\n{done.stderr}")
        return []
    done = pip("download", "-d", str(wheels), "--find-links", str(wheels),
               *tgt.platform_args(), spec, "pip")
    if done.returncode == 0:
        return []
    return _one_by_one(tgt, spec, wheels)


def _one_by_one(tgt: Target, spec: str, wheels: Path) -> list[str]:
    """The whole set does not resolve for the target: fetch each pinned package alone and
    report the ones that have no wheel."""
    missing = []
    for pin in resolved_pins(spec):
        done = pip("download", "--no-deps", "-d", str(wheels), "--find-links", str(wheels),
                   *tgt.platform_args(), pin)
        if done.returncode != 0:
            missing.append(pin)
    return missing


def resolved_pins(spec: str) -> list[str]:
    """``name==version`` of everything ``spec`` needs, as resolved for this machine."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        done = pip("install", "--dry-run", "--ignore-installed", "--report", str(report),
                   spec, "pip")
        if done.returncode != 0:
            raise SystemExit(f"build_bundle: resolving {spec} failed:\n{done.stderr}")
        data = json.loads(report.read_text(encoding="utf-8"))
    return [f"{i['metadata']['name']}=={i['metadata']['version']}"
            for i in data["install"] if i["metadata"]["name"] != DIST_NAME]


def write_tree(folder: Path, tgt: Target, missing: list[str]) -> None:
    """Everything but the wheels: install.sh, unit, docs, examples, checksums."""
    shutil.copy2(ROOT / "bundle" / "install.sh", folder / "install.sh")
    (folder / "install.sh").chmod(0o755)
    shutil.copy2(ROOT / "bundle" / "INSTALL.md", folder / "INSTALL.md")
    (folder / "systemd").mkdir()
    shutil.copy2(ROOT / "systemd" / "alarm-gateway.service", folder / "systemd")
    (folder / "docs").mkdir()
    for doc in ("operations.md", "install.md", "config.md", "simulator.md"):
        if (ROOT / "docs" / doc).exists():
            shutil.copy2(ROOT / "docs" / doc, folder / "docs")
    shutil.copytree(ROOT / "examples", folder / "examples")
    (folder / "VERSION").write_text(version() + "\n")
    (folder / "PLATFORM").write_text(f"{tgt.name} {tgt.machine}\n")
    (folder / "PYTHON").write_text(tgt.python + "\n")
    (folder / "MISSING-WHEELS.txt").write_text("".join(m + "\n" for m in missing))
    sums = []
    for whl in sorted((folder / "wheels").glob("*.whl")):
        digest = hashlib.sha256(whl.read_bytes()).hexdigest()
        sums.append(f"{digest}  wheels/{whl.name}\n")
    (folder / "SHA256SUMS").write_text("".join(sums))


def build(name: str, out: Path, extra: Path | None) -> Path:
    tgt = target(name)
    out.mkdir(parents=True, exist_ok=True)
    base = f"alarm-gateway-{version()}-{tgt.name}"
    with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
        work = Path(tmp)
        folder = work / base
        folder.mkdir()
        project = build_project_wheel(work)
        missing = collect_wheels(tgt, project, folder / "wheels", extra)
        write_tree(folder, tgt, missing)
        archive = out / f"{base}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(folder, arcname=base)
    print(f"{archive}  ({archive.stat().st_size // 1024} KiB, Python {tgt.python}, {tgt.machine})")
    for pin in missing:
        print(f"  no {tgt.machine} wheel on PyPI: {pin} (see docs/install.md)")
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", action="append", dest="platforms",
                        help="host, arm64 or armhf (repeat; default all three)")
    parser.add_argument("--out", default=str(ROOT / "dist"), help="folder for the archives")
    parser.add_argument("--extra-wheels", metavar="DIR",
                        help="add these wheels (built on a Pi for the missing ones)")
    args = parser.parse_args(argv)
    extra = Path(args.extra_wheels) if args.extra_wheels else None
    for name in args.platforms or ["host", "arm64", "armhf"]:
        build(name, Path(args.out), extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
