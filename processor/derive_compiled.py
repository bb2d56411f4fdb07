"""Whole-span derivation compiled per attribute layout: the usual span in one generated function.

:func:`processor.derive._derive` is general: it reads a span through a table of aliases,
keeps track of what it used and what was unusable, and handles invocation parameters,
reported costs, tool definitions, recorded completions and the rest. Most spans need
none of that: an instrumentation writes the same handful of attribute names on every
call, all of them usable. For such a *layout* (one set of attribute names),
:func:`compile_fast_path` writes a function that does only the steps this layout needs,
with field values in local variables instead of dictionaries: about half the work of the
general path per span, and derivation is the larger part of ingestion's Python time.

The generated function is a shortcut, never a second definition. It exists only for
layouts whose names rule out every branch it leaves out (see :func:`_eligible`), it
returns ``None`` as soon as one value turns out unusable (the general path then
derives the span and reports that value), and for every span it accepts it gives the
observation the general path gives; ``tests/test_derive_compiled.py`` compares the two
on every fixture and on generated variations.

Attribute names never enter the generated source (they come from spans): the code
refers to them, and to the converters, by position in tuples it closes over.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

#: ``(attribute, field, rank, converter, inline kind, ranked)``, as ``_Layout.reads`` holds them.
Read = tuple[str, str, int, Callable[[Any], Any], int, bool]

#: Observation fields read straight from one attribute value each (no fallback source
#: for this layout once :func:`_eligible` holds), in the order the observation takes them.
_PLAIN_FIELDS = (
    "agent", "session_id", "user_id", "attempt", "fallback", "http_status", "finish_reason",
    "input_tokens", "cached_input_tokens", "cache_creation_input_tokens", "output_tokens",
    "reasoning_tokens", "tools_offered", "tool_calls", "routing_complexity", "routing_score",
)


def read_lines(i: int, inline: int, target: str) -> list[str]:
    """Generated source reading the ``i``-th read's raw value into ``r`` and its converted
    value into ``target``: the converters' usual case (1: text, 2: count, 3: flag) inline,
    the converter ``C[i]`` otherwise. Shared with :func:`processor.derive._compile_reader`."""
    if inline == 1:
        convert = f"(r.strip() or None) if type(r) is str else C[{i}](r)"
    elif inline == 2:
        convert = f"(r if r >= 0 else None) if type(r) is int else C[{i}](r)"
    elif inline == 3:
        convert = f"r if type(r) is bool else C[{i}](r)"
    else:
        convert = f"C[{i}](r)"
    return [f" r = attrs[K[{i}]]", f" {target} = {convert}"]


def _eligible(keys: Sequence[str], layout: Any, h: Mapping[str, Any]) -> bool:
    """Whether spans of this layout can take the compiled path: no name that sends the
    general path down a branch the compiled one leaves out."""
    scan = layout.scan
    present = set(keys)
    return not (
        layout.parameter_keys or layout.cost_keys
        or scan.tool_def_indices or scan.tool_call_pairs or scan.saw_completion
        or scan.chat_keys or scan.completion_keys
        or present & h["EXTRA_KEYS"]
    )


def compile_fast_path(keys: Sequence[str], layout: Any, h: Mapping[str, Any]
                      ) -> tuple[Callable[..., Any], Callable[..., Any] | None] | None:
    """The compiled derivation of one layout, or None when the layout needs the general path.

    Two functions sharing one body: ``derived(trace_hex, span_hex, parent_hex, start,
    end, attrs, operation, status_code, resource_attributes, events, capture_content,
    pricer)`` for checked parts (None: derive the general way), and, when the layout
    names its operation under ``gen_ai.operation.name`` (so that the general
    classification reads that attribute alone), ``derived_span(span, attrs,
    capture_content, pricer)`` for an SDK span read directly, which hands any span that
    is not the usual one to ``GENERAL`` itself.

    ``h`` holds the helpers and constants of :mod:`processor.derive` the generated code
    uses (passed in, so that this module imports nothing of it).
    """
    if not _eligible(keys, layout, h):
        return None
    body = _body(keys, layout, h)
    parts = [
        "def derived(trace_hex, span_hex, parent_hex, start, end, attrs, operation, status_code,",
        "            resource_attributes, events, capture_content, pricer):",
        " failed = IS_ERROR(status_code)",
        *(line.replace("GIVE_UP", "None") for line in body),
    ]
    with_span = tuple(layout.operation_keys[:1]) == (h["OPERATION_KEY"],)
    if with_span:
        parts += [
            "def derived_span(span, attrs, capture_content, pricer):",
            # The general classification, for a layout whose operation is this attribute.
            " is_call, operation = OPERATION_VALUE(attrs[OPK])",
            " if not is_call: return None",
            # The general reading of an SDK span, for the usual values only.
            " ctx, parent, status = span._context, span._parent, span._status",
            " if ctx is None: return GENERAL(span, capture_content, pricer)",
            " trace_id, span_id = ctx.trace_id, ctx.span_id",
            " start, end = span._start_time, span._end_time",
            " if not (type(trace_id) is int and 0 < trace_id < TRACE_LIMIT and type(span_id) is int",
            "         and 0 < span_id < SPAN_LIMIT and type(start) is int and type(end) is int",
            "         and 0 < start <= end):",
            "  return GENERAL(span, capture_content, pricer)",
            " parent_hex = None",
            " if parent is not None:",
            "  parent_id = getattr(parent, 'span_id', None)",
            "  if parent_id is not None:",
            "   if not (type(parent_id) is int and 0 < parent_id < SPAN_LIMIT):",
            "    return GENERAL(span, capture_content, pricer)",
            "   parent_hex = '%016x' % parent_id",
            " trace_hex, span_hex = '%032x' % trace_id, '%016x' % span_id",
            " status_code = getattr(status, 'status_code', None)",
            " failed = IS_ERROR(status_code)",
            " events = (span.events or ()) if failed else ()",
            " resource_attributes = getattr(span._resource, 'attributes', None)",
            *(line.replace("GIVE_UP", "GENERAL(span, capture_content, pricer)") for line in body),
        ]
    namespace: dict[str, Any] = dict(h)
    namespace.update({
        "K": tuple(r[0] for r in layout.reads),
        "C": tuple(r[3] for r in layout.reads),
        "A": tuple(keys),
        "T": tuple(name for _key, name in layout.scan.tag_keys),
        "TK": tuple(key for key, _name in layout.scan.tag_keys),
        "OPK": h["OPERATION_KEY"],
    })
    exec("\n".join(parts), namespace)  # noqa: S102 - our own source; see the module docstring
    return namespace["derived"], namespace["derived_span"] if with_span else None


def _body(keys: Sequence[str], layout: Any, h: Mapping[str, Any]) -> list[str]:
    """The shared body: from the span's facts (trace_hex ... pricer) to the observation.
    ``GIVE_UP`` stands for what each function returns when a value is unusable."""
    reads: tuple[Read, ...] = layout.reads
    lines: list[str] = []
    # 1. Every read, as the general path does them all: one unusable value and this is
    #    not the usual span (the general path reports it).
    for i, (_key, _field, _rank, _conv, inline, _ranked) in enumerate(reads):
        lines += read_lines(i, inline, f"v{i}")
        lines.append(f" if v{i} is None and not (type(r) is str and not r.strip()): return GIVE_UP")
    # 2. Each field: the usable value of the best-ranked attribute feeding it.
    feeders: dict[str, list[tuple[int, int]]] = {}
    for i, (_key, field, rank, _conv, _inline, _ranked) in enumerate(reads):
        feeders.setdefault(field, []).append((rank, i))

    def value_of(field: str) -> str:
        found = sorted(feeders.get(field, ()))
        if not found:
            return "None"
        expr = f"v{found[-1][1]}"
        for _rank, i in reversed(found[:-1]):
            expr = f"(v{i} if v{i} is not None else {expr})"
        return expr

    for field in ("provider", "request_model", "response_model", "server_address", "stream", "route",
                  "logical_call_id", "error_type", "ttft_ms", *_PLAIN_FIELDS):
        lines.append(f" f_{field} = {value_of(field)}")
    lines += [
        " route = f_route",
        " if route is None:",
        "  route = '|'.join([p for p in (f_provider, f_request_model or f_response_model) if p]) or None",
        " error_type = f_error_type",
        " if failed and error_type is None:",
        "  error_type = EXCEPTION_TYPE(events) or ERROR_OTHER",
        " service_name, instance_id = SERVICE_OF(resource_attributes)",
    ]
    # 3. What is kept: the attributes no field read and the operation did not consume.
    consumed = set(layout.operation_keys)
    kept_literals = []
    for candidates in (layout.keep_content_unread, layout.keep_unread):
        kept = [k for k in candidates if k not in consumed][:h["MAX_ATTRIBUTES"]]
        items = [f"A[{keys.index(k)}]: KEEP(attrs[A[{keys.index(k)}]])" for k in kept]
        kept_literals.append("{" + ", ".join(items) + "}")
    if layout.scan.tag_keys:
        tag_items = [f"T[{n}]: TAG_VALUE(attrs[TK[{n}]])" for n in range(len(layout.scan.tag_keys))]
        lines.append(f" tags = {{{', '.join(tag_items)}}}")
    else:
        lines.append(" tags = {}")
    # 4. Money: self-hosted, else the pricer's figure (priced from the fields when the
    #    pricer can, so that the observation is made once), else unknown.
    lines += [
        " started_at = EPOCH + timedelta(0, 0, start // 1000)  # (days, seconds, microseconds)",
        " computed = None",
        " use_pricer = False",
        " if IS_LOCAL(f_provider, f_server_address):",
        "  cost, cost_basis = ZERO, BASIS_LOCAL",
        " elif pricer is None:",
        "  cost, cost_basis = None, BASIS_UNKNOWN",
        " elif type(pricer) is PRICE_BOOK:",
        "  computed = PRICE(pricer.price_fields, f_provider, f_response_model, f_request_model, started_at,",
        "                   f_input_tokens, f_output_tokens, f_cached_input_tokens,",
        "                   f_cache_creation_input_tokens, f_reasoning_tokens)",
        "  cost, cost_basis = (computed, BASIS_COMPUTED) if computed is not None else (None, BASIS_UNKNOWN)",
        " else:",
        "  cost, cost_basis, use_pricer = None, BASIS_UNKNOWN, True",
        " observation = MAKE((",
        "  trace_hex, span_hex, started_at, (end - start) / 1e6,",
        "  parent_hex, f_logical_call_id or span_hex,",
        "  f_ttft_ms * 1000.0 if f_ttft_ms is not None else None,",
        "  service_name, instance_id, f_agent, f_session_id, f_user_id, tags, operation, f_provider,",
        "  f_server_address, f_request_model, f_response_model, route, f_attempt, f_fallback, f_stream,",
        "  not failed and error_type is None, error_type, f_http_status, f_finish_reason,",
        "  f_input_tokens, f_cached_input_tokens, f_cache_creation_input_tokens, f_output_tokens,",
        "  f_reasoning_tokens, f_tools_offered, f_tool_calls, cost, cost_basis, computed,",
        f"  f_routing_complexity, f_routing_score, {kept_literals[0]} if capture_content else {kept_literals[1]},",
        " ))",
        " return PRICE_INTO(observation, pricer) if use_pricer else observation",
    ]
    return lines
