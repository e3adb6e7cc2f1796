"""Fine-tuning on the user's sounds (issue 17) on tiny models: LoRA adapters and full fine-tunes of the latent-diffusion
and token-LM families, adapters merged at load (scale 0 = the base, mixing, hash checks), bad data, resume, CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from foley.errors import FoleyError, ModelError  # noqa: E402
from tests.ldm_tiny import tiny_corpus  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"minutes": 2, "threads": 1, "preview_minutes": 0}


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """12 captioned stereo tones (a manifest): 3 are held out."""
    folder = tmp_path_factory.mktemp("user")
    return tiny_corpus(folder, n=12)


@pytest.fixture(scope="module")
def lm_base(tmp_path_factory):
    from tests.test_lm import build_lm

    return build_lm(tmp_path_factory.mktemp("lmbase") / "base")


@pytest.fixture(scope="module")
def ldm_runs(tiny_ldm, user, tmp_path_factory):
    """(base folder, LoRA adapter, full model) of the tiny LDM fine-tuned on the user's tones."""
    from foley.train.finetune import finetune

    _, base = tiny_ldm
    root = tmp_path_factory.mktemp("ldmft")
    lora = finetune(base, "tiny", "ldm", user, root / "adapter", run=root / "run-a", lora=4, steps=6, lr=2e-2,
                    say=lambda s: None, **FAST)
    full = finetune(base, "tiny", "ldm", user, root / "full", run=root / "run-f", steps=4, lr=1e-3,
                    say=lambda s: None, **FAST)
    return base, lora, full


def _first(gen, prompt="a tone at 440 hertz", seconds=1.0):
    return gen.generate(prompt, duration=seconds, seed=0)[0].samples


