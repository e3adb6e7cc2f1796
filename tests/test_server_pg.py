"""The job queue on both databases (SQLite, the embedded default, and a real PostgreSQL), and on PostgreSQL a pool
of ``foley worker`` processes: Alembic migrations equal the models, expired leases go back to the queue or fail
with the reason, a worker that lost its lease writes nothing, and 3 workers run 60 jobs while one is killed with
SIGKILL mid-job and another frozen past its lease (SIGSTOP) -- 0 lost, 0 duplicated outputs.

PostgreSQL: ``FOLEY_TEST_PG`` (an admin URL whose role may create databases), default the role that
``.ci/postgres.sh`` (``make sysdeps``) makes: postgresql://foley:foley@127.0.0.1:5432/postgres. Each test gets
its own database, dropped afterwards. Without a server the PostgreSQL cases are skipped, saying why."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("alembic")

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import func, select, update  # noqa: E402

from foley.server import Settings, create_app  # noqa: E402
from foley.server.db import Database, Job  # noqa: E402
from foley.server.storage import Storage  # noqa: E402
from foley.server.worker import ModelCache, Worker, reap  # noqa: E402
from tests.server_fixtures import tiny_model  # noqa: E402,F401
from tests.test_server import wait  # noqa: E402

PG_ADMIN = os.environ.get("FOLEY_TEST_PG", "postgresql://foley:foley@127.0.0.1:5432/postgres")
FAST = {"duration": 1.0, "steps": 3}


def _admin():
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.Error as e:
        where = PG_ADMIN.rsplit("@", 1)[-1]
        pytest.skip(f"no PostgreSQL server at {where} ({' '.join(str(e).split())[:160]}); as root, "
                    "'make sysdeps' (.ci/postgres.sh) installs and starts Debian's, or set FOLEY_TEST_PG")


@pytest.fixture
def pg_url():
    """A new, empty PostgreSQL database for one test (dropped after it, with any connection left)."""
    name = f"foley_test_{secrets.token_hex(6)}"
    with _admin() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    with _admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    """The queue's database URL: the SQLite file in the data folder, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'foley.db'}"
    return request.getfixturevalue("pg_url")


# --- schema ---------------------------------------------------------------------------------------------------
def test_migrations_make_exactly_the_models_schema(database):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from foley.server.db import Base, migrate

    db = Database(database)
    try:
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert migrate(db.engine) == "0003"  # again: nothing to do
    finally:
        db.dispose()


def test_processes_starting_together_migrate_once(pg_url):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:  # the advisory lock serialises them; every one sees the new schema
        dbs = list(pool.map(lambda _: Database(pg_url), range(4)))
    for db in dbs:
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Job)) == 0
        db.dispose()


# --- the API and the in-process worker on both databases ---------------------------------------------------------
def test_api_and_worker_on_each_database(database, tiny_model, tmp_path):  # noqa: F811
    settings = Settings(data=tmp_path, database_url=database, models={"tiny": str(tiny_model)}, max_queue=4)
    with TestClient(create_app(settings)) as c:
        ids = [c.post("/v1/generations", json={"prompt": f"tone {i}", "seed": i, **FAST}).json()["id"]
               for i in range(3)]
        for job_id in ids:
            job = wait(c, job_id)
            assert job["status"] == "done" and job["attempts"] == 1, job["error"]
            assert c.get(job["outputs"][0]["audio_url"]).content[:4] == b"RIFF"
        assert c.get("/v1/generations").json()["total"] == 3
    with Database(settings.db_url).session() as s:  # published and released
        assert {(j.lease_owner, j.lease_until) for j in s.scalars(select(Job))} == {(None, None)}
    assert sorted(p.name for p in (tmp_path / "jobs").iterdir()) == sorted(ids)  # no staging folder left


def test_queue_limit_and_cancel_on_each_database(database, tiny_model, tmp_path):  # noqa: F811
    settings = Settings(data=tmp_path, database_url=database, models={"tiny": str(tiny_model)}, max_queue=2,
                        start_worker=False)
    with TestClient(create_app(settings)) as c:
        first, _ = (c.post("/v1/generations", json={"prompt": "x", **FAST}).json()["id"] for _ in range(2))
        r = c.post("/v1/generations", json={"prompt": "x", **FAST})
        assert r.status_code == 429 and "queue is full" in r.json()["detail"]
        assert c.delete(f"/v1/generations/{first}").json()["status"] == "cancelled"
        assert c.post("/v1/generations", json={"prompt": "x", **FAST}).status_code == 202


