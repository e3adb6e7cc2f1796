"""MusicGen (small/medium/large) and MusicGen-melody through transformers, behind the Generator interface.

One folder holds everything (config.json with the T5 text encoder, EnCodec 32 kHz and the decoder
configs; model.safetensors; generation_config.json with the sampling defaults; the T5 tokenizer and
preprocessor_config.json). Sampling follows the folder's generation_config (top-k 250, guidance 3 for
the official models). Each output is generated on its own after ``torch.manual_seed(seed)``, so a
seed gives the same music whatever else is in the batch (transformers' ``generate`` has no per-item
generators). Continuation feeds the input audio as ``input_values`` (the audio prompt); melody
conditioning feeds its chromagram as ``input_features``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ... import device as devices
from ...audio import Audio
from ...capabilities import Capabilities, Setting
from ...editing import expand, extended_length, seed_of, splice
from ...errors import RequestError
from ...generator import EXTEND_SECONDS
from ...request import GenerationRequest
from .cards import MELODY_TASKS, MUSICGEN_TASKS
from .common import PublicGenerator


@dataclass
class Loaded:
    net: object  # MusicgenForConditionalGeneration or MusicgenMelodyForConditionalGeneration
    tokenizer: object  # the T5 tokenizer
    features: object  # EncodecFeatureExtractor (audio prompts) or MelodyChroma (melody)


class MelodyChroma:
    """MusicgenMelodyFeatureExtractor's features, computed without torchaudio (which that class needs and
    which does not import beside this torch): power STFT -> chroma filter bank -> one-hot of the strongest
    pitch class per frame, [1, frames, num_chroma]. Settings come from the folder's preprocessor_config.json."""

    def __init__(self, cfg: dict):
        from transformers.audio_utils import chroma_filter_bank

        self.sampling_rate = int(cfg.get("sampling_rate", 32000))
        self.n_fft, self.hop_length = int(cfg.get("n_fft", 16384)), int(cfg.get("hop_length", 4096))
        self.max_samples = int(cfg.get("chunk_length", 30)) * self.sampling_rate
        self.filters = torch.from_numpy(chroma_filter_bank(sampling_rate=self.sampling_rate,
                                                           num_frequency_bins=self.n_fft, tuning=0,
                                                           num_chroma=int(cfg.get("num_chroma", 12)))).float()

    def __call__(self, wave: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(wave[: self.max_samples], np.float32))
        if x.shape[-1] < self.n_fft:  # as the extractor: centre-pad short clips to one FFT
            pad = self.n_fft - x.shape[-1]
            x = torch.nn.functional.pad(x, (pad // 2, pad - pad // 2))
        window = torch.hann_window(self.n_fft)
        spec = torch.stft(x[None], self.n_fft, self.hop_length, window=window, center=True, pad_mode="reflect",
                          return_complex=True).abs() ** 2  # the extractor's scale factor cancels in the argmax
        chroma = torch.einsum("cf,bft->btc", self.filters, spec)
        return torch.nn.functional.one_hot(chroma.argmax(-1), chroma.shape[-1]).float()


class MusicGenGenerator(PublicGenerator):
    """facebook/musicgen-small|medium|large (and folders in that layout)."""

    family = "musicgen"
    tasks = MUSICGEN_TASKS
    model_class = "MusicgenForConditionalGeneration"

    @classmethod
    def capabilities_for(cls, card) -> Capabilities:
        return Capabilities(tasks=tuple(card.tasks), max_duration=card.max_duration,
                            settings=(Setting("guidance_scale", card.defaults.get("guidance_scale"), 0.0, 30.0,
                                              help="classifier-free guidance"),))

    @classmethod
    def _load(cls, folder: Path, placement: devices.Placement) -> Loaded:
        import transformers

        net = getattr(transformers, cls.model_class).from_pretrained(folder, local_files_only=True,
                                                                     dtype=placement.torch_dtype)
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        devices.place_module(net.eval(), placement)
        return Loaded(net, tokenizer, cls._features(folder))

    @classmethod
    def _features(cls, folder: Path):
        from transformers import EncodecFeatureExtractor

        return EncodecFeatureExtractor.from_pretrained(folder, local_files_only=True)

    @classmethod
    def _describe(cls, m: Loaded) -> tuple[int, int, float]:
        cfg = m.net.config
        frame_rate = cfg.audio_encoder.frame_rate
        max_len = m.net.generation_config.max_length or cfg.decoder.max_position_embeddings
        return int(cfg.audio_encoder.sampling_rate), int(cfg.decoder.audio_channels), float(max_len / frame_rate)

    @property
    def frame_rate(self) -> float:
        return float(self.model.net.config.audio_encoder.frame_rate)

    @property
    def num_codebooks(self) -> int:
        return int(self.model.net.decoder.num_codebooks)

    def _guidance(self, r: GenerationRequest) -> float:
        if r.guidance_scale is not None:
            return r.guidance_scale
        return float(self.default("guidance_scale", self.model.net.generation_config.guidance_scale or 1.0))

    def _check(self, r: GenerationRequest) -> None:
        self.check_settings(r, scheduler=False, steps=False, negative=False)

    @torch.no_grad()
    def _sample(self, inputs: dict, seed: int, frames: int, guidance: float) -> np.ndarray:
        """One sequence: ``frames`` new codec frames (+ the delay pattern's tail) -> samples [C, T]."""
        net = self.model.net
        inputs = {k: v.to(devices.input_device(self.placement)) if hasattr(v, "to") else v
                  for k, v in inputs.items()}
        if "input_features" in inputs:
            inputs["input_features"] = inputs["input_features"].to(net.dtype)
        if "input_values" in inputs:
            inputs["input_values"] = inputs["input_values"].to(net.dtype)
        torch.manual_seed(seed)
        out = net.generate(**inputs, do_sample=True, guidance_scale=guidance,
                           max_new_tokens=frames + self.num_codebooks - 1)
        return out[0].float().cpu().numpy()

    def _text(self, prompt: str) -> dict:
        tok = self.model.tokenizer([prompt], padding=True, return_tensors="pt", return_token_type_ids=False)
        return {"input_ids": tok["input_ids"], "attention_mask": tok["attention_mask"]}

    def _generate(self, requests: list[GenerationRequest]) -> list[Audio]:
        outs = []
        for _, j, r, seed in expand(requests):
            self._check(r)
            guidance = self._guidance(r)
            frames = math.ceil(r.duration * self.frame_rate)
            wave = self._sample(self._inputs(r), seed, frames, guidance)
            outs.append(self.finish(wave, r, seed, j, {"guidance_scale": guidance, "max_new_tokens": frames},
                                    self.frames_for(r.duration)))
        return outs

    def _inputs(self, r: GenerationRequest) -> dict:
        return self._text(r.prompt)

    def _edit(self, audio: Audio, r: GenerationRequest) -> list[Audio]:
        self._check(r)
        src = audio.to_channels(self.channels) if audio.channels != self.channels else audio
        if src.sample_rate != self.sample_rate:
            src = src.resample(self.sample_rate)
        return self._continue(src, r)

    def _continue(self, src: Audio, r: GenerationRequest) -> list[Audio]:
        """MusicGen's audio-prompted generation; the input is kept bit-exact and joined with a crossfade."""
        total = extended_length(src, r.duration, self.card.max_duration, EXTEND_SECONDS)
        guidance = self._guidance(r)
        new = math.ceil((total - src.duration) * self.frame_rate)
        audio_in = self.model.features(raw_audio=src.samples[0] if self.channels == 1 else src.samples,
                                       sampling_rate=self.sample_rate, return_tensors="pt")
        inputs = {**self._text(r.prompt), "input_values": audio_in["input_values"],
                  "padding_mask": audio_in["padding_mask"]}
        base, outs = seed_of(r), []
        for j in range(r.num_variations):
            seed = base + j
            wave = self._sample(inputs, seed, new, guidance)
            gen = Audio(np.ascontiguousarray(wave), self.sample_rate).pad_or_trim(self.frames_for(total))
            joined = splice(src.pad_or_trim(gen.frames), gen, src.duration, total)
            outs.append(self.finish(joined.samples, r, seed, j, {"guidance_scale": guidance, "max_new_tokens": new}))
        return outs


class MusicGenMelodyGenerator(MusicGenGenerator):
    """facebook/musicgen-melody: text plus the chromagram of a melody (``edit(audio, ..., task="melody")``;
    ``style_transfer`` is accepted as the same thing: keep the tune, change the style)."""

    family = "musicgen-melody"
    tasks = MELODY_TASKS
    model_class = "MusicgenMelodyForConditionalGeneration"

    @classmethod
    def _features(cls, folder: Path) -> MelodyChroma:
        import json

        cfg = folder / "preprocessor_config.json"
        return MelodyChroma(json.loads(cfg.read_text(encoding="utf-8")) if cfg.is_file() else {})

    def _edit(self, audio: Audio, r: GenerationRequest) -> list[Audio]:
        self._check(r)
        if r.strength is not None:
            raise RequestError("melody conditioning has no strength setting; drop --strength")
        melody = audio.to_mono()
        if melody.sample_rate != self.sample_rate:
            melody = melody.resample(self.sample_rate)
        guidance = self._guidance(r)
        frames = math.ceil(r.duration * self.frame_rate)
        inputs = {**self._text(r.prompt), "input_features": self.model.features(melody.samples[0])}
        base, outs = seed_of(r), []
        for j in range(r.num_variations):
            seed = base + j
            wave = self._sample(inputs, seed, frames, guidance)
            outs.append(self.finish(wave, r, seed, j, {"guidance_scale": guidance, "max_new_tokens": frames,
                                                       "melody_seconds": round(melody.duration, 3)},
                                    self.frames_for(r.duration)))
        return outs
