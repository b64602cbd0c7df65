"""Can the gateway lose an alarm? A seeded chaos run against the real thing.

A real mosquitto, the gateway as a real child process (``python -m gateway.cli run
--simulate``) with GPIO buttons pressed through its control socket and serial nodes running
the real firmware on a pty, the police hotline simulator and the LTE modem simulator
(``immediate`` policy, dual delivery, mass alarm on). Presses come at random while, at
random, the gateway is SIGKILLed and restarted, mosquitto is stopped and started, the
hotline answers 500 / 503 / 429 / hangs / is down, the modem loses registration / answers
+CMS ERROR / goes silent, and the serial line turns noisy or is unplugged. Escalated alarms
are resolved over MQTT (some acknowledged by the police by SMS first), so new presses raise
new alarms. The mass alarm stays on (3 alarms in 10 s): an alarm that joined a combined
escalation counts as delivered when the combined one was.

Then every fault is healed, the gateway keeps running, and once the backlog has drained
(bounded) the run checks SPEC §1:

1. every event the journal committed reached MQTT (a persistent QoS 1 session) by ``id``;
2. every frame a node saw ACKed is a committed event (serial events carry ``detail.node``
   and ``detail.seq``); every GPIO click the gateway had time to commit (no kill within 3 s)
   is a committed press;
3. every alarm (all go to the police: ``immediate``) was delivered on at least one channel:
   one of its escalation ids (its own plan, a mass plan it is in, or the entries it took
   when joining a mass group) is among the hotline's deliveries or the SMS the modem sent;
   and the gateway marked each one ``escalated``;
4. no escalation went out under two ids: hotline requests and SMS grouped by alarm, mass or
   not, and target carry one escalation id each, and every id is one the journal planned;
5. the gateway is running (and still stops cleanly on SIGTERM).

``SOAK_SECONDS`` (default 45) sets the length of the chaos; ``SOAK_SEED`` the seed
(default fixed, printed). ``make soak`` runs it for 600 s.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from chaos_helpers import (
    DurableSubscriber,
    PersistentBroker,
    Plans,
    acked_frames,
    read_journal,
    sms_ref,
)
from conftest import MOSQUITTO, GatewayProcess, free_port, write_site

from simulator.hotline import HotlineServer
from simulator.modem import ModemSimulator
from simulator.nodes import BusSimulator, NodeSpec

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "45"))
SOAK_SEED = int(os.environ.get("SOAK_SEED", "20261123"))
DRAIN_S = 90.0  # the longest the backlog may take to drain once every fault is healed
SECRET = b"chaos-hotline-secret"
POLICE = ["+84901111111", "+84902222222"]
PREFIX = "alarmgw/bv-test"

GPIO = {"er-desk-1": 17, "er-resus-1": 27, "exam-3": 22, "exam-desk-1": 23}
KEYS: dict[int, bytes | None] = {11: bytes(range(16)), 12: bytes(range(1, 17)), 21: None,
                                 22: bytes(range(2, 18))}
NODES = {11: "bed-11", 12: "duress-12", 21: "bed-21", 22: "bed-22"}
SERIAL_HOLD_MS = 1000


def chaos_site(tmp_path: Path, broker_port: int, bus_port: str, hotline_url: str,
               modem_port: str) -> Path:
    devices = ""
    for (dev, pin), ward in zip(GPIO.items(), ["cap-cuu", "cap-cuu", "kham-benh", "kham-benh"],
                                strict=True):
        devices += (f'\n[[devices]]\nid = "{dev}"\nward = "{ward}"\nroom = "P-{dev}"\n'
                    f"pin = {pin}\nbounce_ms = 20\nhold_s = 2.0\n")
    for node, dev in NODES.items():
        kind = "duress_button" if dev.startswith("duress") else "panic_button"
        devices += (f'\n[[devices]]\nid = "{dev}"\nward = "cap-cuu"\nroom = "G-{node}"\n'
                    f'kind = "{kind}"\ninput = "serial"\nnode = {node}\nhold_s = 1.0\n')
        key = KEYS[node]
        if key is not None:
            path = tmp_path / f"node{node}.key"
            path.write_text(key.hex() + "\n")
            os.chmod(path, 0o600)
            devices += f'key_file = "{path}"\n'
    secret = tmp_path / "hotline.secret"
    secret.write_bytes(SECRET + b"\n")
    os.chmod(secret, 0o600)
    numbers = ", ".join(f'"{n}"' for n in POLICE)
    extra = f"""
