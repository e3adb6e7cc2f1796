"""foley: audio generation with foundation models.

Heavy parts (torch, diffusers, transformers) are imported only when a model is used, so
``import foley`` and ``foley --help`` stay fast.
"""

from __future__ import annotations

from . import hf as _hf
from .errors import FoleyError
from .version import __version__

__all__ = ["Audio", "FoleyError", "FoleyLDMPipeline", "load", "__version__"]

# our LDM folders load with diffusers' DiffusionPipeline (registered when diffusers loads; transformers' Auto
# classes: import foley.hf.models)
_hf.install()


def __getattr__(name: str):
    if name == "Audio":  # numpy: not needed by `foley --help`
        from .audio import Audio

        return Audio
    if name == "FoleyLDMPipeline":  # imports diffusers and torch, so only when asked for
        from .families.ldm.hf_pipeline import FoleyLDMPipeline

        return FoleyLDMPipeline
    raise AttributeError(f"module 'foley' has no attribute {name!r}")


def load(name_or_path: str = "starter", **kwargs):
    """Load a generator by registry name, hub id or local folder (see ``foley models list``)."""
    from . import threads
    from .registry import load as _load

    threads.apply_env()
    return _load(name_or_path, **kwargs)
