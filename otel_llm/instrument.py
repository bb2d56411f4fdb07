"""``otel_llm.instrument()`` / ``otel_llm.uninstrument()``: trace every openai and ollama call.

One call instruments each supported client library that is installed, with the same
options for all; applications run under ``opentelemetry-instrument`` get the same
instrumentors through their entry points (options then come from the environment:
``OTEL_LLM_PROVIDER_HOSTS``, ``OTEL_LLM_STREAM_INCLUDE_USAGE``).

Calling :func:`instrument` again is harmless: the clients are patched once, and the
new options replace the old ones. :func:`uninstrument` restores the original methods.

Other libraries may patch the same client methods with ``wrapt``, before or after
otel-llm: only otel-llm's own wrappers count as "patched", and :func:`uninstrument`
takes out only those, leaving the others working (see
:mod:`otel_llm.instrumentation._patching`).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Mapping

from otel_llm.instrumentation._base import Settings

#: Client library -> (module of its instrumentation, instrumentor class name).
CLIENTS: Mapping[str, tuple[str, str]] = {
    "openai": ("otel_llm.instrumentation.openai", "OpenAIInstrumentor"),
    "ollama": ("otel_llm.instrumentation.ollama", "OllamaInstrumentor"),
}


def _installed(library: str) -> bool:
    try:
        return importlib.util.find_spec(library) is not None
    except (ImportError, ValueError):
        return False


def instrument(
    *,
    openai: bool = True,
    ollama: bool = True,
    provider_hosts: str | Mapping[str, str] | None = None,
    include_usage: bool | None = None,
) -> list[str]:
    """Instrument the installed ``openai`` and ``ollama`` clients; returns the ones instrumented.

    :param openai: instrument the openai client (when installed).
    :param ollama: instrument the ollama client (when installed).
    :param provider_hosts: extra ``{"host[:port]" | "*.suffix": provider}`` mapping, for
        OpenAI-compatible servers the built-in table does not know
        (see :mod:`otel_llm.instrumentation.hosts`); its entries win over those of
        ``OTEL_LLM_PROVIDER_HOSTS``, which is read too.
    :param include_usage: on OpenAI streams, ask the provider for a usage chunk
        (``stream_options.include_usage``) when the caller did not. Off by default:
        the extra final chunk has no ``choices``.

    A malformed ``provider_hosts`` raises ``ValueError`` here, at the call site: the
    code that passed it is where it can be fixed. A malformed ``OTEL_LLM_PROVIDER_HOSTS``
    does not raise, here or under ``opentelemetry-instrument``: it is deployment
    configuration the calling code cannot fix, so it is logged as an error (naming the
    variable, the bad entry and the expected form) and ignored as a whole, and the
    clients are instrumented with the built-in host table.
    """
    settings = Settings.from_options(provider_hosts, include_usage)
    wanted = {"openai": openai, "ollama": ollama}
    done: list[str] = []
    for library, (module_name, class_name) in CLIENTS.items():
        if not wanted[library] or not _installed(library):
            continue
        module = importlib.import_module(module_name)
        instrumentor = getattr(module, class_name)()
        if instrumentor.is_instrumented_by_opentelemetry:
            module.install(settings)  # already patched: only the options change
        else:
            instrumentor.instrument(settings=settings)
        if instrumentor.is_instrumented_by_opentelemetry:
            done.append(library)
    return done


def uninstrument() -> None:
    """Restore the original client methods (harmless when nothing is instrumented)."""
    for module_name, class_name in CLIENTS.values():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        instrumentor = getattr(module, class_name)()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()

