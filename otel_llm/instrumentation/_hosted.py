"""HTTP attempts of a provider call made inside a fallback attempt: one observation each.

Inside a fallback-chain attempt (``_base.ATTEMPT``) the attempt's own span is the
observation of the provider call, and the instrumentation opens no span of its own. A
client that retries by itself (the OpenAI SDK on a 429, a 5xx, a timeout) still makes
several HTTP attempts of that one call; outside a chain each is a span, so the processor
writes one observation per attempt, failed ones included. Inside a chain they must be
too, or a retried call's failures vanish.

So the attempt's span observes the *last* HTTP attempt — the one whose outcome the
chain sees: its answer, or the error the client gives up with — and each earlier one,
known to have failed once the client sends the next, gets a span of its own then
(:meth:`otel_llm.fallback.Attempt.open_earlier_try`): a sibling of the attempt's span,
timed from when that try was sent to when its answer came, ERROR with the ``error.type``
and ``http.response.status_code`` the client saw, and the attempt's attributes (target,
route, chain attempt index, fallback, the chain's logical call id) over the request's.

As outside a chain, a retry carries ``http.request.resend_count`` (its retry index) and
``otel_llm.retry.backoff_s``; ``otel_llm.attempt`` keeps the chain's meaning (which
target), so every try of one attempt has the same index and they are told apart by
the resend count. The attempt's span starts with the fallback attempt, so after a retry
its duration covers the earlier tries and back-offs (the target's whole time to answer),
while each earlier try's span has that try's own time.
"""

from __future__ import annotations

import time
from typing import Any

from otel_llm import semconv
from otel_llm.call import LLMCall


class HostedTries:
    """The HTTP tries of one provider call inside a fallback attempt (see the module docs).

    ``host`` is the attempt's call, ``attempt`` the :class:`~otel_llm.fallback.Attempt`
    (which opens spans for earlier tries), ``request`` the request's attributes as
    recorded on the host. Every method is called from the instrumentation's patches,
    inside their own error guard.
    """

    __slots__ = ("host", "attempt", "request", "tries", "sent_ns", "backoff", "status", "error_type", "exception", "answered_ns")

    def __init__(self, host: LLMCall, attempt: Any, request: dict[str, Any], start_ns: int) -> None:
        self.host = host
        self.attempt = attempt
        self.request = request
        #: Tries sent so far.
        self.tries = 0
        #: When the current try was sent (the first: when the application called the client).
        self.sent_ns = start_ns
        #: Back-off the client waited before the current try.
        self.backoff: float | None = None
        self._clear()

    def _clear(self) -> None:
        self.status: int | None = None
        self.error_type: str | None = None
        self.exception: BaseException | None = None
        self.answered_ns: int | None = None

    def begin(self, backoff: float | None) -> None:
        """The client sends a try. A try after the first is a retry: the one before it failed,
        and gets its own span now; the host then observes the retry."""
        index = self.tries
        self.tries += 1
        if index == 0:
            return
        self._end_earlier_try(index - 1)
        self._clear()
        self.sent_ns = time.time_ns()
        self.backoff = backoff
        self.host.set_attributes({
            semconv.HTTP_REQUEST_RESEND_COUNT: index,
            semconv.OTEL_LLM_RETRY_BACKOFF_S: backoff,  # None is skipped
        })

    def answered(self, status: int, error_type: str | None) -> None:
        """The current try got an HTTP answer (``error_type`` for an error status)."""
        self.status = status
        self.error_type = error_type
        self.answered_ns = time.time_ns()

    def raised(self, exc: BaseException, error_type: str) -> None:
        """The current try failed without an answer (timeout, connection error)."""
        self.exception = exc
        self.error_type = error_type
        self.answered_ns = time.time_ns()

    def settle(self) -> None:
        """The client is done (answered or raised): the host observes the last try, so it
        takes that try's status (the chain records the outcome)."""
        if self.status is not None:
            self.host.set_http_status(self.status)

    def _end_earlier_try(self, index: int) -> None:
        attrs = dict(self.request)
        if index > 0:
            attrs[semconv.HTTP_REQUEST_RESEND_COUNT] = index
            if self.backoff is not None:
                attrs[semconv.OTEL_LLM_RETRY_BACKOFF_S] = self.backoff
        if self.status is not None:
            attrs[semconv.HTTP_RESPONSE_STATUS_CODE] = self.status
        call = self.attempt.open_earlier_try(attrs, self.sent_ns)
        if call is None:
            return
        if self.exception is not None and isinstance(self.exception, Exception):
            call.span.record_exception(self.exception)
        # The client retried, so this try failed even when nothing said how.
        call.fail(self.error_type or semconv.ERROR_TYPE_OTHER)
        call.end(end_time_ns=self.answered_ns)
