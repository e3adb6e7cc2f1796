"""Fine-tuning a token LM on the user's sounds: ``foley train finetune --from starter-lm``.

Stages in ``<run>/``: ``tokens`` (the user's clips encoded once with the base's codec, the held-out clips apart),
``replay`` (with replay: a pool of the base's own training clips encoded with the same codec, see
:func:`foley.train.finetune.replay_pool`) and ``finetune`` (:class:`FinetuneLMSolver`: the base's decoder trained
further, whole with its text projection, or through LoRA matrices on its attention and feed-forward projections;
MiniLM and the codec stay frozen).
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import torch

from ...codec.loaders import load_folder
from ...errors import FoleyError
from ...fsutil import write_json_atomic
from ...train import finetune as F
from . import train as T
from .model import LMConfig, _generation_defaults, load_projection
from .solvers import LMModule, LMSolver

# MusicGen decoder layers: self- and cross-attention q/k/v/out, and the feed-forward fc1/fc2
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
LR = (1e-3, 4e-5)  # LoRA, full (full was 1e-4 until replay came, lowered as the latent diffusion's: docs/finetune.md)


class FinetuneLMSolver(F.FinetuneMixin, LMSolver):
    """The ``lm`` stage from the base model's decoder and projection (``[finetune] base``), optionally through LoRA."""

    stage = "finetune"
    section = "lm"
    lora_targets = LORA_TARGETS
    items_attr = "toks"

    def finished(self) -> bool:
        return (self.final / "finetune.json").exists()

    def new_module(self, codec) -> LMModule:
        from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

        from ...codec.storage import load_model

        base = Path(self.ft["base"])
        decoder = load_model(MusicgenDecoderConfig, MusicgenForCausalLM, base / "decoder").float()
        _generation_defaults(decoder)
        projection = load_projection(base / "text_projection").float()
        if self.ft.get("rank"):
            projection.requires_grad_(False)
        self.teacher = None
        if (self.ft.get("replay") or {}).get("target") == "base":  # the base's predictions teach replayed items
            self.teacher = torch.nn.ModuleDict({"decoder": copy.deepcopy(decoder), "projection":
                                                copy.deepcopy(projection)}).eval().requires_grad_(False)
        return LMModule({"decoder": self.adapt(decoder), "projection": projection})

    def loss_extras(self, idx: torch.Tensor) -> dict:
        taught = self.taught(idx)
        return {} if taught is None else {"teacher": self.teacher.to(self.accelerator.device), "taught": taught}

    def validate(self) -> dict:
        return self.held_out(super().validate())

    def preview(self, step: int) -> None:
        prompts = (self.recipe.get("train") or {}).get("preview_prompts") or []
        if not prompts:
            return
        if getattr(self, "_preview_gen", None) is None:
            from .pipeline import LMGenerator

            self._preview_gen = LMGenerator.from_folder(self.ft["base"])
        gen = self._preview_gen
        with self.ema_weights():
            gen.lm.decoder, gen.lm.projection = self.model["decoder"], self.model["projection"]
            F.preview_sheet(gen, prompts, self.dir / "previews", step,
                            duration=min(4.0, float(gen.lm.cfg.window_seconds)))

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
        else:
            shutil.copytree(base, tmp, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("README.md", "decoder", "text_projection"))
            T._save_parts(self.model, tmp, "float16")
            cfg = LMConfig.load(base / "foley.json")
            cfg.extra = {**cfg.extra, "finetuned_from": card["base"], "recipe": "finetune",
                         "licence": card.get("licence", "unknown")}
            write_json_atomic(tmp / "foley.json", cfg.to_dict())
            (tmp / "README.md").write_text(F.card_text("fine-tuned model", card), encoding="utf-8")
        write_json_atomic(tmp / "finetune.json", card)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        return dest