[serial]
port = "{bus_port}"
supervision_s = 600

[policy]
default = "immediate"
hold = "immediate"
delivery = "dual"

[policy.mass_alarm]
count = 3
window_s = 10

[escalation.http]
url = "{hotline_url}"
secret_file = "{secret}"
timeout_s = 2
max_attempts = 100
retry_base_s = 0.2
retry_cap_s = 1.0

[escalation.sms]
numbers = [{numbers}]
min_interval_s = 2

[modem]
port = "{modem_port}"
poll_s = 1

[messages]
# every SMS ends with its escalation's reference, so each one is traced to its plan
sms = "{{type}} {{ward_short}}, {{room}}, {{time}}. OK {{code}} #{{ref}}"
max_parts = 2

[messages.templates]
mass = "{{count}} BÁO ĐỘNG {{rooms}}. OK {{code}} #{{ref}}"
reminder = "NHẮC LẠI {{reminder}}: {{room}}. OK {{code}} #{{ref}}"
"""
    return write_site(tmp_path, broker_port, extra, devices)


@dataclass
class Fault:
    """One kind of fault: injected at random (mean ``every_s`` apart), healed after a
    random ``last_s`` range."""

    name: str
    every_s: float
    last_s: tuple[float, float]
    active: str | None = None
    heal_at: float = 0.0
    next_at: float = 0.0
    injected: dict[str, int] = field(default_factory=dict)


@dataclass
class Click:
    device: str
    start: float
    end: float
    ok: bool


class Chaos:
    """The rig and the random hand that breaks it."""

    def __init__(self, tmp_path: Path, rng: random.Random) -> None:
        self.tmp = tmp_path
        self.rng = rng
        self.broker = PersistentBroker(MOSQUITTO, free_port(), tmp_path / "mosquitto")
        self.hotline = HotlineServer(SECRET, on_delivery=self._on_hotline_delivery)
        self.life = threading.Lock()  # gateway kills and starts, from two threads
        self.kill_on_delivery = False
        self.kills_on_delivery = 0
        self.modem = ModemSimulator()
        self.bus = BusSimulator(
            [NodeSpec(n, key=k, hold_ms=SERIAL_HOLD_MS, hb_ms=10_000) for n, k in KEYS.items()],
            tmp_path / "bus", seed=rng.randrange(1 << 30))
        self.observer: DurableSubscriber | None = None
        self.gateway: GatewayProcess | None = None
        self.journal = tmp_path / "var" / "journal.sqlite3"
        self.clicks: list[Click] = []
        self.kills: list[float] = []  # wall-clock times of the SIGKILLs
        self.unexpected_exits: list[int | None] = []
        self.restart_at: float | None = None
        self.next_kill = 0.0
        self.broker_restarts = 0
        self.serial_presses = 0
        self.serial_holds = 0
        self.held: dict[int, float] = {}  # node -> release time
        self.resolve_sent: dict[str, float] = {}
        self.police_acks = 0
        self.acked: set[tuple[int, int]] = set()
        self.sent_frames: dict[tuple[int, int], str] = {}  # (node, seq) -> frame, HB aside
        self.intensity, self.phase_until = 1.0, 0.0
        self.timeline: list[tuple[float, str]] = []  # (wall clock, what the chaos did)
        self.faults = [Fault("hotline", 8, (1, 6)), Fault("modem", 10, (2, 8)),
                       Fault("serial", 10, (2, 6)), Fault("broker", 12, (0.5, 4))]

    # -- set-up and tear-down ------------------------------------------------------------
    def start(self) -> None:
        self.broker.start()
        self.hotline.start()
        self.modem.start()
        self.bus.start()
        config = chaos_site(self.tmp, self.broker.port, self.bus.port, self.hotline.url,
                            self.modem.port)
        self.observer = DurableSubscriber(self.broker.port, PREFIX)
        self.observer.start()
        self.gateway = GatewayProcess(config, self.tmp / "gateway.log")
        self.gateway.start()
        self.gateway.wait_ready(30)
        now = time.monotonic()
        for f in self.faults:
            f.next_at = now + self.rng.expovariate(1 / f.every_s)
        self.next_kill = now + self.rng.uniform(2, 15)

    def close(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        if self.observer is not None:
            self.observer.stop()
        self.bus.stop()
        self.modem.stop()
        self.hotline.stop()
        self.broker.stop()

    @property
    def gw(self) -> GatewayProcess:
        assert self.gateway is not None
        return self.gateway

    def alive(self) -> bool:
        return self.gw.proc is not None and self.gw.proc.poll() is None

    # -- one step of chaos ---------------------------------------------------------------
    def step(self, now: float, chaos: bool = True) -> None:
        self._gateway_life(now, chaos)
        for f in self.faults:
            if f.active and (now >= f.heal_at or not chaos):
                self._heal(f)
                f.next_at = now + self.rng.expovariate(1 / f.every_s)
            elif chaos and not f.active and now >= f.next_at:
                self._inject(f)
                f.heal_at = now + self.rng.uniform(*f.last_s)
        for node, at in list(self.held.items()):
            if now >= at:
                self.bus.release(node)
                del self.held[node]
        if now >= self.phase_until:  # quiet spells let mass groups end, bursts make them
            self.intensity = self.rng.choice([0.05, 0.3, 1.0])
            self.phase_until = now + self.rng.uniform(5, 20)
        if chaos and self.rng.random() < self.intensity:
            self._press()
        elif chaos and self.rng.random() < 0.2:
            self.resolve_escalated()

    def _gateway_life(self, now: float, chaos: bool) -> None:
        with self.life:
            if self.restart_at is None and not self.alive():
                # it died without being told to: a crash, which the run reports
                self.unexpected_exits.append(self.gw.proc.returncode if self.gw.proc else None)
                self.restart_at = now
            if self.restart_at is not None and (now >= self.restart_at or not chaos):
                self.gw.start()
                self.note("gateway started")
                self.restart_at = None
                self.kill_on_delivery = False
                # sometimes again during start-up, mostly after a while of running
                self.next_kill = now + (self.rng.uniform(0.2, 2) if self.rng.random() < 0.2
                                        else self.rng.uniform(4, 16))
                return
            if not chaos:
                self.kill_on_delivery = False
                return
            if self.restart_at is not None or now < self.next_kill:
                return
            way = self.rng.random()
            if way < 0.3 and not self.kill_on_delivery:
                # die while the hotline takes an alarm, before its 200 reaches the gateway
                self.kill_on_delivery = True
                self.next_kill = now + 10  # a plain kill if no delivery comes by then
                return
            if way < 0.55:
                # die just after a press: commit, ACK, publish and escalation in flight
                self.bus.press(self.rng.choice([n for n in KEYS if n not in self.held] or [11]))
                self.serial_presses += 1
                time.sleep(self.rng.uniform(0, 0.25))
            self._kill(now, "")

    def _kill(self, now: float, why: str) -> None:
        """SIGKILL (no clean shutdown, no flush); the caller holds ``life``."""
        self.gw.kill()
        self.kills.append(time.time())  # the wall clock, as events' ``_ts``
        self.note(f"gateway SIGKILLed{why}")
        self.kill_on_delivery = False
        self.restart_at = now + self.rng.uniform(0.0, 2.5)

    def _on_hotline_delivery(self, record: Any) -> None:
        """In the hotline's thread, before its answer is sent."""
        if not self.kill_on_delivery or not self.life.acquire(timeout=1):
            return
        try:
            if self.kill_on_delivery and self.restart_at is None and self.alive():
                self._kill(time.monotonic(), " (hotline took the alarm, no 200 yet)")
                self.kills_on_delivery += 1
        finally:
            self.life.release()

    def _inject(self, f: Fault) -> None:
        r = self.rng
        if f.name == "hotline":
            mode = r.choice(["500", "503", "hang", "down", "429"])
            if mode == "hang":
                self.hotline.hang(times=None)
            elif mode == "down":
                self.hotline.stop()
            elif mode == "429":
                self.hotline.rate_limit("1", times=None)
            else:
                self.hotline.fail(int(mode), times=None)
        elif f.name == "modem":
            mode = r.choice(["noreg", "noreg", "cms", "silent"])
            if mode == "noreg":
                self.modem.set_registration(0, r.choice([0, 2]))
            elif mode == "cms":
                self.modem.fail_sends(r.randint(1, 4), r.choice([500, 38, 42]))
            else:
                self.modem.set_silent(True)
        elif f.name == "serial":
            mode = r.choice(["noisy", "noisy", "noisy", "unplug"])
            if mode == "unplug":
                self.bus.close_line()  # the USB adapter pulled out
            else:
                self.bus.noisy(corrupt=r.uniform(0.001, 0.01), drop=r.uniform(0, 0.004),
                               duplicate=r.uniform(0, 0.004))
        else:
            mode = "stop"
            self.broker.stop()
        f.active = mode
        f.injected[mode] = f.injected.get(mode, 0) + 1
        self.note(f"{f.name} {mode}")

    def _heal(self, f: Fault) -> None:
        if f.name == "hotline":
            self.hotline.clear_faults()
            self.hotline.release()
            if not self.hotline.running:
                self.hotline.start()
        elif f.name == "modem":
            self.modem.set_registration(1, 1)
            self.modem.set_silent(False)
        elif f.name == "serial":
            if f.active == "unplug":
                self.bus.reopen_line()
            self.bus.noisy()
        elif not self.broker.running:
            self.broker.start()
            self.broker_restarts += 1
        self.note(f"{f.name} healed")
        f.active = None

    def _press(self) -> None:
        r = self.rng.random()
        if r < 0.45:
            self._click(self.rng.choice(list(GPIO)), 2.3 if self.rng.random() < 0.03 else 0.1)
        elif r < 0.9:
            free = [n for n in KEYS if n not in self.held]
            if not free:
                return
            node = self.rng.choice(free)
            if self.rng.random() < 0.1:
                self.bus.hold(node)
                self.held[node] = time.monotonic() + SERIAL_HOLD_MS / 1000 + 0.4
                self.serial_holds += 1
            else:
                self.bus.press(node)
                self.serial_presses += 1
        else:
            self.resolve_escalated()

    def _click(self, device: str, seconds: float) -> None:
        if not self.alive() or self.restart_at is not None:
            return
        start = time.time()
        try:
            answer = self.gw.control({"cmd": "click", "device": device, "seconds": seconds},
                                     timeout=seconds + 1.5)
            ok = bool(answer.get("ok"))
        except Exception:  # the gateway was starting, or died under the request
            ok = False
        self.clicks.append(Click(device, start, time.time(), ok))

    def resolve_escalated(self) -> int:
        """The security desk closes alarms the police know about (some after the police
        replied ``OK <code>`` by SMS), so the next press raises a new alarm."""
        assert self.observer is not None
        with self.observer.lock:
            docs = {a: d[-1] for a, d in self.observer.alarm_docs.items() if d}
        now = time.monotonic()
        sent = 0
        for alarm_id, doc in docs.items():
            delivered = any(e.get("status") == "delivered" for e in doc.get("escalations", []))
            if doc.get("state") == "resolved" or not delivered:
                continue
            if now - self.resolve_sent.get(alarm_id, -1e9) < 10:
                continue
            if doc.get("state") == "escalated" and self.rng.random() < 0.25:
                self.modem.deliver_sms(self.rng.choice(POLICE), f"OK {doc['code']}")
                self.police_acks += 1
                self.resolve_sent[alarm_id] = now - 7  # resolve a little later
                sent += 1
                continue
            self.observer.command(alarm_id, {"action": "resolve", "by": "Bảo vệ trực ca"})
            self.resolve_sent[alarm_id] = now
            sent += 1
        return sent

    def note(self, what: str) -> None:
        self.timeline.append((time.time(), what))

    def collect_acks(self) -> None:
        self.acked |= acked_frames(self.bus.downlink_log(), KEYS)
        for line in self.bus.uplink_log():  # as the nodes sent them, before the line's faults
            parts = line.split(b",")
            if len(parts) > 3 and parts[3] != b"HB":
                self.sent_frames[(int(parts[1]), int(parts[2]))] = line.strip().decode()

    def nodes_idle(self) -> bool:
        """No node has a frame waiting for its ACK or queued."""
        return all(getattr(n.firmware, "_inflight", None) is None
                   and not getattr(n.firmware, "_queue", None) for n in self.bus.nodes.values())


