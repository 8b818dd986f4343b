"""Do a lowercase and an uppercase manifesto make replies in different cases?

The behaviour beside ``scripts/rule_contrast.py``'s weight geometry, which gives the two rules cosine 1.00.

Every phrasing of the ``lowercase`` and ``uppercase`` rules is written after the same preamble, and each manifesto's
generated adapter answers the same general prompts (greedy, one batched decode). For each rule it prints the mean
share of capital letters in the replies, the share of replies that pass the rule's own verifier, and the same for
the preamble alone and for no adapter at all.

    .venv/bin/python scripts/case_probe.py [--checkpoint DIR] [--prompts 8] [--max-new-tokens 64] [--json FILE]
"""

import argparse
import json

from hyperlora.data_gen.rules import get_family
from hyperlora.data_gen.verifiers import verify
from rule_contrast import PREAMBLE  # the same preamble as the weight geometry's

from hyperlora import HyperLoRAError, load_base
from hyperlora.generation import generate_each
from hyperlora.generator import HyperLoRA

PROMPTS = ["How do vaccines work?", "Give me three tips for a job interview.", "Why is the sky blue?",
           "Write a short note to a neighbour about a lost cat.", "What is a good way to start learning to cook?",
           "Explain what a budget is.", "Tell me about the moon.", "How can I sleep better?",
           "What makes a good friend?", "Describe a rainy afternoon."]


def capital_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(c.isupper() for c in letters) / len(letters) if letters else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="hypernetwork checkpoint (default: the shipped one)")
    parser.add_argument("--prompts", type=int, default=8, help=f"general prompts (at most {len(PROMPTS)})")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="decode budget per reply")
    parser.add_argument("--json", metavar="FILE", help="also write the figures and every reply as JSON")
    args = parser.parse_args()
    if not 1 <= args.prompts <= len(PROMPTS):
        raise SystemExit(f"case_probe.py: error: --prompts must be within 1..{len(PROMPTS)}")

    try:
        hl = HyperLoRA.from_pretrained(args.checkpoint)
    except HyperLoRAError as e:
        raise SystemExit(f"case_probe.py: {e}") from None
    model, tokenizer = load_base(hl.config.base_model)
    prompts = PROMPTS[: args.prompts]
    conditions = {"no adapter": [None], "preamble alone": [hl.generate_adapter(PREAMBLE)]}
    for rule in ("lowercase", "uppercase"):
        fam = get_family(rule)
        conditions[rule] = [hl.generate_adapter(f"{PREAMBLE}\n\n{fam.render({}, i)}")
                            for i in range(len(fam.phrasings))]
    jobs = [(name, a, p) for name, adapters in conditions.items() for a in adapters for p in prompts]
    replies = generate_each(model, tokenizer, [p for _, _, p in jobs], [a for _, a, _ in jobs], args.max_new_tokens)

    out = {"checkpoint": args.checkpoint or "shipped", "prompts": prompts, "conditions": {}}
    print(f"{'condition':<16}{'replies':>8}{'capitals':>10}{'lowercase ok':>14}{'uppercase ok':>14}")
    for name in conditions:
        asked = [(p, r) for (n, _, p), r in zip(jobs, replies) if n == name]
        mine = [r for _, r in asked]
        ok = {rule: sum(verify([{"id": rule, "params": {}}], r, p) for p, r in asked) / len(asked)
              for rule in ("lowercase", "uppercase")}
        caps = sum(capital_share(r) for r in mine) / len(mine)
        out["conditions"][name] = {"replies": len(mine), "capital_share": round(caps, 3),
                                   "passes": {k: round(v, 3) for k, v in ok.items()}, "texts": mine}
        print(f"{name:<16}{len(mine):>8}{caps:>10.3f}{ok['lowercase']:>14.3f}{ok['uppercase']:>14.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
