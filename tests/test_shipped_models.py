"""The models shipped in models/ (what a fresh clone runs): they load strictly, keep the registry's promises
(rate, channels, family), produce exact-length, non-silent, seed-reproducible audio, and the token LM's codec
round-trips a file through `foley codec encode/decode` at the input's length. Short requests: a smoke test of the
real weights, not a quality test (quality lives in bench/ and docs/benchmarks.md)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

import foley  # noqa: E402
from foley.audio import Audio  # noqa: E402
from foley.registry import CARDS, models_dir  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
SHIPPED = [n for n in ("starter", "starter-lm", "starter-fast", "starter-wavegan", "starter-masked")
           if (models_dir() / CARDS[n].weights.split("/")[-1]).exists()]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_generates_to_its_card(name):
    gen = foley.load(name)
    card = CARDS[name]
    assert gen.card.family == card.family
    d = min(1.5, card.max_duration)  # WaveGAN makes 1 s one-shots
    a, b, c = (gen.generate("rain on a tin roof", duration=d, seed=s)[0] for s in (4, 4, 5))
    for x in (a, b, c):
        assert x.sample_rate == card.sample_rate and x.samples.shape == (card.channels, int(d * card.sample_rate))
        assert np.isfinite(x.samples).all() and np.abs(x.samples).max() <= 1.0
    assert np.array_equal(a.samples, b.samples), "the same seed must give the same sound"
    assert not np.array_equal(a.samples, c.samples)
    assert max(x.rms_db() for x in (a, c)) > -60.0
    assert len(gen.weight_hash()) == 12


@pytest.mark.skipif("starter-lm" not in SHIPPED, reason="models/starter-lm not shipped")
def test_shipped_codec_round_trip(foley_cli, tmp_path):
    import soundfile as sf

    t = np.arange(int(1.37 * 16000)) / 16000
    x = 0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-2 * t)
    Audio(np.stack([x, 0.5 * x]).astype(np.float32), 16000).save(tmp_path / "in.wav")
    codec = models_dir() / "starter-lm" / "codec"
    r = foley_cli("codec", "encode", tmp_path / "in.wav", "-c", codec, "-o", tmp_path / "in.foley")
    assert r.returncode == 0, r.stderr
    r = foley_cli("codec", "decode", tmp_path / "in.foley", "-c", codec, "-o", tmp_path / "out.wav")
    assert r.returncode == 0, r.stderr
    y, rate = sf.read(tmp_path / "out.wav")
    assert rate == 16000 and y.shape == (len(x), 2)
    # the tone survives: the decoded spectrum peaks within a mel band of 440 Hz, the right channel stays quieter
    spec = np.abs(np.fft.rfft(y[:, 0]))
    assert abs(np.argmax(spec) * 16000 / len(y) - 440) < 60
    assert np.sqrt(np.mean(y[:, 1] ** 2)) < np.sqrt(np.mean(y[:, 0] ** 2))
    r = foley_cli("codec", "info", tmp_path / "in.foley")
    assert r.returncode == 0, r.stderr
    assert "2 ch" in r.stdout and "kbps" in r.stdout and "codebook usage" in r.stdout


@pytest.mark.skipif("starter-lm" not in SHIPPED, reason="models/starter-lm not shipped")
def test_server_offers_both_shipped_families(tmp_path):
    import io

    import soundfile as sf
    from fastapi.testclient import TestClient

    from foley.server import Settings, create_app
    from tests.test_server import wait

    with TestClient(create_app(Settings(data=tmp_path))) as client:
        seen = []
        client.app.state.svc.worker.add_listener(lambda job_id, frac: seen.append(frac))
        models = client.get("/v1/models").json()
        assert models["default"] == "starter"
        # every shipped model whose folder is here, and nothing else
        assert {m["name"]: m["available"] for m in models["models"]} == {n: True for n in SHIPPED}
        r = client.post("/v1/generations", json={"prompt": "rain on a tin roof", "model": "starter-lm",
                                                 "duration": 1.0, "seed": 3})
        assert r.status_code in (200, 201, 202), r.text
        job = wait(client, r.json()["id"])
        assert job["status"] == "done", job
        assert seen and all(0 < f < 1 for f in seen)  # token LMs report progress per sampled frame
        y, rate = sf.read(io.BytesIO(client.get(job["outputs"][0]["audio_url"]).content))
        assert rate == 16000 and y.shape == (16000, 2)
        r = client.post("/v1/generations", json={"prompt": "rain", "model": "starter-lm", "duration": 1.0, "steps": 5})
        assert r.status_code == 422 and "steps" in r.text


@pytest.mark.parametrize("name", SHIPPED)
def test_models_info_prints_the_sidecars_weight_hash(foley_cli, name):
    from foley.hashing import folder_hash

    r = foley_cli("models", "info", name)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("weights:"))
    assert line.split()[1] == folder_hash(models_dir() / name) and len(line.split()[1]) == 12
