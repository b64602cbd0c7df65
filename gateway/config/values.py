"""Checks of single config values shared by the schema and the cross-checks: URLs, secret
files; and :func:`resolve_path`, the one place a config path is made absolute."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def resolve_path(base: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """``path`` as the gateway reads it: ``~`` expanded, a relative one against ``base``
    (the config file's folder, never the working directory). ``check-config`` and ``run``
    both resolve through here (``SiteConfig.resolve``), so both read the same file."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(base) / p


def secret_file_problem(path: Path) -> str | None:
    """Why a secret file cannot be used, or None: it must exist, be a readable regular file,
    and be readable by its owner only (no group or other permission bits)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return f"file {path} does not exist"
    except OSError as exc:
        return f"file {path} cannot be read ({exc.strerror})"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if st.st_mode & 0o077:
        return f"file {path} is readable by others (mode {st.st_mode & 0o777:o}); chmod 600 it"
    if not os.access(path, os.R_OK):
        return f"file {path} is not readable by this user"
    return None


#: a node key's least length: HMAC-SHA256 keys under 128 bits are refused
NODE_KEY_MIN_BYTES = 16


def parse_node_key(text: str) -> bytes:
    """A serial node's key from its key file's text: hex digits, whitespace ignored, at
    least :data:`NODE_KEY_MIN_BYTES`. Raise ValueError saying why it cannot be used."""
    digits = "".join(text.split())
    if not digits:
        raise ValueError("key file is empty")
    try:
        key = bytes.fromhex(digits)
    except ValueError:
        raise ValueError("key file must hold hex digits only") from None
    if len(key) < NODE_KEY_MIN_BYTES:
        raise ValueError(f"key is {len(key)} bytes; at least {NODE_KEY_MIN_BYTES} "
                         f"({2 * NODE_KEY_MIN_BYTES} hex digits) are needed")
    return key


def node_key_problem(path: Path) -> str | None:
    """Why the node key file at ``path`` cannot be used, or None (the gateway loads it the
    same way, so ``check-config`` passing means the key loads)."""
    problem = secret_file_problem(path)
    if problem:
        return problem
    try:
        parse_node_key(path.read_text(encoding="ascii"))
    except UnicodeDecodeError:
        return f"file {path}: key file must hold hex digits only"
    except OSError as exc:
        return f"file {path} cannot be read ({exc.strerror})"
    except ValueError as exc:
        return f"file {path}: {exc}"
    return None


def check_url(url: Any, schemes: tuple[str, ...]) -> str | None:
    """Why ``url`` is not a usable URL with one of ``schemes``, or None."""
    if not isinstance(url, str):
        return "must be a string"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in schemes:
        return f"scheme must be one of {', '.join(s + '://' for s in schemes)}, not {url!r}"
    if not parts.hostname:
        return f"has no host: {url!r}"
    if port == 0:
        return "port 0 is not valid"
    return None
