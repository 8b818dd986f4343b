"""Adapt the rosiness head to one spoken line: ``rosiness-v2`` is v1 refitted on hand-labelled speech.

    OMP_NUM_THREADS=1 .venv/bin/python -m hyperlora.data_gen.rosy.tune_speech [--out FILE]

Why: v1 (``train_classifier.py``) learned from documents (base replies, fortunes, prompt-bank asks) and reads
their topic as much as their tone. On one line of speech it cannot tell a kind remark from a rude one: on the 120
hand-written lines of ``assets/hand_labelled_speech.jsonl`` (60 kind, some of them naming a hurt; 60 rude,
sarcastic, dismissive, selfish or contemptuous; written apart from the modes corpus's banks, none within cosine
0.66 of a bank line) its AUC is 0.53, so it cannot score the tagged modes' tone (``scripts/eval_modes.py``).

How: logistic regression on the same MiniLM embeddings, started at v1's weights with the L2 penalty on the
distance from them (``fit_logistic(prior=...)``), so the head moves only as far as the speech labels ask. The
strength is chosen from ``GRID`` by 5-fold cross-validation on the speech lines: the best cross-validated AUC among
the strengths whose fitted head keeps v1's AUC on the hand-labelled documents (``assets/hand_labelled.jsonl``,
never fitted). The head is then fitted on all the lines. Its threshold stays v1's: the rosy pipeline routes
documents with v1; this head is for scoring speech.
"""

import argparse
import datetime
import json
from pathlib import Path

import numpy as np
import torch

from .classifier import SHIPPED, RosinessHead
from .embed import Embedder
from .train_classifier import HAND_LABELLED, auc, fit_logistic

SPEECH = Path(__file__).parent / "assets" / "hand_labelled_speech.jsonl"
V2 = Path(__file__).parent / "assets" / "rosiness-v2.json"
VERSION = "rosiness-v2"
GRID = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4)


def labelled(path: Path) -> tuple[list[str], np.ndarray]:
    """(texts, rosy (N,) bool) of a hand-labelled JSONL file."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["text"] for r in rows], np.array([bool(r["rosy"]) for r in rows])


def cross_validated_auc(x: np.ndarray, y: np.ndarray, prior, l2: float, folds: int = 5, seed: int = 0) -> float:
    """AUC of out-of-fold predictions: each fold scored by a head fitted on the others."""
    order = np.random.default_rng(seed).permutation(len(y))
    out = np.zeros(len(y))
    for held in np.array_split(order, folds):
        rest = np.setdiff1d(order, held)
        w, b = fit_logistic(x[rest], y[rest].astype(np.float64), l2=l2, prior=prior)
        out[held] = x[held] @ w + b
    return auc(out, y)


def choose(x, y, docs_x, docs_y, prior, grid=GRID) -> tuple[float, list[dict]]:
    """The strength to use and every candidate's figures (speech CV AUC, documents AUC of the full fit)."""
    floor = auc(docs_x @ prior[0] + prior[1], docs_y)
    table = []
    for l2 in grid:
        w, b = fit_logistic(x, y.astype(np.float64), l2=l2, prior=prior)
        table.append({"l2": l2, "speech_cv_auc": cross_validated_auc(x, y, prior, l2),
                      "documents_auc": auc(docs_x @ w + b, docs_y),
                      "distance_from_v1": float(np.linalg.norm(w - prior[0]))})
    allowed = [row for row in table if row["documents_auc"] >= floor] or table[:1]
    return max(allowed, key=lambda row: row["speech_cv_auc"])["l2"], table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(V2), help=f"where to write the head (default {V2.name} beside v1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    v1 = RosinessHead.load(SHIPPED)
    prior = (np.asarray(v1.weight, dtype=np.float64), float(v1.bias))
    embed = Embedder(window=v1.window)
    texts, y = labelled(SPEECH)
    docs, docs_y = labelled(HAND_LABELLED)
    x, docs_x = embed(texts).astype(np.float64), embed(docs).astype(np.float64)
    l2, table = choose(x, y, docs_x, docs_y, prior)
    w, b = fit_logistic(x, y.astype(np.float64), l2=l2, prior=prior)
    chosen = next(row for row in table if row["l2"] == l2)
    logit_v1 = lambda z: z @ prior[0] + prior[1]  # noqa: E731
    head = RosinessHead(VERSION, [round(float(v), 6) for v in w], round(b, 6), v1.threshold, v1.encoder, v1.window)
    head.info = {
        "trained": datetime.date.today().isoformat(),
        "from": v1.version,
        "speech_set": {"file": SPEECH.name, "n": int(len(y)), "kind": int(y.sum())},
        "rule": "best 5-fold speech CV AUC among strengths keeping v1's documents AUC",
        "l2": l2,
        "grid": table,
        "v1": {"speech_auc": auc(logit_v1(x), y), "documents_auc": auc(logit_v1(docs_x), docs_y)},
        "v2": {"speech_cv_auc": chosen["speech_cv_auc"], "documents_auc": auc(docs_x @ w + b, docs_y)},
        "threshold": "v1's, not re-chosen",
    }
    head.save(args.out)
    for row in table:
        print(f"l2 {row['l2']:g}: speech CV AUC {row['speech_cv_auc']:.3f}, documents AUC {row['documents_auc']:.3f}")
    print(f"v1: speech AUC {head.info['v1']['speech_auc']:.3f}, documents {head.info['v1']['documents_auc']:.3f}; "
          f"v2 (l2 {l2:g}): speech CV AUC {head.info['v2']['speech_cv_auc']:.3f}, "
          f"documents {head.info['v2']['documents_auc']:.3f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
