"""Strict save/load of transformers models in our folders: a wrong checkpoint fails and names its keys."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelError

WEIGHTS = "model.safetensors"


def save_model(model, folder: Path, dtype: str = "float32") -> Path:
    """``save_pretrained`` into ``folder`` (config.json + model.safetensors), optionally stored as float16."""
    import copy

    import torch
    from transformers.utils import logging as tf_logging

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if dtype == "float16":
        model = copy.deepcopy(model).to(torch.float16)
    elif dtype != "float32":
        raise ModelError(f"cannot store weights as '{dtype}'; use float32 or float16")
    bars = tf_logging.is_progress_bar_enabled()
    tf_logging.disable_progress_bar()  # no "Writing model shards" bar in training logs
    try:
        model.save_pretrained(folder, safe_serialization=True)
    finally:
        if bars:
            tf_logging.enable_progress_bar()
    return folder


def mismatch(own: dict, state: dict) -> str:
    """'' when the key sets and shapes agree, else a short description naming the differing keys."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
        if keys:
            shown = ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")
            parts.append(f"{label}: {shown}")
    return "; ".join(parts)


def load_state_strict(module, weights: Path) -> None:
    """Load ``weights`` (safetensors) into ``module`` in float32; any key or shape mismatch is a ModelError."""
    from safetensors.torch import load_file

    if not weights.is_file():
        raise ModelError(f"{weights.parent}: missing {weights.name}; the model folder is incomplete")
    state = load_file(str(weights))
    problem = mismatch(module.state_dict(), state)
    if problem:
        raise ModelError(f"{weights}: checkpoint does not match its config ({problem})")
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)


def load_model(config_cls, model_cls, folder: Path):
    """Build ``model_cls(config)`` from ``folder/config.json`` and load its weights strictly (eval mode)."""
    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise ModelError(f"{folder}: missing config.json; the model folder is incomplete")
    try:
        config = config_cls.from_dict(json.loads(cfg_path.read_text(encoding="utf-8")))
        model = model_cls(config)
    except (ValueError, TypeError, KeyError, json.JSONDecodeError) as e:
        raise ModelError(f"{cfg_path}: invalid config ({' '.join(str(e).split())[:200]})") from None
    load_state_strict(model, folder / WEIGHTS)
    return model.float().eval()
