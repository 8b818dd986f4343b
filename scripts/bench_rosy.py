"""Rosy pipeline throughput on this CPU, one thread: scoring (docs/s) and the three LM rewriters, plus a
projection to FineWeb's size.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_rosy.py [--score-docs 512] [--rewrite-docs 16]

Documents are entries of the Debian `fortunes` package (`apt-get install fortunes`), the corpus of
`data_gen/rosy/reports/fortunes`. Scoring is timed twice: on the fortunes as they are (~40 tokens) and on
"web-length" documents made by joining fortunes until each fills the encoder's 256-token window, which is what
every FineWeb document costs (their mean is ~680 tokens, and the scorer reads the first 256). Rewriting is timed on
the lowest-rosiness fortunes. Prints a table, ends with one JSON line, and appends a row per measurement to
scripts/results/bench_rosy_<device>.csv.
"""

import argparse
import csv
import datetime
import json
import re
import time
from pathlib import Path

import numpy as np
import torch
from hyperlora.data_gen.rosy.pool import FORTUNES_DIR, REPORT_FORTUNE_FILES
from hyperlora.data_gen.rosy.readers import read_fortune
from hyperlora.data_gen.rosy.rewrite import LMRewriter
from hyperlora.data_gen.rosy.steps import Score
from machine import device_name

from hyperlora.cli import quiet_libraries

ROOT = Path(__file__).resolve().parents[1]
# FineWeb (v1): ~15T GPT-2 tokens in ~22B documents. The rewrite share is an assumption: the share of fortunes
# this run filters is printed beside it for comparison.
WEB_DOCS, WEB_TOKENS = 22e9, 15e12




def fortunes() -> list[str]:
    texts = []
    for name in REPORT_FORTUNE_FILES:
        texts += [r["text"] for r in read_fortune(FORTUNES_DIR / name, name) if r["text"] and r["text"].strip()]
    return texts


def web_length(texts: list[str], tokenizer, n: int, window: int = 256) -> list[str]:
    """Join consecutive texts until each document has at least ``window`` tokens."""
    docs, current = [], []
    for t in texts:
        current.append(t)
        if len(tokenizer(" ".join(current), add_special_tokens=False)["input_ids"]) >= window:
            docs.append(" ".join(current))
            current = []
            if len(docs) == n:
                break
    return docs


def time_scoring(score: Score, texts: list[str]) -> float:
    score.score(texts[:32])  # warm-up
    start = time.perf_counter()
    score.score(texts)
    return len(texts) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--score-docs", type=int, default=512)
    parser.add_argument("--rewrite-docs", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--rewrite-share", type=float, default=0.2, help="share of web docs assumed rewritten")
    args = parser.parse_args()
    torch.set_num_threads(1)
    quiet_libraries()

    texts = fortunes()
    score = Score()
    tok = score.embedder.encoder.tokenizer
    short = texts[: args.score_docs]
    web = web_length(texts, tok, args.score_docs)
    short_tokens = float(np.mean([len(tok(t, truncation=True, max_length=256)["input_ids"]) for t in short]))
    rows = [{"what": "score", "docs": len(short), "tokens_per_doc": short_tokens,
             "docs_per_s": time_scoring(score, short)},
            {"what": "score_web_length", "docs": len(web), "tokens_per_doc": 256.0,
             "docs_per_s": time_scoring(score, web)}]

    rosiness, emb = score.score(texts)
    threshold = score.head.threshold
    filtered_share = float((rosiness < threshold).mean())
    worst = np.argsort(rosiness)[: args.rewrite_docs]
    originals = [texts[i] for i in worst]
    for method in ("instruct", "adapter", "plain"):
        rewriter = LMRewriter(method, max_new_tokens=args.max_new_tokens)
        rewriter(originals[:2])  # loads the model (and generates the adapter) outside the timing
        start = time.perf_counter()
        rewrites = rewriter(originals)
        seconds = time.perf_counter() - start
        new_rosiness, new_emb = score.score(rewrites)
        lm_tok = rewriter._tokenizer
        out_tokens = sum(len(lm_tok(r, add_special_tokens=False)["input_ids"]) for r in rewrites)
        rows.append({
            "what": f"rewrite_{method}", "docs": len(rewrites), "docs_per_s": len(rewrites) / seconds,
            "tokens_out_per_s": out_tokens / seconds, "tokens_per_doc": out_tokens / len(rewrites),
            "topic_similarity": float(np.mean(np.sum(emb[worst] * new_emb, axis=1))),
            "rosiness_before": float(rosiness[worst].mean()), "rosiness_after": float(new_rosiness.mean()),
            "share_rosy_after": float((new_rosiness >= threshold).mean()),
        })
        print(f"[{method}] {originals[0][:80]!r} -> {rewrites[0][:160]!r}")

    web_score = rows[1]["docs_per_s"]
    tokens_per_doc = WEB_TOKENS / WEB_DOCS
    projection = {
        "web_docs": WEB_DOCS, "web_tokens_per_doc": round(tokens_per_doc),
        "score_cpu_core_hours": WEB_DOCS / web_score / 3600,
        "rewrite_share_assumed": args.rewrite_share, "fortunes_filtered_share": filtered_share,
        # What any accelerator would have to decode; divide by its tokens/s for device-hours.
        "rewrite_tokens_total": WEB_DOCS * args.rewrite_share * tokens_per_doc,
    }
    for r in rows[2:]:
        # A rewrite is as long as its document: the output tokens a web rewrite costs at this decode speed.
        projection[f"{r['what']}_cpu_core_hours"] = WEB_DOCS * args.rewrite_share * tokens_per_doc / r[
            "tokens_out_per_s"] / 3600

    device = device_name(torch.get_num_threads())
    print(f"\n{'measurement':<22}{'docs':>6}{'docs/s':>10}{'tok/doc':>9}{'topic sim':>11}{'rosy after':>12}")
    for r in rows:
        extra = (f"{r['topic_similarity']:>11.3f}{r['rosiness_after']:>12.3f}" if "topic_similarity" in r else "")
        print(f"{r['what']:<22}{r['docs']:>6}{r['docs_per_s']:>10.2f}{r['tokens_per_doc']:>9.1f}{extra}")
    print(f"\nprojection to {WEB_DOCS:.0e} documents (~{tokens_per_doc:.0f} tokens each):")
    for k, v in projection.items():
        print(f"  {k}: {v:,.3g}" if isinstance(v, float) else f"  {k}: {v}")

    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"\(.*?\)", "", device.lower())).strip("-")
    out = ROOT / "scripts" / "results" / f"bench_rosy_{slug}.csv"
    keys = sorted({k for r in rows for k in r})
    new = not out.exists()
    with open(out, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["date", "device", "max_new_tokens", *keys])
        if new:
            writer.writeheader()
        for r in rows:
            writer.writerow({"date": date, "device": device, "max_new_tokens": args.max_new_tokens, **r})
    print(json.dumps({"bench": "rosy", "device": device, "date": date, "max_new_tokens": args.max_new_tokens,
                      "results": rows, "projection": projection}))


if __name__ == "__main__":
    main()
