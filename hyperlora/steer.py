"""Conditional refusal steering: one fixed rank row added to the adapter of a manifesto with a refusal rule (issue 24).

A generated adapter is one weight change per manifesto, and every recipe that trained it moved its refusals along
one line: more harmful asks refused meant more benign neighbours refused (README, "The adapter's refusals move along
one line"). The base's hidden state tells the two apart far better than those refusals do, so this row is set from
the hidden state rather than learned:

- it reads ``o_proj``'s input at one layer along ``read``, fitted so that the read is about +1 on the chat template's
  tail and the reply of a harmful ask, about -1 on the tail of a benign one (and, as fitted, its reply's first few
  tokens), and about 0 on every other position (the system turn, the ask's own words, the rest of an ordinary
  reply), so a harmful ask is pushed towards refusing for its whole reply, a benign neighbour away from it where the
  reply decides, and other text is meant to be left alone;
- it writes ``strength · read·x`` along ``write`` in the residual stream: the direction that separates the shipped
  adapters' refusals from their answers (pushing along it is causal: refusals rise with the strength);
- ``gate_w``, ``gate_b`` are a logistic read of the manifesto (its mean encoder features): whether it holds a
  refusal rule. A manifesto without one gets no row at all, so its adapter is exactly what it was.

The row is a plain LoRA row (A = read, B = strength · write), so the adapter stays a standard PEFT LoRA, one rank
larger. ``scripts/fit_steer.py`` fits it and chooses the strength on validation prompts; a checkpoint directory
that holds it as ``steer.safetensors`` applies it (``HyperLoRA.from_pretrained``; ``save_pretrained`` keeps it), and
its hash covers the file. Training writes weights alone: retrained weights need the row fitted again. The shipped
checkpoint holds none (README, Redesign pilots, "steering row"): the strong fits widen the gap between harmful asks
and neighbours refused, but cost answers under the very manifestos they gate; the weak one costs none measured, and
changes nothing measured on the hand-written test either.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import safetensors.torch
import torch

from .adapter import Adapter
from .errors import HyperLoRAError

FILE = "steer.safetensors"


def mean_features(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(M, dim): each chunk's encoder features averaged over its real tokens, what the gate reads (and is fitted on).
    ``features`` (M, L, dim), ``mask`` (M, L) as the encoder returns them."""
    m = mask[..., None].to(features.dtype)
    return ((features * m).sum(1) / m.sum(1).clamp(min=1)).float()


@dataclass
class Steer:
    """One fixed steering row: ``module`` of decoder ``layer`` gains ΔW x = strength · write · (read · x)."""

    layer: int
    module: str  # within the decoder layer, e.g. "self_attn.o_proj"
    read: torch.Tensor  # (in,)
    write: torch.Tensor  # (out,)
    strength: float
    gate_w: torch.Tensor  # (encoder dim,)
    gate_b: float
    encoder: str  # the manifesto encoder the gate was fitted on
    info: dict = field(default_factory=dict)  # how it was fitted, and what it measured

    @property
    def name(self) -> str:
        return f"model.layers.{self.layer}.{self.module}"

    def gates(self, features: torch.Tensor, mask: torch.Tensor) -> bool:
        """Whether the manifesto holds a refusal rule: its mean encoder features (M chunks, any of them) read by the
        gate. ``features`` (M, L, dim), ``mask`` (M, L) as the encoder returns them."""
        return bool(((mean_features(features, mask) @ self.gate_w) + self.gate_b > 0).any())

    def extend(self, adapter: Adapter) -> Adapter:
        """``adapter`` one rank larger: the steering row in its module, a zero row in every other one. The scale
        per row stays the same (lora_alpha grows with the rank), so the other rows act exactly as before and the
        row's own ΔW is ``adapter.strength · strength · write ⊗ read``."""
        if self.name not in adapter.weights:
            raise HyperLoRAError(f"the steering row is for {self.name}, which this adapter does not adapt")
        scaling = adapter.scaling
        weights = {}
        for name, (A, B) in adapter.weights.items():
            a, b = A.new_zeros(1, A.shape[1]), B.new_zeros(B.shape[0], 1)
            if name == self.name and scaling:  # strength 0 (the base model) keeps the row at zero
                a[0] = self.read.to(A.dtype)
                b[:, 0] = (adapter.strength * self.strength / scaling) * self.write.to(B.dtype)
            weights[name] = (torch.cat([A, a]), torch.cat([B, b], 1))
        rank = adapter.rank + 1
        return Adapter(weights=weights, rank=rank, lora_alpha=scaling * rank, base_model=adapter.base_model,
                       module_types=adapter.module_types, layers=adapter.layers, manifesto=adapter.manifesto,
                       strength=adapter.strength, provenance={**adapter.provenance, "steer": self.name})

    def save(self, path) -> Path:
        tensors = {"read": self.read.float().contiguous(), "write": self.write.float().contiguous(),
                   "gate_w": self.gate_w.float().contiguous()}
        meta = {"layer": self.layer, "module": self.module, "strength": self.strength, "gate_b": self.gate_b,
                "encoder": self.encoder, "info": self.info}
        tmp = Path(path).with_name(Path(path).name + ".tmp")  # never a half-written row in a checkpoint
        safetensors.torch.save_file(tensors, str(tmp), metadata={"steer": json.dumps(meta)})
        return tmp.replace(path)

    @classmethod
    def load(cls, path) -> "Steer":
        with safetensors.safe_open(str(path), "pt") as f:
            meta = json.loads(f.metadata()["steer"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        return cls(layer=meta["layer"], module=meta["module"], read=tensors["read"], write=tensors["write"],
                   strength=meta["strength"], gate_w=tensors["gate_w"], gate_b=meta["gate_b"],
                   encoder=meta["encoder"], info=meta.get("info", {}))
