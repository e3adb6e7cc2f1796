"""``foley train codec`` with ``[codec] kind = "mel"``: train the mel-domain RVQ codec (:mod:`.melcodec`).

Loss: L1 + L2 between the decoder's and the input's normalised log-mel (mean/std measured once on a random
sample of the training crops, ``<run>/codec/mel_stats.json``) plus the ResidualVQ commitment loss; no
adversarial part (the neural vocoder is already trained and stays frozen). Codebooks: EMA updates, k-means
initialisation on the first batches, dead-code re-seeding, quantizer dropout (every 1..n_q works).
Validation every ``valid_every`` steps on fixed held-out crops: per bitrate, the log-mel L1 of the decoded
mel and the multi-resolution mel distance of the vocoded waveform (plus the vocoder's own ceiling: the
original log-mel vocoded). Runs on the training harness (:mod:`foley.train.solver`): checkpoints every
``save_every`` steps in ``<run>/codec/ckpt``; an exact resume after a kill.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import FoleyError
from ..features import MelConfig
from ..fsutil import write_json_atomic
from ..train.loop import warmup_cosine
from ..train.solver import NumpyRandomness, Solver
from .losses import mel_distance
from .melcodec import NET_DEFAULTS, MelCodec, MelCodecNet, load_mel_vocoder
from .model import CODEC_META
from .train import _dataset, init_codebooks, pick_channel

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


class MelCodecSolver(Solver):
    """The ``[codec]`` stage with ``kind = "mel"`` on the training harness (:class:`~foley.train.solver.Solver`):
    k-means codebook initialisation and a step-0 baseline in :meth:`begin`, L1 + L2 + commitment per step,
    AdamW (betas 0.9/0.99) + warm-up/cosine, gradient clip 1; the frozen vocoder is not trained."""

    stage = section = "codec"
    sampling = "loader"
    defaults = {**NET_DEFAULTS, **MEL_TRAIN_DEFAULTS}

    def finished(self) -> bool:
        return (self.final / CODEC_META).exists()

    def build(self) -> None:
        r, out = self.settings, self.out
        sr = int(r["sample_rate"])
        griffin = r["vocoder"] == "griffin-lim"
        vocoder = load_mel_vocoder(r["vocoder"], MelConfig(sample_rate=sr) if griffin else None)
        mel = vocoder.mel_config
        if mel.sample_rate != sr:
            raise FoleyError(f"vocoder {r['vocoder']} is {mel.sample_rate} Hz; the recipe says {sr} Hz")
        self.hop = mel.hop_length * int(r["stride"])
        self.crop = max(self.hop, int(round(float(r["crop_seconds"]) * sr / self.hop)) * self.hop) / sr
        ds = _dataset(self.manifests, self.recipe, r, self.crop, "train", out)
        if len(ds) == 0:
            raise FoleyError("the training split is empty: the manifests hold too few clips")
        stats = mel_stats(ds, mel, self.dir / "mel_stats.json", int(r["stats_items"]), self.seed)
        net = MelCodecNet(**net_config(r, mel, stats)).train()
        self.codec = MelCodec(net, vocoder, vocoder_folder=None if griffin else r["vocoder"])
        self.model = net
        self.optimizer = torch.optim.AdamW(net.parameters(), lr=float(r["lr"]), betas=(0.9, 0.99), weight_decay=0.0)
        self.scheduler = warmup_cosine(self.optimizer, max(1, int(r["warmup"])), self.steps)
        self.valid_x = valid_batch(_dataset(self.manifests, self.recipe, r, float(r["valid_seconds"]), "valid", out),
                                   r, self.hop)
        self.data = ds
        self.batch_size = min(self.batch_size, len(ds))

    def collate(self, items: list) -> torch.Tensor:
        return pick_channel(torch.stack([it["audio"] for it in items]))

    def extra_state(self) -> dict:
        return {"crops": NumpyRandomness(self.data._generator)} if self.accelerator.num_processes == 1 else {}

    def batch_mel(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.normalise(self.codec.mel_of(x))

    def begin(self) -> None:
        if self.step == 0:
            net, r = self.model, self.settings
            init_codebooks(net.rvq, lambda: net.encoder(self.batch_mel(self.next_batch())).transpose(1, 2), r,
                           int(round(self.crop * int(r["sample_rate"]))), self.hop)
            self.log({"step": 0, "valid": evaluate(self.codec, self.valid_x)})  # the baseline

    def train_step(self, x: torch.Tensor) -> dict:
        loss, parts = mel_loss(self.train_model, self.batch_mel(x), self.settings)
        return {"loss": loss, **parts}

    def validate(self) -> dict:
        metrics = evaluate(self.codec, self.valid_x)
        best = metrics[f"kbps_{self.codec.bandwidths[-1]:.3g}"]
        print(f"step {self.step}: valid log-mel L1 {best['mel_l1']:.3f}, mel distance {best['mel_distance']:.3f} "
              f"(vocoder alone {metrics['vocoder_only']['mel_distance']:.3f})")
        return {"valid": metrics}

    def preview(self, step: int) -> None:
        _preview(self.codec, self.valid_x, self.dir / "previews", step)

    def export(self, dest: Path) -> Path:
        self.model.eval()
        self.codec.meta = {"recipe": self.recipe.get("name"), "steps": self.step,
                           "trained_on": [str(m) for m in self.manifests],
                           "licence": self.recipe.get("licence", "unknown")}
        metrics = evaluate(self.codec, self.valid_x)
        self.codec.save(dest, dtype=str(self.settings["export_dtype"]))
        write_json_atomic(self.dir / "valid.json", metrics)
        return dest


def train_mel_codec(manifests, recipe: dict, out: Path) -> Path:
    """Train (or resume) the mel codec stage; returns the finished codec folder ``<out>/codec/final``."""
    return MelCodecSolver(manifests, recipe, out).run()


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
