"""The job worker: one thread that takes queued jobs from the database, runs them with cached models and
writes results. The database is the queue, so a restart finds every accepted job again.

A claimed job carries a lease (``lease_owner``, ``lease_until``) that the worker's heartbeat renews; a worker that
dies stops renewing it, and any other worker (or the next start) puts the job back in the queue. Every write a
worker makes to a job is conditional on still holding that lease (owner and attempt number), and results are
written to a staging folder that is renamed to ``jobs/<id>/`` under the job's row lock, so a worker that lost its
lease (killed, frozen, cut off) can neither overwrite a newer attempt's results nor leave partial files."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from collections import OrderedDict
from datetime import timedelta
from pathlib import Path

from sqlalchemy import or_, select, update

from ..errors import FoleyError, ModelError
from ..fsutil import write_json_atomic
from ..request import GenerationRequest
from .db import Database, Job, write_lock
from .settings import Settings
from .storage import Storage, hide_paths

log = logging.getLogger("foley.server")
POLL_SECONDS = 1.0
PROGRESS_EVERY_SECONDS = 0.3


class JobInterrupted(Exception):
    """Raised inside a running job when the server shuts down; the job goes back to the queue."""


class JobCancelled(Exception):
    """Raised inside a running job the client cancelled (``DELETE /v1/generations/{id}``)."""


class JobLost(Exception):
    """Raised inside a running job whose lease this worker no longer holds (it expired and the job went back to
    the queue, or another worker has it now): the work is dropped without touching the job's row or files."""


class ModelCache:
    """Loaded generators by alias, least recently used dropped first; each alias is loaded once.

    :meth:`turn` lets one generation run at a time in the process (worker jobs and ``/v1/stream`` responses):
    token samplers seed torch's process-wide random generator, so two at once would change each other's sounds."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._models: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()
        self._turn = threading.Lock()

    @contextlib.contextmanager
    def turn(self, stop: threading.Event | None = None):
        """Hold the process's one generation turn; yields False (without it) if ``stop`` is set while waiting."""
        while not self._turn.acquire(timeout=0.1):
            if stop is not None and stop.is_set():
                yield False
                return
        try:
            yield True
        finally:
            self._turn.release()

    def get(self, alias: str):
        from .. import load

        if alias not in self.settings.models:
            raise ModelError(f"model '{alias}' is not offered by this server (offered: "
                             f"{', '.join(self.settings.models)})")
        with self._lock:
            if alias in self._models:
                self._models.move_to_end(alias)
                return self._models[alias]
            gen = load(self.settings.models[alias])
            self._models[alias] = gen
            while len(self._models) > self.settings.max_cached_models:
                self._models.popitem(last=False)
            return gen

    def loaded(self, alias: str):
        with self._lock:
            return self._models.get(alias)


def recover(db: Database, settings: Settings, storage: Storage | None = None) -> dict[str, int]:
    """At start-up: put jobs whose worker is gone back in the queue, or mark them failed with the reason once they
    have used ``max_attempts`` starts -- counting starts ended by a clean stop too, so a job that brings a worker
    down cannot restart forever.

    SQLite is one machine's embedded database, served by one process whose worker thread is the only one: every
    ``running`` job was left by a killed server, and the stale temporary files and partial results it left are
    removed (``storage``, default: the settings' data folder). On a shared database (PostgreSQL) other workers may
    be running jobs right now: only expired leases count, and nothing is removed from the shared folder but the
    staging folders of the jobs put back."""
    counts = reap(db, settings, storage, everything=not db.shared)
    if not db.shared:
        with db.session() as s:
            done = set(s.scalars(select(Job.id).where(Job.status == "done")))
        removed = (storage or Storage(settings.data)).remove_stale(done)
        if removed:
            log.warning("removed %d stale temporary or partial file(s) left by an earlier run", removed)
    return counts


