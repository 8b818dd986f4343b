"""Does the generated adapter read its manifesto? Teacher-forced CE of compliant responses, per split.

For each held-out record, the mean token cross-entropy of its verified compliant response under:
  base       no adapter, no system prompt;
  system     the base with the manifesto as system prompt;
  adapter    the adapter generated from the record's own manifesto;
  shuffled   the adapter generated from another manifesto of the same split.
The manifesto gap is CE(shuffled) − CE(adapter): about zero when the hypernetwork ignores what it reads, however
low both losses are. Pass rates (`hyperlora eval`) say whether the behaviour is there; this says where it comes
from, and it is cheap enough to track during training.

    .venv/bin/python scripts/manifesto_gap.py [--checkpoint DIR] [--data data/default] [--per-split 60]
"""

import argparse
import json
import random
import statistics

import torch
import torch.nn.functional as F
from datasets import load_from_disk

from hyperlora.base import load_base
from hyperlora.generation import chat_ids
from hyperlora.generator import HyperLoRA, shipped_checkpoint
from hyperlora.train import tokenize


@torch.inference_mode()
def response_ce(model, ids: torch.Tensor, target: torch.Tensor) -> float:
    """Mean CE over the target tokens of one sequence (ids (T,), target (T,) bool)."""
    logits = model(input_ids=ids[None]).logits[0, :-1].float()
    mask = target[1:]
    return F.cross_entropy(logits[mask], ids[1:][mask]).item()


def system_ids(tokenizer, record, manifesto, max_tokens):
    ids, target = tokenize(tokenizer, record, max_tokens)
    prompt_len = int((~target).sum())
    context = chat_ids(tokenizer, record["prompt"], system=manifesto)
    reply, reply_target = ids[prompt_len:].tolist(), target[prompt_len:].tolist()
    return torch.tensor(context + reply), torch.tensor([False] * len(context) + reply_target)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="hypernetwork checkpoint (default: the shipped one)")
    parser.add_argument("--data", default="data/default", help="dataset from `hyperlora data generate`")
    parser.add_argument("--splits", nargs="+", default=["train", "test_paraphrase", "test_combination", "test_family"])
    parser.add_argument("--per-split", type=int, default=60, help="records per split (with rules), seeded sample")
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    hl = HyperLoRA.from_pretrained(args.checkpoint or shipped_checkpoint())
    model, tokenizer = load_base(hl.config.base_model)
    data = load_from_disk(args.data)
    summary = {}
    for split in args.splits:
        records = [r for r in data[split] if r["rules"]]
        rng = random.Random(args.seed)
        records = rng.sample(records, min(args.per_split, len(records)))
        manifestos = sorted({r["manifesto"] for r in records})
        if len(manifestos) < 2:
            continue
        ce = {k: [] for k in ("base", "system", "adapter", "shuffled")}
        adapters = {m: hl.generate_adapter(m) for m in manifestos}
        for r in records:
            other = rng.choice([m for m in manifestos if m != r["manifesto"]])
            ids, target = tokenize(tokenizer, r, args.max_tokens)
            ce["base"].append(response_ce(model, ids, target))
            ce["system"].append(response_ce(model, *system_ids(tokenizer, r, r["manifesto"], args.max_tokens)))
            for name, text in (("adapter", r["manifesto"]), ("shuffled", other)):
                with adapters[text].applied_to(model):
                    ce[name].append(response_ce(model, ids, target))
        gaps = [s - a for s, a in zip(ce["shuffled"], ce["adapter"])]
        summary[split] = {"n": len(records), **{k: round(statistics.mean(v), 3) for k, v in ce.items()},
                          "gap": round(statistics.mean(gaps), 3),
                          "gap_positive": round(sum(g > 0 for g in gaps) / len(gaps), 3)}
        row = summary[split]
        print(f"{split:17s} n={row['n']:3d}  CE base {row['base']:.3f}  system {row['system']:.3f}  "
              f"adapter {row['adapter']:.3f}  shuffled {row['shuffled']:.3f}  gap {row['gap']:+.3f} "
              f"(own manifesto better on {row['gap_positive']:.0%})", flush=True)
    print(json.dumps({"checkpoint": str(args.checkpoint or shipped_checkpoint()), "splits": summary}))


if __name__ == "__main__":
    main()
