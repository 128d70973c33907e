#!/usr/bin/env python3
"""Drive a running Loom gateway with the official `openai` Python SDK.

Usage: openai_compat.py --base-url http://127.0.0.1:PORT/v1

`tests/python_sdk.rs` starts the gateway this script talks to. The gateway must
route the models below to three mock OpenAI upstreams (`loom-test-support`'s
`MockUpstream`), and the expected values are that mock's fixtures
(crates/loom-test-support/src/fixtures.rs):

- `gpt-4o`, `gpt-4o-mini`, `text-embedding-3-small`: provider `openai`, an upstream
  answering with its built-in defaults;
- `gpt-4o-tools`: provider `tools`, an upstream that always streams the tool-call
  deltas of `TOOL_CALLS` below;
- `gpt-4o-limited`: provider `limited`, an upstream that always answers 429 with
  `retry-after: 7`.

One line is printed per passed check. The first failed check prints what went wrong
and exits with status 1; any exception the SDK raises unexpectedly does the same.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any, Callable

import openai

from loom_checks import CheckFailed, expect, run_checks

# The built-in chat answer of the mock upstream (fixtures.rs).
CHAT_ID = "chatcmpl-mock"
CREATED = 1_700_000_000
SYSTEM_FINGERPRINT = "fp_mock"
CONTENT = "Hello from the mock upstream"
STREAM_PIECES = ["", "Hello", " from", " the", " mock", " upstream"]
PROMPT_TOKENS = 9
COMPLETION_TOKENS = 6
TOTAL_TOKENS = PROMPT_TOKENS + COMPLETION_TOKENS

# The mock's embedding vector for input `i`: exact in f32, so base64 round-trips exactly.
def embedding_vector(i: int) -> list[float]:
    return [i + 0.5, -(i + 0.25), 0.125, 1.0]

# What the `tools` upstream streams, argument fragment by fragment (python_sdk.rs).
TOOL_CALLS = [
    ("call_weather_1", "get_weather", '{"city": "Paris", "unit": "celsius"}'),
    ("call_time_2", "get_time", '{"timezone": "Europe/Paris"}'),
]

# Models the gateway serves, as `/v1/models` lists them (sorted, from its config).
SERVED_MODELS = ["gpt-4o", "gpt-4o-limited", "gpt-4o-mini", "gpt-4o-tools", "text-embedding-3-small"]

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city", "unit"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Current time in a timezone",
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": {"timezone": {"type": "string"}},
                "required": ["timezone"],
                "additionalProperties": False,
            },
        },
    },
]

HELLO: list[Any] = [{"role": "user", "content": "Hi"}]


def check_whole_chat(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o", messages=HELLO, extra_headers={"x-request-id": "sdk-trace-1"}
    )
    expect("id", completion.id, CHAT_ID)
    expect("object", completion.object, "chat.completion")
    expect("created", completion.created, CREATED)
    expect("model", completion.model, "gpt-4o")
    expect("system_fingerprint", completion.system_fingerprint, SYSTEM_FINGERPRINT)
    expect("number of choices", len(completion.choices), 1)
    choice = completion.choices[0]
    expect("choices[0].index", choice.index, 0)
    expect("choices[0].message.role", choice.message.role, "assistant")
    expect("choices[0].message.content", choice.message.content, CONTENT)
    expect("choices[0].message.tool_calls", choice.message.tool_calls, None)
    expect("choices[0].finish_reason", choice.finish_reason, "stop")
    usage = completion.usage
    if usage is None:
        raise CheckFailed("usage is missing")
    expect("usage.prompt_tokens", usage.prompt_tokens, PROMPT_TOKENS)
    expect("usage.completion_tokens", usage.completion_tokens, COMPLETION_TOKENS)
    expect("usage.total_tokens", usage.total_tokens, TOTAL_TOKENS)
    details = usage.prompt_tokens_details
    expect("usage.prompt_tokens_details.cached_tokens", details and details.cached_tokens, 0)
    # Loom echoes the caller's x-request-id, which the SDK exposes as `_request_id`.
    expect("_request_id (x-request-id header)", completion._request_id, "sdk-trace-1")


def check_streamed_chat(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
    pieces: list[str] = []
    finish_reasons: list[str | None] = []
    for chunk in stream:
        expect("chunk.id", chunk.id, CHAT_ID)
        expect("chunk.object", chunk.object, "chat.completion.chunk")
        expect("chunk.model", chunk.model, "gpt-4o")
        expect("chunk.usage without include_usage", chunk.usage, None)
        expect("choices per chunk", len(chunk.choices), 1)
        delta = chunk.choices[0].delta
        if delta.content is not None:
            pieces.append(delta.content)
        finish_reasons.append(chunk.choices[0].finish_reason)
    expect("content pieces", pieces, STREAM_PIECES)
    expect("concatenated content", "".join(pieces), CONTENT)
    expect("finish_reason per chunk", finish_reasons, [None] * len(STREAM_PIECES) + ["stop"])


def check_streamed_chat_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    expect("concatenated content", content, CONTENT)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    expect("finish_reasons", finish, ["stop"])
    expect("model of every chunk", {c.model for c in chunks}, {"gpt-4o-mini"})
    last = chunks[-1]
    expect("choices of the usage chunk", last.choices, [])
    if last.usage is None:
        raise CheckFailed("the last chunk carries no usage")
    expect("usage.prompt_tokens", last.usage.prompt_tokens, PROMPT_TOKENS)
    expect("usage.completion_tokens", last.usage.completion_tokens, COMPLETION_TOKENS)
    expect("usage.total_tokens", last.usage.total_tokens, TOTAL_TOKENS)
    expect("usage on earlier chunks", [c.usage for c in chunks[:-1]], [None] * (len(chunks) - 1))


def check_streamed_tool_calls(client: openai.OpenAI) -> None:
    done_events: list[tuple[int, str, str]] = []
    argument_deltas = 0
    # The SDK's own stream helper accumulates the tool-call deltas into a completion.
    with client.chat.completions.stream(
        model="gpt-4o-tools",
        messages=[{"role": "user", "content": "Weather and time in Paris?"}],
        tools=TOOLS,
        parallel_tool_calls=True,
    ) as stream:
        for event in stream:
            if event.type == "tool_calls.function.arguments.delta":
                argument_deltas += 1
            elif event.type == "tool_calls.function.arguments.done":
                done_events.append((event.index, event.name, event.arguments))
        completion = stream.get_final_completion()
    expect(
        "tool_calls.function.arguments.done events",
        done_events,
        [(index, name, arguments) for index, (_, name, arguments) in enumerate(TOOL_CALLS)],
    )
    if argument_deltas < 2 * len(TOOL_CALLS):
        raise CheckFailed(f"expected the arguments in several deltas, got {argument_deltas} delta events")
    expect("completion.id", completion.id, "chatcmpl-tools")
    choice = completion.choices[0]
    expect("finish_reason", choice.finish_reason, "tool_calls")
    expect("message.content", choice.message.content, None)
    calls = choice.message.tool_calls or []
    expect(
        "accumulated tool calls (id, name, arguments)",
        [(call.id, call.type, call.function.name, call.function.arguments) for call in calls],
        [(call_id, "function", name, arguments) for call_id, name, arguments in TOOL_CALLS],
    )
    expect(
        "parsed_arguments",
        [call.function.parsed_arguments for call in calls],
        [{"city": "Paris", "unit": "celsius"}, {"timezone": "Europe/Paris"}],
    )


def check_embeddings(client: openai.OpenAI) -> None:
    # No encoding_format: the SDK asks for base64 and decodes it to floats itself.
    response = client.embeddings.create(model="text-embedding-3-small", input=["first", "second"])
    expect("object", response.object, "list")
    expect("model", response.model, "text-embedding-3-small")
    expect("indices", [item.index for item in response.data], [0, 1])
    expect("decoded vectors", [item.embedding for item in response.data], [embedding_vector(0), embedding_vector(1)])
    expect("usage.prompt_tokens", response.usage.prompt_tokens, 8)
    expect("usage.total_tokens", response.usage.total_tokens, 8)
    floats = client.embeddings.create(model="text-embedding-3-small", input="only", encoding_format="float")
    expect("float vector", [item.embedding for item in floats.data], [embedding_vector(0)])


def check_models(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    expect("model ids", [model.id for model in models], SERVED_MODELS)
    expect("model objects", {model.object for model in models}, {"model"})
    # Each model is owned by the provider that serves it.
    expect(
        "owned_by",
        {model.id: model.owned_by for model in models},
        {
            "gpt-4o": "openai",
            "gpt-4o-limited": "limited",
            "gpt-4o-mini": "openai",
            "gpt-4o-tools": "tools",
            "text-embedding-3-small": "openai",
        },
    )


def check_unknown_model(client: openai.OpenAI) -> None:
    try:
        client.chat.completions.create(model="gpt-9", messages=HELLO)
    except openai.NotFoundError as error:
        expect("status_code", error.status_code, 404)
        expect("code", error.code, "model_not_found")
        expect("param", error.param, "model")
        expect("type", error.type, "invalid_request_error")
        message = "The model `gpt-9` does not exist; models served here: " + ", ".join(SERVED_MODELS)
        expect("error message", error.body and error.body.get("message"), message)  # type: ignore[union-attr]
        if message not in str(error):
            raise CheckFailed(f"str(error) does not show the message: {error}")
        return
    raise CheckFailed("no openai.NotFoundError was raised")


def check_rate_limited(client: openai.OpenAI) -> None:
    try:
        client.chat.completions.create(model="gpt-4o-limited", messages=HELLO)
    except openai.RateLimitError as error:
        expect("status_code", error.status_code, 429)
        expect("retry-after header", error.response.headers.get("retry-after"), "7")
        expect("type", error.type, "rate_limit_error")
        expect("code", error.code, "rate_limit_exceeded")
        message = error.body and error.body.get("message")  # type: ignore[union-attr]
        if not isinstance(message, str) or "provider `limited` returned HTTP 429" not in message:
            raise CheckFailed(f"the message does not name the provider and status: {message!r}")
        return
    raise CheckFailed("no openai.RateLimitError was raised")


def check_bad_request(client: openai.OpenAI) -> None:
    try:
        client.chat.completions.create(model="gpt-4o", messages=[])
    except openai.BadRequestError as error:
        expect("status_code", error.status_code, 400)
        expect("type", error.type, "invalid_request_error")
        expect("param", error.param, "messages")
        expect(
            "error message",
            error.body and error.body.get("message"),  # type: ignore[union-attr]
            "`messages` must contain at least one message",
        )
        return
    raise CheckFailed("no openai.BadRequestError was raised")


async def async_streamed_chat(base_url: str) -> None:
    async with openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=30) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        pieces: list[str] = []
        finish: list[str] = []
        usage = None
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content is not None:
                    pieces.append(choice.delta.content)
                if choice.finish_reason is not None:
                    finish.append(choice.finish_reason)
            if chunk.usage is not None:
                usage = chunk.usage
        expect("content pieces", pieces, STREAM_PIECES)
        expect("finish_reasons", finish, ["stop"])
        if usage is None:
            raise CheckFailed("no chunk carried usage")
        expect("usage (prompt, completion, total)",
               (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
               (PROMPT_TOKENS, COMPLETION_TOKENS, TOTAL_TOKENS))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="the gateway's OpenAI base URL, ending in /v1")
    parser.add_argument("--time-limit", type=int, default=120, help="seconds before the script gives up")
    args = parser.parse_args()
    # A hung stream must fail the run, not stall it.
    signal.alarm(args.time_limit)

    print(f"openai {openai.__version__} against {args.base_url}", flush=True)
    client = openai.OpenAI(base_url=args.base_url, api_key="unused", max_retries=0, timeout=30)
    checks: list[tuple[str, Callable[[], None]]] = [
        ("whole chat completion", lambda: check_whole_chat(client)),
        ("streamed chat completion", lambda: check_streamed_chat(client)),
        ("streamed chat completion with include_usage", lambda: check_streamed_chat_with_usage(client)),
        ("streamed tool calls accumulated by the SDK", lambda: check_streamed_tool_calls(client)),
        ("embeddings (base64 by default, and float)", lambda: check_embeddings(client)),
        ("models.list()", lambda: check_models(client)),
        ("unknown model raises NotFoundError", lambda: check_unknown_model(client)),
        ("upstream 429 raises RateLimitError", lambda: check_rate_limited(client)),
        ("bad request raises BadRequestError", lambda: check_bad_request(client)),
        ("AsyncOpenAI streamed chat completion", lambda: asyncio.run(async_streamed_chat(args.base_url))),
    ]
    status = run_checks(checks)
    client.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
