"""Statistics for the eval harness: means with percentile bootstrap CIs, resampling cases (clusters), paired.

Every rate in ``results.json`` is a mean over *cases*; a case may hold several values (one per sampling seed), and
the bootstrap resamples whole cases so seeds of one case never count as independent evidence. Differences between
two conditions are paired: both are measured on the same cases and one resample of cases serves both.
"""

import numpy as np

N_BOOT = 2000
LEVEL = 0.95


def _as_cases(values) -> np.ndarray:
    """``values`` as a (cases, seeds) float array; a flat list is one seed per case. NaN marks a missing seed."""
    if len(values) == 0:
        return np.zeros((0, 1))
    rows = [np.atleast_1d(np.asarray(v, dtype=float)) for v in values]
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def _case_means(values) -> np.ndarray:
    cases = _as_cases(values)
    return np.nanmean(cases, axis=1) if cases.size else np.zeros(0)


def _resample_index(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap(values, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> dict:
    """Mean of per-case values with a percentile bootstrap CI over cases.

    Args:
        values: one entry per case: a number (0/1 for a rate) or a list of numbers (one per seed).
        n_boot: bootstrap resamples.
        seed: RNG seed of the resampling (fixed, so a report is reproducible).
        level: CI coverage.

    Returns:
        ``{"value", "ci_low", "ci_high", "n", "n_obs"}``: ``n`` cases, ``n_obs`` values (cases x seeds);
        value and CI are None when there are no cases.
    """
    cases = _as_cases(values)
    means = np.nanmean(cases, axis=1) if cases.size else np.zeros(0)
    n = len(means)
    out = {"value": None, "ci_low": None, "ci_high": None, "n": n, "n_obs": int(np.isfinite(cases).sum())}
    if n == 0:
        return out
    boot = means[_resample_index(n, n_boot, seed)].mean(axis=1)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    out.update(value=float(means.mean()), ci_low=float(lo), ci_high=float(hi))
    return out


def paired_bootstrap(a, b, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL, ratio: bool = False) -> dict:
    """Paired difference ``mean(a) - mean(b)`` (or the ratio ``mean(a) / mean(b)``) over the same cases.

    Args:
        a, b: per-case values (as in ``bootstrap``), same length and case order.
        n_boot, seed, level: as in ``bootstrap``.
        ratio: report ``mean(a) / mean(b)`` (e.g. capability retained relative to the base) instead.

    Returns:
        ``{"value", "ci_low", "ci_high", "n"}`` (value None when there are no cases or the ratio is undefined).
    """
    ma, mb = _case_means(a), _case_means(b)
    if len(ma) != len(mb):
        raise ValueError(f"paired bootstrap needs the same cases: {len(ma)} != {len(mb)}")
    n = len(ma)
    out = {"value": None, "ci_low": None, "ci_high": None, "n": n}
    if n == 0:
        return out
    idx = _resample_index(n, n_boot, seed)
    ra, rb = ma[idx].mean(axis=1), mb[idx].mean(axis=1)
    if ratio:
        if mb.mean() == 0:
            return out
        with np.errstate(divide="ignore", invalid="ignore"):
            boot = ra / rb
        boot = boot[np.isfinite(boot)]
        value = ma.mean() / mb.mean()
    else:
        boot, value = ra - rb, ma.mean() - mb.mean()
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    out.update(value=float(value), ci_low=float(lo), ci_high=float(hi))
    return out


def fmt(stat: dict | None, pct: bool = True, digits: int = 1) -> str:
    """``"42.0 [30.1, 55.2]"`` (percent by default) or ``"n/a"``; for tables."""
    if not stat or stat.get("value") is None:
        return "n/a"
    k = 100 if pct else 1
    return f"{stat['value'] * k:.{digits}f} [{stat['ci_low'] * k:.{digits}f}, {stat['ci_high'] * k:.{digits}f}]"
