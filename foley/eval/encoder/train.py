"""Train the foley encoder on labelled manifests: cross-entropy on corpus classes plus attribute heads.

``train_encoder(manifests, recipe, out)`` (recipe section ``[encoder]``), or
``python -m foley.eval.encoder.train --data M1.jsonl --data M2.jsonl --out runs/encoder --steps 3000``.

A stage of the training harness (:mod:`foley.train.solver`): the run folder holds ``cache/`` (log-mel of every
clip) and ``encoder/`` with ``ckpt/last.pt`` (exact resume), ``log.jsonl`` (losses and held-out accuracy by
step), ``train_config.json``, ``valid.json`` (the latest held-out report: accuracy per corpus and head, and the
most confused class pairs) and ``final/`` (the EMA weights as a foley-encoder folder). ``--max-minutes``
(``[train] max_minutes``) stops early, at a step boundary, and still writes everything.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from ...errors import FoleyError
from ...features import MelConfig
from ...fsutil import write_json_atomic
from ...train.solver import NumpyRandomness, Solver
from .data import IGNORE, MelClips, read_clips
from .labels import CORPORA, build_label_space, corpus_of
from .model import EncoderConfig, FoleyEncoder, save_encoder

TOP_CONFUSIONS = 12


def _lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return 0.5 * peak * (1 + np.cos(np.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def _loss(out: dict, main: torch.Tensor, aux: dict, aux_weight: float, smoothing: float) -> torch.Tensor:
    loss = torch.nn.functional.cross_entropy(out["main"], main, label_smoothing=smoothing)
    terms = [torch.nn.functional.cross_entropy(out[h], y, ignore_index=IGNORE)
             for h, y in aux.items() if bool((y != IGNORE).any())]
    if terms:
        loss = loss + aux_weight * torch.stack(terms).mean()
    return loss


@torch.no_grad()
def evaluate_heads(model: FoleyEncoder, data: MelClips, frames: int, batch_size: int = 64) -> dict:
    """Held-out report on the first ``frames`` of every clip: accuracy overall, per corpus and per
    auxiliary head, and the most frequent (true -> predicted) confusions of the main head."""
    model.eval()
    preds, trues = [], []
    aux_hits: Counter = Counter()
    aux_n: Counter = Counter()
    for s in range(0, len(data), batch_size):
        idx = list(range(s, min(s + batch_size, len(data))))
        mel, main, aux = data.batch(idx, frames, None)
        out = model(torch.from_numpy(mel))
        preds += out["main"].argmax(1).tolist()
        trues += main.tolist()
        for h, y in aux.items():
            keep = y != IGNORE
            aux_hits[h] += int((out[h].argmax(1).numpy()[keep] == y[keep]).sum())
            aux_n[h] += int(keep.sum())
    p, t = np.array(preds), np.array(trues)
    labels = data.labels
    per_corpus = {}
    for c in CORPORA:
        sel = np.array([corpus_of(labels[k]) == c for k in t])
        if sel.any():
            per_corpus[c] = {"accuracy": float((p[sel] == t[sel]).mean()), "n": int(sel.sum()),
                             "corpus_accuracy": float(np.mean([corpus_of(labels[k]) == c for k in p[sel]]))}
    confusions = Counter((labels[a], labels[b]) for a, b in zip(t, p, strict=True) if a != b)
    per_class = {labels[k]: {"accuracy": float((p[t == k] == k).mean()), "n": int((t == k).sum())}
                 for k in sorted(set(t.tolist()))}
    return {"accuracy": float((p == t).mean()), "n": int(len(t)), "per_corpus": per_corpus, "per_class": per_class,
            "aux_accuracy": {h: {"accuracy": aux_hits[h] / aux_n[h], "n": aux_n[h]} for h in aux_n if aux_n[h]},
            "top_confusions": [{"true": a, "predicted": b, "count": n}
                               for (a, b), n in confusions.most_common(TOP_CONFUSIONS)],
            "crop": f"first {frames} mel frames of each clip, silence-padded"}


ENCODER_DEFAULTS = {"steps": 3000, "batch_size": 32, "lr": 2e-3, "min_seconds": 2.0, "max_seconds": 4.0,
                    "valid_fraction": 0.05, "max_clip_seconds": 20.0, "channels": [16, 64, 128, 256, 256],
                    "embed_dim": 128, "aux_weight": 0.5, "label_smoothing": 0.05, "gain_db": 12.0,
                    "ema_decay": 0.995, "warmup_steps": 150}


class EncoderSolver(Solver):
    """The ``[encoder]`` stage on the training harness: class-balanced draws (with replacement) of random-length
    crops with a random gain, cross-entropy on the classes plus the attribute heads, AdamW + warm-up/cosine,
    gradient clip 5, torch ``AveragedModel`` EMA of weights and BatchNorm statistics (exported)."""

    stage = section = "encoder"
    ema_kind = "averaged"
    ema_buffers = True
    clip = 5.0
    defaults = ENCODER_DEFAULTS

    def finished(self) -> bool:
        return (self.final / "model.safetensors").exists()

    def build(self) -> None:
        import json

        r = self.settings
        self.t0 = time.time()
        mel_cfg = MelConfig()
        clips = read_clips(self.manifests)
        labels, aux = build_label_space(clips)
        if len(labels) < 2:
            raise FoleyError(f"{', '.join(map(str, self.manifests))}: fewer than two labelled classes; the encoder "
                             "needs synth 'recipe', music 'family' or real-SFX 'category' labels")
        self.run_config = {"data": [str(d) for d in self.manifests], "seed": self.seed, **r, "labels": labels,
                           "aux": aux}
        prev = self.dir / "train_config.json"
        if self.ckpt.exists() and prev.exists():
            old = json.loads(prev.read_text())
            if old.get("labels") != labels or old.get("aux") != aux:
                raise FoleyError(f"{self.dir}: the run was started with other labels; use another --out or delete "
                                 f"{self.dir}")
        cache, fraction, longest = self.out / "cache", float(r["valid_fraction"]), float(r["max_clip_seconds"])
        self.train_set = MelClips(clips, labels, aux, "train", mel_cfg, longest, fraction, cache, print)
        self.valid_set = MelClips(clips, labels, aux, "valid", mel_cfg, longest, fraction, cache, print)
        print(f"{len(self.train_set)} train / {len(self.valid_set)} valid clips, {len(labels)} classes, heads "
              f"{', '.join(aux)}; skipped {len(self.train_set.skipped) + len(self.valid_set.skipped)} unreadable; "
              f"data ready in {time.time() - self.t0:.0f} s")
        config = EncoderConfig(labels=labels, aux=aux, mel=mel_cfg, channels=[int(c) for c in r["channels"]],
                               embed_dim=int(r["embed_dim"]))
        self.model = FoleyEncoder(config)
        lr, warmup = float(r["lr"]), int(r["warmup_steps"])
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=1e-2)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: float(_lr_at(s, self.steps, lr, warmup)) / lr)  # a float: weights_only
        self.frames = tuple(mel_cfg.frames_for(float(r[k])) for k in ("min_seconds", "max_seconds"))
        # the global batch (crop length, clips) is drawn alike in every process; one process crops with it too
        self.draws = np.random.default_rng([self.seed, 0])
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        self.crops = self.draws if world == 1 else np.random.default_rng([self.seed, 1, rank])
        self.report: dict = {}

    def extra_state(self) -> dict:
        return {"draws": NumpyRandomness(self.draws)}

    def begin(self) -> None:
        if self.is_main:
            write_json_atomic(self.dir / "train_config.json", self.run_config)

    def train_step(self, _batch) -> dict:
        r, world, rank = self.settings, self.accelerator.num_processes, self.accelerator.process_index
        frames = int(self.draws.integers(self.frames[0], self.frames[1] + 1))
        idx = self.draws.choice(len(self.train_set), size=self.batch_size, p=self.train_set.weights)
        mel, main, aux_y = self.train_set.batch(idx[rank::world], frames, self.crops, float(r["gain_db"]))
        dev = self.accelerator.device
        out = self.train_model(torch.from_numpy(mel).to(dev))
        loss = _loss(out, torch.from_numpy(main).to(dev), {h: torch.from_numpy(y).to(dev) for h, y in aux_y.items()},
                     float(r["aux_weight"]), float(r["label_smoothing"]))
        return {"loss": loss}

    def validate(self) -> dict:
        self.report = evaluate_heads(self.model, self.valid_set, self.frames[1])
        write_json_atomic(self.dir / "valid.json", {"step": self.step, **self.report})
        print(f"step {self.step}: held-out accuracy {self.report['accuracy']:.3f} " + " ".join(
            f"{c} {v['accuracy']:.3f}" for c, v in self.report["per_corpus"].items()))
        return {"valid": self.report}

    def export(self, dest: Path) -> Path:
        with self.ema_weights() as model:
            model.config.info = {"data": self.run_config["data"], "steps": self.step, "batch_size": self.batch_size,
                                 "parameters": sum(p.numel() for p in model.parameters()), "valid": self.report,
                                 "train_seconds": round(time.time() - self.t0, 1)}
            save_encoder(model, dest)
        return dest


def train_encoder(manifests: list[Path], recipe: dict, out: Path) -> Path:
    """Train (or resume) a :class:`FoleyEncoder` (recipe section ``[encoder]``, see :data:`ENCODER_DEFAULTS`)
    on the manifests' labelled clips; returns the EMA encoder folder ``<out>/encoder/final``."""
    return EncoderSolver(manifests, recipe, out).run()


