"""Our sampler (LatentAudioModel.denoise) and diffusers' AudioLDMPipeline do the same work on the same weights.

Runs bench/ldm_vs_diffusers.py's equivalence check at tiny size (no timing): from the same initial latents
both must reach the same final latents and the same waveform.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import ldm_vs_diffusers as bench  # noqa: E402


@pytest.fixture(scope="module")
def parts():
    """Tiny components; one torch thread while they run (at this size a second thread only adds waiting)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield bench.build("tiny")
    torch.set_num_threads(threads)


@pytest.mark.parametrize("scheduler, guidance", [("dpm++", 3.0), ("ddim", 2.5), ("unipc", 1.0)])
def test_same_latents_and_audio(parts, scheduler, guidance):
    eq = bench.equivalence(parts, 1.024, 3, guidance, scheduler, seed=1)  # 64 mel frames of 256 samples
    assert eq["same_shape"] and eq["finite"]
    assert eq["wave_shape"] == (1, 16384)
    assert eq["latent_scale"] > 0.1 and eq["wave_scale"] > 0  # not trivially equal (all zeros)
    assert bench.equivalent(eq), eq


def test_seeded_calls_match_and_seeds_differ(parts):
    """The timed calls draw their own noise from the seed: equal per seed, different across seeds."""
    a = bench.run_diffusers(parts, 0.512, 2, 3.0, "dpm++", seed=4)
    b = bench.run_ours(parts, 0.512, 2, 3.0, "dpm++", seed=4)
    c = bench.run_ours(parts, 0.512, 2, 3.0, "dpm++", seed=5)
    assert a.shape == b.shape == (1, 8192)
    np.testing.assert_allclose(b, a, rtol=0, atol=bench.TOLERANCE * np.abs(a).max())
    assert np.abs(c - b).max() > 1e-3 * np.abs(b).max()


def test_pooled_only_unet_ignores_token_states(parts):
    """With cross_attention=False the token states never reach the UNet: changing them changes nothing,
    while changing the pooled vector does."""
    import torch

    from foley.families.ldm.model import Conditioning

    m = parts.ours
    noise = torch.randn(bench.latent_shape(parts, 0.512), generator=torch.Generator().manual_seed(0))
    c, u = parts.cond, parts.uncond
    z = m.denoise(c, u, noise, steps=2, guidance=3.0, scheduler="ddim")
    other_tokens = Conditioning(torch.randn_like(c.tokens), c.mask, c.pooled)
    assert torch.equal(m.denoise(other_tokens, u, noise, steps=2, guidance=3.0, scheduler="ddim"), z)
    other_pooled = Conditioning(c.tokens, c.mask, -c.pooled)
    assert not torch.equal(m.denoise(other_pooled, u, noise, steps=2, guidance=3.0, scheduler="ddim"), z)


def test_upsample_factors_multiply_to_hop():
    for hop in (160, 256, 320, 441, 512):
        rates = bench.upsample_factors(hop)
        assert int(np.prod(rates)) == hop
        assert rates == sorted(rates, reverse=True)
