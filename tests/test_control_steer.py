"""DITTO steering on the tiny latent-diffusion model: through the API, the CLI and the REST server."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from foley.audio import Audio  # noqa: E402
from foley.errors import RequestError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = {"duration": 1.0, "steps": 3, "seed": 5}
TARGET = ["pitch=rise 200Hz->1600Hz", "loudness=fade out"]


@pytest.fixture(scope="module")
def gen(tiny_ldm):
    import foley

    return foley.load(str(tiny_ldm[1]))


def curve_loss(gen, audio: Audio, controls) -> float:
    """The steering objective measured on a finished sound's own log-mel (not the loop's)."""
    from foley import curves as cv
    from foley.features import log_mel
    from foley.steering import FrameTargets, MelCurves, objective

    cfg = gen.model.cfg.mel
    raw = log_mel(torch.from_numpy(audio.samples), cfg)[None]
    mc = MelCurves(cfg)
    targets = FrameTargets.build(cv.targets(controls=controls, duration=audio.duration), raw.shape[-1],
                                 mc.frame_rate, audio.duration)
    with torch.no_grad():
        return float(objective(mc(raw, targets.names()), targets)[0])


def test_steering_reduces_the_curve_loss_for_the_same_seed(gen):
    plain = gen.generate("a tone", **FAST)[0]
    measured = gen.generate("a tone", controls=TARGET, steer=0, **FAST)[0]
    np.testing.assert_array_equal(measured.samples, plain.samples)  # steer 0: the same sound, measured
    assert "steering" not in measured.meta["control"]
    steered = gen.generate("a tone", controls=TARGET, steer=6, **FAST)[0]
    run = steered.meta["control"]["steering"]
    assert run["iterations"] == 6 and len(run["losses"]) == 7 and run["seconds_per_iteration"] > 0
    assert run["loss_best"] < run["loss_unsteered"]
    assert curve_loss(gen, steered, TARGET) < curve_loss(gen, measured, TARGET)
    side = steered.meta["control"]
    assert set(side["targets"]) == {"pitch", "loudness"} and side["targets"]["pitch"]["source"].startswith("words")
    assert set(side["adherence"]["pitch"]) >= {"correlation", "mean_error", "unit"}
    json.dumps(steered.meta)  # the sidecar holds it
    assert steered.meta["request"]["controls"] == {"pitch": "rise 200Hz->1600Hz", "loudness": "fade out"}


def test_the_prior_imitation_and_strength_reach_the_targets(gen, tmp_path):
    t = np.arange(16000) / 16000
    Audio(0.3 * np.sin(2 * np.pi * np.cumsum(300 * 2 ** t) / 16000), 16000).save(tmp_path / "voice.wav")
    out = gen.generate("a tone rising", steer=1, control_strength={"pitch": 2}, **FAST)[0]
    assert out.meta["control"]["targets"]["pitch"]["source"].startswith("prior")
    assert out.meta["control"]["targets"]["pitch"]["control_strength"] == 2.0
    like = gen.generate("a laser zap", like=str(tmp_path / "voice.wav"), steer=1, **FAST)[0]
    assert set(like.meta["control"]["targets"]) == {"loudness", "brightness", "pitch", "density"}
    with pytest.raises(RequestError, match="one sampling window"):
        gen.generate("a tone", controls=TARGET, steer=1, duration=5.0, steps=2)


def test_texture_and_tremolo_words_are_steered_and_measured(gen):
    """A prompt with only quality words ("staticky", "quivering") can be steered; the sidecar records each quality's
    target, the analyzer's measure and whether it is met; without --steer nothing changes."""
    plain = gen.generate("a staticky quivering hum", **FAST)[0]
    assert "control" not in plain.meta
    out = gen.generate("a staticky quivering hum", steer=2, **FAST)[0]
    side = out.meta["control"]
    assert side["targets"] == {} and set(side["qualities"]) == {"texture", "tremolo"}
    assert side["qualities"]["texture"]["quality"] == "noisy" and side["qualities"]["texture"]["sense"] == ">="
    assert isinstance(side["qualities"]["tremolo"]["measured"], float)
    assert set(side["steering"]["curve_losses"]["unsteered"]) == {"texture", "tremolo"}
    json.dumps(out.meta)


def test_explicit_texture_and_tremolo_controls_are_steered(gen):
    """--control texture=noisy / tremolo=none: steered by default (no --steer needed), recorded as controls; longer
    than one window they are refused in one line (steering works on one window)."""
    out = gen.generate("a hum", controls={"texture": "noisy", "tremolo": "none"}, **FAST)[0]
    side = out.meta["control"]
    assert side["steering"]["iterations"] == 10 and set(side["qualities"]) == {"texture", "tremolo"}
    assert side["qualities"]["texture"]["source"] == "control: texture=noisy"
    assert side["qualities"]["tremolo"]["sense"] == "<=" and isinstance(side["qualities"]["tremolo"]["met"], bool)
    assert set(side["steering"]["curve_losses"]["unsteered"]) == {"texture", "tremolo"}
    with pytest.raises(RequestError, match="texture is followed by steering, which works on one sampling window"):
        gen.generate("a hum", controls={"texture": "noisy"}, duration=5.0, steps=2)


