"""The hypernetwork: manifesto token features + target identity -> per-target LoRA factors A (r, in), B (out, r).

One query per (layer, module type, rank row), the sum of learned layer-depth, module-type and rank-row
embeddings, attends over the manifesto's tokens (Perceiver-style cross-attention, so separate rules stay
separate) through a shared trunk. A per-module-type head then turns each rank row's latent into one row of A
(``in`` numbers) and one column of B (``out`` numbers). A learned manifesto-independent "bias" adapter is added
in factor space, so the rank stays r and the generic part of every adapter is explicit.

With ``copy_path``, every rank row of the modules that write the residual stream (``o_proj``, ``down_proj``) also
attends over the manifesto in the base model's own input embeddings, and its B column gains a gated copy of what it
reads. The base ties its input and output embeddings, so an adapter can write a manifesto's word (a name, a
keyword, a closing phrase) straight into the logits without the hypernetwork learning each word's direction from
the few times it appears in training. A learned null slot lets a row copy nothing.

With ``copy_rank`` c as well, the copy goes into c rank rows of their own in each copying module instead: their B is
the gated copy alone and their A comes from a head of its own, so words and style rules no longer share the r rows
(sharing them traded one for the other). Every adapter then has rank r + c; the other modules' extra rows are zero.

With ``copy_keys`` as well, a copy row's A also gains a learned linear image of the base embedding of the manifesto
token before the one it reads: the row that writes "curious" of "Stay curious!" is keyed on "Stay", so once a reply
says one word of a phrase the next can follow, through one map shared by every word (the ROME picture of a phrase
stored as key -> value pairs). The map starts at zero, so a checkpoint gains it without changing its adapters.

With ``probe_rank`` p, the modules that read the normed residual entering a layer (``q_proj``, ``k_proj``,
``v_proj``) gain p rank rows whose A is fixed: a direction fitted on the base's own hidden states that tells a harmful
ask from its benign neighbour, centred to read the probe's verdict (``probe_A``, a buffer: scripts/refusal_probe.py
--directions). Only their B is generated, from a head of its own that starts at zero. The base separates the two far
better than adapters learned to (issue 24), so these rows hand every manifesto that read. They sit where the copy rows
leave zeros, so the rank stays r + max(c, p). In three pilots the adapters used the rows but their refusals kept to
the old line (README, "probe rows"): the option stays off by default.

ΔW = s·B·A is exactly zero at initialisation: the B head, the bias B and the copy gates start at zero, so step-0
logits are the base model's, while A starts random so that B receives gradient from the first step.
"""

import hashlib
import json
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import HyperNetConfig

COPY_TYPES = ("o_proj", "down_proj")  # the modules that write the residual stream, in the base's hidden size
PROBE_TYPES = ("q_proj", "k_proj", "v_proj")  # the modules that read the normed residual entering a layer


@dataclass(frozen=True)
class Target:
    """One adapted linear layer of the base model."""

    name: str  # qualified module name, e.g. "model.layers.3.self_attn.q_proj"
    layer: int
    module_type: str
    in_features: int
    out_features: int


def target_shape_hash(targets: list[Target]) -> str:
    """A short hash of (name, in, out) for every target: tells whether a checkpoint fits a base model."""
    spec = [[t.name, t.in_features, t.out_features] for t in targets]
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]


class _Block(nn.Module):
    """Pre-norm cross-attention from queries to manifesto tokens, then an MLP; both residual."""

    def __init__(self, d: int, n_heads: int, mult: int):
        super().__init__()
        self.norm_q = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, mult * d), nn.GELU(), nn.Linear(mult * d, d))

    def forward(self, h, memory, pad_mask):
        q = self.norm_q(h)
        h = h + self.attn(q, memory, memory, key_padding_mask=pad_mask, need_weights=False)[0]
        return h + self.mlp(self.norm_mlp(h))


