"""PANNs CNN14 (Kong et al. 2020) as used by audioldm_eval for FD, KL and IS.

Loads ``Cnn14_16k_mAP=0.438.pth`` (16 kHz) or ``Cnn14_mAP=0.431.pth`` (32 kHz): a dict whose
``"model"`` entry is the state dict of qiuqiangkong/audioset_tagging_cnn's ``Cnn14``: ``bn0``,
``conv_block1..6`` (two 3x3 conv + batch-norm each, 64 -> 2048 channels), ``fc1`` (2048 -> 2048),
``fc_audioset`` (2048 -> 527), plus torchlibrosa's front-end constants
``spectrogram_extractor.stft.conv_real/conv_imag.weight`` (windowed DFT kernels) and
``logmel_extractor.melW`` (librosa mel matrix). We compute the same front end with ``torch.stft``
and ``librosa.filters.mel``; the checkpoint's constants are loaded as buffers (strictly) and must
agree with ours, so a checkpoint made for another rate or mel setting is refused.

Outputs per clip: ``embed`` = ReLU(fc1) [N, 2048] (audioldm_eval's "2048" feature), ``logits`` =
fc_audioset [N, 527], ``posteriors`` = sigmoid(logits) (AudioSet is multi-label: each class in (0, 1),
rows do not sum to 1).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...audio import Audio
from ...errors import ModelError
from .common import BaseBackbone, load_strict, read_checkpoint
from .spec import BackboneSpec, CheckedFile

CLASSES = 527
CHANNELS = (64, 128, 256, 512, 1024, 2048)
AMIN = 1e-10                    # power floor before 10*log10 (torchlibrosa's amin, ref = 1, no top_db)
MIN_SAMPLES = 32_000            # audioldm_eval's pad_short_audio(min_samples=32000), in model samples
FRONT_END_TOLERANCE = 1e-3      # max |checkpoint constant - ours| relative to the constant's peak
BATCH = 8


class _Constant(nn.Module):
    """Holds one front-end constant under the parameter name torchlibrosa gives it (``<module>.weight``)."""

    def __init__(self, value: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", value)


def dft_kernels(n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torchlibrosa's STFT kernels [n_fft//2+1, 1, n_fft]: Hann-windowed cos and -sin of the DFT."""
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # periodic Hann
    phase = 2 * np.pi * ((k * n) % n_fft) / n_fft
    real = np.cos(phase) * window
    imag = -np.sin(phase) * window
    return (torch.tensor(real, dtype=torch.float32)[:, None], torch.tensor(imag, dtype=torch.float32)[:, None])


def mel_matrix(sample_rate: int, n_fft: int, mel_bins: int, fmin: float, fmax: float) -> torch.Tensor:
    """librosa's Slaney mel matrix, transposed as torchlibrosa stores it: [n_fft//2+1, mel_bins]."""
    import librosa

    return torch.tensor(librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=mel_bins, fmin=fmin,
                                            fmax=fmax).T, dtype=torch.float32)


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool) if pool > 1 else x


