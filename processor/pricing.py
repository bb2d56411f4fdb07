"""What a call cost, from its tokens, at the price in force when it was made.

:class:`PriceBook` is the :data:`processor.derive.Pricer` that derivation calls for every
observation whose cost is not reported (and beside a reported one). Its prices come
from the ``genai-prices`` library, overridden or extended by the user's price file
(:mod:`processor.pricing_file`, ``OTEL_LLM_PRICES_FILE``), at the call's own
``started_at``. A model neither knows gets ``None`` — the cost stays unknown, never $0.

Speed. Derivation prices every observation, so the first call for a (provider, model)
looks the model up and compiles each of its price periods into a
:class:`~processor.pricing_rates.RateCard`; later calls find the periods in a dict,
pick the one in force by bisection on ``started_at`` and do a few integer multiply-adds
and one ``Decimal`` (``benchmarks/reports.py`` measures it; see BENCHMARKS.md).

Token normalisation. Observations follow the GenAI conventions; the library wants its
own usage terms. What is applied, per provider (:func:`library_counts`):

- ``input_tokens`` includes cached-read and cache-creation tokens (the conventions'
  meaning, and the library's): passed as the library's ``input_tokens``, with
  ``cached_input_tokens`` as ``cache_read_tokens`` and ``cache_creation_input_tokens``
  as ``cache_write_tokens``. When cache reads plus writes exceed ``input_tokens``, the
  source counted input the way Anthropic's API does (cache tokens excluded), and they
  are added to it.
- ``output_tokens`` includes ``reasoning_tokens`` for every provider (OpenAI's
  ``completion_tokens``, Anthropic's ``output_tokens``) except Google's (``gcp.*``),
  whose ``candidatesTokenCount`` excludes ``thoughtsTokenCount``: there the reasoning
  tokens are added. A count of reasoning tokens above the output count is likewise
  taken as exclusive.
- A missing count is 0; a call with neither input nor output tokens is not priced.

Providers map to the library's ids (:data:`LIBRARY_PROVIDERS`); another name is tried
as the library reads it, and when the library knows no such provider, the model name
alone chooses (``gpt-4o`` through a gateway is priced as OpenAI's). The model tried is
the response model (what ran), then the requested one.

Never raises into derivation: a failure is logged once per model and prices ``None``.
"""

from __future__ import annotations

import logging
import os
import threading
from bisect import bisect_right
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Iterable, Mapping

from processor import providers as p
from processor.observation import RouteObservation
from processor.pricing_file import ALWAYS, ENV_PRICES_FILE, PriceEntry, load_price_file
from processor.pricing_rates import RateCard, compile_price, prices_tokens

logger = logging.getLogger("otel_llm.pricing")

#: Our provider name -> the library's provider id.
LIBRARY_PROVIDERS: Final[Mapping[str, str]] = {
    p.OPENAI: "openai",
    p.AZURE_OPENAI: "azure",
    p.AZURE_INFERENCE: "azure",
    p.ANTHROPIC: "anthropic",
    p.AWS_BEDROCK: "aws",
    p.GCP_GEMINI: "google",
    p.GCP_VERTEX_AI: "google",
    p.GCP_GEN_AI: "google",
    p.MISTRAL_AI: "mistral",
    p.COHERE: "cohere",
    p.GROQ: "groq",
    p.DEEPSEEK: "deepseek",
    p.PERPLEXITY: "perplexity",
    p.X_AI: "x-ai",
    p.OPENROUTER: "openrouter",
    p.TOGETHER_AI: "together",
    p.FIREWORKS: "fireworks",
}

#: Providers whose output token count excludes reasoning tokens.
REASONING_EXCLUDED: Final = frozenset({p.GCP_GEMINI, p.GCP_VERTEX_AI, p.GCP_GEN_AI})

#: Resolved (provider, response model, request model) entries kept; cleared when full.
CACHE_SIZE: Final = 4096


#: Token counts in the library's terms: (``input_tokens`` including cache reads and
#: writes, ``cache_read_tokens``, ``cache_write_tokens``, ``output_tokens`` including
#: reasoning, ``output_reasoning_tokens``).
LibraryCounts = tuple[int, int, int, int, int]


def library_counts(provider: str | None, input_tokens: int | None, cached_input_tokens: int | None,
                   cache_creation_input_tokens: int | None, output_tokens: int | None,
                   reasoning_tokens: int | None) -> LibraryCounts | None:
    """An observation's counts as the library reads them (see the module docstring);
    ``None`` when neither input nor output tokens are known."""
    if input_tokens is None and output_tokens is None:
        return None
    inp = input_tokens or 0
    cached = cached_input_tokens or 0
    created = cache_creation_input_tokens or 0
    out = output_tokens or 0
    reasoning = reasoning_tokens or 0
    if cached + created > inp:
        inp += cached + created
    if reasoning and (reasoning > out or provider in REASONING_EXCLUDED):
        out += reasoning
    return inp, cached, created, out, reasoning


