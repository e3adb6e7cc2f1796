"""Zero-shot editing in latent space through a diffusers pipeline's own ``__call__``.

The public pipelines (AudioLDM 1/2, MusicLDM, Stable Audio) all call ``callback(step, t, latents)``
after every scheduler step. :class:`Reimpose` uses it to overwrite the *known* part of the latents with
the clean latents of the input audio, noised to the level of the next step (the RePaint / AudioLDM
recipe). The same mechanism gives:

- inpainting / continuation: known = the input outside the masked time range, at every step;
- style transfer (SDEdit): known = all of the input for the first ``(1 - strength)`` of the steps, so
  the free denoising starts from the input noised to that level, exactly as SDEdit does;
- super-resolution: known = the mel bands below the input's cut-off, at every step.

Running through ``__call__`` keeps each pipeline's text conditioning exactly as published; the price
for style transfer is that the skipped first steps are computed and discarded.
"""

from __future__ import annotations

import numpy as np
import torch

from ...audio import Audio
from ...errors import RequestError
from ...generator import EXTEND_SECONDS  # continue/extend without a longer duration: this much more audio

SILENCE_DB = -60.0  # spectrum level (re peak) below which a band counts as empty, for the cut-off estimate
FILTER_ORDER = 8  # Butterworth order of the band split in super-resolution


class Reimpose:
    """A ``callback(step, t, latents)`` re-imposing known latents after each step of ``pipe.scheduler``.

    Args:
        pipe: the pipeline (its ``scheduler.timesteps`` are read at call time).
        known: clean latents of the input, same shape as the pipeline's latents.
        noise: the noise used to bring ``known`` to each step's level (fixed per edit: a consistent path).
        keep_fn: ``keep_fn(step) -> mask or None``; the mask broadcasts to the latents, 1 = known.
    """

    def __init__(self, pipe, known: torch.Tensor, noise: torch.Tensor, keep_fn):
        self.pipe, self.known, self.noise, self.keep_fn = pipe, known, noise, keep_fn

    def __call__(self, step: int, t, latents: torch.Tensor) -> None:
        keep = self.keep_fn(step)
        if keep is None:
            return
        sched = self.pipe.scheduler
        ts = sched.timesteps
        known = self.known.to(latents.device, latents.dtype)
        if step + 1 < len(ts):
            target = sched.add_noise(known, self.noise.to(latents.device, latents.dtype), ts[step + 1:step + 2])
        else:
            target = known
        keep = keep.to(latents.device, latents.dtype)
        latents.copy_(keep * target + (1 - keep) * latents)


def sdedit_keep(steps: int, strength: float):
    """keep_fn for style transfer: everything known until the free steps start (strength 1 = none known)."""
    free_from = steps - int(round(strength * steps))
    ones = torch.ones(1)

    def keep(step: int):
        return ones if step + 1 <= free_from else None

    return keep


def always(mask: torch.Tensor):
    return lambda step: mask


def check_first_order(scheduler) -> None:
    if getattr(scheduler, "order", 1) != 1:
        raise RequestError(f"editing needs a first-order scheduler; '{type(scheduler).__name__}' is not one "
                           f"(use ddim, dpm++, unipc, euler, pndm or lms)")


def estimate_cutoff(audio: Audio) -> float:
    """Highest frequency (Hz) holding energy within SILENCE_DB of the spectrum's peak."""
    spec = np.abs(np.fft.rfft(audio.to_mono().samples[0]))
    freqs = np.fft.rfftfreq(audio.frames, 1 / audio.sample_rate)
    db = 20 * np.log10(spec / (spec.max() + 1e-12) + 1e-12)
    above = np.flatnonzero(db > SILENCE_DB)
    if above.size == 0:
        raise RequestError("input audio is silent; super-resolution needs sound")
    return float(freqs[above[-1]])


def band_split(low_src: np.ndarray, high_src: np.ndarray, cutoff: float, sr: int) -> np.ndarray:
    """Below ``cutoff`` from ``low_src``, above it from ``high_src`` (zero-phase Butterworth pair) [C, T]."""
    from scipy.signal import butter, sosfiltfilt

    fc = min(cutoff, sr / 2 * 0.99)
    lo = butter(FILTER_ORDER, fc, btype="lowpass", fs=sr, output="sos")
    hi = butter(FILTER_ORDER, fc, btype="highpass", fs=sr, output="sos")
    return (sosfiltfilt(lo, low_src, axis=-1) + sosfiltfilt(hi, high_src, axis=-1)).astype(np.float32)


def extended_length(src: Audio, requested: float, limit: float) -> float:
    """Total length for continue/extend: the request's duration when longer than the input, else +EXTEND_SECONDS."""
    total = requested if requested > src.duration + 0.1 else src.duration + EXTEND_SECONDS
    if total > limit:
        raise RequestError(f"extended length {total:g} s is over the model's maximum of {limit:g} s")
    return total
