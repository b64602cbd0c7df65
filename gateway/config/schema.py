"""The site configuration: one TOML file, validated whole before anything starts.

This module is the only reader of configuration files. ``load_config`` returns a frozen
:class:`SiteConfig` or raises :class:`~gateway.core.errors.ConfigError` carrying *every* problem as
``(key_path, reason)``, e.g. ``("devices[2].pin", "pin 17 is already used by devices[0]")``.
The schema is declared with pydantic (types, ranges, unknown keys); what pydantic cannot see
(references between sections, duplicate pins, secret files) is checked in ``_cross_checks``.
Relative paths are read relative to the config file's folder.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.config.checks import cross_checks
from gateway.config.values import resolve_path
from gateway.core.errors import ConfigError

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Site(_Strict):
    """``[site]``: who the police are told about; ``timezone`` (IANA) for local times."""

    id: Ident
    name: str = Field(min_length=1)
    short_name: str = Field(default="", max_length=40)  # in SMS; the name if empty
    address: str = ""
    security_desk_phone: str = ""
    timezone: str = "Asia/Ho_Chi_Minh"


class Ward(_Strict):
    """``[[wards]]``: a department, e.g. ``cap-cuu`` / "Khoa Cấp cứu"."""

    id: Ident
    name: str = Field(min_length=1)
    short_name: str = Field(default="", max_length=40)  # in SMS; the name if empty


DeviceKind = Literal["panic_button", "duress_button", "door_contact", "bed_call", "sensor"]


class Device(_Strict):
    """``[[devices]]``: a button or contact, wired to a GPIO pin or a serial node."""

    id: Ident
    ward: str
    room: str = Field(min_length=1)
    kind: DeviceKind = "panic_button"
    name: str = ""
    input: Literal["gpio", "serial"] = "gpio"
    # GPIO wiring
    pin: int | None = Field(default=None, ge=0, le=53)
    pull_up: bool | None = True
    active_state: bool | None = None
    bounce_ms: int = Field(default=30, ge=0, le=1000)
    hold_s: float = Field(default=3.0, gt=0, le=60)
    led_pin: int | None = Field(default=None, ge=0, le=53)
    # DC-09 zone reported for this device (default: its position in devices, from 1)
    zone: int | None = Field(default=None, ge=1, le=9999)
    # serial node
    node: int | None = Field(default=None, ge=1, le=65535)
    key_file: str | None = None
    supervision_s: int | None = Field(default=None, ge=10, le=86400)
    # a door contact raises an alarm on OPEN only when told to
    alarm_on_open: bool = False


class Serial(_Strict):
    """``[serial]``: the node bus's UART and its battery and supervision limits."""

    port: str = "/dev/ttyAMA0"
    baud: int = Field(default=115200, ge=1200, le=4_000_000)
    low_battery_mv: int = Field(default=2600, ge=0, le=10_000)
    supervision_s: int = Field(default=300, ge=10, le=86400)


class Mqtt(_Strict):
    """``[mqtt]``: the broker (TLS and a password file when not on loopback)."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    prefix: str = Field(default="alarmgw", pattern=r"^[A-Za-z0-9_/-]{1,64}$")
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    client_id: str | None = None
    tls_insecure: bool = False


class Storage(_Strict):
    """``[storage]``: the folder of the journal, registry and control socket."""

    path: str = "/var/lib/alarm-gateway"
    retention_days: float = Field(default=90, gt=0, le=3650)


class Health(_Strict):
    """``[health]``: how often ``gateway/health`` is published and its trouble limits."""

    interval_s: float = Field(default=30, ge=1, le=60)
    disk_free_min_mb: int = Field(default=200, ge=0)
    backlog_max: int = Field(default=1000, ge=1)
    hotline_failures_max: int = Field(default=3, ge=1)
    periodic_test_h: float = Field(default=0, ge=0, le=24 * 31)


PolicyMode = Literal["immediate", "unacknowledged_after", "never"]


class PolicyRule(_Strict):
    """A press rule, or (``alarm = "duress"``) a duress rule: only a duress rule applies to
    duress alarms (a HOLD, any press of a duress button); a press rule never does."""

    ward: str | None = None
    kind: DeviceKind | None = None
    alarm: Literal["duress"] | None = None
    mode: PolicyMode
    after_s: int = Field(default=60, ge=1, le=3600)


class MassAlarm(_Strict):
    """``[policy.mass_alarm]``: ``count`` alarms within ``window_s`` become one escalation."""

    count: int = Field(default=3, ge=2, le=1000)
    window_s: int = Field(default=30, ge=1, le=3600)


class Policy(_Strict):
    """``duress`` is the site's duress setting (``hold`` is its older name); ``after_s``
    (seconds) is the security desk's window for ``unacknowledged_after``."""

    default: PolicyMode = "unacknowledged_after"
    after_s: int = Field(default=60, ge=1, le=3600)
    duress: PolicyMode | None = None
    hold: PolicyMode | None = None
    delivery: Literal["dual", "fallback"] = "dual"
    fallback_after_s: int = Field(default=20, ge=1, le=3600)
    rules: list[PolicyRule] = Field(default_factory=list)
    mass_alarm: MassAlarm = MassAlarm()

    @property
    def duress_mode(self) -> PolicyMode:
        """The site's duress setting: ``duress``, else ``hold``, else ``immediate``."""
        return self.duress or self.hold or "immediate"

    @property
    def duress_key(self) -> str:
        """The key that set :attr:`duress_mode`, for messages and the journal."""
        return "policy.hold" if self.duress is None and self.hold else "policy.duress"


