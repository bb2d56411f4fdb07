"""Added time per call of the openai and ollama auto-instrumentation (run by hand, not in CI).

Four scenarios — an OpenAI chat completion, a streamed one (consumed to the end, usage
chunk included), an Ollama chat and a streamed Ollama chat — each measured, in one run,
with:

* ``bare``: the client with no telemetry at all (the baseline every figure subtracts);
* ``hand``: a minimal hand-written span around the call recording the same attributes
  otel-llm records (happy path only) — the baseline of the goal — and ``hand-core``,
  one recording only the core ones (operation, provider, model, server, response
  model/id/finish reason, tokens, time to first chunk);
* ``otel-llm``: ``otel_llm.instrument()``;
* peers, when installed (the optional ``bench`` extra): OpenLLMetry's
  ``opentelemetry-instrumentation-openai`` / ``-ollama`` and OpenInference's
  ``openinference-instrumentation-openai``.

To keep the measurement about instrumentation, the clients talk to an in-process
transport (``MockTransport``) that answers with canned OpenAI JSON / SSE and Ollama
JSON / NDJSON bytes: the clients still build requests, parse SSE and NDJSON, and run
their retry loop, but there is no socket. Every variant runs under the same real SDK
set-up (a TracerProvider whose span processor hands each ended span to an exporter that
keeps nothing; no MeterProvider, so metrics are the API's no-op on every side — the
metric cost is measured in ``benchmarks/overhead.py``).

Each instrumentation runs in its own process (instrumentations patch the same methods;
peers do not always uninstrument cleanly). Within a repeat every variant runs one block
of calls, in random order; an added time is the median over repeats of (variant block
minus the bare block of the same repeat), per call.

    python benchmarks/instrumentation_overhead.py [--calls 200] [--repeats 7] [--runs 12] [--peer-runs N]
        [--paired-runs 8] [--paired-rounds 1000] [--no-pin] [--write]

Workers are pinned to one CPU (``--no-pin`` lets them move). ``--settle N`` runs N untimed
calls after every instrument and uninstrument, before the next timed block (switching
changes the patched client classes, which the interpreter's attribute caches notice).

``--runs N`` starts each worker process N times. Most of the noise is between
processes, not within one: the same code gives an otel-llm / hand ratio anywhere from
under 1x to over 2x from one worker process to the next (memory layout, which CPU
caches the host shares), while the repeats inside one process agree far better. So the
budget goes to many short workers rather than a few long ones. Each added time reported
is the median over the runs; the ratio is the median of the runs' own ratios (each
worker's otel-llm and hand-written figures come from the same process), given with a
bootstrap 95 % interval over the runs. The verdict on the goal is "met" only when the
whole interval is within it, "not met" when none of it is, and otherwise "not decided
by this run".

The same run then starts ``--paired-runs`` workers of ``paired_overhead.py`` (default 8;
0 leaves them out): otel-llm installed once, each call paired with a bare and a
hand-written call of the same round, without the switching this design needs for the
peers. Its ratios spread far less from worker to worker; its section follows this one.

``--write`` replaces the "## Instrumentation overhead" section of BENCHMARKS.md (and,
with paired workers, the "## Paired per-call overhead" one).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Instrumentation overhead"

MODEL = "gpt-4o-mini"
OLLAMA_MODEL = "llama3.2"
MESSAGES = [{"role": "user", "content": "hi"}]
SCENARIOS = ("openai sync", "openai stream", "ollama sync", "ollama stream")

#: Peer instrumentations: name -> (module that must be importable, [(module, class, client)]).
PEERS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "openllmetry": ("opentelemetry.instrumentation.openai", [
        ("opentelemetry.instrumentation.openai", "OpenAIInstrumentor", "openai"),
        ("opentelemetry.instrumentation.ollama", "OllamaInstrumentor", "ollama"),
    ]),
    "openinference": ("openinference.instrumentation.openai", [
        ("openinference.instrumentation.openai", "OpenAIInstrumentor", "openai"),
    ]),
}


# --- canned provider answers ---------------------------------------------------------------------
def _sse(obj: Any) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


def _openai_bodies() -> tuple[bytes, bytes]:
    usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
             "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 0}}
    whole = json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": usage,
    }).encode()

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], "usage": None}

    stream = b"".join([
        _sse(chunk({"role": "assistant", "content": ""})),
        *(_sse(chunk({"content": w})) for w in ("Hello ", "there ", "friend")),
        _sse(chunk({}, "stop")),
        _sse({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": MODEL,
              "choices": [], "usage": usage}),
        b"data: [DONE]\n\n",
    ])
    return whole, stream


def _ollama_bodies() -> tuple[bytes, bytes]:
    final = {"done": True, "done_reason": "stop", "prompt_eval_count": 12, "eval_count": 3,
             "total_duration": 250_000_000, "load_duration": 120_000_000,
             "prompt_eval_duration": 30_000_000, "eval_duration": 90_000_000}
    base = {"model": OLLAMA_MODEL, "created_at": "2024-01-01T00:00:00Z"}
    whole = json.dumps({**base, "message": {"role": "assistant", "content": "Hello there"}, **final}).encode()
    lines = [json.dumps({**base, "message": {"role": "assistant", "content": w}, "done": False})
             for w in ("Hello ", "there ", "friend")]
    lines.append(json.dumps({**base, "message": {"role": "assistant", "content": ""}, **final}))
    return whole, ("\n".join(lines) + "\n").encode()


def make_clients() -> tuple[Any, Any]:
    """An OpenAI client and an Ollama client whose transports answer in-process."""
    import httpx
    import httpx2
    import ollama
    import openai

    o_whole, o_stream = _openai_bodies()
    l_whole, l_stream = _ollama_bodies()

    def openai_handler(request: Any) -> Any:
        body = json.loads(request.content)
        if body.get("stream"):
            return httpx2.Response(200, content=o_stream, headers={"content-type": "text/event-stream"})
        return httpx2.Response(200, content=o_whole, headers={"content-type": "application/json"})

    def ollama_handler(request: Any) -> Any:
        body = json.loads(request.content)
        if body.get("stream"):
            return httpx.Response(200, content=l_stream, headers={"content-type": "application/x-ndjson"})
        return httpx.Response(200, content=l_whole, headers={"content-type": "application/json"})

    oa = openai.OpenAI(base_url="https://api.openai.com/v1", api_key="bench",
                       http_client=httpx2.Client(transport=httpx2.MockTransport(openai_handler)))
    ol = ollama.Client(host="http://localhost:11434", transport=httpx.MockTransport(ollama_handler))
    return oa, ol


# --- the calls ---------------------------------------------------------------------------------------
def _by_scenario(*calls: Callable[[], Any]) -> dict[str, Callable[[], Any]]:
    """Scenario name -> call, each call named after its scenario (a function called
    ``openai_stream`` is the "openai stream" scenario), so that a changed
    :data:`SCENARIOS` cannot pair a scenario with another one's call."""
    named = {call.__name__.replace("_", " "): call for call in calls}
    return {scenario: named[scenario] for scenario in SCENARIOS}


