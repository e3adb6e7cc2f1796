"""Job submission and views, shared by the HTTP routes: validation happens here, before anything is queued."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import func, select

from ..errors import FoleyError, RequestError
from ..registry import resolve
from ..request import GenerationRequest, make_request
from .db import Database, Job, aware, new_id
from .settings import Settings
from .worker import ModelCache


class ApiError(Exception):
    """An HTTP error with a one-line ``detail``."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, " ".join(str(detail).split())


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: object
    models: ModelCache
    worker: object | None


def model_info(svc: Services, alias: str) -> dict:
    """What is known about an offered model without loading it (the card, else the folder's foley.json)."""
    target = svc.settings.models[alias]
    info: dict = {"name": alias, "default": alias == svc.settings.default_model, "available": True,
                  "loaded": False, "family": None, "max_duration": None, "sample_rate": None, "channels": None,
                  "tasks": None}
    gen = svc.models.loaded(alias)
    card = gen.card if gen is not None else None
    if card is None:
        try:
            folder, card = resolve(target)
        except FoleyError as e:
            return {**info, "available": False, "reason": str(e)}
        if card is None and (folder / "foley.json").is_file():
            cfg = json.loads((folder / "foley.json").read_text())
            info.update(family=cfg.get("family"), max_duration=cfg.get("max_duration"), channels=cfg.get("channels"),
                        sample_rate=cfg.get("sample_rate") or (cfg.get("mel") or {}).get("sample_rate"),
                        tasks=cfg.get("tasks"))
    if card is not None:
        info.update(family=card.family, max_duration=card.max_duration, sample_rate=card.sample_rate,
                    channels=card.channels, tasks=list(card.tasks))
    info["loaded"] = gen is not None
    return info


def build_request(svc: Services, fields: dict) -> tuple[str, GenerationRequest]:
    """(model alias, validated request) from client fields; every problem is one ApiError line."""
    fields = {k: v for k, v in fields.items() if v is not None}
    alias = fields.pop("model", None) or svc.settings.default_model
    if alias not in svc.settings.models:
        raise ApiError(422, f"unknown model '{alias}'; this server offers: {', '.join(svc.settings.models)}")
    prompt = fields.get("prompt")
    if isinstance(prompt, str) and len(prompt) > svc.settings.max_prompt_chars:
        raise ApiError(422, f"prompt has {len(prompt)} characters; this server's limit is "
                            f"{svc.settings.max_prompt_chars}")
    try:
        req = make_request(**fields)
    except RequestError as e:
        raise ApiError(422, str(e)) from None
    if req.duration > svc.settings.max_duration:
        raise ApiError(422, f"duration {req.duration:g} s is over this server's limit of "
                            f"{svc.settings.max_duration:g} s")
    info = model_info(svc, alias)
    if not info["available"]:
        raise ApiError(503, info["reason"])
    if info["max_duration"] is not None and req.duration > info["max_duration"]:
        raise ApiError(422, f"duration {req.duration:g} s is over model '{alias}''s maximum of "
                            f"{info['max_duration']:g} s")
    if info["family"] == "lm" and (req.steps is not None or req.scheduler is not None):
        raise ApiError(422, f"model '{alias}' samples tokens: it has no steps or scheduler setting; drop them")
    if req.task != "generate" and info["tasks"] is not None and req.task not in info["tasks"]:
        raise ApiError(422, f"model '{alias}' cannot do '{req.task}'; it supports: "
                            f"{', '.join(info['tasks'])}")
    return alias, req


def submit(svc: Services, kind: str, alias: str, req: GenerationRequest, source: dict | None = None) -> Job:
    """Queue a job, or refuse with 429 when the queue is full."""
    with svc.db.session() as s:
        pending = s.scalar(select(func.count()).select_from(Job).where(Job.status.in_(("queued", "running"))))
        if pending >= svc.settings.max_queue:
            raise ApiError(429, f"the queue is full ({pending} jobs waiting or running); try again later")
        job = Job(id=new_id(), kind=kind, model=alias, params={"request": req.model_dump(), "model": alias},
                  source=source)
        s.add(job)
        s.commit()
    if svc.worker is not None:
        svc.worker.wake()
    return job


def get_job(svc: Services, job_id: str) -> Job:
    from .storage import valid_id

    if not valid_id(job_id):
        raise ApiError(404, "no such generation")
    with svc.db.session() as s:
        job = s.get(Job, job_id)
    if job is None:
        raise ApiError(404, "no such generation")
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
    return {"id": job.id, "kind": job.kind, "status": job.status, "progress": job.progress,
            "queue_position": position, "model": job.model, "request": job.params["request"],
            "source": job.source, "error": job.error, "attempts": job.attempts, "outputs": outputs, **stamp}


def history(svc: Services, page: int, per_page: int) -> dict:
    with svc.db.session() as s:
        total = s.scalar(select(func.count()).select_from(Job))
        rows = s.scalars(select(Job).order_by(Job.created_at.desc()).offset((page - 1) * per_page)
                         .limit(per_page)).all()
    return {"items": [job_view(j) for j in rows], "page": page, "per_page": per_page, "total": total}
