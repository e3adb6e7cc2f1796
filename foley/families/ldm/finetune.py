"""Fine-tuning a latent-diffusion model on the user's sounds: ``foley train finetune --from starter``.

Stages in ``<run>/``: ``vae`` (the base's VAE, statistics and latent scaling adopted unchanged: ``[vae] adopt``),
``latents`` (the user's clips encoded once with it, the held-out clips apart), ``replay`` (with replay: a pool of
the base's own training clips encoded with the same VAE, see :func:`foley.train.finetune.replay_pool`) and
``finetune`` (:class:`FinetuneUNetSolver`: the base's UNet trained further, whole or through LoRA matrices on its
attention and projection layers; MiniLM stays frozen). The result is an adapter folder (``--lora``) or a complete
model folder like the base's, each with its card.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import torch

from ...errors import FoleyError
from ...fsutil import write_json_atomic
from ...train import finetune as F
from . import train as T
from .solvers import UNetSolver

# diffusers' attention blocks: q, k, v, out; the transformer blocks' in/out projections and feed-forward
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2")
LR = (5e-4, 2e-5)  # LoRA, full (full was 5e-5 until replay came: its forgetting was the larger, docs/finetune.md)


class FinetuneUNetSolver(F.FinetuneMixin, UNetSolver):
    """The ``unet`` stage from the base model's UNet (``[finetune] base``), optionally through LoRA."""

    stage = "finetune"
    section = "unet"
    lora_targets = LORA_TARGETS
    items_attr = "lat"

    def finished(self) -> bool:
        return (self.final / "finetune.json").exists()

    def new_unet(self, c: int, h: int, w: int):
        from .components import load_component

        base = Path(self.ft["base"])
        unet = load_component("UNet2DConditionModel", base / "unet").float()
        if unet.config.in_channels != c or unet.config.sample_size[0] != h:
            raise FoleyError(f"{base}: its UNet does not fit the encoded latents ({c}x{h}); delete {self.out} and "
                             "start again")
        self.teacher = None
        if (self.ft.get("replay") or {}).get("target") == "base":  # the base's predictions teach replayed items
            self.teacher = copy.deepcopy(unet).eval().requires_grad_(False)
        return self.adapt(unet)

    def loss_extras(self, idx: torch.Tensor) -> dict:
        taught = self.taught(idx)
        return {} if taught is None else {"teacher": self.teacher.to(self.accelerator.device), "taught": taught}

    def validate(self) -> dict:
        """The held-out clips' windows at fixed timesteps and noise, repeated to 32 items (comparable across steps)."""
        k = self.val["mean"].shape[0]
        idx = torch.arange(k).repeat(max(1, math.ceil(32 / k)))[:max(32, k)]
        g = torch.Generator().manual_seed(1234)
        z = self.val["mean"][idx].float() * self.scale
        ts = torch.linspace(20, 980, len(idx)).long()
        caps = [self.val["captions"][i][0] if self.val["captions"][i] else "" for i in idx.tolist()]
        gfn = self._global_fn(idx, caps, [not c for c in caps], lat=self.val)
        loss = T._diffusion_loss(self.model, self.noise_sched, self.text, z, caps, self.alphas,
                                 float(self.settings["min_snr_gamma"]), generator=g, timesteps=ts, global_fn=gfn)
        return self.held_out({"valid_loss": float(loss)})

    def preview(self, step: int) -> None:
        prompts = (self.recipe.get("train") or {}).get("preview_prompts") or []
        if not prompts:
            return
        if getattr(self, "_preview_gen", None) is None:
            from .pipeline import LDMGenerator

            self._preview_gen = LDMGenerator.from_folder(self.ft["base"])
        gen = self._preview_gen
        with self.ema_weights():
            gen.model.unet = self.model  # the network being trained, EMA weights in place
            F.preview_sheet(gen, prompts, self.dir / "previews", step,
                            duration=min(4.0, float(gen.model.cfg.window_seconds)))

    def export(self, dest: Path) -> Path:
        if self.ema is not None:
            self.ema.copy_to(self.model.parameters())
        card = self.card(self.load_best())
        tmp = F.staging(dest)
        base = Path(self.ft["base"])
        if self.ft.get("rank"):
            from ... import adapters

            card.update(rank=int(self.ft["rank"]), target_modules=sorted(self.lora_config.target_modules))
            adapters.save(self.net, tmp, self.lora_config, card, F.card_text("LoRA adapter", card))
            if self.ft.get("vae_adapter"):
                for name in (adapters.VAE_WEIGHTS, adapters.VAE_CONFIG):
                    shutil.copyfile(Path(self.ft["vae_adapter"]) / name, tmp / name)
        else:
            from .components import save_component
            from .model import FoleyConfig

            shutil.copytree(base, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("README.md", "unet"))
            save_component(copy.deepcopy(self.model).eval().half(), tmp / "unet")
            if self.ft.get("vae_adapter"):  # merged into the copy of the base's VAE, in its own dtype
                from safetensors.torch import load_file

                from ... import adapters
                from .components import WEIGHTS, load_component

                dtype = next(iter(load_file(str(base / "vae" / WEIGHTS)).values())).dtype  # as the base stores it
                vae = load_component("AutoencoderKL", base / "vae").float()
                adapters.merge(vae.decoder, [{"folder": self.ft["vae_adapter"], "scale": 1.0}],
                               weights=adapters.VAE_WEIGHTS, config=adapters.VAE_CONFIG)
                for p in vae.parameters():  # (the module's .to() warns about fp32-only modules it has none of)
                    p.data = p.data.to(dtype)
                save_component(vae.eval(), tmp / "vae")
            cfg = FoleyConfig.load(base / "foley.json")
            cfg.extra = {**cfg.extra, "finetuned_from": card["base"], "recipe": "finetune",
                         "licence": card.get("licence", "unknown")}
            write_json_atomic(tmp / "foley.json", cfg.to_dict())
            (tmp / "README.md").write_text(F.card_text("fine-tuned model", card), encoding="utf-8")
        write_json_atomic(tmp / "finetune.json", card)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        return dest


