"""ClipDataset: exact crop lengths, rate/channel conversion, a stable split, the cache, captions."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch

from foley.data.dataset import ClipDataset
from foley.data.manifest import Clip, read_manifest, write_manifest
from foley.errors import AudioError


@pytest.fixture
def mixed(tmp_path, write_audio):
    """Three clips at different rates and channel counts, one shorter than the crop."""
    write_audio(tmp_path / "a" / "stereo.wav", seconds=0.7, rate=44100, channels=2, freq=1000.0)
    write_audio(tmp_path / "a" / "short.flac", seconds=0.2, rate=16000, channels=1, freq=1000.0)
    write_audio(tmp_path / "a" / "surround.wav", seconds=1.0, rate=48000, channels=6, freq=500.0)
    clips = [Clip(path="a/stereo.wav", duration=0.7, sample_rate=44100, description="stereo tone"),
             Clip(path="a/short.flac", duration=0.2, sample_rate=16000, description="short tone"),
             Clip(path="a/surround.wav", duration=1.0, sample_rate=48000, description="surround")]
    return write_manifest(tmp_path / "m.jsonl", clips)


@pytest.mark.parametrize(("rate", "channels", "seconds"), [(22050, 2, 0.5), (16000, 1, 0.3333), (48000, 2, 0.25)])
def test_exact_length_rate_and_channels(mixed, rate, channels, seconds):
    ds = ClipDataset([mixed], sample_rate=rate, channels=channels, clip_seconds=seconds, split="all")
    t = round(seconds * rate)
    assert len(ds) == 3
    for i in range(3):
        item = ds[i]
        assert item["audio"].dtype == torch.float32 and tuple(item["audio"].shape) == (channels, t)
        assert item["index"] == i
    short = ds[1]["audio"].numpy()
    n = round(0.2 * rate)
    if t > n:  # shorter clips are padded with silence at the end
        assert np.all(short[:, n + 16:] == 0) and np.abs(short[:, : n // 2]).max() > 0.3
    if channels == 2:  # mono source -> centred stereo
        assert np.array_equal(short[0], short[1])
    x = ds[0]["audio"].numpy()[0]  # the 1 kHz tone is still at 1 kHz after resampling
    assert abs(np.argmax(np.abs(np.fft.rfft(x))) * rate / len(x) - 1000.0) <= rate / len(x)


def test_batches_through_a_dataloader(mixed):
    ds = ClipDataset([mixed], sample_rate=16000, channels=2, clip_seconds=0.25, split="all")
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert tuple(batch["audio"].shape) == (3, 2, 4000) and len(batch["caption"]) == 3


def _many(tmp_path, n=60):
    return [Clip(path=f"clips/c{i:03d}.wav", duration=1.0, sample_rate=16000, description=f"sound {i % 7}")
            for i in range(n)]


def test_split_is_deterministic_and_order_free(tmp_path):
    clips = _many(tmp_path)
    m1 = write_manifest(tmp_path / "one" / "m.jsonl", clips)
    shuffled = clips[:]
    random.Random(3).shuffle(shuffled)
    m2 = write_manifest(tmp_path / "two" / "m.jsonl", shuffled)

    def paths(m, split, seed=0):
        return {c.path for c in ClipDataset([m], 16000, 1, 0.5, split=split, valid_fraction=0.2, seed=seed).clips}

    valid = paths(m1, "valid")
    assert 0 < len(valid) < 30
    assert valid == paths(m2, "valid") == paths(m1, "valid", seed=7)
    assert valid.isdisjoint(paths(m1, "train")) and valid | paths(m1, "train") == {c.path for c in clips}
    # A tiny set still gets one validation clip, the same one whatever the order.
    small = write_manifest(tmp_path / "s1.jsonl", clips[:3])
    small_rev = write_manifest(tmp_path / "s2.jsonl", clips[:3][::-1])
    assert len(paths(small, "valid")) == 1 and paths(small, "valid") == paths(small_rev, "valid")


def test_crops_and_captions(tmp_path, write_audio):
    rng = np.random.default_rng(0)
    import soundfile as sf

    (tmp_path / "n").mkdir()
    sf.write(str(tmp_path / "n" / "noise.wav"), 0.3 * rng.standard_normal(32000), 16000, subtype="FLOAT")
    clip = Clip(path="n/noise.wav", duration=2.0, sample_rate=16000, description="white noise",
                captions=["hiss", "static", "white noise"])
    m = write_manifest(tmp_path / "m.jsonl", [clip])
    full = sf.read(str(tmp_path / "n" / "noise.wav"), dtype="float32")[0]

    train = ClipDataset([m], 16000, 1, 0.25, split="all", seed=1)
    items = [train[0] for _ in range(40)]
    starts = set()
    for it in items:  # every crop is a real window of the file
        a = it["audio"].numpy()[0]
        start = int(np.flatnonzero(full == a[0])[0])
        assert np.allclose(full[start:start + 4000], a)
        starts.add(start)
    assert len(starts) > 30
    assert {it["caption"] for it in items} == {"white noise", "hiss", "static"}
    again = ClipDataset([m], 16000, 1, 0.25, split="all", seed=1)
    assert all(torch.equal(again[0]["audio"], it["audio"]) for it in items[:5])  # same seed, same crops

    valid = ClipDataset([m, m], 16000, 1, 0.25, split="valid", valid_fraction=0.5)
    firsts = [valid[0] for _ in range(5)]
    assert all(f["caption"] == "white noise" for f in firsts)
    assert all(np.allclose(f["audio"].numpy()[0], full[:4000]) for f in firsts)
    first = ClipDataset([m], 16000, 1, 0.25, split="all", caption_mode="first")
    assert {first[0]["caption"] for _ in range(10)} == {"white noise"}


def test_audiocraft_sidecar_caption(tmp_path, write_audio):
    write_audio(tmp_path / "dog.wav", seconds=0.5, rate=32000)
    (tmp_path / "dog.json").write_text(json.dumps({"description": "a dog barks", "keywords": "dog"}))
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": str(tmp_path / "dog.wav"), "duration": 0.5,
                                                  "sample_rate": 32000, "amplitude": None, "weight": None,
                                                  "info_path": None}) + "\n")
    ds = ClipDataset([tmp_path / "m.jsonl"], 16000, 1, 1.0, split="all")
    assert ds[0]["caption"] == "a dog barks" and ds[0]["audio"].shape == (1, 16000)


def test_cache_is_used_on_the_second_epoch(mixed, tmp_path):
    cache = tmp_path / "cache"  # 1 s crops: no clip is longer, so every crop starts at 0
    ds = ClipDataset([mixed], 22050, 2, 1.0, split="all", cache_dir=cache)
    plain = ClipDataset([mixed], 22050, 2, 1.0, split="all")
    expected = [plain[i]["audio"] for i in range(len(plain))]
    assert len(ds) == 3 and ds.preload(progress=False) == len(ds)
    for clip in read_manifest(mixed):  # the sources are gone: only the cache can answer now
        os.rename(clip.resolved_path(), str(clip.resolved_path()) + ".moved")
    for _epoch in range(2):
        for i in range(len(ds)):
            assert torch.allclose(ds[i]["audio"], expected[i], atol=2e-3)  # float16 storage
    assert ds.decodes == len(ds)
    assert len(list(cache.rglob("*.npy"))) == len(ds) and not list(cache.rglob(".*"))
    fresh = ClipDataset([mixed], 22050, 2, 1.0, split="all", cache_dir=cache)
    with pytest.raises(AudioError, match="file not found"):  # a new run needs the file to check its key
        fresh[0]
    for clip in read_manifest(mixed):
        os.rename(str(clip.resolved_path()) + ".moved", clip.resolved_path())
    assert fresh.preload(progress=False) == 0  # same files, same settings: all cached
    other = ClipDataset([mixed], 16000, 2, 1.0, split="all", cache_dir=cache)
    assert other.preload(progress=False) == len(other)  # another rate is another cache entry
    path = ds.clips[0].resolved_path()
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    touched = ClipDataset([mixed], 22050, 2, 1.0, split="all", cache_dir=cache)
    assert touched.preload(progress=False) == 1  # a changed file is decoded again, only that one


def test_bad_arguments(mixed):
    with pytest.raises(Exception, match="channels=3"):
        ClipDataset([mixed], 16000, 3, 0.5)
    with pytest.raises(Exception, match="split 'test'"):
        ClipDataset([mixed], 16000, 1, 0.5, split="test")
