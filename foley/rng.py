"""torch's CPU random normals without torch: ``randn(seed, n)`` = ``torch.randn(n, generator=
torch.Generator().manual_seed(seed))`` within float rounding, so a torch-free backend draws a seed's own latent.

Hand-written (no library reproduces torch's generator): torch seeds an MT19937 with the seed's low 32 bits (the
standard ``init_genrand``, as numpy's legacy ``RandomState``). From 16 values on it takes one 24-bit float uniform per
value and turns each block of 16 into normals by Box-Muller (the first 8 give the cosines, the next 8 the sines); a
last partial block is drawn afresh as the last 16 values; torch's AVX2 kernel evaluates log/sin/cos in float32
approximations there, so values agree to ~1e-6, not bit for bit. Under 16 values it draws pairs in double precision
from two 53-bit uniforms each (cosine, then the cached sine): bit for bit. Importing this module imports numpy only.
"""

from __future__ import annotations

import numpy as np

BLOCK = 16


def _uniforms(state: np.random.RandomState, n: int) -> np.ndarray:
    raw = state.randint(0, 2 ** 32, size=n, dtype=np.uint64)  # the generator's raw 32-bit outputs, in order
    return ((raw & 0xFFFFFF).astype(np.float64) * 2.0 ** -24).astype(np.float32)


def _box_muller(u: np.ndarray) -> np.ndarray:
    """Blocks [k, 16] of uniforms -> normals, as torch's ``normal_fill_16``."""
    u1, u2 = 1.0 - u[:, :8].astype(np.float64), u[:, 8:].astype(np.float64)
    radius = np.sqrt(-2.0 * np.log(u1))
    theta = 2.0 * np.pi * u2
    return np.concatenate([radius * np.cos(theta), radius * np.sin(theta)], axis=1).astype(np.float32)


def _pairs(state: np.random.RandomState, n: int) -> np.ndarray:
    """torch's serial double-precision path (fewer than 16 values)."""
    raw = state.randint(0, 2 ** 32, size=4 * ((n + 1) // 2), dtype=np.uint64).reshape(-1, 2, 2)
    bits = (raw[..., 0] << np.uint64(32)) | raw[..., 1]            # random64(): the first output is the high half
    u = (bits & np.uint64((1 << 53) - 1)).astype(np.float64) * 2.0 ** -53
    radius, theta = np.sqrt(-2.0 * np.log1p(-u[:, 1])), 2.0 * np.pi * u[:, 0]
    return np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1).reshape(-1)[:n].astype(np.float32)


def randn(seed: int, n: int) -> np.ndarray:
    """float32 [n] normals of ``torch.randn(n, generator=torch.Generator().manual_seed(seed))``."""
    state = np.random.RandomState(int(seed) & 0xFFFFFFFF)
    if n < BLOCK:
        return _pairs(state, n)
    u = _uniforms(state, n)
    full = n // BLOCK * BLOCK
    out = np.empty(n, dtype=np.float32)
    out[:full] = _box_muller(u[:full].reshape(-1, BLOCK)).reshape(-1)
    if n % BLOCK:
        out[n - BLOCK:] = _box_muller(_uniforms(state, BLOCK)[None])[0]
    return out
