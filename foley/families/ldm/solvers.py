"""The latent-diffusion family's training stages as :class:`~foley.train.solver.Solver` subclasses.

``UNetSolver(manifests, recipe, out).run()``: the ``[unet]`` stage (v-prediction with min-SNR weighting on the
pre-encoded latents, caption dropout for guidance, AdamW + warm-up/cosine, EMA); ``VAESolver``: the ``[vae]``
stage (L1 + L2 log-mel reconstruction plus a small KL, EMA). The loop, resume, logging and processes are the
solver's; :mod:`foley.families.ldm.train` keeps the maths and the other stages.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ...errors import FoleyError
from ...train.loop import warmup_cosine
from ...train.solver import Solver
from . import train as T
from .components import default_unet_config, default_vae_config, save_component


class UNetSolver(Solver):
    stage = section = "unet"
    sampling = "randint"
    defaults = {"lr": 2e-4, "weight_decay": 0.01, "steps": 20000, "warmup": 200, "ema_decay": 0.999,
                "batch_size": 16, "cfg_dropout": 0.1, "min_snr_gamma": 5.0}

    def build(self) -> None:
        from diffusers import DDPMScheduler

        from ...text import get_text_encoder

        r, out = self.settings, self.out
        self.lat = torch.load(out / "latents" / "train.pt", weights_only=True)
        self.val = torch.load(out / "latents" / "valid.pt", weights_only=True)
        self.scale = json.loads((out / "latents" / "scale.json").read_text())["scaling_factor"]
        self.text = get_text_encoder()
        self.clap = T.conditioning_clap(self.recipe)
        self.audio_p = float((self.recipe.get("conditioning") or {}).get("audio_p", 0.5))
        if self.clap is not None and self.lat.get("clap") != self.clap.sha256:
            raise FoleyError(f"{out / 'latents'}: encoded without this foley-clap's audio embeddings; delete the "
                             "folder and run the latents stage again")
        self.model = self.new_unet(*self.lat["mean"].shape[1:])
        self.noise_sched = DDPMScheduler.from_config(T.noise_scheduler_config(self.recipe))
        self.alphas = self.noise_sched.alphas_cumprod
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=r["lr"],
                                           weight_decay=r["weight_decay"])
        self.scheduler = warmup_cosine(self.optimizer, int(r["warmup"]), self.steps)
        self.data = range(self.lat["mean"].shape[0])  # batches are latent indices

    def new_unet(self, c: int, h: int, w: int):
        """The UNet to train on latents [c, h, w]: the recipe's architecture, fresh or warm-started (``init``)."""
        from diffusers import UNet2DConditionModel

        r = self.settings
        unet = T._build("unet", UNet2DConditionModel,
                        default_unet_config(c, h, self.text.dim, {**r, "latent_frames": w},
                                            global_dim=self.clap.dim if self.clap is not None else None))
        if r.get("init") and not self.ckpt.exists():
            # a new global condition (sentence vector -> foley-clap) starts its projection afresh
            fresh = ("class_embedding.",) if self.clap is not None else ()
            T._warm_start(unet, "UNet2DConditionModel", Path(r["init"]) / "unet", "unet", skip=fresh)
        return unet

    def train_step(self, idx: torch.Tensor) -> dict:
        idx = idx.cpu()
        b, (c, h, w) = idx.shape[0], self.lat["mean"].shape[1:]
        z = (self.lat["mean"][idx].float() + self.lat["std"][idx].float() * torch.randn(b, c, h, w)) * self.scale
        p_drop = float(self.settings["cfg_dropout"])
        caps, use_audio = [], []
        for i in idx.tolist():
            own = self.lat["captions"][i]
            dropped = self.rng.random() < p_drop
            caps.append("" if dropped or not own else self.rng.choice(own))
            # foley-clap conditioning: the clip's audio embedding for a share of items (all uncaptioned ones)
            use_audio.append(self.clap is not None and not dropped and (not own or self.rng.random() < self.audio_p))
        loss = T._diffusion_loss(self.train_model, self.noise_sched, self.text, z.to(self.accelerator.device), caps,
                                 self.alphas, float(self.settings["min_snr_gamma"]),
                                 global_fn=self._global_fn(idx, caps, use_audio), **self.loss_extras(idx))
        return {"loss": loss}

    def loss_extras(self, idx: torch.Tensor) -> dict:
        """More keyword arguments of the batch's diffusion loss (a fine-tune's teacher for replayed items)."""
        return {}

    def _global_fn(self, idx, caps, use_audio, lat=None):
        """None (the sentence vector), or emb -> foley-clap vectors: text head of the caption, the window's audio
        embedding where ``use_audio``, zero for an empty caption not replaced by audio."""
        if self.clap is None:
            return None
        from .model import global_vectors

        lat = self.lat if lat is None else lat
        audio = lat["clap_audio"][idx].float()
        pick = torch.tensor(use_audio, dtype=torch.bool)[:, None]

        def fn(emb):
            text = global_vectors(self.clap.net.text, emb.pooled, caps).to(audio.dtype)
            return torch.where(pick, audio, text).to(emb.pooled.device)

        return fn

    def validate(self) -> dict:
        """EMA weights, fixed items, noise and timesteps: comparable across steps and runs."""
        g = torch.Generator().manual_seed(1234)
        k = min(64, self.val["mean"].shape[0])
        z = self.val["mean"][:k].float() * self.scale
        ts = torch.linspace(50, 950, k).long()
        caps = [c[0] if c else "" for c in self.val["captions"][:k]]
        gfn = self._global_fn(torch.arange(k), caps, [not c for c in caps], lat=self.val)
        return {"valid_loss": float(T._diffusion_loss(self.model, self.noise_sched, self.text, z, caps, self.alphas,
                                                      float(self.settings["min_snr_gamma"]), generator=g,
                                                      timesteps=ts, global_fn=gfn))}

    def preview(self, step: int) -> None:
        T._preview(self.recipe, self.out, self.model, self.ema, step)

    def export(self, dest: Path) -> Path:
        self.ema.copy_to(self.model.parameters())
        save_component(self.model.eval(), dest)
        return dest


