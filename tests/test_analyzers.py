"""Every attribute analyzer against synthetic signals whose truth is known by construction."""

from itertools import pairwise

import numpy as np
import pytest

from foley.analyzers import ANALYZERS, UNITS, analyze
from foley.audio import Audio

SR = 22_050
DUR = 2.0
T = np.arange(int(DUR * SR)) / SR


def tone(freq=440.0, amp=0.5, sr=SR):
    t = np.arange(int(DUR * sr)) / sr
    return Audio(amp * np.sin(2 * np.pi * freq * t), sr)


def glide(semitones, f0=220.0, harmonic=False):
    """Exponential glide covering ``semitones`` over the clip (true slope = semitones / DUR)."""
    f = f0 * 2 ** (semitones * T / DUR / 12)
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = np.sin(phase) if not harmonic else sum(np.sin(k * phase) / k for k in range(1, 6))
    return Audio(0.4 * x, SR)


def clicks(rate, sr=SR):
    x = np.zeros(int(DUR * sr))
    x[(np.arange(0.05, DUR, 1 / rate) * sr).astype(int)] = 0.9
    return Audio(x, sr)


def pan_ramp(start, end):
    """440 Hz tone panned (constant power) from ``start`` to ``end`` (0 = left, 1 = right)."""
    g = start + (end - start) * T / DUR
    s = 0.5 * np.sin(2 * np.pi * 440 * T)
    return Audio(np.stack([s * np.cos(g * np.pi / 2), s * np.sin(g * np.pi / 2)]), SR)


def increasing(values):
    return all(b > a for a, b in pairwise(values))


def test_registry_complete():
    assert set(ANALYZERS) == set(UNITS)
    r = analyze(tone())
    assert set(r) == set(ANALYZERS) and all(isinstance(v, float) and np.isfinite(v) for v in r.values())


def test_silence_is_zero_everywhere():
    r = analyze(Audio(np.zeros((2, SR)), SR))
    assert all(v == 0.0 for v in r.values()), r


def test_spectral_centroid_tracks_frequency():
    vals = [ANALYZERS["spectral_centroid"](tone(f)) for f in (100, 400, 1600, 6400)]
    assert increasing(vals)
    for f, v in zip((100, 400, 1600, 6400), vals, strict=True):
        assert abs(v - f) / f < 0.1, (f, v)
    # same answer at another sample rate (no settings tied to one rate)
    assert ANALYZERS["spectral_centroid"](tone(1000, sr=48_000)) == pytest.approx(
        ANALYZERS["spectral_centroid"](tone(1000)), rel=0.05)


@pytest.mark.parametrize("harmonic", [False, True])
def test_pitch_slope_sign_and_size(harmonic):
    steps = (-12, -4, 0, 4, 12)
    vals = [ANALYZERS["pitch_slope"](glide(s, harmonic=harmonic)) for s in steps]
    assert increasing(vals)
    for s, v in zip(steps, vals, strict=True):
        assert v == pytest.approx(s / DUR, abs=0.5), (s, v)


def test_pitch_slope_of_noise_is_near_zero():
    noise = Audio(0.3 * np.random.default_rng(0).standard_normal(len(T)), SR)
    assert abs(ANALYZERS["pitch_slope"](noise)) < 1.0


def test_onset_rate_counts_clicks_not_steady_sounds():
    rates = (2, 5, 10)
    vals = [ANALYZERS["onset_rate"](clicks(r)) for r in rates]
    assert increasing(vals)
    for r, v in zip(rates, vals, strict=True):
        assert v == pytest.approx(r, rel=0.25), (r, v)
    assert ANALYZERS["onset_rate"](tone()) < 1.0


def test_spectral_flatness_tonal_vs_noisy():
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(len(T))
    sine = np.sin(2 * np.pi * 440 * T)
    vals = [ANALYZERS["spectral_flatness"](Audio(0.3 * ((1 - a) * sine + a * noise), SR))
            for a in (0.0, 0.1, 0.5, 1.0)]
    assert increasing(vals)
    assert vals[0] < 0.01 and 0.4 < vals[-1] <= 1.0


def test_stereo_motion_and_direction():
    motion, direction = ANALYZERS["stereo_motion"], ANALYZERS["stereo_direction"]
    assert motion(tone()) == 0.0 and direction(tone()) == 0.0          # mono
    static = pan_ramp(0.3, 0.3)
    assert motion(static) < 0.1 and abs(direction(static)) < 0.1
    vals = [motion(pan_ramp(0.5 - w, 0.5 + w)) for w in (0.0, 0.1, 0.25, 0.45)]
    assert increasing(vals)
    right, left = direction(pan_ramp(0.1, 0.9)), direction(pan_ramp(0.9, 0.1))
    assert right > 1.0 and left < -1.0 and right == pytest.approx(-left, rel=0.01)


def test_impulsiveness_hit_vs_sustained():
    vals = [ANALYZERS["impulsiveness"](Audio(0.5 * np.exp(-T / tau) * np.sin(2 * np.pi * 440 * T), SR))
            for tau in (10.0, 0.5, 0.1, 0.02)]
    assert increasing(vals)
    assert vals[0] < 0.1 and vals[-1] > 0.8


def test_loudness_trend_fades():
    sine = np.sin(2 * np.pi * 440 * T)
    trend = ANALYZERS["loudness_trend"]
    fade_in = trend(Audio(0.5 * (T / DUR) * sine, SR))
    fade_out = trend(Audio(0.5 * (1 - T / DUR) * sine, SR))
    assert fade_in > 1.0 and fade_out < -1.0
    # a 6 dB/s ramp in level is measured as such, and steeper ramps give larger values
    vals = [trend(Audio(0.1 * 10 ** (s * T / 20) * sine, SR)) for s in (-6, 0, 3, 6)]
    assert increasing(vals)
    assert vals[-1] == pytest.approx(6, abs=0.5) and abs(vals[1]) < 0.2


def test_tremolo_depth_matches_modulation():
    carrier = np.sin(2 * np.pi * 440 * T)
    depths = (0.0, 0.3, 0.6, 0.9)
    vals = [ANALYZERS["tremolo_depth"](Audio(0.4 * (1 + m * np.sin(2 * np.pi * 6 * T)) * carrier, SR))
            for m in depths]
    assert increasing(vals)
    for m, v in zip(depths, vals, strict=True):
        assert v == pytest.approx(m, abs=0.08), (m, v)
    # modulation outside the 2-20 Hz band is not tremolo
    slow = ANALYZERS["tremolo_depth"](Audio(0.4 * (1 + 0.8 * np.sin(2 * np.pi * 0.25 * T)) * carrier, SR))
    assert slow < 0.2


def test_analyze_rejects_unknown_name():
    from foley.errors import FoleyError

    with pytest.raises(FoleyError, match="unknown analyzer"):
        analyze(tone(), ["brightness"])
