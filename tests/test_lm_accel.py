"""The token LM's decoder step in onnxruntime (foley/families/lm/accel.py) on tiny random models: the step's logits
against the torch step along a real window (guidance's fully masked half, a prefilled prompt, growing past), seeds,
int8, sidecar, CLI and refusals. No timing here: bench/lm_backends.py measures."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from foley.errors import ModelError, RequestError  # noqa: E402
from tests.test_lm import build_lm  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_lm(tmp_path_factory.mktemp("lm") / "tiny")


@pytest.fixture(scope="module")
def exported(folder, tmp_path_factory):
    from foley.families.lm.accel import ONNX_FILE, ONNX_META
    from foley.families.lm.pipeline import LMGenerator

    out = tmp_path_factory.mktemp("onnx")
    gen = LMGenerator.from_folder(folder)
    path = gen.export_onnx(out)
    assert path == out / ONNX_FILE and path.is_file()
    assert json.loads((out / ONNX_META).read_text())["weights_hash"] == gen.lm.weight_hash()
    return out


@pytest.mark.parametrize("case", ["guided", "plain", "prompt"])
def test_onnx_step_logits_follow_the_torch_step(folder, exported, case):
    """Step by step over a window, the onnxruntime step's logits equal the torch step's within float rounding: the
    unconditional half's fully masked text (torch's attention gives 0 there, not NaN), a past that grows to the
    window's end, and a prompt prefilled through the torch decoder."""
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    from foley.families.lm.accel import OnnxStep, use_onnx
    from foley.families.lm.decode import Step
    from foley.families.lm.pipeline import LMGenerator

    lm = LMGenerator.from_folder(folder).lm
    use_onnx(lm, exported)
    k, guided = lm.num_codebooks, case != "plain"
    states, mask = lm.condition(["a tone"], guidance=guided)
    if guided:
        assert not mask[1].any()  # the unconditional half has no text token at all
    caches = [None, None]
    cols = torch.randint(0, 64, ((2 if guided else 1) * k, 12), generator=torch.Generator().manual_seed(3))
    start = 0
    if case == "prompt":
        start = 5
        for i in range(2):
            caches[i] = EncoderDecoderCache(DynamicCache(config=lm.decoder.config),
                                            DynamicCache(config=lm.decoder.config))
            with torch.no_grad():
                lm.decoder(input_ids=cols[:, :start], encoder_hidden_states=states, encoder_attention_mask=mask,
                           cache=caches[i], use_cache=True)
    with torch.no_grad():
        ref = Step(lm.decoder, states, mask, 12, caches[0])
        got = OnnxStep(lm.onnx_session, lm.decoder, states, mask, 12, caches[1])
        assert got.filled == ref.filled == start
        for t in range(start, 12):
            a, b = ref.logits(cols[:, t]), got.logits(cols[:, t])
            assert b.shape == a.shape and b.dtype == torch.float32
            assert torch.isfinite(b).all(), t
            assert (a - b).abs().max() < 1e-4 * max(1.0, float(a.abs().max())), t


def test_onnx_backend_generates_seeded_sounds_and_records_its_runtime(folder, exported):
    """Same seed, same sound within the backend (generate and stream agree); the sidecar names the runtime, since
    the codes differ from the torch backend's."""
    import foley

    gen = foley.load(str(folder), backend="onnx", onnx_dir=exported)
    assert gen.runtime() == {"backend": "onnx"}
    a = gen.generate("a tone", duration=1.0, seed=4)[0]
    b = gen.generate("a tone", duration=1.0, seed=4)[0]
    assert np.array_equal(a.samples, b.samples) and a.frames == 16000
    streamed = np.concatenate([c.samples for c in gen.stream("a tone", duration=1.0, seed=4)], axis=-1)
    assert np.array_equal(streamed, a.samples)
    long = gen.generate("a tone", duration=1.5, seed=2)[0]  # past the 0.6 s window: prompted windows, prefilled
    assert long.frames == 24000 and np.isfinite(long.samples).all()
    torch_gen = foley.load(str(folder))
    assert torch_gen.runtime() == {}


def test_int8_step_is_made_once_and_generates(folder, exported):
    from foley.families.lm.accel import ONNX_INT8
    from foley.families.lm.pipeline import LMGenerator

    gen = LMGenerator.from_folder(folder, backend="onnx", quantize="int8", onnx_dir=exported)
    assert (exported / ONNX_INT8).is_file() and gen.runtime() == {"backend": "onnx", "quantize": "int8"}
    out = gen.generate("a tone", duration=1.0, seed=4)[0]
    assert out.frames == 16000 and np.isfinite(out.samples).all()
    made = (exported / ONNX_INT8).stat().st_mtime_ns
    LMGenerator.from_folder(folder, backend="onnx", quantize="int8", onnx_dir=exported)
    assert (exported / ONNX_INT8).stat().st_mtime_ns == made  # quantised once, then read


def test_cli_export_generate_and_refusals(folder, exported, tmp_path, foley_cli):
    r = foley_cli("export", "onnx", folder, "-o", tmp_path / "x")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x" / "lm_step.onnx").is_file()
    r = foley_cli("generate", "a tone", "-m", folder, "-d", "0.5", "--seed", "2", "-o", tmp_path / "o.wav",
                  "--backend", "onnx", "--onnx-dir", tmp_path / "x", "--quantize", "int8")
    assert r.returncode == 0, r.stderr
    side = json.loads((tmp_path / "o.json").read_text())
    assert side["model"]["runtime"] == {"backend": "onnx", "quantize": "int8"}
    for extra, words in ((["--quantize", "int8"], "add --backend onnx"),
                         (["--backend", "onnx", "--onnx-dir", tmp_path / "none"], "foley export onnx"),
                         (["--backend", "tpu"], "unknown backend")):
        r = foley_cli("generate", "a tone", "-m", folder, "-d", "0.5", "-o", tmp_path / "bad.wav", *extra)
        assert r.returncode != 0 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "bad.wav").exists()


def test_refusals_in_the_api(folder, exported, monkeypatch):
    from foley.families.lm.pipeline import LMGenerator

    gen = LMGenerator.from_folder(folder, backend="onnx", onnx_dir=exported)
    with pytest.raises(RequestError, match="LoRA"):
        gen.lora_target()
    monkeypatch.setenv("FOLEY_LM_LOOP", "generate")
    with pytest.raises(ModelError, match="--backend onnx runs the fast sampling loop"):
        gen.generate("a tone", duration=0.3, seed=1)
    other = build_lm(exported.parent / "other", seed=5)
    with pytest.raises(ModelError, match="other weights"):
        LMGenerator.from_folder(other, backend="onnx", onnx_dir=exported)