# --- price periods -----------------------------------------------------------------------
class Periods:
    """A model's rate cards over time: ``cards[i]`` is in force from ``starts[i - 1]``
    (``cards[0]`` before the first start). ``None`` cards mean "no price then"."""

    __slots__ = ("starts", "cards", "dynamic", "_dynamic_cards")

    def __init__(self, starts: list[datetime], cards: list[RateCard | None], *, dynamic: Any = None) -> None:
        self.starts = starts
        self.cards = cards
        #: A library model whose price depends on the time of day (re-read per call).
        self.dynamic = dynamic
        self._dynamic_cards: dict[int, RateCard | None] = {}

    def at(self, when: datetime) -> RateCard | None:
        """The rate card in force at ``when`` (an aware time)."""
        card = self.cards[bisect_right(self.starts, when)] if self.starts else self.cards[0]
        if card is None and self.dynamic is not None:
            return self._dynamic_at(when)
        return card

    def _dynamic_at(self, when: datetime) -> RateCard | None:
        price = self.dynamic.get_prices(when)
        card = self._dynamic_cards.get(id(price))
        if card is None:
            card = _card(price, self.dynamic.id)
            if len(self._dynamic_cards) < 64:
                self._dynamic_cards[id(price)] = card
        return card


def _card(price: Any, description: str) -> RateCard | None:
    return compile_price(price, description) if prices_tokens(price) else None


def _library_periods(model: Any) -> tuple[list[datetime], list[RateCard | None], Any]:
    """Start times and cards of a library model; the model itself when its price
    depends on the time of day (then the cards are ``None`` and it is asked per call)."""
    from genai_prices.types import ModelPrice, StartDateConstraint

    if isinstance(model.prices, ModelPrice):
        return [], [_card(model.prices, model.id)], None
    constraints = [c.constraint for c in model.prices]
    if any(c is not None and not isinstance(c, StartDateConstraint) for c in constraints):
        return [], [None], model
    starts = sorted({datetime.combine(c.start_date, datetime.min.time(), tzinfo=timezone.utc)
                     for c in constraints if c is not None})
    cards = [_card(model.get_prices(t), model.id) for t in [ALWAYS, *starts]]
    return starts, cards, None


def _merge(user: list[PriceEntry], lib_starts: list[datetime], lib_cards: list[RateCard | None],
           dynamic: Any) -> Periods:
    """The user's entries over the library's periods: at any time the latest user entry
    already valid wins, else the library's price."""
    if not user:
        return Periods(lib_starts, lib_cards, dynamic=dynamic)
    user = sorted(user, key=lambda e: e.valid_from)
    user_starts = [e.valid_from for e in user]
    user_cards = [compile_price(e.price, f"{e.model} (price file, from {e.valid_from:%Y-%m-%d})") for e in user]
    starts = sorted(set(lib_starts) | set(user_starts) - {ALWAYS})
    cards: list[RateCard | None] = []
    for t in [ALWAYS, *starts]:
        i = bisect_right(user_starts, t)
        if i:
            cards.append(user_cards[i - 1])
        else:
            cards.append(lib_cards[bisect_right(lib_starts, t)] if lib_starts else lib_cards[0])
    # a time-of-day library price still applies before the first user entry
    if dynamic is not None and user_starts[0] > ALWAYS:
        cards = [c if t >= user_starts[0] else None for t, c in zip([ALWAYS, *starts], cards)]
    else:
        dynamic = None
    return Periods(starts, cards, dynamic=dynamic)


_MISSING: Final = Periods([], [None])


