"""Tier 2 of the evaluation suite: our own audio encoder (``foley-encoder``).

A small CNN classifier over 16 kHz mono log-mel, trained on the corpora's labels and attributes
(:mod:`.labels`, :mod:`.model`, training in :mod:`.train`). ``foley eval`` uses it through
:class:`.extractor.EncoderExtractor` for FD on its embedding and KL(reference ‖ generated) / IS on its
class posteriors, under the name ``foley-encoder-<hash8>`` (first 8 hex of the weights file's sha256),
so the hash is part of every metric name (``fd_foley-encoder-1a2b3c4d``, ``kl_...``, ``is_...``).

Weights: the folder in ``$FOLEY_ENCODER``, else ``models/foley-encoder`` of the shipped models
(:func:`foley.registry.models_dir`). Importing this package does not import torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import ModelError

ENV_VAR = "FOLEY_ENCODER"
FOLDER_NAME = "foley-encoder"


def encoder_dir() -> Path:
    """``$FOLEY_ENCODER`` if set, else ``<models_dir>/foley-encoder``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    from ...registry import models_dir

    return models_dir() / FOLDER_NAME


def register_encoder(folder: str | os.PathLike | None = None) -> str:
    """Register the encoder in :mod:`foley.eval.extractors`; returns the registered name.

    With weights present: ``foley-encoder-<hash8>`` (hashing the file is cheap; the model loads on first
    use). Without: ``foley-encoder``, whose factory raises ModelError saying where the weights belong,
    so its metrics are reported unavailable, never replaced.
    """
    from ..extractors import register_extractor
    from .extractor import BASE_NAME, extractor_name
    from .model import WEIGHTS_FILE, file_sha256

    where = Path(folder) if folder is not None else encoder_dir()
    weights = where / WEIGHTS_FILE
    if weights.is_file():
        digest = file_sha256(weights)
        name = extractor_name(digest)

        def factory():
            from .extractor import EncoderExtractor

            return EncoderExtractor(where, expected_hash=digest)

        register_extractor(name, factory, posteriors=True)
        return name

    def missing():
        raise ModelError(f"{weights}: foley-encoder weights not found; train them with `python -m "
                         f"foley.eval.encoder.train` (recipes/foley-encoder.sh) or set {ENV_VAR} to an encoder folder")

    register_extractor(BASE_NAME, missing, posteriors=True)
    return BASE_NAME
