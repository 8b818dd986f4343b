"""Generate the plain base-model reply to every prompt of the bank, once, and cache it in the repo.

Run:  .venv/bin/python scripts/gen_base_responses.py [--out data_gen/assets/base_responses.jsonl.gz]
          [--batch-size 16] [--max-new-tokens 80] [--limit N] [--base smollm2-135m-instruct] [--guard-asks]

``--guard-asks`` does the same for the benign guard asks (``data_gen/guard_asks.py``), which
``scripts/refusal_asks_data.py`` adds to a dataset's train split (4.5 min for the 543 of them).

The replies are the "plain response" that the rule transforms turn into compliant targets
(``hyperlora.data_gen``). Decoding is deterministic: greedy with a repetition penalty of 1.2 (plain greedy makes
the 135M base loop on one phrase, which would make poor targets), chat template with the tokenizer's default
system prompt, left padding, batches of similar length. Resumable: each finished batch is appended to the gzip
file as its own gzip member (gzip readers concatenate members), and a rerun skips prompts already there, so a
kill loses at most one batch. Takes ~15-60 min on 2 (shared) CPU cores for the ~1,160 prompts.
"""

import argparse
import datetime
import gzip
import json
import os
import sys
import time
from pathlib import Path

import torch
from hyperlora.data_gen.guard_asks import guard_ask_prompts
from hyperlora.data_gen.prompts import prompt_bank
from hyperlora.data_gen.responses import DEFAULT_RESPONSES_PATH, GUARD_ASK_RESPONSES_PATH, load_base_responses

DECODING = {"do_sample": False, "repetition_penalty": 1.2}
# Targets for harmful asks are always templated refusals, so their base replies are never trained on; a sample of
# them is kept to show (and test) that the base complies where the refusal rule must change it.
HARMFUL_SAMPLE = 24


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_RESPONSES_PATH))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=80)
    parser.add_argument("--limit", type=int, default=None, help="stop after this many new prompts (smoke runs)")
    parser.add_argument("--base", default="smollm2-135m-instruct")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--harmful-sample", type=int, default=HARMFUL_SAMPLE,
                        help="generate replies for only this many harmful asks (their targets are always refusals)")
    parser.add_argument("--guard-asks", action="store_true",
                        help="the benign guard asks (data_gen/guard_asks.py) instead of the bank, into "
                             "data_gen/assets/guard_ask_responses.jsonl.gz unless --out says otherwise")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.guard_asks and args.out == str(DEFAULT_RESPONSES_PATH):
        args.out = str(GUARD_ASK_RESPONSES_PATH)
    out = Path(args.out)
    done = load_base_responses(out) if out.exists() else {}
    if args.guard_asks:
        todo = [p for p in guard_ask_prompts() if p.kind != "harmful" and p.id not in done]
    else:
        harmful = [p.id for p in prompt_bank() if p.kind == "harmful"][: args.harmful_sample]
        todo = [p for p in prompt_bank() if p.id not in done and (p.kind != "harmful" or p.id in harmful)]
    if args.limit is not None:
        todo = todo[: args.limit]
    print(f"{len(done)} cached, {len(todo)} to generate -> {out}", file=sys.stderr)
    if not todo:
        return 0

    from hyperlora.base import load_base

    model, tok = load_base(args.base)
    tok.padding_side = "left"  # decoder-only generation continues from the right edge of every row
    texts = {p.id: tok.apply_chat_template(p.as_messages(), tokenize=False, add_generation_prompt=True) for p in todo}
    # Similar lengths in one batch waste less compute on padding.
    todo.sort(key=lambda p: len(tok(texts[p.id]).input_ids))
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    for i in range(0, len(todo), args.batch_size):
        batch = todo[i : i + args.batch_size]
        enc = tok([texts[p.id] for p in batch], return_tensors="pt", padding=True)
        with torch.no_grad():
            gen = model.generate(
                **enc, max_new_tokens=args.max_new_tokens, pad_token_id=tok.pad_token_id, **DECODING
            )
        new = gen[:, enc.input_ids.shape[1] :]
        lines = []
        for p, ids in zip(batch, new):
            ids = ids.tolist()
            n = next((j for j, t in enumerate(ids) if t in (tok.eos_token_id, tok.pad_token_id)), len(ids))
            lines.append(
                json.dumps(
                    {
                        "id": p.id,
                        "kind": p.kind,
                        "messages": p.as_messages(),
                        "response": tok.decode(ids[:n], skip_special_tokens=True).strip(),
                        "n_tokens": n,
                        "truncated": n >= args.max_new_tokens,
                        "model": args.base,
                        "decoding": {**DECODING, "max_new_tokens": args.max_new_tokens},
                        "date": datetime.date.today().isoformat(),
                    },
                    ensure_ascii=False,
                )
            )
        # One gzip member per batch, flushed and fsynced: the checkpoint a rerun resumes from.
        with open(out, "ab") as f:
            f.write(gzip.compress(("\n".join(lines) + "\n").encode()))
            f.flush()
            os.fsync(f.fileno())
        n_done = i + len(batch)
        rate = (time.time() - start) / n_done
        print(f"{n_done}/{len(todo)} prompts, {rate:.2f} s/prompt, eta {rate * (len(todo) - n_done) / 60:.1f} min",
              file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
