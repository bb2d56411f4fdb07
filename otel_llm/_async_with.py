"""``async with`` for otel-llm's context managers, from their ``with`` behaviour.

Opening and closing a span never awaits anything, so every context manager here does
the same work under ``async with`` as under ``with``; this mixin says so once.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any


class AsyncWithToo:
    """Mixin: ``__aenter__``/``__aexit__`` delegate to ``__enter__``/``__exit__``."""

    __slots__ = ()

    async def __aenter__(self) -> Any:
        return self.__enter__()  # type: ignore[attr-defined]

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        return self.__exit__(exc_type, exc, tb)  # type: ignore[attr-defined]
