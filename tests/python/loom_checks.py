"""What Loom's check scripts share: a failed check, comparisons, and running named checks.

Each script in this directory lists `(name, check)` pairs and hands them to `run_checks`,
which prints one line per check and `all N checks passed` at the end; the Rust tests
(`loom_e2e::process::run_check_script`) look for that line.
"""

from __future__ import annotations

import traceback
from typing import Callable, Sequence


class CheckFailed(Exception):
    """A check saw something other than what it expected."""


def expect(what: str, actual: object, expected: object) -> None:
    """Fails the check unless `actual == expected`, naming `what`."""
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def ensure(condition: object, message: str) -> None:
    """Fails the check with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


def run_checks(checks: Sequence[tuple[str, Callable[[], object]]], keep_going: bool = False) -> int:
    """Runs `checks` in order and returns the exit status: 0 when all passed.

    The first failure ends the run unless `keep_going`, when every check runs (for tests
    that then assert on what the upstreams received). Any exception fails its check.
    """
    failed: list[str] = []
    for name, check in checks:
        try:
            check()
        except CheckFailed as failure:
            print(f"FAIL {name}: {failure}", flush=True)
            failed.append(name)
        except Exception:  # noqa: BLE001 - report any SDK error as this check's failure
            print(f"FAIL {name}: unexpected exception\n{traceback.format_exc()}", flush=True)
            failed.append(name)
        else:
            print(f"ok   {name}", flush=True)
            continue
        if not keep_going:
            return 1
    if failed:
        print(f"{len(failed)} of {len(checks)} checks failed: {'; '.join(failed)}", flush=True)
        return 1
    print(f"all {len(checks)} checks passed", flush=True)
    return 0