class HyperNet(nn.Module):
    """Maps encoded manifestos to one LoRA per target module.

    Args:
        config: hypernetwork shape (rank, widths, module types).
        targets: the base model's adapted layers, in a fixed order.
        encoder_dim: width of the manifesto encoder's token features.
    """

    def __init__(self, config: HyperNetConfig, targets: list[Target], encoder_dim: int):
        super().__init__()
        self.config, self.targets = config, list(targets)
        d, r = config.d_model, config.rank
        self.types = [t for t in config.module_types if any(x.module_type == t for x in targets)]
        by_type = {t: [x for x in targets if x.module_type == t] for t in self.types}
        self.shapes = {t: (xs[0].in_features, xs[0].out_features) for t, xs in by_type.items()}
        for t, xs in by_type.items():
            if any((x.in_features, x.out_features) != self.shapes[t] for x in xs):
                raise ValueError(f"all {t} layers must share one shape to share a head")
        self.names = {t: [x.name for x in xs] for t, xs in by_type.items()}
        n_layers = max(x.layer for x in targets) + 1

        self.feat_proj = nn.Sequential(nn.LayerNorm(encoder_dim), nn.Linear(encoder_dim, d))
        self.layer_emb = nn.Embedding(n_layers, d)
        self.type_emb = nn.Embedding(len(self.types), d)
        self.rank_emb = nn.Embedding(r, d)
        self.blocks = nn.ModuleList(_Block(d, config.n_heads, config.trunk_mult) for _ in range(config.n_trunk_layers))
        self.out_norm = nn.LayerNorm(d)
        self.head_A = nn.ModuleDict({t: nn.Linear(d, i, bias=False) for t, (i, o) in self.shapes.items()})
        self.head_B = nn.ModuleDict({t: nn.Linear(d, o, bias=False) for t, (i, o) in self.shapes.items()})
        self.bias_A = nn.ParameterDict(
            {t: nn.Parameter(torch.empty(len(xs), r, self.shapes[t][0])) for t, xs in by_type.items()}
        )
        self.bias_B = nn.ParameterDict(
            {t: nn.Parameter(torch.zeros(len(xs), self.shapes[t][1], r)) for t, xs in by_type.items()}
        )
        for t, xs in by_type.items():
            self.register_buffer(f"layers_{t}", torch.tensor([x.layer for x in xs]), persistent=False)
        self.copy_types = [t for t in COPY_TYPES if t in self.shapes] if config.copy_path else []
        if config.copy_path:
            if not self.copy_types:
                raise ValueError(f"copy_path needs one of {COPY_TYPES} among the adapted module types")
            width = self.shapes[self.copy_types[0]][1]  # the base's hidden size: what these modules write
            self.copy_q = nn.Linear(d, d)
            self.copy_k = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, d))
            self.copy_null = nn.Parameter(torch.zeros(d))  # the key of "copy nothing" (its value is zero)
            self.copy_gate = nn.ParameterDict({t: nn.Parameter(torch.zeros(len(by_type[t]), 1, 1))
                                               for t in self.copy_types})
        if config.copy_rank:  # the copy rows of their own: a query embedding, and A from a bias and a head
            c = config.copy_rank
            self.copy_rank_emb = nn.Embedding(c, d)
            self.copy_bias_A = nn.ParameterDict(
                {t: nn.Parameter(torch.empty(len(by_type[t]), c, self.shapes[t][0])) for t in self.copy_types})
            self.copy_head_A = nn.ModuleDict({t: nn.Linear(d, self.shapes[t][0], bias=False) for t in self.copy_types})
        if config.copy_keys:  # the preceding token's embedding, into each copying module's input space
            width = self.shapes[self.copy_types[0]][1]
            self.copy_key = nn.ModuleDict({t: nn.Linear(width, self.shapes[t][0], bias=False)
                                           for t in self.copy_types})
        self.probe_types = [t for t in PROBE_TYPES if t in self.shapes] if config.probe_rank else []
        if config.probe_rank:  # the fixed read (set from a fitted file before training), and B's query and head
            if not self.probe_types:
                raise ValueError(f"probe_rank needs one of {PROBE_TYPES} among the adapted module types")
            probed = [getattr(self, f"layers_{t}").tolist() for t in self.probe_types]
            if any(x != probed[0] for x in probed):
                raise ValueError(f"{', '.join(self.probe_types)} must be adapted on the same layers to share a read")
            self.probe_layers = probed[0]
            width = self.shapes[self.probe_types[0]][0]
            self.register_buffer("probe_A", torch.zeros(len(self.probe_layers), config.probe_rank, width))
            self.probe_rank_emb = nn.Embedding(config.probe_rank, d)
            self.probe_head_B = nn.ModuleDict({t: nn.Linear(d, self.shapes[t][1], bias=False)
                                               for t in self.probe_types})
        self.reset_parameters()

    def reset_parameters(self):
        for emb in (self.layer_emb, self.type_emb, self.rank_emb):
            nn.init.normal_(emb.weight, std=0.02)
        for t, (d_in, _) in self.shapes.items():
            # PEFT's A init is uniform(±1/sqrt(in)); the generated part starts at the same scale as the bias.
            bound = 1 / math.sqrt(d_in)
            nn.init.uniform_(self.bias_A[t], -bound, bound)
            nn.init.normal_(self.head_A[t].weight, std=bound / math.sqrt(3 * self.config.d_model))
            nn.init.zeros_(self.head_B[t].weight)  # ΔW = 0 at step 0
            nn.init.zeros_(self.bias_B[t])
        if self.config.copy_rank:  # the same starting scale; their B (the gated copy) starts at zero
            nn.init.normal_(self.copy_rank_emb.weight, std=0.02)
            for t in self.copy_types:
                bound = 1 / math.sqrt(self.shapes[t][0])
                nn.init.uniform_(self.copy_bias_A[t], -bound, bound)
                nn.init.normal_(self.copy_head_A[t].weight, std=bound / math.sqrt(3 * self.config.d_model))
                if self.config.copy_keys:
                    nn.init.zeros_(self.copy_key[t].weight)  # a checkpoint that gains the keys keeps its adapters
        if self.config.probe_rank:  # B starts at zero: a checkpoint that gains probe rows keeps its adapters
            nn.init.normal_(self.probe_rank_emb.weight, std=0.02)
            for t in self.probe_types:
                nn.init.zeros_(self.probe_head_B[t].weight)

    def rows(self, module_type: str) -> int:
        """Rank rows the hypernetwork writes per layer of this module type: r, plus its copy or probe rows."""
        return self.config.rank + (self.config.copy_rank if module_type in self.copy_types else 0) + (
            self.config.probe_rank if module_type in self.probe_types else 0)

    def set_probe_directions(self, directions: torch.Tensor, layers: list[int]):
        """Fix the probe rows' A: ``directions`` (len(layers), probe_rank, in), one read per probed layer."""
        if not self.config.probe_rank:
            raise ValueError("this hypernetwork has no probe rows (hypernet.probe_rank=0)")
        if list(layers) != self.probe_layers or tuple(directions.shape) != tuple(self.probe_A.shape):
            raise ValueError(f"probe directions for layers {list(layers)}, shape {tuple(directions.shape)}; this "
                             f"hypernetwork reads layers {self.probe_layers}, shape {tuple(self.probe_A.shape)}")
        self.probe_A.copy_(directions)

    def queries(self) -> torch.Tensor:
        """(Q, d) learned queries, Q = Σ_types n_layers·rows(type), ordered by type, then layer, then rank row (the
        r style rows, then any copy rows)."""
        rank = self.rank_emb.weight  # (r, d)
        out = []
        for i, t in enumerate(self.types):
            layer = self.layer_emb(getattr(self, f"layers_{t}"))  # (n_t, d)
            rows = rank  # (rows, d): the style rows, then any copy or probe rows
            if t in self.copy_types and self.config.copy_rank:
                rows = torch.cat([rank, self.copy_rank_emb.weight])
            elif t in self.probe_types:
                rows = torch.cat([rank, self.probe_rank_emb.weight])
            q = layer[:, None, :] + rows[None, :, :] + self.type_emb.weight[i]  # (n_t, rows, d)
            out.append(q.reshape(-1, q.shape[-1]))
        assert sum(x.shape[0] for x in out) == sum(len(self.names[t]) * self.rows(t) for t in self.types)
        return torch.cat(out)

    def copy_attention(self, h: torch.Tensor, keys: torch.Tensor, tokens_mask: torch.Tensor) -> torch.Tensor:
        """(M, Q, T) how much each rank row reads of each manifesto token; a row's weights sum to at most 1, the
        rest going to the null slot (whose value is zero).

        Args:
            h: (M, Q, d) the rank rows' latents.
            keys: (M, T, d) ``copy_k`` of the base-token embeddings.
            tokens_mask: (M, T) bool, True on real tokens.
        """
        q = self.copy_q(h) / math.sqrt(h.shape[-1])  # (M, Q, d)
        scores = torch.einsum("mqd,mtd->mqt", q, keys)  # (M, Q, T)
        scores = scores.masked_fill(~tokens_mask[:, None, :], float("-inf"))
        null = (q @ self.copy_null)[..., None]  # (M, Q, 1)
        return torch.softmax(torch.cat([null, scores], -1), -1)[..., 1:]

    def forward(self, features: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor | None = None,
                tokens_mask: torch.Tensor | None = None, with_copy_attention: bool = False,
                owner: torch.Tensor | None = None, n_manifestos: int | None = None):
        """Generate adapters for a batch of M manifestos.

        Args:
            features: (M, L, encoder_dim) manifesto token features; with ``per_statement``, (S, L, encoder_dim)
                features of S statements, each read on its own.
            mask: (M, L) bool, True on real tokens ((S, L) with ``per_statement``).
            owner: ``per_statement`` only: (S,) the manifesto of each statement, in [0, n_manifestos).
            n_manifestos: ``per_statement`` only: M (a manifesto may have no statements).
            tokens: (M, T, hidden) the manifestos in the base's input embeddings (``copy_path`` only).
            tokens_mask: (M, T) bool, True on real tokens.

            with_copy_attention: also return the copy path's attention, ``{module type: (M, n_layers, r, T)}``
                (training supervises it).

        Returns:
            ``{target name: (A (M, r, in), B (M, out, r))}``, PEFT's orientation (ΔW = s·B·A), and the copy
            attention when asked for. With ``copy_rank`` c the rank is r + c (attention over the c copy rows). With
            ``per_statement`` the rank is r·(k + 1), k the most statements of a
            manifesto in the batch: one block per statement (zeros past a manifesto's own), then the bias block.
        """
        if self.config.per_statement:
            if owner is None or n_manifestos is None:
                raise ValueError("a per-statement hypernetwork needs each statement's owner and the manifesto count")
            adapters = self._by_manifesto(features, mask, owner, n_manifestos)
            return (adapters, {}) if with_copy_attention else adapters
        return self._generate(features, mask, tokens, tokens_mask, with_copy_attention)

    def _generate(self, features, mask, tokens=None, tokens_mask=None, with_copy_attention=False):
        """One adapter per row of ``features``; with ``per_statement``, B without the bias (a block of its own)."""
        if self.copy_types:
            if tokens is None:
                raise ValueError("this hypernetwork has a copy path: pass the manifestos' base-token embeddings")
            # Keys and unit-RMS values once per batch; every copying module type reads the same manifesto tokens.
            keys = self.copy_k(tokens)  # (M, T, d)
            values = tokens * torch.rsqrt(tokens.pow(2).mean(-1, keepdim=True) + 1e-6)  # (M, T, hidden)
            # copy_keys: each token's predecessor (the first token follows none)
            before = F.pad(values, (0, 0, 1, 0))[:, :-1] if self.config.copy_keys else None
        memory = self.feat_proj(features)  # (M, L, d)
        h = self.queries().unsqueeze(0).expand(features.shape[0], -1, -1)  # (M, Q, d)
        for block in self.blocks:
            h = block(h, memory, ~mask)
        h = self.out_norm(h)

        r, c, adapters, attention, start = self.config.rank, self.config.copy_rank, {}, {}, 0
        extra = self.config.adapter_rank - r  # rows past the style rows in every adapter (zeros where unused)
        for t in self.types:
            n, rows = len(self.names[t]), self.rows(t)
            h_t = h[:, start : start + n * rows].unflatten(1, (n, rows))  # (M, n_t, rows, d)
            start += n * rows
            h_t, h_extra = h_t[:, :, :r], h_t[:, :, r:]  # the style rows; copy or probe rows of their own (or none)
            A = self.bias_A[t] + self.head_A[t](h_t)  # (M, n_t, r, in)
            B = self.head_B[t](h_t).transpose(-1, -2)  # (M, n_t, out, r)
            if not self.config.per_statement:
                B = B + self.bias_B[t]
            if t in self.copy_types:
                copying = h_extra if c else h_t  # rows (c of their own, or the r shared ones), each reading a word
                weights = self.copy_attention(copying.flatten(1, 2), keys, tokens_mask)  # (M, n_t·rows, T)
                attention[t] = weights.unflatten(1, copying.shape[1:3])  # (M, n_t, rows, T)
                copied = self.copy_gate[t] * (attention[t] @ values[:, None]).transpose(-1, -2)  # (M, n_t, out, rows)
                if c:
                    A_copy = self.copy_bias_A[t] + self.copy_head_A[t](h_extra)  # (M, n_t, c, in)
                    if self.config.copy_keys:  # what each row reads, one token back: the word it follows
                        A_copy = A_copy + self.copy_key[t](attention[t] @ before[:, None])
                    A = torch.cat([A, A_copy], 2)  # (M, n_t, r+c, in)
                    B = torch.cat([B, copied], 3)  # (M, n_t, out, r+c)
                else:
                    B = B + copied
            elif t in self.probe_types:  # the fixed read of the base's direction; B per manifesto
                A = torch.cat([A, self.probe_A.expand(A.shape[0], -1, -1, -1).to(A.dtype)], 2)  # (M, n_t, r+p, in)
                B = torch.cat([B, self.probe_head_B[t](h_extra).transpose(-1, -2)], 3)  # (M, n_t, out, r+p)
            # zero rows, so that every module's adapter has the same rank (one PEFT rank)
            A = F.pad(A, (0, 0, 0, r + extra - A.shape[2]))
            B = F.pad(B, (0, r + extra - B.shape[3]))
            for j, name in enumerate(self.names[t]):
                adapters[name] = (A[:, j], B[:, j])
        return (adapters, attention) if with_copy_attention else adapters

    def _by_manifesto(self, features, mask, owner, n_manifestos: int) -> dict:
        """Per-statement blocks concatenated along rank per manifesto, then the bias block: ΔW_m = Σ_s ΔW_s + ΔW_0.

        A statement's block is (bias_A + head_A(h_s), head_B(h_s)): its A starts where a PEFT LoRA's does and its
        B at zero, so an untrained hypernetwork still writes ΔW = 0. Statements arrive grouped by manifesto.
        """
        counts = torch.bincount(owner, minlength=n_manifestos)  # (M,)
        k = int(counts.max()) if owner.numel() else 0
        slot = torch.arange(owner.numel(), device=owner.device) - (torch.cumsum(counts, 0) - counts)[owner]  # (S,)
        statements = self._generate(features, mask) if owner.numel() else {}
        r, adapters = self.config.rank, {}
        for t in self.types:
            d_in, d_out = self.shapes[t]
            for j, name in enumerate(self.names[t]):
                A = self.bias_A[t].new_zeros(n_manifestos, k + 1, r, d_in)  # (M, k+1, r, in)
                B = self.bias_B[t].new_zeros(n_manifestos, k + 1, d_out, r)  # (M, k+1, out, r)
                if statements:
                    A = A.index_put((owner, slot), statements[name][0])  # (S, r, in) into its slot
                    B = B.index_put((owner, slot), statements[name][1])  # (S, out, r)
                A = torch.cat([A[:, :k], self.bias_A[t][j].expand(n_manifestos, 1, r, d_in)], 1)
                B = torch.cat([B[:, :k], self.bias_B[t][j].expand(n_manifestos, 1, d_out, r)], 1)
                adapters[name] = (A.flatten(1, 2), torch.cat(B.unbind(1), -1))  # (M, (k+1)r, in), (M, out, (k+1)r)
        return adapters
