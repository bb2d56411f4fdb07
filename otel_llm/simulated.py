"""A local, simulated LLM provider for demos: no network, no API key, no real model.

It answers with OpenAI-shaped chat-completion dicts after a short sleep drawn from a
per-model latency profile, fails at a per-model rate with realistic error classes, and
emits tool calls when tools are offered to a model that can call them. Every answer says
it is simulated (``system_fingerprint="otel-llm-simulated"``), so nobody mistakes demo
data for real traffic.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

#: Marker on every simulated response.
SIMULATED_FINGERPRINT = "otel-llm-simulated"


class SimulatedRateLimitError(Exception):
    """The simulated provider's 429."""


class SimulatedServerError(Exception):
    """The simulated provider's 500."""


class SimulatedTimeout(Exception):
    """The simulated provider did not answer in time."""


@dataclass(frozen=True)
class ModelProfile:
    """How a simulated model behaves: median latency, spread, failure rate, tool use."""

    median_ms: float
    spread: float = 0.35
    error_rate: float = 0.0
    calls_tools: bool = True


#: Built-in profiles; unknown models get :data:`DEFAULT_PROFILE`.
PROFILES: dict[str, ModelProfile] = {
    "gpt-4o": ModelProfile(median_ms=9.0, error_rate=0.02),
    "gpt-4o-mini": ModelProfile(median_ms=4.0, error_rate=0.01),
    "claude-3-5-haiku-latest": ModelProfile(median_ms=5.0, error_rate=0.01),
    "llama3.2": ModelProfile(median_ms=6.0, spread=0.6, error_rate=0.0, calls_tools=False),
    "flaky-large": ModelProfile(median_ms=12.0, error_rate=0.6),
}
DEFAULT_PROFILE = ModelProfile(median_ms=5.0)


class SimulatedProvider:
    """Thread-safe, seeded simulated provider.

    ``chat(model, messages, tools=None)`` returns an OpenAI-shaped dict or raises one
    of the ``Simulated*`` errors. ``time_scale`` multiplies every latency (0 for tests).
    """

    def __init__(self, seed: int = 7, time_scale: float = 1.0, profiles: dict[str, ModelProfile] | None = None) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._time_scale = time_scale
        self._profiles = dict(PROFILES if profiles is None else profiles)
        self._counter = 0

    def _draw(self, profile: ModelProfile) -> tuple[float, float, int, int]:
        with self._lock:
            self._counter += 1
            latency = profile.median_ms * self._rng.lognormvariate(0.0, profile.spread)
            fail_roll = self._rng.random()
            prompt = self._rng.randint(40, 1200)
            completion = self._rng.randint(5, 400)
            return latency, fail_roll, prompt, completion

    def chat(self, model: str, messages: Sequence[Any], tools: Sequence[Any] | None = None) -> dict[str, Any]:
        """One chat completion (blocking for the simulated latency)."""
        profile = self._profiles.get(model, DEFAULT_PROFILE)
        latency_ms, fail_roll, prompt_tokens, completion_tokens = self._draw(profile)
        if self._time_scale:
            time.sleep(latency_ms * self._time_scale / 1000.0)
        if fail_roll < profile.error_rate:
            kind = int(fail_roll / profile.error_rate * 3)
            if kind == 0:
                raise SimulatedRateLimitError(f"simulated 429: rate limit reached for {model}")
            if kind == 1:
                raise SimulatedServerError(f"simulated 500 from {model}")
            raise SimulatedTimeout(f"simulated timeout waiting for {model}")
        message: dict[str, Any] = {"role": "assistant", "content": "simulated answer"}
        finish = "stop"
        if tools and profile.calls_tools:
            first = tools[0]
            name = first.get("function", {}).get("name", "tool") if isinstance(first, dict) else str(first)
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": f"call_sim_{self._counter}", "type": "function",
                     "function": {"name": name, "arguments": "{}"}}
                ],
            }
            finish = "tool_calls"
        return {
            "id": f"chatcmpl-sim-{self._counter}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": SIMULATED_FINGERPRINT,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def chat_stream(self, model: str, messages: Sequence[Any]) -> Iterator[dict[str, Any]]:
        """A streamed chat completion: OpenAI-shaped chunks, then a usage chunk.

        The first chunk comes after about a third of the simulated latency, the rest
        spread over the remainder; a failure is raised before the first chunk.
        """
        profile = self._profiles.get(model, DEFAULT_PROFILE)
        latency_ms, fail_roll, prompt_tokens, completion_tokens = self._draw(profile)
        pieces = ["simulated ", "streamed ", "answer"]
        pause = latency_ms * self._time_scale / 1000.0
        if pause:
            time.sleep(pause / 3)
        if fail_roll < profile.error_rate:
            raise SimulatedServerError(f"simulated 500 from {model}")
        base = {"id": f"chatcmpl-sim-{self._counter}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model, "system_fingerprint": SIMULATED_FINGERPRINT}
        for i, piece in enumerate(pieces):
            if pause and i:
                time.sleep(pause * 2 / 3 / len(pieces))
            last = i == len(pieces) - 1
            yield {**base, "choices": [{"index": 0, "delta": {"content": piece},
                                        "finish_reason": "stop" if last else None}]}
        yield {**base, "choices": [], "usage": {"prompt_tokens": prompt_tokens,
                                                "completion_tokens": completion_tokens,
                                                "total_tokens": prompt_tokens + completion_tokens}}