class Cnn14(nn.Module):
    """CNN14 with audioset_tagging_cnn's parameter names (inference only: no dropout, no SpecAugment).

    ``forward(wave [B, T] at sample_rate) -> (embedding [B, 2048], logits [B, 527])``.
    """

    def __init__(self, sample_rate: int, window_size: int, hop_size: int, mel_bins: int, fmin: float,
                 fmax: float, classes: int = CLASSES):
        super().__init__()
        self.n_fft, self.hop = window_size, hop_size
        real, imag = dft_kernels(window_size)
        self.spectrogram_extractor = nn.Module()
        self.spectrogram_extractor.stft = nn.Module()
        self.spectrogram_extractor.stft.conv_real = _Constant(real)
        self.spectrogram_extractor.stft.conv_imag = _Constant(imag)
        self.logmel_extractor = nn.Module()
        self.logmel_extractor.register_buffer("melW", mel_matrix(sample_rate, window_size, mel_bins, fmin, fmax))
        self.register_buffer("window", torch.hann_window(window_size, periodic=True), persistent=False)
        self.register_buffer("mel", self.logmel_extractor.melW.clone(), persistent=False)
        self.bn0 = nn.BatchNorm2d(mel_bins)
        cin = 1
        for i, cout in enumerate(CHANNELS, start=1):
            setattr(self, f"conv_block{i}", ConvBlock(cin, cout))
            cin = cout
        self.fc1 = nn.Linear(cin, cin)
        self.fc_audioset = nn.Linear(cin, classes)

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, T] -> [B, 1, frames, mel_bins] in dB (power, ref 1, floor 1e-10), centred reflect-padded frames."""
        spec = torch.stft(wave, self.n_fft, self.hop, self.n_fft, self.window, center=True, pad_mode="reflect",
                          return_complex=True)
        power = spec.real ** 2 + spec.imag ** 2                          # [B, F, frames]
        mel = power.transpose(1, 2) @ self.mel                           # [B, frames, mels]
        return (10.0 * torch.log10(torch.clamp(mel, min=AMIN)))[:, None]

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.log_mel(wave)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)                  # batch-norm over mel bins
        for i in range(1, len(CHANNELS) + 1):
            x = getattr(self, f"conv_block{i}")(x, pool=2 if i < len(CHANNELS) else 1)
        x = x.mean(dim=3)                                                # [B, 2048, frames']
        x = x.max(dim=2).values + x.mean(dim=2)
        embedding = F.relu(self.fc1(x))
        return embedding, self.fc_audioset(embedding)

    def check_front_end(self, what: str) -> None:
        """Refuse a checkpoint whose STFT/mel constants differ from the torch.stft/librosa front end."""
        real, imag = dft_kernels(self.n_fft)
        stft = self.spectrogram_extractor.stft
        pairs = {"spectrogram_extractor.stft.conv_real.weight": (stft.conv_real.weight, real),
                 "spectrogram_extractor.stft.conv_imag.weight": (stft.conv_imag.weight, imag),
                 "logmel_extractor.melW": (self.logmel_extractor.melW, self.mel)}
        for key, (loaded, ours) in pairs.items():
            diff = float((loaded.float() - ours.to(loaded.device)).abs().max())
            peak = float(ours.abs().max())
            if diff > FRONT_END_TOLERANCE * peak:
                raise ModelError(f"{what}: front-end constant {key} differs from the expected one (max diff "
                                 f"{diff:.3g}); the checkpoint was made for another sample rate or mel setting")


class PannsBackbone(BaseBackbone):
    """PANNs CNN14: ``embed`` [N, 2048], ``logits``/``posteriors`` [N, 527], ``labels`` (or None)."""

    def __init__(self, spec: BackboneSpec, checked: Mapping[str, CheckedFile], device: str = "cpu"):
        super().__init__(spec, checked, device)
        main = checked[spec.files[0].name]
        opts = dict(spec.options)
        self.net = Cnn14(spec.sample_rate, **opts)
        ckpt = read_checkpoint(main)
        if not isinstance(ckpt, Mapping) or "model" not in ckpt:
            found = sorted(ckpt)[:6] if isinstance(ckpt, Mapping) else type(ckpt).__name__
            raise ModelError(f"{main.path}: not a PANNs checkpoint (expected a dict with a 'model' state dict, "
                             f"found {found})")
        load_strict(self.net, ckpt["model"], str(main.path), "PANNs Cnn14")
        self.net.check_front_end(str(main.path))
        self.net.eval().to(device)
        labels_file = checked.get("class_labels_indices.csv")
        self.labels: list[str] | None = _read_labels(labels_file) if labels_file else None
        self.posterior_kind = "sigmoid (multi-label; rows do not sum to 1)"
        self.settings.update({
            "front_end": (f"torch.stft n_fft={opts['window_size']} hop={opts['hop_size']} periodic Hann, centred "
                          f"reflect; power; {opts['mel_bins']} Slaney mel {opts['fmin']:g}-{opts['fmax']:g} Hz; "
                          f"10*log10(max(mel, {AMIN:g}))"),
            "dc_removal": "per-clip mean subtracted (as audioldm_eval)",
            "short_clips": f"zero-padded at the end to {MIN_SAMPLES} samples (as audioldm_eval)",
            "crop": "none: whole clip, clip-level max+mean pooling over time",
            "embedding": "ReLU(fc1), 2048-d",
            "posteriors": "sigmoid(fc_audioset), 527 AudioSet classes",
        })

    @torch.no_grad()
    def _run(self, audios: list[Audio]) -> tuple[np.ndarray, np.ndarray]:
        waves = []
        for a in audios:
            x = self.prepare(a)
            x = x - x.mean()
            if x.shape[0] < MIN_SAMPLES:
                x = np.pad(x, (0, MIN_SAMPLES - x.shape[0]))
            waves.append(x)
        emb = np.zeros((len(waves), self.dim), np.float32)
        logits = np.zeros((len(waves), self.net.fc_audioset.out_features), np.float32)
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(waves):  # equal lengths batch together; no padding changes a clip's pooling
            by_length.setdefault(w.shape[0], []).append(i)
        for idx in by_length.values():
            for s in range(0, len(idx), BATCH):
                part = idx[s:s + BATCH]
                batch = torch.from_numpy(np.stack([waves[i] for i in part])).to(self.device)
                e, lg = self.net(batch)
                emb[part], logits[part] = e.cpu().numpy(), lg.cpu().numpy()
        return emb, logits

    def embed_and_logits(self, audios: list[Audio]) -> tuple[np.ndarray, np.ndarray]:
        """Both outputs from one pass: embeddings [N, 2048] and logits [N, 527], float32."""
        return self._run(audios)

    def embed(self, audios: list[Audio]) -> np.ndarray:
        """[N, 2048] float32 clip embeddings (ReLU(fc1))."""
        return self._run(audios)[0]

    def logits(self, audios: list[Audio]) -> np.ndarray:
        """[N, 527] float32 pre-sigmoid class scores (audioldm_eval computes KL/IS from these)."""
        return self._run(audios)[1]

    def posteriors(self, audios: list[Audio]) -> np.ndarray:
        """[N, 527] float32 per-class probabilities sigmoid(logits), each in (0, 1)."""
        return (1.0 / (1.0 + np.exp(-self._run(audios)[1].astype(np.float64)))).astype(np.float32)


def _read_labels(checked: CheckedFile) -> list[str]:
    """AudioSet display names from ``class_labels_indices.csv`` (columns index, mid, display_name)."""
    with open(checked.path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != CLASSES or any("display_name" not in r for r in rows):
        raise ModelError(f"{checked.path}: expected {CLASSES} rows with a display_name column, found {len(rows)}")
    return [r["display_name"] for r in rows]
