"""librosa's numba-compiled functions compiled once, by one process, before processes run them side by side.

Hand-written: a workaround of numba#10128 (open, numba 0.6x): when two processes compile the same cached
``@guvectorize`` function at once, its two cache files can come from different processes, and from then on every
process that loads them dies with a segmentation fault (librosa's ``yin``, ``onset_detect``, ``util.localmax`` ...;
seen here on a fresh install running two test processes). :func:`warm` compiles what foley's analyzers use — the
control curves, the attribute analyzers, chroma, onsets — in a child process while holding a file lock, so the
cache is written by one process and afterwards only read. When the child dies of a signal (a cache already spoiled
by such a race), librosa's numba cache files are deleted and it runs once more; a marker per installation (in
the temporary folder) makes the check free afterwards.

    python -m foley.numba_warm            # what `make test` runs before the suite
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE_SUFFIXES = (".nbi", ".nbc")


def _exercise() -> None:
    """Run every librosa path of foley's analyzers on float32 and float64, mono and stereo sound."""
    import numpy as np

    from . import analyzers, curves
    from .audio import Audio

    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 220 * t * (1 + t)) + 0.01 * rng.standard_normal(t.size)
    clicks = np.zeros_like(t)
    clicks[::4000] = 0.8
    for dtype in (np.float32, np.float64):
        for x in (tone, tone + clicks):
            for audio in (Audio(x.astype(dtype)[None], 16000), Audio(np.stack([x, 0.5 * x]).astype(dtype), 16000)):
                curves.measure(audio)
                curves.chroma(audio, 8, 0.25)
                for fn in analyzers.ANALYZERS.values():
                    fn(audio)


def _installation() -> str:
    import librosa
    import numba

    key = f"{sys.prefix}|{numba.__version__}|{librosa.__version__}|{Path(librosa.__file__).parent}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def _marker() -> Path:
    return Path(tempfile.gettempdir()) / f"foley-numba-{_installation()}.ok"  # gone after a reboot: checked again


def _lock_path() -> Path:
    return Path(tempfile.gettempdir()) / f"foley-numba-{_installation()}.lock"


def clear_cache() -> int:
    """Delete librosa's numba cache files (``__pycache__/*.nbi``, ``*.nbc``); how many."""
    import librosa

    n = 0
    for p in Path(librosa.__file__).parent.rglob("__pycache__/*"):
        if p.suffix in CACHE_SUFFIXES:
            p.unlink(missing_ok=True)
            n += 1
    return n


def warm(say=None) -> bool:
    """Compile (or load) the numba functions foley's analyzers use, in a child process under a file lock, unless this
    installation's marker says it was done; repair a spoiled cache once. True when the cache is usable."""
    say = say or (lambda s: None)
    marker = _marker()
    if marker.exists():
        return True
    lock = _lock_path()
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # one process compiles; the others wait and then find the marker
        try:
            if marker.exists():
                return True
            for attempt in range(2):
                run = subprocess.run([sys.executable, "-c", "from foley.numba_warm import _exercise; _exercise()"],
                                     capture_output=True, text=True)
                if run.returncode == 0:
                    marker.write_text("ok\n")
                    return True
                if run.returncode < 0 and attempt == 0:  # killed by a signal: a spoiled cache (numba#10128)
                    say(f"librosa's numba cache is spoiled (signal {-run.returncode}); cleared "
                        f"{clear_cache()} files, compiling again")
                    continue
                say(f"warming librosa's numba cache failed (exit {run.returncode}): "
                    f"{(run.stderr.strip().splitlines() or [''])[-1]}")
                return False
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


if __name__ == "__main__":
    ok = warm(say=lambda s: print(s, file=sys.stderr))
    print("librosa's numba cache: " + ("ready" if ok else "NOT ready"), file=sys.stderr)
    sys.exit(0 if ok else 1)
