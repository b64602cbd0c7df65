"""Which gateway a command-line verb means: the site's own, or a simulation of the site.

``alarm-gateway simulate -c site.toml`` runs its gateway on a derived config whose files
live in ``<storage>/simulate/`` (the production journal is never touched). A technician
then types ``events -c site.toml`` or ``status -c site.toml``, naming the site's own file.
:func:`locate` answers for them: the site's gateway when its control socket answers; else
a simulation of the site when one answers; else the site's own files (whose absence the
verb reports). Whenever the simulation is chosen, :attr:`Target.note` says so in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.config.schema import SiteConfig, load_config
from gateway.ops.control import request_sync
from gateway.paths import control_path, journal_path, simulation_config_path

PING_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Target:
    """The config to use; ``running``: a gateway answered on its control socket;
    ``note``: one line for stderr when the simulation was picked (else None)."""

    config: SiteConfig
    running: bool
    note: str | None = None


def answers(socket: Path, timeout: float = PING_TIMEOUT_S) -> bool:
    """True when a gateway answers ``ping`` on ``socket`` within ``timeout`` seconds."""
    if not socket.exists():
        return False
    try:
        return bool(request_sync(socket, {"cmd": "ping"}, timeout=timeout).get("ok"))
    except (OSError, TimeoutError, ValueError):
        return False


def locate(config: SiteConfig) -> Target:
    """The site's running gateway, else its running simulation, else the site's files."""
    if answers(control_path(config)):
        return Target(config, running=True)
    derived = simulation_config_path(config)
    if derived.exists():
        try:
            sim = load_config(derived)
        except (OSError, ValueError):
            return Target(config, running=False)
        if answers(control_path(sim)):
            return Target(sim, running=True, note=f"no gateway runs for this site; using its "
                                                  f"running simulation ({derived})")
    return Target(config, running=False)


def missing_journal_hint(config: SiteConfig) -> str | None:
    """When the site has no journal but a past simulation left one: which file to use."""
    derived = simulation_config_path(config)
    if journal_path(config).exists() or not derived.exists():
        return None
    return (f"the last simulation of this site kept its journal apart: "
            f"alarm-gateway events -c {derived}")
