"""Generation time idle vs beside one busy core, for the old thread behaviour and foley's new default.

    python bench/contention.py [--lm-seconds 3] [--ldm-items 4] [--ldm-steps 20] [--ldm-seconds 5] [--no-record]

In one run: for each workload (starter-lm, 3 s; starter, 4 prompts x 20 steps, 5 s) and each setting, a fresh
process loads the model, warms up and times one generation, once on the machine as it is ("idle") and once
while a busy-loop process this script starts (and stops) keeps a core busy. Settings, each in its own process
because OpenMP reads its environment when torch starts:

- ``old``: torch's default threads (one per core) and OpenMP's default wait policy (threads spin a while
  before sleeping) -- what foley did before foley/threads.py;
- ``passive``: the same threads with ``OMP_WAIT_POLICY=PASSIVE``;
- ``one``: one thread, default wait policy;
- ``auto``: foley's default now (the usable CPUs minus one, default wait policy; decided
  at start as every model command does).

Goal: with ``auto``, at most 2x slower beside a busy core than ``old`` on the idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ("old", "passive", "one", "auto")
PROMPTS = ["rain on a tin roof", "a deep drone slowly rising in pitch", "footsteps on gravel", "a door slams shut"]


def child(work: str, setting: str, a: argparse.Namespace) -> dict:
    """Runs inside the measured process: configure threads, load, warm up, time one generation."""
    if setting in ("old", "passive", "one"):
        import torch  # before foley, so its threads are torch's own default

        if setting == "one":
            torch.set_num_threads(1)
        import foley
        reason = "torch default" if setting != "one" else "1 thread"
    else:
        import foley
        from foley import threads

        reason = threads.apply().reason  # what every model command does first
        import torch
    if work == "lm":
        gen = foley.load("starter-lm")
        gen.generate(PROMPTS[0], duration=0.5, seed=0)
        t = time.perf_counter()
        gen.generate(PROMPTS[0], duration=a.lm_seconds, seed=1)
    else:
        gen = foley.load("starter")
        gen.generate(PROMPTS[0], duration=1.0, steps=2, seed=0)
        t = time.perf_counter()
        gen.generate(PROMPTS[:a.ldm_items], duration=a.ldm_seconds, steps=a.ldm_steps, seed=1)
    return {"seconds": time.perf_counter() - t, "threads": torch.get_num_threads(), "reason": reason,
            "wait": os.environ.get("OMP_WAIT_POLICY", "default")}


def measure(work: str, setting: str, busy: bool, a: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "FOLEY_THREADS",
                                                            "MKL_NUM_THREADS")}
    if setting == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        args = [sys.executable, __file__, "--child", work, setting, *sys.argv[1:]]
        out = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()
    if out.returncode != 0:
        raise SystemExit(f"{work}/{setting}: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lm-seconds", type=float, default=3.0)
    ap.add_argument("--ldm-items", type=int, default=4)
    ap.add_argument("--ldm-steps", type=int, default=20)
    ap.add_argument("--ldm-seconds", type=float, default=5.0)
    ap.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated subset of " + ", ".join(SETTINGS))
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(*a.child, a)))
        return
    settings = [s for s in a.settings.split(",") if s in SETTINGS]
    load0 = os.getloadavg()[0]
    res: dict = {}
    for work in ("lm", "ldm"):
        for s in settings:
            for busy in (False, True):
                r = res[(work, s, busy)] = measure(work, s, busy, a)
                print(f"{work:4s} {s:8s} {'busy' if busy else 'idle'}  {r['seconds']:7.2f} s  "
                      f"{r['threads']} thread(s), wait {r['wait']}  ({r['reason']})", flush=True)
    names = {"lm": f"starter-lm, {a.lm_seconds:g} s",
             "ldm": f"starter, {a.ldm_items} x {a.ldm_steps} steps, {a.ldm_seconds:g} s"}
    rows = ["| workload | setting | threads idle / busy | idle s | busy s | busy / idle | busy / old idle |",
            "|---|---|---|---|---|---|---|"]
    for work in ("lm", "ldm"):
        base = res.get((work, "old", False), {}).get("seconds")
        for s in settings:
            i, b = res[(work, s, False)], res[(work, s, True)]
            vs_old = f"{b['seconds'] / base:.2f}" if base else "-"
            rows.append(f"| {names[work]} | {s} | {i['threads']} / {b['threads']} | {i['seconds']:.2f} | "
                        f"{b['seconds']:.2f} | {b['seconds'] / i['seconds']:.2f} | {vs_old} |")
    ratios = []
    for work in ("lm", "ldm"):
        if not {"old", "auto"} <= set(settings):
            continue
        old_b, auto_b = res[(work, "old", True)]["seconds"], res[(work, "auto", True)]["seconds"]
        ratios.append(f"{names[work]}: beside a busy core, auto is {old_b / auto_b:.1f}x faster than old "
                      f"({auto_b:.2f} s vs {old_b:.2f} s)")
    body = "\n".join([
        "Each cell is one generation in a fresh process after a warm-up; 'busy' = a `while True: pass` process "
        "started by the script beside it. 'auto' is foley's default "
        f"(its reason: idle '{res.get(('lm', 'auto', False), {}).get('reason', '-')}', busy "
        f"'{res.get(('lm', 'auto', True), {}).get('reason', '-')}'). Load average before the run "
        f"{load0:.2f}, after {os.getloadavg()[0]:.2f}.", "", *rows, "", *[f"- {r}" for r in ratios]])
    if a.no_record:
        print(body)
    else:
        from common import record

        record("CPU contention: threads and OpenMP wait policy", body)


if __name__ == "__main__":
    main()
