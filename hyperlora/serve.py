"""`hyperlora serve`: an OpenAI-style chat API where every request may bring its own manifesto (or a saved
adapter's name), and requests with different adapters decode together in one batch through per-example LoRA.

    hyperlora serve --port 8000
    curl -s localhost:8000/v1/chat/completions -d '{"messages": [{"role": "user", "content": "Hi"}],
                                                   "manifesto": "Answer in lowercase."}'

Threads: the HTTP server answers each connection on a thread of its own, which validates the request, finds or
makes its adapter and hands the chat to ``hyperlora.batcher.Batcher``, whose one worker thread owns the base model
and decodes up to ``max_batch`` waiting requests in one batch, one LoRA per row. The hypernetwork runs on the
request threads, once per (manifesto, strength): its adapters sit in an LRU cache keyed by their hash. A full queue
is a 503 with ``Retry-After``; a request the worker did not reach in time, a 504. Every error is JSON
``{"error": {"message", "type", "code"}}``, and the server keeps serving after it.

Routes: ``POST /v1/chat/completions``, ``POST /v1/adapters`` (generate or stack), ``GET /v1/adapters``,
``GET /v1/adapters/{name}/peft`` (a zip of the PEFT directory), ``POST /v1/verify`` (when given a verifier),
``GET /health``, and the studio page (``hyperlora/studio/``) at ``/``.
"""

import dataclasses
import hashlib
import io
import json
import mimetypes
import re
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import torch

from .adapter import Adapter
from .base import load_base
from .batcher import Batcher, DecodeError, Request, Unavailable
from .decode import lora_factors
from .errors import HyperLoRAError
from .generation import chat_ids
from .generator import HyperLoRA, file_hash

STUDIO = Path(__file__).parent / "studio"
MAX_BODY = 1 << 20  # bytes
MAX_MANIFESTO = 20_000  # characters: a longer text is refused, never silently cut
MAX_TOKENS = 512
MAX_STACK = 16
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class ApiError(Exception):
    """An answer other than 200: the status, and a message the client can act on."""

    TYPES = {400: "invalid_request_error", 404: "not_found_error", 405: "method_not_allowed", 408: "timeout_error",
             411: "invalid_request_error", 413: "request_too_large", 500: "internal_error", 503: "overloaded_error",
             504: "timeout_error"}

    def __init__(self, code: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.headers = code, message, headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.TYPES.get(self.code, "error"), "code": self.code}}


@dataclasses.dataclass
class _Entry:
    """An adapter ready to serve: its LoRA factors with the scale folded into B, and what it cost."""

    name: str
    key: str  # content hash: equal keys, equal weights
    adapter: Adapter
    factors: dict
    generation_ms: float | None
    context_tokens: int


class _Blocked:
    """The reply of a request whose prompt the guard blocked: nothing was decoded."""

    tokens: tuple = ()
    finish_reason = "guard"
    batch_size = 0


