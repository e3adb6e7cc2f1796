"""DITTO steering for the diffusers mel-latent pipelines (AudioLDM 1/2, MusicLDM): the pipeline's own ``__call__``
renders, so its text conditioning stays exactly as published.

Inside the loop the undecorated ``__call__`` (diffusers wraps it in ``torch.no_grad``) runs a few DPM-Solver++
steps from the noise with gradients on; its step callback captures the final latents and stops the pipeline
before it vocodes; the VAE decodes them to the log-mel the vocoder would read ([B, 1, frames, n_mels], natural
log of magnitude: foley's convention), where :mod:`foley.steering` measures the curves. These models are mono:
no pan curve.
"""

from __future__ import annotations

import time

import torch

from ... import curves as cv
from ...steering import MelCurves, steer

LOOP_STEPS = 6
LOOP_SCHEDULER = "dpm++"
CURVES = tuple(n for n in cv.NAMES if n != "pan")  # mono models


class _Done(Exception):
    """Raised by the step callback once the last step's latents are captured (skips the vocoder)."""


def steered(gen, r, seed: int, variation: int, steps: int, guidance: float, scheduler: str | None, frames: int):
    """One output of ``r`` from noise optimised towards its target curves (``r.steer == 0``: measured only)."""
    started = time.perf_counter()
    targets = cv.request_targets(r)
    dropped = [n for n in targets.curves if n not in CURVES]
    for n in dropped:  # e.g. a prior's "from left to right" on a mono model
        targets.curves.pop(n)
        targets.strength.pop(n, None)
    iterations = cv.steer_iterations(r)
    shape = gen.latent_shape(r.duration)
    pipe = gen.model
    dtype = next(pipe.unet.parameters()).dtype
    noise = torch.randn((1, *shape), generator=torch.Generator().manual_seed(seed)).to(dtype)
    record = {"targets": targets.to_dict(), "method": "none (measured only)" if iterations == 0 else
              "DITTO: Adam on the initial noise, kept on its Gaussian shell; curves measured on the decoded log-mel"}
    if dropped:
        record["dropped"] = {n: "mono model: no pan" for n in dropped}
    if iterations > 0 and (targets.curves or targets.qualities):
        mel_frames = int(round(r.duration * gen.sample_rate / gen.hop))
        loop_steps = min(steps, LOOP_STEPS)
        call = type(pipe).__call__.__wrapped__  # __call__ without diffusers' torch.no_grad

        def render(x: torch.Tensor) -> torch.Tensor:
            gen._use_scheduler(LOOP_SCHEDULER)
            seen = {}

            def capture(step, t, latents):
                seen["z"] = latents
                if step >= loop_steps - 1:
                    raise _Done

            try:
                call(pipe, prompt=[r.prompt], negative_prompt=None if r.negative_prompt is None else
                     [r.negative_prompt], num_inference_steps=loop_steps, guidance_scale=guidance,
                     num_waveforms_per_prompt=1, latents=x, callback=capture, callback_steps=1, output_type="np",
                     **gen._length(r.duration))
            except _Done:
                pass
            vae = pipe.vae
            mel = vae.decode(seen["z"] / vae.config.scaling_factor).sample  # [B, 1, frames, n_mels]
            return mel.transpose(-1, -2)[..., :mel_frames].float()

        result = steer(render, noise, targets, gen.mel_config(), r.duration, iterations, on_iteration=gen.on_step,
                       curves=MelCurves(gen.mel_config()))
        noise = result.noise.to(dtype)
        record["steering"] = {**result.record(), "loop_steps": loop_steps, "loop_scheduler": LOOP_SCHEDULER}
    wave = gen._call([r.prompt], [r.negative_prompt], [seed], r.duration, steps, guidance, scheduler,
                     latents=noise)[0]
    audio = gen.finish(wave, r, seed, variation, gen._record(steps, guidance, scheduler), frames)
    record["adherence"] = cv.adherence(targets.curves, audio)
    if targets.qualities:
        record["qualities"] = cv.quality_adherence(targets.qualities, audio)
    record["seconds"] = round(time.perf_counter() - started, 2)
    audio.meta["control"] = record
    return audio
