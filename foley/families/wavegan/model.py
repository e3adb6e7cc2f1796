"""WaveGAN networks (Donahue et al. 2019), conditioned on a text vector, and their folder.

- :class:`GeneratorNet`: latent ``z`` (``latent_dim``) and a projected MiniLM sentence vector -> dense ->
  ``[width * 2**(layers-1), base_length]`` -> ``layers`` transposed 1-D convolutions (kernel 25, stride 4, ReLU,
  FiLM from the condition after each) -> ``tanh`` -> a mono wave of ``base_length * 4**layers`` samples
  (16 x 4^5 = 16384: 1.024 s at 16 kHz, one forward pass for any batch).
- :class:`DiscriminatorNet`: the mirror image (strided convolutions, LeakyReLU 0.2, phase shuffle of +-n
  samples after every layer but the last) with a projection head on the condition (Miyato & Koyama 2018).
- :func:`phase_shuffle`: WaveGAN's random shift of each item's feature maps by -n..n samples (reflect padding),
  so the discriminator cannot tell fakes by the transposed convolutions' periodic phase artifacts.

A folder (``foley.json`` + ``generator.safetensors``, the config embedded in its metadata) holds the EMA
generator only: the discriminators are training state (in the run's checkpoints).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ...errors import ModelError
from .config import KERNEL, STRIDE, WEIGHTS, FolderConfig, WaveGANConfig  # noqa: F401  (re-exported)


def phase_shuffle(x: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each item of ``x`` [B, C, T] by its own random k in -n..n samples (reflect padding); shape kept."""
    if n <= 0 or not x.shape[-1] > n:
        return x
    t = x.shape[-1]
    k = torch.randint(-n, n + 1, (x.shape[0],), generator=generator).tolist()
    padded = F.pad(x, (n, n), mode="reflect")
    return torch.stack([padded[i, :, n - s:n - s + t] for i, s in enumerate(k)])


class GeneratorNet(nn.Module):
    """z [B, latent_dim], condition [B, cond_dim] -> wave [B, 1, samples] in (-1, 1)."""

    def __init__(self, cfg: WaveGANConfig):
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels(cfg.width)
        self.cond = nn.Linear(cfg.cond_dim, cfg.cond_proj)
        self.dense = nn.Linear(cfg.latent_dim + cfg.cond_proj, ch[0] * cfg.base_length)
        outs = ch[1:] + [1]
        # hand-written WaveGAN stack (no library ships it): transposed conv k=25, s=4, exact x4 length
        self.ups = nn.ModuleList(nn.ConvTranspose1d(i, o, KERNEL, STRIDE, padding=11, output_padding=1)
                                 for i, o in zip(ch, outs, strict=True))
        self.films = nn.ModuleList(nn.Linear(cfg.cond_proj, 2 * o) for o in outs[:-1])

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c = F.relu(self.cond(cond))
        h = self.dense(torch.cat([z, c], dim=-1)).view(z.shape[0], -1, self.cfg.base_length)
        h = F.relu(h)
        for i, up in enumerate(self.ups):
            h = up(h)
            if i < len(self.films):
                scale, shift = self.films[i](c).unsqueeze(-1).chunk(2, dim=1)
                h = F.relu(h * (1 + scale) + shift)
        return torch.tanh(h)


class DiscriminatorNet(nn.Module):
    """wave [B, 1, samples], condition [B, cond_dim] -> (logits [B], feature maps)."""

    def __init__(self, cfg: WaveGANConfig):
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels(cfg.disc_width)[::-1]  # d, 2d, ..., 16d
        self.convs = nn.ModuleList(nn.Conv1d(i, o, KERNEL, STRIDE, padding=11)
                                   for i, o in zip([1] + ch[:-1], ch, strict=True))
        self.out = nn.Linear(ch[-1] * cfg.base_length, 1)
        self.embed = nn.Linear(cfg.cond_dim, ch[-1], bias=False)  # projection discriminator

    def forward(self, x: torch.Tensor, cond: torch.Tensor, shuffle: bool = True):
        feats = []
        h = x
        for i, conv in enumerate(self.convs):
            h = F.leaky_relu(conv(h), 0.2)
            feats.append(h)
            if shuffle and i < len(self.convs) - 1:
                h = phase_shuffle(h, self.cfg.phase_shuffle)
        logits = self.out(h.flatten(1)).squeeze(1) + (self.embed(cond) * h.mean(-1)).sum(1)
        return logits, feats


