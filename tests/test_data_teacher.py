"""Teacher mode on a tiny random Llama built in code (nothing downloaded): the code path, not the quality.

Run: .venv/bin/pytest tests/test_data_teacher.py -q
"""

import pytest
import torch
from hyperlora.data_gen.generate import build_records, generate_dataset, load_dataset_dir
from hyperlora.data_gen.teacher import annotate_with_teacher
from hyperlora.data_gen.verifiers import verify

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_teacher():
    """A 2-layer random Llama and a byte-level tokenizer with a ChatML template, both made here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    for special in ("<|im_start|>", "<|im_end|>", "<pad>"):
        vocab[special] = len(vocab)
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<pad>",
                                  additional_special_tokens=["<|im_start|>"])
    tok.chat_template = CHATML
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    return LlamaForCausalLM(cfg).eval(), tok


@pytest.fixture(scope="module")
def teacher():
    return tiny_teacher()


def test_annotate_stores_topk_logprobs(teacher):
    model, tok = teacher
    records, _, _ = build_records(seed=0, n_manifestos=8, progress=False)
    records = records[:3]
    before = [(r["response"], r["source"]) for r in records]
    out = annotate_with_teacher(records, (model, tok), n=2, top_k=5, max_new_tokens=6, progress=False)
    for r, (response, source) in zip(out, before):
        T = len(tok(r["response"], add_special_tokens=False).input_ids) + 1  # reply tokens + EOS
        assert len(r["teacher_topk_ids"]) == T and len(r["teacher_topk_logprobs"]) == T
        assert all(len(row) == 5 for row in r["teacher_topk_ids"])
        lps = torch.tensor(r["teacher_topk_logprobs"])
        assert (lps <= 0).all() and (lps[:, :-1] >= lps[:, 1:]).all()  # log-probs, sorted
        # A teacher reply replaces the target only when it passes the rules; otherwise the programmatic target stays.
        if r["teacher_passed"]:
            assert r["source"] == "teacher" and verify(r["rules"], r["response"], r["prompt"], r["prompt_kind"])
        else:
            assert (r["response"], r["source"]) == (response, source)
    assert any(r["rules"] and not r["teacher_passed"] for r in out)  # a random tiny model fails real rules


def test_generate_dataset_with_teacher_writes_the_columns(tmp_path, teacher):
    out = tmp_path / "teach"
    summary = generate_dataset(str(out), seed=1, n_manifestos=8, progress=False, teacher=teacher, teacher_n=1,
                               teacher_top_k=3, teacher_max_new_tokens=4)
    dd = load_dataset_dir(str(out))
    row = dd["train"][0]
    assert "teacher_topk_ids" in row and len(row["teacher_topk_ids"][0]) == 3
    assert summary["verified"]["passed"] == summary["verified"]["total"]


def test_bad_teacher_argument():
    with pytest.raises(ValueError, match="teacher must be"):
        annotate_with_teacher([], 42)