def test_ldm_lora_adapter_card_size_scale_and_mixing(ldm_runs):
    from foley import adapters, load
    from foley.hashing import folder_hash

    base, lora, _ = ldm_runs
    files = sorted(p.name for p in lora.iterdir())
    assert files == ["README.md", "adapter_config.json", "adapter_model.safetensors", "finetune.json",
                     "foley_adapter.json"]
    card = adapters.read_card(lora)
    assert card["base"]["weight_hash"] == folder_hash(base) and card["base"]["family"] == "ldm"
    assert card["rank"] == 4 and "to_q" in card["target_modules"] and "ff.net.2" in card["target_modules"]
    assert card["data"]["clips"] == 12 and card["data"]["heldout_clips"] == 3 and card["data"]["captions"] == "manifest"
    assert card["training"]["steps"] == 6 and card["licence"] == "unknown" and "dB" in card["reconstruction"]
    assert "LoRA rank 4" in (lora / "README.md").read_text()
    unet_bytes = (base / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size
    assert (lora / "adapter_model.safetensors").stat().st_size < unet_bytes / 2

    plain = _first(load(str(base)))
    g1 = load(str(base), lora=[(str(lora), 1.0)])
    with_adapter = _first(g1)
    assert np.abs(with_adapter - plain).max() > 1e-4                      # the adapter changes the sound
    assert np.array_equal(_first(load(str(base), lora=[(str(lora), 0.0)])), plain)  # scale 0 = the base
    assert g1.weight_hash().startswith(folder_hash(base) + "+") and g1.adapters[0]["scale"] == 1.0
    assert g1.provenance(g1._requests("x", {"duration": 1.0})[0], 0)["model"]["adapters"][0]["name"] == "adapter"
    # two adapters mix linearly in the merged weights: A at 0.5 twice is A at 1
    halves = load(f"{base}+{lora}@0.5+{lora}@0.5")
    np.testing.assert_allclose(_first(halves), with_adapter, atol=2e-3)
    assert halves.card.name.endswith("@0.5")
    # the generator's UNet is the plain network again: no LoRA layers left (no per-step overhead)
    assert not any("lora" in n for n, _ in halves.lora_target().named_modules())


def test_ldm_full_finetune_is_a_complete_model(ldm_runs):
    from foley import load

    base, _, full = ldm_runs
    names = {p.name for p in full.iterdir()}
    assert {"unet", "vae", "scheduler", "foley.json", "model_index.json", "README.md"} <= names
    cfg = json.loads((full / "foley.json").read_text())
    assert cfg["extra"]["finetuned_from"]["name"] == "tiny" and "full fine-tuning" in (full / "README.md").read_text()
    assert not np.array_equal(_first(load(str(full))), _first(load(str(base))))


def test_lm_lora_full_resume_and_hash_mismatch(lm_base, user, tmp_path):
    import shutil

    from foley import load
    from foley.train.finetune import finetune
    from foley.train.loop import Checkpointer
    from tests.test_lm import build_lm

    adapter = finetune(lm_base, "tiny-lm", "lm", user, tmp_path / "a", run=tmp_path / "ra", lora=4, steps=6,
                       lr=3e-2, say=lambda s: None, **FAST)
    card = json.loads((adapter / "foley_adapter.json").read_text())
    assert card["rank"] == 4 and set(card["target_modules"]) == {"q_proj", "k_proj", "v_proj", "out_proj", "fc1",
                                                                 "fc2"}
    dec = (lm_base / "decoder" / "model.safetensors").stat().st_size
    assert (adapter / "adapter_model.safetensors").stat().st_size < dec
    plain = _first(load(str(lm_base)), seconds=0.5)
    assert not np.array_equal(_first(load(str(lm_base), lora=str(adapter)), seconds=0.5), plain)
    assert np.array_equal(_first(load(f"{lm_base}+{adapter}@0"), seconds=0.5), plain)

    other = build_lm(tmp_path / "other", seed=1)  # same architecture, other weights
    with pytest.raises(ModelError, match="trained on tiny-lm"):
        load(str(other), lora=str(adapter))

    full = finetune(lm_base, "tiny-lm", "lm", user, tmp_path / "f", run=tmp_path / "rf", steps=6, lr=1e-3,
                    say=lambda s: None, **FAST)
    assert (full / "decoder" / "model.safetensors").is_file() and (full / "codec").is_dir()
    assert json.loads((full / "foley.json").read_text())["extra"]["finetuned_from"]["name"] == "tiny-lm"
    # a killed run resumes from its checkpoint: steps 7..8 only, no step logged twice
    shutil.rmtree(tmp_path / "rf" / "finetune" / "final")
    finetune(lm_base, "tiny-lm", "lm", user, tmp_path / "f", run=tmp_path / "rf", steps=8, lr=1e-3, force=True,
             say=lambda s: None, **FAST)
    assert torch.load(Checkpointer(tmp_path / "rf" / "finetune" / "ckpt").path, weights_only=False)["step"] == 8
    log = [json.loads(x) for x in (tmp_path / "rf" / "finetune" / "log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 8 and 6 in steps


def test_adapter_of_another_family_and_bad_inputs(ldm_runs, lm_base, user, tmp_path, write_audio):
    from foley import load
    from foley.train.finetune import finetune

    _, lora, _ = ldm_runs
    with pytest.raises(ModelError, match="is for a 'ldm' model"):
        load(str(lm_base), lora=str(lora))
    with pytest.raises(ModelError, match="not found"):
        load(str(lm_base), lora=str(tmp_path / "nothing"))
    few = tmp_path / "few"
    for i in range(2):
        write_audio(few / f"door_{i}.wav")
    with pytest.raises(FoleyError, match="at least 5"):
        finetune(lm_base, "tiny-lm", "lm", few, tmp_path / "out", say=lambda s: None, **FAST)
    with pytest.raises(FoleyError, match="not found"):
        finetune(lm_base, "tiny-lm", "lm", tmp_path / "missing.jsonl", tmp_path / "out", say=lambda s: None, **FAST)
    assert not (tmp_path / "out").exists()  # nothing written
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    with pytest.raises(FoleyError, match="--force"):
        finetune(lm_base, "tiny-lm", "lm", user, tmp_path / "taken", say=lambda s: None, **FAST)
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep me"


def test_cli_folder_of_audio_names_as_captions_generate_and_list(lm_base, tmp_path, write_audio, capsys,
                                                                 monkeypatch):
    from foley.cli import main

    clips = tmp_path / "clips"
    for i in range(6):
        write_audio(clips / ("glass_clink" if i % 2 else "metal_scrape") / f"take{i}.wav", seconds=0.6,
                    channels=2, freq=300.0 + 100 * i)
    models = tmp_path / "models"
    main(["train", "finetune", "--from", str(lm_base), "--data", str(clips), "-o", str(models / "mine"),
          "--lora", "2", "--steps", "3", "--run", str(tmp_path / "run"), "--threads", "1"])
    out = capsys.readouterr().out
    assert "captions from file names (6)" in out and "held out" in out and "reconstruction" in out
    assert "adapter written to" in out and (models / "mine" / "foley_adapter.json").is_file()

    wav = tmp_path / "x.wav"
    main(["generate", "glass clink", "-m", str(lm_base), "--lora", str(models / "mine"), "--lora-scale", "0.5",
          "-d", "0.5", "-o", str(wav)])
    side = json.loads(wav.with_suffix(".json").read_text())
    assert side["model"]["adapters"][0]["scale"] == 0.5
    with pytest.raises(SystemExit):
        main(["generate", "x", "-m", str(lm_base), "--lora-scale", "0.5", "-d", "0.5", "-o", str(tmp_path / "y.wav")])
    assert "--lora-scale" in capsys.readouterr().err and not (tmp_path / "y.wav").exists()

    monkeypatch.setenv("FOLEY_MODELS", str(models))
    main(["models", "list", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert any(r["name"] == f"{lm_base}+mine" and r["status"] == "adapter" for r in rows)
