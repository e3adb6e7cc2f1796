"""Our neural codec on tiny configs: shapes and exact lengths, bitrates, token files, chunked decoding,
training (loss goes down, resume), strict loading, and `foley codec` through the real CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")

from foley.audio import Audio  # noqa: E402
from foley.errors import FoleyError, ModelError, RequestError  # noqa: E402

TINY = {"num_filters": 4, "hidden_size": 16, "codebook_size": 64, "n_q": 3}


pytestmark = pytest.mark.usefixtures("one_thread")


def random_codec(seed: int = 0):
    """An untrained codec with random (not all-zero) codebooks, so codes vary with the input."""
    from transformers import EncodecModel

    from foley.codec.config import codec_config
    from foley.codec.model import FoleyCodec

    torch.manual_seed(seed)
    net = EncodecModel(codec_config(TINY))
    with torch.no_grad():  # each codebook: random residual frames of noise (a one-pass k-means start)
        residual = net.encoder(torch.randn(4, 1, 16000) * 0.2).transpose(1, 2).reshape(-1, TINY["hidden_size"])
        for layer in net.quantizer.layers:
            embed = residual[torch.randperm(residual.shape[0])[: TINY["codebook_size"]]]
            layer.codebook.embed.copy_(embed)
            residual = residual - layer.codebook.decode(layer.codebook.encode(residual))
    return FoleyCodec(net, meta={"licence": "test"})


@pytest.fixture(scope="module")
def codec_folder(tmp_path_factory):
    from foley.codec.model import FoleyCodec

    folder = random_codec().save(tmp_path_factory.mktemp("codec") / "tiny")
    return folder, FoleyCodec.from_folder(folder)


def noise(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> Audio:
    x = np.random.default_rng(seed).standard_normal((channels, int(round(seconds * rate)))) * 0.2
    return Audio(x.astype(np.float32), rate)


# --- model ------------------------------------------------------------------------------------------
def test_bandwidth_ladder_maps_back_to_each_codebook_count():
    from transformers import EncodecConfig
    from transformers.models.encodec.modeling_encodec import EncodecResidualVectorQuantizer

    from foley.codec.config import bandwidths

    for rate, size, n_q in ((50.0, 2048, 4), (50.0, 1024, 8), (75.0, 1024, 32), (50.0, 64, 3)):
        cfg = EncodecConfig(sampling_rate=int(rate * 320), upsampling_ratios=[8, 5, 4, 2], codebook_size=size,
                            hidden_size=4, target_bandwidths=bandwidths(rate, size, n_q))
        q = EncodecResidualVectorQuantizer(cfg)
        assert cfg.num_quantizers == n_q
        assert [q.get_num_quantizers_for_bandwidth(b) for b in cfg.target_bandwidths] == list(range(1, n_q + 1))


def test_round_trip_shapes_and_exact_length(codec_folder):
    _, codec = codec_folder
    assert (codec.sample_rate, codec.hop_length, codec.frame_rate, codec.num_quantizers) == (16000, 320, 50.0, 3)
    src = noise(0.5123, 22050)  # another rate and a length that is no multiple of the hop
    n = int(round(src.duration * 16000))
    codes = codec.encode(src)
    assert codes.dtype == np.int64 and codes.shape == (3, int(np.ceil(src.resample(16000).frames / 320)))
    assert 0 <= codes.min() and codes.max() < 64 and len(np.unique(codes[0])) > 1
    out = codec.decode(codes, frames=src.resample(16000).frames)
    assert out.sample_rate == 16000 and out.channels == 1 and out.frames == src.resample(16000).frames
    rec = codec.reconstruct(src)
    assert abs(rec.frames - n) <= 1 and np.isfinite(rec.samples).all()


def test_fewer_codebooks_still_decode(codec_folder):
    _, codec = codec_folder
    src = noise(0.3, 16000, seed=1)
    full = codec.encode(src)
    for n, bw in zip(range(1, 4), codec.bandwidths, strict=True):
        low = codec.encode(src, bandwidth=bw)
        assert low.shape[0] == n and np.array_equal(low, full[:n])  # residual VQ: a prefix of the full codes
        assert np.array_equal(codec.encode(src, n_q=n), low)
        assert codec.decode(low, frames=src.frames).frames == src.frames
    with pytest.raises(RequestError, match="offers"):
        codec.encode(src, bandwidth=7.0)
    with pytest.raises(RequestError, match="outside"):
        codec.encode(src, n_q=4)


def test_training_quantizer_matches_the_transformers_codebooks():
    """ResidualVQ (EMA, k-means, dropout) trains the codebooks; copied into EncodecModel they code the same."""
    from foley.codec.train import build_rvq, settings, sync_codebooks

    codec = random_codec()
    rvq = build_rvq(settings({"codec": TINY}))
    rvq.train()
    z = torch.randn(8, 40, 16)
    rvq.quantize_dropout = False
    rvq(z)
    rvq.quantize_dropout = True
    for _ in range(3):
        rvq(torch.randn(8, 40, 16))
    rvq.eval()
    q, idx, _ = rvq(z)
    sync_codebooks(codec.net, rvq)
    codes = codec.net.quantizer.encode(z.transpose(1, 2), bandwidth=codec.bandwidths[-1])  # [n_q, B, F]
    assert torch.equal(codes.permute(1, 2, 0), idx)
    assert torch.allclose(codec.net.quantizer.decode(codes).transpose(1, 2), q, atol=1e-6)


def test_chunked_decoding_is_push_order_independent_and_close_to_whole(codec_folder):
    _, codec = codec_folder
    codes = torch.from_numpy(codec.encode(noise(1.0, 16000, seed=2)))[None]  # [1, 3, 50]
    whole = codec.decode_tensor(codes)[:, 0].numpy()
    one = codec.chunk_decoder(3, 10, max_chunk_frames=12)
    parts = [one.push(codes[..., i:i + 1]) for i in range(codes.shape[-1])] + [one.flush()]
    assert [p.shape[-1] // 320 for p in parts if p.shape[-1]] == [3, 6, 12, 12, 12, 5]  # chunks double, then cap
    a = np.concatenate(parts, axis=-1)
    all_at_once = codec.chunk_decoder(3, 10, max_chunk_frames=12)
    b = np.concatenate([all_at_once.push(codes), all_at_once.flush()], axis=-1)
    assert a.shape == whole.shape and np.array_equal(a, b)
    assert np.abs(a - whole).max() < 0.05 * np.abs(whole).max()  # causal codec: history beyond 10 frames fades


def copy_with_a_renamed_key(folder, bad):
    """A copy of a codec folder whose first weight is stored under another name; returns the original name."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(folder, bad)
    state = load_file(bad / "model.safetensors")
    key = sorted(state)[0]
    state["renamed." + key] = state.pop(key)
    save_file(state, bad / "model.safetensors")
    return key


