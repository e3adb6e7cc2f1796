"""Latent diffusion with dynamic int8 and with the UNet in onnxruntime (foley/families/ldm/accel.py), on the tiny
model: the same request and seed against the float torch model. No timing here: bench/onnx_int8.py measures."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def reference(tiny_ldm):
    import foley

    _, folder = tiny_ldm
    gen = foley.load(str(folder))
    return folder, gen, gen.generate("a tone at 220 hertz", duration=2.0, seed=5, steps=3)[0].samples


def test_onnx_export_and_backend_match_torch(reference, tmp_path, foley_cli):
    import foley
    from foley.families.ldm.accel import ONNX_META, OnnxUNet

    folder, gen, ref = reference
    r = foley_cli("export", "onnx", folder, "-o", tmp_path / "x")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x" / "unet.onnx").is_file()
    assert json.loads((tmp_path / "x" / ONNX_META).read_text())["weights_hash"] == gen.model.weights_hash
    fast = foley.load(str(folder), backend="onnx", onnx_dir=tmp_path / "x")
    assert isinstance(fast.model.unet, OnnxUNet)
    out = fast.generate("a tone at 220 hertz", duration=2.0, seed=5, steps=3)[0].samples
    assert out.shape == ref.shape and np.abs(out - ref).max() < 1e-3
    # a batch of two prompts of different lengths: padded tokens, another batch size and width than exported
    a, b = fast.generate(["a tone", "a steady tone at 880 hertz, quiet"], duration=3.0, seed=1, steps=2)
    ra, rb = gen.generate(["a tone", "a steady tone at 880 hertz, quiet"], duration=3.0, seed=1, steps=2)
    assert np.abs(a.samples - ra.samples).max() < 1e-3 and np.abs(b.samples - rb.samples).max() < 1e-3


def test_cli_generate_with_backend_and_quantize(reference, tmp_path, foley_cli):
    folder, _, ref = reference
    r = foley_cli("export", "onnx", folder, "-o", tmp_path / "x")
    assert r.returncode == 0, r.stderr
    onnx = ["--backend", "onnx", "--onnx-dir", tmp_path / "x"]
    for extra, name in ((onnx, "o.wav"), (["--quantize", "int8"], "q.wav")):
        r = foley_cli("generate", "a tone at 220 hertz", "-m", folder, "-d", "2", "--seed", "5", "--steps", "3",
                      "-o", tmp_path / name, *extra)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / name).is_file()


def test_int8_quantises_linear_layers_and_stays_close(reference):
    import torch

    import foley

    folder, _, ref = reference
    q = foley.load(str(folder), quantize="int8")
    kinds = {type(m).__module__ for m in q.model.unet.modules()}
    assert any("quantized" in k for k in kinds)
    assert not any(type(m) is torch.nn.Linear for m in q.model.unet.modules())
    out = q.generate("a tone at 220 hertz", duration=2.0, seed=5, steps=3)[0].samples
    assert out.shape == ref.shape and np.isfinite(out).all()
    assert np.abs(out - ref).max() < 0.5 * max(np.abs(ref).max(), 1e-3) + 0.05  # int8: close, not equal


@pytest.mark.parametrize("args,message", [
    (["--quantize", "int4"], "unknown quantisation 'int4'"),
    (["--backend", "tensorrt"], "unknown backend 'tensorrt'"),
    (["--quantize", "int8", "--backend", "onnx"], "choose one of"),
])
def test_bad_options_are_one_line(tiny_ldm, tmp_path, foley_cli, args, message):
    _, folder = tiny_ldm
    r = foley_cli("generate", "a tone", "-m", folder, "-d", "1", "-o", tmp_path / "a.wav", *args)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "a.wav").exists()


def test_onnx_dir_without_export_is_refused(tiny_ldm, tmp_path, foley_cli):
    _, folder = tiny_ldm
    r = foley_cli("generate", "a tone", "-m", folder, "-d", "1", "-o", tmp_path / "a.wav", "--backend", "onnx",
                  "--onnx-dir", tmp_path / "none")
    assert r.returncode == 2 and "foley export onnx" in r.stderr


@pytest.fixture(scope="module")
def neural(tiny_ldm, tmp_path_factory):
    """The tiny model with a small neural vocoder (random, seeded) in place of Griffin-Lim: what the torch-free
    path needs (the shipped starter has one)."""
    import shutil

    import torch

    from foley.families.ldm.model import FoleyConfig
    from foley.vocoder.neural import NeuralVocoder

    _, folder = tiny_ldm
    dest = tmp_path_factory.mktemp("neural") / "model"
    shutil.copytree(folder, dest)
    torch.manual_seed(0)
    voc = NeuralVocoder(mel=FoleyConfig.load(dest / "foley.json").mel.to_dict(), dim=16, hidden_dim=32, num_layers=1)
    with torch.no_grad():
        voc.head.weight.normal_(0, 0.05)  # a phase that is not zero, magnitudes that move
    voc.save_pretrained(dest / "vocoder")
    index = json.loads((dest / "model_index.json").read_text())
    index["vocoder"] = ["foley.vocoder.neural", "NeuralVocoder"]
    (dest / "model_index.json").write_text(json.dumps(index))
    return dest


_TORCH_FREE = """
import json, sys
import foley
gen = foley.load(sys.argv[1], backend="onnx")
a = gen.generate("a tone at 220 hertz", duration=2.0, seed=5)[0]
a.save(sys.argv[2])
print(json.dumps([type(gen).__name__, [m for m in ("torch", "transformers", "diffusers") if m in sys.modules]]))
"""


def test_torch_free_text_to_audio_matches_torch(neural, tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    import foley
    from foley.audio import Audio
    from foley.families.ldm.pipeline import OnnxLDMGenerator
    from foley.families.ldm.runtime import META_FILE

    home = tmp_path / "home"
    monkeypatch.setenv("FOLEY_HOME", str(home))
    torch_gen = foley.load(str(neural))
    first = foley.load(str(neural), backend="onnx")  # exports the graphs and the default solver's table
    assert isinstance(first, OnnxLDMGenerator)
    assert (home / "onnx" / torch_gen.model.weights_hash / META_FILE).is_file()
    fast = foley.load(str(neural), backend="onnx")
    assert fast._model is None  # nothing of torch loaded
    prompts = ["a tone", "a steady tone at 880 hertz, quiet"]
    for kw in ({"steps": 3}, {"steps": 4, "scheduler": "ddim", "guidance_scale": 1.0},
               {"steps": 5, "negative_prompt": "noise"}):
        want = torch_gen.generate(prompts, duration=1.5, seed=1, **kw)
        got = fast.generate(prompts, duration=1.5, seed=1, **kw)
        for a, b in zip(want, got, strict=True):
            assert a.samples.shape == b.samples.shape and np.abs(a.samples - b.samples).max() < 1e-3
    assert fast._model is None and got[0].meta["model"]["runtime"] == {"backend": "onnx"}
    assert (home / "onnx" / torch_gen.model.weights_hash / "schedule-ddim-4.json").is_file()  # kept for next time
    # a prompt's shape words on a folder without a control adapter: still nothing of torch
    fast.generate("a steady tone slowly fading out", duration=1.5, seed=1)
    assert fast._model is None
    # other requests take the hybrid path (torch, the UNet in onnxruntime), loaded when first needed
    src = torch_gen.generate("a tone", duration=1.5, seed=2)[0]
    edit = {"task": "inpaint", "audio": src, "prompt": "a low hum", "mask_start": 0.5, "mask_end": 1.0, "seed": 3}
    np.testing.assert_allclose(fast.edit(**edit)[0].samples, torch_gen.edit(**edit)[0].samples, atol=1e-3)
    assert fast._model is not None
    # a fresh process with the graphs made imports neither torch, transformers nor diffusers
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FOLEY_THREADS": "1", "FOLEY_HOME": str(home)}
    r = subprocess.run([sys.executable, "-c", _TORCH_FREE, str(neural), str(tmp_path / "o.wav")], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == ["OnnxLDMGenerator", []]
    ref = torch_gen.generate("a tone at 220 hertz", duration=2.0, seed=5)[0]
    np.testing.assert_allclose(Audio.load(tmp_path / "o.wav").samples, ref.samples, atol=1e-3)


def test_recorded_solver_steps_are_diffusers(tiny_ldm):
    """The linear coefficients read off diffusers' DDIM and DPM-Solver++ replay them on random inputs; an SDE
    solver (random noise in each step) is refused in one line."""
    from foley.errors import ModelError
    from foley.families.ldm.accel import record_schedule
    from foley.families.ldm.model import LatentAudioModel

    _, folder = tiny_ldm
    cfg = LatentAudioModel.from_folder(folder).scheduler_config
    for solver, steps in (("dpm++", 20), ("dpm++", 3), ("ddim", 7)):
        table = record_schedule(cfg, solver, steps)  # raises when its own replay check fails
        assert len(table["timesteps"]) == steps and len(table["coef"]) == steps
    with pytest.raises(ModelError, match="hybrid path"):
        record_schedule(cfg, "dpm++sde", 5)
