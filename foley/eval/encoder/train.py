"""Train the foley encoder on labelled manifests: cross-entropy on corpus classes plus attribute heads.

``python -m foley.eval.encoder.train --data M1.jsonl --data M2.jsonl --out runs/encoder --steps 3000``

The run folder holds ``last.pt`` (model, EMA, optimizer, step, RNG; written atomically every
``save_every`` steps and resumed from on start), ``log.jsonl`` (losses and held-out accuracy by step),
``train_config.json``, ``valid.json`` (the latest held-out report: accuracy per corpus and head, and
the most confused class pairs), ``cache/`` (log-mel of every clip) and ``encoder/`` (the EMA weights as
a foley-encoder folder, rewritten at every checkpoint and at the end). ``--max-minutes`` stops early,
at a step boundary, and still writes everything.
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
from ...train.loop import Checkpointer, append_log, progress, set_threads
from .data import IGNORE, MelClips, read_clips
from .labels import CORPORA, build_label_space, corpus_of
from .model import EncoderConfig, FoleyEncoder, save_encoder

FINAL_DIR = "encoder"
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


def train_encoder(data: list[Path], out: Path, steps: int = 3000, batch_size: int = 32, lr: float = 2e-3,
                  min_seconds: float = 2.0, max_seconds: float = 4.0, valid_fraction: float = 0.05,
                  max_clip_seconds: float = 20.0, channels: tuple[int, ...] = (16, 64, 128, 256, 256),
                  embed_dim: int = 128, aux_weight: float = 0.5, label_smoothing: float = 0.05,
                  gain_db: float = 12.0, ema_decay: float = 0.995, warmup_steps: int = 150, seed: int = 0,
                  resume: bool = True, log_every: int = 25, valid_every: int = 250, save_every: int = 250,
                  max_minutes: float | None = None, num_threads: int = 1) -> Path:
    """Train a :class:`FoleyEncoder` on the manifests' labelled clips; returns the EMA encoder folder."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    set_threads(num_threads)
    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mel_cfg = MelConfig()
    clips = read_clips(data)
    labels, aux = build_label_space(clips)
    if len(labels) < 2:
        raise FoleyError(f"{', '.join(map(str, data))}: fewer than two labelled classes; the encoder needs "
                         "synth 'recipe', music 'family' or real-SFX 'category' labels")
    cfg_run = {"data": [str(d) for d in data], "steps": steps, "batch_size": batch_size, "lr": lr,
               "crop_seconds": [min_seconds, max_seconds], "valid_fraction": valid_fraction,
               "max_clip_seconds": max_clip_seconds, "channels": list(channels), "embed_dim": embed_dim,
               "aux_weight": aux_weight, "label_smoothing": label_smoothing, "gain_db": gain_db,
               "ema_decay": ema_decay, "warmup_steps": warmup_steps, "seed": seed, "num_threads": num_threads,
               "labels": labels, "aux": aux}
    prev = out / "train_config.json"
    if resume and (out / "last.pt").exists() and prev.exists():
        import json

        old = json.loads(prev.read_text())
        if old.get("labels") != labels or old.get("aux") != aux:
            raise FoleyError(f"{out}: the run was started with other labels; use another --out or --no-resume")
    write_json_atomic(prev, cfg_run)
    log = print
    cache = out / "cache"
    train = MelClips(clips, labels, aux, "train", mel_cfg, max_clip_seconds, valid_fraction, cache, log)
    valid = MelClips(clips, labels, aux, "valid", mel_cfg, max_clip_seconds, valid_fraction, cache, log)
    log(f"{len(train)} train / {len(valid)} valid clips, {len(labels)} classes, heads {', '.join(aux)}; "
        f"skipped {len(train.skipped) + len(valid.skipped)} unreadable; data ready in {time.time() - t0:.0f} s")

    torch.manual_seed(seed)
    config = EncoderConfig(labels=labels, aux=aux, mel=mel_cfg, channels=list(channels), embed_dim=embed_dim)
    model = FoleyEncoder(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
    ckpt = Checkpointer(out)
    step = ckpt.load(model=model, ema=ema, optimizer=opt) if resume else 0
    rng = np.random.default_rng([seed, step])
    lo, hi = (mel_cfg.frames_for(s) for s in (min_seconds, max_seconds))
    valid_frames = hi
    log_path = out / "log.jsonl"
    report: dict = {}
    n_params = sum(p.numel() for p in model.parameters())

    def save(at: int) -> None:
        ckpt.save(at, model=model, ema=ema, optimizer=opt)
        ema.module.config.info = {"data": cfg_run["data"], "steps": at, "batch_size": batch_size,
                                  "parameters": n_params, "valid": report,
                                  "train_seconds": round(time.time() - t0, 1)}
        save_encoder(ema.module, out / FINAL_DIR)

    bar = progress(total=steps, initial=step, desc="encoder")
    running: list[float] = []
    model.train()
    while step < steps:
        frames = int(rng.integers(lo, hi + 1))
        idx = rng.choice(len(train), size=batch_size, p=train.weights)
        mel, main, aux_y = train.batch(idx, frames, rng, gain_db)
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr, warmup_steps)
        loss = _loss(model(torch.from_numpy(mel)), torch.from_numpy(main),
                     {h: torch.from_numpy(y) for h, y in aux_y.items()}, aux_weight, label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        ema.update_parameters(model)
        step += 1
        running.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(running):.3f}")
        if step % log_every == 0 or step == steps:
            append_log(log_path, {"step": step, "loss": float(np.mean(running)), "lr": opt.param_groups[0]["lr"],
                                  "seconds": round(time.time() - t0, 1)})
            running = []
        over = max_minutes is not None and time.time() - t0 > 60 * max_minutes
        if step % valid_every == 0 or step == steps or over:
            report = evaluate_heads(ema.module, valid, valid_frames)
            model.train()
            append_log(log_path, {"step": step, "valid": report})
            write_json_atomic(out / "valid.json", {"step": step, **report})
            bar.write(f"step {step}: held-out accuracy {report['accuracy']:.3f} " + " ".join(
                f"{c} {v['accuracy']:.3f}" for c, v in report["per_corpus"].items()))
        if step % save_every == 0 or step == steps or over:
            save(step)
        if over:
            bar.write(f"stopping at step {step}: --max-minutes {max_minutes} reached")
            break
    bar.close()
    final = out / FINAL_DIR
    if not (final / "model.safetensors").exists():  # resumed a finished run that never wrote its folder
        save(step)
    return final


