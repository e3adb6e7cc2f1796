"""Job submission and views, shared by the HTTP routes: validation happens here, before anything is queued."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update

from ..errors import FoleyError, RequestError
from ..registry import describe
from ..request import GenerationRequest, make_request
from .db import Database, Job, aware, new_id, now
from .db import write_lock as lock_for_write
from .settings import Settings
from .storage import hide_paths
from .worker import ModelCache


class ApiError(Exception):
    """An HTTP error with a one-line ``detail``."""

    def __init__(self, status: int, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail = status, " ".join(str(detail).split())
        self.headers = headers


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: object
    models: ModelCache
    worker: object | None


def model_info(svc: Services, alias: str) -> dict:
    """What is known about an offered model without loading its weights: its card and capabilities (what it
    accepts, which tasks, whether it streams), as its family declares them."""
    info: dict = {"name": alias, "default": alias == svc.settings.default_model, "available": True,
                  "loaded": False, "family": None, "max_duration": None, "sample_rate": None, "channels": None,
                  "tasks": None, "capabilities": None}
    try:
        card, caps = contract(svc, alias)
    except FoleyError as e:
        return {**info, "available": False, "reason": str(e)}
    if card is not None:
        info.update(family=card.family, max_duration=card.max_duration, sample_rate=card.sample_rate,
                    channels=card.channels, tasks=list(card.tasks))
    if caps is not None:
        info["capabilities"] = caps.to_dict()
    info["loaded"] = svc.models.loaded(alias) is not None
    return info


def contract(svc: Services, alias: str):
    """(card, capabilities) of an offered model: the loaded generator's, else its family's reading of the folder
    (capabilities None when the family must load the model to know them)."""
    gen = svc.models.loaded(alias)
    if gen is not None and hasattr(gen, "capabilities"):
        return gen.card, gen.capabilities
    return describe(svc.settings.models[alias])


def build_request(svc: Services, fields: dict) -> tuple[str, GenerationRequest]:
    """(model alias, validated request) from client fields; every problem is one ApiError line."""
    fields = {k: v for k, v in fields.items() if v is not None}
    alias = fields.pop("model", None) or svc.settings.default_model
    if alias not in svc.settings.models:
        raise ApiError(422, f"unknown model '{alias}'; this server offers: {', '.join(svc.settings.models)}")
    limit = svc.settings.max_prompt_chars  # the one limit: checked and named here (the body model has none)
    for key, label in (("prompt", "prompt"), ("negative_prompt", "negative prompt")):
        text = fields.get(key)
        if isinstance(text, str) and len(" ".join(text.split())) > limit:
            raise ApiError(422, f"{label} has {len(' '.join(text.split()))} characters; this server's limit "
                                f"is {limit}")
    try:
        req = make_request(**fields)
    except RequestError as e:
        raise ApiError(422, str(e)) from None
    if req.duration > svc.settings.max_duration:
        raise ApiError(422, f"duration {req.duration:g} s is over this server's limit of "
                            f"{svc.settings.max_duration:g} s")
    total = req.duration * req.num_variations * req.best_of
    if total > svc.settings.max_request_seconds + 1e-9:
        count = f"{req.num_variations} x {req.best_of} candidates" if req.best_of > 1 else f"{req.num_variations}"
        raise ApiError(422, f"this request asks for {count} x {req.duration:g} s = {total:g} s of "
                            f"audio; this server's limit per request is {svc.settings.max_request_seconds:g} s "
                            "(ask for fewer variations, a smaller best-of or a shorter duration)")
    if req.best_of > 1:
        if req.task != "generate":
            raise ApiError(422, f"best_of works with generation, not with '{req.task}'")
        from ..clap import clap_dir

        if not (clap_dir() / "model.safetensors").is_file():
            raise ApiError(503, f"best_of ranks candidates with foley-clap, which this server does not have "
                                f"({clap_dir()}); send best_of 1")
    info = model_info(svc, alias)
    if not info["available"]:
        raise ApiError(503, info["reason"])
    if info["max_duration"] is not None and req.duration > info["max_duration"]:
        raise ApiError(422, f"duration {req.duration:g} s is over model '{alias}''s maximum of "
                            f"{info['max_duration']:g} s")
    caps = contract(svc, alias)[1]
    if caps is not None:
        try:
            caps.check(req.model_copy(update={"task": "generate"}), alias)  # settings; the task is checked below
        except RequestError as e:
            raise ApiError(422, str(e)) from None
    if req.task != "generate" and info["tasks"] is not None and req.task not in info["tasks"]:
        others = [a for a in svc.settings.models if a != alias and req.task in (model_info(svc, a)["tasks"] or ())]
        hint = f"; models on this server that can: {', '.join(others)}" if others else \
            "; no model on this server can"
        raise ApiError(422, f"model '{alias}' cannot do '{req.task}' (it supports "
                            f"{', '.join(info['tasks'])}){hint}")
    return alias, req


def submit(svc: Services, kind: str, alias: str, req: GenerationRequest, source: dict | None = None,
           owner: str | None = None) -> Job:
    """Queue a job, or refuse with 429 when the queue is full or the token is over its limits
    (:mod:`foley.server.quotas`). Counting and inserting are one write transaction, so concurrent requests
    cannot push the queue past its limit, nor a token past its quota."""
    from .quotas import charge, request_seconds

    t = svc.db.clock()
    with svc.db.session() as s:
        lock_for_write(s)
        pending = s.scalar(select(func.count()).select_from(Job).where(Job.status.in_(("queued", "running"))))
        if pending >= svc.settings.max_queue:
            raise ApiError(429, f"the queue is full ({pending} jobs waiting or running); try again later")
        job = Job(id=new_id(), kind=kind, model=alias, params={"request": req.model_dump(), "model": alias},
                  source=source, owner=owner)
        charge(s, svc.settings, owner, request_seconds(req), "job", t, job_id=job.id)
        s.add(job)
        s.commit()
    if svc.worker is not None:
        svc.worker.wake()
    return job


def charge_stream(svc: Services, owner: str | None, req: GenerationRequest) -> int | None:
    """Record a stream against the token's limits (429 over them); the usage row's id, to refund it when the stream
    cannot start."""
    from .quotas import charge, request_seconds

    if owner is None:  # open mode: nothing to count (and no write before the first byte)
        return None
    t = svc.db.clock()
    with svc.db.session() as s:
        lock_for_write(s)
        row = charge(s, svc.settings, owner, request_seconds(req), "stream", t)
        s.commit()
        return row.id if row is not None else None


def refund(svc: Services, usage_id: int | None) -> None:
    from .db import Usage

    if usage_id is not None:
        with svc.db.session() as s:
            s.execute(Usage.__table__.delete().where(Usage.id == usage_id))
            s.commit()


def get_job(svc: Services, job_id: str, owner: str | None = None) -> Job:
    """The job, or 404 when there is none or it belongs to another token (its existence is not revealed)."""
    from .storage import valid_id

    if not valid_id(job_id):
        raise ApiError(404, "no such generation")
    with svc.db.session() as s:
        job = s.get(Job, job_id)
    if job is None or (svc.settings.auth and job.owner != owner):
        raise ApiError(404, "no such generation")
    return job


def cancel(svc: Services, job: Job) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next sampler step (the worker then
    marks it cancelled and keeps no output). Finished jobs cannot be cancelled (409)."""
    with svc.db.session() as s:
        s.execute(update(Job).where(Job.id == job.id, Job.status == "queued")
                  .values(status="cancelled", error="cancelled by the client", finished_at=now()))
        s.execute(update(Job).where(Job.id == job.id, Job.status == "running").values(cancel_requested=True))
        s.commit()
        job = s.get(Job, job.id)
    if job.status == "running" and svc.worker is not None:
        svc.worker.cancel(job.id)
    if job.status in ("done", "failed"):
        raise ApiError(409, f"generation is {job.status}; only a queued or running one can be cancelled")
    return job


