"""Bootstrap statistics of the eval harness: CIs cover what they should, pairing and seed clustering work.

    .venv/bin/pytest tests/test_evals_stats.py -q
"""

import numpy as np
import pytest
from hyperlora.evals.stats import bootstrap, fmt, paired_bootstrap


def test_constant_rate_has_a_degenerate_interval():
    s = bootstrap([1.0] * 10)
    assert s == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 10, "n_obs": 10}


def test_empty_cell_reports_n_zero_and_no_value():
    s = bootstrap([])
    assert s["n"] == 0 and s["value"] is None and s["ci_low"] is None
    assert fmt(s) == "n/a"


def test_interval_brackets_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = bootstrap(list(rng.random(20) < 0.3))
    large = bootstrap(list(rng.random(2000) < 0.3))
    for s in (small, large):
        assert s["ci_low"] <= s["value"] <= s["ci_high"]
    assert large["ci_high"] - large["ci_low"] < small["ci_high"] - small["ci_low"]
    assert large["ci_low"] < 0.3 < large["ci_high"]


def test_coverage_is_roughly_95_percent():
    rng = np.random.default_rng(1)
    hits = 0
    for k in range(200):
        s = bootstrap(list((rng.random(60) < 0.4).astype(float)), n_boot=500, seed=k)
        hits += s["ci_low"] <= 0.4 <= s["ci_high"]
    assert 0.88 <= hits / 200 <= 0.99


def test_seeds_are_clustered_within_a_case():
    # 5 cases x 3 seeds: n counts cases, n_obs counts samples, and the mean is over case means.
    s = bootstrap([[1, 1, 0], [0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 0, 0]])
    assert s["n"] == 5 and s["n_obs"] == 15
    assert s["value"] == pytest.approx(np.mean([2 / 3, 0, 1, 1 / 3, 1 / 3]))


def test_paired_difference_uses_the_pairing():
    rng = np.random.default_rng(2)
    base = rng.random(50) < 0.5
    better = base | (rng.random(50) < 0.3)  # always at least as good on the same case
    d = paired_bootstrap(list(better.astype(float)), list(base.astype(float)))
    assert d["value"] == pytest.approx(better.mean() - base.mean())
    assert d["ci_low"] >= 0  # pairing: no resample can make the better condition lose
    same = paired_bootstrap(list(base.astype(float)), list(base.astype(float)))
    assert same["value"] == same["ci_low"] == same["ci_high"] == 0


def test_paired_ratio_and_length_check():
    r = paired_bootstrap([1, 1, 0, 1], [1, 1, 1, 1], ratio=True)
    assert r["value"] == pytest.approx(0.75) and r["ci_high"] <= 1.0
    assert paired_bootstrap([1, 0], [0, 0], ratio=True)["value"] is None  # base at zero: undefined
    with pytest.raises(ValueError):
        paired_bootstrap([1, 0], [1])
