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