@torch.no_grad()
def reconstruction(base: Path, manifest: Path, valid_fraction: float, n_q: int, items: int = 12) -> tuple[float, float]:
    """Log-mel SNR (dB) of the base codec's reconstructions (``n_q`` codebooks, as the decoder uses) of the user's
    clips and of the procedural synth corpus the starters were trained on."""
    from ...data.dataset import ClipDataset
    from ...data.synth.render import render_clip
    from ...features import MelConfig, log_mel

    codec = load_folder(base / "codec")
    rate, seconds = codec.sample_rate, 2.0
    mel = MelConfig(sample_rate=rate)

    def snr(waves: torch.Tensor) -> float:  # [B, T] mono
        y = codec.decode_tensor(codec.encode_tensor(waves[:, None], n_q))[:, 0, :waves.shape[-1]]
        return F.mel_snr_db(log_mel(waves, mel), log_mel(y, mel))

    ds = ClipDataset([manifest], sample_rate=rate, channels=1, clip_seconds=seconds, split="all",
                     valid_fraction=valid_fraction, seed=0)
    pick = torch.linspace(0, len(ds) - 1, min(items, len(ds))).round().long().unique().tolist()
    user = snr(torch.stack([ds[i]["audio"][0] for i in pick]))
    ref = [torch.from_numpy(render_clip(1000 + i, duration=seconds, sample_rate=rate).audio.samples.mean(0)
                            [:int(seconds * rate)].copy()) for i in range(items)]
    return user, snr(torch.stack(ref))


def recipe_for(base: Path, base_name: str, user: F.UserData, opts: dict) -> dict:
    cfg = LMConfig.load(base / "foley.json")
    dec = json.loads((base / "decoder" / "config.json").read_text())
    steps = int(opts["steps"])
    every = max(5, min(200, steps // 20))
    mean_seconds = user.minutes * 60 / max(1, user.clips)
    return {
        "name": f"finetune-{base_name}", "seed": int(opts.get("seed", 0)),
        "audio": {"valid_fraction": user.valid_fraction},
        "lm": {"codec": str(base / "codec"), "channels": cfg.channels, "n_q": dec["num_codebooks"] // cfg.channels,
               "window_seconds": cfg.window_seconds, "text_encoder": cfg.text_encoder,
               "crops_per_clip": max(1, min(8, math.ceil(mean_seconds / cfg.window_seconds))),
               "steps": steps, "batch_size": int(opts["batch_size"]), "lr": float(opts["lr"]),
               "warmup": max(1, min(50, steps // 10)), "weight_decay": 0.0 if opts.get("rank") else 0.01,
               "cfg_dropout": 0.1, "ema_decay": opts.get("ema_decay", 0.995), "valid_items": 64},
        "finetune": {"base": str(base), "rank": opts.get("rank"), "patience": int(opts.get("patience", 4)),
                     "targets": opts.get("targets"), "replay": None},
        "train": {"threads": opts.get("threads"), "log_every": max(1, min(10, every)), "valid_every": every,
                  "save_every": every, "max_minutes": float(opts["minutes"]),
                  "preview_minutes": opts.get("preview_minutes", 3.0),
                  "preview_prompts": list(opts.get("preview_prompts") or user.descriptions[:3])},
    }


def finetune_lm(user: F.UserData, base: Path, base_name: str, run: Path, opts: dict, say=print) -> Path:
    """Report the codec's reconstruction, encode the user's clips with it (and the replay pool of the base's corpora,
    ``opts["replay"]``), fine-tune; ``<run>/finetune/final``."""
    if opts.get("vae") == "on":
        raise FoleyError("--vae on: token models have no codec adapter (their codec is not a VAE); use --vae off")
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    opts = F.settle(user, opts, LR, say)
    recipe = recipe_for(base, base_name, user, opts)
    replay, pool = opts.get("replay"), None
    if replay is not None:
        pool = F.replay_pool(replay, run, user.manifest, int(opts.get("seed", 0)), "codec", say)
        recipe["finetune"]["replay"] = replay.record()
    x, y = reconstruction(base, user.manifest, user.valid_fraction, recipe["lm"]["n_q"])
    line = F.reconstruction_line(x, y, "codec", "the procedural synth corpus the starters learnt")
    say(line)
    recipe["card"] = {"name": Path(opts["dest"]).name, "path": str(opts["dest"]),
                      "base": F.base_entry(base, "lm", base_name),
                      "data": user.summary(), "licence": opts.get("licence") or "unknown",
                      "reconstruction": line, "reconstruction_db": {"user": round(x, 2), "reference": round(y, 2)}}
    write_json_atomic(run / "recipe.json", recipe)
    T.encode_tokens([user.manifest], recipe, run)
    if pool is not None:
        from ...codec.windows import encode_windows

        r = recipe["lm"]
        encode_windows([pool], recipe, run, Path(r["codec"]), int(r["channels"]), r["n_q"],
                       float(r["window_seconds"]), 1, stage="replay", splits=("all",), cache=False)
    return FinetuneLMSolver([user.manifest], recipe, run).run()
