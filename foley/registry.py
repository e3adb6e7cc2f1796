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
from functools import cache
from pathlib import Path

from .capabilities import Capabilities
from .errors import ModelError
from .families.public.cards import PUBLIC_CARDS, HubCard
from .family import families
from .generator import Generator, ModelCard
from .paths import REPO_MODELS, home, models_dir  # noqa: F401  (re-exported: foley.registry.home etc.)
from .shipped import SHIPPED, STARTER_CORPORA  # noqa: F401  (re-exported: foley.registry.SHIPPED)


def shipped_present() -> list[str]:
    """The shipped models whose folders are here (``starter`` first): what the server and studio offer by default."""
    return [n for n, e in SHIPPED.items() if (models_dir() / Path(e["weights"]).relative_to("models")).is_dir()]


def _shipped_card(name: str, entry: dict) -> ModelCard:
    """The card of a shipped model: its folder's own card (via its family) plus the entry's words."""
    folder = models_dir() / Path(entry["weights"]).relative_to("models")
    extra = {k: entry[k] for k in ("licence", "description", "recipe")}
    try:
        card = families()[entry["family"]].generator_class().read_card(folder)
    except (ModelError, KeyError, TypeError, ValueError):
        card = None  # missing or unreadable folder: `resolve` says what to do when it is used
    if card is None:
        return ModelCard(name=name, family=entry["family"], weights=entry["weights"], sample_rate=0, channels=0,
                         max_duration=0.0, **extra)
    return replace(card, name=name, weights=entry["weights"], **extra)


@cache
def shipped_card(name: str) -> ModelCard:
    """One shipped model's card, read once (only its own family is imported: a cold start loads one family)."""
    return _shipped_card(name, SHIPPED[name])


@cache
def cards() -> dict[str, ModelCard]:
    """Registry name -> card: the shipped models (read from their folders once) and the public checkpoints."""
    return {**{n: shipped_card(n) for n in SHIPPED}, **PUBLIC_CARDS}


def __getattr__(name: str):
    if name == "CARDS":  # foley.registry.CARDS: read lazily, so importing the registry reads no folder
        return cards()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_licences_shown: set[str] = set()


def card_for(name: str) -> ModelCard | None:
    """The card of a registry name or of a unique name tail (``musicgen-small``), else None."""
    if name in SHIPPED:
        return shipped_card(name)
    if name in PUBLIC_CARDS:
        return PUBLIC_CARDS[name]
    # a shipped card's name is its registry name; a public card's name is its hub id
    tails = [*(n for n in SHIPPED if n.split("/")[-1] == name),
             *(n for n, c in PUBLIC_CARDS.items() if c.name.split("/")[-1] == name)]
    return card_for(tails[0]) if len(tails) == 1 else None


def supporting(task: str, duration: float | None = None) -> list[str]:
    """Names of the registered models whose card lists ``task`` (``"steer"``: that steer towards control curves;
    ``"controls"``: that follow them, by steering or a control adapter; ``"interpolate"``: that interpolate), and
    with ``duration`` only those making sounds that long."""
    if duration is not None:
        return [c.name for c in cards().values() if task in c.tasks and c.max_duration >= duration - 1e-9]
    if task == "steer":
        return _by_capability(lambda caps: caps.steers)
    if task == "controls":
        return _by_capability(lambda caps: caps.follows)
    if task == "interpolate":
        return _by_capability(lambda caps: caps.takes(task))
    return [c.name for c in cards().values() if task in c.tasks]


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
                         f"{', '.join(sorted(cards()))} (see `foley models list`)")
    weights = Path(card.weights)
    folder = weights if weights.is_absolute() else models_dir() / weights.relative_to("models")
    if not folder.is_dir():
        build = f"bash {card.recipe}" if str(card.recipe).endswith(".sh") else f"recipe: {card.recipe}"
        raise ModelError(f"model '{card.name}' is not present at {folder}; restore the repository's models/ "
                         f"folder or set FOLEY_MODELS (to build it: {build})")
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


