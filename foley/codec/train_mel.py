"""``foley train codec`` with ``[codec] kind = "mel"``: train the mel-domain RVQ codec (:mod:`.melcodec`).

Loss: L1 + L2 between the decoder's and the input's normalised log-mel (mean/std measured once on a random
sample of the training crops, ``<run>/codec/mel_stats.json``) plus the ResidualVQ commitment loss; no
adversarial part (the neural vocoder is already trained and stays frozen). Codebooks: EMA updates, k-means
initialisation on the first batches, dead-code re-seeding, quantizer dropout (every 1..n_q works).
Validation every ``valid_every`` steps on fixed held-out crops: per bitrate, the log-mel L1 of the decoded
mel and the multi-resolution mel distance of the vocoded waveform (plus the vocoder's own ceiling: the
original log-mel vocoded). Checkpoints every ``save_every`` steps in ``<run>/codec/ckpt``; resumes after a kill.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..errors import FoleyError
from ..features import MelConfig
from ..fsutil import write_json_atomic
from ..train.loop import Checkpointer, append_log, infinite, optimizer_step, progress, set_threads, warmup_cosine
from .losses import mel_distance
from .melcodec import NET_DEFAULTS, MelCodec, MelCodecNet, load_mel_vocoder
from .model import CODEC_META
from .train import _batch, _dataset, init_codebooks

MEL_TRAIN_DEFAULTS = {"sample_rate": 16000, "vocoder": "models/starter/vocoder", "crop_seconds": 1.024,
                      "batch_size": 16, "steps": 3000, "lr": 1e-3, "warmup": 100, "commit_weight": 1.0,
                      "l2_weight": 1.0, "valid_items": 16, "valid_seconds": 2.0, "stats_items": 256,
                      "export_dtype": "float32"}


def mel_settings(recipe: dict) -> dict:
    return {**NET_DEFAULTS, **MEL_TRAIN_DEFAULTS, **recipe.get("codec", {})}


def net_config(r: dict, mel: MelConfig, stats: dict) -> dict:
    cfg = {k: r[k] for k in NET_DEFAULTS if k not in ("mean", "std")}
    return {**cfg, "mean": float(stats["mean"]), "std": float(stats["std"]), "mel": mel.to_dict()}


def mel_stats(ds, mel: MelConfig, path: Path, items: int, seed: int = 0) -> dict:
    """Mean and std of the raw log-mel of ``items`` random training crops (computed once, then reused)."""
    import json

    from ..features import log_mel

    if path.exists():
        return json.loads(path.read_text())
    idx = np.random.default_rng(seed).permutation(len(ds))[:items]  # all manifests, not the first one's clips
    v = torch.cat([log_mel(ds[int(i)]["audio"], mel).flatten() for i in idx])
    stats = {"mean": float(v.mean()), "std": float(v.std()), "items": len(idx)}
    write_json_atomic(path, stats)
    return stats


def valid_batch(ds, r: dict, hop: int) -> torch.Tensor:
    """First channel, first crop of ``valid_items`` held-out clips spread evenly over the split: [n, 1, T]."""
    n = min(int(r["valid_items"]), len(ds))
    idx = sorted({int(round(i)) for i in np.linspace(0, len(ds) - 1, n)}) if n else []
    x = torch.stack([ds[i]["audio"][:1] for i in idx])
    return x[..., : (x.shape[-1] // hop) * hop]


def mel_loss(net: MelCodecNet, mel: torch.Tensor, r: dict) -> tuple[torch.Tensor, dict]:
    """Normalised log-mel [B, M, N] -> total loss and its parts."""
    y, _, commit = net(mel)
    l1 = (y - mel).abs().mean()
    l2 = (y - mel).pow(2).mean()
    loss = l1 + float(r["l2_weight"]) * l2 + float(r["commit_weight"]) * commit
    return loss, {"l1": l1.item(), "l2": l2.item(), "commit": commit.item()}


@torch.no_grad()
def evaluate(codec: MelCodec, x: torch.Tensor) -> dict:
    """Per bitrate: log-mel L1 (raw natural-log units) and vocoded mel distance; plus the vocoder ceiling."""
    was = codec.net.training
    codec.net.eval()
    sr, target = codec.sample_rate, codec.mel_of(x)
    out = {"vocoder_only": {"mel_distance": mel_distance(codec.vocoder(target)[:, None], x, sr)}}
    for n in range(1, codec.num_quantizers + 1):
        codes = codec.encode_tensor(x, n)
        m = codec.decode_mel(codes)
        y = codec.vocoder(m)[:, None][..., : x.shape[-1]]
        out[f"kbps_{codec.bandwidths[n - 1]:.3g}"] = {"mel_l1": float((m - target).abs().mean()),
                                                       "mel_distance": mel_distance(y, x, sr)}
    codec.net.train(was)
    return out


def train_mel_codec(manifests, recipe: dict, out: Path) -> Path:
    """Train (or resume) the mel codec stage; returns the finished codec folder ``<out>/codec/final``."""
    r, t = mel_settings(recipe), recipe.get("train", {})
    stage = Path(out) / "codec"
    final = stage / "final"
    if (final / CODEC_META).exists():
        return final
    set_threads(t.get("threads"))
    torch.manual_seed(recipe.get("seed", 0))
    sr = int(r["sample_rate"])
    vocoder = load_mel_vocoder(r["vocoder"], MelConfig(sample_rate=sr) if r["vocoder"] == "griffin-lim" else None)
    mel = vocoder.mel_config
    if mel.sample_rate != sr:
        raise FoleyError(f"vocoder {r['vocoder']} is {mel.sample_rate} Hz; the recipe says {sr} Hz")
    hop = mel.hop_length * int(r["stride"])
    crop = max(hop, int(round(float(r["crop_seconds"]) * sr / hop)) * hop) / sr
    train_ds = _dataset(manifests, recipe, r, crop, "train", Path(out))
    stats = mel_stats(train_ds, mel, stage / "mel_stats.json", int(r["stats_items"]), recipe.get("seed", 0))
    net = MelCodecNet(**net_config(r, mel, stats)).train()
    codec = MelCodec(net, vocoder, vocoder_folder=None if r["vocoder"] == "griffin-lim" else r["vocoder"])
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=float(r["lr"]), betas=(0.9, 0.99), weight_decay=0.0)
    steps, warmup = int(r["steps"]), max(1, int(r["warmup"]))
    sched = warmup_cosine(opt, warmup, steps)
    ckpt = Checkpointer(stage / "ckpt")
    step = ckpt.load(net=net, opt=opt, sched=sched)
    valid_x = valid_batch(_dataset(manifests, recipe, r, float(r["valid_seconds"]), "valid", Path(out)), r, hop)
    from ..families.ldm.train import _loader

    data = infinite(_loader(train_ds, int(r["batch_size"])))

    def batch_mel() -> torch.Tensor:
        return net.normalise(codec.mel_of(_batch(data)))

    if step == 0:
        init_codebooks(net.rvq, lambda: net.encoder(batch_mel()).transpose(1, 2), r, int(round(crop * sr)), hop)
        append_log(stage / "log.jsonl", {"step": 0, "valid": evaluate(codec, valid_x)})  # the baseline
    bar = progress(steps, step, "codec")
    t0, step0 = time.time(), step
    params = list(p for p in net.parameters() if p.requires_grad)
    while step < steps:
        loss, parts = mel_loss(net, batch_mel(), r)
        optimizer_step(loss, params, opt, sched, clip=1.0)
        step += 1
        bar.update(1)
        bar.set_postfix(l1=f"{parts['l1']:.3f}", commit=f"{parts['commit']:.3f}")
        if step % int(t.get("log_every", 50)) == 0:
            append_log(stage / "log.jsonl", {"step": step, "loss": loss.item(), **parts,
                                             "lr": sched.get_last_lr()[0],
                                             "steps_per_s": (step - step0) / (time.time() - t0)})
        if step % int(t.get("valid_every", 500)) == 0 or step == steps:
            metrics = evaluate(codec, valid_x)
            append_log(stage / "log.jsonl", {"step": step, "valid": metrics})
            best = metrics[f"kbps_{codec.bandwidths[-1]:.3g}"]
            bar.write(f"step {step}: valid log-mel L1 {best['mel_l1']:.3f}, mel distance {best['mel_distance']:.3f} "
                      f"(vocoder alone {metrics['vocoder_only']['mel_distance']:.3f})")
        if step % int(t.get("save_every", 250)) == 0 or step == steps:
            ckpt.save(step, net=net, opt=opt, sched=sched)
        if t.get("preview_every") and step % int(t["preview_every"]) == 0:
            _preview(codec, valid_x, stage / "previews", step)
    bar.close()
    net.eval()
    codec.meta = {"recipe": recipe.get("name"), "steps": step, "trained_on": [str(m) for m in manifests],
                  "licence": recipe.get("licence", "unknown")}
    metrics = evaluate(codec, valid_x)
    codec.save(final, dtype=str(r["export_dtype"]))
    write_json_atomic(stage / "valid.json", metrics)
    return final


def _preview(codec: MelCodec, x: torch.Tensor, folder: Path, step: int, items: int = 2) -> None:
    """Reconstructions of the first validation clips at every bitrate, for ears and eyes."""
    from ..audio import Audio

    was = codec.net.training
    codec.net.eval()
    for n in range(1, codec.num_quantizers + 1):
        y = codec.decode_tensor(codec.encode_tensor(x[:items], n))
        for i in range(y.shape[0]):
            Audio(y[i].numpy(), codec.sample_rate).save(folder / f"step{step:06d}_{i}_q{n}.wav")
    codec.net.train(was)
