"""Adapters: PEFT export loads with plain PeftModel.from_pretrained and matches applied_to; bad inputs.

    .venv/bin/pytest tests/test_adapter.py
"""

import json

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from hyperlora import Adapter, HyperLoRA, HyperLoRAError, HyperNetConfig
from tests.conftest import randomize_B, tiny_llama


def test_peft_load_matches_applied_to(adapter, tmp_path):
    tiny_llama().save_pretrained(tmp_path / "base")
    adapter.save(tmp_path / "adapter")
    ids = torch.randint(0, 96, (2, 13), generator=torch.Generator().manual_seed(0))

    model = tiny_llama()
    base_logits = model(ids).logits
    with adapter.applied_to(model):
        ours = model(ids).logits
    assert not torch.allclose(ours, base_logits)  # the adapter does something
    assert torch.equal(model(ids).logits, base_logits)  # and is gone after the block

    fresh = AutoModelForCausalLM.from_pretrained(tmp_path / "base").eval()
    peft_model = PeftModel.from_pretrained(fresh, tmp_path / "adapter").eval()
    with torch.no_grad():
        theirs = peft_model(ids).logits
    assert (theirs - ours).abs().max().item() <= 1e-4


def test_saved_directory_layout(adapter, tmp_path):
    adapter.save(tmp_path / "a")
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["adapter_config.json", "adapter_model.safetensors", "hyperlora.json", "manifesto.txt"]
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 8
    assert config["lora_alpha"] == pytest.approx(16.0 * 1.3)  # strength goes into the config, not the weights
    meta = json.loads((tmp_path / "a" / "hyperlora.json").read_text())
    assert {"checkpoint_hash", "base_model", "strength", "version"} <= meta.keys()
    loaded = Adapter.load(tmp_path / "a")
    assert loaded.manifesto == adapter.manifesto and loaded.scaling == pytest.approx(adapter.scaling)
    for name, (A, B) in adapter.weights.items():
        assert torch.equal(loaded.weights[name][0], A) and torch.equal(loaded.weights[name][1], B)


def test_existing_output_is_left_untouched(adapter, tmp_path):
    out = tmp_path / "a"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(HyperLoRAError, match="already exists"):
        adapter.save(out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    adapter.save(out, force=True)
    assert not (out / "keep.txt").exists() and (out / "adapter_model.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["a"]  # no temp dirs left behind


def test_applied_to_refuses_another_model(adapter):
    with pytest.raises(HyperLoRAError, match="does not fit"):
        with adapter.applied_to(tiny_llama(hidden_size=48)):
            pass


def test_layer_subset_exports_layers_to_transform(encoder, tmp_path):
    config = HyperNetConfig(base_model="tiny-llama", d_model=32, layers=(1,))
    hl = HyperLoRA.for_model(tiny_llama(), config, encoder=encoder)
    randomize_B(hl.hypernet)
    adapter = hl.generate_adapter("Answer in capital letters.")
    assert {int(n.split(".")[2]) for n in adapter.weights} == {1}
    adapter.save(tmp_path / "a")
    assert json.loads((tmp_path / "a" / "adapter_config.json").read_text())["layers_to_transform"] == [1]
    tiny_llama().save_pretrained(tmp_path / "base")
    ids = torch.randint(0, 96, (1, 9))
    model = tiny_llama()
    with adapter.applied_to(model):
        ours = model(ids).logits
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tmp_path / "base"), tmp_path / "a")
    with torch.no_grad():
        assert (peft_model.eval()(ids).logits - ours).abs().max().item() <= 1e-4
    assert Adapter.load(tmp_path / "a").layers == [1]
