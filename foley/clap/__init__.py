"""foley-clap: our own contrastive audio-text model (:mod:`.model`, inference in :mod:`.embedder`, training in
:mod:`.train`). Used by ``foley clap embed|score|search``, the CLAP metrics of ``foley eval`` (named
``clap_foley-clap-<hash8>``) and best-of-N reranking.

Weights: the folder in ``$FOLEY_CLAP``, else ``models/foley-clap``. Importing this package does not import torch.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

ENV_VAR = "FOLEY_CLAP"
FOLDER_NAME = "foley-clap"


def clap_dir() -> Path:
    """``$FOLEY_CLAP`` if set, else ``<models_dir>/foley-clap``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    from ..paths import models_dir

    return models_dir() / FOLDER_NAME


@lru_cache(maxsize=4)
def _load(folder: str):
    from .embedder import FoleyClap

    return FoleyClap.from_folder(folder)


def load_clap(folder: str | os.PathLike | None = None):
    """The :class:`~foley.clap.embedder.FoleyClap` in ``folder`` (default :func:`clap_dir`), cached per folder."""
    return _load(str(Path(folder if folder is not None else clap_dir()).expanduser().resolve()))
