"""A small trained neural vocoder: a Vocos-style ConvNeXt-1D backbone with an inverse-STFT head.

Log-mel frames [B, n_mels, N] -> ConvNeXt-1D -> per frame, a log-magnitude correction to the
pseudo-inverse mel magnitude and a phase, of an STFT with the mel's own n_fft and hop ->
``torch.istft`` -> wave [B, N * hop]. No upsampling convolutions, so it is fast on a CPU.
Hand-written after Vocos (Siuzdak, 2023) because the ``vocos`` package imports torchaudio, which
fails to import here. A diffusers ``ModelMixin``/``ConfigMixin``: ``save_pretrained(dir)`` writes
config.json (with the mel settings) + diffusion_pytorch_model.safetensors; :meth:`from_pretrained`
loads strictly and names the keys of a mismatched checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from ..errors import ModelError
from ..features import MelConfig, mel_filterbank

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
CONFIG_NAME = "config.json"


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block over frames: depthwise conv, LayerNorm, MLP, layer scale; x [B, dim, N] -> same."""

    def __init__(self, dim: int, hidden_dim: int, kernel_size: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(hidden_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class NeuralVocoder(ModelMixin, ConfigMixin):
    """Vocos-style vocoder: ``vocoder(log_mel [B, n_mels, N]) -> wave [B, N * hop]`` at ``sample_rate``.

    ``mel`` is the :class:`~foley.features.MelConfig` as a dict (stored in config.json); the STFT of
    the head uses the same n_fft, window and hop, so the output length is exact.
    """

    @register_to_config
    def __init__(self, mel: dict | None = None, dim: int = 128, hidden_dim: int = 384, num_layers: int = 5,
                 kernel_size: int = 7, layer_scale: float = 0.1, max_log_magnitude: float = 4.6):
        super().__init__()
        cfg = MelConfig.from_dict(mel) if mel is not None else MelConfig()
        if mel is None:
            self.register_to_config(mel=cfg.to_dict())
        self.mel_config = cfg
        self.n_freqs = cfg.n_fft // 2 + 1
        self.embed = nn.Conv1d(cfg.n_mels, dim, kernel_size, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, hidden_dim, kernel_size, layer_scale)
                                    for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, 2 * self.n_freqs)
        nn.init.zeros_(self.head.weight)  # start from the pseudo-inverse magnitude with zero phase
        nn.init.zeros_(self.head.bias)
        fb = torch.from_numpy(mel_filterbank(cfg))
        self.register_buffer("mel_pinv", torch.linalg.pinv(fb), persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.win_length), persistent=False)

    @property
    def sample_rate(self) -> int:
        return self.mel_config.sample_rate

    def spectrum(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Complex STFT [B, n_fft // 2 + 1, N + 1] predicted from log-mel [B, n_mels, N].

        One extra frame (a copy of the last) covers the tail of a centred STFT of ``N * hop`` samples.
        """
        return torch.polar(*self.magnitude_phase(log_mel))

    def magnitude_phase(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The :meth:`spectrum`'s magnitude and phase, real tensors (what an ONNX graph can carry)."""
        x = nn.functional.pad(log_mel, (0, 1), mode="replicate")
        prior = torch.log(torch.clamp(self.mel_pinv @ torch.exp(x), min=self.mel_config.log_floor))
        h = self.norm(self.embed(x).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            h = block(h)
        out = self.head(self.final_norm(h.transpose(1, 2))).transpose(1, 2)
        log_mag, phase = out.split(self.n_freqs, dim=1)
        return torch.exp(torch.clamp(prior + log_mag, max=self.config.max_log_magnitude)), phase

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        """log_mel [B, n_mels, N] (natural log magnitude mel) -> wave [B, N * hop] float32."""
        cfg = self.mel_config
        if log_mel.ndim != 3 or log_mel.shape[1] != cfg.n_mels:
            raise ValueError(f"log_mel must be [B, {cfg.n_mels}, N], got {tuple(log_mel.shape)}")
        length = log_mel.shape[-1] * cfg.hop_length
        if length == 0:
            return log_mel.new_zeros(log_mel.shape[0], 0)
        spec = self.spectrum(log_mel.float())
        return torch.istft(spec, cfg.n_fft, cfg.hop_length, cfg.win_length, self.window, center=True,
                           length=length)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> NeuralVocoder:
        """Load a saved folder strictly: raises :class:`ModelError` naming missing, unexpected or
        mis-shaped keys (diffusers itself only warns about missing and unexpected ones)."""
        return load_strict(cls, pretrained_model_name_or_path, **kwargs).eval()


def load_strict(model_cls, folder, **kwargs):
    """``model_cls.from_pretrained(folder)`` that fails on any key mismatch instead of warning.

    Raises :class:`ModelError` (one line naming the folder and the keys) when the checkpoint has
    missing, unexpected or differently shaped tensors compared with the model its config builds.
    """
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        raise ModelError(f"{folder}: no {CONFIG_NAME}; expected a folder written by save_pretrained")
    try:
        # bypass an overriding from_pretrained (ours) so this works for any diffusers model class
        load = ModelMixin.from_pretrained.__func__
        model, info = load(model_cls, folder, output_loading_info=True, **kwargs)
    except (ValueError, RuntimeError) as e:
        if "shape" not in str(e) and "size mismatch" not in str(e):
            raise
        raise ModelError(f"{folder}: checkpoint does not match its config: {_first_line(e)}") from e
    problems = [f"{name.replace('_', ' ')} {sorted(str(k) for k in info[name])[:8]}"
                for name in ("missing_keys", "unexpected_keys", "mismatched_keys") if info[name]]
    if problems:
        raise ModelError(f"{folder}: checkpoint does not match its config: {'; '.join(problems)}")
    return model


def _first_line(e: Exception) -> str:
    line = str(e).strip().splitlines()[0]
    return line.split(". If you want")[0].replace("Cannot load because ", "")[:300]
