"""Batched decoding and teacher-forced scoring where every sequence may carry its own LoRA or KV prefix.

Every sequence is a *row*: prompt token ids, optionally a LoRA (``adapter`` key) and optionally a reusable KV
prefix (``prefix`` key). LoRA rows run through ``hyperlora.lora.per_example_lora`` with one (A, B) per sequence,
so rows with different adapters decode together: the eval's conditions of many manifestos, or the server's
concurrent requests. On a CPU the number of decoding steps, not the batch width, is what costs. LoRA factors are
stored with the scale folded into B (``B·s``), so adapters with different ``lora_alpha`` share one batch at
scaling 1.

The KV-prefix rows reuse a cache prefilled once per manifesto (the system turn): the cached keys and values are
left-padded to a common length and the rest of each prompt follows, so a row is laid out as
``[pad][prefix][pad][prompt]`` with the attention mask zero on both pads and position ids counted over the real
tokens only, exactly the positions the unpadded sequence would have.
"""

import functools
import inspect
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from .lora import per_example_lora


@dataclass
class Row:
    """One sequence to decode or score.

    Args:
        ids: prompt token ids (for prefix rows, the full ids: the cached prefix followed by the rest).
        adapter: key into the adapter table (None: the base weights).
        prefix: key into the prefix-cache table (None: no reused cache).
        seed: None decodes greedily; an int samples from its own generator.
        max_new: this row's length cap (None: the decode call's).
        temperature: this seeded row's sampling temperature (None: the decode call's).
    """

    ids: list
    adapter: str | None = None
    prefix: str | None = None
    seed: int | None = None
    max_new: int | None = None
    temperature: float | None = None


def lora_factors(adapter) -> dict:
    """``{module: (A (r, in), B·scaling (out, r))}`` of a ``hyperlora.Adapter`` (scale folded into B)."""
    return {n: (A.float(), B.float() * adapter.scaling) for n, (A, B) in adapter.weights.items()}


def prefill_prefix(model, ids: list) -> dict:
    """Run ``ids`` once and keep its KV cache: ``{"ids", "kv": [(K (1, h, L, d), V), ...]}``."""
    from transformers import DynamicCache

    with torch.inference_mode():
        cache = DynamicCache()
        _cached_forward(model, cache, input_ids=torch.tensor([ids], device=_device(model)))
    return {"ids": list(ids), "kv": [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]}


