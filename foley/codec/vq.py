"""Residual vector quantisation helpers shared by inference and training (no training code imported here)."""

from __future__ import annotations


def quiet_vq() -> None:
    """vector-quantize-pytorch logs a warning through loguru on every small k-means batch."""
    try:
        from loguru import logger

        logger.disable("vector_quantize_pytorch")
    except ImportError:
        pass
