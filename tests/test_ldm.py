"""Latent-diffusion family on a tiny config: train every stage a few steps, export, generate, edit."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from foley.audio import Audio  # noqa: E402
from foley.errors import ModelError, RequestError  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model(tiny_ldm, tmp_path_factory):
    """A private copy of the session's tiny model and run (some tests here modify the run)."""
    import shutil

    root = tmp_path_factory.mktemp("ldm_copy")
    shutil.copytree(tiny_ldm[0], root, dirs_exist_ok=True)
    return root, root / "model"


@pytest.fixture(scope="module")
def gen(tiny_model):
    from foley.families.ldm.pipeline import LDMGenerator

    return LDMGenerator.from_folder(tiny_model[1])


def test_model_folder_is_diffusers_layout(tiny_model):
    _, folder = tiny_model
    index = json.loads((folder / "model_index.json").read_text())
    assert index["vae"] == ["diffusers", "AutoencoderKL"] and index["unet"][1] == "UNet2DConditionModel"
    for sub in ("vae", "unet"):
        assert (folder / sub / "config.json").exists()
        assert (folder / sub / "diffusion_pytorch_model.safetensors").exists()
    assert json.loads((folder / "foley.json").read_text())["channels"] == 2


def test_training_logged_valid_loss_and_checkpoint(tiny_model):
    root, _ = tiny_model
    log = [json.loads(x) for x in (root / "run" / "unet" / "log.jsonl").read_text().splitlines()]
    assert any("valid_loss" in r and np.isfinite(r["valid_loss"]) for r in log)
    assert (root / "run" / "unet" / "ckpt" / "last.pt").exists()


def test_resume_continues_from_checkpoint(tiny_model):
    from foley.families.ldm.train import train_unet
    from foley.train.loop import Checkpointer

    root, _ = tiny_model
    from tests.ldm_tiny import TINY

    recipe = json.loads(json.dumps(TINY))
    recipe["unet"]["steps"] = 6
    final = root / "run" / "unet" / "final"
    import shutil

    shutil.rmtree(final)  # pretend the run was killed before finishing
    train_unet(recipe, root / "run")
    state = torch.load(Checkpointer(root / "run" / "unet" / "ckpt").path, weights_only=True)
    assert state["step"] == 6
    steps = [json.loads(x)["step"] for x in (root / "run" / "unet" / "log.jsonl").read_text().splitlines()]
    assert steps.count(1) == 1  # the second run did not start again from step 1


def test_generate_shape_determinism_and_seed(gen):
    a = gen.generate("a tone at 440 hertz", duration=1.5, seed=3)[0]
    b = gen.generate("a tone at 440 hertz", duration=1.5, seed=3)[0]
    c = gen.generate("a tone at 440 hertz", duration=1.5, seed=4)[0]
    assert a.channels == 2 and a.sample_rate == 16000 and a.frames == 24000
    assert np.array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)
    assert np.isfinite(a.samples).all() and a.peak() <= 1.0
    assert a.meta["seed"] == 3 and a.meta["request"]["prompt"] == "a tone at 440 hertz"


def test_batch_equals_single_and_variations(gen):
    single = gen.generate("tone 220", duration=1.0, seed=5)[0]
    batch = gen.generate(["tone 880", "tone 220"], duration=1.0, seed=5)
    assert np.allclose(batch[1].samples, single.samples, atol=1e-4)
    many = gen.generate("tone 220", duration=1.0, seed=5, num_variations=3)
    assert len(many) == 3 and [m.meta["seed"] for m in many] == [5, 6, 7]


def test_inaudible_output_is_redrawn_from_a_derived_seed(gen, monkeypatch):
    from foley.generator import SEED_STRIDE

    plain = gen.generate("tone 220", duration=1.0, seed=5)[0]
    assert "redrawn" not in plain.meta
    redrawn_seed = gen.generate("tone 220", duration=1.0, seed=5 + SEED_STRIDE)[0]
    monkeypatch.setattr(gen, "silent_dbfs", 200.0)  # every output counts as silent: all retries are used
    a = gen.generate("tone 220", duration=1.0, seed=5)[0]
    b = gen.generate("tone 220", duration=1.0, seed=5)[0]
    assert a.meta["redrawn"] == {"reason": "RMS below 200 dBFS", "from_seed": 5, "tries": 2, "silent": True}
    assert a.meta["seed"] == 5 + 2 * SEED_STRIDE and np.array_equal(a.samples, b.samples)
    monkeypatch.setattr(gen, "silence_retries", 1)
    one = gen.generate("tone 220", duration=1.0, seed=5)[0]
    assert np.array_equal(one.samples, redrawn_seed.samples)  # the sidecar's seed reproduces the sound


@pytest.mark.parametrize("scheduler", ["ddim", "dpm++", "euler", "unipc"])
def test_schedulers(gen, scheduler):
    out = gen.generate("tone", duration=1.0, seed=1, scheduler=scheduler, steps=3)[0]
    assert np.isfinite(out.samples).all() and out.frames == 16000


def test_long_form_beyond_window(gen):
    out = gen.generate("a steady tone", duration=5.0, seed=1)[0]
    assert out.frames == 80000 and np.isfinite(out.samples).all()


