"""A small local model provider that speaks the OpenAI and Ollama wire formats over real HTTP.

Tests point the real ``openai`` and ``ollama`` clients at it (``base_url`` /
``host``), so every byte the instrumentation sees went through the clients' own
request, retry, SSE and NDJSON code. It runs in a thread on ``127.0.0.1`` (port 0 by
default), speaks HTTP/1.1 with keep-alive (so benchmarks measure calls, not TCP
handshakes), and answers:

OpenAI (under ``/v1``): ``/chat/completions`` (JSON, or SSE with a usage chunk when
``stream_options.include_usage`` is asked for), ``/completions``, ``/embeddings``
(float or base64), ``/responses`` (JSON, or the typed SSE event stream ending in
``response.completed`` with usage).

Ollama: ``/api/chat`` and ``/api/generate`` (JSON, or NDJSON with a final ``done``
line carrying counts and durations), ``/api/embed``, ``/api/embeddings``.

When the request offers tools, the answer calls them (one call per tool, at most two),
so tool-call recording can be checked on every path.

Behaviour is chosen per call by directives after ``@`` in the model name (the rest of
the name is echoed back as the response model)::

    "gpt-4o-mini@slow=0.2"           wait 0.2 s before answering
    "gpt-4o-mini@gap=0.05"           wait between streamed chunks
    "gpt-4o-mini@chunks=8"           number of content chunks in a stream
    "gpt-4o-mini@status=500"         answer with this HTTP error status
    "gpt-4o-mini@midstream=error"    in-band error after two chunks (SSE error / NDJSON error line)
    "gpt-4o-mini@midstream=drop"     drop the connection after two chunks
    "gpt-4o-mini@nousage"            never send usage, even when asked

and by one-shot scripted failures (:meth:`FakeProvider.fail_next`), served before
anything else to the next matching requests, e.g. a 429 with ``retry-after-ms`` to
exercise the client's own retry loop.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

#: Input tokens the provider reports for every request.
PROMPT_TOKENS = 12
#: Cached input tokens reported (a subset of :data:`PROMPT_TOKENS`).
CACHED_TOKENS = 4
#: Text a non-streamed answer carries; streams split it into chunks.
ANSWER = "Hello from the fake provider"
#: Content of a non-streamed answer when the request asks for JSON output.
JSON_ANSWER = json.dumps({"answer": ANSWER})
#: Dimension of every embedding.
EMBEDDING_DIM = 8
#: Ollama server timings reported on every final answer (nanoseconds).
OLLAMA_TIMINGS_NS = {
    "total_duration": 250_000_000,
    "load_duration": 120_000_000,
    "prompt_eval_duration": 30_000_000,
    "eval_duration": 90_000_000,
}


@dataclass
class RecordedRequest:
    """One request the provider received."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class ScriptedFailure:
    """A failure served to the next request whose path ends with ``path_suffix``."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    path_suffix: str = ""


@dataclass
class Directives:
    """Per-call behaviour parsed from the model name."""

    model: str
    slow: float = 0.0
    gap: float = 0.0
    chunks: int = 3
    status: int | None = None
    midstream: str | None = None
    usage: bool = True


def parse_model(raw: Any) -> Directives:
    """Split ``"name@k=v@flag"`` into the echoed model name and its directives."""
    text = str(raw or "")
    name, *parts = text.split("@")
    d = Directives(model=name)
    for part in parts:
        key, _, value = part.partition("=")
        if key == "slow":
            d.slow = float(value)
        elif key == "gap":
            d.gap = float(value)
        elif key == "chunks":
            d.chunks = max(1, int(value))
        elif key == "status":
            d.status = int(value)
        elif key == "midstream":
            d.midstream = value or "error"
        elif key == "nousage":
            d.usage = False
    return d


def _pieces(n: int) -> list[str]:
    """The answer split into ``n`` non-empty pieces (words, padded when n is larger)."""
    words = ANSWER.split(" ")
    out = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
    while len(out) < n:
        out.append(".")
    if len(out) > n:
        out = out[: n - 1] + ["".join(out[n - 1 :])]
    return out


def _wants_json(fmt: Any) -> bool:
    return isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object")


def _tool_names(body: dict[str, Any]) -> list[str]:
    names = []
    for tool in body.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        name = (fn or {}).get("name") if fn else tool.get("name") if isinstance(tool, dict) else None
        if name:
            names.append(name)
    return names[:2]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def setup(self) -> None:
        super().setup()
        # Small writes (headers, then body or one SSE frame) must not wait for Nagle's
        # algorithm: that would add tens of milliseconds to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        return None

    # --- plumbing ------------------------------------------------------------------
    def _read_body(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            return {"_raw": raw.decode("utf-8", "replace")}

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", f"req_{self.server.owner.request_count}")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _drop(self) -> None:
        """Cut the connection in the middle of a chunked body."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _stream(self, content_type: str, frames: Iterator[bytes], d: Directives, error_frame: bytes) -> None:
        self._start_chunked(content_type)
        sent = 0
        for frame in frames:
            if d.midstream and sent == 2:
                if d.midstream == "drop":
                    self._drop()
                    return
                self._chunk(error_frame)
                self._end_chunked()
                return
            if d.gap and sent:
                time.sleep(d.gap)
            self._chunk(frame)
            sent += 1
        self._end_chunked()

    # --- dispatch ------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        if self.path in ("/api/tags", "/v1/models"):
            self._send_json(200, {"models": [], "data": [], "object": "list"})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802
        body = self._read_body()
        owner = self.server.owner
        owner._record(RecordedRequest("POST", self.path, body, {k.lower(): v for k, v in self.headers.items()}))
        try:
            failure = owner._take_failure(self.path)
            if failure is not None:
                payload = failure.body or {"error": {"message": f"scripted {failure.status}", "type": "scripted"}}
                self._send_json(failure.status, payload, failure.headers)
                return
            d = parse_model(body.get("model") if isinstance(body, dict) else None)
            if d.slow:
                time.sleep(d.slow)
            if d.status is not None:
                self._send_json(d.status, {"error": {"message": f"forced {d.status}", "type": "forced"}})
                return
            route = _ROUTES.get(self.path)
            if route is None:
                self._send_json(404, {"error": {"message": f"no route {self.path}"}})
                return
            route(self, body, d)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # --- OpenAI --------------------------------------------------------------------
    def openai_chat(self, body: dict[str, Any], d: Directives) -> None:
        owner = self.server.owner
        rid = f"chatcmpl-{owner.request_count}"
        tools = _tool_names(body)
        usage = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": d.chunks,
            "total_tokens": PROMPT_TOKENS + d.chunks,
            "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        finish = "tool_calls" if tools else "stop"
        answer = JSON_ANSWER if _wants_json(body.get("response_format")) else ANSWER
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if tools else answer}
            if tools:
                message["tool_calls"] = [
                    {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": "{}"}}
                    for i, n in enumerate(tools)
                ]
            self._send_json(200, {
                "id": rid, "object": "chat.completion", "created": 1700000000, "model": d.model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": usage if d.usage else None,
            })
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and d.usage

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            out = {"id": rid, "object": "chat.completion.chunk", "created": 1700000000, "model": d.model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}
            if include_usage:
                out["usage"] = None
            return out

        def frames() -> Iterator[bytes]:
            yield _sse(chunk({"role": "assistant", "content": ""}))
            if tools:
                for i, name in enumerate(tools):
                    yield _sse(chunk({"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                                       "function": {"name": name, "arguments": ""}}]}))
                    yield _sse(chunk({"tool_calls": [{"index": i, "function": {"arguments": "{}"}}]}))
            else:
                for piece in _pieces(d.chunks):
                    yield _sse(chunk({"content": piece}))
            yield _sse(chunk({}, finish))
            if include_usage:
                yield _sse({"id": rid, "object": "chat.completion.chunk", "created": 1700000000,
                            "model": d.model, "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"

        error = _sse({"error": {"message": "upstream failed mid-stream", "type": "server_error"}})
        self._stream("text/event-stream", frames(), d, error)

    def openai_completions(self, body: dict[str, Any], d: Directives) -> None:
        rid = f"cmpl-{self.server.owner.request_count}"
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": d.chunks, "total_tokens": PROMPT_TOKENS + d.chunks}
        if not body.get("stream"):
            self._send_json(200, {
                "id": rid, "object": "text_completion", "created": 1700000000, "model": d.model,
                "choices": [{"index": 0, "text": ANSWER, "finish_reason": "length", "logprobs": None}],
                "usage": usage if d.usage else None,
            })
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and d.usage

        def frames() -> Iterator[bytes]:
            pieces = _pieces(d.chunks)
            for i, piece in enumerate(pieces):
                yield _sse({"id": rid, "object": "text_completion", "created": 1700000000, "model": d.model,
                            "choices": [{"index": 0, "text": piece, "logprobs": None,
                                         "finish_reason": "length" if i == len(pieces) - 1 else None}]})
            if include_usage:
                yield _sse({"id": rid, "object": "text_completion", "created": 1700000000, "model": d.model,
                            "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"

        error = _sse({"error": {"message": "upstream failed mid-stream", "type": "server_error"}})
        self._stream("text/event-stream", frames(), d, error)

    def openai_embeddings(self, body: dict[str, Any], d: Directives) -> None:
        inputs = body.get("input")
        count = len(inputs) if isinstance(inputs, list) else 1
        vector = [round(0.1 * (i + 1), 3) for i in range(EMBEDDING_DIM)]
        if body.get("encoding_format") == "base64":
            encoded: Any = base64.b64encode(struct.pack(f"<{EMBEDDING_DIM}f", *vector)).decode()
        else:
            encoded = vector
        self._send_json(200, {
            "object": "list", "model": d.model,
            "data": [{"object": "embedding", "index": i, "embedding": encoded} for i in range(count)],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "total_tokens": PROMPT_TOKENS},
        })

    def openai_responses(self, body: dict[str, Any], d: Directives) -> None:
        owner = self.server.owner
        rid = f"resp_{owner.request_count}"
        tools = _tool_names(body)
        usage = {
            "input_tokens": PROMPT_TOKENS, "input_tokens_details": {"cached_tokens": CACHED_TOKENS},
            "output_tokens": d.chunks, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": PROMPT_TOKENS + d.chunks,
        }
        text_format = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
        answer = JSON_ANSWER if _wants_json(text_format) else ANSWER
        if tools:
            output = [{"type": "function_call", "id": f"fc_{i}", "call_id": f"call_{i}", "name": n,
                       "arguments": "{}", "status": "completed"} for i, n in enumerate(tools)]
        else:
            output = [{"type": "message", "id": "msg_0", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": answer, "annotations": []}]}]

        def response(status: str, out: list[Any], with_usage: bool) -> dict[str, Any]:
            return {
                "id": rid, "object": "response", "created_at": 1700000000, "status": status,
                "model": d.model, "output": out, "parallel_tool_calls": True, "tool_choice": "auto",
                "tools": [], "usage": usage if with_usage and d.usage else None, "error": None,
                "incomplete_details": None, "instructions": None, "metadata": {}, "temperature": 1.0,
                "top_p": 1.0, "text": {"format": {"type": "text"}},
            }

        if not body.get("stream"):
            self._send_json(200, response("completed", output, True))
            return

        def frames() -> Iterator[bytes]:
            seq = iter(range(1_000_000))

            def ev(kind: str, **fields: Any) -> bytes:
                return _sse({"type": kind, "sequence_number": next(seq), **fields}, event=kind)

            yield ev("response.created", response=response("in_progress", [], False))
            if tools:
                for i, item in enumerate(output):
                    yield ev("response.output_item.added", output_index=i, item={**item, "arguments": ""})
                    yield ev("response.function_call_arguments.delta", output_index=i, item_id=item["id"], delta="{}")
                    yield ev("response.function_call_arguments.done", output_index=i, item_id=item["id"],
                             arguments="{}", name=item["name"])
                    yield ev("response.output_item.done", output_index=i, item=item)
            else:
                yield ev("response.output_item.added", output_index=0,
                         item={"type": "message", "id": "msg_0", "status": "in_progress", "role": "assistant", "content": []})
                yield ev("response.content_part.added", output_index=0, content_index=0, item_id="msg_0",
                         part={"type": "output_text", "text": "", "annotations": []})
                for piece in _pieces(d.chunks):
                    yield ev("response.output_text.delta", output_index=0, content_index=0, item_id="msg_0",
                             delta=piece, logprobs=[])
                yield ev("response.output_text.done", output_index=0, content_index=0, item_id="msg_0",
                         text=ANSWER, logprobs=[])
                yield ev("response.content_part.done", output_index=0, content_index=0, item_id="msg_0",
                         part={"type": "output_text", "text": ANSWER, "annotations": []})
                yield ev("response.output_item.done", output_index=0, item=output[0])
            yield ev("response.completed", response=response("completed", output, True))

        error = _sse({"type": "error", "sequence_number": 99, "code": "server_error",
                      "message": "upstream failed mid-stream", "param": None}, event="error")
        self._stream("text/event-stream", frames(), d, error)

    # --- Ollama --------------------------------------------------------------------
    def _ollama_final(self, d: Directives) -> dict[str, Any]:
        return {"done": True, "done_reason": "stop", "prompt_eval_count": PROMPT_TOKENS,
                "eval_count": d.chunks, **OLLAMA_TIMINGS_NS}

    def ollama_chat(self, body: dict[str, Any], d: Directives) -> None:
        tools = _tool_names(body)
        base = {"model": d.model, "created_at": "2024-01-01T00:00:00Z"}
        tool_calls = [{"function": {"name": n, "arguments": {}}} for n in tools]
        if not body.get("stream", True):
            message: dict[str, Any] = {"role": "assistant", "content": "" if tools else ANSWER}
            if tools:
                message["tool_calls"] = tool_calls
            self._send_json(200, {**base, "message": message, **self._ollama_final(d)})
            return

        def frames() -> Iterator[bytes]:
            if tools:
                yield _ndjson({**base, "message": {"role": "assistant", "content": "", "tool_calls": tool_calls},
                               "done": False})
            else:
                for piece in _pieces(d.chunks):
                    yield _ndjson({**base, "message": {"role": "assistant", "content": piece}, "done": False})
            yield _ndjson({**base, "message": {"role": "assistant", "content": ""}, **self._ollama_final(d)})

        self._stream("application/x-ndjson", frames(), d, _ndjson({"error": "model runner failed mid-stream"}))

    def ollama_generate(self, body: dict[str, Any], d: Directives) -> None:
        base = {"model": d.model, "created_at": "2024-01-01T00:00:00Z"}
        if not body.get("stream", True):
            self._send_json(200, {**base, "response": ANSWER, "context": [1, 2, 3], **self._ollama_final(d)})
            return

        def frames() -> Iterator[bytes]:
            for piece in _pieces(d.chunks):
                yield _ndjson({**base, "response": piece, "done": False})
            yield _ndjson({**base, "response": "", "context": [1, 2, 3], **self._ollama_final(d)})

        self._stream("application/x-ndjson", frames(), d, _ndjson({"error": "model runner failed mid-stream"}))

    def ollama_embed(self, body: dict[str, Any], d: Directives) -> None:
        inputs = body.get("input")
        count = len(inputs) if isinstance(inputs, list) else 1
        vector = [round(0.1 * (i + 1), 3) for i in range(EMBEDDING_DIM)]
        self._send_json(200, {"model": d.model, "embeddings": [vector] * count,
                              "prompt_eval_count": PROMPT_TOKENS,
                              "total_duration": OLLAMA_TIMINGS_NS["total_duration"],
                              "load_duration": OLLAMA_TIMINGS_NS["load_duration"]})

    def ollama_embeddings(self, body: dict[str, Any], d: Directives) -> None:
        self._send_json(200, {"embedding": [round(0.1 * (i + 1), 3) for i in range(EMBEDDING_DIM)]})


def _sse(payload: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload)}\n\n".encode()


def _ndjson(payload: Any) -> bytes:
    return (json.dumps(payload) + "\n").encode()


_ROUTES = {
    "/v1/chat/completions": _Handler.openai_chat,
    "/v1/completions": _Handler.openai_completions,
    "/v1/embeddings": _Handler.openai_embeddings,
    "/v1/responses": _Handler.openai_responses,
    "/api/chat": _Handler.ollama_chat,
    "/api/generate": _Handler.ollama_generate,
    "/api/embed": _Handler.ollama_embed,
    "/api/embeddings": _Handler.ollama_embeddings,
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: "FakeProvider"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (a closed stream, a cancelled call) is normal here.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class FakeProvider:
    """The fake provider, served from a background thread; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-provider", daemon=True)
        self._lock = threading.Lock()
        self._failures: deque[ScriptedFailure] = deque()
        self.requests: list[RecordedRequest] = []
        self.request_count = 0

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> "FakeProvider":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeProvider":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses -----------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (the Ollama client's ``host``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI client's ``base_url``."""
        return f"{self.url}/v1"

    # --- scripting -----------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        path_suffix: str = "",
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` (then behave normally)."""
        with self._lock:
            for _ in range(times):
                self._failures.append(ScriptedFailure(status, dict(headers or {}), body, path_suffix))

    def reset(self) -> None:
        """Forget recorded requests and pending scripted failures."""
        with self._lock:
            self._failures.clear()
            self.requests.clear()

    def _take_failure(self, path: str) -> ScriptedFailure | None:
        with self._lock:
            for i, failure in enumerate(self._failures):
                if path.endswith(failure.path_suffix):
                    del self._failures[i]
                    return failure
        return None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.request_count += 1
            self.requests.append(request)

    def bodies(self, path_suffix: str = "") -> list[Any]:
        """Bodies of the recorded requests whose path ends with ``path_suffix``."""
        with self._lock:
            return [r.body for r in self.requests if r.path.endswith(path_suffix)]


if __name__ == "__main__":  # pragma: no cover - handy for poking at it by hand
    with FakeProvider(port=8765) as fake:
        print(f"fake provider on {fake.url} (OpenAI base URL {fake.openai_base_url}); Ctrl-C to stop")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
