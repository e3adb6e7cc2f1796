"""foley.editing: the one copy of seeds, splices, cut-off/band split and known-region re-imposition; and the
import layers (lint-imports)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from foley import editing as E
from foley.audio import Audio
from foley.errors import RequestError
from foley.request import make_request

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


def bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, np.float32).view(np.uint32)


def old_ldm_splice(src: Audio, gen: Audio, start: float, end: float) -> np.ndarray:
    """The LDM family's splice before foley.editing (the shipped models' behaviour), for comparison."""
    sr, n = src.sample_rate, gen.frames
    out = src.pad_or_trim(n).samples.copy()
    a, b = int(round(start * sr)), min(int(round(end * sr)), n)
    xf = int(0.05 * sr)
    w = np.zeros(n, np.float32)
    w[a:b] = 1.0
    ramp = np.sin(0.5 * np.pi * np.linspace(0, 1, xf, dtype=np.float32)) ** 2
    if a > 0:
        w[a:a + min(xf, b - a)] = ramp[: min(xf, b - a)]
    if b < n:
        w[max(a, b - xf):b] = np.minimum(w[max(a, b - xf):b], ramp[::-1][-(b - max(a, b - xf)):])
    return out * (1 - w) + gen.samples * w


def noise(frames: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((2, frames)) * 0.3).astype(np.float32)


@pytest.mark.parametrize("start,end", [(0.5, 1.2), (0.3, 0.33), (0.0, 0.4), (1.5, 2.0)])
def test_splice_keeps_the_users_samples_bit_exact_outside_the_range(start, end):
    src, gen = noise(2 * SR, 0), noise(2 * SR, 1)
    src[:, ::97] = -0.0  # negative zeros survive too (a multiply-add would turn them into +0)
    a, b = int(round(start * SR)), int(round(end * SR))
    outside = b if b < 2 * SR else a - 1
    gen[:, outside] = np.nan  # a non-finite generated sample outside the range does not leak in
    out = E.splice(Audio(src, SR), Audio(gen, SR), start, end).samples
    assert out.dtype == np.float32 and out.shape == src.shape
    assert np.array_equal(bits(out[:, :a]), bits(src[:, :a])) and np.array_equal(bits(out[:, b:]), bits(src[:, b:]))
    gen[:, outside] = 0.0
    # inside: as the shipped LDM spliced (ramps of 50 ms; a range shorter than two ramps gets the lower of both)
    assert np.array_equal(out[:, a:b], old_ldm_splice(Audio(src, SR), Audio(gen, SR), start, end)[:, a:b])
    xf = int(E.CROSSFADE_SECONDS * SR)
    if b - a > 2 * xf:  # fully generated between the ramps, bit for bit
        assert np.array_equal(bits(out[:, a + xf:b - xf]), bits(gen[:, a + xf:b - xf]))


def test_extension_splice_and_the_token_lms_tail_crossfade():
    src, gen = noise(SR, 2), noise(2 * SR, 3)
    out = E.splice(Audio(src, SR), Audio(gen, SR), 1.0, 2.0).samples  # LDM/public extend: fade in after the input
    assert out.shape == (2, 2 * SR) and np.array_equal(bits(out[:, :SR]), bits(src))
    assert np.array_equal(out, old_ldm_splice(Audio(src, SR), Audio(gen, SR), 1.0, 2.0))
    xf = 800  # the token LM fades the input's last xf samples into its continuation (its shipped behaviour)
    lm = E.splice_samples(src, gen, SR - xf, 2 * SR, xf)
    ramp = np.sin(0.5 * np.pi * np.linspace(0, 1, xf, dtype=np.float32)) ** 2
    assert np.array_equal(bits(lm[:, :SR - xf]), bits(src[:, :SR - xf]))
    assert np.array_equal(lm[:, SR - xf:SR], src[:, SR - xf:] * (1 - ramp) + gen[:, SR - xf:SR] * ramp)
    assert np.array_equal(bits(lm[:, SR:]), bits(gen[:, SR:]))


def test_seeds_follow_the_old_formulas(monkeypatch):
    reqs = [make_request(prompt="a", seed=11, num_variations=3), make_request(prompt="b", seed=5)]
    assert E.expand(reqs) == [(0, 0, reqs[0], 11), (0, 1, reqs[0], 12), (0, 2, reqs[0], 13), (1, 0, reqs[1], 5)]
    assert [E.window_seed(11, w) for w in range(3)] == [11, 11 + 7919, 11 + 2 * 7919]
    drawn = []
    monkeypatch.setattr(E.secrets, "randbelow", lambda n: drawn.append(n) or 42)
    unseeded = make_request(prompt="c", num_variations=2)
    assert E.seed_of(unseeded) == 42 and drawn == [2**31]
    assert [it[3] for it in E.expand([unseeded])] == [42, 43]


def test_cutoff_estimate_band_split_and_extension_length():
    t = np.arange(SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 1000 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    assert E.estimate_cutoff(Audio(x[None], SR)) == pytest.approx(3000, abs=100)
    with pytest.raises(RequestError, match="silent"):
        E.estimate_cutoff(Audio(np.zeros((1, SR), np.float32), SR))
    low, high = noise(SR, 4), noise(SR, 5)
    out = E.band_split(low, high, 2000.0, SR)
    from scipy.signal import butter, sosfiltfilt  # the LDM's rounding: each band to float32, then the sum

    lo = sosfiltfilt(butter(8, 2000.0, btype="lowpass", fs=SR, output="sos"), low, axis=-1).astype(np.float32)
    hi = sosfiltfilt(butter(8, 2000.0, btype="highpass", fs=SR, output="sos"), high, axis=-1).astype(np.float32)
    assert out.dtype == np.float32 and np.array_equal(out, lo + hi)
    src = Audio(np.zeros((1, SR), np.float32), SR)
    assert E.extended_length(src, 3.0, 10.0, 5.0) == 3.0 and E.extended_length(src, 1.0, 10.0, 5.0) == 6.0
    with pytest.raises(RequestError, match="over the model's maximum"):
        E.extended_length(src, 12.0, 10.0, 5.0)


def test_reimpose_noises_the_known_region_to_the_next_step():
    torch = pytest.importorskip("torch")
    from diffusers import DDIMScheduler

    sched = DDIMScheduler()
    sched.set_timesteps(4)
    x, known, nz = torch.randn(1, 2, 3, 8), torch.randn(1, 2, 3, 8), torch.randn(1, 2, 3, 8)
    keep = torch.zeros(1, 1, 1, 8)
    keep[..., :3] = 1.0
    mid = E.reimpose(x, known, nz, keep, sched, sched.timesteps, 1)
    assert torch.equal(mid[..., 3:], x[..., 3:])
    assert torch.allclose(mid[..., :3], sched.add_noise(known, nz, sched.timesteps[2:3])[..., :3])
    last = E.reimpose(x, known, nz, keep, sched, sched.timesteps, 3)
    assert torch.equal(last[..., :3], known[..., :3]) and torch.equal(last[..., 3:], x[..., 3:])


def test_editing_is_a_leaf():
    code = ("import sys, foley.editing; bad = [m for m in ('torch', 'foley.generator', 'foley.families', "
            "'foley.registry', 'scipy') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_import_layers_hold():
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists() and shutil.which("lint-imports") is None:
        pytest.skip("import-linter is not installed")
    r = subprocess.run([str(exe) if exe.exists() else "lint-imports", "--no-cache"], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout
