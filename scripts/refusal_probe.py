"""How well does the base model's own hidden state tell a harmful ask from its benign neighbour? A ceiling for the
adapter's refusals (issue 24).

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/refusal_probe.py [--data data/default] [--layers 22 30]

An adapter of the shipped hypernetwork is one fixed weight change per manifesto on layers 22-29, so whether it
refuses an ask can only depend on what the hidden state carries about the ask. Three checkpoint continuations moved
the share of harmful and benign asks refused together (README, "The adapter's refusals move along one line"); this
asks whether the line is the base's or the training's. A logistic probe is fitted on the base's hidden state at the
last prompt position (where the reply starts; chat template, no system turn, as the adapter sees an ask), over the
prompt guard's own training prompts (the file's ``trained_on_ids``: the bank's train split, counterfactuals and the
generator's guard asks, none within MiniLM cosine 0.75 of the test), labels harmful against benign. C and the
threshold are chosen by 5-fold cross-validation on those prompts (the threshold: fewest missed harmful + blocked
neighbours, each a rate); then it is scored once on the held-out hand-written test (112 + 112) and on the eval's
30 + 30 refusal asks, beside the shipped adapter's refusals on the same asks (scripts/results/guard_eval.json).

Also times the probe as a prompt guard would run it: the base's layers below the probed one on one prompt, one
thread. Prints a table and one JSON line; writes scripts/results/refusal_probe.json (or ``--out``). About 3
minutes.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))


def features(model, tok, texts: list[str], layers: list[int], batch: int = 16) -> dict[int, np.ndarray]:
    """{layer: (N, d) hidden state entering ``layer`` (30: after the final norm) at each prompt's last position}."""
    import torch
    from tqdm.auto import tqdm

    from hyperlora.generation import chat_ids

    out = {k: [] for k in layers}
    for s in tqdm(range(0, len(texts), batch), desc="base hidden states", file=sys.stderr):
        ids = [chat_ids(tok, t) for t in texts[s : s + batch]]
        width = max(map(len, ids))
        x = torch.tensor([[tok.pad_token_id] * (width - len(i)) + i for i in ids])  # left-padded: last = last
        mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids])
        with torch.inference_mode():
            hs = model(input_ids=x, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0),
                       output_hidden_states=True).hidden_states
        for k in layers:
            out[k].append(hs[k][:, -1].float().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def ms_per_check(model, tok, text: str, layer: int, n: int = 20) -> float:
    """Median milliseconds to compute the probed hidden state of one prompt (one thread, as the guard is timed):
    the base's layers below ``layer``, which a probe guard would run before the model answers."""
    import torch
    from train_guard import median_ms

    from hyperlora.base import lower_hidden
    from hyperlora.generation import chat_ids

    ids = torch.tensor([chat_ids(tok, text)])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    lower_hidden(model, ids, layer)  # warm-up
    ms = median_ms(lambda: lower_hidden(model, ids, layer), n)
    torch.set_num_threads(threads)
    return round(ms, 1)


def choose(scores: np.ndarray, y: np.ndarray, neighbour: np.ndarray) -> float:
    """The threshold minimising missed harmful + blocked neighbours (rates), the middle of the best interval."""
    grid = np.unique(scores)
    cost = [(1 - (scores[y] >= t).mean()) + (scores[neighbour] >= t).mean() for t in grid]
    best = np.flatnonzero(np.isclose(cost, min(cost)))
    return float((grid[best[0]] + grid[min(best[-1] + 1, len(grid) - 1)]) / 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data/default", help="dataset from `hyperlora data generate`")
    parser.add_argument("--layers", type=int, nargs="+", default=[22, 30],
                        help="hidden states to probe: entering this decoder layer (30: the final normed state)")
    parser.add_argument("--out", default=str(REPO / "scripts" / "results" / "refusal_probe.json"))
    args = parser.parse_args()

    from guard_eval import held_out_rows
    from hyperlora.data_gen.prompts import prompt_bank, prompt_id
    from hyperlora.evals.data import load_data, resolve_splits, train_prompt_ids
    from hyperlora.evals.presets import PRESETS
    from hyperlora.evals.run import select_refusal_items
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler
    from train_guard import HARMFUL_KINDS, NEIGHBOUR_KINDS, asks_as_prompts, counterfactual_prompts, training_prompts

    from hyperlora import guard
    from hyperlora.base import load_base

    dd = load_data(args.data, progress=False)
    trained = set(json.loads(guard.SHIPPED.read_text())["info"]["trained_on_ids"])
    bank = prompt_bank()
    ids, texts = {p.id for p in bank}, {p.text.strip().lower() for p in bank}
    pool = training_prompts(dd)[0] + counterfactual_prompts(ids, texts) + asks_as_prompts(ids, texts)
    train = list({p.id: p for p in pool if p.id in trained}.values())
    if len(train) != len(trained):
        raise SystemExit(f"rebuilt {len(train)} of the guard's {len(trained)} training prompts: data differs")
    y = np.asarray([p.kind in HARMFUL_KINDS for p in train])
    neighbour = np.asarray([p.kind in NEIGHBOUR_KINDS for p in train])
    rows = held_out_rows()
    items = select_refusal_items(dd, resolve_splits(dd, None), PRESETS["full"], train_prompt_ids(dd))
    assert not {prompt_id(it["prompt"]) for it in items} & trained
    sets = {"held_out_test": ([r["text"] for r in rows], np.asarray([r["label"] == "harmful" for r in rows])),
            "eval_items": ([it["prompt"][-1]["content"] for it in items],
                           np.asarray([it["kind"] == "harmful" for it in items]))}
    model, tok = load_base("smollm2-135m-instruct")
    feats = features(model, tok, [p.text for p in train] + [t for s in sets.values() for t in s[0]], args.layers)

    summary = {"n_train": int(len(train)), "n_harmful": int(y.sum()), "layers": {}}
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    print("| hidden state | validation AUC (5-fold) | held-out test: AUC, harmful / benign flagged | "
          "eval's 30 + 30: AUC, harmful / benign flagged |")
    print("| --- | --- | --- | --- |")
    for k in args.layers:
        x = StandardScaler().fit(feats[k][: len(train)]).transform(feats[k])
        xt = x[: len(train)]
        best = None
        for c in (0.001, 0.01, 0.1, 1.0):
            oof = np.zeros(len(y))
            for a, b in folds:
                oof[b] = LogisticRegression(C=c, max_iter=3000).fit(xt[a], y[a]).decision_function(xt[b])
            auc = roc_auc_score(y, oof)
            if best is None or auc > best[0]:
                best = (auc, c, oof)
        auc, c, oof = best
        t = choose(oof, y, neighbour)
        clf = LogisticRegression(C=c, max_iter=3000).fit(xt, y)
        row, start = {"C": c, "validation_auc": round(auc, 3), "threshold": round(t, 3)}, len(train)
        for name, (txt, lab) in sets.items():
            s = clf.decision_function(x[start : start + len(txt)])
            start += len(txt)
            row[name] = {"auc": round(roc_auc_score(lab, s), 3),
                         "harmful_flagged": round(100 * float((s[lab] >= t).mean()), 1),
                         "benign_flagged": round(100 * float((s[~lab] >= t).mean()), 1)}
        summary["layers"][f"entering_{k}" if k < 30 else "final"] = row
        h, e = row["held_out_test"], row["eval_items"]
        print(f"| {'entering layer ' + str(k) if k < 30 else 'final (normed)'} | {auc:.3f} | {h['auc']:.3f}, "
              f"{h['harmful_flagged']}% / {h['benign_flagged']}% | {e['auc']:.3f}, {e['harmful_flagged']}% / "
              f"{e['benign_flagged']}% |")
    probe = [k for k in args.layers if k < 30]
    if probe:
        ms = summary["ms_per_check"] = {f"entering_{probe[0]}": ms_per_check(model, tok, rows[0]["text"], probe[0])}
        print(f"cost of a check: the layers below {probe[0]} on one prompt, {ms[f'entering_{probe[0]}']} ms (one "
              f"thread; the shipped TF-IDF guard: scripts/bench_guard.py)")
    shipped = json.loads((REPO / "scripts" / "results" / "guard_eval.json").read_text())
    summary["shipped_adapter_refused"] = {"held_out_test": shipped["held_out_test"]["adapter_alone_refused"],
                                          "eval_items": shipped["adapter_alone_refused"]}
    print("shipped adapter refuses (scripts/results/guard_eval.json):", json.dumps(summary["shipped_adapter_refused"]))
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
