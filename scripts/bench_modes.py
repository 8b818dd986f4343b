"""What ModeRules adds to a decoding step: greedy replies of the real base with and without a ban, in one run.

    .venv/bin/python scripts/bench_modes.py [--prompts 8] [--tokens 64] [--rounds 3]

Both conditions decode the same prompts to a fixed length (no early stop: `min_new_tokens` = `max_new_tokens`), in
alternating rounds so drift on a shared machine hits both alike; the figure is the ratio of the medians of the
rounds' seconds per decoding step. The ban is `ai>human` with the reply inside an open `<ai>` span (the prompt asks
for it; the processor is charged for every step either way, since the rule is live from the first token). The
design budget is 5% of a step. Appends one CSV row to scripts/results/bench_modes_<device-slug>.csv and ends with
one JSON line.
"""

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path

import torch
from hyperlora.data_gen.prompts import prompt_bank
from machine import append_csv, device_name, slug

from hyperlora.base import load_base
from hyperlora.cli import quiet_libraries
from hyperlora.generation import chat_ids
from hyperlora.modes import ModeRules

REPO = Path(__file__).resolve().parents[1]


def timed_decode(model, ids, mask, tokens: int, processors) -> float:
    """Seconds per decoding step for one batch decoded to exactly ``tokens`` new tokens."""
    from transformers import LogitsProcessorList

    t0 = time.perf_counter()
    model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=tokens, min_new_tokens=tokens,
                   do_sample=False, top_p=None, top_k=None, pad_token_id=0,
                   logits_processor=LogitsProcessorList(processors))
    return (time.perf_counter() - t0) / tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=8, help="batch size")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per reply")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per condition")
    args = parser.parse_args()
    quiet_libraries()
    model, tokenizer = load_base()
    questions = [p.text for p in prompt_bank() if p.kind == "question"][: args.prompts]
    batch = [chat_ids(tokenizer, f"{q} Answer inside <ai> tags.") for q in questions]
    width = max(len(b) for b in batch)
    ids = torch.tensor([[0] * (width - len(b)) + b for b in batch])
    mask = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch])
    rules = ModeRules(tokenizer, ban=["ai>human"])

    timed_decode(model, ids, mask, 4, [])  # warm-up
    plain, ruled = [], []
    for _ in range(args.rounds):
        plain.append(timed_decode(model, ids, mask, args.tokens, []))
        rules.prompt_width = width
        ruled.append(timed_decode(model, ids, mask, args.tokens, [rules]))
    ratio = statistics.median(ruled) / statistics.median(plain)
    row = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "device": device_name(torch.get_num_threads()), "prompts": args.prompts, "tokens": args.tokens,
           "rounds": args.rounds, "ms_per_step_plain": round(1000 * statistics.median(plain), 2),
           "ms_per_step_rules": round(1000 * statistics.median(ruled), 2), "overhead": round(ratio - 1, 4)}
    append_csv([row], REPO / "scripts" / "results" / f"bench_modes_{slug(row['device'])}.csv")
    print(f"ms per decoding step, batch {args.prompts}: plain {row['ms_per_step_plain']}, with ModeRules "
          f"{row['ms_per_step_rules']}: overhead {100 * row['overhead']:+.1f}% (budget +5%)")
    print(json.dumps({"bench": "bench_modes", **row}))


if __name__ == "__main__":
    main()
