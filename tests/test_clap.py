"""foley-clap: training learns a separable toy set, strict loading, the CLI (embed, score, search), the eval
metric and best-of-N reranking (candidates, chosen seed, reproduction)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from foley.audio import Audio
from foley.errors import ModelError, RequestError

pytestmark = pytest.mark.usefixtures("one_thread")

RATE = 16000
TINY_CLAP = {"steps": 60, "batch_size": 8, "lr": 3e-3, "warmup_steps": 5, "min_seconds": 0.5, "max_seconds": 1.0,
             "max_clip_seconds": 2.0, "valid_fraction": 0.2, "channels": [4, 8, 8], "width": 16, "embed_dim": 16,
             "init_encoder": "", "preset_clips": 1, "ema_decay": 0.9}


def _beep(rng, seconds=1.0):
    t = np.arange(int(seconds * RATE)) / RATE
    return 0.3 * np.sin(2 * np.pi * rng.uniform(2500, 3500) * t)


def _rumble(rng, seconds=1.0):
    x = rng.standard_normal(int(seconds * RATE))
    for _ in range(3):  # a crude low-pass: repeated moving average
        x = np.convolve(x, np.ones(32) / 32, mode="same")
    return 0.3 * x / (np.abs(x).max() + 1e-9)


@pytest.fixture(scope="module")
def tiny_clap(tmp_path_factory):
    """A tiny foley-clap trained on 24 one-second clips: high beeps vs deep rumbles."""
    from foley.clap.train import train_clap
    from foley.data.manifest import write_manifest

    root = tmp_path_factory.mktemp("clap")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        beep = i % 2 == 0
        x = _beep(rng) if beep else _rumble(rng)
        Audio(np.stack([x, x]).astype(np.float32), RATE).save(root / f"{i}.wav")
        rows.append({"path": f"{i}.wav", "duration": 1.0, "sample_rate": RATE, "channels": 2,
                     "description": "a high beep" if beep else "a deep rumble",
                     "captions": ["high-pitched beeping tone"] if beep else ["low rumbling noise"]})
    write_manifest(root / "m.jsonl", rows)
    recipe = {"seed": 0, "clap": TINY_CLAP, "train": {"threads": 1, "log_every": 10, "valid_every": 30,
                                                      "save_every": 30}}
    folder = train_clap([root / "m.jsonl"], recipe, root / "run")
    return folder, root


def test_training_separates_the_toy_set(tiny_clap):
    from foley.clap.embedder import FoleyClap

    folder, root = tiny_clap
    clap = FoleyClap.from_folder(folder)
    rng = np.random.default_rng(99)  # fresh sounds, not the training clips
    beeps = [Audio(_beep(rng)[None].astype(np.float32), RATE) for _ in range(3)]
    rumbles = [Audio(_rumble(rng)[None].astype(np.float32), RATE) for _ in range(3)]
    sim = clap.similarity(beeps + rumbles, ["a high beep", "a deep rumble"])
    assert (sim[:3, 0] > sim[:3, 1]).all() and (sim[3:, 1] > sim[3:, 0]).all(), sim
    emb = clap.embed(beeps)
    assert emb.shape == (3, 16) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    log = [json.loads(ln) for ln in (root / "run" / "clap" / "log.jsonl").read_text().splitlines()]
    assert any("t2a_r1" in r for r in log) and any("presets_top1" in r for r in log)


def test_long_clips_are_windowed_and_deterministic(tiny_clap):
    from foley.clap.embedder import FoleyClap

    clap = FoleyClap.from_folder(tiny_clap[0])
    rng = np.random.default_rng(1)
    long = Audio(np.concatenate([_beep(rng, 2.0), _rumble(rng, 2.0)])[None].astype(np.float32), RATE)
    assert len(clap._windows(long)) == 4  # window = max_seconds = 1 s
    a, b = clap.embed([long]), clap.embed([long])
    assert np.array_equal(a, b)
    short = Audio(np.zeros((1, 800), np.float32), RATE)  # shorter than the conv stack's minimum: padded
    assert np.isfinite(clap.embed([short])).all()


def test_strict_loading(tiny_clap, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from foley.clap.model import load_clap_net

    src = tiny_clap[0]
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    state = load_file(str(bad / "model.safetensors"))
    state.pop("text_head.net.0.weight")
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(ModelError, match="missing keys text_head.net.0.weight"):
        load_clap_net(bad)
    with pytest.raises(ModelError, match="foley-clap file not found"):
        load_clap_net(tmp_path / "nowhere")


def test_cli_embed_score_search(tiny_clap, tmp_path, foley_cli):
    folder, root = tiny_clap
    env_before = os.environ.get("FOLEY_CLAP")
    os.environ["FOLEY_CLAP"] = str(folder)
    try:
        out = tmp_path / "v.npy"
        r = foley_cli("clap", "embed", str(root / "0.wav"), str(root / "1.wav"), "-o", str(out), "--threads", "1")
        assert r.returncode == 0, r.stderr
        assert np.load(out).shape == (2, 16)
        assert json.loads(out.with_suffix(".json").read_text())["rows"][1].endswith("1.wav")
        r = foley_cli("clap", "embed", "a high beep", "--text", "-o", str(tmp_path / "t.npy"))
        assert r.returncode == 0 and np.load(tmp_path / "t.npy").shape == (1, 16)
        r = foley_cli("clap", "score", str(root / "0.wav"), str(root / "1.wav"), "--text", "a high beep", "--json")
        scores = {Path(s["file"]).name: s["score"] for s in json.loads(r.stdout)["scores"]}
        assert scores["0.wav"] > scores["1.wav"]  # 0 is a beep, 1 a rumble
        r = foley_cli("clap", "search", str(root), "a deep rumble", "-k", "5", "--json")
        assert r.returncode == 0, r.stderr
        res = json.loads(r.stdout)
        assert res["searched"] == 24 and len(res["results"]) == 5
        assert sum(int(Path(x["file"]).stem) % 2 for x in res["results"]) >= 4  # odd clips are the rumbles
        r = foley_cli("clap", "search", str(tmp_path / "missing"), "x")
        assert r.returncode != 0 and "not a folder" in r.stderr and "Traceback" not in r.stderr
    finally:
        if env_before is None:
            os.environ.pop("FOLEY_CLAP", None)
        else:
            os.environ["FOLEY_CLAP"] = env_before


def test_named_attributes():
    from foley.rerank import named_attributes

    assert named_attributes("a siren rising in pitch") == {"pitch_slope": 1}
    assert named_attributes("wind fading out, moving from left to right")["loudness_trend"] == -1
    assert named_attributes("wind fading out, moving from left to right")["stereo_direction"] == 1
    assert named_attributes("rising and falling") == {}  # opposites cancel
    assert named_attributes("a car") == {}
    # texture and tremolo from the control prior's word list: "without tremolo" is steady, not tremolo
    assert named_attributes("a staticky hum without tremolo") == {"spectral_flatness": 1, "tremolo_depth": -1}
    assert named_attributes("a pure-toned quivering drone") == {"spectral_flatness": -1, "tremolo_depth": 1,
                                                                "impulsiveness": -1}
    assert named_attributes("white noise") == {"spectral_flatness": 1}  # words only the reranker knew stay
    assert named_attributes("a whistling kettle") == {"spectral_flatness": -1}


def test_best_of_n(tiny_clap, tiny_ldm, monkeypatch):
    import foley

    monkeypatch.setenv("FOLEY_CLAP", str(tiny_clap[0]))
    gen = foley.load(str(tiny_ldm[1]))
    out = gen.generate("a high beep", duration=1.0, seed=11, best_of=3, num_variations=2)
    assert len(out) == 2
    for j, a in enumerate(out):
        b = a.meta["best_of"]
        assert b["n"] == 3 and b["seeds"] == [11 + j, 13 + j, 15 + j] and len(b["clap"]) == 3
        assert a.meta["seed"] == b["chosen_seed"] == b["seeds"][b["chosen"]]
        assert b["total"][b["chosen"]] == max(b["total"])
        assert a.meta["request"]["best_of"] == 3 and a.meta["variation"] == j
    again = gen.generate("a high beep", duration=1.0, seed=out[0].meta["seed"])[0]
    # the sidecar's seed reproduces the choice (a batch of 3 and of 1 may differ in the last bits on some CPUs)
    assert np.abs(again.samples - out[0].samples).max() < 1e-3
    with pytest.raises(RequestError, match="best-of must be between 1 and 16"):
        gen.generate("x", best_of=17)


def test_best_of_without_clap_fails_before_loading(tmp_path, foley_cli, monkeypatch):
    monkeypatch.setenv("FOLEY_CLAP", str(tmp_path / "none"))
    r = foley_cli("generate", "rain", "--best-of", "4", "-o", str(tmp_path / "x.wav"))
    assert r.returncode != 0 and "foley-clap" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.wav").exists()


def test_ldm_on_clap_embeddings_trains_on_uncaptioned_audio(tiny_clap, tmp_path):
    """AudioLDM's scheme: the UNet's global condition is the window's foley-clap audio embedding in training (so a
    clip without any caption trains it) and the prompt's foley-clap text embedding when generating."""
    import copy

    import torch

    from foley.data.manifest import read_manifest, write_manifest
    from foley.families.ldm.train import train_ldm
    from foley.registry import load
    from tests.ldm_tiny import TINY, tiny_corpus

    manifest = tiny_corpus(tmp_path)
    rows = [c.to_json() for c in read_manifest(manifest)]
    for r in rows[::2]:  # half the clips have no text at all
        r.pop("description", None)
        r.pop("captions", None)
    write_manifest(manifest, rows)
    recipe = copy.deepcopy(TINY)
    recipe["conditioning"] = {"global": "clap", "clap": str(tiny_clap[0]), "audio_p": 0.5}
    folder = train_ldm([manifest], recipe, tmp_path / "run", dest=tmp_path / "model")
    lat = torch.load(tmp_path / "run" / "latents" / "train.pt", weights_only=True)
    assert lat["clap_audio"].shape[1] == 16 and any(not c for c in lat["captions"])
    meta = json.loads((folder / "foley.json").read_text())
    assert meta["conditioning"]["global"] == "clap" and (folder / "clap_text" / "model.safetensors").exists()
    unet_cfg = json.loads((folder / "unet" / "config.json").read_text())
    assert unet_cfg["projection_class_embeddings_input_dim"] == 16
    gen = load(str(folder))
    cond = gen.model.encode_text(["a tone at 440 hertz", ""])
    assert cond.pooled.shape == (2, 16)
    assert torch.allclose(cond.pooled[0].norm(), torch.tensor(1.0), atol=1e-4) and not cond.pooled[1].any()
    audio = gen.generate("a tone at 440 hertz", duration=1.0, seed=3)[0]
    assert audio.samples.shape[0] == 2 and np.isfinite(audio.samples).all()
    from diffusers import DiffusionPipeline

    import foley  # noqa: F401  (registers the pipeline class with diffusers)

    DiffusionPipeline.from_pretrained(str(folder)).save_pretrained(tmp_path / "saved")  # carries clap_text/
    again = load(str(tmp_path / "saved")).generate("a tone at 440 hertz", duration=1.0, seed=3)[0]
    assert np.array_equal(again.samples, audio.samples)


