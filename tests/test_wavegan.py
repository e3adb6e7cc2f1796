"""The WaveGAN family: the one-shot filter, phase shuffle, a tiny GAN trained a few steps through the family's
training entry and loaded with foley.load, batches, seeds, interpolation, refusals and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

from foley.audio import Audio  # noqa: E402
from foley.errors import RequestError  # noqa: E402
from foley.families.wavegan.data import one_shot  # noqa: E402
from foley.families.wavegan.model import phase_shuffle  # noqa: E402
from foley.request import make_request  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

SR = 16000
A, B = "a wooden knock", "a metal clang"


def _hit(seconds: float, f0: float, decay: float, lead: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = (0.6 * np.sin(2 * np.pi * f0 * t) + 0.4 * rng.standard_normal(len(t))) * np.exp(-t / decay)
    return np.concatenate([np.zeros(int(lead * SR)), x]).astype(np.float32)


def test_one_shot_rule():
    win, why = one_shot(_hit(3.0, 300, 0.08, lead=0.4), SR, 3.4, 16384)
    assert why == "onset" and win.shape == (16384,) and abs(np.abs(win).max() - 0.9) < 1e-5
    pre = int(0.004 * SR)  # 5 ms of pre-roll before the hit, then the hit
    assert np.abs(win[:pre]).max() < 1e-6 < np.abs(win[int(0.006 * SR):int(0.02 * SR)]).max()
    drone = 0.3 * np.sin(2 * np.pi * 110 * np.arange(3 * SR) / SR).astype(np.float32)
    assert one_shot(drone, SR, 3.0, 16384) == (None, "sustained")
    swell = _hit(3.0, 300, 10.0) * np.linspace(0, 1, 3 * SR, dtype=np.float32)
    assert one_shot(swell, SR, 3.0, 16384)[1] == "slow attack"
    assert one_shot(drone[:SR], SR, 1.0, 16384)[1] == "short"  # one second long: a one-shot by its length
    assert one_shot(np.zeros(SR, np.float32), SR, 1.0, 16384) == (None, "silent")


def test_phase_shuffle_keeps_shape_and_shifts_whole_items():
    x = torch.arange(2 * 3 * 50, dtype=torch.float32).reshape(2, 3, 50)
    y = phase_shuffle(x, 2, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.equal(phase_shuffle(x, 0), x)
    for i in range(2):  # each item is its input shifted by one k in -2..2, the same for all its channels
        assert any(torch.equal(y[i, :, 2:-2], x[i, :, 2 - k:48 - k]) for k in range(-2, 3))


def _manifest(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(12):
        prompt, f0 = (A, 250 + 20 * i) if i % 2 else (B, 1500 + 50 * i)
        x = _hit(2.5 if i % 3 else 0.8, f0, 0.05 if i % 2 else 0.2, lead=0.05 * (i % 4), seed=i)
        Audio(x[None], SR).save(root / f"hit{i}.wav")
        lines.append({"path": f"hit{i}.wav", "duration": len(x) / SR, "sample_rate": SR, "description": prompt,
                      "licence": "CC0-1.0"})
    drone = 0.3 * np.sin(2 * np.pi * 110 * np.arange(3 * SR) / SR)
    Audio(drone[None], SR).save(root / "drone.wav")
    lines.append({"path": "drone.wav", "duration": 3.0, "sample_rate": SR, "description": "a drone"})
    (root / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root / "m.jsonl"


TINY = {"name": "tiny-wavegan", "seed": 0, "licence": "CC0-1.0", "audio": {"valid_fraction": 0.2},
        "wavegan": {"width": 2, "disc_width": 2, "cond_proj": 8, "latent_dim": 8, "batch_size": 4, "steps": 3,
                    "mel_ffts": [256], "mel_width": 4, "ema_decay": 0.9, "valid_items": 2},
        "train": {"threads": 1, "log_every": 1, "valid_every": 2, "save_every": 2}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    from foley.families.wavegan.train import train_wavegan

    root = tmp_path_factory.mktemp("wavegan")
    manifest = _manifest(root / "data")
    folder = train_wavegan([manifest], json.loads(json.dumps(TINY)), root / "run", dest=root / "model")
    return {"root": root, "folder": folder, "manifest": manifest}


def test_training_picks_one_shots_resumes_and_exports_a_folder(trained):
    run, folder = trained["root"] / "run", trained["folder"]
    report = json.loads((run / "clips" / "report.json").read_text())
    decisions = next(iter(report["manifests"].values()))["decisions"]
    assert decisions.get("sustained") == 1 and report["train"] + report["valid"] == 12  # the drone left out
    log = [json.loads(ln) for ln in (run / "gan" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "disc" in r] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) for r in log if "loss" in r) and any("valid_envelope_db" in r for r in log)
    assert (run / "gan" / "ckpt" / "last.pt").exists()
    cfg = json.loads((folder / "foley.json").read_text())
    assert cfg["family"] == "wavegan" and cfg["extra"]["steps"] == 3 and cfg["max_duration"] == 1.0
    card = (folder / "README.md").read_text()
    assert "CPU-hours" in card and "CC0-1.0" in card and "bash recipes/starter-wavegan.sh" in card


def test_batch_seeds_and_limits(trained):
    import foley
    from foley.registry import describe

    gen = foley.load(str(trained["folder"]))
    assert gen.card.family == "wavegan" and gen.capabilities.takes("interpolate")
    out = gen.generate("a metal impact", duration=1.0, num_variations=20, seed=5)
    assert len(out) == 20 and {(a.sample_rate, a.channels, a.frames) for a in out} == {(SR, 1, SR)}
    assert [a.meta["seed"] for a in out] == list(range(5, 25))
    again = gen.generate("a metal impact", duration=1.0, seed=8)[0]  # variation 3 alone: the same sound
    np.testing.assert_allclose(again.samples, out[3].samples, atol=1e-5)
    assert not np.allclose(out[0].samples, out[1].samples)
    short = gen.generate("a metal impact", duration=0.25, seed=5)[0]
    assert short.frames == 4000 and abs(short.samples[0, -1]) < 1e-6  # faded at the cut
    with pytest.raises(RequestError) as e:
        gen.generate("a metal impact", duration=2.0)
    assert "maximum of 1 s" in str(e.value) and "models that can: starter" in str(e.value)
    assert "\n" not in str(e.value)
    _, caps = describe(str(trained["folder"]))
    assert caps.max_duration == 1.0 and caps.max_variations >= 100


_ENDS = """
import sys, numpy as np, torch
import foley
from foley.request import make_request
torch.set_num_threads(1)
folder, A, B = sys.argv[1:4]
gen = foley.load(folder)
with torch.backends.mkldnn.flags(enabled=False):
    series = gen.generate(make_request(prompt=A, seed=3, duration=1.0, num_variations=5, interpolate={"prompt": B}))
    assert [a.meta["interpolation"]["t"] for a in series] == [0, 0.25, 0.5, 0.75, 1]
    ends = [gen.generate(A, seed=3, duration=1.0)[0], gen.generate(B, seed=3, duration=1.0)[0]]
    seeds = gen.generate(make_request(prompt=A, seed=3, duration=1.0, num_variations=3, interpolate={"seed": 9}))
    plain9 = gen.generate(A, seed=9, duration=1.0)[0]
