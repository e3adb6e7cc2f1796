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

FAST = {"minutes": 2, "threads": 1, "preview_minutes": 0, "vae": "off"}


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


def test_vae_decoder_adapter_in_lora_and_full_models(tiny_ldm, user, tmp_path, monkeypatch):
    """--vae on: a LoRA on the VAE's decoder, trained with the encoder frozen, shipped beside the UNet's adapter (and
    merged into the decoder at load, at the adapter's scale) or merged into a full model's VAE; its held-out
    reconstruction before and after is in the card. Kept only when it helps: forced here (a few steps)."""
    from safetensors.torch import load_file

    from foley import adapters, load
    from foley.families.ldm import finetune as LF
    from foley.train.finetune import finetune

    _, base = tiny_ldm
    monkeypatch.setattr(LF, "VAE_MAX_STEPS", 4)
    monkeypatch.setattr(LF, "VAE_GAIN_DB", -1e9)
    opts = {**FAST, "vae": "on"}
    lora = finetune(base, "tiny", "ldm", user, tmp_path / "a", run=tmp_path / "ra", lora=4, steps=3, lr=2e-2,
                    say=lambda s: None, **opts)
    assert (lora / adapters.VAE_WEIGHTS).is_file() and (lora / adapters.VAE_CONFIG).is_file()
    rec = adapters.read_card(lora)["vae_adapter"]
    assert rec["steps"] == 4 and rec["kept"] and {"heldout_db_before", "heldout_db_after"} <= set(rec)
    assert all(".lora_" in k for k in load_file(str(lora / adapters.VAE_WEIGHTS)))
    plain, tuned = load(str(base)), load(str(base), lora=[(str(lora), 1.0)])
    a = dict(plain.model.vae.decoder.named_parameters())
    b = dict(tuned.model.vae.decoder.named_parameters())
    assert a.keys() == b.keys()  # merged and unloaded: the plain decoder again
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(plain.model.vae.encoder.conv_in.weight, tuned.model.vae.encoder.conv_in.weight)
    zero = dict(load(str(base), lora=[(str(lora), 0.0)]).model.vae.decoder.named_parameters())
    assert all(torch.equal(v, zero[k]) for k, v in a.items())

    full = finetune(base, "tiny", "ldm", user, tmp_path / "f", run=tmp_path / "rf", steps=3, lr=1e-3,
                    say=lambda s: None, **opts)
    fa, fb = (load_file(str(f / "vae" / "diffusion_pytorch_model.safetensors")) for f in (base, full))
    assert fa.keys() == fb.keys()
    assert any(not torch.equal(fa[k], fb[k]) for k in fa if k.startswith("decoder."))
    assert all(torch.equal(fa[k], fb[k]) for k in fa if k.startswith("encoder."))
    assert fa["decoder.conv_in.weight"].dtype == fb["decoder.conv_in.weight"].dtype


def test_vae_mode_choice_and_refusals(lm_base, user, tmp_path):
    from foley.families.ldm.finetune import wants_decoder
    from foley.train.finetune import finetune

    assert wants_decoder("auto", 7.4, 12.7) and not wants_decoder("auto", 11.0, 12.7)
    assert wants_decoder("on", 20.0, 12.7) and not wants_decoder("off", 1.0, 12.7)
    with pytest.raises(FoleyError, match="choose auto, on, off"):
        wants_decoder("maybe", 1.0, 2.0)
    with pytest.raises(FoleyError, match="no codec adapter"):
        finetune(lm_base, "tiny-lm", "lm", user, tmp_path / "o", say=lambda s: None, **{**FAST, "vae": "on"})
    assert not (tmp_path / "o").exists()


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
    # a base that does not record its corpora: replay off, said in one line with how to turn it on
    assert "note: replay is off" in out and "--replay 0.5 --replay-data MANIFEST" in out
    assert json.loads((models / "mine" / "finetune.json").read_text())["replay"] == {"fraction": 0.0}

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


