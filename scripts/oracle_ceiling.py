"""How far can a plain LoRA on the adapted layers go? The eval's oracle LoRA, trained on all layers and on a subset.

The hypernetwork of the CPU recipe writes adapters for the top 8 decoder layers only (configs/cpu.yaml); the eval's
`oracle_lora` row adapts every layer. This trains the same per-manifesto LoRAs (the eval's full-preset settings:
32 prompt-baked pairs each, 60 steps, lr 2e-3, rank 8) on the first `--per-split` manifestos of each split's eval
cases, once on every layer and once on `--layers`, and prints the strict pass rate of each on those cases (greedy,
the full preset's decode budget). If the subset's pass rate stays near the all-layer one, the layer choice is not
what holds the hypernetwork back.

    .venv/bin/python scripts/oracle_ceiling.py [--layers 22 23 24 25 26 27 28 29] [--per-split 4] [--skip-all]
"""

import argparse
import json
import time

from hyperlora.data_gen.prompts import prompt_id
from hyperlora.data_gen.verifiers import verify_each
from hyperlora.evals.data import load_data, manifesto_pairs, select_cases, train_prompt_ids
from hyperlora.evals.lora_train import train_loras
from hyperlora.evals.presets import PRESETS

from hyperlora.base import DEFAULT_BASE, load_base
from hyperlora.generation import generate_each


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data/default", help="dataset from `hyperlora data generate`")
    parser.add_argument("--splits", nargs="+", default=["test_paraphrase", "test_combination", "test_family"])
    parser.add_argument("--per-split", type=int, default=4, help="oracle manifestos per split (the eval's 4)")
    parser.add_argument("--layers", type=int, nargs="+", default=list(range(22, 30)))
    parser.add_argument("--steps", type=int, default=PRESETS["full"]["oracle_steps"])
    parser.add_argument("--skip-all", action="store_true",
                        help="train only --layers, not the all-layer reference (same cases and seeds every run)")
    args = parser.parse_args()

    model, tok = load_base(DEFAULT_BASE)
    data = load_data(args.data, progress=False)
    full = PRESETS["full"]
    cases = select_cases(data, args.splits, full["max_manifestos"], full["prompts_per_manifesto"])
    chosen = []
    for split in args.splits:
        in_split = list(dict.fromkeys(c.manifesto for c in cases if c.split == split))
        chosen += in_split[: args.per_split]
    mine = {m: [c for c in cases if c.manifesto == m] for m in chosen}
    exclude = {prompt_id(c.prompt) for c in cases}
    groups = [manifesto_pairs(mine[m][0].rules, full["oracle_pairs"], train_prompt_ids(data), exclude, seed=i)
              for i, m in enumerate(chosen)]

    summary = {}
    runs = [] if args.skip_all else [("all layers", ())]
    runs.append((f"layers {args.layers[0]}-{args.layers[-1]}", tuple(args.layers)))
    for label, layers in runs:
        start = time.perf_counter()
        trained = train_loras(model, tok, groups, rank=8, alpha=16.0, steps=args.steps,
                              per_group=full["oracle_per_step"], lr=full["lr"], max_len=full["train_max_len"],
                              layers=layers)
        own = [c for m in chosen for c in mine[m]]
        factors = dict(zip(chosen, trained["factors"]))  # B already carries the scale
        replies = generate_each(model, tok, [c.prompt for c in own], [factors[c.manifesto] for c in own],
                                full["max_new_tokens"])
        passed = {split: [] for split in args.splits}
        for c, reply in zip(own, replies):
            passed[c.split].append(all(verify_each(c.rules, reply, c.prompt, prompt_kind=c.prompt_kind).values()))
        n = sum(len(v) for v in passed.values())
        summary[label] = {"all": round(100 * sum(sum(v) for v in passed.values()) / n, 1), "n": n,
                          **{s: round(100 * sum(v) / len(v), 1) for s, v in passed.items()},
                          "final_loss": round(sum(trained["losses"][-10:]) / 10, 3),
                          "seconds": round(time.perf_counter() - start)}
        print(f"{label:16s} " + "  ".join(f"{k} {v}" for k, v in summary[label].items()), flush=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
