"""Everything checked before a gateway starts, in one call: ``run`` and ``check-config`` both
load through here, so a config that ``check-config`` passes is one ``run`` accepts.

The schema and its cross-checks are the config package's own; what needs the domain (the
message templates rendered by the escalation package) is added here, in the composition
layer, so the config package never imports the domain.
"""

from __future__ import annotations

from pathlib import Path

from gateway.config.schema import SiteConfig, load_config
from gateway.core.errors import ConfigError
from gateway.escalation.messages import check_template
from gateway.escalation.sms_check import problems as sms_problems
from gateway.escalation.sms_texts import REQUIRED, TextKind


def load_site(path: str | Path) -> SiteConfig:
    """The validated config of ``path``; :class:`ConfigError` lists every problem."""
    config = load_config(path)
    problems = list(template_problems(config))
    if not problems:
        problems = sms_problems(config)  # every device's alarm text within max_parts
    if problems:
        raise ConfigError(problems)
    return config


def template_problems(config: SiteConfig) -> list[tuple[str, str]]:
    """``(key path, reason)`` for each unusable ``[messages]`` template (``sms``,
    ``sms_en`` and each of ``[messages.templates]``, with the fields its kind needs)."""
    found: list[tuple[str, str]] = []
    messages = config.messages
    for key in ("sms", "sms_en"):
        template = getattr(messages, key, None)
        if isinstance(template, str):
            found.extend((f"messages.{key}", problem) for problem in check_template(template))
    for kind, template in (messages.templates or {}).items():
        found.extend((f"messages.templates.{kind}", problem)
                     for problem in check_template(template, REQUIRED[TextKind(kind)]))
    return found
