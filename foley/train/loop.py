"""Pieces every training stage shares: resumable checkpoints, EMA, progress, thread policy, recipes."""

from __future__ import annotations

import json
import os
import time
import tomllib
from pathlib import Path

from ..errors import FoleyError
from ..fsutil import atomic_path


def set_threads(n: int | None) -> None:
    """Torch's threads for a training stage: ``--threads``/``FOLEY_THREADS`` when given, else the recipe's
    ``n``, else auto (see :mod:`foley.threads`)."""
    from .. import threads

    threads.apply(fallback=n)


REPO = Path(__file__).resolve().parents[2]  # the checkout holding recipes/ (when foley runs from one)
# Keys of a recipe that name files or folders. A relative one resolves against the recipe's base folder (see
# load_recipe); REQUIRED ones must exist before training starts, OPTIONAL ones may be a name instead of a path.
REQUIRED_PATHS = (("vae", "init"), ("vae", "adopt"), ("unet", "init"), ("vocoder", "folder"), ("lm", "codec"),
                  ("masked", "codec"))
OUTPUT_PATHS = (("audio", "cache_dir"),)
OPTIONAL_PATHS = (("lm", "text_encoder"), ("codec", "vocoder"), ("clap", "init_encoder"),
                  ("conditioning", "clap"), ("masked", "text_encoder"), ("masked", "tokens_from"))


def find_recipe(path: str | os.PathLike) -> Path:
    """``--recipe``: the path as given (relative to the working directory), else relative to the foley
    checkout, else ``recipes/NAME`` or ``recipes/NAME.toml`` there; so ``recipes/smoke-ldm.toml`` works from
    any folder."""
    path = Path(os.path.expanduser(path))
    if path.exists() or path.is_absolute():
        return path
    for cand in (REPO / path, REPO / "recipes" / path, REPO / "recipes" / f"{path}.toml"):
        if cand.is_file():
            return cand
    return path


def recipe_base(path: Path) -> Path:
    """Relative paths inside a recipe resolve here: the folder above ``recipes/`` for a recipe kept in a
    folder named ``recipes`` (the repository layout: ``runs/...`` and ``models/...`` mean the checkout's),
    else the recipe file's own folder. Never the working directory."""
    folder = path.resolve().parent
    return folder.parent if folder.name == "recipes" else folder


def _override(recipe: dict, item: str) -> None:
    """Apply one ``section.key=value`` (value in TOML syntax; a bare word is a string)."""
    key, eq, raw = item.partition("=")
    names = [k.strip() for k in key.split(".")]
    if not eq or not all(names):
        raise FoleyError(f"--set {item!r}: expected section.key=value, e.g. --set unet.steps=20")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    table = recipe
    for name in names[:-1]:
        table = table.setdefault(name, {})
        if not isinstance(table, dict):
            raise FoleyError(f"--set {item!r}: '{name}' is not a table in the recipe")
    table[names[-1]] = value


def _makers(path: Path) -> list[str]:
    """Scripts beside the recipe that mention it by name (they prepare its inputs, e.g. recipes/starter-ldm.sh)."""
    base = recipe_base(path)
    out = []
    for sh in sorted(path.resolve().parent.glob("*.sh")):
        try:
            lines = sh.read_text(encoding="utf-8", errors="replace").splitlines()
            if any(path.name in ln for ln in lines if not ln.lstrip().startswith("#")):
                out.append(os.path.relpath(sh, base) if sh.is_relative_to(base) else str(sh))
        except OSError:
            continue
    return out


