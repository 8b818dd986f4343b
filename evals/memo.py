"""The eval's memo: what no checkpoint changes, kept between runs so that evaluating a new checkpoint decodes only
its own conditions.

About half of a full eval is baselines: the base model, the system prompt (with and without an example, and as a
KV prefix), the oracle LoRAs, the manifesto reader and the multitask LoRA. Their LoRAs, replies and scores depend
on the data, the preset, the base model and the eval's code, never on the hypernetwork. The memo keeps them:

- the trained LoRAs (oracle, multitask, and the reader when the eval trains it), with their training records;
- every decoded row that carries no generated adapter (``independent``), keyed by its content: prompt ids, LoRA
  name, KV prefix, seed, token budget and temperature;
- the per-item KL and neutral-text NLL of the conditions those rows belong to.

A run looks each up, computes what is missing and stores it. The memo lives in one directory per *fingerprint*:
a hash of everything the kept values depend on (settings, seeds, splits, the data's bytes, base model, LoRA rank,
a loaded reader's bytes, torch and transformers versions, device, and the source of the code that makes them), so
a change to any of those starts a fresh memo instead of reading stale values. ``--fresh`` recomputes everything
(and refills the memo).

Replies read from the memo were decoded in other batches than this run's; batch composition can move a greedy
choice at the margin of floating point (scripts/bench_decode.py counts such changes; it found none in 64 rows).
"""

import hashlib
import importlib
import inspect
import json
import os
from pathlib import Path

MEMO_VERSION = 1
# Trained LoRAs whose rows are checkpoint-independent; generated ("gen:", "random:", "empty") ones are not.
BASELINE_LORAS = ("oracle", "multitask", "reader")
# The code that makes the kept values: a change to any of it starts a fresh memo.
SOURCES = ("hyperlora.decode", "hyperlora.lora", "hyperlora.generation", "hyperlora.base",
           "hyperlora.evals.lora_train", "hyperlora.evals.data", "hyperlora.evals.capability_data")


def memo_root() -> Path:
    """Where the memos live: ``$HYPERLORA_CACHE/eval-memo`` (``hyperlora.base.cache_dir``)."""
    from hyperlora.base import cache_dir

    return cache_dir() / "eval-memo"


def independent(row) -> bool:
    """Whether a decoding row's reply is the same under every checkpoint: no LoRA, or a baseline LoRA."""
    return row.adapter is None or row.adapter.split(":")[0] in BASELINE_LORAS


def row_key(row, temperature: float) -> str:
    """A row's content (what decides its reply) as a key."""
    spec = [list(row.ids), row.adapter, row.prefix, row.seed, row.max_new,
            row.temperature if row.temperature is not None else temperature]
    return hashlib.sha1(json.dumps(spec).encode()).hexdigest()


def _digest_tree(path: Path) -> str:
    h = hashlib.sha1()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(hashlib.sha1(f.read_bytes()).digest())
    return h.hexdigest()


def fingerprint(cfg: dict, seeds: int, splits, data_dir, base_model: str, rank: int, reader_dir, device: str,
                functions=()) -> str:
    """A hash of everything the memo's values depend on; ``functions``: the eval's own functions that make them."""
    import torch
    import transformers

    code = hashlib.sha1()
    for obj in [importlib.import_module(m) for m in SOURCES] + list(functions):
        code.update(inspect.getsource(obj).encode())
    spec = {"version": MEMO_VERSION, "settings": cfg, "seeds": seeds, "splits": list(splits),
            "data": _digest_tree(data_dir), "base_model": base_model, "rank": rank,
            "reader": _digest_tree(reader_dir) if reader_dir else None, "torch": torch.__version__,
            "transformers": transformers.__version__, "device": device, "code": code.hexdigest()}
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Memo:
    """The memo of one fingerprint. ``enabled=False`` (``--fresh``) misses every lookup but still stores.

    Args:
        root: the directory of all memos (one subdirectory per fingerprint).
        key: the fingerprint.
        enabled: read what is kept.
    """

    def __init__(self, root, key: str, enabled: bool = True):
        self.dir, self.key, self.enabled = Path(root) / key, key, enabled
        path = self.dir / "values.json"
        self.values = json.loads(path.read_text()) if enabled and path.exists() else {}
        self.hits, self.misses = {}, {}

    def get(self, kind: str, key: str):
        """The kept value, or None (counted as a hit or a miss of ``kind``)."""
        value = self.values.get(kind, {}).get(key) if self.enabled else None
        counter = self.misses if value is None else self.hits
        counter[kind] = counter.get(kind, 0) + 1
        return value

    def put(self, kind: str, key: str, value):
        self.values.setdefault(kind, {})[key] = value

    def loras(self):
        """The kept trained LoRAs (``{"oracle", "multitask", "reader"?}`` -> train_loras' result), or None."""
        import torch

        path = self.dir / "loras.pt"
        if not (self.enabled and path.exists()):
            self.misses["loras"] = 1
            return None
        self.hits["loras"] = 1
        return torch.load(path, weights_only=True)

    def put_loras(self, trained: dict):
        import torch

        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"loras.pt.{os.getpid()}.tmp"
        torch.save(trained, tmp)
        tmp.replace(self.dir / "loras.pt")  # whole or absent

    def save(self):
        """Write the values (atomically: a killed run leaves the previous file)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"values.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(self.values))
        tmp.replace(self.dir / "values.json")

    def summary(self) -> dict:
        return {"fingerprint": self.key, "path": str(self.dir), "read": self.enabled, "hits": dict(self.hits),
                "misses": dict(self.misses)}
