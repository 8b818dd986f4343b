"""scripts/soup.py: a uniform average of hypernetwork checkpoints of one architecture.

    .venv/bin/pytest tests/test_soup.py -q
"""

import pytest
import torch

from hyperlora import HyperLoRA, HyperLoRAError, HyperNetConfig
from scripts.soup import soup
from tests.conftest import randomize_B, tiny_llama


def _saved(encoder, path, seed, d_model=32):
    hl = HyperLoRA.for_model(tiny_llama(), HyperNetConfig(base_model="tiny-llama", d_model=d_model), encoder=encoder)
    randomize_B(hl.hypernet)
    with torch.no_grad():  # every part its own weights
        g = torch.Generator().manual_seed(seed)
        for p in hl.hypernet.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    hl.save_pretrained(path)
    return {k: v.clone() for k, v in hl.hypernet.state_dict().items()}


def test_a_soup_is_the_mean_of_its_parts(encoder, tmp_path):
    a, b = _saved(encoder, tmp_path / "a", 0), _saved(encoder, tmp_path / "b", 1)
    mixed = soup([str(tmp_path / "a"), str(tmp_path / "b")]).state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)
    for k in a:
        assert torch.allclose(mixed[k], (a[k] + b[k]) / 2, atol=1e-6), k


def test_a_soup_of_two_architectures_is_refused(encoder, tmp_path):
    _saved(encoder, tmp_path / "a", 0)
    _saved(encoder, tmp_path / "small", 0, d_model=16)
    with pytest.raises(HyperLoRAError, match="another architecture"):
        soup([str(tmp_path / "a"), str(tmp_path / "small")])
