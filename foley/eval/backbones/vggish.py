"""VGGish (Hershey et al. 2017) for FAD, loading the torchvggish state dict ``vggish-10086976.pth``.

Layout (keys as in harritaylor/torchvggish): ``features`` is a VGG stack of 3x3 convolutions
(64, M, 128, M, 256, 256, M, 512, 512, M; ``features.0/3/6/8/11/13``) and ``embeddings`` three
linear layers 12288 -> 4096 -> 4096 -> 128 (``embeddings.0/2/4``), each followed by a ReLU.

Front end (as Google's ``vggish_input``/``mel_features``): 16 kHz mono, 25 ms periodic-Hann frames
every 10 ms without centring, |rfft| of size 512, 64 HTK mel bands 125-7500 Hz (triangles linear in
mel, DC bin zero), ``log(mel + 0.01)``, cut into non-overlapping 0.96 s examples of 96 x 64.

Outputs: ``vggish`` gives the raw 128-d output of the last linear layer *before* its ReLU and
without PCA (what frechet_audio_distance and audioldm_eval use for FAD: ``use_pca=False,
use_activation=False``); ``vggish-pca`` gives the AudioSet release features (after the ReLU, PCA
whitening with ``vggish_pca_params-970ea276.pth``, clipped to [-2, 2] and quantised to 0..255).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from ...audio import Audio
from .common import BaseBackbone, check_keys, load_strict, read_checkpoint
from .spec import BackboneSpec, CheckedFile

STFT_WINDOW_SECONDS = 0.025
STFT_HOP_SECONDS = 0.010
MEL_BANDS = 64
MEL_MIN_HZ, MEL_MAX_HZ = 125.0, 7_500.0
LOG_OFFSET = 0.01
EXAMPLE_SECONDS = 0.96          # 96 frames of 10 ms, no overlap between examples
EMBEDDING_SIZE = 128
QUANTIZE_RANGE = (-2.0, 2.0)
PCA_VECTORS, PCA_MEANS = "pca_eigen_vectors", "pca_means"
CONV_LAYOUT = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")
BATCH_EXAMPLES = 64


class VGGishNet(nn.Module):
    """The VGGish network with torchvggish's parameter names.

    Input log-mel examples [B, 1, 96, 64] (frames, bands); output [B, 128] before the final ReLU.
    """

    def __init__(self, frames: int = 96, bands: int = MEL_BANDS):
        super().__init__()
        layers: list[nn.Module] = []
        channels, pools = 1, 0
        for v in CONV_LAYOUT:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                pools += 1
            else:
                layers += [nn.Conv2d(channels, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = int(v)
        self.features = nn.Sequential(*layers)
        flat = channels * (frames >> pools) * (bands >> pools)
        self.embeddings = nn.Sequential(nn.Linear(flat, 4096), nn.ReLU(True), nn.Linear(4096, 4096),
                                        nn.ReLU(True), nn.Linear(4096, EMBEDDING_SIZE), nn.ReLU(True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)                                # [B, 512, 6, 4]
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)   # TF's NHWC flattening order
        return self.embeddings[:-1](x)                      # pre-ReLU 128-d


def vggish_mel_matrix(sample_rate: int, n_bins: int, n_mels: int = MEL_BANDS,
                      fmin: float = MEL_MIN_HZ, fmax: float = MEL_MAX_HZ) -> np.ndarray:
    """VGGish's mel weights [n_bins, n_mels]: HTK mel scale, triangles linear in mel, DC bin zero."""
    # Hand-written: librosa/torchaudio build HTK triangles linear in Hz, which differs from VGGish.
    def to_mel(hz):
        return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)

    bins_mel = to_mel(np.linspace(0.0, sample_rate / 2.0, n_bins))[:, None]
    edges = np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2)
    lower = (bins_mel - edges[:-2]) / (edges[1:-1] - edges[:-2])
    upper = (edges[2:] - bins_mel) / (edges[2:] - edges[1:-1])
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights[0, :] = 0.0
    return weights.astype(np.float32)


