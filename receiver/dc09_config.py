"""The receiver's ``[dc09]`` section: where it listens for DC-09 and whom it accepts.

Each panel (or gateway) account is 3–16 hex digits and names the configured site it
belongs to, so its alarms show under that hospital's name. An account with ``key_file``
accepts only AES-encrypted messages, with the key in that owner-only file: its first line,
16, 24 or 32 characters (AES-128/192/256), used as written, as panels and pysiaalarm take it.

    [dc09]
    listen = "0.0.0.0:6000"
    [[dc09.accounts]]
    account = "1A2B"
    site = "bv-a"
    key_file = "keys/bv-a.dc09"
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
KEY_SIZES = (16, 24, 32)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Dc09Account(_Strict):
    account: str = Field(pattern=r"^[0-9A-Fa-f]{3,16}$")
    site: Ident
    key_file: str | None = None


class Dc09(_Strict):
    """``listen`` host:port; a time stamp more than ``max_behind_s`` behind or
    ``max_ahead_s`` ahead of the receiver's clock is answered NAK (with its time)."""

    listen: str = "127.0.0.1:6000"
    max_behind_s: int = Field(default=40, ge=5, le=3600)
    max_ahead_s: int = Field(default=20, ge=5, le=3600)
    accounts: list[Dc09Account] = Field(min_length=1)


def read_key(path: Path) -> bytes:
    """The key: the file's first line without its line end."""
    lines = path.read_bytes().splitlines()
    return lines[0].strip() if lines else b""


def key_problem(path: Path, file_problem: Callable[[Path], str | None]) -> str | None:
    """Why the key file cannot be used, or None."""
    problem = file_problem(path)
    if problem:
        return problem
    key = read_key(path)
    if len(key) not in KEY_SIZES:
        return (f"the key must be 16, 24 or 32 characters (AES-128/192/256), "
                f"not {len(key)}")
    if not key.isascii() or not key.decode("ascii").isprintable():
        return "the key must be printable ASCII characters (as entered on the panel)"
    return None


def dc09_problems(dc09: Dc09, site_ids: set[str], resolve: Callable[[str], Path],
                  file_problem: Callable[[Path], str | None],
                  split_listen: Callable[[str], Any]) -> list[tuple[str, str]]:
    """What the schema cannot see: the listen address, sites, duplicate accounts, keys."""
    out: list[tuple[str, str]] = []
    try:
        split_listen(dc09.listen)
    except ValueError as exc:
        out.append(("dc09.listen", str(exc)))
    seen: dict[str, int] = {}
    for i, acc in enumerate(dc09.accounts):
        where = f"dc09.accounts[{i}]"
        if acc.site not in site_ids:
            out.append((f"{where}.site", f"no site {acc.site!r} in [[sites]]"))
        upper = acc.account.upper()
        if upper in seen:
            out.append((f"{where}.account", f"{acc.account!r} is already used by "
                                            f"dc09.accounts[{seen[upper]}]"))
        seen.setdefault(upper, i)
        if acc.key_file:
            problem = key_problem(resolve(acc.key_file), file_problem)
            if problem:
                out.append((f"{where}.key_file", problem))
    return out
