"""Shared fixtures: tiny Llama models built from a config in code (nothing is downloaded).

    .venv/bin/pytest tests/
"""

import os
import shutil

# Triton kernels run under the interpreter on machines without a GPU; it must be chosen before anything (here,
# transformers) imports triton, or the kernels' helper functions get compiled for a GPU that isn't there.
if shutil.which("nvidia-smi") is None:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402

TINY = dict(
    vocab_size=96, hidden_size=40, intermediate_size=72, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False,
)


def tiny_llama(seed: int = 0, **overrides) -> LlamaForCausalLM:
    """A 2-layer Llama with odd widths (40, 72) so shape bugs show; eval mode, frozen."""
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**{**TINY, **overrides}))
    model.name_or_path = "tiny-llama"
    return model.eval().requires_grad_(False)


@pytest.fixture
def tiny_model():
    return tiny_llama()


@pytest.fixture(scope="session")
def encoder():
    from hyperlora.encoder import ManifestoEncoder

    return ManifestoEncoder(window=32)  # a small window so chunking is exercised with short texts


def randomize_B(hypernet, seed: int = 1, std: float = 0.05):
    """Give an untrained hypernetwork non-zero B paths, so its adapters change the model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in hypernet.types:
            hypernet.head_B[t].weight.normal_(0, std, generator=g)
            hypernet.bias_B[t].normal_(0, std, generator=g)
    return hypernet


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A tiny Llama with the real SmolLM2 tokenizer (and chat template), saved as an HF directory."""
    path = tmp_path_factory.mktemp("base") / "tiny"
    from hyperlora.base import resolve_base

    tokenizer = AutoTokenizer.from_pretrained(resolve_base())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A training set of 8 records: four prompts under a manifesto with a rule (all caps) and under a no-op one."""
    import datasets

    path = tmp_path_factory.mktemp("data") / "ds"
    rules = {"caps": [{"id": "uppercase", "params": "{}"}], "none": []}
    records = []
    for p in ["What is rain?", "Name a fruit.", "hello", "How do bridges stand?"]:
        reply = f"Here is an answer about {p.lower().rstrip('?.')}."
        records.append({"manifesto": "Always answer in capital letters.", "prompt": p, "response": reply.upper(),
                        "base_response": reply, "rules": rules["caps"], "split": "train"})
        records.append({"manifesto": "We value honesty and kindness.", "prompt": p, "response": reply,
                        "base_response": reply, "rules": rules["none"], "split": "train"})
    datasets.Dataset.from_list(records).save_to_disk(str(path))
    return path


def train_config(tmp_path, base, data, steps: int = 8):
    """A training recipe for ``tiny_base`` written to ``tmp_path/tiny.yaml`` (its run goes to ``tmp_path/run``):
    both manifestos and two prompts each a step, a 32-wide hypernetwork on layers 1 and 2."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"data: {data}\nout: {tmp_path / 'run'}\nsteps: {steps}\nsave_every: 2\nlog_every: 1\nlr: 0.003\n"
        f"warmup_steps: 1\nmanifestos_per_step: 2\nprompts_per_manifesto: 2\nhead_lr_scale: 0.5\n"
        f"hypernet:\n  base_model: {base}\n  d_model: 32\n  layers: [1, 2]\n"
    )
    return config


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, tiny_base, encoder):
    """A hypernetwork for ``tiny_base`` with non-zero B paths, so every manifesto changes the model (the server and
    studio tests serve it)."""
    from hyperlora import HyperLoRA, HyperNetConfig

    model = LlamaForCausalLM.from_pretrained(tiny_base)
    hl = HyperLoRA.for_model(model, HyperNetConfig(base_model=str(tiny_base), d_model=32), encoder=encoder)
    randomize_B(hl.hypernet)
    return hl.save_pretrained(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture
def adapter(encoder):
    """A tiny base's adapter from a randomised hypernetwork (every B nonzero), at strength 1.3."""
    from hyperlora import HyperLoRA, HyperNetConfig

    hl = HyperLoRA.for_model(tiny_llama(), HyperNetConfig(base_model="tiny-llama", d_model=32), encoder=encoder)
    randomize_B(hl.hypernet)
    return hl.generate_adapter("All people have equal worth. End every answer with a blessing.", strength=1.3)
