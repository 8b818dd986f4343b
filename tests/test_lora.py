"""Per-example LoRA inside a model: batching equals single forwards, gradients reach A and B, model restored.

    .venv/bin/pytest tests/test_lora.py
"""

import torch

from hyperlora.base import find_target_modules
from hyperlora.lora import LoRALinear, per_example_lora
from tests.conftest import tiny_llama


def _adapters(model, n, r=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        name: (
            (torch.randn(n, r, m.in_features, generator=g) * 0.1).requires_grad_(),
            (torch.randn(n, m.out_features, r, generator=g) * 0.1).requires_grad_(),
        )
        for name, m in find_target_modules(model).items()
    }


def test_batch_of_five_adapters_equals_five_single_forwards():
    model = tiny_llama()
    ids = torch.randint(0, 96, (5, 11), generator=torch.Generator().manual_seed(3))
    adapters = _adapters(model, 5)
    with per_example_lora(model, adapters, scaling=2.0):
        batched = model(ids).logits  # (5, 11, V)
    batched.square().mean().backward()
    batched_grads = {n: (A.grad.clone(), B.grad.clone()) for n, (A, B) in adapters.items()}

    for i in range(5):
        single = {n: (A[i : i + 1].detach().clone().requires_grad_(), B[i : i + 1].detach().clone().requires_grad_())
                  for n, (A, B) in adapters.items()}
        with per_example_lora(model, single, scaling=2.0):
            out = model(ids[i : i + 1]).logits
        torch.testing.assert_close(out, batched[i : i + 1], rtol=1e-5, atol=1e-5)
        # The batched loss averages over 5 sequences; scale the single loss to match its share.
        (out.square().mean() / 5).backward()
        for n, (A, B) in single.items():
            torch.testing.assert_close(A.grad[0], batched_grads[n][0][i], rtol=1e-4, atol=1e-7)
            torch.testing.assert_close(B.grad[0], batched_grads[n][1][i], rtol=1e-4, atol=1e-7)


def test_model_is_restored_exactly():
    model = tiny_llama()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modules_before = dict(model.named_modules())
    ids = torch.randint(0, 96, (2, 7))
    base_logits = model(ids).logits
    with per_example_lora(model, _adapters(model, 2), scaling=1.0):
        assert any(isinstance(m, LoRALinear) for m in model.modules())
        assert not torch.allclose(model(ids).logits, base_logits)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert dict(model.named_modules()).keys() == modules_before.keys()
    assert all(model.get_submodule(n) is m for n, m in modules_before.items() if n)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert torch.equal(model(ids).logits, base_logits)


def test_shared_adapter_broadcasts_over_batch():
    model = tiny_llama()
    ids = torch.randint(0, 96, (3, 5))
    one = {n: (A[:1].detach(), B[:1].detach()) for n, (A, B) in _adapters(model, 1).items()}
    three = {n: (A.expand(3, -1, -1), B.expand(3, -1, -1)) for n, (A, B) in one.items()}
    with per_example_lora(model, one, scaling=1.5):
        a = model(ids).logits
    with per_example_lora(model, three, scaling=1.5):
        b = model(ids).logits
    torch.testing.assert_close(a, b)
