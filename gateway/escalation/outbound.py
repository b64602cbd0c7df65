"""What an escalation plan becomes on the wire: the HTTP request and the SMS text.

Sans-I/O: a plan (:mod:`gateway.alarms.plan`) and the site config in, an
:class:`~gateway.escalation.wire.EscalationRequest` or a string out. The SMS texts are
:mod:`gateway.escalation.sms_texts` (one part by default); the HTTP body carries the long
texts of :mod:`gateway.escalation.messages`.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.alarms.plan import Plan
from gateway.config.schema import SiteConfig
from gateway.escalation.messages import AlarmFacts, Templates, sms_reference
from gateway.escalation.sms_check import alarm_facts
from gateway.escalation.sms_texts import SmsTexts
from gateway.escalation.wire import EscalationRequest, SiteInfo, WardInfo

MASS_PREFIX = {"vi": "BÁO ĐỘNG HÀNG LOẠT ({n} báo động)", "en": "MASS ALARM ({n} alarms)"}


class Outbound:
    """Builds requests and texts for one site's config."""

    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        self.templates = Templates.from_config(config.messages, config.site.timezone)
        self.sms_texts = SmsTexts.from_config(config)

    def facts(self, plan: Plan, ref: str) -> AlarmFacts:
        a = plan.alarm
        facts = alarm_facts(self.config, a.type, a.ward, a.room, a.code, a.raised_at,
                            drill=a.drill, device=a.device, press_count=a.press_count)
        members = tuple((self._ward_short(m.ward), m.room or "-") for m in plan.members)
        return replace(facts, ref=ref, members=members if len(members) > 1 else ())

    def _ward_short(self, ward_id: str | None) -> str:
        ward = self.config.ward(ward_id or "")
        return (ward.short_name or ward.name) if ward else (ward_id or "-")

    def sms_text(self, plan: Plan, escalation_id: str, attempt: int,
                 reminder: int = 0) -> str:
        """The SMS for one number: ``reminder`` > 0 for a number that had this alarm
        already; from ``attempt`` 2 on (a resend) a counter is added where it fits."""
        facts = self.facts(plan, sms_reference(escalation_id, attempt))
        return self.sms_texts.resend(self.sms_texts.alarm(facts, reminder=reminder), attempt)

    def request(self, plan: Plan, escalation_id: str) -> EscalationRequest:
        """The signed-POST body for the HTTP channel (SPEC §4)."""
        a = plan.alarm
        facts = self.facts(plan, sms_reference(escalation_id))
        message, message_en = self.templates.http_messages(facts)
        site = self.config.site
        ward = self.config.ward(a.ward or "")
        return EscalationRequest(
            escalation_id=escalation_id, alarm_id=a.id, code=a.code, type=a.type,
            drill=a.drill,
            site=SiteInfo(site.id, site.name, site.address, site.security_desk_phone),
            ward=WardInfo(a.ward or "", ward.name if ward else ""),
            room=a.room, device=a.device, raised_at=a.raised_at,
            escalated_at=plan.decided_at, press_count=a.press_count,
            acknowledged_locally=a.acknowledged_locally,
            message=_mass(plan, message, self.templates.language),
            message_en=_mass(plan, message_en, "en"),
        )


def _mass(plan: Plan, text: str, language: str) -> str:
    if not plan.mass:
        return text
    prefix = MASS_PREFIX["en" if language == "en" else "vi"].format(n=plan.count)
    return f"{prefix}: {text}"
