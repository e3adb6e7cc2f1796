"""Feature extractors for set metrics (FD, KID, k-NN, KL, IS): one small interface, one registry.

An extractor turns prepared audio into embeddings. The evaluator prepares the audio first (soxr
'VHQ' resampling to ``extractor.sample_rate``, conversion to ``extractor.channels``, optional
crop/pad), so an extractor never resamples or mixes itself and every number can name its policy.

The tier-3 backbones of :mod:`foley.eval.backbones` (VGGish, PANNs CNN14, LAION-CLAP) are
registered on first use through :class:`BackboneExtractor`, an adapter over their
``load_backbone(name)`` / ``embed`` / ``embed_frames`` / ``logits`` interface. Anything else (our own
audio encoder) is one call::

    register_extractor("foley-encoder", lambda: MyExtractor(), posteriors=True)  # may raise ModelError

A factory whose weights are missing raises :class:`foley.errors.ModelError` naming the files to
fetch; the report then marks that extractor's metrics "unavailable" with the message. Nothing is
ever substituted silently.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from ..audio import Audio
from ..errors import FoleyError
from ..features import MelConfig, mel_filterbank


class FeatureExtractor(ABC):
    """What the evaluator needs from an embedding model or a hand-crafted feature.

    Attributes:
        name: short registry name used in metric names (``fd_<name>``, ``kid_<name>``).
        sample_rate: the rate (Hz) the extractor expects its input audio at.
        channels: 1 (mono mix) or 2; the evaluator converts before calling.
        has_posteriors: True if :meth:`posteriors` returns class probabilities (enables KL, IS).
    """

    name: str
    sample_rate: int
    channels: int = 1
    has_posteriors: bool = False

    @property
    @abstractmethod
    def hash(self) -> str:
        """Hex content hash of the weights and settings; part of every cache key and metric record."""

    @abstractmethod
    def embed(self, audios: list[Audio]) -> np.ndarray:
        """Clip embeddings of prepared audio -> float array [N, D] (one row per clip)."""

    def embed_frames(self, audios: list[Audio]) -> list[np.ndarray]:
        """Frame embeddings per clip -> list of [T_i, D]; FD pools them. Default: the clip embedding."""
        return [e[None, :] for e in self.embed(audios)]

    def posteriors(self, audios: list[Audio]) -> np.ndarray:
        """Class probabilities [N, K] (rows sum to 1); only if ``has_posteriors``."""
        raise NotImplementedError(f"extractor '{self.name}' has no class posteriors")

    def describe(self) -> dict:
        """Everything needed to compare a number computed with this extractor."""
        return {"name": self.name, "hash": self.hash, "sample_rate": self.sample_rate,
                "channels": self.channels, "has_posteriors": self.has_posteriors}


class LogMelExtractor(FeatureExtractor):
    """Deterministic hand-crafted features, no weights: natural-log magnitude mel frames.

    Frames: log-mel vectors [T, n_mels] (Hann STFT, centred, reflect padding, Slaney mel; the
    :class:`~foley.features.MelConfig` conventions). Clip embedding: per-band mean and standard
    deviation over frames, [2 * n_mels]. Computed with numpy/librosa (no torch), float64.
    """

    name = "logmel"
    version = 1  # bump when the computation changes: it is part of the hash, so caches refresh

    def __init__(self, cfg: MelConfig | None = None):
        self.cfg = cfg or MelConfig()
        self.sample_rate = self.cfg.sample_rate

    @property
    def hash(self) -> str:
        blob = json.dumps({"extractor": "logmel", "version": self.version, "mel": self.cfg.to_dict()},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _frames_one(self, audio: Audio) -> np.ndarray:
        import librosa

        c = self.cfg
        y = audio.samples.astype(np.float64).mean(axis=0)
        if len(y) < c.n_fft:
            y = np.pad(y, (0, c.n_fft - len(y)))
        mag = np.abs(librosa.stft(y, n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
                                  window="hann", center=True, pad_mode="reflect"))
        mag = mag[:, : max(1, len(y) // c.hop_length)]
        mel = mel_filterbank(c).astype(np.float64) @ mag
        return np.log(np.maximum(mel, c.log_floor)).T

    def embed_frames(self, audios: list[Audio]) -> list[np.ndarray]:
        return [self._frames_one(a) for a in audios]

    def embed(self, audios: list[Audio]) -> np.ndarray:
        return np.stack([clip_embedding(f) for f in self.embed_frames(audios)])

    def describe(self) -> dict:
        d = super().describe()
        d.update(kind="hand-crafted log-mel (no weights)", version=self.version, mel=self.cfg.to_dict(),
                 frames="log-mel vectors [T, n_mels]", embedding="per-band mean and sd over frames")
        return d


def clip_embedding(frames: np.ndarray) -> np.ndarray:
    """Per-dimension mean and standard deviation over frames [T, D] -> [2 D]."""
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0)])


class BackboneExtractor(FeatureExtractor):
    """Adapter from a :mod:`foley.eval.backbones` backbone to this interface.

    Posteriors (backbones with ``logits``, i.e. PANNs): softmax over the class logits, the
    distribution audioldm_eval's ``kl_softmax`` and IS use.
    """

    def __init__(self, backbone):
        self.backbone = backbone
        self.name = backbone.name
        self.sample_rate = int(backbone.sample_rate)
        self.channels = 1
        self.has_posteriors = hasattr(backbone, "logits")
        self._memo: tuple[list, tuple] | None = None  # (the very list, outputs): holding it keeps its id unique

    @property
    def hash(self) -> str:
        return str(self.backbone.hash)

    def _outputs(self, audios: list[Audio]) -> tuple:
        if self._memo is None or self._memo[0] is not audios:
            both = getattr(self.backbone, "embed_and_logits", None)
            if both is not None:
                out = both(audios)
            else:
                out = (self.backbone.embed(audios), self.backbone.logits(audios) if self.has_posteriors else None)
            self._memo = (audios, out)
        return self._memo[1]

    def embed(self, audios: list[Audio]) -> np.ndarray:
        return np.asarray(self._outputs(audios)[0])

    def embed_frames(self, audios: list[Audio]) -> list[np.ndarray]:
        if hasattr(self.backbone, "embed_frames"):
            return [np.asarray(f) for f in self.backbone.embed_frames(audios)]
        return super().embed_frames(audios)

    def posteriors(self, audios: list[Audio]) -> np.ndarray:
        if not self.has_posteriors:
            return super().posteriors(audios)
        from scipy.special import softmax

        return softmax(np.asarray(self._outputs(audios)[1], np.float64), axis=1)

    def describe(self) -> dict:
        d = dict(self.backbone.describe())
        d.update(channels=self.channels, has_posteriors=self.has_posteriors,
                 frames="backbone frame embeddings" if hasattr(self.backbone, "embed_frames")
                 else "one clip embedding per item")
        if self.has_posteriors:
            d["posteriors"] = "softmax over the class logits"
        return d


# --- registry ----------------------------------------------------------------------------------
_REGISTRY: dict[str, Callable[[], FeatureExtractor]] = {"logmel": LogMelExtractor}
_POSTERIORS: dict[str, bool] = {"logmel": False}
_PLUGINS_LOADED = False
# Plugins ("module:function", each registering its extractors) run once before the first lookup. A table, not an
# import: they build on this module (FeatureExtractor, register_extractor), so it must not import them.
PLUGINS: list[str] = ["foley.eval.encoder:register_encoder"]  # tier 2: our encoder, named foley-encoder-<hash8>


def register_extractor(name: str, factory: Callable[[], FeatureExtractor], posteriors: bool = False) -> None:
    """Make ``name`` available to ``foley eval``; ``factory()`` builds it (may raise ModelError).

    ``posteriors``: whether it gives class posteriors (then KL and IS are in the default metrics).
    """
    _REGISTRY[name] = factory
    _POSTERIORS[name] = posteriors


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for spec in PLUGINS:
        module, _, function = spec.partition(":")
        getattr(importlib.import_module(module), function)()
    try:
        from .backbones import BACKBONES, load_backbone
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("foley.eval.backbones"):
            raise
        return
    for name, spec in BACKBONES.items():
        if name not in _REGISTRY:
            register_extractor(name, lambda n=name: BackboneExtractor(load_backbone(n)),
                               posteriors=spec.factory.endswith(":PannsBackbone"))


def extractor_names() -> list[str]:
    """Registered extractor names (``logmel`` first, then our encoder, then backbones)."""
    _load_plugins()
    return list(_REGISTRY)


def gives_posteriors(name: str) -> bool:
    """Whether the registered extractor ``name`` declares class posteriors."""
    _load_plugins()
    return _POSTERIORS.get(name, False)


def get_extractor(name: str) -> FeatureExtractor:
    """Build a registered extractor. Unknown names raise FoleyError; missing weights raise ModelError."""
    _load_plugins()
    if name not in _REGISTRY:
        raise FoleyError(f"unknown feature extractor '{name}'; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]()