@torch.no_grad()
def reconstruction(base: Path, manifest: Path, valid_fraction: float, items: int = 12) -> tuple[float, float]:
    """Log-mel SNR (dB) of the base VAE's reconstructions (posterior mean) of the user's clips and of the procedural
    synth corpus the starters were trained on (``items`` windows each)."""
    from ...audio import Audio
    from ...data.dataset import ClipDataset
    from ...data.synth.render import render_clip
    from .components import load_component
    from .model import FoleyConfig

    cfg = FoleyConfig.load(base / "foley.json")
    vae = load_component("AutoencoderKL", base / "vae").float().eval()
    seconds, rate = min(2.048, cfg.window_seconds), cfg.mel.sample_rate

    def snr(waves: torch.Tensor) -> float:
        x = cfg.space.encode(T._mels(waves, cfg.mel))
        y = vae.decode(vae.encode(x).latent_dist.mean).sample
        return F.mel_snr_db(x, y)

    ds = ClipDataset([manifest], sample_rate=rate, channels=cfg.channels, clip_seconds=seconds, split="all",
                     valid_fraction=valid_fraction, seed=0)
    pick = torch.linspace(0, len(ds) - 1, min(items, len(ds))).round().long().unique().tolist()
    user = snr(torch.stack([ds[i]["audio"] for i in pick]))
    ref = []
    for i in range(items):
        a = render_clip(1000 + i, duration=seconds, sample_rate=rate).audio
        a = Audio(a.samples if a.channels == cfg.channels else a.samples.mean(0, keepdims=True).repeat(
            cfg.channels, 0), rate)
        ref.append(torch.from_numpy(a.samples[:, :int(seconds * rate)].copy()))
    return user, snr(torch.stack(ref))


