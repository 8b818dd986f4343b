"""The batched decoding engine (hyperlora.decode) on a tiny Llama: KV-prefix reuse and per-row LoRAs give the same
tokens as plain generation, a row's own temperature acts as the call's would, merging is exact and undone, and the
random control keeps the adapter's norm.

    .venv/bin/pytest tests/test_evals_decode.py -q
"""

import contextlib

import torch
from hyperlora.evals.controls import Merged, delta_norm, random_like

from hyperlora import Adapter
from hyperlora.base import find_target_modules
from hyperlora.decode import Row, decode, lora_factors, prefill_prefix, score

from .conftest import tiny_llama

PREFIX = [1, 5, 7, 9, 11, 13, 17]
PROMPTS = [PREFIX + [20, 21, 22], PREFIX + [30, 31, 32, 33, 34, 35], PREFIX + [40]]


def hf_greedy(model, ids, n=12):
    out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         max_new_tokens=n, do_sample=False, pad_token_id=0, eos_token_id=None)
    return out[0, len(ids):].tolist()


def random_adapter(model, seed=0, rank=4, std=0.3):
    g = torch.Generator().manual_seed(seed)
    weights = {n: (torch.randn(rank, m.in_features, generator=g) * std, torch.randn(m.out_features, rank, generator=g)
                   * std) for n, m in find_target_modules(model).items()}
    return Adapter(weights=weights, rank=rank, lora_alpha=2.0 * rank, base_model="tiny-llama",
                   module_types=sorted({n.rsplit(".", 1)[-1] for n in weights}))


def test_kv_prefix_equals_full_prompt_greedy():
    model = tiny_llama()
    ref = [hf_greedy(model, ids) for ids in PROMPTS]
    prefixes = {"m": prefill_prefix(model, PREFIX)}
    for batch_size in (1, 3):  # alone, and batched with different prompt lengths (pad between prefix and prompt)
        kv = decode(model, [Row(ids, prefix="m") for ids in PROMPTS], prefixes=prefixes, max_new_tokens=12,
                    batch_size=batch_size)
        assert kv == ref
    plain = decode(model, [Row(ids) for ids in PROMPTS], max_new_tokens=12, batch_size=3)
    assert plain == ref


def test_kv_prefixes_of_different_lengths_share_a_batch():
    model = tiny_llama()
    short = [1, 5]
    rows = [Row(PREFIX + [20, 21], prefix="long"), Row(short + [20, 21, 22, 23], prefix="short")]
    prefixes = {"long": prefill_prefix(model, PREFIX), "short": prefill_prefix(model, short)}
    out = decode(model, rows, prefixes=prefixes, max_new_tokens=8, batch_size=2)
    assert out == [hf_greedy(model, r.ids, 8) for r in rows]


def test_per_row_adapters_equal_applied_adapters():
    model = tiny_llama()
    a1, a2 = random_adapter(model, 1), random_adapter(model, 2)
    table = {"a1": lora_factors(a1), "a2": lora_factors(a2)}
    rows = [Row(PROMPTS[0], adapter="a1"), Row(PROMPTS[1], adapter="a2"), Row(PROMPTS[2])]
    out = decode(model, rows, adapters=table, max_new_tokens=10, batch_size=3)  # base row shares the batch
    with a1.applied_to(model):
        ref1 = hf_greedy(model, PROMPTS[0], 10)
    with a2.applied_to(model):
        ref2 = hf_greedy(model, PROMPTS[1], 10)
    assert out == [ref1, ref2, hf_greedy(model, PROMPTS[2], 10)]
    assert ref1 != hf_greedy(model, PROMPTS[0], 10)  # the adapter does change the model


def test_finished_rows_leave_the_batch_and_the_rest_decode_as_alone():
    """Rows that finish early (their own length caps, or a sampled row) are dropped from the cache, the masks and
    the LoRA factors mid-batch; every remaining row still gets exactly the tokens it gets decoded alone."""
    model = tiny_llama()
    table = {f"a{k}": lora_factors(random_adapter(model, k)) for k in range(4)}
    rows = [Row(PROMPTS[0], adapter="a0", max_new=1), Row(PROMPTS[1], adapter="a1", max_new=2),
            Row(PROMPTS[2], adapter="a2", max_new=12), Row(PREFIX, max_new=3),
            Row(PROMPTS[1], adapter="a3", max_new=9, seed=4), Row(PROMPTS[0], adapter="a1", max_new=12)]
    out = decode(model, rows, adapters=table, batch_size=6)
    alone = [decode(model, [r], adapters=table)[0] for r in rows]
    assert [len(o) for o in out] == [1, 2, 12, 3, 9, 12]
    assert out == alone


