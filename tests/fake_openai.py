"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, for tests.

Standard library only. The only thing it fakes is the remote LLM / embeddings
service; everything else in a test stays real (real HTTP over loopback).

    with FakeOpenAI() as server:
        server.script = ["第一次回答", {"status": 500}, {"delay": 2.0}]
        client = SomeClient(base_url=server.base_url, api_key="x")
        ...
        assert server.requests[0]["path"] == "/v1/chat/completions"

Endpoints (all under ``/v1``):

* ``POST /v1/embeddings`` -- ``{"model", "input": str | list[str], "encoding_format"?}``.
  Vectors come from :func:`fake_embedding` (deterministic hashed bag of
  character bigrams, L2-normalised, ``server.dim`` wide, default 64), so
  near-duplicate texts get near vectors. ``encoding_format="base64"`` returns
  each vector as base64 of little-endian float32 bytes. Token-id input
  (``list[int]`` or ``list[list[int]]``, as tiktoken-based clients send) is
  accepted too and hashed as token bigrams.
* ``POST /v1/chat/completions`` -- ``{"model", "messages", "stream"?}``. The
  reply comes from ``server.responder(messages)`` if set, else from the next
  turn of ``server.script`` (consumed in order, one per request), else
  ``server.default_reply``. A turn is a ``str`` (the content) or a ``dict``
  with optional keys:

  - ``"content"``: str -- the reply (default ``server.default_reply``);
  - ``"status"``: int -- answer with this HTTP status and an OpenAI-style
    error JSON instead (``"content"``, if given, becomes the error message);
  - ``"delay"``: float -- seconds to sleep before responding (to trigger
    client timeouts; cut short when the server stops);
  - ``"malformed"``: True -- stream: one valid chunk, then a line that is
    not valid SSE JSON, then the connection closes (no ``[DONE]``);
    non-stream: a 200 ``application/json`` body that is not valid JSON.

  Streaming (``"stream": true``) sends ``text/event-stream`` chunks of
  ``server.chunk_size`` characters, a final empty-delta chunk with
  ``finish_reason: "stop"``, an optional usage chunk (when
  ``stream_options.include_usage`` is set) and ``data: [DONE]``.
* ``GET /v1/models`` -- one model, ``"fake-model"``.
* anything else -- 404 with an OpenAI-style error JSON.

If ``server.api_key`` is set, any request without
``Authorization: Bearer <api_key>`` gets 401.

Every request is recorded (before auth is checked) in ``server.requests`` as
``{"method", "path", "headers" (lower-case keys), "json" (None if absent or
invalid)}``.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOpenAI", "fake_embedding", "FAKE_MODEL"]

FAKE_MODEL = "fake-model"


def _features(text: str | Sequence[int]) -> list[str]:
    """Character bigrams of a string (token bigrams of a token-id list).

    A text of fewer than two units is its own single feature, so every input,
    even "", has at least one feature and a non-zero vector.
    """
    units = list(text) if isinstance(text, str) else [f"#{int(t)}" for t in text]
    if len(units) < 2:
        return ["".join(units)]
    return [units[i] + "\x1f" + units[i + 1] for i in range(len(units) - 1)]


def fake_embedding(text: str | Sequence[int], dim: int = 64) -> list[float]:
    """The deterministic unit vector the fake server returns for ``text``.

    A signed hashed bag of character bigrams (blake2b, so stable across runs
    and processes), L2-normalised: texts sharing many bigrams are close.
    """
    if dim < 1:
        raise ValueError("dim must be >= 1")
    vec = [0.0] * dim
    for feat in _features(text):
        h = int.from_bytes(hashlib.blake2b(feat.encode("utf-8"), digest_size=8).digest(), "little")
        vec[h % dim] += 1.0 if (h >> 63) & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:  # all features cancelled out: fall back to a fixed unit vector
        h = int.from_bytes(hashlib.blake2b(b"\x00" + repr(text).encode(), digest_size=8).digest(), "little")
        vec[h % dim] = 1.0
        return vec
    return [v / norm for v in vec]


