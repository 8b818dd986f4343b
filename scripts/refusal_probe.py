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

With ``--directions FILE`` it also fits, at each adapted layer, the same probe on the normed hidden state that layer's
q_proj / k_proj / v_proj read (the base's input_layernorm), and writes the directions there: the fixed A of a
hypernetwork's probe rows (hypernet.probe_rank, train's probe_directions=FILE). Each is scaled to unit spread over
the training prompts. About 2 minutes more.

With ``--follows REPORT...`` (scripts/guard_eval.py outputs) it also says, within each kind of hand-written ask, how
well the probe's score ranks the asks a checkpoint refused above those it answered: whether its refusals follow
what the base's state carries.

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


def fit(x: np.ndarray, y: np.ndarray, folds) -> tuple:
    """(validation AUC, C, out-of-fold scores, probe on all of ``x``): a logistic probe on standardised features, C
    chosen by the folds' AUC."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best = None
    for c in (0.001, 0.01, 0.1, 1.0):
        oof = np.zeros(len(y))
        for a, b in folds:
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
            oof[b] = clf.fit(x[a], y[a]).decision_function(x[b])
        auc = roc_auc_score(y, oof)
        if best is None or auc > best[0]:
            best = (auc, c, oof)
    auc, c, oof = best
    return auc, c, oof, make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000)).fit(x, y)


def save_directions(model, hidden: dict[int, np.ndarray], y: np.ndarray, neighbour: np.ndarray, folds,
                    n_train: int, held_out, out: str):
    """Fit a probe on each layer's normed input (what its q/k/v read) and write the directions for probe rows.

    A LoRA row reads a·x with no bias, and the probe's logit w·x + b has a large offset: a row along w alone would
    push harmful asks and neighbours the same way, only by different amounts. Every prompt ends on the same chat
    tokens, so the last position's states share a large common part m (their mean), and m·x / |m|² is close to 1
    there: a = w + (b - t)·m / |m|² reads the logit minus the probe's threshold t, positive for an ask the probe
    flags and negative for one it passes. Scaled to unit spread over the training prompts."""
    import safetensors.torch
    import torch
    from sklearn.metrics import roc_auc_score

    directions, report = [], {}
    for k, h in sorted(hidden.items()):
        with torch.no_grad():
            x = model.model.layers[k].input_layernorm(torch.from_numpy(h)).float().numpy()
        xt = x[:n_train]
        auc, c, oof, clf = fit(xt, y, folds)
        scaler, lr = clf[0], clf[-1]
        w = lr.coef_[0] / scaler.scale_  # the logit in raw units: w·x + b
        b = float(lr.intercept_[0] - w @ scaler.mean_)
        t = choose(oof, y, neighbour)  # in the same (decision-function) units as w·x + b
        m = xt.mean(0)
        a = (w + (b - t) * m / (m @ m)) / (xt @ w).std()
        labels = held_out[1]
        test = x[n_train : n_train + len(labels)] @ a
        report[k] = {"C": c, "validation_auc": round(auc, 3), "held_out_auc": round(roc_auc_score(labels, test), 3),
                     "read_harmful": round(float(test[labels].mean()), 2),
                     "read_benign": round(float(test[~labels].mean()), 2),
                     "flags": [round(100 * float((test[labels] > 0).mean()), 1),
                               round(100 * float((test[~labels] > 0).mean()), 1)]}
        directions.append(a)
        r = report[k]
        print(f"probe row direction, layer {k}: validation AUC {auc:.3f} (C={c}); held-out test AUC "
              f"{r['held_out_auc']:.3f}, mean read {r['read_harmful']} harmful / {r['read_benign']} benign, "
              f"above zero {r['flags'][0]}% / {r['flags'][1]}%")
    tensors = {"directions": torch.tensor(np.stack(directions), dtype=torch.float32)[:, None, :],  # (layers, 1, d)
               "layers": torch.tensor(sorted(hidden))}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(tensors, out, metadata={"report": json.dumps(report)})
    print(f"wrote {out}: {len(directions)} directions for hypernet.probe_rank=1")


def follows(scores: np.ndarray, harmful: np.ndarray, reports: list[str]) -> dict:
    """{report: {kind: AUC}}: within each kind of hand-written ask, how well the probe's score ranks the asks an
    adapter refused above those it answered (0.5: its refusals ignore what the probe reads; 1: they follow it)."""
    from sklearn.metrics import roc_auc_score

    out = {}
    for report in reports:
        flags = json.loads(Path(report).read_text())["held_out_test"]["flags"]
        path = str(Path(report).resolve().relative_to(REPO)) if Path(report).resolve().is_relative_to(REPO) else report
        out[path] = {}
        for kind, mask in (("harmful", harmful), ("benign", ~harmful)):
            refused = np.asarray(flags[kind]["alone"], bool)
            mixed = 0 < refused.sum() < mask.sum()  # an AUC needs both refused and answered asks
            out[path][kind] = round(roc_auc_score(refused, scores[mask]), 3) if mixed else None
        print(f"refusals that follow the probe (AUC within kind: harmful, benign): {out[path]} {path}")
    return out


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
    parser.add_argument("--directions", metavar="FILE",
                        help="also write each adapted layer's probe direction here (for hypernet.probe_rank)")
    parser.add_argument("--follows", nargs="*", default=[], metavar="GUARD_EVAL_JSON",
                        help="also report how closely these checkpoints' refusals (scripts/guard_eval.py --out) "
                             "follow the first layer's probe on the hand-written asks (the shipped weights' always)")
    parser.add_argument("--adapted", type=int, nargs="+", default=list(range(22, 30)),
                        help="the layers whose directions --directions writes (the shipped hypernetwork's: 22-29)")
    args = parser.parse_args()

    from guard_eval import held_out_rows
    from hyperlora.data_gen.prompts import prompt_bank, prompt_id
    from hyperlora.evals.data import load_data, resolve_splits, train_prompt_ids
    from hyperlora.evals.presets import PRESETS
    from hyperlora.evals.run import select_refusal_items
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
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
    wanted = sorted(set(args.layers) | (set(args.adapted) if args.directions else set()))
    feats = features(model, tok, [p.text for p in train] + [t for s in sets.values() for t in s[0]], wanted)

    summary = {"n_train": int(len(train)), "n_harmful": int(y.sum()), "layers": {}}
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    print("| hidden state | validation AUC (5-fold) | held-out test: AUC, harmful / benign flagged | "
          "eval's 30 + 30: AUC, harmful / benign flagged |")
    print("| --- | --- | --- | --- |")
    for k in args.layers:
        auc, c, oof, clf = fit(feats[k][: len(train)], y, folds)
        t = choose(oof, y, neighbour)
        row, start = {"C": c, "validation_auc": round(auc, 3), "threshold": round(t, 3)}, len(train)
        for name, (txt, lab) in sets.items():
            s = clf.decision_function(feats[k][start : start + len(txt)])
            if name == "held_out_test" and k == args.layers[0]:
                scores = s
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
    reports = [str(REPO / "scripts" / "results" / "guard_eval.json"), *args.follows]
    summary["follows"] = follows(scores, sets["held_out_test"][1], reports)
    summary["shipped_adapter_refused"] = {"held_out_test": shipped["held_out_test"]["adapter_alone_refused"],
                                          "eval_items": shipped["adapter_alone_refused"]}
    print("shipped adapter refuses (scripts/results/guard_eval.json):", json.dumps(summary["shipped_adapter_refused"]))
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    if args.directions:
        save_directions(model, {k: feats[k] for k in args.adapted}, y, neighbour, folds, len(train),
                        sets["held_out_test"], args.directions)


if __name__ == "__main__":
    main()
