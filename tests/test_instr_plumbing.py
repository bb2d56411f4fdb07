"""Plumbing of the auto-instrumentation: identity from the base URL, instrument/uninstrument,
suppression, entry points, and ``opentelemetry-instrument`` on an unmodified script."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import ollama
import openai
import pytest
from openai._base_client import AsyncAPIClient, SyncAPIClient
from opentelemetry.instrumentation.utils import suppress_instrumentation

from otel_llm import semconv
from otel_llm._safety import reset_for_tests
from otel_llm.instrument import instrument, uninstrument
from otel_llm.instrumentation import _base, hosts
from otel_llm.instrumentation.ollama import OllamaInstrumentor
from otel_llm.instrumentation.openai import OpenAIInstrumentor
from tests.fake_provider import PROMPT_TOKENS, FakeProvider
from tests.instr_fixtures import llm_spans

ROOT = Path(__file__).resolve().parent.parent
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def fake():
    with FakeProvider() as provider:
        yield provider


@pytest.fixture(autouse=True)
def _not_instrumented(monkeypatch):
    """Each test starts and ends with the clients as they ship."""
    monkeypatch.delenv(hosts.PROVIDER_HOSTS_ENV, raising=False)
    uninstrument()
    yield
    uninstrument()



# --- identity (pure) -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "provider", "address", "port"),
    [
        ("https://api.openai.com/v1", "openai", "api.openai.com", 443),
        ("http://localhost:11434/v1", "ollama", "localhost", 11434),
        ("http://127.0.0.1:11434/v1/", "ollama", "127.0.0.1", 11434),
        ("https://my-res.openai.azure.com/openai/deployments/gpt4o", "azure.ai.openai", "my-res.openai.azure.com", 443),
        ("https://openrouter.ai/api/v1", "openrouter", "openrouter.ai", 443),
        ("https://api.groq.com/openai/v1", "groq", "api.groq.com", 443),
        ("https://api.deepseek.com", "deepseek", "api.deepseek.com", 443),
        ("https://api.mistral.ai/v1", "mistral_ai", "api.mistral.ai", 443),
        ("https://api.x.ai/v1", "x_ai", "api.x.ai", 443),
        ("https://api.perplexity.ai", "perplexity", "api.perplexity.ai", 443),
        ("https://generativelanguage.googleapis.com/v1beta/openai/", "gcp.gemini",
         "generativelanguage.googleapis.com", 443),
        ("https://API.OpenAI.com:8443/v1", "openai", "api.openai.com", 8443),
        ("https://bedrock-runtime.us-east-1.amazonaws.com/openai/v1", "aws.bedrock",
         "bedrock-runtime.us-east-1.amazonaws.com", 443),
        ("https://bedrock-mantle.us-west-2.api.aws/v1", "aws.bedrock", "bedrock-mantle.us-west-2.api.aws", 443),
        # Other AWS hosts are not Bedrock: a SageMaker endpoint, an API Gateway in front of a model server.
        ("https://runtime.sagemaker.us-east-1.amazonaws.com/v1", "runtime.sagemaker.us-east-1.amazonaws.com",
         "runtime.sagemaker.us-east-1.amazonaws.com", 443),
        ("https://abc123.execute-api.eu-west-1.amazonaws.com/prod/v1", "abc123.execute-api.eu-west-1.amazonaws.com",
         "abc123.execute-api.eu-west-1.amazonaws.com", 443),
        # Anything else is named by its host, never silently "openai".
        ("http://llm-gateway.internal:8080/v1", "llm-gateway.internal", "llm-gateway.internal", 8080),
        ("http://[::1]:8000/v1", "::1", "::1", 8000),
    ],
)
def test_identity_from_base_url(url, provider, address, port):
    assert hosts.resolve(url) == hosts.Identity(provider, address, port)


def test_user_mapping_wins_by_host_port_host_and_wildcard():
    mapping = hosts.parse_provider_hosts({
        "gw.example.com:8443": "openrouter", "vllm.local": "vllm", "*.corp.example": "azure.ai.openai",
        "api.openai.com": "my-proxy",
    })
    assert hosts.resolve("https://gw.example.com:8443/v1", mapping).provider == "openrouter"
    assert hosts.resolve("https://gw.example.com/v1", mapping).provider == "gw.example.com"
    assert hosts.resolve("http://vllm.local:8000/v1", mapping).provider == "vllm"
    assert hosts.resolve("https://eu.corp.example/v1", mapping).provider == "azure.ai.openai"
    assert hosts.resolve("https://api.openai.com/v1", mapping).provider == "my-proxy"


def test_mapping_from_the_environment_string():
    assert hosts.parse_provider_hosts(" a.example=alpha , b.example:81=beta ,") == {
        "a.example": "alpha", "b.example:81": "beta",
    }


@pytest.mark.parametrize("bad", ["no-equals-sign", "=provider", "host=", {"host": ""}, {"": "x"}])
def test_malformed_mapping_fails_at_the_call_site(bad):
    with pytest.raises(ValueError):
        instrument(provider_hosts=bad)


@pytest.mark.parametrize(("bad", "entry"), [
    ("bogus", "'bogus'"),
    ("=provider", "'=provider'"),
    ("{host}=", "'{host}='"),
    ("{host}=groq, bogus", "'bogus'"),  # one bad entry: none of the mapping applies
])
def test_malformed_mapping_in_the_environment_is_logged_and_ignored(bad, entry, fake, spans, monkeypatch, caplog):
    host = f"127.0.0.1:{fake.port}"
    reset_for_tests()  # each bad value is logged once per process
    monkeypatch.setenv(hosts.PROVIDER_HOSTS_ENV, bad.format(host=host))
    with caplog.at_level(logging.ERROR, logger="otel_llm"):
        assert instrument() == ["openai", "ollama"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # once, though both instrumentations read the variable
    assert hosts.PROVIDER_HOSTS_ENV in errors[0]
    assert entry.format(host=host) in errors[0]
    assert "host[:port]=provider" in errors[0]
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="k") as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    with ollama.Client(host=fake.url) as local:
        local.chat(model="llama3.2", messages=USER)
    openai_span, ollama_span = llm_spans(spans)
    assert openai_span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "127.0.0.1"  # named by its host
    assert ollama_span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "ollama"


def test_an_explicit_mapping_applies_when_the_environment_one_is_malformed(fake, spans, monkeypatch):
    monkeypatch.setenv(hosts.PROVIDER_HOSTS_ENV, "bogus")
    instrument(provider_hosts={f"127.0.0.1:{fake.port}": "groq"})
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="k") as client:
        client.chat.completions.create(model="llama-3.1-8b", messages=USER)
    assert llm_spans(spans)[0].attributes[semconv.GEN_AI_PROVIDER_NAME] == "groq"
    with pytest.raises(ValueError):  # while a bad argument still fails at the call site
        instrument(provider_hosts="bogus")


@pytest.mark.parametrize(("value", "meant"), [("true", True), (" On ", True), ("0", False), ("", False)])
def test_include_usage_from_the_environment(monkeypatch, caplog, value, meant):
    monkeypatch.setenv("OTEL_LLM_STREAM_INCLUDE_USAGE", value)
    assert _base.Settings.from_options().include_usage is meant
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_value_of_include_usage_that_is_no_boolean_is_logged_once_and_taken_as_false(monkeypatch, caplog):
    reset_for_tests()
    monkeypatch.setenv("OTEL_LLM_STREAM_INCLUDE_USAGE", "Maybe")
    assert _base.Settings.from_options().include_usage is False
    assert _base.Settings.from_options().include_usage is False  # read again (another instrumentor)
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "OTEL_LLM_STREAM_INCLUDE_USAGE" in record.getMessage() and "'Maybe'" in record.getMessage()


def test_a_default_provider_applies_only_where_the_mapping_says_nothing():
    mapping = {"127.0.0.1:9999": "remote-ollama"}
    assert hosts.resolve("http://127.0.0.1:9999", mapping, default="ollama").provider == "remote-ollama"
    assert hosts.resolve("http://api.openai.com", mapping, default="ollama").provider == "ollama"


def test_instrument_mapping_names_the_provider_of_real_calls(fake, spans):
    instrument(provider_hosts={f"127.0.0.1:{fake.port}": "groq"})
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="k") as client:
        client.chat.completions.create(model="llama-3.1-8b", messages=USER)
    with ollama.Client(host=fake.url) as local:
        local.chat(model="llama3.2", messages=USER)
    openai_span, ollama_span = llm_spans(spans)
    assert openai_span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "groq"
    assert openai_span.attributes[semconv.GEN_AI_SYSTEM] == "groq"
    assert ollama_span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "groq"  # the user's word wins everywhere


def test_mapping_from_environment_for_launcher_runs(fake, spans, monkeypatch):
    monkeypatch.setenv(hosts.PROVIDER_HOSTS_ENV, f"127.0.0.1:{fake.port}=deepseek")
    instrument()
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="k") as client:
        client.chat.completions.create(model="deepseek-chat", messages=USER)
    assert llm_spans(spans)[0].attributes[semconv.GEN_AI_PROVIDER_NAME] == "deepseek"


def test_base_url_is_read_as_the_client_holds_it_now(fake, spans):
    from otel_llm.instrumentation import openai as openai_instr

    instrument()
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="k") as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        client.base_url = f"http://localhost:{fake.port}/v1"  # changed after the first call
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        assert openai_instr._BASE_URL.read(client) is client.base_url
    first, second = llm_spans(spans)
    assert first.attributes[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert second.attributes[semconv.SERVER_ADDRESS] == "localhost"

    class OwnBaseURL(openai.OpenAI):
        @property
        def base_url(self):  # type: ignore[override]
            return "https://api.groq.com/openai/v1"

    # A class with its own property is read through it.
    assert openai_instr._BASE_URL.read(OwnBaseURL(api_key="k")) == "https://api.groq.com/openai/v1"


# --- instrument / uninstrument -------------------------------------------------------------------------
def test_instrument_twice_is_harmless_and_uninstrument_restores_the_originals(fake, spans, caplog):
    originals = (SyncAPIClient.request, AsyncAPIClient.request, SyncAPIClient._send_request,
                 openai.OpenAI._send_request, ollama.Client._request, ollama.AsyncClient._request)
    assert instrument() == ["openai", "ollama"]
    assert instrument() == ["openai", "ollama"]
    assert OpenAIInstrumentor().is_instrumented_by_opentelemetry
    assert "already instrumented" not in caplog.text
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="k") as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        assert len(llm_spans(spans)) == 1  # patched once, recorded once

        uninstrument()
        uninstrument()
        assert (SyncAPIClient.request, AsyncAPIClient.request, SyncAPIClient._send_request,
                openai.OpenAI._send_request, ollama.Client._request, ollama.AsyncClient._request) == originals
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert len(llm_spans(spans)) == 1


def test_instrument_can_choose_clients(fake, spans):
    assert instrument(ollama=False) == ["openai"]
    with ollama.Client(host=fake.url) as local:
        local.chat(model="llama3.2", messages=USER)
    assert llm_spans(spans) == []
    assert not OllamaInstrumentor().is_instrumented_by_opentelemetry


def test_suppressed_instrumentation_records_nothing(fake, spans):
    instrument()
    with suppress_instrumentation():
        with openai.OpenAI(base_url=fake.openai_base_url, api_key="k") as client:
            client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        with ollama.Client(host=fake.url) as local:
            list(local.chat(model="llama3.2", messages=USER, stream=True))
    assert llm_spans(spans) == []


def test_odd_request_values_never_reach_the_application_as_errors(fake, spans):
    instrument()
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="k") as client:
        result = client.chat.completions.create(
            model="gpt-4o-mini", messages=USER, temperature="warm", max_tokens=True, n="2",  # type: ignore[arg-type]
        )
    assert result.usage.prompt_tokens == PROMPT_TOKENS
    a = llm_spans(spans)[0].attributes
    assert semconv.GEN_AI_REQUEST_TEMPERATURE not in a
    assert semconv.GEN_AI_REQUEST_MAX_TOKENS not in a
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS


def test_content_is_recorded_only_when_the_user_opts_in(fake, spans, monkeypatch):
    instrument()
    monkeypatch.setenv(semconv.CAPTURE_MESSAGE_CONTENT_ENV, "true")
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="k") as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    a = llm_spans(spans)[0].attributes
    assert json.loads(a[semconv.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "hi"
    assert "Hello" in a[semconv.GEN_AI_OUTPUT_MESSAGES]


def test_entry_points_name_the_instrumentors():
    found = {ep.name: ep for ep in entry_points(group="opentelemetry_instrumentor")}
    assert found["otel_llm_openai"].load() is OpenAIInstrumentor
    assert found["otel_llm_ollama"].load() is OllamaInstrumentor
    assert OpenAIInstrumentor().instrumentation_dependencies()
    assert OllamaInstrumentor().instrumentation_dependencies()


# --- opentelemetry-instrument on an unmodified script ------------------------------------------------------
def _json_objects(text: str) -> list[dict]:
    """Every top-level JSON object printed in ``text`` (the console exporter's spans)."""
    decoder = json.JSONDecoder()
    found, i = [], text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = text.find("{", end)
    return found


def _sdk_configurator_dist(where: Path) -> Path:
    """A minimal installed distribution registering the SDK's configurator.

    ``opentelemetry-instrument`` only instruments; an SDK pipeline comes from whatever
    registers an ``opentelemetry_configurator`` (normally the ``opentelemetry-distro``
    package, whose configurator is the SDK's own). This stands in for it.
    """
    info = where / "otel_llm_test_configurator-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: otel-llm-test-configurator\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        "[opentelemetry_configurator]\nsdk = opentelemetry.sdk._configuration:_OTelSDKConfigurator\n"
    )
    return where