@functools.cache
def _cache_kwarg(model_class) -> str:
    """The forward's name for the KV cache: transformers 5.25 renamed ``past_key_values`` to ``cache`` (the old name
    warns and goes in 5.40), while pyproject still allows 4.x, which knows only the old one. Asked once per class,
    not on every decoding step."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def _cached_forward(model, cache, **inputs):
    """One forward pass that reads and extends ``cache``; returns ``(logits, cache)``."""
    key = _cache_kwarg(type(model))
    out = model(**inputs, **{key: cache}, use_cache=True)
    return out.logits, out[key]


def _stack(rows, adapters: dict, device) -> dict:
    """Per-module (A (N, r, in), B (N, out, r)) for a batch; rows without a module or adapter get zeros."""
    names = sorted({n for r in rows if r.adapter is not None for n in adapters[r.adapter]})
    out = {}
    for name in names:
        pairs = [adapters[r.adapter].get(name) if r.adapter is not None else None for r in rows]
        ref = next(p for p in pairs if p is not None)
        rank = max(p[0].shape[0] for p in pairs if p is not None)  # zero rank rows are exact padding
        (_, d_in), (d_out, _) = ref[0].shape, ref[1].shape
        A = torch.zeros(len(rows), rank, d_in, device=device)  # (N, r, in)
        B = torch.zeros(len(rows), d_out, rank, device=device)  # (N, out, r)
        for i, p in enumerate(pairs):
            if p is not None:
                A[i, : p[0].shape[0]] = p[0]
                B[i, :, : p[1].shape[1]] = p[1]
        out[name] = (A, B)
    return out


def _device(model):
    return next(model.parameters()).device


def _lora_context(model, rows, adapters):
    if not any(r.adapter is not None for r in rows):
        return nullcontext()
    return per_example_lora(model, _stack(rows, adapters, _device(model)), scaling=1.0)


def _first_pass(model, rows, prefixes, pad_id: int):
    """Prefill a batch (left-padded); returns (logits (N, S, V), cache, mask (N, L), last positions (N,))."""
    from transformers import DynamicCache

    n = len(rows)
    plen = [len(prefixes[r.prefix]["ids"]) if r.prefix is not None else 0 for r in rows]
    for r, k in zip(rows, plen):
        if k and r.ids[:k] != prefixes[r.prefix]["ids"]:
            raise ValueError("a prefix row's ids do not start with its cached prefix")
    rest = [r.ids[k:] for r, k in zip(rows, plen)]
    P, S = max(plen), max(len(x) for x in rest)
    ids = torch.full((n, S), pad_id, dtype=torch.long)
    mask = torch.zeros(n, P + S, dtype=torch.long)
    dev = _device(model)
    for i, (x, k) in enumerate(zip(rest, plen)):
        ids[i, S - len(x) :] = torch.tensor(x)
        mask[i, P - k : P] = 1
        mask[i, P + S - len(x) :] = 1
    ids, mask = ids.to(dev), mask.to(dev)
    pos = (mask.cumsum(1) - 1).clamp(min=0)  # positions count real tokens only, as in the unpadded sequence
    cache = DynamicCache()
    if P:
        n_layers = len(next(iter(prefixes.values()))["kv"])
        for layer in range(n_layers):
            kv = []
            for j in (0, 1):
                ref = next(prefixes[r.prefix]["kv"][layer][j] for r in rows if r.prefix is not None)
                t = ref.new_zeros(n, ref.shape[1], P, ref.shape[3])  # (N, heads, P, d), zeros under mask 0
                for i, (r, k) in enumerate(zip(rows, plen)):
                    if k:
                        t[i, :, P - k :] = prefixes[r.prefix]["kv"][layer][j][0].to(t.device)
                kv.append(t)
            cache.update(kv[0], kv[1], layer)
    logits, cache = _cached_forward(model, cache, input_ids=ids, attention_mask=mask, position_ids=pos[:, P:])
    return logits, cache, mask, pos[:, -1]


def _batches(rows, batch_size: int):
    """Indices grouped so LoRA rows and prefix rows batch with their own kind, similar lengths together."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i].adapter is not None, rows[i].prefix is not None,
                                                    len(rows[i].ids)))
    groups = {}
    for i in order:
        groups.setdefault((rows[i].adapter is not None, rows[i].prefix is not None), []).append(i)
    for idx in groups.values():
        for s in range(0, len(idx), batch_size):
            yield idx[s : s + batch_size]


