"""Tier 2 of the evaluation suite: our audio encoder (model, strict folder format, training, extractor)."""

import json

import numpy as np
import pytest
import torch

from foley.audio import Audio
from foley.errors import ModelError
from foley.eval import extractors as X
from foley.eval.encoder import ENV_VAR, register_encoder
from foley.eval.encoder.extractor import EncoderExtractor
from foley.eval.encoder.labels import build_label_space, main_label
from foley.eval.encoder.model import EncoderConfig, FoleyEncoder, file_sha256, load_encoder, save_encoder
from foley.eval.prepare import EvalSettings
from foley.eval.run import evaluate

SR = 16_000


def tiny_config(**kw) -> EncoderConfig:
    return EncoderConfig(labels=kw.pop("labels", ["synth:hum", "sfx:water", "music:brass"]),
                         aux=kw.pop("aux", {"register": ["high", "low"]}), channels=[4, 8, 8], embed_dim=8, **kw)


@pytest.fixture
def tiny_folder(tmp_path):
    torch.manual_seed(0)
    model = FoleyEncoder(tiny_config()).eval()
    folder = tmp_path / "enc"
    save_encoder(model, folder)
    return folder


def sound(kind: str, seconds: float = 1.0, seed: int = 0, rate: int = SR) -> np.ndarray:
    """A low tone ('tone') or white noise ('noise'), float32 [T]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    if kind == "tone":
        return (0.3 * np.sin(2 * np.pi * (150 + 10 * seed) * t)).astype(np.float32)
    return (0.1 * rng.standard_normal(len(t))).astype(np.float32)


def test_forward_shapes_and_short_input():
    model = FoleyEncoder(tiny_config()).eval()
    out = model(torch.randn(2, 64, 40))
    assert out["embedding"].shape == (2, 8) and out["main"].shape == (2, 3) and out["register"].shape == (2, 2)
    assert model(torch.randn(1, 64, 1))["main"].shape == (1, 3)   # padded with silence to the conv reach
    assert model.config.downsample == 4


def test_save_load_round_trip_and_hash(tiny_folder):
    model, digest = load_encoder(tiny_folder)
    assert digest == file_sha256(tiny_folder / "model.safetensors") and len(digest) == 64
    cfg = json.loads((tiny_folder / "config.json").read_text())
    assert cfg["format"] == "foley-encoder" and cfg["labels"] == ["synth:hum", "sfx:water", "music:brass"]
    assert cfg["mel"]["sample_rate"] == SR
    again, digest2 = load_encoder(tiny_folder)
    x = torch.randn(3, 64, 50)
    with torch.no_grad():
        assert torch.equal(model(x)["main"], again(x)["main"]) and digest2 == digest


def test_strict_load_names_keys(tiny_folder, tmp_path):
    from safetensors.torch import load_file, save_file

    w = tiny_folder / "model.safetensors"
    state = load_file(str(w))
    del state["heads.main.weight"]
    state["heads.extra.bias"] = torch.zeros(2)
    save_file(state, str(w))  # no embedded config: the key check alone must catch it
    with pytest.raises(ModelError, match=r"missing keys heads\.main\.weight.*unexpected keys heads\.extra\.bias"):
        load_encoder(tiny_folder)
    # a config.json that disagrees with the weights' embedded config is refused too
    other = tmp_path / "other"
    save_encoder(FoleyEncoder(tiny_config()), other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["labels"] = ["a", "b", "c"]
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="differs from the config embedded"):
        load_encoder(other)
    with pytest.raises(ModelError, match="nothing/config.json: foley-encoder file not found"):
        load_encoder(tmp_path / "nothing")


def test_extractor_posteriors_sum_to_one(tiny_folder):
    ex = EncoderExtractor(tiny_folder)
    assert ex.name == f"foley-encoder-{ex.hash[:8]}" and ex.sample_rate == SR and ex.has_posteriors
    audios = [Audio(sound("tone", 0.7), SR), Audio(sound("noise", 0.01), SR)]  # the second is shorter than n_fft
    emb, post = ex.embed(audios), ex.posteriors(audios)
    assert emb.shape == (2, 8) and post.shape == (2, 3) and np.isfinite(emb).all()
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-9)
    assert ex.describe()["hash"] == ex.hash and ex.describe()["labels"][0] == "synth:hum"


def test_label_space_mixes_corpora():
    from foley.data.manifest import Clip

    clips = [Clip(path="a.wav", duration=1, sample_rate=SR, attributes={"recipe": "pluck", "register": "high",
                                                                        "preset": "x"}),
             Clip(path="b.wav", duration=1, sample_rate=SR, attributes={"family": "brass", "register": "low"}),
             Clip.model_validate({"path": "c.wav", "duration": 1, "sample_rate": SR, "category": "door"}),
             Clip(path="d.wav", duration=1, sample_rate=SR)]
    assert [main_label(c) for c in clips] == ["synth:pluck", "music:brass", "sfx:door", None]
    labels, aux = build_label_space(clips)
    assert labels == ["music:brass", "sfx:door", "synth:pluck"]
    assert aux == {"register": ["high", "low"]}  # single-label heads (preset) are dropped


def write_corpus(folder, n=6):
    """n tones labelled synth:hum and n noises labelled sfx:water; a JSONL manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(2 * n):
        kind = "tone" if i % 2 == 0 else "noise"
        Audio(sound(kind, 1.0, seed=i), SR).save(folder / f"c{i}.wav")
        row = {"path": f"c{i}.wav", "duration": 1.0, "sample_rate": SR, "description": f"{kind} {i}"}
        if kind == "tone":
            row["attributes"] = {"recipe": "hum", "register": "low" if i % 4 == 0 else "high"}
        else:
            row["category"] = "water"
        rows.append(json.dumps(row))
    (folder / "m.jsonl").write_text("\n".join(rows) + "\n")
    return folder / "m.jsonl"


