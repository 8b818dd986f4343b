"""Where is a held-out manifesto's rule lost: in the encoder's reading of it, or in the weights made from that?

For every manifesto of the training split and of the held-out splits, three representations:
  words     bag of words of the manifesto text (the training manifestos' vocabulary; no model at all);
  encoder   the frozen encoder's token features, mean-pooled: what the hypernetwork reads;
  adapter   the generated ΔW of every target applied to two fixed random inputs, concatenated: what it writes.
A linear probe per rule family (kernel ridge on cosine similarity, fitted on the training manifestos) scores each
held-out manifesto for "has this rule"; the figure is the ROC AUC over the held-out manifestos, averaged over the
families that occur there (0.5 = chance, 1 = every manifesto with the rule above every one without).
If `encoder` separates the rules of new phrasings and `adapter` does not, the hypernetwork loses what it read; if
`adapter` separates them as well as `encoder` but the pass rate is low, the weights name the rule without
producing the behaviour. `test_family` holds families no probe was fitted on, so it is not scored.

    .venv/bin/python scripts/rule_probe.py [--checkpoint DIR] [--splits test_paraphrase test_combination]
"""

import argparse
import json
import re
from collections import Counter

import torch
from datasets import load_from_disk
from tqdm.auto import tqdm

from hyperlora.generator import HyperLoRA, shipped_checkpoint


def manifestos(split) -> list[tuple[str, set[str]]]:
    """(text, rule families) per distinct manifesto with rules, in first-seen order."""
    seen = {}
    for r in split:
        if r["manifesto_id"] not in seen and not r["is_noop"]:
            seen[r["manifesto_id"]] = (r["manifesto"], set(r["family_ids"]))
    return list(seen.values())


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def words(texts: list[str], vocab: dict[str, int]) -> torch.Tensor:
    out = torch.zeros(len(texts), len(vocab))
    for i, t in enumerate(texts):
        for w, n in Counter(words_of(t)).items():
            if w in vocab:
                out[i, vocab[w]] = n
    return out


@torch.inference_mode()
def encoder_features(hl: HyperLoRA, texts: list[str]) -> torch.Tensor:
    rows = []
    for k in range(0, len(texts), 32):
        feats, mask = hl.encoder(texts[k : k + 32])  # (M, L, dim), (M, L)
        m = mask.float()[..., None]
        rows.append((feats * m).sum(1) / m.sum(1))
    return torch.cat(rows)


@torch.inference_mode()
def adapter_features(hl: HyperLoRA, texts: list[str], probes: dict[int, torch.Tensor]) -> torch.Tensor:
    rows = []
    for t in tqdm(texts, desc="adapters", leave=False):
        a = hl.generate_adapter(t)
        rows.append(torch.cat([(a.scaling * B @ (A @ probes[A.shape[1]])).flatten() for A, B in a.weights.values()]))
    return torch.stack(rows)


def normalise(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Centre on the training mean (the part every manifesto shares) and scale each row to unit length."""
    mean = train.mean(0)
    return [torch.nn.functional.normalize(x - mean, dim=1) for x in (train, *others)]


def auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """ROC AUC by ranks (ties count half)."""
    pos, neg = scores[labels], scores[~labels]
    greater = (pos[:, None] > neg[None]).float().sum() + 0.5 * (pos[:, None] == neg[None]).float().sum()
    return (greater / (len(pos) * len(neg))).item()


def probe_aucs(train_x, train_fams, test_x, test_fams, ridge: float) -> dict[str, float]:
    """{family: held-out AUC} for the families with both classes in the held-out set and ≥ 5 training positives."""
    K = train_x @ train_x.T
    solve = torch.linalg.cholesky(K + ridge * torch.eye(len(K)))
    K_test = test_x @ train_x.T
    out = {}
    for fam in sorted(set().union(*test_fams)):
        y = torch.tensor([fam in f for f in train_fams])
        labels = torch.tensor([fam in f for f in test_fams])
        if y.sum() < 5 or labels.all() or not labels.any():
            continue
        alpha = torch.cholesky_solve((y.float() - y.float().mean())[:, None], solve)
        out[fam] = auc((K_test @ alpha).squeeze(1), labels)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="hypernetwork checkpoint (default: the shipped one)")
    parser.add_argument("--data", default="data/default", help="dataset from `hyperlora data generate`")
    parser.add_argument("--splits", nargs="+", default=["test_paraphrase", "test_combination"])
    parser.add_argument("--ridge", type=float, default=0.1, help="ridge on the cosine kernel (diagonal = 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    checkpoint = args.checkpoint or shipped_checkpoint()
    hl = HyperLoRA.from_pretrained(checkpoint)
    data = load_from_disk(args.data)
    train = manifestos(data["train"])
    held = {s: manifestos(data[s]) for s in args.splits}
    vocab = {w: i for i, w in enumerate(sorted({w for t, _ in train for w in words_of(t)}))}
    g = torch.Generator().manual_seed(args.seed)
    dims = {t.in_features for t in hl.hypernet.targets}
    probes = {d: torch.randn(d, 2, generator=g) / d**0.5 for d in sorted(dims)}
    features = {
        "words": lambda texts: words(texts, vocab),
        "encoder": lambda texts: encoder_features(hl, texts),
        "adapter": lambda texts: adapter_features(hl, texts, probes),
    }
    train_texts, train_fams = [t for t, _ in train], [f for _, f in train]
    summary = {}
    for name, featurise in features.items():
        train_x = featurise(train_texts)
        for split, items in held.items():
            test_x = featurise([t for t, _ in items])
            tr, te = normalise(train_x, test_x)
            per_family = probe_aucs(tr, train_fams, te, [f for _, f in items], args.ridge)
            mean = sum(per_family.values()) / len(per_family)
            summary.setdefault(split, {})[name] = {"mean_auc": round(mean, 3), "families": len(per_family),
                                                   "per_family": {k: round(v, 3) for k, v in per_family.items()}}
            print(f"{split:<17} {name:<8} mean AUC {mean:.3f} over {len(per_family)} families "
                  f"({len(items)} manifestos; {len(train)} training)", flush=True)
    print(json.dumps({"checkpoint": str(checkpoint), "hash": hl.checkpoint_hash,
                      "splits": summary}))


if __name__ == "__main__":
    main()
