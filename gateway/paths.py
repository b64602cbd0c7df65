"""Where the gateway keeps its files, in one place: every module asks here, none derives a path.

All files live in the storage folder (``[storage].path``, resolved against the config file's
folder): the journal, the control socket, the registry.
"""

from __future__ import annotations

from pathlib import Path

from gateway.config.schema import SiteConfig

JOURNAL_FILE = "journal.sqlite3"
CONTROL_SOCKET = "control.sock"
REGISTRY_FILE = "registry.json"


def storage_dir(config: SiteConfig) -> Path:
    """The storage folder of ``config``, absolute."""
    return config.resolve(config.storage.path)


def journal_path(config: SiteConfig) -> Path:
    """The journal's SQLite file."""
    return storage_dir(config) / JOURNAL_FILE


def control_path(config: SiteConfig) -> Path:
    """The control socket (owner-only Unix socket) of the running gateway."""
    return storage_dir(config) / CONTROL_SOCKET


def registry_path(config: SiteConfig) -> Path:
    """The serial node registry (tinydb, atomic storage)."""
    return storage_dir(config) / REGISTRY_FILE


#: ``alarm-gateway simulate`` keeps a simulated run apart from the site's own files: its
#: journal, registry and control socket live in ``<storage>/simulate/``, started from the
#: derived config ``<storage>/simulate/simulate.toml`` (``docs/simulator.md``)
SIMULATION_FOLDER = "simulate"
SIMULATION_CONFIG = "simulate.toml"


def simulation_dir(config: SiteConfig) -> Path:
    """Where a simulator run of this site writes everything."""
    return storage_dir(config) / SIMULATION_FOLDER


def simulation_config_path(config: SiteConfig) -> Path:
    """The derived config a simulator run of this site starts its gateway with."""
    return simulation_dir(config) / SIMULATION_CONFIG
