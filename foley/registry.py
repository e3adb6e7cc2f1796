"""Model cards and `foley.load(name_or_path)`: one registry of models, one of families."""

from __future__ import annotations

import json
import os
from importlib import import_module
from pathlib import Path

from .errors import ModelError
from .generator import Generator, ModelCard

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"

# family name -> "module:Class" of its Generator (a new family is one entry here)
FAMILIES = {
    "ldm": "foley.families.ldm.pipeline:LDMGenerator",
}

_LDM_TASKS = ("generate", "style_transfer", "inpaint", "extend", "continue", "super_resolution")

CARDS: dict[str, ModelCard] = {
    "starter": ModelCard(
        name="starter", family="ldm", weights="models/starter", sample_rate=16000, channels=2,
        max_duration=30.0, tasks=_LDM_TASKS, licence="Apache-2.0 (weights); training data: see model card",
        description="Our latent-diffusion starter model: sound design textures, game SFX and music sketches.",
        recipe="recipes/starter-ldm.toml"),
}


def models_dir() -> Path:
    """Where shipped models live: $FOLEY_MODELS, else the repository's models/ folder."""
    return Path(os.environ.get("FOLEY_MODELS", REPO_MODELS))


def home() -> Path:
    """The user's cache of downloaded weights and evaluation features ($FOLEY_HOME, ~/.cache/foley)."""
    return Path(os.environ.get("FOLEY_HOME", Path.home() / ".cache" / "foley"))


def resolve(name_or_path: str) -> tuple[Path, ModelCard | None]:
    """Find the folder for a registry name or a local path; fails fast with what to do."""
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return p, None
    card = CARDS.get(name_or_path)
    if card is None:
        raise ModelError(f"unknown model '{name_or_path}': not a folder and not one of "
                         f"{', '.join(sorted(CARDS))} (see `foley models list`)")
    weights = Path(card.weights)
    folder = weights if weights.is_absolute() else models_dir() / weights.relative_to("models")
    if not folder.is_dir():
        raise ModelError(f"model '{card.name}' is not present at {folder}; restore the repository's models/ "
                         f"folder or set FOLEY_MODELS (recipe: {card.recipe})")
    return folder, card


def family_of(folder: Path) -> str:
    cfg = folder / "foley.json"
    if cfg.exists():
        return json.loads(cfg.read_text()).get("family", "ldm")
    raise ModelError(f"{folder}: not a model folder (no foley.json); see docs/models.md for the layouts")


def load(name_or_path: str = "starter", **kwargs) -> Generator:
    """Load a generator by registry name or folder. kwargs go to the family's ``from_folder``."""
    folder, card = resolve(name_or_path)
    family = card.family if card else family_of(folder)
    if family not in FAMILIES:
        raise ModelError(f"{folder}: unknown model family '{family}'; known: {', '.join(FAMILIES)}")
    module, cls = FAMILIES[family].split(":")
    gen_cls = getattr(import_module(module), cls)
    if card is not None:
        card = ModelCard(**{**card.__dict__, "weights": str(folder)})
    return gen_cls.from_folder(folder, card=card, **kwargs)
