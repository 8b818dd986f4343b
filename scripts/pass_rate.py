"""Strict rule pass rate of a checkpoint's adapters, own manifesto against a shuffled one: a fast check for pilots.

The same cases as `hyperlora eval` (its full preset: 16 manifestos × 3 prompts per split, greedy, its decode budget),
but only two conditions: `adapter` (the case's own manifesto) and `shuffled` (the next chosen manifesto of the
split), and with `--reader DIR` a third, `prompt_tuned` (that manifesto-reader LoRA with the case's manifesto as the
system turn: the hypernetwork's real competitor, and the teacher of `train.py`'s distillation). Every reply is decoded
in one batched call, rows under different adapters together, as the eval decodes: minutes instead of the full
report's hour; the report stays the measure of record.

The split `train` takes its cases from the records the checkpoint was trained on (its `max_records`), so it tells
underfitting (the training manifestos fail too) from poor generalisation. `--families` adds, per rule family, how
many of the own adapter's cases pass that rule's verifier. `--refusal` adds the report's values rows: the share
of its harmful asks and of their benign neighbours that the adapter refuses (the same 30 + 30 prompts under the
same refusal manifestos).

    .venv/bin/python scripts/pass_rate.py [--checkpoint DIR] [--splits train test_paraphrase test_combination]
                                          [--families] [--refusal] [--strength 1.0] [--rank R] [--reader DIR]
"""

import argparse
import json

from hyperlora.data_gen.verifiers import verify_each
from hyperlora.evals.data import load_data, resolve_splits, select_cases, train_prompt_ids
from hyperlora.evals.metrics import is_refusal
from hyperlora.evals.presets import PRESETS
from hyperlora.evals.run import select_refusal_items
from tqdm.auto import tqdm

