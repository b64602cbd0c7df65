"""Helpers for the receiver's tests: configs, a receiver on its own loop in a thread, and
a gateway's side of the wire (signed POSTs and ack polls) built from the shared wire model."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from argon2 import PasswordHasher
from waiting import poll_until as wait_until  # noqa: F401 - the receiver tests wait with it

from gateway.core.ports import Clock
from gateway.escalation.wire import (
    AckPage,
    EscalationRequest,
    SiteInfo,
    WardInfo,
    acks_path_qs,
    signed_get_headers,
    signed_headers,
)
from receiver.app import Receiver
from receiver.config import load_config

#: cheap parameters, so a test login costs milliseconds
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
OFFICER, OFFICER_PASSWORD, OFFICER_SHOWN = "hung", "mat-khau-truc-ban", "Trung úy Nguyễn Văn Hùng"
SITES = {
    "bv-a": ("Bệnh viện Đa khoa A", b"bi-mat-cua-benh-vien-a-0123456789"),
    "bv-b": ("Bệnh viện Nhi B", b"bi-mat-cua-benh-vien-b-9876543210"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path, port: int | None = None, *, supervision_s: int = 120,
                 max_wait_s: int = 5, screen_port: int | None = None) -> Path:
    """A receiver for two sites (``bv-a``, ``bv-b``) and one officer."""
    port = port or free_port()
    lines = [f'[receiver]\nid = "ca-test"\nname = "Công an phường Thử"\nmax_wait_s = {max_wait_s}\n',
             f'[api]\nlisten = "127.0.0.1:{port}"\n',
             f'[screen]\nlisten = "127.0.0.1:{screen_port or port}"\n',
             f'[storage]\npath = "{tmp_path / "recv"}"\n']
    for site_id, (name, secret) in SITES.items():
        secret_file = tmp_path / f"{site_id}.secret"
        secret_file.write_bytes(secret + b"\n")
        os.chmod(secret_file, 0o600)
        lines.append(f'[[sites]]\nid = "{site_id}"\nname = "{name}"\naddress = "1 Phố Thử"\n'
                     f'secret_file = "{secret_file}"\nsupervision_s = {supervision_s}\n')
    lines.append(f'[[officers]]\nname = "{OFFICER}"\ndisplay_name = "{OFFICER_SHOWN}"\n'
                 f'password_hash = "{FAST.hash(OFFICER_PASSWORD)}"\n')
    path = tmp_path / "receiver.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def escalation(site: str = "bv-a", *, code: str = "0427", alarm_id: str | None = None,
               escalation_id: str | None = None, type_: str = "panic",
               drill: bool = False) -> EscalationRequest:
    """A SPEC §4 body as a gateway of ``site`` would send it."""
    name = SITES.get(site, ("Không rõ", b""))[0]
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return EscalationRequest(
        escalation_id=escalation_id or str(uuid.uuid4()), alarm_id=alarm_id or str(uuid.uuid4()),
        code=code, type=type_, drill=drill, site=SiteInfo(site, name, "1 Phố Thử", "+8424000"),
        ward=WardInfo("cap-cuu", "Khoa Cấp cứu"), room="Phòng hồi sức 1", device="er-resus-1",
        raised_at=now, escalated_at=now, press_count=1, acknowledged_locally=False,
        message=f"Báo động khẩn cấp {name}", message_en=f"Panic alarm {name}")


def post(base: str, request: EscalationRequest, secret: bytes, *, ts: int | None = None,
         body: bytes | None = None, headers: dict[str, str] | None = None) -> requests.Response:
    """One signed POST /v1/alarms (``body``/``headers`` override, to forge)."""
    raw = body if body is not None else request.to_body()
    h = signed_headers(secret, request.escalation_id, raw, ts if ts is not None else int(time.time()))
    h.update(headers or {})
    return requests.post(f"{base}/v1/alarms", data=raw, headers=h, timeout=10)


def poll(base: str, site: str, secret: bytes, after: int = 0, wait: int = 0,
         *, ts: int | None = None) -> requests.Response:
    path = acks_path_qs(site, after, wait)
    h = signed_get_headers(secret, path, ts if ts is not None else int(time.time()))
    return requests.get(base + path, headers=h, timeout=wait + 10)


def page(resp: requests.Response) -> AckPage:
    assert resp.status_code == 200, resp.text
    return AckPage.from_body(resp.content)


class ReceiverThread:
    """A real :class:`Receiver` on its own event loop in a worker thread."""

    def __init__(self, config: Path, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock
        self.rx: Receiver | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def base(self) -> str:
        assert self.rx is not None
        return self.rx.urls["api"]

    @property
    def screen(self) -> str:
        assert self.rx is not None
        return self.rx.urls["screen"]

    def start(self, timeout: float = 15.0) -> ReceiverThread:
        self._ready.clear()
        self._thread = threading.Thread(target=self._main, name="receiver", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"receiver not ready in {timeout} s: {self.error!r}")
        if self.error is not None:
            raise self.error
        return self

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    async def _run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.rx = Receiver(load_config(self.config), clock=self.clock, hasher=FAST)
        runner = asyncio.create_task(self.rx.run(self._stop))
        ready = asyncio.create_task(self.rx.ready.wait())
        await asyncio.wait({runner, ready}, return_when=asyncio.FIRST_COMPLETED)
        self._ready.set()
        await runner

    def call(self, make: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 10.0) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(make(), self.loop).result(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        if self._thread is None:
            return
        if self.loop is not None and self._stop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the receiver did not stop"
        self._thread = None


@dataclass
class Officer:
    """A logged-in wall screen session over real HTTP."""

    base: str
    session: requests.Session
    csrf: str

    @classmethod
    def login(cls, base: str, name: str = OFFICER, password: str = OFFICER_PASSWORD) -> Officer:
        s = requests.Session()
        resp = s.post(f"{base}/api/login", json={"name": name, "password": password}, timeout=10)
        assert resp.status_code == 200, resp.text
        return cls(base, s, resp.json()["csrf"])

    def act(self, ref: int, action: str, note: str = "") -> requests.Response:
        return self.session.post(f"{self.base}/api/alarms/{ref}/action",
                                 json={"action": action, "note": note},
                                 headers={"X-CSRF-Token": self.csrf}, timeout=10)


def ref_number(ref: str) -> int:
    return int(ref.rsplit("-", 1)[1])


def journal_rows(db: Path, type_: str) -> list[dict[str, Any]]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT site, detail FROM events WHERE type=? ORDER BY seq",
                            (type_,)).fetchall()
    finally:
        conn.close()
    return [{"site": site, **json.loads(detail)} for site, detail in rows]
