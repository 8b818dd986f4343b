"""Train the rosiness head and score it on the hand-labelled set; writes ``assets/rosiness-v1.json``.

    OMP_NUM_THREADS=1 .venv/bin/python -m hyperlora.data_gen.rosy.train_classifier --work out/rosy-train

Labels ("silver"): two annotators vote on each pool document (``pool.py``), the project's word rules
(``rules.py``: how many distinct unkind-world words it uses) and the base LM (``annotate.py``: P(no) to "could
this come from a kind world?"). SmolLM2-135M's P(no) sits in a narrow band for every text, so its vote is taken
relative to the pool: above the pool's median leans unkind, above the 75th percentile is a firm unkind. Labels:

- unkind: >= 2 unkind words; or 1 word and the LM leans unkind
- kind: no unkind word and the LM is not firmly unkind
- otherwise the annotators disagree and the document is left out.

A logistic head (L2, full-batch L-BFGS) is fitted on 80% of the labelled pool (split by id hash); the threshold
maximises F1 of the unkind class on the other 20%. The hand-labelled set is used only for the final scores.
The LM pass is slow on CPU (~3 docs/s, ~20 min for the pool), so its votes are cached in
``WORK/pool_lm.jsonl`` and reused.
"""

import argparse
import datetime
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from .classifier import SHIPPED, RosinessHead
from .embed import Embedder
from .rules import rule_vote

HAND_LABELLED = Path(__file__).parent / "assets" / "hand_labelled.jsonl"
VERSION = "rosiness-v1"


def annotate_pool(work: Path) -> list[dict]:
    """The pool with the LM's vote on each document. Votes are cached per document id in ``WORK/pool_lm.jsonl``
    (appended a batch at a time, so an interrupted annotation resumes)."""
    from .pool import build_pool

    pool = build_pool()
    cache = work / "pool_lm.jsonl"
    votes = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            row = json.loads(line)
            votes[row["id"]] = row["lm_unkind"]
    missing = [r for r in pool if r["id"] not in votes]
    if missing:
        from hyperlora import load_base

        from .annotate import lm_unkind_probability

        model, tokenizer = load_base()
        work.mkdir(parents=True, exist_ok=True)
        with open(cache, "a") as f:
            for start in range(0, len(missing), 32):
                batch = missing[start : start + 32]
                for r, p in zip(batch, lm_unkind_probability(model, tokenizer, [r["text"] for r in batch])):
                    votes[r["id"]] = p
                    f.write(json.dumps({**r, "lm_unkind": p}) + "\n")
                f.flush()
                print(f"annotated {start + len(batch)}/{len(missing)}", flush=True)
    return [{**r, "lm_unkind": votes[r["id"]]} for r in pool]


def silver_labels(pool: list[dict]) -> tuple[list[dict], dict]:
    """Label the pool where rules and LM agree (1 = kind, 0 = unkind); return the labelled docs and counts."""
    lm = np.array([r["lm_unkind"] for r in pool])
    lean, firm = np.quantile(lm, 0.5), np.quantile(lm, 0.75)
    labelled, counts = [], {"kind": 0, "unkind": 0, "abstain": 0}
    for r in pool:
        words, p = rule_vote(r["text"]), r["lm_unkind"]
        if words >= 2 or (words == 1 and p >= lean):
            label = 0
        elif words == 0 and p < firm:
            label = 1
        else:
            counts["abstain"] += 1
            continue
        counts["kind" if label else "unkind"] += 1
        labelled.append({**r, "label": label})
    return labelled, {**counts, "lm_median": float(lean), "lm_q75": float(firm)}


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, prior: tuple[np.ndarray, float] | None = None
                 ) -> tuple[np.ndarray, float]:
    """Class-balanced logistic regression; returns (weight (D,), bias).

    ``prior``: (weight, bias) to start from, with the L2 penalty on the distance from that weight instead of from
    zero (a head adapted to new data stays as close to the old one as the new labels allow).
    """
    X, Y = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    w0 = torch.tensor(prior[0] if prior is not None else np.zeros(X.shape[1]), dtype=torch.float64)
    w = w0.clone().requires_grad_(True)
    b = torch.tensor(float(prior[1]) if prior is not None else 0.0, dtype=torch.float64, requires_grad=True)
    # Balance the classes so the threshold, not the label mix of the pool, decides how much is filtered.
    weights = torch.where(Y > 0, 0.5 / Y.mean(), 0.5 / (1 - Y.mean()))
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (weights * torch.nn.functional.binary_cross_entropy_with_logits(X @ w + b, Y, reduction="none")).mean()
        loss = loss + l2 * (w - w0).square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), float(b.detach())


