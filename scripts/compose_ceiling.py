"""Does composition by construction hold up? Single-rule LoRAs summed, against one LoRA per manifesto.

Direction 1 of the hypernetwork redesign gives each statement of a manifesto its own adapter and adds them (ranks
concatenated). Its ceiling is what *oracle* LoRAs do under the same construction: for each held-out combination
manifesto, this trains the eval's per-manifesto LoRA (32 prompt-baked pairs of its rules, 60 steps, rank 8, lr 2e-3)
and one LoRA per rule on pairs of that rule alone (same settings), all in one batched run, then scores on the
manifesto's eval cases (greedy, the full preset's decode budget):

- ``manifesto``: the per-manifesto LoRA (the reference);
- ``sum``: the rule LoRAs' ΔWs added (rank 8·k, exactly what concatenation along rank exports);
- ``sum@8``: that sum truncated to rank 8 by SVD (what a served rank-8 adapter would hold);
- ``mean``: the sum scaled by 1/k (if each rule LoRA also carries a shared style, the plain sum counts it k times);
- ``alone``: each rule's own LoRA on the same cases, judged on that rule only (did the part learn its rule?).

Per rule it also prints how often each rule passes under ``manifesto``, ``sum`` and ``alone``, which tells a part that
never learned its rule from parts that interfere once added.

    .venv/bin/python scripts/compose_ceiling.py [--manifestos 6] [--layers ...] [--steps 60]

Needs `hyperlora data generate --out data/default` first. Prints a line per condition and one JSON line.
"""

import argparse
import json
import time

import torch
from hyperlora.data_gen.prompts import prompt_id
from hyperlora.data_gen.rules import normalize_rules
from hyperlora.data_gen.verifiers import verify_each
from hyperlora.evals.data import load_data, manifesto_pairs, select_cases, train_prompt_ids
from hyperlora.evals.lora_train import train_loras
from hyperlora.evals.presets import PRESETS

from hyperlora.base import DEFAULT_BASE, load_base
from hyperlora.generation import generate_each
from hyperlora.generator import merge_to_rank


def rule_key(rule) -> str:
    return json.dumps(rule, sort_keys=True)


def summed(parts: list[dict], scale: float = 1.0, rank: int | None = None) -> dict:
    """``{module: (A, B)}`` whose ΔW is ``scale · Σ`` of the parts' ΔWs (B carries the LoRA scale already)."""
    out = {}
    for name in parts[0]:
        pairs = [(p[name][0], p[name][1] * scale) for p in parts]
        if rank is None:
            out[name] = (torch.cat([a for a, _ in pairs]), torch.cat([b for _, b in pairs], dim=1))
        else:
            out[name] = merge_to_rank(pairs, rank)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data/default", help="dataset from `hyperlora data generate`")
    parser.add_argument("--split", default="test_combination")
    parser.add_argument("--manifestos", type=int, default=6, help="held-out manifestos (3 eval cases each)")
    parser.add_argument("--layers", type=int, nargs="*", default=[], help="decoder layers to adapt (default all)")
    parser.add_argument("--steps", type=int, default=PRESETS["full"]["oracle_steps"])
    parser.add_argument("--rank", type=int, default=8)
    args = parser.parse_args()

    start = time.perf_counter()
    model, tok = load_base(DEFAULT_BASE)
    data = load_data(args.data, progress=False)
    full = PRESETS["full"]
    cases = select_cases(data, [args.split], full["max_manifestos"], full["prompts_per_manifesto"])
    chosen = list(dict.fromkeys(c.manifesto for c in cases))[: args.manifestos]
    mine = {m: [c for c in cases if c.manifesto == m] for m in chosen}
    rules_of = {m: normalize_rules(mine[m][0].rules) for m in chosen}
    rules = list({rule_key(r): r for m in chosen for r in rules_of[m]}.values())
    exclude = {prompt_id(c.prompt) for c in cases}
    allowed = train_prompt_ids(data)
    pairs = PRESETS["full"]["oracle_pairs"]
    groups = [manifesto_pairs(rules_of[m], pairs, allowed, exclude, seed=i) for i, m in enumerate(chosen)]
    groups += [manifesto_pairs([r], pairs, allowed, exclude, seed=100 + i) for i, r in enumerate(rules)]
    print(f"{len(chosen)} manifestos, {len(rules)} distinct rules, {len(groups)} LoRAs to train", flush=True)

    trained = train_loras(model, tok, groups, rank=args.rank, alpha=2.0 * args.rank, steps=args.steps,
                          per_group=full["oracle_per_step"], lr=full["lr"], max_len=full["train_max_len"],
                          layers=tuple(args.layers))
    train_s = time.perf_counter() - start
    per_manifesto = dict(zip(chosen, trained["factors"][: len(chosen)]))
    per_rule = {rule_key(r): f for r, f in zip(rules, trained["factors"][len(chosen):])}

    budget = full["max_new_tokens"]
    conditions = {"manifesto": lambda m, parts: per_manifesto[m],
                  "sum": lambda m, parts: summed(parts),
                  f"sum@{args.rank}": lambda m, parts: summed(parts, rank=args.rank),
                  "mean": lambda m, parts: summed(parts, scale=1.0 / len(parts))}
    jobs = []  # (condition, case, factors, the rule checked alone or None); all decoded in one batched call
    for m in chosen:
        parts = [per_rule[rule_key(r)] for r in rules_of[m]]
        for cond, make in conditions.items():
            factors = make(m, parts)
            jobs += [(cond, c, factors, None) for c in mine[m]]
        for rule, part in zip(rules_of[m], parts):
            jobs += [("alone", c, part, rule) for c in mine[m]]
    replies = generate_each(model, tok, [c.prompt for _, c, _, _ in jobs], [f for _, _, f, _ in jobs], budget)

    passed = {c: [] for c in conditions}
    by_rule = {c: {} for c in (*conditions, "alone")}  # condition -> rule id -> [passed]
    for (cond, c, _, rule), reply in zip(jobs, replies):
        if rule is not None:
            ok = verify_each([rule], reply, c.prompt, prompt_kind=c.prompt_kind)[rule["id"]]
            by_rule["alone"].setdefault(rule["id"], []).append(ok)
            continue
        each = verify_each(c.rules, reply, c.prompt, prompt_kind=c.prompt_kind)
        passed[cond].append(all(each.values()))
        for rid, ok in each.items():
            by_rule[cond].setdefault(rid, []).append(ok)
    summary = {"split": args.split, "manifestos": len(chosen), "rules": len(rules), "n": len(passed["manifesto"]),
               "layers": args.layers or "all", "steps": args.steps,
               **{c: round(100 * sum(v) / len(v), 1) for c, v in passed.items()},
               "final_loss": round(sum(trained["losses"][-10:]) / 10, 3),
               "train_minutes": round(train_s / 60, 1), "minutes": round((time.perf_counter() - start) / 60, 1)}
    summary["by_rule"] = {c: {rid: f"{sum(v)}/{len(v)}" for rid, v in sorted(r.items())} for c, r in by_rule.items()}
    for cond in conditions:
        print(f"{cond:10s} {summary[cond]:5.1f}% of {summary['n']} cases", flush=True)
    print("per rule (manifesto / sum / alone):")
    for rid in sorted(by_rule["alone"]):
        print(f"  {rid:18s} " + " / ".join(summary["by_rule"][c].get(rid, "-") for c in ("manifesto", "sum", "alone")))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
