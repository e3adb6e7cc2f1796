"""The control adapter of the latent-diffusion family (issue 15, item 2) on the tiny model: the curve planes it reads,
an untrained (zero-initialised) adapter changes no sample, a trained one writes its folder and card and steers the
sampler whenever a request carries curves (explicit, or the prompt's shape words through the prior, without
steering iterations), `--no-control-adapter` and an adapter trained for other weights leave it out, and a family
without adapters is refused in one line."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_thread")

RECIPE = {
    "name": "tiny-control", "seed": 0,
    "windows": {"windows": 12, "valid": 4, "chunk": 4},
    "control": {"steps": 6, "batch_size": 4, "warmup": 1, "lr": 5e-3},
    "train": {"threads": 1, "log_every": 1, "valid_every": 3, "save_every": 3},
}


def _copy_model(tiny_ldm, tmp_path, name="model"):
    _, folder = tiny_ldm
    dest = tmp_path / name
    shutil.copytree(folder, dest)
    return dest


@pytest.fixture(scope="module")
def controlled(tiny_ldm, tmp_path_factory):
    """(the tiny model with a trained control/ adapter, the run folder)."""
    from foley.families.ldm.control import train_control

    root, _ = tiny_ldm
    out = tmp_path_factory.mktemp("control")
    model = _copy_model(tiny_ldm, out)
    train_control(model, "tiny", [root / "m.jsonl"], copy.deepcopy(RECIPE), out / "run")
    return model, out / "run"


def test_planes_carry_values_strength_and_shape_only_where_asked():
    from foley import curves as cv
    from foley.families.ldm import controlnet as C

    rise = cv.from_words("pitch", "rise 200Hz->800Hz")             # absolute
    fade = cv.from_words("loudness", "fade out")                   # loudness: always a shape
    shape = cv.from_words("brightness", "brighter")                # words without numbers: relative
    assert shape.relative and not rise.relative
    width, spf = 10, 0.128
    p = C.target_planes({"pitch": rise, "loudness": fade, "brightness": shape}, duration=1.0, width=width, height=4,
                        seconds_per_frame=spf)
    assert p.shape == (C.CHANNELS, 4, width)
    names = list(cv.NAMES)
    val = {n: p[names.index(n), 0].numpy() for n in names}
    st = {n: p[len(names) + names.index(n), 0].numpy() for n in names}
    inside = int(np.ceil(1.0 / spf))  # frames past the sound's second carry nothing
    assert (st["pitch"][:inside] > 0).all() and (st["pitch"][inside:] == 0).all()
    assert val["pitch"][0] < -0.5 < 0.5 < val["pitch"][inside - 1]           # log2(Hz / 440): 200 Hz -> 800 Hz
    assert abs(float(np.average(val["loudness"][:inside], weights=st["loudness"][:inside]))) < 1e-5  # a shape
    assert abs(float(np.average(val["brightness"][:inside], weights=st["brightness"][:inside]))) < 1e-5
    assert val["loudness"][0] > val["loudness"][inside - 1]
    for n in ("density", "pan"):                                                # curves not given: absent
        assert not st[n].any() and not val[n].any()
    flags = p[2 * len(names):2 * len(names) + 2, 0, 0].tolist()               # relative flags: pitch, brightness
    assert flags == [0.0, 1.0]
    assert torch.allclose(p[-1, :, 0], torch.linspace(-1, 1, 4))               # the frequency position


def test_an_untrained_adapter_changes_no_sample(tiny_ldm, tmp_path):
    """ControlNet's outputs start at zero: the same sound with and without it, to the bit; the sidecar names it."""
    from diffusers import ControlNetModel

    import foley
    from foley.families.ldm import controlnet as C
    from foley.families.ldm.components import load_component, save_component
    from foley.hashing import base_hash

    model = _copy_model(tiny_ldm, tmp_path)
    net = ControlNetModel.from_unet(load_component("UNet2DConditionModel", model / "unet").float(),
                                    conditioning_channels=C.CHANNELS, conditioning_embedding_out_channels=(16,))
    save_component(net, model / "control")
    (model / "control" / "control.json").write_text(json.dumps(
        {"encoding": C.ENCODING, "base_weights": base_hash(model)}))
    gen = foley.load(str(model))
    ask = {"duration": 1.0, "seed": 3, "controls": ["pitch=rise 200Hz->800Hz"], "steer": 0}
    with_adapter = gen.generate("a tone", **ask)[0]
    without = gen.generate("a tone", **ask, control_adapter=False)[0]
    assert "adapter" in with_adapter.meta["control"] and "adapter" not in without.meta["control"]
    assert with_adapter.meta["control"]["method"].startswith("control adapter")
    np.testing.assert_array_equal(with_adapter.samples, without.samples)


