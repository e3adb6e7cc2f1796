"""The interface every model family implements; CLI, API, server and evaluator only use this."""

from __future__ import annotations

import contextlib
import platform
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import threads
from .audio import Audio
from .capabilities import Capabilities
from .errors import RequestError
from .request import GenerationRequest, make_request


@dataclass
class ModelCard:
    """What a model is and can do. ``weights`` is a repo path, a local folder or a hub id."""

    name: str
    family: str
    weights: str
    sample_rate: int
    channels: int
    max_duration: float
    tasks: tuple[str, ...] = ("generate",)
    licence: str = "unknown"
    description: str = ""
    recipe: str | None = None
    metrics: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)  # settings used when a request leaves them unset


SEED_STRIDE = 104_729  # a redrawn sample's seed: seed + k * SEED_STRIDE (k = 1, 2, ...)
MIN_EDIT_SECONDS = 0.1  # shorter input audio holds less than one latent/codec frame of most models
EXTEND_SECONDS = 5.0    # extend/continue without a longer total duration: this much more audio
# best-of-N: fn(generator, requests) -> list[Audio], installed by foley.rerank.install() (foley.load does it)
RERANK = None


def edit_input(audio) -> Audio:
    """The ``audio`` argument of ``edit``: an :class:`Audio`, or a path to an audio file (loaded)."""
    import os

    if isinstance(audio, Audio):
        return audio
    if isinstance(audio, (str, os.PathLike)):
        return Audio.load(audio)
    raise RequestError(f"edit() needs the input audio first: a foley.Audio or a file path "
                       f"(foley.Audio.load(path)), got {type(audio).__name__}")


def check_edit(audio: Audio, req: GenerationRequest) -> GenerationRequest:
    """Refuse input audio and requests an edit cannot honour; returns the request to run.

    Extend/continue: a total duration not longer than the input is refused, except that a duration equal
    to the input's (the default when none is given) means "EXTEND_SECONDS more", written into the request
    so that the sidecar records the length actually produced.
    """
    import numpy as np

    if audio.duration < MIN_EDIT_SECONDS:
        raise RequestError(f"input audio is {audio.duration * 1000:.1f} ms long ({audio.frames} "
                           f"sample{'s' * (audio.frames != 1)}); editing needs at least {MIN_EDIT_SECONDS:g} s")
    if not np.isfinite(audio.samples).all():
        raise RequestError("input audio contains NaN or infinite samples; repair or re-export it first")
    if req.task == "super_resolution" and req.cutoff_hz is not None and req.cutoff_hz >= audio.sample_rate / 2:
        raise RequestError(f"cutoff {req.cutoff_hz:g} Hz is not below the input's Nyquist frequency "
                           f"({audio.sample_rate / 2:g} Hz); give the band limit of the input")
    if req.task in ("extend", "continue") and req.duration <= audio.duration + 0.1:
        if abs(req.duration - audio.duration) > 1e-3:
            raise RequestError(f"{req.task}: the total duration {req.duration:g} s is not longer than the input "
                               f"({audio.duration:.2f} s); give a total over {audio.duration + 0.1:.2f} s, or no "
                               f"duration to add {EXTEND_SECONDS:g} s")
        req = req.model_copy(update={"duration": round(audio.duration + EXTEND_SECONDS, 6)})
    return req


