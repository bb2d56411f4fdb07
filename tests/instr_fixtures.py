"""Fixtures shared by the auto-instrumentation tests: one fake provider per module,
the clients instrumented for the module's duration, and the fake's state reset per test.

Test modules import the names they use (``from tests.instr_fixtures import ...``), as
they do with ``tests.pg``.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from otel_llm import semconv
from otel_llm.instrument import instrument, uninstrument
from tests.fake_provider import FakeProvider


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture(scope="module", autouse=True)
def instrumented() -> Iterator[None]:
    instrument()
    yield
    uninstrument()


@pytest.fixture(autouse=True)
def _fresh(fake: FakeProvider) -> None:
    fake.reset()


def llm_spans(exporter: Any) -> list[Any]:
    """Finished inference spans (chat, text completion, embeddings...), in the order they ended."""
    return [
        s for s in exporter.get_finished_spans()
        if s.attributes.get(semconv.GEN_AI_OPERATION_NAME) in semconv.INFERENCE_OPERATIONS
    ]
