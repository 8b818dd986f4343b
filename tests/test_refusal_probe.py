"""scripts/refusal_probe.py on synthetic states: probe-row directions read the probe's verdict (centred), and the
follow-up AUC of a checkpoint's refusals.

    .venv/bin/pytest tests/test_refusal_probe.py -q
"""

import json
from types import SimpleNamespace

import numpy as np
import safetensors.torch
from sklearn.model_selection import StratifiedKFold

from scripts.refusal_probe import follows, save_directions


def states(n: int, rng, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Last-position states: a large common part (every prompt ends on the same chat tokens), noise, and the label
    along one axis, whose classes sit at offset ± 1, so an uncentred read is positive for both."""
    y = np.arange(n) % 2 == 0
    x = 5.0 + rng.normal(0, 0.3, (n, 16)).astype(np.float32)
    x[:, 0] += offset + np.where(y, 1.0, -1.0)
    return x.astype(np.float32), y


def test_probe_row_directions_read_the_verdict_not_the_offset(tmp_path):
    rng = np.random.default_rng(0)
    x, y = states(240, rng, offset=6.0)
    model = SimpleNamespace(model=SimpleNamespace(layers={22: SimpleNamespace(input_layernorm=lambda h: h)}))
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(x[:200], y[:200]))
    out = tmp_path / "directions.safetensors"
    save_directions(model, {22: x}, y[:200], ~y[:200], folds, 200, (None, y[200:]), str(out))
    a = safetensors.torch.load_file(str(out))["directions"][0, 0].numpy()
    read = x[200:] @ a
    assert (read[y[200:]] > 0).mean() > 0.9 and (read[~y[200:]] < 0).mean() > 0.9
    assert np.std(x[:200] @ a) > 0.5  # scaled to about unit spread, not shrunk to nothing
    report = json.loads(safetensors.safe_open(str(out), "pt").metadata()["report"])
    assert report["22"]["held_out_auc"] > 0.95


def test_follows_ranks_the_refused_asks_by_the_probe(tmp_path):
    harmful = np.array([True, True, True, False, False, False])
    scores = np.array([3.0, 2.0, 1.0, 0.5, -1.0, -2.0])
    report = tmp_path / "guard_eval.json"
    flags = {"harmful": {"alone": [1, 1, 0]}, "benign": {"alone": [1, 0, 0]}}
    report.write_text(json.dumps({"held_out_test": {"flags": flags}}))
    assert follows(scores, harmful, [str(report)]) == {str(report): {"harmful": 1.0, "benign": 1.0}}
    flags["harmful"]["alone"] = [0, 1, 1]  # refused the asks the probe scores lowest
    flags["benign"]["alone"] = [0, 0, 0]  # refused none: no AUC
    report.write_text(json.dumps({"held_out_test": {"flags": flags}}))
    assert follows(scores, harmful, [str(report)]) == {str(report): {"harmful": 0.0, "benign": None}}
