"""Run every benchmark in sequence (about 2-4 minutes on 2 quiet cores); each appends to docs/benchmarks.md.

    python bench/run_all.py [--quick]

Run it on a quiet machine: another busy process slows 2-thread torch 10-100x.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args()
    r = "2" if args.quick else "3"
    data = [a for m in ("synth/manifest.jsonl", "music/manifest.jsonl", "real_sfx/balanced.jsonl")
            if (ROOT / "corpora" / m).exists() for a in ("--data", f"corpora/{m}")]
    jobs = [
        [PY, "bench/startup_train.py", "--repeats", r],
        [PY, "bench/ldm.py", "--repeats", r],
        [PY, "bench/ldm_vs_diffusers.py", "--size", "starter", "--steps", "25", "--duration", "10", "--repeats", r],
    ]
    if data:
        jobs.append([PY, "bench/vocoder.py", "--vocoder", "models/starter/vocoder", *data, "--n", "16",
                     "--threads", "2"])
    lm = [] if (ROOT / "models" / "starter-lm").exists() else ["--random"]  # untrained: random weights, same sizes
    jobs.append([PY, "bench/codec_lm.py", *lm])
    sys.path.insert(0, str(ROOT / "bench"))
    from quality_codec import DEFAULT_CODECS, DEFAULT_DATA, default_codec

    codec = default_codec(ROOT)
    if codec is None:
        print(f"skipping bench/quality_codec.py: no trained codec folder ({' or '.join(DEFAULT_CODECS)})", flush=True)
    elif not all((ROOT / m).exists() for m in DEFAULT_DATA):
        print(f"skipping bench/quality_codec.py: its held-out data ({', '.join(DEFAULT_DATA)}) is missing", flush=True)
    else:
        jobs.append([PY, "bench/quality_codec.py", "--codec", str(codec.relative_to(ROOT)), "-n", "16" if args.quick
                     else "48", "--threads", "2"])
    for cmd in jobs:
        t = time.perf_counter()
        print(f"$ {' '.join(cmd[1:])}", flush=True)
        res = subprocess.run(cmd, cwd=ROOT)
        print(f"  -> exit {res.returncode} in {time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
