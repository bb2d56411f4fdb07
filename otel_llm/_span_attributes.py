"""Setting a call's response attributes on its span in one step: :func:`set_span_attributes`.

Why not simply ``span.set_attributes``: the SDK checks and copies every value on its
way in (``BoundedAttributes``: key check, recursive value cleaning, a cleaned copy of the
whole mapping, one locked insert per key). For the dozen response attributes an LLM call
ends with, that is about 40 % of what otel-llm adds to an instrumented call
(``benchmarks/opcode_counts.py``), and it repeats checks otel-llm's recorders have
already made: their values are plain ``str``/``int``/``float``/``bool`` or lists of them.

So, for the SDK's own span class only, and only when a probe made once per process has
shown that writing into its attribute store gives exactly what ``set_attributes`` gives,
plain values are stored directly, under the same two locks the SDK takes. A mapping its
caller vouches for (``ready``: every value already what the SDK would store, a plain value
or a tuple of plain values of one type, as :class:`~otel_llm.call.LLMCall` keeps its
buffer) is stored in one ``dict.update``, without a look at each value. Everything the
SDK would treat differently goes through ``span.set_attributes`` itself:

* another span class (a non-recording span, another SDK, a subclass);
* span limits in force that the values could hit (a value length limit; more
  attributes than the count limit leaves room for);
* an ended span (the SDK logs and ignores);
* any value that is not plain (a list of plain values is stored as a tuple, as the
  SDK does).

Keys must be non-empty ``str`` (otel-llm's own names; :class:`~otel_llm.call.LLMCall`
checks the names an application gives). Order among attributes is not kept as the SDK
keeps it (a key set again stays where it was): attributes are a map.

If the SDK's internals are not what the probe expects (a later SDK release), the probe
fails and every call takes the public method: slower, never wrong.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

logger = logging.getLogger("otel_llm")

#: Value types the SDK stores as they are (``bool`` is not an ``int`` here: ``type`` is
#: compared). Also what keeps :class:`~otel_llm.call.LLMCall`'s buffer ``ready``.
PLAIN_TYPES = frozenset((str, int, float, bool))

#: The span class whose attribute store the probe verified; ``False`` until probed,
#: ``None`` when the probe failed (the public method only).
_direct_class: type | None | bool = False


def set_span_attributes(span: Any, attributes: Mapping[str, Any], ready: bool = False) -> None:
    """``span.set_attributes(attributes)``, for the SDK's span without re-checking plain values
    (``ready``: without looking at any value; see the module's docstring).

    May raise what ``span.set_attributes`` raises (the caller reports it).
    """
    cls = type(span)
    direct = _direct_class
    if direct is False:
        direct = _probe()
    if cls is not direct or not _set_directly(span, attributes, ready):
        span.set_attributes(attributes)


def direct_path_enabled() -> bool:
    """Whether the probe verified the SDK's span class (for tests and benchmarks)."""
    direct = _direct_class if _direct_class is not False else _probe()
    return direct is not None


def _set_directly(span: Any, attributes: Mapping[str, Any], ready: bool = False) -> bool:
    """Store plain values in the span's attribute store; False (nothing stored) when the
    SDK's own method must do it all. Values it cannot store are handed to that method;
    ``ready`` values are all stored as they are."""
    store = span._attributes
    if store.max_value_len is not None:
        return False
    items = store._dict
    maxlen = store.maxlen
    if maxlen is not None and len(items) + len(attributes) > maxlen:
        return False
    plain = PLAIN_TYPES
    rest: dict[str, Any] | None = None
    with span._lock:
        if span._end_time is not None or store._immutable:
            return False
        with store._lock:
            if ready:
                items.update(attributes)
                return True
            for key, value in attributes.items():
                if type(value) in plain:
                    items[key] = value
                elif type(value) is list and plain.issuperset(map(type, value)):
                    items[key] = tuple(value)
                else:  # anything else is the SDK's to clean
                    if rest is None:
                        rest = {}
                    rest[key] = value
    if rest:
        span.set_attributes(rest)
    return True


def _probe() -> type | None:
    """Check, on a private provider, that storing directly into the SDK's span gives what
    ``set_attributes`` gives, as span processors receive the ended spans; remember the
    span class if so."""
    global _direct_class
    direct: type | None = None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        ended: list[ReadableSpan] = []

        class _Keep(SpanProcessor):
            """What span processors (and so exporters) are given when a span ends."""

            def on_end(self, span: ReadableSpan) -> None:
                ended.append(span)

        # Its own settings, whatever the environment says (limits in force are checked per call).
        provider = TracerProvider(
            sampler=ALWAYS_ON, resource=Resource.get_empty(), shutdown_on_exit=False,
            span_limits=SpanLimits(max_span_attributes=128, max_span_attribute_length=SpanLimits.UNSET),
        )
        provider.add_span_processor(_Keep())
        tracer = provider.get_tracer("otel-llm probe")
        start = {"probe.start": 1, "probe.again": "a"}
        sample = {
            "probe.str": "s", "probe.int": 3, "probe.float": 0.5, "probe.bool": True,
            "probe.list": ["x", "y"], "probe.again": "b", "probe.odd": [1, [2]],
        }
        ready = {"probe.str": "s", "probe.int": 3, "probe.float": 0.5, "probe.bool": True,
                 "probe.tuple": ("x", "y"), "probe.again": "c"}
        same = True
        cls: type | None = None
        for values, ready_values in ((sample, False), (ready, True)):
            direct_span = tracer.start_span("probe", attributes=start)
            public_span = tracer.start_span("probe", attributes=start)
            cls = type(direct_span)
            if not _set_directly(direct_span, values, ready_values):
                same = False
                break
            public_span.set_attributes(values)
            direct_span.end()
            public_span.end()
            exported_direct, exported_public = ended[-2:]  # in the order they ended
            got, want = dict(exported_direct.attributes), dict(exported_public.attributes)
            same = same and (
                got == want
                and {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in want.items()}
                and exported_direct.dropped_attributes == exported_public.dropped_attributes
            )
        if same:
            direct = cls
    except Exception as exc:  # noqa: BLE001 - another SDK layout: the public method only
        logger.debug("otel-llm: span attributes go through set_attributes (%r)", exc)
    _direct_class = direct
    return direct