def test_cli_steers_and_refuses_in_one_line(tiny_ldm, tmp_path):
    from typer.testing import CliRunner

    from foley.cli import app

    out = tmp_path / "s.wav"
    r = CliRunner().invoke(app, ["--threads", "1", "generate", "a tone", "-m", str(tiny_ldm[1]), "-d", "1",
                                 "--steps", "2", "--seed", "1", "--control", "pitch=rise", "--control",
                                 "pan=left->right", "--control-strength", "pan=0.5", "--steer", "1", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "curves: pitch r=" in r.output
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["request"]["steer"] == 1 and side["control"]["targets"]["pan"]["control_strength"] == 0.5
    noisy = CliRunner().invoke(app, ["--threads", "1", "generate", "a staticky tone", "-m", str(tiny_ldm[1]), "-d",
                                     "1", "--steps", "2", "--seed", "1", "--steer", "1", "-o", str(tmp_path / "n.wav")])
    assert noisy.exit_code == 0 and ("noisy met" in noisy.output or "noisy missed" in noisy.output), noisy.output
    bad = CliRunner().invoke(app, ["generate", "a tone", "-m", str(tiny_ldm[1]), "--control", "pitch=wobble",
                                   "-o", str(tmp_path / "b.wav")])
    assert isinstance(bad.exception, RequestError) and "cannot read 'wobble'" in str(bad.exception)
    assert not (tmp_path / "b.wav").exists()  # refused before the model loads (the CLI prints it in one line)


def test_rest_takes_the_same_fields_and_reads_no_paths(tiny_ldm, tmp_path):
    from fastapi.testclient import TestClient

    from foley.server import Settings, create_app

    settings = Settings(data=tmp_path / "data", models={"tiny": str(tiny_ldm[1])})
    with TestClient(create_app(settings)) as c:
        body = {"prompt": "a tone", "duration": 1.0, "steps": 2, "steer": 1,
                "controls": {"pitch": "rise", "loudness": {"times": [0, 1], "values": [0, -30]}, "texture": "tonal"},
                "control_strength": {"pitch": 2}}
        r = c.post("/v1/generations", json=body)
        assert r.status_code == 202, r.text
        job = _wait(c, r.json()["id"])
        assert job["status"] == "done", job
        prov = c.get(job["outputs"][0]["provenance_url"]).json()
        assert set(prov["control"]["adherence"]) == {"pitch", "loudness"}
        assert prov["control"]["qualities"]["texture"]["source"] == "control: texture=tonal"
        for bad, words in [({"controls": {"texture": {"times": [0, 1], "values": [0, 1]}}}, "one level"),
                           ({"controls": {"pitch": "/etc/passwd.csv"}}, "reads no files by path"),
                           ({"like": "/tmp/x.wav"}, "reads no files by path"),
                           ({"steer": "3", "controls": {"pitch": "rise"}}, "steer"),
                           ({"controls": {"pitch": "wobble"}}, "cannot read 'wobble'")]:
            r = c.post("/v1/generations", json={"prompt": "a tone", "duration": 1.0, **bad})
            assert r.status_code == 422 and words in r.json()["detail"], r.text
        up = c.post("/v1/uploads", files={"file": ("v.wav", _wav(), "audio/wav")}).json()
        r = c.post("/v1/generations", json={"prompt": "a zap", "duration": 1.0, "steps": 2, "steer": 0,
                                            "like": f"upload:{up['id']}"})
        assert r.status_code == 202, r.text
        job = _wait(c, r.json()["id"])
        prov = c.get(job["outputs"][0]["provenance_url"]).json()
        assert job["status"] == "done" and "pitch" in prov["control"]["targets"]
        assert "/" not in prov["request"]["like"]  # the server's folders never show


def _wav() -> bytes:
    import io

    import soundfile as sf

    t = np.arange(16000) / 16000
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 16000, format="WAV")
    return buf.getvalue()


def _wait(client, job_id: str, timeout: float = 240.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(f"/v1/generations/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.fixture(scope="module")
def audioldm(tmp_path_factory):
    """The tiny look-alike of cvssp/audioldm-s-full-v2 (tests/public_fixtures.py), loaded from a temporary home."""
    pytest.importorskip("diffusers")
    import foley
    from foley.families.public import hub
    from tests.public_fixtures import build_audioldm

    root = tmp_path_factory.mktemp("public_steer")
    old = os.environ.get("FOLEY_HOME")
    os.environ["FOLEY_HOME"] = str(root / "home")
    hub.import_folder(build_audioldm(root / "src"), name="cvssp/audioldm-s-full-v2")
    yield foley.load("cvssp/audioldm-s-full-v2")
    if old is None:
        os.environ.pop("FOLEY_HOME", None)
    else:
        os.environ["FOLEY_HOME"] = old


def test_a_public_diffusers_pipeline_steers_too(audioldm):
    fast = {"duration": 0.8, "steps": 3, "seed": 2}
    caps = audioldm.capabilities
    assert caps.steers and "pan" not in caps.setting("controls").choices  # mono
    plain = audioldm.generate("a tone", **fast)[0]
    measured = audioldm.generate("a tone", controls=["loudness=fade out"], steer=0, **fast)[0]
    np.testing.assert_array_equal(measured.samples, plain.samples)
    out = audioldm.generate("a tone", controls=["loudness=fade out", "brightness=dark->bright"], steer=4, **fast)[0]
    run = out.meta["control"]["steering"]
    assert run["loss_best"] < run["loss_unsteered"] and set(out.meta["control"]["adherence"]) == {"loudness",
                                                                                                  "brightness"}
    with pytest.raises(RequestError, match="has no pan curve"):
        audioldm.generate("a tone", controls=["pan=left->right"], **fast)
