"""The token-LM family on tiny random models: delay pattern, sampling (length, seeds, guidance), continuation,
long-form, streaming, strict loading, the composite MusicGen model, training and the CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from foley.audio import Audio  # noqa: E402
from foley.errors import ModelError, RequestError  # noqa: E402
from tests.test_codec import random_codec  # noqa: E402

DECODER = {"hidden_size": 32, "layers": 2, "heads": 2, "n_q": 2, "dropout": 0.0}


pytestmark = pytest.mark.usefixtures("one_thread")


def build_lm(folder, channels: int = 2, seed: int = 0):
    """A random tiny LM folder: 16 kHz, 50 frames/s, 2 of the codec's 3 codebooks, 0.6 s window."""
    from foley.families.lm.model import LMConfig, TokenLM, new_decoder

    codec = random_codec(seed)
    torch.manual_seed(seed)
    decoder = new_decoder(codec, channels, DECODER)
    cfg = LMConfig(sample_rate=16000, channels=channels, frame_rate=50.0, window_seconds=0.6, max_duration=4.0,
                   defaults={"guidance_scale": 3.0, "top_k": 20, "top_p": 0.0, "temperature": 1.0},
                   decode={"chunk_frames": 5, "max_chunk_frames": 20, "context_frames": 5}, context_seconds=0.3,
                   extra={"licence": "test"})
    return TokenLM(codec, decoder, torch.nn.Linear(384, 32), cfg).save(folder)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_lm(tmp_path_factory.mktemp("lm") / "tiny")


@pytest.fixture(scope="module")
def gen(folder):
    from foley.families.lm.pipeline import LMGenerator

    return LMGenerator.from_folder(folder)


# --- delay pattern ----------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 2])
def test_delay_pattern_round_trip_and_transformers_layout(channels):
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    from foley.families.lm.delay import deinterleave, interleave, targets

    k, t, pad = 4 * channels, 9, 64
    codes = torch.randint(0, pad, (2, k, t))
    seq = interleave(codes, pad, channels)
    assert seq.shape == (2, k, t + 4) and torch.equal(deinterleave(seq, channels), codes)
    dec = MusicgenForCausalLM(MusicgenDecoderConfig(vocab_size=pad, num_codebooks=k, audio_channels=channels,
                                                    hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                                                    ffn_dim=8))
    start = torch.full((2 * k, 1), pad)
    _, mask = dec.build_delay_pattern_mask(torch.cat([start, codes.reshape(2 * k, t)], -1), pad, max_length=t + 4)
    assert torch.equal(mask.reshape(2, k, -1), seq)  # transformers' own layout, stereo pairs included
    inputs, labels = targets(seq, pad)
    assert torch.equal(inputs, seq[..., :-1]) and (labels == -100).sum() == (seq[..., 1:] == pad).sum()


# --- generation -------------------------------------------------------------------------------------
def test_folder_layout_and_card(folder, gen):
    meta = json.loads((folder / "foley.json").read_text())
    assert meta["family"] == "lm" and meta["channels"] == 2
    for sub in ("codec", "decoder", "text_projection"):
        assert (folder / sub / "config.json").exists() and (folder / sub / "model.safetensors").exists()
    assert json.loads((folder / "decoder" / "config.json").read_text())["model_type"] == "musicgen_decoder"
    assert gen.card.family == "lm" and gen.card.tasks == ("generate", "continue", "extend")
    assert (gen.sample_rate, gen.channels) == (16000, 2)


