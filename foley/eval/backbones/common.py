"""Shared parts of the tier-3 backbones: input preparation, strict loading, safe checkpoint reading."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ...audio import Audio
from ...errors import AudioError, ModelError
from .spec import BackboneSpec, CheckedFile, checksum_status, combined_hash

RESAMPLER = "soxr VHQ"
CHANNEL_POLICY = "mean of all channels"
MAX_LISTED_KEYS = 6  # keys named in a mismatch message before "+N more"


class BaseBackbone:
    """Provenance and input preparation common to every backbone.

    Attributes:
        name, sample_rate, dim: from the spec.
        hash: sha256[:12] of the weight file (several weight files: of their sorted name=sha256 lines).
        checksum: "verified" (published digest matched), "user" (your digest matched) or "unverified".
        files: {official file name: full sha256}.
        settings: every preprocessing choice that changes the numbers (stored next to each metric).
    """

    def __init__(self, spec: BackboneSpec, checked: Mapping[str, CheckedFile], device: str = "cpu"):
        self.spec = spec
        self.name = spec.name
        self.sample_rate = spec.sample_rate
        self.dim = spec.dim
        self.hash = combined_hash(checked)
        self.checksum = checksum_status(checked)
        self.files = {n: c.sha256 for n, c in checked.items()}
        self._status = {n: c.status for n, c in checked.items()}
        self.device = device
        self.settings: dict = {"sample_rate": spec.sample_rate, "resampler": RESAMPLER,
                               "channels": CHANNEL_POLICY}

    def describe(self) -> dict:
        """Everything needed to compare a number made with this backbone (JSON-serialisable)."""
        return {"name": self.name, "hash": self.hash, "sample_rate": self.sample_rate, "dim": self.dim,
                "checksum": self.checksum,
                "files": {n: {"sha256": s, "checksum": self._status[n]} for n, s in self.files.items()},
                "licence": self.spec.licence, "reference": self.spec.reference, "settings": dict(self.settings)}

    def prepare(self, audio: Audio) -> np.ndarray:
        """Audio of any rate and channel count -> mono float32 samples [T] at ``self.sample_rate``."""
        if not isinstance(audio, Audio):
            raise AudioError(f"{self.name} expects foley.audio.Audio items, got {type(audio).__name__}")
        mono = audio.to_mono()
        if mono.sample_rate != self.sample_rate:
            mono = mono.resample(self.sample_rate, quality="VHQ")
        x = mono.samples[0]
        if not np.isfinite(x).all():
            raise AudioError(f"{self.name}: input audio contains NaN or infinite samples")
        return np.ascontiguousarray(x, dtype=np.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, hash={self.hash!r}, checksum={self.checksum!r})"


def _list(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED_KEYS])
    return shown + (f" (+{len(keys) - MAX_LISTED_KEYS} more)" if len(keys) > MAX_LISTED_KEYS else "")


def check_keys(expected: Mapping[str, tuple[int, ...]], state: Mapping, what: str, arch: str) -> None:
    """Compare a checkpoint's keys and shapes with the architecture's; raise naming every difference.

    Args:
        expected: {key: shape} the architecture needs.
        state: the checkpoint's {key: tensor or array}.
        what: the file (for the message).
        arch: the architecture's name (for the message).
    """
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = [f"{k} {tuple(state[k].shape)} != {tuple(expected[k])}" for k in sorted(expected)
                if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(expected[k])]
    not_arrays = sorted(k for k in expected if k in state and not hasattr(state[k], "shape"))
    problems = []
    if missing:
        problems.append(f"missing keys {_list(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_list(unexpected)}")
    if reshaped:
        problems.append(f"shape mismatch {_list(reshaped)}")
    if not_arrays:
        problems.append(f"non-tensor values {_list(not_arrays)}")
    if problems:
        raise ModelError(f"{what}: not a {arch} checkpoint: {'; '.join(problems)}")


def load_strict(module, state: Mapping, what: str, arch: str) -> None:
    """``module.load_state_dict(state, strict=True)`` after :func:`check_keys` (clear one-line errors)."""
    import torch

    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    check_keys(expected, state, what, arch)
    module.load_state_dict({k: torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v
                            for k, v in state.items()}, strict=True)


def _numpy_globals() -> list:
    """The numpy types an array pickled inside a torch checkpoint needs (allowed for weights_only)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    dtypes = {type(np.dtype(t)) for t in (np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_)}
    return [_reconstruct, np.ndarray, np.dtype, *dtypes]


def _refused(e: pickle.UnpicklingError) -> bool:
    """True when ``weights_only`` refused a global (the file is fine but holds more than tensors)."""
    return "weights only load failed" in str(e).lower()


def read_checkpoint(checked: CheckedFile):
    """Read a torch checkpoint file safely.

    Tries ``weights_only=True``, then again allowing numpy arrays. A file that still needs full
    unpickling (training-state objects) is read with ``weights_only=False`` only when its digest was
    verified (published or user-given); an unverified file is refused. A corrupt file is a ModelError.
    """
    import torch

    path: Path = checked.path
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            if not _refused(e):
                raise
        try:
            with torch.serialization.safe_globals(_numpy_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            if not _refused(e):
                raise
            if checked.status == "unverified":
                raise ModelError(f"{path}: holds pickled objects other than tensors and arrays, and its "
                                 f"checksum is not verified; refusing to unpickle it") from None
        # Full unpickling stays for official backbone files that pickle training objects: reached only when the
        # file's SHA-256 matched a published (or user-given) digest above, so its bytes are the ones released.
        return torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelError(f"{path}: unreadable torch checkpoint ({reason}); re-download it") from None
