"""The model card (README.md) that ``foley train masked --stages export`` writes into the model folder: what the
model is, its data, its training cost (CPU-hours, from the stages' own clocks) and the figures still to measure."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from ...fsutil import atomic_path

TEMPLATE = """# {name}: masked-token model (VampNet / MAGNeT style)

{description}

- **Family**: `masked` (`foley/families/masked`): a bidirectional transformer over the codec's tokens, MaskGIT
  parallel decoding in `steps` passes per window (default {steps}), classifier-free guidance (default {guidance}).
- **Tasks**: generate, continue/extend, inpaint (outside kept token-exact, then the user's samples bit-exact),
  variation (`--strength`: share of tokens re-drawn), loop (`--period`: the input kept every period, VampNet's
  periodic prompt).
- **Architecture**: {layers} layers, width {width}, {heads} heads, {params:.1f} M parameters; {rows} token rows
  ({channels} channels x {n_q} codebooks x {vocab} codes) per frame at {frame_rate:g} frames/s; window
  {window:g} s ({frames} frames), longer sounds by windows with {context:g} s of known context.
- **Codec**: `{codec}` (copied into `codec/`, hash {codec_hash}).
- **Text**: {text_encoder} token states through a learned projection (cross-attention); captions dropped with
  probability {cfg_dropout} in training (guidance).

## Training
- Recipe: `{recipe_file}` (`bash recipes/starter-masked.sh`), seed {seed}; exported {today}.
- Data: {manifests}; {train_windows} training windows, {valid_windows} held-out windows ({window:g} s each).
- Steps: {trained_steps} at batch {batch}, AdamW lr {lr:g}, warm-up {warmup}, EMA {ema}.
- Held-out masked-token loss (fixed masks): {valid_loss}.
- Cost: tokens {tok_minutes} min, transformer {train_minutes:.1f} min at {threads} thread(s):
  **{cpu_hours:.2f} CPU-hours** (wall time x threads; shared 2-core machine).

## Figures (`python bench/masked_vs_lm.py`; fill in after measuring)
| passes | RTF (10 s) | foley-clap score | FD vs held-out |
|---|---|---|---|
| 4 | | | |
| 8 | | | |
| 12 | | | |
| 16 | | | |
| starter-lm | | | |

## Licence
{licence}
"""


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_card(folder: Path, recipe: dict, out: Path, net, manifests=()) -> Path:
    import torch

    from .train import settings

    r = settings(recipe)
    cfg = _json(folder / "foley.json")
    codec_meta = _json(out / "tokens" / "meta.json")
    tok_time = _json(out / "tokens" / "timing.json")
    trained = _json(out / "masked" / "final" / "training.json")
    counts = {}
    for split in ("train", "valid"):
        try:
            counts[split] = int(torch.load(out / "tokens" / f"{split}.pt", weights_only=True)["codes"].shape[0])
        except (OSError, RuntimeError, KeyError):
            counts[split] = "?"
    losses = [x["valid_loss"] for x in _records(out / "masked" / "log.jsonl") if "valid_loss" in x]
    threads = int(trained.get("threads") or recipe.get("train", {}).get("threads") or 1)
    tok_threads = int(tok_time.get("threads") or threads)
    seconds = float(trained.get("seconds", 0.0))
    tok_seconds = float(tok_time.get("seconds", 0.0))
    c = net.config
    text = TEMPLATE.format(
        name=cfg.get("extra", {}).get("recipe") or folder.name,
        description=recipe.get("description", "A small masked-token starter trained on this repository's corpora."),
        steps=cfg.get("defaults", {}).get("steps"), guidance=cfg.get("defaults", {}).get("guidance_scale"),
        layers=c["layers"], width=c["hidden_size"], heads=c["heads"],
        params=sum(p.numel() for p in net.parameters()) / 1e6, rows=c["codebooks"], channels=c["channels"],
        n_q=c["codebooks"] // c["channels"], vocab=c["vocab"], frame_rate=cfg.get("frame_rate", 0.0),
        window=float(r["window_seconds"]), frames=c["max_frames"],
        context=float(r.get("context_seconds") or r["window_seconds"] / 3), codec=_shown(r["codec"]),
        codec_hash=codec_meta.get("codec_hash", "?"), text_encoder=r.get("text_encoder", "all-MiniLM-L6-v2"),
        cfg_dropout=r["cfg_dropout"], recipe_file=f"recipes/{recipe.get('name', 'starter-masked')}.toml",
        seed=recipe.get("seed", 0), today=date.today().isoformat(),
        manifests=", ".join(f"`{m}`" for m in manifests) or "(see the run's recipe.json)",
        train_windows=counts["train"], valid_windows=counts["valid"], trained_steps=trained.get("steps", "?"),
        batch=r["batch_size"], lr=float(r["lr"]), warmup=r["warmup"], ema=r["ema_decay"],
        valid_loss=f"{losses[-1]:.3f} nats (first {losses[0]:.3f})" if losses else "not measured",
        tok_minutes="reused" if tok_time.get("reused") else f"{tok_seconds / 60:.1f}",
        train_minutes=seconds / 60, threads=threads,
        cpu_hours=(seconds * threads + tok_seconds * tok_threads) / 3600,
        licence=recipe.get("licence", "unknown"))
    with atomic_path(folder / "README.md") as tmp:
        tmp.write_text(text, encoding="utf-8")
    return folder / "README.md"


def _records(path: Path) -> list[dict]:
    """The JSON records of a log.jsonl (a line cut by a kill is skipped)."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _shown(path) -> str:
    """A path as the card shows it: relative to the working folder when inside it (no machine's absolute paths)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
