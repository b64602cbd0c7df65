"""Every SMS a site can send, rendered before it runs (``check-config``, SPEC §4).

For each device: its alarm text, its duress text, its drill text, the last reminder and
the confirmation, each with the parts it takes; one mass alarm naming every room. An
alarm, duress or reminder text that needs more parts than ``[messages] max_parts``
(default 1) is refused with the key to shorten, so a site learns at installation, not at
3 a.m., that the police phone would get three SMS. Sans-I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway.alarms.model import alarm_type
from gateway.config.schema import Device, SiteConfig
from gateway.core.smstext import SmsShape, shape
from gateway.escalation.messages import AlarmFacts
from gateway.escalation.sms_texts import SmsTexts, TextKind

SAMPLE_TIME = 1_795_000_000.0  # 18:06 local; every HH:MM has the same length
SAMPLE_CODE = "3769"
MASS_SAMPLE = 5  # devices a sample mass alarm names
REFUSED = frozenset({"alarm", "duress", "reminder"})
"""What must fit ``max_parts``: what the police read first, and what they read again."""


@dataclass(frozen=True, slots=True)
class Rendering:
    """One text as the phone shows it: whose (``device`` or ``*`` for the site), which
    (``alarm``, ``duress``, ``drill``, ``reminder``, ``confirmation``, ``mass``)."""

    device: str
    what: str
    text: str
    shape: SmsShape


def device_facts(config: SiteConfig, device: Device, *, kind: str = "press",
                 code: str = SAMPLE_CODE, raised_at: float | str = SAMPLE_TIME,
                 drill: bool = False) -> AlarmFacts:
    """The facts an SMS about ``device`` names, from the config (short names included)."""
    return alarm_facts(config, alarm_type(device.kind, kind), device.ward, device.room, code,
                       raised_at, drill=drill, device=device.id)


def alarm_facts(config: SiteConfig, alarm_kind: str, ward_id: str | None, room: str | None,
                code: str, raised_at: float | str, *, drill: bool = False,
                device: str | None = None, press_count: int = 1) -> AlarmFacts:
    """The facts of one alarm: its type, ward and room, code and raise time (unix s or
    RFC 3339), with the site's and ward's names from the config."""
    site = config.site
    ward = config.ward(ward_id or "")
    return AlarmFacts(
        type=alarm_kind, site=site.name, site_short=site.short_name,
        ward=ward.name if ward else (ward_id or "-"),
        ward_short=(ward.short_name or ward.name) if ward else (ward_id or "-"),
        room=room, code=code, raised_at=raised_at, drill=drill, device=device,
        press_count=press_count, address=site.address, phone=site.security_desk_phone,
    )


def render_table(config: SiteConfig) -> list[Rendering]:
    """Every device's texts, then one mass alarm naming every alarm device's room."""
    texts = SmsTexts.from_config(config)
    last_reminder = max(1, config.escalation.reminders.max_rounds - 1)
    out: list[Rendering] = []
    for dev in config.devices:
        facts = device_facts(config, dev)
        forms = [("alarm", texts.alarm(facts)),
                 ("duress", texts.alarm(device_facts(config, dev, kind="hold"))),
                 ("drill", texts.alarm(device_facts(config, dev, drill=True))),
                 ("reminder", texts.alarm(facts, reminder=last_reminder)),
                 ("confirmation", texts.render(TextKind.CONFIRMATION, facts))]
        out += [Rendering(dev.id, what, text, shape(text)) for what, text in forms]
    sample = [device_facts(config, d) for d in config.devices[:MASS_SAMPLE]]
    if len(sample) > 1:
        members = tuple((f.ward_short, f.room or "-") for f in sample)
        text = texts.alarm(replace(sample[0], members=members))
        out.append(Rendering("*", "mass", text, shape(text)))
    return out


def problems(config: SiteConfig) -> list[tuple[str, str]]:
    """``(key path, reason)`` for each alarm text over ``max_parts`` (broken templates
    were refused earlier, by the config's cross-checks). Nothing to check without
    ``[escalation.sms]``: no SMS is ever sent."""
    if config.escalation.sms is None:
        return []
    limit = config.messages.max_parts
    over: dict[str, list[Rendering]] = {}
    for r in render_table(config):
        if r.what in REFUSED and r.shape.parts > limit:
            over.setdefault(r.device, []).append(r)
    index = {d.id: i for i, d in enumerate(config.devices)}
    return [(f"devices[{index[device]}].room",
             f"SMS for {device} need more than messages.max_parts = {limit}: "
             + ", ".join(f"{r.what} {r.shape.describe()}" for r in rs)
             + f"; shorten site.short_name, the ward's short_name, the room or the template"
             f" ({rs[0].text!r})") for device, rs in over.items()]


def report(config: SiteConfig) -> list[str]:
    """The lines ``check-config`` prints: each text with its parts."""
    lines = [f"SMS texts ({config.messages.charset}, at most {config.messages.max_parts} "
             f"part{'s' if config.messages.max_parts > 1 else ''} for an alarm):"]
    for r in render_table(config):
        mark = " !" if r.what in REFUSED and r.shape.parts > config.messages.max_parts else ""
        lines.append(f"  {r.device:<16} {r.what:<12} [{r.shape.describe()}]{mark} {r.text}")
    return lines