class _VAELoss(torch.nn.Module):
    """The VAE with its training objective as ``forward`` (so a process-parallel wrapper sees one call)."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    # checkpoints hold the bare VAE's weights (as before the solver), not "vae."-prefixed ones
    def state_dict(self, *args, **kwargs):
        return self.vae.state_dict(*args, **kwargs)

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        return self.vae.load_state_dict(state, strict=strict, assign=assign)

    def forward(self, x: torch.Tensor, kl_weight: float):
        post = self.vae.encode(x).latent_dist
        recon = self.vae.decode(post.sample()).sample
        rec = (recon - x).abs().mean() + 0.5 * ((recon - x) ** 2).mean()
        return rec + kl_weight * post.kl().mean(), rec


class CropRandomness:
    """A ClipDataset's crop generator as a checkpointable object (its numpy bit-generator state)."""

    def __init__(self, ds):
        self.ds = ds

    def state_dict(self) -> dict:
        return self.ds._generator().bit_generator.state

    def load_state_dict(self, state: dict) -> None:
        self.ds._generator().bit_generator.state = state


class VAESolver(Solver):
    stage = section = "vae"
    sampling = "loader"
    defaults = {"lr": 4e-4, "steps": 3000, "ema_decay": 0.999, "batch_size": 16, "kl_weight": 1e-6,
                "crop_seconds": 1.024}

    def build(self) -> None:
        from diffusers import AutoencoderKL

        r, a = self.settings, self.recipe.get("audio", {})
        self.mel = T._mel_config(self.recipe)
        channels = a.get("channels", 2)
        ds = T._dataset(self.manifests, self.recipe, r["crop_seconds"], "train", self.out)
        if len(ds) == 0:
            T._loader(ds, 1)  # the one-line "training split is empty" error
        stats = T._mel_stats(ds, self.mel, self.dir / "stats.json", a.get("stereo", "lr"))
        self.space = T._space(stats)
        vae = T._build("vae", AutoencoderKL, default_vae_config(channels, self.mel.n_mels, r))
        if r.get("init") and not self.ckpt.exists():
            T._warm_start_vae(vae, Path(r["init"]), stats)
        self.model = _VAELoss(vae)
        self.optimizer = torch.optim.AdamW(vae.parameters(), lr=r["lr"], weight_decay=0.0)
        self.data = ds
        self.batch_size = min(self.batch_size, len(ds))

    def collate(self, items: list):
        return torch.stack([it["audio"] for it in items])

    def extra_state(self) -> dict:
        return {"crops": CropRandomness(self.data)} if self.accelerator.num_processes == 1 else {}

    def train_step(self, audio: torch.Tensor) -> dict:
        x = self.space.encode(T._mels(audio.cpu(), self.mel)).to(self.accelerator.device)
        loss, rec = self.train_model(x, float(self.settings["kl_weight"]))
        return {"loss": loss, "rec": rec}

    def export(self, dest: Path) -> Path:
        self.ema.copy_to(self.model.parameters())
        save_component(self.model.vae.eval(), dest)
        return dest
