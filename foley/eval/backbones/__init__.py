"""Tier 3 of the evaluation suite: real pre-trained backbones, loaded from their official files.

Nothing is downloaded. Each backbone loads the publisher's files from a path or from
``$FOLEY_HOME/weights/<folder>/`` (``FOLEY_HOME`` defaults to ``~/.cache/foley``), checks their
checksums (see :mod:`.spec`), and loads them strictly into our torch re-implementation of the
architecture. Without the files, :func:`load_backbone` raises :class:`~foley.errors.ModelError` at
once with the file names, URLs and folder; :func:`unavailable_reason` gives the same line without
raising, so a metric can be reported as unavailable instead of being replaced by something else.

A backbone object offers:

- ``name``, ``hash`` (sha256[:12] of the weight file), ``sample_rate``, ``dim``, ``checksum``
  ("verified" | "user" | "unverified"), ``files`` ({name: sha256}), ``settings`` (every
  preprocessing choice, to store next to a number) and ``describe()`` (all of it as one dict);
- ``embed(audios) -> np.ndarray [N, dim]``, one row per :class:`~foley.audio.Audio`;
- PANNs only: ``logits(audios)`` / ``posteriors(audios) -> [N, 527]``, ``embed_and_logits(audios)`` (one
  pass for both) and ``labels`` (AudioSet names when ``class_labels_indices.csv`` is present, else None);
  posteriors are sigmoid (AudioSet is multi-label: rows do not sum to 1);
- VGGish only: ``embed_frames(audios) -> list of [n_i, 128]`` (one row per 0.96 s example, as FAD uses);
- CLAP only: ``embed_text(texts) -> [M, 512]`` and ``clap_score(audios, texts) -> [N]`` (cosine).

Importing this package does not import torch.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np

from .spec import BackboneSpec, WeightFile, default_folder, get_spec, locate, verify
from .spec import unavailable_reason as _unavailable_reason

_TORCHVGGISH = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/"
_PANNS = "https://zenodo.org/records/3987831/files/"
_CLAP = "https://huggingface.co/laion/clap-htsat-unfused/resolve/main/"
_AUDIOSET_LABELS = WeightFile(
    "class_labels_indices.csv",
    "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/class_labels_indices.csv",
    weights=False, optional=True)

_VGGISH_FILE = WeightFile("vggish-10086976.pth", _TORCHVGGISH + "vggish-10086976.pth",
                          sha256="10086976")  # torch.hub names files <name>-<sha256 prefix>.pth
_VGGISH_PCA = WeightFile("vggish_pca_params-970ea276.pth", _TORCHVGGISH + "vggish_pca_params-970ea276.pth",
                         sha256="970ea276")
_VGGISH_LICENCE = ("Apache-2.0 (VGGish weights by Google, tensorflow/models research/audioset; "
                   "PyTorch conversion by harritaylor/torchvggish)")
_PANNS_LICENCE = ("weights: Zenodo record 3987831 (CC BY 4.0 as listed there); code: MIT "
                  "(qiuqiangkong/audioset_tagging_cnn)")
_PANNS_REFERENCE = ("audioldm_eval (haoheliu): FD on the 2048-d embedding, KL and IS on the AudioSet "
                    "posteriors of PANNs CNN14 (Kong et al. 2020)")

BACKBONES: dict[str, BackboneSpec] = {
    "vggish": BackboneSpec(
        name="vggish", factory="foley.eval.backbones.vggish:VGGishBackbone", folder="vggish",
        sample_rate=16_000, dim=128, files=(_VGGISH_FILE,), licence=_VGGISH_LICENCE,
        reference=("FAD (Kilgour et al. 2019) as computed by frechet_audio_distance / audioldm_eval: raw "
                   "128-d VGGish embedding without the final ReLU and without PCA"),
        options={"postprocess": False}),
    "vggish-pca": BackboneSpec(
        name="vggish-pca", factory="foley.eval.backbones.vggish:VGGishBackbone", folder="vggish",
        sample_rate=16_000, dim=128, files=(_VGGISH_FILE, _VGGISH_PCA), licence=_VGGISH_LICENCE,
        reference=("AudioSet release features: VGGish after ReLU, PCA-whitened and quantised to 8 bits "
                   "(values 0..255)"),
        options={"postprocess": True}),
    "panns-cnn14-16k": BackboneSpec(
        name="panns-cnn14-16k", factory="foley.eval.backbones.panns:PannsBackbone", folder="panns",
        sample_rate=16_000, dim=2048,
        files=(WeightFile("Cnn14_16k_mAP=0.438.pth", _PANNS + "Cnn14_16k_mAP%3D0.438.pth",
                          md5="362fc5ff18f1d6ad2f6d464b45893f2c"), _AUDIOSET_LABELS),
        licence=_PANNS_LICENCE, reference=_PANNS_REFERENCE,
        options={"window_size": 512, "hop_size": 160, "mel_bins": 64, "fmin": 50.0, "fmax": 8_000.0}),
    "panns-cnn14-32k": BackboneSpec(
        name="panns-cnn14-32k", factory="foley.eval.backbones.panns:PannsBackbone", folder="panns",
        sample_rate=32_000, dim=2048,
        files=(WeightFile("Cnn14_mAP=0.431.pth", _PANNS + "Cnn14_mAP%3D0.431.pth",
                          md5="541141fa2ee191a88f24a3219fff024e"), _AUDIOSET_LABELS),
        licence=_PANNS_LICENCE, reference=_PANNS_REFERENCE,
        options={"window_size": 1024, "hop_size": 320, "mel_bins": 64, "fmin": 50.0, "fmax": 14_000.0}),
    "clap-htsat-unfused": BackboneSpec(
        name="clap-htsat-unfused", factory="foley.eval.backbones.clap:ClapBackbone",
        folder="clap-htsat-unfused", sample_rate=48_000, dim=512,
        files=(WeightFile("model.safetensors", _CLAP + "model.safetensors", alternatives=("pytorch_model.bin",)),
               WeightFile("config.json", _CLAP + "config.json", weights=False),
               WeightFile("preprocessor_config.json", _CLAP + "preprocessor_config.json", weights=False,
                          alternatives=("processor_config.json",)),
               WeightFile("tokenizer_config.json", _CLAP + "tokenizer_config.json", weights=False),
               WeightFile("tokenizer.json", _CLAP + "tokenizer.json", weights=False, alternatives=("vocab.json",)),
               WeightFile("merges.txt", _CLAP + "merges.txt", weights=False, optional=True)),
        licence="Apache-2.0 (laion/clap-htsat-unfused model card)",
        reference="CLAP score: cosine of LAION-CLAP (HTSAT, unfused) audio and text embeddings, via transformers"),
}


@runtime_checkable
class Backbone(Protocol):
    """What every tier-3 backbone offers (PANNs adds ``posteriors``/``logits``/``labels``)."""

    name: str
    hash: str
    sample_rate: int
    dim: int
    checksum: str

    def embed(self, audios: list) -> np.ndarray: ...

    def describe(self) -> dict: ...


def load_backbone(name: str, weights: str | os.PathLike | None = None, *,
                  checksums: Mapping[str, str] | None = None, device: str = "cpu") -> Backbone:
    """Load a registered backbone from its official files.

    Args:
        name: a key of :data:`BACKBONES`.
        weights: folder holding the official files, or the path of the weight file; None means
            ``$FOLEY_HOME/weights/<folder>/``.
        checksums: {official file name: sha256 hex (>= 8 digits)} replacing the published digest,
            for a file used on purpose.
        device: torch device to run on.

    Raises:
        ModelError: unknown name, a missing file (names the files, URLs and folder; no network),
            a checksum mismatch, or a checkpoint whose keys/shapes differ from the architecture.
    """
    spec = get_spec(name, BACKBONES)
    paths = locate(spec, weights)
    checked = verify(spec, paths, checksums)
    module_name, cls_name = spec.factory.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(spec, checked, device=device)


def unavailable_reason(name: str, weights: str | os.PathLike | None = None) -> str | None:
    """Why ``name`` cannot be loaded (one line: files, URLs, folder), or None when its files are there."""
    return _unavailable_reason(get_spec(name, BACKBONES), weights)


__all__ = ["BACKBONES", "Backbone", "BackboneSpec", "WeightFile", "default_folder", "load_backbone",
           "unavailable_reason"]
