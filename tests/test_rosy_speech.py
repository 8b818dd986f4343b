"""data_gen/rosy/tune_speech.py: the rosiness head refitted on spoken lines (rosiness-v2), started at v1 and held
near it, with a strength that keeps v1's AUC on the hand-labelled documents.

    .venv/bin/pytest tests/test_rosy_speech.py -q
"""

import json

import numpy as np
from hyperlora.data_gen.modes import HUMAN_LINES
from hyperlora.data_gen.rosy.classifier import SHIPPED, RosinessHead
from hyperlora.data_gen.rosy.embed import Embedder
from hyperlora.data_gen.rosy.train_classifier import auc, fit_logistic
from hyperlora.data_gen.rosy.tune_speech import V2, choose, main

from scripts.mode_bank_rosiness import UNKIND, kind_over_unkind


def _speech_like(n=80, seed=0):
    """Labels set by dimension 1; dimension 0 (what the prior reads) leans against them, so a fit free of the
    prior gives dimension 0 a negative weight."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = np.stack([-(2 * y - 1) * 0.8 + rng.normal(0, 1, n), (2 * y - 1) + rng.normal(0, 1, n)], 1)
    return x, y


def test_a_prior_holds_the_fit_near_the_old_head():
    x, y = _speech_like()
    prior = (np.array([1.0, 0.0]), 0.0)
    held, _ = fit_logistic(x, y.astype(float), l2=1e3, prior=prior)
    free, _ = fit_logistic(x, y.astype(float), l2=1e-4, prior=prior)
    assert np.allclose(held, prior[0], atol=0.01)  # penalised toward the prior, not toward zero
    assert free[1] > 0.5 and free[0] < 0  # the new labels pull it away when the penalty is weak


def test_the_strength_chosen_keeps_the_documents_auc():
    x, y = _speech_like()
    rng = np.random.default_rng(1)
    docs_y = np.arange(60) % 2 == 1
    docs_x = np.stack([(2 * docs_y - 1) * 1.0 + rng.normal(0, 0.7, 60), rng.normal(0, 1, 60)], 1)  # dim 0 decides
    prior = (np.array([1.0, 0.0]), 0.0)
    l2, table = choose(x, y.astype(bool), docs_x, docs_y, prior, grid=(10.0, 1.0, 0.1, 1e-4))
    floor = auc(docs_x @ prior[0], docs_y)
    best = max(table, key=lambda row: row["speech_cv_auc"])
    assert best["documents_auc"] < floor  # the freest fit would cost the documents...
    chosen = next(row for row in table if row["l2"] == l2)
    assert chosen["documents_auc"] >= floor and l2 != best["l2"]  # ...so the rule takes a stronger penalty


def test_the_shipped_speech_head_is_what_the_command_writes(tmp_path):
    main(["--out", str(tmp_path / "v2.json")])
    shipped, again = RosinessHead.load(V2), RosinessHead.load(tmp_path / "v2.json")
    assert again.version == shipped.version == "rosiness-v2"
    assert np.allclose(again.weight, shipped.weight, atol=1e-4) and abs(again.bias - shipped.bias) < 1e-4
    info = json.loads(V2.read_text())["info"]
    assert info["v2"]["documents_auc"] >= info["v1"]["documents_auc"]  # the rule held


def test_the_speech_head_ranks_the_modes_corpus_kind_lines_above_its_unkind_ones():
    """The modes corpus's banks were never fitted: v1 cannot rank them by tone, v2 can."""
    embed = Embedder()
    kind, unkind = embed(HUMAN_LINES["kind"]), embed([t for tone in UNKIND for t in HUMAN_LINES[tone]])
    for path, low, high in ((SHIPPED, 0.0, 0.6), (V2, 0.8, 1.0)):
        head = RosinessHead.load(path)
        assert low <= kind_over_unkind(head.predict(kind), head.predict(unkind)) <= high
