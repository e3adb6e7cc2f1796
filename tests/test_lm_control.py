"""Curve and melody conditioning of the token LM (issue 15, item 3) on a tiny LM: the features it reads, the windows
and training stages write the adapter and its card, an untrained (zero-initialised) adapter gives the identical sound
as none, a trained one changes it, the prompt's shape words use it, `--no-control-adapter` and an adapter trained for
other weights leave it out, `steer` is refused, and the melody task works with an adapter and is refused without."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from foley.errors import RequestError  # noqa: E402
from tests.ldm_tiny import tiny_corpus  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

RECIPE = {
    "name": "tiny-lm-control", "seed": 0,
    "windows": {"windows": 12, "valid": 4, "chunk": 4},
    "control": {"steps": 6, "batch_size": 4, "warmup": 1, "lr": 5e-2, "rank": 4, "hidden": 16, "none": 0.25},
    "train": {"threads": 1, "log_every": 1, "valid_every": 3, "save_every": 3},
}
ASK = {"duration": 1.0, "seed": 3, "controls": ["pitch=rise 200Hz->800Hz", "loudness=fade out"]}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from tests.test_lm import build_lm

    root = tmp_path_factory.mktemp("lmctl")
    return build_lm(root / "tiny"), tiny_corpus(root / "data")


@pytest.fixture(scope="module")
def controlled(base, tmp_path_factory):
    """(the tiny LM with a trained control/ adapter, the run folder)."""
    from foley.families.lm.control import train_control

    folder, manifest = base
    out = tmp_path_factory.mktemp("lmctl-run")
    model = out / "model"
    shutil.copytree(folder, model)
    train_control(model, "tiny-lm", [manifest], copy.deepcopy(RECIPE), out / "run", say=lambda s: None)
    return model, out / "run"


def test_features_carry_curves_shapes_and_chroma():
    from foley import curves as cv
    from foley.audio import Audio
    from foley.families.lm import conditioning as C

    rise = cv.from_words("pitch", "rise 200Hz->800Hz")   # absolute
    fade = cv.from_words("loudness", "fade out")         # always a shape
    rate, t = 16000, np.arange(16000) / 16000
    a440 = Audio(np.stack([0.5 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32), rate)  # A for one second
    f = C.target_features({"pitch": rise, "loudness": fade}, duration=2.0, melody=a440)
    g = C.grid_points(2.0)
    assert f.shape == (C.FEATURES, g) and g == 16
    names = list(cv.NAMES)
    val = {n: f[names.index(n)] for n in names}
    st = {n: f[len(names) + names.index(n)] for n in names}
    assert (st["pitch"] > 0).all() and val["pitch"][0] < -0.5 < 0.5 < val["pitch"][-1]   # log2(Hz / 440)
    assert abs(float(np.average(val["loudness"], weights=st["loudness"]))) < 1e-5        # centred
    assert not st["density"].any() and not val["pan"].any()                              # not given: absent
    assert f[2 * len(names):2 * len(names) + 2, 0].tolist() == [0.0, 0.0]               # absolute pitch, no brightness
    chroma, strength = f[C.CHROMA], f[-1]
    assert (chroma[9, :8] > 0.9).all() and (strength[:8] > 0.9).all()                    # A = pitch class 9
    assert not strength[9:].any() and not chroma[:, 9:].any()                            # past the melody's end
    ok = cv.melody_adherence(a440, a440)
    assert ok["pitch_class_agreement"] == 1.0 and ok["chroma_correlation"] > 0.99


def test_an_untrained_adapter_changes_no_sound(base, tmp_path):
    """Zero-initialised output and LoRA: the same sound with and without it, to the bit; the sidecar names it."""
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from safetensors.torch import save_file

    import foley
    from foley.families.lm import conditioning as C
    from foley.families.lm.model import TokenLM
    from foley.hashing import folder_hash

    folder, _ = base
    model = tmp_path / "model"
    shutil.copytree(folder, model)
    lm = TokenLM.from_folder(model)
    d = model / C.CONTROL_DIR
    d.mkdir()
    cond = C.Conditioner(lm.decoder.config.hidden_size, lm.cfg.frame_rate, hidden=8)
    save_file({k: v.contiguous() for k, v in cond.state_dict().items()}, str(d / C.CONDITIONER))
    lora = LoraConfig(r=2, lora_alpha=2, target_modules=list(C.LORA_TARGETS))
    dec = inject_adapter_in_model(lora, copy.deepcopy(lm.decoder))
    save_file(get_peft_model_state_dict(dec), str(d / C.LORA))
    cfg = lora.to_dict()
    cfg["target_modules"] = sorted(cfg["target_modules"])
    (d / C.LORA_CONFIG).write_text(json.dumps(cfg, default=str))
    (d / C.CONTROL_JSON).write_text(json.dumps({"encoding": C.ENCODING, "conditioner": cond.config(),
                                                "base_weights": folder_hash(model, exclude=C.NOT_BASE)}))
    gen = foley.load(str(model))
    assert "melody" in gen.card.tasks and gen.capabilities.follows and not gen.capabilities.steers
    with_adapter = gen.generate("a tone", **ASK)[0]
    without = gen.generate("a tone", **ASK, control_adapter=False)[0]
    assert "adapter" in with_adapter.meta["control"] and "adapter" not in without.meta["control"]
    assert with_adapter.meta["control"]["method"].startswith("control adapter")
    assert without.meta["control"]["method"].startswith("none")
    np.testing.assert_array_equal(with_adapter.samples, without.samples)
    plain = gen.generate("a tone", duration=1.0, seed=3)[0]
    np.testing.assert_array_equal(plain.samples, without.samples)
    assert "control" not in plain.meta
    # long-form (past the 0.6 s window) and the transformers loop take the same frames
    long = gen.generate("a tone", **{**ASK, "duration": 1.5})[0]
    np.testing.assert_array_equal(long.samples, gen.generate("a tone", duration=1.5, seed=3)[0].samples)


def test_training_writes_the_adapter_and_its_card(controlled, base):
    from foley.families.lm import conditioning as C
    from foley.hashing import folder_hash

    model, run = controlled
    card = json.loads((model / "control" / "control.json").read_text())
    assert card["windows"] == 12 and card["heldout_windows"] == 4 and card["steps"] == 6
    assert card["curves"] == ["loudness", "brightness", "pitch", "density", "pan"] and card["base"] == "tiny-lm"
    assert card["melody"] == "chroma" and card["base_weights"] == folder_hash(base[0])
    for k in ("valid_loss", "valid_loss_curves_only", "valid_loss_without_conditioning"):
        assert isinstance(card[k], float)
    assert len(list((run / "windows").glob("chunk-*.pt"))) == 4 and (run / "windows" / "done.json").is_file()
    chunk = torch.load(run / "windows" / "chunk-00000.pt", weights_only=True)
    assert chunk["codes"].shape[1:] == (4, 30) and chunk["chroma"].shape[1:] == (12, C.grid_points(0.6))
    assert {p.name for p in (model / "control").iterdir()} >= {C.CONDITIONER, C.LORA, C.LORA_CONFIG, C.CONTROL_JSON}
    assert not (model / "control.partial").exists()
    assert C.has_adapter(model)


def test_a_trained_adapter_changes_the_sound_and_prior_words_use_it(controlled):
    import foley

    model, _ = controlled
    gen = foley.load(str(model))
    on = gen.generate("a tone", **ASK)[0]
    off = gen.generate("a tone", **ASK, control_adapter=False)[0]
    assert on.meta["control"]["adapter"]["steps"] == 6 and "adapter" not in off.meta["control"]
    assert set(on.meta["control"]["adherence"]) == {"pitch", "loudness"}
    assert not np.array_equal(on.samples, off.samples)
    # the prompt's shape words drive the adapter; with prior=False nothing does, as without words
    worded = gen.generate("a rising tone", duration=1.0, seed=3)[0]
    assert worded.meta["control"]["targets"]["pitch"]["source"].startswith("prior")
    assert "adapter" in worded.meta["control"] and "steering" not in worded.meta["control"]
    assert "control" not in gen.generate("a rising tone", duration=1.0, seed=3, prior=False)[0].meta
    assert "control" not in gen.generate("a tone", duration=1.0, seed=3)[0].meta
    # streamed chunks carry the same conditioning: they join to the generated sound
    streamed = np.concatenate([c.samples for c in gen.stream("a tone", **ASK)], axis=-1)
    np.testing.assert_array_equal(streamed, on.samples)


def test_steer_and_strength_are_refused_naming_the_models_that_steer(controlled):
    import foley

    model, _ = controlled
    gen = foley.load(str(model))
    with pytest.raises(RequestError, match="cannot steer") as e:
        gen.generate("a tone", **ASK, steer=5)
    assert "\n" not in str(e.value) and "starter" in str(e.value)
    with pytest.raises(RequestError, match="no control strength"):
        gen.generate("a tone", **ASK, control_strength={"pitch": 2})
    assert "control" in gen.generate("a tone", **ASK, steer=0)[0].meta  # 0 iterations: the adapter alone


def test_melody_task_with_an_adapter(controlled, tmp_path):
    import foley
    from foley.audio import Audio

    model, _ = controlled
    t = np.arange(24000) / 16000
    hum = Audio((0.4 * np.sin(2 * np.pi * np.where(t < 0.75, 262.0, 392.0) * t)).astype(np.float32)[None], 16000)
    gen = foley.load(str(model))
    out = gen.edit(hum, "a flute", task="melody", seed=1)
    assert len(out) == 1 and abs(out[0].duration - 1.5) < 1e-3                   # the reference's length
    m = out[0].meta["control"]
    assert m["melody"]["seconds"] == 1.5 and "pitch_class_agreement" in m["melody"] and "adapter" in m
    again = gen.edit(hum, "a flute", task="melody", seed=1, duration=1.0)[0]
    assert abs(again.duration - 1.0) < 1e-3
    with pytest.raises(RequestError, match="drop --no-control-adapter"):
        gen.edit(hum, "a flute", task="melody", control_adapter=False)
    with pytest.raises(RequestError, match="strength"):
        gen.edit(hum, "a flute", task="melody", strength=0.5)


def test_without_an_adapter_or_with_another_models_adapter_the_lm_is_as_before(controlled, base, tmp_path,
                                                                                foley_cli, write_audio):
    import foley

    folder, _ = base
    model, _ = controlled
    other = tmp_path / "other"
    shutil.copytree(model, other)
    card = json.loads((other / "control" / "control.json").read_text())
    (other / "control" / "control.json").write_text(json.dumps({**card, "base_weights": "000000000000"}))
    for f in (folder, other):
        gen = foley.load(str(f))
        assert "melody" not in gen.card.tasks and not gen.capabilities.follows
        with pytest.raises(RequestError, match="cannot follow control curves") as e:
            gen.generate("a tone", **ASK)
        assert "\n" not in str(e.value)
        assert "control" not in gen.generate("a rising tone", duration=1.0, seed=3)[0].meta
        with pytest.raises(RequestError, match="cannot do 'melody'"):
            gen.edit(tmp_path / "x.wav" if (tmp_path / "x.wav").exists() else _wav(write_audio, tmp_path),
                     "a flute", task="melody")
    np.testing.assert_array_equal(foley.load(str(other)).generate("a rising tone", duration=1.0, seed=3)[0].samples,
                                  foley.load(str(folder)).generate("a rising tone", duration=1.0, seed=3)[0].samples)
    # the CLI: one line, non-zero exit, no file
    ref = _wav(write_audio, tmp_path)
    r = foley_cli("edit", ref, "a flute", "-t", "melody", "-m", folder, "-o", tmp_path / "m.wav")
    assert r.returncode != 0 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "melody" in r.stderr and not (tmp_path / "m.wav").exists()
    r = foley_cli("edit", ref, "a flute", "-t", "melody", "-m", model, "-o", tmp_path / "m.wav", "--seed", "1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m.wav").exists()
    r = foley_cli("generate", "a tone", "-m", model, "-d", "1", "--control", "pitch=rise", "--steer", "3",
                  "-o", tmp_path / "s.wav")
    assert r.returncode != 0 and "cannot steer" in r.stderr and not (tmp_path / "s.wav").exists()
    r = foley_cli("generate", "a tone", "-m", model, "-d", "1", "--control", "pitch=rise", "--no-control-adapter",
                  "-o", tmp_path / "n.wav", "--seed", "2")
    assert r.returncode == 0, r.stderr
    side = json.loads((tmp_path / "n.json").read_text())
    assert "adapter" not in side["control"]


def _wav(write_audio, tmp_path):
    path = tmp_path / "x.wav"
    write_audio(path, seconds=1.0, freq=330.0)
    return path


def test_the_shipped_starter_lm_follows_curves_and_melodies_without_steering():
    from foley.paths import models_dir
    from foley.registry import check_request, describe, supporting
    from foley.request import make_request

    if not (models_dir() / "starter-lm" / "control" / "control.json").is_file():
        pytest.skip("models/starter-lm/control not shipped")
    card, caps = describe("starter-lm")
    assert "melody" in card.tasks and caps.follows and not caps.steers
    assert "starter-lm" in supporting("controls") and "starter-lm" not in supporting("steer")
    assert "starter-lm" in supporting("melody")
    check_request("starter-lm", make_request(prompt="a tone", controls=["pitch=rise"], steer=0))
    with pytest.raises(RequestError, match="cannot steer.*models that can steer: starter"):
        check_request("starter-lm", make_request(prompt="a tone", controls=["pitch=rise"], steer=10))
    with pytest.raises(RequestError, match="cannot follow texture: .*steering only; models that can: starter"):
        check_request("starter-lm", make_request(prompt="a tone", controls=["texture=noisy"]))
    import foley

    out = foley.load("starter-lm").generate("a hum gliding upward", duration=1.0, seed=0)[0]
    assert out.meta["control"]["targets"]["pitch"]["source"].startswith("prior")
    assert out.meta["control"]["adapter"]["steps"] == json.loads(
        (models_dir() / "starter-lm" / "control" / "control.json").read_text())["steps"]


def test_server_and_studio_offer_the_melody_edit_for_a_model_with_an_adapter(controlled, base, tmp_path):
    """REST: task melody on an uploaded hum gives a new sound of the input's length (or the asked one) whose sidecar
    carries the melody's adherence; a model without an adapter is refused at the request, naming the one that can."""
    from fastapi.testclient import TestClient

    from foley.server import Settings, create_app
    from tests.test_server import wait, wav_bytes

    model, _ = controlled
    folder, _ = base
    with TestClient(create_app(Settings(data=tmp_path / "serve", models={"ctl": str(model), "plain": str(folder)},
                                        default_model="plain"))) as c:
        tasks = {m["name"]: m["tasks"] for m in c.get("/v1/models").json()["models"]}
        assert "melody" in tasks["ctl"] and "melody" not in tasks["plain"]
        hum = wav_bytes(1.5)
        r = c.post("/v1/edits", data={"task": "melody", "prompt": "a flute", "model": "plain", "seed": 1},
                   files={"file": ("hum.wav", hum, "audio/wav")})
        assert r.status_code == 422 and "ctl" in r.json()["detail"], r.text
        r = c.post("/v1/edits", data={"task": "melody", "prompt": "a flute", "model": "ctl", "seed": 1},
                   files={"file": ("hum.wav", hum, "audio/wav")})
        assert r.status_code == 202, r.text
        job = wait(c, r.json()["id"])
        assert job["status"] == "done", job["error"]
        assert job["outputs"][0]["duration"] == pytest.approx(1.5, abs=1e-3)
        r = c.post("/v1/edits", data={"task": "melody", "prompt": "a flute", "model": "ctl", "seed": 1,
                                      "duration": 1.0, "source_job": job["id"]})
        done = wait(c, r.json()["id"])
        assert done["status"] == "done" and done["outputs"][0]["duration"] == pytest.approx(1.0, abs=1e-3)
        melody = c.get(done["outputs"][0]["provenance_url"]).json()["control"]["melody"]
        assert melody["seconds"] == pytest.approx(1.5) and "pitch_class_agreement" in melody
    html = (Path(__file__).resolve().parents[1] / "foley/server/static/index.html").read_text()
    assert '<option value="melody">' in html
