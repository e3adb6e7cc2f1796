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
    """Pin torch's intra-op threads (2-thread torch suffers badly when another process is busy)."""
    import torch

    if n:
        torch.set_num_threads(int(n))


def load_recipe(path: str | os.PathLike) -> dict:
    """Read a TOML (or JSON) training recipe; one-line error on a bad file."""
    path = Path(path)
    if not path.exists():
        raise FoleyError(f"{path}: recipe not found (see recipes/ for examples)")
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text())
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise FoleyError(f"{path}: invalid recipe ({e})") from None


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


def infinite(loader):
    """Cycle a DataLoader forever (new shuffles each pass)."""
    while True:
        yield from loader


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


def optimizer_step(loss, params: list, opt, sched=None, ema=None, clip: float = 1.0) -> None:
    """Backward, clip the gradient norm, step the optimizer, then the LR schedule and the EMA."""
    import torch

    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    if sched is not None:
        sched.step()
    if ema is not None:
        ema.step(params)
