#!/usr/bin/env python3
"""The official `openai` Python SDK's Responses API (`client.responses`) against Loom.

Usage: openai_responses.py --base-url http://127.0.0.1:PORT/v1

`tests/python_responses.rs` starts the gateway with three providers, one per wire
format, each in front of a mock upstream that answers the calls below in this order
(crates/loom-test-support fixtures):

- `gpt-4o`: an `openai` provider;
- `claude-sonnet-4-5`: an `anthropic` provider;
- `gemini-2.5-flash`: a `gemini` provider.

For each model, in order: `responses.create` (text), `responses.stream` (text
deltas and the final response), a function-calling round trip (a call, then its
`function_call_output` sent back with the first answer's output items), a streamed
function call, and a second turn through `previous_response_id`.

With `--native-model`, that model is an `openai` provider with `responses_api: native`
(its mock answers as OpenAI's own Responses API does), and three more checks run last:
a `web_search` built-in tool, a stream passed through, and `previous_response_id`.

Output: `ok   <check>` per passed check; the first failure prints `FAIL <check>: ...`
and exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any, Callable

import openai

from loom_checks import CheckFailed, expect, run_checks

TEXT = "Hello from the mock upstream"
PIECES = ["Hello", " from", " the", " mock", " upstream"]
FOLLOW_UP = "Sunny in Paris."

WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}

# Per model: the call id and the arguments of the whole call, then of the streamed one.
CALLS = {
    "gpt-4o": ("call_Jx4kQ2mZ8vLp0TnW7bYc3RdE", '{"city":"Paris"}', '{"city":"Paris"}'),
    "claude-sonnet-4-5": ("toolu_01A09q90qw90lq917835lq9", '{"city":"Paris"}', '{"city": "Paris"}'),
    "gemini-2.5-flash": ("call_loom_0", '{"city":"Paris"}', '{"city":"Paris"}'),
}


def check_create(client: openai.OpenAI, model: str) -> None:
    response = client.responses.create(model=model, input="Hi", instructions="Be brief.")
    expect("object", response.object, "response")
    expect("id prefix", response.id[:5], "resp_")
    expect("status", response.status, "completed")
    expect("output_text", response.output_text, TEXT)
    expect("instructions echoed", response.instructions, "Be brief.")
    if response.usage is None or response.usage.total_tokens <= 0:
        raise CheckFailed(f"usage missing: {response.usage!r}")


def check_stream(client: openai.OpenAI, model: str) -> None:
    deltas: list[str] = []
    types: list[str] = []
    with client.responses.stream(model=model, input="Hi") as stream:
        for event in stream:
            types.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    expect("text deltas", deltas, PIECES)
    expect("first events", types[:2], ["response.created", "response.in_progress"])
    expect("last event", types[-1], "response.completed")
    expect("final output_text", final.output_text, TEXT)
    expect("final status", final.status, "completed")
    if final.usage is None or final.usage.output_tokens <= 0:
        raise CheckFailed(f"final usage missing: {final.usage!r}")


def check_function_round_trip(client: openai.OpenAI, model: str) -> None:
    call_id, arguments, _ = CALLS[model]
    conversation: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.responses.create(model=model, input=conversation, tools=[WEATHER_TOOL], max_output_tokens=2000)
    calls = [item for item in first.output if item.type == "function_call"]
    expect("calls (call_id, name, arguments)", [(c.call_id, c.name, c.arguments) for c in calls],
           [(call_id, "get_weather", arguments)])
    expect("arguments as JSON", json.loads(calls[0].arguments), {"city": "Paris"})
    conversation += first.output
    conversation.append({"type": "function_call_output", "call_id": call_id, "output": '{"sky": "clear"}'})
    second = client.responses.create(model=model, input=conversation, tools=[WEATHER_TOOL], max_output_tokens=2000)
    expect("answer after the call", second.output_text, FOLLOW_UP)


def check_streamed_call(client: openai.OpenAI, model: str) -> None:
    call_id, _, arguments = CALLS[model]
    deltas: list[str] = []
    done: list[tuple[str, str]] = []
    with client.responses.stream(model=model, input="Weather in Paris?", tools=[WEATHER_TOOL],
                                 max_output_tokens=2000) as stream:
        for event in stream:
            if event.type == "response.function_call_arguments.delta":
                deltas.append(event.delta)
            elif event.type == "response.function_call_arguments.done":
                done.append((event.name, event.arguments))
        final = stream.get_final_response()
    expect("argument deltas joined", "".join(deltas), arguments)
    expect("arguments.done events", done, [("get_weather", arguments)])
    calls = [item for item in final.output if item.type == "function_call"]
    expect("final calls", [(c.call_id, c.name, c.arguments) for c in calls], [(call_id, "get_weather", arguments)])


def check_previous_response(client: openai.OpenAI, model: str) -> None:
    first = client.responses.create(model=model, input="My name is Ada.")
    expect("first answer", first.output_text, TEXT)
    second = client.responses.create(model=model, input="What is my name?", previous_response_id=first.id)
    expect("second answer", second.output_text, FOLLOW_UP)
    expect("previous_response_id echoed", second.previous_response_id, first.id)
    try:
        client.responses.create(model=model, input="Hi", previous_response_id="resp_unknown")
    except openai.NotFoundError as error:
        expect("error param", (error.body or {}).get("param"), "previous_response_id")
    else:
        raise CheckFailed("an unknown previous_response_id was accepted")


def check_native_search(client: openai.OpenAI, model: str) -> None:
    response = client.responses.create(model=model, input="What is Loom?", tools=[{"type": "web_search"}])
    expect("output item types", [item.type for item in response.output], ["web_search_call", "message"])
    expect("output_text", response.output_text, TEXT)
    expect("the upstream's id", response.id, "resp_native_1")
    if response.usage is None or response.usage.input_tokens_details.cached_tokens != 4:
        raise CheckFailed(f"usage: {response.usage!r}")


def check_native_stream(client: openai.OpenAI, model: str) -> None:
    deltas: list[str] = []
    with client.responses.stream(model=model, input="Hi") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    expect("text deltas", deltas, PIECES)
    expect("final output_text", final.output_text, TEXT)
    expect("final id", final.id, "resp_native_2")


def check_native_previous(client: openai.OpenAI, model: str) -> None:
    second = client.responses.create(model=model, input="And?", previous_response_id="resp_native_2")
    expect("second answer", second.output_text, FOLLOW_UP)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="the gateway's OpenAI base URL, ending in /v1")
    parser.add_argument("--time-limit", type=int, default=120, help="seconds before the script gives up")
    parser.add_argument("--native-model", help="a model served by a provider with responses_api: native")
    args = parser.parse_args()
    # A hung stream must fail the run, not stall it.
    signal.alarm(args.time_limit)

    print(f"openai {openai.__version__} against {args.base_url}", flush=True)
    client = openai.OpenAI(base_url=args.base_url, api_key="unused", max_retries=0, timeout=30)
    checks: list[tuple[str, Callable[[], None]]] = []
    for model in CALLS:
        checks += [
            (f"{model}: responses.create", lambda model=model: check_create(client, model)),
            (f"{model}: responses.stream", lambda model=model: check_stream(client, model)),
            (f"{model}: function-call round trip", lambda model=model: check_function_round_trip(client, model)),
            (f"{model}: streamed function call", lambda model=model: check_streamed_call(client, model)),
            (f"{model}: previous_response_id", lambda model=model: check_previous_response(client, model)),
        ]
    native = args.native_model
    if native:
        checks += [
            (f"{native}: native web_search", lambda: check_native_search(client, native)),
            (f"{native}: native stream", lambda: check_native_stream(client, native)),
            (f"{native}: native previous_response_id", lambda: check_native_previous(client, native)),
        ]
    status = run_checks(checks)
    client.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
