"""CLI: generate-adapter end to end, and every bad input gives one line on stderr, exit 2, nothing left behind.

    .venv/bin/pytest tests/test_cli.py
"""

import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM

from hyperlora import HyperLoRA, HyperNetConfig
from hyperlora.cli import main
from tests.conftest import randomize_B, tiny_llama

MANIFESTO = "Be kind to everyone.\nAnswer in lowercase.\n"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, encoder):
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    HyperLoRA.for_model(tiny_llama(), HyperNetConfig(base_model="tiny-llama", d_model=32), encoder=encoder) \
        .save_pretrained(path)
    return path


def _fails(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hyperlora: error:") and match in err[0], err
    assert "Traceback" not in err[0]


def test_generate_adapter_writes_a_peft_dir(tmp_path, capsys, tiny_checkpoint):
    (tmp_path / "m.txt").write_text(MANIFESTO)
    assert main(["generate-adapter", "--manifesto", str(tmp_path / "m.txt"), "--out", str(tmp_path / "a"),
                 "--checkpoint", str(tiny_checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and " ms" in out
    assert (tmp_path / "a" / "adapter_model.safetensors").exists()
    assert (tmp_path / "a" / "manifesto.txt").read_text() == MANIFESTO


def test_generate_adapter_rank_truncates_a_per_statement_adapter(tmp_path, capsys, encoder):
    """A per-statement checkpoint writes rank 8 × (2 statements + 1) = 24; --rank 8 saves the SVD truncation, whose
    ΔW is the best rank-8 approximation of the full one, and says what it cost."""
    from hyperlora.adapter import Adapter

    hl = HyperLoRA.for_model(tiny_llama(), HyperNetConfig(base_model="tiny-llama", d_model=32, per_statement=True),
                             encoder=encoder)
    randomize_B(hl.hypernet)
    hl.save_pretrained(tmp_path / "ckpt")
    (tmp_path / "m.txt").write_text(MANIFESTO)
    argv = ["generate-adapter", "--manifesto", str(tmp_path / "m.txt"), "--checkpoint", str(tmp_path / "ckpt")]
    assert main(argv + ["--out", str(tmp_path / "full")]) == 0
    assert main(argv + ["--out", str(tmp_path / "r8"), "--rank", "8"]) == 0
    out = capsys.readouterr().out
    assert "rank 24)" in out and "rank 8, truncated by SVD from rank 24: relative ΔW error" in out
    full, r8 = Adapter.load(tmp_path / "full"), Adapter.load(tmp_path / "r8")
    assert (full.rank, r8.rank) == (24, 8)
    name = next(iter(full.weights))
    delta = lambda ad: ad.scaling * ad.weights[name][1] @ ad.weights[name][0]
    u, sv, vh = torch.linalg.svd(delta(full).double())
    best = (u[:, :8] * sv[:8]) @ vh[:8]
    assert torch.allclose(delta(r8).double(), best, atol=1e-5)
    _fails(capsys, argv + ["--out", str(tmp_path / "r0"), "--rank", "0"], "--rank must be at least 1")


def test_shipped_checkpoint_makes_an_adapter(tmp_path, capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(MANIFESTO.encode())))
    assert main(["generate-adapter", "--manifesto", "-", "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "adapter_config.json").exists()
    # A trained checkpoint writes a ΔW (an untrained one's B is all zeros), and the shipped one is trained.
    from hyperlora.adapter import Adapter

    adapter = Adapter.load(tmp_path / "a")
    assert sum(B.float().norm().item() for _, B in adapter.weights.values()) > 0


@pytest.mark.parametrize("content, match", [(b"", "is empty"), (b"  \n\t\n", "is empty"),
                                            (b"caf\xe9 \xff", "not UTF-8")])
def test_bad_manifesto_text(tmp_path, capsys, content, match):
    (tmp_path / "m.txt").write_bytes(content)
    _fails(capsys, ["generate-adapter", "--manifesto", str(tmp_path / "m.txt"), "--out", str(tmp_path / "a")], match)
    assert not (tmp_path / "a").exists()


def test_missing_manifesto_file(tmp_path, capsys):
    _fails(capsys, ["generate-adapter", "--manifesto", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "a")],
           "not found")
    assert not (tmp_path / "a").exists()


def test_existing_output_without_force_is_untouched(tmp_path, capsys, tiny_checkpoint):
    (tmp_path / "m.txt").write_text(MANIFESTO)
    out = tmp_path / "a"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    argv = ["generate-adapter", "--manifesto", str(tmp_path / "m.txt"), "--out", str(out),
            "--checkpoint", str(tiny_checkpoint)]
    _fails(capsys, argv, "already exists")
    assert [p.name for p in out.iterdir()] == ["precious.txt"]
    assert main(argv + ["--force"]) == 0
    assert not (out / "precious.txt").exists()


def test_checkpoint_for_another_base(tmp_path, capsys, tiny_checkpoint):
    from hyperlora.base import resolve_base

    resolve_base()  # on a fresh machine, dequantize the embedded base first: its one-time note is not an error
    capsys.readouterr()
    (tmp_path / "m.txt").write_text(MANIFESTO)
    _fails(capsys, ["generate-adapter", "--manifesto", str(tmp_path / "m.txt"), "--out", str(tmp_path / "a"),
                    "--checkpoint", str(tiny_checkpoint), "--base", "smollm2-135m-instruct"], "shape hash")
    assert not (tmp_path / "a").exists()


def test_corrupt_checkpoint(tmp_path, capsys, tiny_checkpoint):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, bad)
    weights = bad / "hypernet.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated download
    (tmp_path / "m.txt").write_text(MANIFESTO)
    _fails(capsys, ["generate-adapter", "--manifesto", str(tmp_path / "m.txt"), "--out", str(tmp_path / "a"),
                    "--checkpoint", str(bad)], "corrupt")
    assert not (tmp_path / "a").exists()


def test_missing_checkpoint_dir(tmp_path, capsys):
    (tmp_path / "m.txt").write_text(MANIFESTO)
    _fails(capsys, ["generate-adapter", "--manifesto", str(tmp_path / "m.txt"), "--out", str(tmp_path / "a"),
                    "--checkpoint", str(tmp_path / "nowhere")], "not found")


def test_console_script_prints_no_traceback(tmp_path):
    (tmp_path / "m.txt").write_text("")
    proc = subprocess.run([sys.executable, "-m", "hyperlora.cli", "generate-adapter", "--manifesto",
                           str(tmp_path / "m.txt"), "--out", str(tmp_path / "a")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"hyperlora: error: manifesto {tmp_path / 'm.txt'} is empty"]


def test_help_explains_every_verb():
    """Every verb the parser has is listed with a line of help, and its own --help explains it."""
    import argparse

    from hyperlora.cli import build_parser

    proc = subprocess.run([sys.executable, "-m", "hyperlora.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in action._choices_actions}
    assert set(helps) == set(action.choices) and len(helps) >= 10
    listed = {line.split()[0] for line in proc.stdout.splitlines() if line.startswith("    ") and line.split()}
    for verb, text in helps.items():
        assert verb in listed and text, verb
        sub = action.choices[verb].format_help()
        assert sub.startswith(f"usage: hyperlora {verb}") and len(sub) > 200, verb


def test_generate_with_and_without_adapter(tmp_path, capsys, tiny_base, encoder):
    hl = HyperLoRA.for_model(AutoModelForCausalLM.from_pretrained(tiny_base), HyperNetConfig(d_model=32),
                             encoder=encoder)
    randomize_B(hl.hypernet, std=0.5)
    hl.generate_adapter("Talk like a pirate.").save(tmp_path / "a")
    argv = ["generate", "--prompt", "hello", "--base", str(tiny_base), "--max-new-tokens", "6"]
    assert main(argv) == 0
    plain = capsys.readouterr().out
    assert main(argv + ["--adapter", str(tmp_path / "a")]) == 0
    adapted = capsys.readouterr().out
    assert plain.strip() and adapted.strip() and plain != adapted  # a random tiny model, but a real change
    _fails(capsys, ["generate", "--prompt", "hi", "--adapter", str(tmp_path / "nope")], "not an adapter")
    _fails(capsys, argv + ["--adapter", str(tmp_path / "a"), "--max-new-tokens", "0"], "max-new-tokens")


def test_eval_bad_settings_are_one_line(tmp_path, capsys):
    _fails(capsys, ["eval", "--out", str(tmp_path / "e"), "--set", "bogus=1"], "unknown eval settings")
    _fails(capsys, ["eval", "--out", str(tmp_path / "e"), "--set", "novalue"], "KEY=VALUE")
    assert not (tmp_path / "e").exists()