def _run_instrumented_app(tmp_path: Path, provider_hosts) -> tuple[subprocess.CompletedProcess, dict[str, list[dict]]]:
    """``examples/instrumented_app.py`` under ``opentelemetry-instrument`` against two fake
    providers, ``OTEL_LLM_PROVIDER_HOSTS`` made by ``provider_hosts(openai_side_port)``;
    the finished run and its LLM spans by provider name."""
    launcher = Path(sys.executable).parent / "opentelemetry-instrument"
    if not launcher.exists():
        pytest.skip("the opentelemetry-instrument launcher is not installed next to this Python")
    with FakeProvider() as openai_side, FakeProvider() as ollama_side:
        env = dict(os.environ)
        env.update({
            "PYTHONPATH": os.pathsep.join([str(_sdk_configurator_dist(tmp_path / "site")), str(ROOT)]),
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_SERVICE_NAME": "instrumented-example",
            "OTEL_LLM_EXAMPLE_OPENAI_BASE_URL": openai_side.openai_base_url,
            "OTEL_LLM_EXAMPLE_OLLAMA_HOST": ollama_side.url,
            hosts.PROVIDER_HOSTS_ENV: provider_hosts(openai_side.port),
            "OTEL_LLM_STREAM_INCLUDE_USAGE": "true",
            # Other openai/ollama instrumentations, if installed, would add their own spans.
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,ollama,openai_v2",
        })
        env.pop(semconv.CAPTURE_MESSAGE_CONTENT_ENV, None)
        done = subprocess.run(
            [str(launcher), sys.executable, str(ROOT / "examples" / "instrumented_app.py")],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert "openai stream: Hello" in done.stdout  # the application works as before
    spans = [o for o in _json_objects(done.stdout) if o.get("attributes", {}).get(semconv.GEN_AI_OPERATION_NAME)]
    by_provider: dict[str, list[dict]] = {}
    for span in spans:
        by_provider.setdefault(span["attributes"][semconv.GEN_AI_PROVIDER_NAME], []).append(span)
    return done, by_provider


def test_opentelemetry_instrument_traces_an_unmodified_script(tmp_path):
    done, by_provider = _run_instrumented_app(tmp_path, lambda port: f"127.0.0.1:{port}=openai")
    spans = [span for found in by_provider.values() for span in found]
    assert sorted(by_provider) == ["ollama", "openai"]
    assert len(by_provider["openai"]) == 2 and len(by_provider["ollama"]) == 2
    for span in spans:
        assert span["kind"] == "SpanKind.CLIENT"
        assert span["attributes"][semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS  # usage asked for by env
        assert span["resource"]["attributes"]["service.name"] == "instrumented-example"
    assert {s["name"] for s in by_provider["openai"]} == {"chat gpt-4o-mini"}


def test_opentelemetry_instrument_still_traces_with_a_malformed_mapping_in_the_environment(tmp_path):
    """A typo in OTEL_LLM_PROVIDER_HOSTS must not switch off auto-instrumentation: it is
    reported, the mapping is ignored, and every call is still traced."""
    done, by_provider = _run_instrumented_app(tmp_path, lambda port: f"127.0.0.1:{port}=openai,bogus")
    assert "Failed to auto initialize" not in done.stderr
    assert "Instrumenting of" not in done.stderr
    assert hosts.PROVIDER_HOSTS_ENV in done.stderr and "'bogus'" in done.stderr
    assert "host[:port]=provider" in done.stderr
    # The whole mapping is ignored: the fake OpenAI server is named by its host.
    assert sorted(by_provider) == ["127.0.0.1", "ollama"]
    assert len(by_provider["127.0.0.1"]) == 2 and len(by_provider["ollama"]) == 2
