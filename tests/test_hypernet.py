"""Hypernetwork: shapes, ΔW = 0 at init, manifesto dependence, checkpoint round trip, long-manifesto merge, copy path,
probe rows.

    .venv/bin/pytest tests/test_hypernet.py
"""

import pytest
import torch

from hyperlora import HyperLoRA, HyperLoRAError, HyperNetConfig
from hyperlora.encoder import BaseTokens, split_statements
from hyperlora.generator import merge_to_rank
from hyperlora.hypernet import COPY_TYPES, PROBE_TYPES
from tests.conftest import randomize_B, tiny_llama


@pytest.fixture
def hl(encoder):
    return HyperLoRA.for_model(tiny_llama(), HyperNetConfig(base_model="tiny-llama", d_model=32), encoder=encoder)


def test_adapter_shapes_follow_the_targets(hl):
    adapter = hl.generate_adapter("Answer in lowercase.")
    assert len(adapter.weights) == 2 * 7  # 2 layers x 7 projections
    model = tiny_llama()
    for name, (A, B) in adapter.weights.items():
        m = model.get_submodule(name)
        assert A.shape == (8, m.in_features) and B.shape == (m.out_features, 8)


def test_step0_adapter_leaves_logits_unchanged(hl):
    model = tiny_llama()
    ids = torch.randint(0, 96, (2, 9))
    base = model(ids).logits
    adapter = hl.generate_adapter("Never help write malware. End every answer with a blessing.")
    assert all(torch.count_nonzero(B) == 0 for _, B in adapter.weights.values())
    with adapter.applied_to(model):
        assert torch.equal(model(ids).logits, base)


def test_adapters_depend_on_the_manifesto(hl):
    randomize_B(hl.hypernet)
    a = hl.generate_adapter("Always answer in capital letters.")
    b = hl.generate_adapter("Talk like a pirate, matey.")
    name = next(iter(a.weights))
    assert not torch.allclose(a.weights[name][0], b.weights[name][0])
    again = hl.generate_adapter("Always answer in capital letters.")
    assert torch.equal(a.weights[name][1], again.weights[name][1])


def test_strength_scales_lora_alpha(hl):
    assert hl.generate_adapter("Be kind.", strength=0.5).scaling == pytest.approx(hl.config.scaling * 0.5)
    with pytest.raises(HyperLoRAError):
        hl.generate_adapter("Be kind.", strength=-1)


def test_empty_manifesto_is_refused_unless_allowed(hl):
    with pytest.raises(HyperLoRAError, match="empty"):
        hl.generate_adapter("   \n")
    assert hl.generate_adapter("", allow_empty=True).weights


def test_checkpoint_round_trip(hl, tmp_path):
    randomize_B(hl.hypernet)
    hl.save_pretrained(tmp_path / "ckpt", extra={"note": "test"})
    loaded = HyperLoRA.from_pretrained(tmp_path / "ckpt")
    assert loaded.checkpoint_hash == hl.checkpoint_hash is not None
    assert loaded.hypernet.checkpoint_config["note"] == "test"
    a, b = hl.generate_adapter("Be brief."), loaded.generate_adapter("Be brief.")
    for name in a.weights:
        assert torch.equal(a.weights[name][0], b.weights[name][0])


def test_merge_to_rank_is_the_truncated_svd_of_the_sum():
    g = torch.Generator().manual_seed(0)
    pairs = [(torch.randn(8, 30, generator=g), torch.randn(20, 8, generator=g)) for _ in range(3)]
    total = sum(B @ A for A, B in pairs)
    A, B = merge_to_rank(pairs, 8)
    assert A.shape == (8, 30) and B.shape == (20, 8)
    u, s, vh = torch.linalg.svd(total)
    best = (u[:, :8] * s[:8]) @ vh[:8]
    torch.testing.assert_close(B @ A, best, rtol=1e-4, atol=1e-4)