def test_generate_exact_length_and_seeds(gen):
    a = gen.generate("a tone at 440 hertz", duration=1.234, seed=5)[0]
    assert a.samples.shape == (2, int(round(1.234 * 16000))) and a.samples.dtype == np.float32
    assert np.abs(a.samples).max() > 0 and a.meta["seed"] == 5 and a.meta["model"]["family"] == "lm"
    assert a.meta["settings"]["top_k"] == 20 and len(a.meta["model"]["weight_hash"]) == 12
    b = gen.generate("a tone at 440 hertz", duration=1.234, seed=5)[0]
    c = gen.generate("a tone at 440 hertz", duration=1.234, seed=6)[0]
    assert np.array_equal(a.samples, b.samples) and not np.array_equal(a.samples, c.samples)
    batch = gen.generate(["a steady tone", "a tone at 440 hertz"], duration=1.234, seed=5, num_variations=2)
    assert len(batch) == 4 and np.array_equal(batch[2].samples, a.samples)  # a seed is a sound in any batch
    assert [x.meta["seed"] for x in batch] == [5, 6, 5, 6]


def test_guidance_paths(gen):
    plain = gen.generate("noise", duration=0.5, seed=1, guidance_scale=1.0)[0]
    cfg = gen.generate("noise", duration=0.5, seed=1, guidance_scale=4.0)[0]
    neg = gen.generate("noise", duration=0.5, seed=1, guidance_scale=4.0, negative_prompt="a tone")[0]
    assert not np.array_equal(plain.samples, cfg.samples) and not np.array_equal(cfg.samples, neg.samples)
    assert cfg.meta["settings"]["guidance_scale"] == 4.0


def test_sampling_settings_and_refusals(folder):
    from foley.families.lm.pipeline import LMGenerator

    greedyish = LMGenerator.from_folder(folder, top_k=1)
    a = greedyish.generate("x", duration=0.4, seed=1)[0]
    b = greedyish.generate("x", duration=0.4, seed=2)[0]
    assert np.array_equal(a.samples, b.samples)  # top-1 leaves no choice: seeds do not matter
    nucleus = LMGenerator.from_folder(folder, top_k=0, top_p=0.5, temperature=0.7)
    assert nucleus.generate("x", duration=0.4, seed=1)[0].meta["settings"]["top_p"] == 0.5
    with pytest.raises(RequestError, match="steps"):
        greedyish.generate("x", duration=0.4, steps=10)
    with pytest.raises(RequestError, match="maximum"):
        greedyish.generate("x", duration=5.0)
    with pytest.raises(RequestError, match="temperature"):
        LMGenerator.from_folder(folder, temperature=0.0)


def test_long_form_past_the_window(gen):
    from foley.families.lm.pipeline import LMGenerator

    a = gen.generate("a tone", duration=2.1, seed=3)[0]  # 0.6 s window, 0.3 s of codes slide along
    assert a.frames == 33600 and np.isfinite(a.samples).all()
    assert isinstance(gen, LMGenerator) and gen.lm.window_frames == 30 and gen.lm.context_frames == 15


def test_streaming_concatenates_to_the_generated_sound(gen):
    whole = gen.generate("a tone", duration=1.5, seed=9)[0]
    chunks = list(gen.stream("a tone", duration=1.5, seed=9))
    assert len(chunks) > 3 and chunks[0].frames == 5 * 320  # one chunk of 5 frames, as soon as it is sampled
    assert [c.meta["chunk"] for c in chunks] == list(range(len(chunks)))
    assert np.array_equal(np.concatenate([c.samples for c in chunks], axis=-1), whole.samples)
    longer = gen.generate("a tone", duration=1.3, seed=2)[0]  # long-form streams too (window 0.6 s)
    assert np.array_equal(np.concatenate([c.samples for c in gen.stream("a tone", duration=1.3, seed=2)], -1),
                          longer.samples)
    with pytest.raises(RequestError, match="one variation"):
        next(gen.stream("a tone", duration=1.0, num_variations=2))


def test_stream_frames_equal_sampled_codes(gen):
    from foley.families.lm.stream import stream_frames

    lm = gen.lm
    states, mask = lm.condition(["a tone"], guidance=True)
    prompt = torch.randint(0, 64, (lm.num_codebooks, 4))
    settings = {**gen.sampling, "guidance_scale": 3.0}
    codes = lm.sample(states, mask, 12, seed=4, sampling=settings, prompt=prompt)
    assert codes.shape == (4, 16) and torch.equal(codes[:, :4], prompt)  # the prompt's codes come first
    blocks = list(stream_frames(lm, states, mask, 12, 4, settings, prompt=prompt))
    assert all(b.shape[1] == 1 for b in blocks) and torch.equal(torch.cat(blocks, -1), codes[:, 4:])