def _resolve_paths(recipe: dict, path: Path) -> None:
    """Make the recipe's relative paths absolute (see :func:`recipe_base`); one line for a missing input."""
    base = recipe_base(path)
    for keys, must in ((REQUIRED_PATHS, True), (OUTPUT_PATHS, True), (OPTIONAL_PATHS, False)):
        for section, key in keys:
            table = recipe.get(section)
            value = table.get(key) if isinstance(table, dict) else None
            if not isinstance(value, str) or not value or value == "griffin-lim":
                continue
            full = Path(os.path.expanduser(value))
            full = full if full.is_absolute() else base / full
            if must or full.exists():
                table[key] = str(full)
            if keys is REQUIRED_PATHS and not full.exists():
                makers = _makers(path)
                how = (f"it is made by `bash {' or '.join(makers)}` (run that first, from anywhere)" if makers
                       else "create it first, or remove the key")
                raise FoleyError(f"{path}: [{section}] {key} = {value!r} ({full}) not found; {how}")


def load_recipe(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Read a TOML (or JSON) training recipe; one-line error on a bad file.

    The file is found by :func:`find_recipe`; relative paths inside it resolve against :func:`recipe_base`
    (so a run behaves the same from any working directory), and a missing input folder (a warm start's
    ``init``, a codec) is an error naming the script that makes it. ``overrides`` (``--set unet.steps=20``)
    are applied last, their paths as given.
    """
    path = find_recipe(path)
    if not path.exists():
        raise FoleyError(f"{path}: recipe not found (see recipes/ for examples, e.g. recipes/smoke-ldm.toml)")
    if not path.is_file():
        raise FoleyError(f"{path}: is a folder; give a recipe file (.toml), e.g. recipes/smoke-ldm.toml")
    try:
        if path.suffix == ".json":
            recipe = json.loads(path.read_text())
        else:
            recipe = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FoleyError(f"{path}: invalid recipe ({e})") from None
    if not isinstance(recipe, dict):
        raise FoleyError(f"{path}: a recipe must be a table of settings")
    _resolve_paths(recipe, path)
    for item in overrides:
        _override(recipe, item)
    return recipe


class Checkpointer:
    """Atomic save/resume of a stage's full training state (``<dir>/last.pt``).

    The state holds model, EMA and optimizer state dicts, the step and torch's RNG state, so a killed
    run continues where it stopped instead of starting again.
    """

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.path = self.dir / "last.pt"

    def exists(self) -> bool:
        return self.path.exists()

    def save(self, step: int, **objects) -> None:
        import torch

        state = {"step": step, "rng": torch.get_rng_state(), "time": time.time()}
        for name, obj in objects.items():
            state[name] = obj.state_dict() if hasattr(obj, "state_dict") else obj
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)

    def read(self) -> dict:
        """The saved state, unpickled with ``weights_only=True``: tensors, numbers, strings, lists and dicts only.

        A ``last.pt`` may come from anywhere (a copied run folder), so full unpickling (which can run code)
        is never used; a file holding anything else, or a corrupt one, is a one-line FoleyError.
        """
        import pickle
        import zipfile

        import torch

        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise FoleyError(f"{self.path}: not a loadable foley checkpoint (refused or unreadable: {reason}); "
                             f"delete it to start the stage over") from None
        if not isinstance(state, dict) or "step" not in state:
            raise FoleyError(f"{self.path}: not a foley checkpoint (no 'step'); delete it to start the stage over")
        return state

    def load(self, **objects) -> int:
        """Restore objects in place; returns the step to continue from (0 when there is nothing)."""
        import torch

        if not self.exists():
            return 0
        state = self.read()
        for name, obj in objects.items():
            if name not in state:
                raise FoleyError(f"{self.path}: checkpoint lacks '{name}'; delete it to start over")
            obj.load_state_dict(state[name])
        torch.set_rng_state(state["rng"])
        return int(state["step"])


def progress(total: int, initial: int, desc: str):
    """A tqdm bar with ETA; loss etc. go in ``set_postfix``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, smoothing=0.05,
                mininterval=1.0)


def append_log(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line to a training log (metrics by step)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def warmup_cosine(opt, warmup: int, steps: int, floor: float = 0.1):
    """LR multiplier: linear warm-up over ``warmup`` steps times a cosine from 1 to ``floor`` over ``steps``."""
    import math

    import torch

    warmup = max(1, int(warmup))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * (
        0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)) * (1 - floor) + floor))
