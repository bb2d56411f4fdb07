"""Who answers a call: provider name and server address/port from a client's base URL.

The OpenAI client library talks to many servers that are not OpenAI (Azure OpenAI,
OpenRouter, Groq, a local Ollama, a company gateway). Labelling them all ``openai``
would put their calls on the wrong route, price them with the wrong price list and
hide which provider failed. So the provider name is read from the host the client is
configured for:

* a table of well-known hosts, named as the GenAI conventions name them
  (``azure.ai.openai``, ``gcp.gemini``, ``mistral_ai``, ``x_ai``, ...);
* a local server on Ollama's port (11434) is ``ollama``;
* a user mapping, from :func:`otel_llm.instrument` (``provider_hosts={...}``) or the
  ``OTEL_LLM_PROVIDER_HOSTS`` environment variable (``host[:port]=provider`` pairs,
  comma separated; ``*.example.com`` matches every sub-domain), wins over the table
  (the argument's entries over the variable's);
* any other host is named by itself (``llm-gateway.internal``): honest, bounded by the
  number of base URLs the application configures, and fixable with the mapping. It is
  never silently called ``openai``.

A malformed mapping passed as an argument raises ``ValueError`` where it is passed. A
malformed ``OTEL_LLM_PROVIDER_HOSTS`` does not raise (see :func:`env_provider_hosts`):
it is logged as an error and ignored, so a typo in deployment configuration cannot
switch instrumentation off.

Resolution is a pure function of the URL and the mapping; :class:`HostResolver` caches
it per URL object, so the per-call cost is one dictionary lookup.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from otel_llm import semconv
from otel_llm._safety import report_setting_once

#: Environment variable with a user mapping (``host[:port]=provider,...``), for
#: applications run under ``opentelemetry-instrument`` that cannot pass arguments.
PROVIDER_HOSTS_ENV = "OTEL_LLM_PROVIDER_HOSTS"

#: The form of one mapping entry, as error messages state it.
ENTRY_FORM = "host[:port]=provider"

#: Port a local Ollama listens on (its OpenAI-compatible endpoint is ``/v1`` there).
OLLAMA_DEFAULT_PORT = 11434

#: Exact host names of well-known providers, and their convention names.
KNOWN_HOSTS: Mapping[str, str] = {
    "api.openai.com": "openai",
    "openrouter.ai": "openrouter",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "api.anthropic.com": "anthropic",
    "api.cohere.ai": "cohere",
    "api.cohere.com": "cohere",
    "api.together.xyz": "together_ai",
    "api.fireworks.ai": "fireworks_ai",
    "api.cerebras.ai": "cerebras",
    "ollama.com": "ollama",
}

#: Host-name suffixes of well-known providers (multi-tenant hosts: one sub-domain per customer).
KNOWN_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".openai.azure.com", "azure.ai.openai"),
    (".cognitiveservices.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.inference"),
    (".models.ai.azure.com", "azure.ai.inference"),
    ("-aiplatform.googleapis.com", "gcp.vertex_ai"),
    (".openai.com", "openai"),
)

#: AWS domains under which Bedrock has per-region hosts whose first label starts with
#: ``bedrock`` (``bedrock-runtime.us-east-1.amazonaws.com``). The rest of AWS (SageMaker
#: endpoints, API Gateway in front of a company's own model server) is not Bedrock.
AWS_DOMAINS: tuple[str, ...] = (".amazonaws.com", ".api.aws")

@dataclass(frozen=True, slots=True)
class Identity:
    """Provider name and server address/port of one base URL."""

    provider: str
    server_address: str | None
    server_port: int | None


def parse_provider_hosts(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """A user mapping ``{"host[:port]" | "*.suffix": provider}`` from a dict or an env string.

    The string form is ``host[:port]=provider`` pairs separated by commas. Keys are
    lower-cased; a malformed pair raises ``ValueError`` naming it (a mapping passed by
    code should fail where it is passed, not produce odd telemetry; the environment
    variable goes through :func:`env_provider_hosts`, which reports and ignores it).
    """
    if not spec:
        return {}
    items: list[tuple[Any, Any]]
    if isinstance(spec, str):
        items = []
        for pair in spec.split(","):
            pair = pair.strip()
            if not pair:
                continue
            key, sep, value = pair.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise ValueError(f"provider host mapping entry {pair!r} is not of the form {ENTRY_FORM}")
            items.append((key, value))
    elif isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        raise TypeError(f"provider_hosts must be a mapping or a string, got {type(spec).__name__}")
    out: dict[str, str] = {}
    for key, value in items:
        if not isinstance(key, str) or not isinstance(value, str) or not key.strip() or not value.strip():
            raise ValueError(f"provider host mapping {key!r}={value!r} needs a non-empty host and provider")
        out[key.strip().lower()] = value.strip()
    return out


def env_provider_hosts() -> dict[str, str]:
    """The user mapping in ``OTEL_LLM_PROVIDER_HOSTS``; empty when unset or malformed.

    The variable is deployment configuration. Under ``opentelemetry-instrument`` it is
    read inside the launcher's loader, where an exception aborts auto-instrumentation
    altogether (ours and every instrumentor loaded after it), and an application calling
    :func:`otel_llm.instrument` cannot correct it either. So a malformed value never
    raises: it is reported once, as an error naming the variable, the bad entry and the
    expected form, and ignored as a whole (applying the rest could label calls with a
    provider the user did not mean); calls are then named by the built-in host table.
    """
    value = os.environ.get(PROVIDER_HOSTS_ENV)
    try:
        return parse_provider_hosts(value)
    except ValueError as exc:
        report_setting_once(
            PROVIDER_HOSTS_ENV, value,
            "otel-llm: %s is ignored, no provider host mapping applies: %s (expected comma-separated entries, e.g. %r)",
            PROVIDER_HOSTS_ENV, exc, "llm.internal:8000=vllm,*.example.com=openrouter",
        )
        return {}


def _split(url: str) -> tuple[str | None, int | None]:
    """Host (lower-case, IPv6 without brackets) and port (scheme default filled in)."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None, None
    if port is None:
        port = {"https": 443, "http": 80}.get(parts.scheme)
    return (host.lower() if host else None), port


