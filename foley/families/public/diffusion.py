"""AudioLDM 1, AudioLDM 2 and MusicLDM: diffusers mel-latent pipelines behind the Generator interface.

All three share one layout: text -> conditioning -> UNet over VAE latents of a 64-band log-mel
spectrogram [B, 1, T, n_mels] (time is the *height*) -> mel -> SpeechT5HifiGan vocoder, 16 kHz mono.
Generation calls the pipeline's ``__call__`` unchanged; edits add :class:`.latent_edit.Reimpose`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ... import device as devices
from ...audio import Audio
from ...capabilities import Capabilities, Setting, steer_settings
from ...editing import band_split, estimate_cutoff, expand, extended_length, seed_of, splice
from ...errors import RequestError
from ...features import MelConfig, log_mel
from ...generator import EXTEND_SECONDS
from ...request import MAX_STEPS, GenerationRequest
from . import latent_edit as le
from .cards import MEL_LDM_TASKS
from .common import PublicGenerator, unsupported

STFT_SECONDS = 0.064  # AudioLDM's STFT window and FFT length (1024 samples at 16 kHz)
TRAINED_SECONDS = 10.24  # clip length these models were trained on (1024 mel frames at 100 frames/s)
LOG_FLOOR = 1e-5  # the HiFi-GAN log-mel clamp the vocoders were trained with

# request scheduler name -> (diffusers class, extra config); None = the repository's own scheduler
SCHEDULERS = {"ddim": ("DDIMScheduler", {}), "dpm++": ("DPMSolverMultistepScheduler", {}),
              "dpm++sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
              "unipc": ("UniPCMultistepScheduler", {}), "euler": ("EulerDiscreteScheduler", {}),
              "heun": ("HeunDiscreteScheduler", {}), "pndm": ("PNDMScheduler", {}),
              "lms": ("LMSDiscreteScheduler", {})}


class DiffusionGenerator(PublicGenerator):
    """A diffusers audio pipeline with ``callback(step, t, latents)``: generation through ``__call__``,
    edits by latent re-imposition. Latents are [B, C, T, ...] with time on axis 2."""

    pipeline_class = ""
    schedulers = SCHEDULERS

    @classmethod
    def capabilities_for(cls, card) -> Capabilities:
        d = card.defaults
        settings = [Setting("steps", d.get("steps", 50), 1, MAX_STEPS, help="denoising steps"),
                    Setting("guidance_scale", d.get("guidance_scale", 3.0), 0.0, 30.0, help="classifier-free guidance"),
                    Setting("negative_prompt", help="what to avoid")]
        if cls.schedulers:
            settings.insert(1, Setting("scheduler", None, choices=tuple(cls.schedulers), help="diffusers scheduler"))
        return Capabilities(tasks=tuple(card.tasks), max_duration=card.max_duration, settings=tuple(settings))

    def __init__(self, model, card, folder, placement):
        super().__init__(model, card, folder, placement)
        self._scheduler_config = dict(model.scheduler.config)
        self._scheduler_class = type(model.scheduler)

    @classmethod
    def _load(cls, folder: Path, placement: devices.Placement):
        import diffusers

        pipe = getattr(diffusers, cls.pipeline_class).from_pretrained(
            folder, local_files_only=True, dtype=placement.torch_dtype, **cls._components(folder, placement))
        devices.place(pipe, placement)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    @classmethod
    def _components(cls, folder: Path, placement: devices.Placement) -> dict:
        """Components to load differently from what model_index.json says (version fixes)."""
        return {}

    # --- to implement ---------------------------------------------------------------------------
    def latent_shape(self, seconds: float) -> tuple[int, ...]:
        """(C, T, ...) of the latents the pipeline makes for ``seconds``."""
        raise NotImplementedError

    def latent_seconds(self, seconds: float) -> float:
        """Duration covered by the latents for ``seconds`` (>= seconds: rounded up to whole frames)."""
        raise NotImplementedError

    def encode(self, audio: Audio, seconds: float) -> torch.Tensor:
        """Audio at the model rate -> clean latents [1, C, T, ...] for a clip of ``seconds``."""
        raise NotImplementedError

    def _length(self, seconds: float) -> dict:
        return {"audio_length_in_s": seconds}

    def _waves(self, audios) -> np.ndarray:
        """The pipeline's ``audios`` -> [B, channels, T] float32."""
        x = np.asarray(audios, np.float32)
        return x[:, None] if x.ndim == 2 else x

    def _band_keep(self, shape, cutoff: float) -> torch.Tensor:
        raise unsupported(self.card, "super_resolution")

    # --- settings -------------------------------------------------------------------------------
    def _settings(self, r: GenerationRequest) -> tuple[int, float, str | None]:
        steps = r.steps or int(self.default("steps", 50))
        guidance = r.guidance_scale if r.guidance_scale is not None else float(self.default("guidance_scale", 3.0))
        if r.scheduler is not None and r.scheduler not in self.schedulers:
            names = ", ".join(self.schedulers) or "none (it uses its own)"
            raise RequestError(f"unknown scheduler '{r.scheduler}' for '{self.card.name}'; use: {names}")
        return steps, guidance, r.scheduler

    def _use_scheduler(self, name: str | None):
        import diffusers

        if name is None:
            sched = self._scheduler_class.from_config(self._scheduler_config)
        else:
            cls_name, extra = self.schedulers[name]
            sched = getattr(diffusers, cls_name).from_config(self._scheduler_config, **extra)
        self.model.scheduler = sched
        return sched

    def _record(self, steps, guidance, scheduler) -> dict:
        return {"steps": steps, "guidance_scale": guidance,
                "scheduler": scheduler or self._scheduler_class.__name__}

    def _call(self, prompts, negatives, seeds, duration, steps, guidance, scheduler, **kw) -> np.ndarray:
        """Run the pipeline once: one waveform per prompt, each from its own seeded generator -> [B, C, T]."""
        self._use_scheduler(scheduler)
        gens = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        neg = [n or "" for n in negatives] if any(n is not None for n in negatives) else None
        with torch.inference_mode():
            out = self.model(prompt=list(prompts), negative_prompt=neg, num_inference_steps=steps,
                             guidance_scale=guidance, num_waveforms_per_prompt=1, generator=gens,
                             output_type="np", **self._length(duration), **kw)
        return self._waves(out.audios)

    # --- generation -----------------------------------------------------------------------------
    def _generate(self, requests: list[GenerationRequest]) -> list[Audio]:
        items = expand(requests)
        groups: dict[tuple, list] = defaultdict(list)
        results = {}
        for it in items:  # one pipeline call per setting; with/without negative prompts differ for some models
            if it[2].steering:  # control curves (the mel pipelines; other models refuse by their capabilities)
                from .steer import steered

                results[(it[0], it[1])] = steered(self, it[2], it[3], it[1], *self._settings(it[2]),
                                                  self.frames_for(it[2].duration))
                continue
            groups[(it[2].duration, *self._settings(it[2]), it[2].negative_prompt is None)].append(it)
        for (duration, steps, guidance, scheduler, _), group in groups.items():
            waves = self._call([it[2].prompt for it in group], [it[2].negative_prompt for it in group],
                               [it[3] for it in group], duration, steps, guidance, scheduler)
            settings = self._record(steps, guidance, scheduler)
            for it, w in zip(group, waves, strict=True):
                results[(it[0], it[1])] = self.finish(w, it[2], it[3], it[1], settings, self.frames_for(duration))
        return [results[(i, j)] for i, j, _, _ in items]

    # --- editing --------------------------------------------------------------------------------
    def _edit(self, audio: Audio, r: GenerationRequest) -> list[Audio]:
        src = audio.to_channels(self.channels) if audio.channels != self.channels else audio
        if src.sample_rate != self.sample_rate:
            src = src.resample(self.sample_rate)
        steps, guidance, scheduler = self._settings(r)
        settings = self._record(steps, guidance, scheduler)
        base, outs = seed_of(r), []
        for j in range(r.num_variations):
            seed = base + j
            if r.task == "style_transfer" and r.strength == 0.0:  # no change requested
                out = src.samples
            else:
                out = self._edit_one(src, r, seed, steps, guidance, scheduler).samples
            outs.append(self.finish(out, r, seed, j, settings))
        return outs

    def _time_keep(self, shape, a: int, b: int, value: float) -> torch.Tensor:
        """A mask [1, 1, T, 1...] equal to ``value`` on latent frames [a, b) and 1 - value elsewhere."""
        keep = torch.full((1, 1, shape[1], *[1] * (len(shape) - 2)), 1.0 - value)
        keep[:, :, a:b] = value
        return keep

    def _edit_one(self, src: Audio, r, seed, steps, guidance, scheduler) -> Audio:
        total = src.duration
        if r.task in ("extend", "continue"):
            total = extended_length(src, r.duration, self.card.max_duration, EXTEND_SECONDS)
        shape = self.latent_shape(total)
        known = self.encode(src, total)
        noise = torch.randn((1, *shape), generator=torch.Generator().manual_seed(seed))
        rate = shape[1] / self.latent_seconds(total)  # latent frames per second
        cutoff = None
        if r.task == "style_transfer":
            keep_fn = le.sdedit_keep(steps, 0.5 if r.strength is None else r.strength)
        elif r.task == "inpaint":
            a = int(np.floor(r.mask_start * rate))
            keep_fn = le.always(self._time_keep(shape, a, max(int(np.ceil(r.mask_end * rate)), a + 1), 0.0))
        elif r.task in ("extend", "continue"):
            keep_fn = le.always(self._time_keep(shape, 0, int(np.floor(src.duration * rate)), 1.0))
        else:
            cutoff = r.cutoff_hz or estimate_cutoff(src)
            keep_fn = le.always(self._band_keep(shape, cutoff))
        sched = self._use_scheduler(scheduler)
        le.check_first_order(sched)
        callback = le.Reimpose(self.model, known, noise, keep_fn)
        wave = self._call([r.prompt], [r.negative_prompt], [seed], total, steps, guidance, scheduler,
                          latents=noise.to(known.dtype), callback=callback, callback_steps=1)[0]
        gen = Audio(np.ascontiguousarray(wave), self.sample_rate).pad_or_trim(self.frames_for(total))
        if r.task == "inpaint":
            return splice(src, gen, r.mask_start, r.mask_end)
        if r.task in ("extend", "continue"):
            return splice(src.pad_or_trim(gen.frames), gen, src.duration, total)
        if cutoff is not None:
            return Audio(band_split(src.pad_or_trim(gen.frames).samples, gen.samples, cutoff, self.sample_rate),
                         self.sample_rate)
        return gen


