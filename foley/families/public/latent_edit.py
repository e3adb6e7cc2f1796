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

import torch

from ...editing import reimpose
from ...errors import RequestError


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
        known = self.known.to(latents.device, latents.dtype)
        noise = self.noise.to(latents.device, latents.dtype)
        keep = keep.to(latents.device, latents.dtype)
        latents.copy_(reimpose(latents, known, noise, keep, sched, sched.timesteps, step))


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

