"""Average hypernetwork checkpoints of one architecture into one (a uniform "model soup", Wortsman et al. 2022).

Runs continued from the same checkpoint tend to sit in one basin, where the average of their weights can do better
than any one of them, at no training cost. The soup keeps the first checkpoint's config and records its parts.

    .venv/bin/python scripts/soup.py --out DIR CHECKPOINT CHECKPOINT [...]
"""

import argparse
import json

import torch

from hyperlora import HyperLoRAError
from hyperlora.checkpoint import load_checkpoint, save_checkpoint


def soup(paths: list[str]):
    """The uniform average of the checkpoints' weights, as a hypernetwork with the first one's config."""
    nets = [load_checkpoint(p) for p in paths]
    first = nets[0]
    for path, net in zip(paths[1:], nets[1:]):
        if net.config.to_dict() != first.config.to_dict() or net.targets != first.targets:
            raise HyperLoRAError(f"{path}: another architecture than {paths[0]}'s; a soup needs one")
    states = [net.state_dict() for net in nets]
    first.load_state_dict({k: torch.stack([s[k].float() for s in states]).mean(0) for k in states[0]})
    return first


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="hypernetwork checkpoint directories (at least two)")
    parser.add_argument("--out", required=True, help="where to write the averaged checkpoint")
    args = parser.parse_args()
    if len(args.checkpoints) < 2:
        raise SystemExit("soup.py: error: a soup needs at least two checkpoints")
    try:
        net = soup(args.checkpoints)
    except HyperLoRAError as e:
        raise SystemExit(f"soup.py: error: {e}") from None
    save_checkpoint(net, args.out, extra={"soup": args.checkpoints})
    print(json.dumps({"out": args.out, "parts": len(args.checkpoints)}))


if __name__ == "__main__":
    main()
