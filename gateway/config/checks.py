"""Checks the schema cannot express: references between sections, duplicates, files.

They run over the raw TOML document (even when the schema already failed), so one run of
``check-config`` reports every problem. Each check tolerates wrong types: the schema has
already reported those.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.config.values import (
    check_url,
    node_key_problem,
    resolve_path,
    secret_file_problem,
)
from gateway.core.sia import code_problems

Problem = tuple[str, str]
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")


def cross_checks(raw: dict[str, Any], base: Path) -> list[Problem]:
    """Every problem the schema cannot see in ``raw`` (relative paths against ``base``)."""
    checks: list[Callable[[dict[str, Any], Path], Iterator[Problem]]] = [
        _site,
        _ward_ids,
        _device_ids,
        _device_wiring,
        _mqtt,
        _policy,
        _escalation,
        _dc09,
        _console,
    ]
    out: list[Problem] = []
    for check in checks:
        try:
            out.extend(check(raw, base))
        except (TypeError, ValueError, AttributeError, OSError):
            # the schema has already reported the wrong type that tripped this check
            continue
    return out


def _dicts(raw: dict[str, Any], key: str) -> list[tuple[int, dict[str, Any]]]:
    items = raw.get(key)
    if not isinstance(items, list):
        return []
    return [(i, d) for i, d in enumerate(items) if isinstance(d, dict)]


def _section(raw: dict[str, Any], *keys: str) -> dict[str, Any] | None:
    node: Any = raw
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _resolve(base: Path, value: str) -> Path:
    return resolve_path(base, value)


def _secret(base: Path, value: str) -> str | None:
    """Why a secret file whose first line is the secret (a password, a signing key) cannot
    be used: not owner-only, unreadable, empty, or a blank first line (which would silently
    make an empty key)."""
    path = _resolve(base, value)
    problem = secret_file_problem(path)
    if problem:
        return problem
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"file {path} cannot be read as UTF-8 text ({exc})"
    if not text.strip():
        return f"file {path} is empty: the secret is its first line"
    if not text.splitlines()[0].strip():
        return f"file {path} has a blank first line: the secret is its first line"
    return None


def _site(raw: dict[str, Any], base: Path) -> Iterator[Problem]:
    site = _section(raw, "site") or {}
    zone = site.get("timezone")
    if isinstance(zone, str) and not _is_time_zone(zone):
        yield "site.timezone", (f"{zone!r} is not an IANA time zone name "
                                "(e.g. \"Asia/Ho_Chi_Minh\")")


def _is_time_zone(name: str) -> bool:
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _ward_id_set(raw: dict[str, Any]) -> set[str]:
    return {w["id"] for _, w in _dicts(raw, "wards") if isinstance(w.get("id"), str)}


def _ward_ids(raw: dict[str, Any], base: Path) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, ward in _dicts(raw, "wards"):
        wid = ward.get("id")
        if isinstance(wid, str):
            if wid in seen:
                yield f"wards[{i}].id", f"ward id {wid!r} is already used by wards[{seen[wid]}]"
            seen.setdefault(wid, i)


def _device_ids(raw: dict[str, Any], base: Path) -> Iterator[Problem]:
    wards = _ward_id_set(raw)
    seen: dict[str, int] = {}
    for i, dev in _dicts(raw, "devices"):
        did = dev.get("id")
        if isinstance(did, str):
            if did in seen:
                yield f"devices[{i}].id", f"device id {did!r} is already used by devices[{seen[did]}]"
            seen.setdefault(did, i)
        ward = dev.get("ward")
        if isinstance(ward, str) and ward not in wards:
            yield f"devices[{i}].ward", f"unknown ward {ward!r} (not in [[wards]])"


def _device_wiring(raw: dict[str, Any], base: Path) -> Iterator[Problem]:
    pins: dict[int, str] = {}
    nodes: dict[int, int] = {}
    for i, dev in _dicts(raw, "devices"):
        where = f"devices[{i}]"
        if dev.get("input", "gpio") == "gpio":
            yield from _gpio_device(dev, where, pins)
        elif dev.get("input") == "serial":
            yield from _serial_device(raw, dev, where, nodes, base)


def _gpio_device(dev: dict[str, Any], where: str, pins: dict[int, str]) -> Iterator[Problem]:
    if "pin" not in dev:
        yield f"{where}.pin", "is required for a GPIO device"
    for key in ("pin", "led_pin"):
        pin = dev.get(key)
        if isinstance(pin, int) and not isinstance(pin, bool):
            if pin in pins:
                yield f"{where}.{key}", f"pin {pin} is already used by {pins[pin]}"
            pins.setdefault(pin, where)
    if "pull_up" in dev and dev.get("pull_up") is None and dev.get("active_state") is None:
        yield f"{where}.active_state", "is required when pull_up is not set (external pull)"
    for key in ("node", "key_file"):
        if key in dev:
            yield f"{where}.{key}", "only applies to serial devices (input = \"serial\")"


def _serial_device(
    raw: dict[str, Any], dev: dict[str, Any], where: str, nodes: dict[int, int], base: Path
) -> Iterator[Problem]:
    if "serial" not in raw:
        yield f"{where}.input", "a serial device needs a [serial] section"
    node = dev.get("node")
    if node is None:
        yield f"{where}.node", "is required for a serial device"
    elif isinstance(node, int) and not isinstance(node, bool):
        if node in nodes:
            yield f"{where}.node", f"node {node} is already used by devices[{nodes[node]}]"
        nodes.setdefault(node, int(where[8:-1]))
    if "pin" in dev:
        yield f"{where}.pin", "only applies to GPIO devices (input = \"gpio\")"
    key = dev.get("key_file")
    if isinstance(key, str):
        problem = node_key_problem(_resolve(base, key))
        if problem:
            yield f"{where}.key_file", problem


def _mqtt(raw: dict[str, Any], base: Path) -> Iterator[Problem]:
    mqtt = _section(raw, "mqtt")
    if mqtt is None:
        return
    if "url" in mqtt:
        problem = check_url(mqtt["url"], ("mqtt", "mqtts"))
        if problem:
            yield "mqtt.url", problem
    pw = mqtt.get("password_file")
    if isinstance(pw, str):
        problem = _secret(base, pw)
        if problem:
            yield "mqtt.password_file", problem
        if not mqtt.get("username"):
            yield "mqtt.username", "is required when mqtt.password_file is set"
    yield from _existing_files(mqtt, base, "mqtt", ("ca_file", "client_cert"))
    key = mqtt.get("client_key")
    if isinstance(key, str):
        problem = secret_file_problem(_resolve(base, key))
        if problem:
            yield "mqtt.client_key", problem
    if bool(mqtt.get("client_cert")) != bool(mqtt.get("client_key")):
        yield "mqtt.client_key", "client_cert and client_key go together"
    url = mqtt.get("url")
    if isinstance(url, str) and url.startswith("mqtt://") and mqtt.get("ca_file"):
        yield "mqtt.ca_file", "is set but the URL is mqtt:// (use mqtts:// for TLS)"


def _existing_files(
    section: dict[str, Any], base: Path, name: str, keys: tuple[str, ...]
) -> Iterator[Problem]:
    for key in keys:
        value = section.get(key)
        if isinstance(value, str) and not _resolve(base, value).is_file():
            yield f"{name}.{key}", f"file {_resolve(base, value)} does not exist"


def _policy(raw: dict[str, Any], base: Path) -> Iterator[Problem]:
    wards = _ward_id_set(raw)
    policy = _section(raw, "policy") or {}
    if "duress" in policy and "hold" in policy:
        yield "policy.hold", "is the older name of policy.duress: set only policy.duress"
    for i, rule in _dicts(policy, "rules"):
        ward = rule.get("ward")
        if isinstance(ward, str) and ward not in wards:
            yield f"policy.rules[{i}].ward", f"unknown ward {ward!r} (not in [[wards]])"
        if rule.get("kind") == "duress_button" and rule.get("alarm") != "duress":
            yield (f"policy.rules[{i}].kind", "every alarm of a duress_button is duress, which "
                   "press rules never change: this rule would never apply; add "
                   "alarm = \"duress\" to make it a duress rule")


def _escalation(raw: dict[str, Any], base: Path) -> Iterator[Problem]:
    http = _section(raw, "escalation", "http")
    if http is not None:
        yield from _http_channel(http, base, "escalation.http", acks_default=False)
    escalation = _section(raw, "escalation") or {}
    urls = {http.get("url"): "escalation.http"} if http is not None else {}
    ids: dict[Any, int] = {}
    for i, receiver in _dicts(escalation, "receivers"):
        where = f"escalation.receivers[{i}]"
        yield from _http_channel(receiver, base, where, acks_default=True)
        if receiver.get("id") in ids:
            yield f"{where}.id", f"already used by escalation.receivers[{ids[receiver['id']]}]"
        if receiver.get("url") in urls:
            yield f"{where}.url", f"the same URL as {urls[receiver['url']]}"
        ids.setdefault(receiver.get("id"), i)
        urls.setdefault(receiver.get("url"), where)
    sms = _section(raw, "escalation", "sms")
    if sms is not None:
        if _section(raw, "modem") is None:
            yield "escalation.sms", "SMS escalation needs a [modem] section"
        for key in ("numbers", "drill_numbers", "reply_numbers"):
            yield from _numbers(sms.get(key), f"escalation.sms.{key}")
        tiers = sms.get("next_tiers")
        for i, tier in enumerate(tiers if isinstance(tiers, list) else []):
            yield from _numbers(tier, f"escalation.sms.next_tiers[{i}]")
        yield from _ladder(sms, _section(raw, "escalation", "reminders") or {})
    voice = _section(raw, "escalation", "voice")
    if voice is not None:
        if _section(raw, "modem") is None:
            yield "escalation.voice", "calls need a [modem] section"
        yield from _numbers(voice.get("numbers"), "escalation.voice.numbers")


def _ladder(sms: dict[str, Any], reminders: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The reminder ladder must be able to run as written: reminders that the SMS rate
    limit would hold back, tiers that are never reached, or tiers with no reminders, are
    a ladder the site would trust and never get."""
    after = reminders.get("after_s", 120)
    per_tier = reminders.get("rounds_per_tier", 2)
    max_rounds = reminders.get("max_rounds", 10)
    interval = sms.get("min_interval_s", 60)
    listed = sms.get("next_tiers")
    tiers: list[Any] = listed if isinstance(listed, list) else []
    if not all(isinstance(x, int) for x in (after, per_tier, max_rounds, interval)):
        return  # the schema names the wrong type
    where = "escalation.reminders.after_s"
    if tiers and after == 0:
        yield ("escalation.sms.next_tiers", "further tiers are reached by reminders, and "
               "[escalation.reminders] after_s = 0 turns them off: set after_s (e.g. 120)")
    if 0 < after < interval:
        yield (where, f"a reminder every {after} s, but [escalation.sms] min_interval_s "
               f"allows one SMS per number every {interval} s: raise after_s or lower "
               "min_interval_s")
    for i in range(len(tiers)):
        reached = (i + 1) * per_tier + 1
        if after and reached > max_rounds:
            yield (f"escalation.sms.next_tiers[{i}]", f"reached at round {reached}, after "
                   f"the last one (max_rounds = {max_rounds}): raise max_rounds or lower "
                   "rounds_per_tier")


