"""``foley train lm``: pre-tokenise the corpus with a trained codec, train the token decoder, export.

Stages, each in ``<run>/<stage>/`` and resumable: ``tokens`` (every clip's window encoded once: int16 codes
[N, K, F] + all captions), ``lm`` (teacher-forced cross-entropy over the delay-interleaved codes,
text cross-attention on MiniLM (or a local T5 folder: ``[lm] text_encoder``) with condition dropout for
guidance, AdamW + warm-up/cosine, EMA, validation loss, previews) and ``export`` (a model folder, see
:mod:`foley.families.lm.model`).
The codec comes from ``foley train codec`` (``[lm] codec = "<folder>"`` in the recipe).
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from ...codec.loaders import load_folder
from ...errors import FoleyError
from ...fsutil import write_json_atomic
from ...text import MINILM
from .delay import interleave, targets
from .model import SAMPLING_DEFAULTS, LMConfig, TokenLM, load_projection, save_projection

STAGES = ("tokens", "lm", "export")
LM_DEFAULTS = {"channels": 2, "window_seconds": 3.0, "max_duration": 60.0, "hidden_size": 256, "layers": 4,
               "batch_size": 16, "steps": 4000, "lr": 5e-4, "warmup": 200, "weight_decay": 0.01,
               "cfg_dropout": 0.1, "ema_decay": 0.999, "crops_per_clip": 2, "export_dtype": "float16",
               "valid_items": 64}


def settings(recipe: dict) -> dict:
    return {**LM_DEFAULTS, **recipe.get("lm", {})}


def codec_folder(recipe: dict) -> Path:
    folder = Path(settings(recipe).get("codec", "runs/codec/codec/final"))
    if not folder.is_dir():
        raise FoleyError(f"{folder}: codec not found; train it first (`foley train codec`) or set [lm] codec")
    return folder


# --- stage 1: tokens ------------------------------------------------------------------------------
def encode_tokens(manifests, recipe: dict, out: Path) -> Path:
    """Encode each clip's window once: ``<out>/tokens/{valid,train}.pt`` = codes int16 [N, K, F] + captions
    (the shared stage :func:`foley.codec.windows.encode_windows` with the ``[lm]`` settings)."""
    from ...codec.windows import encode_windows

    r = settings(recipe)
    return encode_windows(manifests, recipe, out, codec_folder(recipe), int(r["channels"]), r.get("n_q"),
                          float(r["window_seconds"]), int(r["crops_per_clip"]))


# --- stage 2: the decoder -------------------------------------------------------------------------
def lm_loss(decoder, projection, text, codes: torch.Tensor, captions: list[str], drop: torch.Tensor,
            channels: int, teacher=None, taught: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the delayed codes [B, K, F] given captions; ``drop`` [B] marks dropped conditions
    (zero states and an empty mask: the unconditional branch of guidance at sampling time). ``teacher`` (a frozen
    ``{"decoder", "projection"}``) with ``taught`` ([B] bool): those items' target is the teacher's distribution
    over the next code (soft cross-entropy), not the clip's codes."""
    pad = decoder.config.pad_token_id
    emb = text(captions)
    mask = emb.mask * (~drop)[:, None].long()
    inputs, labels = targets(interleave(codes, pad, channels), pad)
    b, k, length = inputs.shape

    def run(dec, proj, rows):
        return dec(input_ids=inputs[rows].reshape(-1, length),
                   encoder_hidden_states=proj(emb.tokens[rows]) * mask[rows][..., None],
                   encoder_attention_mask=mask[rows]).logits

    logits = run(decoder, projection, slice(None))
    if teacher is None or taught is None:
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                 ignore_index=-100)
    per = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                            ignore_index=-100, reduction="none").view(b, k, length)
    rows = taught.to(logits.device)
    with torch.no_grad():
        soft = run(teacher["decoder"], teacher["projection"], rows).softmax(-1)
    mine = logits.view(b, k, length, -1)[rows].reshape(soft.shape).log_softmax(-1)
    per = per.clone()
    per[rows] = -(soft * mine).sum(-1).view(-1, k, length)
    valid = labels != -100
    return per[valid].mean()


def _captions(rng: random.Random, caps: list[list[str]], idx: list[int], p_drop: float):
    chosen, drop = [], []
    for i in idx:
        d = rng.random() < p_drop or not caps[i]
        chosen.append("" if d else rng.choice(caps[i]))
        drop.append(d)
    return chosen, torch.tensor(drop)


def train_decoder(recipe: dict, out: Path, manifests=()) -> Path:
    """The ``lm`` stage (resumable, multi-process): :class:`foley.families.lm.solvers.LMSolver`."""
    from .solvers import LMSolver

    return LMSolver(manifests, recipe, out).run()


def _save_parts(module, folder: Path, dtype: str) -> None:
    from ...codec.storage import save_model

    save_model(module["decoder"], folder / "decoder", dtype)
    save_projection(module["projection"], folder / "text_projection", dtype)


def _preview(recipe, out, module, ema, step) -> None:
    """A few sounds from the preview prompts with the current EMA weights."""
    prompts = recipe.get("train", {}).get("preview_prompts", [])
    if not prompts:
        return
    ema.store(module.parameters())
    ema.copy_to(module.parameters())
    module.eval()
    try:
        folder = Path(out) / "lm" / "preview_model"
        _save_parts(module, folder / "lm", "float32")
        export(recipe, out, folder, parts=folder / "lm")
        from .pipeline import LMGenerator

        gen = LMGenerator.from_folder(folder)
        for i, a in enumerate(gen.generate(prompts, duration=min(4.0, gen.card.max_duration), seed=0)):
            a.save(Path(out) / "lm" / "previews" / f"step{step:06d}_{i}.wav")
    finally:
        ema.restore(module.parameters())
        module.train()


# --- stage 3: export ------------------------------------------------------------------------------
def export(recipe: dict, out: Path, dest: Path, parts: Path | None = None) -> Path:
    """Assemble the model folder: foley.json + codec/ + decoder/ + text_projection/."""
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    from ...codec.storage import load_model

    r = settings(recipe)
    parts = parts or Path(out) / "lm" / "final"
    codec = load_folder(codec_folder(recipe))
    decoder = load_model(MusicgenDecoderConfig, MusicgenForCausalLM, parts / "decoder")
    projection = load_projection(parts / "text_projection")
    decode = {k: int(r.get(k, v)) for k, v in LMConfig.__dataclass_fields__["decode"].default_factory().items()}
    cfg = LMConfig(sample_rate=codec.sample_rate, channels=int(r["channels"]), frame_rate=codec.frame_rate,
                   window_seconds=float(r["window_seconds"]), max_duration=float(r["max_duration"]),
                   defaults={**SAMPLING_DEFAULTS, **recipe.get("defaults", {})}, decode=decode,
                   text_encoder=str(r.get("text_encoder", MINILM)),
                   context_seconds=r.get("context_seconds"), discard_frames=r.get("discard_frames"),
                   extra={"recipe": recipe.get("name"), "licence": recipe.get("licence", "unknown")})
    return TokenLM(codec, decoder, projection, cfg).save(dest, dtype=str(r["export_dtype"]))


def train_lm(manifests: list[Path], recipe: dict, out: Path, stages=STAGES, dest: Path | None = None) -> Path | None:
    """Run the requested stages in order; each resumes or is skipped when already finished."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "recipe.json", recipe)
    if "tokens" in stages:
        encode_tokens(manifests, recipe, out)
    if "lm" in stages:
        train_decoder(recipe, out)
    if "export" in stages:
        return export(recipe, out, dest or out / "model")
    return None
