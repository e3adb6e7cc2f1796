"""What every public-model wrapper shares: quiet offline loading, placement, seeds, cards, task errors."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from ... import device as devices
from ...audio import Audio
from ...errors import ModelError, RequestError
from ...generator import Generator, ModelCard, record_used
from ...request import GenerationRequest
from .cards import HubCard

_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError, ImportError)


@contextlib.contextmanager
def offline_quiet():
    """Load from local folders only: HF_HUB_OFFLINE=1 for the duration (an existing value is kept) and the
    libraries' progress bars and load reports silenced; problems surface as our own one-line errors."""
    from diffusers.utils import logging as df_logging
    from transformers.utils import logging as tf_logging

    old_env = os.environ.get("HF_HUB_OFFLINE")
    levels = tf_logging.get_verbosity(), df_logging.get_verbosity()
    if old_env is None:
        os.environ["HF_HUB_OFFLINE"] = "1"
    tf_logging.set_verbosity_error()
    df_logging.set_verbosity_error()
    tf_bars = tf_logging.is_progress_bar_enabled()
    tf_logging.disable_progress_bar()
    df_logging.disable_progress_bar()
    try:
        yield
    finally:
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        tf_logging.set_verbosity(levels[0])
        df_logging.set_verbosity(levels[1])
        if tf_bars:
            tf_logging.enable_progress_bar()
        df_logging.enable_progress_bar()


def load_error(folder: Path, what: str, e: Exception) -> ModelError:
    reason = " ".join(str(e).split())[:300] or type(e).__name__
    return ModelError(f"{folder}: cannot load {what} ({reason}); re-download the folder or check it is a {what}")


def check_card(card: ModelCard, folder: Path, sample_rate: int, channels: int) -> None:
    """A folder registered under a public name must hold that kind of model (rate and channels agree)."""
    if (card.sample_rate, card.channels) != (sample_rate, channels):
        raise ModelError(f"{folder}: holds a {sample_rate} Hz, {channels}-channel model but '{card.name}' is "
                         f"{card.sample_rate} Hz, {card.channels}-channel; import the right folder for this name")


def folder_card(folder: Path, family: str, sample_rate: int, channels: int, max_duration: float,
                tasks: tuple[str, ...]) -> ModelCard:
    """A card for a folder with no registry entry (a user's own fine-tune in a public layout)."""
    return ModelCard(name=Path(folder).name, family=family, weights=str(folder), sample_rate=sample_rate,
                     channels=channels, max_duration=max_duration, tasks=tasks,
                     licence="unknown (a local folder: check where the weights came from)")


def unsupported(card: ModelCard, task: str) -> RequestError:
    """The error for a task this model cannot do, naming the public models that can (callers going through
    ``Generator.check`` get every registered model named)."""
    from .cards import PUBLIC_CARDS

    others = [c.name for c in PUBLIC_CARDS.values() if task in c.tasks and c.name != card.name]
    hint = f"; models that can: {', '.join(others)}" if others else ""
    return RequestError(f"model '{card.name}' cannot do '{task}' (it supports: {', '.join(card.tasks)}){hint}")


def fit(samples: np.ndarray, frames: int) -> np.ndarray:
    """Pad with zeros or trim the last axis of ``samples`` [..., T] to ``frames``."""
    if samples.shape[-1] >= frames:
        return samples[..., :frames]
    pad = [(0, 0)] * (samples.ndim - 1) + [(0, frames - samples.shape[-1])]
    return np.pad(samples, pad)