def test_merged_adapter_matches_unmerged_and_is_undone():
    model = tiny_llama()
    adapter = random_adapter(model, 3)
    ids = torch.tensor([PROMPTS[1]])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with adapter.applied_to(model):
        unmerged = model(ids).logits
    with Merged(model, lora_factors(adapter)):
        merged = model(ids).logits
    torch.testing.assert_close(merged, unmerged, rtol=1e-4, atol=1e-4)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_random_control_keeps_the_per_module_norm():
    model = tiny_llama()
    f = lora_factors(random_adapter(model, 4))
    r = random_like(f, seed=0)
    for name, (A, B) in f.items():
        Ar, Br = r[name]
        assert torch.allclose(torch.linalg.matrix_norm(Br @ Ar), torch.linalg.matrix_norm(B @ A), rtol=1e-4)
        assert not torch.allclose(Br @ Ar, B @ A)
    zero = {n: (A, torch.zeros_like(B)) for n, (A, B) in f.items()}
    assert delta_norm(random_like(zero, seed=0)) == 0.0


def test_sampling_is_seeded_per_row_and_score_matches_manual():
    model = tiny_llama()
    rows = [Row(PROMPTS[0], seed=5), Row(PROMPTS[1], seed=5), Row(PROMPTS[0], seed=6)]
    a = decode(model, rows, max_new_tokens=8, temperature=1.0)
    b = decode(model, rows[:1], max_new_tokens=8, temperature=1.0)
    assert a[0] == b[0]  # a row's sample does not depend on its batch
    hot = decode(model, [Row(PROMPTS[0], seed=5, temperature=4.0), rows[1]], max_new_tokens=8, temperature=1.0)
    assert hot == [decode(model, rows[:1], max_new_tokens=8, temperature=4.0)[0], a[1]]
    assert hot[0] != a[0]  # the row's own temperature was used, the others kept the call's
    target = [3, 4, 5]
    (s,) = score(model, [Row(PROMPTS[0])], [target])
    logp = torch.log_softmax(model(torch.tensor([PROMPTS[0] + target])).logits[0], -1)
    n = len(PROMPTS[0])
    manual = sum(float(logp[n - 1 + k, t]) for k, t in enumerate(target))
    assert abs(s - manual) < 1e-4


def test_generate_each_equals_generate_under_each_applied_adapter(tiny_base):
    """``generation.generate_each`` (one call, rows with different adapters and none in one batch) gives, row by
    row, the replies ``generate`` gives with that row's adapter applied: what scripts/pass_rate.py relies on."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    from hyperlora.generation import generate, generate_each

    model, tok = LlamaForCausalLM.from_pretrained(tiny_base).eval(), AutoTokenizer.from_pretrained(tiny_base)
    a1, a2 = random_adapter(model, 1), random_adapter(model, 2)
    prompts = ["hello there", "what is two plus two?", "name a colour", "hi"]
    adapters = [a1, a2, None, a1]
    systems = [None, "Be brief.", None, "Speak like a pirate."]  # per row, as the prompt_tuned condition reads
    each = generate_each(model, tok, prompts, adapters, max_new_tokens=10, batch_size=4, systems=systems)
    one_by_one = []
    for prompt, adapter, system in zip(prompts, adapters, systems):
        if adapter is None:
            one_by_one += generate(model, tok, [prompt], system=system, max_new_tokens=10)
        else:
            with adapter.applied_to(model):
                one_by_one += generate(model, tok, [prompt], system=system, max_new_tokens=10)
    assert each == one_by_one
    assert each[3] != generate_each(model, tok, prompts[3:], adapters[3:], max_new_tokens=10)[0]  # the system acts
    assert each[0] != generate(model, tok, [prompts[0]], max_new_tokens=10)[0]  # the adapters do act


class _NoRepeat:
    """A logits processor that bans repeating the last generated token: it reads the ids it is handed, so the two
    decoding paths agree only if each hands it the same generated ids."""

    prompt_width = 0

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        if input_ids.shape[1] > self.prompt_width:
            scores[torch.arange(len(scores)), input_ids[:, -1]] = float("-inf")
        return scores


def test_generate_each_applies_a_processor_as_generate_does(tiny_base):
    """``generate_each(mode_rules=...)`` hands the processor each row's generated ids, as ``generate`` does, with
    rows of different adapters in one batch: what ``scripts/pass_rate.py --mode-rules`` relies on."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    from hyperlora.generation import generate, generate_each

    model, tok = LlamaForCausalLM.from_pretrained(tiny_base).eval(), AutoTokenizer.from_pretrained(tiny_base)
    a1 = random_adapter(model, 1)
    prompts, adapters = ["hello there", "name a colour", "hi"], [a1, None, a1]
    each = generate_each(model, tok, prompts, adapters, max_new_tokens=12, batch_size=3, mode_rules=_NoRepeat())
    one_by_one = []
    for prompt, adapter in zip(prompts, adapters):
        with adapter.applied_to(model) if adapter is not None else contextlib.nullcontext():
            one_by_one += generate(model, tok, [prompt], max_new_tokens=12, mode_rules=_NoRepeat())
    assert each == one_by_one
    assert each != generate_each(model, tok, prompts, adapters, max_new_tokens=12, batch_size=3)  # it acts