# --- replay of the base's corpora (against forgetting) ------------------------------------------------------------
@pytest.fixture(scope="module")
def replay_corpus(tmp_path_factory):
    """8 one-second stereo hisses with their own captions: stands for the base's training corpus."""
    from foley.audio import Audio
    from foley.data.manifest import write_manifest

    folder = tmp_path_factory.mktemp("basecorpus")
    rng = np.random.default_rng(1)
    rows = []
    for i in range(8):
        Audio((0.1 * rng.standard_normal((2, 16000))).astype(np.float32), 16000).save(folder / f"h{i}.wav")
        rows.append({"path": f"h{i}.wav", "duration": 1.0, "sample_rate": 16000, "channels": 2,
                     "description": f"replay hiss number {i}"})
    return write_manifest(folder / "corpus.jsonl", rows)


def test_replay_sampler_exact_share_and_resume():
    from foley.train.finetune import ReplaySampler
    from foley.train.solver import ResumableSampler

    def make():
        return ReplaySampler(ResumableSampler(20, 0), ResumableSampler(7, 1), 20, 7, 0.1)

    s = make()
    batches = [s.take(16) for _ in range(10)]
    per = [sum(i >= 20 for i in b) for b in batches]
    assert sum(per) == 16 and set(per) == {1, 2} and all(len(b) == 16 for b in batches)  # 10 % of 160, 1.6 a batch
    assert s.replay_drawn == 16 and s.user_drawn == 144 and all(0 <= i < 27 for b in batches for i in b)
    again = make()
    for _ in range(4):
        again.take(16)
    state = again.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    assert [resumed.take(16) for _ in range(6)] == batches[4:] and resumed.replay_drawn == 16
    with pytest.raises(FoleyError, match="without replay"):
        make().load_state_dict({"n": 27, "order": []})


def test_shipped_starters_record_their_corpora():
    from pathlib import Path

    from foley.train.finetune import base_corpora

    for name in ("starter", "starter-lm"):
        manifests, valid_fraction, origin = base_corpora(Path("models") / name, name)
        assert manifests == ["corpora/synth/manifest.jsonl", "corpora/music/manifest.jsonl",
                             "corpora/real_sfx/balanced.jsonl"]
        assert valid_fraction == 0.03 and name in origin  # the recipes' held-out share: never replayed


