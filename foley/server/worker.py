"""The job worker: one thread that takes queued jobs from the database, runs them with cached models and
writes results. The database is the queue, so a restart finds every accepted job again."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict

from sqlalchemy import select, update

from ..errors import FoleyError, ModelError
from ..fsutil import write_json_atomic
from ..request import GenerationRequest
from .db import Database, Job, now
from .settings import Settings
from .storage import Storage, hide_paths

log = logging.getLogger("foley.server")
POLL_SECONDS = 1.0
PROGRESS_EVERY_SECONDS = 0.3


class JobInterrupted(Exception):
    """Raised inside a running job when the server shuts down; the job goes back to the queue."""


class JobCancelled(Exception):
    """Raised inside a running job the client cancelled (``DELETE /v1/generations/{id}``)."""


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
    """After a restart: jobs left ``running`` by a killed server are queued again, or marked failed with
    the reason once they have used ``max_attempts`` starts -- counting starts ended by a clean stop too, so
    a job that brings the server down cannot restart forever. Then the stale temporary files and partial
    results a killed server left are removed (``storage``, default: the settings' data folder)."""
    counts = {"requeued": 0, "failed": 0}
    with db.session() as s:
        started = select(Job).where(Job.status.in_(("running", "queued")), Job.attempts > 0)
        for job in s.scalars(started):
            if job.attempts >= settings.max_attempts:
                job.status, job.finished_at = "failed", now()
                job.error = (f"the server stopped while this job was running, {job.attempts} time(s); "
                             "not retried again (it may need more memory or time than the server has)")
                counts["failed"] += 1
            elif job.status == "running":
                job.status, job.progress, job.started_at = "queued", 0.0, None
                counts["requeued"] += 1
        s.commit()
        done = set(s.scalars(select(Job.id).where(Job.status == "done")))
    removed = (storage or Storage(settings.data)).remove_stale(done)
    if removed:
        log.warning("removed %d stale temporary or partial file(s) left by an earlier run", removed)
    return counts


class Worker:
    """Runs jobs one at a time in a daemon thread (generation is CPU-bound; one at a time is fastest)."""

    def __init__(self, db: Database, storage: Storage, settings: Settings, models: ModelCache):
        self.db, self.storage, self.settings, self.models = db, storage, settings, models
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list = []
        self._cancelled: set[str] = set()  # job ids a client cancelled while they run

    def add_listener(self, fn) -> None:
        """Call ``fn(job_id, fraction)`` whenever a running job's progress is stored (worker thread)."""
        self._listeners.append(fn)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="foley-worker", daemon=True)
        self._thread.start()

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
        if self._thread is not None:
            self._thread.join(timeout)

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
        while not self._stop.is_set():
            try:
                job = self._claim()
            except Exception:  # database briefly unavailable: retry after a pause
                log.exception("cannot read the job queue")
                job = None
            if job is None:
                self._wake.wait(POLL_SECONDS)
                self._wake.clear()
                continue
            self._run(job)

    def _claim(self) -> Job | None:
        """Take the oldest queued job; the conditional UPDATE makes the claim safe across processes."""
        with self.db.session() as s:
            oldest = select(Job.id).where(Job.status == "queued").order_by(Job.created_at).limit(5)
            ids = s.scalars(oldest).all()
            for job_id in ids:
                res = s.execute(update(Job).where(Job.id == job_id, Job.status == "queued")
                                .values(status="running", started_at=now(), progress=0.0,
                                        attempts=Job.attempts + 1))
                s.commit()
                if res.rowcount == 1:
                    return s.get(Job, job_id)
        return None

    def _set(self, job_id: str, **values) -> None:
        with self.db.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(**values))
            s.commit()

    def _run(self, job: Job) -> None:
        import shutil

        try:
            outputs = self._execute(job)
        except JobInterrupted:  # the attempt still counts: a job that stops the server cannot loop forever
            self._set(job.id, status="queued", progress=0.0, started_at=None)
            log.info("job %s interrupted by shutdown; queued again", job.id)
        except JobCancelled:
            self._set(job.id, status="cancelled", error="cancelled by the client", finished_at=now())
            log.info("job %s cancelled", job.id)
        except FoleyError as e:
            self._set(job.id, status="failed", error=hide_paths(str(e)), finished_at=now())
        except Exception as e:  # a bug or resource problem: the job fails with the reason, the worker lives
            log.exception("job %s failed", job.id)
            msg = hide_paths(" ".join(f"{type(e).__name__}: {e}".split())[:500])
            self._set(job.id, status="failed", error=f"internal error: {msg}", finished_at=now())
        else:
            self._set(job.id, status="done", progress=1.0, outputs=outputs, finished_at=now())
            return
        finally:
            self._cancelled.discard(job.id)
        shutil.rmtree(self.storage.job_dir(job.id), ignore_errors=True)  # no partial results

    def _check_cancel(self, job_id: str, ask_database: bool = False) -> None:
        if self._stop.is_set():
            raise JobInterrupted()
        if job_id not in self._cancelled and ask_database:
            with self.db.session() as s:
                if s.scalar(select(Job.cancel_requested).where(Job.id == job_id)):
                    self._cancelled.add(job_id)
        if job_id in self._cancelled:
            raise JobCancelled()

    def _execute(self, job: Job) -> list[dict]:
        from ..audio import Audio

        request = GenerationRequest(**job.params["request"])
        gen = self.models.get(job.model)
        with self.models.turn(self._stop) as mine, \
                self._progress(gen, job.id, calls=request.num_variations if job.kind == "edit" else 1):
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
            outputs.append(self._write(job, i, a))
        return outputs

    def _source_path(self, source: dict):
        if "upload" in source:
            return self.storage.upload_path(source["upload"])
        return self.storage.job_file(source["job"], source.get("index", 0), ".wav")

    def _write(self, job: Job, index: int, audio) -> dict:
        from ..plot import save_spectrogram

        wav = self.storage.job_file(job.id, index, ".wav")
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
    def _progress(self, gen, job_id: str, calls: int):
        """Report progress through the generator's step callback (``on_step(i, n)``: denoising steps or sampled
        frames, as its capabilities say); the same callback interrupts the job when it is cancelled or the server
        stops. A model that reports no progress is still checked for cancellation before it starts."""
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
                self._set(job_id, progress=frac)
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
