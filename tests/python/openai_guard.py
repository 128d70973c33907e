#!/usr/bin/env python3
"""Loom's virtual keys, seen through the official `openai` Python SDK.

Usage: openai_guard.py --base-url http://127.0.0.1:PORT/v1

`tests/python_sdk_guard.rs` starts the gateway with authentication on and these keys:

- `lk-app`: any model;
- `lk-mini`: only `gpt-4o-mini*` models;
- `lk-burst`: a limit of 1 request per second;
- `lk-retry`: a limit of 1 request per second, used with `gpt-4o-mini` only.

Checks: an unknown key raises `AuthenticationError` (401), a model the key may not use
raises `PermissionDeniedError` (403), a second request within the second raises
`RateLimitError` (429) with `retry-after` and `retry-after-ms`, and a client with
`max_retries=1` waits the `retry-after-ms` the 429 gives and succeeds on its retry (the
Rust side checks that Loom saw exactly two requests for that call, the second allowed).

One line is printed per check: `ok   <check>` or `FAIL <check>: <what went wrong>`; the
first failure stops the run with exit status 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, Callable

import openai

from loom_checks import CheckFailed, expect, run_checks

CONTENT = "Hello from the mock upstream"
HELLO: list[Any] = [{"role": "user", "content": "Hi"}]


def client(base_url: str, key: str, max_retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=max_retries, timeout=30)


def check_unknown_key(base_url: str) -> None:
    try:
        client(base_url, "lk-nope").chat.completions.create(model="gpt-4o", messages=HELLO)
    except openai.AuthenticationError as error:
        expect("status_code", error.status_code, 401)
        expect("type", error.type, "authentication_error")
        expect("code", error.code, "invalid_api_key")
        expect("message", error.body and error.body.get("message"), "Incorrect API key provided")  # type: ignore[union-attr]
        return
    raise CheckFailed("no openai.AuthenticationError was raised")


def check_known_key(base_url: str) -> None:
    completion = client(base_url, "lk-app").chat.completions.create(model="gpt-4o", messages=HELLO)
    expect("content", completion.choices[0].message.content, CONTENT)


def check_model_not_allowed(base_url: str) -> None:
    try:
        client(base_url, "lk-mini").chat.completions.create(model="gpt-4o", messages=HELLO)
    except openai.PermissionDeniedError as error:
        expect("status_code", error.status_code, 403)
        expect("type", error.type, "permission_error")
        expect("code", error.code, "model_not_allowed")
        expect("param", error.param, "model")
        expect(
            "message",
            error.body and error.body.get("message"),  # type: ignore[union-attr]
            "The key `mini` may not use the model `gpt-4o`",
        )
        return
    raise CheckFailed("no openai.PermissionDeniedError was raised")


def check_rate_limited(base_url: str) -> None:
    burst = client(base_url, "lk-burst")
    first = burst.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    expect("first request's x-ratelimit-remaining-requests", first.headers.get("x-ratelimit-remaining-requests"), "0")
    try:
        burst.chat.completions.create(model="gpt-4o", messages=HELLO)
    except openai.RateLimitError as error:
        expect("status_code", error.status_code, 429)
        expect("type", error.type, "rate_limit_error")
        expect("code", error.code, "rate_limit_exceeded")
        expect(
            "message",
            error.body and error.body.get("message"),  # type: ignore[union-attr]
            "Rate limit reached for key `burst`: 1 requests per 1s",
        )
        expect("retry-after", error.response.headers.get("retry-after"), "1")
        wait_ms = int(error.response.headers.get("retry-after-ms", "-1"))
        if not 0 < wait_ms <= 1000:
            raise CheckFailed(f"retry-after-ms is not within the second: {wait_ms}")
        return
    raise CheckFailed("no openai.RateLimitError was raised")


def check_retry_after_is_honoured(base_url: str) -> None:
    retrying = client(base_url, "lk-retry", max_retries=1)
    retrying.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    # Refused at once, then retried by the SDK after `retry-after-ms`, which lets it through.
    completion = retrying.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    expect("content after the retry", completion.choices[0].message.content, CONTENT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="the gateway's OpenAI base URL, ending in /v1")
    parser.add_argument("--time-limit", type=int, default=120, help="seconds before the script gives up")
    args = parser.parse_args()
    signal.alarm(args.time_limit)

    print(f"openai {openai.__version__} against {args.base_url}", flush=True)
    checks: list[tuple[str, Callable[[], None]]] = [
        ("unknown key raises AuthenticationError", lambda: check_unknown_key(args.base_url)),
        ("a Loom key authenticates", lambda: check_known_key(args.base_url)),
        ("a model the key may not use raises PermissionDeniedError", lambda: check_model_not_allowed(args.base_url)),
        ("a request over the limit raises RateLimitError", lambda: check_rate_limited(args.base_url)),
        ("max_retries=1 waits retry-after-ms and succeeds", lambda: check_retry_after_is_honoured(args.base_url)),
    ]
    return run_checks(checks)


if __name__ == "__main__":
    sys.exit(main())
