"""Where things live on disk: shipped models and the user's cache (a leaf: imports nothing of foley)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"


def models_dir() -> Path:
    """Where shipped models live: $FOLEY_MODELS, else the repository's models/ folder."""
    return Path(os.environ.get("FOLEY_MODELS", REPO_MODELS))


def home() -> Path:
    """The user's cache of downloaded weights and evaluation features ($FOLEY_HOME, ~/.cache/foley)."""
    return Path(os.environ.get("FOLEY_HOME") or Path.home() / ".cache" / "foley").expanduser()
