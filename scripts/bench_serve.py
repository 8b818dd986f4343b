"""Serving throughput: 8 different manifestos at once through `hyperlora serve` (one batch, a LoRA per row) against
one PEFT model that swaps adapters per request (``set_adapter``, then ``generate`` one request at a time).

Run: .venv/bin/python scripts/bench_serve.py            (CPU: SmolLM2-135M, shipped checkpoint, 64 new tokens,
                                                          2 rounds; a few minutes on 2 cores)

Both sides answer the same 8 (manifesto, prompt) requests greedily with the same ``max_tokens``. The server runs
in-process and is called over real HTTP on 127.0.0.1, all 8 requests from their own threads at once; the adapters
are generated before the clock starts (the cache is warm), so both rates measure decoding with 8 adapters live.
The PEFT side loads the same 8 adapters, saved as PEFT directories, into one ``PeftModel`` (``load_adapter``).
Prints a table, appends a row per method to scripts/results/bench_serve_<device-slug>.csv, ends with one JSON line.
"""

import argparse
import datetime as dt
import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import torch
from machine import append_csv, device_name, slug

from hyperlora import load_base
from hyperlora.cli import quiet_libraries
from hyperlora.generation import chat_ids
from hyperlora.serve import Server

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "scripts" / "results"

MANIFESTOS = [
    "Answer in lowercase letters only.",
    "Be kind and patient. Always end your answer with the words 'stay curious!'",
    "You are a pirate. Speak like one in every reply.",
    "Keep every answer under three sentences. Honesty comes first.",
    "Write your answer as a bulleted list.",
    "Put a title in double angle brackets, like <<title>>, at the top of every answer.",
    "Never use commas. Stay optimistic about the future.",
    "Answer in ALL CAPITAL LETTERS. Refuse harmful requests kindly.",
]
PROMPTS = [
    "How do vaccines work?",
    "Give me a tip for learning to cook.",
    "What is the tallest mountain on Earth?",
    "Why is the sky blue?",
    "Name three uses for a paperclip.",
    "How should I prepare for a job interview?",
    "What makes a good friend?",
    "Explain what a black hole is.",
]






def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def served_round(server: Server, new_tokens: int) -> tuple[float, list[dict]]:
    """All 8 requests at once, each from its own thread; returns (seconds, responses in request order)."""
    out = [None] * len(MANIFESTOS)

    def one(i):
        out[i] = post(f"{server.url}/v1/chat/completions", {
            "messages": [{"role": "user", "content": PROMPTS[i]}], "manifesto": MANIFESTOS[i],
            "max_tokens": new_tokens, "temperature": 0})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(MANIFESTOS))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, out


def swapped_round(peft_model, tokenizer, new_tokens: int) -> tuple[float, list[str], int]:
    """The same requests one after another, switching the active PEFT adapter before each; greedy, as served.

    Returns (seconds, replies, generated tokens).
    """
    eos = peft_model.generation_config.eos_token_id
    eos = {tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])}
    replies, tokens = [], 0
    start = time.perf_counter()
    for i, prompt in enumerate(PROMPTS):
        peft_model.set_adapter(f"a{i}")
        ids = torch.tensor([chat_ids(tokenizer, prompt)])
        out = peft_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                  do_sample=False, temperature=None, top_p=None, top_k=None,
                                  pad_token_id=tokenizer.pad_token_id)
        new = out[0, ids.shape[1]:].tolist()
        tokens += sum(t not in eos for t in new)
        replies.append(tokenizer.decode(new, skip_special_tokens=True).strip())
    return time.perf_counter() - start, replies, tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=64, help="max_tokens per request (default 64)")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per method (default 2)")
    parser.add_argument("--out", type=Path, help="CSV path (default scripts/results/bench_serve_<device>.csv)")
    args = parser.parse_args()
    quiet_libraries()
    from peft import PeftModel

    name = device_name(torch.get_num_threads())
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    out = args.out or RESULTS / f"bench_serve_{slug(name)}.csv"
    print(f"{name} | torch {torch.__version__} | {len(MANIFESTOS)} manifestos, {args.new_tokens} new tokens, "
          f"{args.rounds} rounds", flush=True)

    server = Server(port=0, max_batch=len(MANIFESTOS))
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # Warm the adapter cache and save the same adapters for PEFT: the clock measures decoding only.
            dirs = [server.generated(m, 1.0)[0].adapter.save(Path(tmp) / f"a{i}") for i, m in enumerate(MANIFESTOS)]
            model, tokenizer = load_base()
            peft_model = PeftModel.from_pretrained(model, str(dirs[0]), adapter_name="a0").eval()
            for i, d in enumerate(dirs[1:], 1):
                peft_model.load_adapter(str(d), adapter_name=f"a{i}")

        served_round(server, 2)  # warm-up, both sides: first calls pay for lazy initialisation
        swapped_round(peft_model, tokenizer, 2)
        served_s, swapped_s, batches, served_tokens, swapped_tokens = [], [], [], 0, 0
        for r in range(args.rounds):
            seconds, responses = served_round(server, args.new_tokens)
            served_s.append(seconds)
            batches += [b["hyperlora"]["batch_size"] for b in responses]
            served_tokens += sum(b["usage"]["completion_tokens"] for b in responses)
            seconds, replies, tokens = swapped_round(peft_model, tokenizer, args.new_tokens)
            swapped_s.append(seconds)
            swapped_tokens += tokens
            print(f"round {r + 1}/{args.rounds}: served {served_s[-1]:.1f} s, swapped {swapped_s[-1]:.1f} s",
                  flush=True)
        served_texts = [b["choices"][0]["message"]["content"] for b in responses]
    finally:
        server.stop()

    same = sum(a == b for a, b in zip(served_texts, replies))
    n = len(MANIFESTOS) * args.rounds
    meta = dict(date=now, device=name, torch=torch.__version__, manifestos=len(MANIFESTOS),
                new_tokens=args.new_tokens, rounds=args.rounds)
    rows = [
        dict(meta, method="served_batch", seconds=round(sum(served_s), 2), req_per_s=n / sum(served_s),
             tok_per_s=served_tokens / sum(served_s), batch_sizes=" ".join(map(str, sorted(set(batches))))),
        dict(meta, method="peft_swap", seconds=round(sum(swapped_s), 2), req_per_s=n / sum(swapped_s),
             tok_per_s=swapped_tokens / sum(swapped_s), batch_sizes="1"),
    ]
    print(f"\n{'method':<14}{'requests':>9}{'seconds':>9}{'req/s':>8}{'tok/s':>8}  batch sizes")
    for row in rows:
        print(f"{row['method']:<14}{n:>9}{row['seconds']:>9.1f}{row['req_per_s']:>8.2f}{row['tok_per_s']:>8.1f}  "
              f"{row['batch_sizes']}")
    append_csv(rows, out)
    ratio = rows[0]["req_per_s"] / rows[1]["req_per_s"]
    print(f"served / swapped: {ratio:.2f}x; identical greedy replies in the last round: {same}/{len(MANIFESTOS)}")
    print(json.dumps({"bench": "serve", "date": now, "device": name, "new_tokens": args.new_tokens,
                      "rounds": args.rounds, "served_req_per_s": round(rows[0]["req_per_s"], 3),
                      "peft_swap_req_per_s": round(rows[1]["req_per_s"], 3), "ratio": round(ratio, 2),
                      "batch_sizes": sorted(set(batches)), "same_replies": same,
                      "csv": str(out.relative_to(REPO) if out.is_relative_to(REPO) else out)}))


if __name__ == "__main__":
    main()