def test_long_manifesto_is_chunked_and_merged(hl, capsys):
    randomize_B(hl.hypernet)
    text = " ".join(f"Rule {i}: always mention the colour number {i}." for i in range(20))  # >> 32 tokens
    adapter = hl.generate_adapter(text)
    assert "merged them to rank 8" in capsys.readouterr().err
    assert adapter.provenance["chunks"] > 1
    # ΔW = ΔW_empty + Σ_c (ΔW_c − ΔW_empty) over the chunks, truncated to rank 8: the best rank-8 approximation.
    chunks = hl.encoder.chunk(text)
    with torch.no_grad():
        generated = hl.hypernet(*hl.encoder.encode_ids(chunks + hl.encoder.chunk("")))
    k = len(chunks)
    for name, (A, B) in adapter.weights.items():
        a, b = generated[name]
        total = sum(b[c] @ a[c] for c in range(k)) + (1 - k) * (b[k] @ a[k])  # (out, in)
        u, sv, vh = torch.linalg.svd(total.double())
        best = (u[:, :8] * sv[:8]) @ vh[:8]
        assert A.shape[0] == 8 and B.shape[1] == 8
        torch.testing.assert_close((B @ A).double(), best, rtol=1e-4, atol=1e-5)


class CharTokenizer:
    """A stand-in for the tiny model's tokenizer: one id per character."""

    def __call__(self, text, add_special_tokens=False, verbose=False):
        return {"input_ids": [ord(c) % 96 for c in text]}


@pytest.fixture
def copying(encoder):
    model = tiny_llama()
    config = HyperNetConfig(base_model="tiny-llama", d_model=32, copy_path=True)
    tokens = BaseTokens(CharTokenizer(), model.get_input_embeddings().weight)
    return HyperLoRA(HyperLoRA.for_model(model, config, encoder=encoder).hypernet, encoder, base_tokens=tokens)


def test_copy_path_starts_at_zero(copying):
    adapter = copying.generate_adapter("I am Onyx; say my name.")
    assert all(torch.count_nonzero(B) == 0 for _, B in adapter.weights.values())


def test_copy_path_writes_the_manifestos_own_token_embeddings(copying, tmp_path):
    """With its gates open (and every other B path at zero), a residual-writing module's B columns are mixtures of
    the manifesto's base-token embeddings, and nothing else: each lies in their span."""
    with torch.no_grad():
        for gate in copying.hypernet.copy_gate.values():
            gate.fill_(1.0)
    text = "Onyx"
    adapter = copying.generate_adapter(text)
    E, _ = copying.base_tokens.embed([copying.base_tokens.ids(text)])  # (1, 4, hidden)
    span = E[0].T  # (hidden, 4)
    for name, (_, B) in adapter.weights.items():
        if name.rsplit(".", 1)[-1] in COPY_TYPES:
            fit = span @ torch.linalg.lstsq(span, B).solution
            assert B.abs().max() > 1e-3 and torch.allclose(fit, B, atol=1e-5)
        else:
            assert torch.count_nonzero(B) == 0
    other = copying.generate_adapter("Zed")
    name = next(n for n in adapter.weights if n.endswith("o_proj"))
    assert not torch.allclose(adapter.weights[name][1], other.weights[name][1])

    copying.save_pretrained(tmp_path / "ckpt")
    loaded = HyperLoRA.from_pretrained(tmp_path / "ckpt")
    loaded.base_tokens = copying.base_tokens
    assert loaded.config.copy_path
    assert torch.equal(loaded.generate_adapter(text).weights[name][1], adapter.weights[name][1])


def test_copy_rows_of_their_own_leave_the_style_rows_alone(copying, encoder, tmp_path):
    """With copy_rank, the copy goes into rows of their own: the first r rows are exactly those of the same weights
    without the copy path, a copying module's extra B columns are mixtures of the manifesto's token embeddings, the
    other modules' extra rows are zero, and the exported adapter has rank r + copy_rank at the same scale."""
    from hyperlora.train import init_from

    model = tiny_llama()
    plain = HyperLoRA.for_model(model, HyperNetConfig(base_model="tiny-llama", d_model=32), encoder=encoder)
    randomize_B(plain.hypernet)
    config = HyperNetConfig(base_model="tiny-llama", d_model=32, copy_path=True, copy_rank=8)
    own = HyperLoRA(HyperLoRA.for_model(model, config, encoder=encoder).hypernet, encoder,
                    base_tokens=copying.base_tokens)
    plain.save_pretrained(tmp_path / "plain")
    assert all(n.startswith("copy_") for n in init_from(own.hypernet, tmp_path / "plain"))
    with torch.no_grad():
        for gate in own.hypernet.copy_gate.values():
            gate.fill_(1.0)
    text = "Onyx"
    a, b = plain.generate_adapter(text), own.generate_adapter(text)
    assert b.rank == 16 and b.scaling == pytest.approx(a.scaling)
    E, _ = copying.base_tokens.embed([copying.base_tokens.ids(text)])
    span = E[0].T  # (hidden, tokens)
    for name, (A, B) in b.weights.items():
        assert torch.allclose(A[:8], a.weights[name][0]) and torch.allclose(B[:, :8], a.weights[name][1])
        if name.rsplit(".", 1)[-1] in COPY_TYPES:
            copied = B[:, 8:]
            fit = span @ torch.linalg.lstsq(span, copied).solution
            assert copied.abs().max() > 1e-3 and torch.allclose(fit, copied, atol=1e-5)
            assert torch.count_nonzero(A[8:]) > 0
        else:
            assert torch.count_nonzero(A[8:]) == 0 and torch.count_nonzero(B[:, 8:]) == 0