def test_a_trained_adapter_steers_requests_with_curves(controlled):
    import foley

    model, run = controlled
    card = json.loads((model / "control" / "control.json").read_text())
    assert card["windows"] == 12 and card["heldout_windows"] == 4 and card["steps"] == 6
    assert card["curves"] == ["loudness", "brightness", "pitch", "density", "pan"] and card["base"] == "tiny"
    assert card["valid_loss"] is not None and card["valid_loss_without_curves"] is not None
    assert len(list((run / "windows").glob("chunk-*.pt"))) == 4 and (run / "windows" / "done.json").is_file()
    assert not (model / "control.partial").exists()
    gen = foley.load(str(model))
    ask = {"duration": 1.0, "seed": 3, "controls": ["pitch=rise 200Hz->800Hz"], "steer": 0}
    on = gen.generate("a tone", **ask)[0]
    off = gen.generate("a tone", **ask, control_adapter=False)[0]
    assert on.meta["control"]["adapter"]["steps"] == 6 and "adapter" not in off.meta["control"]
    assert np.abs(on.samples - off.samples).max() > 1e-4  # the trained adapter moves the sample
    # the prompt's shape words drive the adapter with no steering iterations; with --no-prior nothing does
    worded = gen.generate("a rising tone", duration=1.0, seed=3)[0]
    assert worded.meta["control"]["targets"]["pitch"]["source"].startswith("prior")
    assert "adapter" in worded.meta["control"] and "steering" not in worded.meta["control"]
    plain = gen.generate("a rising tone", duration=1.0, seed=3, prior=False)[0]
    assert "control" not in plain.meta
    # a prompt without shape words is sampled as before (no control record, the batch path)
    assert "control" not in gen.generate("a tone", duration=1.0, seed=3)[0].meta


def test_an_inaudible_sound_through_the_adapter_is_redrawn_and_its_seed_reproduces_it(controlled, monkeypatch):
    """The adapter path (one item at a time) redraws an inaudible sound as the batch path does; steered noise is
    the result of its iterations and is kept."""
    import foley
    from foley.generator import SEED_STRIDE

    model, _ = controlled
    gen = foley.load(str(model))
    ask = {"duration": 1.0, "controls": ["pitch=rise 200Hz->800Hz"], "steer": 0}
    again = gen.generate("a tone", seed=3 + SEED_STRIDE, **ask)[0]
    monkeypatch.setattr(gen, "silent_dbfs", 200.0)  # every sound counts as inaudible: all retries are used
    monkeypatch.setattr(gen, "silence_retries", 1)
    out = gen.generate("a tone", seed=3, **ask)[0]
    assert out.meta["redrawn"] == {"reason": "RMS below 200 dBFS", "from_seed": 3, "tries": 1, "silent": True}
    assert out.meta["seed"] == 3 + SEED_STRIDE and np.array_equal(out.samples, again.samples)
    assert "adapter" in out.meta["control"]
    steered = gen.generate("a tone", seed=3, **{**ask, "steer": 1})[0]
    assert "redrawn" not in steered.meta and steered.meta["seed"] == 3


def test_curves_over_several_windows_go_through_the_adapter_window_by_window(controlled):
    """A sound longer than one sampling window follows curves through the adapter, each window its own stretch of
    the planes; steering (one window's noise) is refused there, as is a long sound with curves and no adapter."""
    import foley
    from foley.errors import RequestError

    model, _ = controlled
    gen = foley.load(str(model))
    window = gen._window()
    d = round(window * 1.6, 2)
    ask = {"duration": d, "seed": 3, "controls": ["loudness=fade out", "pitch=rise 200Hz->800Hz"]}
    out = gen.generate("a tone", **ask)[0]
    c = out.meta["control"]
    assert abs(out.duration - d) < 1e-3 and out.meta["seed"] == 3 and "each long-form window" in c["method"]
    assert c["adapter"]["steps"] == 6 and set(c["adherence"]) == {"loudness", "pitch"} and "steering" not in c
    assert np.array_equal(gen.generate("a tone", **ask)[0].samples, out.samples)       # a seed reproduces it
    plain = gen.generate("a tone", duration=d, seed=3)[0]
    assert "control" not in plain.meta and np.abs(plain.samples - out.samples).max() > 1e-4
    worded = gen.generate("a tone slowly fading out", duration=d, seed=3)[0]          # the prior's curves too
    assert "adapter" in worded.meta["control"]
    with pytest.raises(RequestError, match="drop --steer"):
        gen.generate("a tone", **ask, steer=2)
    with pytest.raises(RequestError, match="drop --no-control-adapter"):
        gen.generate("a tone", **ask, control_adapter=False)


