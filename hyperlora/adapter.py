"""Adapter: one generated LoRA (tensors + provenance), saved as a standard PEFT directory.

Layout written by ``save``: ``adapter_config.json`` and ``adapter_model.safetensors`` exactly as PEFT writes
them (keys ``base_model.model.<module>.lora_A.weight`` (r, in) and ``...lora_B.weight`` (out, r); the scale
lives in the config as ``lora_alpha``, never in the weights), plus ``manifesto.txt`` and ``hyperlora.json``.

``Adapter.compose`` stacks saved adapters along rank (ΔWs add), optionally SVD-truncated to a served rank.
"""

import hashlib
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import safetensors.torch
import torch

from .base import layer_index, module_type
from .errors import HyperLoRAError
from .io import atomic_dir
from .lora import per_example_lora

VERSION = "0.1.0"
_PREFIX = "base_model.model."


@dataclass
class Adapter:
    """A LoRA for one base model: ``weights[name] = (A (r, in), B (out, r))``, ΔW = lora_alpha / r · B·A."""

    weights: dict[str, tuple[torch.Tensor, torch.Tensor]]
    rank: int
    lora_alpha: float
    base_model: str
    module_types: list[str]
    layers: list[int] = field(default_factory=list)  # adapted decoder layers; [] = every layer
    manifesto: str = ""
    strength: float = 1.0
    provenance: dict = field(default_factory=dict)  # checkpoint hash, target-shape hash, generation time...

    @property
    def scaling(self) -> float:
        return self.lora_alpha / self.rank

    def peft_config(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.rank,
            lora_alpha=self.lora_alpha,
            target_modules=sorted(self.module_types),
            layers_to_transform=sorted(self.layers) or None,
            lora_dropout=0.0,
            bias="none",
            task_type="CAUSAL_LM",
            base_model_name_or_path=self.base_model,
        )

    def save(self, out_dir, force: bool = False) -> Path:
        """Write the PEFT directory (atomically; an existing ``out_dir`` needs ``force``)."""
        tensors = {}
        for name, (A, B) in self.weights.items():
            tensors[f"{_PREFIX}{name}.lora_A.weight"] = A.detach().float().contiguous().cpu()
            tensors[f"{_PREFIX}{name}.lora_B.weight"] = B.detach().float().contiguous().cpu()
        with atomic_dir(out_dir, force=force) as tmp:
            self.peft_config().save_pretrained(str(tmp))
            safetensors.torch.save_file(tensors, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
            (tmp / "manifesto.txt").write_text(self.manifesto, encoding="utf-8")
            meta = {"version": VERSION, "base_model": self.base_model, "strength": self.strength, **self.provenance}
            (tmp / "hyperlora.json").write_text(json.dumps(meta, indent=2) + "\n")
        return Path(out_dir)

    @classmethod
    def load(cls, path) -> "Adapter":
        """Read a PEFT LoRA directory (ours or any plain one with unmerged LoRA weights)."""
        path = Path(path)
        try:
            config = json.loads((path / "adapter_config.json").read_text())
            tensors = safetensors.torch.load_file(str(path / "adapter_model.safetensors"))
        except FileNotFoundError as e:
            raise HyperLoRAError(f"{path} is not an adapter directory (missing {Path(e.filename).name})") from e
        except Exception as e:
            raise HyperLoRAError(f"{path} holds a corrupt adapter: {e}") from e
        if config.get("peft_type") != "LORA":
            raise HyperLoRAError(f"{path} is a {config.get('peft_type')} adapter, not a LoRA")
        weights = {}
        for key, A in tensors.items():
            if key.endswith(".lora_A.weight"):
                name = key[len(_PREFIX) : -len(".lora_A.weight")]
                B = tensors.get(key.replace("lora_A", "lora_B"))
                if B is None:
                    raise HyperLoRAError(f"{path} holds a corrupt adapter: {name} has lora_A but no lora_B")
                weights[name] = (A.float(), B.float())
        extra = path / "hyperlora.json"
        meta = json.loads(extra.read_text()) if extra.exists() else {}
        manifesto = (path / "manifesto.txt").read_text(encoding="utf-8") if (path / "manifesto.txt").exists() else ""
        if config.get("use_rslora"):
            raise HyperLoRAError(f"{path}: rsLoRA scaling is not supported")
        return cls(
            weights=weights,
            rank=config["r"],
            lora_alpha=config["lora_alpha"],
            base_model=config.get("base_model_name_or_path") or meta.get("base_model", ""),
            module_types=sorted({n.rsplit(".", 1)[-1] for n in weights}),
            layers=list(config.get("layers_to_transform") or []),
            manifesto=manifesto,
            strength=meta.get("strength", 1.0),
            provenance={k: v for k, v in meta.items() if k not in ("version", "base_model", "strength")},
        )

    @classmethod
    def compose(cls, adapters: list["Adapter"], weights: list[float] | None = None,
                rank: int | None = None) -> "Adapter":
        """Stack adapters into one LoRA whose ΔW is Σ_i w_i · ΔW_i (ranks concatenated, or SVD-truncated).

        Args:
            adapters: the parts, all for one base model; each ΔW_i = scaling_i · B_i·A_i (its strength included).
            weights: w_i per part (default 1 each); 0 drops a part, negative subtracts it.
            rank: the most rank the result may have; below the summed rank each module's ΔW is truncated to its
                best rank-``rank`` approximation and ``provenance["truncation_error"]`` says what that cost
                (sqrt(Σ ||ΔW − ΔW_r||² / Σ ||ΔW||²) over all modules; 0.0 when nothing was truncated).

        The result covers the union of the parts' modules; PEFT adapts every (module type, layer) pair of its
        config, so a pair a part lacks gets exact zeros in that part's rank block.
        """
        adapters = list(adapters)
        if not adapters:
            raise HyperLoRAError("compose needs at least one adapter")
        weights = [1.0] * len(adapters) if weights is None else [float(w) for w in weights]
        if len(weights) != len(adapters):
            raise HyperLoRAError(f"got {len(weights)} weights for {len(adapters)} adapters; give one per adapter")
        if not all(math.isfinite(w) for w in weights):
            raise HyperLoRAError(f"weights must be finite numbers, got {weights}")
        if rank is not None and rank < 1:
            raise HyperLoRAError(f"rank must be at least 1, got {rank}")
        bases = list(dict.fromkeys(a.base_model for a in adapters))
        if len(bases) > 1:
            raise HyperLoRAError(f"cannot compose adapters for different base models: {', '.join(map(repr, bases))}")

        shapes, first = {}, {}  # name -> (in, out), the same in every part that has the module
        for i, adapter in enumerate(adapters, 1):
            for name, (A, B) in adapter.weights.items():
                if A.ndim != 2 or B.ndim != 2 or A.shape[0] != adapter.rank or B.shape[1] != adapter.rank:
                    raise HyperLoRAError(f"adapter {i}'s {name} has A {tuple(A.shape)} and B {tuple(B.shape)}, "
                                         f"which do not fit its rank {adapter.rank}")
                shape = shapes.setdefault(name, (A.shape[1], B.shape[0]))
                first.setdefault(name, i)
                if shape != (A.shape[1], B.shape[0]):
                    raise HyperLoRAError(f"{name} is {shape[0]}->{shape[1]} in adapter {first[name]} but "
                                         f"{A.shape[1]}->{B.shape[0]} in adapter {i}: they are for different models")
        try:
            layers = sorted({layer_index(n) for n in shapes})
        except ValueError as e:
            raise HyperLoRAError(f"cannot compose: {e}") from e
        types = list(dict.fromkeys(module_type(n) for n in shapes))

        # PEFT adapts target_modules × layers_to_transform: name every pair. A pair no part has borrows its path
        # and shape from the same module type in another layer (one type has one shape across decoder layers).
        template = {module_type(n): n for n in shapes}
        present = {(module_type(n), layer_index(n)) for n in shapes}
        names = dict(shapes)
        for layer in layers:
            for t in types:
                if (t, layer) not in present:
                    names[_in_layer(template[t], layer)] = shapes[template[t]]
        names = dict(sorted(names.items(), key=lambda kv: (layer_index(kv[0]), types.index(module_type(kv[0])))))

        # PEFT keeps the scale in the config, never in the weights; but parts have different scalings (and
        # weights), so composing must fold w_i · scaling_i into each part's B block. The result's scaling is 1.
        summed_rank = sum(a.rank for a in adapters)
        out_rank = summed_rank if rank is None else min(rank, summed_rank)
        result, dropped, total = {}, 0.0, 0.0
        for name, (d_in, d_out) in names.items():
            pairs = []
            for adapter, w in zip(adapters, weights):
                if name in adapter.weights:
                    A, B = (x.detach().float().cpu() for x in adapter.weights[name])  # an export step, as save
                    pairs.append((A, w * adapter.scaling * B))  # (r_i, in), (out, r_i)
                else:
                    pairs.append((torch.zeros(adapter.rank, d_in), torch.zeros(d_out, adapter.rank)))
            if out_rank < summed_rank:
                u, s, vh = _thin_svd(pairs)
                result[name] = _truncate(u, s, vh, out_rank)
                dropped += s[out_rank:].square().sum().item()
                total += s.square().sum().item()
            else:
                result[name] = (torch.cat([A for A, _ in pairs]), torch.cat([B for _, B in pairs], dim=1))

        parts = [
            {
                "manifesto_sha256": hashlib.sha256(a.manifesto.encode()).hexdigest()[:16],
                "weight": w,
                "strength": a.strength,
                "rank": a.rank,
                "lora_alpha": a.lora_alpha,
                "provenance": a.provenance,
            }
            for a, w in zip(adapters, weights)
        ]
        return cls(
            weights=result,
            rank=out_rank,
            lora_alpha=float(out_rank),
            base_model=bases[0],
            module_types=types,
            layers=layers,  # explicit: a part's [] (every layer) may still hold only some layers' keys
            manifesto="\n\n".join(a.manifesto.strip() for a in adapters if a.manifesto.strip()),
            strength=1.0,
            provenance={
                "composed_of": parts,
                "summed_rank": summed_rank,
                "truncation_error": math.sqrt(dropped / total) if total > 0 else 0.0,
            },
        )

    @contextmanager
    def applied_to(self, model, backend: str | None = None):
        """Apply this adapter to ``model`` in memory for the ``with`` block; the model is restored exactly after.

        The base weights are never modified: target layers are wrapped for the block and unwrapped after.
        """
        for name, (A, B) in self.weights.items():
            module = _module(model, name)
            shape = (module.in_features, module.out_features) if module is not None else None
            if shape != (A.shape[1], B.shape[0]):
                raise HyperLoRAError(f"the model's {name} does not fit this adapter, made for {self.base_model}")
        device = next(model.parameters()).device
        batched = {n: (A[None].to(device), B[None].to(device)) for n, (A, B) in self.weights.items()}  # N = 1
        with per_example_lora(model, batched, self.scaling, backend=backend):
            yield model


def _module(model, name: str):
    try:
        module = model.get_submodule(name)
    except AttributeError:
        return None
    return getattr(module, "base", module)  # a layer already wrapped by per_example_lora


def _in_layer(name: str, layer: int) -> str:
    """The module path ``name`` with its decoder-layer index replaced by ``layer``."""
    parts = name.split(".")
    parts[parts.index(str(layer_index(name)))] = str(layer)
    return ".".join(parts)


def _thin_svd(pairs: list[tuple[torch.Tensor, torch.Tensor]]):
    """SVD (U (out, k), S (k,), Vh (k, in)) of Σ B_i·A_i, computed on the thin factors, never the dense ΔW."""
    A = torch.cat([a for a, _ in pairs])  # (R, in)
    B = torch.cat([b for _, b in pairs], dim=1)  # (out, R)
    qb, rb = torch.linalg.qr(B)  # B = Qb Rb
    qa, ra = torch.linalg.qr(A.T)  # Aᵀ = Qa Ra
    u, s, vh = torch.linalg.svd(rb @ ra.T, full_matrices=False)  # core: ΔW = Qb (U S Vᵀ) Qaᵀ
    return qb @ u, s, vh @ qa.T


def _truncate(u, s, vh, rank: int):
    """Factors (A (rank, in), B (out, rank)) of the best rank-``rank`` part, √S split evenly between them."""
    root = s[:rank].sqrt()
    A = root[:, None] * vh[:rank]  # (k, in), k = min(rank, len(s))
    B = u[:, :rank] * root  # (out, k)
    pad = rank - len(root)  # a module narrower than rank: zero rows keep every module at the config's r
    return torch.cat([A, A.new_zeros(pad, A.shape[1])]), torch.cat([B, B.new_zeros(B.shape[0], pad)], dim=1)


def merge_to_rank(pairs: list[tuple[torch.Tensor, torch.Tensor]], rank: int):
    """Best rank-``rank`` factors (A, B) of Σ B_i·A_i (truncated SVD, computed on the thin factors).

    Args:
        pairs: (A_i (r_i, in), B_i (out, r_i)) whose products are summed.
        rank: rank of the result (zero-padded where the module is narrower than that).
    """
    return _truncate(*_thin_svd(pairs), rank)
