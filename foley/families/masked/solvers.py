"""The masked-token transformer's stage as a :class:`~foley.train.solver.Solver` subclass (``[masked]`` section).

Masked-token cross-entropy (:func:`.train.masked_loss`) with caption dropout for guidance, AdamW (betas 0.9/0.95)
+ warm-up/cosine, EMA; the loop, resume, logging and processes are the solver's. The stage's wall time is
checkpointed too (:class:`WallClock`), so the model card's CPU-hours survive resumes.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ...codec.loaders import load_folder
from ...text import MINILM
from ...train.loop import warmup_cosine
from ...train.solver import Solver
from . import train as T
from .model import save_transformer


class WallClock:
    """Seconds spent training this stage, across resumes (checkpointed through :meth:`Solver.extra_state`)."""

    def __init__(self):
        self.before, self.start = 0.0, time.time()

    @property
    def seconds(self) -> float:
        return self.before + time.time() - self.start

    def state_dict(self) -> dict:
        return {"seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.before, self.start = float(state["seconds"]), time.time()


class MaskedModule(torch.nn.Module):
    """The transformer with the training loss as ``forward`` (one call for a parallel wrapper)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, text, codes, captions, drop, span_prob, generator=None):
        return T.masked_loss(self.net, text, codes, captions, drop, span_prob, generator)


class MaskedSolver(Solver):
    stage = section = "masked"
    sampling = "randint"
    defaults = T.MASKED_DEFAULTS

    def finished(self) -> bool:
        return (self.final / "transformer" / "config.json").exists()

    def build(self) -> None:
        from ...text import get_text_encoder

        r = self.settings
        self.toks = torch.load(self.out / "tokens" / "train.pt", weights_only=True)
        self.val = torch.load(self.out / "tokens" / "valid.pt", weights_only=True)
        codec = load_folder(T.codec_folder(self.recipe))
        self.channels = int(r["channels"])
        self.text = get_text_encoder(str(r.get("text_encoder", MINILM)))
        n_q = self.toks["codes"].shape[1] // self.channels
        net = T.new_transformer(codec, self.channels, n_q, r, self.text.dim)
        self.model = MaskedModule(net)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=float(r["lr"]), betas=(0.9, 0.95),
                                           weight_decay=float(r["weight_decay"]))
        self.scheduler = warmup_cosine(self.optimizer, int(r["warmup"]), self.steps)
        self.data = range(self.toks["codes"].shape[0])  # batches are window indices
        self.clock = WallClock()

    def extra_state(self) -> dict:
        return {"clock": self.clock}

    def train_step(self, idx: torch.Tensor) -> dict:
        idx = idx.cpu().tolist()
        caps, drop = T._captions(self.rng, self.toks["captions"], idx, float(self.settings["cfg_dropout"]))
        dev = self.accelerator.device
        loss, rows = self.train_model(self.text, self.toks["codes"][idx].long().to(dev), caps, drop.to(dev),
                                      float(self.settings["span_prob"]))
        n_q = rows.shape[0] // self.channels
        per_q = rows.view(n_q, self.channels).mean(1)
        return {"loss": loss, **{f"loss_q{q}": float(v) for q, v in enumerate(per_q)}}

    def validate(self) -> dict:
        """EMA weights, the first ``valid_items`` windows with their first captions and masks drawn from a fixed
        seed: comparable across runs and steps."""
        k = min(int(self.settings["valid_items"]), self.val["codes"].shape[0])
        g = torch.Generator().manual_seed(0)
        total = 0.0
        for s in range(0, k, 16):
            codes = self.val["codes"][s:min(k, s + 16)].long()
            caps = [c[0] if c else "" for c in self.val["captions"][s:s + codes.shape[0]]]
            drop = torch.tensor([not c for c in caps])
            loss, _ = self.model(self.text, codes, caps, drop, float(self.settings["span_prob"]), g)
            total += float(loss) * codes.shape[0]
        return {"valid_loss": total / max(1, k)}

    def preview(self, step: int) -> None:
        """A few sounds from ``[train] preview_prompts`` with the EMA weights."""
        prompts = self.train_settings.get("preview_prompts", [])
        if not prompts:
            return
        from ...generator import ModelCard
        from .model import MaskedTokenModel
        from .pipeline import MaskedGenerator

        with self.ema_weights():
            codec = load_folder(T.codec_folder(self.recipe))
            cfg = T.model_config(self.recipe, codec)
            model = MaskedTokenModel(codec, self.model.net, cfg)
            card = ModelCard(name="preview", family="masked", weights="", sample_rate=cfg.sample_rate,
                             channels=cfg.channels, max_duration=cfg.max_duration, defaults=dict(cfg.defaults))
            gen = MaskedGenerator(model, card)
            for i, a in enumerate(gen.generate(prompts, duration=min(4.0, cfg.max_duration), seed=0)):
                a.save(self.dir / "previews" / f"step{step:06d}_{i}.wav")

    def export(self, dest: Path) -> Path:
        self.ema.copy_to(self.model.parameters())
        save_transformer(self.model.net, dest / "transformer", "float32")
        from ...fsutil import write_json_atomic

        write_json_atomic(dest / "training.json", {"steps": self.step, "seconds": self.clock.seconds,
                                                   "threads": int(self.train_settings.get("threads") or 1),
                                                   "parameters": sum(p.numel() for p in self.model.net.parameters())})
        return dest
