"""End-to-end checks of `lathe serve` through the official `openai` Python SDK.

Run by tests/e2e_openai.rs against a server it started (default model, 127.0.0.1, random port):

    python openai_sdk.py --base-url http://127.0.0.1:PORT/v1 --api-key KEY

Needs only the `openai` package (pinned by the Rust test) and the standard library. Exits non-zero
if any check fails; prints one line per check and a closing 'N passed, M failed'.
"""

import argparse
import concurrent.futures
import json
import sys
import time
import traceback
import urllib.request

import openai

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 24},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}

PERSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def wait_ready(root, seconds):
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        try:
            status, _ = http_get(root + "/health", timeout=2)
            if status == 200:
                return
        except Exception as e:  # 503 while loading raises HTTPError; refused before bind
            last = e
        time.sleep(0.5)
    raise RuntimeError(f"server not ready after {seconds}s: {last}")


def metric(root, name):
    _, text = http_get(root + "/metrics")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


@check
def models(ctx):
    ids = [m.id for m in ctx.client.models.list().data]
    assert ctx.model in ids, ids


@check
def chat(ctx):
    r = ctx.client.chat.completions.create(
        model=ctx.model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=12, temperature=0
    )
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content, r
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


@check
def chat_streaming_with_usage(ctx):
    stream = ctx.client.chat.completions.create(
        model=ctx.model,
        messages=[{"role": "user", "content": "Tell me about the sea."}],
        max_tokens=16,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1, finishes
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0, chunks[-1]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text, "no content streamed"


@check
def completions(ctx):
    r = ctx.client.completions.create(model=ctx.model, prompt="def fib(n):", max_tokens=8, temperature=0)
    assert r.object == "text_completion" and r.choices[0].text, r
    parts = list(ctx.client.completions.create(model=ctx.model, prompt="def fib(n):", max_tokens=8, temperature=0, stream=True))
    assert "".join(p.choices[0].text for p in parts if p.choices) == r.choices[0].text


FIM_PREFIX = "def reverse(s):\n    return "
FIM_SUFFIX = "\n\nassert reverse('abc') == 'cba'\nprint('fim ok')\n"


def run_python(code):
    import subprocess
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)


@check
def fim_completion_runs(ctx):
    # The model's FIM tokens come from its vocabulary; the middle it writes must make the
    # assembled file run.
    r = ctx.client.completions.create(model=ctx.model, prompt=FIM_PREFIX, suffix=FIM_SUFFIX, max_tokens=48, temperature=0)
    middle = r.choices[0].text
    assert r.choices[0].finish_reason == "stop", r
    code = FIM_PREFIX + middle + FIM_SUFFIX
    p = run_python(code)
    assert p.returncode == 0 and "fim ok" in p.stdout, (middle, p.stdout, p.stderr)


@check
def infill_with_extra_context(ctx):
    # llama.cpp's /infill (llama.vscode, llama.vim): input_extra files go in the repo-level layout.
    body = {
        "input_prefix": "from geometry import area_of_square\n\ndef total_area(sides):\n    return ",
        "input_suffix": "\n",
        "input_extra": [{"filename": "geometry.py", "text": "def area_of_square(side):\n    return side * side\n"}],
        "n_predict": 24,
        "temperature": 0,
    }
    req = urllib.request.Request(
        ctx.root + "/infill",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {ctx.api_key}"},
    )
    with urllib.request.urlopen(req, timeout=300) as resp:
        out = json.loads(resp.read())
    assert isinstance(out.get("content"), str) and out["content"].strip(), out
    assert "area_of_square" in out["content"], out


@check
def models_report_the_32k_window(ctx):
    m = ctx.client.models.list().data[0]
    assert m.id == ctx.model, m
    assert m.model_extra.get("max_model_len") == 32768, m


@check
def auto_tool_call_from_the_chat_template(ctx):
    # No forcing: tools reach the model through its chat template and it writes its own call
    # (hermes; the 0.5B writes it as a fenced JSON object), parsed into tool_calls.
    r = ctx.client.chat.completions.create(
        model=ctx.model,
        messages=[{"role": "user", "content": "What is the weather in Paris, in celsius? Use the tool."}],
        tools=[WEATHER_TOOL],
        max_tokens=96,
        temperature=0,
    )
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls", r
    assert msg.tool_calls and msg.tool_calls[0].function.name == "get_weather", msg
    args = json.loads(msg.tool_calls[0].function.arguments)
    assert args.get("city", "").lower().startswith("paris"), args


@check
def required_tool_call(ctx):
    r = ctx.client.chat.completions.create(
        model=ctx.model,
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        max_tokens=128,
        temperature=0,
    )
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls", r
    assert msg.tool_calls and msg.tool_calls[0].function.name == "get_weather", msg
    args = json.loads(msg.tool_calls[0].function.arguments)
    assert set(args) == {"city", "unit"} and args["unit"] in ("celsius", "fahrenheit"), args
    assert isinstance(args["city"], str) and len(args["city"]) <= 24, args


