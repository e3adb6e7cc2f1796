"""EnCodec (24/32 kHz) and DAC (16/44.1 kHz) through transformers: audio <-> discrete codes.

``foley.load("facebook/encodec_24khz")`` returns a codec object, not a Generator:

- ``encode(audio, bandwidth=None) -> codes`` int64 [n_q, frames] (``bandwidth`` in kbps; None = the best
  the model offers); the input is mixed to mono, resampled to the model rate and zero-padded to whole frames;
- ``decode(codes, frames=None) -> Audio`` at the model rate, ``frames`` samples long (default: frames x hop);
- ``reconstruct(audio, bandwidth=None) -> Audio`` of the input's length.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ... import device as devices
from ...audio import Audio
from ...errors import ModelError, RequestError
from .cards import CODEC_TASKS
from .common import NotAGenerator, check_card, folder_card, load_error, offline_quiet


class PublicCodec(NotAGenerator):
    """Base of the codec wrappers. Attributes: ``card``, ``sample_rate``, ``channels``, ``hop_length``,
    ``frame_rate`` (frames per second), ``codebook_size``, ``bandwidths`` (kbps, ascending)."""

    family = ""
    model_class = ""

    def __init__(self, net, card, folder: Path, placement: devices.Placement):
        self.net, self.card, self.folder, self.placement = net, card, Path(folder), placement
        self.sample_rate = int(net.config.sampling_rate)
        self.channels = int(getattr(net.config, "audio_channels", 1))
        self._hash: str | None = None

    @classmethod
    def from_folder(cls, folder, card=None, device: str | None = None, dtype: str | None = None,
                    offload: bool | None = None):
        import transformers

        folder = Path(folder)
        # codecs run in float32: their convolutions and quantisers are not validated in half precision
        placement = devices.choose(devices.weights_bytes(folder), device=device, dtype=dtype or "float32",
                                   offload=offload)
        with offline_quiet():
            try:
                net = getattr(transformers, cls.model_class).from_pretrained(folder, local_files_only=True,
                                                                             dtype=placement.torch_dtype)
            except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
                raise load_error(folder, cls.model_class, e) from None
        devices.place_module(net.eval(), placement)
        sr, ch = int(net.config.sampling_rate), int(getattr(net.config, "audio_channels", 1))
        if card is None:
            card = folder_card(folder, cls.family, sr, ch, float("inf"), CODEC_TASKS)
        else:
            check_card(card, folder, sr, ch)
        return cls(net, card, folder, placement)

    def weight_hash(self) -> str:
        if self._hash is None:
            from .hub import fingerprint

            self._hash = fingerprint(self.folder)
        return self._hash

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def _prepare(self, audio: Audio) -> tuple[torch.Tensor, int]:
        """Audio -> model input [1, C, T'] padded to whole frames, and the original length T at the model rate."""
        x = audio.to_channels(self.channels) if audio.channels != self.channels else audio
        if x.sample_rate != self.sample_rate:
            x = x.resample(self.sample_rate)
        n = x.frames
        padded = x.pad_or_trim(math.ceil(n / self.hop_length) * self.hop_length).samples
        return torch.from_numpy(np.ascontiguousarray(padded))[None].to(self.placement.device), n

    def _bandwidth(self, bandwidth: float | None) -> float:
        if bandwidth is None:
            return self.bandwidths[-1]
        if not any(math.isclose(bandwidth, b) for b in self.bandwidths):
            raise RequestError(f"'{self.card.name}' offers {', '.join(f'{b:g}' for b in self.bandwidths)} kbps, "
                               f"not {bandwidth:g}")
        return next(b for b in self.bandwidths if math.isclose(bandwidth, b))

    def reconstruct(self, audio: Audio, bandwidth: float | None = None) -> Audio:
        """Encode then decode; the result has the input's length (at the model rate)."""
        _, n = self._prepare(audio)
        return self.decode(self.encode(audio, bandwidth), frames=n)

    def _audio(self, values: torch.Tensor, frames: int) -> Audio:
        """Decoder output -> Audio of exactly ``frames`` samples (decoders may return a few samples fewer)."""
        x = values.float().cpu().numpy().reshape(self.channels, -1)
        x = x[:, :frames] if x.shape[1] >= frames else np.pad(x, ((0, 0), (0, frames - x.shape[1])))
        return Audio(np.ascontiguousarray(x, np.float32), self.sample_rate)

    def _codes(self, codes) -> torch.Tensor:
        c = np.asarray(codes)
        if c.ndim != 2 or not np.issubdtype(c.dtype, np.integer):
            raise RequestError(f"codes must be an integer array [codebooks, frames], got {c.dtype} {c.shape}")
        if c.size and (c.min() < 0 or c.max() >= self.codebook_size):
            raise RequestError(f"codes outside 0..{self.codebook_size - 1}: not made by '{self.card.name}'")
        return torch.from_numpy(c.astype(np.int64)).to(self.placement.device)


class EncodecCodec(PublicCodec):
    """facebook/encodec_24khz and encodec_32khz (unchunked EnCodec models)."""

    family, model_class = "encodec", "EncodecModel"

    def __init__(self, net, card, folder, placement):
        super().__init__(net, card, folder, placement)
        if net.config.chunk_length is not None:
            raise ModelError(f"{folder}: chunked EnCodec models (the 48 kHz one) are not supported; "
                             f"use encodec_24khz or encodec_32khz")
        self.hop_length = int(np.prod(net.config.upsampling_ratios))
        self.codebook_size = int(net.config.codebook_size)
        self.bandwidths = sorted(float(b) for b in net.config.target_bandwidths)
        self.num_quantizers = int(net.config.num_quantizers)  # at the highest bandwidth

    @torch.no_grad()
    def encode(self, audio: Audio, bandwidth: float | None = None) -> np.ndarray:
        """Audio -> int64 codes [n_q, frames] at ``bandwidth`` kbps (None = the highest)."""
        x, _ = self._prepare(audio)
        out = self.net.encode(x, bandwidth=self._bandwidth(bandwidth))
        return out.audio_codes[0, 0].cpu().numpy().astype(np.int64)

    @torch.no_grad()
    def decode(self, codes, frames: int | None = None) -> Audio:
        """int codes [n_q, F] -> Audio at the model rate, ``frames`` samples long (default F * hop_length)."""
        c = self._codes(codes)
        values = self.net.decode(c[None, None], [None]).audio_values
        return self._audio(values[0], frames or c.shape[1] * self.hop_length)


class DacCodec(PublicCodec):
    """descript/dac_16khz and dac_44khz."""

    family, model_class = "dac", "DacModel"

    def __init__(self, net, card, folder, placement):
        super().__init__(net, card, folder, placement)
        self.hop_length = int(net.config.hop_length)
        self.codebook_size = int(net.config.codebook_size)
        self.num_quantizers = int(net.config.n_codebooks)
        bits = math.log2(self.codebook_size)
        self.bandwidths = [n * self.frame_rate * bits / 1000 for n in range(1, int(net.config.n_codebooks) + 1)]

    @torch.no_grad()
    def encode(self, audio: Audio, bandwidth: float | None = None) -> np.ndarray:
        """Audio -> int64 codes [n_q, frames]; ``bandwidth`` picks how many codebooks (None = all)."""
        x, _ = self._prepare(audio)
        n_q = self.bandwidths.index(self._bandwidth(bandwidth)) + 1
        out = self.net.encode(x, n_quantizers=n_q)
        return out.audio_codes[0, :n_q].cpu().numpy().astype(np.int64)

    @torch.no_grad()
    def decode(self, codes, frames: int | None = None) -> Audio:
        """int codes [n_q, F] -> Audio at the model rate, ``frames`` samples long (default F * hop_length)."""
        c = self._codes(codes)
        values = self.net.decode(audio_codes=c[None]).audio_values
        return self._audio(values[0], frames or c.shape[1] * self.hop_length)
