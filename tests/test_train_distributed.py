"""Data-parallel training: two CPU processes (DDP over gloo) are the same optimisation as one process over the same
global batch.

    .venv/bin/pytest tests/test_train_distributed.py
"""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
import torch.distributed

from hyperlora.errors import HyperLoRAError
from hyperlora.train import TrainConfig, batch_for_step
from tests.conftest import train_config

STEPS = 4


def test_shares_partition_the_global_batch():
    groups = [list(range(4 * g, 4 * g + 4)) for g in range(10)]
    cfg = TrainConfig(manifestos_per_step=6, prompts_per_manifesto=2)
    for step in range(20):
        whole = batch_for_step(groups, cfg, step)
        for n in (2, 3, 6):
            assert sum((batch_for_step(groups, cfg, step, k, num_shards=n) for k in range(n)), []) == whole
    with pytest.raises(HyperLoRAError, match="global batch"):
        batch_for_step(groups, cfg, 0, 0, num_shards=4)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                    reason="torch.distributed has no gloo backend here")
@pytest.mark.slow  # a real training in two processes
def test_two_processes_train_as_one(tmp_path, tiny_base, tiny_data):
    config = train_config(tmp_path, tiny_base, tiny_data, steps=STEPS)
    # Contrast and edit weighting on, so every loss term is compared, and the contrast term pairs the two processes'
    # manifestos (one each: the global batch is the tiny set's two).
    train = ["-m", "hyperlora.cli", "train", "--config", str(config), "contrast_weight=1.0", "edit_weight=4"]
    # accelerate's --multi_gpu is its torchrun launcher; without CUDA the processes train on CPU over gloo. (Its
    # --cpu --num_processes 2 is the MPI launcher, which without mpirun starts a single process.)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(_free_port())]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # a CPU test even where a GPU is present
    runs = {"one": [sys.executable, *train], "two": [*launch, *train]}
    procs = {}
    try:
        for name, cmd in runs.items():  # side by side: most of each run's time is imports and loading
            with open(tmp_path / f"{name}.err", "w") as err:
                procs[name] = subprocess.Popen([*cmd, f"out={tmp_path / name}"], stdout=subprocess.DEVNULL,
                                               stderr=err, env=env, start_new_session=True)
        for proc in procs.values():
            proc.wait(timeout=300)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its workers
    errors = {name: (tmp_path / f"{name}.err").read_text() for name in runs}
    for name, proc in procs.items():
        assert proc.returncode == 0, errors[name][-3000:]
    assert "data-parallel over 2 processes" in errors["two"], errors["two"][-3000:]
    one, two = ([json.loads(line) for line in open(tmp_path / name / "log.jsonl")] for name in runs)
    assert [r["step"] for r in one] == [r["step"] for r in two] == list(range(1, STEPS + 1))
    assert (tmp_path / "two" / "final" / "hypernet.safetensors").exists()

    for a, b in zip(one, two):
        # (1) After every step both processes hold the same weights, to the bit: DDP all-reduces the gradients, so the
        # same bits reach both, and each applies the same AdamW update to the same weights.
        assert len(a["param_checksum"]) == 1 and len(b["param_checksum"]) == 2
        assert b["param_checksum"][0] == b["param_checksum"][1], f"step {b['step']}: the processes' weights differ"
        # (2) Together they take one process's batch, and the logged losses are the global batch's.
        assert b["tokens"] == a["tokens"]
        # The two runs add the same fp32 numbers in another order (a share at a time, then gloo's sum, over batches
        # padded to other widths), so they differ by rounding: at step 1 (same weights) by nothing or an ulp or two.
        # Later the weights differ by rounding too; AdamW turns the rounding noise of gradients that are zero in
        # exact arithmetic (the attention's key bias, which softmax ignores) into steps of up to ~1% of lr, but
        # those weights do not move the loss. Measured over 6 steps: loss and ce within 4e-7 relative. retain_kl and
        # contrast are differences of ~10-nat log-probabilities, so their rounding is absolute (up to 2e-6 nats
        # measured), not relative to their own small size: hence abs=1e-5 nats beside rel=1e-5.
        tol = dict(rel=1e-6, abs=1e-7) if a["step"] == 1 else dict(rel=1e-5, abs=1e-5)
        for key in ("loss", "ce", "retain_kl", "contrast", "l2", "copy") + (("grad_norm",) if a["step"] == 1 else ()):
            assert b[key] == pytest.approx(a[key], **tol), f"step {a['step']} {key}: {b[key]} vs one process {a[key]}"
        # The weights themselves: a position-weighted sum of every parameter agrees to 1.4e-7 relative after 6 steps.
        assert b["param_checksum"][0] == pytest.approx(a["param_checksum"][0], rel=1e-6)