def _encoder_recipe(steps: int, **train) -> dict:
    return {"seed": 0, "encoder": {"steps": steps, "batch_size": 4, "min_seconds": 0.5, "max_seconds": 0.8,
                                   "channels": [4, 8], "embed_dim": 8, "warmup_steps": 1, "valid_fraction": 0.2},
            "train": {"threads": 1, "valid_every": 2, "save_every": 2, **train}}


def test_training_writes_loadable_folder_and_resumes(tmp_path):
    import shutil

    from foley.eval.encoder.train import train_encoder

    manifest = write_corpus(tmp_path / "data")
    out = tmp_path / "run"
    folder = train_encoder([manifest], _encoder_recipe(2), out)
    assert folder == out / "encoder" / "final"
    model, digest = load_encoder(folder)
    assert model.config.labels == ["sfx:water", "synth:hum"] and model.config.info["steps"] == 2
    rep = json.loads((out / "encoder" / "valid.json").read_text())
    assert rep["step"] == 2 and 0 <= rep["accuracy"] <= 1 and rep["n"] >= 1
    log = out / "encoder" / "log.jsonl"
    assert any(json.loads(x).get("valid") for x in log.read_text().splitlines())
    shutil.rmtree(folder)  # a finished stage is skipped; without its final/ a longer recipe continues
    train_encoder([manifest], _encoder_recipe(3), out)  # resumes at step 2
    steps = [json.loads(x)["step"] for x in log.read_text().splitlines() if "loss" in x]
    assert steps == [2, 3]
    assert load_encoder(folder)[0].config.info["steps"] == 3 and file_sha256(folder / "model.safetensors") != digest


def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    """The encoder on the training harness: killed after its step-2 checkpoint and run again, it logs the
    uninterrupted run's losses, each step once, and ends with the same weights and averaged BatchNorm statistics."""
    from foley.eval.encoder.train import EncoderSolver
    from tests.solver_resume import check_resume

    manifest = write_corpus(tmp_path / "data")
    out = check_resume(EncoderSolver, [manifest], _encoder_recipe(5, log_every=1, valid_every=100), tmp_path, kill=4)
    a, b = (load_encoder(out[k])[0].state_dict() for k in ("whole", "cut"))
    assert any("running_mean" in k for k in a) and all(torch.equal(a[k], b[k]) for k in a)


def test_max_minutes_stops_at_a_step_and_exports(tmp_path):
    from foley.eval.encoder.train import train_encoder

    manifest = write_corpus(tmp_path / "data")
    folder = train_encoder([manifest], _encoder_recipe(50, max_minutes=0.0), tmp_path / "run")
    assert load_encoder(folder)[0].config.info["steps"] == 1  # stopped after its first step, yet exported
    state = torch.load(tmp_path / "run" / "encoder" / "ckpt" / "last.pt", weights_only=True)
    assert state["step"] == 1 and "draws" in state and "n_averaged" in state["ema"]