def recipe_for(base: Path, base_name: str, user: F.UserData, opts: dict) -> dict:
    """A fine-tuning recipe from the base's own settings (audio, mel, noise schedule) and the chosen defaults."""
    from .model import FoleyConfig

    cfg = FoleyConfig.load(base / "foley.json")
    sched = json.loads((base / "scheduler" / "scheduler_config.json").read_text())
    steps = int(opts["steps"])
    every = max(5, min(200, steps // 20))
    mean_seconds = user.minutes * 60 / max(1, user.clips)
    conditioning = {"global": "clap", "clap": cfg.conditioning.get("clap")} \
        if cfg.conditioning.get("global") == "clap" else {}
    return {
        "name": f"finetune-{base_name}", "seed": int(opts.get("seed", 0)),
        "audio": {"sample_rate": cfg.mel.sample_rate, "channels": cfg.channels, "window_seconds": cfg.window_seconds,
                  "max_duration": cfg.max_duration, "valid_fraction": user.valid_fraction,
                  "max_window_seconds": cfg.extra.get("max_window_seconds", 12.0)},
        "mel": cfg.mel.to_dict(), "vae": {"adopt": str(base)}, "conditioning": conditioning,
        "latents": {"crops_per_clip": max(1, min(8, math.ceil(mean_seconds / cfg.window_seconds)))},
        "diffusion": {k: sched[k] for k in ("beta_start", "beta_end", "prediction_type") if k in sched},
        "unet": {"steps": steps, "batch_size": int(opts["batch_size"]), "lr": float(opts["lr"]),
                 "warmup": max(1, min(50, steps // 10)), "ema_decay": opts.get("ema_decay", 0.995),
                 "weight_decay": 0.0 if opts.get("rank") else 0.01, "cfg_dropout": 0.1, "min_snr_gamma": 5.0},
        "finetune": {"base": str(base), "rank": opts.get("rank"), "patience": int(opts.get("patience", 4)),
                     "targets": opts.get("targets"), "replay": None},
        "train": {"threads": opts.get("threads"), "log_every": max(1, min(10, every)), "valid_every": every,
                  "save_every": every, "max_minutes": float(opts["minutes"]),
                  "preview_minutes": opts.get("preview_minutes", 3.0),
                  "preview_prompts": list(opts.get("preview_prompts") or user.descriptions[:3])},
    }


def finetune_ldm(user: F.UserData, base: Path, base_name: str, run: Path, opts: dict, say=print) -> Path:
    """Adopt the base VAE, encode the user's clips (and the replay pool of the base's corpora, ``opts["replay"]``),
    report reconstruction, fine-tune; ``<run>/finetune/final``."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    opts = F.settle(user, opts, LR, say)
    recipe = recipe_for(base, base_name, user, opts)
    replay, pool = opts.get("replay"), None
    if replay is not None:
        pool = F.replay_pool(replay, run, user.manifest, int(opts.get("seed", 0)), "VAE", say)
        recipe["finetune"]["replay"] = replay.record()
    if "file names" in user.captions:
        say("captions: " + ("uncaptioned windows also train on their own foley-clap audio embeddings (the base is "
                            "foley-clap conditioned: the CLAP audio-embedding path)" if recipe["conditioning"] else
                            "the CLAP audio-embedding path does not apply (this base is conditioned on MiniLM "
                            "sentence vectors, not foley-clap), so the names are the captions"))
    x, y = reconstruction(base, user.manifest, user.valid_fraction)
    line = F.reconstruction_line(x, y, "VAE", "the procedural synth corpus the starters learnt")
    say(line)
    recipe["card"] = {"name": Path(opts["dest"]).name, "path": str(opts["dest"]),
                      "base": F.base_entry(base, "ldm", base_name),
                      "data": user.summary(), "licence": opts.get("licence") or "unknown",
                      "reconstruction": line, "reconstruction_db": {"user": round(x, 2), "reference": round(y, 2)}}
    if wants_decoder(opts.get("vae") or "off", x, y):
        budget = min(VAE_SHARE * float(opts["minutes"]), VAE_MAX_MINUTES)
        rec = tune_decoder(base, user.manifest, user.valid_fraction, run / "vae-adapter", int(opts.get("rank") or 8),
                           budget, int(opts.get("seed", 0)), say)
        recipe["train"]["max_minutes"] = max(0.5, float(opts["minutes"]) - rec["minutes"])
        recipe["finetune"]["vae_adapter"] = str(run / "vae-adapter") if rec["kept"] else None
        recipe["card"]["vae_adapter"] = rec
    write_json_atomic(run / "recipe.json", recipe)
    T.adopt_vae(base, run / "vae")
    T.encode_latents([user.manifest], recipe, run)
    if pool is not None:
        T.encode_latents([pool], recipe, run, stage="replay", splits=("all",), cache=False)
    return FinetuneUNetSolver([user.manifest], recipe, run).run()


# --- the VAE decoder adapter ------------------------------------------------------------------------------------
# the decoder's convolutions (resnets, up-samplers, in/out) and its mid-block attention: names as diffusers' Decoder
VAE_TARGETS = ("conv_in", "conv1", "conv2", "conv", "conv_out", "to_q", "to_k", "to_v", "to_out.0")
VAE_GAIN_DB = 0.5     # the adapter is kept when the held-out reconstruction improves by at least this much
VAE_MODES = ("auto", "on", "off")
VAE_WINDOWS = 256     # training windows encoded once (random 2 s crops of the user's training clips)
VAE_SHARE, VAE_MAX_MINUTES = 0.2, 5.0  # of the --minutes budget, at most
VAE_MAX_STEPS = 3000


def wants_decoder(mode: str, user_db: float, ref_db: float) -> bool:
    """``--vae``: off (the default: on the GM demo set the adapter gained +0.3 dB, bench/vae_adapter.py), on, or
    auto (on when the user's sounds reconstruct 3 dB or more under the reference)."""
    if mode not in VAE_MODES:
        raise FoleyError(f"--vae {mode}: choose {', '.join(VAE_MODES)}")
    return mode == "on" or (mode == "auto" and user_db < ref_db - 3.0)


def tune_decoder(base: Path, manifest: Path, valid_fraction: float, out: Path, rank: int, minutes: float,
                 seed: int = 0, say=print) -> dict:
    """Train a LoRA adapter (``rank``) on the base VAE's decoder so it reconstructs the user's sounds better; the
    encoder stays frozen, so the latents the UNet learns from and generates are unchanged. L1 on the normalised
    log-mel of random 2 s windows of the training clips, for ``minutes`` (at most :data:`VAE_MAX_STEPS`); the
    held-out clips' log-mel SNR before and after decides whether the adapter is kept (:data:`VAE_GAIN_DB`). Writes
    ``out/`` (the peft weights and config, ``vae.json``); a finished ``out`` is read back instead (resume)."""
    import time

    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from safetensors.torch import save_file

    from ... import adapters
    from ...data.dataset import ClipDataset
    from ...fsutil import atomic_path
    from .components import load_component
    from .model import FoleyConfig

    record_path = out / "vae.json"
    if record_path.exists():
        return json.loads(record_path.read_text())
    cfg = FoleyConfig.load(base / "foley.json")
    vae = load_component("AutoencoderKL", base / "vae").float().eval()
    seconds, rate = min(2.048, cfg.window_seconds), cfg.mel.sample_rate

    def mels(split: str, n: int) -> torch.Tensor:
        ds = ClipDataset([manifest], sample_rate=rate, channels=cfg.channels, clip_seconds=seconds, split=split,
                         valid_fraction=valid_fraction, seed=seed)
        if not len(ds):
            raise FoleyError(f"{manifest}: no {split} clips for the VAE decoder adapter")
        idx = [i % len(ds) for i in range(n if split == "train" else min(n, len(ds)))]  # train: cycle to n
        return cfg.space.encode(T._mels(torch.stack([ds[i]["audio"] for i in idx]), cfg.mel))

    torch.manual_seed(seed)
    with torch.no_grad():
        x_train, x_valid = mels("train", VAE_WINDOWS), mels("valid", 64)
        z_train, z_valid = (vae.encode(x).latent_dist.mean for x in (x_train, x_valid))

    def snr() -> float:
        with torch.no_grad():
            return F.mel_snr_db(x_valid, vae.decode(z_valid).sample)

    before = snr()
    config = LoraConfig(r=rank, lora_alpha=rank, target_modules=list(VAE_TARGETS), lora_dropout=0.0)
    inject_adapter_in_model(config, vae.decoder)
    params = [p for n, p in vae.decoder.named_parameters() if "lora_" in n]
    for n, p in vae.named_parameters():
        p.requires_grad_("lora_" in n)
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    start, steps = time.monotonic(), 0
    while time.monotonic() - start < minutes * 60 and steps < VAE_MAX_STEPS:
        i = torch.randint(0, len(x_train), (8,), generator=g)
        loss = (vae.decode(z_train[i]).sample - x_train[i]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        if steps % 50 == 0:
            say(f"vae decoder adapter: step {steps}, loss {loss.item():.4f}")
    vae.eval()
    after = snr()
    kept = after >= before + VAE_GAIN_DB
    out.mkdir(parents=True, exist_ok=True)
    if kept:
        state = {k: v.detach().half().contiguous() for k, v in get_peft_model_state_dict(vae.decoder).items()}
        with atomic_path(out / adapters.VAE_WEIGHTS) as tmp:
            save_file(state, str(tmp))
        cfg_dict = config.to_dict()
        cfg_dict["target_modules"] = sorted(VAE_TARGETS)
        write_json_atomic(out / adapters.VAE_CONFIG, json.loads(json.dumps(cfg_dict, default=str)))
    record = {"rank": rank, "steps": steps, "minutes": round((time.monotonic() - start) / 60, 2),
              "heldout_db_before": round(before, 2), "heldout_db_after": round(after, 2), "kept": kept,
              "windows": len(x_train), "heldout_windows": len(x_valid)}
    write_json_atomic(record_path, record)
    say(f"vae decoder adapter: held-out reconstruction {before:.1f} -> {after:.1f} dB in {steps} steps; "
        + ("kept" if kept else f"not kept (under +{VAE_GAIN_DB} dB)"))
    return record
