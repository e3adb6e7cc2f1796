"""Coupled stereo sampling for MusicGen's stereo layout (rows L0, R0, L1, R1, ... per batch item).

MusicGen samples the left and right stream of a codebook independently given the past, so where the model
predicts the same distribution for both channels it still draws different codes: the channels decorrelate
and a centred sound wanders between the speakers. Here both streams of a codebook draw with the *same*
Gumbel noise (Gumbel-max): each stream keeps exactly its own distribution (after guidance, temperature,
top-k and top-p), but L and R pick the same code wherever their distributions agree, and differ only as
much as the model makes them differ. Hand-written: transformers has no coupled multi-stream sampler.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

_OFF = -1e4  # "never" for the chosen-code logits handed back to transformers (finite: guidance subtracts them)


class CoupledStereoSampling(LogitsProcessor):
    """Does the whole draw inside transformers' ``generate``: guidance, warping, shared-noise Gumbel-max.

    It runs before transformers' own guidance processor (MusicGen appends that after the user's list), so with
    guidance the scores arrive doubled [cond; uncond]; it returns [one-hot; zeros], which transformers'
    ``uncond + g (cond - uncond)`` turns into the same one-hot. Call ``generate`` with temperature 1, top-k 0
    and no top-p so nothing else reshapes it; the final multinomial then returns the chosen code."""

    def __init__(self, channels: int, guidance_scale: float | None, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 0.0):
        self.channels = channels
        self.guidance = guidance_scale if guidance_scale and guidance_scale > 1.0 else None
        self.warpers = []
        if temperature != 1.0:
            self.warpers.append(TemperatureLogitsWarper(temperature))
        if top_k:
            self.warpers.append(TopKLogitsWarper(top_k))
        if top_p and top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = scores.shape[0] // 2 if self.guidance else scores.shape[0]
        x = scores[:rows]
        if self.guidance:
            x = scores[rows:] + self.guidance * (x - scores[rows:])
        ids = input_ids[:rows]
        for w in self.warpers:
            x = w(ids, x)
        v = x.shape[-1]
        u = torch.rand(rows // self.channels, 1, v).clamp_(1e-20, 1.0)  # one draw per codebook, both channels
        noise = (-torch.log(-torch.log(u))).expand(-1, self.channels, -1).reshape(rows, v)
        choice = torch.argmax(x.float() + noise, dim=-1)
        self.choice = choice  # the codes drawn (decode.sample takes them without the one-hot's round trip)
        out = torch.full_like(scores[:rows], _OFF)
        out.scatter_(1, choice[:, None], 0.0)
        return torch.cat([out, torch.zeros_like(out)]) if self.guidance else out


class StepCallback(LogitsProcessor):
    """Calls ``fn(step, steps)`` once per sampled frame (after the prompt) and passes the scores on unchanged:
    progress for callers of the non-streaming path (the server's job progress); ``fn`` may raise to stop."""

    def __init__(self, fn, steps: int):
        self.fn, self.steps, self.step = fn, steps, 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.step += 1
        self.fn(min(self.step, self.steps), self.steps)
        return scores