def test_edits_uploads_and_a_study_on_each_database(database, tiny_model, tmp_path, write_audio):  # noqa: F811
    from foley.server.studies import create_study
    from tests.test_study import _clips, _take_part

    settings = Settings(data=tmp_path / "data", database_url=database, models={"tiny": str(tiny_model)})
    with TestClient(create_app(settings)) as c:
        write_audio(tmp_path / "in.wav", seconds=1.0, channels=2)
        with (tmp_path / "in.wav").open("rb") as f:
            up = c.post("/v1/uploads", files={"file": ("in.wav", f, "audio/wav")}).json()
        edit = c.post("/v1/edits", data={"task": "inpaint", "prompt": "a tone", "source_upload": up["id"],
                                         "mask_start": "0.2", "mask_end": "0.6", "steps": "2", "seed": "3"})
        assert edit.status_code == 202, edit.text
        job = wait(c, edit.json()["id"])
        assert job["status"] == "done" and job["source"] == {"upload": up["id"]}, job["error"]
        again = c.post("/v1/edits", data={"task": "style_transfer", "prompt": "a tone", "source_job": job["id"],
                                          "strength": "0.5", "steps": "2"}).json()
        assert wait(c, again["id"])["status"] == "done"
        db = Database(settings.db_url)
        try:  # a listening study: JSON columns, the unique answer per trial, the analysis
            from foley.server.studies import clips_from_path

            items = clips_from_path(_clips(tmp_path / "clips", write_audio))
            study, token = create_study(db, Storage(settings.data), "pg", "ovl_rel", items, {"repeats": 1})
        finally:
            db.dispose()
        _take_part(c, study, lambda t, d, first: {"ovl": 70, "rel": 60})
        res = c.get(f"/v1/studies/{study.id}/results", headers={"Authorization": f"Bearer {token}"}).json()
        assert res["ratings"]["ovl"]["by_system"]["sysA"]["mean"] == 70


# --- leases ------------------------------------------------------------------------------------------------------
def _job(db: Database, status: str, attempts: int, lease: float | None, owner: str = "w") -> str:
    job_id = secrets.token_hex(16)
    with db.session() as s:
        until = db.clock() + timedelta(seconds=lease) if lease is not None else None
        s.add(Job(id=job_id, kind="generate", model="x", params={}, status=status, attempts=attempts,
                  lease_owner=owner if lease is not None else None, lease_until=until))
        s.commit()
    return job_id


def test_expired_leases_are_requeued_or_failed_and_live_ones_kept(database, tmp_path):
    settings = Settings(data=tmp_path, database_url=database, models={"x": "x"}, max_attempts=2)
    db = Database(settings.db_url)
    try:
        expired = _job(db, "running", 1, -5)
        expired_twice = _job(db, "running", 2, -5)
        live = _job(db, "running", 1, 60)
        (tmp_path / "jobs" / f".{expired}.1.abcd").mkdir(parents=True)  # the dead worker's staging folder
        assert reap(db, settings) == {"requeued": 1, "failed": 1}
        with db.session() as s:
            a, b, c = (s.get(Job, i) for i in (expired, expired_twice, live))
        assert (a.status, a.attempts, a.lease_owner) == ("queued", 1, None)
        assert b.status == "failed" and "stopped while this job was running, 2 time(s)" in b.error
        assert (c.status, c.lease_owner) == ("running", "w")
        assert not list((tmp_path / "jobs").iterdir())
    finally:
        db.dispose()


def test_a_worker_that_lost_its_lease_changes_nothing(database, tmp_path):
    settings = Settings(data=tmp_path, database_url=database, models={"x": "x"}, preload=False)
    db = Database(settings.db_url)
    storage = Storage(settings.data)
    try:
        job_id = _job(db, "queued", 0, None)
        worker = Worker(db, storage, settings, ModelCache(settings))
        job = worker._claim()
        assert job.id == job_id and job.attempts == 1 and worker._claim() is None
        staging = storage.staging_dir(job.id, job.attempts)
        (staging / "0.wav").write_bytes(b"RIFF")
        with db.session() as s:  # its lease expired and another worker claimed the job
            s.execute(update(Job).where(Job.id == job_id).values(lease_owner="other", attempts=2))
            s.commit()
        assert not worker._set(job, progress=0.5)
        assert not worker._publish(job, staging, [{"index": 0}])
        with db.session() as s:
            row = s.get(Job, job_id)
        assert (row.status, row.progress, row.lease_owner, row.outputs) == ("running", 0.0, "other", None)
        assert not storage.job_dir(job_id).exists()
    finally:
        db.dispose()


def test_the_worker_outlives_a_database_error_at_the_end_of_a_job(database, tmp_path, monkeypatch):
    from sqlalchemy.exc import OperationalError

    settings = Settings(data=tmp_path, database_url=database, models={"x": "x"}, preload=False)
    db = Database(settings.db_url)
    try:
        for _ in range(2):
            _job(db, "queued", 0, None)
        worker = Worker(db, Storage(settings.data), settings, ModelCache(settings))
        ran = []

        def run(job):  # e.g. the database is unreachable when the job's end is written
            ran.append(job.id)
            raise OperationalError("UPDATE jobs ...", {}, Exception("server closed the connection"))

        monkeypatch.setattr(worker, "_run", run)
        worker.start()
        for _ in range(600):
            if len(ran) == 2:
                break
            time.sleep(0.05)
        assert len(ran) == 2 and worker.alive  # it went on to the next job
        worker.stop()
    finally:
        db.dispose()


