"""Helpers for the console's browser tests: the site file, a TCP proxy that can stall like a
dead network path, and the page's sound as the tests hear it (its Web Audio calls)."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

from console.console_helpers import GUARD, GUARD_PASSWORD, fast_user
from simulator.hotline import HotlineServer

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SECRET = b"bi-mat-duong-day-nong"
DISPLAY_TOKEN = "man-hinh-truc-0123456789abcdef"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

#: every oscillator the page starts, with its frequency and the audio context's state
SOUND_PROBE = """
window.__sounds = [];
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.__sounds.push({ at: Date.now(), freq: this.frequency.value, state: this.context.state });
  return start.apply(this, args);
};
"""
KINDS = {"critical": (1000, 1400), "alarm": (660, 880), "lost": (247, 330)}


def site(tmp_path: Path, broker_port: int, hotline: HotlineServer, console_port: int) -> Path:
    """A two-ward site: a panic button in each ward and a duress button at the emergency
    desk; the desk has 300 s before the police are called; a display token for wall screens."""
    secret = tmp_path / "hotline.secret"
    secret.write_bytes(SECRET + b"\n")
    os.chmod(secret, 0o600)
    token = tmp_path / "display.token"
    token.write_text(DISPLAY_TOKEN + "\n")
    os.chmod(token, 0o600)
    text = f"""
[site]
id = "bv-test"
name = "Bệnh viện Đa khoa Thử nghiệm"
address = "1 Đường Thử, Hà Nội"

[[wards]]
id = "cap-cuu"
name = "Khoa Cấp cứu"

[[wards]]
id = "kham-benh"
name = "Khoa Khám bệnh"

[[devices]]
id = "er-desk-1"
ward = "cap-cuu"
room = "Quầy tiếp đón"
name = "Nút quầy tiếp đón"
pin = 17

[[devices]]
id = "er-duress"
ward = "cap-cuu"
room = "Phòng cấp cứu 2"
name = "Nút cưỡng ép phòng 2"
kind = "duress_button"
pin = 22

[[devices]]
id = "exam-room-3"
ward = "kham-benh"
room = "Phòng khám 3"
name = "Nút phòng khám 3"
pin = 27

[mqtt]
url = "mqtt://127.0.0.1:{broker_port}"
keepalive_s = 5

[storage]
path = "{tmp_path / 'var'}"

[health]
interval_s = 2

[policy]
default = "unacknowledged_after"
after_s = 300

[escalation.http]
url = "{hotline.url}"
secret_file = "{secret}"
timeout_s = 3

[console]
listen = "127.0.0.1:{console_port}"
session_minutes = 60
display_token_file = "{token}"
{fast_user(GUARD, GUARD_PASSWORD)}
"""
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def login(page: Any, password: str = GUARD_PASSWORD) -> None:
    page.fill("#login-name", GUARD)
    page.fill("#login-password", password)
    page.click("#login-submit")


def sounds(page: Any, kind: str, since: float = 0) -> list[dict[str, Any]]:
    """The notes of ``kind`` the page started (in a running audio context) since ``since``
    (page milliseconds)."""
    notes: list[dict[str, Any]] = page.evaluate("window.__sounds")
    return [n for n in notes if round(n["freq"]) in KINDS[kind] and n["at"] >= since
            and n["state"] == "running"]


def wait_for_sound(page: Any, kind: str, since: float, timeout_ms: float = 5000) -> None:
    lo, hi = KINDS[kind]
    page.wait_for_function(
        "([since, lo, hi]) => window.__sounds.some(n => n.at >= since && n.state === 'running'"
        " && (Math.round(n.freq) === lo || Math.round(n.freq) === hi))",
        arg=[since, lo, hi], timeout=timeout_ms)


def page_now(page: Any) -> float:
    return float(page.evaluate("Date.now()"))


def shot(page: Any, name: str, *, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=full_page)


class StallingProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target_port``. ``stall()`` stops moving bytes
    either way while keeping every connection open (a dead network path: no FIN, no RST);
    ``flow()`` moves them again."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self._flowing = threading.Event()
        self._flowing.set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        self._socks: list[socket.socket] = []

    def start(self) -> StallingProxy:
        threading.Thread(target=self._accept, daemon=True, name="proxy").start()
        return self

    def stall(self) -> None:
        self._flowing.clear()

    def flow(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self._flowing.set()
        for s in [self._listener, *self._socks]:
            try:
                s.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target), 5)
            except OSError:
                continue
            self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self._flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