def test_strict_loading_names_keys(codec_folder, tmp_path):
    from foley.codec.model import FoleyCodec

    key = copy_with_a_renamed_key(codec_folder[0], tmp_path / "bad")
    with pytest.raises(ModelError, match="missing: " + key.replace(".", r"\.")):
        FoleyCodec.from_folder(tmp_path / "bad")
    with pytest.raises(ModelError, match="not a foley codec"):
        FoleyCodec.from_folder(tmp_path)


# --- token files ------------------------------------------------------------------------------------
def test_token_file_round_trip_header_and_size(tmp_path):
    from foley.codec.tokens import TokenFile, read_tokens, write_tokens

    codes = np.random.default_rng(0).integers(0, 1024, (2, 4, 77))
    tf = TokenFile(codes=codes, codec="starter-lm", codec_hash="abc123def456", sample_rate=16000, frame_rate=50.0,
                   codebook_size=1024, length=24555, extra={"source": "x.wav"})
    path = write_tokens(tmp_path / "x.foley", tf)
    back = read_tokens(path)
    assert np.array_equal(back.codes, codes)
    h = back.header()
    assert h == {"codec": "starter-lm", "codec_hash": "abc123def456", "sample_rate": 16000, "frame_rate": 50.0,
                 "codebook_size": 1024, "length": 24555, "extra": {"source": "x.wav"}, "channels": 2, "n_q": 4,
                 "frames": 77}
    assert back.bitrate == 2 * 4 * 50 * 10
    payload = path.stat().st_size - 14 - len(json.dumps(h, sort_keys=True))
    assert payload == int(np.ceil(codes.size * 10 / 8))  # bit-packed: exactly the bitrate
    usage = back.usage()
    assert len(usage) == 4 and all(0 < u["used"] <= 1 and u["perplexity"] > 1 for u in usage)


def test_token_file_refuses_unknown_versions_and_damage(tmp_path):
    from foley.codec.tokens import TokenFile, dumps, loads

    data = dumps(TokenFile(codes=np.zeros((1, 2, 5), np.int64), codec="c", codec_hash="h", sample_rate=16000,
                           frame_rate=50.0, codebook_size=64, length=1600))
    newer = data[:8] + (2).to_bytes(2, "little") + data[10:]
    with pytest.raises(FoleyError, match="version 2 is not supported") as e:
        loads(newer, "x.foley")
    assert "\n" not in str(e.value)
    with pytest.raises(FoleyError, match="not a foley token file"):
        loads(b"RIFF" + data[4:], "x.foley")
    with pytest.raises(FoleyError, match="truncated"):
        loads(data[:-1], "x.foley")


