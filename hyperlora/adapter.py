"""Adapter: one generated LoRA (tensors + provenance), saved as a standard PEFT directory.

Layout written by ``save``: ``adapter_config.json`` and ``adapter_model.safetensors`` exactly as PEFT writes
them (keys ``base_model.model.<module>.lora_A.weight`` (r, in) and ``...lora_B.weight`` (out, r); the scale
lives in the config as ``lora_alpha``, never in the weights), plus ``manifesto.txt`` and ``hyperlora.json``.
"""

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import safetensors.torch
import torch

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
                weights[name] = (A.float(), tensors[key.replace("lora_A", "lora_B")].float())
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
