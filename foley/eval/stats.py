"""Uncertainty: bootstrap confidence intervals, subset statistics and rank AUC, all seeded."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CI_LEVEL = 0.95
N_BOOTSTRAP = 2000


def bootstrap_ci(values, seed: int = 0, n_resamples: int = N_BOOTSTRAP, level: float = CI_LEVEL,
                 statistic: Callable = np.mean) -> dict:
    """Percentile bootstrap CI of ``statistic`` over per-item ``values`` [N].

    Returns {"mean", "ci95": [lo, hi] or None when N < 2, "n", "method", "n_resamples", "seed"}.
    Non-finite values are dropped (and counted in "n_dropped").
    """
    from scipy.stats import bootstrap

    v = np.asarray(values, dtype=np.float64).ravel()
    finite = v[np.isfinite(v)]
    out = {"mean": float(statistic(finite)) if len(finite) else None, "n": int(len(finite)),
           "n_dropped": int(len(v) - len(finite)), "method": "percentile bootstrap",
           "level": level, "n_resamples": n_resamples, "seed": seed, "ci95": None}
    if len(finite) >= 2:
        if np.ptp(finite) == 0:
            out["ci95"] = [float(finite[0]), float(finite[0])]
        else:
            vec = statistic is np.mean
            stat = (lambda x, axis: np.mean(x, axis=axis)) if vec else statistic
            res = bootstrap((finite,), stat, n_resamples=n_resamples, confidence_level=level,
                            method="percentile", random_state=np.random.default_rng(seed), vectorized=vec)
            out["ci95"] = [float(res.confidence_interval.low), float(res.confidence_interval.high)]
    if len(finite):
        out["sd"] = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
    return out


def default_subset_size(n_a: int, n_b: int) -> int:
    """Half the smaller set (so subsets differ), at least 2 and at most 1000 items."""
    return int(max(2, min(1000, min(n_a, n_b) // 2)))


def subset_stats(fn: Callable[[np.ndarray, np.ndarray], float], n_a: int, n_b: int, size: int,
                 count: int, seed: int = 0, paired: bool = False) -> dict:
    """Mean ± sd of ``fn(idx_a, idx_b)`` over ``count`` subsets of ``size`` items drawn without replacement.

    ``paired``: the same indices are used for both sets (items i of A and B belong together).
    Returns {"mean", "sd", "values", "size", "count", "replacement": False, "seed"}.
    """
    rng = np.random.default_rng(seed)
    size = int(min(size, n_a, n_b))
    vals = []
    for _ in range(count):
        ia = np.sort(rng.choice(n_a, size, replace=False))
        ib = ia if paired else np.sort(rng.choice(n_b, size, replace=False))
        vals.append(float(fn(ia, ib)))
    v = np.asarray(vals)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if count > 1 else 0.0,
            "values": [float(x) for x in v], "size": size, "count": count, "replacement": False,
            "seed": seed}


def auc(low, high) -> float:
    """Probability that a 'high' value exceeds a 'low' one (ties count half): Mann-Whitney U / (n1 n2)."""
    from scipy.stats import mannwhitneyu

    low, high = np.asarray(low, float), np.asarray(high, float)
    if len(low) == 0 or len(high) == 0:
        raise ValueError("AUC needs at least one value on each side")
    return float(mannwhitneyu(high, low, alternative="two-sided").statistic / (len(low) * len(high)))
