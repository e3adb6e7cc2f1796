"""What both families' control adapters share in training (``foley train control``): the two-stage run (``windows``,
then the family's solver), the card and the whole-or-nothing write into ``<model folder>/control/``."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import FoleyError
from ..fsutil import write_json_atomic
from ..hashing import CONTROL_DIR, CONTROL_JSON, base_hash


def training_minutes(log: list[dict]) -> float | None:
    """A stage's training time over all its (resumed) runs: each logged interval's steps over its rate."""
    rows = [r for r in log if r.get("steps_per_s")]
    if not rows:
        return None
    total, last = 0.0, 0
    for r in rows:
        total += max(0, r["step"] - last) / r["steps_per_s"]
        last = r["step"]
    return round(total / 60, 1)


def window_order(sizes: list[int], total: int, seed: int) -> tuple[list[tuple[int, int]], list[int]]:
    """Which ``total`` windows a control adapter learns from, over manifests of ``sizes`` clips: each manifest's share
    in proportion to the square root of its size (a large corpus does not drown the others), its clips spread evenly
    (cycled when the share exceeds them); ``(manifest, clip)`` pairs shuffled by ``seed`` so every chunk mixes the
    corpora, and the shares."""
    import numpy as np

    weights = np.sqrt(sizes)
    shares = np.floor(weights / weights.sum() * total).astype(int)
    shares[0] += total - shares.sum()
    order = []
    for k, (size, n) in enumerate(zip(sizes, shares, strict=True)):
        picks = np.linspace(0, size * max(1, -(-int(n) // size)) - 1, n).astype(int) % size
        order += [(k, int(i)) for i in picks]
    rng = np.random.default_rng(seed)
    return [order[i] for i in rng.permutation(len(order))], [int(n) for n in shares]


def run_control(base: Path, manifests: list[Path], recipe: dict, run: Path, dest: Path | None, force: bool,
                make_windows: Callable, solver: Callable, card: Callable[[Path, dict, dict], dict],
                say=print) -> Path:
    """Stage ``windows`` (``make_windows(base, manifests, recipe, run, say=)``), then the training stage
    (``solver(base, recipe, run)``, a :class:`~foley.train.solver.Solver`), then the adapter folder at ``dest``
    (default ``<base>/control``): the stage's final weights plus ``control.json`` = the common fields (base weights
    without ``control/``, windows, steps, minutes) and ``card(final, last_validation, windows)``'s own."""
    run, base = Path(run), Path(base)
    dest = Path(dest) if dest is not None else base / CONTROL_DIR
    if dest.exists() and not force:
        raise FoleyError(f"{dest}: already exists; pass --force to replace it, or -o another folder")
    if not manifests:
        raise FoleyError("no --data manifest given: the adapter learns the curves of those sounds")
    for m in manifests:
        if not Path(m).is_file():
            raise FoleyError(f"{m}: manifest not found")
    run.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run / "recipe.json", recipe)
    t0 = time.time()
    base_weights = base_hash(base)
    make_windows(base, manifests, recipe, run, say=say)
    stage = solver(base, recipe, run)
    final = Path(stage.run())
    log = [json.loads(ln) for ln in (stage.dir / "log.jsonl").read_text().splitlines() if ln.strip()]
    valid = [r for r in log if "valid_loss" in r]
    windows = json.loads((run / "windows" / "done.json").read_text())
    last = valid[-1] if valid else {}
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(final, tmp)
    common = {"base_weights": base_weights, "recipe": recipe.get("name"),
              "windows": windows["windows"] - windows["valid"], "heldout_windows": windows["valid"],
              "manifests": windows["manifests"], "steps": last.get("step"),
              "minutes_this_run": round((time.time() - t0) / 60, 1), "training_minutes": training_minutes(log),
              "windows_minutes": windows.get("minutes"),
              "settings": {k: stage.settings[k] for k in type(stage).defaults}}
    write_json_atomic(tmp / CONTROL_JSON, {**card(final, last, windows), **common})
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest
