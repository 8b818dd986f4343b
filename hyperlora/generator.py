"""HyperLoRA: a manifesto encoder plus a trained hypernetwork; turns text into an ``Adapter`` in one pass."""

import hashlib
import sys
import time
from pathlib import Path

import torch

from .adapter import Adapter, merge_to_rank
from .base import DEFAULT_BASE, find_target_modules, layer_index, meta_model, module_type
from .checkpoint import WEIGHTS_FILE, load_checkpoint, save_checkpoint
from .config import HyperNetConfig
from .encoder import BaseTokens, ManifestoEncoder, load_encoder
from .errors import HyperLoRAError
from .hypernet import HyperNet, Target, target_shape_hash
from .steer import FILE as STEER_FILE
from .steer import Steer

SHIPPED = Path(__file__).parent / "checkpoints"


def shipped_checkpoint(base: str = DEFAULT_BASE) -> Path:
    """Directory of the checkpoint shipped in the package for an embedded base."""
    return SHIPPED / base


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def checkpoint_hash(path) -> str:
    """A checkpoint directory's hash: its weights file's, combined with its steering row's where it holds one (the
    row is part of what it generates, so replies cached for one are not the other's)."""
    digest = file_hash(Path(path) / WEIGHTS_FILE)
    if (Path(path) / STEER_FILE).is_file():
        digest = hashlib.sha256((digest + file_hash(Path(path) / STEER_FILE)).encode()).hexdigest()[:16]
    return digest


def targets_of(model, module_types, layers=()) -> list[Target]:
    """The adapted layers of ``model``: every linear of the given types (in ``layers``, or all), stably ordered."""
    targets = [
        Target(name, layer_index(name), module_type(name), m.in_features, m.out_features)
        for name, m in find_target_modules(model, tuple(module_types)).items()
    ]
    if layers:
        missing = set(layers) - {t.layer for t in targets}
        if missing:
            raise HyperLoRAError(f"the model has no decoder layers {sorted(missing)}")
        targets = [t for t in targets if t.layer in set(layers)]
    return targets


