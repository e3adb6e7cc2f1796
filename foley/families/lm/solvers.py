"""The token LM's decoder stage as a :class:`~foley.train.solver.Solver` subclass (``[lm]`` recipe section).

Teacher-forced cross-entropy over the delay-interleaved codes with caption dropout for guidance, AdamW
(betas 0.9/0.95) + warm-up/cosine, EMA; the loop, resume, logging and processes are the solver's.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...codec.loaders import load_folder
from ...text import MINILM
from ...train.loop import warmup_cosine
from ...train.solver import Solver
from . import train as T
from .model import new_decoder


class LMModule(torch.nn.ModuleDict):
    """``{"decoder", "projection"}`` with the training loss as ``forward`` (one call for a parallel wrapper);
    its state dict is the ModuleDict's, as in checkpoints written before the solver."""

    def forward(self, text, codes: torch.Tensor, captions: list[str], drop: torch.Tensor, channels: int, **extras):
        return T.lm_loss(self["decoder"], self["projection"], text, codes, captions, drop, channels, **extras)


class LMSolver(Solver):
    stage = section = "lm"
    sampling = "randint"
    defaults = T.LM_DEFAULTS

    def finished(self) -> bool:
        return (self.final / "decoder" / "config.json").exists()

    def build(self) -> None:
        from ...text import get_text_encoder

        r = self.settings
        self.toks = torch.load(self.out / "tokens" / "train.pt", weights_only=True)
        self.val = torch.load(self.out / "tokens" / "valid.pt", weights_only=True)
        codec = load_folder(T.codec_folder(self.recipe))
        self.channels = int(r["channels"])
        self.text = get_text_encoder(str(r.get("text_encoder", MINILM)))
        self.model = self.new_module(codec)
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=float(r["lr"]),
                                           betas=(0.9, 0.95), weight_decay=float(r["weight_decay"]))
        self.scheduler = warmup_cosine(self.optimizer, int(r["warmup"]), self.steps)
        self.data = range(self.toks["codes"].shape[0])  # batches are window indices

    def new_module(self, codec) -> LMModule:
        """The decoder and text projection to train: fresh, of the recipe's size."""
        n_q = self.toks["codes"].shape[1] // self.channels
        decoder = new_decoder(codec, self.channels, {**self.settings, "n_q": n_q})
        projection = torch.nn.Linear(self.text.dim, decoder.config.hidden_size)
        return LMModule({"decoder": decoder, "projection": projection})

    def train_step(self, idx: torch.Tensor) -> dict:
        idx = idx.cpu().tolist()
        caps, drop = T._captions(self.rng, self.toks["captions"], idx, float(self.settings["cfg_dropout"]))
        dev = self.accelerator.device
        loss = self.train_model(self.text, self.toks["codes"][idx].long().to(dev), caps, drop.to(dev), self.channels,
                                **self.loss_extras(torch.tensor(idx)))
        return {"loss": loss}

    def loss_extras(self, idx: torch.Tensor) -> dict:
        """More keyword arguments of the batch's loss (a fine-tune's teacher for replayed items)."""
        return {}

    def validate(self) -> dict:
        """EMA weights, the first ``valid_items`` windows with their first captions: comparable across runs."""
        k = min(int(self.settings["valid_items"]), self.val["codes"].shape[0])
        total = 0.0
        for s in range(0, k, 16):
            codes = self.val["codes"][s:min(k, s + 16)].long()
            caps = [c[0] if c else "" for c in self.val["captions"][s:s + codes.shape[0]]]
            drop = torch.tensor([not c for c in caps])
            total += float(self.model(self.text, codes, caps, drop, self.channels)) * codes.shape[0]
        return {"valid_loss": total / max(1, k)}

    def preview(self, step: int) -> None:
        T._preview(self.recipe, self.out, self.model, self.ema, step)

    def export(self, dest: Path) -> Path:
        self.ema.copy_to(self.model.parameters())
        T._save_parts(self.model, dest, "float32")
        return dest
