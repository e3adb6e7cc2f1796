"""The mel-domain RVQ codec (foley.codec.melcodec) on tiny configs: exact lengths, every codebook count, strict
folders and dispatch, token files, chunked decoding with look-ahead, training + resume, and a token LM on it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from foley.audio import Audio  # noqa: E402
from foley.errors import ModelError, RequestError  # noqa: E402
from tests.test_codec import copy_with_a_renamed_key  # noqa: E402

NET = {"hidden": 16, "latent_dim": 8, "blocks": 1, "codebook_size": 64, "n_q": 4, "kmeans_iters": 2,
       "mean": -6.0, "std": 3.0, "lookahead_frames": 4}
VOCODER = {"dim": 16, "hidden_dim": 32, "num_layers": 1}


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_vocoder(folder):
    """A random tiny NeuralVocoder folder (non-zero head, so its output depends on the mel)."""
    from foley.vocoder.neural import NeuralVocoder

    torch.manual_seed(0)
    voc = NeuralVocoder(**VOCODER).eval()
    torch.nn.init.normal_(voc.head.weight, std=0.01)
    voc.save_pretrained(folder)
    return folder


def random_mel_codec(vocoder_folder, seed: int = 0, **changes):
    """An untrained mel codec whose codebooks are k-means-initialised on noise (codes vary with the input)."""
    from foley.codec.melcodec import MelCodec, MelCodecNet
    from foley.vocoder import load_vocoder

    torch.manual_seed(seed)
    net = MelCodecNet(**{**NET, **changes})
    codec = MelCodec(net, load_vocoder(vocoder_folder), meta={"licence": "test"}, vocoder_folder=vocoder_folder)
    net.train()
    with torch.no_grad():
        net.rvq.quantize_dropout = False
        net.rvq(net.encoder(net.normalise(codec.mel_of(torch.randn(8, 1, 16384) * 0.2))).transpose(1, 2))
    net.eval()
    return codec


@pytest.fixture(scope="module")
def mel_folder(tmp_path_factory):
    from foley.codec import load_folder

    root = tmp_path_factory.mktemp("melcodec")
    voc = tiny_vocoder(root / "voc")
    folder = random_mel_codec(voc).save(root / "codec")
    return folder, load_folder(folder)


def noise(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> Audio:
    x = np.random.default_rng(seed).standard_normal((channels, int(round(seconds * rate)))) * 0.2
    return Audio(x.astype(np.float32), rate)


# --- model ------------------------------------------------------------------------------------------
def test_sizes_lengths_and_code_range(mel_folder):
    from foley.codec.melcodec import MelCodec

    _, codec = mel_folder
    assert isinstance(codec, MelCodec) and codec.kind == "mel" and codec.channels == 1 and codec.causal
    assert (codec.sample_rate, codec.hop_length, codec.frame_rate) == (16000, 512, 31.25)
    assert codec.bandwidths == [0.1875, 0.375, 0.5625, 0.75]  # 6 bits x 31.25 frames/s per codebook
    src = noise(0.5123, 22050)  # another rate, a length that is no multiple of the hop
    n = src.resample(16000).frames
    codes = codec.encode(src)
    assert codes.dtype == np.int64 and codes.shape == (4, codec.frames_for(n)) == (4, 17)
    assert 0 <= codes.min() and codes.max() < 64 and len(np.unique(codes[0])) > 1
    assert codec.decode(codes, frames=n).frames == n and codec.reconstruct(src).frames == n
    x = torch.from_numpy(noise(0.3, 16000).samples)[None]
    short = noise(0.01, 16000)  # 160 samples: one code frame, shorter than the STFT's padding
    assert codec.encode(short).shape == (4, 1) and codec.reconstruct(short).frames == 160
    c = codec.encode_tensor(x, 2)
    assert c.shape == (1, 2, 10) and codec.decode_tensor(c).shape == (1, 1, 10 * 512)


def test_every_codebook_count_decodes(mel_folder):
    _, codec = mel_folder
    src = noise(0.4, 16000, seed=1)
    full = codec.encode(src)
    outs = []
    for n, bw in zip(range(1, 5), codec.bandwidths, strict=True):
        low = codec.encode(src, bandwidth=bw)
        assert low.shape[0] == n and np.array_equal(low, full[:n])  # residual VQ: a prefix of the full codes
        assert np.array_equal(codec.encode(src, n_q=n), low)
        out = codec.decode(low, frames=src.frames)
        assert out.frames == src.frames and np.isfinite(out.samples).all()
        outs.append(out.samples)
    assert not np.array_equal(outs[0], outs[-1])  # more codebooks change the sound
    with pytest.raises(RequestError, match="outside"):
        codec.encode(src, n_q=5)
    with pytest.raises(RequestError, match="codes outside"):
        codec.decode(np.full((2, 3), 64))



def test_code_lookup_equals_the_vq_library(mel_folder):
    """MelCodecNet.mel looks codes up by hand (the library's einx path compiles per shape): the same numbers."""
    import torch

    _, codec = mel_folder
    net = codec.net
    gen = torch.Generator().manual_seed(0)
    for n in range(1, net.rvq.num_quantizers + 1):
        codes = torch.randint(0, net.rvq.codebook_size, (2, n, 7), generator=gen)
        with torch.no_grad():
            ref = net.decoder(net.rvq.get_output_from_indices(codes.transpose(1, 2)).transpose(1, 2))
            assert torch.equal(net.mel(codes), ref)

def test_folder_round_trip_dispatch_and_strict_loading(mel_folder, tmp_path):
    import shutil

    from foley.cli.codec import load_codec
    from foley.codec import load_folder
    from foley.codec.melcodec import MelCodec
    from foley.codec.model import FoleyCodec

    folder, codec = mel_folder
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "foley_codec.json", "model.safetensors",
                                                        "vocoder"]
    meta = json.loads((folder / "foley_codec.json").read_text())
    assert meta["kind"] == "mel" and meta["vocoder"] == "vocoder" and meta["frame_rate"] == 31.25
    again = load_codec(str(folder))
    assert isinstance(again, MelCodec) and again.weight_hash() == codec.weight_hash()
    x = torch.from_numpy(noise(0.25, 16000, seed=3).samples)[None]
    codes = codec.encode_tensor(x)
    assert torch.equal(again.encode_tensor(x), codes)
    assert torch.equal(again.decode_tensor(codes), codec.decode_tensor(codes))
    resaved = again.save(tmp_path / "resaved")  # the vocoder is copied as it is: same weights, same hash
    assert load_folder(resaved).weight_hash() == codec.weight_hash()
    with pytest.raises(ModelError, match="a 'mel' codec folder"):  # the base class does not know its subclass
        FoleyCodec.from_folder(folder)
    gl = MelCodec.from_folder(folder, vocoder="griffin-lim")  # the fallback only when asked for
    assert gl.decode_tensor(codes).shape == (1, 1, codes.shape[-1] * 512)

    bad = tmp_path / "bad"
    key = copy_with_a_renamed_key(folder, bad)
    with pytest.raises(ModelError, match="missing: " + key.replace(".", r"\.")):
        load_folder(bad)
    shutil.copy(folder / "model.safetensors", bad / "model.safetensors")
    cfg = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "hidden": 24}))
    with pytest.raises(ModelError, match="wrong shape"):
        load_folder(bad)
    (bad / "config.json").write_text(json.dumps(cfg))
    shutil.rmtree(bad / "vocoder")
    with pytest.raises(ModelError, match="vocoder"):
        load_folder(bad)


