"""foley's model folders as standard Hugging Face folders: our classes registered with diffusers and transformers.

- ``DiffusionPipeline.from_pretrained(ldm_folder)`` finds :class:`~foley.families.ldm.hf_pipeline.FoleyLDMPipeline`
  (the class named by the folder's ``model_index.json``): diffusers looks the name up on the ``diffusers``
  module, so we set it there.
- after ``import foley.hf.models``, transformers' Auto classes know our configs' ``model_type``s: the LM's text
  projection (``foley_text_projection``), the mel codec (``foley_mel_codec``) and the evaluation encoder
  (``foley_encoder``);
  and ``AutoModelForCausalLM`` knows the LM decoder (``musicgen_decoder`` -> ``MusicgenForCausalLM``).

Registration is lazy, so ``import foley`` stays free of torch: :func:`install` (run by ``import foley``)
registers with diffusers at once when it is already imported, and otherwise when its loading module is first
imported (a post-import hook on ``diffusers.pipelines.pipeline_utils``). transformers: ``import foley.hf.models``.
"""

from __future__ import annotations

import importlib.machinery
import sys
import threading

DIFFUSERS_MODULE = "diffusers.pipelines.pipeline_utils"      # defines DiffusionPipeline.from_pretrained

PIPELINE_MODULE = "foley.families.ldm.hf_pipeline"
MODELS_MODULE = "foley.hf.models"

_done: set[str] = set()
_lock = threading.RLock()


def _importing(module: str, name: str) -> bool:
    """True while ``module`` is half-imported (it imported the library first): it registers itself at its end."""
    m = sys.modules.get(module)
    return m is not None and not hasattr(m, name)


def register_diffusers() -> None:
    """Make ``diffusers.FoleyLDMPipeline`` resolve (diffusers looks up ``model_index.json``'s class there)."""
    with _lock:
        if "diffusers" in _done or _importing(PIPELINE_MODULE, "FoleyLDMPipeline"):
            return
        import diffusers

        from ..families.ldm.hf_pipeline import FoleyLDMPipeline
        from ..vocoder import neural  # noqa: F401  model_index.json names it; diffusers only uses imported modules

        diffusers.FoleyLDMPipeline = FoleyLDMPipeline
        _done.add("diffusers")


def register_transformers() -> None:
    """Register our configs and models with AutoConfig / AutoModel (and the decoder with AutoModelForCausalLM)."""
    with _lock:
        if "transformers" in _done or _importing(MODELS_MODULE, "FoleyEncoderModel"):
            return
        from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, MusicgenDecoderConfig, MusicgenForCausalLM

        from . import models

        for config_cls, model_cls in ((models.TextProjectionConfig, models.TextProjectionModel),
                                      (models.MelCodecConfig, models.MelCodecModel),
                                      (models.FoleyEncoderConfig, models.FoleyEncoderModel)):
            AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)
            AutoModel.register(config_cls, model_cls, exist_ok=True)
        AutoModelForCausalLM.register(MusicgenDecoderConfig, MusicgenForCausalLM, exist_ok=True)
        _done.add("transformers")


# transformers is not hooked: registering imports transformers' model modules, and an import hook on its auto
# module fires in the middle of transformers' own import chains (a circular import). `import foley.hf.models`
# (or any foley module that loads a transformers-backed model) registers instead.
_HOOKS = {DIFFUSERS_MODULE: register_diffusers}


# (the hook's classes follow the import protocols without importlib.abc's base classes: importing importlib.abc
# costs `foley --help` ~15 ms)
class _Loader:
    """Runs the real loader, then the registration (once the module exists in full)."""

    def __init__(self, loader, after):
        self.loader, self.after = loader, after

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.after()

    def __getattr__(self, name):  # get_source, get_resource_reader, ... of the real loader
        return getattr(self.loader, name)


class _AfterImport:
    """A meta-path finder that only wraps the loaders of the modules in ``_HOOKS``; it finds nothing itself."""

    def find_spec(self, fullname, path, target=None):
        after = _HOOKS.get(fullname)
        if after is None or fullname.split(".")[0] in _done:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _Loader(spec.loader, after)
        return spec


_finder = _AfterImport()


def install() -> None:
    """Register with diffusers/transformers now if they are loaded, else as soon as they are (idempotent)."""
    if DIFFUSERS_MODULE in sys.modules:
        register_diffusers()
    if "foley.hf.models" in sys.modules:
        register_transformers()
    if _finder not in sys.meta_path and len(_done) < len(_HOOKS):
        sys.meta_path.insert(0, _finder)