class HttpChannel(_Strict):
    """``[escalation.http]``: the police hotline (SPEC §4) and its retry timing."""

    url: str
    secret_file: str
    ca_file: str | None = None
    timeout_s: float = Field(default=5, gt=0, le=120)
    max_attempts: int = Field(default=8, ge=1, le=100)
    retry_base_s: float = Field(default=1.0, gt=0, le=60)  # first backoff delay, seconds
    retry_cap_s: float = Field(default=30.0, gt=0, le=600)  # longest backoff delay, seconds
    insecure: bool = False
    drill_url: str | None = None
    # a police receiver (SPEC §6) at this URL: keep its ack long-poll open
    acks: bool = False
    poll_wait_s: int = Field(default=25, ge=1, le=120)  # how long each ack poll may wait


class PoliceReceiver(HttpChannel):
    """One police receiver (``alarm-receiver``) among several: its own URL, secret,
    delivery state and ack stream. ``id`` names it in logs, health and its ack cursor."""

    id: Ident
    acks: bool = True


class SmsChannel(_Strict):
    """``[escalation.sms]``: police numbers, drill numbers and who may reply."""

    numbers: list[str] = Field(default_factory=list)
    drill_numbers: list[str] = Field(default_factory=list)
    reply_numbers: list[str] = Field(default_factory=list)
    min_interval_s: int = Field(default=60, ge=0, le=3600)
    # further tiers (e.g. the district police duty line), each added after rounds_per_tier
    next_tiers: list[list[str]] = Field(default_factory=list, max_length=5)


class Reminders(_Strict):
    """The SMS ladder: while no police acknowledgement came, the alarm's SMS goes again
    every ``after_s`` seconds (``NHẮC LẠI <n>``, a new round with its own ids); every
    ``rounds_per_tier`` rounds the next tier of ``[escalation.sms] next_tiers`` is added;
    ``max_rounds`` counts the first escalation. ``after_s = 0`` turns it off."""

    after_s: int = Field(default=120, ge=0, le=3600)  # 0: never remind
    rounds_per_tier: int = Field(default=2, ge=1, le=50)
    max_rounds: int = Field(default=10, ge=1, le=100)


class Voice(_Strict):
    """A call after the SMS, to wake the officer (seconds)."""

    numbers: list[str] = Field(default_factory=list)
    ring_s: float = Field(default=30, ge=5, le=120)
    min_interval_s: int = Field(default=300, ge=0, le=86400)  # per number


class Dc09Receiver(_Strict):
    """One alarm receiving centre (SPEC §7): where, who we are there (account, ``L`` line,
    optional ``R`` receiver number, all hex), the AES key file (16/24/32 characters, owner
    only; none: plain messages) and the ``NULL`` link test period (seconds, 0 = none)."""

    name: Ident
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    account: str = Field(pattern=r"^[0-9A-Fa-f]{3,16}$")
    line: str = Field(default="1", pattern=r"^[0-9A-Fa-f]{1,6}$")
    receiver: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{1,6}$")
    key_file: str | None = None
    link_test_s: float = Field(default=60, ge=0, le=86400)


