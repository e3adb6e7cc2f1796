"""Model cards and `foley.load(name_or_path)`: one registry of models, one of families, one cache.

A name is a registry name (``starter``; a public hub id such as ``cvssp/audioldm-s-full-v2``; a unique
tail such as ``audioldm-s-full-v2``; or a name given to ``foley models import``) or a local folder.
Shipped models live in the repository's ``models/`` (or ``$FOLEY_MODELS``); public checkpoints in
``$FOLEY_HOME`` (see :mod:`foley.families.public.hub`). Importing this module does not import torch.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from importlib import import_module
from pathlib import Path

from .errors import ModelError
from .families.public.cards import PUBLIC_CARDS, HubCard
from .generator import Generator, ModelCard

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"

# family name -> "module:Class" of its Generator (a new family is one entry here)
_PUBLIC = "foley.families.public"
FAMILIES = {
    "ldm": "foley.families.ldm.pipeline:LDMGenerator",
    "lm": "foley.families.lm.pipeline:LMGenerator",
    "audioldm": f"{_PUBLIC}.diffusion:AudioLDMGenerator",
    "audioldm2": f"{_PUBLIC}.diffusion:AudioLDM2Generator",
    "musicldm": f"{_PUBLIC}.diffusion:MusicLDMGenerator",
    "stable-audio": f"{_PUBLIC}.stable_audio:StableAudioGenerator",
    "musicgen": f"{_PUBLIC}.musicgen:MusicGenGenerator",
    "musicgen-melody": f"{_PUBLIC}.musicgen:MusicGenMelodyGenerator",
    "encodec": f"{_PUBLIC}.codecs:EncodecCodec",
    "dac": f"{_PUBLIC}.codecs:DacCodec",
    "clap": f"{_PUBLIC}.clap:ClapEmbedder",
}
# families whose loaded object is not a Generator (codecs encode/decode, CLAP embeds)
NOT_GENERATORS = {"encodec": "a codec (use `foley codec` or .encode/.decode)",
                  "dac": "a codec (use `foley codec` or .encode/.decode)",
                  "clap": "a text-audio embedding model (used by `foley eval`)"}

_LDM_TASKS = ("generate", "style_transfer", "inpaint", "extend", "continue", "super_resolution")

CARDS: dict[str, ModelCard] = {
    "starter": ModelCard(
        name="starter", family="ldm", weights="models/starter", sample_rate=16000, channels=2,
        max_duration=30.0, tasks=_LDM_TASKS,
        licence="share-alike: trained partly on CC-BY-SA-3.0 and GPL-2+ game audio (models/starter/README.md)",
        description="Our latent-diffusion starter model: sound design textures, game SFX and music sketches.",
        recipe="recipes/starter-ldm.toml"),
    "starter-lm": ModelCard(
        name="starter-lm", family="lm", weights="models/starter-lm", sample_rate=16000, channels=2,
        max_duration=60.0, tasks=("generate", "continue", "extend"),
        licence="share-alike: trained partly on CC-BY-SA-3.0 and GPL-2+ game audio (models/starter-lm/README.md)",
        description="Our token-LM starter: codec tokens predicted from text (MusicGen-style); streams.",
        recipe="recipes/starter-lm.toml"),
    **PUBLIC_CARDS,
}

_licences_shown: set[str] = set()


def models_dir() -> Path:
    """Where shipped models live: $FOLEY_MODELS, else the repository's models/ folder."""
    return Path(os.environ.get("FOLEY_MODELS", REPO_MODELS))


def home() -> Path:
    """The user's cache of downloaded weights and evaluation features ($FOLEY_HOME, ~/.cache/foley)."""
    return Path(os.environ.get("FOLEY_HOME") or Path.home() / ".cache" / "foley").expanduser()


def card_for(name: str) -> ModelCard | None:
    """The card of a registry name or of a unique name tail (``musicgen-small``), else None."""
    if name in CARDS:
        return CARDS[name]
    tails = [c for c in CARDS.values() if c.name.split("/")[-1] == name]
    return tails[0] if len(tails) == 1 else None