def main() -> None:
    import typer

    def cli(data: list[Path] = typer.Option(..., "--data", help="JSONL manifest (repeatable)"),
            out: Path = typer.Option(..., "--out", help="run folder (checkpoint, log, cache, final encoder/)"),
            steps: int = 3000, batch_size: int = 32, lr: float = 2e-3, min_seconds: float = 2.0,
            max_seconds: float = 4.0, valid_fraction: float = 0.05, max_clip_seconds: float = 20.0,
            channels: str = typer.Option("16,64,128,256,256", help="conv widths, comma-separated"),
            embed_dim: int = 128, aux_weight: float = 0.5, label_smoothing: float = 0.05, gain_db: float = 12.0,
            ema_decay: float = 0.995, warmup_steps: int = 150, seed: int = 0, resume: bool = True,
            log_every: int = 25, valid_every: int = 250, save_every: int = 250,
            max_minutes: float = typer.Option(None, help="stop (and save) after this much wall time"),
            num_threads: int = 1):
        """Train the foley encoder (resumes from OUT/last.pt when present)."""
        widths = tuple(int(c) for c in channels.split(",") if c.strip())
        folder = train_encoder(data, out, steps=steps, batch_size=batch_size, lr=lr, min_seconds=min_seconds,
                               max_seconds=max_seconds, valid_fraction=valid_fraction,
                               max_clip_seconds=max_clip_seconds, channels=widths, embed_dim=embed_dim,
                               aux_weight=aux_weight, label_smoothing=label_smoothing, gain_db=gain_db,
                               ema_decay=ema_decay, warmup_steps=warmup_steps, seed=seed, resume=resume,
                               log_every=log_every, valid_every=valid_every, save_every=save_every,
                               max_minutes=max_minutes, num_threads=num_threads)
        print(f"EMA encoder written to {folder}")

    typer.run(cli)


if __name__ == "__main__":
    main()
