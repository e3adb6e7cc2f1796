"""Vocoders: Griffin-Lim fallback, the neural vocoder's folder format and strict loading, training."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from foley.errors import ModelError
from foley.features import MelConfig, log_mel
from foley.vocoder import GRIFFIN_LIM, Vocoder, load_vocoder, vocode
from foley.vocoder.griffinlim import GriffinLim, griffin_lim, spectral_convergence
from foley.vocoder.neural import NeuralVocoder

CFG = MelConfig()
TINY = {"dim": 16, "hidden_dim": 32, "num_layers": 1}


def _sine(freq: float, seconds: float = 1.0, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * CFG.sample_rate)) / CFG.sample_rate
    return (amp * torch.sin(2 * math.pi * freq * t))[None]


def test_griffin_lim_length_exact_and_finite():
    mel = log_mel(0.1 * torch.randn(3, 9_000, generator=torch.Generator().manual_seed(0)), CFG)
    wave = griffin_lim(mel, CFG, n_iter=4)
    assert wave.shape == (3, mel.shape[-1] * CFG.hop_length)
    assert torch.isfinite(wave).all()
    assert griffin_lim(mel[..., :0], CFG).shape == (3, 0)


def test_griffin_lim_sine_peaks_at_its_frequency():
    wave = griffin_lim(log_mel(_sine(1000.0), CFG), CFG, n_iter=32)[0]
    spectrum = torch.fft.rfft(wave).abs()
    freqs = torch.fft.rfftfreq(wave.shape[-1], 1.0 / CFG.sample_rate)
    assert abs(float(freqs[spectrum.argmax()]) - 1000.0) < 50.0  # within a mel band at 1 kHz


def test_griffin_lim_converges_with_iterations():
    t = torch.arange(CFG.sample_rate) / CFG.sample_rate
    chirp = (0.3 * torch.sin(2 * math.pi * (300 * t + 400 * t**2)))[None]
    mel = log_mel(chirp, CFG)
    sc = [spectral_convergence(griffin_lim(mel, CFG, n_iter=n), mel, CFG) for n in (0, 4, 32)]
    assert sc[0] > sc[1] > sc[2]
    assert sc[2] < 0.5 * sc[0]


def test_griffin_lim_is_deterministic_and_stereo_coherent():
    mel = log_mel(_sine(440.0), CFG)
    pair = griffin_lim(torch.cat([mel, mel]), CFG, n_iter=8)
    assert torch.equal(pair[0], pair[1])  # identical channels stay identical: same initial phase
    # a batch of two vs one alone: the same up to float rounding (batched FFTs may round differently, ~4e-6 here)
    assert torch.allclose(pair[:1], griffin_lim(mel, CFG, n_iter=8), rtol=0, atol=1e-5)


def test_load_vocoder_griffin_lim_and_vocode_stereo():
    voc = load_vocoder(GRIFFIN_LIM, n_iter=2)
    assert isinstance(voc, GriffinLim) and isinstance(voc, Vocoder)
    mel = log_mel(0.1 * torch.randn(4, 4_096), CFG).reshape(2, 2, CFG.n_mels, -1)  # [B, C, mels, N]
    assert vocode(voc, mel).shape == (2, 2, 16 * CFG.hop_length)


def test_neural_vocoder_shape_length_finite():
    model = NeuralVocoder(**TINY).eval()
    mel = log_mel(0.1 * torch.randn(2, 5_000), CFG)
    with torch.no_grad():
        wave = model(mel)
    assert wave.shape == (2, mel.shape[-1] * CFG.hop_length)
    assert torch.isfinite(wave).all()
    with pytest.raises(ValueError, match="log_mel must be"):
        model(mel[:, :10])


def test_neural_vocoder_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = NeuralVocoder(mel=MelConfig(n_mels=32).to_dict(), **TINY).eval()
    torch.nn.init.normal_(model.head.weight, std=0.01)  # non-trivial output (the head starts at zero)
    model.save_pretrained(tmp_path / "v")
    assert {p.name for p in (tmp_path / "v").iterdir()} == {"config.json", "diffusion_pytorch_model.safetensors"}
    assert json.loads((tmp_path / "v" / "config.json").read_text())["mel"]["n_mels"] == 32
    loaded = load_vocoder(tmp_path / "v")
    assert isinstance(loaded, NeuralVocoder) and loaded.mel_config == MelConfig(n_mels=32)
    mel = log_mel(0.1 * torch.randn(1, 3_000), loaded.mel_config)
    with torch.no_grad():
        assert torch.equal(model(mel), loaded(mel))


@pytest.mark.parametrize(("change", "named"), [({"dim": 24}, "blocks.0"),
                                               ({"num_layers": 2}, "missing keys"),
                                               ({"num_layers": 0}, "unexpected keys")])
def test_neural_vocoder_strict_load_fails_on_mismatch(tmp_path, change, named):
    NeuralVocoder(**TINY).save_pretrained(tmp_path / "v")
    config = json.loads((tmp_path / "v" / "config.json").read_text())
    (tmp_path / "v" / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(ModelError, match=named):
        NeuralVocoder.from_pretrained(tmp_path / "v")


def test_load_vocoder_errors_name_the_problem(tmp_path):
    with pytest.raises(ModelError, match="no folder with a config.json"):
        load_vocoder(tmp_path / "nothing")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "config.json").write_text(json.dumps({"_class_name": "Mystery"}))
    with pytest.raises(ModelError, match="Mystery"):
        load_vocoder(tmp_path / "x")


def _write_corpus(folder, n: int = 24, seconds: float = 0.5):
    """``n`` short synthetic clips (sines, chirps, noise bursts) and a manifest; returns its path."""
    rng = np.random.default_rng(0)
    sr = CFG.sample_rate
    t = np.arange(int(seconds * sr)) / sr
    lines = []
    for i in range(n):
        f0 = float(rng.uniform(150, 2_000))
        kind = i % 3
        if kind == 0:
            x = 0.4 * np.sin(2 * np.pi * f0 * t)
        elif kind == 1:
            x = 0.4 * np.sin(2 * np.pi * (f0 * t + 300 * t**2))
        else:
            x = 0.2 * rng.standard_normal(t.size) * np.exp(-6 * t)
        path = folder / f"clip{i:02d}.wav"
        sf.write(path, x.astype(np.float32), sr)
        lines.append({"path": path.name, "duration": seconds, "sample_rate": sr, "description": f"clip {i}"})
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return manifest


def _log(run):
    return [json.loads(line) for line in (run / "vocoder" / "log.jsonl").read_text().splitlines()]


def _recipe(tmp_path, steps: int) -> dict:
    return {"seed": 0, "audio": {"cache_dir": str(tmp_path / "cache")},
            "vocoder": {"steps": steps, "batch_size": 4, "segment_seconds": 0.25, "lr": 3e-3, "warmup_steps": 1,
                        "model_config": TINY},
            "train": {"threads": 1, "log_every": 5, "save_every": 5, "valid_every": 10}}


def test_training_reduces_loss_and_resumes(tmp_path):
    from foley.vocoder.train import train_vocoder

    manifest = _write_corpus(tmp_path)
    run = tmp_path / "run"
    folder = train_vocoder([manifest], _recipe(tmp_path, 10), run)
    assert folder == run / "vocoder" / "final" and (folder / "config.json").exists()
    assert torch.load(run / "vocoder" / "ckpt" / "last.pt", weights_only=True)["step"] == 10
    shutil.rmtree(folder)  # a finished stage is skipped; without its final/ a longer recipe continues
    train_vocoder([manifest], _recipe(tmp_path, 20), run)
    log = _log(run)
    starts = [r["step"] for r in log if r.get("event") == "start"]
    assert starts == [0, 10]  # the second run continued from the checkpoint, not from step 0
    losses = [r["loss"] for r in log if "loss" in r]
    assert [r["step"] for r in log if "loss" in r] == [5, 10, 15, 20]
    assert losses[-1] < losses[0]
    assert [r["step"] for r in log if "valid" in r] == [10, 20] and "griffin_lim_32" in log[1]
    assert torch.load(run / "vocoder" / "ckpt" / "last.pt", weights_only=True)["step"] == 20
    voc = load_vocoder(folder)
    with torch.no_grad():
        assert torch.isfinite(voc(log_mel(_sine(500.0, 0.3), CFG))).all()
    shutil.rmtree(run)


def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    """The vocoder on the training harness: killed after its step-2 checkpoint and run again, it logs the
    uninterrupted run's losses, each step once, and ends with the same weights (and the same EMA export)."""
    from foley.vocoder.train import VocoderSolver
    from tests.solver_resume import check_resume

    manifest = _write_corpus(tmp_path, n=8)
    recipe = _recipe(tmp_path, 5)
    recipe["train"].update(log_every=1, save_every=2, valid_every=100)
    out = check_resume(VocoderSolver, [manifest], recipe, tmp_path, kill=4)
    a, b = (load_vocoder(out[k]).state_dict() for k in ("whole", "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)
