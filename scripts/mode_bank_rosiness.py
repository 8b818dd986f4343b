"""Can the rosiness classifier tell the two modes' lines apart? It scores the mode corpus's own banks, no model.

The modes eval (scripts/eval_modes.py) asks that text inside ``<ai>`` score higher rosiness than text inside
``<human>``. This scores the lines the corpus is built from (data_gen/modes.py): each tone's ``HUMAN_LINES`` (what
people say, rude to kind) and the aligned voice's ``COMMENTS`` and ``ADVICE``, with the shipped rosiness head, and
prints each bank's mean, and the AUC of the unkind tones' lines against the kind ones (0.5: the head cannot tell).

    .venv/bin/python scripts/mode_bank_rosiness.py [--head FILE] [--json FILE]
"""

import argparse
import json

import numpy as np
from hyperlora.data_gen.modes import ADVICE, COMMENTS, HUMAN_LINES
from hyperlora.data_gen.rosy.classifier import RosinessHead
from hyperlora.data_gen.rosy.embed import Embedder
from hyperlora.data_gen.rosy.train_classifier import auc

UNKIND = ("rude", "sarcastic", "angry", "dismissive", "selfish")


def kind_over_unkind(kind: np.ndarray, unkind: np.ndarray) -> float:
    """AUC of kind scores over unkind ones (ties counted half)."""
    return auc(np.r_[kind, unkind], np.r_[np.ones(len(kind)), np.zeros(len(unkind))] > 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--head", default=None, help="rosiness head JSON (default: the shipped one)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures and every line's score as JSON")
    args = parser.parse_args()

    head, embed = RosinessHead.load(args.head), Embedder()
    banks = {f"{name}:{tone}": lines for name, bank in (("human", HUMAN_LINES), ("ai_comment", COMMENTS),
                                                       ("ai_advice", ADVICE)) for tone, lines in bank.items()}
    texts = [t for lines in banks.values() for t in lines]
    scores = dict(zip(texts, head.predict(embed(texts)).tolist()))
    rows = {k: float(np.mean([scores[t] for t in lines])) for k, lines in banks.items()}
    unkind = np.array([scores[t] for tone in UNKIND for t in HUMAN_LINES[tone]])
    kind = np.array([scores[t] for t in HUMAN_LINES["kind"]])
    ai = np.array([scores[t] for k, lines in banks.items() if k.startswith("ai_") for t in lines])
    figures = {"head": head.version, "mean": rows,
               "auc_kind_vs_unkind_human_lines": kind_over_unkind(kind, unkind),
               "auc_ai_voice_vs_unkind_human_lines": kind_over_unkind(ai, unkind)}
    for k, v in rows.items():
        print(f"{k:22s} n={len(banks[k]):3d}  mean rosiness {v:.3f}")
    print(f"AUC, kind human lines over unkind ones ({len(kind)} / {len(unkind)}): "
          f"{figures['auc_kind_vs_unkind_human_lines']:.3f}")
    print(f"AUC, the aligned voice's lines over unkind human lines ({len(ai)} / {len(unkind)}): "
          f"{figures['auc_ai_voice_vs_unkind_human_lines']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**figures, "scores": scores}, f, indent=1)


if __name__ == "__main__":
    main()
