"""Pure-torch per-example LoRA linear: the CPU path, the test oracle and the benchmark baseline.

    y = x Wᵀ + b + s · (x A_iᵀ) B_iᵀ        one (A_i, B_i) per sequence i

Shapes: x (N, T, in), W (out, in), A (N, r, in), B (N, out, r) -> y (N, T, out).
A and B are never repeated per token: the shrink and expand are two batched matmuls over N.
"""

import torch
import torch.nn.functional as F


def batched_lora_linear_torch(
    x: torch.Tensor,
    weight: torch.Tensor,
    lora_A: torch.Tensor,
    lora_B: torch.Tensor,
    scaling: float,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """y = x Wᵀ + bias + scaling · (x A_iᵀ) B_iᵀ in plain torch; autograd gives the gradients.

    Args:
        x: (N, T, in) activations.
        weight: (out, in) base weight.
        lora_A: (N, r, in) per-sequence down projections.
        lora_B: (N, out, r) per-sequence up projections.
        scaling: LoRA scale.
        bias: optional (out,) base bias.
    """
    y = F.linear(x, weight, bias)  # (N, T, out)
    s = torch.bmm(x, lora_A.transpose(1, 2))  # (N, T, r)
    return torch.baddbmm(y, s, lora_B.transpose(1, 2), alpha=scaling)  # (N, T, out)