def reap(db: Database, settings: Settings, storage: Storage | None = None, everything: bool = False) -> dict[str, int]:
    """Jobs whose lease expired (every ``running`` job when ``everything``) go back to the queue, or fail with the
    reason after ``max_attempts`` starts; queued jobs that already used them fail too. Safe to run in any number of
    processes at once: rows are taken with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) or under SQLite's write lock."""
    counts = {"requeued": 0, "failed": 0}
    storage = storage or Storage(settings.data)
    t = db.clock()
    reaped = []
    with db.session() as s:
        if not db.shared:
            write_lock(s)
        q = select(Job).where(or_(Job.status == "running", Job.attempts >= settings.max_attempts),
                              Job.status.in_(("running", "queued")), Job.attempts > 0)
        if not everything:
            q = q.where(or_(Job.status == "queued", Job.lease_until.is_(None), Job.lease_until < t))
        if db.shared:
            q = q.with_for_update(skip_locked=True)
        for job in s.scalars(q):
            if job.attempts >= settings.max_attempts:
                who = "the server" if not db.shared else "a worker"
                job.status, job.finished_at = "failed", t
                job.error = (f"{who} stopped while this job was running, {job.attempts} time(s); not retried "
                             "again (it may need more memory or time than the server has)")
                counts["failed"] += 1
            elif job.status == "running":
                job.status, job.progress, job.started_at = "queued", 0.0, None
                counts["requeued"] += 1
            else:
                continue
            job.lease_owner = job.lease_until = None
            reaped.append(job.id)
        s.commit()
    for job_id in reaped:
        storage.remove_staging(job_id)
    if any(counts.values()):
        log.warning("jobs whose worker stopped: %s", counts)
    return counts