def _numbers(values: Any, where: str) -> Iterator[Problem]:
    for i, number in enumerate(values if isinstance(values, list) else []):
        if isinstance(number, str) and not _PHONE.match(re.sub(r"[\s.-]", "", number)):
            yield f"{where}[{i}]", f"not a phone number: {number!r}"


def _http_channel(http: dict[str, Any], base: Path, where: str, *,
                  acks_default: bool) -> Iterator[Problem]:
    for key in ("url", "drill_url"):
        if key in http:
            problem = check_url(http[key], ("http", "https"))
            if problem:
                yield f"{where}.{key}", problem
    secret = http.get("secret_file")
    if isinstance(secret, str):
        problem = _secret(base, secret)
        if problem:
            yield f"{where}.secret_file", problem
    yield from _existing_files(http, base, where, ("ca_file",))
    url = http.get("url")
    if http.get("acks", acks_default) and isinstance(url, str) \
            and not url.split("?")[0].rstrip("/").endswith("/v1/alarms"):
        yield f"{where}.url", ("a police receiver's URL ends in /v1/alarms (its acks are "
                               "polled beside it at /v1/acks)")


def _dc09(raw: dict[str, Any], base: Path) -> Iterator[Problem]:
    """Receiver names, key files (owner-only, 16/24/32 characters), code mapping, zones."""
    dc09 = _section(raw, "escalation", "dc09")
    if dc09 is None:
        return
    names: dict[str, int] = {}
    for i, rcv in _dicts(dc09, "receivers"):
        where = f"escalation.dc09.receivers[{i}]"
        name = rcv.get("name")
        if isinstance(name, str) and name in names:
            yield f"{where}.name", f"{name!r} is already used by receivers[{names[name]}]"
        names.setdefault(str(name), i)
        key = rcv.get("key_file")
        if isinstance(key, str):
            problem = _dc09_key_problem(_resolve(base, key))
            if problem:
                yield f"{where}.key_file", problem
    codes = dc09.get("codes")
    for key, problem in code_problems(codes if isinstance(codes, dict) else {}):
        yield f"escalation.dc09.codes.{key}", problem
    zones: dict[int, int] = {}
    for i, dev in _dicts(raw, "devices"):
        zone = dev.get("zone", i + 1)
        if isinstance(zone, int) and zone in zones:
            yield f"devices[{i}].zone", (f"DC-09 zone {zone} is already devices[{zones[zone]}]'s"
                                         " (a device's zone defaults to its position, from 1)")
        zones.setdefault(zone, i)


