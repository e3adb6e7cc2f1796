"""onnxruntime sessions for the families' ``--backend onnx`` (one place: threads, providers, the missing-package error).

Importing this module imports neither torch nor onnxruntime."""

from __future__ import annotations

from pathlib import Path

from .errors import MissingDependencyError


def session(path: str | Path, threads: int):
    """A CPU ``InferenceSession`` of ``path`` with ``threads`` intra-op threads (torch's count: the caller's
    choice of :mod:`foley.threads`) and no inter-op pool."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("the onnx backend needs onnxruntime: pip install 'foley[onnx]'") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def need_onnx() -> None:
    """One line naming the extra when the exporter's ``onnx`` package is missing."""
    try:
        import onnx  # noqa: F401  torch.onnx.export needs it
    except ImportError:
        raise MissingDependencyError("ONNX export needs onnx and onnxruntime: pip install 'foley[onnx]'") from None
