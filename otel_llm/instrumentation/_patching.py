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

Our wrapper can be in the chain in either of two forms. A library that wraps the
attribute as stored in the class finds the handle itself; one that reads the method
from the class (``functools.wraps(Client.request)``) gets the bound wrapper ``wrapt``
makes for that access, a ``BoundFunctionWrapper`` whose ``__wrapped__`` is the original
function, not the handle. It refers to the handle as its parent (``_self_parent``, part
of ``wrapt``'s wrapper interface in every release), and it records calls like the handle
does, so it counts as ours: missing it would patch a second time (every call recorded
twice) and take it for removed when it is not. ``wrapt``'s ``find_wrapper`` and
``unwrap_object`` match the handle only, so the chain is walked here, one way for every
``wrapt`` release.

Patching and unpatching happen at ``instrument()``/``uninstrument()`` time, possibly from
several threads at once: each check of the chain and the change it decides are made
under one lock, or two threads could both find no wrapper of ours and both add one.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

import wrapt

from otel_llm._safety import logger

#: Links followed along a chain of wrappers before giving up (a cycle, a broken proxy).
_LIMIT = 64

#: ``wrapt``'s proxy base class: a wrapper whose ``__wrapped__`` link can be changed in place.
_PROXY: type = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)

#: (class, method name) -> the wrapper otel-llm installed there.
_HANDLES: dict[tuple[type, str], Any] = {}

#: Makes each check of a chain and the change decided from it one step (see the docstring).
_LOCK = threading.Lock()


def _is_ours(entry: Any, handle: Any) -> bool:
    """Whether ``entry`` is our wrapper: the handle, or a bound wrapper made from it."""
    if entry is handle:
        return True
    # type(), not isinstance(): a proxy reports the class of what it wraps.
    return issubclass(type(entry), wrapt.BoundFunctionWrapper) and entry._self_parent is handle


def _chain(obj: Any) -> Iterator[Any]:
    """``obj`` and what it wraps, following ``__wrapped__`` (at most ``_LIMIT`` links)."""
    for _ in range(_LIMIT):
        yield obj
        obj = getattr(obj, "__wrapped__", None)
        if obj is None:
            return


def _installed(cls: type, name: str) -> Any:
    """The handle of our wrapper of ``cls.<name>`` if it is still in the chain, else None."""
    handle = _HANDLES.get((cls, name))
    if handle is None:
        return None
    try:
        return handle if any(_is_ours(entry, handle) for entry in _chain(vars(cls).get(name))) else None
    except Exception:  # noqa: BLE001 - an unreadable chain: treat ours as gone
        return None


def _unlink(cls: type, name: str, handle: Any) -> str | None:
    """Take our wrapper out of the chain of ``cls.<name>``; why it could not be, or None."""
    above = None
    for entry in _chain(vars(cls).get(name)):
        if _is_ours(entry, handle):
            if above is None:
                setattr(cls, name, handle.__wrapped__)  # the original, as the class stored it
            elif issubclass(type(above), _PROXY):
                above.__wrapped__ = entry.__wrapped__  # what ``above`` saw, less our wrapper
            else:
                return f"wrapped by {type(above).__name__}"
            return None
        above = entry
    return None


def is_patched(cls: type, name: str) -> bool:
    """Whether otel-llm's own wrapper is in the chain of ``cls.<name>`` (other libraries'
    wrappers do not count)."""
    return _installed(cls, name) is not None


def patch(cls: type, name: str, wrapper: Callable[..., Any]) -> None:
    """Wrap the method ``name`` that ``cls`` defines with ``wrapper``, unless ours already is."""
    with _LOCK:
        if _installed(cls, name) is None:
            _HANDLES[(cls, name)] = wrapt.wrap_function_wrapper(cls, name, wrapper)


def unpatch(cls: type, name: str) -> bool:
    """Take otel-llm's wrapper out of ``cls.<name>``, leaving other libraries' wrappers.

    Returns False when ours is still in the chain because it could not be unlinked; the
    caller then has to make it pass calls through.
    """
    with _LOCK:
        handle = _installed(cls, name)
        reason: str | BaseException | None = None
        if handle is not None:
            try:
                reason = _unlink(cls, name, handle)
            except Exception as exc:  # noqa: BLE001 - whatever went wrong, the chain decides below
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
