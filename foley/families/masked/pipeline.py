"""The masked-token Generator: text to audio and token-level edits by MaskGIT decoding.

Every task is one operation: a code grid [K, F] with some tokens known, the rest filled by windows of MaskGIT
passes (:mod:`.sampling`), then decoded whole by the codec:

- ``generate``: nothing known;
- ``continue``/``extend``: the input's codes known, new frames after them; the input is kept bit-exact up to its
  last 50 ms, which crossfade into the continuation;
- ``inpaint``: the frames overlapping [mask_start, mask_end) unknown, the others kept token-exact; then the shared
  splice keeps the user's samples bit-exact outside the range;
- ``variation``: each token of the input re-drawn with probability ``strength`` (and the finer codes under a
  re-drawn one: the RVQ order), the rest kept; strength 0 returns the input unchanged;
- ``loop`` (VampNet's periodic prompt): the input's codes (tiled to the requested length) kept every
  ``period`` seconds (a beat: 60/BPM), everything between regenerated.

Seeds: variation j uses seed + j, window w of a fill seed + 7919 w (:mod:`foley.editing`); the task's own random
mask (variation) is drawn from the seed too. Progress: ``on_step(i, n)`` after each pass, n = passes x windows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...audio import Audio
from ...capabilities import Capabilities, Setting
from ...editing import CROSSFADE_SECONDS, MASKED_TASKS, extended_length, seed_of, splice, splice_samples, window_seed
from ...errors import RequestError
from ...generator import EXTEND_SECONDS, Generator, ModelCard, card_from_config, read_foley_json, record_used
from ...request import GenerationRequest
from .model import MAX_STEPS, SAMPLING_DEFAULTS, MaskedTokenModel
from .sampling import maskgit, windows

PEAK = 0.98  # louder outputs are scaled down to this peak (whole clips: no streaming to keep consistent)
VARIATION_MASK_SEED = 15_485_863  # the variation mask's generator: seed + this (not the sampler's stream)


class MaskedGenerator(Generator):
    """Generator over a :class:`MaskedTokenModel` folder; ``temperature``/``top_k`` override its defaults."""

    def __init__(self, model: MaskedTokenModel, card: ModelCard, sampling: dict | None = None):
        self.model, self.card = model, card
        self.on_step = None
        self.sampling = {**SAMPLING_DEFAULTS, **model.cfg.defaults,
                         **{k: v for k, v in (sampling or {}).items() if v is not None}}

    @classmethod
    def from_folder(cls, folder: str | Path, card: ModelCard | None = None, top_k: int | None = None,
                    temperature: float | None = None, device: str | None = None) -> MaskedGenerator:
        from ...device import cpu_only

        cpu_only("masked-token models", device)
        if top_k is not None and top_k < 0:
            raise RequestError(f"top-k must be >= 0, got {top_k}")
        if temperature is not None and temperature <= 0:
            raise RequestError(f"temperature must be positive, got {temperature}")
        model = MaskedTokenModel.from_folder(folder)
        card = card or cls.read_card(folder)
        return cls(model, card, {"top_k": top_k, "temperature": temperature})

    @classmethod
    def read_card(cls, folder) -> ModelCard:
        cfg = read_foley_json(folder)
        card = card_from_config(folder, cfg, "masked", cfg["sample_rate"], MASKED_TASKS, max_duration=60.0)
        card.defaults = {**SAMPLING_DEFAULTS, **card.defaults}
        return card

    @classmethod
    def capabilities_for(cls, card: ModelCard) -> Capabilities:
        d = {**SAMPLING_DEFAULTS, **card.defaults}
        return Capabilities(
            tasks=tuple(card.tasks), max_duration=card.max_duration, streams=False, progress="steps",
            settings=(Setting("steps", int(d["steps"]), 1, MAX_STEPS, help="MaskGIT passes per window"),
                      Setting("guidance_scale", float(d["guidance_scale"]), 0.0, 30.0,
                              help="classifier-free guidance (<= 1: off)"),
                      Setting("negative_prompt", help="the guidance's other branch")),
            extra={"strength": float(d["strength"]), "period": float(d["period"])})

    def weight_hash(self) -> str:
        return self.model.weight_hash()

    # --- the one operation -----------------------------------------------------------------------
    def _settings(self, r: GenerationRequest) -> dict:
        s = dict(self.sampling)
        if r.guidance_scale is not None:
            s["guidance_scale"] = r.guidance_scale
        if r.steps is not None:
            s["steps"] = r.steps
        return s

    def fill(self, codes: torch.Tensor, known: torch.Tensor, r: GenerationRequest, seed: int, settings: dict,
             progress: tuple[int, int] | None = None) -> torch.Tensor:
        """Every unknown token of ``codes`` [K, F] filled by MaskGIT windows (:func:`.sampling.windows`)."""
        m = self.model
        steps = int(settings["steps"])
        states, mask = m.condition(r.prompt, r.negative_prompt, float(settings["guidance_scale"]) > 1.0)
        x, known = codes.clone().long(), known.clone()
        plan = windows(known, m.window_frames, m.context_frames)
        done, total = progress or (0, len(plan) * steps)
        for w, (a, b) in enumerate(plan):
            hook = None
            if self.on_step is not None:
                def hook(i, n, base=done + w * steps, fn=self.on_step):
                    fn(base + i, total)
            x[:, a:b] = maskgit(m.net, x[:, a:b], known[:, a:b], states, mask, steps, window_seed(seed, w),
                                settings, hook, quiet=m.quiet_codes() if settings.get("quiet_penalty") else None)
            known[:, a:b] = True
        return x

    def passes(self, known: torch.Tensor, settings: dict) -> int:
        return len(windows(known, self.model.window_frames, self.model.context_frames)) * int(settings["steps"])

    # --- generation ------------------------------------------------------------------------------
    def _generate(self, requests: list[GenerationRequest]) -> list[Audio]:
        m, outs = self.model, []
        for r in requests:
            base, settings = seed_of(r), self._settings(r)
            frames, samples = m.frames(r.duration), int(round(r.duration * self.sample_rate))
            empty = torch.zeros(m.net.codebooks, frames, dtype=torch.long)
            nothing = torch.zeros_like(empty, dtype=torch.bool)  # known: none
            for j in range(r.num_variations):
                def draw(seed, r=r, settings=settings, empty=empty, nothing=nothing, samples=samples):
                    return self._finish_samples(m.decode(self.fill(empty, nothing, r, seed, settings), samples))
                out, seed, redrawn = self._draw_audible(draw, base + j)
                audio = self._finish(out, r, seed, j, settings)
                if redrawn:
                    audio.meta["redrawn"] = redrawn
                outs.append(audio)
        return outs

    # --- edits -----------------------------------------------------------------------------------
    def _edit(self, audio: Audio, r: GenerationRequest) -> list[Audio]:
        src = audio.to_channels(self.channels) if audio.channels != self.channels else audio
        if src.sample_rate != self.sample_rate:
            src = src.resample(self.sample_rate)
        outs = []
        for j, (_codes, out, known, extra) in enumerate(self.edit_codes(src, r)):
            settings = extra.pop("settings")
            if r.task == "variation" and bool(known.all()):
                samples = src.samples.copy()  # strength 0: nothing re-drawn, the input itself
            else:
                samples = self.model.decode(out, extra.pop("samples"))
                if r.task == "inpaint":
                    samples = splice(src, Audio(samples, self.sample_rate), r.mask_start, r.mask_end).samples
                elif r.task in ("continue", "extend"):
                    xf = int(CROSSFADE_SECONDS * self.sample_rate)
                    samples = splice_samples(src.samples, samples, src.frames - xf, samples.shape[-1], xf)
                samples = self._finish_samples(samples, keep=src.samples if r.task == "inpaint" else None)
            outs.append(self._finish(samples, r, extra.pop("seed"), j, settings, extra))
        return outs

    def edit_codes(self, src: Audio, r: GenerationRequest):
        """Per variation: (input codes [K, P], output codes [K, F], known [K, F] bool, extra) of an edit of
        ``src`` (already at the model's rate and channels); the output's known tokens equal the input's codes
        at the same frames (loop: the tiled input's). ``extra``: settings, seed, output samples and the task's
        own numbers for the sidecar."""
        m = self.model
        settings = self._settings(r)
        self._check_fields(r)
        hop = m.codec.hop_length
        if src.frames < 2 * hop:
            raise RequestError(f"the input is too short for this model ({src.duration:.3f} s); give at least "
                               f"{2 * hop / self.sample_rate:.2f} s")
        base = seed_of(r)
        task = r.task
        for j in range(r.num_variations):
            seed, extra = base + j, {}
            if task in ("continue", "extend"):
                total = extended_length(src, r.duration, self.card.max_duration, EXTEND_SECONDS)
                whole = (src.frames // hop) * hop          # the prompt ends on a frame border
                codes = m.audio_codes(src.pad_or_trim(whole))
                frames, samples = max(m.frames(total), codes.shape[-1] + 1), int(round(total * self.sample_rate))
                grid = torch.zeros(codes.shape[0], frames, dtype=torch.long)
                grid[:, :codes.shape[-1]] = codes
                known = torch.zeros_like(grid, dtype=torch.bool)
                known[:, :codes.shape[-1]] = True
            else:
                codes = m.audio_codes(src)
                grid, samples = codes.clone(), src.frames
                known = torch.ones_like(grid, dtype=torch.bool)
                if task == "inpaint":
                    a = int(np.floor(r.mask_start * m.cfg.frame_rate))
                    b = min(grid.shape[-1], int(np.ceil(r.mask_end * m.cfg.frame_rate)))
                    known[:, a:max(b, a + 1)] = False
                elif task == "variation":
                    strength = float(settings["strength"] if r.strength is None else r.strength)
                    g = torch.Generator().manual_seed((seed + VARIATION_MASK_SEED) % 2**63)
                    redraw = torch.rand(known.shape, generator=g) < strength
                    ch = m.cfg.channels
                    redraw = redraw.view(m.n_q, ch, -1).int().cummax(dim=0).values.bool().view_as(known)
                    known = ~redraw
                    extra["strength"] = strength
                elif task == "loop":
                    period = float(settings["period"] if r.period is None else r.period)
                    every = max(2, round(period * m.cfg.frame_rate))
                    total = r.duration if r.duration > 0 else src.duration
                    frames, samples = m.frames(total), int(round(total * self.sample_rate))
                    reps = -(-frames // codes.shape[-1])
                    grid = codes.repeat(1, reps)[:, :frames]
                    known = torch.zeros_like(grid, dtype=torch.bool)
                    known[:, ::every] = True
                    extra.update(period=period, period_frames=every)
            out = self.fill(grid, known, r, seed, settings)
            yield codes, out, known, {"settings": settings, "seed": seed, "samples": samples, **extra}

    def _check_fields(self, r: GenerationRequest) -> None:
        """Task fields given to a task that has no use for them are refused, not ignored."""
        if r.strength is not None and r.task != "variation":
            raise RequestError(f"strength is a setting of the variation task, not of '{r.task}' "
                               f"(model '{self.card.name}')")
        if r.period is not None and r.task != "loop":
            raise RequestError(f"period is a setting of the loop task, not of '{r.task}' (model '{self.card.name}')")
        if r.task == "loop" and r.period is not None and r.period * self.model.cfg.frame_rate < 1.5:
            raise RequestError(f"loop period {r.period:g} s is under two code frames "
                               f"({2 / self.model.cfg.frame_rate:.3f} s)")

    # --- output ----------------------------------------------------------------------------------
    @staticmethod
    def _finish_samples(samples: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        """Peaks over ``PEAK`` scaled down (not with ``keep``: the user's samples stay bit-exact, only clipped)."""
        peak = float(np.abs(samples).max()) if samples.size else 0.0
        if peak > PEAK:
            if keep is not None:
                return np.clip(samples, -1.0, 1.0).astype(np.float32)
            return (samples * (PEAK / peak)).astype(np.float32)
        return samples.astype(np.float32, copy=False)

    def _finish(self, samples: np.ndarray, r: GenerationRequest, seed: int, variation: int, settings: dict,
                extra: dict | None = None) -> Audio:
        """The output with its provenance; ``extra``: the task's own values (strength, period) for the sidecar."""
        audio = Audio(np.ascontiguousarray(samples, np.float32), self.sample_rate)
        audio.meta = record_used(self.provenance(r, seed, variation), {
            **{k: settings[k] for k in ("steps", "guidance_scale", "temperature", "top_k", "choice_temperature")},
            **{k: settings[k] for k in ("guidance_end", "quiet_penalty") if settings.get(k) is not None},
            "frame_rate": self.model.cfg.frame_rate, "window_seconds": self.model.cfg.window_seconds,
            **(extra or {})})
        return audio
