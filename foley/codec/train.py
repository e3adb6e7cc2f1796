"""``foley train codec``: train our RVQ codec and write it as a transformers ``EncodecModel`` folder.

Training pieces: the ``EncodecModel`` encoder/decoder (SEANet convolutions + LSTM) with a
vector-quantize-pytorch ``ResidualVQ`` in place of transformers' inference-only quantizer (EMA codebook
updates, k-means initialisation, dead-code replacement, commitment loss, quantizer dropout); at export the
learnt codebooks are copied into the ``EncodecModel``'s own codebook buffers, which quantise identically
(nearest neighbour in Euclidean distance). Losses: :mod:`foley.codec.losses`. No weight EMA: the EMA
codebooks track the live encoder, and an averaged encoder would no longer match them.

Checkpoints every ``save_every`` steps in ``<run>/codec/ckpt`` and resumes after a kill.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..fsutil import write_json_atomic
from ..train.loop import Checkpointer, append_log, infinite, progress, set_threads
from .config import DEFAULTS, codec_config
from .losses import MultiScaleSTFTDiscriminator, ReconstructionLoss, adversarial_losses, mel_distance, si_sdr
from .model import CODEC_META, FoleyCodec
from .vq import quiet_vq

TRAIN_DEFAULTS = {"crop_seconds": 1.0, "batch_size": 8, "steps": 2000, "lr": 3e-4, "disc_lr": 3e-4,
                  "adv_start": 500, "commit_weight": 1.0, "adv_weight": 1.0, "fm_weight": 2.0,
                  "disc_filters": 8, "codebook_decay": 0.99, "kmeans_iters": 10, "dead_code_threshold": 0.05,
                  "valid_items": 16, "valid_seconds": 2.0}


def settings(recipe: dict) -> dict:
    return {**DEFAULTS, **TRAIN_DEFAULTS, **recipe.get("codec", {})}


def build_rvq(r: dict):
    from vector_quantize_pytorch import ResidualVQ

    quiet_vq()
    return ResidualVQ(dim=int(r["hidden_size"]), num_quantizers=int(r["n_q"]), codebook_size=int(r["codebook_size"]),
                      decay=float(r["codebook_decay"]), kmeans_init=True, kmeans_iters=int(r["kmeans_iters"]),
                      threshold_ema_dead_code=float(r["dead_code_threshold"]), quantize_dropout=True,
                      commitment_weight=1.0)


@torch.no_grad()
def init_weights(net) -> None:
    """Kaiming-normal convolutions (gain 1) with zero biases, written into the weight-norm parametrisation.

    transformers' ``_init_weights`` applies Kaiming to ``conv.weight``, which under weight norm is recomputed
    from ``original0/1``, so PyTorch's default uniform init stays: it halves the signal at every layer and
    the encoder's output starts out nearly independent of its input (codes never vary; training stalls)."""
    for m in net.modules():
        if not isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
            continue
        if hasattr(m, "parametrizations"):
            v, g = m.parametrizations.weight.original1, m.parametrizations.weight.original0
            fan = v[0].numel() if isinstance(m, torch.nn.Conv1d) else v.shape[0] * v.shape[2]
            v.normal_(0.0, fan ** -0.5)
            g.copy_(torch.linalg.vector_norm(v, dim=tuple(range(1, v.dim())), keepdim=True))
        else:
            fan = m.weight[0].numel() if isinstance(m, torch.nn.Conv1d) else m.weight.shape[0] * m.weight.shape[2]
            m.weight.normal_(0.0, fan ** -0.5)
        if m.bias is not None:
            m.bias.zero_()


