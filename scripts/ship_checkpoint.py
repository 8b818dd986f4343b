"""Copy a training checkpoint into the package as the shipped default (bf16), with its training log and curves.

    .venv/bin/python scripts/ship_checkpoint.py --run runs/cpu [--which last|final] [--to DIR]

`hyperlora train` does this itself at the end of a run whose config sets `ship:`; this script ships a run that was
stopped early (its last save), recording the step it reached.
"""

import argparse
import json
from pathlib import Path

import torch

from hyperlora import HyperLoRA
from hyperlora.generator import shipped_checkpoint
from hyperlora.train import plot_curves


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="the training run's out dir")
    parser.add_argument("--which", default="last", choices=["last", "final"])
    parser.add_argument("--to", default=None, help="default: the package's checkpoint dir for the run's base")
    args = parser.parse_args()
    run = Path(args.run)
    source = run / "last" / "hypernet" if args.which == "last" else run / "final"
    hl = HyperLoRA.from_pretrained(source)
    config = hl.hypernet.checkpoint_config
    state = json.loads((run / "last" / "train_state.json").read_text())
    extra = {k: v for k, v in config.items() if k not in ("format", "hypernet", "base_model", "encoder_dim",
                                                           "targets", "target_shape_hash")}
    extra.update({"trained": True, "step": config.get("step", state["step"]), "train_config": state["config"]})
    to = Path(args.to) if args.to else shipped_checkpoint(hl.config.base_model)
    hl.save_pretrained(to, extra=extra, dtype=torch.bfloat16)
    rows = [line for line in (run / "log.jsonl").read_text().splitlines() if json.loads(line)["step"] <= extra["step"]]
    (to / "log.jsonl").write_text("".join(r + "\n" for r in rows))
    plot_curves(to / "log.jsonl", to / "loss.png")
    print(f"shipped {source} (step {extra['step']}) -> {to}")


if __name__ == "__main__":
    main()
