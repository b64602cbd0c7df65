"""A gateway pays in memory only for the parts its site uses (docs/benchmarks.md).

aiohttp (the desk console, the police receiver's ack poll), cryptography (DC-09's AES) and
amqtt (the demo's broker) are imported when those parts are built, never by the modules every
gateway loads: each costs several MiB of RSS on a Pi that has none to spare.
"""

from __future__ import annotations

import subprocess
import sys

OPTIONAL = ("aiohttp", "cryptography", "amqtt", "argon2", "pysiaalarm")


def test_the_service_modules_do_not_import_optional_libraries() -> None:
    code = (
        "import sys\n"
        "import gateway.app, gateway.cli, gateway.features.builders, gateway.preflight\n"
        f"print(' '.join(m for m in {OPTIONAL!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.split() == []
