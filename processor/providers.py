"""Provider names, normalised: one spelling per provider, whoever wrote the span.

Instrumentations disagree on how to name a provider: ``OpenAI``, ``openai``;
``azure_openai``, ``az.ai.openai``, ``azure.ai.openai``; ``MistralAI``, ``mistralai``,
``mistral_ai``. Reports group by provider, so every spelling is mapped onto the value
the current OpenTelemetry GenAI conventions give (``gen_ai.provider.name`` well-known
values), or, for providers the conventions do not list, one lower-case snake_case name.

An unknown name is not rejected: it is lower-cased, trimmed, and has spaces and dashes
turned into underscores, so ``"My Gateway"`` and ``"my-gateway"`` still group together.
"""

from __future__ import annotations

from typing import Any, Final, Mapping

# Canonical values (the conventions' well-known values where they exist).
OPENAI: Final = "openai"
AZURE_OPENAI: Final = "azure.ai.openai"
AZURE_INFERENCE: Final = "azure.ai.inference"
ANTHROPIC: Final = "anthropic"
AWS_BEDROCK: Final = "aws.bedrock"
GCP_GEMINI: Final = "gcp.gemini"
GCP_VERTEX_AI: Final = "gcp.vertex_ai"
GCP_GEN_AI: Final = "gcp.gen_ai"
MISTRAL_AI: Final = "mistral_ai"
COHERE: Final = "cohere"
GROQ: Final = "groq"
DEEPSEEK: Final = "deepseek"
PERPLEXITY: Final = "perplexity"
X_AI: Final = "x_ai"
IBM_WATSONX: Final = "ibm.watsonx.ai"
OPENROUTER: Final = "openrouter"
TOGETHER_AI: Final = "together_ai"
FIREWORKS: Final = "fireworks"
HUGGING_FACE: Final = "hugging_face"
OLLAMA: Final = "ollama"
VLLM: Final = "vllm"
LMSTUDIO: Final = "lmstudio"
LLAMA_CPP: Final = "llama_cpp"

#: Spelling (after :func:`_fold`) -> canonical name. Values that already fold to their
#: canonical form (``openai``, ``groq``, ...) need no entry.
_ALIASES: Final[Mapping[str, str]] = {
    # Azure OpenAI: OpenLIT "azure_openai", older conventions "az.ai.openai",
    # OpenLLMetry <0.5 "Azure", OpenInference provider "azure".
    "azure_openai": AZURE_OPENAI,
    "az.ai.openai": AZURE_OPENAI,
    "azure": AZURE_OPENAI,
    "azureopenai": AZURE_OPENAI,
    "az.ai.inference": AZURE_INFERENCE,
    "azure_ai_inference": AZURE_INFERENCE,
    # AWS: OpenLIT "bedrock", OpenLLMetry <0.5 "AWS", OpenInference provider "aws".
    "bedrock": AWS_BEDROCK,
    "aws": AWS_BEDROCK,
    "aws_bedrock": AWS_BEDROCK,
    "amazon_bedrock": AWS_BEDROCK,
    # Google: older conventions "vertex_ai"/"gemini", OpenLIT "vertexai"/"google.ai.studio",
    # OpenLLMetry <0.5 "Google", OpenInference system "vertexai" and provider "google".
    "vertex_ai": GCP_VERTEX_AI,
    "vertexai": GCP_VERTEX_AI,
    "google_vertex_ai": GCP_VERTEX_AI,
    "gemini": GCP_GEMINI,
    "google_genai": GCP_GEMINI,
    "google.ai.studio": GCP_GEMINI,
    "google_ai_studio": GCP_GEMINI,
    "google": GCP_GEN_AI,
    # Mistral: OpenLLMetry <0.5 "MistralAI", OpenInference "mistralai", OpenLIT "mistral".
    "mistralai": MISTRAL_AI,
    "mistral": MISTRAL_AI,
    # xAI: older conventions and OpenInference "xai".
    "xai": X_AI,
    # IBM: OpenLLMetry <0.5 "Watsonx", OpenLIT "ibm.watson.ai".
    "watsonx": IBM_WATSONX,
    "ibm.watson.ai": IBM_WATSONX,
    "ibm_watsonx": IBM_WATSONX,
    # Together: OpenLLMetry <0.5 "TogetherAI", OpenInference/OpenLIT "together".
    "togetherai": TOGETHER_AI,
    "together": TOGETHER_AI,
    # Hugging Face: OpenLIT "huggingface", OpenLLMetry <0.5 "HuggingFace".
    "huggingface": HUGGING_FACE,
    # Self-hosted servers.
    "lm_studio": LMSTUDIO,
    "llamacpp": LLAMA_CPP,
    "llama.cpp": LLAMA_CPP,
    "fireworks_ai": FIREWORKS,
    "open_router": OPENROUTER,
}

#: Providers that run on hardware the user owns: their calls cost nothing per token.
LOCAL_PROVIDERS: Final = frozenset({OLLAMA, VLLM, LMSTUDIO, LLAMA_CPP})

#: Server addresses that mean "this machine".
LOCAL_ADDRESSES: Final = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"})


def _fold(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


#: Names already normalised (a process sees a handful; bounded all the same).
_NORMALIZED: dict[str, str | None] = {}
_NORMALIZED_MAX = 1024


def normalize_provider(value: Any) -> str | None:
    """The canonical provider name for ``value``, or None when it is not a usable name.

    Called for every provider-call span on the derivation hot path, so results are
    remembered per input string.
    """
    if type(value) is str:
        try:
            return _NORMALIZED[value]
        except KeyError:
            pass
    elif not isinstance(value, str):
        return None
    folded = _fold(value)
    out = _ALIASES.get(folded, folded) if folded else None
    if type(value) is str:
        if len(_NORMALIZED) >= _NORMALIZED_MAX:
            _NORMALIZED.clear()
        _NORMALIZED[value] = out
    return out


def is_local(provider: str | None, server_address: str | None) -> bool:
    """Whether a call ran on self-hosted hardware (a local provider, or this machine)."""
    if provider is not None and provider in LOCAL_PROVIDERS:
        return True
    if server_address is not None:
        host = server_address.strip().lower()
        return host in LOCAL_ADDRESSES or host.startswith("127.")
    return False
