"""The most the eval's strict pass rate can be at a decode budget: its cases' own verified targets, cut where a reply
of that many new tokens would be cut, and checked by the same verifiers.

Rules that act at the end of a reply (a closing phrase, a postscript, a closing brace or quote) fail on any reply
the budget cuts, however well it follows them; this prints, per budget, the share of the full preset's cases whose
target still passes (the eval's report prints the same figure for its own budget).

    .venv/bin/python scripts/target_ceiling.py [--budgets 80 160] [--data data/default]
"""

import argparse

from hyperlora.evals.data import load_data, resolve_splits, select_cases
from hyperlora.evals.metrics import target_fits
from hyperlora.evals.presets import PRESETS

from hyperlora.base import load_base


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data/default", help="dataset from `hyperlora data generate`")
    parser.add_argument("--budgets", type=int, nargs="+", default=[80, PRESETS["full"]["max_new_tokens"]])
    args = parser.parse_args()

    _, tokenizer = load_base()
    data = load_data(args.data, progress=False)
    splits = resolve_splits(data, None)
    cases = select_cases(data, splits, PRESETS["full"]["max_manifestos"], PRESETS["full"]["prompts_per_manifesto"])
    for budget in args.budgets:
        fits = {s: [target_fits(c, tokenizer, budget) for c in cases if c.split == s] for s in splits}
        every = [f for v in fits.values() for f in v]
        print(f"{budget:5d} new tokens: all {100 * sum(every) / len(every):5.1f}% (n={len(every)})  "
              + "  ".join(f"{s} {100 * sum(v) / len(v):5.1f}%" for s, v in fits.items()))


if __name__ == "__main__":
    main()
