"""Set metrics on embeddings: Fréchet distance, KID, FD∞, k-NN precision/recall, KL and IS.

Arrays are float [N, D] (rows = frames or clips). All functions are deterministic given a seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (unbiased) of rows ``x`` [N, D], float64."""
    x = np.asarray(x, np.float64)
    if x.shape[0] < 2:
        raise ValueError(f"a Gaussian fit needs at least 2 rows, got {x.shape[0]}")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2), with the trace of the root computed from the
    eigenvalues of the symmetric S1^1/2 S2 S1^1/2 (stable where scipy.linalg.sqrtm of the
    non-symmetric product gives complex round-off). Hand-written: scipy has no Fréchet distance.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root1 @ s2 @ root1
    tr_root = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    d = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_root)
    return max(d, 0.0)


def fd(x: np.ndarray, y: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits to rows of ``x`` [N, D] and ``y`` [M, D]."""
    return frechet_distance(*gaussian(x), *gaussian(y))


def kid(x: np.ndarray, y: np.ndarray) -> float:
    """Kernel inception distance: unbiased MMD^2 with the cubic kernel k(a, b) = (a.b / D + 1)^3.

    Unbiased, so it is ~0 (and may be slightly negative) for two samples of one distribution.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n, m, d = len(x), len(y), x.shape[1]
    if n < 2 or m < 2:
        raise ValueError("KID needs at least 2 items per set")
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


def fd_infinity(fd_of_subset: Callable[[np.ndarray, np.ndarray], float], n_a: int, n_b: int,
                sizes: list[int] | None = None, draws: int = 3, seed: int = 0) -> dict:
    """Extrapolate FD to infinitely many items by fitting FD(n) = a + b / n (Chong & Forsyth 2020).

    ``fd_of_subset(idx_a, idx_b)`` computes FD on index subsets of the two sets; ``n`` runs over
    ``sizes`` (default 5 sizes from a third of the smaller set to all of it), each averaged over
    ``draws`` seeded draws without replacement. Returns {"value": a, "slope": b, "sizes", "fd"}.
    """
    rng = np.random.default_rng(seed)
    n_max = min(n_a, n_b)
    if n_max < 4:
        raise ValueError(f"FD∞ needs at least 4 items per set to fit FD(n) = a + b/n; the smaller set has {n_max}")
    if sizes is None:
        sizes = sorted({int(s) for s in np.linspace(max(2, n_max // 3), n_max, 5)})
    if len(sizes) < 2:
        raise ValueError(f"FD∞ needs at least two subset sizes; only {n_max} items per set")
    means = []
    for s in sizes:
        vals = [fd_of_subset(np.sort(rng.choice(n_a, s, replace=False)),
                             np.sort(rng.choice(n_b, s, replace=False))) for _ in range(draws)]
        means.append(float(np.mean(vals)))
    a_mat = np.stack([np.ones(len(sizes)), 1.0 / np.asarray(sizes, float)], axis=1)
    (a, b), *_ = np.linalg.lstsq(a_mat, np.asarray(means), rcond=None)
    return {"value": float(a), "slope": float(b), "sizes": [int(s) for s in sizes], "fd": means,
            "draws": draws, "seed": seed}


def knn_precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict:
    """Improved precision/recall (Kynkäänniemi et al. 2019) with k-NN balls in embedding space.

    Precision: share of generated items inside some reference item's k-NN ball (fidelity).
    Recall: share of reference items inside some generated item's k-NN ball (coverage).
    Features are standardised by the reference's per-dimension mean and sd first.
    """
    from scipy.spatial.distance import cdist

    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"k-NN precision/recall with k={k} needs more than {k} items per set")
    mu, sd = real.mean(0), real.std(0)
    sd[sd == 0] = 1.0
    real, fake = (real - mu) / sd, (fake - mu) / sd
    rr, ff, rf = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    r_real = np.sort(rr, axis=1)[:, k]        # column 0 is the point itself
    r_fake = np.sort(ff, axis=1)[:, k]
    precision = float(np.mean((rf <= r_real[:, None]).any(axis=0)))
    recall = float(np.mean((rf.T <= r_fake[:, None]).any(axis=0)))
    return {"precision": precision, "recall": recall, "k": k}


def nearest_distance(real: np.ndarray, fake: np.ndarray) -> np.ndarray:
    """Distance of each generated row to its nearest reference row (reference-standardised) [M]."""
    from scipy.spatial.distance import cdist

    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    mu, sd = real.mean(0), real.std(0)
    sd[sd == 0] = 1.0
    return cdist((fake - mu) / sd, (real - mu) / sd).min(axis=1)


def kl_divergence(p_ref: np.ndarray, p_gen: np.ndarray, eps: float = 1e-10) -> np.ndarray:
    """Per-pair KL(reference ‖ generated) = sum_k p_ref log(p_ref / p_gen), in nats; inputs [N, K]."""
    p = np.clip(np.asarray(p_ref, np.float64), eps, None)
    q = np.clip(np.asarray(p_gen, np.float64), eps, None)
    p /= p.sum(axis=1, keepdims=True)
    q /= q.sum(axis=1, keepdims=True)
    return np.sum(p * np.log(p / q), axis=1)


def inception_score(posteriors: np.ndarray, eps: float = 1e-10) -> float:
    """Inception score exp(E_x KL(p(y|x) ‖ p(y))) of class posteriors [N, K]."""
    p = np.clip(np.asarray(posteriors, np.float64), eps, None)
    p /= p.sum(axis=1, keepdims=True)
    marginal = p.mean(axis=0, keepdims=True)
    return float(np.exp(np.mean(np.sum(p * np.log(p / marginal), axis=1))))
