"""Milliseconds per guard check on this CPU: the prompt classifier and the answer check, one text per call.

    .venv/bin/python scripts/bench_guard.py [--repeats 5]

Texts: every single-turn prompt of the bank (1,280: questions, harmful asks, greetings...) for `check_prompt`, and
the cached base replies (about 1,200, up to 160 tokens each) for `check_answer`. Each text is checked `--repeats`
times; per call the median, p95 and max wall-clock time are reported, the median and p95 CPU time of the process
(on a shared machine the wall-clock tail is mostly time the process spent descheduled: at load average 5 on 2 cores
it gets about a third of a core), and the one-off cost of loading the classifier's JSON file. The design budget is
5 ms per check, judged on the CPU p95. Prints a table, appends one CSV row per check to
scripts/results/bench_guard_<device-slug>.csv (machine and date), and ends with one JSON line.
"""

import argparse
import datetime as dt
import json
import os
import statistics
import time
from pathlib import Path

from hyperlora.data_gen.prompts import prompt_bank
from hyperlora.data_gen.responses import clean_response, load_base_responses
from machine import append_csv, device_name, slug

from hyperlora import guard

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "scripts" / "results"
BUDGET_MS = 5.0


def time_calls(fn, texts, repeats: int) -> tuple[list[float], list[float]]:
    """(wall ms, CPU ms) per call, each sorted."""
    wall, cpu = [], []
    for _ in range(repeats):
        for t in texts:
            c0, t0 = time.process_time(), time.perf_counter()
            fn(t)
            wall.append(1000 * (time.perf_counter() - t0))
            cpu.append(1000 * (time.process_time() - c0))
    return sorted(wall), sorted(cpu)


def p95(ts: list[float]) -> float:
    return ts[int(0.95 * (len(ts) - 1))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="passes over the texts")
    parser.add_argument("--out", type=Path, help="CSV path (default scripts/results/bench_guard_<device-slug>.csv)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    guard.PromptClassifier.load()
    load_ms = 1000 * (time.perf_counter() - t0)
    guard.check_prompt("warm up")  # the cached classifier every later call uses
    guard.check_answer("warm up")
    prompts = [p.text for p in prompt_bank() if len(p.messages) == 1]
    cache = load_base_responses()
    answers = [clean_response(r["response"], r.get("truncated", False)) for r in cache.values()]

    name, date = device_name(os.cpu_count()), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    rows = []
    for check, fn, texts in (("prompt", guard.check_prompt, prompts), ("answer", guard.check_answer, answers)):
        ts, cpu = time_calls(fn, texts, args.repeats)
        rows.append({"date": date, "device": name, "load_avg_1min": round(os.getloadavg()[0], 2), "check": check,
                     "texts": len(texts), "calls": len(ts), "median_ms": round(statistics.median(ts), 4),
                     "p95_ms": round(p95(ts), 4), "max_ms": round(ts[-1], 4),
                     "cpu_median_ms": round(statistics.median(cpu), 4), "cpu_p95_ms": round(p95(cpu), 4),
                     "mean_chars": round(statistics.mean(len(t) for t in texts), 1),
                     "load_ms": round(load_ms, 1) if check == "prompt" else "",
                     "within_budget": p95(cpu) <= BUDGET_MS})

    print(f"device: {name}; load average {os.getloadavg()[0]:.2f}; classifier JSON load {load_ms:.0f} ms (once)")
    print("| check | texts | calls | median ms | p95 ms | max ms | CPU median ms | CPU p95 ms | mean chars | "
          "CPU p95 ≤ 5 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['check']} | {r['texts']} | {r['calls']} | {r['median_ms']:.3f} | {r['p95_ms']:.3f} | "
              f"{r['max_ms']:.2f} | {r['cpu_median_ms']:.3f} | {r['cpu_p95_ms']:.3f} | {r['mean_chars']} | "
              f"{'yes' if r['within_budget'] else 'no'} |")
    out = args.out or RESULTS / f"bench_guard_{slug(name)}.csv"
    append_csv(rows, out)
    print(f"appended {len(rows)} rows to {out}")
    print(json.dumps({"device": name, "load_ms": round(load_ms, 1),
                      **{f"{r['check']}_{k}": r[k] for r in rows
                         for k in ("median_ms", "p95_ms", "max_ms", "cpu_median_ms", "cpu_p95_ms")}}))


if __name__ == "__main__":
    main()
