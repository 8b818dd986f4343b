"""What dropping finished rows from a decoding batch saves: the eval's decode path, with and without, in one run.

    .venv/bin/python scripts/bench_decode.py [--cases 48] [--tokens 160] [--batch-size 32]

The rows are the eval's own: held-out test_paraphrase and test_combination cases (its full preset's selection),
each under the shipped checkpoint's adapter for its manifesto, greedy, at the full preset's decode budget. Both
conditions decode the same rows through `hyperlora.decode.decode`, once with `compact=False` (a finished row rides
along to its batch's end, as every eval before this did) and once with `compact=True`; the figure is the ratio of
their seconds, and the replies of the two are compared token for token (batch width can move a greedy choice at
the margin of floating point). Appends one CSV row to scripts/results/bench_decode_<device-slug>.csv and ends with
one JSON line.
"""

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import torch
from hyperlora.evals.data import load_data, resolve_splits, select_cases
from hyperlora.evals.presets import PRESETS
from machine import append_csv, device_name, slug

from hyperlora.base import load_base
from hyperlora.cli import quiet_libraries
from hyperlora.decode import Row, decode, lora_factors
from hyperlora.generation import chat_ids
from hyperlora.generator import HyperLoRA

RESULTS = Path(__file__).resolve().parent / "results"


def main():
    full = PRESETS["full"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data/default", help="dataset from `hyperlora data generate`")
    parser.add_argument("--cases", type=int, default=48, help="rows to decode (the first of the eval's cases)")
    parser.add_argument("--tokens", type=int, default=full["max_new_tokens"], help="new tokens at most per reply")
    parser.add_argument("--batch-size", type=int, default=full["batch_size"], help="rows per forward")
    args = parser.parse_args()
    quiet_libraries()

    hl = HyperLoRA.from_pretrained()
    model, tok = load_base(hl.config.base_model)
    data = load_data(args.data, progress=False)
    splits = resolve_splits(data, None)
    splits = [s for s in ("test_paraphrase", "test_combination") if s in splits]
    cases = select_cases(data, splits, full["max_manifestos"], full["prompts_per_manifesto"])[: args.cases]
    table, rows = {}, []
    for c in cases:
        if c.manifesto not in table:
            table[c.manifesto] = lora_factors(hl.generate_adapter(c.manifesto))
        rows.append(Row(chat_ids(tok, c.prompt), adapter=c.manifesto))
    eos = model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [])

    seconds, outs = {}, {}
    decode(model, rows[:2], table, max_new_tokens=4, eos_ids=eos, pad_id=tok.pad_token_id)  # warm-up
    for compact in (False, True):
        t0 = time.perf_counter()
        outs[compact] = decode(model, rows, table, max_new_tokens=args.tokens, eos_ids=eos, pad_id=tok.pad_token_id,
                               batch_size=args.batch_size, compact=compact)
        seconds[compact] = time.perf_counter() - t0
    lengths = sorted(len(o) for o in outs[False])
    differ = sum(a != b for a, b in zip(outs[False], outs[True]))
    ratio = seconds[False] / seconds[True]
    print(f"{len(rows)} rows, {args.tokens} tokens at most, batch {args.batch_size}: reply lengths median "
          f"{lengths[len(lengths) // 2]}, {sum(n == args.tokens for n in lengths)} at the cap")
    print(f"finished rows kept {seconds[False]:.1f} s, dropped {seconds[True]:.1f} s: {ratio:.2f}x faster; "
          f"{differ} of {len(rows)} replies differ")
    device = device_name(torch.get_num_threads())
    row = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "device": device,
           "rows": len(rows), "tokens": args.tokens, "batch_size": args.batch_size,
           "kept_s": round(seconds[False], 2), "dropped_s": round(seconds[True], 2), "speedup": round(ratio, 3),
           "replies_differ": differ}
    append_csv([row], RESULTS / f"bench_decode_{slug(device)}.csv")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
