"""Run a base model with per-example LoRA adapters, without touching its weights.

Target ``nn.Linear`` modules are swapped for ``LoRALinear`` wrappers that hold the original module; the
wrappers route through ``hyperlora.kernels.batched_lora_linear`` so each sequence of a batch can carry its own
(A, B). Removing the wrappers puts the very same module objects back, so the model is restored exactly.
"""

from contextlib import contextmanager

import torch
from torch import nn

from .kernels import batched_lora_linear


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus an optional per-example LoRA set for the current batch.

    ``lora_A`` is (N, r, in) and ``lora_B`` (N, out, r); N is the batch size, or 1 to share one adapter across
    the batch. With no adapter set it is the base layer.
    """

    def __init__(self, base: nn.Linear):
        super().__init__()
        self.base = base
        self.lora_A: torch.Tensor | None = None
        self.lora_B: torch.Tensor | None = None
        self.scaling: float = 1.0
        self.backend: str | None = None

    def set(self, A: torch.Tensor | None, B: torch.Tensor | None, scaling: float = 1.0, backend=None):
        self.lora_A, self.lora_B, self.scaling, self.backend = A, B, scaling, backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lora_A is None:
            return self.base(x)
        squeeze = x.dim() == 2  # (T, in) from callers that drop the batch dim
        x3 = x.unsqueeze(0) if squeeze else x.reshape(x.shape[0], -1, x.shape[-1])  # (N, T, in)
        A, B = self.lora_A, self.lora_B
        if A.shape[0] == 1 and x3.shape[0] > 1:  # one adapter for the whole batch: a view, not a copy
            A, B = A.expand(x3.shape[0], -1, -1), B.expand(x3.shape[0], -1, -1)
        A, B = A.to(x3.dtype), B.to(x3.dtype)
        y = batched_lora_linear(x3, self.base.weight, A, B, self.scaling, self.base.bias, backend=self.backend)
        return y.squeeze(0) if squeeze else y.reshape(*x.shape[:-1], y.shape[-1])


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent_name, _, child = name.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child


def inject_lora(model: nn.Module, target_names) -> dict[str, LoRALinear]:
    """Wrap the named ``nn.Linear`` modules in ``LoRALinear`` (idempotent). Returns ``{name: wrapper}``."""
    wrappers = {}
    for name in target_names:
        module = model.get_submodule(name)
        if not isinstance(module, LoRALinear):
            if not isinstance(module, nn.Linear):
                raise TypeError(f"{name} is a {type(module).__name__}, not an nn.Linear")
            parent, child = _parent(model, name)
            module = LoRALinear(module)
            setattr(parent, child, module)
        wrappers[name] = module
    return wrappers


def remove_lora(model: nn.Module, wrappers: dict[str, LoRALinear]) -> None:
    """Put the original ``nn.Linear`` objects back in place of their wrappers."""
    for name, wrapper in wrappers.items():
        parent, child = _parent(model, name)
        setattr(parent, child, wrapper.base)


@contextmanager
def per_example_lora(model: nn.Module, adapters: dict, scaling: float, backend: str | None = None):
    """Run ``model`` with ``{target name: (A (N, r, in), B (N, out, r))}`` applied; restore it on exit.

    Args:
        model: the base model (its weights are never modified).
        adapters: one (A, B) pair per target module, batched over the N sequences of the next forward
            (or N = 1 to share one adapter across the batch). Gradients flow into A and B.
        scaling: LoRA scale, ``alpha / r`` times strength.
        backend: passed to ``batched_lora_linear`` (None: HYPERLORA_LORA_BACKEND, else torch).
    """
    already = {name for name, m in model.named_modules() if isinstance(m, LoRALinear)}
    wrappers = inject_lora(model, adapters)
    try:
        for name, (A, B) in adapters.items():
            wrappers[name].set(A, B, scaling, backend)
        yield wrappers
    finally:
        for w in wrappers.values():
            w.set(None, None)
        remove_lora(model, {n: w for n, w in wrappers.items() if n not in already})
