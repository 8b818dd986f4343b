"""Convergence: a tiny Llama trains per-example LoRAs for 20 steps; Triton and torch backends give the same losses.

Run: .venv/bin/pytest tests/test_kernels_convergence.py -q     (CPU: the Triton kernels run interpreted, fp32)
"""

import os

import torch

# Must precede the first import of hyperlora.kernels.lora_linear (the interpreter is picked at decoration).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

pytest.importorskip("triton")
transformers = pytest.importorskip("transformers")

from hyperlora.base import find_target_modules  # noqa: E402
from hyperlora.lora import per_example_lora  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
STEPS, N_ADAPTERS, SEQ_LEN, RANK, SCALING = 20, 3, 12, 4, 2.0
# Both backends are fp32 and agree to ~1e-7 per op; Adam's normalised steps keep 20 steps of drift far below
# this, while a wrong gradient for any adapter moves the loss in the 3rd-4th digit within a few steps.
LOSS_RTOL = 1e-5


def tiny_llama() -> torch.nn.Module:
    config = transformers.LlamaConfig(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=48,  # not a multiple of 16, so the kernels' masked edges are on the training path
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).to(DEVICE).eval()  # eval: no dropout, deterministic
    model.requires_grad_(False)  # the base is frozen; only the per-example adapters train
    return model


def train_losses(backend: str) -> list[float]:
    model = tiny_llama()
    targets = find_target_modules(model)
    g = torch.Generator().manual_seed(1)
    adapters = {}
    for name, linear in targets.items():
        a = torch.randn(N_ADAPTERS, RANK, linear.in_features, generator=g) / linear.in_features**0.5  # (N, r, in)
        b = torch.randn(N_ADAPTERS, linear.out_features, RANK, generator=g) * 0.01  # (N, out, r)
        adapters[name] = (a.to(DEVICE).requires_grad_(), b.to(DEVICE).requires_grad_())
    params = [p for pair in adapters.values() for p in pair]
    opt = torch.optim.Adam(params, lr=1e-2)
    # Each sequence has its own targets, so the three adapters have to learn different things.
    ids = torch.randint(0, 128, (N_ADAPTERS, SEQ_LEN), generator=g).to(DEVICE)  # (N, T)

    losses = []
    for _ in range(STEPS):
        with per_example_lora(model, adapters, SCALING, backend=backend):
            loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.fixture
def one_thread():
    # Tiny matmuls: on a busy shared CPU each multi-threaded op waits on a descheduled OpenMP thread, which made
    # this test ~2x slower with 2 threads than with 1. Restored after the test.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow  # 20 training steps per backend, the Triton one interpreted on a CPU
def test_triton_and_torch_backends_train_identically(monkeypatch, one_thread):
    from hyperlora.kernels import lora_linear

    calls = []
    real = lora_linear.batched_lora_linear_triton
    monkeypatch.setattr(lora_linear, "batched_lora_linear_triton", lambda *a: calls.append(1) or real(*a))
    ref = train_losses("torch")
    assert not calls
    got = train_losses("triton")
    n_targets = len(find_target_modules(tiny_llama()))
    assert len(calls) == STEPS * n_targets, "every target linear should run on the Triton op at every step"
    assert ref[-1] < 0.95 * ref[0], f"the adapters did not learn: {ref[0]:.3f} -> {ref[-1]:.3f}"
    for step, (a, b) in enumerate(zip(got, ref, strict=True)):
        assert abs(a - b) <= LOSS_RTOL * abs(b), f"step {step}: triton {a:.7f} vs torch {b:.7f}"
