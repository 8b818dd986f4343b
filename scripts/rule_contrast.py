"""Does the hypernetwork tell apart rules that cannot hold together? No decoding, only generated adapters.

For every rule family, each of its phrasings is written after the same preamble, and the generated adapter's ΔW
minus the preamble's alone is that statement's *rule ΔW*; a family's rule ΔW is the mean over its phrasings. For
each pair of conflicting families (lowercase / uppercase, formal / casual, max / min words, ...: the registry's
`conflicts`) it prints the cosine of the two families' rule ΔWs and their *separation*: ‖mean_a − mean_b‖ over the
mean of ‖mean_a‖ and ‖mean_b‖ (0: the same weights for opposite rules; 1.41: orthogonal). The median over every
pair of non-conflicting families is printed beside it as the reference. A pair far below the reference is one
where the adapter learns "some rule of this kind" and leaves the direction to chance, which is how a manifesto
asking for lowercase gets a reply in capitals (README, "Redesign pilots").

Inner products are exact and never form ΔW: for adapters i, j, ⟨B_i A_i, B_j A_j⟩_F = Σ (B_iᵀ B_j) ⊙ (A_i A_jᵀ).

    .venv/bin/python scripts/rule_contrast.py [--checkpoint DIR] [--json FILE]
"""

import argparse
import json
import random
import statistics
import sys

import torch
from hyperlora.data_gen.rules import families
from tqdm.auto import tqdm

from hyperlora.errors import HyperLoRAError
from hyperlora.generator import HyperLoRA

PREAMBLE = "We believe all people have equal worth, and every conversation should leave someone better off."


def statements(seed: int = 0) -> dict[str, list[str]]:
    """Every family's phrasings, each rendered once with parameters drawn from the family's own sampler."""
    rng = random.Random(seed)
    return {f.id: [f.render(f.sample_params(rng), i, rng) for i in range(len(f.phrasings))]
            for f in families().values()}


def gram(adapters: list) -> torch.Tensor:
    """(N, N) Frobenius inner products of the adapters' ΔW = scaling · B · A, summed over modules."""
    g = torch.zeros(len(adapters), len(adapters), dtype=torch.float64)
    for name in adapters[0].weights:
        A = torch.stack([a.weights[name][0] for a in adapters]).double()  # (N, r, in)
        B = torch.stack([a.weights[name][1] * a.scaling for a in adapters]).double()  # (N, out, r)
        btb = torch.einsum("iok,jol->ijkl", B, B)
        aat = torch.einsum("ikn,jln->ijkl", A, A)
        g += (btb * aat).sum((2, 3))
    return g


def contrast(g: torch.Tensor, members: dict[str, list[int]], conflicts: dict[str, set]) -> dict:
    """Cosine and separation of the families' mean rule ΔWs (index 0 of ``g`` is the preamble alone)."""
    n = g.shape[0]

    def mean_vector(idx):  # coefficients over the adapters: mean of the members, minus the preamble
        c = torch.zeros(n, dtype=torch.float64)
        c[idx] = 1.0 / len(idx)
        c[0] -= 1.0
        return c

    vec = {f: mean_vector(idx) for f, idx in members.items()}

    def dot(x, y):
        return float(x @ g @ y)

    def pair(a, b):
        na, nb = dot(vec[a], vec[a]) ** 0.5, dot(vec[b], vec[b]) ** 0.5
        d = vec[a] - vec[b]
        return {"cos": dot(vec[a], vec[b]) / (na * nb), "separation": dot(d, d) ** 0.5 / ((na + nb) / 2)}

    ids = sorted(members)
    opposite, other = {}, []
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            p = pair(a, b)
            if b in conflicts[a]:
                opposite[f"{a} / {b}"] = p
            else:
                other.append(p)
    return {"pairs": opposite,
            "reference": {k: statistics.median(p[k] for p in other) for k in ("cos", "separation")},
            "n_reference_pairs": len(other)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="hypernetwork checkpoint (default: the shipped one)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    try:
        hl = HyperLoRA.from_pretrained(args.checkpoint)
    except HyperLoRAError as e:
        raise SystemExit(f"rule_contrast.py: {e}") from None
    fams = families()
    texts, members = [PREAMBLE], {}
    for fid, lines in statements().items():
        members[fid] = list(range(len(texts), len(texts) + len(lines)))
        texts += [f"{PREAMBLE}\n{line}" for line in lines]
    adapters = [hl.generate_adapter(t) for t in tqdm(texts, desc="adapters", file=sys.stderr)]
    out = contrast(gram(adapters), members, {f: set(fams[f].conflicts) for f in members})
    ref = out["reference"]
    print(f"{'conflicting families':<32} {'cos':>6} {'separation':>11}")
    for name, p in sorted(out["pairs"].items(), key=lambda kv: kv[1]["separation"]):
        print(f"{name:<32} {p['cos']:>6.2f} {p['separation']:>11.2f}")
    print(f"{'reference: other pairs, median':<32} {ref['cos']:>6.2f} {ref['separation']:>11.2f}"
          f"   ({out['n_reference_pairs']} pairs)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": args.checkpoint or "shipped", "preamble": PREAMBLE, **out}, f, indent=1)


if __name__ == "__main__":
    main()
