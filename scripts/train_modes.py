"""Fine-tune a plain LoRA on the two-mode corpus and save it as a PEFT adapter: the comparison for tagged modes.

    .venv/bin/python scripts/train_modes.py --data out/modes --out runs/modes-lora [--steps 120] [--batch 8]
        [--rank 8] [--lr 2e-3] [--max-len 192] [--seed 0] [--base NAME] [--force]

One rank-`--rank` LoRA (alpha = 2 x rank, as the eval's LoRAs) on every attention and MLP projection of the base,
trained with `evals.lora_train.train_loras` (the trainer of the eval's oracle and reader rows: chat-formatted
prompts, cross-entropy on the reply tokens only, B starts at zero so step 0 is the base) on the corpus's train
split (`hyperlora data modes --out DIR`): what a practitioner would do to teach the tags without a hypernetwork.
The adapter dir loads with `hyperlora.adapter.Adapter.load` and plain `PeftModel.from_pretrained`; evaluate it
with `scripts/eval_modes.py --adapter DIR`.

Cost on 2 CPU cores (SmolLM2-135M, fp32), estimated, not measured: the corpus's records are ~100 tokens (prompt
and chat template included; a batch of 8 pads to ~140), and a forward+backward of 8 x 128 tokens takes ~6.5 s here
(DESIGN.md), so 120 steps should take ~10-13 min on free cores (much longer while another job holds them).
"""

import argparse
import time

from hyperlora.data_gen.modes import load_modes
from hyperlora.evals.lora_train import as_adapter, train_loras
from tqdm.auto import tqdm

from hyperlora.adapter import Adapter
from hyperlora.base import DEFAULT_BASE, load_base
from hyperlora.errors import HyperLoRAError


def train(model, tokenizer, records, base: str, steps: int = 120, batch: int = 8, rank: int = 8, lr: float = 2e-3,
          max_len: int = 192, seed: int = 0, progress: bool = True) -> tuple[Adapter, dict]:
    """Train the LoRA on ``records`` (corpus records: ``prompt`` messages, ``response``); ``(adapter, trained)``."""
    pairs = [(r["prompt"], r["response"]) for r in records]
    alpha = 2.0 * rank
    with tqdm(total=steps, desc="training the modes LoRA", disable=not progress) as bar:
        trained = train_loras(model, tokenizer, [pairs], rank=rank, alpha=alpha, steps=steps, per_group=batch,
                              lr=lr, max_len=max_len, seed=seed, progress=bar.update)
    losses = trained["losses"]
    adapter = as_adapter(trained["factors"][0], rank, alpha, base,
                         {"kind": "modes LoRA (plain fine-tune on the two-mode corpus)", "steps": steps,
                          "batch": batch, "lr": lr, "max_len": max_len, "seed": seed, "pairs": len(pairs),
                          "first_loss": round(losses[0], 4) if losses else None,
                          "final_loss": round(losses[-1], 4) if losses else None})
    return adapter, trained


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a `hyperlora data modes` corpus directory")
    parser.add_argument("--out", required=True, help="where to write the PEFT adapter directory")
    parser.add_argument("--base", default=DEFAULT_BASE, help="base model (default: the embedded SmolLM2-135M)")
    parser.add_argument("--steps", type=int, default=120,
                        help="optimizer steps (default 120, ~10-13 min on 2 free cores)")
    parser.add_argument("--batch", type=int, default=8, help="records a step (default 8)")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8; alpha = 2 x rank)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    parser.add_argument("--max-len", type=int, default=192, help="tokens a sequence, prompt included (default 192)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation and sampling seed (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    args = parser.parse_args(argv)
    for name in ("steps", "batch", "rank", "max_len"):
        if getattr(args, name) < 1:
            raise HyperLoRAError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    from pathlib import Path

    if Path(args.out).exists() and not args.force:  # before the model loads
        raise HyperLoRAError(f"{args.out} already exists (use --force to replace it)")
    try:
        records = load_modes(args.data, "train")
    except ValueError as e:
        raise HyperLoRAError(str(e)) from e
    if not records:
        raise HyperLoRAError(f"{args.data} has no train records")

    from hyperlora.cli import quiet_libraries

    quiet_libraries()
    start = time.perf_counter()
    model, tokenizer = load_base(args.base)
    adapter, trained = train(model, tokenizer, records, args.base, steps=args.steps, batch=args.batch,
                             rank=args.rank, lr=args.lr, max_len=args.max_len, seed=args.seed,
                             progress=not args.quiet)
    adapter.provenance["data"] = str(args.data)
    path = adapter.save(args.out, force=args.force)
    losses = trained["losses"]
    k = max(1, min(10, len(losses) // 2))
    print(f"modes LoRA: loss {sum(losses[:k]) / k:.3f} -> {sum(losses[-k:]) / k:.3f} over {args.steps} steps of "
          f"{args.batch} ({len(records)} train records), {(time.perf_counter() - start) / 60:.1f} min; wrote {path}")
    return path


if __name__ == "__main__":
    try:
        main()
    except HyperLoRAError as e:
        raise SystemExit(f"train_modes: {e}") from None
