"""Per-example LoRA linear layers (installed as ``hyperlora.kernels``).

``batched_lora_linear`` runs a base linear layer with a different LoRA per sequence in the batch. The torch
reference is always available; the Triton kernels import lazily so ``import hyperlora`` works without Triton.
"""

import os

from .reference import batched_lora_linear_torch

__all__ = ["batched_lora_linear", "batched_lora_linear_torch"]

_BACKENDS = (None, "torch", "triton")


def _check_shapes(x, weight, lora_A, lora_B):
    if x.dim() != 3 or lora_A.dim() != 3 or lora_B.dim() != 3:
        raise ValueError("expected x (N, T, in), lora_A (N, r, in), lora_B (N, out, r)")
    n, _, d_in = x.shape
    d_out = weight.shape[0]
    if weight.shape[1] != d_in:
        raise ValueError(f"weight {tuple(weight.shape)} does not take inputs of width {d_in}")
    if lora_A.shape[0] != n or lora_B.shape[0] != n:
        raise ValueError(f"need one adapter per sequence: x has {n}, A {lora_A.shape[0]}, B {lora_B.shape[0]}")
    if lora_A.shape[2] != d_in or lora_B.shape[1] != d_out or lora_B.shape[2] != lora_A.shape[1]:
        raise ValueError(f"A {tuple(lora_A.shape)} / B {tuple(lora_B.shape)} do not fit W {tuple(weight.shape)}")


def batched_lora_linear(x, weight, lora_A, lora_B, scaling, bias=None, backend=None):
    """y = x Wᵀ + bias + scaling · (x A_iᵀ) B_iᵀ with a different (A_i, B_i) per sequence.

    Args:
        x: (N, T, in) activations.
        weight: (out, in) frozen base weight (PEFT/nn.Linear orientation).
        lora_A: (N, r, in) per-sequence down projections.
        lora_B: (N, out, r) per-sequence up projections.
        scaling: LoRA scale (alpha / r times strength).
        bias: optional (out,) base bias.
        backend: "torch" (batched matmuls; the default) or "triton" (the fused kernels; on CPU only under
            TRITON_INTERPRET=1). None takes HYPERLORA_LORA_BACKEND if set, else "torch": on an H200 in bf16 the
            batched matmuls were faster in forward+backward at all 36 benchmarked shapes (median 12%), while the
            kernels took 31% less peak memory (scripts/results/bench_kernels_nvidia-h200.csv), so Triton is the
            choice when memory, not time, is short.

    Returns:
        (N, T, out) tensor; gradients flow into x, lora_A and lora_B.
    """
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    _check_shapes(x, weight, lora_A, lora_B)
    if backend is None:
        backend = os.environ.get("HYPERLORA_LORA_BACKEND") or "torch"
        if backend not in _BACKENDS:
            raise ValueError(f"HYPERLORA_LORA_BACKEND must be torch or triton, got {backend!r}")
    if backend == "torch":
        return batched_lora_linear_torch(x, weight, lora_A, lora_B, scaling, bias)
    if not x.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("the triton backend needs a CUDA tensor, or TRITON_INTERPRET=1 on CPU")
    try:
        from .lora_linear import batched_lora_linear_triton
    except ImportError as err:  # triton is optional: say which backend needed it
        raise RuntimeError("backend='triton' needs the triton package (pip install triton)") from err

    return batched_lora_linear_triton(x, weight, lora_A, lora_B, scaling, bias)
