"""Write an untrained (ΔW = 0) hypernetwork checkpoint for a base model.

    .venv/bin/python scripts/init_checkpoint.py [--base smollm2-135m-instruct] [--out DIR] [--seed 0]

Its adapters change nothing until the hypernetwork is trained (`hyperlora train`); it exists so that every
path (generate-adapter, PEFT export, evals) works end to end before a trained checkpoint ships.
"""

import argparse

import torch

from hyperlora import HyperLoRA, HyperNetConfig
from hyperlora.base import DEFAULT_BASE, meta_model
from hyperlora.generator import shipped_checkpoint


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE)
    parser.add_argument("--out", default=None, help="default: the package's shipped checkpoint dir for --base")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    hl = HyperLoRA.for_model(meta_model(args.base), HyperNetConfig(base_model=args.base), seed=args.seed)
    out = args.out or shipped_checkpoint(args.base)
    # bf16 halves the file; ΔW stays exactly zero (zeros are exact) and loading upcasts to fp32.
    hl.save_pretrained(out, extra={"trained": False, "seed": args.seed}, dtype=torch.bfloat16)
    print(f"wrote untrained checkpoint {out}")


if __name__ == "__main__":
    main()