def test_ldm_replay_enters_batches_never_heldout_and_card(tiny_ldm, user, replay_corpus, tmp_path, monkeypatch):
    from foley.data.dataset import select_split
    from foley.data.manifest import read_manifest
    from foley.families.ldm import finetune as LF
    from foley.families.ldm import train as T
    from foley.train.finetune import finetune

    _, base = tiny_ldm
    batches, valid_caps, taught = [], [], []
    step, loss = LF.FinetuneUNetSolver.train_step, T._diffusion_loss

    def spy_step(self, idx):
        batches.append([(int(i) >= self.n_user, self.lat["captions"][int(i)]) for i in idx])
        return step(self, idx)

    def spy_loss(*args, **kwargs):
        if kwargs.get("timesteps") is not None:  # the held-out loss (fixed timesteps)
            valid_caps.extend(args[4])
        else:
            taught.append(kwargs["taught"].tolist())
            assert kwargs["teacher"] is not args[0] and not any(p.requires_grad for p in kwargs["teacher"].parameters())
        return loss(*args, **kwargs)

    monkeypatch.setattr(LF.FinetuneUNetSolver, "train_step", spy_step)
    monkeypatch.setattr(T, "_diffusion_loss", spy_loss)
    said = []
    out = finetune(base, "tiny", "ldm", user, tmp_path / "a", run=tmp_path / "run", lora=4, steps=6, lr=2e-2,
                   replay=0.25, replay_data=[replay_corpus], replay_target="base", say=said.append, **FAST)
    # 9 training clips -> batch 9; 0.25 x 9 = 2.25 replayed items a batch: 2, 2, 2, 3, 2, 2 (13 of 54)
    per = [sum(r for r, _ in b) for b in batches]
    assert len(batches) == 6 and all(len(b) == 9 for b in batches) and set(per) == {2, 3} and sum(per) == 13
    assert all(c[0].startswith("replay hiss") for b in batches for r, c in b if r)
    assert all(c[0].startswith("a tone") for b in batches for r, c in b if not r)
    # replay_target "base": the replayed items (and only they) learn the frozen base UNet's prediction
    assert taught == [[r for r, _ in b] for b in batches]
    # the held-out split and its loss are the user's alone
    valid = torch.load(tmp_path / "run" / "latents" / "valid.pt", weights_only=True)
    assert len(valid["captions"]) == 3 and not any("hiss" in c[0] for c in valid["captions"])
    assert valid_caps and not any("hiss" in c for c in valid_caps)
    # the pool: the corpus's training split (its one held-out clip left out), encoded with the base VAE
    pool = read_manifest(tmp_path / "run" / "replay" / "pool.jsonl")
    held = select_split(read_manifest(replay_corpus), "valid", 0.03)
    assert len(pool) == 7 and held[0].description not in {c.description for c in pool}
    assert torch.load(tmp_path / "run" / "replay" / "all.pt", weights_only=True)["mean"].shape[0] == 7
    card = json.loads((out / "finetune.json").read_text())["replay"]
    assert card["fraction"] == 0.25 and card["sources"] == [str(replay_corpus)] and card["origin"] == "--replay-data"
    assert card["clips"] == 7 and card["items_drawn"] == 13 and card["user_items_drawn"] == 41
    assert card["target"] == "base"
    assert "replay against forgetting: 25%" in (out / "README.md").read_text()
    assert any(s.startswith("replay: 25% of every batch from 7 clips") for s in said)


def test_teacher_target_on_taught_items_only(tiny_ldm):
    """A taught item's target is the teacher's prediction: a teacher equal to the model gives it zero loss."""
    from diffusers import DDPMScheduler

    from foley.families.ldm import train as T
    from foley.families.ldm.components import load_component
    from foley.text import get_text_encoder

    _, base = tiny_ldm
    unet = load_component("UNet2DConditionModel", base / "unet").float().eval()
    sched = DDPMScheduler.from_pretrained(base / "scheduler")
    z = torch.randn(2, unet.config.in_channels, *([unet.config.sample_size] * 2 if isinstance(
        unet.config.sample_size, int) else unet.config.sample_size))
    args = (unet, sched, get_text_encoder(), z, ["a tone", "hiss"], sched.alphas_cumprod, 5.0)

    def loss(**kw):
        return float(T._diffusion_loss(*args, generator=torch.Generator().manual_seed(0), **kw))

    with torch.no_grad():
        data = loss()
        assert data > 0 and loss(teacher=unet, taught=torch.tensor([True, True])) == 0.0
        half = loss(teacher=unet, taught=torch.tensor([True, False]))
        assert 0 < half < data


def test_lm_teacher_target_is_the_teachers_distribution(lm_base):
    """A taught item learns the teacher's next-code distribution: a teacher equal to the model gives no gradient
    (soft cross-entropy is at its minimum), the clip's own codes do; the untaught items keep their clip's loss."""
    import copy

    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    from foley.codec.storage import load_model
    from foley.families.lm import train as T
    from foley.families.lm.model import load_projection
    from foley.text import get_text_encoder

    dec = load_model(MusicgenDecoderConfig, MusicgenForCausalLM, lm_base / "decoder").float()
    proj = load_projection(lm_base / "text_projection").float()
    teacher = torch.nn.ModuleDict({"decoder": copy.deepcopy(dec), "projection": copy.deepcopy(proj)})
    channels = json.loads((lm_base / "foley.json").read_text()).get("channels", 1)
    codes = torch.randint(0, dec.config.vocab_size - 1, (2, dec.config.num_codebooks, 12))
    args = (dec, proj, get_text_encoder(), codes, ["a tone", ""], torch.tensor([False, True]), channels)

    def grad(**kw):
        dec.zero_grad()
        loss = T.lm_loss(*args, **kw)
        loss.backward()
        return float(loss), max(float(p.grad.abs().max()) for p in dec.parameters() if p.grad is not None)

    (_, g_data), (_, g_all) = grad(), grad(teacher=teacher, taught=torch.tensor([True, True]))
    assert g_data > 1e-4 and g_all < 1e-6
    assert grad(teacher=teacher, taught=torch.tensor([True, False]))[1] > 1e-4


