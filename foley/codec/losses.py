"""Codec training losses: multi-resolution mel/STFT reconstruction (auraloss), multi-scale STFT
discriminators with hinge adversarial and feature-matching losses, and the validation metrics.

Waves are [B, 1, T] at the codec's sample rate. STFT sizes are given in seconds and turned into powers of
two at the sample rate, so no setting is tied to one rate.
"""

from __future__ import annotations

import math

import torch
from torch import nn

RECON_WINDOWS = (0.128, 0.064, 0.032, 0.016, 0.008)  # seconds: DAC-style multi-resolution mel loss
DISC_WINDOWS = (0.064, 0.032, 0.016)                  # seconds: EnCodec-style MS-STFT discriminator


def fft_size(seconds: float, sample_rate: int) -> int:
    return 2 ** max(5, round(math.log2(seconds * sample_rate)))


class ReconstructionLoss(nn.Module):
    """Sum over resolutions of auraloss STFT losses (spectral convergence + log-magnitude) on mel bands
    (``n_fft // 8`` bands, at most ``max_mels``), plus an L1 waveform term weighted ``time_weight``."""

    def __init__(self, sample_rate: int, windows=RECON_WINDOWS, max_mels: int = 80, time_weight: float = 0.1):
        import auraloss

        super().__init__()
        self.time_weight = time_weight
        self.losses = nn.ModuleList()
        for w in windows:
            n = fft_size(w, sample_rate)
            self.losses.append(auraloss.freq.STFTLoss(
                fft_size=n, hop_size=n // 4, win_length=n, sample_rate=sample_rate, scale="mel",
                n_bins=min(max_mels, max(8, n // 8)), w_sc=1.0, w_log_mag=1.0))

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """``y`` reconstruction, ``x`` target, both [B, 1, T] -> (loss, parts)."""
        spec = sum(loss(y, x) for loss in self.losses) / len(self.losses)
        time = (y - x).abs().mean()
        return spec + self.time_weight * time, {"spec": spec.item(), "l1": time.item()}


def _wn(conv: nn.Module) -> nn.Module:
    return nn.utils.parametrizations.weight_norm(conv)


class STFTDiscriminator(nn.Module):
    """One scale of EnCodec's MS-STFT discriminator: 2-D convolutions over (time, frequency) of the complex
    STFT (real and imaginary parts as two channels), dilated in time and strided in frequency.
    Hand-written: audiocraft/encodec, which hold it, import torchaudio, which does not import here."""

    def __init__(self, n_fft: int, filters: int = 16, dilations=(1, 2, 4)):
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        layers = [_wn(nn.Conv2d(2, filters, (3, 9), padding=(1, 4)))]
        for d in dilations:
            layers.append(_wn(nn.Conv2d(filters, filters, (3, 9), stride=(1, 2), dilation=(d, 1), padding=(d, 4))))
        layers.append(_wn(nn.Conv2d(filters, filters, (3, 3), padding=(1, 1))))
        self.layers = nn.ModuleList(layers)
        self.post = _wn(nn.Conv2d(filters, 1, (3, 3), padding=(1, 1)))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Wave [B, 1, T] -> (logits [B, 1, N, F'], feature maps)."""
        spec = torch.stft(x[:, 0], self.n_fft, self.hop, window=self.window, return_complex=True)
        z = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # [B, 2, N, F]
        feats = []
        for layer in self.layers:
            z = self.act(layer(z))
            feats.append(z)
        return self.post(z), feats


class MultiScaleSTFTDiscriminator(nn.Module):
    def __init__(self, sample_rate: int, windows=DISC_WINDOWS, filters: int = 16):
        super().__init__()
        self.discs = nn.ModuleList(STFTDiscriminator(fft_size(w, sample_rate), filters) for w in windows)

    def forward(self, x: torch.Tensor):
        return [d(x) for d in self.discs]


def adversarial_losses(disc: MultiScaleSTFTDiscriminator, real: torch.Tensor, fake: torch.Tensor):
    """One pass of real and two of fake -> (discriminator hinge loss, generator hinge loss, feature matching).

    The discriminator loss back-propagates into the discriminator only (``fake`` detached); the generator
    losses into the codec only (the discriminator's parameters are frozen for that pass)."""
    disc.requires_grad_(True)
    real_out = disc(real)
    d_loss = torch.zeros(())
    for (lr, _), (lf, _) in zip(real_out, disc(fake.detach()), strict=True):
        d_loss = d_loss + torch.relu(1 - lr).mean() + torch.relu(1 + lf).mean()
    disc.requires_grad_(False)
    adv, fm, n_feats = torch.zeros(()), torch.zeros(()), 0
    for (lf, ff), (_, fr) in zip(disc(fake), real_out, strict=True):
        adv = adv + torch.relu(1 - lf).mean()
        for a, b in zip(ff, fr, strict=True):
            b = b.detach()
            fm = fm + (a - b).abs().mean() / (b.abs().mean() + 1e-5)
            n_feats += 1
    disc.requires_grad_(True)
    n = len(disc.discs)
    return d_loss / n, adv / n, fm / max(1, n_feats)


@torch.no_grad()
def mel_distance(y: torch.Tensor, x: torch.Tensor, sample_rate: int) -> float:
    """Multi-resolution log-mel L1 distance between waves [B, 1, T] (lower is better)."""
    import auraloss

    total = 0.0
    for w in RECON_WINDOWS:
        n = fft_size(w, sample_rate)
        loss = auraloss.freq.STFTLoss(fft_size=n, hop_size=n // 4, win_length=n, sample_rate=sample_rate,
                                      scale="mel", n_bins=min(80, max(8, n // 8)), w_sc=0.0, w_log_mag=1.0)
        total += float(loss(y, x))
    return total / len(RECON_WINDOWS)


@torch.no_grad()
def si_sdr(y: torch.Tensor, x: torch.Tensor) -> float:
    """Scale-invariant SDR in dB (higher is better), averaged over the batch."""
    import auraloss

    return -float(auraloss.time.SISDRLoss()(y, x))
