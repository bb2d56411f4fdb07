"""Auto-instrumentation of LLM client libraries: ``openai`` and ``ollama``.

Each client has one module with an ``opentelemetry-instrumentation`` instrumentor
(:class:`otel_llm.instrumentation.openai.OpenAIInstrumentor`,
:class:`otel_llm.instrumentation.ollama.OllamaInstrumentor`), registered as
``opentelemetry_instrumentor`` entry points so ``opentelemetry-instrument`` finds them.
:func:`otel_llm.instrument` installs both (when the client is importable).

Nothing is imported here, so loading one instrumentor never imports the other client.
"""