def make_set(folder, shift: int, n: int = 5):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Audio(sound("tone" if i % 2 else "noise", 0.6, seed=i + shift), SR).save(folder / f"x{i}.wav")
    return folder


@pytest.fixture
def isolated_registry(monkeypatch, tmp_path):
    """Registrations made by a test go into copies of the registry, restored afterwards."""
    X.extractor_names()
    monkeypatch.setattr(X, "_REGISTRY", dict(X._REGISTRY))
    monkeypatch.setattr(X, "_POSTERIORS", dict(X._POSTERIORS))
    monkeypatch.setenv("FOLEY_HOME", str(tmp_path / "home"))


def test_eval_reports_encoder_metrics_with_hash(tiny_folder, tmp_path, isolated_registry):
    name = register_encoder(tiny_folder)
    digest = file_sha256(tiny_folder / "model.safetensors")
    assert name == f"foley-encoder-{digest[:8]}" and X.gives_posteriors(name)
    gen, ref = make_set(tmp_path / "gen", 3), make_set(tmp_path / "ref", 0)
    res = evaluate(gen, ref, [f"fd_{name}", f"kl_{name}", f"is_{name}"], EvalSettings(n_bootstrap=100))
    m = res.report["metrics"]
    for k in (f"fd_{name}", f"kl_{name}", f"is_{name}"):
        assert m[k]["status"] == "ok", m[k]
        assert m[k]["conditions"]["extractor"]["hash"] == digest and digest[:8] in m[k]["id"]
    assert m[f"kl_{name}"]["direction"] == "KL(reference ‖ generated)" and m[f"kl_{name}"]["per"] == "pair"
    assert m[f"kl_{name}"]["n"] == 5 and m[f"kl_{name}"]["mean"] >= 0
    assert m[f"fd_{name}"]["value"] >= 0 and m[f"is_{name}"]["value"] >= 1.0
    assert m[f"fd_{name}"]["conditions"]["preparation"]["sample_rate"] == SR


def test_eval_cli_uses_encoder_from_env_and_reports_missing(tiny_folder, tmp_path, foley_cli, monkeypatch):
    gen, ref = make_set(tmp_path / "gen", 3), make_set(tmp_path / "ref", 0)
    monkeypatch.setenv("FOLEY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(ENV_VAR, str(tiny_folder))
    name = f"foley-encoder-{file_sha256(tiny_folder / 'model.safetensors')[:8]}"
    metrics = f"fd_{name},kl_{name},is_{name}"
    r = foley_cli("eval", "-g", gen, "-r", ref, "-o", tmp_path / "out", "-m", metrics, "--no-html",
                  "--bootstrap", "100")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "out" / "report.json").read_text())["metrics"]
    assert {k for k in m if name in k} == {f"fd_{name}", f"kl_{name}", f"is_{name}"}
    assert all(m[k]["status"] == "ok" for k in m)
    # without weights the encoder's metrics are unavailable and say where the weights belong
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "empty"))
    r = foley_cli("eval", "-g", gen, "-r", ref, "-o", tmp_path / "out2", "-m", "fd_foley-encoder", "--no-html")
    assert r.returncode == 0, r.stderr
    fd = json.loads((tmp_path / "out2" / "report.json").read_text())["metrics"]["fd_foley-encoder"]
    assert fd["status"] == "unavailable" and "model.safetensors" in fd["reason"]


SHIPPED = __import__("foley.registry", fromlist=["models_dir"]).models_dir() / "foley-encoder"


@pytest.mark.skipif(not (SHIPPED / "model.safetensors").exists(), reason="no shipped encoder in models/")
@pytest.mark.parametrize("recipe", ["cricket", "cicada", "thump"])
def test_shipped_encoder_classifies_a_clear_synth_clip(recipe):
    from foley.data.synth.render import render_spec

    ex = EncoderExtractor(SHIPPED)
    audio = render_spec({"recipe": recipe}, seed=12345).to_mono()
    post = ex.posteriors([audio])[0]
    assert ex.config.labels[int(np.argmax(post))] == f"synth:{recipe}"