def test_lm_replay_by_default_from_the_base_card(lm_base, user, replay_corpus, tmp_path):
    import shutil

    from foley.train.finetune import finetune

    base = tmp_path / "base"
    shutil.copytree(lm_base, base)
    cfg = json.loads((base / "foley.json").read_text())
    cfg["extra"] = {**cfg.get("extra", {}), "training_data": [str(replay_corpus)], "valid_fraction": 0.03}
    (base / "foley.json").write_text(json.dumps(cfg))
    said = []
    full = finetune(base, "tiny-lm", "lm", user, tmp_path / "f", run=tmp_path / "rf", steps=4, lr=1e-3,
                    say=said.append, **FAST)
    card = json.loads((full / "finetune.json").read_text())["replay"]
    # the defaults: half of every batch replayed, learnt as the frozen base's own prediction
    assert card["fraction"] == 0.5 and card["origin"].endswith("foley.json") and card["clips"] == 7
    assert card["target"] == "base"
    assert card["items_drawn"] == 18 and card["user_items_drawn"] == 18  # 0.5 x batch 9 x 4 steps
    assert any("(50% replayed from the base's corpora)" in s for s in said)
    valid = torch.load(tmp_path / "rf" / "tokens" / "valid.pt", weights_only=True)
    assert not any("hiss" in c[0] for c in valid["captions"])
    replay = torch.load(tmp_path / "rf" / "replay" / "all.pt", weights_only=True)
    assert replay["codes"].shape[0] == 7 and all(c[0].startswith("replay hiss") for c in replay["captions"])


@pytest.mark.parametrize("args, message", [
    (["--replay", "-0.1"], "--replay -0.1: the share"),
    (["--replay", "1"], "--replay 1: the share"),
    (["--replay", "0.3"], "does not record the corpora it was trained on; pass their manifests with --replay-data"),
    (["--replay-data", "MISSING"], "manifest not found"),
    (["--replay-target", "nope"], "--replay-target 'nope': give one of data, base"),
])
def test_cli_bad_replay_is_one_line_and_writes_nothing(lm_base, user, tmp_path, capsys, args, message):
    from foley.cli import main

    args = [str(tmp_path / "missing.jsonl") if a == "MISSING" else a for a in args]
    with pytest.raises(SystemExit) as e:
        main(["train", "finetune", "--from", str(lm_base), "--data", str(user), "-o", str(tmp_path / "out"),
              "--run", str(tmp_path / "run"), "--steps", "2", *args])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()


def test_a_family_that_cannot_be_fine_tuned_is_refused_first(user, tmp_path, capsys):
    """The shipped WaveGAN has no fine-tuning: one line naming the families that can, before any other note."""
    from foley.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "finetune", "--from", "starter-wavegan", "--data", str(user), "-o", str(tmp_path / "out"),
              "--run", str(tmp_path / "run"), "--steps", "2"])
    captured = capsys.readouterr()
    assert e.value.code == 2 and captured.err.count("\n") == 1
    assert "'wavegan' family cannot be fine-tuned yet (families that can: ldm, lm" in captured.err
    assert "replay" not in captured.out + captured.err
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()