class Dc09Channel(_Strict):
    """``[escalation.dc09]``: the receiving centres, the answer time-out and backoff
    (seconds), whether device and gateway events (tamper, battery, supervision, trouble,
    tests) are reported too, and the site's own DC-03 code for any event."""

    receivers: list[Dc09Receiver] = Field(min_length=1)
    timeout_s: float = Field(default=10, gt=0, le=120)
    max_attempts: int = Field(default=8, ge=1, le=100)
    retry_base_s: float = Field(default=1.0, gt=0, le=60)
    retry_cap_s: float = Field(default=30.0, gt=0, le=600)
    report_events: bool = True
    codes: dict[str, str] = Field(default_factory=dict)


class Escalation(_Strict):
    """``[escalation]``: every way to the police."""

    http: HttpChannel | None = None
    receivers: list[PoliceReceiver] = Field(default_factory=list)
    sms: SmsChannel | None = None
    reminders: Reminders = Reminders()
    voice: Voice | None = None
    dc09: Dc09Channel | None = None


class Modem(_Strict):
    """``[modem]``: the LTE modem's port (SMS out, police replies in)."""

    port: str
    baud: int = Field(default=115200, ge=1200, le=4_000_000)
    poll_s: float = Field(default=30, ge=1, le=3600)


TemplateKind = Literal["alarm", "drill", "reminder", "mass", "confirmation", "no_match",
                       "not_understood"]


class Messages(_Strict):
    """``[messages]``: the language and templates of police messages."""

    language: Literal["vi", "en"] = "vi"
    sms: str | None = None  # the alarm SMS template (same as templates.alarm)
    sms_en: str | None = None  # the alarm SMS template when language = "en"
    charset: Literal["ucs2", "gsm7"] = "ucs2"  # gsm7: without diacritics, 160 a part
    max_parts: int = Field(default=1, ge=1, le=10)  # parts an alarm SMS may take
    templates: dict[TemplateKind, str] = Field(default_factory=dict)


class ConsoleUser(_Strict):
    """``[[console.users]]``: a security desk login (argon2id hash only)."""

    name: str = Field(min_length=1, max_length=64)
    password_hash: str = Field(pattern=r"^\$argon2id\$")


class Console(_Strict):
    """``[console]``: the security desk web page."""

    enabled: bool = True
    listen: str = "127.0.0.1:8080"
    tls_cert: str | None = None
    tls_key: str | None = None
    session_minutes: int = Field(default=720, ge=1, le=7 * 24 * 60)
    users: list[ConsoleUser] = Field(default_factory=list)
    #: client addresses whose page shows and sounds alarms without a login (a wall screen)
    display_addresses: list[str] = Field(default_factory=list, max_length=64)
    #: an owner-only file holding a token: ``/display?token=…`` makes a wall screen anywhere
    display_token_file: str | None = None


class HomeAssistant(_Strict):
    """``[homeassistant]``: MQTT discovery for Home Assistant."""

    enabled: bool = False
    discovery_prefix: str = Field(default="homeassistant", pattern=r"^[A-Za-z0-9_/-]{1,64}$")


class Drills(_Strict):
    """The site's drill target, which the monthly report holds each ward to."""

    per_ward_per_month: int = Field(default=1, ge=0, le=100)  # 0: no target


class Report(_Strict):
    """The monthly report (``alarm-gateway report``)."""

    sms_part_price: float = Field(default=0, ge=0)  # per SMS part, in ``currency``; 0: not shown
    currency: str = Field(default="VND", min_length=1, max_length=8)


class SiteConfig(_Strict):
    """The whole file. ``source`` is where it was read from (set by :func:`load_config`)."""

    site: Site
    wards: list[Ward] = Field(min_length=1)
    devices: list[Device] = Field(default_factory=list)
    serial: Serial | None = None
    mqtt: Mqtt = Mqtt()
    storage: Storage = Storage()
    health: Health = Health()
    policy: Policy = Policy()
    escalation: Escalation = Escalation()
    modem: Modem | None = None
    messages: Messages = Messages()
    console: Console | None = None
    homeassistant: HomeAssistant = HomeAssistant()
    drills: Drills = Drills()
    report: Report = Report()
    simulation: bool = False
    base_dir: str = "."

    def device(self, device_id: str) -> Device | None:
        return next((d for d in self.devices if d.id == device_id), None)

    def ward(self, ward_id: str) -> Ward | None:
        return next((w for w in self.wards if w.id == ward_id), None)

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """A config-relative path made absolute against the config file's folder: the one
        place every path of the config is resolved (:func:`resolve_path`)."""
        return resolve_path(self.base_dir, path)



