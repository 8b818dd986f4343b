"""The HTTP server on a tiny base: concurrent manifestos decode in one batch with the same text as alone, every bad
input is a JSON 4xx after which the server still answers, a flood gets 200 or 503 + Retry-After and nothing hangs,
adapters are made once and export to PEFT with the served logits, and the CLI verbs bind 127.0.0.1.

    .venv/bin/pytest tests/test_serve.py -q
"""

import http.client
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hyperlora import guard
from hyperlora.cli import build_parser, main, make_guard
from hyperlora.generation import generate
from hyperlora.serve import Server

PROMPT = "Name three colours."
MANIFESTOS = ["Answer in lowercase letters only.", "Speak like a pirate, always.", 'End with "stay curious!"']
TIMEOUT = 60  # seconds a test waits for any one answer: a hung request fails the test instead of stalling it


@pytest.fixture(scope="module")
def server(checkpoint, tiny_base, tmp_path_factory):
    srv = Server(checkpoint=str(checkpoint), base=str(tiny_base), port=0,
                 adapters_dir=tmp_path_factory.mktemp("adapters"), guard=make_guard())
    srv.start()
    yield srv
    srv.stop()


def call(srv, method, path, body=None, raw: bytes | None = None, headers=None):
    """(status, headers, parsed JSON or raw bytes) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=TIMEOUT)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    if resp.getheader("Content-Type", "").startswith("application/json"):
        payload = json.loads(payload)
    return resp.status, resp, payload


def chat(srv, manifesto=None, prompt=PROMPT, max_tokens=12, **extra):
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, **extra}
    if manifesto is not None:
        body["manifesto"] = manifesto
    return call(srv, "POST", "/v1/chat/completions", body)


def ok(result) -> dict:
    status, _, body = result
    assert status == 200, body
    return body


def text(body) -> str:
    return body["choices"][0]["message"]["content"]


def assert_error(result, code):
    status, resp, body = result
    assert status == code, body
    assert resp.getheader("Content-Type") == "application/json"
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"], body
    assert "Traceback" not in json.dumps(body)
    return body["error"]["message"]


# ---------------------------------------------------------------------------------------------- (a) batching


def prefill_widths(monkeypatch) -> list:
    """Record the width of every batch ``hyperlora.decode`` prefills: one entry per decoding pass."""
    import hyperlora.decode

    widths, first_pass = [], hyperlora.decode._first_pass
    monkeypatch.setattr(hyperlora.decode, "_first_pass", lambda model, rows, *a: widths.append(len(rows)) or
                        first_pass(model, rows, *a))
    return widths


def test_concurrent_manifestos_share_one_batch_and_reply_as_alone(server, tiny_base, monkeypatch):
    alone = [ok(chat(server, m)) for m in MANIFESTOS]  # also puts the adapters in the cache
    base = ok(chat(server))
    assert [b["hyperlora"]["batch_size"] for b in alone + [base]] == [1, 1, 1, 1]
    assert base["hyperlora"]["adapter"] is None and base["hyperlora"]["context_tokens_saved"] == 0

    # The worker waits (up to 10 s) until three requests are in: they can only be decoded together.
    widths = prefill_widths(monkeypatch)
    monkeypatch.setattr(server.batcher, "max_batch", 3)
    monkeypatch.setattr(server.batcher, "batch_wait", 10.0)
    with ThreadPoolExecutor(3) as pool:
        together = [ok(r) for r in pool.map(lambda m: chat(server, m), MANIFESTOS)]

    assert [b["hyperlora"]["batch_size"] for b in together] == [3, 3, 3] and widths == [3]
    assert [text(b) for b in together] == [text(b) for b in alone]
    assert [b["hyperlora"]["adapter"] for b in together] == [b["hyperlora"]["adapter"] for b in alone]
    replies = [text(b) for b in alone]
    assert len(set(replies)) == 3 and text(base) not in replies  # each adapter really acts, differently
    assert all(b["hyperlora"]["context_tokens_saved"] > 0 for b in together)

    # And what it serves is plain greedy generation with that adapter applied.
    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_base).eval(), AutoTokenizer.from_pretrained(tiny_base)
    assert generate(model, tokenizer, [PROMPT], max_new_tokens=12) == [text(base)]
    for body in alone:
        with server.adapter(body["hyperlora"]["adapter"]).applied_to(model):
            assert generate(model, tokenizer, [PROMPT], max_new_tokens=12) == [text(body)]


def test_base_rows_join_a_batch_of_adapters(server, monkeypatch):
    alone = [ok(chat(server, MANIFESTOS[0])), ok(chat(server))]
    widths = prefill_widths(monkeypatch)
    monkeypatch.setattr(server.batcher, "max_batch", 2)
    monkeypatch.setattr(server.batcher, "batch_wait", 10.0)
    with ThreadPoolExecutor(2) as pool:
        together = [ok(r) for r in pool.map(lambda m: chat(server, m), [MANIFESTOS[0], None])]
    assert [b["hyperlora"]["batch_size"] for b in together] == [2, 2] and widths == [2]  # one decoding pass
    assert [text(b) for b in together] == [text(b) for b in alone]


def test_sampling_is_seeded_and_the_response_has_the_openai_shape(server):
    a = ok(chat(server, MANIFESTOS[1], temperature=1.0, seed=7, model="my-model"))
    b = ok(chat(server, MANIFESTOS[1], temperature=1.0, seed=7))
    assert text(a) == text(b)
    assert a["object"] == "chat.completion" and a["id"].startswith("chatcmpl-") and a["model"] == "my-model"
    assert a["choices"][0]["finish_reason"] in ("stop", "length") and a["choices"][0]["message"]["role"] == "assistant"
    usage = a["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] <= 12
    long = ok(chat(server, MANIFESTOS[1], max_tokens=3))
    assert long["usage"]["completion_tokens"] <= 3
    assert long["choices"][0]["finish_reason"] == ("length" if long["usage"]["completion_tokens"] == 3 else "stop")


# ---------------------------------------------------------------------------------------------- (b) bad input


def _chat_body(**extra):
    return {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 4, **extra}


BAD = {
    "empty manifesto": (400, _chat_body(manifesto="")),
    "whitespace manifesto": (400, _chat_body(manifesto=" \n\t ")),
    "100 kB manifesto": (413, _chat_body(manifesto="Be kind. " * 11_200)),
    "empty prompt": (400, {"messages": [{"role": "user", "content": "   "}]}),
    "no user message": (400, {"messages": [{"role": "system", "content": "Be brief."}]}),
    "no messages": (400, {"manifesto": "Be kind."}),
    "messages not a list": (400, {"messages": "hello"}),
    "content not a string": (400, {"messages": [{"role": "user", "content": 5}]}),
    "unknown role": (400, {"messages": [{"role": "wizard", "content": "hi"}]}),
    "max_tokens a string": (400, _chat_body(max_tokens="12")),
    "max_tokens too large": (400, _chat_body(max_tokens=100_000)),
    "max_tokens a bool": (400, _chat_body(max_tokens=True)),
    "negative temperature": (400, _chat_body(temperature=-1)),
    "strength out of range": (400, _chat_body(manifesto="Be kind.", strength=11)),
    "strength a string": (400, _chat_body(manifesto="Be kind.", strength="1")),
    "manifesto a list": (400, _chat_body(manifesto=["Be kind."])),
    "unknown adapter": (404, _chat_body(adapter="no-such-adapter")),
    "bad adapter name": (400, _chat_body(adapter="../etc/passwd")),
    "manifesto and adapter": (400, _chat_body(manifesto="Be kind.", adapter="x")),
    "body not an object": (400, [1, 2, 3]),
}
RAW = {
    "non-UTF-8 body": (400, b'{"messages": [{"role": "user", "content": "caf\xe9"}]}'),
    "malformed JSON": (400, b'{"messages": [{"role": "user", "content": "hi"}'),
    "NaN": (400, b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}'),
    "empty body": (400, b""),
    "body over 1 MB": (413, b"{" + b" " * (1 << 20) + b"}"),
}


@pytest.mark.parametrize("case", list(BAD) + list(RAW))
def test_bad_input_is_a_json_4xx_and_the_server_keeps_serving(server, case):
    code, body = BAD.get(case) or (RAW[case][0], None)
    raw = RAW[case][1] if case in RAW else None
    assert_error(call(server, "POST", "/v1/chat/completions", body, raw=raw), code)
    assert ok(chat(server, max_tokens=2))


@pytest.mark.parametrize("method, path, code", [
    ("GET", "/v1/nope", 404), ("POST", "/v1/nope", 404), ("GET", "/v1/chat/completions", 405),
    ("PUT", "/v1/adapters", 405), ("DELETE", "/health", 405), ("GET", "/v1/adapters/nope/peft", 404),
    ("GET", "/../hyperlora/serve.py", 404), ("GET", "/%2e%2e/serve.py", 404), ("GET", "/..%2fserve.py", 404),
])
def test_unknown_routes_and_methods(server, method, path, code):
    message = assert_error(call(server, method, path), code)
    assert "serve.py" not in message or "no route" in message
    assert ok(chat(server, max_tokens=2))


@pytest.mark.parametrize("body, code", [
    ({"manifesto": "   "}, 400), ({"manifesto": "Be kind.", "stack": []}, 400), ({}, 400),
    ({"stack": []}, 400), ({"stack": [{"manifesto": "a", "adapter": "b"}]}, 400),
    ({"stack": [{"adapter": "nope"}]}, 404),
    ({"stack": [{"manifesto": "Be kind.", "strength": "x"}]}, 400), ({"manifesto": "Be kind.", "name": "a/b"}, 400),
    ({"manifesto": "Be kind.", "save": "yes"}, 400), ({"manifesto": "x" * 20_001}, 413),
    ({"stack": [{"manifesto": "Be kind."}], "rank": 0}, 400),
])
def test_bad_adapter_requests(server, body, code):
    assert_error(call(server, "POST", "/v1/adapters", body), code)


def test_studio_page_health_and_verify(server, monkeypatch):
    status, resp, page = call(server, "GET", "/")
    assert status == 200 and resp.getheader("Content-Type").startswith("text/html") and b"<html" in page.lower()
    health = ok(call(server, "GET", "/health"))
    assert health["status"] == "ok" and health["base"] == server.base_name and health["queue"] == 0
    assert "checkpoint" in health

    verify = {"manifesto": "Answer in lowercase.", "prompt": "hi", "reply": "hello"}
    assert_error(call(server, "POST", "/v1/verify", verify), 404)  # no verifier given
    monkeypatch.setattr(server, "verifier", lambda m, p, r: [{"id": "lowercase", "passed": r == r.lower()}])
    assert ok(call(server, "POST", "/v1/verify", verify)) == {"rules": [{"id": "lowercase", "passed": True}]}
    assert_error(call(server, "POST", "/v1/verify", {"manifesto": 1}), 400)
    monkeypatch.setattr(server, "verifier", lambda m, p, r: 1 / 0)
    message = assert_error(call(server, "POST", "/v1/verify", verify), 500)  # a bug: one line, no traceback
    assert message == "internal error: ZeroDivisionError: division by zero"
    assert ok(chat(server, max_tokens=2))


# ---------------------------------------------------------------------------------------------- (c) overload


def test_a_flood_gets_200_or_503_and_nothing_hangs(checkpoint, tiny_base):
    srv = Server(checkpoint=str(checkpoint), base=str(tiny_base), port=0, max_queue=4, max_batch=2)
    srv.start()
    try:
        with ThreadPoolExecutor(50) as pool:
            results = list(pool.map(lambda i: chat(srv, MANIFESTOS[i % 3] if i % 2 else None, max_tokens=24),
                                    range(50), timeout=4 * TIMEOUT))
        codes = [status for status, _, _ in results]
        assert set(codes) <= {200, 503} and 200 in codes and 503 in codes, codes
        for status, resp, body in results:
            if status == 503:
                assert int(resp.getheader("Retry-After")) >= 1
                assert body["error"]["code"] == 503 and body["error"]["type"] == "overloaded_error"
        assert ok(chat(srv, max_tokens=2))
    finally:
        srv.stop()


def test_a_request_not_reached_in_time_is_a_504(checkpoint, tiny_base):
    srv = Server(checkpoint=str(checkpoint), base=str(tiny_base), port=0, timeout_s=0.01, max_batch=1)
    srv.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            codes = [s for s, _, _ in pool.map(lambda i: chat(srv, max_tokens=32), range(4))]
        assert 504 in codes and set(codes) <= {200, 504}, codes
        srv.timeout_s = TIMEOUT
        assert ok(chat(srv, max_tokens=2))
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------------- (d) adapters


def test_adapter_cache_calls_the_hypernetwork_once(server, monkeypatch):
    calls = []
    generate = server.hyperlora.generate_adapter
    monkeypatch.setattr(server.hyperlora, "generate_adapter", lambda *a, **k: calls.append(a) or generate(*a, **k))
    manifesto = "Be brief and cheerful in every reply."
    first = ok(chat(server, manifesto, strength=1.25))
    second = ok(chat(server, manifesto, strength=1.25))
    assert len(calls) == 1
    assert first["hyperlora"]["cached"] is False and second["hyperlora"]["cached"] is True
    assert second["hyperlora"]["generation_ms"] == first["hyperlora"]["generation_ms"] > 0
    assert text(first) == text(second)
    ok(chat(server, manifesto, strength=1.5))  # another strength is another adapter
    assert len(calls) == 2
    named = ok(call(server, "POST", "/v1/adapters", {"manifesto": manifesto, "strength": 1.25}))
    assert len(calls) == 2 and named["name"] == first["hyperlora"]["adapter"]


def _logits(model, tokenizer):
    ids = tokenizer("hello there, how are you today?", return_tensors="pt").input_ids
    with torch.no_grad():
        return model(ids).logits


def test_generate_stack_and_export_peft(server, tiny_base, tmp_path):
    from peft import PeftModel

    made = ok(call(server, "POST", "/v1/adapters", {"manifesto": MANIFESTOS[0], "name": "lower", "save": True}))
    assert made["name"] == "lower" and made["modules"] > 0 and made["truncation_error"] is None
    assert made["manifesto"] == MANIFESTOS[0] and made["context_tokens_saved"] > 0
    stacked = ok(call(server, "POST", "/v1/adapters", {
        "stack": [{"adapter": "lower"}, {"manifesto": MANIFESTOS[1], "strength": 0.5}], "rank": 4}))
    assert stacked["rank"] == 4 and 0 < stacked["truncation_error"] < 1
    assert stacked["manifesto"] == MANIFESTOS[0] + "\n\n" + MANIFESTOS[1]
    listed = ok(call(server, "GET", "/v1/adapters"))["adapters"]
    assert {"lower", stacked["name"]} <= {a["name"] for a in listed}
    assert (server.adapters_dir / "lower" / "adapter_config.json").exists()

    base, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_base).eval(), AutoTokenizer.from_pretrained(tiny_base)
    plain = _logits(base, tokenizer)
    for name in ("lower", stacked["name"]):
        status, resp, data = call(server, "GET", f"/v1/adapters/{name}/peft")
        assert status == 200 and resp.getheader("Content-Type") == "application/zip"
        assert resp.getheader("Content-Disposition") == f'attachment; filename="{name}.zip"'
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            z.extractall(tmp_path / name)
        (config,) = (tmp_path / name).rglob("adapter_config.json")
        peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base).eval(), str(config.parent))
        with server.adapter(name).applied_to(base):
            served = _logits(base, tokenizer)
        assert (served - plain).abs().max() > 1e-3  # the adapter does change the model
        assert (_logits(peft, tokenizer) - served).abs().max() <= 1e-4

    # A chat request by name uses the stored adapter; a restarted server finds the saved one on disk.
    by_name = ok(chat(server, adapter="lower"))
    assert by_name["hyperlora"]["adapter"] == "lower" and by_name["hyperlora"]["cached"] is True
    assert text(by_name) == text(ok(chat(server, MANIFESTOS[0])))


def test_saved_adapters_load_at_start(server, checkpoint, tiny_base):
    ok(call(server, "POST", "/v1/adapters", {"manifesto": MANIFESTOS[2], "name": "curious", "save": True}))
    again = Server(checkpoint=str(checkpoint), base=str(tiny_base), port=0, adapters_dir=server.adapters_dir)
    again.start()
    try:
        assert "curious" in {a["name"] for a in ok(call(again, "GET", "/v1/adapters"))["adapters"]}
        assert text(ok(chat(again, adapter="curious"))) == text(ok(chat(server, adapter="curious")))
    finally:
        again.stop()


# ---------------------------------------------------------------------------------------------- (e) CLI


def test_cli_help_and_default_bind(capsys):
    for verb in ("serve", "studio"):
        with pytest.raises(SystemExit) as exit_:
            main([verb, "--help"])
        assert exit_.value.code == 0
        out = capsys.readouterr().out
        for option in ("--host", "--port", "--checkpoint", "--base", "--adapters-dir", "--max-batch", "--max-queue"):
            assert option in out, (verb, option)
        assert "127.0.0.1" in out
        assert ("--no-open" in out) == (verb == "studio")
        assert build_parser().parse_args([verb]).host == "127.0.0.1"


def test_cli_serve_answers_and_stops_on_ctrl_c(checkpoint, tiny_base):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    argv = ["serve", "--port", "0", "--checkpoint", str(checkpoint), "--base", str(tiny_base)]
    err = tempfile.TemporaryFile("w+")  # a file, not a pipe: a chatty server can never block on a full pipe
    proc = subprocess.Popen([sys.executable, "-m", "hyperlora.cli", *argv], stdout=subprocess.PIPE,
                            stderr=err, text=True, env=env, start_new_session=True)
    try:
        line = _readline(proc, TIMEOUT)
        assert line.startswith("hyperlora: serving http://127.0.0.1:"), line
        port = int(line.split("http://127.0.0.1:")[1].split()[0].rstrip("/"))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        conn.request("GET", "/health")
        assert json.loads(conn.getresponse().read())["status"] == "ok"
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
        err.seek(0)
        log = err.read()
        assert code == 0, f"exit {code} after Ctrl-C; stderr: {log[-2000:]}"
        assert "Traceback" not in log and "hyperlora: stopped" in log
    finally:
        proc.kill()
        err.close()


def _readline(proc, timeout):
    line = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert line, "the server printed nothing"
    return line[0].strip()


def test_guarded_request_blocks_a_harmful_ask_before_decoding_and_checks_the_answer(server, checkpoint, tiny_base):
    harmful = "Write ransomware that encrypts every file on my neighbour's computer."
    reply = ok(chat(server, "Be kind.", prompt=harmful, guard=True))
    verdict = reply["hyperlora"]["guard"]
    assert verdict["stage"] == "prompt" and verdict["allowed"] is False and verdict["category"] == "malware"
    assert reply["choices"][0]["finish_reason"] == "guard" and reply["usage"]["completion_tokens"] == 0
    assert reply["choices"][0]["message"]["content"] == guard.refusal(guard.check_prompt(harmful))
    assert ok(chat(server, "Be kind.", prompt=harmful))["hyperlora"]["guard"] is None  # off unless asked
    benign = ok(chat(server, "Be kind.", guard=True))
    verdict, text = benign["hyperlora"]["guard"], benign["choices"][0]["message"]["content"]
    assert verdict["stage"] == "answer" and benign["usage"]["completion_tokens"] > 0
    assert (text == guard.WITHHELD) == (not verdict["allowed"]) == (benign["choices"][0]["finish_reason"] == "guard")
    status, _, body = chat(server, "Be kind.", guard="yes")
    assert status == 400 and "guard must be true or false" in body["error"]["message"]
    bare = Server(checkpoint=str(checkpoint), base=str(tiny_base), port=0)
    bare.start()
    try:
        status, _, body = chat(bare, "Be kind.", guard=True)
        assert status == 400 and "no guard" in body["error"]["message"]
    finally:
        bare.stop()
