"""What every generating family shares when it draws seeds and edits audio: one copy of each helper.

- seeds: :func:`seed_of` (the request's, or a fresh one), :func:`expand` (variation j uses seed + j) and
  :func:`window_seed` (window w of a long piece uses seed + ``WINDOW_SEED_STRIDE`` w);
- splices: :func:`splice` / :func:`splice_samples` — the user's samples bit-exact outside the edited range,
  the generated ones bit-exact where fully generated, ``CROSSFADE_SECONDS`` equal-power ramps in between;
- super-resolution: :func:`estimate_cutoff` and :func:`band_split`;
- masked sampling: :func:`reimpose` (the known region noised to the next step's level, RePaint-style);
- the task tuples (:data:`TASKS`: every task; each family's) and the length of an extension (:func:`extended_length`).

A leaf: numpy, :mod:`foley.audio` and :mod:`foley.errors` only (scipy inside :func:`band_split`; no torch —
:func:`reimpose` works on whatever tensors its caller passes).
"""

from __future__ import annotations

import secrets

import numpy as np

from .audio import Audio
from .errors import RequestError

DIFFUSION_TASKS = ("generate", "style_transfer", "inpaint", "extend", "continue", "super_resolution")
TOKEN_TASKS = ("generate", "continue", "extend")
MASKED_TASKS = ("generate", "continue", "extend", "inpaint", "variation", "loop")
# every task a family may declare: the request's ``task`` values and the edit choices of the CLI, server and studio
# (variation: re-draw a share ``strength`` of the input's tokens; loop: keep the input every ``period`` seconds and
# regenerate the rest, VampNet's periodic prompt)
TASKS = ("generate", "style_transfer", "inpaint", "extend", "super_resolution", "continue", "melody", "variation",
         "loop")
EDIT_TASKS = tuple(t for t in TASKS if t != "generate")

CROSSFADE_SECONDS = 0.05  # equal-power ramps where generated audio meets the user's
WINDOW_SEED_STRIDE = 7919  # long-form: window w is sampled with seed + WINDOW_SEED_STRIDE * w
SILENCE_DB = -60.0  # spectrum level (re peak) below which a band counts as empty, for the cut-off estimate
FILTER_ORDER = 8  # Butterworth order of the super-resolution band split


# --- seeds ---------------------------------------------------------------------------------------------
def seed_of(request) -> int:
    """The request's seed, or a fresh one in [0, 2**31) when it has none."""
    return request.seed if request.seed is not None else secrets.randbelow(2**31)


def expand(requests) -> list[tuple[int, int, object, int]]:
    """(request index, variation, request, seed) for every output; variation j uses seed + j."""
    items = []
    for i, r in enumerate(requests):
        base = seed_of(r)
        items += [(i, j, r, base + j) for j in range(r.num_variations)]
    return items


def window_seed(seed: int, window: int) -> int:
    """The seed of window ``window`` (0 = the first) of a long-form piece."""
    return seed + WINDOW_SEED_STRIDE * window


# --- splices -------------------------------------------------------------------------------------------
def _ramp(n: int) -> np.ndarray:
    return np.sin(0.5 * np.pi * np.linspace(0, 1, n, dtype=np.float32)) ** 2


def splice_samples(src: np.ndarray, gen: np.ndarray, a: int, b: int, xf: int) -> np.ndarray:
    """``src`` [C, n] outside samples [a, b), ``gen`` [C, N] inside, as [C, N] float32 (``src`` zero-padded
    or trimmed to N).

    Inside the range, an ``xf``-sample equal-power ramp fades ``gen`` in after ``a`` (when a > 0) and out
    before ``b`` (when b < N); a range shorter than a ramp gets the lower of the two. Samples outside
    [a, b) are copied from ``src`` and samples of full weight from ``gen``, bit for bit.
    """
    n = gen.shape[-1]
    a, b = max(int(a), 0), min(int(b), n)
    out = np.zeros((*src.shape[:-1], n), np.float32)
    m = min(src.shape[-1], n)
    out[..., :m] = src[..., :m]
    if b <= a:
        return out
    w = np.ones(b - a, np.float32)
    if xf > 0:
        ramp = _ramp(xf)
        if a > 0:  # fade the generated part in
            k = min(xf, b - a)
            w[:k] = ramp[:k]
        if b < n:  # and out again
            k = min(xf, b - a)
            w[b - a - k:] = np.minimum(w[b - a - k:], ramp[::-1][-k:])
    seg = out[..., a:b] * (1 - w) + gen[..., a:b] * w
    full = w == 1.0
    seg[..., full] = gen[..., a:b][..., full]
    out[..., a:b] = seg
    return out


def splice(src: Audio, gen: Audio, start: float, end: float, crossfade: float = CROSSFADE_SECONDS) -> Audio:
    """``src`` outside [start, end) seconds, ``gen`` inside (same rate and channels), with equal-power ramps
    of ``crossfade`` seconds inside the range (:func:`splice_samples`); as long as ``gen``."""
    sr = src.sample_rate
    a, b = int(round(start * sr)), int(round(end * sr))
    return Audio(splice_samples(src.samples, gen.samples, a, b, int(crossfade * sr)), sr)


# --- super-resolution ----------------------------------------------------------------------------------
def estimate_cutoff(audio: Audio) -> float:
    """Highest frequency (Hz) holding energy within ``SILENCE_DB`` of the spectrum's peak."""
    spec = np.abs(np.fft.rfft(audio.to_mono().samples[0]))
    freqs = np.fft.rfftfreq(audio.frames, 1 / audio.sample_rate)
    db = 20 * np.log10(spec / (spec.max() + 1e-12) + 1e-12)
    above = np.flatnonzero(db > SILENCE_DB)
    if above.size == 0:
        raise RequestError("input audio is silent; super-resolution needs sound")
    return float(freqs[above[-1]])


def band_split(low_src: np.ndarray, high_src: np.ndarray, cutoff: float, sr: int) -> np.ndarray:
    """Below ``cutoff`` from ``low_src``, above it from ``high_src`` [C, T] (zero-phase Butterworth pair),
    float32 (each band rounded to float32, then summed)."""
    from scipy.signal import butter, sosfiltfilt

    fc = min(cutoff, sr / 2 * 0.99)
    lo = butter(FILTER_ORDER, fc, btype="lowpass", fs=sr, output="sos")
    hi = butter(FILTER_ORDER, fc, btype="highpass", fs=sr, output="sos")
    return (sosfiltfilt(lo, low_src, axis=-1).astype(np.float32)
            + sosfiltfilt(hi, high_src, axis=-1).astype(np.float32))


# --- masked sampling -----------------------------------------------------------------------------------
def reimpose(x, known, noise, keep, scheduler, timesteps, step: int):
    """After sampling step ``step`` of ``timesteps``: ``keep`` (1 = known) of ``known`` noised with ``noise``
    to the next step's level (clean after the last step), the rest of ``x`` as sampled."""
    if step + 1 < len(timesteps):
        target = scheduler.add_noise(known, noise, timesteps[step + 1:step + 2])
    else:
        target = known
    return keep * target + (1 - keep) * x


def extended_length(src: Audio, requested: float, limit: float, extra: float) -> float:
    """Total length of continue/extend: ``requested`` when longer than the input, else ``extra`` s more."""
    total = requested if requested > src.duration + 0.1 else src.duration + extra
    if total > limit:
        raise RequestError(f"extended length {total:g} s is over the model's maximum of {limit:g} s")
    return total