class Server:
    """The served model: a base LM, a hypernetwork, an adapter cache and one decoding worker, behind HTTP.

    Args:
        checkpoint: hypernetwork checkpoint directory (None: the one shipped for the base).
        base: base model name or HF directory (None: the checkpoint's).
        host, port: where to listen; port 0 picks a free port (``start`` returns it).
        adapters_dir: where named adapters are saved (``"save": true``) and loaded from at start; None: memory only.
        max_batch: most requests decoded together.
        max_queue: most requests waiting; beyond it a request gets 503 with ``Retry-After``.
        verifier: ``verifier(manifesto, prompt, reply) -> list[dict]`` behind ``POST /v1/verify`` (404 without).
        guard: what a chat request's ``"guard": true`` runs: ``check_prompt(text)`` before decoding and
            ``check_answer(reply, manifesto)`` after, each returning a verdict with ``allowed`` and ``as_dict()``,
            and the texts that stand in for a blocked prompt (``refusal(verdict)``) or a withheld reply
            (``withheld``). The CLI injects ``hyperlora.guard``; without one such a request gets 400.
        batch_wait_ms: a gap without a new request this long closes a batch that is not full.
        timeout_s: how long a request waits for its reply before a 504.
        cache_size: generated adapters kept (least recently used dropped first).
    """

    def __init__(self, checkpoint=None, base: str | None = None, host: str = "127.0.0.1", port: int = 8000,
                 adapters_dir=None, max_batch: int = 8, max_queue: int = 32, verifier=None, guard=None,
                 batch_wait_ms: float = 5.0, timeout_s: float = 120.0, cache_size: int = 64):
        if max_batch < 1 or max_queue < 1 or cache_size < 1:
            raise HyperLoRAError("max_batch, max_queue and cache_size must be at least 1")
        self.host, self.port, self.verifier, self.guard = host, port, verifier, guard
        self.timeout_s, self.cache_size = timeout_s, cache_size
        self.hyperlora = HyperLoRA.from_pretrained(checkpoint)
        self.checkpoint = str(checkpoint) if checkpoint else "shipped"
        self.base_name = base or self.hyperlora.config.base_model
        self.model, self.tokenizer = load_base(self.base_name)
        self.hyperlora.check_base(self.model)
        if torch.cuda.is_available():
            self.model.to("cuda")
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        eos = {self.tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        self.batcher = Batcher(self.model, eos, pad, max_batch, max_queue, batch_wait_ms / 1000)
        self.context = getattr(self.model.config, "max_position_embeddings", None)

        # Fast tokenizers are not safe to call from several threads at once ("Already borrowed").
        self._tok_lock = threading.Lock()
        self._gen_lock = threading.Lock()  # one hypernetwork forward at a time; a second asker waits for the first
        self._lock = threading.Lock()  # the cache and the named adapters
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._named: dict[str, _Entry] = {}
        self.adapters_dir = Path(adapters_dir) if adapters_dir else None
        if self.adapters_dir and self.adapters_dir.is_dir():
            for path in sorted(p for p in self.adapters_dir.iterdir() if (p / "adapter_config.json").exists()):
                if NAME.fullmatch(path.name):
                    adapter = Adapter.load(path)
                    key = "file:" + file_hash(path / "adapter_model.safetensors")
                    self._named[path.name] = self._entry(path.name, key, adapter)
        self._httpd, self._stopped = None, threading.Event()

    # ------------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> int:
        """Bind, start the decoding worker and the HTTP server on background threads; return the bound port."""
        try:
            self._httpd = _HTTPServer((self.host, self.port), _Handler)
        except OSError as e:
            raise HyperLoRAError(f"cannot listen on {self.host}:{self.port}: {e.strerror or e}") from e
        self._httpd.app = self
        self.port = self._httpd.server_address[1]
        self._stopped.clear()
        self.batcher.start()
        threading.Thread(target=self._httpd.serve_forever, name="hyperlora-http", daemon=True).start()
        return self.port

    def wait(self) -> None:
        """Block until ``stop`` (a Ctrl-C in the caller interrupts it)."""
        # Polled with sleep, not Event.wait: a KeyboardInterrupt landing inside Event.wait can leave the event's
        # internal lock held, and stop()'s set() then blocks forever (seen once under a loaded make test).
        while not self._stopped.is_set():
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop serving; requests still queued get a 503. Safe to call twice."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self.batcher.stop(timeout=self.timeout_s)
        self._httpd = None
        self._stopped.set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------------------------------------ adapters

    def adapter(self, name: str) -> Adapter:
        """The in-memory adapter called ``name`` (named, or a cached one by its hash name); KeyError if none."""
        return self._find(name).adapter

    def _find(self, name: str) -> _Entry:
        with self._lock:
            entry = self._named.get(name) or next((e for e in self._cache.values() if e.name == name), None)
        if entry is None:
            raise KeyError(name)
        return entry

    def _entry(self, name: str, key: str, adapter: Adapter, generation_ms=None) -> _Entry:
        if generation_ms is None:
            generation_ms = adapter.provenance.get("generation_ms")
        return _Entry(name, key, adapter, lora_factors(adapter), generation_ms, self.context_tokens(adapter.manifesto))

    def context_tokens(self, manifesto: str) -> int:
        """Tokens ``manifesto`` would cost every request as a system prompt (its own text; the system turn's
        markers are paid either way)."""
        if not manifesto.strip():
            return 0
        with self._tok_lock:
            return len(self.tokenizer(manifesto, add_special_tokens=False, verbose=False)["input_ids"])

    def generated(self, manifesto: str, strength: float) -> tuple[_Entry, bool]:
        """The adapter of (manifesto, strength), made by the hypernetwork on the first ask; returns (entry, cached)."""
        key = hashlib.sha256(json.dumps([manifesto, strength]).encode()).hexdigest()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key], True
        with self._gen_lock:
            with self._lock:  # made by another thread while this one waited for the lock
                if key in self._cache:
                    return self._cache[key], True
            try:
                adapter = self.hyperlora.generate_adapter(manifesto, strength=strength)
            except HyperLoRAError as e:
                raise ApiError(400, str(e)) from e
            entry = self._entry(key[:12], key, adapter)
            with self._lock:
                self._cache[key] = entry
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return entry, False

    def named(self, name: str) -> _Entry:
        try:
            return self._find(name)
        except KeyError:
            raise ApiError(404, f"no adapter named {name!r} (GET /v1/adapters lists them)") from None

    # ------------------------------------------------------------------------------------------------ decoding

    def reply(self, ids: list, entry: _Entry | None, max_new: int, temperature: float, seed: int | None):
        """Decode one chat in the worker's next batch; returns (text, batcher.Reply)."""
        request = Request(ids, (entry.key, entry.factors) if entry else None, max_new,
                          temperature if temperature > 0 else None, seed)
        try:
            reply = self.batcher.submit(request, timeout=self.timeout_s)
        except Unavailable as e:
            raise ApiError(503, str(e), {"Retry-After": str(e.retry_after)}) from None
        except TimeoutError:
            raise ApiError(504, f"no reply within {self.timeout_s:g} s; the server is overloaded") from None
        except DecodeError as e:
            raise ApiError(500, str(e)) from None
        with self._tok_lock:
            return self.tokenizer.decode(reply.tokens, skip_special_tokens=True).strip(), reply

    # ------------------------------------------------------------------------------------------------ routes

    def chat(self, body: dict) -> dict:
        """``POST /v1/chat/completions``."""
        messages = _messages(body.get("messages"))
        manifesto, name = body.get("manifesto"), body.get("adapter")
        if manifesto is not None and name is not None:
            raise ApiError(400, "give either a manifesto or an adapter name, not both")
        if body.get("strength") is not None and manifesto is None:
            raise ApiError(400, "strength goes with a manifesto (a named adapter has its strength built in)")
        if body.get("stream"):
            raise ApiError(400, "streaming is not supported; send stream: false")
        if body.get("n") not in (None, 1):
            raise ApiError(400, "only n = 1 is supported")
        max_new = _integer(body, "max_tokens", 128, 1, MAX_TOKENS)
        temperature = _number(body, "temperature", 0.0, 0.0, 100.0)
        seed = _integer(body, "seed", None, 0, 2**63 - 1)
        model = body.get("model") if body.get("model") is not None else self.base_name
        if not isinstance(model, str):
            raise ApiError(400, f"model must be a string, got {_show(model)}")
        guarded = body.get("guard", False)
        if not isinstance(guarded, bool):
            raise ApiError(400, f"guard must be true or false, got {_show(guarded)}")
        if guarded and self.guard is None:
            raise ApiError(400, "this server has no guard")

        entry, cached = None, False
        if manifesto is not None:
            entry, cached = self.generated(_manifesto(manifesto), _number(body, "strength", 1.0, 0.0, 10.0))
        elif name is not None:
            entry, cached = self.named(_name(name, "adapter")), True

        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system") or None
        with self._tok_lock:
            ids = chat_ids(self.tokenizer, [m for m in messages if m["role"] != "system"], system)
        if self.context and len(ids) + max_new > self.context:
            raise ApiError(400, f"the prompt is {len(ids)} tokens; with max_tokens {max_new} it exceeds the "
                                f"model's context of {self.context}")
        verdict = None
        if guarded:  # before any decoding: a blocked prompt costs a millisecond
            verdict = self.guard.check_prompt(next(m["content"] for m in reversed(messages) if m["role"] == "user"))
        if verdict is not None and not verdict.allowed:
            text, reply = self.guard.refusal(verdict), _Blocked()
            verdict = {"stage": "prompt", **verdict.as_dict()}
        else:
            text, reply = self.reply(ids, entry, max_new, temperature, seed)
            if guarded:
                rules_text = "\n".join(t for t in ((entry.adapter.manifesto if entry else ""), system or "") if t)
                verdict = self.guard.check_answer(text, rules_text)
                if not verdict.allowed:
                    text, reply.finish_reason = self.guard.withheld, "guard"
                verdict = {"stage": "answer", **verdict.as_dict()}
        prompt_tokens, completion_tokens = len(ids), len(reply.tokens)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": reply.finish_reason}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            "hyperlora": {
                "adapter": entry.name if entry else None,
                "generation_ms": entry.generation_ms if entry else None,
                "cached": cached,
                "context_tokens_saved": entry.context_tokens if entry else 0,
                "batch_size": reply.batch_size,
                "guard": verdict,
            },
        }

    def make_adapter(self, body: dict) -> dict:
        """``POST /v1/adapters``: generate one adapter, or stack several, and keep it under a name."""
        name = _name(body["name"], "name") if body.get("name") is not None else None
        save = body.get("save", False)
        if not isinstance(save, bool):
            raise ApiError(400, f"save must be true or false, got {_show(save)}")
        if save and self.adapters_dir is None:
            raise ApiError(400, "this server has no adapters directory to save into (start it with --adapters-dir)")
        if (body.get("manifesto") is None) == (body.get("stack") is None):
            raise ApiError(400, "give either a manifesto or a stack")
        truncation_error = None
        if body.get("manifesto") is not None:
            entry, _ = self.generated(_manifesto(body["manifesto"]), _number(body, "strength", 1.0, 0.0, 10.0))
        else:
            entry = self._stack(body)
            truncation_error = entry.adapter.provenance.get("truncation_error")
        name = name or entry.name
        entry = dataclasses.replace(entry, name=name)
        if save:
            entry.adapter.save(self.adapters_dir / name, force=True)
        with self._lock:
            self._named[name] = entry
        return {"name": name, "rank": entry.adapter.rank, "modules": len(entry.adapter.weights),
                "generation_ms": entry.generation_ms, "context_tokens_saved": entry.context_tokens,
                "truncation_error": truncation_error, "manifesto": entry.adapter.manifesto}

    def _stack(self, body: dict) -> _Entry:
        parts = body["stack"]
        if not isinstance(parts, list) or not 1 <= len(parts) <= MAX_STACK:
            raise ApiError(400, f"stack must be a list of 1 to {MAX_STACK} parts, got {_show(parts)}")
        rank = _integer(body, "rank", None, 1, 1024)
        entries, weights = [], []
        for i, part in enumerate(parts):
            if not isinstance(part, dict) or (part.get("manifesto") is None) == (part.get("adapter") is None):
                raise ApiError(400, f"stack[{i}] must be {{\"manifesto\": text}} or {{\"adapter\": name}}, with an "
                                    f"optional strength")
            weights.append(_number(part, "strength", 1.0, -10.0, 10.0, f"stack[{i}].strength"))
            if part.get("manifesto") is not None:  # made at strength 1: the part's strength is its weight
                entries.append(self.generated(_manifesto(part["manifesto"], f"stack[{i}].manifesto"), 1.0)[0])
            else:
                entries.append(self.named(_name(part["adapter"], f"stack[{i}].adapter")))
        start = time.perf_counter()
        try:
            adapter = Adapter.compose([e.adapter for e in entries], weights=weights, rank=rank)
        except HyperLoRAError as e:
            raise ApiError(400, f"cannot stack these adapters: {e}") from e
        ms = sum(e.generation_ms or 0.0 for e in entries) + (time.perf_counter() - start) * 1000
        key = hashlib.sha256(json.dumps([[e.key for e in entries], weights, rank]).encode()).hexdigest()
        return self._entry(key[:12], key, adapter, generation_ms=round(ms, 2))

    def list_adapters(self) -> dict:
        with self._lock:
            named = list(self._named.values())
        return {"adapters": [{"name": e.name, "rank": e.adapter.rank, "manifesto": e.adapter.manifesto}
                             for e in named]}

    def peft_zip(self, name: str) -> bytes:
        """The named adapter's PEFT directory as a zip (one folder, ``name/``)."""
        adapter = self.named(name).adapter
        buffer = io.BytesIO()
        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            out = adapter.save(Path(tmp) / name)
            for path in sorted(out.iterdir()):
                z.write(path, f"{name}/{path.name}")
        return buffer.getvalue()

    def verify(self, body: dict) -> dict:
        if self.verifier is None:
            raise ApiError(404, "this server has no verifier")
        fields = [body.get(k) for k in ("manifesto", "prompt", "reply")]
        if not all(isinstance(f, str) for f in fields):
            raise ApiError(400, "verify needs manifesto, prompt and reply, all strings")
        return {"rules": self.verifier(*fields)}

    def health(self) -> dict:
        return {"status": "ok", "base": self.base_name, "checkpoint": self.checkpoint,
                "checkpoint_hash": self.hyperlora.checkpoint_hash, "queue": self.batcher.pending()}


