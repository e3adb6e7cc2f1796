"""Batch generation on Ray: items per second with 1 and 2 actors (1 CPU and 1 torch thread each) on a local Ray
instance of this machine, the same N requests of a real model (default ``starter``). Steady-state items/s is timed
from the moment every actor has its model loaded (and made one warm-up sound: the first generation loads more) to the
last result; the wall time from ``ray.init`` is shown too.
Appends a section to docs/benchmarks.md (``--no-record`` to skip).

    python bench/ray_batch.py [--items 8] [--model starter] [--duration 2] [--actors 1,2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402


def run(model: str, requests: list, actors: int, warmup) -> dict:
    from foley.cli import ray_batch

    marks = {}
    t0 = time.perf_counter()
    done = []
    ray_batch.run(None, model, {}, requests, lambda i, audios: done.append(i), actors=actors, actor_cpus=1,
                  on_ready=lambda where: marks.setdefault("ready", time.perf_counter()), warmup=warmup)
    t1 = time.perf_counter()
    assert sorted(done) == list(range(len(requests)))
    steady = t1 - marks["ready"]
    return {"actors": actors, "load_s": marks["ready"] - t0, "steady_s": steady, "items_s": len(requests) / steady,
            "wall_s": t1 - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=8)
    ap.add_argument("--model", default="starter")
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--actors", default="1,2")
    ap.add_argument("--no-record", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray

    from foley.request import make_request

    requests = [make_request(prompt=p, duration=a.duration, seed=i) for i, p in enumerate(
        ["rain on a tin roof", "footsteps on gravel", "a deep drone slowly rising in pitch", "a dog barking",
         "wind through pine trees", "a door slam", "church bells", "crickets at night"] * (a.items // 8 + 1))][:a.items]
    t = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
    init_s = time.perf_counter() - t
    warmup = make_request(prompt="a short click", duration=0.5, seed=0)  # each actor once, before the clock starts
    rows = [run(a.model, requests, int(n), warmup) for n in a.actors.split(",")]
    ray.shutdown()
    base = rows[0]["items_s"]
    lines = [f"{a.items} requests of `{a.model}`, {a.duration:g} s each, default settings; local Ray instance "
             f"(num_cpus = {os.cpu_count()}, ray.init {init_s:.1f} s); every actor 1 CPU, 1 torch thread.", "",
             "| actors | model load + warm-up (all actors, s) | items/s after load | vs 1 actor | wall incl. load (s) "
             "|",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['actors']} | {r['load_s']:.1f} | {r['items_s']:.3f} | {r['items_s'] / base:.2f}x | "
                     f"{r['wall_s']:.1f} |")
    text = "\n".join(lines)
    if a.no_record:
        print(text)
    else:
        record(f"Batch generation on Ray: items/s, 1 vs 2 actors ({a.model}, {a.duration:g} s)", text)


if __name__ == "__main__":
    main()
