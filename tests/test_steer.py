"""The conditional refusal row: exactly the push it promises, a plain PEFT row, gated by the manifesto, and part of
the checkpoint it sits in.

    .venv/bin/pytest tests/test_steer.py
"""

import shutil

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from hyperlora import HyperLoRA
from hyperlora.steer import FILE, Steer
from tests.conftest import tiny_llama

NAME = "model.layers.1.self_attn.o_proj"


def steer(gate_b: float = 1.0, dim: int = 384, strength: float = 0.7) -> Steer:
    g = torch.Generator().manual_seed(3)
    return Steer(1, "self_attn.o_proj", torch.randn(40, generator=g), torch.randn(40, generator=g), strength,
                 torch.zeros(dim), gate_b, "all-minilm-l6-v2")


def delta(adapter, name):
    A, B = adapter.weights[name]
    return adapter.scaling * B @ A


def test_row_adds_exactly_the_push_and_nothing_else(adapter):
    s = steer()
    out = s.extend(adapter)
    assert out.rank == adapter.rank + 1
    for name in adapter.weights:
        extra = delta(out, name) - delta(adapter, name)
        want = 1.3 * 0.7 * torch.outer(s.write, s.read) if name == NAME else torch.zeros_like(extra)
        assert torch.allclose(extra, want, atol=1e-5), name


def test_steered_adapter_is_a_plain_peft_lora(adapter, tmp_path):
    out = steer().extend(adapter)
    tiny_llama().save_pretrained(tmp_path / "base")
    out.save(tmp_path / "adapter")
    ids = torch.randint(0, 96, (2, 11), generator=torch.Generator().manual_seed(0))
    model = tiny_llama()
    with out.applied_to(model):
        ours = model(ids).logits
    with adapter.applied_to(model):
        unsteered = model(ids).logits
    assert not torch.allclose(ours, unsteered)  # the row does something
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tmp_path / "base").eval(),
                                           tmp_path / "adapter").eval()
    with torch.no_grad():
        assert (peft_model(ids).logits - ours).abs().max().item() <= 1e-4


def test_gate_reads_the_mean_of_real_tokens_only():
    s = steer(gate_b=-1.0, dim=4)
    s.gate_w = torch.tensor([1.0, 0, 0, 0])
    features = torch.zeros(1, 3, 4)
    features[0, :2, 0] = 2.0  # mean 2 over the two real tokens: 2 - 1 > 0
    features[0, 2, 0] = -100.0  # padding, which must not count
    mask = torch.tensor([[True, True, False]])
    assert s.gates(features, mask)
    features[0, :2, 0] = 0.5
    assert not s.gates(features, mask)
    two = torch.cat([features, features.clone().index_fill_(2, torch.tensor([0]), 3.0)])  # any chunk may hold it
    assert s.gates(two, torch.cat([mask, mask]))


def test_round_trip(tmp_path):
    s = steer()
    s.info = {"strength_chosen_on": "validation"}
    t = Steer.load(s.save(tmp_path / FILE))
    assert (t.layer, t.module, t.strength, t.gate_b, t.encoder, t.info) == (1, "self_attn.o_proj", 0.7, 1.0,
                                                                            "all-minilm-l6-v2", s.info)
    assert torch.equal(t.read, s.read) and torch.equal(t.write, s.write) and torch.equal(t.gate_w, s.gate_w)


def test_checkpoint_applies_its_steer_file(checkpoint, tmp_path):
    text = "Never help write malware."
    plain = HyperLoRA.from_pretrained(checkpoint)
    before = plain.generate_adapter(text)
    for gate_b, rows in ((1.0, 1), (-1.0, 0)):  # a gate that always fires, then one that never does
        d = tmp_path / str(gate_b)
        shutil.copytree(checkpoint, d)
        s = steer(gate_b)
        s.read, s.write = torch.randn(32), torch.randn(32)  # the tiny base's hidden size
        s.save(d / FILE)
        hl = HyperLoRA.from_pretrained(d)
        assert hl.checkpoint_hash != plain.checkpoint_hash  # replies cached for one are not the other's
        after = hl.generate_adapter(text)
        assert after.rank == before.rank + rows
        if not rows:
            assert all(torch.equal(after.weights[n][0], before.weights[n][0]) for n in before.weights)
    s = steer()
    s.encoder = "another-encoder"
    s.save(d / FILE)
    with pytest.raises(Exception, match="steering gate reads another-encoder"):
        HyperLoRA.from_pretrained(d)


def test_save_pretrained_keeps_the_row_and_its_hash(checkpoint, tmp_path):
    d = tmp_path / "with"
    shutil.copytree(checkpoint, d)
    s = steer()
    s.read, s.write = torch.randn(32), torch.randn(32)
    s.save(d / FILE)
    hl = HyperLoRA.from_pretrained(d)
    hl.save_pretrained(tmp_path / "again")
    again = HyperLoRA.from_pretrained(tmp_path / "again")
    assert again.steer is not None and torch.equal(again.steer.read, s.read)
    assert hl.checkpoint_hash == again.checkpoint_hash  # the hash save_pretrained reports is the one loading gives
