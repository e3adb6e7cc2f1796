"""Control curves: five time-varying signals, each measured by one analyzer, used as targets and for checking.

=============  ==========================================================  ===========  ===================
name           what it measures                                            unit         compared in
=============  ==========================================================  ===========  ===================
``loudness``   short-term level of the mono mix (100 ms frames, 50 ms hop)  dB           dB, up to an offset
``brightness`` spectral centroid of the mono mix (~46 ms STFT frames)       Hz           log2 Hz (octaves)
``pitch``      f0 of a periodic sound (YIN), else its dominant spectral     Hz           semitones
               peak (spectrum smoothed over a sixth of an octave)
``density``    onsets per second (spectral-flux onsets, Gaussian-smoothed)  onsets/s     onsets/s
``pan``        right-minus-left level difference (100 ms frames)            dB           dB (+ = right)
=============  ==========================================================  ===========  ===================

The analyzers share the frame conventions of :mod:`foley.analyzers` (they reuse its helpers). Every measured
curve is put on one grid of :data:`CURVE_RATE` points per second (a weighted mean per 50 ms bin) with a
``strength`` per point: 1 where the signal is defined (loud enough; voiced or with a clear peak), 0 where it is
not (a brightness or pan in silence). A :class:`Curve` is times + values (+ strength); a curve spans ``span``
seconds and is **stretched to the output's duration** when used (:meth:`Curve.resample`).

Sources (:func:`parse_spec`, one-line :class:`~foley.errors.RequestError` for anything else):
a sound (``loudness=ref.wav``: that sound's curve), a file (``pitch=curve.csv`` with columns time,value[,strength],
or JSON ``{"times": [...], "values": [...]}`` / ``[[t, v], ...]``), or words (``"pitch=rise 200Hz->800Hz"``,
``"loudness=fade out"``, ``"pan=left->right"``, ``"brightness=dark->bright"``, ``"density=faster"``).
:func:`prior` turns the words of a prompt ("rising", "slowly fading", "from left to right") into target curves.

A *relative* curve (loudness always; pitch and brightness given by words without numbers, or from an
imitation) is compared up to a constant offset in its comparison space: only its shape counts.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import analyzers as an
from .audio import LOAD_FORMATS, Audio
from .errors import RequestError

NAMES = ("loudness", "brightness", "pitch", "density", "pan")
UNITS = {"loudness": "dB", "brightness": "Hz", "pitch": "Hz", "density": "onsets/s", "pan": "dB"}
ERROR_UNITS = {"loudness": "dB", "brightness": "Hz", "pitch": "semitones", "density": "onsets/s", "pan": "dB"}
ALIASES = {"level": "loudness", "volume": "loudness", "centroid": "brightness", "f0": "pitch", "onsets": "density",
           "rate": "density", "stereo": "pan", "position": "pan"}
ALWAYS_RELATIVE = ("loudness",)   # the output's level is set by its limiter, not by the curve
CURVE_RATE = 20.0                 # points per second of every measured or resampled curve
DENSITY_SIGMA = 0.25              # s: Gaussian smoothing of the onset train into onsets/s
LOUDNESS_FLOOR_DB = 60.0          # levels are floored this far below the peak (as analyzers.SILENCE_DB)
SILENT_DB = -120.0                # the level of an all-silent sound
PAN_WORDS_DB = 12.0               # "left" / "right" in words: this level difference
MAX_POINTS = 100_000              # points in a curve file
STRENGTH_MAX = 10.0               # --control-strength range 0..STRENGTH_MAX


QUALITY_ALIASES = {"noise": "texture", "noisiness": "texture", "flatness": "texture", "modulation": "tremolo",
                   "wobble": "tremolo"}


def canonical(name: str, qualities: bool = False) -> str:
    """A curve name or alias -> its canonical name; with ``qualities`` also texture / tremolo (whole-sound
    qualities: :func:`parse_quality`); one-line error for an unknown one."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    key = QUALITY_ALIASES.get(key, key)
    if key in QUALITIES:
        if qualities:
            return key
        raise RequestError(f"'{name.strip()}' is no curve but a whole-sound quality: give it as a control "
                           f"({key}=...) or in the prompt's words")
    if key not in NAMES:
        raise RequestError(f"unknown control '{name.strip()}'; choose {', '.join(NAMES)}, texture or tremolo")
    return key


def _log_space(name: str) -> bool:
    return name in ("brightness", "pitch")


def to_space(name: str, values: np.ndarray) -> np.ndarray:
    """Values in the curve's unit -> its comparison space (octaves for Hz curves, else unchanged)."""
    values = np.asarray(values, np.float64)
    return np.log2(np.maximum(values, 1e-3)) if _log_space(name) else values


