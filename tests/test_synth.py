"""The procedural corpus: attribute truth measured on the rendered audio, determinism, manifests,
held-out control wording and the 22 thesis presets."""

import json
import re

import numpy as np
import pytest

from foley.analyzers import ANALYZERS
from foley.audio import Audio
from foley.data.synth import (
    HELDOUT_PHRASES,
    LICENCE,
    PRESETS,
    RECIPES,
    VOCABULARY,
    minimal_pairs,
    render_clip,
    render_preset,
    render_spec,
    sample_attributes,
    write_corpus,
)
from foley.data.synth.captions import captions_for
from foley.data.synth.control import ANALYZER_OF, CASES
from foley.data.synth.render import clip_seed

SR = 16_000
DUR = 2.0


def measure(name: str, spec: dict, seed: int = 0, duration: float = DUR) -> float:
    return ANALYZERS[name](render_spec(spec, seed, duration, SR))


# --- attribute truth on the rendered audio ------------------------------------------------------
@pytest.mark.parametrize("recipe", ["hum", "drone", "sweep", "beep"])
def test_rising_rises_and_falling_falls(recipe):
    extra = {"rate": "slow"} if recipe == "beep" else {}
    up = measure("pitch_slope", {"recipe": recipe, "register": "mid", "pitch": "rising", **extra})
    down = measure("pitch_slope", {"recipe": recipe, "register": "mid", "pitch": "falling", **extra})
    assert up > 0.5 and down < -0.5, (up, down)


@pytest.mark.parametrize("recipe", ["hum", "hiss", "glitch"])
def test_left_to_right_moves_right(recipe):
    spec = {"recipe": recipe, **({"rate": "rapid"} if recipe == "glitch" else {})}
    right = measure("stereo_direction", {**spec, "motion": "left_to_right"})
    left = measure("stereo_direction", {**spec, "motion": "right_to_left"})
    assert right > 1.0 and left < -1.0, (right, left)
    assert measure("stereo_motion", {**spec, "motion": "static"}) < 0.5
    assert measure("stereo_motion", {**spec, "motion": "left_to_right"}) > 3.0


def test_deep_centroid_below_high():
    for recipe in ("hum", "drone", "granular", "sweep"):
        for brightness in ("dark", "bright"):
            spec = {"recipe": recipe, "brightness": brightness}
            deep = measure("spectral_centroid", {**spec, "register": "deep"})
            high = measure("spectral_centroid", {**spec, "register": "high"})
            assert deep < 0.5 * high, (recipe, brightness, deep, high)


def test_rapid_beeps_have_more_onsets_than_slow():
    slow = measure("onset_rate", {"recipe": "beep", "rate": "slow"}, duration=3.0)
    rapid = measure("onset_rate", {"recipe": "beep", "rate": "rapid"}, duration=3.0)
    assert 0.7 <= slow <= 3.0 and rapid >= 5.0, (slow, rapid)


@pytest.mark.parametrize("pair", minimal_pairs(), ids=lambda p: f"{p.attribute}-{p.recipe}")
def test_minimal_pair_specs_order_their_analyzer(pair):
    """Each control pair's two synth specs differ on the analyzer in the promised direction."""
    low = ANALYZERS[pair.analyzer](render_spec(pair.low_spec, 0, DUR, SR))
    high = ANALYZERS[pair.analyzer](render_spec(pair.high_spec, 0, DUR, SR))
    assert low < high, (pair.low_prompt, low, pair.high_prompt, high)


def test_every_recipe_renders_clean_stereo_at_other_rates():
    for rate in (8_000, 44_100):
        for name in RECIPES:
            rng = np.random.default_rng(7)
            a = sample_attributes(rng, name)
            y = render_spec({"recipe": name, **{k: a[k] for k in ("register", "rate", "envelope")}}, 1, 1.0, rate)
            assert y.samples.shape == (2, rate) and np.isfinite(y.samples).all(), name
            assert y.peak() <= 0.95 and y.rms_db() > -50, (name, rate, y.peak(), y.rms_db())