def supporting(task: str) -> list[str]:
    """Names of the registered models whose card lists ``task``."""
    return [c.name for c in CARDS.values() if task in c.tasks]


def resolve(name_or_path: str, download: bool = False) -> tuple[Path, ModelCard | None]:
    """Find the folder for a registry name or a local path; fails fast with what to do.

    A public model that is not cached is downloaded only with ``download=True`` (as :func:`load` does)
    and only when the hub is reachable; otherwise the error names the files and where to put them.
    """
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return p, None
    card = card_for(name_or_path)
    if isinstance(card, HubCard):
        from .families.public import hub

        return hub.locate(card, download_allowed=download), card
    if card is None:
        from .families.public import hub

        entry = hub.read_index().get(name_or_path)
        if entry is not None:
            folder = Path(entry["path"])
            if not folder.is_dir():
                raise ModelError(f"imported model '{name_or_path}' points to {folder}, which is gone; import it "
                                 f"again (`foley models import DIR --name {name_or_path}`)")
            return folder, None
        raise ModelError(f"unknown model '{name_or_path}': not a folder and not one of "
                         f"{', '.join(sorted(CARDS))} (see `foley models list`)")
    weights = Path(card.weights)
    folder = weights if weights.is_absolute() else models_dir() / weights.relative_to("models")
    if not folder.is_dir():
        raise ModelError(f"model '{card.name}' is not present at {folder}; restore the repository's models/ "
                         f"folder or set FOLEY_MODELS (recipe: {card.recipe})")
    return folder, card


def family_of(folder: Path) -> str:
    """A folder's family: ``foley.json`` (our models), else the public layouts' model_index/config.json."""
    cfg = folder / "foley.json"
    if cfg.exists():
        return json.loads(cfg.read_text()).get("family", "ldm")
    from .families.public.hub import detect_family

    family = detect_family(folder)
    if family is None:
        raise ModelError(f"{folder}: not a model folder (no foley.json, model_index.json or known config.json); "
                         f"see docs/models.md for the layouts")
    return family


def show_licence(card: ModelCard) -> None:
    """Print the weights' licence to stderr, once per model and process (public models only)."""
    if not isinstance(card, HubCard) or card.name in _licences_shown:
        return
    _licences_shown.add(card.name)
    kind = "NON-COMMERCIAL weights" if card.non_commercial else "weights"
    print(f"note: {card.name}: {kind}, licence {card.licence} — see {card.url}", file=sys.stderr)


def load(name_or_path: str = "starter", **kwargs) -> Generator:
    """Load a generator by registry name or folder. kwargs go to the family's ``from_folder``.

    Codec (EnCodec, DAC) and CLAP names load their own object types (``encode``/``decode``, ``embed``).
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise ModelError(f"load() takes a model name or folder, e.g. foley.load('starter'), got "
                         f"{type(name_or_path).__name__} {name_or_path!r:.40}; see `foley models list`")
    name_or_path = os.fspath(name_or_path)
    folder, card = resolve(name_or_path, download=True)
    family = card.family if card else family_of(folder)
    if family not in FAMILIES:
        raise ModelError(f"{folder}: unknown model family '{family}'; known: {', '.join(FAMILIES)}")
    module, cls = FAMILIES[family].split(":")
    gen_cls = getattr(import_module(module), cls)
    if card is not None and not isinstance(card, HubCard):
        card = replace(card, weights=str(folder))
    if card is not None:
        show_licence(card)
    _check_options(gen_cls.from_folder, kwargs, name_or_path)
    return gen_cls.from_folder(folder, card=card, **kwargs)


def _check_options(from_folder, kwargs: dict, name: str) -> None:
    """Unknown keyword options are one line naming the ones this model takes (not a TypeError from inside)."""
    import inspect

    params = inspect.signature(from_folder).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    known = [k for k, p in params.items() if k not in ("folder", "card") and p.kind is not p.VAR_POSITIONAL]
    bad = [k for k in kwargs if k not in known]
    if bad:
        raise ModelError(f"model '{name}' takes no option {', '.join(map(repr, bad))}; its options: "
                         f"{', '.join(known) or 'none'}")
