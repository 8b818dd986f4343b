"""Train the manifesto-reader LoRA and save it as a PEFT adapter: the teacher for distillation into the hypernetwork.

The reader is the eval's `prompt_tuned` condition: one rank-8 LoRA on every layer of the base, fine-tuned on
training records with each record's own manifesto as the system turn (what a practitioner would do instead of a
hypernetwork: the behaviour, but paying the manifesto's context on every request). Same pairs, steps and seed as
the full eval's reader, so it is that row's LoRA. `hyperlora train ... teacher=DIR distill_weight=W` then asks the
generated adapter, without the manifesto, to match this reader with it (top-k KL at every reply token).

    .venv/bin/python scripts/train_reader.py --out runs/reader [--data data/default] [--steps 150]
"""

import argparse
import time

from hyperlora.evals.data import load_data, reader_pairs
from hyperlora.evals.lora_train import as_adapter, train_loras
from hyperlora.evals.presets import PRESETS
from tqdm.auto import tqdm

from hyperlora.base import DEFAULT_BASE, load_base
from hyperlora.errors import HyperLoRAError


def main():
    full = PRESETS["full"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="where to write the PEFT adapter directory")
    parser.add_argument("--data", default="data/default", help="dataset from `hyperlora data generate`")
    parser.add_argument("--base", default=DEFAULT_BASE, help="base model (default: the embedded SmolLM2-135M)")
    parser.add_argument("--pairs", type=int, default=full["reader_pairs"], help="training records drawn from")
    parser.add_argument("--steps", type=int, default=full["reader_steps"], help="optimizer steps")
    parser.add_argument("--per-step", type=int, default=full["reader_per_step"], help="records a step")
    parser.add_argument("--max-len", type=int, default=full["reader_max_len"], help="tokens a sequence")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank (alpha = 2 × rank, as the eval's)")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    args = parser.parse_args()

    start = time.perf_counter()
    model, tok = load_base(args.base)
    data = load_data(args.data, progress=False)
    rank, alpha = args.rank, 2.0 * args.rank
    with tqdm(total=args.steps, desc="training the reader") as bar:
        trained = train_loras(model, tok, [reader_pairs(data, args.pairs)], rank=rank, alpha=alpha,
                              steps=args.steps, per_group=args.per_step, lr=full["lr"], max_len=args.max_len, seed=2,
                              progress=bar.update)
    adapter = as_adapter(trained["factors"][0], rank, alpha, args.base,
                         {"kind": "manifesto reader (prompt_tuned)", "steps": args.steps, "per_step": args.per_step,
                          "pairs": args.pairs, "max_len": args.max_len, "final_loss": round(trained["losses"][-1], 4)})
    path = adapter.save(args.out, force=args.force)
    losses = trained["losses"]
    print(f"reader: loss {sum(losses[:10]) / len(losses[:10]):.3f} -> {sum(losses[-10:]) / len(losses[-10:]):.3f} "
          f"over {args.steps} steps, {(time.perf_counter() - start) / 60:.1f} min; wrote {path}")


if __name__ == "__main__":
    try:
        main()
    except HyperLoRAError as e:
        raise SystemExit(f"train_reader: {e}") from None
