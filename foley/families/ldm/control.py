"""The control adapter of the latent-diffusion family: ``foley train control --from starter --data M.jsonl``.

A ControlNet (diffusers ``ControlNetModel.from_unet``: a trainable copy of the UNet's encoder whose zero-initialised
outputs are added to the frozen UNet's skip connections) reads the five control curves of :mod:`foley.curves` as
image-like planes on the latent grid (:func:`planes`). It is trained on curves measured from the training audio
itself by the same analyzers that check a generated sound (no labels), each curve dropped at random so any subset
works, pitch and brightness given absolute or relative (shape only) at random.

Stages in ``<run>/``: ``windows`` (training windows of the base's corpora: the VAE's latent posterior mean, the five
curves on the latent grid, the captions; resumable chunks) and ``control`` (:class:`ControlSolver` on the shared
training harness). The result is ``<model folder>/control/`` (ControlNet weights in float16 + ``control.json``),
which the model's sampler uses whenever a request carries target curves (``--control``, ``--like``, or shape words
of the prompt through the prior).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ... import curves as cv
from ...errors import FoleyError
from ...fsutil import write_json_atomic
from ...train.chunks import load_chunks, write_chunks
from ...train.control import window_order
from ...train.loop import warmup_cosine
from ...train.solver import Solver
from .controlnet import CHANNELS, ENCODING, RELATIVE_FLAGS, frame_seconds, planes, residuals

DEFAULTS = {"windows": 6000, "valid": 256, "chunk": 64, "seconds": None}


# --- stage 1: training windows ---------------------------------------------------------------------------------------
def _settings(recipe: dict) -> dict:
    return {**DEFAULTS, **(recipe.get("windows") or {})}


@torch.no_grad()
def make_windows(base: Path, manifests: list[Path], recipe: dict, out: Path, say=print) -> Path:
    """Stage ``windows``: ``<out>/windows/chunk-NNNNN.pt`` with latent means [B, C, H, W] (float16), curve values and
    strengths [B, 5, W] (float32, input space, absolute), captions. The windows are spread evenly over the
    manifests (each manifest's share in proportion to the square root of its size, so a large corpus does not
    drown the others); the first ``valid`` windows are held out. Resumable by chunk."""
    from ...audio import Audio
    from ...data.dataset import ClipDataset
    from ...data.manifest import clip_captions
    from .model import LatentAudioModel
    from .train import _mels

    s = _settings(recipe)
    d = Path(out) / "windows"
    if (d / "done.json").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    model = LatentAudioModel.from_folder(base)
    seconds = float(s["seconds"] or model.cfg.window_seconds)
    rate = model.cfg.mel.sample_rate
    width = model.latent_frames(seconds)
    spf = frame_seconds(model)
    sets = []
    for m in manifests:
        if not Path(m).exists():
            raise FoleyError(f"{m}: manifest not found")
        sets.append(ClipDataset([m], sample_rate=rate, channels=model.cfg.channels, clip_seconds=seconds, split="all",
                                seed=int(recipe.get("seed", 0))))
    total, chunk = int(s["windows"]) + int(s["valid"]), int(s["chunk"])
    order, shares = window_order([len(x) for x in sets], total, int(recipe.get("seed", 0)))

    def make(c: int) -> dict:
        items = [(sets[k], sets[k][i]) for k, i in order[c * chunk:(c + 1) * chunk]]
        audio = torch.stack([it["audio"] for _, it in items])
        z = model.vae.encode(model.cfg.space.encode(_mels(audio, model.cfg.mel))).latent_dist.mean
        vals, strs = np.zeros((len(items), len(cv.NAMES), width)), np.zeros((len(items), len(cv.NAMES), width))
        for b, (_, it) in enumerate(items):
            measured = cv.measure(Audio(it["audio"].numpy(), rate))
            for i, name in enumerate(cv.NAMES):
                vals[b, i], strs[b, i] = cv.on_grid(measured[name], seconds, width, spf)
        return {"latents": (z * model.vae.config.scaling_factor).half(), "values": torch.from_numpy(vals).float(),
                "strength": torch.from_numpy(strs).float(),
                "captions": [clip_captions(ds.clips[it["index"]]) for ds, it in items]}

    minutes = write_chunks(d, math.ceil(total / chunk), make, "control windows", total, say=say)
    write_json_atomic(d / "done.json", {"windows": total, "valid": int(s["valid"]), "seconds": seconds,
                                        "minutes": minutes,
                                        "width": width, "base": str(base),
                                        "manifests": [str(m) for m in manifests],
                                        "shares": {str(m): int(n) for m, n in zip(manifests, shares, strict=True)}})
    return d


def _load_windows(d: Path) -> dict:
    return load_chunks(d, "training windows; run the windows stage first")


# --- stage 2: the adapter ---------------------------------------------------------------------------------------------
class ControlSolver(Solver):
    """Stage ``control``: a ControlNet copied from the base's UNet, trained with the UNet frozen on the diffusion loss
    of the windows' latents given their captions and their own measured curves (each kept with ``keep``, pitch and
    brightness made relative with ``relative``, captions dropped with ``cfg_dropout``)."""

    stage = section = "control"
    defaults = {"lr": 2e-4, "weight_decay": 0.0, "steps": 8000, "warmup": 100, "ema_decay": 0.999,
                "batch_size": 16, "keep": 0.5, "relative": 0.5, "cfg_dropout": 0.1, "min_snr_gamma": 5.0,
                "embedding_channels": [16]}

    def __init__(self, base: Path, recipe: dict, out: Path):
        super().__init__([], recipe, out)
        self.base = Path(base)

    def build(self) -> None:
        from diffusers import ControlNetModel, DDPMScheduler

        from .model import LatentAudioModel

        self.lm = LatentAudioModel.from_folder(self.base)
        self.unet = self.lm.unet.float().eval().requires_grad_(False)
        w = _load_windows(self.out / "windows")
        nv = int(_settings(self.recipe)["valid"])
        self.valid = {k: v[:nv] for k, v in w.items()}
        self.train_set = {k: v[nv:] for k, v in w.items()}
        r = self.settings
        self.model = ControlNetModel.from_unet(self.unet, conditioning_channels=CHANNELS,
                                               conditioning_embedding_out_channels=tuple(r["embedding_channels"]))
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=float(r["lr"]),
                                           weight_decay=float(r["weight_decay"]))
        self.scheduler = warmup_cosine(self.optimizer, int(r["warmup"]), self.steps)
        self.noise_sched = DDPMScheduler.from_config(self.lm.scheduler_config)
        self.alphas = self.noise_sched.alphas_cumprod
        self.data = range(self.train_set["latents"].shape[0])
        self.height = self.train_set["latents"].shape[2]

    def collate(self, items: list):
        return torch.tensor(items)

    def conditions(self, part: dict, idx: torch.Tensor, gen: np.random.Generator, keep: float | None = None,
                   rel: float | None = None) -> torch.Tensor:
        """The adapter's inputs [B, CHANNELS, H, W] of windows ``idx``: each curve kept with probability ``keep``
        (else absent), pitch and brightness relative with probability ``rel``."""
        keep = float(self.settings["keep"]) if keep is None else keep
        rel = float(self.settings["relative"]) if rel is None else rel
        out = []
        for i in idx.tolist():
            v, s = part["values"][i].numpy().astype(np.float64), part["strength"][i].numpy().astype(np.float64)
            kept = gen.random(len(cv.NAMES)) < keep
            out.append(planes(v, s * kept[:, None], (gen.random(len(RELATIVE_FLAGS)) < rel).astype(float),
                              self.height))
        return torch.stack(out)

    def loss(self, net, part: dict, idx: torch.Tensor, cond: torch.Tensor, generator=None, timesteps=None,
             drop: torch.Tensor | None = None) -> torch.Tensor:
        z = part["latents"][idx].float()
        noise = torch.randn(z.shape, generator=generator)
        ts = timesteps if timesteps is not None else torch.randint(0, self.noise_sched.config.num_train_timesteps,
                                                                   (len(idx),), generator=generator)
        noisy = self.noise_sched.add_noise(z, noise, ts)
        target = self.noise_sched.get_velocity(z, noise, ts)
        caps = [(part["captions"][i] or [""])[0] for i in idx.tolist()]
        if drop is not None:
            caps = ["" if d else c for c, d in zip(caps, drop.tolist(), strict=True)]
        emb = self.lm.encode_text(caps)
        extra = residuals(net, noisy, ts, emb.tokens, emb.mask, emb.pooled, cond)
        pred = self.unet(noisy, ts, encoder_hidden_states=emb.tokens, class_labels=emb.pooled,
                         encoder_attention_mask=emb.mask, **extra).sample
        snr = self.alphas[ts] / (1 - self.alphas[ts])
        weight = torch.clamp(snr, max=float(self.settings["min_snr_gamma"])) / (snr + 1)
        return (weight * ((pred - target) ** 2).mean(dim=(1, 2, 3))).mean()

    def train_step(self, idx: torch.Tensor) -> dict:
        idx = idx.cpu()
        gen = np.random.default_rng(self.seed * 1_000_003 + self.step)
        cond = self.conditions(self.train_set, idx, gen)
        drop = torch.from_numpy(gen.random(len(idx)) < float(self.settings["cfg_dropout"]))
        # (each window's first caption; the random choice among its captions is the curve dropout's job here)
        return {"loss": self.loss(self.train_model, self.train_set, idx, cond, drop=drop)}

    def validate(self) -> dict:
        """Held-out windows at fixed noise and timesteps: the loss with all five curves and with none (what the
        curves tell the model is the gap)."""
        n = self.valid["latents"].shape[0]
        idx = torch.arange(n)
        ts = torch.linspace(20, 980, n).long()
        out = {}
        for name, keep in (("valid_loss", 1.0), ("valid_loss_none", 0.0)):
            cond = self.conditions(self.valid, idx, np.random.default_rng(7), keep=keep, rel=0.0)
            out[name] = float(self.loss(self.model, self.valid, idx, cond, generator=torch.Generator().manual_seed(1),
                                        timesteps=ts))
        return out

    def export(self, dest: Path) -> Path:
        from .components import save_component

        if self.ema is not None:
            self.ema.copy_to(self.model.parameters())
        import copy

        save_component(copy.deepcopy(self.model).eval().half(), dest)
        return dest


def train_control(base: Path, base_name: str, manifests: list[Path], recipe: dict, run: Path, dest: Path | None = None,
                  force: bool = False, say=print) -> Path:
    """Both stages; the adapter lands in ``dest`` (default ``<base>/control``), written whole or not at all."""
    from ...train.control import run_control

    def card(final: Path, last: dict, windows: dict) -> dict:
        return {"encoding": ENCODING, "curves": list(cv.NAMES), "channels": CHANNELS, "base": base_name,
                "valid_loss": last.get("valid_loss"), "valid_loss_without_curves": last.get("valid_loss_none")}

    return run_control(base, manifests, recipe, run, dest, force, make_windows, ControlSolver, card, say=say)
