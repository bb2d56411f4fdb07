"""The user's price file: prices for models the library does not know, or overrides.

YAML or JSON (by extension; ``.json`` is JSON, anything else YAML, which also reads
JSON). A list of entries, or a mapping with the list under ``models``::

    models:
      - model: acme-large          # the model name, matched without regard to case
        provider: acme             # optional: only for calls to this provider
        valid_from: 2026-01-01     # optional: a UTC date or ISO time; default: always
        prices:                    # the library's price keys
          input_mtok: 0.50         # USD per million input tokens (cached included)
          cache_read_mtok: 0.05    # optional: cache reads, else the input price
          cache_write_mtok: 0.60   # optional: cache writes, else the input price
          output_mtok: 1.50        # USD per million output tokens
          output_reasoning_mtok: 2 # optional: reasoning output, else the output price
          requests_kcount: 0.1     # optional: USD per thousand requests
      - model: acme-large          # a later price: from this date on
        valid_from: 2026-06-01
        prices: {input_mtok: 0.40, output_mtok: 1.20}

A price may be tiered by the call's input tokens (the whole call pays the tier's rate):
``input_mtok: {base: 1.25, tiers: [{start: 200000, price: 2.5}]}``.

At a call's time the entry in force is the latest one whose ``valid_from`` is not after
it; before a model's first ``valid_from`` the library's price applies (if it has one).
Every mistake is reported with the file, the entry and what to write instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from processor.pricing_rates import PRICE_KEYS
from processor.providers import normalize_provider

#: Environment variable naming the price file.
ENV_PRICES_FILE: Final = "OTEL_LLM_PRICES_FILE"
#: valid_from when an entry gives none.
ALWAYS: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)


class PriceFileError(ValueError):
    """A price file that cannot be used, with where and why."""


@dataclass(frozen=True)
class PriceEntry:
    """One entry of a price file. ``price`` is a library ``ModelPrice``."""

    model: str
    provider: str | None
    valid_from: datetime
    price: Any

    @property
    def key(self) -> tuple[str | None, str]:
        return self.provider, self.model


def load_price_file(path: str | Path) -> tuple[PriceEntry, ...]:
    """Read and check ``path``; :class:`PriceFileError` says what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceFileError(f"price file {path}: cannot read it: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is the file's fault
        raise PriceFileError(f"price file {path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: "
                             f"{exc}") from None
    return parse_prices(data, source=str(path))


def parse_prices(data: Any, *, source: str = "prices") -> tuple[PriceEntry, ...]:
    """Entries from already-parsed data (the file's structure, see the module docstring)."""
    if data is None:
        return ()
    if isinstance(data, dict):
        unknown = set(data) - {"models"}
        if unknown:
            raise PriceFileError(f"{source}: unknown top-level key(s) {sorted(unknown)}: put entries under 'models'")
        data = data.get("models") or []
    if not isinstance(data, list):
        raise PriceFileError(f"{source}: expected a list of model entries (or 'models: [...]')")
    entries = [_entry(item, f"{source}: entry {i + 1}") for i, item in enumerate(data)]
    seen: set[tuple[str | None, str, datetime]] = set()
    for e in entries:
        if (e.provider, e.model, e.valid_from) in seen:
            raise PriceFileError(f"{source}: model {e.model!r} (provider {e.provider or 'any'}) has two entries "
                                 f"valid from {e.valid_from.isoformat()}")
        seen.add((e.provider, e.model, e.valid_from))
    return tuple(entries)


def _entry(item: Any, where: str) -> PriceEntry:
    from genai_prices.types import ModelPrice

    if not isinstance(item, dict):
        raise PriceFileError(f"{where}: expected a mapping with model and prices")
    unknown = set(item) - {"model", "provider", "valid_from", "prices"}
    if unknown:
        raise PriceFileError(f"{where}: unknown key(s) {sorted(unknown)}; use model, provider, valid_from, prices")
    model = item.get("model")
    if not isinstance(model, str) or not model.strip():
        raise PriceFileError(f"{where}: 'model' must be a model name")
    provider = item.get("provider")
    if provider is not None:
        provider = normalize_provider(provider)
        if provider is None:
            raise PriceFileError(f"{where}: 'provider' must be a provider name")
    prices = item.get("prices")
    if not isinstance(prices, dict) or not prices:
        raise PriceFileError(f"{where}: 'prices' must map price keys ({', '.join(PRICE_KEYS)}) to USD")
    bad = set(prices) - set(PRICE_KEYS)
    if bad:
        raise PriceFileError(f"{where}: unknown price key(s) {sorted(bad)}; use {', '.join(PRICE_KEYS)}")
    values = {k: _price(v, f"{where}: {k}") for k, v in prices.items() if v is not None}
    if "input_mtok" not in values and "output_mtok" not in values:
        raise PriceFileError(f"{where}: give at least input_mtok or output_mtok")
    return PriceEntry(model=model.strip().lower(), provider=provider,
                      valid_from=_valid_from(item.get("valid_from"), where), price=ModelPrice(**values))


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise PriceFileError(f"{where}: expected a number of USD, got {value!r}")
    try:
        out = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise PriceFileError(f"{where}: expected a number of USD, got {value!r}") from None
    if not out.is_finite() or out < 0:
        raise PriceFileError(f"{where}: a price must be a finite number >= 0, got {value!r}")
    return out


def _price(value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        return _decimal(value, where)
    from genai_prices.types import Tier, TieredPrices

    if set(value) - {"base", "tiers"} or "base" not in value or not isinstance(value.get("tiers"), list):
        raise PriceFileError(f"{where}: a tiered price is {{base: USD, tiers: [{{start: tokens, price: USD}}]}}")
    tiers = []
    for i, t in enumerate(value["tiers"]):
        start = t.get("start") if isinstance(t, dict) else None
        if isinstance(start, bool) or not isinstance(start, int) or start < 0 or "price" not in t:
            raise PriceFileError(f"{where}: tier {i + 1} needs start (input tokens, an integer >= 0) and price")
        tiers.append(Tier(start=start, price=_decimal(t["price"], f"{where}: tier {i + 1}")))
    return TieredPrices(base=_decimal(value["base"], f"{where}: base"), tiers=tiers)


def _valid_from(value: Any, where: str) -> datetime:
    if value is None:
        return ALWAYS
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            return _valid_from(datetime.fromisoformat(value.strip().replace("Z", "+00:00")), where)
        except ValueError:
            pass
    raise PriceFileError(f"{where}: valid_from must be a date (2026-01-01) or an ISO time, got {value!r}")
