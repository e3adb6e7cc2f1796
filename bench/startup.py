"""Quick starts: `foley --help` and cold start to the first second of audio, medians of fresh processes.

    python bench/startup.py [--repeats 5] [--against REV] [--no-record]

Each figure is a new process, timed from outside (wall clock):
- `foley --help`;
- starter: `foley generate "rain" -d 1 -m starter -o a.wav` (load, 1 s of audio, write), with torch and with
  ``--backend onnx`` (text to audio without torch: graphs exported into $FOLEY_HOME by the warm-up run);
- starter-lm: `foley generate "rain" -d 1 -m starter-lm --stream -o a.wav` (load, stream 1 s, write);
  the process's own "first chunk after N ms" (load excluded) is reported beside it;
- starter-wavegan: `foley generate "a door knock" -m starter-wavegan -o a.wav` (a 1 s one-shot), with torch and with
  ``--backend onnx`` (no torch in the process: its graphs are exported into $FOLEY_HOME by the warm-up run; this
  case is not run on ``--against`` revisions that lack it).
foley's own modules are byte-compiled first (``compileall``), as ``pip install`` does: with
PYTHONDONTWRITEBYTECODE set (as on this machine) an editable checkout would otherwise compile every module anew at
every start (~40 ms of ``foley --help``).
With ``--against REV`` the same commands also run on another revision of this repository (its files from
`git archive`, on PYTHONPATH, the same venv and models/), interleaved A B A B so that a busy machine slows both
alike; the ratio is new / old per pair. The process that imports `foley.cli` is also asked whether torch came
with it.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from common import record  # noqa: E402

CASES = {
    "`foley --help`": ["--help"],
    "starter: load + 1 s + write": ["generate", "rain", "-d", "1", "--seed", "0", "-m", "starter", "-o", "{tmp}/a.wav"],
    "starter --backend onnx: load + 1 s + write": ["generate", "rain", "-d", "1", "--seed", "0", "-m", "starter",
                                                   "--backend", "onnx", "-o", "{tmp}/e.wav"],
    "starter-lm: load + stream 1 s + write": ["generate", "rain", "-d", "1", "--seed", "0", "-m", "starter-lm",
                                              "--stream", "-o", "{tmp}/b.wav"],
    "starter-wavegan: load + 1 s + write": ["generate", "a door knock", "--seed", "0", "-m", "starter-wavegan", "-o",
                                            "{tmp}/c.wav"],
    "starter-wavegan --backend onnx: load + 1 s + write": ["generate", "a door knock", "--seed", "0", "-m",
                                                           "starter-wavegan", "--backend", "onnx", "-o",
                                                           "{tmp}/d.wav"],
}
# older revisions have no torch-free path (their --backend onnx of the starter is the hybrid one: not comparable)
NEW_ONLY = {"starter-wavegan --backend onnx: load + 1 s + write", "starter --backend onnx: load + 1 s + write"}
NO_TORCH = """
import sys
from foley.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(sorted(m for m in ("torch", "transformers", "diffusers") if m in sys.modules))
"""


def _env(tree: Path | None) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FOLEY_MODELS": str(ROOT / "models")}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def _run(args: list[str], tree: Path | None, tmp: str) -> tuple[float, float | None]:
    """Wall seconds of one `python -m foley ARGS` process, and its 'first chunk after N ms' if it said one."""
    cmd = [sys.executable, "-m", "foley", *[a.format(tmp=tmp) for a in args]]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tree or ROOT, env=_env(tree))
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    m = re.search(r"first chunk after (\d+) ms", r.stderr)
    return wall, (float(m.group(1)) / 1000 if m else None)


def _tree(rev: str, dest: Path) -> Path:
    """The package files of ``rev`` (no models: FOLEY_MODELS points at this checkout's)."""
    archive = subprocess.run(["git", "archive", rev, "foley"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    probe = subprocess.run([sys.executable, "-c", "import foley; print(foley.__file__)"], capture_output=True,
                           text=True, cwd=dest, env=_env(dest), check=True).stdout.strip()
    if not probe.startswith(str(dest)):
        raise SystemExit(f"--against {rev}: python imported {probe}, not the archived tree")
    return dest


def _torch_with_cli(tree: Path | None) -> str:
    code = "import sys, foley.cli; print(sorted(m for m in ('torch', 'numpy', 'pydantic') if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tree or ROOT,
                          env=_env(tree)).stdout.strip()


def _heavy_in_onnx(tmp: str, case: str) -> str:
    args = [a.format(tmp=tmp) for a in CASES[case]]
    return subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, cwd=ROOT,
                          env=_env(None)).stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--against", metavar="REV", help="Also time this git revision, interleaved (e.g. HEAD~3).")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as old_dir:
        old = _tree(args.against, Path(old_dir)) if args.against else None
        sides = {"new": None, **({"old": old} if old else {})}
        for tree in sides.values():  # .pyc files, as an installed package has them
            subprocess.run([sys.executable, "-m", "compileall", "-q", str((tree or ROOT) / "foley")], check=True,
                           capture_output=True)
        times = {(case, side): [] for case in CASES for side in sides}
        chunks = {(case, side): [] for case in CASES for side in sides}
        for case, cli in CASES.items():
            run_on = {k: v for k, v in sides.items() if k == "new" or case not in NEW_ONLY}
            for _side, tree in run_on.items():  # warm-up: page cache, .pyc files (and the onnx graphs' export)
                _run(cli, tree, tmp)
            for _ in range(args.repeats):
                for side, tree in run_on.items():
                    wall, chunk = _run(cli, tree, tmp)
                    times[case, side].append(wall)
                    if chunk is not None:
                        chunks[case, side].append(chunk)
        imported = {side: _torch_with_cli(tree) for side, tree in sides.items()}
        heavy = {case: _heavy_in_onnx(tmp, case) for case in NEW_ONLY}

    med = statistics.median
    head = "| measure | this commit |" + (f" {args.against} | ratio new/old (median of pairs) |" if old else "")
    rows = [head, "|---|---|" + ("---|---|" if old else "")]
    for case in CASES:
        new = times[case, "new"]
        line = f"| {case}, wall s | {med(new):.2f} (min {min(new):.2f}, max {max(new):.2f}) |"
        if old and times[case, "old"]:
            prev = times[case, "old"]
            ratio = med([a / b for a, b in zip(new, prev, strict=True)])
            line += f" {med(prev):.2f} (min {min(prev):.2f}, max {max(prev):.2f}) | {ratio:.2f} |"
        elif old:
            line += " - | - |"
        rows.append(line)
        if chunks[case, "new"]:
            line = f"| {case}: first chunk after load, s | {med(chunks[case, 'new']):.2f} |"
            if old and chunks[case, "old"]:
                ratio = med([a / b for a, b in zip(chunks[case, "new"], chunks[case, "old"], strict=True)])
                line += f" {med(chunks[case, 'old']):.2f} | {ratio:.2f} |"
            rows.append(line)
    rows.append(f"| modules of torch/numpy/pydantic imported by `import foley.cli` | {imported['new']} |"
                + (f" {imported['old']} | |" if old else ""))
    for case, mods in sorted(heavy.items()):
        rows.append(f"| modules of torch/transformers/diffusers imported by {case.split(':')[0]} | {mods} |"
                    + (" | |" if old else ""))
    body = (f"Fresh processes, median of {args.repeats} after one warm-up each, foley byte-compiled as installed"
            + (", the two revisions interleaved" if old else "") + f"; python {sys.version.split()[0]}.\n\n"
            + "\n".join(rows))
    if args.no_record:
        print(body)
    else:
        record("Quick starts: `foley --help` and cold start to the first second of audio", body)


if __name__ == "__main__":
    main()
