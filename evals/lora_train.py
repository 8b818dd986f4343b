"""Train plain LoRAs for the oracle and multitask rows: prompt-baking style, several LoRAs in one batch.

Each *group* of (prompt, target) pairs gets its own LoRA on every target module (A random, B zero, so it starts
as the base). All groups train together: a step takes ``per_group`` pairs from every group and runs them through
``per_example_lora``, each sequence with its own group's (A, B), so G LoRAs cost one batched forward/backward per
step instead of G. The loss is the mean token cross-entropy on the targets (prompt tokens masked); a group's
gradient only comes from its own rows, and Adam keeps per-parameter state, so each LoRA follows the same path it
would alone (up to batch composition). Prompts are formatted with the chat template and no manifesto: the LoRA,
not the context, must carry the behaviour.
"""

import random
import time

import torch


def train_loras(model, tokenizer, groups, rank: int = 8, alpha: float = 16.0, steps: int = 100,
                per_group: int = 2, lr: float = 2e-3, max_len: int = 160, seed: int = 0, layers=(),
                progress=None) -> dict:
    """Train one LoRA per group of pairs.

    Args:
        model: the frozen base model (its weights are never changed).
        tokenizer: its tokenizer.
        groups: list of lists of (prompt messages, target text); empty groups get a zero LoRA.
        rank, alpha: LoRA rank and alpha (scale alpha / rank).
        steps: optimizer steps (every group takes part in every step).
        per_group: pairs per group per step.
        lr: Adam learning rate.
        max_len: tokens per sequence (longer ones are cut at the end).
        seed: initialisation and sampling seed.
        layers: decoder layers to adapt (empty: all of them).
        progress: optional callable(1), called after every step (a progress bar's ``update``).

    Returns:
        ``{"factors": [{module: (A (r, in), B·scale (out, r))} per group], "seconds": total wall time,
        "steps", "losses": [mean loss per step], "n_pairs": [per group]}``.
    """
    from hyperlora.base import find_target_modules, layer_index
    from hyperlora.generation import chat_ids
    from hyperlora.lora import per_example_lora

    start = time.perf_counter()
    targets = {n: m for n, m in find_target_modules(model).items() if not layers or layer_index(n) in layers}
    G = len(groups)
    gen = torch.Generator().manual_seed(seed)
    dev = next(model.parameters()).device
    params = {}
    for name, lin in targets.items():
        A = torch.randn(G, rank, lin.in_features, generator=gen) / lin.in_features**0.5  # (G, r, in)
        B = torch.zeros(G, lin.out_features, rank)  # (G, out, r): ΔW = 0 at step 0
        params[name] = (torch.nn.Parameter(A.to(dev)), torch.nn.Parameter(B.to(dev)))
    opt = torch.optim.Adam([p for pair in params.values() for p in pair], lr=lr)
    scaling = alpha / rank
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos

    encoded = []
    for group in groups:
        enc = []
        for messages, target in group:
            prompt = chat_ids(tokenizer, messages)
            reply = tokenizer(target, add_special_tokens=False)["input_ids"] + [eos]
            ids = (prompt + reply)[:max_len]
            enc.append((ids, len(prompt)))
        encoded.append(enc)
    live = [g for g in range(G) if encoded[g]]
    rng = random.Random(seed)
    losses = []
    was_training = model.training
    model.eval()
    if live:
        for _ in range(steps):
            rows = [(g, rng.choice(encoded[g])) for g in live for _ in range(per_group)]
            width = max(len(ids) for _, (ids, _) in rows)
            input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
            labels = torch.full((len(rows), width), -100, dtype=torch.long)
            mask = torch.zeros(len(rows), width, dtype=torch.long)
            for i, (_, (ids, n_prompt)) in enumerate(rows):
                input_ids[i, : len(ids)] = torch.tensor(ids)
                labels[i, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
                mask[i, : len(ids)] = 1
            input_ids, labels, mask = input_ids.to(dev), labels.to(dev), mask.to(dev)
            index = torch.tensor([g for g, _ in rows], device=dev)
            batch = {n: (A[index], B[index]) for n, (A, B) in params.items()}  # (N, r, in), (N, out, r)
            with torch.enable_grad(), per_example_lora(model, batch, scaling):
                # Vocabulary logits only where a target token is predicted: the full (N, T, V) tensor is most
                # of the memory and time of a step on a 49k vocabulary.
                hidden = getattr(model, model.base_model_prefix)(input_ids=input_ids, attention_mask=mask)[0]
                tgt = labels[:, 1:]
                rows_i, cols_i = (tgt != -100).nonzero(as_tuple=True)
                logits = model.get_output_embeddings()(hidden[rows_i, cols_i]).float()  # (M, V)
                tok_loss = torch.nn.functional.cross_entropy(logits, tgt[rows_i, cols_i], reduction="none")
                counts = torch.bincount(rows_i, minlength=len(rows)).clamp(min=1)
                per_row = torch.zeros(len(rows), device=dev).index_add(0, rows_i, tok_loss) / counts
                loss = per_row.mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            losses.append(float(loss.detach()))
            if progress:
                progress(1)
    model.train(was_training)
    factors = []
    for g in range(G):
        factors.append({n: (A[g].detach().cpu().clone(), B[g].detach().cpu() * scaling)
                        for n, (A, B) in params.items()})
    return {"factors": factors, "seconds": time.perf_counter() - start, "steps": steps if live else 0,
            "losses": losses, "n_pairs": [len(e) for e in encoded]}


def as_adapter(factors: dict, rank: int, alpha: float, base_model: str, provenance: dict):
    """One LoRA of ``train_loras`` (``{module: (A, B·scale)}``) as a ``hyperlora.Adapter``, the scale moved back into
    its config (PEFT keeps it there, as ``lora_alpha / r``), ready to ``save``."""
    from hyperlora.adapter import Adapter

    scaling = alpha / rank
    weights = {n: (A.detach().cpu(), (B / scaling).detach().cpu()) for n, (A, B) in factors.items()}
    return Adapter(weights=weights, rank=rank, lora_alpha=alpha, base_model=base_model,
                   module_types=sorted({n.rsplit(".", 1)[-1] for n in weights}), provenance=provenance)
