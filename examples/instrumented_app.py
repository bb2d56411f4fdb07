"""An application with no tracing code at all, traced by ``opentelemetry-instrument``.

It makes four ordinary calls — an OpenAI chat completion, a streamed one, an Ollama
chat and a streamed Ollama chat. Run it under the OpenTelemetry launcher and every call
becomes a GenAI span, found through otel-llm's ``opentelemetry_instrumentor`` entry
points::

    OTEL_TRACES_EXPORTER=console OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \\
        opentelemetry-instrument python examples/instrumented_app.py

Where it sends the calls:

* ``OTEL_LLM_EXAMPLE_OPENAI_BASE_URL`` (an OpenAI-compatible ``/v1`` URL) and
  ``OTEL_LLM_EXAMPLE_OLLAMA_HOST`` (an Ollama server) when set;
* otherwise a local **fake** provider from ``tests/fake_provider.py``, started in this
  process: no network, no API key, canned answers.

Options for the instrumentation come from the environment here, as the launcher passes
no arguments: ``OTEL_LLM_PROVIDER_HOSTS`` (``host[:port]=provider,...``) and
``OTEL_LLM_STREAM_INCLUDE_USAGE=true``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import ollama
import openai

OPENAI_URL_ENV = "OTEL_LLM_EXAMPLE_OPENAI_BASE_URL"
OLLAMA_HOST_ENV = "OTEL_LLM_EXAMPLE_OLLAMA_HOST"
OPENAI_MODEL = os.environ.get("OTEL_LLM_EXAMPLE_OPENAI_MODEL", "gpt-4o-mini")
OLLAMA_MODEL = os.environ.get("OTEL_LLM_EXAMPLE_OLLAMA_MODEL", "llama3.2")


def _start_fake() -> object:
    """The local fake provider (an example without a server still runs)."""
    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from tests.fake_provider import FakeProvider

    return FakeProvider().start()


def main() -> None:
    fake = None
    openai_url = os.environ.get(OPENAI_URL_ENV)
    ollama_host = os.environ.get(OLLAMA_HOST_ENV)
    if not openai_url or not ollama_host:
        fake = _start_fake()
        print(f"using the local fake provider at {fake.url} (canned answers)")  # type: ignore[attr-defined]
        openai_url = openai_url or fake.openai_base_url  # type: ignore[attr-defined]
        ollama_host = ollama_host or fake.url  # type: ignore[attr-defined]
    messages = [{"role": "user", "content": "Say hello in five words."}]
    try:
        with openai.OpenAI(base_url=openai_url, api_key=os.environ.get("OPENAI_API_KEY", "not-needed")) as client:
            answer = client.chat.completions.create(model=OPENAI_MODEL, messages=messages)
            print("openai:", answer.choices[0].message.content)
            streamed = "".join(
                chunk.choices[0].delta.content or ""
                for chunk in client.chat.completions.create(model=OPENAI_MODEL, messages=messages, stream=True)
                if chunk.choices
            )
            print("openai stream:", streamed)
        with ollama.Client(host=ollama_host) as local:
            print("ollama:", local.chat(model=OLLAMA_MODEL, messages=messages).message.content)
            parts = local.chat(model=OLLAMA_MODEL, messages=messages, stream=True)
            print("ollama stream:", "".join(part.message.content for part in parts))
    finally:
        if fake is not None:
            fake.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