def codec_forward(net, rvq, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Waves [B, 1, T] (T a multiple of the hop) -> (reconstruction [B, 1, T], codes [B, F, n], commitment)."""
    z = net.encoder(x)                                # [B, D, F]
    q, codes, commit = rvq(z.transpose(1, 2))         # [B, F, D], [B, F, n_q], [n_q]
    y = net.decoder(q.transpose(1, 2))[..., : x.shape[-1]]
    return y, codes, commit.sum()


@torch.no_grad()
def sync_codebooks(net, rvq) -> None:
    """Copy the ResidualVQ codebooks (and their EMA statistics) into the EncodecModel's quantizer."""
    for layer, vq in zip(net.quantizer.layers, rvq.layers, strict=True):
        cb, src = layer.codebook, vq._codebook
        cb.embed.copy_(src.embed[0])
        cb.embed_avg.copy_(src.embed_avg[0])
        cb.cluster_size.copy_(src.cluster_size[0])
        cb.inited.fill_(1.0)


@torch.no_grad()
def init_codebooks(rvq, sample, r: dict, crop_samples: int, hop: int) -> None:
    """k-means initialise every codebook (no quantizer dropout) on about one vector per code; ``sample()``
    gives one training batch of encoder vectors [B, F, D]."""
    per_batch = int(r["batch_size"]) * crop_samples // hop
    batches = max(1, min(16, -(-int(r["codebook_size"]) // per_batch)))
    rvq.quantize_dropout = False
    rvq(torch.cat([sample() for _ in range(batches)]))
    rvq.quantize_dropout = True


def pick_channel(audio: torch.Tensor) -> torch.Tensor:
    """A batch [B, 2, T] -> one random channel per item [B, 1, T] (the codec is mono)."""
    pick = torch.randint(0, audio.shape[1], (audio.shape[0],))
    return audio[torch.arange(audio.shape[0]), pick][:, None]


def _batch(data) -> torch.Tensor:
    """A DataLoader batch [B, 2, T] -> one random channel per item [B, 1, T] (the codec is mono)."""
    return pick_channel(next(data)["audio"])


def _dataset(manifests, recipe, r, seconds, split, out):
    from ..data.dataset import ClipDataset

    a = recipe.get("audio", {})
    cache = Path(a["cache_dir"]) if a.get("cache_dir") else out / "cache"
    return ClipDataset(manifests, sample_rate=int(r["sample_rate"]), channels=2, clip_seconds=seconds, split=split,
                       valid_fraction=a.get("valid_fraction", 0.03), cache_dir=cache, seed=recipe.get("seed", 0))


def _valid_batch(ds, r) -> torch.Tensor:
    n = min(int(r["valid_items"]), len(ds))
    x = torch.stack([ds[i]["audio"][:1] for i in range(n)])  # first channel, first crop: fixed
    hop = net_hop(r)
    return x[..., : (x.shape[-1] // hop) * hop]


def net_hop(r: dict) -> int:
    import math

    return math.prod(int(v) for v in r["ratios"])


@torch.no_grad()
def evaluate(net, rvq, x: torch.Tensor) -> dict:
    """Per codebook count: multi-resolution mel distance and SI-SDR of the reconstructions of ``x``."""
    sync_codebooks(net, rvq)
    codec = FoleyCodec(net)  # switches net to eval
    sr = codec.sample_rate
    out = {}
    for n in range(1, codec.num_quantizers + 1):
        y = codec.decode_tensor(codec.encode_tensor(x, n))[..., : x.shape[-1]]
        out[f"kbps_{codec.bandwidths[n - 1]:.3g}"] = {"mel_distance": mel_distance(y, x, sr), "si_sdr": si_sdr(y, x)}
    net.train()
    return out


def train_codec(manifests, recipe: dict, out: Path) -> Path:
    """Train (or resume) the codec stage; returns the finished codec folder ``<out>/codec/final``.

    ``[codec] kind = "mel"`` trains the mel-domain codec instead (:mod:`foley.codec.train_mel`)."""
    kind = recipe.get("codec", {}).get("kind", "encodec")
    if kind == "mel":
        from .train_mel import train_mel_codec

        return train_mel_codec(manifests, recipe, out)
    if kind != "encodec":
        from ..errors import FoleyError

        raise FoleyError(f"[codec] kind = '{kind}' is unknown; use \"encodec\" (waveform) or \"mel\"")
    r, t = settings(recipe), recipe.get("train", {})
    stage = Path(out) / "codec"
    final = stage / "final"
    if (final / CODEC_META).exists():
        return final
    set_threads(t.get("threads"))
    torch.manual_seed(recipe.get("seed", 0))
    from transformers import EncodecModel

    net = EncodecModel(codec_config(r)).train()
    init_weights(net)
    rvq = build_rvq(r).train()
    sr = int(r["sample_rate"])
    disc = MultiScaleSTFTDiscriminator(sr, filters=int(r["disc_filters"])).train()
    recon = ReconstructionLoss(sr)
    opt_g = torch.optim.AdamW(net.parameters(), lr=float(r["lr"]), betas=(0.5, 0.9))
    opt_d = torch.optim.AdamW(disc.parameters(), lr=float(r["disc_lr"]), betas=(0.5, 0.9))
    ckpt = Checkpointer(stage / "ckpt")
    step = ckpt.load(net=net, rvq=rvq, disc=disc, opt_g=opt_g, opt_d=opt_d)
    hop = net_hop(r)
    crop = max(hop, int(round(float(r["crop_seconds"]) * sr / hop)) * hop) / sr
    train_ds = _dataset(manifests, recipe, r, crop, "train", Path(out))
    valid_x = _valid_batch(_dataset(manifests, recipe, r, float(r["valid_seconds"]), "valid", Path(out)), r)
    from ..families.ldm.train import _loader

    data = infinite(_loader(train_ds, int(r["batch_size"])))
    if step == 0:
        init_codebooks(rvq, lambda: net.encoder(_batch(data)).transpose(1, 2), r, int(round(crop * sr)), hop)
        append_log(stage / "log.jsonl", {"step": 0, "valid": evaluate(net, rvq, valid_x)})  # the baseline
    steps, adv_start = int(r["steps"]), int(r["adv_start"])
    bar = progress(steps, step, "codec")
    t0, step0 = time.time(), step
    while step < steps:
        x = _batch(data)
        y, _, commit = codec_forward(net, rvq, x)
        rec, parts = recon(y, x)
        loss = rec + float(r["commit_weight"]) * commit
        adversarial = step >= adv_start
        if adversarial:
            d_loss, adv, fm = adversarial_losses(disc, x, y)
            loss = loss + float(r["adv_weight"]) * adv + float(r["fm_weight"]) * fm
            parts.update(adv=adv.item(), fm=fm.item(), disc=d_loss.item())
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt_g.step()
        if adversarial:
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        step += 1
        bar.update(1)
        bar.set_postfix(rec=f"{float(rec):.3f}", commit=f"{float(commit):.3f}")
        if step % int(t.get("log_every", 50)) == 0:
            append_log(stage / "log.jsonl", {"step": step, "loss": float(loss), "rec": float(rec),
                                             "commit": float(commit), **parts,
                                             "steps_per_s": (step - step0) / (time.time() - t0)})
        if step % int(t.get("valid_every", 500)) == 0 or step == steps:
            metrics = evaluate(net, rvq, valid_x)
            append_log(stage / "log.jsonl", {"step": step, "valid": metrics})
            best = metrics[max(metrics, key=lambda k: float(k.split("_")[1]))]
            bar.write(f"step {step}: valid mel distance {best['mel_distance']:.3f}, SI-SDR {best['si_sdr']:.1f} dB")
        if step % int(t.get("save_every", 250)) == 0 or step == steps:
            ckpt.save(step, net=net, rvq=rvq, disc=disc, opt_g=opt_g, opt_d=opt_d)
        if t.get("preview_every") and step % int(t["preview_every"]) == 0:
            _preview(net, rvq, valid_x, stage / "previews", step)
    bar.close()
    sync_codebooks(net, rvq)
    meta = {"recipe": recipe.get("name"), "steps": step, "trained_on": [str(m) for m in manifests],
            "licence": recipe.get("licence", "unknown")}
    codec = FoleyCodec(net, meta=meta)
    codec.save(final, dtype=r.get("export_dtype", "float32"))
    write_json_atomic(stage / "valid.json", evaluate(net, rvq, valid_x))
    return final


def _preview(net, rvq, x, folder: Path, step: int, items: int = 2) -> None:
    """Reconstructions of the first validation clips at every bitrate, for ears and eyes."""
    from ..audio import Audio

    sync_codebooks(net, rvq)
    codec = FoleyCodec(net)
    for n in range(1, codec.num_quantizers + 1):
        y = codec.decode_tensor(codec.encode_tensor(x[:items], n))
        for i in range(y.shape[0]):
            Audio(y[i].numpy(), codec.sample_rate).save(folder / f"step{step:06d}_{i}_q{n}.wav")
    net.train()