def _error_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a delay must not block server_close()
    allow_reuse_address = True
    request_queue_size = 128  # the default backlog of 5 refuses bursts of concurrent clients
    fake: "FakeOpenAI"

    def handle_error(self, request, client_address) -> None:  # noqa: D401
        """Stay silent: clients that time out and hang up are expected."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms delayed-ACK stalls
    server_version = "FakeOpenAI/1.0"
    sys_version = ""
    timeout = 10  # idle keep-alive connections end eventually
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    # ----------------------------------------------------------------- plumbing
    @property
    def fake(self) -> "FakeOpenAI":
        return self.server.fake

    def _read_json(self) -> tuple[Any, bool]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if not raw:
            return None, True
        try:
            return json.loads(raw.decode("utf-8")), True
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None, False

    def _send_json(self, status: int, obj: Any) -> None:
        self._send_raw(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"))

    def _send_raw(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _error(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None) -> None:
        self._send_json(status, _error_body(message, type_, code))

    def _dispatch(self, method: str) -> None:
        body, ok = self._read_json() if method == "POST" else (None, True)
        self.fake._record(
            {
                "method": method,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "json": body,
            }
        )
        try:
            if self.fake.api_key is not None:
                if self.headers.get("Authorization", "") != f"Bearer {self.fake.api_key}":
                    self._error(401, "Incorrect API key provided.", code="invalid_api_key")
                    return
            path = self.path.split("?", 1)[0].rstrip("/")
            if method == "POST" and not ok:
                self._error(400, "Request body is not valid JSON.")
            elif method == "POST" and path == "/v1/embeddings":
                self._embeddings(body)
            elif method == "POST" and path == "/v1/chat/completions":
                self._chat(body)
            elif method == "GET" and path == "/v1/models":
                self._send_json(200, {"object": "list", "data": [_model_obj()]})
            elif method == "GET" and path == f"/v1/models/{FAKE_MODEL}":
                self._send_json(200, _model_obj())
            else:
                self._error(404, f"Unknown path: {method} {self.path}", code="not_found")
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client gave up (e.g. timed out)

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # --------------------------------------------------------------- embeddings
    def _embeddings(self, body: Any) -> None:
        if not isinstance(body, dict) or "input" not in body:
            self._error(400, "'input' is a required property", code="missing_required_parameter")
            return
        inp = body["input"]
        if isinstance(inp, str) or (isinstance(inp, list) and inp and all(isinstance(t, int) for t in inp)):
            items: list[Any] = [inp]
        elif isinstance(inp, list) and inp and all(
            isinstance(t, str) or (isinstance(t, list) and all(isinstance(x, int) for x in t)) for t in inp
        ):
            items = list(inp)
        else:
            self._error(400, "'input' must be a string, a list of strings or a list of token lists.")
            return
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            self._error(400, f"Unknown encoding_format: {fmt!r}")
            return
        dim = self.fake.dim
        data = []
        tokens = 0
        for i, item in enumerate(items):
            vec = fake_embedding(item, dim)
            tokens += max(1, len(item))
            emb: Any = vec
            if fmt == "base64":
                emb = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode("ascii")
            data.append({"object": "embedding", "index": i, "embedding": emb})
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model") or FAKE_MODEL,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    # --------------------------------------------------------------------- chat
    def _chat(self, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._error(400, "'messages' is a required property", code="missing_required_parameter")
            return
        try:
            turn = self.fake._next_turn(body["messages"])
        except Exception as exc:  # a broken responder / script turn: tell the client, don't hang up
            self._error(500, f"FakeOpenAI responder failed: {exc!r}", type_="server_error")
            return
        delay = float(turn.get("delay") or 0)
        if delay > 0:
            self.fake._stopping.wait(delay)
        content = turn.get("content")
        if content is None:
            content = self.fake.default_reply
        content = str(content)
        status = turn.get("status")
        if status is not None and int(status) != 200:
            status = int(status)
            self._error(
                status,
                turn.get("content") or f"Scripted error (HTTP {status}).",
                type_="server_error" if status >= 500 else "invalid_request_error",
            )
            return
        model = body.get("model") or FAKE_MODEL
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in body["messages"] if isinstance(m, dict))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(content),
            "total_tokens": prompt_tokens + len(content),
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(cid, created, model, content, bool(turn.get("malformed")), usage if include_usage else None)
            return
        if turn.get("malformed"):
            self._send_raw(200, b'{"id": "' + cid.encode() + b'", "choices": [{"message": ')
            return
        self._send_json(
            200,
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
        )

    def _stream(
        self, cid: str, created: int, model: str, content: str, malformed: bool, usage: dict[str, int] | None
    ) -> None:
        # No Content-Length: the body ends when the connection closes.
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        def send(payload: Any) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
            self.wfile.write(f"data: {data}\n\n".encode("utf-8"))
            self.wfile.flush()

        size = max(1, int(self.fake.chunk_size))
        pieces = [content[i : i + size] for i in range(0, len(content), size)] or [""]
        if malformed:
            send(chunk({"role": "assistant", "content": pieces[0]}, None))
            self.wfile.write(b'data: {"id": "broken", "choices": [{"delta": {"content": \n\n')
            self.wfile.write(b"this is not server-sent events\n\n")
            self.wfile.flush()
            return
        for piece in pieces:
            send(chunk({"role": "assistant", "content": piece}, None))
        send(chunk({}, "stop"))
        if usage is not None:
            u = chunk({}, None)
            u["choices"] = []
            u["usage"] = usage
            send(u)
        send("[DONE]")


def _model_obj() -> dict[str, Any]:
    return {"id": FAKE_MODEL, "object": "model", "created": 0, "owned_by": "fake-openai"}


class FakeOpenAI:
    """A scripted OpenAI-compatible server on 127.0.0.1; use as a context manager.

    Attributes a test may set at any time (before or while the server runs):
    ``script`` (list of turns), ``responder`` (callable(messages) -> str | dict,
    overrides the script), ``default_reply``, ``api_key``, ``dim``, ``chunk_size``.
    """

    def __init__(
        self,
        *,
        script: Sequence[str | dict[str, Any]] | None = None,
        responder: Callable[[list[dict[str, Any]]], str | dict[str, Any]] | None = None,
        default_reply: str = "好的。",
        api_key: str | None = None,
        dim: int = 64,
        chunk_size: int = 3,
    ) -> None:
        self.script: list[str | dict[str, Any]] = list(script or [])
        self.responder = responder
        self.default_reply = default_reply
        self.api_key = api_key
        self.dim = dim
        self.chunk_size = chunk_size
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> "FakeOpenAI":
        if self._httpd is not None:
            raise RuntimeError("FakeOpenAI already started")
        self._stopping.clear()
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="FakeOpenAI", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()  # cut any scripted delay short
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- helpers
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeOpenAI is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def chat_requests(self) -> list[dict[str, Any]]:
        """The recorded requests to /v1/chat/completions, in order."""
        with self._lock:
            return [r for r in self.requests if r["path"].split("?")[0].rstrip("/") == "/v1/chat/completions"]

    def embedding_requests(self) -> list[dict[str, Any]]:
        """The recorded requests to /v1/embeddings, in order."""
        with self._lock:
            return [r for r in self.requests if r["path"].split("?")[0].rstrip("/") == "/v1/embeddings"]

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)

    def _next_turn(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        responder = self.responder
        if responder is not None:
            turn: Any = responder(messages)
        else:
            with self._lock:
                turn = self.script.pop(0) if self.script else self.default_reply
        if isinstance(turn, str):
            return {"content": turn}
        if isinstance(turn, dict):
            return turn
        raise TypeError(f"a script turn must be a str or a dict, not {type(turn).__name__}")