def bare_calls(oa: Any, ol: Any) -> dict[str, Callable[[], Any]]:
    def openai_sync() -> Any:
        return oa.chat.completions.create(model=MODEL, messages=MESSAGES)

    def openai_stream() -> Any:
        last = None
        for chunk in oa.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True},
        ):
            last = chunk
        return last

    def ollama_sync() -> Any:
        return ol.chat(model=OLLAMA_MODEL, messages=MESSAGES)

    def ollama_stream() -> Any:
        last = None
        for part in ol.chat(model=OLLAMA_MODEL, messages=MESSAGES, stream=True):
            last = part
        return last

    return _by_scenario(openai_sync, openai_stream, ollama_sync, ollama_stream)


def hand_calls(oa: Any, ol: Any, *, full: bool) -> dict[str, Callable[[], Any]]:
    """A hand-written span per call: what one would write without otel-llm (happy path only).

    ``full=True`` records the same attributes otel-llm records for these calls (the
    like-for-like baseline of the goal); ``full=False`` only the core ten or so.
    """
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    from otel_llm import semconv as s

    tracer = trace.get_tracer("hand-written")
    oa_start = {s.GEN_AI_OPERATION_NAME: "chat", s.GEN_AI_PROVIDER_NAME: "openai", s.GEN_AI_REQUEST_MODEL: MODEL,
                s.SERVER_ADDRESS: "api.openai.com", s.SERVER_PORT: 443}
    ol_start = {s.GEN_AI_OPERATION_NAME: "chat", s.GEN_AI_PROVIDER_NAME: "ollama", s.GEN_AI_REQUEST_MODEL: OLLAMA_MODEL,
                s.SERVER_ADDRESS: "localhost", s.SERVER_PORT: 11434}
    if full:
        for attrs in (oa_start, ol_start):
            attrs[s.GEN_AI_SYSTEM] = attrs[s.GEN_AI_PROVIDER_NAME]
            attrs[s.GEN_AI_REQUEST_STREAM] = False
        oa_start.update({s.OTEL_LLM_ATTEMPT: 0, s.OTEL_LLM_FALLBACK: False})
    oa_stream_start = {**oa_start, s.GEN_AI_REQUEST_STREAM: True} if full else oa_start
    ol_stream_start = {**ol_start, s.GEN_AI_REQUEST_STREAM: True} if full else ol_start

    def openai_start(attrs: dict[str, Any]) -> dict[str, Any]:
        if full:
            attrs = {**attrs, s.OTEL_LLM_LOGICAL_CALL_ID: "%016x" % random.getrandbits(64)}
        return attrs

    def openai_end(span: Any, model: str, rid: str, finish: Any, usage: Any, tool_calls: int) -> None:
        attrs: dict[str, Any] = {s.GEN_AI_RESPONSE_MODEL: model, s.GEN_AI_RESPONSE_ID: rid}
        if finish:
            attrs[s.GEN_AI_RESPONSE_FINISH_REASONS] = finish
            if full:
                attrs[s.OTEL_LLM_TOOL_CALLS] = tool_calls
        if usage is not None:
            attrs[s.GEN_AI_USAGE_INPUT_TOKENS] = usage.prompt_tokens
            attrs[s.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.completion_tokens
            if full:
                attrs[s.HTTP_RESPONSE_STATUS_CODE] = 200
                attrs[s.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.prompt_tokens_details.cached_tokens
                attrs[s.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.completion_tokens_details.reasoning_tokens
        span.set_attributes(attrs)

    def ollama_end(span: Any, r: Any, tool_calls: int) -> None:
        attrs: dict[str, Any] = {
            s.GEN_AI_RESPONSE_MODEL: r.model, s.GEN_AI_RESPONSE_FINISH_REASONS: [r.done_reason],
            s.GEN_AI_USAGE_INPUT_TOKENS: r.prompt_eval_count, s.GEN_AI_USAGE_OUTPUT_TOKENS: r.eval_count,
        }
        if full:
            attrs[s.OTEL_LLM_TOOL_CALLS] = tool_calls
            attrs[s.OTEL_LLM_OLLAMA_LOAD_DURATION] = r.load_duration / 1e9
            attrs[s.OTEL_LLM_OLLAMA_PROMPT_EVAL_DURATION] = r.prompt_eval_duration / 1e9
            attrs[s.OTEL_LLM_OLLAMA_EVAL_DURATION] = r.eval_duration / 1e9
            attrs[s.OTEL_LLM_OLLAMA_TOTAL_DURATION] = r.total_duration / 1e9
        span.set_attributes(attrs)

    def openai_sync() -> Any:
        with tracer.start_as_current_span(f"chat {MODEL}", kind=SpanKind.CLIENT, attributes=openai_start(oa_start)) as span:
            r = oa.chat.completions.create(model=MODEL, messages=MESSAGES)
            calls = r.choices[0].message.tool_calls if full else None
            openai_end(span, r.model, r.id, [c.finish_reason for c in r.choices], r.usage, len(calls) if calls else 0)
            return r

    def openai_stream() -> Any:
        attrs = openai_start(oa_stream_start)
        with tracer.start_as_current_span(f"chat {MODEL}", kind=SpanKind.CLIENT, attributes=attrs) as span:
            start = time.time_ns()
            first = True
            last = usage = finish = None
            tool_calls = 0
            for chunk in oa.chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True},
            ):
                if first:
                    first = False
                    span.set_attribute(s.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, (time.time_ns() - start) / 1e9)
                if chunk.usage is not None:
                    usage = chunk.usage
                if chunk.choices:
                    choice = chunk.choices[0]
                    if full and choice.delta.tool_calls:  # a tool call's first delta carries its id
                        tool_calls += sum(1 for tc in choice.delta.tool_calls if tc.id)
                    if choice.finish_reason:
                        finish = [choice.finish_reason]
                last = chunk
            openai_end(span, last.model, last.id, finish, usage, tool_calls)
            return last

    def ollama_sync() -> Any:
        with tracer.start_as_current_span(f"chat {OLLAMA_MODEL}", kind=SpanKind.CLIENT, attributes=ol_start) as span:
            r = ol.chat(model=OLLAMA_MODEL, messages=MESSAGES)
            calls = r.message.tool_calls if full else None
            ollama_end(span, r, len(calls) if calls else 0)
            return r

    def ollama_stream() -> Any:
        with tracer.start_as_current_span(
            f"chat {OLLAMA_MODEL}", kind=SpanKind.CLIENT, attributes=ol_stream_start,
        ) as span:
            start = time.time_ns()
            first = True
            last = None
            tool_calls = 0
            for part in ol.chat(model=OLLAMA_MODEL, messages=MESSAGES, stream=True):
                if first:
                    first = False
                    span.set_attribute(s.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, (time.time_ns() - start) / 1e9)
                if full and part.message.tool_calls:
                    tool_calls += len(part.message.tool_calls)
                last = part
            ollama_end(span, last, tool_calls)
            return last

    return _by_scenario(openai_sync, openai_stream, ollama_sync, ollama_stream)


# --- measuring (in a worker process) -------------------------------------------------------------------
def _install_sdk() -> Any:
    """The SDK set-up every variant runs under; returns its exporter, which keeps no span,
    only how many it was given (``spans``)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class NullExporter(SpanExporter):
        spans = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.spans += len(spans)
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            return None

    exporter = NullExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


def _pin_to_one_cpu() -> None:
    """Keep the worker on one CPU (the last one it may use), where the OS allows it.

    On a small shared machine a worker moved between CPUs finds its caches cold again;
    unpinned, the same variant's figure varied by 2x and more from one worker process to
    the next, pinned by about a tenth."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
    except (AttributeError, OSError):  # not on this platform
        pass


def _block(fn: Callable[[], Any], calls: int) -> float:
    """CPU seconds per call of the calling thread (everything runs on it: the transport is
    in-process), so time the machine spends on other processes is not counted."""
    start = time.thread_time()
    for _ in range(calls):
        fn()
    return (time.thread_time() - start) / calls


def _toggles(name: str) -> tuple[Callable[[], None], Callable[[], None], set[str]]:
    """(turn on, turn off, scenarios covered) for an instrumentation."""
    if name == "otel-llm":
        from otel_llm.instrument import instrument, uninstrument

        return (lambda: instrument()), uninstrument, set(SCENARIOS)
    module_needed, parts = PEERS[name]
    instrumentors = []
    covered: set[str] = set()
    for module_name, class_name, client in parts:
        if importlib.util.find_spec(module_name.rsplit(".", 1)[0]) is None:
            continue
        try:
            module = __import__(module_name, fromlist=[class_name])
        except ImportError:
            continue
        instrumentors.append(getattr(module, class_name)())
        covered |= {s for s in SCENARIOS if s.startswith(client)}

    clean: dict[Any, dict[str, Any]] = {}

    def on() -> None:
        if not clean:  # taken once the clients have loaded their lazily imported resources
            clean.update(_patch_snapshot())
        for inst in instrumentors:
            if not inst.is_instrumented_by_opentelemetry:
                inst.instrument()

    def off() -> None:
        for inst in instrumentors:
            if inst.is_instrumented_by_opentelemetry:
                inst.uninstrument()
        _restore(clean)  # what a peer's uninstrument left wrapped would stack up on every on()

    return on, off, covered


#: Modules whose functions and classes instrumentations patch.
_PATCHED_PACKAGES = ("openai", "ollama", "httpx", "httpx2")


def _patch_snapshot() -> dict[Any, dict[str, Any]]:
    """The namespaces instrumentations patch (the clients' modules and their classes), copied."""
    import inspect

    spaces: dict[Any, dict[str, Any]] = {}
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in _PATCHED_PACKAGES:
            continue
        spaces[module] = dict(vars(module))
        for value in list(vars(module).values()):
            if inspect.isclass(value) and getattr(value, "__module__", "") == name:
                spaces[value] = dict(vars(value))
    return spaces


def _restore(spaces: dict[Any, dict[str, Any]]) -> None:
    """Put back every function or method of the snapshot that is now a wrapper.

    Peers' ``uninstrument`` does not always unwrap what ``instrument`` wrapped (seen:
    OpenLLMetry's chat wrapper nesting one level deeper on every instrument/uninstrument
    cycle), which would make each block slower than the one before.
    """
    for space, saved in spaces.items():
        current = vars(space)
        for key, value in saved.items():
            now = current.get(key, value)
            # Only wrappers are put back: other names change for their own reasons
            # (caches the clients and pydantic fill on first use).
            if now is not value and hasattr(now, "__wrapped__"):
                try:
                    setattr(space, key, value)
                except (AttributeError, TypeError):
                    pass


def worker(name: str, calls: int, repeats: int, settle: int = 0) -> dict[str, dict[str, float]]:
    """Per scenario: ``bare`` = median seconds per bare call; every other variant = the
    median over repeats of its added seconds per call against the bare block of the same
    repeat (paired, so slow drift of a shared machine cancels out)."""
    _install_sdk()
    oa, ol = make_clients()
    bare = bare_calls(oa, ol)
    hands = {"hand": hand_calls(oa, ol, full=True), "hand-core": hand_calls(oa, ol, full=False)} if name == "otel-llm" else {}
    on, off, covered = _toggles(name)
    samples: dict[str, dict[str, list[float]]] = {s: {} for s in SCENARIOS}
    rng = random.Random(7)
    # Warm up every path once (imports, caches, connection-free transports).
    for scenario in SCENARIOS:
        bare[scenario]()
        for hand in hands.values():
            hand[scenario]()
        if scenario in covered:
            on()
            bare[scenario]()
            off()
    for _ in range(repeats):
        for scenario in SCENARIOS:
            variants = ["bare", *hands] + ([name] if scenario in covered else [])
            rng.shuffle(variants)
            block: dict[str, float] = {}
            for variant in variants:
                if variant == name:
                    on()
                    for _ in range(settle):
                        bare[scenario]()
                    block[variant] = _block(bare[scenario], calls)
                    off()
                    for _ in range(settle):
                        bare[scenario]()
                elif variant in hands:
                    block[variant] = _block(hands[variant][scenario], calls)
                else:
                    block[variant] = _block(bare[scenario], calls)
            for variant, seconds in block.items():
                value = seconds if variant == "bare" else seconds - block["bare"]
                samples[scenario].setdefault(variant, []).append(value)
    return {sc: {v: statistics.median(xs) for v, xs in by_variant.items()} for sc, by_variant in samples.items()}


# --- orchestration -------------------------------------------------------------------------------------
def _available_peers() -> list[str]:
    return [name for name, (module, _parts) in PEERS.items()
            if importlib.util.find_spec(module.split(".")[0]) is not None and _spec_ok(module)]


def _spec_ok(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def run_json_worker(script: str, args: Sequence[str], what: str = "worker", root: Path = ROOT) -> Any:
    """Run ``script args`` in a new Python process with the project in ``root`` importable
    (this checkout's, unless another version of it is measured); the JSON on the last line
    it prints (a worker process of a benchmark)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run_worker(name: str, calls: int, repeats: int, options: Sequence[str]) -> dict[str, dict[str, float]]:
    """One worker process; ``options``: the worker's further command-line options."""
    args = ["--worker", name, "--calls", str(calls), "--repeats", str(repeats), *options]
    return run_json_worker(__file__, args, f"worker {name}")  # type: ignore[no-any-return]


def _median_of_runs(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per scenario and variant, the median of that figure over several worker runs."""
    return {
        scenario: {variant: statistics.median(run[scenario][variant] for run in runs) for variant in by_variant}
        for scenario, by_variant in runs[0].items()
    }


#: Bootstrap resamples for the interval of the median ratio (seeded: a report is repeatable
#: from its runs).
_BOOTSTRAP = 4000


def median_ratio_interval(ratios: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(median, low, high): the median of per-run ratios and a bootstrap interval for it.

    The runs are resampled with replacement; the interval holds the middle ``level`` of
    the resampled medians. With one run the interval is that run's ratio."""
    values = sorted(ratios)
    middle = statistics.median(values)
    if len(values) < 2:
        return middle, middle, middle
    rng = random.Random(0)
    medians = sorted(
        statistics.median(rng.choices(values, k=len(values))) for _ in range(_BOOTSTRAP)
    )
    tail = (1 - level) / 2
    low = medians[int(tail * (len(medians) - 1))]
    high = medians[int((1 - tail) * (len(medians) - 1))]
    return middle, low, high


def verdict(low: float, high: float, goal: float = 1.3) -> str:
    """Whether an interval of the ratio says the goal is met, missed, or neither."""
    if high <= goal:
        return "met"
    if low > goal:
        return "not met"
    return "not decided"


def _run_workers(
    name: str, calls: int, repeats: int, runs: int, options: Sequence[str]
) -> list[dict[str, dict[str, float]]]:
    return [_run_worker(name, calls, repeats, options) for _ in range(max(1, runs))]


def _times(ratio: float) -> str:
    return f"{ratio:.2f}x" if math.isfinite(ratio) else "unbounded"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f}"


def _ratio(r: dict[str, float]) -> float:
    """otel-llm's added time over the hand-written span's; infinite when noise left the
    hand-written span nothing (it then sorts above every real ratio)."""
    return r["otel-llm"] / r["hand"] if r["hand"] > 0 else math.inf


def report(
    results: dict[str, dict[str, dict[str, float]]], calls: int, repeats: int, runs: int = 1,
    our_runs: list[dict[str, dict[str, float]]] | None = None, pinned: bool = True,
    peer_runs: int | None = None, settle: int = 0,
) -> str:
    """The BENCHMARKS.md section (markdown). ``results``: per instrumentation, the median
    over its runs of each figure; ``our_runs``: otel-llm's worker runs, whose own
    otel-llm / hand ratios give the ratio column and its interval."""
    ours = results["otel-llm"]
    peers = [p for p in results if p != "otel-llm"]
    per_run = our_runs or [ours]
    header = ["scenario", "bare (µs/call)", "hand-written, core attributes: added µs",
              "hand-written, same attributes: added µs", "otel-llm: added µs",
              "otel-llm / hand (same), median of runs", "95 % interval", "goal 1.3x"]
    header += [f"{p}: added µs" for p in peers]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    verdicts: dict[str, int] = {}
    for scenario in SCENARIOS:
        r = ours[scenario]
        middle, low, high = median_ratio_interval([_ratio(run[scenario]) for run in per_run])
        said = verdict(low, high)
        verdicts[said] = verdicts.get(said, 0) + 1
        row = [scenario, _us(r["bare"]), _us(r["hand-core"]), _us(r["hand"]), _us(r["otel-llm"]),
               _times(middle), f"{_times(low)}-{_times(high)}", said]
        for p in peers:
            pr = results[p].get(scenario, {})
            row.append(_us(pr[p]) if p in pr else "n/a")
        lines.append("| " + " | ".join(row) + " |")
    summary = ", ".join(f"{verdicts[v]} {v}" for v in ("met", "not decided", "not met") if v in verdicts)
    if peers:
        peer_note = "Peers measured: " + ", ".join(peers) + "."
    elif peer_runs == 0:
        peer_note = "Peers left out of this run (`--peer-runs 0`)."
    else:
        peer_note = (
            "Peers (OpenLLMetry's opentelemetry-instrumentation-openai/-ollama, OpenInference's "
            "openinference-instrumentation-openai) were not installed in this run; install the "
            "optional `bench` extra to include them."
        )
    return "\n".join([
        SECTION,
        "",
        "Added time per call of auto-instrumentation over the bare client, from",
        f"`python benchmarks/instrumentation_overhead.py --runs {runs} --repeats {repeats}"
        + ("" if peer_runs in (None, runs) else f" --peer-runs {peer_runs}") + "` (in-process",
        "transport, no socket; in each worker process, added time = median over its repeats of",
        f"(variant block - bare block of the same repeat), blocks of {calls} calls, CPU time of the",
        "calling thread; spans to a discarding exporter, no MeterProvider). Streams are consumed",
        "to the end (OpenAI with its usage chunk).",
        f"Added times: median of {runs} worker runs"
        + ("" if peer_runs in (None, runs) else f" ({peer_runs} for each peer)")
        + ". Ratio: median of the runs' own otel-llm / hand",
        "ratios, with a bootstrap 95 % interval over the runs; the goal counts as met only when",
        "the whole interval is within it.",
        *([f"After each instrument/uninstrument, {settle} untimed calls ran before the next timed block."]
          if settle else []),
        f"Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs (shared machine), "
        + ("each worker pinned to one CPU." if pinned else "workers not pinned to a CPU."),
        "",
        *lines,
        "",
        "Goal: otel-llm at most 1.3x the added time of a hand-written span recording the same",
        "attributes (request attributes at start, response attributes in one call at the end,",
        "happy path only). The core column records only operation, provider, model, server,",
        "response model/id/finish reason and token counts; otel-llm also checks the context",
        "(suppression, enclosing LLM span, fallback attempt), applies the scope, reads any",
        "response shape, and ends streams correctly on every exit path.",
        f"In this run: {summary}.",
        peer_note,
        "",
        "The goal is judged on the paired figures of the next section (`paired_overhead.py`, which",
        "this script runs with `--paired-runs`): there otel-llm is installed once, as in an",
        "application. This table's blocks switch it on and off around every otel-llm block,",
        "because the peers patch the same methods, and its ratios spread widely from one worker",
        "process to the next (\"what the time figures can tell\", below); it is here for the peers.",
        "",
    ])


def write_section(text: str, path: Path = ROOT / "BENCHMARKS.md", section: str = SECTION) -> None:
    """Replace (or append) the section headed ``section`` in BENCHMARKS.md, leaving every
    other section alone (one whose heading only starts the same is another section)."""
    existing = path.read_text() if path.exists() else "# Benchmarks\n"
    # Where the heading line starts in ``existing`` (the "\n" put in front is the one matched).
    start = ("\n" + existing).find("\n" + section + "\n")
    if start == -1:
        new = existing.rstrip("\n") + "\n\n" + text
    else:
        nxt = existing.find("\n## ", start + len(section))
        # One blank line between this section and the next, whatever ``text`` ends with.
        new = existing[:start] + text.rstrip("\n") + ("\n" if nxt == -1 else "\n\n" + existing[nxt + 1:])
    path.write_text(new.rstrip("\n") + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--runs", type=int, default=12, help="worker processes per instrumentation")
    parser.add_argument("--peer-runs", type=int, default=None,
                        help="worker processes per peer (default: --runs; 0 leaves the peers out)")
    parser.add_argument("--settle", type=int, default=0,
                        help="untimed calls after each instrument/uninstrument, before the next timed block")
    parser.add_argument("--paired-runs", type=int, default=8,
                        help="workers of paired_overhead.py after this benchmark's own (0 leaves them out)")
    parser.add_argument("--paired-rounds", type=int, default=1000, help="rounds per paired worker")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument("--no-pin", action="store_true", help="let the workers run on any CPU")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        if not args.no_pin:
            _pin_to_one_cpu()
        print(json.dumps(worker(args.worker, args.calls, args.repeats, args.settle)))
        return
    options = [*(["--no-pin"] if args.no_pin else []), "--settle", str(args.settle)]
    our_runs = _run_workers("otel-llm", args.calls, args.repeats, args.runs, options)
    results = {"otel-llm": _median_of_runs(our_runs)}
    peer_runs = args.runs if args.peer_runs is None else args.peer_runs
    for peer in _available_peers() if peer_runs > 0 else []:
        results[peer] = _median_of_runs(_run_workers(peer, args.calls, args.repeats, peer_runs, options))
    text = report(results, args.calls, args.repeats, args.runs, our_runs, pinned=not args.no_pin,
                  peer_runs=peer_runs, settle=args.settle)
    print(text)
    if args.write:
        write_section(text)
    if args.paired_runs > 0:
        import paired_overhead

        paired = [paired_overhead._run_worker(args.paired_rounds, seed, not args.no_pin)
                  for seed in range(args.paired_runs)]
        paired_text = paired_overhead.report(paired, args.paired_rounds, not args.no_pin)
        print(paired_text)
        if args.write:
            write_section(paired_text, section=paired_overhead.SECTION)


if __name__ == "__main__":
    main()
