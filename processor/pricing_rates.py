"""A model's price at one time, compiled into a few numbers: :class:`RateCard`.

The price library (``genai-prices``) describes a price as a set of unit prices (USD per
million tokens, per thousand requests ...), some of them tiered by the call's input size,
and computes a call's cost by splitting its usage into non-overlapping leaves (input
tokens not read from or written to the cache, cache reads, cache writes, output tokens
other than separately priced reasoning tokens ...) each charged at its own price. That
costs around a hundred microseconds per call; derivation prices every observation, so
a price is compiled once into a :class:`RateCard` holding, per input-size tier, one
coefficient per leaf we can count. Pricing a call is then a handful of ``Decimal``
multiply-adds, with the library's arithmetic (each leaf: price x count / per), so the
figure is the library's to the last digit.

Leaves we count and the price each falls back to when the model has none of its own
(exactly what the library does, since an unpriced leaf stays inside its parent):

=====================  ==========================  ======================
leaf                   price key                   when the key is absent
=====================  ==========================  ======================
uncached input         ``input_mtok``              0
cache reads            ``cache_read_mtok``         the input price
cache writes           ``cache_write_mtok``        the input price
non-reasoning output   ``output_mtok``             0
reasoning output       ``output_reasoning_mtok``   the output price
the request itself     ``requests_kcount``         0
=====================  ==========================  ======================

Units we never have counts for (audio, images, web searches, pages ...) contribute 0,
as they do in the library for a usage that reports none. A tier applies when the call's
total input tokens (cached included) exceed its start, per price key, as in the library.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final, NamedTuple, Sequence

#: The price keys a rate card reads (the library's names).
PRICE_KEYS: Final = ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok",
                     "output_reasoning_mtok", "requests_kcount")

_ZERO: Final = Decimal(0)
_PER_TOKENS: Final = Decimal(1_000_000)
_PER_REQUESTS: Final = Decimal(1_000)


class Coefficients(NamedTuple):
    """USD per million tokens for each leaf, and USD per request."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    reasoning: Decimal
    request: Decimal


class RateCard:
    """One model's prices over one period, ready for per-call arithmetic.

    ``tiers`` pairs an input-token threshold with the coefficients that apply above it,
    highest threshold first, ending with ``(-1, base)``. For speed the arithmetic is on
    integers: every coefficient is held as a whole number of 10^-``scale`` USD per
    million tokens (the request price as per million requests), and the sum becomes one
    ``Decimal`` at the end — exactly the library's figure, whose terms are all finite
    decimals.
    """

    __slots__ = ("tiers", "base", "thresholds", "description", "_int_tiers", "_int_base", "_unit", "_single")

    def __init__(self, tiers: Sequence[tuple[int, Coefficients]], description: str = "") -> None:
        self.tiers = tuple(sorted(tiers, key=lambda t: -t[0]))
        self.base = self.tiers[-1][1]
        #: Input-token tier starts, ascending (empty for an untiered price).
        self.thresholds = tuple(sorted(t for t, _ in self.tiers if t >= 0))
        self.description = description
        per_call = [(start, c._replace(request=c.request * 1000)) for start, c in self.tiers]
        scale = max(max(0, -int(v.as_tuple().exponent)) for _, c in per_call for v in c)
        factor = Decimal(10) ** scale
        self._int_tiers = tuple((start, tuple(int(v * factor) for v in c)) for start, c in per_call)
        self._int_base = self._int_tiers[-1][1]
        self._unit = Decimal(1).scaleb(-(scale + 6))
        self._single = len(self.tiers) == 1

    def coefficients(self, input_tokens: int) -> Coefficients:
        """The coefficients for a call with ``input_tokens`` total input tokens."""
        for start, coeffs in self.tiers:
            if input_tokens > start:
                return coeffs
        return self.base

    def cost(self, input_tokens: int, cache_read: int, cache_write: int, output_tokens: int,
             reasoning: int, calls: int = 1, tier_input: int | None = None) -> Decimal:
        """USD for counts already in the library's terms (see :mod:`processor.pricing`):
        ``input_tokens`` includes ``cache_read`` and ``cache_write``, ``output_tokens``
        includes ``reasoning``. Summed counts of several ``calls`` are priced in the tier
        of ``tier_input`` input tokens (the caller groups calls by tier)."""
        if self._single:
            c = self._int_base
        else:
            level = input_tokens if tier_input is None else tier_input
            for start, c in self._int_tiers:
                if level > start:
                    break
        p_in, p_read, p_write, p_out, p_reason, p_request = c
        total = (p_in * (input_tokens - cache_read - cache_write) + p_read * cache_read
                 + p_write * cache_write + p_out * (output_tokens - reasoning) + p_reason * reasoning
                 + p_request * calls)
        return Decimal(total) * self._unit

    def __repr__(self) -> str:
        return f"RateCard({self.description or self.base})"


def _at(price: Any, tier_start: int) -> Decimal | None:
    """A unit price at a tier: a plain price, or the tiered one in force above ``tier_start``."""
    if price is None:
        return None
    tiers = getattr(price, "tiers", None)
    if tiers is None:
        return Decimal(price)
    applicable = price.base
    for tier in sorted(tiers, key=lambda t: t.start):
        if tier_start >= tier.start:
            applicable = tier.price
    return Decimal(applicable)


def compile_price(model_price: Any, description: str = "") -> RateCard:
    """A :class:`RateCard` for a library ``ModelPrice`` (or anything with its attributes)."""
    raw = {key: getattr(model_price, key, None) for key in PRICE_KEYS}
    starts = sorted({t.start for p in raw.values() if p is not None for t in (getattr(p, "tiers", None) or ())})
    tiers = []
    # -1: below every tier; a tier starting at s applies to calls with more than s tokens.
    for start in (-1, *starts):
        level = start if start >= 0 else -1
        p = {key: _at(value, level) for key, value in raw.items()}
        p_in = p["input_mtok"] if p["input_mtok"] is not None else _ZERO
        p_out = p["output_mtok"] if p["output_mtok"] is not None else _ZERO
        tiers.append((start, Coefficients(
            input=p_in,
            cache_read=p["cache_read_mtok"] if p["cache_read_mtok"] is not None else p_in,
            cache_write=p["cache_write_mtok"] if p["cache_write_mtok"] is not None else p_in,
            output=p_out,
            reasoning=p["output_reasoning_mtok"] if p["output_reasoning_mtok"] is not None else p_out,
            request=p["requests_kcount"] if p["requests_kcount"] is not None else _ZERO,
        )))
    return RateCard(tiers, description)


def prices_tokens(model_price: Any) -> bool:
    """Whether a price charges input or output tokens at all (an image or audio-only
    price does not: its calls cannot be priced from token counts)."""
    return getattr(model_price, "input_mtok", None) is not None or getattr(model_price, "output_mtok", None) is not None