@check
def json_schema_response(ctx):
    r = ctx.client.chat.completions.create(
        model=ctx.model,
        messages=[{"role": "user", "content": "Invent a person."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True}},
        max_tokens=64,
        temperature=0,
    )
    v = json.loads(r.choices[0].message.content)
    assert set(v) == {"name", "age"}, v
    assert isinstance(v["name"], str) and len(v["name"]) <= 20, v
    assert isinstance(v["age"], int) and 0 <= v["age"] <= 150, v


RESPONSES_WEATHER_TOOL = {"type": "function", **WEATHER_TOOL["function"]}


@check
def responses_text_and_stream_helper(ctx):
    r = ctx.client.responses.create(model=ctx.model, input="Say hello.", max_output_tokens=64, temperature=0, store=False)
    assert r.object == "response" and r.status in ("completed", "incomplete"), r
    assert r.output_text, r
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens, r.usage
    # The SDK's stream helper rebuilds the response from the events; it must agree with the
    # final response.completed/incomplete the server sent.
    with ctx.client.responses.stream(
        model=ctx.model, input="Say hello.", max_output_tokens=64, temperature=0, store=False
    ) as stream:
        deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.output_text == deltas == r.output_text, (final.output_text, deltas, r.output_text)


@check
def responses_tool_round_trip(ctx):
    first = ctx.client.responses.create(
        model=ctx.model,
        input=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[RESPONSES_WEATHER_TOOL],
        tool_choice="required",
        parallel_tool_calls=False,
        max_output_tokens=128,
        temperature=0,
        store=False,
    )
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather", first.output
    args = json.loads(call.arguments)
    assert set(args) == {"city", "unit"}, args
    second = ctx.client.responses.create(
        model=ctx.model,
        input=[
            {"role": "user", "content": "What's the weather in Paris?"},
            call,
            {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 24 C."},
        ],
        tools=[RESPONSES_WEATHER_TOOL],
        tool_choice="none",
        max_output_tokens=24,
        temperature=0,
        store=False,
    )
    assert second.output[0].type == "message" and second.output_text, second.output


@check
def responses_previous_response_id_is_a_clear_400(ctx):
    try:
        ctx.client.responses.create(model=ctx.model, input="hi", previous_response_id="resp_x")
    except openai.BadRequestError as e:
        assert "previous_response_id" in str(e), str(e)
        return
    raise AssertionError("previous_response_id must be refused: lathe stores nothing")


@check
def sixteen_concurrent_streams(ctx):
    def one(i):
        s = ctx.client.chat.completions.create(
            model=ctx.model,
            messages=[{"role": "user", "content": f"Count from {i}."}],
            max_tokens=12,
            stream=True,
            seed=i,
        )
        finishes = [c.choices[0].finish_reason for c in s if c.choices and c.choices[0].finish_reason]
        return finishes

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16)))
    assert all(len(f) == 1 for f in results), results


@check
def disconnect_mid_stream_then_serve(ctx):
    stream = ctx.client.chat.completions.create(
        model=ctx.model,
        messages=[{"role": "user", "content": "Write a very long story."}],
        max_tokens=1000,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    deadline = time.time() + 30
    while True:
        running = metric(ctx.root, "lathe_num_requests_running") + metric(ctx.root, "lathe_num_requests_waiting")
        used = metric(ctx.root, "lathe_kv_blocks_used")
        if running == 0 and used == 0:
            break
        assert time.time() < deadline, f"request not cancelled: running={running} used_blocks={used}"
        time.sleep(0.2)
    r = ctx.client.chat.completions.create(model=ctx.model, messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    assert r.choices[0].message.content is not None


@check
def unknown_model_is_404(ctx):
    try:
        ctx.client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}], max_tokens=2)
    except openai.NotFoundError as e:
        assert e.status_code == 404
        return
    raise AssertionError("unknown model must be a 404")


@check
def wrong_api_key_is_401(ctx):
    bad = openai.OpenAI(base_url=ctx.base_url, api_key="wrong-key", max_retries=0)
    try:
        bad.models.list()
    except openai.AuthenticationError as e:
        assert e.status_code == 401
        return
    raise AssertionError("a wrong key must be refused")


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--ready-timeout", type=float, default=300)
    a = ap.parse_args()
    ctx = Ctx()
    ctx.base_url = a.base_url
    ctx.root = a.base_url.rsplit("/v1", 1)[0]
    ctx.model = a.model
    ctx.api_key = a.api_key
    ctx.client = openai.OpenAI(base_url=a.base_url, api_key=a.api_key, max_retries=0, timeout=300)
    print(f"openai {openai.__version__} against {a.base_url}", flush=True)
    wait_ready(ctx.root, a.ready_timeout)
    passed = failed = 0
    for fn in CHECKS:
        t = time.time()
        try:
            fn(ctx)
            passed += 1
            print(f"PASS {fn.__name__} ({time.time() - t:.1f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {fn.__name__}\n{traceback.format_exc()}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
