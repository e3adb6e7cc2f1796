"""Train the neural vocoder on audio manifests: multi-resolution STFT + L1 log-mel losses, EMA, resume.

``python -m foley.vocoder.train --data M.jsonl [--data M2.jsonl] --out runs/vocoder --steps 8000``

The run folder holds ``last.pt`` (model, EMA, optimizer, step, RNG: written atomically every
``save_every`` steps and resumed from on start), ``log.jsonl`` (losses by step, and the Griffin-Lim
baseline on the same validation clips), ``train_config.json`` and ``vocoder/`` (the EMA weights as
a ``save_pretrained`` folder, rewritten at every checkpoint and at the end). Training losses use the
cheaper :data:`TRAIN_FFT_SIZES`; validation and the Griffin-Lim baseline use auraloss's default
resolutions, the benchmark's metric.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import AudioError, ManifestError
from ..features import MelConfig, log_mel
from ..fsutil import write_json_atomic
from ..train.loop import Checkpointer, append_log, progress, set_threads
from .griffinlim import griffin_lim
from .neural import NeuralVocoder

FINAL_DIR = "vocoder"


# Training-loss STFT sizes (window = FFT, hop = FFT / 4): ~4x cheaper than auraloss's defaults, whose
# 50-sample hop dominates a CPU step; the benchmark metric keeps auraloss's defaults.
TRAIN_FFT_SIZES = (2048, 1024, 512, 256)


@dataclass
class SpectralDistance:
    """Distances of a reconstruction to its original; lower is better."""

    mrstft: float  # auraloss MultiResolutionSTFTLoss (spectral convergence + log-magnitude L1)
    mel_l1: float  # mean |log_mel(pred) - log_mel(target)| (natural log units)


class VocoderLoss(torch.nn.Module):
    """``loss(pred [B, T], target [B, T]) -> (total, {"mrstft": .., "mel_l1": ..})`` at ``cfg``'s rate.

    ``fft_sizes=None`` uses auraloss's default resolutions (FFT 1024/2048/512, hops 120/240/50).
    """

    def __init__(self, cfg: MelConfig, mel_weight: float = 1.0, fft_sizes: tuple[int, ...] | None = None):
        super().__init__()
        import auraloss

        self.cfg = cfg
        self.mel_weight = mel_weight
        if fft_sizes is None:
            self.mrstft = auraloss.freq.MultiResolutionSTFTLoss()
        else:
            self.mrstft = auraloss.freq.MultiResolutionSTFTLoss(
                fft_sizes=list(fft_sizes), hop_sizes=[n // 4 for n in fft_sizes], win_lengths=list(fft_sizes))

    def forward(self, pred: torch.Tensor, target: torch.Tensor):
        stft = self.mrstft(pred[:, None], target[:, None])
        mel = (log_mel(pred, self.cfg) - log_mel(target, self.cfg)).abs().mean()
        return stft + self.mel_weight * mel, {"mrstft": float(stft.detach()), "mel_l1": float(mel.detach())}


@torch.no_grad()
def spectral_distance(pred: torch.Tensor, target: torch.Tensor, cfg: MelConfig) -> SpectralDistance:
    """auraloss's default multi-resolution STFT distance and the L1 log-mel distance (both [B, T])."""
    _, parts = VocoderLoss(cfg)(pred.float(), target.float())
    return SpectralDistance(**parts)


def crop_to_hop(wave: torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """Trim [..., T] to a whole number of hops, so ``vocoder(log_mel(w))`` has ``w``'s length."""
    return wave[..., : (wave.shape[-1] // cfg.hop_length) * cfg.hop_length]


def _lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to a tenth (a function of the step, so resume needs no state)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, steps - warmup))
    return lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t)))