def load_config(path: str | os.PathLike[str]) -> SiteConfig:
    """Read, parse and validate the whole file; raise ConfigError listing every problem."""
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([("", f"{file}: no such file")]) from None
    except PermissionError:
        raise ConfigError([("", f"{file}: not readable (permission denied)")]) from None
    except IsADirectoryError:
        raise ConfigError([("", f"{file}: is a folder, not a file")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([("", f"{file}: not UTF-8 text ({exc.reason})")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([("", f"{file}: TOML syntax error: {exc}")]) from None
    return validate_config(raw, base_dir=file.resolve().parent)


def validate_config(raw: dict[str, Any], base_dir: Path | str = ".") -> SiteConfig:
    """Validate an already-parsed TOML document (schema, then cross-references)."""
    errors: list[tuple[str, str]] = []
    for key in ("base_dir",):
        if key in raw:
            errors.append((key, "is set by the loader, not by the file"))
    config: SiteConfig | None = None
    try:
        config = SiteConfig.model_validate({**raw, "base_dir": str(base_dir)})
    except ValidationError as exc:
        errors.extend(_pydantic_errors(exc))
    errors.extend(_cross_checks(raw, Path(base_dir)))
    if errors or config is None:
        raise ConfigError(_unique([_name_device(raw, e) for e in errors]))
    return config


_DEVICE_PATH = re.compile(r"^devices\[(\d+)\]")


def _name_device(raw: dict[str, Any], error: tuple[str, str]) -> tuple[str, str]:
    """A problem of ``devices[i]`` also names the device's id: nobody counts to the 37th
    ``[[devices]]`` table in a long file."""
    path, reason = error
    match = _DEVICE_PATH.match(path)
    devices = raw.get("devices")
    if match is None or path.endswith("].id") or not isinstance(devices, list):
        return error
    index = int(match.group(1))
    device = devices[index] if index < len(devices) else None
    dev_id = device.get("id") if isinstance(device, dict) else None
    if not isinstance(dev_id, str) or not dev_id:
        return error
    return path, f"{reason} (device {dev_id!r})"


def key_path(loc: Iterable[int | str]) -> str:
    """``('devices', 2, 'pin')`` → ``devices[2].pin``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _pydantic_errors(exc: ValidationError) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and "[" in p)]
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + _did_you_mean(loc)
        elif err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "literal_error":
            msg = msg.replace("Input should be", "must be")
        else:
            msg = msg[0].lower() + msg[1:]
        out.append((key_path(loc), msg))
    return out


def _did_you_mean(loc: list[int | str]) -> str:
    """``" (did you mean 'after_s'?)"`` when an unknown key is close to a known one."""
    if not loc or not isinstance(loc[-1], str):
        return ""
    model: Any = SiteConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if _is_model(model) else None
        if field is None:
            return ""
        model = _model_in(field.annotation)
        if model is None:
            return ""
    known = [name for name in model.model_fields if name != "base_dir"]
    close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _model_in(annotation: Any) -> Any:
    """The model class inside ``Model``, ``Model | None`` or ``list[Model]``, or None."""
    if _is_model(annotation):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _unique(errors: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(errors))


def _cross_checks(raw: dict[str, Any], base: Path) -> list[tuple[str, str]]:
    return cross_checks(raw, base)


def read_key(config: SiteConfig, path: str) -> bytes:
    """A DC-09 AES key: the key file's first line, as written (checked at load time)."""
    lines = config.resolve(path).read_bytes().splitlines()
    return lines[0].strip() if lines else b""


def read_secret(config: SiteConfig, path: str) -> str:
    """The first line of a secret file, stripped; the file was checked at load time."""
    text = config.resolve(path).read_text(encoding="utf-8")
    return text.splitlines()[0].strip() if text.strip() else ""