def gains(copying, encoder, tmp_path, **option) -> tuple[HyperLoRA, HyperLoRA, list[str]]:
    """A copy-rows hypernetwork with random B paths saved, the same one with ``option`` added and started from it,
    and the names of the tensors the start lacked."""
    from hyperlora.train import init_from

    model = tiny_llama()
    config = HyperNetConfig(base_model="tiny-llama", d_model=32, copy_path=True, copy_rank=8)
    plain = HyperLoRA(HyperLoRA.for_model(model, config, encoder=encoder).hypernet, encoder,
                      base_tokens=copying.base_tokens)
    randomize_B(plain.hypernet)
    plain.save_pretrained(tmp_path / "plain")
    gained = HyperLoRA(HyperLoRA.for_model(model, HyperNetConfig(**{**config.__dict__, **option}),
                                           encoder=encoder).hypernet, encoder, base_tokens=copying.base_tokens)
    return plain, gained, init_from(gained.hypernet, tmp_path / "plain")


def test_copy_keys_key_each_copied_word_on_the_word_before_it(copying, encoder, tmp_path):
    """With copy_keys, a copy row's A gains copy_key(what the row reads, one token back): a checkpoint that gains the
    keys keeps its adapters exactly (the map starts at zero), and with the map open, the change in A lies in the
    span of the embeddings of every manifesto token but the last (no row's word follows the last one)."""
    plain, keyed, added = gains(copying, encoder, tmp_path, copy_keys=True)
    assert sorted(added) == sorted(f"copy_key.{t}.weight" for t in COPY_TYPES)
    text = "Onyx"
    a = plain.generate_adapter(text)
    for name, (A, B) in keyed.generate_adapter(text).weights.items():
        assert torch.equal(A, a.weights[name][0]) and torch.equal(B, a.weights[name][1])

    with torch.no_grad():
        keyed.hypernet.copy_key["o_proj"].weight.copy_(torch.eye(*keyed.hypernet.copy_key["o_proj"].weight.shape))
    E, _ = copying.base_tokens.embed([copying.base_tokens.ids(text)])  # (1, 4, hidden)
    E = E * torch.rsqrt(E.pow(2).mean(-1, keepdim=True) + 1e-6)  # the unit-RMS values the copy path reads
    before = E[0, :-1].T  # (hidden, 3): "O", "n", "y", each the word before another
    for name, (A, _) in keyed.generate_adapter(text).weights.items():
        if name.endswith("o_proj"):
            change = (A[8:] - a.weights[name][0][8:]).T  # (in = hidden, copy rows)
            fit = before @ torch.linalg.lstsq(before, change).solution
            assert change.abs().max() > 1e-3 and torch.allclose(fit, change, atol=1e-5)
    with pytest.raises(HyperLoRAError, match="copy_keys needs"):
        HyperNetConfig(copy_path=True, copy_keys=True)


def test_copy_rank_needs_the_copy_path_and_a_servable_rank():
    with pytest.raises(HyperLoRAError, match="copy_rank needs copy_path"):
        HyperNetConfig(copy_rank=8)
    with pytest.raises(HyperLoRAError, match="one of"):
        HyperNetConfig(copy_path=True, copy_rank=4)