class Generator(ABC):
    """A loaded model that turns requests into audio.

    Subclasses implement :meth:`_generate` (a batch of validated requests) and optionally
    :meth:`_edit`. Public methods accept either requests or keyword arguments with the same names
    as :class:`~foley.request.GenerationRequest` (``prompt``, ``duration``, ``seed``, ``steps``,
    ``guidance_scale``, ``negative_prompt``, ``scheduler``, ``num_variations``).
    """

    card: ModelCard
    # An output whose RMS stays below ``silent_dbfs`` is inaudible: generators draw it again from a derived
    # seed, at most ``silence_retries`` times (deterministic: the same request and seed give the same sound).
    silent_dbfs: float = -60.0
    silence_retries: int = 2
    # Progress hook: ``on_step(i, n)`` after each denoising step (i = 1..n of one sampling pass; batches,
    # long-form windows and redraws are further passes) or each sampled frame (token LMs: i = 1..n frames of
    # the sound). It may raise to stop the generation.
    on_step = None

    @property
    def sample_rate(self) -> int:
        return self.card.sample_rate

    @property
    def channels(self) -> int:
        return self.card.channels

    # Hint for refusals: ``alternatives(task)`` -> names of other models that can do ``task`` (the registry sets it).
    alternatives = None

    # --- the contract callers ask, never family names -------------------------------------------
    @classmethod
    def capabilities_for(cls, card: ModelCard) -> Capabilities:
        """What a model of ``card`` accepts and can do; families override to declare their settings."""
        return Capabilities(tasks=tuple(card.tasks), max_duration=card.max_duration)

    @classmethod
    def read_card(cls, folder) -> ModelCard | None:
        """A folder's card without loading weights (None when the family must load the model to know it)."""
        return None

    @property
    def capabilities(self) -> Capabilities:
        return type(self).capabilities_for(self.card)

    def check(self, request: GenerationRequest) -> None:
        """Refuse (one :class:`RequestError` line) a request this model cannot honour: task, settings, duration."""
        self.capabilities.check(request, self.card.name, self.alternatives)

    def generate(self, prompt: str | Sequence[str] | GenerationRequest | Sequence[GenerationRequest],
                 callback_on_step_end=None, **kwargs) -> list[Audio]:
        """Generate audio. Returns one :class:`Audio` per prompt and variation, in request order.

        ``callback_on_step_end(generator, step, total, info)``: called after each step (see :attr:`on_step`);
        it may raise to stop the generation."""
        reqs = self._requests(prompt, kwargs)
        for r in reqs:
            if r.task != "generate":
                raise RequestError(f"task '{r.task}' needs input audio: use edit(audio, ...)")
            self.check(r)
        best_of = any(r.best_of > 1 for r in reqs)
        if best_of and RERANK is None:
            raise RequestError("best-of-N reranking is installed by foley.load(); load the model with foley.load")
        with self._reporting(callback_on_step_end):
            return RERANK(self, reqs) if best_of else self._generate(reqs)

    def edit(self, audio: Audio, prompt: str | GenerationRequest, task: str = "style_transfer",
             callback_on_step_end=None, **kwargs) -> list[Audio]:
        """Edit ``audio`` (an Audio or a file path) following ``prompt``: style_transfer, inpaint, extend,
        super_resolution, continue."""
        audio = edit_input(audio)
        if isinstance(prompt, GenerationRequest):
            req = prompt
        elif isinstance(prompt, str):
            kwargs.setdefault("duration", audio.duration)
            req = make_request(prompt=prompt, task=task, **kwargs)
        else:
            raise RequestError(f"edit(audio, prompt): prompt must be a string or a GenerationRequest, got "
                               f"{type(prompt).__name__}")
        req = check_edit(audio, req)
        self.check(req)
        if req.task == "inpaint" and req.mask_end is not None and req.mask_end > audio.duration + 1e-6:
            raise RequestError(f"mask end {req.mask_end:g} s is outside the clip ({audio.duration:.2f} s)")
        if req.task == "super_resolution" and req.cutoff_hz is not None and req.cutoff_hz >= self.sample_rate / 2:
            raise RequestError(f"cutoff {req.cutoff_hz:g} Hz is not below the model's Nyquist frequency "
                               f"({self.sample_rate / 2:g} Hz)")
        with self._reporting(callback_on_step_end):
            return self._edit(audio, req)

    @contextlib.contextmanager
    def _reporting(self, callback):
        """``callback(generator, step, total, info)`` as :attr:`on_step` while a call runs (diffusers'
        ``callback_on_step_end`` shape, with the total instead of a timestep)."""
        if callback is None:
            yield
            return
        before = self.on_step

        def on_step(i: int, n: int) -> None:
            if before is not None:
                before(i, n)
            callback(self, i, n, {})

        self.on_step = on_step
        try:
            yield
        finally:
            self.on_step = before

    # --- to implement --------------------------------------------------------------------------
    @abstractmethod
    def _generate(self, requests: list[GenerationRequest]) -> list[Audio]: ...

    def _edit(self, audio: Audio, request: GenerationRequest) -> list[Audio]:
        raise RequestError(f"model '{self.card.name}' does not support editing")

    def weight_hash(self) -> str:
        """A short content hash of the weights (for provenance and metric names)."""
        return "unknown"

    # LoRA adapters merged into the weights at load (foley.adapters.apply): ({"folder", "name", "hash", "scale"}, ...)
    adapters: tuple = ()

    def lora_target(self):
        """The network LoRA adapters change (the LDM's UNet, the token LM's decoder); None: takes no adapters."""
        return None

    # --- helpers -------------------------------------------------------------------------------
    def _requests(self, prompt, kwargs) -> list[GenerationRequest]:
        if isinstance(prompt, GenerationRequest):
            return [prompt]
        if isinstance(prompt, str):
            return [make_request(prompt=prompt, **kwargs)]
        if not isinstance(prompt, Sequence) or isinstance(prompt, bytes):
            raise RequestError(f"prompt must be a string, a GenerationRequest or a list of them, got "
                               f"{type(prompt).__name__}")
        items = list(prompt)
        if not items:
            raise RequestError("no prompts given")
        return [p if isinstance(p, GenerationRequest) else make_request(prompt=p, **kwargs) for p in items]

    def _draw_audible(self, draw, seed: int, first=None) -> tuple:
        """``draw(seed)`` -> samples [C, T] (``first``: the samples of ``seed`` when already drawn); while they
        are inaudible (RMS under ``silent_dbfs``) draw again from seed + k * SEED_STRIDE, at most
        ``silence_retries`` times. Returns (samples, the seed used, the sidecar's "redrawn" record or None)."""
        samples = draw(seed) if first is None else first
        used, tries = seed, 0
        silent = Audio(samples, self.sample_rate).rms_db() < self.silent_dbfs
        while silent and tries < self.silence_retries:
            tries += 1
            used = seed + tries * SEED_STRIDE
            samples = draw(used)
            silent = Audio(samples, self.sample_rate).rms_db() < self.silent_dbfs
        record = {"reason": f"RMS below {self.silent_dbfs:g} dBFS", "from_seed": seed, "tries": tries,
                  "silent": bool(silent)} if tries else None
        return samples, used, record

    def runtime(self) -> dict:
        """How the weights run when not plain float torch (``{"backend": "onnx", "quantize": "int8"}``): a seed's
        sound depends on it, so the sidecar records it. Empty for the default."""
        return {}

    def provenance(self, request: GenerationRequest, seed: int, index: int = 0) -> dict:
        """Everything needed to reproduce one output: request, seed, model and library versions."""
        from importlib import metadata

        versions, runtime = {}, self.runtime()
        extra = ("onnxruntime",) if runtime.get("backend") == "onnx" else ()
        for pkg in ("foley", "torch", "diffusers", "transformers", "numpy", *extra):
            try:
                versions[pkg] = metadata.version(pkg)
            except metadata.PackageNotFoundError:
                pass
        return {
            "request": request.model_dump(),
            "seed": seed,
            "variation": index,
            "model": {"name": self.card.name, "family": self.card.family, "weights": self.card.weights,
                      "weight_hash": self.weight_hash(),
                      **({"adapters": [dict(a) for a in self.adapters]} if self.adapters else {}),
                      **({"runtime": runtime} if runtime else {})},
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "versions": versions,
            "python": platform.python_version(),
            "threads": threads.describe(),
        }