def external_deliveries(hotline: HotlineServer, modem: ModemSimulator,
                        plans: Plans) -> tuple[set[str], set[str], list[str]]:
    """Escalation ids delivered over HTTP, over SMS, and SMS references nobody planned."""
    http = {r.idempotency_key for r in hotline.deliveries() if r.idempotency_key}
    sms: set[str] = set()
    unknown: list[str] = []
    for m in modem.sent_messages():
        ref = sms_ref(m.text)
        if ref in plans.by_ref:
            sms.add(plans.by_ref[ref])
        else:
            unknown.append(f"{m.number}: {m.text[-40:]}")
    return http, sms, unknown


def alarm_documents(journal: Path) -> dict[str, dict[str, Any]]:
    import json
    import sqlite3

    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT topic, payload FROM retained WHERE topic LIKE 'alarm/%'"
                            ).fetchall()
    finally:
        conn.close()
    return {t.split("/", 1)[1]: json.loads(p) for t, p in rows if p}


def evaluate(rig: Chaos) -> dict[str, Any]:
    """Every check, as counts and lists of what failed (empty lists: all well)."""
    assert rig.observer is not None
    events = read_journal(rig.journal)
    journal_ids = {e["id"] for e in events}
    published = rig.observer.ids()
    committed_frames = {(e["detail"]["node"], e["detail"]["seq"]) for e in events
                        if isinstance(e.get("detail"), dict) and "node" in e["detail"]
                        and "seq" in e["detail"] and not e["type"].startswith("rejected")}
    rig.collect_acks()
    presses = [e for e in events if e["type"] in ("press", "hold")]
    lost_clicks = []
    for c in rig.clicks:
        if not c.ok or any(c.start - 1 <= k_wall <= c.end + 3 for k_wall in rig.kills):
            continue
        if not any(p["device"] == c.device and c.start - 0.2 <= p["_ts"] <= c.end + 0.2
                   for p in presses):
            lost_clicks.append(c)
    plans = Plans.from_events(events)
    docs = alarm_documents(rig.journal)
    raised = [e["alarm_id"] for e in events
              if e["type"] == "alarm_state" and (e.get("detail") or {}).get("state") == "raised"]
    marked = {e["alarm_id"] for e in events if e["type"] == "alarm_state"
              and (e.get("detail") or {}).get("state") == "escalated"}
    never_marked = [a for a in raised if a not in marked]
    http, sms, unknown_sms = external_deliveries(rig.hotline, rig.modem, plans)
    delivered = http | sms
    undelivered = []
    for alarm_id in raised:
        ids = plans.ids_for(alarm_id) | {x["escalation_id"] for x in
                                         docs.get(alarm_id, {}).get("escalations", [])}
        if not ids & delivered:
            undelivered.append((alarm_id, docs.get(alarm_id, {}).get("state")))
    # 4: one id per alarm, mass or not, channel and target
    groups: dict[tuple[Any, ...], set[str]] = {}
    by_body: dict[tuple[Any, ...], set[str]] = {}
    unknown_ids = []
    for r in rig.hotline.requests():
        key = r.idempotency_key or ""
        body = r.body or {}
        by_body.setdefault((body.get("alarm_id"), "HÀNG LOẠT" in str(body.get("message")),
                            r.path), set()).add(key)
        if key not in plans.by_id:
            unknown_ids.append(key)
            continue
        plan = plans.by_id[key]
        groups.setdefault((plan["alarm"]["id"], plan["mass"], "http"), set()).add(key)
    for eid in sms:
        plan = plans.by_id[eid]
        target = next(d["target"] for d in plan["deliveries"] if d["escalation_id"] == eid)
        groups.setdefault((plan["alarm"]["id"], plan["mass"], target), set()).add(eid)
    twice = {k: v for k, v in {**groups, **by_body}.items() if len(v) > 1}
    per_channel = {"http": len(http), "sms": len(sms)}
    return {
        "events": events, "journal_ids": journal_ids, "published": published,
        "unpublished": sorted(journal_ids - published), "committed_frames": committed_frames,
        "unacked_commit": sorted(rig.acked - committed_frames), "lost_clicks": lost_clicks,
        "plans": plans, "raised": raised, "undelivered": undelivered, "twice": twice,
        "never_marked": never_marked,
        "unknown_ids": unknown_ids, "unknown_sms": unknown_sms, "per_channel": per_channel,
        "bad_requests": [r.problem for r in rig.hotline.requests() if r.problem],
    }


