"""Duress (a HOLD of any button, any press of a duress button) follows the site's duress
setting; press rules never delay it (SPEC §4). Proved on ``examples/site.toml`` itself:
its emergency-ward rule gives panic presses 30 s, and a hold there must still go at once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from alarms.alarm_helpers import (
    SECRET,
    Harness,
    in_thread,
    journal_events,
    run_gateway,
    site,
    until,
)
from gateway.alarms.policy import duress_summary
from gateway.config.schema import load_config
from gateway.core.errors import ConfigError
from gateway.core.events import EventDraft, EventType
from simulator.hotline import HotlineServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "site.toml"
PANIC_RULE = {"ward": "cap-cuu", "kind": "panic_button", "mode": "unacknowledged_after",
              "after_s": 30}


def hold(device: str) -> EventDraft:
    return EventDraft(EventType.HOLD, device=device)


def test_a_press_rule_naming_the_kind_never_delays_a_hold(tmp_path: Path) -> None:
    h = Harness(site(tmp_path, policy={"rules": [PANIC_RULE]}))
    raised = h.record(EventDraft(EventType.PRESS, device="er-1"))
    assert h.plans() == [] and h.engine.next_deadline() == h.clock.wall() + 30
    h.record(hold("er-1"))  # the same button, held: duress
    [plan] = h.plans()
    assert plan["reason"] == "hold" and plan["alarm"]["type"] == "duress"
    assert h.alarm(raised[0].alarm_id).escalate_at is None
    decided = next(e for e in h.events if e.detail and "escalation" in e.detail)
    assert decided.detail is not None and decided.detail["by"] == "policy.duress"


def test_a_duress_button_ignores_press_rules_but_follows_a_duress_rule(tmp_path: Path) -> None:
    rules = [{"ward": "cap-cuu", "mode": "never"}, {"kind": "duress_button", "mode": "never",
                                                     "alarm": "duress"}]
    h = Harness(site(tmp_path, policy={"rules": rules[:1]}))
    h.record(EventDraft(EventType.PRESS, device="er-2"))  # a duress button in cap-cuu
    assert [p["alarm"]["device"] for p in h.plans()] == ["er-2"]
    explicit = Harness(site(tmp_path, policy={"rules": rules}))
    explicit.record(EventDraft(EventType.PRESS, device="er-2"))
    assert explicit.plans() == []  # a rule that names duress is the one way to change it


def test_a_duress_rule_with_a_timer_and_the_summary_says_so(tmp_path: Path) -> None:
    rule = {"ward": "kham-benh", "alarm": "duress", "mode": "unacknowledged_after",
            "after_s": 20}
    config = site(tmp_path, policy={"rules": [PANIC_RULE, rule]})
    h = Harness(config)
    h.record(hold("b-0"))  # kham-benh
    assert h.plans() == [] and h.engine.next_deadline() == h.clock.wall() + 20
    assert duress_summary(config) == [
        "duress in ward cap-cuu: immediate (policy.duress)",
        "duress in ward kham-benh: police after 20 s unless the security desk acknowledges "
        "(policy.rules[1])"]


@pytest.mark.parametrize(("policy", "key", "reason"), [
    ({"duress": "immediate", "hold": "never"}, "policy.hold", "older name of policy.duress"),
    ({"rules": [{"kind": "duress_button", "mode": "never"}]}, "policy.rules[0].kind",
     "would never apply"),
])
def test_ambiguous_duress_settings_are_refused(tmp_path: Path, policy: dict[str, Any],
                                                key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        site(tmp_path, policy=policy)
    assert any(k == key and reason in why for k, why in caught.value.errors)


def test_check_config_on_the_example_says_duress_is_immediate_everywhere() -> None:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "check-config", "-c",
                           str(EXAMPLE)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "duress: immediate everywhere" in done.stdout.splitlines()[1]


def example_with_hotline(tmp_path: Path, broker_port: int, hotline_url: str) -> Path:
    """examples/site.toml with its policy and devices untouched; only the broker, the
    storage folder and a hotline to watch are set for the test."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^url = "mqtt://[^"]*"', f'url = "mqtt://127.0.0.1:{broker_port}"', text)
    text = re.sub(r'(?m)^path = "var/alarm-gateway"', f'path = "{tmp_path / "var"}"', text)
    secret = tmp_path / "hotline.secret"
    secret.write_bytes(SECRET + b"\n")
    os.chmod(secret, 0o600)
    text += f'\n[escalation.http]\nurl = "{hotline_url}"\nsecret_file = "{secret}"\n'
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert config.policy.rules[0].after_s == 30 and config.device("er-desk-1") is not None
    return path


def test_holding_the_example_emergency_panic_button_goes_to_the_police_at_once(
        tmp_path: Path, broker, hotline: HotlineServer) -> None:  # type: ignore[no-untyped-def]
    config = example_with_hotline(tmp_path, broker.port, hotline.url)
    pin = load_config(config).device("er-desk-1").pin  # type: ignore[union-attr]

    async def body(gw: Any, factory: Any) -> None:
        await in_thread(factory.pin(pin).drive_low)  # held down: a hold after hold_s (3 s)
        await until(lambda: journal_events(tmp_path, "hold"), 10, "the hold")
        # the press rule's 30 s must not apply: the police get it well before that
        assert await in_thread(hotline.wait_for, lambda h: h.deliveries(), 10)
        await in_thread(factory.pin(pin).drive_high)

    run_gateway(config, body)
    [delivery] = hotline.deliveries()
    assert delivery.body is not None and delivery.body["type"] == "duress"
    assert delivery.body["device"] == "er-desk-1"
    [plan] = [e["detail"]["escalation"] for e in journal_events(tmp_path, "alarm_state")
              if "escalation" in e["detail"]]
    assert plan["reason"] == "hold"
