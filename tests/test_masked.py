"""The masked-token family on a tiny model trained here: training entry (tokens, solver, resume, export + card),
loading through foley.load, MaskGIT generation (length, seeds, passes), and the token-level edits: inpaint keeps
the outside token-exact (and the user's samples bit-exact), variation at strength 0 is the input, loop keeps the
periodic frames; refusals are one line."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

import foley  # noqa: E402
from foley.audio import Audio  # noqa: E402
from foley.errors import ModelError, RequestError  # noqa: E402
from tests.test_codec import random_codec  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"channels": 2, "n_q": 2, "window_seconds": 0.4, "context_seconds": 0.1, "hidden_size": 32, "layers": 2,
        "heads": 2, "ffn_dim": 64, "dropout": 0.0, "batch_size": 4, "steps": 6, "warmup": 1, "lr": 3e-3,
        "valid_items": 4, "max_duration": 4.0, "export_dtype": "float16"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run folder, recipe, model folder) of a tiny training through the family's train entry."""
    from foley.family import get
    from tests.ldm_tiny import tiny_corpus

    tmp = tmp_path_factory.mktemp("masked")
    manifest = tiny_corpus(tmp)
    codec = random_codec().save(tmp / "codec")
    recipe = {"name": "tiny-masked", "seed": 0, "audio": {"valid_fraction": 0.2}, "licence": "test",
              "masked": {"codec": str(codec), **TINY},
              "train": {"threads": 1, "log_every": 1, "valid_every": 3, "save_every": 3}}
    model = get("masked").train_function()([manifest], recipe, tmp / "run", dest=tmp / "model")
    return tmp / "run", recipe, model


@pytest.fixture(scope="module")
def gen(trained):
    return foley.load(str(trained[2]))


def source(seconds: float = 1.0) -> Audio:
    t = np.arange(int(seconds * 16000)) / 16000
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return Audio(np.stack([x, 0.6 * x]).astype(np.float32), 16000)


