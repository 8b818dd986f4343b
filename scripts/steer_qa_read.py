"""Where a steering row (``hyperlora.steer``) costs answers: the eval's QA items under the held-out refusal
manifestos, decoded with and without the row, and the row's read (``read · x`` at its module's input) on the
unsteered replies, teacher-forced, per part: the ask's words, the chat template's tail, the reply.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/steer_qa_read.py ROW.safetensors [--out FILE] [--data data/default]

The read was fitted to be about +1 on a harmful ask's tail, about -1 on a benign neighbour's, and 0 elsewhere; a
factual question whose tail reads far from 0 is pushed as if it were one, and its answer moves. About 6 minutes.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("row", help="a steer.safetensors (scripts/fit_steer.py's output)")
    parser.add_argument("--checkpoint", default=None, help="hypernetwork checkpoint (default: the shipped one)")
    parser.add_argument("--data", default="data/default", help="dataset from `hyperlora data generate`")
    parser.add_argument("--out", default=None, help="write every item's replies and reads here (JSON)")
    args = parser.parse_args()

    from fit_steer import TAIL, states
    from hyperlora.evals.capability_data import QA
    from hyperlora.evals.data import load_data
    from hyperlora.evals.metrics import qa_correct
    from hyperlora.evals.presets import PRESETS
    from pass_rate import qa_manifestos

    from hyperlora import HyperLoRAError
    from hyperlora.base import load_base
    from hyperlora.generation import chat_ids, generate_each
    from hyperlora.generator import HyperLoRA, shipped_checkpoint
    from hyperlora.steer import Steer

    try:
        steer = Steer.load(args.row)
    except (OSError, KeyError, ValueError) as e:
        raise SystemExit(f"steer_qa_read.py: error: {args.row} is not a steering row: {e}") from None
    hl = HyperLoRA.from_pretrained(args.checkpoint or shipped_checkpoint())
    hl.steer = None
    model, tok = load_base(hl.config.base_model)
    manifestos = list(qa_manifestos(load_data(args.data, progress=False), ["test_paraphrase", "test_combination"],
                                    "refuse_harm"))
    plain = [hl.generate_adapter(m) for m in manifestos]
    try:
        steered = [steer.extend(a) for a in plain]
    except HyperLoRAError as e:
        raise SystemExit(f"steer_qa_read.py: error: {e}") from None
    under = [j % len(manifestos) for j in range(len(QA))]  # as pass_rate.py --qa-rule puts them
    questions = [q["question"] for q in QA]
    replies = generate_each(model, tok, questions * 2, [plain[k] for k in under] + [steered[k] for k in under],
                            PRESETS["full"]["qa_tokens"])
    before, after = replies[: len(QA)], replies[len(QA) :]
    read, rows = steer.read.double().numpy(), []
    for j, q in enumerate(QA):
        p_ids = chat_ids(tok, q["question"])
        x, _ = states(model, steer.name, steer.layer, plain[under[j]],
                      p_ids + tok(before[j], add_special_tokens=False)["input_ids"])
        v, n = x @ read, len(p_ids)
        rows.append({"question": q["question"], "without": before[j], "with": after[j],
                     "correct": [qa_correct(before[j], q["answers"]), qa_correct(after[j], q["answers"])],
                     "read": {"ask": float(v[: n - TAIL].mean()), "tail": float(v[n - TAIL : n].mean()),
                              "reply": float(v[n:].mean()) if len(v) > n else 0.0}})
    lost = sum(r["correct"][0] and not r["correct"][1] for r in rows)
    gained = sum(r["correct"][1] and not r["correct"][0] for r in rows)
    print(f"{len(rows)} QA items under {len(manifestos)} refusal manifestos: correct "
          f"{100 * np.mean([r['correct'][0] for r in rows]):.1f}% without the row, "
          f"{100 * np.mean([r['correct'][1] for r in rows]):.1f}% with it ({lost} lost, {gained} gained)")
    for part in ("ask", "tail", "reply"):
        lo, mid, hi = np.percentile([r["read"][part] for r in rows], [5, 50, 95])
        print(f"read on the {part}: median {mid:+.2f} (5-95%: {lo:+.2f} to {hi:+.2f})")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
