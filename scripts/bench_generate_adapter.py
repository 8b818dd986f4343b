"""Time `HyperLoRA.generate_adapter` for the default base: median of 10 calls after one warm-up.

    .venv/bin/python scripts/bench_generate_adapter.py [--checkpoint DIR] [--calls 10]

Prints a table and ends with one JSON line.
"""

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from hyperlora import HyperLoRA
from hyperlora.cli import quiet_libraries

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    quiet_libraries()
    hl = HyperLoRA.from_pretrained(args.checkpoint)
    text = (ROOT / "examples" / "manifesto.txt").read_text()
    hl.generate_adapter(text)  # warm-up
    times = []
    for _ in range(args.calls):
        start = time.perf_counter()
        hl.generate_adapter(text)
        times.append((time.perf_counter() - start) * 1000)
    tokens = len(hl.encoder.chunk(text)[0])
    result = {
        "bench": "generate_adapter", "device": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "manifesto_tokens": tokens, "calls": args.calls,
        "median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2), "targets": len(hl.hypernet.targets), "rank": hl.config.adapter_rank,
    }
    print(f"{'calls':>6} {'tokens':>7} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    r = result
    print(f"{args.calls:>6} {tokens:>7} {r['median_ms']:>10.1f} {r['min_ms']:>8.1f} {r['max_ms']:>8.1f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
