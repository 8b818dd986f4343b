"""Hypernetwork: shapes, ΔW = 0 at init, manifesto dependence, checkpoint round trip, long-manifesto merge.

    .venv/bin/pytest tests/test_hypernet.py
"""

import pytest
import torch

from hyperlora import HyperLoRA, HyperLoRAError, HyperNetConfig
from hyperlora.generator import merge_to_rank
from tests.conftest import randomize_B, tiny_llama


@pytest.fixture
def hl(encoder):
    return HyperLoRA.for_model(tiny_llama(), HyperNetConfig(base_model="tiny-llama", d_model=32), encoder=encoder)


def test_adapter_shapes_follow_the_targets(hl):
    adapter = hl.generate_adapter("Answer in lowercase.")
    assert len(adapter.weights) == 2 * 7  # 2 layers x 7 projections
    model = tiny_llama()
    for name, (A, B) in adapter.weights.items():
        m = model.get_submodule(name)
        assert A.shape == (8, m.in_features) and B.shape == (m.out_features, 8)


def test_step0_adapter_leaves_logits_unchanged(hl):
    model = tiny_llama()
    ids = torch.randint(0, 96, (2, 9))
    base = model(ids).logits
    adapter = hl.generate_adapter("Never help write malware. End every answer with a blessing.")
    assert all(torch.count_nonzero(B) == 0 for _, B in adapter.weights.values())
    with adapter.applied_to(model):
        assert torch.equal(model(ids).logits, base)


def test_adapters_depend_on_the_manifesto(hl):
    randomize_B(hl.hypernet)
    a = hl.generate_adapter("Always answer in capital letters.")
    b = hl.generate_adapter("Talk like a pirate, matey.")
    name = next(iter(a.weights))
    assert not torch.allclose(a.weights[name][0], b.weights[name][0])
    again = hl.generate_adapter("Always answer in capital letters.")
    assert torch.equal(a.weights[name][1], again.weights[name][1])


def test_strength_scales_lora_alpha(hl):
    assert hl.generate_adapter("Be kind.", strength=0.5).scaling == pytest.approx(hl.config.scaling * 0.5)
    with pytest.raises(HyperLoRAError):
        hl.generate_adapter("Be kind.", strength=-1)


def test_empty_manifesto_is_refused_unless_allowed(hl):
    with pytest.raises(HyperLoRAError, match="empty"):
        hl.generate_adapter("   \n")
    assert hl.generate_adapter("", allow_empty=True).weights


def test_checkpoint_round_trip(hl, tmp_path):
    randomize_B(hl.hypernet)
    hl.save_pretrained(tmp_path / "ckpt", extra={"note": "test"})
    loaded = HyperLoRA.from_pretrained(tmp_path / "ckpt")
    assert loaded.checkpoint_hash == hl.checkpoint_hash is not None
    assert loaded.hypernet.checkpoint_config["note"] == "test"
    a, b = hl.generate_adapter("Be brief."), loaded.generate_adapter("Be brief.")
    for name in a.weights:
        assert torch.equal(a.weights[name][0], b.weights[name][0])


def test_merge_to_rank_is_the_truncated_svd_of_the_sum():
    g = torch.Generator().manual_seed(0)
    pairs = [(torch.randn(8, 30, generator=g), torch.randn(20, 8, generator=g)) for _ in range(3)]
    total = sum(B @ A for A, B in pairs)
    A, B = merge_to_rank(pairs, 8)
    assert A.shape == (8, 30) and B.shape == (20, 8)
    u, s, vh = torch.linalg.svd(total)
    best = (u[:, :8] * s[:8]) @ vh[:8]
    torch.testing.assert_close(B @ A, best, rtol=1e-4, atol=1e-4)


def test_long_manifesto_is_chunked_and_merged(hl, capsys):
    randomize_B(hl.hypernet)
    text = " ".join(f"Rule {i}: always mention the colour number {i}." for i in range(20))  # >> 32 tokens
    adapter = hl.generate_adapter(text)
    assert "merged them to rank 8" in capsys.readouterr().err
    assert adapter.provenance["chunks"] > 1
    for A, B in adapter.weights.values():
        assert A.shape[0] == 8 and B.shape[1] == 8
