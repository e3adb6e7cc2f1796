"""A latent-diffusion model folder as a diffusers pipeline: :class:`FoleyLDMPipeline`.

The folder (``model_index.json`` naming ``FoleyLDMPipeline``; ``vae/``, ``unet/``, ``scheduler/``, optional
``vocoder/``; ``foley.json`` with the audio settings) loads three ways, all giving the same sound for a seed:

    FoleyLDMPipeline.from_pretrained("models/starter")     # foley's strict loader (mismatched keys are named)
    DiffusionPipeline.from_pretrained("models/starter")    # diffusers' loader, once ``foley`` is imported
    foley.load("starter")                                  # the Generator, built on this pipeline

``pipe("rain", duration=4, seed=1)`` returns a list of :class:`foley.Audio` (one per prompt, float32
``[channels, frames]`` at ``pipe.sample_rate`` with provenance in ``.meta``); ``output_type="np"`` returns
diffusers' ``AudioPipelineOutput`` whose ``audios`` is a numpy array ``[batch, channels, frames]``. Sampling is
:class:`~foley.families.ldm.pipeline.LDMGenerator`'s (seeds per item, long-form windows, edits); this class only
holds the components. ``save_pretrained`` writes the same layout back (plus ``foley.json``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from diffusers.pipelines.pipeline_utils import AudioPipelineOutput, DiffusionPipeline

from ...errors import ModelError
from ...fsutil import write_json_atomic

FOLEY_JSON = "foley.json"
SCHEDULER_JSON = "scheduler_config.json"


class FoleyLDMPipeline(DiffusionPipeline):
    """VAE + UNet + scheduler (+ neural vocoder) of a foley latent-diffusion folder; audio settings from foley.json."""

    _optional_components = ["vocoder"]
    model_cpu_offload_seq = "unet->vae->vocoder"

    def __init__(self, vae, unet, scheduler, vocoder=None):
        super().__init__()
        self.register_modules(vae=vae, unet=unet, scheduler=scheduler, vocoder=vocoder)
        self._foley = None            # FoleyConfig (foley.json)
        self._scheduler_config = None  # scheduler_config.json as written (per-request schedulers start from it)
        self._generator = None

    # --- loading and saving --------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """A local folder loads strictly through foley (``vocoder=None`` drops the neural vocoder: Griffin-Lim);
        with other diffusers options (``torch_dtype``, ``device_map``...) through diffusers' own loader."""
        folder = Path(pretrained_model_name_or_path)
        if folder.is_dir() and set(kwargs) <= {"vocoder"}:
            return cls._load_strict(folder, kwargs.get("vocoder", "auto"))
        if folder.is_dir():
            _audio_settings(folder)  # a newer format is refused before any weights load
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @classmethod
    def _load_strict(cls, folder: Path, vocoder="auto") -> FoleyLDMPipeline:
        import diffusers

        from .components import load_component

        index_path = folder / "model_index.json"
        if not index_path.exists() or not (folder / FOLEY_JSON).exists():
            raise ModelError(f"{folder}: not a foley latent-diffusion model folder (needs model_index.json "
                             "and foley.json)")
        cfg = _audio_settings(folder)
        index = json.loads(index_path.read_text())
        vae = load_component(index["vae"][1], folder / "vae")
        unet = load_component(index["unet"][1], folder / "unet")
        sched_path = folder / "scheduler" / SCHEDULER_JSON
        if not sched_path.exists():
            raise ModelError(f"{folder}: missing scheduler/{SCHEDULER_JSON}")
        sched_config = json.loads(sched_path.read_text())
        scheduler = getattr(diffusers, sched_config.get("_class_name", index["scheduler"][1])).from_config(sched_config)
        voc = None
        if vocoder not in ("auto", "griffin-lim", "neural", None):
            voc = vocoder  # a vocoder object, as diffusers' from_pretrained takes components
        elif vocoder not in ("griffin-lim", None) and "vocoder" in index and (folder / "vocoder").exists():
            voc = load_component(index["vocoder"][1], folder / "vocoder")
        elif vocoder == "neural":
            raise ModelError(f"{folder}: has no neural vocoder; use --vocoder griffin-lim")
        pipe = cls(vae=vae, unet=unet, scheduler=scheduler, vocoder=voc)
        pipe._foley, pipe._scheduler_config = cfg, sched_config
        pipe.register_to_config(_name_or_path=str(folder))
        return pipe

    def register_to_config(self, **kwargs):
        super().register_to_config(**kwargs)
        # diffusers' DiffusionPipeline.from_pretrained ends with the folder it loaded: read foley.json from it
        where = kwargs.get("_name_or_path")
        if where is not None and getattr(self, "_foley", None) is None and os.path.isdir(where):
            self._foley = _audio_settings(Path(where))

    def save_pretrained(self, save_directory, **kwargs):
        """diffusers' layout (model_index.json + components) + foley.json + the scheduler config as loaded."""
        cfg, sched = self.audio_settings, self.scheduler_config
        super().save_pretrained(save_directory, **kwargs)
        folder = Path(save_directory)
        write_json_atomic(folder / "scheduler" / SCHEDULER_JSON, sched)
        write_json_atomic(folder / FOLEY_JSON, cfg.to_dict())
        if cfg.conditioning.get("global") == "clap":  # the foley-clap text head is part of the model
            import shutil

            src = Path(self.name_or_path or "") / "clap_text"
            if not src.is_dir():
                raise ModelError(f"{self.name_or_path}: its clap_text/ is missing; cannot save a complete model")
            if src.resolve() != (folder / "clap_text").resolve():
                shutil.copytree(src, folder / "clap_text", dirs_exist_ok=True)

    # --- what the generator needs --------------------------------------------------------------------
    @property
    def audio_settings(self):
        """foley.json as a :class:`~foley.families.ldm.model.FoleyConfig`."""
        if self._foley is None:
            raise ModelError(f"{self.name_or_path}: no foley.json read; load the pipeline from a local model folder")
        return self._foley

    @property
    def scheduler_config(self) -> dict:
        if self._scheduler_config is None:  # loaded by diffusers: its config without the defaults it filled in
            c = dict(self.scheduler.config)
            skip = set(c.pop("_use_default_values", []))
            self._scheduler_config = {k: v for k, v in c.items() if k not in skip}
        return dict(self._scheduler_config)

    @property
    def sample_rate(self) -> int:
        return int(self.audio_settings.mel.sample_rate)

    def audio_model(self, name: str | None = None):
        """The :class:`~foley.families.ldm.model.LatentAudioModel` over these components (a new one per call)."""
        from ...hashing import folder_hash
        from .model import LatentAudioModel

        folder = Path(self.name_or_path) if self.name_or_path else None
        weights_hash = folder_hash(folder) if folder is not None and folder.is_dir() else "unknown"
        head = None
        if self.audio_settings.conditioning.get("global") == "clap":
            from ...clap.model import load_text_head

            if folder is None or not (folder / "clap_text").is_dir():
                raise ModelError(f"{folder}: foley.json asks for foley-clap conditioning but clap_text/ is missing")
            head = load_text_head(folder / "clap_text")
        model = LatentAudioModel(self.vae, self.unet, self.scheduler_config, self.audio_settings, self.vocoder,
                                 name=name or (folder.name if folder is not None else "ldm"),
                                 weights_hash=weights_hash, global_head=head)
        model.folder = folder if folder is not None and folder.is_dir() else None
        return model

    @property
    def generator(self):
        """The :class:`~foley.families.ldm.pipeline.LDMGenerator` that samples with these components."""
        if self._generator is None:
            from .pipeline import LDMGenerator

            folder = self.name_or_path or "ldm"
            self._generator = LDMGenerator.from_model(self.audio_model(), folder)
        return self._generator

    def __call__(self, prompt, duration: float | None = None, seed: int | None = None,
                 num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 negative_prompt: str | None = None, scheduler: str | None = None, output_type: str = "audio"):
        """Generate one sound per prompt (a string or a list): list[foley.Audio], or with ``output_type="np"``
        an ``AudioPipelineOutput`` with ``audios`` [batch, channels, frames]. Unset values: foley.json's defaults."""
        if output_type not in ("audio", "np"):
            raise ModelError(f"output_type must be 'audio' or 'np', got {output_type!r}")
        settings = {"duration": duration, "seed": seed, "steps": num_inference_steps, "guidance_scale": guidance_scale,
                    "negative_prompt": negative_prompt, "scheduler": scheduler}
        audios = self.generator.generate(prompt, **{k: v for k, v in settings.items() if v is not None})
        if output_type == "audio":
            return audios
        import numpy as np

        return AudioPipelineOutput(audios=np.stack([a.samples for a in audios]))


def _audio_settings(folder: Path):
    from .model import FoleyConfig

    path = folder / FOLEY_JSON
    if not path.is_file():
        raise ModelError(f"{folder}: no {FOLEY_JSON}; not a foley latent-diffusion model folder")
    return FoleyConfig.load(path)


def _register() -> None:
    from ...hf import register_diffusers

    register_diffusers()


_register()  # diffusers' DiffusionPipeline.from_pretrained finds the class by its name on the diffusers module