# --- training ---------------------------------------------------------------------------------------
def test_tiny_training_reduces_loss_resumes_and_exports(tmp_path):
    import shutil

    from foley.codec.model import FoleyCodec
    from foley.codec.train import train_codec
    from foley.train.loop import Checkpointer
    from tests.ldm_tiny import tiny_corpus

    manifest = tiny_corpus(tmp_path)
    recipe = {"seed": 0, "audio": {"valid_fraction": 0.2},
              "codec": {**TINY, "crop_seconds": 0.2, "batch_size": 4, "steps": 8, "adv_start": 6, "lr": 2e-3,
                        "valid_items": 2, "valid_seconds": 0.4, "kmeans_iters": 2},
              "train": {"threads": 1, "log_every": 1, "valid_every": 4, "save_every": 4}}
    final = train_codec([manifest], recipe, tmp_path / "run")
    log = [json.loads(x) for x in (tmp_path / "run" / "codec" / "log.jsonl").read_text().splitlines()]
    assert len([r for r in log if "rec" in r]) == 8
    assert any("adv" in r and "fm" in r and "disc" in r for r in log)  # the adversarial phase ran
    valid = {r["step"]: r["valid"] for r in log if "valid" in r}  # fixed clips at every bitrate, step 0 included
    assert sorted(valid) == [0, 4, 8] and len(valid[8]) == 3

    def mel(step):
        return np.mean([v["mel_distance"] for v in valid[step].values()])

    assert np.isfinite(mel(8)) and mel(8) < mel(0)
    codec = FoleyCodec.from_folder(final)
    assert codec.encode(noise(0.3, 16000)).shape == (3, 15)
    assert sorted(p.name for p in final.iterdir()) == ["config.json", "foley_codec.json", "model.safetensors"]

    shutil.rmtree(final)  # pretend the run was killed: a longer recipe continues from the checkpoint
    recipe["codec"]["steps"] = 10
    train_codec([manifest], recipe, tmp_path / "run")
    state = torch.load(Checkpointer(tmp_path / "run" / "codec" / "ckpt").path, weights_only=True)
    assert state["step"] == 10
    steps = [json.loads(x)["step"] for x in (tmp_path / "run" / "codec" / "log.jsonl").read_text().splitlines()]
    assert steps.count(1) == 1 and 10 in steps



def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    """The codec GAN on the training harness (two optimisers, manual optimisation): killed after its step-2
    checkpoint, in the adversarial phase, and run again, it logs the uninterrupted run's losses (discriminator's
    included), each step once, and ends with the same codec and discriminator weights."""
    from foley.codec.train import CodecSolver
    from tests.ldm_tiny import tiny_corpus
    from tests.solver_resume import check_resume

    manifest = tiny_corpus(tmp_path)
    recipe = {"seed": 0, "audio": {"valid_fraction": 0.2, "cache_dir": str(tmp_path / "cache")},
              "codec": {**TINY, "crop_seconds": 0.2, "batch_size": 4, "steps": 5, "adv_start": 1, "lr": 2e-3,
                        "valid_items": 2, "valid_seconds": 0.4, "kmeans_iters": 2},
              "train": {"threads": 1, "log_every": 1, "valid_every": 100, "save_every": 2}}
    check_resume(CodecSolver, [manifest], recipe, tmp_path, kill=4)
    logs = [[json.loads(x) for x in (tmp_path / run / "codec" / "log.jsonl").read_text().splitlines()]
            for run in ("whole", "cut")]
    assert [r["disc"] for r in logs[0] if "disc" in r] == [r["disc"] for r in logs[1] if "disc" in r]
    assert len([r for r in logs[1] if "disc" in r]) == 4  # steps 2..5 are adversarial
    a, b = (torch.load(tmp_path / run / "codec" / "ckpt" / "last.pt", weights_only=True) for run in ("whole", "cut"))
    assert all(torch.equal(a["disc"][k], b["disc"][k]) for k in a["disc"])


