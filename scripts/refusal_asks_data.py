"""Add the guard asks to a dataset's train split as refusal-rule records: pilot data that shows the refusal rule
more of what it must answer.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/refusal_asks_data.py --data data/default --out data/refusal
                                                                   [--harmful 2] [--benign 4] [--seed 0]

Why: in `data/default` the refusal rule has 151 harmful asks and 88 benign neighbours on three topics, and every
adapter trained on them refuses harmless asks near a harmful topic: the shipped hypernetwork 23.2% of the 112
hand-written neighbours of scripts/results/guard_heldout_prompts.jsonl, a LoRA trained on each manifesto's own data
13.3% of the eval's 30 (`oracle_lora`).

Every train manifesto with `refuse_harm` gets `--harmful` harmful guard asks and `--benign` benign ones
(`data_gen/guard_asks.py`, seven areas), drawn in turn from seeded shuffles so each ask is used about equally.
Targets come from the generator's own `make_target`: a refusal in the manifesto's rules for a harmful ask, the
base model's reply (`scripts/gen_base_responses.py --guard-asks`) under the manifesto's rules for a benign one; a
target that cannot be made is skipped, and each new record is verified as `data generate` verifies. Asks within
MiniLM cosine 0.75 of a held-out test prompt or of one of the eval's refusal asks are never used. The test splits
are copied unchanged, so every eval figure stays comparable. Writes the dataset whole, then renames it into place.
"""

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

from hyperlora.data_gen.generate import _h, load_dataset_dir
from hyperlora.data_gen.guard_asks import close_to, guard_ask_prompts
from hyperlora.data_gen.responses import GUARD_ASK_RESPONSES_PATH, clean_response, load_base_responses
from hyperlora.data_gen.rules import make_target
from hyperlora.data_gen.verifiers import verify
from hyperlora.evals.data import load_data, resolve_splits, train_prompt_ids
from hyperlora.evals.presets import PRESETS
from hyperlora.evals.run import select_refusal_items

from hyperlora.io import atomic_dir

# scripts/guard_eval.py, beside this file, owns the held-out test.
sys.path.insert(0, str(Path(__file__).parent))


def usable_asks(data_dir: str) -> tuple[list, list, dict]:
    """(harmful asks, benign asks with a base reply, {"near": n left out, "no_reply": n}) for the dataset."""
    from guard_eval import held_out_rows
    from hyperlora.data_gen.rosy.embed import Embedder

    dd = load_data(data_dir, progress=False)
    items = select_refusal_items(dd, resolve_splits(dd, None), PRESETS["full"], train_prompt_ids(dd))
    avoid = [it["prompt"][-1]["content"] for it in items]
    avoid += [r["text"] for r in held_out_rows()]
    asks = guard_ask_prompts(seed=0)
    embed = Embedder()
    near = close_to(embed([p.text for p in asks]), embed(avoid))
    replies = load_base_responses(GUARD_ASK_RESPONSES_PATH)
    harmful = [p for p, n in zip(asks, near) if not n and p.kind == "harmful"]
    benign = [p for p, n in zip(asks, near) if not n and p.kind != "harmful" and p.id in replies]
    missing = sum(1 for p, n in zip(asks, near) if not n and p.kind != "harmful" and p.id not in replies)
    plain = {p.id: clean_response(replies[p.id]["response"], replies[p.id].get("truncated", False)) for p in benign}
    return harmful, benign, {"near": int(near.sum()), "no_reply": missing, "plain": plain}


def new_records(train: list[dict], harmful: list, benign: list, plain: dict, n_harmful: int, n_benign: int,
                seed: int) -> tuple[list[dict], Counter]:
    """Records for each refusal manifesto of ``train`` (its first record is the template for the shared fields)."""
    first = {}
    for r in train:
        if "refuse_harm" in r["family_ids"]:
            first.setdefault(r["manifesto_id"], r)
    rng = random.Random(f"refusal-asks-{seed}")
    queues = {"harmful": [], "benign": []}
    pools = {"harmful": harmful, "benign": benign}

    def draw(kind):
        if not queues[kind]:
            queues[kind] = rng.sample(pools[kind], len(pools[kind]))
        return queues[kind].pop()

    out, skipped = [], Counter()
    for mid in sorted(first):
        tpl = first[mid]
        rules = [{"id": r["id"], "params": json.loads(r["params"])} for r in tpl["rules"]]
        for kind, n in (("harmful", n_harmful), ("benign", n_benign)):
            for _ in range(n):
                p = draw(kind)
                base = plain.get(p.id, "")
                response, reason = make_target(base, rules, p.kind, p.text, p.topic, seed=int(_h(seed, mid, p.id), 16))
                if response is None:
                    skipped[reason] += 1
                    continue
                rec = dict(tpl, prompt=p.as_messages(), response=response, base_response=base, prompt_id=p.id,
                           prompt_kind=p.kind, source="transform")
                rec["verified"] = verify(rec["rules"], response, rec["prompt"], prompt_kind=p.kind)
                out.append(rec)
    return out, skipped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data/default", help="dataset from `hyperlora data generate`")
    parser.add_argument("--out", required=True, help="new dataset directory (must not exist)")
    parser.add_argument("--harmful", type=int, default=2, help="harmful guard asks per refusal manifesto")
    parser.add_argument("--benign", type=int, default=4, help="benign guard asks per refusal manifesto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    if not (Path(args.data) / "dataset_dict.json").exists():
        print(f"refusal_asks_data.py: error: {args.data} is not a dataset from `hyperlora data generate`",
              file=sys.stderr)
        return 2
    if out.exists():
        print(f"refusal_asks_data.py: error: {out} exists; choose another --out", file=sys.stderr)
        return 2
    if not GUARD_ASK_RESPONSES_PATH.exists():
        print("refusal_asks_data.py: error: no base replies for the guard asks; run "
              "`scripts/gen_base_responses.py --guard-asks` first", file=sys.stderr)
        return 2

    harmful, benign, info = usable_asks(args.data)
    dd = load_dataset_dir(args.data)
    train = dd["train"].to_list()
    added, skipped = new_records(train, harmful, benign, info["plain"], args.harmful, args.benign, args.seed)
    from datasets import Dataset, DatasetDict

    new = DatasetDict({s: dd[s] for s in dd})
    new["train"] = Dataset.from_list(train + added, features=dd["train"].features)
    summary = json.loads((Path(args.data) / "summary.json").read_text())
    summary["refusal_asks"] = {
        "command": " ".join(["scripts/refusal_asks_data.py", *(argv if argv is not None else sys.argv[1:])]),
        "from": args.data, "added": len(added), "by_kind": dict(Counter(r["prompt_kind"] for r in added)),
        "verified": sum(r["verified"] for r in added), "skipped": dict(skipped),
        "asks_usable": {"harmful": len(harmful), "benign": len(benign)},
        "asks_left_out_near_held_out_or_eval": info["near"], "benign_asks_without_reply": info["no_reply"]}
    with atomic_dir(out) as tmp:
        new.save_to_disk(str(tmp))
        if (Path(args.data) / "dropped.jsonl").exists():
            (tmp / "dropped.jsonl").write_text((Path(args.data) / "dropped.jsonl").read_text())
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    print(json.dumps(summary["refusal_asks"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