def _dc09_key_problem(path: Path) -> str | None:
    problem = secret_file_problem(path)
    if problem:
        return problem
    lines = path.read_bytes().splitlines()
    key = lines[0].strip() if lines else b""
    if len(key) not in (16, 24, 32):
        return f"the key must be 16, 24 or 32 characters (AES-128/192/256), not {len(key)}"
    if not key.isascii() or not key.decode("ascii").isprintable():
        return "the key must be printable ASCII characters (as the receiving centre gives it)"
    return None


def _console(raw: dict[str, Any], base: Path) -> Iterator[Problem]:
    console = _section(raw, "console")
    if console is None:
        return
    listen = console.get("listen", "127.0.0.1:8080")
    if not isinstance(listen, str):
        return
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        yield "console.listen", f"must be host:port, not {listen!r}"
        return
    loopback = host in ("127.0.0.1", "localhost", "[::1]", "::1")
    if not loopback and not (console.get("tls_cert") and console.get("tls_key")):
        yield "console.listen", f"{host} is not loopback: tls_cert and tls_key are required"
    if not loopback and not console.get("users"):
        yield "console.users", f"{host} is not loopback: at least one user is required"
    yield from _existing_files(console, base, "console", ("tls_cert",))
    key = console.get("tls_key")
    if isinstance(key, str):  # the console's private key: owner-only, like every secret
        problem = secret_file_problem(_resolve(base, key))
        if problem:
            yield "console.tls_key", problem
    yield from _console_display(console, base)


def _console_display(console: dict[str, Any], base: Path) -> Iterator[Problem]:
    """Wall-screen access: real IP addresses, and a token file only its owner can read."""
    addresses = console.get("display_addresses")
    for i, address in enumerate(addresses if isinstance(addresses, list) else []):
        try:
            ipaddress.ip_address(address)
        except (ValueError, TypeError):
            yield f"console.display_addresses[{i}]", f"not an IP address: {address!r}"
    token = console.get("display_token_file")
    if isinstance(token, str):
        path = _resolve(base, token)
        problem = secret_file_problem(path)
        if problem:
            yield "console.display_token_file", problem
        elif len((path.read_text(encoding="utf-8").strip().splitlines() or [""])[0]) < 16:
            yield "console.display_token_file", "the token must be at least 16 characters"