def worker_name() -> str:
    """``host:pid:random`` -- names the lease holder in the database (and in logs)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


class Worker:
    """Runs jobs one at a time in a daemon thread (generation is CPU-bound; one at a time is fastest)."""

    def __init__(self, db: Database, storage: Storage, settings: Settings, models: ModelCache,
                 aliases: list[str] | None = None):
        self.db, self.storage, self.settings, self.models = db, storage, settings, models
        self.name = worker_name()
        self.aliases = list(aliases or settings.models)  # the models whose jobs this worker takes
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heart: threading.Thread | None = None
        self._listeners: list = []
        self._cancelled: set[str] = set()  # job ids a client cancelled while they run
        self._lost: set[str] = set()       # job ids whose lease this worker lost
        self._current: Job | None = None
        self.finished = 0                  # jobs this worker finished (done, failed or cancelled)

    def add_listener(self, fn) -> None:
        """Call ``fn(job_id, fraction)`` whenever a running job's progress is stored (worker thread)."""
        self._listeners.append(fn)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="foley-worker", daemon=True)
        self._heart = threading.Thread(target=self._heartbeat, name="foley-heartbeat", daemon=True)
        self._thread.start()
        self._heart.start()

    def join(self) -> None:
        """Wait until the worker stops (``foley worker`` in the foreground)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, job_id: str) -> None:
        """Stop ``job_id`` at its next sampler step if it is running here (the database flag covers other
        processes)."""
        self._cancelled.add(job_id)

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the worker to stop; a running denoising loop is interrupted and its job re-queued."""
        self._stop.set()
        self._wake.set()
        for thread in (self._thread, self._heart):
            if thread is not None:
                thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- the loop ------------------------------------------------------------------------------
    def _preload(self) -> None:
        try:
            self.models.get(self.settings.default_model)
        except Exception as e:  # a missing model is reported by the jobs that need it
            log.warning("could not preload model '%s': %s", self.settings.default_model, e)

    def _loop(self) -> None:
        if self.settings.preload:
            self._preload()
        log.info("worker %s ready", self.name)
        reaped = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - reaped >= self.settings.lease_seconds / 2:
                    reaped = time.monotonic()
                    reap(self.db, self.settings, self.storage)
                job = self._claim()
            except Exception:  # database briefly unavailable: retry after a pause
                log.exception("cannot read the job queue")
                job = None
            if job is None:
                self._wake.wait(POLL_SECONDS)
                self._wake.clear()
                continue
            self._current = job
            try:
                self._run(job)
            except Exception:  # the database went away mid-job: the lease expires and another worker retries
                log.exception("job %s: cannot record its end; its lease will expire and it is queued again", job.id)
            finally:
                self._current = None
                self.finished += 1

    def _claim(self) -> Job | None:
        """Take the oldest queued job of this worker's models with a lease: ``SELECT ... FOR UPDATE SKIP LOCKED``
        on PostgreSQL (workers never wait for each other's rows), SQLite's write lock otherwise."""
        t = self.db.clock()
        with self.db.session() as s:
            if not self.db.shared:
                write_lock(s)
            q = (select(Job).where(Job.status == "queued", Job.model.in_(self.aliases),
                                   Job.attempts < self.settings.max_attempts)  # the others: reap() fails them
                 .order_by(Job.created_at).limit(1))
            if self.db.shared:
                q = q.with_for_update(skip_locked=True)
            job = s.scalars(q).first()
            if job is None:
                s.rollback()
                return None
            job.status, job.started_at, job.progress = "running", t, 0.0
            job.attempts += 1
            job.lease_owner, job.lease_until = self.name, t + timedelta(seconds=self.settings.lease_seconds)
            s.commit()
        self.storage.remove_staging(job.id)  # what an earlier attempt's worker left (it lost the lease)
        return job

    def _mine(self, job: Job) -> tuple:
        """The condition that this worker still holds ``job``'s lease: every write to the job carries it."""
        return (Job.id == job.id, Job.status == "running", Job.lease_owner == self.name,
                Job.attempts == job.attempts)

    def _set(self, job: Job, **values) -> bool:
        """Update the job if this worker still holds it; False (and the job marked lost) when it does not."""
        with self.db.session() as s:
            res = s.execute(update(Job).where(*self._mine(job)).values(**values))
            s.commit()
        if res.rowcount != 1:
            self._lost.add(job.id)
            return False
        return True

    def _heartbeat(self) -> None:
        """Renew the running job's lease every third of its length; a renewal that finds the job no longer this
        worker's marks it lost, so the job stops at its next step."""
        every = max(self.settings.lease_seconds / 3, 0.1)
        while not self._stop.wait(every):
            job = self._current
            if job is None:
                continue
            try:
                until = self.db.clock() + timedelta(seconds=self.settings.lease_seconds)
                self._set(job, lease_until=until)
            except Exception:  # the database is briefly away: the next beat tries again
                log.exception("cannot renew the lease of job %s", job.id)

    def _run(self, job: Job) -> None:
        staging = self.storage.staging_dir(job.id, job.attempts)
        try:
            outputs = self._execute(job, staging)
            if not self._publish(job, staging, outputs):
                raise JobLost()
        except JobLost:
            log.warning("job %s: this worker lost its lease (another worker has it now); result dropped", job.id)
        except JobInterrupted:  # the attempt still counts: a job that stops the server cannot loop forever
            self._set(job, status="queued", progress=0.0, started_at=None, lease_owner=None, lease_until=None)
            log.info("job %s interrupted by shutdown; queued again", job.id)
        except JobCancelled:
            self._end(job, status="cancelled", error="cancelled by the client")
            log.info("job %s cancelled", job.id)
        except FoleyError as e:
            self._end(job, status="failed", error=hide_paths(str(e)))
        except Exception as e:  # a bug or resource problem: the job fails with the reason, the worker lives
            if job.id in self._lost:
                log.warning("job %s: lease lost (%s: %s); result dropped", job.id, type(e).__name__, e)
            else:
                log.exception("job %s failed", job.id)
                msg = hide_paths(" ".join(f"{type(e).__name__}: {e}".split())[:500])
                self._end(job, status="failed", error=f"internal error: {msg}")
        finally:
            self._cancelled.discard(job.id)
            self._lost.discard(job.id)
            shutil.rmtree(staging, ignore_errors=True)  # no partial results (renamed away when published)

    def _end(self, job: Job, **values) -> None:
        self._set(job, finished_at=self.db.clock(), lease_owner=None, lease_until=None, **values)

    def _publish(self, job: Job, staging: Path, outputs: list[dict]) -> bool:
        """Make the results visible and the job ``done`` at once, if this worker still holds the job: under the
        job's row lock, the staging folder is renamed to ``jobs/<id>/`` (replacing what an attempt that lost its
        lease after renaming left) and the row updated in the same transaction. False: the lease was lost."""
        final = self.storage.job_dir(job.id)
        with self.db.session() as s:
            if not self.db.shared:
                write_lock(s)
            q = select(Job).where(*self._mine(job))
            if self.db.shared:
                q = q.with_for_update()
            row = s.scalars(q).first()
            if row is None:
                s.rollback()
                return False
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
            row.status, row.progress, row.outputs = "done", 1.0, outputs
            row.finished_at, row.lease_owner, row.lease_until = self.db.clock(), None, None
            s.commit()
        return True

    def _check_cancel(self, job_id: str, ask_database: bool = False) -> None:
        if self._stop.is_set():
            raise JobInterrupted()
        if job_id in self._lost:
            raise JobLost()
        if job_id not in self._cancelled and ask_database:
            with self.db.session() as s:
                if s.scalar(select(Job.cancel_requested).where(Job.id == job_id)):
                    self._cancelled.add(job_id)
        if job_id in self._cancelled:
            raise JobCancelled()

    def _execute(self, job: Job, staging: Path) -> list[dict]:
        from ..audio import Audio

        request = GenerationRequest(**job.params["request"])
        gen = self.models.get(job.model)
        with self.models.turn(self._stop) as mine, \
                self._progress(gen, job, calls=request.num_variations if job.kind == "edit" else 1):
            if not mine:  # the server stopped while a stream had the turn
                raise JobInterrupted()
            if job.kind == "edit":
                audio = Audio.load(self._source_path(job.source))
                results = gen.edit(audio, request)
            else:
                results = gen.generate(request)
        outputs = []
        for i, a in enumerate(results):
            self._check_cancel(job.id, ask_database=True)
            outputs.append(self._write(job, i, a, staging))
        return outputs

    def _source_path(self, source: dict):
        if "upload" in source:
            return self.storage.upload_path(source["upload"])
        return self.storage.job_file(source["job"], source.get("index", 0), ".wav")

    def _write(self, job: Job, index: int, audio, folder: Path) -> dict:
        from ..plot import save_spectrogram

        wav = folder / f"{int(index)}.wav"
        audio.save(wav)
        meta = {"file": wav.name, "job": job.id, "model_alias": job.model, **audio.meta}
        if job.source:
            meta["input"] = job.source
        write_json_atomic(wav.with_suffix(".json"), hide_paths(meta))  # a model folder shows as its name
        prompt = audio.meta.get("request", {}).get("prompt", "")
        save_spectrogram(audio, wav.with_suffix(".png"), title=prompt)
        out = {"index": index, "seed": audio.meta.get("seed"), "duration": audio.duration,
               "sample_rate": audio.sample_rate, "channels": audio.channels}
        best = audio.meta.get("best_of")
        if best:  # the reranker's choice, in short (the provenance JSON has every candidate)
            out["best_of"] = {"n": best["n"], "clap": best["clap"][best["chosen"]], "scorer": best["scorer"]}
        return out

    @contextlib.contextmanager
    def _progress(self, gen, job: Job, calls: int):
        """Report progress through the generator's step callback (``on_step(i, n)``: denoising steps or sampled
        frames, as its capabilities say); the same callback interrupts the job when it is cancelled or the server
        stops. A model that reports no progress is still checked for cancellation before it starts."""
        job_id = job.id
        caps = getattr(gen, "capabilities", None)
        if caps is None or caps.progress is None:
            self._check_cancel(job_id, ask_database=True)
            yield
            return
        state = {"calls": 0, "last": 0.0}

        def report(i: int, n: int) -> None:
            self._check_cancel(job_id)
            t = time.monotonic()
            if t - state["last"] >= PROGRESS_EVERY_SECONDS or i == n:
                state["last"] = t
                self._check_cancel(job_id, ask_database=True)
                frac = round(min((state["calls"] + i / max(n, 1)) / max(calls, 1), 0.99), 3)
                if not self._set(job, progress=frac):
                    raise JobLost()
                for fn in self._listeners:
                    fn(job_id, frac)
            if i == n:
                state["calls"] += 1

        before = gen.on_step
        gen.on_step = report
        try:
            yield
        finally:
            gen.on_step = before