def test_continuation_keeps_the_prompt(gen):
    rng = np.random.default_rng(0)
    src = Audio((0.1 * rng.standard_normal((2, 12345))).astype(np.float32), 16000)
    out = gen.edit(src, "a tone", task="continue", duration=1.5, seed=1)[0]
    assert out.samples.shape == (2, 24000) and out.meta["request"]["task"] == "continue"
    keep = src.frames - int(0.05 * 16000)
    assert np.array_equal(out.samples[:, :keep], src.samples[:, :keep])  # bit-exact before the crossfade
    assert np.abs(out.samples[:, src.frames:]).max() > 0
    assert gen.edit(src, "a tone", task="extend", duration=2.0, seed=1)[0].frames == 32000
    with pytest.raises(RequestError, match="maximum of 4 s"):  # default: 5 s more than the input
        gen.edit(src, "a tone", task="extend", seed=1)
    with pytest.raises(RequestError, match="cannot do"):
        gen.edit(src, "a tone", task="inpaint", mask_start=0.1, mask_end=0.2)


def test_mono_model_and_composite_musicgen(tmp_path):
    from foley.families.lm.pipeline import LMGenerator

    gen = LMGenerator.from_folder(build_lm(tmp_path / "mono", channels=1, seed=1))
    assert gen.generate("x", duration=0.7, seed=0)[0].samples.shape == (1, 11200)
    net = gen.lm.composite()  # transformers' MusicgenForConditionalGeneration over the same parts
    assert net.text_encoder is not gen.lm.text.model  # a copy: the process-wide MiniLM is not adopted (and altered)
    tok = gen.lm.text.tokenizer(["x"], return_tensors="pt", return_token_type_ids=False)
    torch.manual_seed(0)
    audio = net.generate(**tok, do_sample=True, guidance_scale=3.0, max_new_tokens=10 + gen.lm.max_delay)
    assert audio.shape == (1, 1, 10 * 320)


