"""``foley train codec``: train our RVQ codec and write it as a transformers ``EncodecModel`` folder.

Training pieces: the ``EncodecModel`` encoder/decoder (SEANet convolutions + LSTM) with a
vector-quantize-pytorch ``ResidualVQ`` in place of transformers' inference-only quantizer (EMA codebook
updates, k-means initialisation, dead-code replacement, commitment loss, quantizer dropout); at export the
learnt codebooks are copied into the ``EncodecModel``'s own codebook buffers, which quantise identically
(nearest neighbour in Euclidean distance). Losses: :mod:`foley.codec.losses`. No weight EMA: the EMA
codebooks track the live encoder, and an averaged encoder would no longer match them.

Runs on the training harness (:mod:`foley.train.solver`, manual optimisation of the generator and the
discriminator): checkpoints every ``save_every`` steps in ``<run>/codec/ckpt``; an exact resume after a kill.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..fsutil import write_json_atomic
from ..train.solver import NumpyRandomness, Solver
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


class CodecModule(torch.nn.Module):
    """The ``EncodecModel`` and its training ``ResidualVQ`` as one module (checkpointed as ``net.*``, ``rvq.*``);
    ``forward`` is :func:`codec_forward` (one call for a process-parallel wrapper)."""

    def __init__(self, net, rvq):
        super().__init__()
        self.net, self.rvq = net, rvq

    def forward(self, x: torch.Tensor):
        return codec_forward(self.net, self.rvq, x)


class CodecSolver(Solver):
    """The waveform codec GAN (``[codec]``, ``kind = "encodec"``) on the training harness, optimised manually:
    per step the generator (reconstruction + commitment, plus hinge adversarial and feature matching from
    ``adv_start``; AdamW betas 0.5/0.9, gradient clip 10), then the discriminator (hinge loss, its own AdamW).
    k-means codebook initialisation and a step-0 baseline in :meth:`begin`; no weight EMA (see the module)."""

    stage = section = "codec"
    sampling = "loader"
    manual_optimization = True
    defaults = {**DEFAULTS, **TRAIN_DEFAULTS}

    def finished(self) -> bool:
        return (self.final / CODEC_META).exists()

    def build(self) -> None:
        from transformers import EncodecModel

        from ..errors import FoleyError

        r, out = self.settings, self.out
        net = EncodecModel(codec_config(r)).train()
        init_weights(net)
        self.model = CodecModule(net, build_rvq(r).train())
        sr = self.sr = int(r["sample_rate"])
        self.disc = MultiScaleSTFTDiscriminator(sr, filters=int(r["disc_filters"])).train()
        self.recon = ReconstructionLoss(sr)
        self.optimizer = torch.optim.AdamW(net.parameters(), lr=float(r["lr"]), betas=(0.5, 0.9))
        self.opt_d = torch.optim.AdamW(self.disc.parameters(), lr=float(r["disc_lr"]), betas=(0.5, 0.9))
        self.hop = net_hop(r)
        self.crop = max(self.hop, int(round(float(r["crop_seconds"]) * sr / self.hop)) * self.hop) / sr
        ds = _dataset(self.manifests, self.recipe, r, self.crop, "train", out)
        if len(ds) == 0:
            raise FoleyError("the training split is empty: the manifests hold too few clips")
        valid = _dataset(self.manifests, self.recipe, r, float(r["valid_seconds"]), "valid", out)
        self.valid_x = _valid_batch(valid, r)
        self.data = ds
        self.batch_size = min(self.batch_size, len(ds))

    def collate(self, items: list) -> torch.Tensor:
        return pick_channel(torch.stack([it["audio"] for it in items]))

    def extra_state(self) -> dict:
        extra = {"disc": self.disc, "opt_d": self.opt_d}
        if self.accelerator.num_processes == 1:
            extra["crops"] = NumpyRandomness(self.data._generator)
        return extra

    def begin(self) -> None:
        self.train_disc, self.opt_d = self.accelerator.prepare(self.disc, self.opt_d)
        if self.step == 0:
            net, rvq = self.model.net, self.model.rvq
            init_codebooks(rvq, lambda: net.encoder(self.next_batch()).transpose(1, 2), self.settings,
                           int(round(self.crop * self.sr)), self.hop)
            self.log({"step": 0, "valid": evaluate(net, rvq, self.valid_x)})  # the baseline

    def train_step(self, x: torch.Tensor) -> dict:
        r = self.settings
        y, _, commit = self.train_model(x)
        rec, parts = self.recon(y, x)
        loss = rec + float(r["commit_weight"]) * commit
        adversarial = self.step >= int(r["adv_start"])
        if adversarial:
            d_loss, adv, fm = adversarial_losses(self.train_disc, x, y)
            loss = loss + float(r["adv_weight"]) * adv + float(r["fm_weight"]) * fm
            parts.update(adv=adv.item(), fm=fm.item(), disc=d_loss.item())
        self.optimizer_step(loss, self.optimizer, list(self.model.net.parameters()), 10.0)
        if adversarial:
            self.optimizer_step(d_loss, self.opt_d, list(self.disc.parameters()), None)
        return {"loss": loss.detach(), "rec": rec.detach(), "commit": commit.detach(), **parts}

    def validate(self) -> dict:
        metrics = evaluate(self.model.net, self.model.rvq, self.valid_x)
        best = metrics[max(metrics, key=lambda k: float(k.split("_")[1]))]
        print(f"step {self.step}: valid mel distance {best['mel_distance']:.3f}, SI-SDR {best['si_sdr']:.1f} dB")
        return {"valid": metrics}

    def preview(self, step: int) -> None:
        _preview(self.model.net, self.model.rvq, self.valid_x, self.dir / "previews", step)

    def export(self, dest: Path) -> Path:
        net, rvq = self.model.net, self.model.rvq
        sync_codebooks(net, rvq)
        meta = {"recipe": self.recipe.get("name"), "steps": self.step, "trained_on": [str(m) for m in self.manifests],
                "licence": self.recipe.get("licence", "unknown")}
        FoleyCodec(net, meta=meta).save(dest, dtype=self.settings.get("export_dtype", "float32"))
        write_json_atomic(self.dir / "valid.json", evaluate(net, rvq, self.valid_x))
        return dest


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
    return CodecSolver(manifests, recipe, out).run()


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
