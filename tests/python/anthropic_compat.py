#!/usr/bin/env python3
"""Drive a running Loom gateway with the official `anthropic` Python SDK.

Usage: anthropic_compat.py --base-url http://127.0.0.1:PORT

The SDK posts to `{base_url}/v1/messages`, Loom's Anthropic front door.
`tests/anthropic_sdk.rs` starts the gateway this script talks to, in front of one
mock upstream per behaviour (`loom-test-support`'s `MockUpstream`), chosen by model:

- `gpt-4o`: an `openai` provider answering with the mock's built-in chat answer
  (crates/loom-test-support/src/fixtures.rs);
- `gpt-4o-tools`: an `openai` provider that always streams the two tool calls of
  `OPENAI_TOOL_CALLS`, arguments in fragments;
- `claude-sonnet-4-5`: an `anthropic` provider answering `anthropic_fixtures::message`
  with `CLAUDE_TEXT`;
- `claude-sonnet-4-5-stream`: an `anthropic` provider streaming
  `anthropic_fixtures::text_stream` with `CLAUDE_PIECES`;
- `claude-sonnet-4-5-thinking-stream`: an `anthropic` provider that streams
  `anthropic_fixtures::tool_use_stream` (thinking with a signature, then a tool call),
  then, for the second turn, `FOLLOW_UP_PIECES`;
- `claude-sonnet-4-5-thinking`: the same conversation whole: `tool_use_message` with a
  `redacted_thinking` block added after the thinking block, then `FOLLOW_UP`;
- `gemini-2.5-flash`: a `gemini` provider answering `gemini_fixtures::text_response`;
- `claude-sonnet-4-5-limited`: an `anthropic` provider answering 429 with
  `retry-after: 7`;
- `claude-sonnet-4-5-overloaded`: an `anthropic` provider answering 529 `overloaded_error`;
- `claude-sonnet-4-5-broken-stream`: an `anthropic` provider whose stream starts with
  `BROKEN_PIECES` and then sends an `overloaded_error` event.

One line is printed per check: `ok   <check>` or `FAIL <check>: <what went wrong>`.
Every check runs even when an earlier one failed (the Rust side then asserts what the
upstreams received); the exit status is 1 if any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any, Callable

import anthropic

from loom_checks import CheckFailed, expect, run_checks

# The built-in chat answer of the OpenAI mock upstream (fixtures.rs).
CHAT_ID = "chatcmpl-mock"
CONTENT = "Hello from the mock upstream"
STREAM_PIECES = ["Hello", " from", " the", " mock", " upstream"]
PROMPT_TOKENS = 9
COMPLETION_TOKENS = 6

# What the `gpt-4o-tools` upstream streams (anthropic_sdk.rs).
OPENAI_TOOLS_ID = "chatcmpl-tools"
OPENAI_TOOL_CALLS = [
    ("call_weather_1", "get_weather", {"city": "Paris", "unit": "celsius"}),
    ("call_time_2", "get_time", {"timezone": "Europe/Paris"}),
]

# Anthropic fixtures (anthropic_fixtures.rs) and the texts anthropic_sdk.rs scripts.
MESSAGE_ID = "msg_01XFDUDYJgAACzvnptvVoYEL"
CLAUDE_TEXT = "Bonjour from the Anthropic mock"
CLAUDE_PIECES = ["Bonjour", " from", " the", " Anthropic", " mock"]
THINKING = "The user wants the weather in Paris."
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="
REDACTED = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj2"
TOOL_USE_ID = "toolu_01A09q90qw90lq917835lq9"
FOLLOW_UP = "It is 18 °C and sunny in Paris."
FOLLOW_UP_PIECES = ["It is 18 °C", " and sunny", " in Paris."]
TOOL_RESULT = "18 °C, sunny"

# What the `claude-sonnet-4-5-broken-stream` upstream streams before its error event.
BROKEN_PIECES = ["Half", " an"]

# The Gemini fixture answer.
GEMINI_TEXT = "Bonjour from Gemini"
GEMINI_MODEL_VERSION = "gemini-2.5-flash-001"

# Every model the gateway serves, sorted, as the 404 message lists them.
SERVED_MODELS = [
    "claude-sonnet-4-5",
    "claude-sonnet-4-5-broken-stream",
    "claude-sonnet-4-5-limited",
    "claude-sonnet-4-5-overloaded",
    "claude-sonnet-4-5-stream",
    "claude-sonnet-4-5-thinking",
    "claude-sonnet-4-5-thinking-stream",
    "claude-sonnet-4-5-tools",
    "gemini-2.5-flash",
    "gpt-4o",
    "gpt-4o-tools",
]

HELLO: list[Any] = [{"role": "user", "content": "Hi"}]
WEATHER_QUESTION = "What is the weather in Paris?"
THINKING_CONFIG: Any = {"type": "enabled", "budget_tokens": 2048}

WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}
TIME_TOOL: Any = {
    "name": "get_time",
    "description": "Current time in a timezone",
    "input_schema": {
        "type": "object",
        "properties": {"timezone": {"type": "string"}},
        "required": ["timezone"],
    },
}


def blocks(message: Any) -> list[dict[str, Any]]:
    """The content blocks as the JSON Loom sent (only the fields it set)."""
    return [block.to_dict() for block in message.content]


def usage_of(message: Any) -> tuple[object, ...]:
    usage = message.usage
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_creation_input_tokens,
        usage.cache_read_input_tokens,
    )


def check_whole_from_openai(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(
        model="gpt-4o", max_tokens=64, messages=HELLO, extra_headers={"x-request-id": "sdk-anthropic-1"}
    )
    expect("x-request-id (echoed)", raw.headers.get("x-request-id"), "sdk-anthropic-1")
    expect("x-loom-provider", raw.headers.get("x-loom-provider"), "openai")
    message = raw.parse()
    expect("id", message.id, CHAT_ID)
    expect("type", message.type, "message")
    expect("role", message.role, "assistant")
    expect("model", message.model, "gpt-4o")
    expect("content", blocks(message), [{"type": "text", "text": CONTENT}])
    expect("stop_reason", message.stop_reason, "end_turn")
    expect("stop_sequence", message.stop_sequence, None)
    expect("usage (input, output, cache creation, cache read)", usage_of(message),
           (PROMPT_TOKENS, COMPLETION_TOKENS, 0, 0))


def check_count_tokens(client: anthropic.Anthropic) -> None:
    # Loom counts an OpenAI model's prompt itself, by OpenAI's rules: 3 per message, the
    # role, "Hi", and 3 to prime the reply. Claude Code calls the beta path.
    count = client.messages.count_tokens(model="gpt-4o", messages=HELLO)
    expect("input_tokens", count.input_tokens, 8)
    beta = client.beta.messages.count_tokens(model="gpt-4o", messages=HELLO)
    expect("input_tokens (beta)", beta.input_tokens, 8)


def check_streamed_from_openai(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="gpt-4o", max_tokens=64, messages=HELLO) as stream:
        pieces = list(stream.text_stream)
        message = stream.get_final_message()
        text = stream.get_final_text()
    expect("text_stream pieces", pieces, STREAM_PIECES)
    expect("get_final_text()", text, CONTENT)
    expect("id", message.id, CHAT_ID)
    expect("model", message.model, "gpt-4o")
    expect("content", blocks(message), [{"type": "text", "text": CONTENT}])
    expect("stop_reason", message.stop_reason, "end_turn")
    expect("final usage (input, output, cache creation, cache read)", usage_of(message),
           (PROMPT_TOKENS, COMPLETION_TOKENS, 0, 0))


def check_streamed_tools_from_openai(client: anthropic.Anthropic) -> None:
    input_json_events = 0
    stops: list[str] = []
    with client.messages.stream(
        model="gpt-4o-tools",
        max_tokens=256,
        messages=[{"role": "user", "content": "Weather and time in Paris?"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "auto"},
    ) as stream:
        for event in stream:
            if event.type == "input_json":
                input_json_events += 1
            elif event.type == "content_block_stop":
                stops.append(event.content_block.type)
        message = stream.get_final_message()
    if input_json_events < 2 * len(OPENAI_TOOL_CALLS):
        raise CheckFailed(f"expected the inputs in several deltas, got {input_json_events} input_json events")
    expect("content_block_stop events", stops, ["tool_use", "tool_use"])
    expect("id", message.id, OPENAI_TOOLS_ID)
    expect("stop_reason", message.stop_reason, "tool_use")
    expect("final usage (input, output, cache creation, cache read)", usage_of(message), (50, 25, None, None))
    expect(
        "tool_use blocks",
        blocks(message),
        [{"type": "tool_use", "id": id_, "name": name, "input": input_} for id_, name, input_ in OPENAI_TOOL_CALLS],
    )


def check_whole_from_anthropic(client: anthropic.Anthropic) -> None:
    # Every parameter goes upstream unchanged; anthropic_sdk.rs checks the body. This SDK
    # release has no keyword arguments for the sampling parameters any more, so they
    # travel in `extra_body`, as the SDK documents for parameters it does not type.
    message = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=300,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Say bonjour"}],
        stop_sequences=["END"],
        metadata={"user_id": "user-42"},
        service_tier="auto",
        extra_body={"temperature": 0.25, "top_p": 0.9, "top_k": 5},
    )
    expect("id", message.id, MESSAGE_ID)
    expect("model", message.model, "claude-sonnet-4-5")
    expect("content", blocks(message), [{"type": "text", "text": CLAUDE_TEXT}])
    expect("stop_reason", message.stop_reason, "end_turn")
    expect("stop_sequence", message.stop_sequence, None)
    expect("usage (input, output, cache creation, cache read)", usage_of(message), (12, 6, 0, 4))


def check_streamed_from_anthropic(client: anthropic.Anthropic) -> None:
    event_types: list[str] = []
    texts: list[str] = []
    with client.messages.stream(model="claude-sonnet-4-5-stream", max_tokens=64, messages=HELLO) as stream:
        for event in stream:
            event_types.append(event.type)
            if event.type == "text":
                texts.append(event.text)
        message = stream.get_final_message()
    expect("text events", texts, CLAUDE_PIECES)
    raw_types = [kind for kind in event_types if kind != "text"]
    expect(
        "event types",
        raw_types,
        ["message_start", "content_block_start"]
        + ["content_block_delta"] * len(CLAUDE_PIECES)
        + ["content_block_stop", "message_delta", "message_stop"],
    )
    expect("id", message.id, MESSAGE_ID)
    expect("model", message.model, "claude-sonnet-4-5-stream")
    expect("content", blocks(message), [{"type": "text", "text": "".join(CLAUDE_PIECES)}])
    expect("stop_reason", message.stop_reason, "end_turn")
    expect("final usage (input, output, cache creation, cache read)", usage_of(message), (12, 6, 0, 4))


def tool_result_turn() -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": TOOL_USE_ID, "content": TOOL_RESULT}]}


def check_thinking_conversation_streamed(client: anthropic.Anthropic) -> None:
    model = "claude-sonnet-4-5-thinking-stream"
    question = {"role": "user", "content": WEATHER_QUESTION}
    thinking_events: list[str] = []
    signature_events: list[str] = []
    with client.messages.stream(
        model=model, max_tokens=4096, thinking=THINKING_CONFIG, tools=[WEATHER_TOOL], messages=[question]
    ) as stream:
        for event in stream:
            if event.type == "thinking":
                thinking_events.append(event.thinking)
            elif event.type == "signature":
                signature_events.append(event.signature)
        first = stream.get_final_message()
    expect("thinking events", thinking_events, [THINKING])
    expect("signature events", signature_events, [SIGNATURE])
    expect("turn 1 stop_reason", first.stop_reason, "tool_use")
    expect(
        "turn 1 content",
        blocks(first),
        [
            {"type": "thinking", "thinking": THINKING, "signature": SIGNATURE},
            {"type": "tool_use", "id": TOOL_USE_ID, "name": "get_weather", "input": {"city": "Paris"}},
        ],
    )
    expect("turn 1 usage (input, output)", usage_of(first)[:2], (40, 30))
    # Turn 2: the assistant turn exactly as the SDK returned it, then the tool's result.
    with client.messages.stream(
        model=model,
        max_tokens=4096,
        thinking=THINKING_CONFIG,
        tools=[WEATHER_TOOL],
        messages=[question, first.to_param(), tool_result_turn()],
    ) as stream:
        pieces = list(stream.text_stream)
        second = stream.get_final_message()
    expect("turn 2 text pieces", pieces, FOLLOW_UP_PIECES)
    expect("turn 2 content", blocks(second), [{"type": "text", "text": FOLLOW_UP}])
    expect("turn 2 stop_reason", second.stop_reason, "end_turn")


def check_thinking_conversation_whole(client: anthropic.Anthropic) -> None:
    model = "claude-sonnet-4-5-thinking"
    question = {"role": "user", "content": WEATHER_QUESTION}
    first = client.messages.create(
        model=model, max_tokens=4096, thinking=THINKING_CONFIG, tools=[WEATHER_TOOL], messages=[question]
    )
    expect("turn 1 id", first.id, MESSAGE_ID)
    expect("turn 1 stop_reason", first.stop_reason, "tool_use")
    expect(
        "turn 1 content",
        blocks(first),
        [
            {"type": "thinking", "thinking": THINKING, "signature": SIGNATURE},
            {"type": "redacted_thinking", "data": REDACTED},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": TOOL_USE_ID, "name": "get_weather", "input": {"city": "Paris"}},
        ],
    )
    expect("turn 1 usage (input, output)", usage_of(first)[:2], (40, 30))
    second = client.messages.create(
        model=model,
        max_tokens=4096,
        thinking=THINKING_CONFIG,
        tools=[WEATHER_TOOL],
        messages=[question, {"role": "assistant", "content": first.content}, tool_result_turn()],
    )
    expect("turn 2 content", blocks(second), [{"type": "text", "text": FOLLOW_UP}])
    expect("turn 2 stop_reason", second.stop_reason, "end_turn")


def check_whole_from_gemini(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="gemini-2.5-flash", max_tokens=64, messages=HELLO)
    expect("id", message.id, "resp-gemini-1")
    expect("model", message.model, GEMINI_MODEL_VERSION)
    expect("content", blocks(message), [{"type": "text", "text": GEMINI_TEXT}])
    expect("stop_reason", message.stop_reason, "end_turn")
    expect("usage (input, output)", usage_of(message)[:2], (11, 5))


def check_unknown_model(client: anthropic.Anthropic) -> None:
    try:
        client.messages.create(model="claude-9", max_tokens=16, messages=HELLO)
    except anthropic.NotFoundError as error:
        expect("status_code", error.status_code, 404)
        expect("type", error.type, "not_found_error")
        message = "The model `claude-9` does not exist; models served here: " + ", ".join(SERVED_MODELS)
        expect("api_message", error.api_message, message)
        expect("body", error.body, {"type": "error", "error": {"type": "not_found_error", "message": message}})
        return
    raise CheckFailed("no anthropic.NotFoundError was raised")


def check_rate_limited(client: anthropic.Anthropic) -> None:
    try:
        client.messages.create(model="claude-sonnet-4-5-limited", max_tokens=16, messages=HELLO)
    except anthropic.RateLimitError as error:
        expect("status_code", error.status_code, 429)
        expect("retry-after header", error.response.headers.get("retry-after"), "7")
        expect("type", error.type, "rate_limit_error")
        expect(
            "api_message",
            error.api_message,
            "provider `claude-limited` returned HTTP 429: Number of request tokens has exceeded your per-minute rate limit",
        )
        return
    raise CheckFailed("no anthropic.RateLimitError was raised")


def check_overloaded(client: anthropic.Anthropic) -> None:
    # Loom answers an upstream 529 with 503, so the SDK raises ServiceUnavailableError
    # (an InternalServerError), not the OverloadedError a 529 would give.
    try:
        client.messages.create(model="claude-sonnet-4-5-overloaded", max_tokens=16, messages=HELLO)
    except anthropic.APIStatusError as error:
        expect("exception class", type(error).__name__, "ServiceUnavailableError")
        expect("is an InternalServerError", isinstance(error, anthropic.InternalServerError), True)
        expect("status_code", error.status_code, 503)
        expect("type", error.type, "overloaded_error")
        expect("api_message", error.api_message, "provider `claude-overloaded` returned HTTP 529: Overloaded")
        return
    raise CheckFailed("no anthropic.APIStatusError was raised")


def check_error_mid_stream(client: anthropic.Anthropic) -> None:
    # Anthropic sends errors that happen mid-stream as an `error` event on the 200
    # stream; the SDK raises it as an APIStatusError carrying the error body.
    pieces: list[str] = []
    try:
        with client.messages.stream(
            model="claude-sonnet-4-5-broken-stream", max_tokens=64, messages=HELLO
        ) as stream:
            for text in stream.text_stream:
                pieces.append(text)
    except anthropic.APIStatusError as error:
        expect("text before the error", pieces, BROKEN_PIECES)
        expect("exception class", type(error).__name__, "APIStatusError")
        expect("status_code (of the stream)", error.status_code, 200)
        expect("type", error.type, "overloaded_error")
        expect(
            "body",
            error.body,
            {"type": "error", "error": {"type": "overloaded_error",
                                         "message": "provider `claude-broken-stream` reported overloaded_error: Overloaded"}},
        )
        return
    raise CheckFailed(f"no anthropic.APIStatusError was raised; text was {pieces!r}")


async def async_streamed(base_url: str) -> None:
    async with anthropic.AsyncAnthropic(base_url=base_url, api_key="unused", max_retries=0, timeout=30) as client:
        async with client.messages.stream(
            model="claude-sonnet-4-5-stream", max_tokens=64, messages=HELLO
        ) as stream:
            pieces = [text async for text in stream.text_stream]
            message = await stream.get_final_message()
    expect("text_stream pieces", pieces, CLAUDE_PIECES)
    expect("content", blocks(message), [{"type": "text", "text": "".join(CLAUDE_PIECES)}])
    expect("stop_reason", message.stop_reason, "end_turn")
    expect("final usage (input, output, cache creation, cache read)", usage_of(message), (12, 6, 0, 4))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="the gateway's root URL (the SDK adds /v1/messages)")
    parser.add_argument("--time-limit", type=int, default=120, help="seconds before the script gives up")
    args = parser.parse_args()
    # A hung stream must fail the run, not stall it.
    signal.alarm(args.time_limit)

    print(f"anthropic {anthropic.__version__} against {args.base_url}", flush=True)
    client = anthropic.Anthropic(base_url=args.base_url, api_key="unused", max_retries=0, timeout=30)
    checks: list[tuple[str, Callable[[], None]]] = [
        ("whole message from an OpenAI provider", lambda: check_whole_from_openai(client)),
        ("streamed message from an OpenAI provider", lambda: check_streamed_from_openai(client)),
        ("count_tokens for an OpenAI model", lambda: check_count_tokens(client)),
        ("streamed tool calls from an OpenAI provider", lambda: check_streamed_tools_from_openai(client)),
        ("whole message from an Anthropic provider", lambda: check_whole_from_anthropic(client)),
        ("streamed message from an Anthropic provider", lambda: check_streamed_from_anthropic(client)),
        ("thinking + tool use over two streamed turns", lambda: check_thinking_conversation_streamed(client)),
        ("thinking, redacted thinking + tool use over two whole turns",
         lambda: check_thinking_conversation_whole(client)),
        ("whole message from a Gemini provider", lambda: check_whole_from_gemini(client)),
        ("unknown model raises NotFoundError", lambda: check_unknown_model(client)),
        ("upstream 429 raises RateLimitError", lambda: check_rate_limited(client)),
        ("upstream 529 raises ServiceUnavailableError (503)", lambda: check_overloaded(client)),
        ("overloaded error event mid-stream raises APIStatusError", lambda: check_error_mid_stream(client)),
        ("AsyncAnthropic streamed message", lambda: asyncio.run(async_streamed(args.base_url))),
    ]
    status = run_checks(checks, keep_going=True)
    client.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