def test_the_onnx_backend_follows_curves_through_the_adapter(controlled, tmp_path, foley_cli):
    """--backend onnx: the adapter runs in torch beside the controlled UNet graph (exported by `foley export onnx`,
    checked against torch there); the sound matches torch's; steering is refused in one line, and --control without
    --steer uses the adapter alone."""
    pytest.importorskip("onnxruntime")
    import foley
    from foley.errors import RequestError

    model, _ = controlled
    r = foley_cli("export", "onnx", model, "-o", tmp_path / "x")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x" / "unet_control.onnx").is_file()
    ask = {"duration": 1.0, "seed": 3, "controls": ["pitch=rise 200Hz->800Hz"], "steer": 0}
    ref = foley.load(str(model)).generate("a tone", **ask)[0]
    fast = foley.load(str(model), backend="onnx", onnx_dir=tmp_path / "x")
    out = fast.generate("a tone", **ask)[0]
    assert out.meta["model"]["runtime"] == {"backend": "onnx"}
    assert "adapter" in out.meta["control"]
    assert np.abs(out.samples - ref.samples).max() < 1e-2 * max(np.abs(ref.samples).max(), 1e-3)
    plain = fast.generate("a tone", duration=1.0, seed=3)[0]
    assert np.abs(plain.samples - out.samples).max() > 1e-4                      # the adapter moved the sound
    default = fast.generate("a tone", duration=1.0, seed=3, controls=["pitch=rise 200Hz->800Hz"])[0]
    assert "steering" not in default.meta["control"] and np.array_equal(default.samples, out.samples)
    with pytest.raises(RequestError, match="needs --backend torch.*--steer 0"):
        fast.generate("a tone", **{**ask, "steer": 2})


def test_steering_runs_through_the_adapter(controlled):
    import foley

    model, _ = controlled
    out = foley.load(str(model)).generate("a tone", duration=1.0, seed=3, controls=["loudness=fade out"], steer=2)[0]
    c = out.meta["control"]
    assert "adapter" in c and len(c["steering"]["losses"]) == 3 and "+ DITTO" in c["method"]


def test_an_adapter_trained_for_other_weights_is_left_out(controlled, tmp_path):
    """A folder that carries another model's adapter (a full fine-tune copies its base's folder) samples without it."""
    import foley

    model, _ = controlled
    other = tmp_path / "other"
    shutil.copytree(model, other)
    card = json.loads((other / "control" / "control.json").read_text())
    (other / "control" / "control.json").write_text(json.dumps({**card, "base_weights": "000000000000"}))
    out = foley.load(str(other)).generate("a tone", duration=1.0, seed=3, controls=["pitch=rise"], steer=0)[0]
    assert "adapter" not in out.meta["control"]
    assert "control" not in foley.load(str(other)).generate("a rising tone", duration=1.0, seed=3)[0].meta
    from foley.cli.models import _control_line  # `foley models info` says so

    assert _control_line(model) == "adapter over loudness, brightness, pitch, density, pan, 6 steps"
    assert "not used" in _control_line(other) and _control_line(model.parent / "nothing") is None


def test_cli_refuses_a_family_without_adapters_and_an_existing_adapter(controlled, tmp_path):
    model, _ = controlled
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    m = tmp_path / "m.jsonl"
    m.write_text("")
    r = subprocess.run([sys.executable, "-m", "foley", "train", "control", "--from", "starter-wavegan", "--data",
                        str(m)], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "cannot take a control adapter" in r.stderr and "ldm, lm" in r.stderr
    r = subprocess.run([sys.executable, "-m", "foley", "train", "control", "--from", str(model), "--data", str(m)],
                       capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "already exists" in r.stderr and "--force" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_eval_control_can_leave_the_prior_and_the_adapter_out(controlled, tmp_path):
    """`foley eval control --no-prior / --no-control-adapter` (v-old vs v-new side by side) record what they left
    out, and change the sounds only of the pairs whose words make curves."""
    model, _ = controlled
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    res = {}
    for flag in ("", "--no-control-adapter", "--steer=1"):
        out = tmp_path / (flag.strip("-").replace("=", "") or "default")
        cmd = [sys.executable, "-m", "foley", "--threads", "1", "eval", "control", "--model", str(model), "--seeds",
               "1", "--duration", "1", "-o", str(out)] + ([flag] if flag else [])
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        res[flag] = json.loads((out / "control.json").read_text())
    assert res["--no-control-adapter"]["generation_settings"] == {"control_adapter": False}
    assert res[""]["generation_settings"] == {}
    # (the other prompts of a batch of 8 change with the items sampled apart: float rounding, ~1e-6)
    moved = {t["low_prompt"]: abs(t["low"] - u["low"]) for t, u in zip(res[""]["trials"], res[
        "--no-control-adapter"]["trials"], strict=True)}
    assert moved["a hum dwindling away"] > 0.05               # "dwindling away": a fade-out through the adapter
    assert moved["a sub-bass hum"] < 1e-3 and moved["a pure-toned hum"] < 1e-3  # no shape words: the same sound
    # --steer N steers the prompts the prior gives curves, and only those
    assert res["--steer=1"]["generation_settings"] == {"steer": 1}
    steered = {t["low_prompt"]: abs(t["low"] - u["low"]) for t, u in zip(res[""]["trials"], res["--steer=1"][
        "trials"], strict=True)}
    assert steered["a hum dwindling away"] > 1e-3 and steered["a sub-bass hum"] < 1e-3
