"""Validated, flat configuration dataclasses, and YAML loading with dotted ``key=value`` overrides."""

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path

from .base import DEFAULT_BASE, DEFAULT_MODULE_TYPES
from .errors import HyperLoRAError

RANKS = (8, 16, 32, 64)  # what vLLM and most LoRA servers accept


@dataclass
class HyperNetConfig:
    """Shape of the hypernetwork and of the adapters it emits.

    The adapter scale follows PEFT: ``scaling = alpha / rank`` (times the user's strength at generation).
    """

    base_model: str = DEFAULT_BASE
    encoder: str = "all-minilm-l6-v2"
    module_types: tuple[str, ...] = DEFAULT_MODULE_TYPES
    layers: tuple[int, ...] = ()  # decoder layers to adapt; () = every layer
    rank: int = 8
    alpha: float = 16.0
    d_model: int = 192  # width of the per-rank-row latent
    n_heads: int = 4  # cross-attention heads over manifesto tokens
    n_trunk_layers: int = 2
    trunk_mult: int = 2  # MLP expansion in the shared trunk
    max_manifesto_tokens: int = 256  # encoder window; longer manifestos are chunked
    # Also read the manifesto in the base model's own token embeddings and let the residual-writing modules copy
    # them into B (names, keywords, phrases): see hypernet.py.
    copy_path: bool = False
    # With the copy path: give the copied words rank rows of their own in the copying modules (o_proj, down_proj),
    # ``copy_rank`` per layer, added to the r style rows instead of sharing them. Sharing them traded style rules
    # for words (README, "Where the pass rate is lost"). Adapters then have rank + copy_rank everywhere (the other
    # modules' extra rows are zero, so one PEFT rank fits all); the scale stays alpha / rank. 0 = shared rows.
    copy_rank: int = 0
    # With copy_rank: each copy row's A also gains a learned linear image of the base embedding of the manifesto
    # token *before* the one it copies (zero at start), so a row that writes "curious" can fire where the reply has
    # just said "Stay": one shared map for every word instead of a key learned per word. See hypernet.py.
    copy_keys: bool = False
    # Composition by construction (issue 21, direction 1): read each statement of the manifesto on its own, give each
    # its own rank-r block, and concatenate the blocks along rank with one context-free bias block, so statements'
    # ΔWs add. The adapter's rank is then r·(statements + 1). See hypernet.py.
    per_statement: bool = False
    # The base's own harmful-ask direction (issue 24): ``probe_rank`` rows per layer in the modules that read the
    # normed residual entering a layer (q_proj, k_proj, v_proj), whose A is a fixed direction fitted on the base's
    # hidden states (scripts/refusal_probe.py --directions; a buffer of the checkpoint) and whose B the hypernetwork
    # writes per manifesto: a manifesto can make the adapter act on "is this ask harmful" without learning to read
    # it. They live in the rows the copy rows pad with zeros there, so the rank stays rank + copy_rank. 0 = none (the
    # pilots with 1 kept the refusals on the old line: README, "probe rows").
    probe_rank: int = 0

    def __post_init__(self):
        self.module_types = tuple(self.module_types)
        self.layers = tuple(sorted(set(int(x) for x in self.layers)))
        if any(x < 0 for x in self.layers):
            raise HyperLoRAError(f"layers must be non-negative indices, got {self.layers}")
        if self.rank not in RANKS:
            raise HyperLoRAError(f"rank must be one of {RANKS} (what LoRA servers load), got {self.rank}")
        if self.alpha <= 0:
            raise HyperLoRAError(f"alpha must be positive, got {self.alpha}")
        if self.d_model % self.n_heads:
            raise HyperLoRAError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if not self.module_types:
            raise HyperLoRAError("module_types must name at least one linear layer type")
        if self.per_statement and self.copy_path:
            raise HyperLoRAError("per_statement and copy_path do not combine (the copy path reads whole manifestos)")
        if self.copy_rank < 0 or (self.copy_rank and not self.copy_path):
            raise HyperLoRAError(f"copy_rank needs copy_path=true and must be non-negative, got {self.copy_rank}")
        if self.copy_keys and not self.copy_rank:
            raise HyperLoRAError("copy_keys needs copy rows of their own: set copy_rank (and copy_path) too")
        if self.copy_rank and self.adapter_rank not in RANKS:
            raise HyperLoRAError(f"rank + copy_rank is the exported adapter's rank: it must be one of {RANKS}, got "
                                 f"{self.adapter_rank}")
        if self.probe_rank < 0 or (self.probe_rank and self.per_statement):
            raise HyperLoRAError(f"probe_rank must be non-negative and does not combine with per_statement, got "
                                 f"{self.probe_rank}")
        if self.probe_rank and self.adapter_rank not in RANKS:
            raise HyperLoRAError(f"rank + max(copy_rank, probe_rank) is the exported adapter's rank: it must be one "
                                 f"of {RANKS}, got {self.adapter_rank}")
        if not 8 <= self.max_manifesto_tokens <= 512:
            raise HyperLoRAError("max_manifesto_tokens must be within the encoder's 8..512 positions")

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    @property
    def adapter_rank(self) -> int:
        """The rank of the adapters this hypernetwork writes: its style rows plus the extra rows of the module that
        has most (copy rows in o_proj / down_proj, probe rows in q_proj / k_proj / v_proj; others pad with zeros)."""
        return self.rank + max(self.copy_rank, self.probe_rank)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["module_types"] = list(self.module_types)
        d["layers"] = list(self.layers)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "HyperNetConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise HyperLoRAError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        return cls(**d)


