"""The 22 descriptions of the thesis' food-sound set (seed 003, section 2.3.2) as named presets.

Each preset renders a sound that fits its words, with seeded variation: glitches with a moving
panorama really pan, "deep ... rumbly" sits low, "ascending and descending pitch" goes up then down,
"a sixth interval" holds two tones a major sixth apart, crickets stridulate in high pulses, the
alarm beeps. ``render(rng, duration, sr)`` returns float32 stereo [2, T] and the ground-truth
attributes (the main layer's vocabulary values plus ``preset``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import dsp
from .recipes import PEAK_MAX, render_mono, sample_attributes, spatialise

MAJOR_SIXTH = 2 ** (9 / 12)


@dataclass(frozen=True)
class Preset:
    """A named thesis description: ``text`` is the caption exactly as printed; ``paraphrases`` say the same."""

    slug: str
    text: str
    paraphrases: tuple[str, ...]
    render: Callable[[np.random.Generator, float, int], tuple[np.ndarray, dict]]


def _attrs(rng, recipe: str, **fixed) -> dict:
    return sample_attributes(rng, recipe, fixed=fixed, canonical=True)


def _layer(rng, duration, sr, recipe: str, **fixed) -> tuple[np.ndarray, dict]:
    a = _attrs(rng, recipe, **fixed)
    return render_mono(a, rng, duration, sr), a


def _mix(*parts) -> np.ndarray:
    """Sum (signal, dB) pairs of mono [T] or stereo [2, T] after bringing each to unit RMS."""
    return sum(dsp.unit_rms(x) * dsp.db_to_amp(g) for x, g in parts)


def _out(x: np.ndarray, a: dict, rng, sr: int) -> np.ndarray:
    return spatialise(x, a, rng, sr) if x.ndim == 1 else dsp.finish(x, a["level_db"], PEAK_MAX).astype(np.float32)


def _fm(f: np.ndarray, ratio: float, index: np.ndarray, sr: int, rng) -> np.ndarray:
    """Two-operator FM: carrier at ``f`` [T] Hz, modulator at ratio * f, modulation index ``index`` [T]."""
    ph_c = 2 * np.pi * np.cumsum(f) / sr + rng.uniform(0, 6.3)
    ph_m = 2 * np.pi * np.cumsum(f * ratio) / sr
    return np.sin(ph_c + index * np.sin(ph_m))


def _smooth(rng, n, sr, hz) -> np.ndarray:
    """Slow random curve in [0, 1], shape [n]."""
    x = dsp.lowpass(rng.standard_normal(n), sr, hz, 1)
    return (x - x.min()) / max(x.max() - x.min(), 1e-9)


# --- the 22 renders ----------------------------------------------------------------------------
def glitchy_moving_panorama(rng, d, sr):
    x, a = _layer(rng, d, sr, "glitch", rate="rapid", texture=str(rng.choice(["tonal", "noisy"])),
                  motion=str(rng.choice(["back_and_forth", "wander"])))
    return _out(x, a, rng, sr), a


def hum_pitch_fm(rng, d, sr):
    a = _attrs(rng, "hum", register="low", pitch="wobbling", wobble_st=rng.uniform(0.8, 2.0),
               wobble_hz=rng.uniform(2.5, 5.0))
    t = dsp.times(int(round(d * sr)), sr)
    f = a["f0_hz"] * 2 ** (a["wobble_st"] * np.sin(2 * np.pi * a["wobble_hz"] * t) / 12)
    index = 0.5 + 2.5 * _smooth(rng, len(t), sr, 0.8)
    x = _fm(f, float(rng.choice([1.0, 2.0])), index, sr, rng)
    return _out(x * dsp.gate(len(t), sr, np.array([0.0]), d, 0.05, 0.05), a, rng, sr), a


def deep_spatial_stable_rumbly(rng, d, sr):
    x, a = _layer(rng, d, sr, "drone", register="deep", brightness="dark", space="reverberant",
                  texture="noisy", rt60_s=rng.uniform(1.8, 2.5), wet=rng.uniform(0.6, 0.9))
    r, _ = _layer(rng, d, sr, "rumble", register="deep")
    return _out(_mix((x, 0), (r, -3)), a, rng, sr), a


def deep_spatial_gloomy(rng, d, sr):
    a = _attrs(rng, "drone", register="deep", brightness="dark", space="reverberant", motion="wander",
               rt60_s=rng.uniform(2.0, 2.5), wet=rng.uniform(0.6, 0.9))
    voices = [render_mono({**a, "f0_hz": a["f0_hz"] * ratio}, rng, d, sr) for ratio in (1.0, 2 ** (3 / 12), 1.5)]
    return _out(_mix((voices[0], 0), (voices[1], -6), (voices[2], -8)), a, rng, sr), a


def hollow_hum_up_down(rng, d, sr):
    x, a = _layer(rng, d, sr, "hollow", register=str(rng.choice(["low", "mid"])), pitch="rise_fall",
                  pitch_span_st=rng.uniform(7.0, 12.0))
    return _out(x, a, rng, sr), a


def hum_low_impulse(rng, d, sr):
    x, a = _layer(rng, d, sr, "hum", register=str(rng.choice(["low", "mid"])))
    thumps, _ = _layer(rng, d, sr, "thump", register="deep", rate="slow", rate_hz=rng.uniform(1.0, 2.0))
    a = {**a, "rate": "slow"}
    return _out(_mix((x, 0), (thumps, 0)), a, rng, sr), a


def rapid_glitch_pitch_envelope(rng, d, sr):
    x, a = _layer(rng, d, sr, "glitch", rate="rapid", texture="tonal", pitch=str(rng.choice(["rising", "falling"])),
                  pitch_span_st=rng.uniform(18.0, 30.0))
    return _out(x, a, rng, sr), a


def rapid_slow_panorama(rng, d, sr):
    x, a = _layer(rng, d, sr, "beep", rate="rapid", motion="wander", register=str(rng.choice(["mid", "high"])),
                  pan_width=rng.uniform(0.8, 0.95))
    return _out(x, a, rng, sr), a


def rapid_glitchy_buzzing(rng, d, sr):
    b, a = _layer(rng, d, sr, "buzz", register=str(rng.choice(["low", "mid"])), brightness="bright")
    n = len(b)
    ev = dsp.event_times(d, rng.uniform(7.0, 12.0), rng, jitter=0.25)
    g = dsp.gate(n, sr, ev, rng.uniform(0.02, 0.08, len(ev)), 0.001, 0.002)
    x = dsp.sample_hold(dsp.bitcrush(b * g, 5), int(max(1, round(sr / rng.uniform(4000.0, 8000.0)))))
    a = {**a, "category": "glitch", "rate": "rapid", "envelope": "sustained"}
    return _out(x, a, rng, sr), a


def rapid_sizzling(rng, d, sr):
    s, a = _layer(rng, d, sr, "sizzle", register="high")
    ev = dsp.event_times(d, rng.uniform(7.0, 11.0), rng, jitter=0.1)
    g = dsp.gate(len(s), sr, ev, rng.uniform(0.04, 0.08, len(ev)), 0.002, 0.02)
    a = {**a, "rate": "rapid"}
    return _out(s * (0.12 + g), a, rng, sr), a


def scary_sizzling_cymbals(rng, d, sr):
    a = {**_attrs(rng, "sizzle", register="high", space="reverberant"), "pitch": "wobbling",
         "wobble_st": round(rng.uniform(2.0, 4.0), 3), "wobble_hz": round(rng.uniform(0.2, 0.6), 3)}
    n = int(round(d * sr))
    t = dsp.times(n, sr)
    bend = 2 ** (a["wobble_st"] * np.sin(2 * np.pi * a["wobble_hz"] * t) / 12)
    base = rng.uniform(350.0, 600.0)
    metal = np.zeros(n)
    for ratio in np.sort(rng.uniform(1.0, 14.0, 24)):
        f = np.minimum(base * ratio * bend, 0.42 * sr)
        metal += np.sin(2 * np.pi * np.cumsum(f) / sr + rng.uniform(0, 6.3)) / np.sqrt(ratio)
    hiss = dsp.highpass(rng.standard_normal(n), sr, min(5000.0, 0.35 * sr), 2)
    fizz = dsp.unit_rms(dsp.lowpass(np.abs(rng.standard_normal(n)) ** 3, sr, 30.0))
    dread = dsp.harmonic_tone(np.full(n, rng.uniform(45.0, 60.0)) * np.where(t % 2 < 1, 1.0, 2 ** 0.5), sr,
                              4, 2.0, rng)
    x = _mix((metal * fizz, 0), (hiss * fizz, -6), (dread, -14))
    return _out(x * dsp.gate(n, sr, np.array([0.0]), d, 0.3, 0.1), a, rng, sr), a


def soft_noise_alarm(rng, d, sr):
    x, a = _layer(rng, d, sr, "alarm", rate=str(rng.choice(["slow", "rapid"])),
                  interval_ratio=float(rng.choice([2 ** (4 / 12), 2 ** (7 / 12)])))
    noise = dsp.colored_noise(len(x), sr, rng, lambda f: dsp.brown(f) * dsp.log_gauss(f, 300.0, 1.5))
    return _out(_mix((x, 0), (noise, -15)), a, rng, sr), a


def processed_crickets(rng, d, sr):
    c, a = _layer(rng, d, sr, "cricket", rate="rapid")
    n = len(c)
    ring = np.sin(2 * np.pi * rng.uniform(40.0, 120.0) * dsp.times(n, sr))
    buzz, _ = _layer(rng, d, sr, "swarm", register="high", brightness="bright")
    sizzle, _ = _layer(rng, d, sr, "sizzle", register="high", loudness="soft")
    x = _mix((dsp.bitcrush(c * (0.6 + 0.4 * ring), 6), 0), (buzz, -14), (sizzle, -16))
    return _out(x, a, rng, sr), a


def digital_hum_varying(rng, d, sr):
    a = _attrs(rng, "hum", register=str(rng.choice(["low", "mid"])), pitch="wobbling", brightness="bright",
               wobble_st=rng.uniform(2.0, 5.0), wobble_hz=rng.uniform(1.5, 4.0))
    n = int(round(d * sr))
    steps = dsp.event_times(d, a["wobble_hz"], rng, start=0.0, tail=0.0)
    semis = np.round(rng.uniform(-a["wobble_st"], a["wobble_st"], len(steps)))
    which = np.searchsorted(steps, dsp.times(n, sr), side="right") - 1
    f = a["f0_hz"] * 2 ** (semis[np.maximum(which, 0)] / 12)
    x = dsp.harmonic_tone(f, sr, 15, 1.0, rng, odd_only=True)
    x = dsp.sample_hold(x, int(max(1, round(sr / 8000)))) * dsp.gate(n, sr, np.array([0.0]), d, 0.02, 0.05)
    return _out(x, a, rng, sr), a


def glassy_insect_swarm(rng, d, sr):
    a = _attrs(rng, "granular", register="high", brightness="bright", loudness="soft",
               grain_rate_hz=rng.uniform(150.0, 250.0))
    n = int(round(d * sr))
    x = np.zeros(n)
    base = min(a["f0_hz"] * 2, 0.15 * sr)
    for s in rng.uniform(0, d - 0.05, int(a["grain_rate_hz"] * d)):   # tiny glassy shards: inharmonic pings
        i = int(s * sr)
        ping = dsp.partials(base * 2 ** (rng.normal(0, 4) / 12) * np.array([1.0, 2.76, 5.4]), [1.0, 0.5, 0.25],
                            rng.uniform(0.02, 0.08, 3), min(int(0.08 * sr), n - i), sr, rng)
        x[i:i + len(ping)] += ping * rng.uniform(0.3, 1.0)
    flutter = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(12.0, 25.0) * dsp.times(n, sr))
    return _out(x * flutter, a, rng, sr), a


def scifi_slightly_sizzling(rng, d, sr):
    a = _attrs(rng, "drone", register="mid", pitch="wobbling", wobble_st=rng.uniform(0.3, 1.0),
               wobble_hz=rng.uniform(0.2, 0.6))
    n = int(round(d * sr))
    t = dsp.times(n, sr)
    f = a["f0_hz"] * 2 ** (a["wobble_st"] * np.sin(2 * np.pi * a["wobble_hz"] * t) / 12)
    tone = _fm(f, rng.uniform(1.3, 3.7), 1.0 + 1.5 * _smooth(rng, n, sr, 0.5), sr, rng)
    tone = tone * np.sin(2 * np.pi * rng.uniform(20.0, 70.0) * t)
    sizzle, _ = _layer(rng, d, sr, "sizzle", register="high")
    x = _mix((tone, 0), (sizzle, -12)) * dsp.gate(n, sr, np.array([0.0]), d, 0.1, 0.1)
    return _out(x, a, rng, sr), a


def scifi_squishy_hum(rng, d, sr):
    h, a = _layer(rng, d, sr, "buzz", register=str(rng.choice(["low", "mid"])), brightness="bright")
    a = {**a, "recipe": "hum"}
    rate, lo, hi = rng.uniform(1.5, 4.0), 300.0, min(2500.0, 0.3 * sr)

    def gains(f, t):
        centre = lo * (hi / lo) ** (0.5 + 0.5 * np.sin(2 * np.pi * rate * t))
        return 0.15 + dsp.log_gauss(f[:, None], centre[None, :], 0.35)

    return _out(dsp.tv_filter(h, sr, gains), a, rng, sr), a


def spatial_glitch_modulation_panning(rng, d, sr):
    x, a = _layer(rng, d, sr, "glitch", rate=str(rng.choice(["slow", "rapid"])), motion="back_and_forth",
                  space="reverberant")
    mod = 1 + 0.6 * np.sin(2 * np.pi * rng.uniform(4.0, 8.0) * dsp.times(len(x), sr))
    return _out(x * mod, a, rng, sr), a


def spatial_deep_fm(rng, d, sr):
    a = _attrs(rng, "drone", register="deep", pitch="wobbling", space="reverberant",
               wobble_st=rng.uniform(0.5, 1.5), wobble_hz=rng.uniform(0.2, 0.8))
    n = int(round(d * sr))
    t = dsp.times(n, sr)
    f = a["f0_hz"] * 2 ** (a["wobble_st"] * np.sin(2 * np.pi * a["wobble_hz"] * t) / 12)
    index = 0.5 + 3.5 * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.15, 0.5) * t))
    x = _fm(f, float(rng.choice([1.5, 2.0, 3.0])), index, sr, rng)
    return _out(dsp.lowpass(x, sr, 600.0, 2) * dsp.gate(n, sr, np.array([0.0]), d, 0.1, 0.1), a, rng, sr), a


def subtle_sizzle_moving(rng, d, sr):
    x, a = _layer(rng, d, sr, "sizzle", register="high", loudness="soft",
                  motion=str(rng.choice(["left_to_right", "right_to_left", "back_and_forth", "wander"])))
    return _out(x, a, rng, sr), a


def scifi_sixth_interval(rng, d, sr):
    a = _attrs(rng, "drone", register="mid", motion="wander", pan_width=rng.uniform(0.3, 0.45))
    n = int(round(d * sr))
    lower = _fm(np.full(n, a["f0_hz"]), 2.0, np.full(n, 0.8), sr, rng)
    upper = _fm(np.full(n, a["f0_hz"] * MAJOR_SIXTH), 2.0, np.full(n, 0.8), sr, rng)
    a = {**a, "interval": "major_sixth"}
    x = _mix((lower, 0), (upper, -1)) * dsp.gate(n, sr, np.array([0.0]), d, 0.1, 0.1)
    return _out(x, a, rng, sr), a


def scifi_glitch_slow_pitch_rumble(rng, d, sr):
    g, a = _layer(rng, d, sr, "glitch", rate="rapid", texture="tonal", pitch="wobbling",
                  wobble_st=rng.uniform(3.0, 6.0), wobble_hz=rng.uniform(0.1, 0.3))
    rumble, _ = _layer(rng, d, sr, "rumble", register="deep")
    low, _ = _layer(rng, d, sr, "drone", register="deep", brightness="dark")
    a = {**a, "register": "deep"}
    return _out(_mix((g, -4), (rumble, 0), (low, -3)), a, rng, sr), a


_P = Preset
PRESETS: dict[str, Preset] = {p.slug: p for p in (
    _P("glitchy-moving-panorama", "Continuous glitchy elements with moving panorama",
       ("continuous digital glitches panning across the stereo field", "a stream of glitchy sounds moving "
        "between the speakers", "glitches, continuous, moving panorama"), glitchy_moving_panorama),
    _P("hum-pitch-fm", "Continuous hum with pitch and frequency modulation",
       ("a continuous FM hum with vibrato", "a humming tone with wobbling pitch and frequency modulation",
        "hum, pitch modulation, FM"), hum_pitch_fm),
    _P("deep-spatial-stable-rumbly", "Continuous, deep and spatial, stable and rumbly",
       ("a deep, stable, rumbling drone in a large reverberant space", "deep rumbly drone with lots of reverb",
        "continuous deep rumble, spacious and steady"), deep_spatial_stable_rumbly),
    _P("deep-spatial-gloomy", "Continuous, deep, spatial and gloomy",
       ("a gloomy deep drone echoing in a big room", "dark, deep and spacious continuous drone",
        "deep gloomy reverberant pad drifting around the stereo field"), deep_spatial_gloomy),
    _P("hollow-hum-up-down", "Continuous, hollow, humming with ascending and descending pitch",
       ("a hollow hum that rises and then falls in pitch", "hollow humming tone going up and then down in pitch",
        "continuous hollow hum, rising then falling"), hollow_hum_up_down),
    _P("hum-low-impulse", "Continuous, humming with regular low impulse",
       ("a continuous hum with regular low thumps", "humming tone with a low thump repeating slowly",
        "hum with a steady pulse of low thuds"), hum_low_impulse),
    _P("rapid-glitch-pitch-envelope", "Continuous, rapid and glitchy elements with long pitch envelope",
       ("rapid digital glitches whose pitch sweeps over the whole sound", "fast glitchy elements with a long "
        "pitch sweep", "rapid glitches, long pitch envelope"), rapid_glitch_pitch_envelope),
    _P("rapid-slow-panorama", "Continuous, rapid elements with slowly moving panorama",
       ("rapid beeping elements slowly wandering around the stereo field", "fast repeating blips drifting "
        "slowly between the speakers", "rapid elements, slowly moving panorama"), rapid_slow_panorama),
    _P("rapid-glitchy-buzzing", "Continuous, rapid, glitchy buzzing elements",
       ("rapid glitchy fragments of a buzzing tone", "fast stuttering buzz glitches",
        "continuous rapid buzzing glitches"), rapid_glitchy_buzzing),
    _P("rapid-sizzling", "Continuous, rapid, sizzling elements",
       ("rapid bursts of sizzling noise", "fast repeating sizzles", "continuous rapid sizzling"), rapid_sizzling),
    _P("scary-sizzling-cymbals", "Continuous, scary sizzling cymbals with varying pitch",
       ("a scary wash of sizzling cymbals whose pitch wobbles", "eerie metallic cymbal sizzle with varying pitch",
        "continuous sizzling cymbals, scary, pitch modulation"), scary_sizzling_cymbals),
    _P("soft-noise-alarm", "Continuous, soft noise. Alarm like effect",
       ("an alarm beeping over soft background noise", "alarm-like beeps with a quiet noise bed",
        "soft noise and an alarm signal"), soft_noise_alarm),
    _P("processed-crickets", "Continuously stridulating, buzzing and sizzling sound of processed crickets",
       ("processed cricket chirps, buzzing and sizzling", "stridulating crickets with a buzzing, sizzling "
        "processed sound", "continuous chirping crickets, processed and buzzy"), processed_crickets),
    _P("digital-hum-varying", "Digital, continuous humming with varying pitch",
       ("a digital hum that jumps between pitches", "continuous digital humming with stepped, varying pitch",
        "digital square-wave hum, varying pitch"), digital_hum_varying),
    _P("glassy-insect-swarm", "Light, a tonal ring of shredded glassy elements like insect swarm",
       ("a light swarm of tiny glassy grains ringing like insects", "shimmering cloud of glassy fragments, "
        "like a swarm of insects", "light tonal ring of glassy granular elements"), glassy_insect_swarm),
    _P("scifi-slightly-sizzling", "Sci-fi, science fiction, continuous, slightly sizzling elements",
       ("a sci-fi tone with a slight sizzle", "continuous science fiction drone with faint sizzling",
        "sci-fi ring-modulated tone, slightly sizzling"), scifi_slightly_sizzling),
    _P("scifi-squishy-hum", "Sci-fi, science fiction, squishy humming,",
       ("a squishy sci-fi hum", "science fiction humming with a squelchy, wah-like filter",
        "squishy filtered hum, sci-fi"), scifi_squishy_hum),
    _P("spatial-glitch-modulation-panning", "Spatial, continuous, glitchy element with modulation and panning "
       "movements", ("reverberant glitches with modulation, panning back and forth",
                     "spatial glitchy sounds swinging between left and right", "modulated glitch, spacious, "
                     "panning movements"), spatial_glitch_modulation_panning),
    _P("spatial-deep-fm", "Spatial, deep, synthetic with continuous frequency modulation",
       ("a deep synthetic FM drone in a large hall", "spacious deep synth tone with continuous frequency "
        "modulation", "deep FM drone, reverberant"), spatial_deep_fm),
    _P("subtle-sizzle-moving", "Subtle, softly sizzling element with moving panorama",
       ("a quiet sizzle moving across the stereo field", "soft, subtle sizzling that pans around",
        "faint sizzling noise, moving panorama"), subtle_sizzle_moving),
    _P("scifi-sixth-interval", "Synthetic sci-fi, science fiction with a sixth interval and slight moving "
       "panorama", ("two synthetic tones a major sixth apart, drifting slightly in stereo",
                    "a sci-fi interval of a sixth with gentle panning", "synthetic major sixth drone, slight "
                    "stereo movement"), scifi_sixth_interval),
    _P("scifi-glitch-slow-pitch-rumble", "Synthetic sci-fi, science fiction with glitchy, slowly varying pitch "
       "envelope and heavy low rumbling", ("sci-fi glitches with slowly wobbling pitch over a heavy low rumble",
                                           "synthetic glitchy sound over deep rumbling, pitch slowly varying",
                                           "heavy low rumble with glitches, science fiction"),
       scifi_glitch_slow_pitch_rumble),
)}


def render_preset(slug: str, rng: np.random.Generator, duration: float, sr: int) -> tuple[np.ndarray, dict]:
    """Render preset ``slug``: float32 stereo [2, T] and its attributes (with ``preset`` = slug)."""
    y, a = PRESETS[slug].render(rng, duration, sr)
    return y, {**a, "preset": slug}