# ---------------------------------------------------------------------------------------------------- validation


def _show(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(body: dict, key: str, default, lo: float, hi: float, label: str | None = None) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ApiError(400, f"{label or key} must be a number in [{lo:g}, {hi:g}], got {_show(value)}")
    return float(value)


def _integer(body: dict, key: str, default, lo: int, hi: int):
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ApiError(400, f"{key} must be an integer in [{lo}, {hi}], got {_show(value)}")
    return value


def _manifesto(value, label: str = "manifesto") -> str:
    if not isinstance(value, str):
        raise ApiError(400, f"{label} must be a string, got {_show(value)}")
    if not value.strip():
        raise ApiError(400, f"{label} is empty")
    if len(value) > MAX_MANIFESTO:
        raise ApiError(413, f"{label} is {len(value)} characters; the limit is {MAX_MANIFESTO}")
    return value


def _name(value, label: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ApiError(400, f"{label} must be 1-64 of A-Z a-z 0-9 _ . -, got {_show(value)}")
    return value


def _messages(value) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise ApiError(400, "messages must be a non-empty list of {\"role\", \"content\"} objects")
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") or \
                not isinstance(m.get("content"), str):
            raise ApiError(400, f"messages[{i}] must be {{\"role\": system|user|assistant, \"content\": string}}, "
                                f"got {_show(m)}")
    if not any(m["role"] == "user" and m["content"].strip() for m in value):
        raise ApiError(400, "messages need a user message with non-empty content")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _one_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


# ---------------------------------------------------------------------------------------------------- HTTP


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of connections waits in the backlog instead of being refused
    app: Server


_GET = {"/health": Server.health, "/v1/adapters": Server.list_adapters}
_POST = {"/v1/chat/completions": Server.chat, "/v1/adapters": Server.make_adapter, "/v1/verify": Server.verify}
_PEFT = re.compile(r"/v1/adapters/([^/]+)/peft")


class _Handler(BaseHTTPRequestHandler):
    server_version = "hyperlora"
    timeout = 60  # seconds: a client that stops sending frees its thread instead of holding it
    server: _HTTPServer

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass  # no access log: the one line a person wants is the listening address; errors are logged apart

    def send_error(self, code, message=None, explain=None):
        # The base class answers malformed request lines and unknown methods in HTML; clients here read JSON.
        self.close_connection = True
        self._json(ApiError(code, message or HTTPStatus(code).phrase).body(), code)

    def _dispatch(self, method: str):
        app = self.server.app
        path = urlsplit(self.path).path
        headers = {}
        try:
            peft = _PEFT.fullmatch(path)
            if path in _POST and method == "POST":
                body = self._body()
                self._json(_POST[path](app, body))
            elif path in _GET and method == "GET":
                self._json(_GET[path](app))
            elif peft and method == "GET":
                name = _name(unquote(peft.group(1)), "adapter name")
                self._send(200, app.peft_zip(name), "application/zip",
                           {"Content-Disposition": f'attachment; filename="{name}.zip"'})
            elif path in _POST or path in _GET or peft:
                allowed = "POST" if path in _POST else "GET"
                raise ApiError(405, f"{method} is not allowed on {path}; use {allowed}", {"Allow": allowed})
            elif method == "GET":
                self._static(path)
            else:
                raise ApiError(404, f"no route {method} {path}")
            return
        except ApiError as e:
            error, headers = e, e.headers
        except Exception as e:  # a bug: one line to the client, the traceback once to the server's log
            print(f"hyperlora serve: {method} {path} failed:", file=sys.stderr)
            traceback.print_exc()
            error = ApiError(500, f"internal error: {_one_line(e)}")
        self._json(error.body(), error.code, headers)

    def _body(self) -> dict:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise ApiError(411, "chunked bodies are not supported; send Content-Length")
        try:
            length = int(self.headers.get("Content-Length", 0))
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise ApiError(400, "Content-Length must be a non-negative integer")
        if length > MAX_BODY:
            self.close_connection = True
            if length <= 8 * MAX_BODY:  # read it away, so the client gets to read the answer before the close
                left = length
                while left > 0 and (chunk := self.rfile.read(min(1 << 16, left))):
                    left -= len(chunk)
            raise ApiError(413, f"the body is {length} bytes; the limit is {MAX_BODY}")
        try:
            raw = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            raise ApiError(408, "the request body did not arrive in time") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ApiError(400, f"the body is not UTF-8 (byte {e.start}: {raw[e.start]:#x})") from None
        try:
            body = json.loads(text, parse_constant=_reject_constant)
        except ValueError as e:
            raise ApiError(400, f"malformed JSON: {str(e).splitlines()[0]}") from None
        if not isinstance(body, dict):
            raise ApiError(400, f"the body must be a JSON object, got {_show(body)}")
        return body

    def _static(self, path: str):
        root = STUDIO.resolve()
        try:
            target = (root / (unquote(path).lstrip("/") or "index.html")).resolve()
        except (OSError, ValueError):
            target = None
        if target is None or not target.is_relative_to(root) or not target.is_file():
            raise ApiError(404, "the studio page is not installed" if path == "/" else f"no route GET {path}")
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
            kind += "; charset=utf-8"
        self._send(200, target.read_bytes(), kind)

    def _json(self, payload: dict, code: int = 200, headers: dict | None = None):
        self._send(code, json.dumps(payload).encode(), "application/json", headers)

    def _send(self, code: int, data: bytes, kind: str, headers: dict | None = None):
        try:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client left; nothing to tell it