def drain(rig: Chaos, timeout: float) -> tuple[bool, dict[str, Any]]:
    """Wait (at most ``timeout`` s) until the nodes are idle and checks 1-3 hold twice in a
    row over an unchanged journal with no command sent in between; meanwhile resolve
    escalated alarms, as a desk would. The last evaluation."""
    deadline = time.monotonic() + timeout
    good_at: int | None = None
    while True:
        sent = rig.resolve_escalated()
        r = evaluate(rig)
        if sent or not rig.nodes_idle() or (
                r["unpublished"] or r["unacked_commit"] or r["undelivered"]
                or r["never_marked"]):
            good_at = None
        elif good_at == len(r["events"]):
            return True, r
        else:
            good_at = len(r["events"])
        if time.monotonic() > deadline:
            return False, r
        time.sleep(1.0)


@pytest.mark.slow
@pytest.mark.timeout(int(SOAK_SECONDS + DRAIN_S + 120))
def test_chaos_no_alarm_is_lost(tmp_path: Path) -> None:
    if not os.path.exists(MOSQUITTO):
        pytest.fail("mosquitto is not installed (make test installs it)")
    print(f"\nchaos: seed={SOAK_SEED} seconds={SOAK_SECONDS:g} "
          f"(repeat with SOAK_SEED={SOAK_SEED} SOAK_SECONDS={SOAK_SECONDS:g})", flush=True)
    rng = random.Random(SOAK_SEED)
    rig = Chaos(tmp_path, rng)
    try:
        rig.start()
        started = time.monotonic()
        last_acks = started
        while time.monotonic() - started < SOAK_SECONDS:
            now = time.monotonic()
            rig.step(now)
            if now - last_acks > 2:
                rig.collect_acks()
                last_acks = now
            time.sleep(rng.uniform(0.02, 0.3))
        # heal everything; the gateway keeps running; wait for the backlog (bounded)
        rig.step(time.monotonic(), chaos=False)
        for node in list(rig.held):
            rig.bus.release(node)
        rig.held.clear()
        rig.gw.wait_ready(30)
        healed = time.monotonic()
        ok, result = drain(rig, DRAIN_S)
        drain_s = time.monotonic() - healed
        running = rig.alive() and rig.gw.control({"cmd": "ping"}, timeout=10).get("ok")
        report(rig, result, drain_s, ok)
        if rig.broker_restarts:
            assert (tmp_path / "mosquitto" / "mosquitto.db").exists(), (
                "mosquitto did not persist its sessions: check 1 would blame the gateway for "
                "the broker (see mosquitto/mosquitto.log)")
        if result["unpublished"] or result["undelivered"] or result["unacked_commit"]:
            diagnose(rig, result)
        assert not rig.unexpected_exits, f"the gateway exited by itself: {rig.unexpected_exits}"
        assert not result["unpublished"], (
            f"{len(result['unpublished'])} committed events never reached MQTT: "
            f"{result['unpublished'][:5]} (seed {SOAK_SEED})")
        assert not result["unacked_commit"], (
            f"frames ACKed to a node but not committed: {result['unacked_commit'][:10]} "
            f"(seed {SOAK_SEED})")
        assert not result["lost_clicks"], (
            f"GPIO presses the gateway took and never committed: {result['lost_clicks'][:5]} "
            f"(seed {SOAK_SEED})")
        assert not result["undelivered"], (
            f"alarms never delivered to the police: {result['undelivered'][:10]} "
            f"(seed {SOAK_SEED})")
        assert not result["never_marked"], (
            f"alarms delivered but never shown as escalated: {result['never_marked'][:10]} "
            f"(seed {SOAK_SEED})")
        assert not result["twice"], (
            f"escalations delivered under two ids: {result['twice']} (seed {SOAK_SEED})")
        assert not result["unknown_ids"] and not result["unknown_sms"], (
            f"deliveries under ids the journal never planned: {result['unknown_ids'][:5]} "
            f"{result['unknown_sms'][:5]} (seed {SOAK_SEED})")
        assert not result["bad_requests"], result["bad_requests"][:5]
        assert running, "the gateway is not running after the chaos"
        assert rig.gw.terminate(10) == 0, "the gateway did not stop cleanly on SIGTERM"
    except BaseException:
        log = tmp_path / "gateway.log"
        if log.exists():
            tail = log.read_text(errors="replace").splitlines()[-40:]
            print("--- gateway.log (tail) ---\n" + "\n".join(tail), file=sys.stderr)
        raise
    finally:
        rig.close()


