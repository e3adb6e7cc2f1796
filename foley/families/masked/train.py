"""``foley train masked``: pre-tokenise the corpus with a trained codec, train the masked-token transformer, export.

Stages, each in ``<run>/<stage>/`` and resumable: ``tokens`` (the shared token stage,
:func:`foley.codec.windows.encode_windows`; ``[masked] tokens_from`` reuses another run's tokens made with the same
codec, e.g. starter-lm's ``runs/lm/tokens``), ``masked`` (:class:`MaskedSolver`) and ``export`` (a model folder,
see :mod:`foley.families.masked.model`, with a README model card).

Training objective (MaskGIT / VampNet): per window a mask ratio r = cos(pi/2 u), u ~ U(0, 1); each token masked
with probability r, and the finer codes of a masked one masked too (the RVQ order the sampler keeps); with
probability ``span_prob`` a contiguous span of r F frames is masked in all rows instead (the shape of inpainting
and continuation). Cross-entropy on the masked tokens, averaged per codebook row, then over rows. Captions are
dropped with probability ``cfg_dropout`` (the guidance's unconditional branch).
"""

from __future__ import annotations

import math
import random
import shutil
import time
from pathlib import Path

import torch

from ...codec.loaders import load_folder
from ...errors import FoleyError
from ...fsutil import atomic_path, write_json_atomic
from ...text import MINILM
from .model import SAMPLING_DEFAULTS, MaskedConfig, MaskedTokenModel, MaskedTransformer, load_transformer

STAGES = ("tokens", "masked", "export")
MASKED_DEFAULTS = {"codec": "models/starter-lm/codec", "channels": 2, "window_seconds": 3.0, "max_duration": 60.0,
                   "context_seconds": 1.0, "hidden_size": 256, "layers": 4, "heads": 4, "ffn_dim": 1024,
                   "dropout": 0.1, "batch_size": 16, "steps": 3000, "lr": 5e-4, "warmup": 200, "weight_decay": 0.01,
                   "cfg_dropout": 0.1, "span_prob": 0.3, "ema_decay": 0.999, "crops_per_clip": 1,
                   "export_dtype": "float16", "valid_items": 64, "tokens_from": None}


def settings(recipe: dict) -> dict:
    return {**MASKED_DEFAULTS, **recipe.get("masked", {})}


def codec_folder(recipe: dict) -> Path:
    folder = Path(settings(recipe)["codec"])
    if not folder.is_dir():
        raise FoleyError(f"{folder}: codec not found; set [masked] codec to a codec folder (starter-lm's: "
                         "models/starter-lm/codec, or `foley train codec`)")
    return folder


# --- stage 1: tokens ------------------------------------------------------------------------------
def encode_tokens(manifests, recipe: dict, out: Path) -> Path:
    """``<out>/tokens/{valid,train}.pt``: reused from ``tokens_from`` when made by the same codec and window,
    else encoded (the shared stage). The encoding time is kept in ``tokens/timing.json`` for the model card."""
    from ...codec.windows import encode_windows

    r = settings(recipe)
    stage = Path(out) / "tokens"
    if (stage / "train.pt").exists() and (stage / "valid.pt").exists():
        return stage
    codec = codec_folder(recipe)
    if r.get("tokens_from") and _reusable(Path(r["tokens_from"]), codec, r):
        stage.mkdir(parents=True, exist_ok=True)
        for name in ("meta.json", "valid.pt", "train.pt"):  # train.pt last: its presence means complete
            with atomic_path(stage / name) as tmp:
                shutil.copyfile(Path(r["tokens_from"]) / name, tmp)
        write_json_atomic(stage / "timing.json", {"seconds": 0.0, "reused": str(r["tokens_from"])})
        return stage
    t0 = time.time()
    encode_windows(manifests, recipe, out, codec, int(r["channels"]), r.get("n_q"), float(r["window_seconds"]),
                   int(r["crops_per_clip"]))
    threads = int(recipe.get("train", {}).get("threads") or 1)
    write_json_atomic(stage / "timing.json", {"seconds": time.time() - t0, "threads": threads})
    return stage


def _reusable(folder: Path, codec: Path, r: dict) -> bool:
    """Another run's tokens fit: same codec weights, channels and window length."""
    import json

    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        valid = torch.load(folder / "valid.pt", weights_only=True)
    except (OSError, ValueError, RuntimeError):
        return False
    c = load_folder(codec)
    frames = math.ceil(float(r["window_seconds"]) * c.frame_rate - 1e-9)
    return (meta.get("codec_hash") == c.weight_hash() and int(meta.get("channels", 0)) == int(r["channels"])
            and (folder / "train.pt").exists() and valid["codes"].shape[-1] == frames)


