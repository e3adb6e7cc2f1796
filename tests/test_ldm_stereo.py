"""The stereo representation of the latent-diffusion family (left/right vs mid + level difference)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from foley.families.ldm.stereo import MelSpace, measure  # noqa: E402


@pytest.mark.parametrize("mode", ["lr", "mid_ild"])
def test_round_trip(mode):
    raw = torch.randn(3, 2, 64, 20) * 2 - 4
    space = MelSpace(-4.0, 2.0, mode, 0.5)
    assert torch.allclose(space.decode(space.encode(raw)), raw, atol=1e-5)


def test_mid_ild_channels_carry_mid_and_difference():
    left = torch.full((1, 64, 10), -2.0)
    right = torch.full((1, 64, 10), -4.0)
    x = MelSpace(-3.0, 1.0, "mid_ild", 0.5).encode(torch.stack([left, right], dim=1))
    assert torch.allclose(x[:, 0], torch.zeros(1, 64, 10))          # mid (-3) normalised
    assert torch.allclose(x[:, 1], torch.full((1, 64, 10), 4.0))    # (L - R) / ild_std = 2 / 0.5


def test_measure_gives_unit_variance_difference():
    raw = torch.randn(4, 2, 64, 30)
    stats = measure([raw], "mid_ild")
    d = (raw[:, 0] - raw[:, 1]) / stats["ild_std"]
    assert abs(float(d.std()) - 1.0) < 1e-3 and stats["stereo"] == "mid_ild"


def test_mono_is_unchanged_by_stereo_mode():
    raw = torch.randn(2, 1, 64, 8)
    assert torch.allclose(MelSpace(0.0, 1.0, "mid_ild").encode(raw), MelSpace(0.0, 1.0, "lr").encode(raw))


def test_tiny_mid_ild_model_trains_exports_and_generates(tmp_path):
    from foley.families.ldm.pipeline import LDMGenerator
    from foley.families.ldm.train import train_ldm
    from tests.ldm_tiny import TINY, tiny_corpus

    recipe = json.loads(json.dumps(TINY))
    recipe["audio"]["stereo"] = "mid_ild"
    recipe["vae"]["steps"] = recipe["unet"]["steps"] = 2
    folder = train_ldm([tiny_corpus(tmp_path)], recipe, tmp_path / "run", dest=tmp_path / "model")
    cfg = json.loads((folder / "foley.json").read_text())
    assert cfg["stereo"] == "mid_ild" and cfg["ild_std"] > 0
    out = LDMGenerator.from_folder(folder).generate("a steady tone", duration=1.0, seed=0)[0]
    assert out.channels == 2 and np.isfinite(out.samples).all()


def test_warm_start_re_expresses_an_lr_vae_in_mid_ild_space(tiny_ldm):
    """`[vae] init`: the converted VAE computes the same decoding, and nearly the same encoding, in the new space."""
    from diffusers import AutoencoderKL

    from foley.families.ldm.components import load_component
    from foley.families.ldm.model import FoleyConfig
    from foley.families.ldm.train import _warm_start_vae

    _, folder = tiny_ldm
    old_cfg = FoleyConfig.load(folder / "foley.json")
    assert old_cfg.stereo == "lr"
    src = load_component("AutoencoderKL", folder / "vae").float().eval()
    # same mean: the zero padding then means the same level in both spaces, and the encoder is exact too
    stats = {"mean": old_cfg.mel_mean, "std": old_cfg.mel_std * 1.2, "stereo": "mid_ild", "ild_std": 0.7}
    new = AutoencoderKL.from_config(src.config)
    _warm_start_vae(new, folder, stats)
    new.eval()
    raw = torch.randn(2, 2, 64, 32) * old_cfg.mel_std + old_cfg.mel_mean
    raw[:, 0] += 1.0                                             # louder on the left
    new_space = MelSpace(stats["mean"], stats["std"], "mid_ild", stats["ild_std"])
    with torch.no_grad():
        z_old = src.encode(old_cfg.space.encode(raw)).latent_dist.mean
        z_new = new.encode(new_space.encode(raw)).latent_dist.mean
        dec_old = old_cfg.space.decode(src.decode(z_old).sample)
        dec_new = new_space.decode(new.decode(z_old).sample)
    assert torch.allclose(dec_old, dec_new, atol=1e-4)           # the decoder is the same function
    assert torch.allclose(z_old, z_new, atol=1e-4)
    plain = AutoencoderKL.from_config(src.config)
    assert not torch.allclose(plain.encoder.conv_in.weight, new.encoder.conv_in.weight)


def test_warm_start_refuses_another_architecture(tiny_ldm, tmp_path):
    from diffusers import AutoencoderKL

    from foley.errors import FoleyError
    from foley.families.ldm.components import default_vae_config
    from foley.families.ldm.train import _warm_start_vae

    _, folder = tiny_ldm
    other = AutoencoderKL.from_config(default_vae_config(2, 64, {"block_out_channels": [8, 16], "latent_channels": 4,
                                                                 "norm_num_groups": 4}))
    with pytest.raises(FoleyError, match="init"):
        _warm_start_vae(other, folder, {"mean": 0.0, "std": 1.0, "stereo": "lr"})
    with pytest.raises(FoleyError, match="not a foley"):
        _warm_start_vae(other, tmp_path, {"mean": 0.0, "std": 1.0, "stereo": "lr"})
