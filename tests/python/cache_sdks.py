#!/usr/bin/env python3
"""Loom's response cache, seen through the official `openai` and `anthropic` Python SDKs.

Usage: cache_sdks.py --base-url http://127.0.0.1:PORT

`tests/python_cache.rs` starts the gateway with `ai_gateway.cache.enabled: true` in front
of a mock OpenAI upstream. Each check asks one question twice: the first answer is a miss
(`x-loom-cache: miss`), the second a hit (`x-loom-cache: hit`) that the SDK parses into
the same answer (text, finish reason, usage) with another id. Checks, per SDK: whole,
streamed, and a whole answer replayed as a stream.

One line is printed per check: `ok   <check>` or `FAIL <check>: <what went wrong>`; the
first failure stops the run with exit status 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, Callable

import anthropic
import openai

from loom_checks import CheckFailed, expect, run_checks


def ask(n: int) -> list[Any]:
    return [{"role": "user", "content": f"Question number {n}: what is the capital of France?"}]


def openai_client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=30)


def anthropic_client(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key="unused", max_retries=0, timeout=30)


def openai_whole(client: openai.OpenAI, n: int) -> tuple[str | None, dict[str, Any]]:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=ask(n))
    return raw.headers.get("x-loom-cache"), raw.parse().model_dump()


def openai_streamed(client: openai.OpenAI, n: int) -> tuple[str | None, dict[str, Any]]:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=ask(n), stream=True, stream_options={"include_usage": True}
    )
    text, finish, usage, ids = "", None, None, set()
    for chunk in raw.parse():
        ids.add(chunk.id)
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
    if len(ids) != 1:
        raise CheckFailed(f"one id per stream, got {ids}")
    return raw.headers.get("x-loom-cache"), {"id": ids.pop(), "text": text, "finish": finish, "usage": usage}


def miss_then_hit(asker: Callable[[int], tuple[str | None, dict[str, Any]]], n: int, what: str) -> None:
    """Asks question `n` twice: a miss, then a hit that is the same answer with another id."""
    (first_status, first), (second_status, second) = asker(n), asker(n)
    expect("first x-loom-cache", first_status, "miss")
    expect("second x-loom-cache", second_status, "hit")
    if first["id"] == second["id"]:
        raise CheckFailed(f"the hit reused the id {first['id']}")
    for field in ("id", "created"):
        first.pop(field, None)
        second.pop(field, None)
    # A miss from an OpenAI-format upstream learns an Anthropic stream's input tokens only at
    # its end; a hit knows them from the start.
    if "start_input_tokens" in second:
        expect("the hit's input tokens at message_start", second.pop("start_input_tokens"), first["usage"]["input_tokens"])
        first.pop("start_input_tokens")
    expect(f"the hit's {what}", second, first)


def check_openai_whole(base_url: str) -> None:
    client = openai_client(base_url)
    miss_then_hit(lambda n: openai_whole(client, n), 1, "answer")


def check_openai_streamed(base_url: str) -> None:
    client = openai_client(base_url)
    miss_then_hit(lambda n: openai_streamed(client, n), 2, "stream")


def check_openai_whole_then_streamed(base_url: str) -> None:
    client = openai_client(base_url)
    status, whole = openai_whole(client, 3)
    expect("whole x-loom-cache", status, "miss")
    status, streamed = openai_streamed(client, 3)
    expect("streamed x-loom-cache", status, "hit")
    expect("text", streamed["text"], whole["choices"][0]["message"]["content"])
    expect("finish_reason", streamed["finish"], whole["choices"][0]["finish_reason"])
    expect("usage", streamed["usage"], whole["usage"])


def anthropic_whole(client: anthropic.Anthropic, n: int) -> tuple[str | None, dict[str, Any]]:
    raw = client.messages.with_raw_response.create(model="gpt-4o", max_tokens=100, messages=ask(n))
    return raw.headers.get("x-loom-cache"), raw.parse().model_dump()


def anthropic_streamed(client: anthropic.Anthropic, n: int) -> tuple[str | None, dict[str, Any]]:
    raw = client.messages.with_raw_response.create(model="gpt-4o", max_tokens=100, messages=ask(n), stream=True)
    text, stop, usage, start_input, message_id = "", None, None, None, None
    for event in raw.parse():
        if event.type == "message_start":
            message_id = event.message.id
            start_input = event.message.usage.input_tokens
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            text += event.delta.text
        elif event.type == "message_delta":
            stop = event.delta.stop_reason
            usage = event.usage.model_dump()
    answer = {"id": message_id, "text": text, "stop": stop, "usage": usage, "start_input_tokens": start_input}
    return raw.headers.get("x-loom-cache"), answer


def check_anthropic_whole(base_url: str) -> None:
    client = anthropic_client(base_url)
    miss_then_hit(lambda n: anthropic_whole(client, n), 4, "message")


def check_anthropic_streamed(base_url: str) -> None:
    client = anthropic_client(base_url)
    miss_then_hit(lambda n: anthropic_streamed(client, n), 5, "stream")


def check_anthropic_whole_then_streamed(base_url: str) -> None:
    client = anthropic_client(base_url)
    status, whole = anthropic_whole(client, 6)
    expect("whole x-loom-cache", status, "miss")
    status, streamed = anthropic_streamed(client, 6)
    expect("streamed x-loom-cache", status, "hit")
    expect("text", streamed["text"], whole["content"][0]["text"])
    expect("stop_reason", streamed["stop"], whole["stop_reason"])
    expect("input_tokens at message_start", streamed["start_input_tokens"], whole["usage"]["input_tokens"])
    expect("input_tokens at message_delta", streamed["usage"]["input_tokens"], whole["usage"]["input_tokens"])
    expect("output_tokens", streamed["usage"]["output_tokens"], whole["usage"]["output_tokens"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="the gateway's base URL, without /v1")
    parser.add_argument("--time-limit", type=int, default=120, help="seconds before the script gives up")
    args = parser.parse_args()
    signal.alarm(args.time_limit)

    print(f"openai {openai.__version__}, anthropic {anthropic.__version__} against {args.base_url}", flush=True)
    url = args.base_url
    checks: list[tuple[str, Callable[[], None]]] = [
        ("openai: a whole hit is the same answer", lambda: check_openai_whole(url)),
        ("openai: a streamed hit is the same stream", lambda: check_openai_streamed(url)),
        ("openai: a whole answer replays as a stream", lambda: check_openai_whole_then_streamed(url)),
        ("anthropic: a whole hit is the same message", lambda: check_anthropic_whole(url)),
        ("anthropic: a streamed hit is the same stream", lambda: check_anthropic_streamed(url)),
        ("anthropic: a whole answer replays as a stream", lambda: check_anthropic_whole_then_streamed(url)),
    ]
    return run_checks(checks)


if __name__ == "__main__":
    sys.exit(main())