def test_strength_zero_returns_input(gen):
    src = Audio(np.random.default_rng(1).uniform(-0.3, 0.3, (2, 16000)).astype(np.float32), 16000)
    out = gen.edit(src, "a tone", task="style_transfer", strength=0.0, seed=1)[0]
    assert np.array_equal(out.samples, src.samples)
    changed = gen.edit(src, "a tone", task="style_transfer", strength=0.8, seed=1)[0]
    assert not np.allclose(changed.samples, src.samples, atol=1e-3)


def test_inpaint_keeps_the_rest(gen):
    t = np.arange(32000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    src = Audio(np.stack([x, x]), 16000)
    out = gen.edit(src, "a steady tone", task="inpaint", mask_start=0.8, mask_end=1.2, seed=2)[0]
    assert out.frames == src.frames
    keep = np.r_[0:int(0.75 * 16000), int(1.25 * 16000):32000]
    assert np.max(np.abs(out.samples[:, keep] - src.samples[:, keep])) < 1e-4


def test_super_resolution_adds_high_band(gen):
    from scipy.signal import butter, sosfiltfilt

    rng = np.random.default_rng(0)
    noise = rng.standard_normal((2, 16000)).astype(np.float32) * 0.2
    low = sosfiltfilt(butter(8, 2000, fs=16000, output="sos"), noise, axis=-1).astype(np.float32)
    src = Audio(low, 16000)
    out = gen.edit(src, "noise", task="super_resolution", cutoff_hz=2000, seed=1)[0]

    def high_energy(a):
        spec = np.abs(np.fft.rfft(a.samples, axis=-1)) ** 2
        f = np.fft.rfftfreq(a.frames, 1 / 16000)
        return spec[:, f > 3000].sum()

    assert high_energy(out) > 10 * high_energy(src)


def test_extend_keeps_input_and_lengthens(gen):
    src = gen.generate("tone", duration=1.0, seed=9)[0]
    out = gen.edit(src, "tone", task="extend", duration=2.0, seed=1)[0]
    assert out.frames == 32000
    assert np.max(np.abs(out.samples[:, :15000] - src.samples[:, :15000])) < 1e-4


def test_bad_requests(gen):
    with pytest.raises(RequestError, match="empty"):
        gen.generate("  ", duration=1)
    with pytest.raises(RequestError, match="maximum"):
        gen.generate("x", duration=100)
    with pytest.raises(RequestError, match="scheduler"):
        gen.generate("x", duration=1, scheduler="nope")
    with pytest.raises(RequestError, match="outside"):
        gen.edit(Audio.silence(1.0, 16000, 2), "x", task="inpaint", mask_start=0.5, mask_end=3.0)


def test_strict_loading_names_keys(tiny_model, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from foley.families.ldm.pipeline import LDMGenerator

    bad = tmp_path / "bad"
    shutil.copytree(tiny_model[1], bad)
    path = bad / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(path)
    key = sorted(state)[0]
    state["renamed." + key] = state.pop(key)
    save_file(state, path)
    with pytest.raises(ModelError, match="missing: " + key.replace(".", r"\.")):
        LDMGenerator.from_folder(bad)


def test_long_form_windows_hand_over_through_a_ramp(gen, monkeypatch):
    """The previous window's last frames are sampled again (card ``outpaint_discard_seconds``) and the kept frames
    before them blend into the new window's (``outpaint_ramp_seconds``; both 0 = the hard join at the window's
    edge): the latents before the join are the same either way, the join moves to the ramp's middle, and the length
    is unchanged."""
    extra, latents = gen.model.cfg.extra, []
    decode = gen._decode
    monkeypatch.setattr(gen, "_decode", lambda z, d: latents.append(z.clone()) or decode(z, d))
    monkeypatch.setitem(extra, "max_window_seconds", 4.0)  # the tiny model's window: room for both stretches
    frame = gen.model.f_vae * gen.model.cfg.mel.hop_length / gen.sample_rate
    monkeypatch.setitem(extra, "outpaint_discard_seconds", 2 * frame)
    monkeypatch.setitem(extra, "outpaint_ramp_seconds", 3 * frame)
    win, overlap, ramp, discard = gen._outpaint_sizes(gen._window())
    assert (ramp, discard) == (3, 2) and ramp + discard < overlap
    soft, seams = gen.generate("a steady tone", duration=6.0, seed=1)[0], gen.seams(6.0)
    monkeypatch.setitem(extra, "outpaint_ramp_seconds", 0.0)
    monkeypatch.setitem(extra, "outpaint_discard_seconds", 0.0)
    assert gen._outpaint_sizes(gen._window())[2:] == (0, 0)
    hard, hard_seams = gen.generate("a steady tone", duration=6.0, seed=1)[0], gen.seams(6.0)
    assert seams == pytest.approx([s - (discard + ramp / 2) * frame for s in hard_seams])
    assert hard.frames == soft.frames == 96000
    zs, zh = latents
    assert zs.shape == zh.shape
    join = win - discard - ramp
    torch.testing.assert_close(zs[..., :join], zh[..., :join], rtol=0, atol=0)  # the first window's kept frames
    assert (zs[..., join:win] - zh[..., join:win]).abs().amax() > 1e-3          # ramp and edge: sampled again