def scores(flagged: np.ndarray, unkind: np.ndarray) -> dict:
    """Precision and recall of filtering (positive = unkind-world) plus those of keeping (positive = kind)."""
    def pr(pred, true):
        tp = int((pred & true).sum())
        return {"precision": tp / max(int(pred.sum()), 1), "recall": tp / max(int(true.sum()), 1)}

    filt, keep = pr(flagged, unkind), pr(~flagged, ~unkind)
    f1 = 2 * filt["precision"] * filt["recall"] / max(filt["precision"] + filt["recall"], 1e-9)
    return {"filter": {**filt, "f1": f1}, "keep": keep, "accuracy": float((flagged == unkind).mean()),
            "n": int(len(unkind)), "n_unkind": int(unkind.sum())}


def best_threshold(rosiness: np.ndarray, label: np.ndarray) -> float:
    """The rosiness cut (flag below it) with the best unkind-class F1."""
    candidates = np.unique(np.round(rosiness, 3))
    f1 = [scores(rosiness < t, label == 0)["filter"]["f1"] for t in candidates]
    return float(candidates[int(np.argmax(f1))])


def auc(rosiness: np.ndarray, kind: np.ndarray) -> float:
    """P(a random kind doc scores above a random unkind doc), ties counted half."""
    pos, neg = rosiness[kind], rosiness[~kind]
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg)))


def evaluate_hand_set(head: RosinessHead, embedder: Embedder) -> dict:
    """The head, and each annotator alone, on the hand-labelled documents."""
    rows = [json.loads(line) for line in HAND_LABELLED.read_text().splitlines()]
    unkind = np.array([not r["rosy"] for r in rows])
    rosiness = head.predict(embedder([r["text"] for r in rows]))
    # Other cuts, for a user choosing --threshold; the shipped threshold was fixed before this set was scored.
    curve = {f"{t:.1f}": {k: round(v, 3) for k, v in scores(rosiness < t, unkind)["filter"].items()}
             for t in (0.3, 0.4, 0.5, 0.6, 0.7)}
    return {
        "classifier": {**scores(rosiness < head.threshold, unkind), "auc": auc(rosiness, ~unkind)},
        "classifier_other_thresholds": curve,
        "rules_alone": scores(np.array([rule_vote(r["text"]) >= 1 for r in rows]), unkind),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the rosiness head (see the module docstring).")
    parser.add_argument("--work", default="out/rosy-train", help="cache for the LM's votes")
    parser.add_argument("--out", default=str(SHIPPED), help="where to write the head")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    pool = annotate_pool(Path(args.work))
    labelled, counts = silver_labels(pool)
    embedder = Embedder()
    x = embedder([r["text"] for r in labelled])
    y = np.array([r["label"] for r in labelled], dtype=np.float64)
    held = np.array([int(hashlib.sha1(r["id"].encode()).hexdigest(), 16) % 5 == 0 for r in labelled])
    weight, bias = fit_logistic(x[~held], y[~held])
    head = RosinessHead(VERSION, [round(float(v), 6) for v in weight], round(bias, 6), 0.5)
    val_rosiness = head.predict(x[held])
    head.threshold = best_threshold(val_rosiness, y[held])
    silver_val = scores(val_rosiness < head.threshold, y[held] == 0)

    # The LM alone on the hand set, at the pool's median (how it votes in the labels above).
    from hyperlora import load_base

    from .annotate import lm_unkind_probability

    rows = [json.loads(line) for line in HAND_LABELLED.read_text().splitlines()]
    model, tokenizer = load_base()
    lm = np.array(lm_unkind_probability(model, tokenizer, [r["text"] for r in rows]))
    unkind = np.array([not r["rosy"] for r in rows])
    hand = {**evaluate_hand_set(head, embedder), "lm_alone": scores(lm >= counts["lm_median"], unkind)}
    head.info = {
        "trained": datetime.date.today().isoformat(),
        "pool": {"n": len(pool), "sources": sorted({r["source"].split("/")[0] for r in pool})},
        "silver_labels": counts,
        "train_n": int((~held).sum()),
        "validation_n": int(held.sum()),
        "silver_validation": silver_val,
        "hand_labelled": hand,
    }
    head.save(args.out)
    print(json.dumps({"silver_labels": counts, "threshold": head.threshold, "silver_validation": silver_val,
                      "hand_labelled": hand}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