@torch.inference_mode()
def decode(model, rows, adapters=None, prefixes=None, max_new_tokens: int = 64, temperature: float = 1.0,
           eos_ids=(), pad_id: int = 0, batch_size: int = 32, progress=None, compact: bool = True,
           processor=None) -> list[list[int]]:
    """Generate for every row; greedy unless the row has a seed.

    Args:
        model: the base model (adapters are applied per row, never merged).
        rows: ``Row``s.
        adapters: ``{key: lora_factors(...)}``.
        prefixes: ``{key: prefill_prefix(...)}``.
        max_new_tokens: length cap for rows without their own.
        temperature: sampling temperature for seeded rows without their own.
        eos_ids: token ids that end a reply (not included in the output).
        pad_id: padding id.
        batch_size: rows per forward.
        progress: optional callable(n_rows_done) for a progress bar.
        compact: drop finished rows from the batch as it goes (False: they ride along to the batch's end; the same
            tokens, scripts/bench_decode.py compares the two).
        processor: optional logits processor, ``transformers``' interface (``scores = processor(ids, scores)``),
            called at every step with each row's *generated* ids so far (B, t) (a finished row's padded with
            ``pad_id``), e.g. ``hyperlora.modes.ModeRules``.

    Returns:
        Generated token ids per row, in row order.
    """
    adapters, prefixes = adapters or {}, prefixes or {}
    eos = torch.tensor(sorted(set(eos_ids)) or [-1], device=_device(model))
    results: list = [None] * len(rows)
    for idx in _batches(rows, batch_size):
        batch = [rows[i] for i in idx]
        gens = [torch.Generator().manual_seed(r.seed) if r.seed is not None else None for r in batch]
        limits = [r.max_new if r.max_new is not None else max_new_tokens for r in batch]
        temps = [r.temperature if r.temperature is not None else temperature for r in batch]
        with _lora_context(model, batch, adapters) as wrappers:
            logits, cache, mask, last = _first_pass(model, batch, prefixes, pad_id)
            out = [[] for _ in batch]
            live = list(range(len(batch)))  # the batch rows still in the tensors, in their order
            done = torch.zeros(len(batch), dtype=torch.bool)  # per tensor row
            for step in range(max(limits)):
                next_logits = logits[:, -1].float()
                if processor is not None:
                    width = max(len(out[i]) for i in live)
                    so_far = torch.tensor([out[i] + [pad_id] * (width - len(out[i])) for i in live],
                                          dtype=torch.long, device=next_logits.device).reshape(len(live), width)
                    next_logits = processor(so_far, next_logits)
                tok = next_logits.argmax(-1)
                for j, i in enumerate(live):
                    if gens[i] is not None:
                        probs = torch.softmax(next_logits[j].cpu() / temps[i], -1)  # CPU generator
                        tok[j] = torch.multinomial(probs, 1, generator=gens[i])[0]
                for j, i in enumerate(live):
                    if not done[j]:
                        if torch.isin(tok[j], eos):
                            done[j] = True
                        else:
                            out[i].append(int(tok[j]))
                            done[j] = len(out[i]) >= limits[i]
                if bool(done.all()) or step == max(limits) - 1:
                    break
                if compact and int(done.sum()) * 4 >= len(live):
                    # A finished row would still cost a row of every later step; once a quarter of them are
                    # finished, drop them from the cache, the masks and the LoRA factors (a copy of the cache,
                    # so not at every finished row).
                    keep = (~done).nonzero()[:, 0]
                    cache.batch_select_indices(keep.to(mask.device))
                    for w in (wrappers or {}).values():
                        if w.lora_A.shape[0] > 1:
                            w.set(w.lora_A[keep], w.lora_B[keep], w.scaling, w.backend)
                    live, tok, mask, last = [live[j] for j in keep], tok[keep], mask[keep], last[keep]
                    done = done[keep]
                tok = torch.where(done.to(tok.device), torch.full_like(tok, pad_id), tok)
                mask = torch.cat([mask, torch.ones(len(live), 1, dtype=mask.dtype, device=mask.device)], 1)
                last = last + 1
                logits, cache = _cached_forward(model, cache, input_ids=tok[:, None], attention_mask=mask,
                                                position_ids=last[:, None])
        for i, o in zip(idx, out):
            results[i] = o
        if progress:
            progress(len(idx))
    return results


@torch.inference_mode()
def score(model, rows, targets, adapters=None, prefixes=None, pad_id: int = 0, batch_size: int = 16, fn=None):
    """Teacher-forced log-probabilities of ``targets[i]`` after ``rows[i].ids``; ``fn`` reduces them per row.

    Args:
        model, rows, adapters, prefixes, pad_id, batch_size: as in ``decode``.
        targets: token ids to score after each row's prompt.
        fn: ``fn(i, logprobs (T, V))`` called for each row i (its value is collected); default: the summed
            log-probability of the target tokens.

    Returns:
        ``fn``'s value per row, in row order.
    """
    adapters, prefixes = adapters or {}, prefixes or {}
    full = [Row(list(r.ids) + list(t), r.adapter, r.prefix) for r, t in zip(rows, targets)]
    results: list = [None] * len(rows)
    for idx in _batches(full, batch_size):
        batch = [full[i] for i in idx]
        with _lora_context(model, batch, adapters):
            logits, _, _, _ = _first_pass(model, batch, prefixes, pad_id)
        logp = torch.log_softmax(logits.float(), -1)
        for j, i in enumerate(idx):
            t = len(targets[i])
            lp = logp[j, -t - 1 : -1] if t else logp[j, :0]  # (T, V): position k predicts target token k
            if fn is None:
                tgt = torch.tensor(targets[i], dtype=torch.long, device=lp.device)
                results[i] = float(lp.gather(1, tgt[:, None]).sum()) if t else 0.0
            else:
                results[i] = fn(i, lp)
    return results
