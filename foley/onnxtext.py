"""The MiniLM sentence encoder without torch: the `tokenizers` library and an onnxruntime graph.

``encoder(threads)`` gives a callable like :func:`foley.text.get_text_encoder`'s (prompts -> :class:`TextEmbedding`
of numpy arrays: token states, mask, the mean-pooled L2-normalised vector) for the families' ``--backend onnx``.
The graph is exported once (that step imports torch and transformers) into ``$FOLEY_HOME/onnx/<name>-<key>/``, the
key naming the package's weights file (size and modification time), and checked there against the torch encoder.
Importing this module imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import json
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import ModelError
from .text import MINILM, TextEmbedding, minilm_path

FILE, META = "text_encoder.onnx", "text_encoder.json"
MAX_LENGTH = 64  # as foley.text's encoders


def key() -> str:
    """The installed MiniLM's identity: its weights file's size and modification time (a reinstall exports again)."""
    st = (Path(minilm_path()) / "model.safetensors").stat()
    return f"{MINILM}-{st.st_size:x}-{st.st_mtime_ns:x}"


def folder() -> Path:
    from .paths import home

    return home() / "onnx" / key()


def export(dest: Path) -> Path:
    """Export the torch encoder's transformer to ``dest/text_encoder.onnx`` (ids and mask in, token states out),
    checked against torch on a few prompts; atomic (a killed export leaves nothing)."""
    import torch
    from transformers import AutoModel

    from .fsutil import atomic_path, write_json_atomic
    from .onnxrt import need_onnx, session
    from .text import get_text_encoder

    need_onnx()
    enc = get_text_encoder(MINILM)
    # traced from its own fresh copy: the process-wide encoder may sit inside another model by now (transformers'
    # composite MusicGen takes it as its text encoder), and a trace of it there lost the attention mask
    fresh = AutoModel.from_pretrained(minilm_path(), local_files_only=True).eval()
    dest.mkdir(parents=True, exist_ok=True)
    batch = enc.tokenizer(["a dog barking", "rain"], padding=True, return_tensors="pt", return_token_type_ids=False)

    class States(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    with atomic_path(dest / FILE) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on transformers' shape checks (all hold here)
        torch.onnx.export(States(fresh).eval(), (batch["input_ids"], batch["attention_mask"]), str(tmp),
                          input_names=["input_ids", "attention_mask"], output_names=["states"], opset_version=17,
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"},
                                        "states": {0: "batch", 1: "tokens"}}, dynamo=False)
        prompts = ["a long low rumble that fades out slowly over several seconds", "", "Bird song, dawn!"]
        ref = enc(prompts).pooled.numpy()
        got = OnnxText(session(tmp, 1))(prompts).pooled
        if not np.allclose(got, ref, atol=1e-4):
            raise ModelError(f"the exported text encoder differs from torch's by {np.abs(got - ref).max():.2g}; "
                             "not kept")
    write_json_atomic(dest / META, {"name": MINILM, "key": key(), "max_length": MAX_LENGTH})
    return dest / FILE


class OnnxText:
    """prompts -> :class:`TextEmbedding` (numpy) from an onnxruntime session of the exported graph."""

    dim = 384
    name = MINILM

    def __init__(self, sess):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(Path(minilm_path()) / "tokenizer.json"))
        tok.enable_truncation(MAX_LENGTH)
        tok.enable_padding(pad_id=tok.token_to_id("[PAD]") or 0, pad_token="[PAD]")
        self.tokenizer, self.session = tok, sess

    def __call__(self, prompts: list[str]) -> TextEmbedding:
        enc = self.tokenizer.encode_batch(list(prompts))
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        states = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        tokens = states * mask[..., None]
        pooled = tokens.sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)
        pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
        return TextEmbedding(tokens=tokens.astype(np.float32), mask=mask, pooled=pooled.astype(np.float32))


def ensure() -> Path:
    """The cached graph of the installed MiniLM, exported first when missing or made from other weights."""
    where = folder()
    path = where / FILE
    meta = json.loads((where / META).read_text()) if (where / META).exists() else {}
    if not path.exists() or meta.get("key") != key():
        export(where)
    return path


@lru_cache(maxsize=2)
def encoder(threads: int, name: str = MINILM) -> OnnxText:
    """The process's torch-free encoder (exported on first use); only MiniLM has one."""
    if name != MINILM:
        raise ModelError(f"the onnx backend encodes text with {MINILM} only; this model uses {name} (use "
                         "--backend torch)")
    from .onnxrt import session

    return OnnxText(session(ensure(), threads))
