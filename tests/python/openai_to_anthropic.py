#!/usr/bin/env python3
"""The official `openai` Python SDK reaching an `anthropic` provider through Loom.

Usage: openai_to_anthropic.py --base-url http://127.0.0.1:PORT/v1

`tests/anthropic_sdk.rs` starts the gateway. Model `claude-sonnet-4-5-tools` is served
by an `anthropic` provider whose mock upstream always streams
`anthropic_fixtures::tool_use_stream` (crates/loom-test-support/src/anthropic_fixtures.rs):
a thinking block with a signature, then a `get_weather` call whose input arrives in
pieces. The SDK's stream helper must accumulate the call Loom translates it into.

Output and exit status as in anthropic_compat.py: `ok   <check>` or `FAIL <check>: ...`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any, Callable

import openai

from loom_checks import CheckFailed, expect, run_checks

MESSAGE_ID = "msg_01XFDUDYJgAACzvnptvVoYEL"
TOOL_USE_ID = "toolu_01A09q90qw90lq917835lq9"

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def check_streamed_tool_call(client: openai.OpenAI) -> None:
    argument_deltas: list[str] = []
    done: list[tuple[int, str, str]] = []
    with client.chat.completions.stream(
        model="claude-sonnet-4-5-tools",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        max_completion_tokens=512,
        stream_options={"include_usage": True},
    ) as stream:
        for event in stream:
            if event.type == "tool_calls.function.arguments.delta":
                argument_deltas.append(event.arguments_delta)
            elif event.type == "tool_calls.function.arguments.done":
                done.append((event.index, event.name, event.arguments))
        completion = stream.get_final_completion()
    # Empty deltas aside (OpenAI's first tool-call delta has `arguments: ""` too), the
    # arguments arrive in the pieces Anthropic streamed them in.
    expect("non-empty argument deltas", [d for d in argument_deltas if d], ['{"city": "Par', 'is"}'])
    expect("tool_calls.function.arguments.done events", done, [(0, "get_weather", '{"city": "Paris"}')])
    expect("completion.id", completion.id, MESSAGE_ID)
    expect("completion.model", completion.model, "claude-sonnet-4-5-tools")
    choice = completion.choices[0]
    expect("finish_reason", choice.finish_reason, "tool_calls")
    calls = choice.message.tool_calls or []
    expect(
        "accumulated tool calls (id, type, name, arguments)",
        [(call.id, call.type, call.function.name, call.function.arguments) for call in calls],
        [(TOOL_USE_ID, "function", "get_weather", '{"city": "Paris"}')],
    )
    expect("arguments as JSON", [json.loads(call.function.arguments) for call in calls], [{"city": "Paris"}])
    usage = completion.usage
    if usage is None:
        raise CheckFailed("no usage in the final completion")
    expect("usage (prompt, completion, total)", (usage.prompt_tokens, usage.completion_tokens,
                                                 usage.total_tokens), (40, 30, 70))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="the gateway's OpenAI base URL, ending in /v1")
    parser.add_argument("--time-limit", type=int, default=60, help="seconds before the script gives up")
    args = parser.parse_args()
    signal.alarm(args.time_limit)

    print(f"openai {openai.__version__} against {args.base_url}", flush=True)
    client = openai.OpenAI(base_url=args.base_url, api_key="unused", max_retries=0, timeout=30)
    checks: list[tuple[str, Callable[[], None]]] = [
        ("streamed tool call from an Anthropic provider", lambda: check_streamed_tool_call(client)),
    ]
    status = run_checks(checks, keep_going=True)
    client.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
