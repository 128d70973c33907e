#!/usr/bin/env python3
"""Loom's virtual keys, seen through the official `anthropic` Python SDK (`x-api-key`).

Usage: anthropic_guard.py --base-url http://127.0.0.1:PORT

`tests/python_sdk_guard.rs` starts the gateway with authentication on and these keys:
`lk-app` (any model), `lk-mini` (only `gpt-4o-mini*` models) and `lk-burst` (a limit of
1 request per second). The SDK sends its `api_key` as `x-api-key` to `/v1/messages`.

Checks: an unknown key raises `AuthenticationError` (401), a model the key may not use
raises `PermissionDeniedError` (403), a second request within the second raises
`RateLimitError` (429) with `retry-after`, each with Anthropic's error body.

One line is printed per check: `ok   <check>` or `FAIL <check>: <what went wrong>`; the
first failure stops the run with exit status 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from typing import Any, Callable

import anthropic

CONTENT = "Hello from the mock upstream"
HELLO: list[Any] = [{"role": "user", "content": "Hi"}]


class CheckFailed(Exception):
    pass


def expect(what: str, actual: object, expected: object) -> None:
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def client(base_url: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0, timeout=30)


def expect_body(error: anthropic.APIStatusError, kind: str, message: str) -> None:
    expect("body", error.body, {"type": "error", "error": {"type": kind, "message": message}})


def check_unknown_key(base_url: str) -> None:
    try:
        client(base_url, "lk-nope").messages.create(model="gpt-4o", max_tokens=16, messages=HELLO)
    except anthropic.AuthenticationError as error:
        expect("status_code", error.status_code, 401)
        expect_body(error, "authentication_error", "Incorrect API key provided")
        return
    raise CheckFailed("no anthropic.AuthenticationError was raised")


def check_known_key(base_url: str) -> None:
    message = client(base_url, "lk-app").messages.create(model="gpt-4o", max_tokens=16, messages=HELLO)
    expect("text", [block.text for block in message.content if block.type == "text"], [CONTENT])


def check_model_not_allowed(base_url: str) -> None:
    try:
        client(base_url, "lk-mini").messages.create(model="gpt-4o", max_tokens=16, messages=HELLO)
    except anthropic.PermissionDeniedError as error:
        expect("status_code", error.status_code, 403)
        expect_body(error, "permission_error", "The key `mini` may not use the model `gpt-4o`")
        return
    raise CheckFailed("no anthropic.PermissionDeniedError was raised")


def check_rate_limited(base_url: str) -> None:
    burst = client(base_url, "lk-burst")
    burst.messages.create(model="gpt-4o", max_tokens=16, messages=HELLO)
    try:
        burst.messages.create(model="gpt-4o", max_tokens=16, messages=HELLO)
    except anthropic.RateLimitError as error:
        expect("status_code", error.status_code, 429)
        expect_body(error, "rate_limit_error", "Rate limit reached for key `burst`: 1 requests per 1s")
        expect("retry-after", error.response.headers.get("retry-after"), "1")
        return
    raise CheckFailed("no anthropic.RateLimitError was raised")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="the gateway's base URL (the SDK adds /v1/messages)")
    parser.add_argument("--time-limit", type=int, default=120, help="seconds before the script gives up")
    args = parser.parse_args()
    signal.alarm(args.time_limit)

    print(f"anthropic {anthropic.__version__} against {args.base_url}", flush=True)
    checks: list[tuple[str, Callable[[], None]]] = [
        ("unknown key raises AuthenticationError", lambda: check_unknown_key(args.base_url)),
        ("a Loom key in x-api-key authenticates", lambda: check_known_key(args.base_url)),
        ("a model the key may not use raises PermissionDeniedError", lambda: check_model_not_allowed(args.base_url)),
        ("a request over the limit raises RateLimitError", lambda: check_rate_limited(args.base_url)),
    ]
    for name, check in checks:
        try:
            check()
        except CheckFailed as failure:
            print(f"FAIL {name}: {failure}", flush=True)
            return 1
        except Exception:  # noqa: BLE001 - report any SDK error as this check's failure
            print(f"FAIL {name}: unexpected exception\n{traceback.format_exc()}", flush=True)
            return 1
        print(f"ok   {name}", flush=True)
    print(f"all {len(checks)} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
