"""Training-free steering (DITTO): optimise a diffusion model's initial noise so the decoded sound's curves match
target curves.

A family gives ``render(noise) -> raw log-mel`` [B, C, n_mels, N] (natural log of mel magnitude, the features
its decoder produces before the vocoder), differentiable with respect to ``noise``, usually a few-step sampler
(DPM-Solver++). :class:`MelCurves` measures the five curves of :mod:`foley.curves` from that log-mel with torch
operations (proxies of the analyzers: loudness, brightness and pan from the mel's pseudo-inverse linear spectrum,
pitch as a soft dominant mel band, density as the shape of the smoothed spectral flux), :func:`objective` compares
them with the targets, and :func:`steer` runs Adam on the noise, keeping it on the Gaussian shell (its norm),
and returns the noise of the best iteration (iteration 0 is the unsteered noise, so steering never returns
a worse loss than none under the loop's sampler).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .analyzers import TREMOLO_BAND
from .curves import DENSITY_SIGMA, NAMES, Targets
from .features import MelConfig, mel_filterbank

# loss scales: an error of this size (in the comparison space) costs 1
SCALES = {"loudness": 6.0, "brightness": 0.5, "pitch": 2.0, "pan": 3.0}
LEVEL_SECONDS = 0.1        # loudness and pan: box smoothing as the analyzers' 100 ms frames
CENTROID_SECONDS = 0.046   # brightness and pitch: the analyzers' STFT frame
ACTIVE_DB = 50.0           # frames this far under the loudest count (soft) for brightness, pitch and pan
PITCH_RANGE = (40.0, 4000.0)  # Hz, as the pitch analyzer's
PITCH_SHARPNESS = 8.0      # pitch proxy: softmax over the mel bands' log magnitude times this (a soft argmax)
DEFAULT_LR = 0.1
CORR_WEIGHT = 2.0            # the (1 - correlation) term against the log(1 + MSE) term: shape first
# density level: log(1 + onsets/s) ~ A log(local mean rise of the log-mel energy) + B, fitted by
# recipes/density_level.py on 153 clips of the training corpora (correlation 0.85 with the onset analyzer's mean);
# it steers a constant density target ("density=steady 6/s", the prior's "rapid" / "sparse"), which has no shape
DENSITY_LEVEL = (0.692, 2.733)
DENSITY_LEVEL_SCALE = 0.5    # in log(1 + onsets/s)
# Texture and tremolo (the prompt's "noisy", "pure-toned", "with tremolo", "steady in volume"; curves.QUALITY_RULES):
# the analyzers' spectral flatness and tremolo depth from the mel proxies below, by least squares on the training
# corpora (`python recipes/quality_levels.py`); a quality is a one-sided target: at least / at most its level.
FLATNESS_FIT = (0.931, -1.611)  # analyzer log(flatness) ~ a * proxy + b (proxy: mel-band log flatness)
TREMOLO_FIT = (0.740, 0.083)  # analyzer tremolo depth ~ a * proxy + b (proxy: the same measure on the mel frames)
QUALITY_SCALES = {"texture": 1.0, "tremolo": 0.1}   # log flatness; depth
QUALITY_MARGINS = {"texture": 1.0, "tremolo": 0.05}  # steered this far past a quality's level: the proxies are read
#                                                    before the vocoder, the analyzers after it


def _smooth(x: torch.Tensor, frames: int) -> torch.Tensor:
    """Moving average over the last axis (odd window of ``frames``, edge-replicated)."""
    k = max(1, int(frames) | 1)
    if k == 1:
        return x
    shape = x.shape
    y = torch.nn.functional.pad(x.reshape(-1, 1, shape[-1]), (k // 2, k // 2), mode="replicate")
    return torch.nn.functional.avg_pool1d(y, k, stride=1).reshape(shape)


def _gauss(x: torch.Tensor, sigma_frames: float) -> torch.Tensor:
    r = int(math.ceil(3 * sigma_frames))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma_frames) ** 2)
    k = (k / k.sum()).view(1, 1, -1)
    shape = x.shape
    y = torch.nn.functional.pad(x.reshape(-1, 1, shape[-1]), (r, r), mode="replicate")
    return torch.nn.functional.conv1d(y, k).reshape(shape)


class MelCurves:
    """Differentiable curves of a raw log-mel [B, C, n_mels, N] under ``cfg``: {name: (values [B, N], active [B, N])}
    per mel frame, values in the comparison space (dB, log2 Hz, log2 Hz, proxy, dB)."""

    def __init__(self, cfg: MelConfig):
        self.cfg = cfg
        fb = torch.from_numpy(mel_filterbank(cfg)).double()
        self.pinv = torch.linalg.pinv(fb).float()                      # [F, n_mels]
        self.freqs = torch.from_numpy(np.fft.rfftfreq(cfg.n_fft, 1.0 / cfg.sample_rate)).float()  # [F]
        lo, hi = PITCH_RANGE
        centres = (fb.float() * self.freqs[None, :]).sum(1) / fb.float().sum(1).clamp(min=1e-12)  # band centres, Hz
        self.pitch_band = (centres >= lo) & (centres <= min(hi, cfg.f_max))
        self.log_centres = torch.log2(centres[self.pitch_band])
        self.frame_rate = cfg.sample_rate / cfg.hop_length

    def frames(self, seconds: float) -> int:
        return max(1, int(round(seconds * self.frame_rate)))

    def __call__(self, logmel: torch.Tensor, names=NAMES) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        mag = torch.exp(logmel)                                             # [B, C, M, N]
        lin = torch.relu(torch.einsum("fm,bcmn->bcfn", self.pinv, mag))     # [B, C, F, N]
        mono = lin.mean(1)                                                  # [B, F, N]
        energy = (mono ** 2).sum(1)                                         # [B, N]
        level = _smooth(energy, self.frames(LEVEL_SECONDS))
        peak = level.amax(-1, keepdim=True).detach().clamp(min=1e-20)
        db = 10 * torch.log10(level + peak * 1e-6)
        rel = (db - 10 * torch.log10(peak)).detach()
        active = torch.sigmoid((rel + ACTIVE_DB) / 3.0)
        out = {}
        if "loudness" in names:
            out["loudness"] = (db, torch.ones_like(db))
        if "brightness" in names:
            k = self.frames(CENTROID_SECONDS)
            num = _smooth((self.freqs[None, :, None] * mono).sum(1), k)
            den = _smooth(mono.sum(1), k).clamp(min=1e-12)
            out["brightness"] = (torch.log2((num / den).clamp(min=1.0)), active)
        if "pitch" in names:  # the analyzer's dominant peak at mel resolution: a soft argmax over the mel bands
            p = torch.softmax(PITCH_SHARPNESS * torch.log(mag.mean(1)[:, self.pitch_band].clamp(min=1e-10)), dim=1)
            f = (p * self.log_centres[None, :, None]).sum(1)
            out["pitch"] = (_smooth(f, self.frames(CENTROID_SECONDS)), active)
        if "density" in names:
            logmono = torch.log(torch.exp(logmel).mean(1).clamp(min=1e-5))  # [B, M, N]
            flux = torch.relu(logmono[..., 1:] - logmono[..., :-1]).mean(1)
            flux = torch.nn.functional.pad(flux, (1, 0))
            out["density"] = (_gauss(flux, DENSITY_SIGMA * self.frame_rate), torch.ones_like(flux))
            e = logmono.mean(1)
            rise = torch.nn.functional.pad(torch.relu(e[..., 1:] - e[..., :-1]), (1, 0))
            a, b = DENSITY_LEVEL
            level = a * torch.log(_gauss(rise, DENSITY_SIGMA * self.frame_rate).clamp(min=1e-6)) + b
            out["density_level"] = (level, torch.ones_like(level))
        if "texture" in names:  # energy-weighted mean over frames of log(geometric / arithmetic mean) of band power
            pw = mag.mean(1) ** 2                                                    # [B, M, N]
            lf = torch.log(pw.clamp(min=1e-20)).mean(1) - torch.log(pw.mean(1).clamp(min=1e-20))
            we = energy.detach() * active.detach()
            a, b = FLATNESS_FIT
            out["texture"] = (a * _wmean(lf, we)[:, None] + b, torch.ones(lf.shape[0], 1))
        if "tremolo" in names:  # the analyzer's measure on the frames' amplitude envelope: its strongest 2-20 Hz line
            env = torch.sqrt(energy + 1e-20)                                     # [B, N]
            n = env.shape[-1]
            t = torch.linspace(-1.0, 1.0, n)
            mean = env.mean(-1, keepdim=True)
            e = env - mean - ((env - mean) * t).sum(-1, keepdim=True) / (t * t).sum().clamp(min=1e-8) * t  # detrend
            win = torch.hann_window(n, periodic=False)
            nfft = 1 << max(4, math.ceil(math.log2(n * 8)))
            spec = torch.fft.rfft(e * win, n=nfft).abs()
            f = torch.fft.rfftfreq(nfft, 1.0 / self.frame_rate)
            band = (f >= TREMOLO_BAND[0]) & (f <= TREMOLO_BAND[1])
            depth = 2 * spec[:, band].amax(-1) / (win.sum().clamp(min=1e-8) * mean[:, 0].clamp(min=1e-10))
            a, b = TREMOLO_FIT
            out["tremolo"] = ((a * depth + b)[:, None], torch.ones(depth.shape[0], 1))
        if "pan" in names:
            if lin.shape[1] >= 2:
                pl = _smooth((lin[:, 0] ** 2).sum(1), self.frames(LEVEL_SECONDS))
                pr = _smooth((lin[:, 1] ** 2).sum(1), self.frames(LEVEL_SECONDS))
                eps = peak * 1e-6
                ild = (10 * torch.log10((pr + eps) / (pl + eps))).clamp(-30.0, 30.0)
            else:
                ild = torch.zeros_like(db)
            out["pan"] = (ild, active)
        return out


def _wmean(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (x * w).sum(-1) / w.sum(-1).clamp(min=1e-8)


def _wcorr(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    am, bm = _wmean(a, w)[..., None], _wmean(b, w)[..., None]
    cov = _wmean((a - am) * (b - bm), w)
    va, vb = _wmean((a - am) ** 2, w), _wmean((b - bm) ** 2, w)
    return cov / torch.sqrt(va * vb + 1e-8)


@dataclass
class FrameTargets:
    """Targets on the mel frames: {name: (values in the comparison space [N], weights [N], relative, varies)}."""

    items: dict
    strength: dict
    qualities: dict = field(default_factory=dict)  # {name: curves.Quality}: whole-sound levels (texture, tremolo)

    @classmethod
    def build(cls, targets: Targets, frames: int, frame_rate: float, duration: float) -> FrameTargets:
        from .curves import to_space

        t = (np.arange(frames) + 0.5) / frame_rate
        items = {}
        for name, c in targets.curves.items():
            v, w = c.at(np.minimum(t, duration), duration)
            s = to_space(name, v)
            w = w * (t < duration)
            varies = bool(np.ptp(s[w > 0]) > 1e-6) if (w > 0).any() else False
            items[name] = (torch.tensor(s, dtype=torch.float32), torch.tensor(w, dtype=torch.float32),
                           c.relative, varies)
        return cls(items, dict(targets.strength), dict(targets.qualities))

    def names(self) -> tuple[str, ...]:
        return (*self.items, *self.qualities)


def objective(measured: dict, targets: FrameTargets) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum over curves of strength x (CORR_WEIGHT (1 - correlation) + log(1 + weighted squared error / scale^2)) per
    item (the log keeps a far-off level from swamping the shape); a moving density target counts by its
    correlation with the flux, a constant one by its level (the calibrated ``density_level``)."""
    total, parts = 0.0, {}
    for name, (tv, tw, relative, varies) in targets.items.items():
        strength = targets.strength.get(name, 1.0)
        if strength <= 0:
            continue
        mv, active = measured[name]
        w = tw[None, :] * active
        loss = torch.zeros(mv.shape[0])
        if varies:
            loss = loss + CORR_WEIGHT * (1 - _wcorr(mv, tv[None, :].expand_as(mv), w))
        if name == "density" and not varies and "density_level" in measured:
            level, _ = measured["density_level"]
            d = level - torch.log1p(tv.clamp(min=0.0))[None, :]
            loss = loss + torch.log1p(_wmean(d ** 2, w) / DENSITY_LEVEL_SCALE ** 2)
        if name != "density":
            d = mv - tv[None, :]
            if relative:
                d = d - _wmean(d, w)[..., None]
            loss = loss + torch.log1p(_wmean(d ** 2, w) / SCALES[name] ** 2)  # far-off levels do not swamp shape
        loss = loss.mean()
        parts[name] = float(loss.detach())
        total = total + strength * loss
    for name, q in targets.qualities.items():  # one-sided: only a level on the wrong side of the target costs
        v = measured[name][0][:, 0]
        margin = QUALITY_MARGINS[name]
        short = torch.relu(q.level + margin - v) if q.sense == ">=" else torch.relu(v - q.level + margin)
        loss = torch.log1p((short / QUALITY_SCALES[name]) ** 2).mean()
        parts[name] = float(loss.detach())
        total = total + targets.strength.get(name, 1.0) * loss
    if not torch.is_tensor(total):
        total = torch.zeros((), requires_grad=True)
    return total, parts