def test_random_clips_are_loud_enough_and_never_clip():
    for i in range(24):
        clip = render_clip(clip_seed(3, i), duration=1.5, sample_rate=SR)
        assert clip.audio.channels == 2 and clip.audio.frames == int(1.5 * SR)
        assert clip.audio.peak() <= 0.95 and clip.audio.rms_db() > -50, (clip.recipe, clip.audio.rms_db())


# --- determinism, manifest, CLI -----------------------------------------------------------------
def test_same_seed_same_clip_other_seed_other_clip():
    a, b = render_clip(1234, 1.0), render_clip(1234, 1.0)
    assert np.array_equal(a.audio.samples, b.audio.samples) and a.captions == b.captions
    assert a.attributes == b.attributes
    c = render_clip(1235, 1.0)
    assert not np.array_equal(a.audio.samples, c.audio.samples)


def test_corpus_independent_of_workers_and_manifest_fields(tmp_path):
    one = write_corpus(tmp_path / "one", n=8, seed=5, duration=1.0, workers=1, preset_fraction=0.3)
    two = write_corpus(tmp_path / "two", n=8, seed=5, duration=1.0, workers=2, preset_fraction=0.3)
    text = one.manifest.read_text()
    assert text == two.manifest.read_text()
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == 8 and one.clips == 8
    for r in rows:
        wav = tmp_path / "one" / r["path"]
        assert r["path"].startswith("audio/") and wav.exists()
        assert wav.read_bytes() == (tmp_path / "two" / r["path"]).read_bytes()
        x = Audio.load(wav)
        assert x.channels == r["channels"] == 2 and x.sample_rate == r["sample_rate"] == SR
        assert r["duration"] == pytest.approx(x.duration)
        assert 4 <= len(r["captions"]) <= 8 and r["captions"][0] == r["description"]
        assert len(set(c.lower() for c in r["captions"])) == len(r["captions"])
        assert r["keywords"] and all(isinstance(k, str) for k in r["keywords"])
        assert r["source"] == "synth" and r["licence"] == LICENCE and isinstance(r["seed"], int)
        for key, values in VOCABULARY.items():
            if key in r["attributes"]:
                assert r["attributes"][key] in values, (key, r["attributes"][key])
    other = write_corpus(tmp_path / "three", n=8, seed=6, duration=1.0, workers=1)
    assert other.manifest.read_text() != text
    assert not list((tmp_path / "one" / "audio").glob(".*"))   # no temporary files left behind


def test_cli_renders_presets_and_rejects_bad_rate(tmp_path, foley_cli):
    out = tmp_path / "presets"
    r = foley_cli("data", "synth", "--presets-only", "-o", out, "--duration", "1", "--workers", "2", "-q",
                  "--sidecars")
    assert r.returncode == 0, r.stderr
    assert "rendered 22 clips" in r.stdout
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {row["id"] for row in rows} == set(PRESETS)
    assert all(row["description"] == PRESETS[row["id"]].text for row in rows)
    sidecar = json.loads((out / "audio" / "scifi-sixth-interval.json").read_text())
    assert sidecar["description"] == PRESETS["scifi-sixth-interval"].text
    bad = foley_cli("data", "synth", "-n", "2", "-o", tmp_path / "x", "--sample-rate", "500")
    assert bad.returncode == 2 and "--sample-rate 500" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


# --- captions and the held-out control wording ----------------------------------------------------
def _training_captions() -> list[str]:
    out = []
    for i in range(1500):
        rng = np.random.default_rng(i)
        out += captions_for(sample_attributes(rng), rng)
    for slug, p in PRESETS.items():
        out += [p.text, *p.paraphrases]
        clip = render_clip(clip_seed(0, 0), 0.5, preset=slug)
        out += clip.captions
    return out


def test_heldout_phrases_never_appear_in_training_captions():
    text = "\n".join(_training_captions()).lower()
    for phrase in HELDOUT_PHRASES:
        assert not re.search(rf"\b{re.escape(phrase)}\b", text), phrase