def test_token_file_round_trip(mel_folder, tmp_path):
    from foley.cli.codec import load_codec
    from foley.codec.tokens import TokenFile, read_tokens, write_tokens

    folder, codec = mel_folder
    src = noise(0.777, 16000, channels=2, seed=4)
    codes = np.stack([codec.encode(Audio(src.samples[i:i + 1], 16000), n_q=3) for i in range(2)])
    tf = TokenFile(codes=codes, codec=str(folder), codec_hash=codec.weight_hash(), sample_rate=codec.sample_rate,
                   frame_rate=codec.frame_rate, codebook_size=codec.codebook_size, length=src.frames)
    back = read_tokens(write_tokens(tmp_path / "x.foley", tf))
    assert np.array_equal(back.codes, codes) and back.bitrate == 2 * 3 * 31.25 * 6
    c = load_codec(back.codec)
    assert c.weight_hash() == back.codec_hash
    outs = [c.decode(back.codes[i], frames=back.length) for i in range(2)]
    assert all(o.frames == src.frames for o in outs)
    assert np.array_equal(outs[0].samples, codec.decode(codes[0], frames=src.frames).samples)


def test_chunked_decoding_with_lookahead_is_close_to_whole(mel_folder):
    """Push order never matters; with 4 frames of look-ahead and 10 of context the chunked decode matches the
    whole-clip decode. Measured with this tiny vocoder (receptive field ~3 code frames each side), max error
    over the peak for look-ahead 0 / 1 / 2 / 3 / 4 frames: 0.71 / 0.25 / 3e-3 / 4e-4 / 5e-6. (The starter
    vocoder sees ~10 code frames each side: 0.79 / 0.31 / 0.11 / 0.017 / 0 for 0 / 2 / 4 / 6 / 10 frames with
    25 frames of context, on an untrained codec.)"""
    _, codec = mel_folder
    t = np.arange(32000) / 16000
    tone = Audio((0.3 * np.sin(2 * np.pi * 440 * t * (1 + t))).astype(np.float32)[None], 16000)
    codes = torch.from_numpy(codec.encode(tone))[None]  # [1, 4, 63]
    whole = codec.decode_tensor(codes)[:, 0].numpy()
    one = codec.chunk_decoder(3, 10, max_chunk_frames=12)
    parts = [one.push(codes[..., i:i + 1]) for i in range(codes.shape[-1])] + [one.flush()]
    assert [p.shape[-1] // 512 for p in parts if p.shape[-1]] == [3, 6, 12, 12, 12, 12, 6]  # last: + look-ahead
    a = np.concatenate(parts, axis=-1)
    at_once = codec.chunk_decoder(3, 10, max_chunk_frames=12)
    b = np.concatenate([at_once.push(codes), at_once.flush()], axis=-1)
    assert a.shape == whole.shape and np.array_equal(a, b)
    peak = np.abs(whole).max()
    assert np.abs(a - whole).max() < 1e-4 * peak
    from foley.codec.model import ChunkDecoder

    blind = ChunkDecoder(codec, 3, 10, 1, 12, lookahead=0)
    c = np.concatenate([blind.push(codes), blind.flush()], axis=-1)
    assert np.abs(c - whole).max() > 0.1 * peak  # look-ahead is what helps


# --- training ---------------------------------------------------------------------------------------
def test_tiny_training_reduces_loss_resumes_and_exports(tmp_path):
    import shutil

    from foley.cli.codec import load_codec
    from foley.codec.melcodec import MelCodec
    from foley.codec.train import train_codec
    from foley.train.loop import Checkpointer
    from tests.ldm_tiny import tiny_corpus

    manifest = tiny_corpus(tmp_path)
    voc = tiny_vocoder(tmp_path / "voc")
    recipe = {"seed": 0, "audio": {"valid_fraction": 0.2},
              "codec": {**{k: v for k, v in NET.items() if k not in ("mean", "std")}, "kind": "mel",
                        "vocoder": str(voc), "crop_seconds": 0.256, "batch_size": 4, "steps": 8, "lr": 3e-3,
                        "warmup": 1, "valid_items": 2, "valid_seconds": 0.512, "stats_items": 8},
              "train": {"threads": 1, "log_every": 1, "valid_every": 4, "save_every": 4}}
    final = train_codec([manifest], recipe, tmp_path / "run")
    stage = tmp_path / "run" / "codec"
    log = [json.loads(x) for x in (stage / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) == 8 and losses[-1] < losses[0]
    valid = {r["step"]: r["valid"] for r in log if "valid" in r}
    assert sorted(valid) == [0, 4, 8] and len(valid[8]) == 5  # vocoder ceiling + 4 bitrates
    assert all(np.isfinite(v["mel_distance"]) and np.isfinite(v["mel_l1"])
               for k, v in valid[8].items() if k.startswith("kbps"))
    assert valid[8]["kbps_0.75"]["mel_l1"] < valid[0]["kbps_0.75"]["mel_l1"]
    stats = json.loads((stage / "mel_stats.json").read_text())
    codec = load_codec(str(final))
    assert isinstance(codec, MelCodec) and codec.net.config["mean"] == pytest.approx(stats["mean"])
    assert codec.encode(noise(0.3, 16000)).shape == (4, 10) and (final / "vocoder" / "config.json").is_file()

    shutil.rmtree(final)  # pretend the run was killed: a longer recipe continues from the checkpoint
    recipe["codec"]["steps"] = 10
    train_codec([manifest], recipe, tmp_path / "run")
    assert torch.load(Checkpointer(stage / "ckpt").path, weights_only=True)["step"] == 10
    steps = [json.loads(x)["step"] for x in (stage / "log.jsonl").read_text().splitlines()]
    assert steps.count(1) == 1 and 10 in steps


# --- the token LM on a mel codec --------------------------------------------------------------------
def test_token_lm_on_a_mel_codec(mel_folder, tmp_path):
    from foley.families.lm.model import LMConfig, TokenLM, new_decoder
    from foley.families.lm.pipeline import LMGenerator

    _, codec = mel_folder
    torch.manual_seed(0)
    decoder = new_decoder(codec, 2, {"hidden_size": 32, "layers": 2, "heads": 2, "n_q": 2, "dropout": 0.0})
    cfg = LMConfig(sample_rate=16000, channels=2, frame_rate=codec.frame_rate, window_seconds=0.6, max_duration=4.0,
                   defaults={"guidance_scale": 3.0, "top_k": 20, "top_p": 0.0, "temperature": 1.0},
                   decode={"chunk_frames": 5, "max_chunk_frames": 20, "context_frames": 10}, context_seconds=0.3)
    folder = TokenLM(codec, decoder, torch.nn.Linear(384, 32), cfg).save(tmp_path / "lm")
    assert json.loads((folder / "codec" / "foley_codec.json").read_text())["kind"] == "mel"
    gen = LMGenerator.from_folder(folder)
    assert gen.lm.codec.kind == "mel"
    gen.silent_dbfs = -200.0  # this random model whispers (~-80 dBFS): keep generate from redrawing, as a stream can't
    a = gen.generate("a tone", duration=1.1, seed=3)[0]  # past the 0.6 s window: long-form as well
    assert a.samples.shape == (2, 17600) and np.isfinite(a.samples).all() and np.abs(a.samples).max() > 0
    streamed = np.concatenate([c.samples for c in gen.stream("a tone", duration=1.1, seed=3)], axis=-1)
    assert np.array_equal(streamed, a.samples)
    with pytest.raises(ModelError, match="EncodecModel"):
        gen.lm.composite()


# --- CLI --------------------------------------------------------------------------------------------
def test_cli_encode_info_decode_exact_length(foley_cli, mel_folder, write_audio, tmp_path, monkeypatch):
    import soundfile as sf

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    folder, _ = mel_folder
    write_audio(tmp_path / "in.wav", seconds=0.777, rate=16000, channels=2)
    r = foley_cli("codec", "encode", tmp_path / "in.wav", "-o", tmp_path / "x.foley", "-c", folder, "-b", "0.375")
    assert r.returncode == 0, r.stderr
    assert "2 x 64 codes" in r.stdout and "31.25 frames/s" in r.stdout and "bitrate 0.75 kbps" in r.stdout
    r = foley_cli("codec", "decode", tmp_path / "x.foley", "-o", tmp_path / "out.wav")
    assert r.returncode == 0, r.stderr
    data, rate = sf.read(tmp_path / "out.wav")
    assert rate == 16000 and data.shape == (int(round(0.777 * 16000)), 2)
    info = foley_cli("codec", "info", folder)
    assert info.returncode == 0 and "hop 512 samples = 31.25 frames/s" in info.stdout
    assert "0.188, 0.375, 0.562, 0.75" in info.stdout


def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    """The mel codec on the training harness: killed after its step-2 checkpoint and run again, it logs the
    uninterrupted run's losses, each step once, and ends with the same weights."""
    from foley.codec.train_mel import MelCodecSolver
    from tests.ldm_tiny import tiny_corpus
    from tests.solver_resume import check_resume

    manifest = tiny_corpus(tmp_path)
    recipe = {"seed": 0, "audio": {"valid_fraction": 0.2, "cache_dir": str(tmp_path / "cache")},
              "codec": {**{k: v for k, v in NET.items() if k not in ("mean", "std")}, "kind": "mel",
                        "vocoder": str(tiny_vocoder(tmp_path / "voc")), "crop_seconds": 0.256, "batch_size": 4,
                        "steps": 5, "lr": 3e-3, "warmup": 1, "valid_items": 2, "valid_seconds": 0.512,
                        "stats_items": 8},
              "train": {"threads": 1, "log_every": 1, "valid_every": 100, "save_every": 2}}
    check_resume(MelCodecSolver, [manifest], recipe, tmp_path, kill=4)