def main() -> None:
    import shutil

    import typer

    def cli(data: list[Path] = typer.Option(..., "--data", help="JSONL manifest (repeatable)"),
            out: Path = typer.Option(..., "--out", help="run folder (cache/, encoder/: checkpoint, log, final/)"),
            steps: int = 3000, batch_size: int = 32, lr: float = 2e-3, min_seconds: float = 2.0,
            max_seconds: float = 4.0, valid_fraction: float = 0.05, max_clip_seconds: float = 20.0,
            channels: str = typer.Option("16,64,128,256,256", help="conv widths, comma-separated"),
            embed_dim: int = 128, aux_weight: float = 0.5, label_smoothing: float = 0.05, gain_db: float = 12.0,
            ema_decay: float = 0.995, warmup_steps: int = 150, seed: int = 0, resume: bool = True,
            log_every: int = 25, valid_every: int = 250, save_every: int = 250,
            max_minutes: float = typer.Option(None, help="stop (and save) after this much wall time"),
            num_threads: int = 1):
        """Train the foley encoder (resumes from OUT/encoder/ckpt/last.pt when present)."""
        if not resume:
            shutil.rmtree(out / EncoderSolver.stage, ignore_errors=True)
        widths = [int(c) for c in channels.split(",") if c.strip()]
        section = {"steps": steps, "batch_size": batch_size, "lr": lr, "min_seconds": min_seconds,
                   "max_seconds": max_seconds, "valid_fraction": valid_fraction, "max_clip_seconds": max_clip_seconds,
                   "channels": widths, "embed_dim": embed_dim, "aux_weight": aux_weight,
                   "label_smoothing": label_smoothing, "gain_db": gain_db, "ema_decay": ema_decay,
                   "warmup_steps": warmup_steps}
        train = {"threads": num_threads, "log_every": log_every, "valid_every": valid_every, "save_every": save_every}
        if max_minutes is not None:
            train["max_minutes"] = max_minutes
        folder = train_encoder(data, {"seed": seed, "encoder": section, "train": train}, out)
        print(f"EMA encoder written to {folder}")

    typer.run(cli)


if __name__ == "__main__":
    main()
