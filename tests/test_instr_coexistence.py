"""The instrumentations living with other libraries' patches of the same client methods.

Other instrumentations wrap ``SyncAPIClient.request`` or ``ollama.Client._request`` with
``wrapt`` too, before or after otel-llm. otel-llm must recognise only its own wrapper in
the chain, patch under theirs, and on ``uninstrument()`` take out only its own, leaving
theirs working. Real clients over real HTTP against the fake provider.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading

import ollama
import openai
import pytest
import wrapt
from openai._base_client import SyncAPIClient

from otel_llm import semconv
from otel_llm.instrument import instrument, uninstrument
from otel_llm.instrumentation import hosts
from tests.fake_provider import FakeProvider
from tests.instr_fixtures import llm_spans

USER = [{"role": "user", "content": "hi"}]

#: The methods another library patches in these tests.
TARGETS = ((SyncAPIClient, "request"), (ollama.Client, "_request"))


@pytest.fixture(scope="module")
def fake():
    with FakeProvider() as provider:
        yield provider


@pytest.fixture(autouse=True)
def _pristine(monkeypatch):
    """Each test starts and ends with the clients as they ship, whatever it patched."""
    monkeypatch.delenv(hosts.PROVIDER_HOSTS_ENV, raising=False)
    uninstrument()
    shipped = {(cls, name): vars(cls)[name] for cls, name in TARGETS}
    yield shipped
    uninstrument()
    for (cls, name), original in shipped.items():
        setattr(cls, name, original)


class Counting:
    """Another library's wrapt wrapper: counts the calls that go through it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, wrapped, instance, args, kwargs):
        self.calls += 1
        return wrapped(*args, **kwargs)


def wrap_all(wrapper) -> dict:
    return {(cls, name): wrapt.wrap_function_wrapper(cls, name, wrapper) for cls, name in TARGETS}


def call_both(fake: FakeProvider) -> None:
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="k") as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    with ollama.Client(host=fake.url) as local:
        local.chat(model="llama3.2", messages=USER)



def test_instrument_patches_under_another_librarys_wrapper(fake, spans):
    other = Counting()
    theirs = wrap_all(other)
    assert instrument() == ["openai", "ollama"]
    assert instrument() == ["openai", "ollama"]  # still harmless twice
    call_both(fake)
    assert len(llm_spans(spans)) == 2 and other.calls == 2

    uninstrument()
    assert all(vars(cls)[name] is handle for (cls, name), handle in theirs.items())  # theirs kept
    call_both(fake)
    assert len(llm_spans(spans)) == 2 and other.calls == 4


def test_uninstrument_takes_ours_out_from_under_another_wrapper(fake, spans, _pristine):
    instrument()
    other = Counting()
    theirs = wrap_all(other)
    uninstrument()
    for (cls, name), handle in theirs.items():
        assert vars(cls)[name] is handle
        assert handle.__wrapped__ is _pristine[(cls, name)]  # ours is out of the chain
    call_both(fake)
    assert llm_spans(spans) == [] and other.calls == 2

    assert instrument() == ["openai", "ollama"]
    call_both(fake)
    assert len(llm_spans(spans)) == 2 and other.calls == 4


def _plain_patch(cls: type, name: str, seen: list) -> None:
    """Another library's patch without wrapt: a function that only records ``__wrapped__``."""
    inner = vars(cls)[name]

    @functools.wraps(inner)
    def patched(self, *args, **kwargs):
        seen.append(name)
        return inner.__get__(self, type(self))(*args, **kwargs)

    setattr(cls, name, patched)


def test_a_wrapper_that_cannot_be_unlinked_passes_calls_through(fake, spans, caplog):
    instrument()
    seen: list = []
    for cls, name in TARGETS:
        _plain_patch(cls, name, seen)
    with caplog.at_level(logging.DEBUG, logger="otel_llm"):
        uninstrument()
    assert "passes calls through unrecorded" in caplog.text
    assert "SyncAPIClient.request" in caplog.text
    call_both(fake)
    assert llm_spans(spans) == [] and len(seen) == 2  # their patch works, ours records nothing

    patched = {(cls, name): vars(cls)[name] for cls, name in TARGETS}
    assert instrument() == ["openai", "ollama"]
    assert all(vars(cls)[name] is fn for (cls, name), fn in patched.items())  # ours reused, not added
    call_both(fake)
    assert len(llm_spans(spans)) == 2 and len(seen) == 4  # recorded once each


def _plain_patch_of_bound(cls: type, name: str, seen: list) -> None:
    """Another library's patch without wrapt that reads the method from the class: with a
    wrapt wrapper there, what it keeps (and names in ``__wrapped__``) is the bound wrapper
    wrapt returns for that access, not the wrapper object in the class."""
    inner = getattr(cls, name)

    @functools.wraps(inner)
    def patched(self, *args, **kwargs):
        seen.append(name)
        return inner(self, *args, **kwargs)

    setattr(cls, name, patched)


def test_ours_is_recognised_through_the_bound_wrapper_a_patch_kept(fake, spans):
    instrument()
    seen: list = []
    for cls, name in TARGETS:
        _plain_patch_of_bound(cls, name, seen)
    patched = {(cls, name): vars(cls)[name] for cls, name in TARGETS}
    assert instrument(include_usage=True) == ["openai", "ollama"]
    assert all(vars(cls)[name] is fn for (cls, name), fn in patched.items())  # ours reused, not added
    call_both(fake)
    assert len(llm_spans(spans)) == 2 and len(seen) == 2  # recorded once each

    uninstrument()
    call_both(fake)
    assert len(llm_spans(spans)) == 2 and len(seen) == 4  # their patch works, ours records nothing

    assert instrument() == ["openai", "ollama"]
    assert all(vars(cls)[name] is fn for (cls, name), fn in patched.items())
    call_both(fake)
    assert len(llm_spans(spans)) == 4 and len(seen) == 6


def _wrappers_in_chain(cls: type, name: str) -> int:
    """The wrapt wrappers in the chain of ``cls.<name>`` (in these tests, all of them ours)."""
    return sum(isinstance(entry, wrapt.FunctionWrapper) for entry in wrapt.wrapper_chain(vars(cls)[name]))


def test_instrument_from_several_threads_at_once_patches_once(fake, spans):
    errors: list = []

    def run(barrier: threading.Barrier) -> None:
        try:
            barrier.wait()
            instrument()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, inside the check-then-wrap too
    try:
        for _ in range(100):
            uninstrument()
            barrier = threading.Barrier(8)
            threads = [threading.Thread(target=run, args=(barrier,)) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            counts = {name: _wrappers_in_chain(cls, name) for cls, name in TARGETS}
            assert counts == {name: 1 for _cls, name in TARGETS}
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    call_both(fake)
    assert len(llm_spans(spans)) == 2
