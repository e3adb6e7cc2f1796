"""Train the neural vocoder on audio manifests: multi-resolution STFT + L1 log-mel losses, EMA, resume.

``train_vocoder(manifests, recipe, out)`` (recipe section ``[vocoder]``; ``foley train ldm --stages vocoder``), or
``python -m foley.vocoder.train --data M.jsonl [--data M2.jsonl] --out runs --steps 8000``.

A stage of the training harness (:mod:`foley.train.solver`): ``<out>/vocoder/`` holds ``ckpt/last.pt`` (exact
resume), ``log.jsonl`` (losses by step, and the Griffin-Lim baseline on the same validation clips),
``train_config.json`` and ``final/`` (the EMA weights as a ``save_pretrained`` folder). Training losses use the
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
from ..train.loop import append_log
from ..train.solver import NumpyRandomness, Solver
from .griffinlim import griffin_lim
from .neural import NeuralVocoder

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


VOCODER_DEFAULTS = {"steps": 8000, "batch_size": 16, "segment_seconds": 1.0, "lr": 1e-3, "weight_decay": 0.01,
                    "warmup_steps": 200, "ema_decay": 0.999, "mel_weight": 1.0, "gain_db": [-12.0, 3.0],
                    "valid_clips": 32, "model_config": {}, "mel": {}}


class VocoderSolver(Solver):
    """The ``[vocoder]`` stage on the training harness: mono ``segment_seconds`` crops drawn with replacement,
    a random gain in ``gain_db``, multi-resolution STFT + ``mel_weight`` x L1 log-mel, AdamW (betas 0.8/0.99)
    with a linear warm-up then cosine to a tenth, gradient clip 1, torch ``AveragedModel`` EMA (exported)."""

    stage = section = "vocoder"
    sampling = "randint"
    ema_kind = "averaged"
    defaults = VOCODER_DEFAULTS

    def build(self) -> None:
        from ..data.dataset import ClipDataset

        r = self.settings
        self.mel_cfg = MelConfig.from_dict(r["mel"]) if r.get("mel") else MelConfig()
        a = self.recipe.get("audio", {})
        cache = Path(a["cache_dir"]) if a.get("cache_dir") else self.out / "cache"
        seconds = float(r["segment_seconds"])
        self.valid = _valid_batch(self.manifests, self.mel_cfg, seconds, int(r["valid_clips"]), cache)
        self.clips = ClipDataset(self.manifests, sample_rate=self.mel_cfg.sample_rate, channels=1,
                                 clip_seconds=seconds, split="train", cache_dir=cache, seed=self.seed)
        self.data = _SkipUnreadable(self.clips, self.log_path)
        self.model = NeuralVocoder(mel=self.mel_cfg.to_dict(), **(r.get("model_config") or {}))
        lr, warmup = float(r["lr"]), int(r["warmup_steps"])
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=float(r["weight_decay"]),
                                           betas=(0.8, 0.99))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: _lr_at(s, self.steps, lr, warmup) / lr)
        self.criterion = VocoderLoss(self.mel_cfg, float(r["mel_weight"]), TRAIN_FFT_SIZES)

    def collate(self, items: list) -> torch.Tensor:
        return crop_to_hop(torch.stack([it["audio"][0] for it in items]), self.mel_cfg)

    def extra_state(self) -> dict:
        return {"crops": NumpyRandomness(self.clips._generator)} if self.accelerator.num_processes == 1 else {}

    def begin(self) -> None:
        if not self.is_main:
            return
        write_json_atomic(self.dir / "train_config.json", {"manifests": [str(m) for m in self.manifests],
                                                           "seed": self.seed, **self.settings,
                                                           "mel": self.mel_cfg.to_dict()})
        self.log({"step": self.step, "event": "start", "steps": self.steps})
        if self.valid is None:
            self.log({"step": self.step, "note": "no held-out clips in the manifests: validation skipped"})
        elif self.step == 0:
            gl = spectral_distance(griffin_lim(log_mel(self.valid, self.mel_cfg), self.mel_cfg, 32), self.valid,
                                   self.mel_cfg)
            self.log({"step": 0, "griffin_lim_32": vars(gl), "valid_clips": len(self.valid)})

    def train_step(self, wave: torch.Tensor) -> dict:
        lo, hi = (float(g) for g in self.settings["gain_db"])
        wave = wave * 10.0 ** ((lo + (hi - lo) * torch.rand(wave.shape[0], 1, device=wave.device)) / 20.0)
        with torch.no_grad():
            mel = log_mel(wave, self.mel_cfg)
        loss, parts = self.criterion(self.train_model(mel), wave)
        return {"loss": loss, **parts}

    def validate(self) -> dict:
        if self.valid is None:
            return {}
        d = spectral_distance(self.model(log_mel(self.valid, self.mel_cfg)), self.valid, self.mel_cfg)
        print(f"step {self.step}: valid mrstft {d.mrstft:.4f} mel_l1 {d.mel_l1:.4f}")
        return {"valid": vars(d)}

    def export(self, dest: Path) -> Path:
        with self.ema_weights():
            save_folder(self.model, dest)
        return dest


def train_vocoder(manifests: list[Path], recipe: dict, out: Path) -> Path:
    """Train (or resume) a :class:`NeuralVocoder` (recipe section ``[vocoder]``, see :data:`VOCODER_DEFAULTS`)
    on the manifests' clips; returns the EMA folder ``<out>/vocoder/final``."""
    return VocoderSolver(manifests, recipe, out).run()


def main() -> None:
    import typer

    def cli(data: list[Path] = typer.Option(..., "--data", help="JSONL manifest (repeatable)"),
            out: Path = typer.Option(..., "--out", help="run folder (vocoder/: checkpoint, log, final/)"),
            steps: int = 8000, batch_size: int = 16, segment_seconds: float = 1.0, lr: float = 1e-3,
            seed: int = 0, resume: bool = True, log_every: int = 25, save_every: int = 250,
            valid_every: int = 250, num_threads: int = 1):
        """Train the neural vocoder (resumes from OUT/vocoder/ckpt/last.pt when present)."""
        if not resume:
            shutil.rmtree(out / VocoderSolver.stage, ignore_errors=True)
        recipe = {"seed": seed, "vocoder": {"steps": steps, "batch_size": batch_size,
                                            "segment_seconds": segment_seconds, "lr": lr},
                  "train": {"threads": num_threads, "log_every": log_every, "save_every": save_every,
                            "valid_every": valid_every}}
        folder = train_vocoder(data, recipe, out)
        print(f"EMA vocoder written to {folder}")

    typer.run(cli)


if __name__ == "__main__":
    main()
