"""Composing adapters: the stacked LoRA loads in plain PEFT and equals the weighted sum of its parts; SVD truncation
reports its true cost; the CLI verb writes it or refuses in one line.

    .venv/bin/pytest tests/test_compose.py
"""

import json
import warnings

import pytest
import torch
from peft import PeftModel

from hyperlora import Adapter, HyperLoRAError
from hyperlora.base import find_target_modules, layer_index, module_type
from hyperlora.cli import main
from tests.conftest import tiny_llama

MODULES = {name: (m.in_features, m.out_features) for name, m in find_target_modules(tiny_llama()).items()}
IDS = torch.randint(0, 96, (2, 11), generator=torch.Generator().manual_seed(0))


def random_adapter(rank: int, strength: float = 1.0, seed: int = 0, names=None, manifesto="", base="tiny-llama"):
    """An adapter with random non-zero A and B on ``names`` (default: every target module of the tiny Llama)."""
    g = torch.Generator().manual_seed(seed)
    names = list(MODULES) if names is None else names
    weights = {}
    for n in names:
        d_in, d_out = MODULES[n]
        weights[n] = (0.1 * torch.randn(rank, d_in, generator=g), 0.05 * torch.randn(d_out, rank, generator=g))
    layers = sorted({layer_index(n) for n in names})
    return Adapter(weights=weights, rank=rank, lora_alpha=2.0 * rank * strength, base_model=base,
                   module_types=sorted({module_type(n) for n in names}),
                   layers=[] if layers == [0, 1] else layers,  # [] = every layer, as the generator writes it
                   manifesto=manifesto, strength=strength, provenance={"checkpoint_hash": f"seed{seed}"})


def delta(adapters, weights=None) -> dict:
    """Σ_i w_i · scaling_i · B_i A_i per module, dense (out, in), computed in float64 straight from the parts."""
    weights = weights or [1.0] * len(adapters)
    out = {n: torch.zeros(o, i, dtype=torch.float64) for n, (i, o) in MODULES.items()}
    for adapter, w in zip(adapters, weights):
        for name, (A, B) in adapter.weights.items():
            out[name] += w * adapter.scaling * B.double() @ A.double()
    return out


@torch.no_grad()
def reference_logits(adapters, weights=None):
    """The parts applied together in memory: ΔW added into a copy of the base weights (no LoRA code involved)."""
    model = tiny_llama()
    for name, d in delta(adapters, weights).items():
        model.get_submodule(name).weight += d.float()
    return model(IDS).logits