def _provider_for(host: str | None, port: int | None, mapping: Mapping[str, str], default: str | None) -> str:
    if host is None:
        return default or semconv.ERROR_TYPE_OTHER
    if mapping:
        if port is not None:
            hit = mapping.get(f"{host}:{port}")
            if hit is not None:
                return hit
        hit = mapping.get(host)
        if hit is not None:
            return hit
        for key, value in mapping.items():
            if key.startswith("*.") and (host.endswith(key[1:]) or host == key[2:]):
                return value
    if default is not None:
        return default
    known = KNOWN_HOSTS.get(host)
    if known is not None:
        return known
    for suffix, name in KNOWN_SUFFIXES:
        if host.endswith(suffix):
            return name
    if host.startswith("bedrock") and host.endswith(AWS_DOMAINS):
        return "aws.bedrock"
    if port == OLLAMA_DEFAULT_PORT:
        return "ollama"
    return host


def resolve(url: str, mapping: Mapping[str, str] | None = None, default: str | None = None) -> Identity:
    """The identity of a base URL (pure).

    ``mapping`` is a parsed user mapping. ``default``, when given, is the provider of
    every host the mapping does not name (a client that only ever talks to one kind of
    server, like Ollama's own API); otherwise the well-known table decides.
    """
    host, port = _split(url)
    return Identity(provider=_provider_for(host, port, mapping or {}, default), server_address=host, server_port=port)


class HostResolver:
    """Caches :func:`resolve` per URL object; holds the user mapping.

    Keyed by the identity of the URL object a client holds (kept alive by the cache, so
    the key cannot be reused by another object), which makes a hit one dict lookup and
    avoids formatting the URL on every call. The cache is bounded; it is simply cleared
    when full (a process has few distinct base URLs).
    """

    MAX_ENTRIES = 512

    def __init__(self, mapping: str | Mapping[str, str] | None = None, default: str | None = None) -> None:
        env = env_provider_hosts()
        env.update(parse_provider_hosts(mapping))
        self.mapping: dict[str, str] = env
        self.default = default
        self._cache: dict[int, tuple[object, Identity]] = {}
        self._lock = threading.Lock()

    def identity(self, url: object) -> Identity:
        """The identity of ``url`` (any object whose ``str()`` is the URL)."""
        hit = self._cache.get(id(url))
        if hit is not None and hit[0] is url:
            return hit[1]
        ident = resolve(str(url), self.mapping, self.default)
        with self._lock:
            if len(self._cache) >= self.MAX_ENTRIES:
                self._cache.clear()
            self._cache[id(url)] = (url, ident)
        return ident