# --- the pricer --------------------------------------------------------------------------
class PriceBook:
    """The default :data:`processor.derive.Pricer`: library prices plus the user's file.

    ``prices_file`` (default ``OTEL_LLM_PRICES_FILE``) is read at construction, so a bad
    file is reported at once (:class:`~processor.pricing_file.PriceFileError`); the
    price library is loaded on first use, off the application's thread.
    """

    def __init__(self, prices_file: str | Path | None = None, *, entries: Iterable[PriceEntry] = (),
                 env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        path = prices_file if prices_file is not None else (env.get(ENV_PRICES_FILE) or None)
        self.prices_file = Path(path) if path else None
        loaded = load_price_file(self.prices_file) if self.prices_file else ()
        self._user: dict[str, list[PriceEntry]] = {}
        for entry in (*loaded, *entries):
            self._user.setdefault(entry.model, []).append(entry)
        self._cache: dict[tuple[str | None, str | None, str | None], Periods] = {}
        self._lock = threading.Lock()
        self._warned: set[tuple[str | None, str | None]] = set()

    def __call__(self, obs: RouteObservation) -> Decimal | None:
        """The cost of ``obs`` at its ``started_at``, or ``None`` when it cannot be priced."""
        return self.price_fields(obs.provider, obs.response_model, obs.request_model, obs.started_at,
                                 obs.input_tokens, obs.output_tokens, obs.cached_input_tokens,
                                 obs.cache_creation_input_tokens, obs.reasoning_tokens)

    def price_fields(self, provider: str | None, response_model: str | None, request_model: str | None,
                     when: datetime, inp: int | None, out: int | None, cached: int | None,
                     created: int | None, reasoning: int | None) -> Decimal | None:
        """:meth:`__call__` from the fields themselves: derivation prices a call before it
        makes the observation, so that the observation is made once. Never raises.

        The hot path of pricing: one dict lookup, one bisection, integer arithmetic
        (the same steps as :meth:`cost`, written out to save the calls).
        """
        try:
            periods = self._cache.get((provider, response_model, request_model))
            if periods is None:
                periods = self.periods(provider, response_model, request_model)
            card = periods.at(when)
            if card is None:
                return None
            if inp is None:
                if out is None:
                    return None
                inp = 0
            elif out is None:
                out = 0
            cached = cached or 0
            created = created or 0
            reasoning = reasoning or 0
            if cached + created > inp:
                inp += cached + created
            if reasoning and (reasoning > out or provider in REASONING_EXCLUDED):
                out += reasoning
            return card.cost(inp, cached, created, out, reasoning)
        except Exception as exc:  # noqa: BLE001 - a pricer never raises into derivation
            self._warn_once(provider, response_model or request_model, exc)
            return None

    def cost(self, provider: str | None, response_model: str | None, request_model: str | None,
             when: datetime, input_tokens: int | None, cached_input_tokens: int | None = None,
             cache_creation_input_tokens: int | None = None, output_tokens: int | None = None,
             reasoning_tokens: int | None = None) -> Decimal | None:
        """The cost of one call from its fields (what :meth:`__call__` and repricing use)."""
        periods = self._cache.get((provider, response_model, request_model))
        if periods is None:
            periods = self.periods(provider, response_model, request_model)
        card = periods.at(when)
        if card is None:
            return None
        counts = library_counts(provider, input_tokens, cached_input_tokens, cache_creation_input_tokens,
                                output_tokens, reasoning_tokens)
        return None if counts is None else card.cost(*counts)

    def rate_card(self, provider: str | None, model: str | None, when: datetime) -> RateCard | None:
        """The rate card of ``model`` at ``when`` (``None``: no price known)."""
        return self.periods(provider, model, None).at(when)

    def periods(self, provider: str | None, response_model: str | None, request_model: str | None) -> Periods:
        """The price periods for a (provider, model) pair, looked up once and cached."""
        key = (provider, response_model, request_model)
        found = self._cache.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._cache.get(key)
            if found is None:
                try:
                    found = self._resolve(provider, response_model, request_model)
                except Exception as exc:  # noqa: BLE001 - an unusable entry prices nothing
                    self._warn_once(provider, response_model or request_model, exc)
                    found = _MISSING
                if len(self._cache) >= CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = found
        return found

    def _resolve(self, provider: str | None, response_model: str | None, request_model: str | None) -> Periods:
        models = [m for m in (response_model, request_model) if m]
        user = next((u for u in (self._user_entries(provider, m) for m in models) if u), [])
        lib_starts: list[datetime] = []
        lib_cards: list[RateCard | None] = [None]
        dynamic = None
        for model in models:
            found = _library_model(provider, model)
            if found is not None:
                lib_starts, lib_cards, dynamic = _library_periods(found)
                break
        if not user and dynamic is None and all(c is None for c in lib_cards):
            return _MISSING
        return _merge(user, lib_starts, lib_cards, dynamic)

    def _user_entries(self, provider: str | None, model: str) -> list[PriceEntry]:
        entries = self._user.get(model.lower(), ())
        specific = [e for e in entries if e.provider is not None and e.provider == provider]
        return specific or [e for e in entries if e.provider is None]

    def _warn_once(self, provider: str | None, model: str | None, exc: Exception) -> None:
        key = (provider, model)
        if key not in self._warned and len(self._warned) < 1024:
            self._warned.add(key)
            logger.warning("otel-llm: cannot price %s model %r: %s", provider or "unknown-provider", model, exc)


def _library_model(provider: str | None, model: str) -> Any:
    """The library's model for a call, or ``None`` when it knows none."""
    from genai_prices.data_snapshot import get_snapshot

    snapshot = get_snapshot()
    provider_id = LIBRARY_PROVIDERS.get(provider, provider) if provider else None
    try:
        return snapshot.find_provider_model(model, None, provider_id, None)[1]
    except LookupError:
        pass
    if provider_id is None or provider in LIBRARY_PROVIDERS:
        return None
    try:  # a provider the library does not know (a gateway): the model name chooses
        snapshot.find_provider(None, provider_id, None)
        return None
    except LookupError:
        pass
    try:
        return snapshot.find_provider_model(model, None, None, None)[1]
    except LookupError:
        return None


_default: PriceBook | None = None
_default_lock = threading.Lock()


def default_pricer(prices_file: str | Path | None = None) -> PriceBook:
    """A :class:`PriceBook` for ``prices_file`` (default ``OTEL_LLM_PRICES_FILE``); the
    same one for the same file in a process, so its cache is shared."""
    global _default
    with _default_lock:
        wanted = Path(prices_file) if prices_file else (Path(os.environ[ENV_PRICES_FILE])
                                                        if os.environ.get(ENV_PRICES_FILE) else None)
        if _default is None or _default.prices_file != wanted:
            _default = PriceBook(wanted, env={})
        return _default
