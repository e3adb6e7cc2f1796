"""Generation and edit requests, validated at the edge (pydantic) so models never see bad values."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from .editing import TASKS
from .errors import RequestError

MAX_PROMPT_CHARS = 1000
MAX_DURATION = 600.0
MAX_STEPS = 1000
MAX_VARIATIONS = 1024  # per request; a model may allow fewer (Capabilities.max_variations, 64 by default)
MAX_STEER = 500      # steering iterations
MAX_BEST_OF = 16

STRENGTH_TASKS = ("style_transfer", "variation")  # the tasks that re-draw a share of their input
Task = Literal[TASKS]  # foley.editing.TASKS: every task some family declares


class CurvePoints(BaseModel):
    """A curve as values: ``times`` (s, increasing; stretched to the sound), ``values`` (the curve's unit),
    optional ``strength`` (0..1 per point) and ``relative`` (compared up to an offset)."""

    model_config = ConfigDict(extra="forbid")

    times: list[float]
    values: list[float]
    strength: list[float] | None = None
    relative: bool = False


class Interpolation(BaseModel):
    """The far end of an interpolation (``--interpolate A B``): its ``prompt`` and ``seed``, each None for the
    request's own. The request's ``num_variations`` outputs go from (prompt, seed) to this end, both included."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = None
    seed: int | None = None


class GenerationRequest(BaseModel):
    """One request: a prompt and its settings. ``None`` means "the model's default"."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    negative_prompt: str | None = None
    duration: float = 5.0
    seed: int | None = None
    guidance_scale: float | None = None
    steps: int | None = None
    scheduler: str | None = None
    num_variations: int = 1
    best_of: int = 1                       # draw N candidates per output, keep the best (foley.rerank)
    # editing
    task: Task = "generate"
    strength: float | None = None          # style transfer, variation: 0 = input unchanged, 1 = ignore input
    mask_start: float | None = None        # inpaint: seconds
    mask_end: float | None = None
    cutoff_hz: float | None = None         # super-resolution: the input's band limit
    period: float | None = None            # loop: seconds between the input's kept frames (a beat: 60/BPM)
    # control curves and steering (docs/control.md; checked by foley.curves)
    controls: dict[str, str | CurvePoints] | None = None  # curve name -> words, a sound or curve file, or points
    control_strength: dict[str, float] | None = None      # curve name -> weight (default 1)
    steer: int | None = None               # steering iterations (0 = measure only); DEFAULT_STEER with targets
    like: str | None = None                # imitation: a sound whose five curves become the targets
    prior: bool = True                     # words of the prompt ("rising", "fading") become target curves
    control_adapter: bool = True           # target curves drive the model's control adapter when it has one
    interpolate: Interpolation | None = None  # outputs from (prompt, seed) to this end (models that interpolate)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        v = " ".join(v.split())
        if not v:
            raise ValueError("prompt is empty; describe the sound, e.g. 'rain on a tin roof'")
        if len(v) > MAX_PROMPT_CHARS:
            raise ValueError(f"prompt has {len(v)} characters; the limit is {MAX_PROMPT_CHARS}")
        return v

    @field_validator("negative_prompt")
    @classmethod
    def _negative(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = " ".join(v.split())
        if len(v) > MAX_PROMPT_CHARS:
            raise ValueError(f"negative prompt has {len(v)} characters; the limit is {MAX_PROMPT_CHARS}")
        return v or None

    @field_validator("duration")
    @classmethod
    def _duration(cls, v: float) -> float:
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"duration must be a positive number of seconds, got {v}")
        if v > MAX_DURATION:
            raise ValueError(f"duration {v} s is over the limit of {MAX_DURATION:g} s")
        return float(v)

    @field_validator("guidance_scale", "strength", "cutoff_hz", "mask_start", "mask_end", "period")
    @classmethod
    def _finite(cls, v: float | None, info) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError(f"{info.field_name} must be a finite number, got {v}")
        return v

    @field_validator("guidance_scale")
    @classmethod
    def _guidance(cls, v: float | None) -> float | None:
        if v is not None and not (0.0 <= v <= 30.0):
            raise ValueError(f"guidance scale must be between 0 and 30, got {v}")
        return v

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: int | None) -> int | None:
        if v is not None and not (1 <= v <= MAX_STEPS):
            raise ValueError(f"steps must be between 1 and {MAX_STEPS}, got {v}")
        return v

    @field_validator("best_of")
    @classmethod
    def _best_of(cls, v: int) -> int:
        if not (1 <= v <= MAX_BEST_OF):
            raise ValueError(f"best-of must be between 1 and {MAX_BEST_OF} candidates, got {v}")
        return v

    @field_validator("num_variations")
    @classmethod
    def _variations(cls, v: int) -> int:
        if not (1 <= v <= MAX_VARIATIONS):
            raise ValueError(f"number of variations must be between 1 and {MAX_VARIATIONS}, got {v}")
        return v

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int | None) -> int | None:
        if v is not None and not (0 <= v < 2**63):
            raise ValueError(f"seed must be a non-negative integer, got {v}")
        return v

    @field_validator("strength")
    @classmethod
    def _strength(cls, v: float | None) -> float | None:
        if v is not None and not (0.0 <= v <= 1.0):
            raise ValueError(f"strength must be between 0 and 1, got {v}")
        return v

    @field_validator("period")
    @classmethod
    def _period(cls, v: float | None) -> float | None:
        if v is not None and not (0 < v <= 60):
            raise ValueError(f"period must be between 0 and 60 seconds (a beat: 60/BPM), got {v:g}")
        return v

    @field_validator("cutoff_hz")
    @classmethod
    def _cutoff(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError(f"cutoff must be a positive frequency in Hz (the input's band limit), got {v:g}")
        return v

    @field_validator("controls", "control_strength", "like", mode="before")
    @classmethod
    def _curves(cls, v, info):
        """Words parsed, files read, points checked by foley.curves (``check_<field>``): one line each."""
        from . import curves

        try:
            return None if v is None else getattr(curves, f"check_{info.field_name}")(v)
        except RequestError as e:
            raise ValueError(str(e)) from None

    @field_validator("steer")
    @classmethod
    def _steer(cls, v: int | None) -> int | None:
        if v is not None and not (0 <= v <= MAX_STEER):
            raise ValueError(f"steer must be between 0 and {MAX_STEER} iterations, got {v}")
        return v

    @property
    def steering(self) -> bool:
        """Control curves asked for: steered (``steer`` iterations), or only measured (``steer=0``)."""
        return bool(self.controls or self.like or self.steer is not None)

    @model_validator(mode="after")
    def _targets(self):
        if self.steering and not (self.controls or self.like):
            from .curves import check_prior

            check_prior(self.prompt, self.prior)
        return self

    @model_validator(mode="after")
    def _interpolation(self):
        end = self.interpolate
        if end is None:
            return self
        if end.prompt is not None:
            end.prompt = self._prompt(end.prompt)
        if end.seed is not None:
            self._seed(end.seed)
        if self.task != "generate" or self.best_of != 1 or self.steering:
            raise ValueError("interpolation makes sounds from text alone: no editing task, best-of or control curves")
        if self.num_variations < 2:
            raise ValueError("interpolation needs at least 2 points (the two ends); ask for -n 2 or more")
        return self

    @model_validator(mode="after")
    def _strength_task(self):
        if self.strength is not None and self.task not in STRENGTH_TASKS:
            raise ValueError(f"strength is a setting of {' and '.join(STRENGTH_TASKS)}, not {self.task}'s; drop "
                             "--strength")
        return self

    @model_validator(mode="after")
    def _period_task(self):
        if self.period is not None and self.task != "loop":
            raise ValueError(f"period is the loop task's setting, not {self.task}'s; drop --period or use --task loop")
        return self

    @model_validator(mode="after")
    def _mask(self):
        if self.task == "inpaint":
            if self.mask_start is None or self.mask_end is None:
                raise ValueError("inpainting needs a time range: --start and --end in seconds")
            if not (0 <= self.mask_start < self.mask_end):
                raise ValueError(f"mask {self.mask_start}-{self.mask_end} s is not a range inside the clip")
        return self


def make_request(**fields) -> GenerationRequest:
    """Build a request; any invalid field becomes one :class:`RequestError` line."""
    try:
        return GenerationRequest(**fields)
    except ValidationError as e:
        err = e.errors()[0]
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        loc = ".".join(str(x) for x in err.get("loc", ()))
        if err.get("type") in ("extra_forbidden", "missing") or "Value error" not in str(err.get("msg", "")):
            msg = f"{loc}: {msg}" if loc else msg
        raise RequestError(msg) from None