@dataclass
class SteerResult:
    """The optimised noise and the record of the run (for the sidecar)."""

    noise: torch.Tensor
    iterations: int
    losses: list = field(default_factory=list)
    parts: list = field(default_factory=list)
    best: int = 0
    seconds_per_iteration: float = 0.0

    def record(self) -> dict:
        return {"iterations": self.iterations, "best_iteration": self.best,
                "loss_unsteered": round(self.losses[0], 5) if self.losses else None,
                "loss_best": round(self.losses[self.best], 5) if self.losses else None,
                "losses": [round(x, 5) for x in self.losses],
                "curve_losses": {"unsteered": _rounded(self.parts[0]), "best": _rounded(self.parts[self.best])}
                if self.parts else {},
                "seconds_per_iteration": round(self.seconds_per_iteration, 3)}


def steer(render, noise: torch.Tensor, targets: Targets, mel: MelConfig, duration: float, iterations: int,
          lr: float = DEFAULT_LR, on_iteration=None, curves: MelCurves | None = None) -> SteerResult:
    """Optimise ``noise`` for ``iterations`` Adam steps so that ``render(noise)``'s curves match ``targets``.

    ``render(noise) -> raw log-mel [B, C, n_mels, N]`` (differentiable). ``on_iteration(i, n)`` is called after
    each rendering (it may raise to stop). Returns the best noise seen (iteration 0 = ``noise`` itself)."""
    curves = curves or MelCurves(mel)
    x = noise.detach().clone().requires_grad_(True)
    norm = noise.flatten(1).norm(dim=1).view(-1, *[1] * (noise.dim() - 1))
    opt = torch.optim.Adam([x], lr=lr)
    result = SteerResult(noise.detach().clone(), iterations)
    frame_targets = None
    best = math.inf
    spent = 0.0
    for i in range(iterations + 1):
        start = time.perf_counter()
        with torch.set_grad_enabled(i < iterations):
            logmel = render(x)
            if frame_targets is None:
                frame_targets = FrameTargets.build(targets, logmel.shape[-1], curves.frame_rate, duration)
            loss, parts = objective(curves(logmel, frame_targets.names()), frame_targets)
        value = float(loss.detach())
        result.losses.append(value)
        result.parts.append(parts)
        if value < best:
            best, result.best = value, i
            result.noise = x.detach().clone()
        if i < iterations:
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():  # stay on the Gaussian shell: the norm a sample of this size has
                x.mul_(norm / x.flatten(1).norm(dim=1).view_as(norm).clamp(min=1e-8))
            spent += time.perf_counter() - start
        if on_iteration is not None:
            on_iteration(i + 1, iterations + 1)
    result.seconds_per_iteration = spent / max(iterations, 1)
    return result


def _rounded(d: dict) -> dict:
    return {k: round(v, 4) for k, v in d.items()}