# --- training and folders -----------------------------------------------------------------------------
def test_training_entry_logs_resumes_and_exports_a_card(trained):
    from foley.families.masked.train import train_transformer
    from foley.train.loop import Checkpointer

    run, recipe, model = trained
    toks = torch.load(run / "tokens" / "train.pt")
    assert toks["codes"].dtype == torch.int16 and toks["codes"].shape[1:] == (4, 20)  # 2 ch x 2 codebooks, 0.4 s
    log = [json.loads(x) for x in (run / "masked" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) == 6 and all(np.isfinite(losses)) and losses[0] < np.log(64) + 1
    assert all(f"loss_q{q}" in log[0] for q in (0, 1))
    assert any(np.isfinite(r.get("valid_loss", np.nan)) for r in log)
    cfg = json.loads((model / "foley.json").read_text())
    assert cfg["family"] == "masked" and cfg["channels"] == 2 and cfg["defaults"]["steps"] == 12
    assert (model / "transformer" / "model.safetensors").stat().st_size < 200_000  # float16 export
    card = (model / "README.md").read_text()
    assert "CPU-hours" in card and "tiny-masked" in card and "training windows" in card

    import shutil

    shutil.rmtree(run / "masked" / "final")  # killed before the end: resumes from step 6
    recipe = {**recipe, "masked": {**recipe["masked"], "steps": 8}}
    train_transformer(recipe, run)
    assert torch.load(Checkpointer(run / "masked" / "ckpt").path, weights_only=False)["step"] == 8
    steps = [json.loads(x)["step"] for x in (run / "masked" / "log.jsonl").read_text().splitlines()]
    assert steps.count(1) == 1
    assert json.loads((run / "masked" / "final" / "training.json").read_text())["steps"] == 8


def test_loads_through_foley_load_with_its_capabilities(gen):
    assert gen.card.family == "masked"
    assert {"generate", "inpaint", "continue", "variation", "loop"} <= set(gen.card.tasks)
    caps = gen.capabilities
    assert caps.progress == "steps" and caps.setting("steps").default == 12
    assert caps.takes("guidance_scale") and not caps.streams


# --- generation -----------------------------------------------------------------------------------
def test_generate_exact_length_seeds_and_windows(gen):
    a, b, c = (gen.generate("a tone", duration=1.3, seed=s, steps=3)[0] for s in (1, 1, 2))
    assert a.samples.shape == (2, int(1.3 * 16000)) and np.isfinite(a.samples).all()
    assert np.abs(a.samples).max() <= 1.0
    assert np.array_equal(a.samples, b.samples) and not np.array_equal(a.samples, c.samples)
    assert a.meta["settings"]["steps"] == 3 and a.meta["request"]["steps"] == 3


def test_steps_are_honoured_as_passes(gen):
    calls = []

    def note(g, i, n, info):
        calls.append((i, n))

    gen.generate("a tone", duration=0.3, seed=0, steps=5, callback_on_step_end=note)
    assert calls == [(i, 5) for i in range(1, 6)]  # one window: one call per MaskGIT pass
    calls.clear()
    gen.generate("a tone", duration=1.3, seed=0, steps=2, callback_on_step_end=note)
    n = calls[-1][1]
    assert n % 2 == 0 and n > 2 and [i for i, _ in calls] == list(range(1, n + 1))  # windows x passes


def test_annealed_guidance_and_quiet_order_are_recorded_and_reproduce(gen, tmp_path):
    """guidance_end anneals the guidance over the passes (a different sound than constant guidance, the same one
    again for the seed) and the sidecar records it; quiet_penalty needs a mel codec's near-silent codes: with this
    EnCodec-style codec there are none and the setting changes nothing; a mel codec gives one flag per code."""
    from types import SimpleNamespace

    from foley.families.masked.model import MaskedTokenModel
    from tests.test_melcodec import random_mel_codec, tiny_vocoder

    base = dict(gen.sampling)
    try:
        gen.sampling = {**base, "guidance_scale": 4.0, "guidance_end": 1.0}
        a, b = (gen.generate("a tone", duration=0.6, seed=3, steps=3)[0] for _ in range(2))
        gen.sampling = {**base, "guidance_scale": 4.0}
        plain = gen.generate("a tone", duration=0.6, seed=3, steps=3)[0]
        gen.sampling = {**base, "guidance_scale": 4.0, "quiet_penalty": 3.0}
        penalised = gen.generate("a tone", duration=0.6, seed=3, steps=3)[0]
    finally:
        gen.sampling = base
    assert np.array_equal(a.samples, b.samples) and not np.array_equal(a.samples, plain.samples)
    assert a.meta["settings"]["guidance_end"] == 1.0 and "guidance_end" not in plain.meta["settings"]
    assert gen.model.quiet_codes() is None and np.array_equal(penalised.samples, plain.samples)
    codec = random_mel_codec(tiny_vocoder(tmp_path / "voc"))
    stub = SimpleNamespace(codec=codec, net=SimpleNamespace(vocab=codec.codebook_size), _quiet=None)
    quiet = MaskedTokenModel.quiet_codes(stub)
    assert quiet.dtype == torch.bool and quiet.shape == (codec.codebook_size,)


# --- edits ----------------------------------------------------------------------------------------
def request(task: str, **kw):
    from foley.request import make_request

    return make_request(prompt="a tone", task=task, duration=kw.pop("duration", 1.0), seed=3, steps=3, **kw)


def test_inpaint_keeps_the_outside_token_exact_and_sample_exact(gen):
    src = source()
    (codes, out, known, _), = gen.edit_codes(src, request("inpaint", mask_start=0.3, mask_end=0.6))
    assert torch.equal(out[known], codes[known]) and not known[:, 15:30].any() and known[:, :15].all()
    assert not torch.equal(out[:, 15:30], codes[:, 15:30])
    res = gen.edit(src, "a tone", task="inpaint", mask_start=0.3, mask_end=0.6, seed=3, steps=3)[0]
    assert res.samples.shape == src.samples.shape
    a, b = int(0.3 * 16000), int(0.6 * 16000)
    assert np.array_equal(res.samples[:, :a], src.samples[:, :a]) and np.array_equal(res.samples[:, b:],
                                                                                       src.samples[:, b:])


def test_variation_strength_zero_is_the_input_and_strength_redraws_a_share(gen):
    src = source()
    (codes, out, known, extra), = gen.edit_codes(src, request("variation", strength=0.0))
    assert known.all() and torch.equal(out, codes) and extra["strength"] == 0.0
    res = gen.edit(src, "a tone", task="variation", strength=0.0, seed=3, steps=3)[0]
    assert np.array_equal(res.samples, src.samples)
    (codes, out, known, _), = gen.edit_codes(src, request("variation", strength=0.4))
    share = 1 - known.float().mean()
    assert 0.2 < share < 0.9 and torch.equal(out[known], codes[known])
    coarse, fine = (~known)[0::2], (~known)[2::2]  # rows L0 R0 L1 R1: a re-drawn coarse code re-draws the finer
    assert not (coarse & ~fine).any()
    res = gen.edit(src, "a tone", task="variation", seed=3, steps=3)[0]  # the card's default strength
    assert res.meta["settings"]["strength"] == 0.5 and res.samples.shape == src.samples.shape


def test_loop_keeps_the_periodic_frames_of_the_tiled_input(gen):
    src = source(0.6)  # 30 frames at 50 frames/s
    req = request("loop", period=0.2, duration=1.5)
    (codes, out, known, extra), = gen.edit_codes(src, req)
    assert extra["period_frames"] == 10 and out.shape[-1] == 75
    tiled = codes.repeat(1, 3)[:, :75]
    assert torch.equal(out[:, ::10], tiled[:, ::10]) and known[:, ::10].all() and not known[:, 1::10].any()
    res = gen.edit(src, "a tone", task="loop", period=0.2, duration=1.5, seed=3, steps=3)[0]
    assert res.samples.shape == (2, 24000) and res.meta["request"]["period"] == 0.2


def test_continue_keeps_the_input(gen):
    src = source(0.5)
    res = gen.edit(src, "a tone", task="continue", duration=1.2, seed=3, steps=2)[0]
    assert res.samples.shape == (2, int(1.2 * 16000))
    keep = src.frames - int(0.05 * 16000)
    assert np.array_equal(res.samples[:, :keep], src.samples[:, :keep])


def test_refusals_are_one_line(gen):
    src = source()
    cases = [dict(task="style_transfer"), dict(task="variation", strength=1.5),
             dict(task="inpaint", mask_start=0.1, mask_end=0.2, strength=0.3), dict(task="variation", period=0.5),
             dict(task="loop", period=0.01), dict(task="variation", steps=500), dict(task="karaoke")]
    for kw in cases:
        with pytest.raises(RequestError) as e:
            gen.edit(src, "a tone", **kw)
        assert "\n" not in str(e.value), kw
    with pytest.raises(RequestError, match="cannot do 'style_transfer'"):
        gen.edit(src, "a tone", task="style_transfer")


def test_the_shipped_name_says_how_to_build_it_when_missing():
    from foley.registry import CARDS, models_dir

    if "starter-masked" not in CARDS:
        pytest.skip("registry entry not present")
    if (models_dir() / "starter-masked").exists():
        pytest.skip("models/starter-masked is shipped")
    with pytest.raises(ModelError, match="bash recipes/starter-masked.sh") as e:
        foley.load("starter-masked")
    assert "\n" not in str(e.value)


def test_server_offers_variation_and_loop_through_the_capabilities(trained, tmp_path):
    """The REST API and the studio's model list know the new tasks from the model's card, not from its family."""
    from fastapi.testclient import TestClient

    from foley.server import Settings, create_app
    from tests.test_server import wait, wav_bytes

    with TestClient(create_app(Settings(data=tmp_path / "serve", models={"m": str(trained[2])}))) as c:
        info = next(m for m in c.get("/v1/models").json()["models"] if m["name"] == "m")
        assert {"variation", "loop"} <= set(info["tasks"])
        data = wav_bytes(1.0)
        r = c.post("/v1/edits", data={"task": "loop", "prompt": "a tone", "period": 0.2, "seed": 1, "steps": 2},
                   files={"file": ("in.wav", data, "audio/wav")})
        assert r.status_code == 202, r.text
        job = wait(c, r.json()["id"])
        assert job["status"] == "done", job["error"]
        assert job["outputs"][0]["duration"] == pytest.approx(1.0) and job["request"]["period"] == 0.2
        r = c.post("/v1/edits", data={"task": "variation", "prompt": "x", "strength": 0.3, "period": 0.5,
                                      "source_job": job["id"]})
        assert r.status_code == 422 and "period" in r.json()["detail"]
        r = c.post("/v1/edits", data={"task": "variation", "prompt": "x", "strength": 0.0, "source_job": job["id"]})
        done = wait(c, r.json()["id"])
        assert done["status"] == "done" and done["outputs"][0]["duration"] == pytest.approx(1.0)
