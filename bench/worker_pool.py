"""Throughput of the PostgreSQL job queue with 1, 2 and 3 ``foley worker`` processes on this machine: N generation
jobs of a real model (default ``starter``, 5 s clips) submitted through the API at once, timed from submission to
the last one done, after every worker has loaded the model. Prints jobs per minute per pool size and appends a
section to docs/benchmarks.md (``--no-record`` to skip).

    python bench/worker_pool.py [--database postgresql://foley:foley@127.0.0.1:5432/postgres] [--jobs 24]

``--database`` is an admin URL whose role may create databases (default ``$FOLEY_TEST_PG`` or the role
``.ci/postgres.sh`` makes); a scratch database is made for each pool size and dropped after it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402

ADMIN = os.environ.get("FOLEY_TEST_PG", "postgresql://foley:foley@127.0.0.1:5432/postgres")


def scratch_database(admin: str) -> tuple[str, str]:
    import psycopg

    name = f"foley_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return name, admin.rsplit("/", 1)[0] + "/" + name


def drop_database(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run_pool(admin: str, workers: int, jobs: int, model: str, duration: float, threads: int) -> dict:
    from fastapi.testclient import TestClient

    from foley.server import Settings, create_app

    name, url = scratch_database(admin)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    procs, logs = [], []
    try:
        with tempfile.TemporaryDirectory() as data:
            for i in range(workers):
                log = Path(data) / f"worker{i}.log"
                logs.append(log)
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "foley", "worker", "--database", url, "--data", data, "--models", model,
                     "--threads", str(threads)], env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb")))
            t_start = time.monotonic()
            while sum("ready" in log.read_text() for log in logs) < workers:  # every worker has its model
                if any(p.poll() is not None for p in procs):
                    raise SystemExit("a worker stopped: " + "".join(log.read_text() for log in logs)[-2000:])
                time.sleep(0.2)
            load = time.monotonic() - t_start
            settings = Settings(data=data, database_url=url, models={model: model}, start_worker=False,
                                max_queue=jobs + 1)
            with TestClient(create_app(settings)) as c:
                t0 = time.monotonic()
                ids = [c.post("/v1/generations", json={"prompt": f"rain on a tin roof, take {i}", "seed": i,
                                                       "duration": duration}).json()["id"] for i in range(jobs)]
                left = set(ids)
                while left:
                    for job_id in list(left):
                        job = c.get(f"/v1/generations/{job_id}").json()
                        if job["status"] in ("done", "failed", "cancelled"):
                            if job["status"] != "done":
                                raise SystemExit(f"job {job_id} {job['status']}: {job['error']}")
                            left.discard(job_id)
                    time.sleep(0.1)
                elapsed = time.monotonic() - t0
                rows = [c.get(f"/v1/generations/{i}").json() for i in ids]
            from datetime import datetime

            per_job = [(datetime.fromisoformat(r["finished_at"]) - datetime.fromisoformat(r["started_at"]))
                       .total_seconds() for r in rows]
            wavs = len(list(Path(data, "jobs").rglob("*.wav")))
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(60)
        drop_database(admin, name)
    return {"workers": workers, "threads": threads, "elapsed": elapsed, "per_minute": jobs / elapsed * 60,
            "job_median": statistics.median(per_job), "load": load, "wavs": wavs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", default=ADMIN)
    ap.add_argument("--jobs", type=int, default=24)
    ap.add_argument("--model", default="starter")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--pools", default="1,2,3")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker (two busy-waiting threads on a "
                                                          "shared 2-core machine can be many times slower)")
    ap.add_argument("--no-record", action="store_true")
    a = ap.parse_args()
    cores = os.cpu_count() or 1
    results = []
    for w in (int(x) for x in a.pools.split(",")):
        r = run_pool(a.database, w, a.jobs, a.model, a.duration, threads=a.threads)
        print(f"{w} worker(s) x {r['threads']} thread(s): {r['per_minute']:.1f} jobs/min ({a.jobs} jobs in "
              f"{r['elapsed']:.1f} s; median job {r['job_median']:.2f} s; model loaded in {r['load']:.1f} s)",
              flush=True)
        results.append(r)
    base = results[0]["per_minute"]
    lines = [f"{a.jobs} jobs of `{a.model}`, {a.duration:g} s each (default steps), submitted at once through the API "
             f"to a PostgreSQL queue (Debian's PostgreSQL on this machine), run by `foley worker` processes with "
             f"{a.threads} torch thread(s) each on {cores} cores; timed from the first submission to the last job "
             "done, after every worker had loaded the model. Outputs counted afterwards: one WAV per job in every "
             "run.", "",
             "| workers x threads | jobs/min | vs 1 worker | wall s | median job s (start to done) |",
             "|---|---|---|---|---|"]
    for r in results:
        assert r["wavs"] == a.jobs, r
        lines.append(f"| {r['workers']} x {r['threads']} | {r['per_minute']:.1f} | {r['per_minute'] / base:.2f} | "
                     f"{r['elapsed']:.1f} | {r['job_median']:.2f} |")
    if not a.no_record:
        record(f"Worker pool on PostgreSQL: jobs per minute ({a.model}, {a.duration:g} s)", "\n".join(lines))


if __name__ == "__main__":
    main()
