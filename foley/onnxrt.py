"""onnxruntime sessions for the families' ``--backend onnx`` (one place: threads, providers, the missing-package error).

Importing this module imports neither torch nor onnxruntime."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .errors import MissingDependencyError, ModelError


def session(path: str | Path, threads: int):
    """A CPU ``InferenceSession`` of ``path`` with ``threads`` intra-op threads (torch's count: the caller's
    choice of :mod:`foley.threads`), no inter-op pool and no spin-waiting."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("the onnx backend needs onnxruntime: pip install 'foley[onnx]'") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # no spin-waiting between calls: torch's own threads run between them (sampling, codec, scheduler, VAE) and
    # two pools spinning on 2 cores slowed the token LM (bench/lm_backends.py --threads 2, int8: RTF 0.22 spinning,
    # 0.14 not; docs/benchmarks.md)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def need_onnx() -> None:
    """One line naming the extra when the exporter's ``onnx`` package is missing."""
    try:
        import onnx  # noqa: F401  torch.onnx.export needs it
    except ImportError:
        raise MissingDependencyError("ONNX export needs onnx and onnxruntime: pip install 'foley[onnx]'") from None


def exported(onnx_dir: str | Path | None, weights_hash: str, file: str, meta: str,
             export: Callable[[Path], object]) -> Path:
    """The graph ``file`` for these weights: from ``onnx_dir`` (a `foley export onnx` folder), else from the cache
    ``$FOLEY_HOME/onnx/<weights hash>``, exported there first by ``export(folder)`` when missing. A folder whose
    ``meta`` JSON names other weights is refused in one line."""
    from .paths import home

    folder = Path(onnx_dir) if onnx_dir else home() / "onnx" / weights_hash
    path = folder / file
    if not path.exists():
        if onnx_dir:
            raise ModelError(f"{folder}: no {file}; make it with `foley export onnx MODEL -o {folder}`")
        export(folder)
    meta_path = folder / meta
    made_from = json.loads(meta_path.read_text()).get("weights_hash") if meta_path.exists() else None
    if made_from not in (None, weights_hash):
        raise ModelError(f"{path} was exported from other weights ({made_from}, this model {weights_hash}); "
                         f"export it again")
    return path
