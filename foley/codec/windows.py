"""Pre-tokenise a corpus with a trained codec: one (or a few) windows per clip, encoded once.

The token stage of every family that models codec tokens (``foley train lm``, ``foley train masked``): it sits
below the families (which are independent siblings) so they share one copy. Output, in ``<out>/tokens/``:
``{valid,train}.pt`` = ``{"codes": int16 [N, K, F], "captions": [[str, ...], ...]}`` with K = channels x n_q rows
interleaved L0, R0, L1, R1, ... (no delay pattern: a family applies its own), and ``meta.json``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..fsutil import atomic_path, write_json_atomic
from .loaders import load_folder


@torch.no_grad()
def encode_windows(manifests, recipe: dict, out: Path, codec_folder: Path, channels: int, n_q: int | None,
                   window_seconds: float, crops_per_clip: int, stage: str = "tokens",
                   splits: tuple[str, ...] = ("valid", "train"), cache: bool = True) -> Path:
    """Encode each clip's window once (``crops_per_clip`` random crops per training clip, the first crop of a
    validation clip): ``<out>/<stage>/{valid,train}.pt``; skipped when every split's file exists (resumable per
    stage). ``recipe``'s ``[audio]`` (``cache_dir``, ``valid_fraction``), ``[train] threads`` and ``seed`` apply.
    Fine-tuning's replay: ``stage="replay", splits=("all",), cache=False`` (one random window per clip, decoded
    clips not kept)."""
    from ..data.dataset import ClipDataset
    from ..data.manifest import clip_captions
    from ..train.loop import progress, set_threads

    name, stage = stage, Path(out) / stage
    if all((stage / f"{s}.pt").exists() for s in splits):
        return stage
    set_threads(recipe.get("train", {}).get("threads"))
    codec = load_folder(codec_folder)
    ch, n_q = int(channels), int(n_q if n_q is not None else codec.num_quantizers)
    a = recipe.get("audio", {})
    cache = (Path(a["cache_dir"]) if a.get("cache_dir") else Path(out) / "cache") if cache else None
    for split in splits:
        ds = ClipDataset(manifests, sample_rate=codec.sample_rate, channels=ch, clip_seconds=float(window_seconds),
                         split=split, valid_fraction=a.get("valid_fraction", 0.03), cache_dir=cache,
                         seed=recipe.get("seed", 0))
        order = [i for i in range(len(ds)) for _ in range(int(crops_per_clip) if split == "train" else 1)]
        codes, caps = [], []
        bar = progress(len(order), 0, f"tokens {split}" if name == "tokens" else f"tokens {name}")
        for s in range(0, len(order), 16):
            items = [ds[i] for i in order[s:s + 16]]
            x = torch.stack([it["audio"] for it in items])                      # [b, C, T]
            c = codec.encode_tensor(x.reshape(-1, 1, x.shape[-1]), n_q)          # [b*C, n_q, F]
            c = c.reshape(len(items), ch, n_q, -1).transpose(1, 2).reshape(len(items), ch * n_q, -1)
            codes.append(c.to(torch.int16))
            caps += [clip_captions(ds.clips[it["index"]]) for it in items]
            bar.update(len(items))
        bar.close()
        with atomic_path(stage / f"{split}.pt") as tmp:
            torch.save({"codes": torch.cat(codes), "captions": caps}, tmp)
    write_json_atomic(stage / "meta.json", {"codec": str(codec_folder), "codec_hash": codec.weight_hash(),
                                            "channels": ch, "n_q": n_q})
    return stage