class HyperLoRA:
    """Turns manifestos into LoRA adapters for one base model.

    Args:
        hypernet: the trained hypernetwork (its config names the base and the encoder).
        encoder: the frozen manifesto encoder; built from the config when None.
    """

    def __init__(self, hypernet: HyperNet, encoder: ManifestoEncoder | None = None, checkpoint_hash=None,
                 base_tokens: BaseTokens | None = None, steer: Steer | None = None):
        self.hypernet = hypernet.eval()
        self.config: HyperNetConfig = hypernet.config
        self.encoder = encoder or load_encoder(self.config.encoder, self.config.max_manifesto_tokens,
                                               self.config.base_model)
        self.base_tokens = base_tokens  # copy path only; loaded from the base on first use when None
        self.checkpoint_hash = checkpoint_hash  # hash of the weights file it was loaded from; None if unsaved
        self.target_shape_hash = target_shape_hash(hypernet.targets)
        self.steer = steer  # the conditional refusal row (hyperlora.steer); None: adapters as generated
        if steer is not None and steer.encoder != self.config.encoder:
            raise HyperLoRAError(f"the steering gate reads {steer.encoder}; this hypernetwork, {self.config.encoder}")

    @classmethod
    def from_pretrained(cls, path=None, base: str | None = None) -> "HyperLoRA":
        """Load a checkpoint directory; ``None`` is the checkpoint shipped for ``base`` (default base if None).

        Args:
            path: checkpoint directory, or None for the shipped one.
            base: if given, the checkpoint must fit this base model's target layers (checked on a weightless
                copy of the model built from its config, so nothing large is loaded).
        """
        if path is None:
            path = shipped_checkpoint(base or DEFAULT_BASE)
            if not path.is_dir():
                raise HyperLoRAError(f"no shipped checkpoint for base {base!r}; pass --checkpoint")
        steer = Steer.load(Path(path) / STEER_FILE) if (Path(path) / STEER_FILE).is_file() else None
        hl = cls(load_checkpoint(path), checkpoint_hash=checkpoint_hash(path), steer=steer)
        if base is not None:
            hl.check_base(meta_model(base))
        return hl

    @classmethod
    def for_model(cls, model, config: HyperNetConfig | None = None, encoder=None, seed: int = 0) -> "HyperLoRA":
        """A fresh, untrained HyperLoRA for ``model`` (ΔW = 0 until trained)."""
        config = config or HyperNetConfig(base_model=getattr(model, "name_or_path", DEFAULT_BASE))
        encoder = encoder or load_encoder(config.encoder, config.max_manifesto_tokens, config.base_model)
        torch.manual_seed(seed)
        return cls(HyperNet(config, targets_of(model, config.module_types, config.layers), encoder.dim), encoder)

    def save_pretrained(self, out_dir, extra: dict | None = None, dtype: torch.dtype | None = None):
        out_dir = save_checkpoint(self.hypernet, out_dir, extra=extra, dtype=dtype)
        if self.steer is not None:  # kept with the weights it was fitted for; a new training run starts without one
            self.steer.save(out_dir / STEER_FILE)
        self.checkpoint_hash = checkpoint_hash(out_dir)
        return out_dir

    def check_base(self, model) -> None:
        """Raise if ``model``'s target layers differ from those this hypernetwork writes for."""
        try:
            found = target_shape_hash(targets_of(model, self.config.module_types, self.config.layers))
        except ValueError:
            found = "none"
        if found != self.target_shape_hash:
            raise HyperLoRAError(
                f"this checkpoint was made for {self.config.base_model!r}; the given base has other target "
                f"layers or shapes (shape hash {found} != {self.target_shape_hash})"
            )

    @torch.inference_mode()
    def generate_adapter(self, text: str, strength: float = 1.0, allow_empty: bool = False) -> Adapter:
        """Generate the adapter for one manifesto in a single forward pass.

        Args:
            text: the manifesto (values and rules in plain words).
            strength: multiplies the LoRA scale (0 = the base model, 1 = as trained).
            allow_empty: accept an empty manifesto (the evals' "empty" control).

        Manifestos longer than the encoder window are chunked; the chunk adapters' differences from the empty
        manifesto's adapter are summed onto it and truncated back to rank r by SVD (a note goes to stderr).
        """
        if not isinstance(text, str):
            raise HyperLoRAError("the manifesto must be a string")
        if not text.strip() and not allow_empty:
            raise HyperLoRAError("the manifesto is empty")
        if not 0 <= strength <= 10:
            raise HyperLoRAError(f"strength must be within [0, 10], got {strength}")
        start = time.perf_counter()
        if self.config.per_statement:
            return self._statement_adapter(text, strength, start)
        chunks = self.encoder.chunk(text.strip())
        if len(chunks) > 1:
            # The empty manifesto's adapter is the reference each chunk's effect is measured against.
            chunks = chunks + self.encoder.chunk("")
            print(
                f"hyperlora: manifesto is {sum(len(c) - 2 for c in chunks)} tokens, over the encoder's "
                f"{self.encoder.window}; generated {len(chunks) - 1} chunk adapters and merged them to rank "
                f"{self.config.adapter_rank} by SVD",
                file=sys.stderr,
            )
        features, mask = self.encoder.encode_ids(chunks)
        copy = ()
        if self.config.copy_path:
            self.base_tokens = self.base_tokens or BaseTokens.for_base(self.config.base_model)
            ids = self.base_tokens.ids(text.strip())
            if len(chunks) == 1:
                pieces = [ids]
            else:  # each chunk reads its share of the manifesto's base tokens; the empty reference reads none
                k = len(chunks) - 1
                pieces = [ids[len(ids) * c // k : len(ids) * (c + 1) // k] for c in range(k)] + [[]]
            copy = self.base_tokens.embed(pieces)
        generated = self.hypernet(features, mask, *copy)  # {name: (A (M, rank, in), B (M, out, rank))}
        weights = {}
        for name, (A, B) in generated.items():
            if len(chunks) == 1:
                weights[name] = (A[0].clone(), B[0].clone())
            else:
                # ΔW = ΔW_empty + Σ_c (ΔW_c − ΔW_empty): each chunk adds its own rules to the generic part.
                k = len(chunks) - 1
                pairs = [(A[c], B[c]) for c in range(k)] + [(A[k], B[k] * (1 - k))]
                weights[name] = merge_to_rank(pairs, self.config.adapter_rank)
        n = 1 if len(chunks) == 1 else len(chunks) - 1  # the empty reference chunk states no rule
        adapter = self._adapter(weights, self.config.adapter_rank, text, strength, start, chunks=n)
        return self._steered(adapter, features[:n], mask[:n])

    def _statement_adapter(self, text: str, strength: float, start: float) -> Adapter:
        """A per-statement hypernetwork's adapter: one rank-r block per statement plus the bias block, exactly
        (rank r·(statements + 1), no SVD); ``Adapter.compose`` or PEFT export can truncate it."""
        features, mask = self.encoder.encode_statements(text)
        k = features.shape[0]
        generated = self.hypernet(features, mask, owner=torch.zeros(k, dtype=torch.long), n_manifestos=1)
        weights = {name: (A[0].clone(), B[0].clone()) for name, (A, B) in generated.items()}
        adapter = self._adapter(weights, self.config.rank * (k + 1), text, strength, start, statements=k)
        if self.steer is None:
            return adapter
        return self._steered(adapter, *self.encoder.encode_ids(self.encoder.chunk(text.strip())))  # whole windows

    def _steered(self, adapter: Adapter, features: torch.Tensor, mask: torch.Tensor) -> Adapter:
        """``adapter`` with the checkpoint's steering row where its gate reads the manifesto's windows as holding a
        refusal rule; as it is otherwise."""
        if self.steer is not None and self.steer.gates(features, mask):
            return self.steer.extend(adapter)
        return adapter

    def _adapter(self, weights: dict, rank: int, text: str, strength: float, start: float, **provenance) -> Adapter:
        """The generated weights as an ``Adapter`` at scale alpha / r × strength whatever its rank (PEFT scales by
        lora_alpha / rank), with where it came from and how long it took."""
        return Adapter(
            weights=weights,
            rank=rank,
            lora_alpha=self.config.alpha * strength * rank / self.config.rank,
            base_model=self.config.base_model,
            module_types=list(self.hypernet.types),
            layers=list(self.config.layers),
            manifesto=text,
            strength=strength,
            provenance={
                "checkpoint_hash": self.checkpoint_hash,
                "target_shape_hash": self.target_shape_hash,
                "generation_ms": round((time.perf_counter() - start) * 1000, 2),
                **provenance,
            },
        )