def queue_position(svc: Services, job: Job) -> int | None:
    """How many queued jobs are ahead of this one (None unless it is queued)."""
    if job.status != "queued":
        return None
    with svc.db.session() as s:
        return s.scalar(select(func.count()).select_from(Job).where(Job.status == "queued",
                                                                    Job.created_at < job.created_at))


def job_view(job: Job, position: int | None = None) -> dict:
    """The public JSON of a job: status, progress, request, error and result links (by id only)."""
    base = f"/v1/generations/{job.id}"
    outputs = []
    for o in job.outputs or []:
        q = f"?index={o['index']}"
        outputs.append({**o, "audio_url": f"{base}/audio{q}", "spectrogram_url": f"{base}/spectrogram.png{q}",
                        "provenance_url": f"{base}/provenance.json{q}"})
    stamp = {k: (aware(getattr(job, k)).isoformat() if getattr(job, k) else None)
             for k in ("created_at", "started_at", "finished_at")}
    request = dict(job.params["request"])
    for key in ("like", "controls"):  # an "upload:<id>" source is stored as the upload's file: show its name only
        if request.get(key) is not None:
            request[key] = hide_paths(request[key])
    return {"id": job.id, "kind": job.kind, "status": job.status, "progress": job.progress,
            "queue_position": position, "model": job.model, "request": request,
            "source": job.source, "error": job.error, "attempts": job.attempts,
            "cancel_requested": bool(job.cancel_requested), "outputs": outputs, **stamp}


def history(svc: Services, page: int, per_page: int, owner: str | None = None) -> dict:
    """A page of jobs, newest first: with auth on, only the caller's."""
    mine = (Job.owner == owner,) if svc.settings.auth else ()
    with svc.db.session() as s:
        total = s.scalar(select(func.count()).select_from(Job).where(*mine))
        rows = s.scalars(select(Job).where(*mine).order_by(Job.created_at.desc()).offset((page - 1) * per_page)
                         .limit(per_page)).all()
    return {"items": [job_view(j) for j in rows], "page": page, "per_page": per_page, "total": total}