np.testing.assert_allclose(series[0].samples, ends[0].samples, atol=1e-5)
np.testing.assert_allclose(series[-1].samples, ends[1].samples, atol=1e-5)
assert not np.allclose(series[2].samples, series[0].samples, atol=1e-4)
np.testing.assert_allclose(seeds[-1].samples, plain9.samples, atol=1e-5)
print("ok")
"""


def test_interpolation_ends_are_the_plain_generations(trained):
    # In a fresh process, one thread, torch's own kernels: oneDNN picks kernels by batch size, and in the full
    # suite a state left by earlier tests moved the ends by ~1e-3 (CI, 2026-12-06; not seen alone): the point
    # here is that t = 0 and t = 1 are the plain sounds, not the last bits.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FOLEY_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", _ENDS, str(trained["folder"]), A, B], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]
    with pytest.raises(RequestError, match="at least 2 points"):
        make_request(prompt=A, interpolate={"prompt": B})


def test_interpolation_refused_by_other_models_naming_those_that_can():
    from foley.registry import check_request

    with pytest.raises(RequestError) as e:
        check_request("starter", make_request(prompt=A, num_variations=4, duration=1.0, interpolate={"prompt": B}))
    assert "cannot interpolate" in str(e.value) and "starter-wavegan" in str(e.value)
    with pytest.raises(RequestError, match="at most 64 sounds"):
        check_request("starter", make_request(prompt=A, num_variations=100, duration=1.0))


def _foley(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FOLEY_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "foley", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def test_cli_interpolates_and_defaults_to_the_models_length(trained, tmp_path):
    model = str(trained["folder"])
    r = _foley("generate", "--interpolate", A, B, "-n", "4", "-m", model, "--seed", "2", "-o", "k.wav", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    files = sorted(tmp_path.glob("k_*.wav"))
    assert len(files) == 4 and all(Audio.load(f).frames == SR for f in files)  # no -d: the model's 1 s
    side = json.loads((tmp_path / "k_004.json").read_text())
    assert side["interpolation"]["t"] == 1 and side["interpolation"]["to"] == {"prompt": B, "seed": 2}
    r = _foley("generate", "--interpolate", "3", "17", "-n", "2", "-m", model, "-o", "s.wav", cwd=tmp_path)
    assert r.returncode == 2 and "give it" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _foley("generate", A, "-m", model, "-d", "3", "-o", "long.wav", cwd=tmp_path)
    assert r.returncode == 2 and "maximum of 1 s" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "long.wav").exists()


def test_missing_shipped_model_names_its_recipe(monkeypatch, tmp_path):
    from foley import registry

    monkeypatch.setenv("FOLEY_MODELS", str(tmp_path))
    registry.cards.cache_clear()
    try:
        with pytest.raises(Exception, match="bash recipes/starter-wavegan.sh"):
            registry.load("starter-wavegan")
    finally:
        registry.cards.cache_clear()


_NO_TORCH = """
import json, sys
from foley.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    assert not e.code, e.code
print(json.dumps([m for m in ("torch", "transformers", "diffusers") if m in sys.modules]))
"""


def test_onnx_backend_matches_torch_and_runs_without_torch(trained, tmp_path, monkeypatch):
    from foley.families.wavegan.pipeline import ONNX_FILE, WaveGANGenerator
    from foley.request import make_request

    folder, home = trained["folder"], tmp_path / "home"
    monkeypatch.setenv("FOLEY_HOME", str(home))
    ref = WaveGANGenerator.from_folder(folder)
    fast = WaveGANGenerator.from_folder(folder, backend="onnx")  # exports the generator and MiniLM into the cache
    assert (home / "onnx" / ref.weight_hash() / ONNX_FILE).is_file() and fast.net is None
    plain = None
    for req in (make_request(prompt=A, seed=5, duration=1.0, num_variations=3),
                make_request(prompt=A, seed=3, duration=0.5, num_variations=3, interpolate={"prompt": B})):
        want, got = ref.generate(req), fast.generate(req)
        plain = plain if plain is not None else want[0]
        assert [a.meta["seed"] for a in got] == [a.meta["seed"] for a in want]
        for a, b in zip(want, got, strict=True):
            assert a.frames == b.frames and np.abs(a.samples - b.samples).max() < 1e-4
    assert got[0].meta["model"]["runtime"] == {"backend": "onnx"} and "runtime" not in want[0].meta["model"]
    # with the cache made, a process making one-shots imports neither torch, transformers nor diffusers
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FOLEY_THREADS": "1", "FOLEY_HOME": str(home)}
    r = subprocess.run([sys.executable, "-c", _NO_TORCH, "generate", A, "-m", str(folder), "--seed", "5", "--backend",
                        "onnx", "-o", str(tmp_path / "o.wav")], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and json.loads(r.stdout.strip().splitlines()[-1]) == [], r.stderr[-2000:]
    np.testing.assert_allclose(Audio.load(tmp_path / "o.wav").samples, plain.samples, atol=1e-4)
    with pytest.raises(RequestError, match="unknown backend 'tpu'"):
        WaveGANGenerator.from_folder(folder, backend="tpu")
    with pytest.raises(RequestError, match="--onnx-dir needs --backend onnx"):
        WaveGANGenerator.from_folder(folder, onnx_dir=tmp_path)


@pytest.mark.parametrize("n", [1, 8, 15, 16, 17, 100, 130])
def test_numpy_normals_are_torchs(n):
    import torch

    from foley.rng import randn

    for seed in (0, 7, 2 ** 33 + 1):
        want = torch.randn(n, generator=torch.Generator().manual_seed(seed)).numpy()
        got = randn(seed, n)
        assert got.dtype == np.float32 and got.shape == (n,)
        if n < 16:  # torch's serial double-precision path: bit for bit
            assert np.array_equal(got, want)
        else:       # its AVX2 float approximations of log/sin/cos: within float rounding
            assert np.abs(got - want).max() < 5e-6


def test_torch_free_text_encoder_is_minilm(tmp_path, monkeypatch):
    from foley import onnxtext
    from foley.text import get_text_encoder

    monkeypatch.setenv("FOLEY_HOME", str(tmp_path))
    prompts = ["a dog barking", "", "Rain on a tin roof, at NIGHT!", "word " * 80]
    got, want = onnxtext.encoder(1)(prompts), get_text_encoder()(prompts)
    assert np.array_equal(got.mask, want.mask.numpy())  # the same tokens, truncated at 64 and padded alike
    assert np.abs(got.pooled - want.pooled.numpy()).max() < 1e-5
    assert np.abs(got.tokens - want.tokens.numpy()).max() < 1e-4
