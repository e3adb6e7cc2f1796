"""Stable Audio Open through diffusers' StableAudioPipeline: stereo 44.1 kHz, DiT over Oobleck latents.

Latents are [B, 64, T] at ``sampling_rate / vae.hop_length`` frames per second (21.5 Hz for the
official model); the pipeline always denoises its full window (``transformer.sample_size`` frames,
47.55 s) and crops to the requested end, so the cost does not depend on the duration. Init audio
(style transfer) is SDEdit by latent re-imposition (:mod:`.latent_edit`), which gives the strength
control that the pipeline's own ``initial_audio_waveforms`` (added to full-level noise) does not.
"""

from __future__ import annotations

import numpy as np
import torch

from ...audio import Audio
from .cards import STABLE_AUDIO_TASKS
from .diffusion import DiffusionGenerator


class StableAudioGenerator(DiffusionGenerator):
    """stabilityai/stable-audio-open-1.0 (and folders in its diffusers layout)."""

    family, pipeline_class = "stable-audio", "StableAudioPipeline"
    tasks = STABLE_AUDIO_TASKS
    schedulers: dict = {}  # the repository's CosineDPMSolverMultistepScheduler only

    @classmethod
    def _describe(cls, pipe) -> tuple[int, int, float]:
        sr = int(pipe.vae.config.sampling_rate)
        window = pipe.transformer.config.sample_size * pipe.vae.hop_length / sr
        return sr, int(pipe.vae.config.audio_channels), float(window)

    def _length(self, seconds: float) -> dict:
        return {"audio_end_in_s": seconds}

    @property
    def window_frames(self) -> int:
        return int(self.model.transformer.config.sample_size)

    def latent_shape(self, seconds: float) -> tuple[int, int]:
        return int(self.model.transformer.config.in_channels), self.window_frames

    def latent_seconds(self, seconds: float) -> float:
        return self.window_frames * self.model.vae.hop_length / self.sample_rate

    @torch.no_grad()
    def encode(self, audio: Audio, seconds: float) -> torch.Tensor:
        """Audio [C, T] at 44.1 kHz -> Oobleck posterior means [1, 64, window] (zero-padded to the window)."""
        vae = self.model.vae
        x = torch.from_numpy(np.ascontiguousarray(audio.pad_or_trim(self.window_frames * vae.hop_length).samples))
        return vae.encode(x[None].to(vae.device, vae.dtype)).latent_dist.mode()