def save_folder(model: NeuralVocoder, folder: Path) -> None:
    """``save_pretrained`` into a temporary sibling, then move each file atomically into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        for f in tmp.iterdir():
            f.chmod(0o644)  # some writers create 0600 temporaries; a shipped model is world-readable
            os.replace(f, folder / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _valid_batch(manifests, cfg: MelConfig, segment_seconds: float, n: int, cache_dir):
    """Up to ``n`` held-out clips, spread over the manifests, as one batch [n, T] (T a multiple of hop);
    None when nothing is held out."""
    from ..data.dataset import ClipDataset

    try:
        ds = ClipDataset(manifests, sample_rate=cfg.sample_rate, channels=1, clip_seconds=segment_seconds,
                         split="valid", cache_dir=cache_dir)
    except ManifestError:  # a single-clip manifest holds nothing out
        return None
    return crop_to_hop(torch.stack([ds[i]["audio"][0] for i in spread_indices(len(ds), n)]), cfg)


def spread_indices(total: int, n: int) -> list[int]:
    """``min(n, total)`` indices evenly spread over ``range(total)`` (so every manifest is sampled)."""
    n = min(n, total)
    return sorted({int(i * total / n) for i in range(n)}) if n else []


class _SkipUnreadable(torch.utils.data.Dataset):
    """A dataset view that replaces an item whose file fails to decode by the next one, and logs it,
    so one corrupt file in a large corpus does not stop a long run."""

    def __init__(self, ds, log_path: Path):
        self.ds, self.log_path, self.skipped = ds, log_path, set()

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int) -> dict:
        for k in range(len(self.ds)):
            i = (index + k) % len(self.ds)
            try:
                return self.ds[i]
            except AudioError as e:
                if i not in self.skipped:
                    self.skipped.add(i)
                    append_log(self.log_path, {"skipped": str(e)})
        raise RuntimeError("no clip of the training set could be decoded")


def train_vocoder(manifests: list[Path], out_dir: Path, *, steps: int = 8000, batch_size: int = 16,
                  segment_seconds: float = 1.0, lr: float = 1e-3, weight_decay: float = 0.01,
                  warmup_steps: int = 200, ema_decay: float = 0.999, mel_weight: float = 1.0,
                  gain_db: tuple[float, float] = (-12.0, 3.0), seed: int = 0, resume: bool = True,
                  log_every: int = 25, save_every: int = 250, valid_every: int = 250, valid_clips: int = 32,
                  num_threads: int | None = None, model_config: dict | None = None,
                  mel_config: MelConfig | None = None, cache_dir: Path | None = None) -> Path:
    """Train a :class:`NeuralVocoder` on mono crops of the manifests' clips; returns the EMA folder.

    Each step takes ``batch_size`` random ``segment_seconds`` crops (at ``mel_config.sample_rate``,
    with a random gain in ``gain_db``), vocodes their log-mel and minimises multi-resolution STFT
    + ``mel_weight`` x L1 log-mel. With ``resume`` (default) an existing ``out_dir/last.pt`` is
    continued from its step; ``steps`` is the total, so re-running after a kill finishes the job.
    """
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    from torch.utils.data import DataLoader, RandomSampler

    from ..data.dataset import ClipDataset

    set_threads(num_threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = mel_config or MelConfig()
    manifests = [Path(m) for m in manifests]
    cache_dir = Path(cache_dir) if cache_dir is not None else out_dir / "cache"
    settings = {"manifests": [str(m) for m in manifests], "steps": steps, "batch_size": batch_size,
                "segment_seconds": segment_seconds, "lr": lr, "weight_decay": weight_decay,
                "warmup_steps": warmup_steps, "ema_decay": ema_decay, "mel_weight": mel_weight,
                "gain_db": list(gain_db), "seed": seed, "model_config": model_config or {},
                "mel": cfg.to_dict(), "num_threads": num_threads}
    write_json_atomic(out_dir / "train_config.json", settings)

    torch.manual_seed(seed)
    model = NeuralVocoder(mel=cfg.to_dict(), **(model_config or {}))
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.8, 0.99))
    ckpt = Checkpointer(out_dir)
    log_path = out_dir / "log.jsonl"
    step = ckpt.load(model=model, ema=ema, optimizer=opt) if resume else 0
    if step == 0 and log_path.exists():
        log_path.unlink()  # a fresh run starts a fresh log
    append_log(log_path, {"step": step, "event": "start", "steps": steps})

    criterion = VocoderLoss(cfg, mel_weight, TRAIN_FFT_SIZES)
    valid = _valid_batch(manifests, cfg, segment_seconds, valid_clips, cache_dir)
    if valid is None:
        append_log(log_path, {"step": step, "note": "no held-out clips in the manifests: validation skipped"})
    elif step == 0:
        gl = spectral_distance(griffin_lim(log_mel(valid, cfg), cfg, 32), valid, cfg)
        append_log(log_path, {"step": 0, "griffin_lim_32": vars(gl), "valid_clips": len(valid)})

    train_ds = ClipDataset(manifests, sample_rate=cfg.sample_rate, channels=1, clip_seconds=segment_seconds,
                           split="train", cache_dir=cache_dir, seed=seed * 1_000_003 + step)
    train_ds = _SkipUnreadable(train_ds, log_path)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)  # a resumed run draws new crops
    sampler = RandomSampler(train_ds, replacement=True, num_samples=max(1, steps - step) * batch_size,
                            generator=gen)
    loader = iter(DataLoader(train_ds, batch_size=batch_size, sampler=sampler, num_workers=0))
    lo, hi = gain_db

    bar = progress(total=steps, initial=step, desc="vocoder")
    running: list[dict] = []  # per-step losses since the last log line
    model.train()
    while step < steps:
        wave = crop_to_hop(next(loader)["audio"][:, 0], cfg)
        gain = 10.0 ** ((lo + (hi - lo) * torch.rand(wave.shape[0], 1, generator=gen)) / 20.0)
        wave = wave * gain
        with torch.no_grad():
            mel = log_mel(wave, cfg)
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr, warmup_steps)
        loss, parts = criterion(model(mel), wave)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update_parameters(model)
        step += 1
        running.append({"loss": float(loss.detach()), **parts})
        bar.update(1)
        bar.set_postfix(loss=f"{sum(r['loss'] for r in running) / len(running):.4f}")
        if step % log_every == 0 or step == steps:
            means = {k: sum(r[k] for r in running) / len(running) for k in running[0]}
            append_log(log_path, {"step": step, **means, "lr": opt.param_groups[0]["lr"]})
            running = []
        if valid is not None and (step % valid_every == 0 or step == steps):
            ema.module.eval()
            with torch.no_grad():
                d = spectral_distance(ema.module(log_mel(valid, cfg)), valid, cfg)
            append_log(log_path, {"step": step, "valid": vars(d)})
            bar.write(f"step {step}: valid mrstft {d.mrstft:.4f} mel_l1 {d.mel_l1:.4f}")
        if step % save_every == 0 or step == steps:
            ckpt.save(step, model=model, ema=ema, optimizer=opt)
            save_folder(ema.module, out_dir / FINAL_DIR)
    bar.close()
    final = out_dir / FINAL_DIR
    if not (final / "config.json").exists():  # resumed a finished run that never wrote its folder
        save_folder(ema.module, final)
    return final


def main() -> None:
    import typer

    def cli(data: list[Path] = typer.Option(..., "--data", help="JSONL manifest (repeatable)"),
            out: Path = typer.Option(..., "--out", help="run folder (checkpoint, log, final vocoder/)"),
            steps: int = 8000, batch_size: int = 16, segment_seconds: float = 1.0, lr: float = 1e-3,
            seed: int = 0, resume: bool = True, log_every: int = 25, save_every: int = 250,
            valid_every: int = 250, num_threads: int = 1):
        """Train the neural vocoder (resumes from OUT/last.pt when present)."""
        folder = train_vocoder(data, out, steps=steps, batch_size=batch_size, segment_seconds=segment_seconds,
                               lr=lr, seed=seed, resume=resume, log_every=log_every, save_every=save_every,
                               valid_every=valid_every, num_threads=num_threads)
        print(f"EMA vocoder written to {folder}")

    typer.run(cli)


if __name__ == "__main__":
    main()
