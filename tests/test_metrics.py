"""Metric properties against known truth: set metrics, paired metrics, uncertainty, cache, sanity, pairing."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from foley.audio import Audio
from foley.eval import metrics as M
from foley.eval import paired as P
from foley.eval.cache import FeatureCache
from foley.eval.extractors import LogMelExtractor
from foley.eval.inputs import collect, pair
from foley.eval.prepare import EvalSettings, process_set
from foley.eval.sanity import item_sanity, within_prompt_diversity
from foley.eval.stats import auc, bootstrap_ci, subset_stats

RNG = np.random.default_rng(0)
SR = 16_000


# --- set metrics -------------------------------------------------------------------------------
def test_fd_matches_closed_form_and_grows_with_shift():
    x = RNG.standard_normal((4000, 1))
    # 1-D: FD(N(0,1), N(m, s^2)) = m^2 + (1 - s)^2
    for m, s in ((0.0, 1.0), (1.0, 1.0), (0.5, 2.0)):
        assert M.frechet_distance([0.0], [[1.0]], [m], [[s * s]]) == pytest.approx(m * m + (1 - s) ** 2, abs=1e-9)
    a = RNG.standard_normal((3000, 8))
    assert M.fd(a, a) == pytest.approx(0.0, abs=1e-6)
    vals = [M.fd(a, RNG.standard_normal((3000, 8)) + d) for d in (0.0, 0.5, 1.0, 2.0)]
    assert all(q > p for p, q in zip(vals, vals[1:], strict=False))
    assert vals[0] < 0.1 and vals[-1] == pytest.approx(8 * 4.0, rel=0.1)
    assert M.fd(x, x + 3) == pytest.approx(9.0, rel=1e-6)


def test_kid_unbiased_near_zero_for_same_distribution():
    same = [M.kid(RNG.standard_normal((200, 16)), RNG.standard_normal((200, 16))) for _ in range(10)]
    shifted = M.kid(RNG.standard_normal((200, 16)), RNG.standard_normal((200, 16)) + 1.0)
    assert abs(np.mean(same)) < 0.02 * shifted
    assert min(same) < 0 < max(same) or abs(np.mean(same)) < 1e-2   # unbiased: scatters around 0
    assert shifted > 0.5


def test_fd_infinity_recovers_intercept():
    # a set metric whose bias is exactly 30/n around a true value of 2
    r = M.fd_infinity(lambda a, b: 2.0 + 30.0 / len(a), 90, 120)
    assert r["value"] == pytest.approx(2.0, abs=1e-9) and r["slope"] == pytest.approx(30.0, abs=1e-6)
    assert len(r["sizes"]) >= 2 and max(r["sizes"]) == 90


def test_knn_precision_recall():
    real = RNG.standard_normal((300, 4))
    same = M.knn_precision_recall(real, RNG.standard_normal((300, 4)))
    assert same["precision"] > 0.7 and same["recall"] > 0.7
    far = M.knn_precision_recall(real, RNG.standard_normal((300, 4)) + 20)
    assert far["precision"] == 0.0 and far["recall"] == 0.0
    # mode dropping: generated covers only half of the reference -> precision stays, recall falls
    two_modes = np.concatenate([RNG.standard_normal((150, 4)), RNG.standard_normal((150, 4)) + 10])
    one_mode = RNG.standard_normal((300, 4))
    r = M.knn_precision_recall(two_modes, one_mode)
    assert r["precision"] > 0.7 and r["recall"] < 0.6


def test_kl_direction_and_inception_score():
    p = np.array([[0.9, 0.1]])
    q = np.array([[0.5, 0.5]])
    expected = 0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5)
    assert M.kl_divergence(p, q)[0] == pytest.approx(expected)            # KL(reference=p ‖ generated=q)
    assert M.kl_divergence(q, p)[0] != pytest.approx(expected)            # the direction matters
    assert M.kl_divergence(p, p)[0] == pytest.approx(0.0, abs=1e-9)
    assert M.inception_score(np.eye(5)) == pytest.approx(5.0, rel=1e-6)   # confident and diverse
    assert M.inception_score(np.tile([[0.2] * 5], (5, 1))) == pytest.approx(1.0)


# --- paired metrics ----------------------------------------------------------------------------
def _sig(seconds=1.0):
    t = np.arange(int(seconds * SR)) / SR
    return 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 660 * t) * (t > 0.5)


def test_paired_metrics_identical_and_degraded():
    x = _sig()
    ref = Audio(x, SR)
    assert P.lsd(ref, ref) == pytest.approx(0.0, abs=1e-9)
    assert P.mel_distance(ref, ref) == pytest.approx(0.0, abs=1e-9)
    assert P.chroma_cosine(ref, ref) == pytest.approx(1.0, abs=1e-6)
    assert P.loudness_diff(ref, ref) == pytest.approx(0.0, abs=1e-9)
    assert P.si_sdr(ref, ref) > 80
    noisy = [Audio(x + s * RNG.standard_normal(len(x)), SR) for s in (0.01, 0.05, 0.2)]
    sdr = [P.si_sdr(n, ref) for n in noisy]
    lsd = [P.lsd(n, ref) for n in noisy]
    assert sdr[0] > sdr[1] > sdr[2] and lsd[0] < lsd[1] < lsd[2]
    assert sdr[0] < 80
    assert P.si_sdr(Audio(0.5 * x, SR), ref) > 80                         # scale invariant
    assert P.loudness_diff(ref.gain_db(6.0), ref) == pytest.approx(6.0, abs=0.05)
    # a shorter generated clip is compared on the common part
    assert P.lsd(Audio(x[: SR // 2], SR), ref) == pytest.approx(0.0, abs=1e-9)


# --- uncertainty -------------------------------------------------------------------------------
def test_bootstrap_ci_contains_mean_and_narrows():
    small = bootstrap_ci(RNG.normal(3.0, 1.0, 20), seed=1, n_resamples=500)
    big = bootstrap_ci(RNG.normal(3.0, 1.0, 500), seed=1, n_resamples=500)
    for r in (small, big):
        assert r["ci95"][0] < r["mean"] < r["ci95"][1]
    assert big["ci95"][1] - big["ci95"][0] < small["ci95"][1] - small["ci95"][0]
    assert big["ci95"][0] < 3.0 < big["ci95"][1]
    assert bootstrap_ci([1.0])["ci95"] is None
    assert bootstrap_ci([1.0, np.nan, 2.0])["n_dropped"] == 1


def test_subsets_are_without_replacement_and_seeded():
    def fn(a, b):
        assert len(set(a.tolist())) == len(a) and len(set(b.tolist())) == len(b)
        return float(a.sum() - b.sum())

    r1 = subset_stats(fn, 20, 30, 8, 12, seed=3)
    r2 = subset_stats(fn, 20, 30, 8, 12, seed=3)
    assert r1["values"] == r2["values"] and r1["size"] == 8 and r1["count"] == 12 and r1["sd"] > 0


def test_auc():
    assert auc([0, 1, 2], [3, 4, 5]) == 1.0
    assert auc([3, 4, 5], [0, 1, 2]) == 0.0
    assert auc([1, 1], [1, 1]) == 0.5


# --- cache -------------------------------------------------------------------------------------
def _write_set(folder, n=3, f0=300.0, seconds=0.5):
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    for i in range(n):
        Audio(0.3 * np.sin(2 * np.pi * f0 * (i + 1) * t), SR).save(folder / f"clip{i}.wav")


def test_cache_hits_by_content_not_name(tmp_path):
    _write_set(tmp_path / "a")
    s, ex = EvalSettings(), {"logmel": LogMelExtractor()}
    cache = FeatureCache(tmp_path / "cache")
    first = process_set(collect(tmp_path / "a"), ex, s, cache, analyzers=False)
    assert (cache.hits, cache.misses) == (0, 3)
    (tmp_path / "b" / "deep").mkdir(parents=True)
    for i, p in enumerate(sorted((tmp_path / "a").glob("*.wav"))):   # renamed and moved: same bytes
        shutil.copy(p, tmp_path / "b" / "deep" / f"renamed_{i}.wav")
    cache2 = FeatureCache(tmp_path / "cache")
    second = process_set(collect(tmp_path / "b"), ex, s, cache2, analyzers=False)
    assert (cache2.hits, cache2.misses) == (3, 0)
    np.testing.assert_array_equal(first.features["logmel"].embeddings, second.features["logmel"].embeddings)
    Audio(0.1 * RNG.standard_normal(SR // 2), SR).save(tmp_path / "b" / "deep" / "renamed_0.wav")
    cache3 = FeatureCache(tmp_path / "cache")
    process_set(collect(tmp_path / "b"), ex, s, cache3, analyzers=False)
    assert (cache3.hits, cache3.misses) == (2, 1)
    # a different preparation (clip length) is a different key
    cache4 = FeatureCache(tmp_path / "cache")
    process_set(collect(tmp_path / "b"), ex, EvalSettings(clip_seconds=0.25), cache4, analyzers=False)
    assert cache4.hits == 0


# --- sanity, pairing, diversity ----------------------------------------------------------------
def test_sanity_flags():
    t = np.arange(SR) / SR
    ok = item_sanity(Audio(0.3 * np.sin(2 * np.pi * 440 * t), SR), expected_duration=1.0)
    assert not any(ok["flags"].values())
    assert item_sanity(Audio(np.zeros(SR), SR))["flags"]["silent"]
    assert item_sanity(Audio(np.clip(2 * np.sin(2 * np.pi * 440 * t), -1, 1), SR))["flags"]["clipping"]
    assert item_sanity(Audio(0.1 * np.sin(2 * np.pi * 440 * t) + 0.05, SR))["flags"]["dc_offset"]
    assert item_sanity(Audio(0.3 * np.sin(2 * np.pi * 440 * t), SR), expected_duration=4.0)["flags"]["duration_off"]
    assert "duration_off" not in ok["flags"] or ok["flags"]["duration_off"] is False


def test_nan_file_is_reported_not_fatal(tmp_path):
    _write_set(tmp_path / "g", n=2)
    sf.write(tmp_path / "g" / "bad.wav", np.full(SR // 2, np.nan, np.float32), SR, subtype="FLOAT")
    d = process_set(collect(tmp_path / "g"), {"logmel": LogMelExtractor()}, EvalSettings(), FeatureCache(None))
    bad = [r for r in d.records if r["name"] == "bad"][0]
    assert bad["sanity"]["flags"] == {"unreadable": True, "nan": True}
    assert len(d.usable) == 2 and len(d.features["logmel"].embeddings) == 2


def test_pairing_rules(tmp_path):
    _write_set(tmp_path / "g")
    _write_set(tmp_path / "r")
    pairs, rule = pair(collect(tmp_path / "g"), collect(tmp_path / "r"))
    assert rule == "relative name" and sorted(pairs) == [(0, 0), (1, 1), (2, 2)]
    # manifests with ids pair by id even in a different order; relative paths resolve to the manifest
    rows_g = [{"path": f"g/clip{i}.wav", "id": f"x{i}", "description": "tone"} for i in range(3)]
    rows_r = [{"path": f"r/clip{i}.wav", "id": f"x{i}"} for i in (2, 0, 1)]
    (tmp_path / "g.jsonl").write_text("\n".join(json.dumps(r) for r in rows_g))
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in rows_r))
    g, r = collect(tmp_path / "g.jsonl"), collect(tmp_path / "r.jsonl")
    assert g.items[0].description == "tone" and g.items[0].path == tmp_path / "g" / "clip0.wav"
    pairs, rule = pair(g, r)
    assert rule == "id" and sorted(pairs) == [(0, 1), (1, 2), (2, 0)]
    # different names and a folder: nothing pairs
    (tmp_path / "other").mkdir()
    shutil.copy(tmp_path / "g" / "clip0.wav", tmp_path / "other" / "zzz.wav")
    assert pair(collect(tmp_path / "other"), collect(tmp_path / "r")) == ([], None)


def test_within_prompt_diversity():
    e = RNG.standard_normal((6, 5))
    collapsed = np.concatenate([np.repeat(e[:1], 3, axis=0), np.repeat(e[1:2], 3, axis=0)])
    d = within_prompt_diversity(collapsed, ["a"] * 3 + ["b"] * 3)
    assert d["within"] == pytest.approx(0.0) and d["overall"] > 0 and d["ratio"] == pytest.approx(0.0)
    varied = within_prompt_diversity(e, ["a"] * 3 + ["b"] * 3)
    assert varied["ratio"] > 0.5
    with pytest.raises(ValueError):
        within_prompt_diversity(e, [None] * 6)