def diagnose(rig: Chaos, r: dict[str, Any]) -> None:
    """On a failure: what was missing, among what the chaos did, on stderr."""
    missing = set(r["unpublished"])
    marks = [(e["_ts"], f"seq {e['seq']} {e['type']} {e.get('device')}"
              + (" NOT PUBLISHED" if e["id"] in missing else ""))
             for e in r["events"] if e["id"] in missing or e["type"] == "gateway_start"]
    lines = [f"{time.strftime('%H:%M:%S', time.localtime(t))}.{int(t * 1000) % 1000:03d} {what}"
             for t, what in sorted(marks + [(t, f"[chaos] {w}") for t, w in rig.timeline])]
    print("--- timeline ---\n" + "\n".join(lines), file=sys.stderr)


def report(rig: Chaos, r: dict[str, Any], drain_s: float, drained_ok: bool) -> None:
    events = r["events"]
    plans: Plans = r["plans"]
    mass = [p for p in plans.plans if p["mass"]]
    escalated = len(r["raised"]) - len(r["undelivered"])
    node_stats = {n: rig.bus.stats(n) for n in KEYS}
    unacked = set(rig.sent_frames) - rig.acked
    injected = {f.name: dict(f.injected) for f in rig.faults}
    lines = [
        f"chaos: seed={SOAK_SEED} seconds={SOAK_SECONDS:g} drained={drained_ok} "
        f"in {drain_s:.1f} s",
        f"  presses: gpio clicks={len(rig.clicks)} (taken {sum(c.ok for c in rig.clicks)}), "
        f"serial presses={rig.serial_presses} holds={rig.serial_holds}",
        f"  committed events={len(r['journal_ids'])} (press/hold "
        f"{sum(e['type'] in ('press', 'hold') for e in events)}), "
        f"published (unique ids)={len(r['published'] & r['journal_ids'])}, "
        f"MQTT messages={rig.observer.event_messages if rig.observer else 0}",
        f"  ACKed frames={len(rig.acked)}, committed serial frames={len(r['committed_frames'])}, "
        f"frames sent={len(rig.sent_frames)}, never ACKed={len(unacked)} (committed anyway "
        f"{len(unacked & r['committed_frames'])}), nodes={node_stats}",
        f"  alarms={len(r['raised'])}, escalated (delivered)={escalated}, plans={len(plans.plans)}"
        f" (mass {len(mass)}), police acks by SMS={rig.police_acks}, "
        f"resolves sent={len(rig.resolve_sent)}",
        f"  deliveries per channel: http={r['per_channel']['http']} "
        f"(requests {len(rig.hotline.requests())}), sms escalations={r['per_channel']['sms']} "
        f"(texts {len(rig.modem.sent_messages())})",
        f"  kills={len(rig.kills)} (as the hotline took an alarm {rig.kills_on_delivery}), "
        f"broker restarts={rig.broker_restarts}, "
        f"faults injected={injected}, unexpected exits={len(rig.unexpected_exits)}",
        f"  lost: unpublished={len(r['unpublished'])}, acked-not-committed="
        f"{len(r['unacked_commit'])}, lost clicks={len(r['lost_clicks'])}, "
        f"undelivered alarms={len(r['undelivered'])}, never escalated="
        f"{len(r['never_marked'])}, two ids={len(r['twice'])}",
    ]
    print("\n".join(lines), flush=True)

