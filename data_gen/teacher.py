"""Teacher mode for capable bases: context distillation targets filtered by the verifiers.

For each record the teacher (the base itself or a bigger model) reads the manifesto as its **system prompt** and
samples ``n`` replies; the best reply that passes every verifier (highest mean token log-prob among the passing
ones) replaces the programmatic target (``source="teacher"``). When none passes, the transform target stays
(``source`` unchanged) and ``teacher_passed`` is False. Either way the teacher's top-k log-probs over the kept
reply are stored, for a top-k KL loss to the teacher (context distillation):

- ``teacher_topk_ids[t]`` / ``teacher_topk_logprobs[t]``: the k most likely next tokens at reply position t and
  their log-probs, for t over ``tokenizer(response, add_special_tokens=False).input_ids + [eos]``, conditioned on
  the chat-templated ``[system: manifesto] + prompt``. The trainer must tokenize the reply the same way.

On the embedded 135M base this mode is slow (CPU) and few samples pass (it ignores system prompts); it exists for
GPU runs with a capable base: ``generate_dataset(out, teacher="path/or/hub-id")`` or ``teacher=(model, tok)``.
"""

import random

import torch

from .verifiers import verify


def _load(teacher):
    if isinstance(teacher, (tuple, list)) and len(teacher) == 2:
        return teacher
    if isinstance(teacher, str):
        from hyperlora.base import load_base

        device = "cuda" if torch.cuda.is_available() else None
        return load_base(teacher, dtype=torch.bfloat16 if device else torch.float32, device=device)
    raise ValueError("teacher must be a base name / model directory or a (model, tokenizer) pair")


def _prompt_ids(tok, messages) -> list[int]:
    if getattr(tok, "chat_template", None):
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "input_ids"):  # newer transformers return a BatchEncoding
            ids = ids["input_ids"]
        return list(ids)
    # Tokenizers without a chat template: a plain transcript.
    text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages) + "Assistant:"
    return tok(text, add_special_tokens=False).input_ids


def _eos(tok) -> int:
    return tok.eos_token_id if tok.eos_token_id is not None else tok.pad_token_id


@torch.no_grad()
def teacher_topk(model, tok, prompt_ids: list[int], response: str, top_k: int):
    """Top-k next-token ids and log-probs of the teacher over ``response`` (+ EOS) after ``prompt_ids``.

    Returns:
        ``(ids, logprobs, mean_logprob)``: lists of length T (reply tokens + EOS) of k items each, and the mean
        log-prob of the reply's own tokens.
    """
    resp_ids = tok(response, add_special_tokens=False).input_ids + [_eos(tok)]
    device = next(model.parameters()).device
    full = torch.tensor([prompt_ids + resp_ids], device=device)
    logits = model(full).logits[0, len(prompt_ids) - 1 : -1].float()  # (T, V): position t predicts resp_ids[t]
    logp = torch.log_softmax(logits, dim=-1)
    k = min(top_k, logp.shape[-1])
    vals, idx = logp.topk(k, dim=-1)  # (T, k)
    own = logp.gather(-1, torch.tensor(resp_ids, device=device)[:, None])[:, 0]
    return idx.tolist(), vals.tolist(), float(own.mean())


@torch.no_grad()
def sample_replies(model, tok, prompt_ids: list[int], n: int, max_new_tokens: int, temperature: float, seed: int):
    """``n`` sampled replies (strings) to one prompt, reproducible from ``seed``."""
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    inp = torch.tensor([prompt_ids] * n, device=device)
    out = model.generate(
        input_ids=inp,
        attention_mask=torch.ones_like(inp),
        do_sample=True,
        temperature=temperature,
        top_p=0.95,
        max_new_tokens=max_new_tokens,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else _eos(tok),
        eos_token_id=_eos(tok),
    )
    return [tok.decode(row[len(prompt_ids) :], skip_special_tokens=True).strip() for row in out]


def annotate_with_teacher(records: list[dict], teacher, n: int = 4, top_k: int = 20, max_new_tokens: int = 96,
                          temperature: float = 0.8, seed: int = 0, progress: bool = True) -> list[dict]:
    """Best-of-n teacher replies kept by the verifiers, plus top-k teacher log-probs (see the module docstring).

    Args:
        records: generated records (``manifesto``, ``prompt``, ``response``, ``rules``, ``prompt_kind``).
        teacher: a base name / HF directory, or a ``(model, tokenizer)`` pair.
        n: samples per record.
        top_k: log-probs kept per position.
        max_new_tokens: sample length.
        temperature: sampling temperature.
        seed: base seed; each record derives its own.
        progress: show a tqdm bar.

    Returns:
        the records, updated in place, with ``teacher_topk_ids``, ``teacher_topk_logprobs``, ``teacher_passed``.
    """
    from tqdm.auto import tqdm

    if n < 1 or top_k < 1:
        raise ValueError("teacher n and top_k must be >= 1")
    model, tok = _load(teacher)
    rng = random.Random(f"teacher-{seed}")
    for rec in tqdm(records, desc="teacher", disable=not progress):
        messages = ([{"role": "system", "content": rec["manifesto"]}] if rec["manifesto"].strip() else []) + list(
            rec["prompt"]
        )
        pids = _prompt_ids(tok, messages)
        cands = sample_replies(model, tok, pids, n, max_new_tokens, temperature, rng.randrange(2**31))
        passing = [c for c in dict.fromkeys(cands) if c and verify(rec["rules"], c, rec["prompt"], rec["prompt_kind"])]
        best, best_score, best_topk = None, float("-inf"), None
        for c in passing:
            ids, lps, score = teacher_topk(model, tok, pids, c, top_k)
            if score > best_score:
                best, best_score, best_topk = c, score, (ids, lps)
        if best is not None:
            rec["response"], rec["source"] = best, "teacher"
            ids, lps = best_topk
        else:
            ids, lps, _ = teacher_topk(model, tok, pids, rec["response"], top_k)
        rec["teacher_topk_ids"], rec["teacher_topk_logprobs"], rec["teacher_passed"] = ids, lps, best is not None
    return records