def test_probe_rows_read_a_fixed_direction_and_leave_the_rest_alone(copying, encoder, tmp_path):
    """With probe_rank, q/k/v gain one row whose A is the fixed direction of its layer and whose B the hypernetwork
    writes per manifesto: a checkpoint that gains the rows keeps its adapters exactly (their B starts at zero), the
    rank stays r + copy_rank, and the directions travel with the checkpoint."""
    plain, probed, added = gains(copying, encoder, tmp_path, probe_rank=1)
    assert added and all(n.startswith("probe_") for n in added)
    directions = torch.randn(tuple(probed.hypernet.probe_A.shape))  # (layers, 1, hidden)
    probed.hypernet.set_probe_directions(directions, [0, 1])
    with pytest.raises(ValueError, match="reads layers"):
        probed.hypernet.set_probe_directions(directions, [1, 2])

    text = "Never help with malware."
    a, b = plain.generate_adapter(text), probed.generate_adapter(text)
    assert b.rank == a.rank == 16
    for name, (A, B) in b.weights.items():
        assert torch.equal(B, a.weights[name][1])  # the probe rows' B starts at zero
        layer, kind = int(name.split(".")[2]), name.rsplit(".", 1)[-1]
        if kind in PROBE_TYPES:
            assert torch.equal(A[8], directions[layer, 0]) and torch.count_nonzero(A[9:]) == 0
        else:
            assert torch.equal(A, a.weights[name][0])

    with torch.no_grad():
        for head in probed.hypernet.probe_head_B.values():
            head.weight.normal_(0, 0.05)
    b, other = probed.generate_adapter(text), probed.generate_adapter("Answer in French.")
    for name, (_, B) in b.weights.items():
        if name.rsplit(".", 1)[-1] in PROBE_TYPES:
            assert torch.count_nonzero(B[:, 8]) > 0 and not torch.allclose(B[:, 8], other.weights[name][1][:, 8])
            assert torch.equal(B[:, :8], a.weights[name][1][:, :8]) and torch.count_nonzero(B[:, 9:]) == 0
    probed.save_pretrained(tmp_path / "probed")
    loaded = HyperLoRA.from_pretrained(tmp_path / "probed")
    loaded.base_tokens = copying.base_tokens
    assert torch.equal(loaded.hypernet.probe_A, directions)
    with pytest.raises(HyperLoRAError, match="one of"):
        HyperNetConfig(rank=8, probe_rank=2)


@pytest.fixture
def per_statement(encoder):
    config = HyperNetConfig(base_model="tiny-llama", d_model=32, per_statement=True)
    return HyperLoRA.for_model(tiny_llama(), config, encoder=encoder)


def test_split_statements_drops_headings_and_list_markers():
    text = '# Profile\n\nManifesto\n\n## How I respond\n\n- Avoid commas.\n2. Say "P.P.S." last. Be kind!\nValues:'
    assert split_statements(text) == ["Avoid commas.", 'Say "P.P.S." last.', "Be kind!"]


def test_per_statement_adapter_is_the_sum_of_its_statements(per_statement):
    """ΔW of a manifesto = Σ over its statements of (ΔW of the statement alone − ΔW of nothing) + ΔW of nothing:
    each statement adds its own block, and the context-free bias block is counted once."""
    randomize_B(per_statement.hypernet)
    with torch.no_grad():
        for p in per_statement.hypernet.bias_B.values():
            p.normal_()
    gen = per_statement.generate_adapter
    both = gen("Answer in lowercase. End with a blessing.")
    a, b = gen("Answer in lowercase."), gen("End with a blessing.")
    empty = gen("", allow_empty=True)
    assert (both.rank, a.rank, empty.rank) == (24, 16, 8) and both.scaling == a.scaling == empty.scaling
    assert both.provenance["statements"] == 2 and empty.provenance["statements"] == 0
    delta = lambda ad, name: ad.scaling * ad.weights[name][1] @ ad.weights[name][0]  # (out, in)
    for name in both.weights:
        expected = delta(a, name) + delta(b, name) - delta(empty, name)
        assert torch.allclose(delta(both, name), expected, atol=1e-5), name
    assert not torch.allclose(delta(a, name), delta(b, name))


def test_per_statement_adapter_starts_at_zero(per_statement):
    adapter = per_statement.generate_adapter("Never help write malware. End every answer with a blessing.")
    assert all(torch.count_nonzero(B) == 0 for _, B in adapter.weights.values())
