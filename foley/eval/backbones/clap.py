"""LAION-CLAP (HTSAT audio encoder, RoBERTa text encoder) through transformers ``ClapModel``.

Loads a local folder in the Hugging Face layout of ``laion/clap-htsat-unfused`` (config.json,
model.safetensors or pytorch_model.bin, preprocessor_config.json, tokenizer files) with
``local_files_only=True`` and ``HF_HUB_OFFLINE=1`` while loading, so nothing touches the network.
Loading is strict: any missing, unexpected or re-shaped key is an error naming the keys.

Audio is mixed to mono, resampled to 48 kHz and, when longer than the processor's window
(10 s for the official files), cut to its *first* window, so the processor's random truncation
(``rand_trunc``) never runs and embeddings are deterministic; shorter clips are repeat-padded by the
processor (``repeatpad``). Embeddings are L2-normalised projections (512-d for the official model);
the CLAP score of a pair is the cosine of its audio and text embeddings, in [-1, 1].
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

import numpy as np
import torch

from ...audio import Audio
from ...errors import ModelError
from .common import BaseBackbone, _list
from .spec import BackboneSpec, CheckedFile

BATCH = 8


@contextlib.contextmanager
def _offline_quiet():
    """HF_HUB_OFFLINE=1 (an existing value is respected) and transformers' load report and progress
    bars silenced for the duration; problems are raised by us as one-line errors instead."""
    from transformers.utils import logging as hf_logging

    old_env, old_level = os.environ.get("HF_HUB_OFFLINE"), hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    if old_env is None:
        os.environ["HF_HUB_OFFLINE"] = "1"
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        hf_logging.set_verbosity(old_level)
        if bars:
            hf_logging.enable_progress_bar()


class ClapBackbone(BaseBackbone):
    """CLAP audio/text embeddings: ``embed`` [N, D], ``embed_text`` [M, D], ``clap_score`` [N]."""

    def __init__(self, spec: BackboneSpec, checked: Mapping[str, CheckedFile], device: str = "cpu"):
        super().__init__(spec, checked, device)
        from transformers import ClapModel, ClapProcessor

        main = checked[spec.files[0].name]
        folder = main.path.parent
        stray = [c.path for c in checked.values() if c.path.parent != folder or c.path.name not in c.spec.names]
        if stray:
            raise ModelError(f"{stray[0]}: CLAP loads from one folder in the Hugging Face layout; put "
                             f"{', '.join(wf.name for wf in spec.files)} together in one folder and pass that folder")
        what = str(folder)
        with _offline_quiet():
            try:
                # ignore_mismatched_sizes only makes transformers *report* re-shaped keys; any report is an error below
                model, info = ClapModel.from_pretrained(folder, local_files_only=True, output_loading_info=True,
                                                        use_safetensors=main.path.suffix == ".safetensors",
                                                        ignore_mismatched_sizes=True)
                self.processor = ClapProcessor.from_pretrained(folder, local_files_only=True)
            except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
                reason = " ".join(str(e).split())[:300] or type(e).__name__
                raise ModelError(f"{what}: cannot load CLAP ({reason})") from None
        problems = []
        for label, key in (("missing keys", "missing_keys"), ("unexpected keys", "unexpected_keys"),
                           ("shape mismatch", "mismatched_keys")):
            keys = sorted(_key_text(k) for k in info.get(key, ()))
            if keys:
                problems.append(f"{label} {_list(keys)}")
        if info.get("error_msgs"):
            problems.append(f"errors {_list([str(m) for m in info['error_msgs']])}")
        if problems:
            raise ModelError(f"{what}: not a CLAP checkpoint matching its config.json: {'; '.join(problems)}")
        self.model = model.eval().to(device)
        self.dim = int(model.config.projection_dim)
        fe = self.processor.feature_extractor
        self.window_samples = int(fe.nb_max_samples)
        if int(fe.sampling_rate) != self.sample_rate:
            raise ModelError(f"{what}: preprocessor expects {fe.sampling_rate} Hz, CLAP's spec says {self.sample_rate}")
        self.settings.update({
            "crop": f"first {self.window_samples / self.sample_rate:g} s (longer clips are cut, deterministic)",
            "padding": f"processor '{fe.padding}' up to {self.window_samples / self.sample_rate:g} s",
            "front_end": (f"ClapFeatureExtractor: {fe.feature_size} mel bands, fft {fe.fft_window_size}, "
                          f"hop {fe.hop_length}, {fe.frequency_min:g}-{fe.frequency_max:g} Hz"),
            "embedding": f"audio_projection, L2-normalised, {self.dim}-d",
            "score": "cosine of audio and text embeddings, in [-1, 1]",
        })

    @torch.no_grad()
    def embed(self, audios: list[Audio]) -> np.ndarray:
        """[N, D] float32 unit-norm audio embeddings."""
        waves = [self.prepare(a)[: self.window_samples] for a in audios]
        out = [np.zeros((0, self.dim), np.float32)]
        for s in range(0, len(waves), BATCH):
            inputs = self.processor.feature_extractor(waves[s:s + BATCH], sampling_rate=self.sample_rate,
                                                      return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in inputs.items()}
            out.append(_unit(self.model.get_audio_features(**inputs)))
        return np.concatenate(out)

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> np.ndarray:
        """[M, D] float32 unit-norm text embeddings."""
        out = [np.zeros((0, self.dim), np.float32)]
        for s in range(0, len(texts), BATCH):
            inputs = self.processor.tokenizer(list(texts[s:s + BATCH]), padding=True, truncation=True,
                                              return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
            out.append(_unit(self.model.get_text_features(**inputs)))
        return np.concatenate(out)

    def clap_score(self, audios: list[Audio], texts: list[str]) -> np.ndarray:
        """[N] float32 cosine similarity of each audio with its own text (pairs by position)."""
        if len(audios) != len(texts):
            raise ModelError(f"clap_score needs one text per audio, got {len(audios)} audios and {len(texts)} texts")
        return np.sum(self.embed(audios) * self.embed_text(texts), axis=1).astype(np.float32)


def _unit(features) -> np.ndarray:
    """Projected features (a tensor, or a model output whose ``pooler_output`` holds them) -> unit rows."""
    x = features if isinstance(features, torch.Tensor) else features.pooler_output
    return torch.nn.functional.normalize(x.float(), dim=-1).cpu().numpy().astype(np.float32)


def _key_text(key) -> str:
    """A loading-info entry as text: a key, or (key, checkpoint shape, model shape) -> "key (a, b) != (c, d)"."""
    if isinstance(key, tuple) and len(key) == 3:
        return f"{key[0]} {tuple(key[1])} != {tuple(key[2])}"
    return " ".join(map(str, key)) if isinstance(key, tuple) else str(key)