class MelDiscriminator(nn.Module):
    """A spectral discriminator: log-mel frames (bands as channels) -> strided 1-D convolutions (LeakyReLU 0.2) ->
    logits per frame + a projection on the condition. Hand-written: a 1-D conv stack over ~64 bands costs a
    fraction of a 2-D STFT discriminator (EnCodec's took 2.5 s per batch of 32 on two cores)."""

    def __init__(self, cfg: WaveGANConfig, n_fft: int, n_mels: int = 64, width: int = 64, layers: int = 3):
        import librosa

        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        fb = librosa.filters.mel(sr=cfg.sample_rate, n_fft=n_fft, n_mels=n_mels)
        self.register_buffer("fb", torch.from_numpy(fb).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.convs = nn.ModuleList([nn.Conv1d(n_mels, width, 3, padding=1)] +
                                   [nn.Conv1d(width, width, 4, 2, padding=1) for _ in range(layers)])
        self.out = nn.Conv1d(width, 1, 3, padding=1)
        self.embed = nn.Linear(cfg.cond_dim, width, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor):
        z = torch.stft(x[:, 0], self.n_fft, self.hop, window=self.window, return_complex=True)
        spec = z.real.square() + z.imag.square()  # (not |z|^2 via abs: its gradient is NaN at 0)
        h = (torch.log(torch.einsum("mf,bft->bmt", self.fb, spec) + 1e-5) + 5.0) / 4.0
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
            feats.append(h)
        logits = self.out(h).squeeze(1) + (self.embed(cond) * h.mean(-1)).sum(1, keepdim=True)
        return logits, feats


# --- folders ------------------------------------------------------------------------------------------------
def save_folder(net: GeneratorNet, cfg: FolderConfig, dest: str | Path) -> Path:
    """Write ``dest`` (foley.json + generator.safetensors, float32) atomically file by file."""
    from safetensors.torch import save_file

    from ...fsutil import atomic_path, write_json_atomic

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().contiguous().cpu() for k, v in net.state_dict().items()}
    with atomic_path(dest / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"config": json.dumps(asdict(cfg.net))})
    write_json_atomic(dest / "foley.json", cfg.to_json())
    return dest


def load_folder(folder: str | Path) -> tuple[GeneratorNet, FolderConfig]:
    """The generator of a folder, strictly (keys, shapes and the embedded config checked), in eval mode."""
    from ...weights import read_strict

    folder = Path(folder)
    cfg = FolderConfig.read(folder)
    path = folder / WEIGHTS
    if not path.is_file():
        raise ModelError(f"{folder}: no {WEIGHTS}; is this a complete WaveGAN folder?")
    net = GeneratorNet(cfg.net)
    net.load_state_dict(read_strict(path, folder / "foley.json", asdict(cfg.net), net.state_dict()))
    return net.eval().requires_grad_(False), cfg


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between vectors ``a`` and ``b`` (the ends exactly at t = 0 and 1; linear when
    they are (anti)parallel)."""
    if t <= 0:
        return a.clone()
    if t >= 1:
        return b.clone()
    na, nb = a.norm(), b.norm()
    cos = (a @ b / (na * nb).clamp(min=1e-12)).clamp(-1, 1)
    omega = torch.arccos(cos)
    if float(torch.sin(omega)) < 1e-6:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