# --- CLI --------------------------------------------------------------------------------------------
def test_cli_encode_info_decode_exact_length(foley_cli, codec_folder, write_audio, tmp_path, monkeypatch):
    import soundfile as sf

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    folder, _ = codec_folder
    src = tmp_path / "in.wav"
    write_audio(src, seconds=0.777, rate=16000, channels=2)
    r = foley_cli("codec", "encode", src, "-o", tmp_path / "x.foley", "-c", folder, "--n-q", "2")
    assert r.returncode == 0, r.stderr
    assert "bitrate 1.2 kbps" in r.stdout and "codebook usage: q0" in r.stdout
    r = foley_cli("codec", "decode", tmp_path / "x.foley", "-o", tmp_path / "out.wav")
    assert r.returncode == 0, r.stderr
    data, rate = sf.read(tmp_path / "out.wav")
    assert rate == 16000 and data.shape == (int(round(0.777 * 16000)), 2)
    info = foley_cli("codec", "info", folder)
    assert info.returncode == 0 and "50 frames/s" in info.stdout and "0.3, 0.6, 0.9" in info.stdout


def test_cli_refuses_wrong_codec_and_newer_files(foley_cli, codec_folder, tmp_path, monkeypatch):
    from foley.codec.tokens import TokenFile, write_tokens

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    folder, codec = codec_folder
    tf = TokenFile(codes=np.zeros((1, 2, 5), np.int64), codec=str(folder), codec_hash="000000000000",
                   sample_rate=16000, frame_rate=50.0, codebook_size=64, length=1600)
    write_tokens(tmp_path / "other.foley", tf)
    r = foley_cli("codec", "decode", tmp_path / "other.foley", "-o", tmp_path / "o.wav")
    assert r.returncode == 2 and "pass the codec that encoded it" in r.stderr and not (tmp_path / "o.wav").exists()
    newer = tmp_path / "newer.foley"
    data = (tmp_path / "other.foley").read_bytes()
    newer.write_bytes(data[:8] + (9).to_bytes(2, "little") + data[10:])
    r = foley_cli("codec", "decode", newer, "-o", tmp_path / "o.wav")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "version 9 is not supported" in lines[0]


def test_cli_public_encodec_folder(foley_cli, write_audio, tmp_path, monkeypatch):
    """A public EnCodec checkpoint (tiny, in the hub layout) works through the same commands."""
    from tests.public_fixtures import build_encodec

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    folder = build_encodec(tmp_path / "encodec_24khz")
    write_audio(tmp_path / "in.wav", seconds=0.2, rate=24000)
    r = foley_cli("codec", "encode", tmp_path / "in.wav", "-o", tmp_path / "x.foley", "-c", folder, "-b", "3.0")
    assert r.returncode == 0, r.stderr
    assert "4 x 1024 codes" in r.stdout and "75 frames/s" in r.stdout
    r = foley_cli("codec", "decode", tmp_path / "x.foley", "-o", tmp_path / "o.wav")
    assert r.returncode == 0, r.stderr
    import soundfile as sf

    assert sf.read(tmp_path / "o.wav")[0].shape == (4800,)


# --- bench/quality_codec.py -------------------------------------------------------------------------
def test_quality_bench_rows_finite_and_same_bit_budget(tmp_path):
    """The codec quality benchmark on a tiny random codec and 2 short clips: one row per bitrate, a same-rate
    mel + Griffin-Lim row per bitrate and the unquantised mel64 ceiling, all finite; baseline budget = codec's."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import quality_codec as bench

    codec = random_codec()
    t = np.arange(16000) / 16000
    clips = [(0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t)).astype(np.float32),
             noise(0.7, 16000, seed=2).samples[0]]
    res = bench.measure(codec, clips, gl_iters=4, n_resamples=200)
    rows = res.rows
    assert [r.method for r in rows] == ["codec", "mel+GL"] * codec.num_quantizers + ["mel64+GL"]
    assert [r.n_q for r in rows if r.method == "codec"] == [1, 2, 3]
    for r in rows:
        assert all(len(v) == 2 and np.isfinite(v).all() for v in r.values.values()), r
        assert all(np.isfinite(s["mean"]) for s in r.stats.values())
    for n in range(1, codec.num_quantizers + 1):
        c, b = (r for r in rows if r.n_q == n)
        assert c.kbps == pytest.approx(n * 6 * 50 / 1000)  # 64 codes = 6 bits, 50 frames/s
        assert b.kbps == pytest.approx(c.kbps, rel=0.1)
    assert len(res.comparisons) == 3 and len(bench.table(res).splitlines()) == 2 + len(rows)
    pngs = bench.plot(res, tmp_path, ["a.wav", "b.wav"])
    assert len(pngs) == 2 and all(p.stat().st_size > 0 for p in pngs)