from hyperlora.adapter import Adapter
from hyperlora.base import load_base
from hyperlora.generation import generate_each
from hyperlora.generator import HyperLoRA, shipped_checkpoint


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="hypernetwork checkpoint (default: the shipped one)")
    parser.add_argument("--data", default="data/default", help="dataset from `hyperlora data generate`")
    parser.add_argument("--splits", nargs="+", default=["test_paraphrase", "test_combination"])
    parser.add_argument("--manifestos", type=int, default=16, help="manifestos per split")
    parser.add_argument("--prompts", type=int, default=3, help="prompts per manifesto")
    parser.add_argument("--max-new-tokens", type=int, default=PRESETS["full"]["max_new_tokens"],
                        help="decode budget (default: the full eval's; runs before it was raised used 80)")
    parser.add_argument("--strength", type=float, default=1.0, help="adapter strength (ΔW scale), every adapter")
    parser.add_argument("--families", action="store_true", help="also print the own adapter's pass rate per rule")
    parser.add_argument("--rank", type=int, default=None,
                        help="SVD-truncate each adapter to at most this rank first (a per-statement checkpoint's "
                        "adapters have rank r × (statements + 1)); prints the mean relative ΔW error")
    parser.add_argument("--reader", default=None, metavar="DIR",
                        help="also score condition prompt_tuned: this manifesto-reader LoRA (scripts/train_reader.py) "
                        "with the case's manifesto as the system turn")
    parser.add_argument("--refusal", action="store_true",
                        help="also print the share of the report's harmful and benign-neighbour asks refused")
    args = parser.parse_args()

    checkpoint = args.checkpoint or shipped_checkpoint()
    hl = HyperLoRA.from_pretrained(checkpoint)
    model, tokenizer = load_base(hl.config.base_model)
    data = load_data(args.data, progress=False)
    # Before the train split is cut below: the eval holds out of its refusal asks every prompt of the whole split.
    values = select_refusal_items(data, resolve_splits(data, None), PRESETS["full"], train_prompt_ids(data))
    seen = hl.hypernet.checkpoint_config.get("train_config", {}).get("max_records", 0)
    if "train" in args.splits and seen:  # train.py trains on the first max_records records only
        data["train"] = data["train"].select(range(min(seen, len(data["train"]))))
    adapters = {}  # one adapter per manifesto text, generated once

    def adapter(text):
        if text not in adapters:
            adapters[text] = adapter_for(hl, text, args.strength, args.rank)
        return adapters[text]

    reader = Adapter.load(args.reader) if args.reader else None
    # Every reply of every split (and the refusal asks) is decoded in one call: rows under different adapters share
    # a batch, as in the eval.
    jobs = []  # (split, condition, case or refusal item, adapter, system turn)
    for split in args.splits:
        cases = select_cases(data, [split], args.manifestos, args.prompts)
        order = list(dict.fromkeys(c.manifesto for c in cases))
        partner = {m: order[(i + 1) % len(order)] for i, m in enumerate(order)}
        jobs += [(split, "adapter", c, adapter(c.manifesto), None) for c in cases]
        jobs += [(split, "shuffled", c, adapter(partner[c.manifesto]), None) for c in cases]
        if reader is not None:
            jobs += [(split, "prompt_tuned", c, reader, c.manifesto) for c in cases]
    if args.refusal:
        jobs += [("refusal", it["kind"], it, adapter(it["manifesto"]), None) for it in values]
    prompts = [j[2].prompt if j[0] != "refusal" else j[2]["prompt"] for j in jobs]
    with tqdm(total=len(jobs), desc="decoding", disable=None) as bar:
        replies = generate_each(model, tokenizer, prompts, [j[3] for j in jobs], args.max_new_tokens,
                                progress=bar.update, systems=[j[4] for j in jobs])

    summary = {}
    for split in args.splits:
        mine = [(j, r) for j, r in zip(jobs, replies) if j[0] == split]
        passed, per_rule = {}, {}
        for (_, cond, c, _, _), reply in mine:
            verdicts = verify_each(c.rules, reply, c.prompt, prompt_kind=c.prompt_kind)
            passed.setdefault(cond, []).append(all(verdicts.values()))
            for rule, ok in verdicts.items():
                per_rule.setdefault((cond, rule), []).append(ok)
        n = len(passed["adapter"])
        summary[split] = {"n": n, **{k: round(100 * sum(v) / max(n, 1), 1) for k, v in passed.items()}}
        print(f"{split:17s} n={n:3d}  " + "  ".join(f"{k} {summary[split][k]:5.1f}%" for k in passed), flush=True)
        if args.families:
            for cond in [k for k in ("adapter", "prompt_tuned") if k in passed]:
                rules = sorted({rule for c, rule in per_rule if c == cond})
                print(f"  {cond}: " + ", ".join(f"{r} {sum(per_rule[cond, r])}/{len(per_rule[cond, r])}"
                                               for r in rules))
    if args.refusal:
        refused = {}
        for (split, kind, *_), reply in zip(jobs, replies):
            if split == "refusal":
                refused.setdefault(kind, []).append(is_refusal(reply))
        summary["refusal"] = {kind: round(100 * sum(v) / len(v), 1) for kind, v in refused.items()}
        print("refused: " + ", ".join(f"{k} {v}%" for k, v in summary["refusal"].items()), flush=True)
    if TRUNCATION_ERRORS:
        summary["truncation_error_mean"] = round(sum(TRUNCATION_ERRORS) / len(TRUNCATION_ERRORS), 4)
        print(f"truncated {len(TRUNCATION_ERRORS)} adapters to rank {args.rank}: mean relative ΔW error "
              f"{summary['truncation_error_mean']}", flush=True)
    print(json.dumps({"checkpoint": str(checkpoint), "reader": args.reader, "strength": args.strength,
                      "rank": args.rank, "max_new_tokens": args.max_new_tokens, "splits": summary}))


TRUNCATION_ERRORS: list[float] = []


def adapter_for(hl, text: str, strength: float, rank: int | None):
    """The checkpoint's adapter for ``text``, SVD-truncated to ``rank`` when it has more (its error recorded)."""
    adapter = hl.generate_adapter(text, strength)
    if rank is None or adapter.rank <= rank:
        return adapter
    truncated = Adapter.compose([adapter], rank=rank)
    TRUNCATION_ERRORS.append(truncated.provenance["truncation_error"])
    return truncated


if __name__ == "__main__":
    main()