def test_minimal_pairs_cover_the_attributes_in_heldout_wording():
    pairs = minimal_pairs()
    assert set(p.attribute for p in pairs) == set(ANALYZER_OF) and len(ANALYZER_OF) == 8
    for attribute, cases in CASES.items():
        assert len(cases) >= 5 and len({c[0] for c in cases}) == len(cases), attribute
    for p in pairs:
        assert p.analyzer in ANALYZERS and p.low_prompt != p.high_prompt
        for prompt in (p.low_prompt, p.high_prompt):
            assert any(re.search(rf"\b{re.escape(h)}\b", prompt) for h in HELDOUT_PHRASES), prompt
    assert len(minimal_pairs(seeds=3)) == 3 * len(pairs)


def test_captions_say_what_the_attributes_are():
    rng = np.random.default_rng(0)
    a = sample_attributes(rng, "hum", fixed={"register": "deep", "pitch": "rising", "motion": "left_to_right"},
                          canonical=True)
    caps = captions_for(a, rng, count=8)
    assert any("left" in c for c in caps[:1]) and any(w in caps[0] for w in ("rising", "ascending", "climbing",
                                                                             "up in pitch", "rises", "sweeping up"))
    assert all(not re.search(r"\bhigh\b", c) for c in caps)


# --- the thesis presets -------------------------------------------------------------------------
def test_all_22_presets_render():
    assert len(PRESETS) == 22
    for slug in PRESETS:
        y, attrs = render_preset(slug, np.random.default_rng(0), 1.5, SR)
        x = Audio(y, SR)
        assert x.channels == 2 and x.frames == int(1.5 * SR) and np.isfinite(y).all(), slug
        assert x.peak() <= 0.95 and x.rms_db() > -50, (slug, x.peak(), x.rms_db())
        assert attrs["preset"] == slug and attrs["category"] in VOCABULARY["category"]


def _preset(slug: str, seed: int = 0, duration: float = 3.0) -> Audio:
    return Audio(render_preset(slug, np.random.default_rng(seed), duration, SR)[0], SR)


def test_presets_fit_their_words():
    a = ANALYZERS
    for slug in ("glitchy-moving-panorama", "spatial-glitch-modulation-panning", "subtle-sizzle-moving"):
        assert a["stereo_motion"](_preset(slug)) > 3.0, slug             # moving panorama really pans
    for slug in ("deep-spatial-stable-rumbly", "deep-spatial-gloomy", "spatial-deep-fm"):
        assert a["spectral_centroid"](_preset(slug)) < 400, slug         # deep sits low
    hollow = _preset("hollow-hum-up-down").samples
    half = hollow.shape[1] // 2
    assert a["pitch_slope"](Audio(hollow[:, :half], SR)) > 1.0          # ascending ...
    assert a["pitch_slope"](Audio(hollow[:, half:], SR)) < -1.0         # ... and descending
    crickets = _preset("processed-crickets")
    assert a["spectral_centroid"](crickets) > 2500 and a["tremolo_depth"](crickets) > 0.3   # high, pulsed
    alarm = _preset("soft-noise-alarm")
    assert a["onset_rate"](alarm) >= 1.0 and a["tremolo_depth"](alarm) > 0.3               # beeping
    for slug in ("rapid-sizzling", "rapid-glitchy-buzzing", "rapid-glitch-pitch-envelope"):
        assert a["onset_rate"](_preset(slug)) > 4.0, slug               # rapid elements
    assert a["spectral_centroid"](_preset("glassy-insect-swarm")) > 1500


def test_sixth_interval_holds_two_tones_a_major_sixth_apart():
    x = _preset("scifi-sixth-interval").to_mono().samples[0]
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    f = np.fft.rfftfreq(len(x), 1 / SR)
    peaks = []
    for i in np.argsort(mag)[::-1]:
        if all(abs(f[i] - p) > 20 for p in peaks):
            peaks.append(f[i])
        if len(peaks) == 2:
            break
    lo, hi = sorted(peaks)
    assert hi / lo == pytest.approx(2 ** (9 / 12), rel=0.02), peaks
