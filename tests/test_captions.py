"""Measured caption words on signals whose truth is known by construction, their phrasing, and
`foley data caption` on a small manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from foley.audio import Audio
from foley.data.captions import (
    BANKS,
    TRUTH,
    WORDS,
    attribute_words,
    caption_rows,
    clip_seed,
    measure,
    phrase_variants,
)
from foley.data.synth.control import HELDOUT_PHRASES

SR = 16_000
DUR = 3.0
T = np.arange(int(DUR * SR)) / SR


def words_of(x: np.ndarray) -> dict[str, str]:
    a = Audio(x.astype(np.float32), SR)
    return attribute_words([{"start": 0.0, **measure(a)}], a.duration)


def rising_sine(semitones: float = 12.0, f0: float = 300.0) -> np.ndarray:
    f = f0 * 2 ** (semitones * T / DUR / 12)
    return 0.4 * np.sin(2 * np.pi * np.cumsum(f) / SR)


def test_rising_sine_is_rising_and_tonal():
    w = words_of(rising_sine(12.0))
    assert w["pitch"] == "rising" and w["texture"] == "tonal"
    assert words_of(rising_sine(-12.0))["pitch"] == "falling"
    assert "loudness" not in w and "motion" not in w and "attack" not in w


def test_fade_out_is_fading():
    tone = 0.5 * np.sin(2 * np.pi * 440 * T)
    w = words_of(tone * 10 ** (-40 * T / DUR / 20))  # -40 dB over the clip
    assert w["loudness"] == "fading out" and "pitch" not in w
    assert words_of(tone * 10 ** (-40 * (1 - T / DUR) / 20))["loudness"] == "getting louder"


def test_centred_steady_noise_gets_neither():
    noise = 0.2 * np.random.default_rng(0).standard_normal(len(T))
    w = words_of(np.stack([noise, noise]))
    assert "pitch" not in w and "loudness" not in w and "motion" not in w and "attack" not in w
    assert w["texture"] == "noisy" and w["brightness"] == "bright"  # white noise: flat and high


def test_hit_pan_and_clicks():
    hit = np.zeros(len(T))
    n = int(0.15 * SR)
    hit[:n] = np.random.default_rng(1).standard_normal(n) * np.exp(-T[:n] / 0.02)
    w = words_of(hit)
    assert w["attack"] == "sharp hit" and w["length"] == "short"
    tone = 0.4 * np.sin(2 * np.pi * 440 * T)
    g = T / DUR  # constant-power pan from left (0) to right (1)
    assert words_of(np.stack([tone * np.cos(g * np.pi / 2), tone * np.sin(g * np.pi / 2)]))["motion"] == "left to right"
    clicks = np.zeros(len(T))
    clicks[(np.arange(0.05, DUR, 1 / 8) * SR).astype(int)] = 0.9
    assert words_of(clicks)["rate"] == "rapid"


def test_long_clips_get_only_steady_words_their_excerpts_agree_on():
    bright = {"start": 0.0, "seconds": 8.0, "sounding_s": 8.0, "spectral_centroid": 4000.0, "spectral_flatness": 0.2,
              "onset_rate": 0.0, "voiced_s": 0.0, "loudness_trend": -9.0, "stereo_direction": 9.0, "stereo_motion": 8.0,
              "impulsiveness": 0.1, "pitch_slope": 0.0, "pitch_thirds": [0.0, 5.0, 10.0]}
    dark = {**bright, "start": 20.0, "spectral_centroid": 300.0}
    assert attribute_words([bright, bright, bright], 60.0) == {"length": "long", "brightness": "bright",
                                                               "texture": "noisy"}
    assert attribute_words([bright, dark, bright], 60.0) == {"length": "long", "texture": "noisy"}


def test_phrasing_is_deterministic_varied_and_avoids_heldout_words():
    words = {"length": "short", "attack": "sharp hit", "brightness": "bright", "loudness": "fading out"}
    a = phrase_variants("sword attack", words, clip_seed(0, "x.ogg"), 6)
    assert a == phrase_variants("sword attack", words, clip_seed(0, "x.ogg"), 6)
    assert a != phrase_variants("sword attack", words, clip_seed(1, "x.ogg"), 6)
    assert len(a) == 6 and len(set(a)) == 6 and all("sword attack" in v for v in a)
    assert phrase_variants("sword attack", {}, clip_seed(0, "x"), 4) == []
    sentence = phrase_variants("Sound effect: a bell.", {"texture": "tonal"}, clip_seed(0, "y"), 4)
    assert sentence and all(v.startswith("Sound effect: a bell") for v in sentence)
    phrases = [p for adjectives, clauses in BANKS.values() for p in adjectives + clauses]
    assert not [p for p in phrases if any(h in p for h in HELDOUT_PHRASES)]
    assert set(BANKS) == {w for ws in WORDS.values() for w in ws} and set(TRUTH) <= set(BANKS)


def _write(path, x, sr=SR):
    Audio(np.asarray(x, np.float32), sr).save(path)


def test_caption_rows_keeps_metadata_and_vetoes_contradicted_synth_words(tmp_path):
    _write(tmp_path / "rise.wav", rising_sine(12.0))
    _write(tmp_path / "quiet.wav", np.zeros(SR))
    rows = [{"path": "rise.wav", "duration": DUR, "sample_rate": SR, "description": "a siren",
             "captions": ["a siren", "siren sound"], "licence": "CC0", "package": "x"},
            {"path": "rise.wav", "duration": DUR, "sample_rate": SR, "description": "a tone", "source": "synth",
             "attributes": {"recipe": "hum", "register": "mid", "rate": "steady", "envelope": "sustained",
                            "motion": "static", "texture": "tonal", "pitch": "falling", "brightness": "neutral"}},
            {"path": "missing.wav", "duration": 1.0, "sample_rate": SR, "description": "gone"}]
    out, report = caption_rows(rows, tmp_path, variants=3)
    assert out[0]["description"] == "a siren" and out[0]["licence"] == "CC0" and out[0]["package"] == "x"
    assert out[0]["captions"][:2] == ["a siren", "siren sound"] and len(out[0]["captions"]) == 5
    assert out[0]["measured_words"]["pitch"] == "rising" and out[0]["measured"][0]["seconds"] == pytest.approx(DUR)
    assert "pitch" not in out[1]["measured_words"] and report.vetoed["rising"] == 1  # the truth says falling
    assert report.agreement["rising"] == (0, 1) and report.agreement["tonal"] == (1, 1)
    assert "measured" not in out[2] and report.failed and report.failed[0].startswith("missing.wav")
    assert report.words["rising"] == 1 and report.captioned == 2


def test_cli_writes_captioned_manifest_with_paths_rebased(tmp_path, foley_cli):
    data = tmp_path / "data"
    data.mkdir()
    _write(data / "rise.wav", rising_sine(12.0))
    line = {"path": "rise.wav", "duration": DUR, "sample_rate": SR, "description": "a siren", "keywords": ["siren"],
            "category": "other"}
    (data / "m.jsonl").write_text(json.dumps(line) + "\n")
    r = foley_cli("data", "caption", data / "m.jsonl", "-o", tmp_path / "out" / "c.jsonl", "--variants", 2, "-q")
    assert r.returncode == 0, r.stderr
    assert "| rising | 1 | 100.0 % |" in r.stdout
    row = json.loads((tmp_path / "out" / "c.jsonl").read_text())
    assert row["path"] == "../data/rise.wav" and row["category"] == "other" and row["description"] == "a siren"
    assert len(row["captions"]) == 2 and all("siren" in c for c in row["captions"])
    r = foley_cli("data", "caption", data / "m.jsonl", "-o", data / "m.jsonl")
    assert r.returncode != 0 and "overwrite" in r.stderr and "Traceback" not in r.stderr