def test_rest_best_of(tiny_clap, tiny_ldm, tmp_path, monkeypatch):
    """REST: best_of in the body, the provenance lists the candidates; without foley-clap a one-line 503."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from foley.server import Settings, create_app
    from tests.test_server import wait

    monkeypatch.setenv("FOLEY_CLAP", str(tiny_clap[0]))
    settings = Settings(data=tmp_path / "serve", models={"tiny": str(tiny_ldm[1])})
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/generations", json={"prompt": "a high beep", "seed": 4, "duration": 1.0, "steps": 2,
                                                 "best_of": 2})
        assert r.status_code == 202, r.text
        job = wait(client, r.json()["id"])
        assert job["status"] == "done", job
        prov = client.get(job["outputs"][0]["provenance_url"]).json()
        assert prov["best_of"]["n"] == 2 and prov["seed"] in (4, 5) and prov["request"]["best_of"] == 2
        assert job["outputs"][0]["best_of"]["n"] == 2  # the studio shows it
        r = client.post("/v1/generations", json={"prompt": "x", "best_of": 99})
        assert r.status_code == 422 and "best-of must be between" in r.text
        monkeypatch.setenv("FOLEY_CLAP", str(tmp_path / "none"))
        r = client.post("/v1/generations", json={"prompt": "x", "best_of": 2, "duration": 1.0})
        assert r.status_code == 503 and "foley-clap" in r.text


def test_v2_recipe_shape_adopts_vae_and_warm_starts_unet(tiny_clap, tiny_ldm, tmp_path):
    """starter v2's recipe shape: [vae] adopt takes a model's VAE, statistics and latent scaling unchanged;
    [unet] init starts from its UNet with a fresh global-condition projection (MiniLM vector -> foley-clap)."""
    import copy

    import torch
    from safetensors.torch import load_file

    from foley.families.ldm.train import train_ldm
    from tests.ldm_tiny import TINY, tiny_corpus

    base = tiny_ldm[1]
    recipe = copy.deepcopy(TINY)
    recipe["vae"] = {"adopt": str(base)}
    recipe["unet"] = {**recipe["unet"], "init": str(base)}
    recipe["conditioning"] = {"global": "clap", "clap": str(tiny_clap[0])}
    folder = train_ldm([tiny_corpus(tmp_path)], recipe, tmp_path / "run", dest=tmp_path / "model")
    old, new = json.loads((base / "foley.json").read_text()), json.loads((folder / "foley.json").read_text())
    assert (old["mel_mean"], old["mel_std"], old["ild_std"]) == (new["mel_mean"], new["mel_std"], new["ild_std"])
    vae_old = load_file(str(next((base / "vae").glob("*.safetensors"))))
    vae_new = load_file(str(next((folder / "vae").glob("*.safetensors"))))
    assert all(torch.equal(vae_old[k], vae_new[k]) for k in vae_old)
    cfg_old = json.loads((base / "vae" / "config.json").read_text())
    cfg_new = json.loads((folder / "vae" / "config.json").read_text())
    assert cfg_old["scaling_factor"] == cfg_new["scaling_factor"]
    unet = json.loads((folder / "unet" / "config.json").read_text())
    assert unet["projection_class_embeddings_input_dim"] == 16
