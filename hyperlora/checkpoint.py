"""Hypernetwork checkpoints: ``hypernet.safetensors`` + ``config.json`` (never pickle).

The config carries the hypernetwork shape, the base model id, the list of target layers and a hash of their
shapes, so a checkpoint made for one base is refused on another with a clear message.
"""

import json
from pathlib import Path

import safetensors.torch
import torch

from .config import HyperNetConfig
from .errors import HyperLoRAError
from .hypernet import HyperNet, Target, target_shape_hash
from .io import atomic_dir

WEIGHTS_FILE = "hypernet.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "hyperlora-checkpoint/1"


def save_checkpoint(hypernet: HyperNet, out_dir, extra: dict | None = None, dtype: torch.dtype | None = None):
    """Write ``hypernet`` to ``out_dir`` atomically (temp dir, then rename over any old one).

    Args:
        hypernet: the model to save.
        out_dir: destination directory.
        extra: more JSON-able provenance for config.json (training config, data seed, step).
        dtype: store weights in this dtype (e.g. bfloat16 to halve a shipped file); loading upcasts to fp32.
    """
    tensors = {k: (v.to(dtype) if dtype else v).detach().contiguous().cpu() for k, v in hypernet.state_dict().items()}
    config = {
        "format": FORMAT,
        "hypernet": hypernet.config.to_dict(),
        "base_model": hypernet.config.base_model,
        "encoder_dim": hypernet.feat_proj[1].in_features,
        "targets": [[t.name, t.layer, t.module_type, t.in_features, t.out_features] for t in hypernet.targets],
        "target_shape_hash": target_shape_hash(hypernet.targets),
        **(extra or {}),
    }
    with atomic_dir(out_dir, force=True) as tmp:
        safetensors.torch.save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return Path(out_dir)


def read_config(path) -> dict:
    path = Path(path)
    if not path.is_dir():
        raise HyperLoRAError(f"checkpoint directory not found: {path}")
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
    except FileNotFoundError as e:
        raise HyperLoRAError(f"{path} has no {CONFIG_FILE}: not a hyperlora checkpoint") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HyperLoRAError(f"{path / CONFIG_FILE} is not valid JSON: {e}") from e
    if config.get("format") != FORMAT:
        raise HyperLoRAError(f"{path} is not a {FORMAT} checkpoint (format={config.get('format')!r})")
    return config


def load_checkpoint(path) -> HyperNet:
    """Load a hypernetwork; the returned module carries its config dict as ``.checkpoint_config``."""
    path = Path(path)
    config = read_config(path)
    targets = [Target(*t) for t in config["targets"]]
    if target_shape_hash(targets) != config["target_shape_hash"]:
        raise HyperLoRAError(f"{path / CONFIG_FILE}: target list does not match its shape hash (edited by hand?)")
    hypernet = HyperNet(HyperNetConfig.from_dict(config["hypernet"]), targets, config["encoder_dim"])
    try:
        tensors = safetensors.torch.load_file(str(path / WEIGHTS_FILE))
    except FileNotFoundError as e:
        raise HyperLoRAError(f"{path} has no {WEIGHTS_FILE}") from e
    except Exception as e:  # safetensors raises its own error types for truncated or garbled files
        raise HyperLoRAError(f"{path / WEIGHTS_FILE} is corrupt or not a safetensors file: {e}") from e
    try:
        hypernet.load_state_dict({k: v.float() for k, v in tensors.items()})
    except RuntimeError as e:
        raise HyperLoRAError(f"{path / WEIGHTS_FILE} does not match its config: {str(e).splitlines()[0]}") from e
    hypernet.checkpoint_config = config
    return hypernet.eval()
