"""Credentials never shown: a URL's user information is masked wherever a URL is displayed.

A hotline or broker URL may carry ``user:password@``; the gateway shows URLs in
``gateway/health``, in ``escalation_attempt.target`` and in its logs, and none of those is
a place for a password. Standard library only, so every layer can use it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# scheme://userinfo@ inside any text (an error message, a log line)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s?#]+)@")


def redact_url(url: str) -> str:
    """``url`` with its user information (``user:password@``) replaced by ``***@``; any
    other URL (or text that is not one) unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{MASK}@{host}"))


def redact_text(text: str) -> str:
    """``text`` with the user information of every URL in it masked."""
    return _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
