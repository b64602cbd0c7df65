"""Bench plumbing for the police receiver: a config for N sites, the receiver as a real
process, signed requests, RSS from /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from argon2 import PasswordHasher

from gateway.escalation.wire import EscalationRequest, SiteInfo, WardInfo

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
OFFICER, PASSWORD = "truc-ban", "mat-khau-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def site_secret(i: int) -> bytes:
    return f"bench-secret-of-site-{i:03d}-0123456789".encode()


def write_receiver_config(folder: Path, sites: int, port: int, *, max_wait_s: int = 25,
                          supervision_s: int = 600) -> Path:
    """A receiver for ``site-000`` … with one officer; returns the config path."""
    lines = [f'[receiver]\nid = "ca-bench"\nname = "Công an — bench"\nmax_wait_s = {max_wait_s}\n',
             f'[api]\nlisten = "127.0.0.1:{port}"\n[screen]\nlisten = "127.0.0.1:{port}"\n',
             f'[storage]\npath = "{folder / "var"}"\n',
             f'[[officers]]\nname = "{OFFICER}"\npassword_hash = "{FAST.hash(PASSWORD)}"\n']
    for i in range(sites):
        secret = folder / f"site-{i:03d}.secret"
        secret.write_bytes(site_secret(i) + b"\n")
        os.chmod(secret, 0o600)
        lines.append(f'[[sites]]\nid = "site-{i:03d}"\nname = "Bệnh viện số {i}"\n'
                     f'secret_file = "{secret}"\nsupervision_s = {supervision_s}\n')
    path = folder / "receiver.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@contextmanager
def receiver_process(config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``alarm-receiver run`` as a real process, until its port answers; SIGTERM after."""
    proc = subprocess.Popen([sys.executable, "-m", "receiver.cli", "run", "-c", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"receiver did not start: {proc.stderr.read()!r}"
                                   if proc.stderr else "receiver did not start") from None
            time.sleep(0.05)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def alarm(site: int, n: int) -> EscalationRequest:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return EscalationRequest(
        escalation_id=str(uuid.uuid4()), alarm_id=str(uuid.uuid4()), code=f"{n % 10000:04d}",
        type="panic", drill=False, site=SiteInfo(f"site-{site:03d}", f"Bệnh viện số {site}"),
        ward=WardInfo("cap-cuu", "Khoa Cấp cứu"), room=f"Phòng {n}", device="er-desk-1",
        raised_at=now, escalated_at=now, press_count=1, acknowledged_locally=False,
        message="Báo động khẩn cấp", message_en="Panic alarm")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
