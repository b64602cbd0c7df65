"""``make bench``: every benchmark in bench/, one after the other, with default arguments.

bench.press_latency and bench.side_by_side first, then any other ``bench/*.py`` module that
has a ``main()``. One failing benchmark does not stop the others; the exit status is 1 if
any failed.

    python -m bench.run_all
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

FIRST = ["bench.press_latency", "bench.side_by_side"]
NOT_BENCHMARKS = {"__init__", "common", "run_all", "mqttio_driver"}


def modules() -> list[str]:
    others = sorted(f"bench.{p.stem}" for p in Path(__file__).parent.glob("*.py")
                    if p.stem not in NOT_BENCHMARKS and f"bench.{p.stem}" not in FIRST)
    return FIRST + others


def run(name: str) -> bool:
    try:
        module = importlib.import_module(name)
    except Exception:
        traceback.print_exc()
        return False
    main = getattr(module, "main", None)
    if not callable(main):
        return True
    print(f"\n=== {name} ===", flush=True)
    started = time.monotonic()
    argv = sys.argv
    sys.argv = [name]  # each benchmark parses its own (default) arguments
    try:
        main()
    except SystemExit as exc:
        if exc.code not in (None, 0):
            print(f"{name} exited with {exc.code}", flush=True)
            return False
    except Exception:
        traceback.print_exc()
        return False
    finally:
        sys.argv = argv
        print(f"=== {name}: {time.monotonic() - started:.0f} s ===", flush=True)
    return True


def main() -> None:
    failed = [name for name in modules() if not run(name)]
    if failed:
        print(f"\nfailed: {', '.join(failed)}", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
