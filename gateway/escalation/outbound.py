"""What an escalation plan becomes on the wire: the HTTP request and the SMS text.

Sans-I/O: a plan (:mod:`gateway.alarms.plan`) and the site config in, an
:class:`~gateway.escalation.wire.EscalationRequest` or a string out. Every SMS carries a
short reference derived from its escalation id and attempt, so no two alarm texts are
identical (operators' anti-spam filters hold back repeats).
"""

from __future__ import annotations

from typing import Any

from gateway.config.schema import SiteConfig
from gateway.escalation.messages import AlarmFacts, Templates, sms_reference
from gateway.escalation.wire import EscalationRequest, SiteInfo, WardInfo

MASS_PREFIX = {"vi": "BÁO ĐỘNG HÀNG LOẠT ({n} báo động)", "en": "MASS ALARM ({n} alarms)"}


class Outbound:
    """Builds requests and texts for one site's config."""

    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        self.templates = Templates.from_config(config.messages, config.site.timezone)

    def facts(self, plan: dict[str, Any], ref: str) -> AlarmFacts:
        a = plan["alarm"]
        site = self.config.site
        ward = self.config.ward(a["ward"] or "")
        return AlarmFacts(
            type=a["type"], site=site.name, ward=ward.name if ward else (a["ward"] or "-"),
            room=a["room"], code=a["code"], raised_at=a["raised_at"], drill=a["drill"],
            device=a["device"], press_count=a["press_count"], address=site.address,
            phone=site.security_desk_phone, ref=ref,
        )

    def sms_text(self, plan: dict[str, Any], escalation_id: str, attempt: int) -> str:
        """The SMS for one number; ``attempt`` (1-based) changes the reference on resends."""
        facts = self.facts(plan, sms_reference(escalation_id, attempt))
        return _mass(plan, self.templates.render(facts), self.templates.language)

    def request(self, plan: dict[str, Any], escalation_id: str) -> EscalationRequest:
        """The signed-POST body for the HTTP channel (SPEC §4)."""
        a = plan["alarm"]
        facts = self.facts(plan, sms_reference(escalation_id))
        message, message_en = self.templates.http_messages(facts)
        site = self.config.site
        ward = self.config.ward(a["ward"] or "")
        return EscalationRequest(
            escalation_id=escalation_id, alarm_id=a["id"], code=a["code"], type=a["type"],
            drill=a["drill"],
            site=SiteInfo(site.id, site.name, site.address, site.security_desk_phone),
            ward=WardInfo(a["ward"] or "", ward.name if ward else ""),
            room=a["room"], device=a["device"], raised_at=a["raised_at"],
            escalated_at=plan["decided_at"], press_count=a["press_count"],
            acknowledged_locally=a["acknowledged_locally"],
            message=_mass(plan, message, self.templates.language),
            message_en=_mass(plan, message_en, "en"),
        )


def _mass(plan: dict[str, Any], text: str, language: str) -> str:
    if not plan.get("mass"):
        return text
    prefix = MASS_PREFIX["en" if language == "en" else "vi"].format(n=plan["count"])
    return f"{prefix}: {text}"
