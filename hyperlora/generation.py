"""Chat formatting and batched generation with the base model (with or without an adapter applied, with or without
bans on tagged modes)."""

import torch

from .modes import ModeRules, close_open

__all__ = ["ModeRules", "chat_ids", "chat_messages", "generate", "generate_each"]


def chat_messages(prompt, system: str | None = None) -> list[dict]:
    """A user prompt (a string, or a list of chat messages for multi-turn) as chat messages."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system is not None:
        messages = [{"role": "system", "content": system}] + [m for m in messages if m["role"] != "system"]
    return messages


def chat_ids(tokenizer, prompt, system: str | None = None) -> list[int]:
    """Token ids of the chat up to the assistant's turn."""
    ids = tokenizer.apply_chat_template(chat_messages(prompt, system), add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)


@torch.inference_mode()
def generate(model, tokenizer, prompts, system: str | None = None, max_new_tokens: int = 64, batch_size: int = 8,
             do_sample: bool = False, temperature: float = 1.0, seed: int | None = None,
             mode_rules: ModeRules | None = None) -> list[str]:
    """Reply to each prompt (greedy by default), batched with left padding.

    Args:
        model, tokenizer: the base model (apply an adapter around this call to generate with it).
        prompts: strings or message lists.
        system: system prompt for every prompt (None keeps the chat template's default).
        max_new_tokens: reply length cap.
        batch_size: prompts per forward.
        do_sample, temperature, seed: sampling instead of greedy decoding.
        mode_rules: bans on tag transitions (``ModeRules``), enforced token by token; unclosed tags are closed.

    Returns:
        The decoded replies, special tokens removed.
    """
    from transformers import LogitsProcessorList  # here: `import hyperlora` stays free of transformers' import time

    if seed is not None:
        torch.manual_seed(seed)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    replies = []
    for i in range(0, len(prompts), batch_size):
        batch = [chat_ids(tokenizer, p, system) for p in prompts[i : i + batch_size]]
        width = max(len(b) for b in batch)
        ids = torch.tensor([[pad] * (width - len(b)) + b for b in batch], device=device)
        mask = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch], device=device)
        if mode_rules is not None:
            mode_rules.prompt_width = width
        out = model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=do_sample,
            temperature=temperature if do_sample else None, top_p=None, top_k=None, pad_token_id=pad,
            logits_processor=LogitsProcessorList([mode_rules] if mode_rules is not None else []),
        )
        texts = [tokenizer.decode(o[width:], skip_special_tokens=True).strip() for o in out]
        replies += [close_open(t) for t in texts] if mode_rules is not None else texts
    return replies


def generate_each(model, tokenizer, prompts, adapters, max_new_tokens: int = 64, batch_size: int = 32,
                  progress=None, systems=None, mode_rules: ModeRules | None = None) -> list[str]:
    """Greedy replies where every prompt carries its own adapter (``None``: the base), as the eval decodes them.

    Rows with different adapters share a batch through per-example LoRA (``hyperlora.decode``), never merged, so
    the cost is the number of decoding steps over ``len(prompts) / batch_size`` batches, not one pass per adapter.

    Args:
        model, tokenizer: the base model.
        prompts: strings or message lists.
        adapters: per prompt, a ``hyperlora.Adapter``, a ``{module: (A (r, in), B·scaling (out, r))}`` dict (what
            ``decode.lora_factors`` makes and ``evals.lora_train`` returns), or ``None``; one object may serve many.
        max_new_tokens: reply length cap.
        batch_size: rows per forward.
        progress: optional callable(n_rows_done).
        systems: optional system prompt per prompt (``None`` entries keep the chat template's default).
        mode_rules: bans on tag transitions (``ModeRules``), enforced token by token as in ``generate``; unclosed
            tags are closed.
    """
    from .decode import Row, decode, lora_factors

    if len(adapters) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(adapters)} adapters")
    systems = systems if systems is not None else [None] * len(prompts)
    table, keys, rows = {}, {}, []
    for prompt, adapter, system in zip(prompts, adapters, systems):
        key = None
        if adapter is not None:
            key = keys.setdefault(id(adapter), f"a{len(keys)}")
            if key not in table:
                table[key] = adapter if isinstance(adapter, dict) else lora_factors(adapter)
        rows.append(Row(chat_ids(tokenizer, prompt, system), adapter=key))
    eos = getattr(model.generation_config, "eos_token_id", None)
    eos_ids = {tokenizer.eos_token_id} | set(eos if isinstance(eos, (list, tuple)) else [eos])
    eos_ids.discard(None)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if mode_rules is not None:
        mode_rules.prompt_width = 0  # decode hands a processor the generated ids alone
    out = decode(model, rows, table, max_new_tokens=max_new_tokens, eos_ids=eos_ids, pad_id=pad,
                 batch_size=batch_size, progress=progress, processor=mode_rules)
    texts = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in out]
    return [close_open(t) for t in texts] if mode_rules is not None else texts