class VGGishFrontEnd:
    """Mono waveform [T] at ``sample_rate`` -> log-mel examples [n, 96, 64]."""

    def __init__(self, sample_rate: int):
        self.win = int(round(sample_rate * STFT_WINDOW_SECONDS))
        self.hop = int(round(sample_rate * STFT_HOP_SECONDS))
        self.n_fft = 1 << int(np.ceil(np.log2(self.win)))
        self.example = int(round(EXAMPLE_SECONDS / STFT_HOP_SECONDS))
        self.window = torch.hann_window(self.win, periodic=True, dtype=torch.float64)
        self.mel = torch.from_numpy(vggish_mel_matrix(sample_rate, self.n_fft // 2 + 1)).double()
        self.min_samples = self.win + (self.example - 1) * self.hop  # exactly one example

    def __call__(self, wave: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.asarray(wave, np.float64))
        if x.shape[0] < self.min_samples:  # shorter than one example: zero-pad to one
            x = torch.nn.functional.pad(x, (0, self.min_samples - x.shape[0]))
        frames = x.unfold(0, self.win, self.hop) * self.window           # [n, win]
        mag = torch.fft.rfft(frames, n=self.n_fft).abs()                 # [n, n_fft/2+1]
        log_mel = torch.log(mag @ self.mel + LOG_OFFSET)                 # [n, 64]
        examples = log_mel.unfold(0, self.example, self.example)         # [k, 64, 96]
        return examples.transpose(1, 2).float()                          # [k, 96, 64]


class VGGishBackbone(BaseBackbone):
    """VGGish embeddings: ``embed`` [N, 128] (mean over examples), ``embed_frames`` [n_i, 128] each."""

    def __init__(self, spec: BackboneSpec, checked: Mapping[str, CheckedFile], device: str = "cpu"):
        super().__init__(spec, checked, device)
        files = list(checked.values())
        main = files[0]
        self.net = VGGishNet()
        load_strict(self.net, read_checkpoint(main), str(main.path), "VGGish (torchvggish)")
        self.net.eval().to(device)
        self.postprocess = bool(spec.options.get("postprocess", False))
        if self.postprocess:
            pca = checked[spec.files[1].name]
            self.pca_matrix, self.pca_means = _load_pca(pca)
        self.front = VGGishFrontEnd(self.sample_rate)
        self.settings.update({
            "front_end": (f"{STFT_WINDOW_SECONDS * 1000:g} ms periodic Hann / {STFT_HOP_SECONDS * 1000:g} ms hop, "
                          f"|rfft {self.front.n_fft}|, {MEL_BANDS} HTK mel {MEL_MIN_HZ:g}-{MEL_MAX_HZ:g} Hz, "
                          f"log(mel + {LOG_OFFSET})"),
            "example_seconds": EXAMPLE_SECONDS, "example_hop_seconds": EXAMPLE_SECONDS,
            "short_clips": "zero-padded to one example",
            "output": ("after ReLU, PCA-whitened, clipped to [-2, 2], quantised to 0..255" if self.postprocess
                       else "last linear layer before ReLU, no PCA"),
            "pooling": "embed: mean over examples; embed_frames: one row per example",
        })

    @torch.no_grad()
    def embed_frames(self, audios: list[Audio]) -> list[np.ndarray]:
        """One float32 array [n_i, 128] per audio: one row per 0.96 s example (FAD's unit)."""
        examples = [self.front(self.prepare(a)) for a in audios]
        counts = [e.shape[0] for e in examples]
        if not examples:
            return []
        flat = torch.cat(examples)[:, None]                 # [sum n_i, 1, 96, 64]
        out = torch.cat([self._forward(flat[i:i + BATCH_EXAMPLES].to(self.device))
                         for i in range(0, flat.shape[0], BATCH_EXAMPLES)]).cpu().numpy()
        return [part.astype(np.float32) for part in np.split(out, np.cumsum(counts)[:-1])]

    def embed(self, audios: list[Audio]) -> np.ndarray:
        """[N, 128] float32: each audio's examples averaged."""
        frames = self.embed_frames(audios)
        if not frames:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([f.mean(axis=0) for f in frames]).astype(np.float32)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = self.net(x)
        if not self.postprocess:
            return raw
        pca = (torch.relu(raw) - self.pca_means.to(raw)) @ self.pca_matrix.to(raw).T
        lo, hi = QUANTIZE_RANGE
        return torch.round((pca.clamp(lo, hi) - lo) * (255.0 / (hi - lo)))


def _load_pca(checked: CheckedFile) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA matrix [128, 128] and means [128] from ``vggish_pca_params-970ea276.pth``."""
    state = dict(read_checkpoint(checked))
    if PCA_MEANS in state and tuple(np.shape(state[PCA_MEANS])) == (EMBEDDING_SIZE, 1):
        state[PCA_MEANS] = np.asarray(state[PCA_MEANS]).reshape(-1)  # stored as a column vector
    check_keys({PCA_VECTORS: (EMBEDDING_SIZE, EMBEDDING_SIZE), PCA_MEANS: (EMBEDDING_SIZE,)}, state,
               str(checked.path), "VGGish PCA parameters")
    return (torch.as_tensor(np.asarray(state[PCA_VECTORS]), dtype=torch.float32),
            torch.as_tensor(np.asarray(state[PCA_MEANS]), dtype=torch.float32))
