"""Shared fixtures: tiny audio files on disk and the real `foley` CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def pytest_configure(config):
    """Before test processes run side by side (pytest-xdist workers, CLI subprocesses): librosa's numba functions
    compiled once, by one process (foley/numba_warm.py, numba#10128); the controller does it."""
    if not hasattr(config, "workerinput"):
        from foley.numba_warm import warm

        warm(say=lambda s: print(s, file=sys.stderr))


def free_port() -> int:
    """A TCP port free on this machine now (servers, and the rendezvous of distributed launches: test processes run
    side by side, so none may take a fixed default such as torch's 29500)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tone(seconds: float = 0.5, rate: int = 16000, channels: int = 1, freq: float = 440.0,
         amp: float = 0.5) -> np.ndarray:
    """A sine per channel (channel k at freq * (k + 1)), float32 [C, T]."""
    t = np.arange(int(round(seconds * rate))) / rate
    return np.stack([amp * np.sin(2 * np.pi * freq * (k + 1) * t) for k in range(channels)]).astype(np.float32)


@pytest.fixture(scope="module")
def one_thread():
    """Two busy-waiting threads on a shared 2-core machine are up to 100x slower; model tests use one
    (a module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def write_audio():
    """write_audio(path, seconds=.., rate=.., channels=.., freq=..) -> samples [C, T]; format by suffix."""
    import soundfile as sf

    def write(path, seconds=0.5, rate=16000, channels=1, freq=440.0, amp=0.5, subtype=None):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        x = tone(seconds, rate, channels, freq, amp)
        sf.write(str(path), x.T, rate, subtype=subtype)
        return x

    return write


@pytest.fixture
def foley_cli():
    """Run the installed CLI (`python -m foley ...`) and return the CompletedProcess."""
    def run(*args, cwd=None):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
        return subprocess.run([sys.executable, "-m", "foley", *map(str, args)], capture_output=True, text=True,
                              cwd=cwd, env=env, timeout=120)

    return run


from tests.ldm_tiny import tiny_ldm  # noqa: E402,F401  (session fixture shared by model, CLI and server tests)
