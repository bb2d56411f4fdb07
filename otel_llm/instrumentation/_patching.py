"""Patching client methods with ``wrapt`` alongside other libraries that patch the same ones.

Other instrumentations (OpenLLMetry, OpenInference, the contrib openai-v2, APM agents)
wrap the same client methods with ``wrapt``, so one attribute may hold a chain of
wrappers linked by ``__wrapped__``, in whatever order the libraries were loaded. Being a
``wrapt.FunctionWrapper`` therefore says nothing about whose wrapper it is: taking any
wrapper for ours would skip patching under another library's wrapper, and removing the
outermost one would remove theirs. So otel-llm keeps the wrapper object ``wrapt``
returned for each method it patched (its *handle*) and only ever looks for, or removes,
that object, anywhere in the chain:

* :func:`patch` wraps a method unless our wrapper is already in its chain (patching
  twice would record every call twice), whatever other wrappers are there;
* :func:`unpatch` takes our wrapper out: the attribute gets back what it wrapped when
  ours is outermost, and ours is spliced out from under another ``wrapt`` wrapper,
  which keeps working. When what sits directly above ours is not a ``wrapt`` wrapper
  (a plain function that only records ``__wrapped__``), ours cannot be unlinked without
  breaking that function: it stays where it is, :func:`unpatch` says so (and logs it at
  debug level), and the instrumentation, uninstalled, makes it pass calls through
  unrecorded. A later :func:`patch` finds it in the chain and uses it again.

The chain is read and changed with ``wrapt``'s own functions (``find_wrapper``,
``unwrap_object``); older ``wrapt`` releases, which lack them, get an equivalent here.
"""

from __future__ import annotations

from typing import Any, Callable

import wrapt

from otel_llm._safety import logger

#: Links followed along a chain of wrappers before giving up (a cycle, a broken proxy).
_LIMIT = 64

#: ``wrapt``'s proxy base class: a wrapper whose ``__wrapped__`` link can be changed in place.
_PROXY: type = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


def _find_wrapper(obj: Any, handle: Any) -> Any:
    """``handle`` if it is ``obj`` or reachable from it through ``__wrapped__``, else None."""
    for _ in range(_LIMIT):
        if obj is handle:
            return obj
        obj = getattr(obj, "__wrapped__", None)
        if obj is None:
            return None
    return None


def _unwrap_object(target: Any, name: str, handle: Any, *, missing_ok: bool = False) -> Any:
    """Take ``handle`` out of the chain of ``target.<name>`` (``target`` defines ``name``)."""
    current = vars(target).get(name)
    if current is handle:
        setattr(target, name, handle.__wrapped__)
        return handle
    above = current
    for _ in range(_LIMIT):
        below = getattr(above, "__wrapped__", None)
        if below is None:
            break
        if below is handle:
            if not isinstance(above, _PROXY):
                raise ValueError(f"cannot remove the wrapper of {name}: wrapped by {type(above).__name__}")
            above.__wrapped__ = handle.__wrapped__
            return handle
        above = below
    if missing_ok:
        return None
    raise ValueError(f"wrapper of {name} not found")


try:  # wrapt 2: its own chain functions
    from wrapt import find_wrapper, unwrap_object
except ImportError:  # pragma: no cover - older wrapt
    find_wrapper, unwrap_object = _find_wrapper, _unwrap_object

#: (class, method name) -> the wrapper otel-llm installed there.
_HANDLES: dict[tuple[type, str], Any] = {}


def _installed(cls: type, name: str) -> Any:
    """Our wrapper of ``cls.<name>`` if it is still in the attribute's chain, else None."""
    handle = _HANDLES.get((cls, name))
    if handle is None:
        return None
    try:
        return find_wrapper(vars(cls).get(name), handle)
    except Exception:  # noqa: BLE001 - an unreadable chain: treat ours as gone
        return None


def is_patched(cls: type, name: str) -> bool:
    """Whether otel-llm's own wrapper is in the chain of ``cls.<name>`` (other libraries'
    wrappers do not count)."""
    return _installed(cls, name) is not None


def patch(cls: type, name: str, wrapper: Callable[..., Any]) -> None:
    """Wrap the method ``name`` that ``cls`` defines with ``wrapper``, unless ours already is."""
    if _installed(cls, name) is None:
        _HANDLES[(cls, name)] = wrapt.wrap_function_wrapper(cls, name, wrapper)


def unpatch(cls: type, name: str) -> bool:
    """Take otel-llm's wrapper out of ``cls.<name>``, leaving other libraries' wrappers.

    Returns False when ours is still in the chain because it could not be unlinked; the
    caller then has to make it pass calls through.
    """
    handle = _installed(cls, name)
    if handle is None:
        _HANDLES.pop((cls, name), None)
        return True
    reason: BaseException | None = None
    try:
        unwrap_object(cls, name, handle, missing_ok=True)
    except Exception as exc:  # noqa: BLE001 - whatever wrapt says, the chain decides below
        reason = exc
    if _installed(cls, name) is None:
        _HANDLES.pop((cls, name), None)
        return True
    logger.debug(
        "otel-llm: %s.%s.%s is wrapped above otel-llm's wrapper by something that cannot be "
        "relinked (%s); otel-llm's wrapper stays in place and passes calls through unrecorded",
        cls.__module__, cls.__qualname__, name, reason,
    )
    return False