# --- the worker pool ---------------------------------------------------------------------------------------------
def _running_job_of(db: Database, pid: int) -> str | None:
    with db.session() as s:
        return s.scalar(select(Job.id).where(Job.status == "running", Job.lease_owner.like(f"%:{pid}:%")))


def _pause_mid_job(proc: subprocess.Popen, db: Database, timeout: float = 300.0) -> str:
    """SIGSTOP ``proc`` at a moment it holds a running job; the job's id."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if _running_job_of(db, proc.pid):
            proc.send_signal(signal.SIGSTOP)
            job_id = _running_job_of(db, proc.pid)  # still its job now that it cannot finish it
            if job_id:
                return job_id
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError(f"worker {proc.pid} never ran a job")


def test_three_workers_sixty_jobs_one_killed_one_frozen_nothing_lost_or_doubled(pg_url, tiny_model, tmp_path):  # noqa: F811
    """`foley serve --no-worker` over HTTP and three `foley worker` processes on one PostgreSQL queue."""
    import httpx

    from tests.conftest import free_port

    lease = 2.0
    data = tmp_path / "shared"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    port = free_port()
    serve = subprocess.Popen([sys.executable, "-m", "foley", "serve", "--database", pg_url, "--data", str(data),
                              "--no-worker", "--port", str(port), "--model", f"tiny={tiny_model}",
                              "--max-queue", "100", "--log-level", "warning"],
                             env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "serve.log").open("wb"))
    procs = [subprocess.Popen([sys.executable, "-m", "foley", "worker", "--database", pg_url, "--data", str(data),
                               "--models", f"tiny={tiny_model}", "--threads", "1", "--lease-seconds", str(lease)],
                              env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / f"worker{i}.log").open("wb"))
             for i in range(3)]
    db = Database(pg_url)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as c:
            for _ in range(600):
                try:
                    if c.get("/healthz").json() == {"ok": True, "worker": False}:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            ids = [c.post("/v1/generations", json={"prompt": f"tone {i}", "seed": i, **FAST}).json()["id"]
                   for i in range(60)]
            killed = _pause_mid_job(procs[0], db)
            procs[0].send_signal(signal.SIGKILL)  # dies holding the job: no clean-up runs
            procs[0].wait(30)
            frozen = _pause_mid_job(procs[1], db)
            for _ in range(6000):  # frozen past its lease: another worker takes the job over
                with db.session() as s:
                    row = s.get(Job, frozen)
                if row.status == "done" or (row.lease_owner and f":{procs[1].pid}:" not in row.lease_owner):
                    break
                time.sleep(0.05)
            procs[1].send_signal(signal.SIGCONT)  # wakes up without its lease: must write nothing
            jobs = {i: wait(c, i, timeout=600) for i in ids}
        assert {j["status"] for j in jobs.values()} == {"done"}, [j["error"] for j in jobs.values()]
        assert jobs[killed]["attempts"] == 2 and jobs[frozen]["attempts"] == 2
        assert sum(j["attempts"] for j in jobs.values()) == 62  # no other job ran twice
        folders = sorted(p.name for p in (data / "jobs").iterdir())
        assert folders == sorted(ids)  # no staging folder left behind
        for job_id in ids:
            files = sorted(p.name for p in (data / "jobs" / job_id).iterdir())
            assert files == ["0.json", "0.png", "0.wav"], (job_id, files)
        assert len(list((data / "jobs").rglob("*.wav"))) == 60
        for p in (1, 2):  # the others stop cleanly
            procs[p].send_signal(signal.SIGTERM)
            assert procs[p].wait(60) == 0
        logs = "".join((tmp_path / f"worker{i}.log").read_text() for i in (1, 2))
        assert "stopped after" in logs and "Traceback" not in (tmp_path / "worker2.log").read_text()
    finally:
        for p in [*procs, serve]:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait(30)
        db.dispose()


# --- the command line ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    (["--database", "sqlite:///x.db"], "with SQLite, 'foley serve' runs the jobs itself"),
    (["--database", "nonsense"], "is not a database URL"),
    (["--database", "postgresql://foley:wrong@127.0.0.1:1/foley"], "cannot use the database"),
    (["--database", "postgresql://u@h/d", "--lease-seconds", "0"], "lease_seconds must be positive"),
])
def test_worker_refuses_bad_input_in_one_line(foley_cli, tmp_path, args, words):
    r = foley_cli("worker", *args, "--data", tmp_path / "d", "--models", "starter", cwd=tmp_path)
    assert r.returncode != 0 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "wrong" not in r.stderr  # no password in messages


def test_worker_help_names_its_options(foley_cli):
    r = foley_cli("worker", "--help")
    assert r.returncode == 0
    for option in ("--database", "--models", "--threads", "--data", "--lease-seconds", "--max-attempts"):
        assert option in r.stdout
