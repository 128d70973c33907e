#!/usr/bin/env python3
"""Loom's virtual keys, seen through the official `anthropic` Python SDK (`x-api-key`).

Usage: anthropic_guard.py --base-url http://127.0.0.1:PORT

`tests/python_sdk_guard.rs` starts the gateway with authentication on and these keys:
`lk-app` (any model), `lk-mini` (only `gpt-4o-mini*` models), `lk-burst` (a limit of
1 request per second) and `lk-retry` (a limit of 1 request per second, used with
`gpt-4o-mini` only). The SDK sends its `api_key` as `x-api-key` to `/v1/messages`.

Checks: an unknown key raises `AuthenticationError` (401), a model the key may not use
raises `PermissionDeniedError` (403), a second request within the second raises
`RateLimitError` (429) with `retry-after`, each with Anthropic's error body; and a client
with `max_retries=1` is refused once, sleeps exactly the `retry-after-ms` the 429 gives
(the SDK reads `retry-after-ms` first, then `retry-after`), and succeeds on its retry (the
Rust side checks that Loom saw exactly two requests for that call, the second allowed).

One line is printed per check: `ok   <check>` or `FAIL <check>: <what went wrong>`; the
first failure stops the run with exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any, Callable

import anthropic

from loom_checks import CheckFailed, expect, run_checks

CONTENT = "Hello from the mock upstream"
HELLO: list[Any] = [{"role": "user", "content": "Hi"}]


def client(base_url: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0, timeout=30)


class RetrySleeps(logging.Handler):
    """The seconds the SDK says it sleeps before each retry (its "Retrying request" log line)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Retrying request to %s in %f seconds" and isinstance(record.args, tuple):
            self.seconds.append(float(record.args[1]))


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


def check_retry_after_is_honoured(base_url: str) -> None:
    # (status, retry-after-ms, retry-after) of every response the SDK's HTTP client receives.
    responses: list[tuple[int, str | None, str | None]] = []

    def record(response: Any) -> None:
        responses.append(
            (response.status_code, response.headers.get("retry-after-ms"), response.headers.get("retry-after"))
        )

    sleeps = RetrySleeps()
    sdk_log = logging.getLogger("anthropic._base_client")
    sdk_log.addHandler(sleeps)
    sdk_log.setLevel(logging.INFO)
    sdk_log.propagate = False
    try:
        retrying = anthropic.Anthropic(
            base_url=base_url,
            api_key="lk-retry",
            max_retries=1,
            timeout=30,
            http_client=anthropic.DefaultHttpxClient(event_hooks={"response": [record]}),
        )
        retrying.messages.create(model="gpt-4o-mini", max_tokens=16, messages=HELLO)
        # Refused at once, then retried by the SDK after `retry-after-ms`, which lets it through.
        message = retrying.messages.create(model="gpt-4o-mini", max_tokens=16, messages=HELLO)
    finally:
        sdk_log.removeHandler(sleeps)
    expect("text after the retry", [block.text for block in message.content if block.type == "text"], [CONTENT])
    expect("statuses seen", [status for status, _, _ in responses], [200, 429, 200])
    _, wait_ms, wait_s = responses[1]
    expect("the 429's retry-after", wait_s, "1")
    if wait_ms is None or not 0 < int(wait_ms) <= 1000:
        raise CheckFailed(f"the 429's retry-after-ms is not within the second: {wait_ms!r}")
    # The SDK slept what retry-after-ms said, not the whole second of retry-after nor its own backoff.
    expect("seconds slept before the retry", sleeps.seconds, [int(wait_ms) / 1000])


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
        ("max_retries=1 waits retry-after-ms and succeeds", lambda: check_retry_after_is_honoured(args.base_url)),
    ]
    return run_checks(checks)


if __name__ == "__main__":
    sys.exit(main())