def test_strict_loading_names_keys(folder, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from foley.families.lm.pipeline import LMGenerator

    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    path = bad / "decoder" / "model.safetensors"
    state = load_file(path)
    key = sorted(state)[-1]
    state["renamed." + key] = state.pop(key)
    save_file(state, path)
    with pytest.raises(ModelError, match="missing: " + key.replace(".", r"\.")):
        LMGenerator.from_folder(bad)
    shutil.copy(folder / "decoder" / "model.safetensors", path)
    shutil.rmtree(bad / "text_projection")
    with pytest.raises(ModelError, match="text_projection"):
        LMGenerator.from_folder(bad)


# --- training ---------------------------------------------------------------------------------------
def test_tiny_training_tokens_loss_resume_export(tmp_path):
    import shutil

    from foley.families.lm.pipeline import LMGenerator
    from foley.families.lm.train import train_decoder, train_lm
    from foley.train.loop import Checkpointer
    from tests.ldm_tiny import tiny_corpus

    manifest = tiny_corpus(tmp_path)
    codec = random_codec().save(tmp_path / "codec")
    recipe = {"seed": 0, "audio": {"valid_fraction": 0.2},
              "lm": {"codec": str(codec), **DECODER, "channels": 2, "window_seconds": 0.4, "batch_size": 4,
                     "steps": 6, "warmup": 1, "lr": 3e-3, "crops_per_clip": 2, "valid_items": 4, "max_duration": 3.0,
                     "chunk_frames": 5, "context_frames": 5, "export_dtype": "float16"},
              "train": {"threads": 1, "log_every": 1, "valid_every": 3, "save_every": 3}}
    model = train_lm([manifest], recipe, tmp_path / "run", dest=tmp_path / "model")
    toks = torch.load(tmp_path / "run" / "tokens" / "train.pt")
    assert toks["codes"].dtype == torch.int16 and toks["codes"].shape[1:] == (4, 20)
    n_valid = torch.load(tmp_path / "run" / "tokens" / "valid.pt")["codes"].shape[0]
    assert len(toks["captions"]) == toks["codes"].shape[0] == 2 * (10 - n_valid)  # 2 crops per training clip
    log = [json.loads(x) for x in (tmp_path / "run" / "lm" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) == 6 and losses[-1] < losses[0] < np.log(64) + 1
    assert any(np.isfinite(r.get("valid_loss", np.nan)) for r in log)
    gen = LMGenerator.from_folder(model)
    assert gen.generate("a tone", duration=0.5, seed=0)[0].frames == 8000
    assert (model / "decoder" / "model.safetensors").stat().st_size < 200_000  # float16 export

    shutil.rmtree(tmp_path / "run" / "lm" / "final")  # killed before the end: resumes from step 6
    recipe["lm"]["steps"] = 8
    train_decoder(recipe, tmp_path / "run")
    assert torch.load(Checkpointer(tmp_path / "run" / "lm" / "ckpt").path, weights_only=False)["step"] == 8
    steps = [json.loads(x)["step"] for x in (tmp_path / "run" / "lm" / "log.jsonl").read_text().splitlines()]
    assert steps.count(1) == 1


# --- CLI --------------------------------------------------------------------------------------------
def test_cli_generate_edit_and_stream(foley_cli, folder, tmp_path, monkeypatch):
    import soundfile as sf

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    r = foley_cli("generate", "a tone", "-m", folder, "-d", "1.1", "--seed", "3", "-o", tmp_path / "g.wav")
    assert r.returncode == 0, r.stderr
    g, rate = sf.read(tmp_path / "g.wav")
    assert rate == 16000 and g.shape == (17600, 2)
    assert json.loads((tmp_path / "g.json").read_text())["model"]["family"] == "lm"
    r = foley_cli("stream", "a tone", "-m", folder, "-d", "1.1", "--seed", "3", "-o", tmp_path / "s.wav")
    assert r.returncode == 0, r.stderr
    assert "first chunk after" in r.stderr and not (tmp_path / "s.part.wav").exists()
    assert np.array_equal(sf.read(tmp_path / "s.wav")[0], g)
    r = foley_cli("generate", "a tone", "--stream", "-m", folder, "-d", "1.1", "--seed", "3", "-o", tmp_path / "t.wav")
    assert r.returncode == 0 and "first chunk after" in r.stderr, r.stderr
    assert np.array_equal(sf.read(tmp_path / "t.wav")[0], g)
    # raw PCM on stdout (`-o -`, for aplay) is the saved WAV's data, sample for sample (rounded as libsndfile does)
    import subprocess
    import sys

    raw = subprocess.run([sys.executable, "-m", "foley", "stream", "a tone", "-m", str(folder), "-d", "1.1", "--seed",
                          "3", "-o", "-"], capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                         timeout=120)
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == sf.read(tmp_path / "g.wav", dtype="int16")[0].astype("<i2").tobytes()
    r = foley_cli("generate", "a tone", "--stream", "-d", "1", "-o", tmp_path / "u.wav")  # default: diffusion
    assert r.returncode == 2 and "cannot stream" in r.stderr and not (tmp_path / "u.wav").exists()
    r = foley_cli("edit", tmp_path / "g.wav", "a tone", "-t", "continue", "-m", folder, "-d", "2",
                  "-o", tmp_path / "c.wav")
    assert r.returncode == 0, r.stderr
    assert sf.read(tmp_path / "c.wav")[0].shape == (32000, 2)
    r = foley_cli("generate", "a tone", "-m", folder, "-d", "1", "--scheduler", "ddim", "-o", tmp_path / "x.wav")
    assert r.returncode == 2 and "scheduler" in r.stderr and not (tmp_path / "x.wav").exists()


def test_coupled_stereo_sampling_keeps_marginals_and_couples_channels():
    from transformers.generation.logits_process import ClassifierFreeGuidanceLogitsProcessor

    from foley.families.lm.sampling import CoupledStereoSampling

    torch.manual_seed(0)
    v, n_q = 6, 2
    logits = torch.randn(n_q * 2, v) * 1.5        # rows L0, R0, L1, R1
    logits[1] = logits[0]                          # codebook 0: both channels predict the same
    proc = CoupledStereoSampling(2, None)
    ids = torch.zeros(4, 1, dtype=torch.long)
    draws = torch.stack([proc(ids, logits).argmax(-1) for _ in range(4000)])   # [N, rows]
    assert torch.equal(draws[:, 0], draws[:, 1]), "same distribution -> same code in both channels"
    assert (draws[:, 2] != draws[:, 3]).any()
    for row in range(4):                           # each stream keeps its own distribution (Gumbel-max)
        freq = torch.bincount(draws[:, row], minlength=v).float() / len(draws)
        assert torch.allclose(freq, logits[row].softmax(-1), atol=0.03)
    # top-k inside the processor; with guidance it hands transformers' guidance a pair that yields the choice
    cond, uncond = torch.randn(4, v), torch.randn(4, v)
    torch.manual_seed(1)
    out = CoupledStereoSampling(2, 3.0, top_k=2)(ids, torch.cat([cond, uncond]))  # ids: cond rows only
    final = ClassifierFreeGuidanceLogitsProcessor(3.0)(ids, out)
    choice = final.argmax(-1)
    guided = uncond + 3.0 * (cond - uncond)
    assert all(c in guided[r].topk(2).indices for r, c in enumerate(choice.tolist()))
    assert torch.allclose(final.softmax(-1), torch.nn.functional.one_hot(choice, v).float())


def test_coupling_setting_changes_the_stereo_draws_and_stays_seeded(folder):
    from foley.families.lm.pipeline import LMGenerator

    on = LMGenerator.from_folder(folder)
    off = LMGenerator.from_folder(folder)
    off.sampling["stereo_coupling"] = False
    a, b = (g.generate("a tone", duration=0.8, seed=2)[0].samples for g in (on, off))
    assert a.shape == b.shape and not np.array_equal(a, b)
    assert np.array_equal(a, on.generate("a tone", duration=0.8, seed=2)[0].samples)


def test_soft_clip_and_silence_redraw(gen, monkeypatch):
    from foley.families.lm.pipeline import CEILING, KNEE, soft_clip
    from foley.generator import SEED_STRIDE

    x = np.linspace(-3, 3, 6001, dtype=np.float32)[None]
    y = soft_clip(x)
    assert np.array_equal(y[np.abs(x) <= KNEE], x[np.abs(x) <= KNEE]) and np.abs(y).max() < CEILING
    assert np.all(np.diff(y[0]) >= 0)                      # monotonic: order of samples kept, no fold-back
    assert np.all(np.diff(y[0][np.abs(x[0]) < 1.2]) > 0)    # and still strictly so over the usual overshoots
    a = gen.generate("a tone", duration=0.6, seed=5)[0]
    assert "redrawn" not in a.meta
    monkeypatch.setattr(gen, "silent_dbfs", 200.0)         # everything counts as silent: all retries are used
    b = gen.generate("a tone", duration=0.6, seed=5)[0]
    assert b.meta["redrawn"] == {"reason": "RMS below 200 dBFS", "from_seed": 5, "tries": 2, "silent": True}
    assert b.meta["seed"] == 5 + 2 * SEED_STRIDE
    monkeypatch.setattr(gen, "silent_dbfs", -60.0)
    assert np.array_equal(gen.generate("a tone", duration=0.6, seed=b.meta["seed"])[0].samples, b.samples)


def tiny_t5(folder):
    """A random T5 encoder in the hub's folder layout (config.json model_type t5 + safetensors + tokenizer files;
    the tokenizer is MiniLM's: any tokenizer the Auto classes load will do for the loading path)."""
    from transformers import AutoTokenizer, T5Config, T5EncoderModel

    from foley.text import minilm_path

    tok = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
    torch.manual_seed(0)
    T5EncoderModel(T5Config(vocab_size=len(tok), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                            pad_token_id=tok.pad_token_id)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_t5_text_encoder_from_a_local_folder_trains_an_lm(tmp_path):
    from foley.families.lm.pipeline import LMGenerator
    from foley.families.lm.train import train_lm
    from foley.text import get_text_encoder
    from tests.ldm_tiny import tiny_corpus

    t5 = tiny_t5(tmp_path / "t5")
    enc = get_text_encoder(str(t5))
    emb = enc(["a tone", "rain on a tin roof"])
    assert enc.dim == 16 and emb.tokens.shape[0] == 2 and emb.tokens.shape[-1] == 16
    assert emb.mask[0].sum() < emb.mask[1].sum()
    with pytest.raises(ModelError, match="T5 folder"):
        get_text_encoder(str(tmp_path / "nothing-here"))
    codec = random_codec().save(tmp_path / "codec")
    recipe = {"seed": 0, "audio": {"valid_fraction": 0.2},
              "lm": {"codec": str(codec), **DECODER, "channels": 1, "window_seconds": 0.4, "batch_size": 4,
                     "steps": 2, "warmup": 1, "crops_per_clip": 1, "valid_items": 2, "max_duration": 2.0,
                     "text_encoder": str(t5)},
              "train": {"threads": 1, "valid_every": 2, "save_every": 2}}
    model = train_lm([tiny_corpus(tmp_path)], recipe, tmp_path / "run", dest=tmp_path / "model")
    assert json.loads((model / "foley.json").read_text())["text_encoder"] == str(t5)
    gen = LMGenerator.from_folder(model)
    assert gen.lm.text.dim == 16 and gen.lm.projection.in_features == 16
    assert gen.generate("a tone", duration=0.5, seed=0)[0].samples.shape == (1, 8000)


def test_on_step_reports_progress_without_changing_the_sound(gen):
    plain = gen.generate("a tone", duration=1.1, seed=4)[0]   # past the 0.6 s window: two windows
    seen = []
    gen.on_step = lambda i, n: seen.append((i, n))
    try:
        hooked = gen.generate("a tone", duration=1.1, seed=4)[0]
    finally:
        gen.on_step = None
    assert np.array_equal(plain.samples, hooked.samples)
    frames = gen.lm.frames(1.1)
    assert seen[-1] == (frames, frames) and all(n == frames for _, n in seen)
    assert [i for i, _ in seen] == sorted(i for i, _ in seen) and seen[0][0] <= 1


# --- the fast sampling loop (foley/families/lm/decode.py) ---------------------------------------------
@pytest.fixture(scope="module")
def mono(tmp_path_factory):
    from foley.families.lm.pipeline import LMGenerator

    return LMGenerator.from_folder(build_lm(tmp_path_factory.mktemp("lm") / "mono", channels=1, seed=1))


@pytest.mark.parametrize("case", ["coupled", "independent", "plain", "negative", "nucleus", "prompt", "mono"])
def test_fast_loop_draws_the_codes_of_transformers_generate(gen, mono, monkeypatch, case):
    """The fast loop is an optimisation only: for every sampling path it returns (and streams) exactly the codes
    ``MusicgenForCausalLM.generate`` draws for the same seed (FOLEY_LM_LOOP=generate)."""
    from foley.families.lm import decode
    from foley.families.lm.stream import stream_frames

    lm = (mono if case == "mono" else gen).lm
    settings = {**gen.sampling, "guidance_scale": 1.0 if case == "plain" else 3.0,
                "stereo_coupling": case != "independent"}
    if case == "nucleus":
        settings.update(top_k=0, top_p=0.6, temperature=0.8)
    states, mask = lm.condition(["a tone"], ["noise" if case == "negative" else None],
                                guidance=settings["guidance_scale"] > 1)
    prompt = torch.randint(0, 64, (lm.num_codebooks, 5)) if case == "prompt" else None
    assert decode.supported(lm.decoder)
    runs = {}
    for loop in ("generate", "fast"):
        monkeypatch.setenv("FOLEY_LM_LOOP", loop)
        steps = []
        codes = lm.sample(states, mask, 17, seed=8, sampling=settings, prompt=prompt,
                          on_step=lambda i, n, s=steps: s.append((i, n)))
        blocks = list(stream_frames(lm, states, mask, 17, 8, settings, prompt=prompt))
        runs[loop] = (codes, torch.cat(blocks, -1), steps, torch.rand(3))  # the generator left in the same state
    (c0, b0, s0, r0), (c1, b1, s1, r1) = runs["generate"], runs["fast"]
    assert torch.equal(c0, c1) and torch.equal(b0, b1) and s0 == s1 and torch.equal(r0, r1)
    assert c1.shape[-1] == 17 + (5 if prompt is not None else 0) and len(s1) == 17 + lm.max_delay


def test_fast_step_logits_are_the_decoders_own(gen):
    """One fast step gives bit-identical logits to the decoder's forward over a transformers cache."""
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    from foley.families.lm.decode import Step

    lm = gen.lm
    dec, k = lm.decoder, lm.num_codebooks
    states, mask = lm.condition(["a tone"], ["noise"], guidance=True)
    cols = torch.randint(0, 64, (2 * k, 9))
    cache = EncoderDecoderCache(DynamicCache(config=dec.config), DynamicCache(config=dec.config))
    step = Step(dec, states, mask, 9)
    with torch.no_grad():
        for t in range(9):
            ref = dec(input_ids=cols[:, t:t + 1], encoder_hidden_states=states, encoder_attention_mask=mask,
                      cache=cache, use_cache=True).logits[:, -1]
            assert torch.equal(step.logits(cols[:, t]), ref), t


def test_fast_loop_falls_back_and_refuses_an_unknown_loop(folder, monkeypatch):
    from foley.families.lm import decode
    from foley.families.lm.pipeline import LMGenerator

    gen = LMGenerator.from_folder(folder)
    gen.lm.decoder.generation_config.repetition_penalty = 1.2  # a processor the fast loop does not have
    assert not decode.supported(gen.lm.decoder)
    assert gen.generate("x", duration=0.3, seed=1)[0].frames == 4800  # generate() did it
    monkeypatch.setenv("FOLEY_LM_LOOP", "turbo")
    with pytest.raises(ModelError, match="FOLEY_LM_LOOP=turbo"):
        gen.generate("x", duration=0.3, seed=1)


def test_text_states_are_encoded_once_per_prompt(folder, monkeypatch):
    from foley.families.lm.pipeline import LMGenerator

    gen = LMGenerator.from_folder(folder)
    lm, calls = gen.lm, []
    encode = lm.text.__class__.__call__
    monkeypatch.setattr(lm.text.__class__, "__call__", lambda self, texts: calls.append(texts) or encode(self, texts))
    a = gen.generate("a tone", duration=0.3, seed=1, num_variations=3)
    again = gen.generate("a tone", duration=0.3, seed=1)[0]
    assert len(calls) == 1 and np.array_equal(a[0].samples, again.samples)  # variations and re-rolls: one encoding
    gen.generate("a tone", duration=0.3, seed=1, negative_prompt="noise")
    assert len(calls) == 2  # another negative prompt is another condition
    states, _ = lm.condition(["a tone"], guidance=True)
    with torch.no_grad():
        lm.projection.weight.mul_(2.0)  # trained in place: never answered from the cache
    assert not torch.equal(lm.condition(["a tone"], guidance=True)[0], states) and len(calls) == 3
