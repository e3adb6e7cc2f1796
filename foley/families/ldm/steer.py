"""Control curves for the latent-diffusion family: DITTO steering of the initial noise (foley.steering).

Inside the loop the sound is rendered with a few DPM-Solver++ steps (:data:`LOOP_STEPS`) from the noise, through
the UNet (with guidance) and the VAE decoder to the raw stereo log-mel: the curves are measured there, before the
vocoder, and the gradient flows back through every step to the noise. The final sound is then sampled from the
best noise with the request's own steps and scheduler (the few-step and the full sampler follow the same ODE, so
the curves carry over: measured on starter, pitch correlation 0.956 with 6 steps in the loop and 0.957 at 20).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ... import curves as cv
from ...audio import Audio
from ...errors import RequestError
from ...steering import MelCurves, steer
from .model import Conditioning

LOOP_STEPS = 6            # DPM-Solver++ steps per rendering inside the loop
LOOP_SCHEDULER = "dpm++"  # deterministic, accurate in few steps


def steered(gen, r, seed: int, variation: int) -> Audio:
    """One output of request ``r`` (seed ``seed``) towards its target curves: through the model's control adapter
    when it has one, and/or with its initial noise optimised (DITTO, ``r.steer`` iterations); ``r.steer == 0``
    without an adapter measures the curves of the unsteered sound; a sound longer than one window follows its
    curves through the adapter alone (:func:`_long_form`). The sidecar's ``control`` records the targets, the
    adapter, the run and the adherence."""
    m = gen.model
    steps, guidance, scheduler = gen._settings(r)
    window = float(m.cfg.extra.get("max_window_seconds", 12.0))
    if r.duration > window + 1e-9:
        return _long_form(gen, r, seed, variation, window)
    started = time.perf_counter()
    targets = cv.request_targets(r)
    iterations = cv.steer_iterations(r) if r.steering else 0
    if gen.runtime().get("backend") == "onnx" and iterations > 0:  # no gradients through onnxruntime
        if asked := cv.asked_qualities(r):
            raise RequestError(f"{asked[0]} is followed by steering, which needs --backend torch "
                               "(the onnx backend has no gradients)")
        if r.steer is not None or not gen.uses_adapter(r):
            raise RequestError("steering (--steer N > 0) needs --backend torch: the onnx backend has no gradients"
                               + ("; --steer 0 follows the curves through the control adapter"
                                  if gen.uses_adapter(r) else ""))
        iterations = 0  # --control on the onnx backend: the adapter alone
    width = m.latent_frames(r.duration)
    planes = None
    if gen.uses_adapter(r):
        from .controlnet import frame_seconds, target_planes

        planes = target_planes(targets.curves, r.duration, width, m.latent_height, frame_seconds(m))[None]
    emb = m.encode_text([r.prompt, r.negative_prompt or ""])
    cond = Conditioning(emb.tokens[:1], emb.mask[:1], emb.pooled[:1])
    uncond = Conditioning(emb.tokens[1:], emb.mask[1:], emb.pooled[1:])
    noise = gen._noise([seed], width)
    method = ["control adapter (a ControlNet reading the target curves)"] if planes is not None else []
    if iterations > 0:
        method.append("DITTO: Adam on the initial noise, kept on its Gaussian shell; curves measured on the decoded "
                      "log-mel")
    record = {"targets": targets.to_dict(), "method": " + ".join(method) or "none (measured only)"}
    if planes is not None:
        card = m.control_adapter()[1]
        record["adapter"] = {"weights": card["weights"], "steps": card.get("steps"), "scale": 1.0}
    if iterations > 0:
        frames = int(round(r.duration * m.cfg.mel.frame_rate))
        floor = float(np.log(m.cfg.mel.log_floor))
        loop_steps = min(steps, LOOP_STEPS)

        def render(x: torch.Tensor) -> torch.Tensor:
            z = m.denoise(cond, uncond, x, steps=loop_steps, guidance=guidance, scheduler=LOOP_SCHEDULER,
                          grad=torch.is_grad_enabled(), control=planes)
            raw = m.cfg.space.decode(m.latent_to_mel(z))[..., :frames]
            return raw.clamp(min=floor)

        result = steer(render, noise, targets, m.cfg.mel, r.duration, iterations, on_iteration=gen.on_step,
                       curves=_curves(gen))
        noise = result.noise
        record["steering"] = {**result.record(), "loop_steps": loop_steps, "loop_scheduler": LOOP_SCHEDULER}

    def draw(s: int, x: torch.Tensor | None = None) -> np.ndarray:
        z = m.denoise(cond, uncond, gen._noise([s], width) if x is None else x, steps=steps, guidance=guidance,
                      scheduler=scheduler, callback=gen.on_step, control=planes)
        return gen._decode(z, r.duration)[0]

    redrawn = None
    if iterations > 0:  # the steered noise is the result of the iterations: kept as it is
        samples, used = draw(seed, noise), seed
    else:  # as the batch path: an inaudible sound is drawn again from a derived seed
        samples, used, redrawn = gen._draw_audible(draw, seed)
    audio = gen._finish(samples, r, used, variation)
    if redrawn:
        audio.meta["redrawn"] = redrawn
    record["adherence"] = cv.adherence(targets.curves, audio)
    if targets.qualities:
        record["qualities"] = cv.quality_adherence(targets.qualities, audio)
    record["seconds"] = round(time.perf_counter() - started, 2)
    audio.meta["control"] = record
    return audio


def _long_form(gen, r, seed: int, variation: int, window: float) -> Audio:
    """A sound longer than one sampling window follows its curves through the control adapter alone: the target
    planes over the whole sound, each outpainted window reading its own stretch (steering optimises one window's
    noise, so it is refused here unless asked for with 0 iterations or left to its default)."""
    if asked := cv.asked_qualities(r):
        raise RequestError(f"{asked[0]} is followed by steering, which works on one sampling window: "
                           f"at most {window:g} s with '{gen.card.name}' (asked {r.duration:g} s)")
    if r.steer is not None and r.steer > 0:
        raise RequestError(f"steering works on one sampling window: at most {window:g} s with '{gen.card.name}' "
                           f"(asked {r.duration:g} s); longer sounds follow curves through the control adapter: "
                           "drop --steer")
    if not gen.uses_adapter(r):
        why = ("drop --no-control-adapter" if gen.model.has_control and not r.control_adapter
               else "it has no control adapter here (foley train control)")
        raise RequestError(f"curves over more than one sampling window ({window:g} s with '{gen.card.name}', asked "
                           f"{r.duration:g} s) are followed through the control adapter: {why}")
    from .controlnet import frame_seconds, target_planes

    m = gen.model
    started = time.perf_counter()
    steps, guidance, scheduler = gen._settings(r)
    targets = cv.request_targets(r)
    total = m.latent_frames(r.duration)
    planes = target_planes(targets.curves, r.duration, total, m.latent_height, frame_seconds(m))[None]
    audio = gen._long_form(r, seed, steps, guidance, scheduler, window, planes=planes, variation=variation)
    card = m.control_adapter()[1]
    audio.meta["control"] = {
        "targets": targets.to_dict(),
        "method": "control adapter (a ControlNet reading the target curves), each long-form window its stretch",
        "adapter": {"weights": card["weights"], "steps": card.get("steps"), "scale": 1.0},
        "adherence": cv.adherence(targets.curves, audio), "seconds": round(time.perf_counter() - started, 2)}
    return audio


def _curves(gen) -> MelCurves:
    """The model's differentiable curve measures (built once per generator)."""
    mc = getattr(gen, "_mel_curves", None)
    if mc is None:
        mc = gen._mel_curves = MelCurves(gen.model.cfg.mel)
    return mc