def _coerce(value: str, typ):
    """Parse a command-line override string into the dataclass field's type."""
    import yaml

    parsed = yaml.safe_load(value)
    origin = typing.get_origin(typ)
    if origin in (tuple, list):
        items = parsed if isinstance(parsed, list) else str(parsed).split(",")
        return tuple(items) if origin is tuple else list(items)
    if typ is str:
        return str(value)
    if typ in (int, float):  # YAML reads "1e-3" as a string: parse numbers ourselves
        try:
            return typ(value)
        except ValueError as e:
            raise HyperLoRAError(f"{value!r} is not a valid {typ.__name__}") from e
    return parsed


def load_config(cls, path: str | Path | None = None, overrides: list[str] = (), section: str | None = None):
    """Build a dataclass config from YAML (optionally one ``section`` of it) plus ``key=value`` overrides.

    Nested dataclass fields take dotted keys: ``hypernet.rank=16``.
    """
    import yaml

    data = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError as e:
            raise HyperLoRAError(f"config file not found: {path}") from e
        except yaml.YAMLError as e:
            raise HyperLoRAError(f"{path} is not valid YAML: {e}") from e
        if section:
            data = data.get(section, {})
    for item in overrides:
        if "=" not in item:
            raise HyperLoRAError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        node, node_cls, parts = data, cls, key.split(".")
        for part in parts[:-1]:
            node_cls = _field_type(node_cls, part, key)
            node = node.setdefault(part, {})
        node[parts[-1]] = _coerce(value, _field_type(node_cls, parts[-1], key))
    return _build(cls, data)


def _field_type(cls, name: str, key: str):
    """The resolved type of dataclass field ``name`` (the annotation may be a string under PEP 563)."""
    if not dataclasses.is_dataclass(cls) or name not in {f.name for f in dataclasses.fields(cls)}:
        raise HyperLoRAError(f"unknown config key {key!r}")
    return typing.get_type_hints(cls)[name]


def _build(cls, data: dict):
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in hints:
            raise HyperLoRAError(f"unknown {cls.__name__} key {key!r}")
        typ = hints[key]
        kwargs[key] = _build(typ, value) if dataclasses.is_dataclass(typ) and isinstance(value, dict) else value
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise HyperLoRAError(f"bad {cls.__name__}: {e}") from e


__all__ = ["HyperNetConfig", "RANKS", "load_config"]
