"""Our own small weight files (foley-encoder, foley-clap): sha256, and a strict safetensors read whose
problems are one line naming the keys (a leaf: torch and safetensors are imported when called)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .errors import ModelError

MAX_LISTED_KEYS = 6


def file_sha256(path: str | os.PathLike) -> str:
    """Full hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED_KEYS])
    return shown + (f" (+{len(keys) - MAX_LISTED_KEYS} more)" if len(keys) > MAX_LISTED_KEYS else "")


def read_strict(w_path: Path, cfg_path: Path, config: dict, expected: dict) -> dict:
    """The tensors of ``w_path`` after checking them against ``expected`` (a model's ``state_dict()``) and the
    config embedded in the file's metadata against ``config``; ModelError (one line) otherwise."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(w_path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise ModelError(f"{w_path}: unreadable safetensors file ({e})") from None
    if "config" in meta and json.loads(meta["config"]) != json.loads(json.dumps(config)):
        raise ModelError(f"{cfg_path}: differs from the config embedded in {w_path.name}; "
                         "restore the folder's original config.json")
    shapes = {k: tuple(v.shape) for k, v in expected.items()}
    missing, unexpected = sorted(set(shapes) - set(state)), sorted(set(state) - set(shapes))
    reshaped = [f"{k} {tuple(state[k].shape)} != {shapes[k]}" for k in sorted(shapes)
                if k in state and tuple(state[k].shape) != shapes[k]]
    problems = [f"{what} {_listed(keys)}" for what, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", reshaped)) if keys]
    if problems:
        raise ModelError(f"{w_path}: does not match its config.json: {'; '.join(problems)}")
    return state