class MelLDMGenerator(DiffusionGenerator):
    """Common wrapper of the mel-latent pipelines; subclasses name their diffusers pipeline class."""

    tasks = MEL_LDM_TASKS

    @classmethod
    def capabilities_for(cls, card) -> Capabilities:
        """Plus steering towards control curves (steer.py; mono: no pan)."""
        from .steer import CURVES

        caps = super().capabilities_for(card)
        return replace(caps, settings=(*caps.settings, *steer_settings(names=CURVES)))

    @classmethod
    def _describe(cls, pipe) -> tuple[int, int, float]:
        return int(pipe.vocoder.config.sampling_rate), 1, TRAINED_SECONDS

    @property
    def hop(self) -> int:
        return int(np.prod(self.model.vocoder.config.upsample_rates))

    @property
    def n_mels(self) -> int:
        return int(self.model.vocoder.config.model_in_dim)

    def mel_frames(self, seconds: float) -> int:
        """Mel frames the pipeline uses for ``seconds`` (its own arithmetic, rounded up to the VAE factor)."""
        f = self.model.vae_scale_factor
        n = int(seconds / (self.hop / self.sample_rate))
        return int(np.ceil(n / f) * f)

    def latent_shape(self, seconds: float) -> tuple[int, int, int]:
        f = self.model.vae_scale_factor
        return self.model.unet.config.in_channels, self.mel_frames(seconds) // f, self.n_mels // f

    def latent_seconds(self, seconds: float) -> float:
        return self.mel_frames(seconds) * self.hop / self.sample_rate

    def mel_config(self) -> MelConfig:
        n_fft = max(int(round(STFT_SECONDS * self.sample_rate)), self.hop)
        return MelConfig(sample_rate=self.sample_rate, n_fft=n_fft, hop_length=self.hop, win_length=n_fft,
                         n_mels=self.n_mels, f_min=0.0, f_max=self.sample_rate / 2, log_floor=LOG_FLOOR)

    @torch.no_grad()
    def encode(self, audio: Audio, seconds: float) -> torch.Tensor:
        """Mono audio -> log-mel [1, 1, frames, n_mels] (the vocoder's features) -> VAE latents [1, C, T, F]."""
        frames = self.mel_frames(seconds)
        x = torch.from_numpy(audio.pad_or_trim(frames * self.hop).samples[:1])
        mel = log_mel(x, self.mel_config())[..., :frames]
        vae = self.model.vae
        mel = mel.transpose(1, 2)[:, None].to(vae.device, vae.dtype)
        return vae.encode(mel).latent_dist.mode() * vae.config.scaling_factor

    def _band_keep(self, shape, cutoff: float) -> torch.Tensor:
        import librosa

        cfg = self.mel_config()
        centres = librosa.mel_frequencies(cfg.n_mels + 2, fmin=cfg.f_min, fmax=cfg.f_max)[1:-1]
        keep = torch.zeros(1, 1, 1, shape[2])
        keep[..., :int(np.searchsorted(centres, cutoff)) // self.model.vae_scale_factor] = 1
        return keep


class AudioLDMGenerator(MelLDMGenerator):
    """cvssp/audioldm-* through diffusers' AudioLDMPipeline (deprecated there, still shipped and working)."""

    family, pipeline_class = "audioldm", "AudioLDMPipeline"


class AudioLDM2Generator(MelLDMGenerator):
    """cvssp/audioldm2 and audioldm2-music through diffusers' AudioLDM2Pipeline."""

    family, pipeline_class = "audioldm2", "AudioLDM2Pipeline"

    @classmethod
    def _components(cls, folder: Path, placement: devices.Placement) -> dict:
        """The repositories name GPT2Model as language model; since transformers 5 it lacks the generation
        helpers the pipeline calls (diffusers issue 12630), so load the same weights as GPT2LMHeadModel."""
        import json

        spec = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
        if (spec.get("language_model") or [None, None])[1] != "GPT2Model":
            return {}
        from transformers import GPT2LMHeadModel

        lm = GPT2LMHeadModel.from_pretrained(folder / "language_model", local_files_only=True,
                                             dtype=placement.torch_dtype)
        return {"language_model": lm}


class MusicLDMGenerator(MelLDMGenerator):
    """ucsd-reach/musicldm through diffusers' MusicLDMPipeline."""

    family, pipeline_class = "musicldm", "MusicLDMPipeline"

    @classmethod
    def _load(cls, folder: Path, placement: devices.Placement):
        pipe = super()._load(folder, placement)
        _tensor_text_features(pipe.text_encoder)
        return pipe


def _tensor_text_features(clap) -> None:
    """transformers 5 returns a model output from ClapModel.get_text_features where the (deprecated, no longer
    updated) MusicLDMPipeline expects the tensor, as AudioLDM2Pipeline already handles: unwrap it."""
    original = clap.get_text_features

    def get_text_features(*args, **kwargs):
        out = original(*args, **kwargs)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    clap.get_text_features = get_text_features