@torch.no_grad()
def peft_logits(adapter_dir):
    """Logits of the tiny Llama with ``adapter_dir`` loaded by plain PEFT, which must find every key it expects."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(tiny_llama(), adapter_dir).eval()
    missing = [str(w.message) for w in caught if "missing adapter keys" in str(w.message)]
    assert not missing, missing
    return model(IDS).logits


def max_diff(x, y) -> float:
    return (x - y).abs().max().item()


def subset_parts():
    """Three ranks and strengths; parts on a layer, on two module types, on one module: 4 (type, layer) pairs of
    layer 1 (k, o, gate, up) are in no part at all, and every part lacks some modules the others have."""
    layer0 = [n for n in MODULES if layer_index(n) == 0]
    qv = [n for n in MODULES if module_type(n) in ("q_proj", "v_proj")]
    return [
        random_adapter(4, 1.0, seed=1, names=layer0, manifesto="Be kind."),
        random_adapter(8, 1.5, seed=2, names=qv, manifesto="Answer in lowercase.\n"),
        random_adapter(16, 0.7, seed=3, names=["model.layers.1.mlp.down_proj"], manifesto="End with a blessing."),
    ]


def full_parts():
    return [random_adapter(4, 1.0, seed=1), random_adapter(8, 1.5, seed=2), random_adapter(16, 0.7, seed=3)]


@pytest.mark.parametrize("make_parts", [full_parts, subset_parts])
def test_composed_adapter_loads_in_peft_and_equals_the_sum_of_its_parts(tmp_path, make_parts):
    parts = make_parts()
    composed = Adapter.compose(parts)
    composed.save(tmp_path / "c")

    config = json.loads((tmp_path / "c" / "adapter_config.json").read_text())
    assert config["r"] == 28 and config["lora_alpha"] == 28  # scaling 1: the parts' scalings are in B
    assert sorted(config["target_modules"]) == sorted({module_type(n) for n in MODULES})
    assert config["layers_to_transform"] == [0, 1]
    keys = safetensor_keys(tmp_path / "c")
    assert keys == {f"base_model.model.{n}.lora_{x}.weight" for n in MODULES for x in "AB"}  # the cross product

    want = reference_logits(parts)
    assert max_diff(want, tiny_llama()(IDS).logits) > 1e-2  # the sum does change the model
    assert max_diff(want, reference_logits(parts[:2])) > 1e-3  # and the last (smallest) part counts
    assert max_diff(peft_logits(tmp_path / "c"), want) <= 1e-4

    loaded = Adapter.load(tmp_path / "c")
    assert loaded.manifesto == "\n\n".join(p.manifesto.strip() for p in parts if p.manifesto)
    assert [p["weight"] for p in loaded.provenance["composed_of"]] == [1.0, 1.0, 1.0]
    assert [p["strength"] for p in loaded.provenance["composed_of"]] == [1.0, 1.5, 0.7]
    assert loaded.provenance["composed_of"][0]["provenance"] == {"checkpoint_hash": "seed1"}
    assert loaded.provenance["truncation_error"] == 0.0


def test_a_part_lacking_a_module_contributes_exact_zeros():
    parts = subset_parts()
    composed = Adapter.compose(parts)
    A, B = composed.weights["model.layers.0.mlp.up_proj"]  # only part 0 (rank 4) has it
    assert torch.equal(A[4:], torch.zeros(24, 40)) and torch.equal(B[:, 4:], torch.zeros(72, 24))
    A, B = composed.weights["model.layers.1.mlp.up_proj"]  # no part has it
    assert not A.any() and not B.any() and A.shape == (28, 40)


def safetensor_keys(path):
    from safetensors import safe_open

    with safe_open(str(path / "adapter_model.safetensors"), "pt") as f:
        return set(f.keys())


@pytest.mark.parametrize("rank", [None, 28, 40])
def test_rank_at_or_above_the_summed_rank_is_the_plain_concatenation(rank):
    parts = full_parts()
    composed = Adapter.compose(parts, rank=rank)
    assert composed.rank == 28 and composed.provenance["truncation_error"] == 0.0
    for name, (A, B) in composed.weights.items():
        assert torch.equal(A, torch.cat([p.weights[name][0] for p in parts]))  # (28, in)
        assert torch.equal(B, torch.cat([p.scaling * p.weights[name][1] for p in parts], dim=1))  # (out, 28)


def test_truncating_a_low_rank_sum_loses_nothing(tmp_path):
    part = random_adapter(8, 1.2, seed=4)
    composed = Adapter.compose([part, part], rank=8)  # ΔW = 2·ΔW_part has rank 8: the SVD runs and keeps it all
    assert composed.rank == 8 and composed.provenance["truncation_error"] < 1e-3
    composed.save(tmp_path / "c")
    assert max_diff(peft_logits(tmp_path / "c"), reference_logits([part, part])) <= 1e-4


@pytest.mark.parametrize("rank", [6, 24])  # 24 < 28 but > the k/v projections' width (20): zero rows pad those
def test_truncation_error_is_the_relative_frobenius_error(tmp_path, rank):
    parts, weights = full_parts(), [1.0, -0.5, 2.0]
    composed = Adapter.compose(parts, weights=weights, rank=rank)
    assert composed.rank == rank and all(A.shape[0] == rank for A, _ in composed.weights.values())

    dropped = total = 0.0
    for name, d in delta(parts, weights).items():
        u, s, vh = torch.linalg.svd(d, full_matrices=False)  # dense, float64: independent of compose's thin SVD
        best = (u[:, :rank] * s[:rank]) @ vh[:rank]
        dropped += (d - best).square().sum().item()
        total += d.square().sum().item()
        A, B = composed.weights[name]
        torch.testing.assert_close(B.double() @ A.double(), best, atol=1e-5, rtol=1e-4)
    error = composed.provenance["truncation_error"]
    assert 0 < error < 1
    assert error == pytest.approx((dropped / total) ** 0.5, rel=1e-4)

    composed.save(tmp_path / "c")
    assert max_diff(peft_logits(tmp_path / "c"), reference_logits([composed])) <= 1e-4


def test_weight_zero_drops_a_part_and_two_doubles_it():
    a, b, c = full_parts()
    without_b, zeroed_b = delta([Adapter.compose([a, c])]), delta([Adapter.compose([a, b, c], weights=[1, 0, 1])])
    doubled, once = delta([Adapter.compose([a, b], weights=[2, 2])]), delta([Adapter.compose([a, b])])
    cancelled = delta([Adapter.compose([a, b, a], weights=[1, 1, -1])])
    for name in MODULES:
        torch.testing.assert_close(zeroed_b[name], without_b[name], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(doubled[name], 2 * once[name], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(cancelled[name], delta([b])[name], atol=1e-6, rtol=1e-5)
    assert max_diff(doubled[name], once[name]) > 1e-3


def other_shapes():
    wide = random_adapter(4)
    A, B = wide.weights["model.layers.0.self_attn.q_proj"]
    wide.weights["model.layers.0.self_attn.q_proj"] = (torch.randn(4, 48), B)
    return [random_adapter(8), wide], {}


@pytest.mark.parametrize("make, match", [
    (lambda: ([], {}), "at least one adapter"),
    (lambda: ([random_adapter(4), random_adapter(4, base="smollm2-135m-instruct")], {}), "different base models"),
    (other_shapes, "different models"),
    (lambda: ([random_adapter(4), random_adapter(8)], {"weights": [1.0]}), "1 weights for 2 adapters"),
    (lambda: ([random_adapter(4)], {"weights": [float("nan")]}), "finite"),
    (lambda: ([random_adapter(4)], {"rank": 0}), "at least 1"),
])
def test_compose_refuses_bad_input_in_one_sentence(make, match):
    adapters, kwargs = make()
    with pytest.raises(HyperLoRAError, match=match) as e:
        Adapter.compose(adapters, **kwargs)
    assert "\n" not in str(e.value)


@pytest.fixture
def saved(tmp_path):
    parts = subset_parts()
    for i, part in enumerate(parts):
        part.save(tmp_path / f"p{i}")
    return parts, [str(tmp_path / f"p{i}") for i in range(len(parts))]


def test_cli_composes_saved_adapters(tmp_path, capsys, saved):
    parts, dirs = saved
    assert main(["compose", *dirs, "--out", str(tmp_path / "c"), "--weights", "1", "0.5", "-1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"wrote {tmp_path / 'c'}") and "rank 28" in out[0], out
    assert "truncat" not in out[0]
    assert max_diff(peft_logits(tmp_path / "c"), reference_logits(parts, [1, 0.5, -1])) <= 1e-4

    assert main(["compose", *dirs, "--out", str(tmp_path / "c6"), "--rank", "6"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    error = Adapter.load(tmp_path / "c6").provenance["truncation_error"]
    assert len(out) == 1 and "rank 6" in out[0] and f"truncation error {error:.1%} of ||ΔW||" in out[0], out


def corrupt(dirs, tmp_path):
    weights = tmp_path / "p1" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return dirs


def half_written(dirs, tmp_path):
    import safetensors.torch

    path = tmp_path / "p1" / "adapter_model.safetensors"
    tensors = safetensors.torch.load_file(str(path))
    safetensors.torch.save_file({k: v for k, v in tensors.items() if "lora_B" not in k}, str(path))
    return dirs


def other_base(dirs, tmp_path):
    random_adapter(4, base="smollm2-135m-instruct").save(tmp_path / "other")
    return [dirs[0], str(tmp_path / "other")]


@pytest.mark.parametrize("inputs, extra, match", [
    (lambda dirs, tmp_path: [dirs[0], str(tmp_path / "nowhere")], [], "not an adapter directory"),
    (corrupt, [], "corrupt adapter"),
    (half_written, [], "no lora_B"),
    (other_base, [], "different base models"),
    (lambda dirs, tmp_path: dirs, ["--weights", "1", "2"], "2 weights for 3 adapters"),
    (lambda dirs, tmp_path: dirs, ["--rank", "0"], "at least 1"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, saved, inputs, extra, match):
    argv = ["compose", *inputs(saved[1], tmp_path), "--out", str(tmp_path / "c"), *extra]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hyperlora: error:") and match in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, no temp dir left behind


def test_cli_existing_output_needs_force(tmp_path, capsys, saved):
    out = tmp_path / "c"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    argv = ["compose", *saved[1], "--out", str(out)]
    assert main(["compose", str(tmp_path / "nowhere"), "--out", str(out)]) == 2  # refused before anything is read
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0], err
    assert [p.name for p in out.iterdir()] == ["precious.txt"]
    assert main(argv + ["--force"]) == 0
    assert not (out / "precious.txt").exists() and (out / "adapter_model.safetensors").exists()


def test_help_lists_compose():
    from hyperlora.cli import EXAMPLES, build_parser

    assert "compose" in build_parser().format_help() and "hyperlora compose" in EXAMPLES
