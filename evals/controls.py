"""LoRA factors as the eval's controls use them: a random LoRA of the same size, the size of ΔW, and a merged copy.

Factors are ``{module: (A (r, in), B·scaling (out, r))}``, the scale folded into B (``hyperlora.decode.lora_factors``).
"""

import torch


def random_like(factors: dict, seed: int) -> dict:
    """A random LoRA with, module by module, the Frobenius norm of ΔW of ``factors`` (zero stays zero)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, (A, B) in factors.items():
        target = torch.linalg.matrix_norm(B @ A)
        Ar = torch.randn(A.shape, generator=g)
        Br = torch.randn(B.shape, generator=g)
        norm = torch.linalg.matrix_norm(Br @ Ar)
        out[name] = (Ar, Br * (target / norm if norm > 0 else 0.0))
    return out


def delta_norm(factors: dict) -> float:
    """‖ΔW‖_F over every module of ``factors`` together (the report's adapter-size figure)."""
    return float(sum(torch.linalg.matrix_norm(B @ A) ** 2 for A, B in factors.values()) ** 0.5)


class Merged:
    """Context: ΔW = B·A (scale folded in B) added into the weights; the originals are copied back after."""

    def __init__(self, model, factors: dict):
        self.model, self.factors, self.saved = model, factors, {}

    def __enter__(self):
        with torch.no_grad():
            for name, (A, B) in self.factors.items():
                w = self.model.get_submodule(name).weight
                self.saved[name] = w.detach().clone()
                w.add_((B @ A).to(w.dtype).to(w.device))
        return self.model

    def __exit__(self, *exc):
        with torch.no_grad():
            for name, w0 in self.saved.items():
                self.model.get_submodule(name).weight.copy_(w0)
        return False