def from_space(name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    return 2.0 ** values if _log_space(name) else values


# --- the curve type --------------------------------------------------------------------------------------------
@dataclass
class Curve:
    """``values`` (in ``UNITS[name]``) at ``times`` (s, ascending) over a sound of ``span`` seconds.

    ``strength`` (0..1 per point, None = 1): how much each point counts. ``relative``: compared up to a constant
    offset. ``source``: where it came from (words, a file, a sound, the prompt prior), for the sidecar."""

    name: str
    times: np.ndarray
    values: np.ndarray
    strength: np.ndarray | None = None
    span: float = 1.0
    relative: bool = False
    source: str = ""
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        self.times = np.asarray(self.times, np.float64).reshape(-1)
        self.values = np.asarray(self.values, np.float64).reshape(-1)
        if self.strength is not None:
            self.strength = np.clip(np.asarray(self.strength, np.float64).reshape(-1), 0.0, 1.0)
        if self.name in ALWAYS_RELATIVE:
            self.relative = True

    @property
    def weights(self) -> np.ndarray:
        return np.ones_like(self.values) if self.strength is None else self.strength

    def at(self, times: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
        """(values, strength) at ``times`` of an output ``duration`` s long (this curve stretched over it)."""
        src = np.asarray(times, np.float64) * (self.span / duration if duration > 0 else 1.0)
        if len(self.times) == 1:
            return np.full(len(src), self.values[0]), np.full(len(src), self.weights[0])
        v = from_space(self.name, np.interp(src, self.times, to_space(self.name, self.values)))
        return v, np.interp(src, self.times, self.weights)

    def resample(self, duration: float, rate: float = CURVE_RATE) -> Curve:
        """This curve stretched to ``duration`` seconds, on the grid of ``rate`` points per second."""
        t = grid(duration, rate)
        v, w = self.at(t, duration)
        return replace(self, times=t, values=v, strength=None if self.strength is None else w, span=duration)

    def to_dict(self, decimals: int = 4) -> dict:
        d = {"name": self.name, "unit": UNITS[self.name], "source": self.source, "relative": self.relative,
             "span": round(self.span, 6), "times": [round(float(x), decimals) for x in self.times],
             "values": [round(float(x), decimals) for x in self.values]}
        if self.strength is not None:
            d["strength"] = [round(float(x), 3) for x in self.strength]
        return d


def grid(duration: float, rate: float = CURVE_RATE) -> np.ndarray:
    """Centres of the curve bins covering ``duration`` seconds."""
    n = max(1, int(math.ceil(duration * rate - 1e-9)))
    return (np.arange(n) + 0.5) / rate


def _bin(t: np.ndarray, v: np.ndarray, w: np.ndarray, duration: float, name: str,
         rate: float = CURVE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Frames (times ``t``, values ``v``, weights ``w``) -> the grid: the weighted mean (in the comparison space)
    of the frames in each bin, interpolated from defined frames where a bin has none; strength = mean weight."""
    g = grid(duration, rate)
    t, w = np.asarray(t, np.float64), np.clip(np.asarray(w, np.float64), 0.0, None)
    s = to_space(name, v)
    idx = np.clip(np.floor(t * rate).astype(int), 0, len(g) - 1)
    wsum = np.bincount(idx, weights=w, minlength=len(g))
    vsum = np.bincount(idx, weights=w * s, minlength=len(g))
    count = np.bincount(idx, minlength=len(g))
    strength = np.divide(wsum, np.maximum(count, 1))
    ok = w > 0
    if not ok.any():
        return from_space(name, np.full(len(g), s.mean() if len(s) else 0.0)), np.zeros(len(g))
    filled = np.interp(g, t[ok], s[ok])
    out = np.where(wsum > 0, vsum / np.maximum(wsum, 1e-30), filled)
    empty = count == 0  # a bin between two frames (frame rate under the grid's): interpolated, as defined
    strength[empty] = np.interp(g[empty], t, (w > 0).astype(float)) if empty.any() else strength[empty]
    return from_space(name, out), np.clip(strength, 0.0, 1.0)


# --- analyzers --------------------------------------------------------------------------------------------------
def loudness(audio: Audio) -> Curve:
    """Short-term level of the mono mix in dB (100 ms frames, half-overlapping; floored 60 dB under the peak)."""
    power, t = an._level_db(an._mono(audio), audio.sample_rate, an.LEVEL_SECONDS)
    peak = power.max(initial=0.0)
    if peak <= 0:
        db = np.full(len(power), SILENT_DB)
    else:
        db = 10 * np.log10(np.maximum(power, peak * 10 ** (-LOUDNESS_FLOOR_DB / 10)))
    v, _ = _bin(t, db, np.ones_like(db), audio.duration, "loudness")
    return Curve("loudness", grid(audio.duration), v, np.ones_like(v), audio.duration, source="measured")


def brightness(audio: Audio) -> Curve:
    """Spectral centroid of the mono mix per ~46 ms frame (as :func:`foley.analyzers.spectral_centroid`), Hz;
    frames weighted by energy; silent frames (60 dB under the loudest) undefined."""
    import librosa

    S = an._power_spectrogram(audio)
    energy = S.sum(axis=0)
    active = an._active(energy)
    n_fft = 2 * (S.shape[0] - 1)
    c = librosa.feature.spectral_centroid(S=np.sqrt(S), sr=audio.sample_rate, n_fft=n_fft)[0]
    t = np.arange(len(c)) * (n_fft // 4) / audio.sample_rate
    w = active * (energy / max(energy.max(initial=0.0), 1e-30)) ** 0.5
    v, s = _bin(t, np.maximum(c, 1.0), w, audio.duration, "brightness")
    _, act = _bin(t, np.maximum(c, 1.0), active.astype(float), audio.duration, "brightness")
    return Curve("brightness", grid(audio.duration), v, (s > 0) * act, audio.duration, source="measured")


def pitch(audio: Audio) -> Curve:
    """One definition per sound, so a curve never jumps between a fundamental and a harmonic: a sound whose
    active energy is mostly strongly periodic (:data:`PERIODIC_SHARE` of it at a normalised autocorrelation of
    :data:`PERIODIC_R` or more: tones, whistles, voices, instruments) gives its YIN f0 over those frames
    (:func:`foley.analyzers.periodicity_track`); any other sound gives the frequency of its dominant spectral
    peak (40 Hz - 4 kHz, the power spectrum smoothed over :data:`PEAK_OCTAVES` of an octave, interpolated between
    bins) where it is not silent. Hz. ``meta["mode"]``: "f0" or "peak"; ``meta["voiced"]``: the periodic share
    per point."""
    t, f0, r, rms = an.periodicity_track(audio)
    periodic = (r >= PERIODIC_R) & (rms > 0)
    _, vs = _bin(t, periodic.astype(float), np.ones(len(t)), audio.duration, "density")
    meta = {"voiced": np.round(vs, 3).tolist()}
    energy = rms ** 2
    if energy.sum() > 0 and (energy * periodic).sum() >= PERIODIC_SHARE * energy.sum():
        v, s = _bin(t, f0, periodic.astype(float), audio.duration, "pitch")
        return Curve("pitch", grid(audio.duration), v, s, audio.duration, source="measured",
                     meta={"mode": "f0", **meta})
    S, freqs = an.pitch_spectrogram(audio)
    S = S[:, : len(t)]
    centres, bank = _peak_bank(len(freqs))
    B = bank @ S + 1e-30                                   # [bands, frames]
    i = np.clip(np.argmax(B, axis=0), 1, len(centres) - 2)
    cols = np.arange(B.shape[1])
    lo, mid, hi = (np.log(B[i + d, cols]) for d in (-1, 0, 1))
    den = lo - 2 * mid + hi
    off = np.clip(np.divide(0.5 * (lo - hi), den, out=np.zeros_like(den), where=np.abs(den) > 1e-12), -0.5, 0.5)
    hz = centres[i] * 2 ** (off / PEAK_BANDS_PER_OCTAVE)
    v, s = _bin(t, hz, an._active(S.sum(axis=0)).astype(float), audio.duration, "pitch")
    return Curve("pitch", grid(audio.duration), v, s, audio.duration, source="measured", meta={"mode": "peak", **meta})


PERIODIC_R = 0.9            # pitch: a frame this periodic (normalised autocorrelation at the YIN period) has an f0
PERIODIC_SHARE = 0.5        # ... and a sound with this share of its energy in such frames is measured by its f0
PEAK_OCTAVES = 1.0 / 6      # pitch of any other sound: its dominant peak at this resolution (Gaussian width, octaves)
PEAK_BANDS_PER_OCTAVE = 12


@lru_cache(maxsize=4)
def _peak_bank(bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Band centres (Hz, 12 per octave over the pitch range) and Gaussian log-frequency weights [bands, bins]."""
    freqs = np.fft.rfftfreq(2 * (bins - 1), 1.0 / an.PITCH_RATE)
    centres = 2 ** np.arange(np.log2(an.PITCH_FMIN), np.log2(an.PITCH_FMAX), 1 / PEAK_BANDS_PER_OCTAVE)
    logf = np.log2(np.maximum(freqs, 1.0))
    w = np.exp(-0.5 * ((logf[None, :] - np.log2(centres)[:, None]) / PEAK_OCTAVES) ** 2)
    w[:, freqs < 0.7 * an.PITCH_FMIN] = 0.0
    return centres, w / w.sum(axis=1, keepdims=True)


def density(audio: Audio) -> Curve:
    """Onsets per second: the onset train of :func:`foley.analyzers.onset_times` smoothed by a Gaussian of
    :data:`DENSITY_SIGMA` s (edge-corrected: the kernel mass inside the clip)."""
    onsets = an.onset_times(audio)
    g = grid(audio.duration)
    v = smooth_onsets(onsets, g, audio.duration)
    return Curve("density", g, v, np.ones_like(v), audio.duration, source="measured")


def smooth_onsets(onsets: np.ndarray, times: np.ndarray, duration: float, sigma: float = DENSITY_SIGMA) -> np.ndarray:
    from scipy.special import erf

    if len(onsets) == 0:
        return np.zeros(len(times))
    d = (times[:, None] - np.asarray(onsets)[None, :]) / sigma
    k = np.exp(-0.5 * d ** 2) / (sigma * math.sqrt(2 * math.pi))
    mass = 0.5 * (erf((duration - times) / (sigma * math.sqrt(2))) - erf(-times / (sigma * math.sqrt(2))))
    return k.sum(axis=1) / np.maximum(mass, 0.5)


def pan(audio: Audio) -> Curve:
    """Right-minus-left level difference per 100 ms frame, dB (+ = right; 0 for mono), clipped at +-30 dB."""
    if audio.channels < 2:
        power, t = an._level_db(an._mono(audio), audio.sample_rate, an.LEVEL_SECONDS)
        ild, w = np.zeros(len(power)), an._active(power).astype(float)
    else:
        ild, t, w = an._ild(audio)
    v, s = _bin(t, ild, w, audio.duration, "pan")
    return Curve("pan", grid(audio.duration), v, (s > 0).astype(float) * np.minimum(1.0, 2 * s), audio.duration,
                 source="measured")


ANALYZERS = {"loudness": loudness, "brightness": brightness, "pitch": pitch, "density": density, "pan": pan}


def measure(audio: Audio, names=None) -> dict[str, Curve]:
    """The named curves (all five by default) of ``audio``, on the grid of its duration."""
    names = NAMES if names is None else [canonical(n) for n in names]
    return {n: ANALYZERS[n](audio) for n in names}


# --- what control adapters read: curves and chroma on a coarse grid ------------------------------------------------
RELATIVE_FLAGS = ("pitch", "brightness")  # the curves an adapter is told are given as a shape only (relative)
CHROMA_BINS = 12
CHROMA_FFT_SECONDS = 0.128      # STFT frame of the chroma (2048 samples at 16 kHz), hop a quarter of it
CHROMA_FLOOR_DB = 40.0          # frames this far below the loudest carry no chroma (a hummed melody's pauses)


def input_space(name: str, values: np.ndarray) -> np.ndarray:
    """Values in the curve's unit -> a control adapter's input space (about -3 .. 3): loudness dB/20, brightness
    log2(Hz/1000), pitch log2(Hz/440), density log(1 + onsets/s)/2, pan dB/12 (the latent-diffusion adapter's)."""
    v = np.asarray(values, np.float64)
    if name == "loudness":
        return v / 20.0
    if name == "brightness":
        return np.log2(np.maximum(v, 1.0) / 1000.0)
    if name == "pitch":
        return np.log2(np.maximum(v, 1.0) / 440.0)
    if name == "density":
        return np.log1p(np.maximum(v, 0.0)) / 2.0
    return v / PAN_WORDS_DB  # pan


def on_grid(curve: Curve, duration: float, points: int, seconds_per_point: float) -> tuple[np.ndarray, np.ndarray]:
    """A curve stretched over ``duration`` s -> (values in :func:`input_space`, strength) on ``points`` bins of
    ``seconds_per_point``: the strength-weighted mean of its 20-per-second points inside each bin; bins past
    ``duration`` have strength 0."""
    c = curve.resample(duration)
    v, w = input_space(c.name, c.values), c.weights
    idx = np.floor(c.times / seconds_per_point).astype(int)
    keep = idx < points
    idx, v, w = idx[keep], v[keep], w[keep]
    wsum = np.bincount(idx, weights=w, minlength=points)
    vsum = np.bincount(idx, weights=w * v, minlength=points)
    count = np.bincount(idx, minlength=points)
    values = np.where(wsum > 0, vsum / np.maximum(wsum, 1e-12), 0.0)
    return values, np.divide(wsum, np.maximum(count, 1))


def centred(values: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """Values minus their strength-weighted mean along the last axis (a shape: what a relative curve says)."""
    s = strength.sum(-1, keepdims=True)
    mean = (values * strength).sum(-1, keepdims=True) / np.maximum(s, 1e-8)
    return np.where(strength > 0, values - mean, 0.0)


def chroma(audio: Audio, points: int, seconds_per_point: float) -> tuple[np.ndarray, np.ndarray]:
    """The melody of a sound as MusicGen-melody reads it: per STFT frame of the mono mix the strongest of the 12
    pitch classes (librosa's chroma filter bank, C = 0), one-hot; averaged over each of ``points`` bins of
    ``seconds_per_point`` -> (chroma [12, points], each bin's share of the strongest class; strength [points],
    the share of its frames within 40 dB of the loudest). Bins past the sound have strength 0."""
    import librosa

    x = an._mono(audio).astype(np.float32)
    rate = audio.sample_rate
    n_fft = 1 << max(8, int(round(math.log2(CHROMA_FFT_SECONDS * rate))))
    hop = n_fft // 4
    out, strength = np.zeros((CHROMA_BINS, points)), np.zeros(points)
    if len(x) < 2:
        return out, strength
    S = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, center=True)) ** 2
    c = librosa.feature.chroma_stft(S=S, sr=rate, n_fft=n_fft, tuning=0.0, norm=None)  # [12, N]
    energy = S.sum(0)
    peak = energy.max(initial=0.0)
    if peak <= 0:
        return out, strength
    loud = (energy > peak * 10 ** (-CHROMA_FLOOR_DB / 10)).astype(np.float64)
    hot = np.zeros_like(c, dtype=np.float64)
    hot[c.argmax(0), np.arange(c.shape[1])] = 1.0
    t = np.arange(c.shape[1]) * hop / rate
    inside = t < len(x) / rate
    idx = np.floor(t / seconds_per_point).astype(int)
    keep = inside & (idx < points)
    idx, hot, loud = idx[keep], hot[:, keep], loud[keep]
    count = np.bincount(idx, minlength=points).astype(np.float64)
    lsum = np.bincount(idx, weights=loud, minlength=points)
    for k in range(CHROMA_BINS):
        out[k] = np.bincount(idx, weights=hot[k] * loud, minlength=points)
    out = out / np.maximum(lsum, 1e-12)
    strength = lsum / np.maximum(count, 1.0)
    return out, strength


def melody_adherence(reference: Audio, audio: Audio, rate: float = 8.0) -> dict:
    """How closely ``audio`` follows the melody of ``reference`` (both read from 0 s, over the shorter): per bin of
    1/``rate`` s where both are sounding (chroma strength over 0.5), whether their strongest pitch classes agree
    (``pitch_class_agreement``; chance is about 1/12) and the Pearson correlation of their 12-bin chroma
    (``chroma_correlation``, mean over those bins)."""
    duration = min(reference.duration, audio.duration)
    n = max(1, int(math.ceil(duration * rate - 1e-9)))
    a, sa = chroma(reference, n, 1.0 / rate)
    b, sb = chroma(audio, n, 1.0 / rate)
    both = (sa > 0.5) & (sb > 0.5)
    out = {"bins": int(both.sum()), "pitch_class_agreement": None, "chroma_correlation": None}
    if not both.any():
        return out
    a, b = a[:, both], b[:, both]
    out["pitch_class_agreement"] = round(float(np.mean(a.argmax(0) == b.argmax(0))), 4)
    am, bm = a - a.mean(0), b - b.mean(0)
    den = np.sqrt((am ** 2).sum(0) * (bm ** 2).sum(0))
    ok = den > 1e-9
    if ok.any():
        out["chroma_correlation"] = round(float(np.mean((am * bm).sum(0)[ok] / den[ok])), 4)
    return out


# --- adherence ---------------------------------------------------------------------------------------------------
def compare(target: Curve, measured: Curve, duration: float) -> dict:
    """How well ``measured`` follows ``target`` over ``duration`` s: Pearson correlation (in the comparison space;
    None when either is constant) and mean absolute error (in :data:`ERROR_UNITS`; a relative target is aligned
    first), weighted by both curves' strength."""
    name = target.name
    g = grid(duration)
    tv, tw = target.at(g, duration)
    mv, mw = measured.at(g, duration)
    w = tw * mw
    out = {"correlation": None, "mean_error": None, "unit": ERROR_UNITS[name], "points": int((w > 0).sum()),
           "relative": target.relative}
    if w.sum() <= 0:
        return out
    a, b = to_space(name, tv), to_space(name, mv)
    if name == "pitch":
        a, b = 12 * a, 12 * b  # semitones
    if target.relative:
        b = b - np.average(b - a, weights=w)
    if name == "brightness":
        err = np.abs(from_space(name, b) - from_space(name, a))
    else:
        err = np.abs(b - a)
    out["mean_error"] = round(float(np.average(err, weights=w)), 4)
    out["correlation"] = _corr(a, b, w)
    return out


def _corr(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float | None:
    if (w > 0).sum() < 3:
        return None
    am, bm = np.average(a, weights=w), np.average(b, weights=w)
    va, vb = np.average((a - am) ** 2, weights=w), np.average((b - bm) ** 2, weights=w)
    if va < 1e-10 or vb < 1e-10:
        return None
    return round(float(np.average((a - am) * (b - bm), weights=w) / math.sqrt(va * vb)), 4)


def adherence(targets: dict[str, Curve], audio: Audio) -> dict:
    """{name: compare(target, measured)} for every target, measured on ``audio``."""
    measured = measure(audio, list(targets))
    return {n: compare(c, measured[n], audio.duration) for n, c in targets.items()}


# --- sources: sound, file, words ----------------------------------------------------------------------------------
SOUND_SUFFIXES = tuple(LOAD_FORMATS)
SPEC_HELP = ("a sound (NAME=ref.wav), a curve file (NAME=curve.csv with columns time,value, or .json) or words "
             "such as 'pitch=rise 200Hz->800Hz', 'loudness=fade out', 'pan=left->right', "
             "'brightness=dark->bright', 'density=faster'")


def split_spec(spec: str) -> tuple[str, str]:
    """``"NAME=SOURCE"`` -> (canonical name, source text); one-line error for anything else."""
    if not isinstance(spec, str) or "=" not in spec:
        raise RequestError(f"control '{spec}' is not NAME=SOURCE; give {SPEC_HELP}")
    name, source = spec.split("=", 1)
    source = source.strip()
    if not source:
        raise RequestError(f"control '{spec}' has nothing after '='; give {SPEC_HELP}")
    return canonical(name, qualities=True), source


def is_file_source(source: str) -> bool:
    return Path(source).suffix.lower() in (*SOUND_SUFFIXES, ".csv", ".json")


def parse_spec(name: str, source, base: Path | None = None) -> Curve:
    """One control's target curve from its source: a sound file, a curve file, words, or an inline curve
    (a mapping with ``times`` and ``values``, or a :class:`Curve`)."""
    name = canonical(name)
    if isinstance(source, Curve):
        return replace(source, name=name)
    if isinstance(source, dict) or hasattr(source, "times"):
        return inline(name, source)
    source = str(source).strip()
    if is_file_source(source):
        path = Path(source).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        return from_file(name, path)
    return from_words(name, source)


def inline(name: str, data) -> Curve:
    """A curve given as values: ``{"times": [...], "values": [...], "strength": [...]?, "relative": bool?}``."""
    get = data.get if isinstance(data, dict) else (lambda k, d=None: getattr(data, k, d))
    times, values = get("times"), get("values")
    if times is None or values is None:
        raise RequestError(f"control '{name}': an inline curve needs 'times' and 'values' lists")
    return _checked(name, times, values, get("strength"), f"control '{name}'", relative=bool(get("relative") or False),
                    source="inline")


def _checked(name, times, values, strength, what: str, relative=False, source="") -> Curve:
    try:
        t = np.asarray(times, np.float64).reshape(-1)
        v = np.asarray(values, np.float64).reshape(-1)
        s = None if strength is None else np.asarray(strength, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise RequestError(f"{what}: times and values must be numbers") from None
    if len(t) == 0 or len(t) != len(v) or (s is not None and len(s) != len(t)):
        raise RequestError(f"{what}: needs as many times as values (and strengths), at least one; got "
                           f"{len(t)} times and {len(v)} values")
    if len(t) > MAX_POINTS:
        raise RequestError(f"{what}: {len(t)} points; the limit is {MAX_POINTS}")
    if not (np.isfinite(t).all() and np.isfinite(v).all() and (s is None or np.isfinite(s).all())):
        raise RequestError(f"{what}: contains a non-finite number")
    if (t < 0).any() or (np.diff(t) <= 0).any():
        raise RequestError(f"{what}: times must be non-negative and increasing")
    if _log_space(name) and (v <= 0).any():
        raise RequestError(f"{what}: {name} values are frequencies in Hz and must be positive")
    if s is not None and ((s < 0).any() or (s > 1).any()):
        raise RequestError(f"{what}: strengths must be between 0 and 1")
    span = float(t[-1]) if t[-1] > 0 else 1.0
    return Curve(name, t, v, s, span, relative=relative, source=source)


def from_file(name: str, path: Path) -> Curve:
    """A curve from a sound (its measured curve), a CSV (time,value[,strength]; header optional) or a JSON file."""
    what = f"control '{name}': {path}"
    if not path.is_file():
        raise RequestError(f"{what} not found" if not path.exists() else f"{what} is not a file")
    suffix = path.suffix.lower()
    if suffix in SOUND_SUFFIXES:
        audio = Audio.load(path)
        c = ANALYZERS[name](audio)
        return replace(c, source=f"sound: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RequestError(f"{what}: cannot read it as text ({type(e).__name__})") from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise RequestError(f"{what}: not valid JSON ({e.msg} at line {e.lineno})") from None
        if isinstance(data, list):
            rows = data
            if not all(isinstance(r, (list, tuple)) and len(r) in (2, 3) for r in rows):
                raise RequestError(f"{what}: a JSON list must hold [time, value] pairs")
            c = _checked(name, [r[0] for r in rows], [r[1] for r in rows], None, what)
        elif isinstance(data, dict):
            times = data.get("times", data.get("time"))
            values = data.get("values", data.get("value"))
            if times is None or values is None:
                raise RequestError(f"{what}: a JSON object needs 'times' and 'values' lists")
            c = _checked(name, times, values, data.get("strength"), what, relative=bool(data.get("relative", False)))
        else:
            raise RequestError(f"{what}: JSON must be {{\"times\": [...], \"values\": [...]}} or [[t, v], ...]")
        return replace(c, source=f"file: {path}")
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cells = [x.strip() for x in re.split(r"[,;\t]", line)]
        try:
            rows.append([float(x) for x in cells if x != ""])
        except ValueError:
            if rows or i > 1 and any(r for r in rows):
                raise RequestError(f"{what}: line {i} is not numbers: '{line[:40]}'") from None
            continue  # a header line
        if len(rows[-1]) not in (2, 3):
            raise RequestError(f"{what}: line {i} has {len(rows[-1])} columns; use time,value[,strength]")
    if not rows:
        raise RequestError(f"{what}: no rows; the columns are time,value (one row per point)")
    strength = [r[2] for r in rows] if all(len(r) == 3 for r in rows) else None
    return replace(_checked(name, [r[0] for r in rows], [r[1] for r in rows], strength, what), source=f"file: {path}")


# --- words ----------------------------------------------------------------------------------------------------------
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)"
_UNIT_RE = re.compile(rf"({_NUM})\s*(khz|hz|db|/s|per\s+second|onsets/s)?$")
# word -> (value, relative) per curve; relative word scales are in the curve's unit around a nominal centre
_WORD_VALUES: dict[str, dict[str, tuple[float, bool]]] = {
    "loudness": {"silent": (-60.0, True), "silence": (-60.0, True), "quiet": (-30.0, True), "soft": (-30.0, True),
                 "medium": (-15.0, True), "loud": (0.0, True), "full": (0.0, True)},
    "brightness": {"dark": (500.0, True), "dull": (500.0, True), "muffled": (500.0, True), "warm": (1000.0, True),
                   "neutral": (1000.0, True), "bright": (2000.0, True), "brilliant": (4000.0, True),
                   "harsh": (4000.0, True)},
    "pitch": {"low": (220.0, True), "mid": (440.0, True), "middle": (440.0, True), "high": (880.0, True)},
    "density": {"none": (0.0, False), "sparse": (1.0, False), "slow": (1.0, False), "medium": (4.0, False),
                "moderate": (4.0, False), "fast": (8.0, False), "dense": (10.0, False)},
    "pan": {"left": (-PAN_WORDS_DB, False), "l": (-PAN_WORDS_DB, False), "right": (PAN_WORDS_DB, False),
            "r": (PAN_WORDS_DB, False), "centre": (0.0, False), "center": (0.0, False), "middle": (0.0, False),
            "hard-left": (-24.0, False), "hard-right": (24.0, False)},
}
_WORD_EXAMPLES = {"loudness": "'fade in', 'fade out', 'swell', 'hit', 'steady', '-30dB->0dB', 'quiet->loud'",
                  "brightness": "'brighter', 'darker', 'dark->bright', '500Hz->4kHz', 'steady 2kHz'",
                  "pitch": "'rise', 'fall', 'rise 200Hz->800Hz', '800Hz->200Hz', 'steady 440Hz', 'low->high'",
                  "density": "'faster', 'slower', '2/s->8/s', 'steady 4/s', 'sparse->dense'",
                  "pan": "'left->right', 'right->left', 'left', 'centre', 'back and forth', '-12dB->12dB'"}
# shape words -> (values over normalised time, relative); values in the unit of the curve
_SHAPES: dict[str, dict[str, tuple[list[tuple[float, float]], bool]]] = {
    "loudness": {"fade in": ([(0, -40.0), (1, 0.0)], True), "fade out": ([(0, 0.0), (1, -40.0)], True),
                 "rise": ([(0, -30.0), (1, 0.0)], True), "fall": ([(0, 0.0), (1, -30.0)], True),
                 "swell": ([(0, -30.0), (0.5, 0.0), (1, -30.0)], True),
                 "hit": ([(0, 0.0), (0.25, -50.0), (1, -60.0)], True),
                 "steady": ([(0, 0.0)], True)},
    "brightness": {"rise": ([(0, 500.0), (1, 2000.0)], True), "fall": ([(0, 2000.0), (1, 500.0)], True),
                   "steady": ([(0, 1000.0)], True)},
    "pitch": {"rise": ([(0, 440.0), (1, 880.0)], True), "fall": ([(0, 880.0), (1, 440.0)], True),
              "steady": ([(0, 440.0)], True)},
    "density": {"rise": ([(0, 2.0), (1, 8.0)], False), "fall": ([(0, 8.0), (1, 2.0)], False),
                "steady": ([(0, 4.0)], False)},
    "pan": {"rise": ([(0, -PAN_WORDS_DB), (1, PAN_WORDS_DB)], False),
            "fall": ([(0, PAN_WORDS_DB), (1, -PAN_WORDS_DB)], False),
            "back and forth": ([(0, -PAN_WORDS_DB), (0.5, PAN_WORDS_DB), (1, -PAN_WORDS_DB)], False),
            "steady": ([(0, 0.0)], False)},
}
_SYNONYMS = {"rising": "rise", "rises": "rise", "up": "rise", "upward": "rise", "increase": "rise",
             "increasing": "rise", "higher": "rise", "ascend": "rise", "ascending": "rise", "sweep": "rise",
             "falling": "fall", "falls": "fall", "down": "fall", "downward": "fall", "decrease": "fall",
             "decreasing": "fall", "lower": "fall", "descend": "fall", "descending": "fall", "drop": "fall",
             "constant": "steady", "flat": "steady", "hold": "steady", "fixed": "steady"}
# words that name a shape of one curve only ("faster" is no pan shape)
_CURVE_SYNONYMS = {
    "loudness": {"fade-in": "fade in", "fadein": "fade in", "crescendo": "fade in", "louder": "fade in",
                 "fade-out": "fade out", "fadeout": "fade out", "decrescendo": "fade out", "quieter": "fade out",
                 "fade": "fade out", "decay": "hit", "impact": "hit", "short sharp hit": "hit", "sharp hit": "hit",
                 "a short sharp hit": "hit", "swelling": "swell"},
    "brightness": {"brighter": "rise", "brighten": "rise", "brightening": "rise", "opening": "rise",
                   "darker": "fall", "darken": "fall", "darkening": "fall", "closing": "fall"},
    "pitch": {},
    "density": {"faster": "rise", "accelerate": "rise", "accelerating": "rise", "accelerando": "rise",
                "slower": "fall", "decelerate": "fall", "slowing": "fall", "slowing down": "fall",
                "ritardando": "fall"},
    "pan": {"ping-pong": "back and forth", "ping pong": "back and forth", "left-right-left": "back and forth",
            "side to side": "back and forth"},
}
_UNIT_OF = {"khz": ("Hz", 1000.0), "hz": ("Hz", 1.0), "db": ("dB", 1.0), "/s": ("onsets/s", 1.0),
            "per second": ("onsets/s", 1.0), "onsets/s": ("onsets/s", 1.0)}


def _value(name: str, token: str, spec: str) -> tuple[float, bool]:
    """One value token of a words curve -> (value in the curve's unit, relative)."""
    tok = token.strip().lower()
    if tok in _WORD_VALUES[name]:
        return _WORD_VALUES[name][tok]
    m = _UNIT_RE.match(tok)
    if m is None:
        raise RequestError(f"control '{name}={spec}': cannot read '{token.strip()}' as a {name} value; use "
                           f"{_WORD_EXAMPLES[name]}")
    x = float(m.group(1))
    unit = m.group(2)
    if unit is not None:
        u, scale = _UNIT_OF[re.sub(r"\s+", " ", unit)]
        if u != UNITS[name]:
            raise RequestError(f"control '{name}={spec}': '{token.strip()}' is in {u}; {name} is in {UNITS[name]}")
        x *= scale
    if _log_space(name) and x <= 0:
        raise RequestError(f"control '{name}={spec}': {name} values are frequencies and must be positive")
    if name == "density" and x < 0:
        raise RequestError(f"control '{name}={spec}': a density is a number of onsets per second, not negative")
    return x, False


def from_words(name: str, spec: str) -> Curve:
    """A curve from words: a shape (``rise``, ``fall``, ``fade out``, ``swell``, ``hit``, ``faster``,
    ``back and forth``...), values joined by ``->`` or ``to`` (``200Hz->800Hz``, ``left->right``,
    ``dark->bright``), a shape with a range (``rise 200Hz->800Hz``), or ``steady VALUE``."""
    name = canonical(name)
    text = " ".join(spec.replace("→", "->").replace("–>", "->").lower().split())
    text = re.sub(r"\s*->\s*", "->", text)
    text = re.sub(r"\bfrom\s+", "", text)
    text = re.sub(r"\s+to\s+", "->", text)
    text = re.sub(r"^(slowly|gradually|smoothly|steadily|getting|becoming|moving)\s+", "", text)
    shape = None
    synonyms = {**_SYNONYMS, **_CURVE_SYNONYMS[name]}
    for phrase in sorted({*_SHAPES[name], *synonyms}, key=len, reverse=True):
        if text == phrase or text.startswith(phrase + " "):
            shape = synonyms.get(phrase, phrase)
            text = text[len(phrase):].strip()
            break
    if shape is not None and shape not in _SHAPES[name]:
        raise RequestError(f"control '{name}={spec}': '{shape}' is not a {name} shape; use {_WORD_EXAMPLES[name]}")
    if not text:
        if shape is None:
            raise RequestError(f"control '{name}={spec}': empty; use {_WORD_EXAMPLES[name]}")
        points, relative = _SHAPES[name][shape]
    else:
        tokens = text.split("->")
        vals = [_value(name, tok, spec) for tok in tokens]
        relative = any(r for _, r in vals)
        xs = [v for v, _ in vals]
        if shape == "steady" and len(xs) != 1:
            raise RequestError(f"control '{name}={spec}': 'steady' takes one value, e.g. 'steady "
                               f"{'440Hz' if name == 'pitch' else xs[0]}'")
        if shape in ("rise", "fall", "fade in", "fade out") and len(xs) == 2:
            going_up = shape in ("rise", "fade in")
            if (xs[1] > xs[0]) != going_up and xs[1] != xs[0]:
                raise RequestError(f"control '{name}={spec}': a {shape} goes {'up' if going_up else 'down'}, "
                                   f"but {tokens[0].strip()}->{tokens[1].strip()} goes the other way")
        elif shape is not None and shape != "steady":
            raise RequestError(f"control '{name}={spec}': give either the shape '{shape}' or values A->B, "
                               f"or '{shape} A->B' for a range")
        points = [(i / max(len(xs) - 1, 1), x) for i, x in enumerate(xs)]
    t = np.array([p[0] for p in points], np.float64)
    v = np.array([p[1] for p in points], np.float64)
    return Curve(name, t, v, None, span=1.0, relative=relative or name in ALWAYS_RELATIVE, source=f"words: {spec}")


# --- the prompt prior: words of a prompt -> target curves ------------------------------------------------------------
# (pattern, curve, words spec, label); patterns are matched as whole words on the lower-cased prompt.
_SLOW = r"(?:slowly|gradually|gently)"
# "rising" or "falling" alone name a pitch only right after an article ("a rising tone") or before a word that
# makes it one ("rising tone", "falling in pitch", at the end): "rain falling on a roof" is no pitch glide.
_AMBIGUOUS = (r"(?:(?<=\ba )|(?<=\ban ))(?:{0})|(?:{0})(?=$|[,.;]| and | then | in pitch| tone| pitch| whistle|"
              r" sweep| siren| glide| note| beep| synth| sound| chirp| bleep| wail| hum)")
PRIOR_RULES: tuple[tuple[str, str, str, str], ...] = (
    # pitch
    (r"(?:ascending|gliding up(?:ward)?|sliding up(?:ward)?|sweeping up(?:ward)?|going up|"
     r"increasing in pitch|pitch (?:rises|rising|goes up)|upward (?:glide|sweep|slide)|pitching up|"
     rf"{_AMBIGUOUS.format('rising|rises|climbing')})", "pitch", "rise", "rising pitch"),
    (r"(?:descending|gliding down(?:ward)?|sliding down(?:ward)?|sweeping down(?:ward)?|"
     r"going down|decreasing in pitch|pitch (?:falls|falling|drops|goes down)|downward (?:glide|sweep|slide)|"
     rf"pitching down|{_AMBIGUOUS.format('falling|falls|dropping|drops')})", "pitch", "fall", "falling pitch"),
    # loudness
    (rf"(?:{_SLOW}\s+)?(?:fading out|fades out|fade[ -]out|fading away|fades away|dying away|dies away|dwindling|"
     r"trailing off|decreasing in volume|getting quieter|growing quieter|becoming quieter|receding|"
     r"fading|fades|diminishing|decrescendo)", "loudness", "fade out", "fading out"),
    (rf"(?:{_SLOW}\s+)?(?:fading in|fades in|fade[ -]in|swelling up|getting louder|growing louder|"
     r"becoming (?:ever )?louder|increasing in volume|louder and louder|emerging from silence|approaching|"
     r"crescendo|building up|builds up)", "loudness", "fade in", "fading in"),
    (r"(?:swell|swelling)", "loudness", "swell", "swelling"),
    (r"(?:(?:a |one |single )?(?:short|sharp|quick|brief|single|dry)[ ,]+(?:sharp |short )?"
     r"(?:hit|impact|stab|thud|thump|knock|slam|strike|smack|click|snap)|(?:a|one|single) "
     r"(?:hit|impact|stab|thud|thump|knock|slam|strike|smack)|one-shot|momentary|instantaneous)",
     "loudness", "hit", "a short hit"),
    (r"(?:sustained|drawn-out|long-held|unceasing|unwavering|held note|held tone|even in level|steady in level)",
     "loudness", "steady", "sustained"),
    # density
    (r"(?:faster and faster|speeding up|getting faster|accelerating|quickening|ever faster|"
     r"increasingly fast|picking up speed)", "density", "faster", "getting faster"),
    (r"(?:slower and slower|slowing down|getting slower|decelerating|ever slower|losing speed)",
     "density", "slower", "getting slower"),
    # event rate as a level; "slow" and "quick" alone are left out ("a slow fade", "a quick rise" name no rate)
    (r"(?:rapid(?!\s+(?:rise|rising|fall|falling|fade|fading|decay|attack|sweep|glide|swell|drop|change))|"
     r"rapid-fire|speedy|hurried|brisk|frantic|fast-paced|in quick succession)", "density", "fast", "rapid"),
    (r"(?:sparse|sparsely|widely spaced|leisurely|unhurried|occasional|sporadic)", "density", "sparse", "sparse"),
    # pan
    (r"(?:(?:from )?left to right|(?:moving|panning) (?:to the )?right(?! to)|panned left to right|"
     r"passing by|passes by|fly-?by|flying past|driving past|whooshing past)", "pan", "left->right",
     "left to right"),
    (r"(?:(?:from )?right to left|(?:moving|panning) (?:to the )?left(?! to)|panned right to left)",
     "pan", "right->left", "right to left"),
    (r"(?:back and forth|side to side|ping[ -]pong|left and right)", "pan", "back and forth", "back and forth"),
    (r"(?:circling|orbiting|roving|wandering|moving around|swirling around|panning around|"
     r"(?:travell?ing|moving|sweeping) across(?: the stereo(?: image| field)?)?)", "pan", "back and forth",
     "moving around"),
    (r"(?:motionless|stationary|unmoving|stock-still|fixed in place|dead cent(?:re|er))", "pan", "centre",
     "not moving"),
    (r"(?:on|from|to) the left(?! to)|left side|hard left|panned left", "pan", "left", "on the left"),
    (r"(?:on|from|to) the right(?! to)|right side|hard right|panned right", "pan", "right", "on the right"),
    # brightness
    (r"(?:getting brighter|brighter and brighter|brightening|filter opening|opening up|becoming brighter)",
     "brightness", "brighter", "getting brighter"),
    (r"(?:getting darker|darker and darker|darkening|filter closing|becoming darker|getting muffled|"
     r"becoming muffled)", "brightness", "darker", "getting darker"),
)
_NEGATION = re.compile(r"\b(?:not|no|never|without)\s+(?:\w+\s+)?$")


def _prompt_text(prompt: str) -> str:
    return " ".join(prompt.lower().replace("→", " to ").split())


def _phrases(text: str, pattern: str):
    """The whole-word matches of ``pattern`` in ``text`` that no negation precedes ("not rising")."""
    for m in re.finditer(rf"(?<![\w-])(?:{pattern})(?![\w-])", text):
        if not _NEGATION.search(text[: m.start()]):
            yield m.group(0)


def prior(prompt: str) -> dict[str, Curve]:
    """Target curves for the attributes a prompt names (rule-based): the first rule that matches per curve,
    skipping a phrase preceded by a negation ("not rising"). ``source`` is ``"prior: <phrase>"``; a phrase
    with "slowly"/"gradually" spreads a fade over the whole sound, plain fading takes the last 60 %."""
    text = _prompt_text(prompt)
    out: dict[str, Curve] = {}
    for pattern, name, spec, _label in PRIOR_RULES:
        if name in out:
            continue
        for phrase in _phrases(text, pattern):
            curve = from_words(name, spec)
            if name == "loudness" and spec == "fade out" and not re.match(_SLOW, phrase):
                curve = replace(curve, times=np.array([0.0, 0.4, 1.0]), values=np.array([0.0, 0.0, -40.0]))
            if name == "loudness" and spec == "fade in" and not re.match(_SLOW, phrase):
                curve = replace(curve, times=np.array([0.0, 0.6, 1.0]), values=np.array([-40.0, 0.0, 0.0]))
            out[name] = replace(curve, source=f"prior: '{phrase}' -> {name}={spec}")
            break
    return out


# --- qualities: the prompt's texture and tremolo words, whole-sound levels that steering (only) moves towards -------
QUALITIES = ("texture", "tremolo")
QUALITY_UNITS = {"texture": "log spectral flatness", "tremolo": "modulation depth"}
# (pattern, quality, label, sense, level): levels in the analyzers' units (log of analyzers.spectral_flatness,
# analyzers.tremolo_depth), the medians of the synth corpus's clips captioned with the label
# (`python recipes/quality_levels.py`: noisy -4.68, tonal -9.58; tremolo 0.56, none 0.14, steered under 0.10).
QUALITY_RULES: tuple[tuple[str, str, str, str, float], ...] = (
    (r"(?:noisy|noise-like|noise-laden|hissy|staticky|static-laden|grainy|gritty|crackly|crackling|fuzzy|"
     r"distorted|scratchy|raspy|breathy)", "texture", "noisy", ">=", -4.7),
    (r"(?:tonal|pure|pure-toned|clean-toned|clean tone|sinusoidal|sine(?:-wave)?|sine wave|bell-like|flute-like|"
     r"crystal-clear)", "texture", "tonal", "<=", -9.6),
    (r"(?:without tremolo|steady in (?:volume|level)|even in (?:volume|level)|constant in (?:volume|level)|"
     r"smooth in (?:volume|level)|level and even|unwavering|unfluctuating)", "tremolo", "none", "<=", 0.10),
    (r"(?:tremolo|throbbing|pulsating|pulsing|fluttering|wobbling|wobbly|warbling|quivering|trembling|shuddering|"
     r"wavering|tremulous)", "tremolo", "tremolo", ">=", 0.5),
)


@dataclass(frozen=True)
class Quality:
    """A whole-sound level the prompt asks for: ``sense`` ">=" (at least ``level``) or "<=" (at most)."""

    name: str
    label: str
    sense: str
    level: float
    source: str

    def to_dict(self) -> dict:
        return {"quality": self.label, "sense": self.sense, "level": self.level, "units": QUALITY_UNITS[self.name],
                "source": self.source}


def prior_qualities(prompt: str) -> dict[str, Quality]:
    """The texture and tremolo a prompt names (the first rule that matches per quality, negations skipped)."""
    text = _prompt_text(prompt)
    out: dict[str, Quality] = {}
    for pattern, name, label, sense, level in QUALITY_RULES:
        if name not in out:
            for phrase in _phrases(text, pattern):
                out[name] = Quality(name, label, sense, level, f"prior: '{phrase}' -> {name} {label}")
                break
    return out


QUALITY_HELP = {"texture": "texture=noisy or texture=tonal (or a log spectral flatness: 'texture=at least -4.7')",
                "tremolo": "tremolo=on or tremolo=none (or a modulation depth 0..1: 'tremolo=at most 0.1')"}
QUALITY_RANGES = {"texture": (-15.0, 0.0), "tremolo": (0.0, 1.0)}
QUALITY_SWITCHES = {"on": "tremolo", "yes": "tremolo", "with tremolo": "tremolo", "off": "none", "no": "none",
                    "steady": "none"}


def parse_quality(name: str, source) -> Quality:
    """An explicit texture / tremolo control: its label's level (the prior's rule words: noisy, tonal, pure-toned,
    tremolo, none, on, off, ...) or a one-sided level ('at least -4.7', 'at most 0.1' or '>= -4.7', '<= 0.1', in the
    analyzer's units)."""
    if not isinstance(source, str):
        raise RequestError(f"{name} is one level for the whole sound, not a curve: give {QUALITY_HELP[name]}")
    text = " ".join(source.lower().split())
    level = re.fullmatch(r"(>=|<=|at least|at most)\s*([-+]?\d+(?:\.\d+)?)", text)
    if level:
        sense, x = {"at least": ">=", "at most": "<="}.get(level.group(1), level.group(1)), float(level.group(2))
        lo, hi = QUALITY_RANGES[name]
        if not lo <= x <= hi:
            raise RequestError(f"{name} level {x:g} is out of range {lo:g}..{hi:g} ({QUALITY_UNITS[name]})")
        label = {"texture": ("noisy", "tonal"), "tremolo": ("tremolo", "none")}[name][sense == "<="]
        return Quality(name, label, sense, x, f"control: {name} {sense} {x:g}")
    text = QUALITY_SWITCHES.get(text, text) if name == "tremolo" else text
    for pattern, n, label, sense, x in QUALITY_RULES:
        if n == name and (text == label or re.fullmatch(pattern, text)):
            return Quality(name, label, sense, x, f"control: {name}={label}")
    raise RequestError(f"{name}={source}: unknown {name}; give {QUALITY_HELP[name]}")


def quality_adherence(qualities: dict[str, Quality], audio: Audio) -> dict:
    """{name: the target, the analyzer's measure of ``audio`` and whether it is on the asked side}."""
    out = {}
    for name, q in qualities.items():
        x = (math.log(max(an.spectral_flatness(audio), 1e-6)) if name == "texture" else an.tremolo_depth(audio))
        out[name] = {**q.to_dict(), "measured": round(x, 3), "met": x >= q.level if q.sense == ">=" else x <= q.level}
    return out


def has_prior(prompt: str) -> bool:
    """The prompt names a shape or a quality the prior turns into steering targets."""
    return bool(prior(prompt) or prior_qualities(prompt))


# --- imitation -------------------------------------------------------------------------------------------------------
def imitation(audio: Audio, pitch_mode: str = "relative") -> dict[str, Curve]:
    """All five curves of a vocal or tapped imitation, normalised for use as targets: loudness and brightness
    relative (their shape), pitch relative (its contour, ``pitch_mode="relative"``) or as sung
    (``"absolute"``), density as tapped, pan only from a stereo recording. ``pitch_mode`` may also be a
    number of semitones to transpose the sung pitch by (absolute)."""
    curves = measure(audio)
    src = f"imitation: {audio.meta.get('path', 'audio')}"
    out = {}
    for n, c in curves.items():
        if n == "pan" and audio.channels < 2:
            continue
        c = replace(c, source=src, relative=n in ("loudness", "brightness"))
        if n == "pitch":
            if pitch_mode == "relative":
                c = replace(c, relative=True)
            elif pitch_mode != "absolute":
                c = replace(c, values=c.values * 2 ** (float(pitch_mode) / 12))
        out[n] = c
    loud = curves["loudness"]
    active = loud.values > loud.values.max() - 40.0  # an imitation's pauses: no pitch, brightness or pan there
    for n in ("brightness", "pitch", "pan"):
        if n in out:
            out[n] = replace(out[n], strength=out[n].weights * active)
    return out


# --- targets of a request ------------------------------------------------------------------------------------------
@dataclass
class Targets:
    """The target curves of one request (stretched to its duration) and per-curve strengths."""

    curves: dict[str, Curve]
    strength: dict[str, float]
    qualities: dict[str, Quality] = field(default_factory=dict)  # the prompt's texture / tremolo: steering only

    def to_dict(self) -> dict:
        return {n: {**c.to_dict(), "control_strength": self.strength.get(n, 1.0)} for n, c in self.curves.items()}

    def qualities_dict(self) -> dict:
        return {n: q.to_dict() for n, q in self.qualities.items()}


def targets(controls=None, like=None, prompt: str | None = None, use_prior: bool = True,
            strength: dict | None = None, duration: float = 5.0, base: Path | None = None) -> Targets:
    """Resolve a request's curve sources into targets over ``duration`` s. Precedence per curve: an explicit
    control, then the imitation (``like``: a path or an :class:`Audio`), then the prompt prior."""
    curves: dict[str, Curve] = {}
    qualities = prior_qualities(prompt) if use_prior and prompt else {}
    if use_prior and prompt:
        curves.update(prior(prompt))
    if like is not None:
        audio = like if isinstance(like, Audio) else Audio.load(Path(like) if base is None else base / like)
        if not isinstance(like, Audio):
            audio.meta["path"] = str(like)
        curves.update(imitation(audio))
    for name, source in normalise_controls(controls).items():
        if name in QUALITIES:
            qualities[name] = parse_quality(name, source)
        else:
            curves[name] = parse_spec(name, source, base)
    strength = {canonical(k, qualities=True): float(v) for k, v in (strength or {}).items()}
    return Targets({n: curves[n].resample(duration) for n in NAMES if n in curves},
                   {n: strength.get(n, 1.0) for n in (*NAMES, *QUALITIES) if n in curves or n in qualities},
                   qualities)


def normalise_controls(controls) -> dict:
    """Controls as {name: source}: from a mapping, a list of "NAME=SOURCE" strings, or one such string."""
    if controls is None:
        return {}
    if isinstance(controls, str):
        controls = [controls]
    if isinstance(controls, dict):
        return {canonical(k, qualities=True): v for k, v in controls.items()}
    out = {}
    for item in controls:
        if isinstance(item, Curve):
            out[item.name] = item
            continue
        name, source = split_spec(item)
        if name in out:
            raise RequestError(f"control '{name}' is given twice; give each curve once")
        out[name] = source
    return out


# --- request checks (foley.request calls these; each failure is one RequestError line) ----------------------------
DEFAULT_STEER = 10  # steering iterations when a request gives curves without a budget


def check_controls(value) -> dict:
    """A request's ``controls`` (a mapping, "NAME=SOURCE" strings, or Curve objects) -> {name: source or points};
    words are parsed, files read and points checked now, so a bad one fails before a model loads."""
    out = {}
    for name, source in normalise_controls(value).items():
        if isinstance(source, Curve):  # as points; a last point at its span keeps its length when stretched
            end = [-1] if source.span > source.times[-1] + 1e-9 else []
            points = {"times": source.times.tolist() + [source.span] * len(end),
                      "values": source.values.tolist() + source.values[end].tolist(), "relative": source.relative}
            if source.strength is not None:
                points["strength"] = source.strength.tolist() + source.strength[end].tolist()
            source = points
        elif isinstance(source, str):
            source = " ".join(source.split())
        elif hasattr(source, "model_dump"):
            source = source.model_dump()
        elif not isinstance(source, dict):
            raise RequestError(f"control '{name}' must be words, a file path or {{\"times\": [...], \"values\": "
                               f"[...]}}, got {type(source).__name__}")
        if name in QUALITIES:
            parse_quality(name, source)
            out[name] = source
            continue
        parse_spec(name, source)
        out[name] = source
    if not out:
        raise RequestError(f"controls is empty; give {SPEC_HELP}")
    return out


def check_control_strength(value) -> dict:
    if isinstance(value, (str, list, tuple)):  # "NAME=VALUE" strings (the CLI's form)
        pairs = {}
        for item in [value] if isinstance(value, str) else value:
            if not isinstance(item, str) or "=" not in item:
                raise RequestError(f"control strength '{item}' is not NAME=VALUE, e.g. pitch=2")
            k, x = item.split("=", 1)
            try:
                pairs[k] = float(x)
            except ValueError:
                raise RequestError(f"control strength '{item}': '{x.strip()}' is not a number") from None
        value = pairs
    if not isinstance(value, dict):
        raise RequestError("control strength must map curve names to numbers, e.g. {\"pitch\": 2}")
    out = {}
    for name, x in value.items():
        key = canonical(str(name), qualities=True)
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or not (
                0.0 <= x <= STRENGTH_MAX):
            raise RequestError(f"control strength of {key} must be a number between 0 and {STRENGTH_MAX:g}, got {x!r}")
        out[key] = float(x)
    return out


def check_like(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RequestError("like must be the path of a sound file (a vocal or tapped imitation)")
    path = Path(value).expanduser()
    if not path.is_file():
        raise RequestError(f"imitation {value} not found" if not path.exists() else f"imitation {value} is not a file")
    if path.suffix.lower() not in SOUND_SUFFIXES:
        raise RequestError(f"imitation {value}: not a sound file ({', '.join(SOUND_SUFFIXES)})")
    return value


def check_prior(prompt: str, use_prior: bool) -> None:
    """Steering without controls or an imitation needs a prompt whose words the prior turns into curves."""
    if not use_prior or not has_prior(prompt):
        raise RequestError("steering needs target curves: --control NAME=SOURCE, --like FILE, or a prompt that "
                           "names a shape or quality (rising, fading out, faster and faster, from left to right, "
                           "noisy, with tremolo)"
                           + (" with the prior on (drop --no-prior)" if not use_prior else ""))


def asked_qualities(request) -> list[str]:
    """The whole-sound qualities a request gives as controls (texture, tremolo): followed by steering only."""
    return [n for n in (request.controls or {}) if n in QUALITIES]


def steer_iterations(request) -> int:
    return DEFAULT_STEER if request.steer is None else int(request.steer)


def request_targets(request, duration: float | None = None) -> Targets:
    """The target curves of a :class:`~foley.request.GenerationRequest` over its duration."""
    return targets(controls=request.controls, like=request.like, prompt=request.prompt, use_prior=request.prior,
                   strength=request.control_strength, duration=duration or request.duration)
