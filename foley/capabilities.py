"""What a model accepts and can do, declared by its family and asked by every caller (CLI, API, server, studio).

A :class:`Capabilities` lists the tasks, the request settings the model takes (with ranges or choices), whether it
can ``stream()`` and what its progress counts. Callers never branch on family names: they ask these, and a request
that sets something the model has no use for is refused in one line instead of being silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import RequestError

# Request fields a model may or may not take; prompt, duration, seed and num_variations every model takes, and the
# task-specific fields (strength, mask, cutoff) come with their task.
TUNABLE = ("steps", "scheduler", "guidance_scale", "negative_prompt")
FLAGS = {"steps": "--steps", "scheduler": "--scheduler", "guidance_scale": "--guidance",
         "negative_prompt": "--negative"}
STEER = "steer"  # the setting (and pseudo-task) of models that steer towards control curves (DITTO)
CONTROLS = "controls"  # the setting (and pseudo-task) of models that follow control curves, by steering or an adapter
INTERPOLATE = "interpolate"  # the setting (and pseudo-task) of models that interpolate between two ends
MAX_VARIATIONS = 64  # sounds per prompt in one request, unless the model says more (``max_variations``)


@dataclass(frozen=True)
class Setting:
    """One request setting a model takes: ``name`` is a :class:`~foley.request.GenerationRequest` field."""

    name: str
    default: object = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def check(self, value, model: str) -> None:
        if self.choices and value not in self.choices:
            raise RequestError(f"unknown {self.name.replace('_', ' ')} '{value}'; choose one of "
                               f"{', '.join(self.choices)} (model '{model}')")
        if self.minimum is not None and value < self.minimum or self.maximum is not None and value > self.maximum:
            raise RequestError(f"{self.name.replace('_', ' ')} {value} is outside model '{model}''s range "
                               f"{self.minimum:g}..{self.maximum:g}")

    def to_dict(self) -> dict:
        d = {"name": self.name, "default": self.default, "help": self.help}
        if self.choices:
            d["choices"] = list(self.choices)
        if self.minimum is not None:
            d["minimum"] = self.minimum
        if self.maximum is not None:
            d["maximum"] = self.maximum
        return d


@dataclass(frozen=True)
class Capabilities:
    """A model's contract: ``tasks``, ``settings`` it takes, ``streams`` (has ``stream()``), ``progress`` (what
    ``on_step(i, n)`` counts: "steps", "frames" or None), ``max_duration`` (s)."""

    tasks: tuple[str, ...] = ("generate",)
    settings: tuple[Setting, ...] = ()
    streams: bool = False
    progress: str | None = None
    max_duration: float | None = None
    extra: dict = field(default_factory=dict)
    max_variations: int = MAX_VARIATIONS

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)

    def takes(self, name: str) -> bool:
        return self.setting(name) is not None

    def check(self, req, model: str, alternatives=None) -> None:
        """Refuse a request this model cannot honour (one :class:`RequestError` line). ``alternatives(task)``
        names other models that can do a task the model cannot (for the hint)."""
        if req.task not in self.tasks:
            others = [n for n in (alternatives(req.task) if alternatives else []) if n != model]
            hint = f"; models that can: {', '.join(others)}" if others else ""
            raise RequestError(f"model '{model}' cannot do '{req.task}' (it supports {', '.join(self.tasks)}){hint}")
        for name in TUNABLE:
            value = getattr(req, name, None)
            if value is None:
                continue
            s = self.setting(name)
            if s is None:
                takes = [FLAGS[t.name] for t in self.settings if t.name in FLAGS]
                what = f"it takes {', '.join(takes)}" if takes else "it takes none of --steps, --scheduler, " \
                                                                    "--guidance, --negative"
                raise RequestError(f"model '{model}' has no {name.replace('_', ' ')} setting ({what}); drop "
                                   f"{FLAGS[name]}")
            s.check(value, model)
        self._check_steering(req, model, alternatives)
        if getattr(req, "interpolate", None) is not None and not self.takes(INTERPOLATE):
            others = [n for n in (alternatives(INTERPOLATE) if alternatives else []) if n != model]
            hint = f"; models that can: {', '.join(others)}" if others else ""
            raise RequestError(f"model '{model}' cannot interpolate between two sounds (--interpolate){hint}")
        if getattr(req, "num_variations", 1) > self.max_variations:
            raise RequestError(f"model '{model}' makes at most {self.max_variations} sounds per prompt in one "
                               f"request, got {req.num_variations}")
        if self.max_duration is not None and req.duration > self.max_duration + 1e-9:
            try:  # alternatives(task, duration): the models that make sounds this long
                others = [n for n in (alternatives(req.task, req.duration) if alternatives else []) if n != model]
            except TypeError:  # an alternatives(task) of one argument
                others = []
            more = f" and {len(others) - 4} more (foley models list)" if len(others) > 4 else ""
            hint = f"; models that can: {', '.join(others[:4])}{more}" if others else ""
            raise RequestError(f"duration {req.duration:g} s is over this model's maximum of "
                               f"{self.max_duration:g} s ('{model}'){hint}")

    @property
    def steers(self) -> bool:
        """Steers towards control curves (``steer``: DITTO iterations; docs/control.md)."""
        return self.takes(STEER)

    @property
    def follows(self) -> bool:
        """Follows control curves (``controls``, ``like``, the prompt's shape words): by steering, or through a
        control adapter alone (a token LM with one: no ``steer`` setting)."""
        return self.takes(CONTROLS)

    def _check_steering(self, req, model: str, alternatives) -> None:
        asked = getattr(req, "steering", False) or getattr(req, "control_strength", None) or \
            getattr(req, "prior", True) is False or getattr(req, "control_adapter", True) is False
        if not asked:
            return
        if not self.follows:
            others = [n for n in (alternatives(CONTROLS) if alternatives else []) if n != model]
            hint = f"; models that can: {', '.join(others)}" if others else ""
            raise RequestError(f"model '{model}' cannot follow control curves (--control, --like, --steer, "
                               f"--control-strength, --no-prior, --no-control-adapter){hint}")
        if not self.steers:  # an adapter alone: no steering iterations, nothing to weight them
            if req.steer:
                others = [n for n in (alternatives(STEER) if alternatives else []) if n != model]
                hint = f"; models that can steer: {', '.join(others)}" if others else ""
                raise RequestError(f"model '{model}' follows control curves through its control adapter but cannot "
                                   f"steer (--steer {req.steer}); drop --steer or give --steer 0{hint}")
            if getattr(req, "control_strength", None):
                raise RequestError(f"model '{model}' has no control strength (it weights steering, which this model "
                                   "does not do); drop --control-strength")
        elif req.steer is not None:
            self.setting(STEER).check(req.steer, model)
        curves = self.setting(CONTROLS)
        missing = [n for n in (getattr(req, "controls", None) or {}) if curves and n not in curves.choices]
        if missing:
            from .curves import QUALITIES

            if missing[0] in QUALITIES:
                others = [n for n in (alternatives(STEER) if alternatives else []) if n != model]
                hint = f"; models that can: {', '.join(others)}" if others else ""
                raise RequestError(f"model '{model}' cannot follow {missing[0]}: whole-sound qualities are followed "
                                   f"by steering only{hint}")
            raise RequestError(f"model '{model}' has no {missing[0]} curve (it follows {', '.join(curves.choices)})")

    def to_dict(self) -> dict:
        return {"tasks": list(self.tasks), "settings": [s.to_dict() for s in self.settings],
                "streams": self.streams, "progress": self.progress, "max_duration": self.max_duration,
                "max_variations": self.max_variations}


def steer_settings(maximum: int = 500, names: tuple[str, ...] | None = None) -> tuple[Setting, ...]:
    """The settings of a model that steers towards control curves ``names`` (all five by default; foley.curves,
    foley.steering)."""
    from .curves import DEFAULT_STEER, NAMES, QUALITIES

    return (Setting(STEER, DEFAULT_STEER, 0, maximum, help="steering iterations towards the control curves "
                                                           "(0 = measure only)"),
            Setting("controls", choices=(*(names or NAMES), *QUALITIES),
                    help="control curves (words, a sound, a curve file or points) and the whole-sound qualities "
                         "texture and tremolo (steered)"))
