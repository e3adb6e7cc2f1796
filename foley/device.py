"""Where and in what precision models run: the one place that decides device, dtype and CPU offload.

Every family asks :func:`choose` and then :func:`place` (diffusers pipelines) or
:func:`place_module` (single torch modules). The policy:

- device: CUDA when present, else Apple MPS, else the CPU;
- precision: float16 on CUDA and MPS, float32 on the CPU (CPU kernels gain nothing from fp16);
- offload: on CUDA, when the weights would take more than :data:`OFFLOAD_FRACTION` of the GPU's memory,
  weights stay in CPU memory and accelerate moves each component to the GPU while it runs.

Environment overrides (also accepted as arguments, which win): ``FOLEY_DEVICE`` (``auto``, ``cpu``,
``cuda``, ``cuda:1``, ``mps``), ``FOLEY_DTYPE`` (``auto``, ``float32``, ``float16``, ``bfloat16``) and
``FOLEY_OFFLOAD`` (``auto``, ``1``/``yes``, ``0``/``no``). A value that cannot be honoured is a
one-line :class:`~foley.errors.ModelError`, never a silent fallback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError

OFFLOAD_FRACTION = 0.6  # weights above this share of GPU memory leave too little room for activations
DTYPES = ("float32", "float16", "bfloat16")
_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


@dataclass(frozen=True)
class Placement:
    """A decision: ``device`` ("cpu", "cuda", "cuda:1", "mps"), ``dtype`` (a name in :data:`DTYPES`),
    ``offload`` (accelerate CPU offload) and ``reason`` (one line, for logs and provenance)."""

    device: str
    dtype: str
    offload: bool
    reason: str

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    def describe(self) -> dict:
        return {"device": self.device, "dtype": self.dtype, "offload": self.offload, "reason": self.reason}


def weights_bytes(folder: str | os.PathLike) -> int:
    """Bytes of weight files under ``folder`` (all components of a pipeline folder)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


def _env(name: str, value: str | None) -> str:
    v = value if value is not None else os.environ.get(name, "auto")
    return str(v).strip().lower() or "auto"


def _accelerators() -> tuple[bool, bool]:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available(), bool(mps is not None and mps.is_available())


def choose(weights: int | None = None, device: str | None = None, dtype: str | None = None,
           offload: bool | str | None = None) -> Placement:
    """Decide device, dtype and offload for a model whose weight files take ``weights`` bytes (fp32 assumed).

    Args:
        weights: size of the weight files in bytes (see :func:`weights_bytes`), or None when unknown.
        device, dtype, offload: explicit choices; None falls back to the environment, then to ``auto``.

    Raises:
        ModelError: an unknown value, or a device that is not present.
    """
    want_dev, want_dtype = _env("FOLEY_DEVICE", device), _env("FOLEY_DTYPE", dtype)
    want_off = _env("FOLEY_OFFLOAD", None if offload is None else str(offload))
    cuda, mps = _accelerators()
    if want_dev == "auto":
        dev = "cuda" if cuda else "mps" if mps else "cpu"
        why = f"auto: {'CUDA' if cuda else 'MPS' if mps else 'no GPU'} found"
    elif want_dev == "cpu" or (want_dev.startswith("cuda") and cuda) or (want_dev == "mps" and mps):
        dev, why = want_dev, "requested"
    elif want_dev.startswith("cuda") or want_dev == "mps":
        raise ModelError(f"device '{want_dev}' is not available on this machine; use --device cpu or "
                         f"FOLEY_DEVICE=auto")
    else:
        raise ModelError(f"unknown device '{want_dev}'; use auto, cpu, cuda, cuda:N or mps")
    if want_dtype == "auto":
        dt = "float32" if dev == "cpu" else "float16"
    elif want_dtype in DTYPES:
        dt = want_dtype
    else:
        raise ModelError(f"unknown precision '{want_dtype}'; use auto, {', '.join(DTYPES)}")
    if want_off in ("1", "yes", "true", "on"):
        off = dev != "cpu"
    elif want_off in ("0", "no", "false", "off"):
        off = False
    elif want_off == "auto":
        off = dev.startswith("cuda") and weights is not None and _needs_offload(dev, weights * _BYTES[dt] // 4)
    else:
        raise ModelError(f"unknown offload setting '{want_off}'; use auto, yes or no")
    if off:
        why += "; weights larger than the GPU comfortably holds: CPU offload"
    return Placement(dev, dt, off, why)


def _needs_offload(device: str, nbytes: int) -> bool:
    import torch

    index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
    return nbytes > OFFLOAD_FRACTION * torch.cuda.get_device_properties(index).total_memory


def place(pipeline, placement: Placement):
    """Put a diffusers pipeline on its device (or enable model CPU offload); returns the pipeline."""
    if placement.offload:
        import inspect

        if "device" in inspect.signature(pipeline.enable_model_cpu_offload).parameters:
            pipeline.enable_model_cpu_offload(device=placement.device)
        else:  # older pipelines (MusicLDM) take only a GPU index
            dev = placement.device
            pipeline.enable_model_cpu_offload(gpu_id=int(dev.split(":")[1]) if ":" in dev else 0)
    else:
        pipeline.to(placement.device)
    return pipeline


def place_module(module, placement: Placement):
    """Put a torch module (e.g. a transformers model) on its device, or offload it with accelerate."""
    if placement.offload:
        from accelerate import cpu_offload

        cpu_offload(module, execution_device=placement.device)
        return module
    return module.to(placement.device)


def input_device(placement: Placement) -> str:
    """Where input tensors go: the execution device (offloaded modules move themselves there)."""
    return placement.device


def cpu_only(what: str, device: str | None = None) -> Placement:
    """The placement of models that run on the CPU only (our shipped families in this version): ``auto`` and
    ``cpu`` give the CPU; any other device, asked by argument or ``FOLEY_DEVICE``, is a one-line error rather
    than a silent CPU run."""
    want = _env("FOLEY_DEVICE", device)
    if want not in ("auto", "cpu"):
        raise ModelError(f"{what} run on the CPU only in this version (device '{want}' asked by --device or "
                         f"FOLEY_DEVICE); use --device cpu, or a public model (foley models list) on '{want}'")
    return Placement("cpu", "float32", False, f"{what} run on the CPU")
