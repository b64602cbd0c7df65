"""The receiver's configuration: one TOML file, validated whole before anything starts.

:func:`load_config` returns a frozen :class:`ReceiverConfig` or raises
:class:`~gateway.core.errors.ConfigError` with every problem as ``(key_path, reason)``.
Relative paths are read relative to the config file's folder. Each site has its own secret
file (owner-only), shared with that site's gateway and no other: a shared secret would let one
hospital's gateway speak for another.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.config.values import secret_file_problem
from gateway.core.errors import ConfigError
from receiver.dc09_config import Dc09, dc09_problems, read_key

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Receiver(_Strict):
    """Who this receiver is. ``max_wait_s``: the longest an ack poll is held open (s)."""

    id: Ident
    name: str = Field(min_length=1)
    timezone: str = "Asia/Ho_Chi_Minh"
    max_wait_s: int = Field(default=30, ge=1, le=120)
    max_skew_s: int = Field(default=300, ge=30, le=3600)


class Listener(_Strict):
    """An HTTP listener; TLS when both ``tls_cert`` and ``tls_key`` are set."""

    listen: str = "127.0.0.1:8443"
    tls_cert: str | None = None
    tls_key: str | None = None


class Screen(Listener):
    """The wall screen's listener and sessions (minutes, from login)."""

    listen: str = "127.0.0.1:8090"
    session_minutes: int = Field(default=720, ge=1, le=7 * 24 * 60)


class Storage(_Strict):
    path: str = "/var/lib/alarm-receiver"


class Site(_Strict):
    """A hospital whose gateway may report here. ``supervision_s``: silence (no alarm, no
    test report, no ack poll) longer than this shows the site as "mất liên lạc"."""

    id: Ident
    name: str = Field(min_length=1)
    address: str = ""
    phone: str = ""
    secret_file: str
    supervision_s: int = Field(default=180, ge=2, le=7 * 86400)


class Officer(_Strict):
    """A duty officer's account (``alarm-receiver hash-password`` makes the hash);
    ``display_name`` is what the hospital sees, ``name`` what the officer types."""

    name: str = Field(min_length=1, max_length=64)
    display_name: str = Field(default="", max_length=80)
    password_hash: str = Field(pattern=r"^\$argon2id\$")

    @property
    def shown(self) -> str:
        return self.display_name or self.name


class ReceiverConfig(_Strict):
    """The whole file; ``base_dir`` is set by the loader."""

    receiver: Receiver
    api: Listener = Listener()
    screen: Screen = Screen()
    storage: Storage = Storage()
    sites: list[Site] = Field(min_length=1)
    officers: list[Officer] = Field(default_factory=list)
    dc09: Dc09 | None = None
    base_dir: str = "."

    def site(self, site_id: str) -> Site | None:
        return next((s for s in self.sites if s.id == site_id), None)

    def officer(self, name: str) -> Officer | None:
        return next((o for o in self.officers if o.name == name), None)

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def storage_dir(self) -> Path:
        return self.resolve(self.storage.path)

    def dc09_key(self, key_file: str | None) -> bytes | None:
        """A DC-09 account's AES key (checked at load time), or None for plain messages."""
        return read_key(self.resolve(key_file)) if key_file else None

    def secret(self, site: Site) -> bytes:
        """The site's shared secret: the first line of its file (checked at load time)."""
        text = self.resolve(site.secret_file).read_text(encoding="utf-8")
        return text.splitlines()[0].strip().encode("utf-8") if text.strip() else b""


def load_config(path: str | os.PathLike[str]) -> ReceiverConfig:
    """Read, parse and validate the whole file; raise ConfigError listing every problem."""
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([("", f"{file}: no such file")]) from None
    except (PermissionError, IsADirectoryError) as exc:
        raise ConfigError([("", f"{file}: cannot be read ({exc.strerror})")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([("", f"{file}: not UTF-8 text ({exc.reason})")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([("", f"{file}: TOML syntax error: {exc}")]) from None
    return validate_config(raw, base_dir=file.resolve().parent)


def validate_config(raw: dict[str, Any], base_dir: Path | str = ".") -> ReceiverConfig:
    """Schema first, then what the schema cannot see (duplicates, secret files, listeners)."""
    errors: list[tuple[str, str]] = []
    if "base_dir" in raw:
        errors.append(("base_dir", "is set by the loader, not by the file"))
    config: ReceiverConfig | None = None
    try:
        config = ReceiverConfig.model_validate({**raw, "base_dir": str(base_dir)})
    except ValidationError as exc:
        errors.extend(_pydantic_errors(exc))
    if config is not None:
        errors.extend(_cross_checks(config))
    if errors or config is None:
        raise ConfigError(list(dict.fromkeys(errors)))
    return config


def _cross_checks(c: ReceiverConfig) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    errors += _duplicates("sites", [s.id for s in c.sites], "id")
    errors += _duplicates("officers", [o.name for o in c.officers], "name")
    secrets: dict[bytes, int] = {}
    for i, site in enumerate(c.sites):
        problem = secret_file_problem(c.resolve(site.secret_file))
        if problem:
            errors.append((f"sites[{i}].secret_file", problem))
            continue
        secret = c.secret(site)
        if len(secret) < 16:
            errors.append((f"sites[{i}].secret_file", "the secret must be at least 16 characters"))
        elif secret in secrets:
            errors.append((f"sites[{i}].secret_file", f"same secret as sites[{secrets[secret]}]: "
                           "each site needs its own, or one gateway could speak for another"))
        secrets.setdefault(secret, i)
        if site.supervision_s < 2 * c.receiver.max_wait_s:
            errors.append((f"sites[{i}].supervision_s", "must be at least twice "
                           f"receiver.max_wait_s ({2 * c.receiver.max_wait_s} s): a gateway "
                           "polls once per wait"))
    for name, listener in (("api", c.api), ("screen", c.screen)):
        errors += _listener_problems(name, listener, c)
    if c.dc09 is not None:
        errors += dc09_problems(c.dc09, {s.id for s in c.sites}, c.resolve,
                                secret_file_problem, split_listen)
    return errors


def _duplicates(section: str, values: list[str], key: str) -> list[tuple[str, str]]:
    seen: dict[str, int] = {}
    out = []
    for i, value in enumerate(values):
        if value in seen:
            out.append((f"{section}[{i}].{key}", f"{value!r} is already used by "
                                                 f"{section}[{seen[value]}]"))
        seen.setdefault(value, i)
    return out


def _listener_problems(name: str, listener: Listener, c: ReceiverConfig) -> list[tuple[str, str]]:
    out = []
    try:
        split_listen(listener.listen)
    except ValueError as exc:
        out.append((f"{name}.listen", str(exc)))
    if bool(listener.tls_cert) != bool(listener.tls_key):
        out.append((f"{name}.tls_cert", "tls_cert and tls_key go together"))
    for key in ("tls_cert", "tls_key"):
        value = getattr(listener, key)
        if value and not c.resolve(value).is_file():
            out.append((f"{name}.{key}", f"file {c.resolve(value)} does not exist"))
    return out


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8443"`` → ``("127.0.0.1", 8443)``; ``"[::1]:8443"`` → ``("::1", 8443)``."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be host:port with a port 1..65535, not {listen!r}")
    return host.strip("[]") or "127.0.0.1", int(port)




def _pydantic_errors(exc: ValidationError) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and "[" in p)]
        msg = {"extra_forbidden": "unknown key", "missing": "is required"}.get(
            err["type"], err["msg"][0].lower() + err["msg"][1:])
        out.append((_key_path(loc), msg))
    return out


def _key_path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
