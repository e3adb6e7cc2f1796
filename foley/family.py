"""The family contract: what a model family package exports, and how families are found.

A family package (``foley/families/ldm``, or a third-party package) exports ``FAMILY`` (or ``FAMILIES``, a list)
of :class:`Family` objects in its ``__init__`` (which imports no torch). It is registered by one line in
:data:`BUILTIN`, or, from another distribution, by an entry point in the group ``foley.families`` naming that
package (``[project.entry-points."foley.families"] toy = "toy_family"``). The generator class it names implements
:class:`~foley.generator.Generator`: ``from_folder``, ``read_card`` (a folder's card without loading weights) and
``capabilities_for`` (what a model of that card accepts); ``train`` names the training entry
(``train(manifests, recipe, run, stages=..., dest=...) -> folder | None``) that ``foley train NAME`` runs, and
``finetune`` the fine-tuning entry that ``foley train finetune --from MODEL`` runs on a model of the family.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module

from .errors import ModelError

# one line per built-in family package
BUILTIN = ("foley.families.ldm", "foley.families.lm", "foley.families.public", "foley.families.wavegan",
           "foley.families.masked")
ENTRY_POINT_GROUP = "foley.families"


@dataclass(frozen=True)
class Family:
    """A model family: ``generator`` and ``train`` are ``"module:attribute"`` strings, imported when used.

    ``stages``: the training stages in order (``foley train NAME --stages``; ``default_stages`` when not all of them
    run by default); ``recipe``: the default recipe;
    ``not_generator``: for loaded objects that are not generators (codecs, embedders), what they are.
    """

    name: str
    generator: str
    train: str | None = None
    stages: tuple[str, ...] = ()
    default_stages: tuple[str, ...] | None = None
    recipe: str | None = None
    description: str = ""
    not_generator: str | None = None
    # fine-tuning a model of this family on the user's sounds (``foley train finetune --from MODEL``):
    # ``finetune(user_data, base_folder, base_name, run, options, say) -> folder`` (see foley.train.finetune)
    finetune: str | None = None
    # few-step distillation of a model of this family (``foley train distill --from MODEL``):
    # ``distill(teacher_folder, teacher_name, manifests, recipe, run, dest, force, say) -> folder``
    distill: str | None = None
    # a control adapter for a model of this family (``foley train control --from MODEL``):
    # ``control(base_folder, base_name, manifests, recipe, run, dest, force, say) -> folder``
    control: str | None = None
    control_recipe: str | None = None  # its default recipe (None: recipes/starter-control.toml)

    def generator_class(self):
        return _attr(self.generator, self.name)

    def train_function(self):
        if self.train is None:
            raise ModelError(f"family '{self.name}' has no training entry")
        return _attr(self.train, self.name)

    def finetune_function(self):
        if self.finetune is None:
            able = ", ".join(f.name for f in families().values() if f.finetune) or "none"
            raise ModelError(f"models of the '{self.name}' family cannot be fine-tuned yet (families that can: {able})")
        return _attr(self.finetune, self.name)

    def distill_function(self):
        if self.distill is None:
            able = ", ".join(f.name for f in families().values() if f.distill) or "none"
            raise ModelError(f"models of the '{self.name}' family cannot be distilled yet (families that can: {able})")
        return _attr(self.distill, self.name)


    def control_function(self):
        if self.control is None:
            able = ", ".join(f.name for f in families().values() if f.control) or "none"
            raise ModelError(f"models of the '{self.name}' family cannot take a control adapter yet (families that "
                             f"can: {able})")
        return _attr(self.control, self.name)


def _attr(spec: str, family: str):
    module, _, attr = spec.partition(":")
    try:
        return getattr(import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ModelError(f"family '{family}': cannot import {spec} ({e})") from None


def _exports(module_name: str) -> list[Family]:
    module = import_module(module_name)
    found = list(getattr(module, "FAMILIES", ()))
    if getattr(module, "FAMILY", None) is not None:
        found.append(module.FAMILY)
    if not found or not all(isinstance(f, Family) for f in found):
        raise ModelError(f"{module_name}: a family package exports FAMILY (or FAMILIES) of foley.family.Family")
    return found


@cache
def families() -> dict[str, Family]:
    """Every registered family by name: the built-in packages, then the ``foley.families`` entry points."""
    from importlib.metadata import entry_points

    out: dict[str, Family] = {}
    for name in BUILTIN:
        for f in _exports(name):
            out[f.name] = f
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            exported = _exports(ep.value.partition(":")[0])
        except (ImportError, ModelError) as e:
            import warnings

            warnings.warn(f"foley: family entry point '{ep.name}' ({ep.value}) not loaded: {e}", stacklevel=2)
            continue
        for f in exported:
            out.setdefault(f.name, f)
    return out


def get(name: str) -> Family:
    fams = families()
    if name not in fams:
        raise ModelError(f"unknown model family '{name}'; known: {', '.join(fams)}")
    return fams[name]
