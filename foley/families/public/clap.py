"""laion/clap-htsat-unfused as a registry model: the evaluation suite's CLAP backbone, loaded from the
folder the registry found (hub cache, import, or ``$FOLEY_HOME/weights/clap-htsat-unfused``).

The loader, preprocessing and strict key checks live in :mod:`foley.eval.backbones.clap`; this
wrapper only adds the card, so ``foley.load("laion/clap-htsat-unfused")`` and ``foley models`` know it.
"""

from __future__ import annotations

from pathlib import Path

from ... import device as devices
from .cards import CLAP_TASKS
from .common import NotAGenerator, check_card, folder_card

BACKBONE = "clap-htsat-unfused"


class ClapEmbedder(NotAGenerator):
    """``embed(audios) -> [N, D]``, ``embed_text(texts) -> [M, D]``, ``clap_score(audios, texts) -> [N]``,
    ``describe()``: everything of :class:`foley.eval.backbones.clap.ClapBackbone`, plus ``card``."""

    def __init__(self, backbone, card):
        self.backbone, self.card = backbone, card

    @classmethod
    def from_folder(cls, folder, card=None, device: str | None = None, **_ignored):
        from ...eval.backbones import load_backbone

        placement = devices.choose(devices.weights_bytes(folder), device=device, dtype="float32")
        backbone = load_backbone(BACKBONE, Path(folder), device=placement.device)
        if card is None:
            card = folder_card(Path(folder), "clap", backbone.sample_rate, 1, 10.0, CLAP_TASKS)
        else:
            check_card(card, Path(folder), backbone.sample_rate, 1)
        return cls(backbone, card)

    def weight_hash(self) -> str:
        return self.backbone.hash

    def __getattr__(self, name):
        if name == "backbone":
            raise AttributeError(name)
        return getattr(self.backbone, name)
