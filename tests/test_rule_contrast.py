"""scripts/rule_contrast.py: exact ΔW inner products from the low-rank factors, and the cosine / separation of
families' mean rule ΔWs (the preamble's adapter subtracted).

    .venv/bin/pytest tests/test_rule_contrast.py -q
"""

from types import SimpleNamespace

import pytest
import torch

from scripts.rule_contrast import contrast, gram


def adapter(g, scaling=0.5):
    def factors(d_in, d_out):  # (A (r, in), B (out, r)), rank 2
        return torch.randn(2, d_in, generator=g), torch.randn(d_out, 2, generator=g)

    return SimpleNamespace(scaling=scaling, weights={"q": factors(5, 4), "v": factors(3, 6)})


def test_gram_is_the_frobenius_product_of_delta_w():
    g = torch.Generator().manual_seed(0)
    adapters = [adapter(g) for _ in range(3)]
    flat = [torch.cat([(a.scaling * B @ A).flatten() for A, B in a.weights.values()]).double() for a in adapters]
    direct = torch.stack([torch.stack([x @ y for y in flat]) for x in flat])
    assert torch.allclose(gram(adapters), direct, rtol=1e-6)


def test_opposite_rules_with_one_delta_w_have_no_separation():
    # Vectors e0 (preamble), then families: "lower" and "upper" both at preamble + u, "pirate" at preamble + w ⟂ u,
    # "json" at preamble + 2w. Gram of [p, p+u, p+u, p+w, p+2w] with p, u, w orthonormal.
    p, u, w = torch.eye(3, dtype=torch.float64)
    vecs = torch.stack([p, p + u, p + u, p + w, p + 2 * w])
    out = contrast(vecs @ vecs.T, {"lower": [1], "upper": [2], "pirate": [3], "json": [4]},
                   {"lower": {"upper"}, "upper": {"lower"}, "pirate": set(), "json": set()})
    assert out["pairs"]["lower / upper"] == pytest.approx({"cos": 1.0, "separation": 0.0})
    assert set(out["pairs"]) == {"lower / upper"} and out["n_reference_pairs"] == 5
    # The other pairs: four orthogonal ones (cos 0; separation √2, or √5 / 1.5 with json) and pirate / json (cos 1,
    # lengths 1 and 2: separation 1 / 1.5); medians cos 0, separation √2.
    assert out["reference"]["cos"] == pytest.approx(0.0)
    assert out["reference"]["separation"] == pytest.approx(2**0.5)