class PublicGenerator(Generator):
    """Base of the public generators: ``from_folder`` loads on the placement :mod:`foley.device` chooses.

    Subclasses set ``family`` and implement ``_load(folder, placement) -> model``, ``_describe(model)
    -> (sample_rate, channels, max_duration)`` and the Generator methods.
    """

    family = ""
    tasks: tuple[str, ...] = ("generate",)

    def __init__(self, model, card: ModelCard, folder: Path, placement: devices.Placement):
        self.model, self.card, self.folder, self.placement = model, card, Path(folder), placement
        self._hash: str | None = None

    @classmethod
    def from_folder(cls, folder: str | Path, card: ModelCard | None = None, device: str | None = None,
                    dtype: str | None = None, offload: bool | None = None, vocoder: str | None = None):
        """Load ``folder`` (a public layout). ``device``/``dtype``/``offload`` override :mod:`foley.device`'s
        choice; ``vocoder`` exists for our own families only (these models bring their own)."""
        if vocoder not in (None, "auto"):
            raise RequestError(f"--vocoder {vocoder}: public models bring their own vocoder or decoder; drop it")
        folder = Path(folder)
        placement = devices.choose(devices.weights_bytes(folder), device=device, dtype=dtype, offload=offload)
        with offline_quiet():
            try:
                model = cls._load(folder, placement)
            except ModelError:
                raise
            except _LOAD_ERRORS as e:
                raise load_error(folder, cls.__name__.removesuffix("Generator"), e) from None
        sr, ch, max_dur = cls._describe(model)
        if card is None:
            card = folder_card(folder, cls.family, sr, ch, max_dur, cls.tasks)
        else:
            check_card(card, folder, sr, ch)
            if max_dur < card.max_duration:  # a smaller look-alike checkpoint: its own limit applies
                from dataclasses import replace

                card = replace(card, max_duration=max_dur)
        return cls(model, card, folder, placement)

    @classmethod
    def _load(cls, folder: Path, placement: devices.Placement):
        raise NotImplementedError

    @classmethod
    def _describe(cls, model) -> tuple[int, int, float]:
        raise NotImplementedError

    # --- shared behaviour -------------------------------------------------------------------------
    def default(self, key: str, fallback):
        d = self.card.defaults if isinstance(self.card, HubCard) else {}
        return d.get(key, fallback)

    def weight_hash(self) -> str:
        if self._hash is None:
            from . import hub

            entry = next((e for e in hub.read_index().values() if Path(e.get("path", "")) == self.folder), None)
            self._hash = entry.get("fingerprint") if entry else None
            self._hash = self._hash or hub.fingerprint(self.folder)
        return self._hash

    def edit(self, audio: Audio, prompt, task: str = "style_transfer", **kwargs) -> list[Audio]:
        wanted = prompt.task if isinstance(prompt, GenerationRequest) else task
        if wanted not in self.card.tasks:
            raise unsupported(self.card, wanted)
        return super().edit(audio, prompt, task=task, **kwargs)

    def finish(self, samples: np.ndarray, r: GenerationRequest, seed: int, variation: int,
               settings: dict, frames: int | None = None) -> Audio:
        """Samples [C, T] (or [T]) at the model rate -> Audio with provenance (``meta``)."""
        x = np.nan_to_num(np.asarray(samples, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        x = x[None] if x.ndim == 1 else x
        if frames is not None:
            x = fit(x, frames)
        audio = Audio(np.ascontiguousarray(x), self.sample_rate)
        audio.meta = self.provenance(r, seed, variation)
        audio.meta["model"]["folder"] = str(self.folder)
        # the request records the steps and guidance used; the scheduler (a diffusers class name when the
        # request left it unset) only in "settings", since the request takes our scheduler names
        record_used(audio.meta, {k: v for k, v in settings.items() if k != "scheduler"})
        audio.meta["settings"] = settings
        audio.meta["placement"] = self.placement.describe()
        return audio

    def frames_for(self, seconds: float) -> int:
        return int(round(seconds * self.sample_rate))

    def check_settings(self, r: GenerationRequest, scheduler: bool = True, steps: bool = True,
                       negative: bool = True) -> None:
        """Reject request fields this model has no use for, instead of silently ignoring them."""
        for field, allowed in (("scheduler", scheduler), ("steps", steps), ("negative_prompt", negative)):
            if not allowed and getattr(r, field) is not None:
                raise RequestError(f"model '{self.card.name}' has no {field.replace('_', ' ')} setting; drop it")


class NotAGenerator:
    """Mixin for loaded models that do not generate (codecs, CLAP): clear errors from the CLI's calls."""

    card: ModelCard
    alternatives = None  # task -> names of models that can (set by the registry)

    def _refuse(self, *_a, **_k):
        from ...family import families

        fam = families().get(self.card.family)
        what = (fam.not_generator if fam else None) or "not a generator"
        names = ", ".join(self.alternatives("generate")) if self.alternatives else "see `foley models list`"
        raise RequestError(f"model '{self.card.name}' is {what}; it cannot generate. Generators: {names}")

    generate = edit = check = _refuse