def _lora_list(lora) -> list[tuple[str, float]]:
    """``lora=`` of :func:`load`: a folder, or a list of folders and (folder, scale) pairs."""
    if lora is None:
        return []
    items = [lora] if isinstance(lora, (str, os.PathLike)) else list(lora)
    out = []
    for it in items:
        ref, scale = (it, 1.0) if isinstance(it, (str, os.PathLike)) else tuple(it)
        out.append((os.fspath(ref), float(scale)))
    return out


def load(name_or_path: str = "starter", lora=None, **kwargs) -> Generator:
    """Load a generator by registry name or folder. kwargs go to the family's ``from_folder``.

    ``lora``: LoRA adapters merged into the weights at load (``"models/my-sounds"`` or ``[(folder, scale), ...]``);
    the name may carry them too: ``"starter+my-sounds@0.8"`` (see :mod:`foley.adapters`).
    Codec (EnCodec, DAC) and CLAP names load their own object types (``encode``/``decode``, ``embed``).
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise ModelError(f"load() takes a model name or folder, e.g. foley.load('starter'), got "
                         f"{type(name_or_path).__name__} {name_or_path!r:.40}; see `foley models list`")
    from . import adapters as _adapters

    base, extra = _adapters.split_spec(os.fspath(name_or_path))
    extra += _lora_list(lora)
    if extra:
        gen = load(base, **kwargs)
        _adapters.apply(gen, extra, base)
        gen.card = replace(gen.card, name=_adapters.join_spec(gen.card.name, extra))
        return gen
    name_or_path = os.fspath(name_or_path)
    folder, card = resolve(name_or_path, download=True)
    gen_cls = _family(folder, card).generator_class()
    if card is not None and not isinstance(card, HubCard):
        card = replace(card, weights=str(folder))
    if card is not None:
        show_licence(card)
    _check_options(gen_cls.from_folder, kwargs, name_or_path)
    gen = gen_cls.from_folder(folder, card=card, **kwargs)
    gen.alternatives = supporting  # refusals name the models that can
    from . import rerank

    rerank.install()  # generate(..., best_of=N)
    return gen


def _family(folder: Path, card: ModelCard | None):
    family = card.family if card else family_of(folder)
    fams = families()
    if family not in fams:
        raise ModelError(f"{folder}: unknown model family '{family}'; known: {', '.join(fams)}")
    return fams[family]


def describe(name_or_path: str) -> tuple[ModelCard | None, Capabilities | None]:
    """A model's card and capabilities without loading its weights (None, None when its family must load the
    model to know them, as for a public layout in a local folder). Never downloads."""
    name = os.fspath(name_or_path)
    from . import adapters as _adapters

    base, extra = _adapters.split_spec(name)
    if extra:  # adapters change weights, not what the model accepts: the base's card under the whole name
        for ref, _ in extra:
            _adapters.read_card(_adapters.locate(ref))
        card, caps = describe(base)
        return (replace(card, name=name) if card is not None else None), caps
    card = card_for(name)  # a registered model: its card is enough (nothing is located or downloaded)
    folder = None
    if card is None or card.sample_rate == 0:
        folder, card = resolve(name)
    gen_cls = _family(folder, card).generator_class()
    if card is None:
        card = gen_cls.read_card(folder)
    if card is None or not hasattr(gen_cls, "capabilities_for"):
        return card, None
    return card, gen_cls.capabilities_for(card)


def streaming() -> list[str]:
    """Names of the registered models that can ``stream()`` (their families are imported to ask)."""
    return _by_capability(lambda caps: caps.streams)


def _by_capability(test) -> list[str]:
    """Names of the registered models whose capabilities pass ``test`` (their families are imported to ask)."""
    out = []
    for card in cards().values():
        fam = families().get(card.family)
        if fam is None or fam.not_generator:
            continue
        try:
            cls = fam.generator_class()
        except ModelError:
            continue
        if test(cls.capabilities_for(card)):
            out.append(card.name)
    return out


def check_request(name_or_path: str, request) -> None:
    """Refuse, before any weights load, a request the model cannot honour (one RequestError line)."""
    card, caps = describe(name_or_path)
    if caps is not None:
        caps.check(request, card.name if card else str(name_or_path), supporting)


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