# --- stage 2: the transformer ---------------------------------------------------------------------
def training_mask(codes: torch.Tensor, channels: int, span_prob: float, generator=None) -> torch.Tensor:
    """The masked tokens [B, K, F] (bool) of a batch of codes [B, K, F]: see the module docstring."""
    b, k, f = codes.shape
    n_q = k // channels
    ratio = torch.cos(math.pi / 2 * torch.rand(b, generator=generator))                  # (0, 1]
    m = torch.rand(b, k, f, generator=generator) < ratio[:, None, None]
    m = m.view(b, n_q, channels, f).int().cummax(dim=1).values.bool().view(b, k, f)      # RVQ order
    span = torch.rand(b, generator=generator) < span_prob
    for i in torch.nonzero(span).flatten().tolist():
        n = max(1, round(float(ratio[i]) * f))
        a = int(torch.randint(0, f - n + 1, (1,), generator=generator))
        m[i] = False
        m[i, :, a:a + n] = True
    return m


def masked_loss(net: MaskedTransformer, text, codes: torch.Tensor, captions: list[str], drop: torch.Tensor,
                span_prob: float, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, per-row losses [K]) of codes [B, K, F] given captions (``drop`` [B]: condition dropped)."""
    emb = text(captions)
    mask = emb.mask.to(codes.device) * (~drop)[:, None].long()
    states = emb.tokens.to(codes.device) * mask[..., None]
    m = training_mask(codes, net.channels, span_prob, generator).to(codes.device)
    logits = net(codes.masked_fill(m, net.vocab), states, mask)                        # [B, K, F, V]
    ce = torch.nn.functional.cross_entropy(logits.permute(0, 3, 1, 2), codes, reduction="none")
    count = m.sum(dim=(0, 2))
    rows = (ce * m).sum(dim=(0, 2)) / count.clamp(min=1)
    return rows[count > 0].mean(), rows.detach()


def _captions(rng: random.Random, caps: list[list[str]], idx: list[int], p_drop: float):
    chosen, drop = [], []
    for i in idx:
        d = rng.random() < p_drop or not caps[i]
        chosen.append("" if d else rng.choice(caps[i]))
        drop.append(d)
    return chosen, torch.tensor(drop)


def new_transformer(codec, channels: int, n_q: int, r: dict, text_dim: int) -> MaskedTransformer:
    frames = math.ceil(float(r["window_seconds"]) * codec.frame_rate - 1e-9)
    return MaskedTransformer(codebooks=channels * n_q, vocab=codec.codebook_size, channels=channels,
                             hidden_size=int(r["hidden_size"]), layers=int(r["layers"]), heads=int(r["heads"]),
                             ffn_dim=int(r["ffn_dim"]), max_frames=int(r.get("max_frames", frames)),
                             text_dim=text_dim, dropout=float(r["dropout"]))


def train_transformer(recipe: dict, out: Path, manifests=()) -> Path:
    """The ``masked`` stage (resumable, multi-process): :class:`foley.families.masked.solvers.MaskedSolver`."""
    from .solvers import MaskedSolver

    return MaskedSolver(manifests, recipe, out).run()


# --- stage 3: export ------------------------------------------------------------------------------
def model_config(recipe: dict, codec) -> MaskedConfig:
    r = settings(recipe)
    return MaskedConfig(sample_rate=codec.sample_rate, channels=int(r["channels"]), frame_rate=codec.frame_rate,
                        window_seconds=float(r["window_seconds"]), max_duration=float(r["max_duration"]),
                        context_seconds=r.get("context_seconds"), text_encoder=str(r.get("text_encoder", MINILM)),
                        defaults={**SAMPLING_DEFAULTS, **recipe.get("defaults", {})},
                        extra={"recipe": recipe.get("name"), "licence": recipe.get("licence", "unknown")})


def export(recipe: dict, out: Path, dest: Path, manifests=()) -> Path:
    """Assemble the model folder: foley.json + codec/ + transformer/ + README.md (the model card)."""
    r = settings(recipe)
    codec = load_folder(codec_folder(recipe))
    net = load_transformer(Path(out) / "masked" / "final" / "transformer")
    folder = MaskedTokenModel(codec, net, model_config(recipe, codec)).save(dest, dtype=str(r["export_dtype"]))
    from .card import write_card

    write_card(folder, recipe, Path(out), net, manifests)
    return folder


def train_masked(manifests: list[Path], recipe: dict, out: Path, stages=STAGES,
                 dest: Path | None = None) -> Path | None:
    """Run the requested stages in order; each resumes or is skipped when already finished."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "recipe.json", recipe)
    if "tokens" in stages:
        encode_tokens(manifests, recipe, out)
    if "masked" in stages:
        train_transformer(recipe, out, manifests)
    if "export" in stages:
        return export(recipe, out, dest or out / "model", manifests)
    return None