def read_foley_json(folder) -> dict:
    """A model folder's ``foley.json`` (one-line :class:`ModelError` when missing or invalid)."""
    import json
    from pathlib import Path

    from .errors import ModelError

    path = Path(folder) / "foley.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: missing or invalid ({type(e).__name__}); is {folder} a foley model "
                         "folder?") from None
    if not isinstance(cfg, dict):
        raise ModelError(f"{path}: not a JSON object")
    return cfg


def card_from_config(folder, cfg: dict, family: str, sample_rate: int, tasks: tuple[str, ...],
                     max_duration: float) -> ModelCard:
    """A model folder's card from its ``foley.json`` (``cfg``): what every family's ``read_card`` shares."""
    from pathlib import Path

    return ModelCard(name=Path(folder).name, family=family, weights=str(folder), sample_rate=int(sample_rate),
                     channels=int(cfg.get("channels", 1)), max_duration=float(cfg.get("max_duration", max_duration)),
                     tasks=tuple(tasks), licence=(cfg.get("extra") or {}).get("licence", "unknown"),
                     defaults=dict(cfg.get("defaults", {})))


def record_used(meta: dict, used: dict) -> dict:
    """Write the sampling settings actually used into a provenance ``meta``: ``meta["settings"]``, and every
    request field the user left unset (``steps``, ``guidance_scale``, ``scheduler``...) filled with the value
    used (the model's default), those fields listed in ``meta["defaults_used"]``. Returns ``meta``."""
    request = meta.get("request") or {}
    filled = [k for k, v in used.items() if k in request and request[k] is None and v is not None]
    for k in filled:
        request[k] = used[k]
    meta["settings"] = {**meta.get("settings", {}), **used}
    meta["defaults_used"] = filled
    return meta
